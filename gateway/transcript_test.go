package gateway

import (
	"cmp"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata transcripts with the actual output")

// TestDeliveryTranscripts runs every testdata/delivery/*.txt transcript,
// in the format of fsm's (etcd-io/raft's datadriven): blocks of a command,
// a line "----" and the expected output, separated by blank lines, with
// '#' comment lines. Each transcript drives one gateway (see harness) in
// front of a fake node, with WebSocket clients, on a fake clock: after
// each command the gateway runs until it is idle, and the output is what
// it did meanwhile — "node: " lines for the sync and history calls it made
// (with the node's answers), then "<client>: " lines for the frames each
// client read, or "(nothing)". Arguments are key=value without spaces.
//
//	gateway [mode=cp|ap] [reorder=25ms] [queue=1024] [window=BYTES] [calltimeout=5s]
//	        (first, or defaults: the gateway's config and the node's mode;
//	        window is each connection's socket buffer)
//	store conv= seq=N[..M] [id=] [tentative]   the node stores messages (not pushed)
//	acked conv= seq=N                          the device's delivery cursor on the node
//	connect as=NAME                            a client connects
//	login user= [device=] [as=NAME]            a client (connected, or connecting
//	                                           now) logs in; NAME defaults to user
//	push conv= seq=N[..M] [id=] [tentative] [skip=CLIENT]
//	        the node stores and pushes messages, one at a time; skip is the
//	        client that sent them
//	resync conv= from=N                        the node pushes an AP reorder
//	tick DURATION                              time passes
//	node up|down|hang                          how the node's message service answers
//	stop-reading [client=]   read [client=]    a client stops or resumes reading
//	catchup                                    the gateway catches every session up
//	                                           (its Redis subscription came back)
//	metrics                                    the gateway's delivery counters
//
// Run `go test ./gateway/ -run TestDeliveryTranscripts -update` to rewrite
// the expected output after a deliberate change, and review the diff.
func TestDeliveryTranscripts(t *testing.T) {
	files, err := filepath.Glob("testdata/delivery/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no transcripts under testdata/delivery (%v)", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { runTranscript(t, f) })
		})
	}
}

type block struct {
	comments []string
	cmd      string
	want     string
	line     int
}

func parseTranscript(t *testing.T, path string) []block {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []block
	var cur block
	state := 0 // 0: before command, 1: expecting ----, 2: in output
	var want []string
	flush := func() {
		cur.want = strings.Join(want, "\n")
		out = append(out, cur)
		cur, want, state = block{}, nil, 0
	}
	for i, l := range strings.Split(string(raw), "\n") {
		switch {
		case state == 2 && l == "":
			flush()
		case state == 2:
			want = append(want, l)
		case state == 1 && l == "----":
			state = 2
		case state == 1:
			t.Fatalf("%s:%d: want ---- after the command, got %q", path, i+1, l)
		case strings.HasPrefix(l, "#") || (l == "" && len(cur.comments) > 0):
			cur.comments = append(cur.comments, l)
		case l == "":
		default:
			cur.cmd, cur.line, state = l, i+1, 1
		}
	}
	if state == 2 {
		flush()
	} else if state == 1 {
		t.Fatalf("%s: last command %q has no ---- line", path, cur.cmd)
	}
	return out
}

