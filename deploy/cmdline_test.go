package deploy

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
)

var (
	buildOnce sync.Once
	buildDir  string
	binary    string
	buildErr  error
	buildOut  []byte
)

// TestMain removes the binary mpimBinary built.
func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// mpimBinary builds the mpim binary once for the package's tests.
func mpimBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: the command lines are checked against a freshly built mpim binary")
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "mpim-deploy-test")
		if err != nil {
			buildErr = err
			return
		}
		buildDir, binary = dir, filepath.Join(dir, "mpim")
		buildOut, buildErr = exec.Command("go", "build", "-o", binary, "mpim/cmd/mpim").CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("go build mpim/cmd/mpim: %v\n%s", buildErr, buildOut)
	}
	return binary
}

// parses runs `mpim ARGS --help`: cobra parses every flag before it
// answers --help, so an unknown flag or a value of the wrong type fails,
// and nothing is started.
func parses(t *testing.T, where string, args []string) {
	t.Helper()
	bin := mpimBinary(t)
	out, err := exec.Command(bin, append(slices.Clone(args), "--help")...).CombinedOutput()
	if err != nil {
		t.Errorf("%s: mpim %s does not parse with the binary's flags: %v\n%s", where, strings.Join(args, " "), err, firstLine(out))
	}
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return s
}

// TestManifestCommandLines: the node wrapper script, run with a stand-in
// mpim, gives each pod its id from the ordinal and every peer by its
// headless name; that command line, the gateway's and the agent's parse
// with the real binary's flags.
func TestManifestCommandLines(t *testing.T) {
	m := loadManifests(t)
	s := m.statefulSets[0]
	node := container(t, s.Spec.Template.Spec, "node")
	if len(node.Command) != 3 || node.Command[0] != "/bin/sh" || node.Command[1] != "-c" {
		t.Fatalf("node command %q: want /bin/sh -c SCRIPT", node.Command)
	}
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh to run the node's wrapper script with")
	}
	// A stand-in mpim that prints its arguments, one a line.
	fake := t.TempDir()
	if err := os.WriteFile(filepath.Join(fake, "mpim"), []byte("#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	env := []string{"PATH=" + fake + ":" + os.Getenv("PATH"), "POD_NAME=mpim-node-1"}
	for _, e := range node.Env {
		if e.Value != "" {
			env = append(env, e.Name+"="+e.Value)
		}
	}
	cmd := exec.Command(sh, "-c", node.Command[2])
	cmd.Env = env
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("the node wrapper script fails: %v", err)
	}
	args := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	flag := func(name string) string {
		i := slices.Index(args, name)
		if i < 0 || i+1 >= len(args) {
			t.Fatalf("the node's command line %q has no %s", args, name)
		}
		return args[i+1]
	}
	if args[0] != "node" || flag("--id") != "n2" {
		t.Errorf("pod mpim-node-1 runs %q; want `node --id n2 ...`", args)
	}
	if want := "n1=mpim-node-0.mpim-node:7100,n2=mpim-node-1.mpim-node:7100,n3=mpim-node-2.mpim-node:7100"; flag("--peers") != want {
		t.Errorf("--peers %s, want %s", flag("--peers"), want)
	}
	if flag("--raft-listen") != ":7100" || flag("--data") != "/var/lib/mpim" || flag("--tls-dir") != "/etc/mpim/credentials" {
		t.Errorf("node's raft port, data or TLS directory moved: %q", args)
	}
	parses(t, "node.yaml node", args)

	podName := func(cmd []string) []string {
		out := slices.Clone(cmd)
		for i := range out {
			out[i] = strings.ReplaceAll(out[i], "$(POD_NAME)", "pod-0")
		}
		return out
	}
	agent := container(t, s.Spec.Template.Spec, "agent")
	if agent.Command[0] != "mpim" {
		t.Fatalf("agent command %q does not start with mpim", agent.Command)
	}
	parses(t, "node.yaml agent", podName(agent.Command[1:]))
	for _, d := range m.deployments {
		if d.Name == "mpim-gateway" {
			gw := container(t, d.Spec.Template.Spec, "gateway")
			parses(t, "gateway.yaml", podName(gw.Command[1:]))
		}
	}
}

// unit is a systemd unit file's directives (continuation lines joined).
func unit(t *testing.T, path string) map[string][]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	joined := strings.ReplaceAll(string(data), "\\\n", " ")
	for _, line := range strings.Split(joined, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "[") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: %q is not KEY=VALUE", path, line)
		}
		out[k] = append(out[k], v)
	}
	return out
}

