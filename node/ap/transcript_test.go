package ap

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"mpim/fsm"
	"mpim/node/store"
)

var update = flag.Bool("update", false, "rewrite testdata transcripts with the actual output")

// TestTranscripts runs every testdata/*.txt transcript of the AP receive
// path, in the format of fsm/testdata (etcd-io/raft's datadriven style): a
// block is one command, a line "----" and the expected output; blocks are
// separated by blank lines and '#' lines are comments. Every transcript
// watches one replica, n1, of a three-node cluster (n1, n2, n3): the test
// writes entries on n2 and n3 and decides when n1 hears of them, and the
// output is what n1 applies, in which order, to a real state machine.
//
//	open [repair=off] [wall=MS]       n1 starts; its wall clock reads MS
//	write node=n2|n3 at=MS [c=N] [deps=n3:1,...] (send=CONV from=NAME text=T | group=NAME creator=NAME [members=A,B])
//	                                  the node logs its next entry; nobody hears of it yet
//	deliver n2/1 n2/3 ...             n1 receives those entries live (Redis), as one batch
//	pull from=n2                      one anti-entropy exchange of n1 with n2
//	submit send=CONV from=NAME text=T a local write on n1
//	heartbeat node=n2 at=MS oseq=N    n2's heartbeat: its clock and how far its log goes
//	tick ms=N                         n1's wall clock moves on
//	messages conv=CONV                n1's copy of a conversation, tentative marked
//	state                             n1's vector, pending entries, stable clock, counters
//
// Run `go test ./node/ap/ -run TestTranscripts -update` to rewrite the
// expected output after a deliberate change, and review the diff.
func TestTranscripts(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no transcripts under testdata (%v)", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) { runTranscript(t, f) })
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
	state := 0 // 0: before a command, 1: expecting ----, 2: in the output
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
	h := &transcript{t: t, path: path, entries: map[string]Entry{}}
	defer h.close()
	var rewritten strings.Builder
	for _, b := range parseTranscript(t, path) {
		h.line = b.line
		got := h.run(b.cmd)
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

// The cluster every transcript starts from: three users, and a group
// holding them, already in n1's state (set up before the transcript, not
// replicated).
var transcriptUsers = map[string]uint64{"alice": 1, "bob": 2, "carol": 3}

const transcriptGroup = "lab"

// transcript drives one replicator, n1, with a stepped wall clock, peers
// the test writes for, and a real state machine on an in-memory store as
// its applier.
type transcript struct {
	t    *testing.T
	path string
	line int

	wall  steppedClock
	r     *Replicator
	peers *fakePeers
	m     *fsm.Machine
	st    *store.Mem
	index uint64 // the state's applied index (one per applied batch)

	// entries names every entry written so far, "n2/3" -> entry.
	entries map[string]Entry

	mu  sync.Mutex // guards out: local writes are applied on the writer goroutine
	out []string
}

func (h *transcript) fatalf(format string, args ...any) {
	h.t.Helper()
	h.t.Fatalf("%s:%d: %s", h.path, h.line, fmt.Sprintf(format, args...))
}

func (h *transcript) close() {
	if h.r != nil {
		if err := h.r.Close(); err != nil {
			h.t.Errorf("close the replicator: %v", err)
		}
	}
}

// run executes one command and renders what n1 did.
func (h *transcript) run(cmd string) string {
	h.t.Helper()
	fields := strings.Fields(cmd)
	verb, rest := fields[0], fields[1:]
	if verb == "deliver" {
		return h.deliver(rest)
	}
	args := map[string]string{}
	for _, f := range rest {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			h.fatalf("argument %q is not key=value", f)
		}
		args[k] = v
	}
	if verb != "open" && h.r == nil {
		h.fatalf("%s before open", verb)
	}
	switch verb {
	case "open":
		return h.open(args)
	case "write":
		return h.write(args)
	case "pull":
		return h.pull(args["from"])
	case "submit":
		return h.submit(args)
	case "heartbeat":
		h.r.observe(args["node"], at(h.num(args, "at"), 0), uint64(h.num(args, "oseq")))
		return "stable " + hlc(h.r.Stable())
	case "tick":
		h.wall.ms += h.num(args, "ms")
		return fmt.Sprintf("wall clock %d ms", h.wall.ms)
	case "messages":
		return h.messages(args["conv"])
	case "state":
		return h.state()
	}
	h.fatalf("unknown command %q", verb)
	return ""
}

func (h *transcript) num(args map[string]string, k string) int64 {
	h.t.Helper()
	n, err := strconv.ParseInt(args[k], 10, 64)
	if err != nil {
		h.fatalf("%s=%q is not a number", k, args[k])
	}
	return n
}

func (h *transcript) uid(name string) uint64 {
	h.t.Helper()
	uid, ok := transcriptUsers[name]
	if !ok {
		h.fatalf("no user %q (the transcripts have alice, bob and carol)", name)
	}
	return uid
}

func (h *transcript) open(args map[string]string) string {
	if h.r != nil {
		h.fatalf("open twice")
	}
	h.wall.ms = 10000
	if args["wall"] != "" {
		h.wall.ms = h.num(args, "wall")
	}
	var err error
	if h.m, err = fsm.New(fsm.DefaultConfig()); err != nil {
		h.t.Fatal(err)
	}
	h.st = store.NewMem()
	var cmds []fsm.Command
	for _, name := range slices.Sorted(maps.Keys(transcriptUsers)) {
		cmds = append(cmds, fsm.Command{Register: &fsm.Register{Name: name, PwHash: []byte("pw"), UID: transcriptUsers[name]}})
	}
	cmds = append(cmds, fsm.Command{GroupCreate: &fsm.GroupCreate{Group: transcriptGroup, Creator: 1, Members: []uint64{2, 3}}})
	h.applyState(cmds)

	cfg := DefaultConfig()
	cfg.ID, cfg.Nodes, cfg.Dir = "n1", []string{"n1", "n2", "n3"}, h.t.TempDir()
	cfg.Repair = args["repair"] != "off"
	cfg.AntiEntropy = time.Hour // rounds run only when the transcript says pull
	cfg.Now = h.wall.now
	cfg.Logger = slog.New(slog.DiscardHandler)
	h.peers = &fakePeers{logs: map[string][]Entry{}}
	if h.r, err = Open(cfg, nil, h.apply, h.peers); err != nil {
		h.t.Fatal(err)
	}
	repair := "on (causal order, anti-entropy)"
	if !cfg.Repair {
		repair = "off (entries applied as they come)"
	}
	return fmt.Sprintf("n1 of [n1 n2 n3], repair %s, wall clock %d ms\nusers alice=1 bob=2 carol=3; group g:%s [1 2 3]",
		repair, h.wall.ms, transcriptGroup)
}

// command builds the command of a write or submit from its arguments.
func (h *transcript) command(args map[string]string) (fsm.Command, string) {
	h.t.Helper()
	switch {
	case args["send"] != "":
		from := args["from"]
		s := &fsm.Send{Conv: args["send"], FromUID: h.uid(from), From: from, Text: args["text"]}
		return fsm.Command{Send: s}, fmt.Sprintf("send %s %s: %s", s.Conv, from, s.Text)
	case args["group"] != "":
		g := &fsm.GroupCreate{Group: args["group"], Creator: h.uid(args["creator"])}
		for _, m := range strings.FieldsFunc(args["members"], func(r rune) bool { return r == ',' }) {
			g.Members = append(g.Members, h.uid(m))
		}
		return fsm.Command{GroupCreate: g}, fmt.Sprintf("group g:%s by %s", g.Group, args["creator"])
	}
	h.fatalf("write and submit need send=CONV or group=NAME")
	return fsm.Command{}, ""
}

// write logs the next entry of node n2 or n3, stamped as its origin
// stamps it (Replicator.stamp), and tells nobody.
func (h *transcript) write(args map[string]string) string {
	node := args["node"]
	if node != "n2" && node != "n3" {
		h.fatalf("write node=%q: the transcripts write on n2 and n3", node)
	}
	cmd, what := h.command(args)
	var c uint64
	if args["c"] != "" {
		c = uint64(h.num(args, "c"))
	}
	e := Entry{Origin: node, HLC: at(h.num(args, "at"), c), Cmd: cmd, Deps: map[string]uint64{}}
	for _, d := range strings.FieldsFunc(args["deps"], func(r rune) bool { return r == ',' }) {
		o, n, _ := strings.Cut(d, ":")
		seq, err := strconv.ParseUint(n, 10, 64)
		if err != nil {
			h.fatalf("deps=%q: want origin:oseq,...", args["deps"])
		}
		e.Deps[o] = seq
	}
	h.peers.mu.Lock()
	e.OSeq = uint64(len(h.peers.logs[node])) + 1
	if e.Cmd.Send != nil {
		e.Cmd.Send.ID = fmt.Sprintf("%s-%d", node, e.OSeq)
		e.Cmd.Send.Cmid = e.Cmd.Send.ID
		e.Cmd.Send.Origin = node
	}
	(&Replicator{}).stamp(&e)
	h.peers.logs[node] = append(h.peers.logs[node], e)
	h.peers.mu.Unlock()
	h.entries[name(e)] = e
	return fmt.Sprintf("%s hlc=%s deps=%s %s", name(e), hlc(e.HLC), deps(e.Deps), what)
}

// deliver hands n1 the named entries as one batch read from Redis.
func (h *transcript) deliver(names []string) string {
	var batch []Entry
	for _, n := range names {
		e, ok := h.entries[n]
		if !ok {
			h.fatalf("deliver %s: no such entry (write it first)", n)
		}
		batch = append(batch, wire(h.t, e))
	}
	h.r.receiveNow(h.t, batch, false)
	return h.took()
}

// pull runs one anti-entropy exchange with a peer and shows the calls it
// made.
func (h *transcript) pull(peer string) string {
	if !h.r.cfg.Repair {
		return "no anti-entropy: with repair off a node starts no rounds"
	}
	h.r.syncWith(peer)
	h.r.flush()
	h.peers.mu.Lock()
	calls := h.peers.calls
	h.peers.calls = nil
	h.peers.mu.Unlock()
	return strings.Join(append(calls, h.took()), "\n")
}

func (h *transcript) submit(args map[string]string) string {
	cmd, _ := h.command(args)
	if cmd.Send != nil {
		cmd.Send.ID = fmt.Sprintf("n1-%s", args["text"])
		cmd.Send.Cmid = cmd.Send.ID
		cmd.Send.Origin = "n1"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := h.r.Submit(ctx, cmd); err != nil {
		return "error: " + err.Error()
	}
	return h.took()
}

// took renders what the replicator applied since the last command, then
// n1's vector and pending entries.
func (h *transcript) took() string {
	h.mu.Lock()
	out := h.out
	h.out = nil
	h.mu.Unlock()
	if len(out) == 0 {
		out = []string{"nothing applied"}
	}
	h.r.mu.Lock()
	vec := fmt.Sprintf("vector n1=%d n2=%d n3=%d", h.r.vec["n1"], h.r.vec["n2"], h.r.vec["n3"])
	var pending []string
	for origin, p := range h.r.pending {
		for oseq := range p {
			pending = append(pending, fmt.Sprintf("%s/%d", origin, oseq))
		}
	}
	h.r.mu.Unlock()
	slices.Sort(pending)
	if len(pending) == 0 {
		pending = []string{"none"}
	}
	return strings.Join(append(out, vec+"; pending "+strings.Join(pending, " ")), "\n")
}

// apply is n1's Applier: one batch, one transaction at the next index, as
// node.applyEntries does on one shard. It records what it applied, and
// the state machine's answer for each entry.
func (h *transcript) apply(entries []Entry, arrival Arrival) []fsm.Result {
	late := arrival == Late
	cmds := make([]fsm.Command, len(entries))
	names := make([]string, len(entries))
	for i, e := range entries {
		cmds[i], names[i] = e.Cmd, name(e)
	}
	results := h.applyState(cmds)
	how := "live"
	if late {
		how = "late (pushed on every gateway stream)"
	}
	lines := []string{fmt.Sprintf("apply %s: %s", how, strings.Join(names, " "))}
	for i, e := range entries {
		lines = append(lines, "  "+names[i]+" "+renderResult(e, results[i]))
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, e := range entries {
		if e.Origin == "n1" {
			h.entries[name(e)] = e
			h.out = append(h.out, fmt.Sprintf("logged %s hlc=%s deps=%s", name(e), hlc(e.HLC), deps(e.Deps)))
		}
	}
	h.out = append(h.out, lines...)
	return results
}

func (h *transcript) applyState(cmds []fsm.Command) []fsm.Result {
	h.index++
	var results []fsm.Result
	if err := h.st.Update(func(tx fsm.Tx) error {
		var err error
		results, err = h.m.Apply(tx, h.index, cmds)
		return err
	}); err != nil {
		h.t.Fatalf("state machine storage error: %v", err)
	}
	return results
}

func renderResult(e Entry, r fsm.Result) string {
	switch {
	case r.Err != nil:
		return "-> refused: " + r.Err.Error()
	case e.Cmd.GroupCreate != nil:
		return fmt.Sprintf("-> %s members %v", r.Conv, r.Members)
	case r.Dup:
		return fmt.Sprintf("-> %s seq=%d dup", r.Conv, r.Seq)
	case r.Reordered > 0:
		return fmt.Sprintf("-> %s seq=%d, sorts before messages already placed: resync from seq %d", r.Conv, r.Seq, r.Reordered)
	}
	return fmt.Sprintf("-> %s seq=%d", r.Conv, r.Seq)
}

// messages lists n1's copy of a conversation in seq order; a message is
// tentative while its clock is above the stable clock.
func (h *transcript) messages(conv string) string {
	stable := h.r.Stable()
	var msgs []fsm.Message
	h.st.View(func(tx fsm.Tx) error { msgs, _ = fsm.Messages(tx, conv, 0, 0, 1000); return nil })
	out := []string{"stable " + hlc(stable)}
	for _, m := range msgs {
		line := fmt.Sprintf("seq=%d %s/%d hlc=%s %s: %s", m.Seq, m.Origin, m.OSeq, hlc(HLCOf(m.Order)), m.From, m.Text)
		if HLCOf(m.Order) > stable {
			line += " (tentative)"
		}
		out = append(out, line)
	}
	return strings.Join(out, "\n")
}

func (h *transcript) state() string {
	st := h.r.Stats()
	h.r.mu.Lock()
	water := fmt.Sprintf("heard n2 up to %s, n3 up to %s", hlc(h.r.water["n2"]), hlc(h.r.water["n3"]))
	h.r.mu.Unlock()
	lines := strings.Split(h.took(), "\n")
	return strings.Join([]string{lines[len(lines)-1], fmt.Sprintf("stable %s (%s)", hlc(h.r.Stable()), water),
		fmt.Sprintf("counters: pulled %d, applied %d, pending %d", st.Pulled, st.Applied, st.Pending)}, "\n")
}

func name(e Entry) string { return fmt.Sprintf("%s/%d", e.Origin, e.OSeq) }

func deps(d map[string]uint64) string {
	var parts []string
	for _, o := range slices.Sorted(maps.Keys(d)) {
		if d[o] > 0 {
			parts = append(parts, fmt.Sprintf("%s:%d", o, d[o]))
		}
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// wire is e as another node receives it: encoded and decoded, sharing
// nothing with the sender's copy.
func wire(t *testing.T, e Entry) Entry {
	t.Helper()
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	var out Entry
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// fakePeers are n2 and n3 as anti-entropy sees them: each holds its own
// log, and answers State and Pull from it. Calls are recorded.
type fakePeers struct {
	mu    sync.Mutex
	logs  map[string][]Entry
	calls []string
}

func (p *fakePeers) State(_ context.Context, node string, mine Vector) (Vector, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	log := p.logs[node]
	v := Vector{Node: node, Vector: map[string]uint64{node: uint64(len(log))}}
	if len(log) > 0 {
		v.HLC = log[len(log)-1].HLC
	}
	p.calls = append(p.calls, fmt.Sprintf("state: n1 has %s=%d, %s has %s=%d", node, mine.Vector[node], node, node, len(log)))
	return v, nil
}

func (p *fakePeers) Pull(_ context.Context, node, origin string, after uint64, limit int) ([][]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out [][]byte
	var names []string
	if origin == node {
		for _, e := range p.logs[node] {
			if e.OSeq > after && len(out) < limit {
				b, err := EncodeEntry(e)
				if err != nil {
					return nil, err
				}
				out = append(out, b)
				names = append(names, name(e))
			}
		}
	}
	p.calls = append(p.calls, fmt.Sprintf("pull from %s: %s after %d -> %s", node, origin, after, strings.Join(names, " ")))
	return out, nil
}