func runTranscript(t *testing.T, path string) {
	blocks := parseTranscript(t, path)
	var h *harness
	var rewritten strings.Builder
	for i, b := range blocks {
		cmd := parseCommand(t, path, b)
		if i == 0 {
			h = newHarness(t, cmd.options())
		} else if cmd.verb == "gateway" {
			cmd.fail("gateway must be the first command")
		}
		got := runCommand(h, cmd)
		if *update {
			for _, c := range b.comments {
				rewritten.WriteString(c + "\n")
			}
			fmt.Fprintf(&rewritten, "%s\n----\n%s\n\n", b.cmd, got)
			continue
		}
		if got != b.want {
			t.Errorf("%s:%d: %s\ngot:\n%s\nwant:\n%s", path, b.line, b.cmd, got, b.want)
		}
	}
	if *update {
		out := strings.TrimRight(rewritten.String(), "\n") + "\n"
		if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// command is one parsed transcript command.
type command struct {
	t     *testing.T
	where string
	verb  string
	word  string // a bare word after the verb (node up, tick 25ms)
	args  map[string]string
}

func parseCommand(t *testing.T, path string, b block) command {
	fields := strings.Fields(b.cmd)
	c := command{t: t, where: fmt.Sprintf("%s:%d", path, b.line), verb: fields[0], args: map[string]string{}}
	for _, f := range fields[1:] {
		k, v, ok := strings.Cut(f, "=")
		switch {
		case ok:
			c.args[k] = v
		case c.word == "" && (c.verb == "node" || c.verb == "tick"):
			c.word = f
		default:
			c.args[f] = "true" // a flag: tentative
		}
	}
	return c
}

func (c command) fail(format string, args ...any) {
	c.t.Helper()
	c.t.Fatalf("%s: %s", c.where, fmt.Sprintf(format, args...))
}

func (c command) num(k string) uint64 {
	c.t.Helper()
	n, err := strconv.ParseUint(c.args[k], 10, 64)
	if err != nil {
		c.fail("%s=%q is not a number", k, c.args[k])
	}
	return n
}

func (c command) duration(s string) time.Duration {
	c.t.Helper()
	d, err := time.ParseDuration(s)
	if err != nil {
		c.fail("%q is not a duration", s)
	}
	return d
}

// seqs reads seq=N or seq=N..M.
func (c command) seqs() []uint64 {
	c.t.Helper()
	lo, hi, isRange := strings.Cut(c.args["seq"], "..")
	a, err := strconv.ParseUint(lo, 10, 64)
	b := a
	if isRange {
		b, err = strconv.ParseUint(hi, 10, 64)
	}
	if err != nil || b < a {
		c.fail("seq=%q is not N or N..M", c.args["seq"])
	}
	var out []uint64
	for s := a; s <= b; s++ {
		out = append(out, s)
	}
	return out
}

// options are the harness's, from a first "gateway" command (or none).
func (c command) options() harnessOptions {
	var opt harnessOptions
	if c.verb != "gateway" {
		return opt
	}
	opt.mode = c.args["mode"]
	if c.args["window"] != "" {
		opt.window = int(c.num("window"))
	}
	opt.cfg = func(cfg *Config) {
		if v := c.args["reorder"]; v != "" {
			cfg.ReorderWindow = c.duration(v)
		}
		if v := c.args["calltimeout"]; v != "" {
			cfg.CallTimeout = c.duration(v)
		}
		if c.args["queue"] != "" {
			cfg.SendQueue = int(c.num("queue"))
		}
	}
	return opt
}

// runCommand executes one command and renders what the gateway did.
func runCommand(h *harness, c command) string {
	c.t.Helper()
	switch c.verb {
	case "gateway": // made the harness
	case "store":
		for _, seq := range c.seqs() {
			h.node.put(c.args["conv"], seq, c.id(seq), c.args["tentative"] != "")
		}
	case "acked":
		h.node.mu.Lock()
		h.node.acked[c.args["conv"]] = c.num("seq")
		h.node.mu.Unlock()
	case "connect":
		h.dial(c.args["as"])
	case "login":
		name := cmp.Or(c.args["as"], c.args["user"])
		h.login(c.args["user"], c.args["device"], name)
	case "push":
		skip := ""
		if c.args["skip"] != "" {
			skip = h.client(c.args["skip"]).session
		}
		for _, seq := range c.seqs() {
			h.push(c.args["conv"], seq, c.id(seq), c.args["tentative"] != "", skip)
			synctest.Wait()
		}
	case "resync":
		h.resync(c.args["conv"], c.num("from"))
	case "typing":
		for range max(1, int(c.num("n"))) {
			h.typing(c.args["conv"], c.args["user"])
			synctest.Wait()
		}
	case "tick":
		time.Sleep(c.duration(c.word))
	case "node":
		switch c.word {
		case "up", "down", "hang", "broken":
			h.node.setState(c.word)
		default:
			c.fail("node up, down, hang or broken, not %q", c.word)
		}
	case "stop-reading", "read":
		h.client(c.args["client"]).mem.pause(c.verb == "stop-reading")
	case "catchup":
		h.g.catchUpAll()
	case "metrics":
		out := h.settle()
		return strings.Join(append(out, h.metrics()), "\n")
	default:
		c.fail("unknown command %q", c.verb)
	}
	out := h.settle()
	if len(out) == 0 {
		return "(nothing)"
	}
	return strings.Join(out, "\n")
}

// id is the message id of seq: id= when given, else m<seq>.
func (c command) id(seq uint64) string {
	if c.args["id"] != "" {
		return c.args["id"]
	}
	return fmt.Sprintf("m%d", seq)
}
