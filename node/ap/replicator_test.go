package ap

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"mpim/fsm"
)

// TestMain checks that a closed replicator leaves no goroutine behind.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recorder is an Applier that remembers every batch it was handed. With
// hold set, it blocks in its first batch until hold is closed, after
// saying so on entered.
type recorder struct {
	mu      sync.Mutex
	batches [][]Entry
	late    []bool
	// arrivals are the batches' arrivals, Live excepted (Late, Replay).
	arrivals []Arrival
	hold     chan struct{}
	entered  chan struct{}
	once     sync.Once
}

func (a *recorder) apply(entries []Entry, how Arrival) []fsm.Result {
	late := how == Late
	if a.hold != nil {
		first := false
		a.once.Do(func() { first = true })
		if first {
			a.entered <- struct{}{}
			<-a.hold
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.batches = append(a.batches, slices.Clone(entries))
	a.late = append(a.late, late)
	if how != Live {
		a.arrivals = append(a.arrivals, how)
	}
	out := make([]fsm.Result, len(entries))
	for i, e := range entries {
		out[i] = fsm.Result{ID: name(e)}
	}
	return out
}

// applied is every entry applied so far, in order.
func (a *recorder) applied() []Entry {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []Entry
	for _, b := range a.batches {
		out = append(out, b...)
	}
	return out
}

// testConfig is a replicator n1 of [n1 n2] in a fresh directory whose
// anti-entropy and heartbeats run only when a test asks.
func testConfig(t *testing.T, id string) Config {
	t.Helper()
	cfg := DefaultConfig()
	cfg.ID, cfg.Nodes, cfg.Dir = id, []string{"n1", "n2"}, t.TempDir()
	cfg.AntiEntropy, cfg.Heartbeat = time.Hour, time.Hour
	cfg.Logger = slog.New(slog.DiscardHandler)
	return cfg
}

func open(t *testing.T, cfg Config, a *recorder, peers Peers) *Replicator {
	t.Helper()
	r, err := Open(cfg, nil, a.apply, peers)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// eventually polls cond until it holds or 20 s have passed.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after 20 s: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestSubmitStamps: the origin decides, once for every replica, what a
// command needs to apply alike everywhere — a message's order key and
// origin sequence, a new user's uid, a group creation that merges, the
// last-writer-wins stamp of membership and profile changes — and logs it
// with its origin position, clock and dependencies.
func TestSubmitStamps(t *testing.T) {
	wall := &steppedClock{ms: 5000}
	cfg := testConfig(t, "n1")
	cfg.Now = wall.now
	a := &recorder{}
	r := open(t, cfg, a, nil)
	// Another node's entry, applied first: the local writes depend on it.
	r.receiveNow(t, []Entry{{Origin: "n2", OSeq: 1, HLC: at(4000, 0), Cmd: fsm.Command{Register: &fsm.Register{Name: "x"}}}}, false)

	stampOf := func(oseq uint64, c uint64) []byte { return OrderKey(at(5000, c), "n1", fmt.Sprint(oseq)) }
	for i, tc := range []struct {
		cmd   fsm.Command
		check func(fsm.Command) error
	}{
		{fsm.Command{Send: &fsm.Send{Conv: "g:lab", ID: "m1"}}, func(c fsm.Command) error {
			if string(c.Send.Order) != string(OrderKey(at(5000, 0), "n1", "m1")) || c.Send.OSeq != 1 {
				return fmt.Errorf("send order %q oseq %d, want the key of 5000.0/n1/m1 and oseq 1", c.Send.Order, c.Send.OSeq)
			}
			return nil
		}},
		{fsm.Command{Register: &fsm.Register{Name: "amy"}}, func(c fsm.Command) error {
			if c.Register.UID != UID(1, 2) {
				return fmt.Errorf("register uid %#x, want UID(n1, 2)", c.Register.UID)
			}
			return nil
		}},
		{fsm.Command{GroupCreate: &fsm.GroupCreate{Group: "lab"}}, func(c fsm.Command) error {
			if !c.GroupCreate.Merge {
				return errors.New("group create without merge: a name made on two sides would be refused on one")
			}
			return nil
		}},
		{fsm.Command{GroupJoin: &fsm.GroupMember{Group: "lab", UID: 9}}, func(c fsm.Command) error {
			if string(c.GroupJoin.Stamp) != string(stampOf(4, 3)) {
				return fmt.Errorf("join stamp %q, want the key of 5000.3/n1/4", c.GroupJoin.Stamp)
			}
			return nil
		}},
		{fsm.Command{GroupLeave: &fsm.GroupMember{Group: "lab", UID: 9}}, func(c fsm.Command) error {
			if string(c.GroupLeave.Stamp) != string(stampOf(5, 4)) {
				return fmt.Errorf("leave stamp %q, want the key of 5000.4/n1/5", c.GroupLeave.Stamp)
			}
			return nil
		}},
		{fsm.Command{UserUpdate: &fsm.UserUpdate{UID: 9, Nickname: "z"}}, func(c fsm.Command) error {
			if string(c.UserUpdate.Stamp) != string(stampOf(6, 5)) {
				return fmt.Errorf("user update stamp %q, want the key of 5000.5/n1/6", c.UserUpdate.Stamp)
			}
			return nil
		}},
	} {
		if _, err := r.Submit(testCtx(t), tc.cmd); err != nil {
			t.Fatalf("submit %d: %v", i, err)
		}
		got := a.applied()
		e := got[len(got)-1]
		if e.Origin != "n1" || e.OSeq != uint64(i+1) || e.HLC != at(5000, uint64(i)) || e.Deps["n2"] != 1 {
			t.Fatalf("write %d applied as %s hlc %s deps %v; want n1/%d at 5000.%d depending on n2/1", i, name(e), hlc(e.HLC), e.Deps, i+1, i)
		}
		if err := tc.check(e.Cmd); err != nil {
			t.Errorf("write %d: %v", i, err)
		}
		logged, err := r.log.read("n1", uint64(i), 1, 1<<20)
		if err != nil || len(logged) != 1 || jsonOf(t, logged[0]) != jsonOf(t, e) {
			t.Errorf("write %d: the log holds %v (%v), want the stamped entry that was applied", i, logged, err)
		}
	}
	if got := r.State().Vector["n1"]; got != 6 {
		t.Fatalf("vector n1=%d after 6 local writes", got)
	}
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestSubmitGroupCommit: writes that arrive while a batch is being
// applied are logged and applied together, as one batch, in arrival
// order, each answered with its own result.
func TestSubmitGroupCommit(t *testing.T) {
	cfg := testConfig(t, "n1")
	cfg.MaxBatch = 4
	a := &recorder{hold: make(chan struct{}), entered: make(chan struct{})}
	r := open(t, cfg, a, nil)
	send := func(id string) fsm.Command { return fsm.Command{Send: &fsm.Send{Conv: "g:lab", ID: id}} }

	first := make(chan error, 1)
	go func() { _, err := r.Submit(testCtx(t), send("w0")); first <- err }()
	<-a.entered // w0's batch is being applied, and blocked there
	const queued = 6
	results := make(chan string, queued)
	for i := 1; i <= queued; i++ {
		id := fmt.Sprintf("w%d", i)
		go func() {
			res, err := r.Submit(testCtx(t), send(id))
			if err != nil {
				t.Errorf("submit %s: %v", id, err)
			}
			results <- id + "=" + res.ID
		}()
		// One at a time, so that the queue holds them in this order.
		eventually(t, fmt.Sprintf("%d writes queued", i), func() bool { return len(r.submits) == i })
	}
	close(a.hold)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	var answered []string
	for range queued {
		answered = append(answered, <-results)
	}
	slices.Sort(answered)
	if fmt.Sprint(answered) != "[w1=n1/2 w2=n1/3 w3=n1/4 w4=n1/5 w5=n1/6 w6=n1/7]" {
		t.Fatalf("answers %v: each write must get its own entry's result, in arrival order", answered)
	}
	var sizes []int
	var ids []string
	a.mu.Lock()
	for _, b := range a.batches {
		sizes = append(sizes, len(b))
		for _, e := range b {
			ids = append(ids, e.Cmd.Send.ID)
		}
	}
	a.mu.Unlock()
	if fmt.Sprint(sizes) != "[1 4 2]" {
		t.Fatalf("batches of %v, want [1 4 2]: the six queued writes in batches of at most MaxBatch (4)", sizes)
	}
	if fmt.Sprint(ids) != "[w0 w1 w2 w3 w4 w5 w6]" {
		t.Fatalf("applied %v, want the writes in arrival order", ids)
	}
	var last uint64
	for i, e := range a.applied() {
		if e.OSeq != uint64(i+1) || e.HLC <= last {
			t.Fatalf("entry %d is %s at %s after %s: origin sequences must be dense, clocks increasing", i, name(e), hlc(e.HLC), hlc(last))
		}
		last = e.HLC
	}
}

// TestSubmitCheck: a write the pre-check refuses is answered with its
// domain error and never logged — it takes no origin sequence, so no
// replica ever sees a gap or applies what the origin refused.
func TestSubmitCheck(t *testing.T) {
	cfg := testConfig(t, "n1")
	cfg.Check = func(c fsm.Command) error {
		if c.Send != nil && c.Send.Text == "refuse" {
			return fsm.ErrNotMember
		}
		return nil
	}
	a := &recorder{}
	r := open(t, cfg, a, nil)
	for _, text := range []string{"ok", "refuse", "ok"} {
		res, err := r.Submit(testCtx(t), fsm.Command{Send: &fsm.Send{Conv: "g:lab", Text: text}})
		if err != nil {
			t.Fatal(err)
		}
		if refused := errors.Is(res.Err, fsm.ErrNotMember); refused != (text == "refuse") {
			t.Fatalf("write %q answered %v", text, res.Err)
		}
	}
	raw, err := r.Entries("n1", 0, 0)
	if err != nil || len(raw) != 2 {
		t.Fatalf("the log serves %d entries (%v), want the 2 accepted", len(raw), err)
	}
	if got := r.State().Vector["n1"]; got != 2 {
		t.Fatalf("vector n1=%d, want 2: a refused write takes no origin sequence", got)
	}
}

// TestRestartReplays: the state is in memory and the log its durable
// copy: a node that crashed (no Close) reads every entry back into the
// state at restart, in the order it applied them, pushing nothing (they
// were pushed before), keeps its vector, and its clock resumes above them
// even when the wall clock stepped back. A record cut short by the crash
// is cut off.
func TestRestartReplays(t *testing.T) {
	wall := &steppedClock{ms: 7000}
	cfg := testConfig(t, "n1")
	cfg.Now = wall.now
	a := &recorder{}
	r, err := Open(cfg, nil, a.apply, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.receiveNow(t, []Entry{{Origin: "n2", OSeq: 1, HLC: at(6000, 0), Cmd: fsm.Command{Send: &fsm.Send{Conv: "g:lab", ID: "remote"}}}}, false)
	for i := range 3 {
		if _, err := r.Submit(testCtx(t), fsm.Command{Send: &fsm.Send{Conv: "g:lab", ID: fmt.Sprint("m", i)}}); err != nil {
			t.Fatal(err)
		}
	}
	// Crash: stop without Close, and a torn record at the log's end.
	close(r.stop)
	r.wg.Wait()
	<-r.engineDone
	r.log.f.WriteAt([]byte{0, 0, 1, 0, 9, 9}, r.log.size)
	r.log.close()

	wall.ms = 1000 // and the wall clock stepped back meanwhile
	b := &recorder{}
	r = open(t, cfg, b, nil)
	var got []string
	for _, e := range b.applied() {
		got = append(got, name(e))
	}
	if fmt.Sprint(got) != "[n2/1 n1/1 n1/2 n1/3]" || fmt.Sprint(b.arrivals) != "[2]" {
		t.Fatalf("restart applied %v as %v, want [n2/1 n1/1 n1/2 n1/3] in one replay (arrival %d)", got, b.arrivals, Replay)
	}
	if v := r.State().Vector; v["n1"] != 3 || v["n2"] != 1 {
		t.Fatalf("vector %v after the restart, want n1=3 n2=1", v)
	}
	if _, err := r.Submit(testCtx(t), fsm.Command{Send: &fsm.Send{Conv: "g:lab", ID: "after"}}); err != nil {
		t.Fatal(err)
	}
	after := b.applied()
	if e := after[len(after)-1]; e.OSeq != 4 || e.HLC <= at(7000, 2) {
		t.Fatalf("the first write after the restart is %s at %s, want n1/4 above 7000.2 (the replayed entries' clock, not the wall clock)", name(e), hlc(e.HLC))
	}
	if raw, err := r.Entries("n1", 3, 0); err != nil || len(raw) != 1 {
		t.Fatalf("after the torn tail was cut, the log serves %d entries after n1/3 (%v), want the one written since", len(raw), err)
	}
}

// TestEntriesLimit: a pull is served at most PullLimit entries, whatever
// the caller asks.
func TestEntriesLimit(t *testing.T) {
	cfg := testConfig(t, "n1")
	cfg.PullLimit = 3
	r := open(t, cfg, &recorder{}, nil)
	var entries []Entry
	for i := uint64(1); i <= 5; i++ {
		entries = append(entries, Entry{Origin: "n2", OSeq: i, HLC: i})
	}
	appendTo(t, r.log, entries)
	for _, tc := range []struct {
		after uint64
		limit int
		want  int
	}{{0, 0, 3}, {0, 2, 2}, {0, 100, 3}, {3, 100, 2}, {5, 100, 0}} {
		raw, err := r.Entries("n2", tc.after, tc.limit)
		if err != nil || len(raw) != tc.want {
			t.Errorf("Entries(n2, after %d, limit %d) = %d entries (%v), want %d", tc.after, tc.limit, len(raw), err, tc.want)
		}
	}
	if raw, _ := r.Entries("n", 0, 0); len(raw) != 0 {
		t.Errorf("origin n (a prefix of n2) served %d of n2's entries", len(raw))
	}
}

// flush waits until the engine has committed everything handed to it.
func (r *Replicator) flush() {
	done := make(chan struct{})
	r.barrier <- done
	<-done
}

// receiveNow receives entries as if from Redis (pulled: from a pull) and
// waits until the engine has applied what became ready.
func (r *Replicator) receiveNow(t testing.TB, entries []Entry, pulled bool) {
	t.Helper()
	raw := make([][]byte, len(entries))
	for i, e := range entries {
		b, err := EncodeEntry(e)
		if err != nil {
			t.Fatal(err)
		}
		raw[i] = b
	}
	r.receive(entries, raw, pulled)
	r.flush()
}
