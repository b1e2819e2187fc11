package cp

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"mpim/fsm"
	"mpim/internal/convid"
)

// openSingle opens a one-voter shard in dir on a fresh mux.
func openSingle(t *testing.T, dir string, snapshotEvery uint64, onApply func([]fsm.Result)) *Shard {
	t.Helper()
	m, err := Listen("127.0.0.1:0", slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	cfg := DefaultConfig()
	cfg.ID, cfg.Dir, cfg.Voters = "n1", dir, []string{"n1"}
	cfg.SnapshotThreshold, cfg.TrailingLogs, cfg.SnapshotInterval = snapshotEvery, 4, 50*time.Millisecond
	cfg.Logger = slog.New(slog.DiscardHandler)
	s, err := Open(cfg, m, addrBook{"n1": raft.ServerAddress(m.Addr().String())}, onApply)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func waitLeader(t *testing.T, s *Shard) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !s.IsLeader() {
		if time.Now().After(deadline) {
			t.Fatal("no leader within 10 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRestartReplaysLog: the state is in memory, so a restarted replica
// rebuilds it from its last snapshot and the log after it up to its
// applied floor. A view right after the restart, before any leader is
// known, must already see every acknowledged message; Raft applying those
// entries again must not hand old results to the apply hook; the replica's
// own snapshot is not counted as an installed one; and a retried send
// from before the restart is still recognised.
func TestRestartReplaysLog(t *testing.T) {
	dir := t.TempDir()
	s := openSingle(t, dir, 16, nil)
	waitLeader(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, name := range []string{"alice", "bob"} {
		if _, err := s.Propose(ctx, fsm.Command{Register: &fsm.Register{Name: name, PwHash: []byte("h"), Created: 1}}); err != nil {
			t.Fatal(err)
		}
	}
	conv := convid.DMKey(1, 2)
	const sends = 60
	for i := range sends {
		r, err := s.Propose(ctx, fsm.Command{Send: &fsm.Send{Conv: conv, FromUID: 1, From: "alice", To: 2, Text: "hi",
			Cmid: fmt.Sprint(i), ID: fmt.Sprint("m", i), Ts: int64(i)}})
		if err != nil || r.Err != nil {
			t.Fatalf("send %d: %v %v", i, err, r.Err)
		}
		if i == sends/2 {
			if err := s.Snapshot(); err != nil {
				t.Fatalf("snapshot: %v", err)
			}
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	var hooked atomic.Int64
	s = openSingle(t, dir, 16, func(rs []fsm.Result) { hooked.Add(int64(len(rs))) })
	defer s.Close()
	var got uint64
	if err := s.View(func(tx fsm.Tx) error { got = fsm.MaxSeq(tx, conv); return nil }); err != nil {
		t.Fatal(err)
	}
	if got != sends {
		t.Fatalf("a view right after the restart saw %d messages, want %d", got, sends)
	}
	waitLeader(t, s)
	if err := s.r.Barrier(5 * time.Second).Error(); err != nil { // Raft has applied its log again
		t.Fatal(err)
	}
	if n := hooked.Load(); n != 0 {
		t.Fatalf("applying the log again handed %d old results to the apply hook", n)
	}
	if n := s.Status().Restores; n != 0 {
		t.Fatalf("the replica's own snapshot counted as %d installed snapshots", n)
	}
	r, err := s.Propose(ctx, fsm.Command{Send: &fsm.Send{Conv: conv, FromUID: 2, From: "bob", To: 1, Text: "back",
		Cmid: "after", ID: "m-after", Ts: 99}})
	if err != nil || r.Err != nil || r.Seq != sends+1 {
		t.Fatalf("send after the restart: seq %d, %v %v; want seq %d", r.Seq, err, r.Err, sends+1)
	}
	if hooked.Load() != 1 {
		t.Fatalf("the apply hook saw %d results after the restart, want the one new send", hooked.Load())
	}
	// A retry of a send from before the restart is still recognised.
	r, err = s.Propose(ctx, fsm.Command{Send: &fsm.Send{Conv: conv, FromUID: 1, From: "alice", To: 2, Text: "hi",
		Cmid: "3", ID: "m-retry", Ts: 100}})
	if err != nil || !r.Dup || r.Seq != 4 {
		t.Fatalf("retry of cmid 3 after the restart: %+v %v; want the original seq 4, dup", r, err)
	}
}
