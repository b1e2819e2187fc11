// Package arch holds the architecture test: the import rules that keep the
// layout reading one way (docs/architecture.md, "Layers and import
// rules"), checked over `go list -json ./...` so that they stay true.
package arch

import (
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// pkg is what the test reads of `go list -json`.
type pkg struct {
	ImportPath string
	Imports    []string
	Deps       []string
}

func list(t *testing.T) map[string]pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", "mpim/...")
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatal(err)
	}
	pkgs := map[string]pkg{}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs[p.ImportPath] = p
	}
	if len(pkgs) < 20 {
		t.Fatalf("go list found %d packages of mpim: the test is not looking at the module", len(pkgs))
	}
	return pkgs
}

// under reports whether path is folder or inside it ("mpim/node" holds
// mpim/node/ap but not mpim/nodes).
func under(path, folder string) bool { return path == folder || strings.HasPrefix(path, folder+"/") }

// rule: no package under From may depend, directly or not, on a package
// under any of Not (except the packages Except names).
type rule struct {
	from   []string
	not    []string
	except []string
	why    string
}

var rules = []rule{
	{from: []string{"mpim/gateway"}, not: []string{"mpim/node", "mpim/lab", "mpim/chaos", "mpim/bench", "mpim/client"},
		why: "a gateway binary links no node code: gateways and nodes share only proto, internal and the codec"},
	{from: []string{"mpim/node"}, not: []string{"mpim/gateway", "mpim/lab", "mpim/chaos", "mpim/bench", "mpim/client"},
		why: "a node links no gateway code (not even its codec): conversation ids live in internal/convid"},
	{from: []string{"mpim/fsm"}, not: []string{"mpim/node", "mpim/gateway", "mpim/client", "mpim/lab", "mpim/chaos", "mpim/proto"},
		why: "the state machine is a pure leaf that both modes apply"},
	{from: []string{"mpim/client"}, not: []string{"mpim/node", "mpim/gateway", "mpim/lab", "mpim/chaos", "mpim/bench"}, except: []string{"mpim/gateway/wire"},
		why: "the client library speaks the wire protocol, nothing more"},
	{from: []string{"mpim/chaos/fault", "mpim/chaos/netfault", "mpim/chaos/proxy", "mpim/chaos/netns", "mpim/chaos/hostnet", "mpim/chaos/check", "mpim/chaos/scenario"},
		not: []string{"mpim/lab", "mpim/chaos/runner", "mpim/node", "mpim/gateway", "mpim/client", "mpim/bench"},
		why: "the fault layer, the checkers and the scenario files are leaves the lab and the runner use"},
	{from: []string{"mpim/lab"}, not: []string{"mpim/chaos/runner", "mpim/bench", "mpim/node", "mpim/gateway", "mpim/client"},
		why: "the lab starts members as processes and drives the fault layer; the runner and the bench sit above it"},
	{from: []string{"mpim/agent"}, not: []string{"mpim/lab", "mpim/chaos/runner", "mpim/bench", "mpim/node", "mpim/gateway", "mpim/client"},
		why: "an agent runs processes and loads rules on its host; the lab drives it, never the reverse"},
	{from: []string{"mpim/gateway/wire"}, not: []string{"mpim/fsm", "mpim/proto", "mpim/node", "mpim/lab", "mpim/chaos", "mpim/bench", "mpim/client"},
		why: "the protocol codec is pure: frames in, frames out, no state machine or gRPC"},
	{from: []string{"mpim/proto", "mpim/scenarios", "mpim/dashboard"}, not: []string{"mpim/"},
		why: "generated code and embedded files depend on nothing of mpim"},
	{from: []string{"mpim/bench"}, not: []string{"mpim/gateway", "mpim/chaos/runner"}, except: []string{"mpim/gateway/wire"},
		why: "the bench drives a lab through its clients; it links node/cp only for the bare-Raft reference"},
	{from: []string{"mpim/internal"}, not: []string{"mpim/node", "mpim/gateway", "mpim/client", "mpim/lab", "mpim/chaos", "mpim/bench", "mpim/fsm"},
		except: []string{"mpim/internal/testcluster"}, // a test helper that starts a node and a gateway in-process
		why:    "internal helpers are leaves"},
}

// TestImportRules checks every rule over the transitive dependencies of
// every package it covers.
func TestImportRules(t *testing.T) {
	pkgs := list(t)
	for _, r := range rules {
		for path, p := range pkgs {
			if !slices.ContainsFunc(r.from, func(f string) bool { return under(path, f) }) || slices.Contains(r.except, path) {
				continue
			}
			for _, d := range p.Deps {
				if slices.Contains(r.except, d) {
					continue
				}
				for _, bad := range r.not {
					if under(d, bad) || (strings.HasSuffix(bad, "/") && strings.HasPrefix(d, bad)) {
						t.Errorf("%s depends on %s: %s", path, d, r.why)
					}
				}
			}
		}
	}
}

// TestNoFolderCycles: no two folders import into each other's trees. A
// Go import cycle is already impossible; this catches the cycle between
// folders that Go allows, as when the root of chaos/ (then the runner)
// imported lab while lab imported chaos/fault, in chaos/'s tree.
func TestNoFolderCycles(t *testing.T) {
	pkgs := list(t)
	// into[a][b]: some package under a imports some package under b.
	into := func(a, b string) string {
		for path, p := range pkgs {
			if !under(path, a) {
				continue
			}
			for _, imp := range p.Imports {
				if under(imp, b) {
					return path + " imports " + imp
				}
			}
		}
		return ""
	}
	// A folder is one that holds a package; its tree is it and the folders
	// below it. (A folder of folders, like chaos/ or internal/, only
	// groups: chaos/runner may import lab while lab imports chaos/fault.)
	var folders []string
	for path := range pkgs {
		folders = append(folders, path)
	}
	slices.Sort(folders)
	for i, a := range folders {
		for _, b := range folders[i+1:] {
			if under(a, b) || under(b, a) {
				continue
			}
			if ab, ba := into(a, b), into(b, a); ab != "" && ba != "" {
				t.Errorf("folders %s and %s import each other: %s; %s", a, b, ab, ba)
			}
		}
	}
}