// envExample reads systemd/env.example as KEY=VALUE lines.
func envExample(t *testing.T) map[string]string {
	t.Helper()
	f, err := os.Open("systemd/env.example")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("env.example: %q is not KEY=VALUE", line)
		}
		env[k] = v
	}
	return env
}

var envRef = regexp.MustCompile(`\$\{([A-Z_]+)\}`)

// TestSystemdUnits: each unit's ExecStart, with its instance name and
// env.example's values, parses with the real binary's flags; every
// variable it uses is in env.example; the secrets are there as
// placeholders too short to start with; the agent has CAP_NET_ADMIN and
// KillMode=mixed.
func TestSystemdUnits(t *testing.T) {
	env := envExample(t)
	for _, k := range []string{"MPIM_SECRET", "MPIM_REDIS_PASSWORD"} {
		if v, ok := env[k]; !ok {
			t.Errorf("env.example lacks %s", k)
		} else if k == "MPIM_SECRET" && len(v) >= 16 {
			t.Errorf("env.example's MPIM_SECRET placeholder %q is long enough to run with: a copied file would start a cluster on a published secret", v)
		}
	}
	for _, tc := range []struct{ file, instance, sub string }{
		{"mpim-agent.service", "", "agent"},
		{"mpim-node@.service", "n1", "node"},
		{"mpim-gateway@.service", "g1", "gateway"},
	} {
		u := unit(t, filepath.Join("systemd", tc.file))
		if len(u["ExecStart"]) != 1 {
			t.Fatalf("%s: %d ExecStart lines", tc.file, len(u["ExecStart"]))
		}
		line := strings.ReplaceAll(u["ExecStart"][0], "%i", tc.instance)
		if strings.ContainsAny(line, `"'`) {
			t.Fatalf("%s: ExecStart has quotes; this test splits it on spaces", tc.file)
		}
		for _, ref := range envRef.FindAllStringSubmatch(line, -1) {
			v, ok := env[ref[1]]
			if !ok {
				t.Errorf("%s uses ${%s}, which env.example does not set", tc.file, ref[1])
			}
			line = strings.ReplaceAll(line, ref[0], v)
		}
		words := strings.Fields(line)
		if words[0] != "/usr/local/bin/mpim" || words[1] != tc.sub {
			t.Errorf("%s runs %q, want /usr/local/bin/mpim %s", tc.file, words[:2], tc.sub)
		}
		parses(t, tc.file, words[1:])
		if tc.sub != "agent" && !slices.Contains(u["EnvironmentFile"], "/etc/mpim/env") {
			t.Errorf("%s does not read /etc/mpim/env", tc.file)
		}
	}
	agent := unit(t, "systemd/mpim-agent.service")
	if !slices.Equal(agent["AmbientCapabilities"], []string{"CAP_NET_ADMIN"}) || !slices.Equal(agent["CapabilityBoundingSet"], []string{"CAP_NET_ADMIN"}) {
		t.Errorf("agent capabilities %v (ambient) %v (bounding); nft, ip and tc need CAP_NET_ADMIN alone", agent["AmbientCapabilities"], agent["CapabilityBoundingSet"])
	}
	if !slices.Equal(agent["KillMode"], []string{"mixed"}) {
		t.Errorf("agent KillMode %v; mixed lets it stop its members itself (see the unit's comment)", agent["KillMode"])
	}
}

// TestSystemdVerify runs systemd-analyze verify on the units, where it
// exists, with the binary path pointed at a built mpim (verify checks the
// executable exists). Verify reports bad directives as warnings, so any
// line naming a unit fails.
func TestSystemdVerify(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not on PATH")
	}
	bin := mpimBinary(t)
	dir := t.TempDir()
	files, _ := filepath.Glob("systemd/*.service")
	var args []string
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		data = []byte(strings.ReplaceAll(string(data), "/usr/local/bin/mpim", bin))
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), data, 0o644); err != nil {
			t.Fatal(err)
		}
		name := filepath.Base(f)
		args = append(args, filepath.Join(dir, strings.Replace(name, "@.", "@x1.", 1)))
	}
	out, err := exec.Command(sa, append([]string{"verify", "--man=no"}, args...)...).CombinedOutput()
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if strings.Contains(line, "mpim-") {
			t.Errorf("systemd-analyze verify: %s", line)
		}
	}
	if err != nil && !strings.Contains(string(out), "mpim-") {
		t.Logf("systemd-analyze verify exited %v without naming a unit (output: %s)", err, out)
	}
}
