package cp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"mpim/fsm"
	"mpim/internal/convid"
	"mpim/node/store"
)

// TestOverlay: the speculative state of ack-before-commit reads as if its
// writes had been made to the base — Get, and Scan in every direction and
// range — while the base stays untouched. Checked against the same writes
// made to a real store, over random writes.
func TestOverlay(t *testing.T) {
	buckets := fsm.Buckets[:2]
	key := func(i int) []byte { return fmt.Appendf(nil, "k%02d", i) }
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 50 {
		base, want := store.NewMem(), store.NewMem()
		seed := func(tx fsm.Tx) error {
			for _, b := range buckets {
				for i := 0; i < 20; i += 1 + rng.IntN(3) {
					tx.Put(b, key(i), fmt.Appendf(nil, "base-%d", i))
				}
			}
			return nil
		}
		base.Update(seed)
		var baseBefore string
		base.View(func(tx fsm.Tx) error { baseBefore = dump(tx, buckets); return nil })
		want.Update(func(tx fsm.Tx) error { return copyInto(base, tx, buckets) })

		over := newOverlay()
		base.View(func(tx fsm.Tx) error {
			over.base = tx
			return want.Update(func(ref fsm.Tx) error {
				for range 30 {
					b, k := buckets[rng.IntN(len(buckets))], key(rng.IntN(30))
					if rng.IntN(3) == 0 {
						over.Delete(b, k)
						ref.Delete(b, k)
						continue
					}
					v := fmt.Appendf(nil, "over-%d", rng.IntN(100))
					over.Put(b, k, v)
					ref.Put(b, k, v)
					v[0] = 'X' // the overlay keeps its own copy
				}
				return nil
			})
		})
		base.View(func(tx fsm.Tx) error {
			over.base = tx
			return want.View(func(ref fsm.Tx) error {
				got, w := strings.Split(dump(over, buckets), "\n"), strings.Split(dump(ref, buckets), "\n")
				for i := range w {
					if got[i] != w[i] {
						t.Fatalf("round %d: the overlay reads\n%s\nwant, as if written to the base,\n%s", round, got[i], w[i])
					}
				}
				if got := dump(tx, buckets); got != baseBefore {
					t.Fatalf("round %d: writes to the overlay changed the base", round)
				}
				return nil
			})
		})
	}
}

// dump renders everything a reader can see of tx: each key's Get, and
// scans forward and backward, bounded and not, stopped early and not.
func dump(tx fsm.Tx, buckets []string) string {
	var out []byte
	for _, b := range buckets {
		for i := range 30 {
			k := fmt.Appendf(nil, "k%02d", i)
			out = fmt.Appendf(out, "%s/%s=%q ", b, k, tx.Get(b, k))
		}
		out = append(out, '\n')
		for _, r := range []struct {
			from, to string
			nilTo    bool
		}{{"", "", true}, {"k05", "k15", false}, {"k07", "k07", false}, {"k10", "", true}, {"k00", "k99", false}} {
			var to []byte
			if !r.nilTo {
				to = []byte(r.to)
			}
			for _, reverse := range []bool{false, true} {
				for _, stop := range []int{-1, 3} {
					n := 0
					out = fmt.Appendf(out, "scan %s [%s,%s) reverse=%v stop=%d:", b, r.from, r.to, reverse, stop)
					tx.Scan(b, []byte(r.from), to, reverse, func(k, v []byte) bool {
						out = fmt.Appendf(out, " %s=%s", k, v)
						n++
						return n != stop
					})
					out = append(out, '\n')
				}
			}
		}
	}
	return string(out)
}

func copyInto(from *store.Mem, to fsm.Tx, buckets []string) error {
	return from.View(func(tx fsm.Tx) error {
		for _, b := range buckets {
			tx.Scan(b, nil, nil, false, func(k, v []byte) bool { to.Put(b, k, v); return true })
		}
		return nil
	})
}

// openOne opens a one-voter shard (it commits alone) with the unsafe
// switch on or off, and waits until it leads.
func openOne(t *testing.T, ackBeforeCommit bool) *Shard {
	t.Helper()
	m, err := Listen("127.0.0.1:0", slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	cfg := DefaultConfig()
	cfg.ID, cfg.Dir, cfg.Voters = "n1", t.TempDir(), []string{"n1"}
	cfg.AckBeforeCommit = ackBeforeCommit
	// Several entries in flight, so that sends go on while the state
	// machine's applies are held (with one, the next entry waits for the
	// held one to finish).
	cfg.MaxInflight = 8
	cfg.Logger = slog.New(slog.DiscardHandler)
	s, err := Open(cfg, m, addrBook{"n1": raft.ServerAddress(m.Addr().String())}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	waitLeader(t, s)
	return s
}

// maxSeq is what this replica's state holds of conv.
func maxSeq(s *Shard, conv string) (n uint64) {
	s.View(func(tx fsm.Tx) error { n = fsm.MaxSeq(tx, conv); return nil })
	return n
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after 20 s: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestAckBeforeCommit: with the unsafe switch the leader answers a send
// while its entry is not even applied on the leader — the answer rests on
// no quorum, which is why a leader cut off at that moment loses
// acknowledged messages (Raft paper §5.3: a leader answers once the entry
// is committed). Its answers are still the ones the state machine will
// give: consecutive sends get consecutive seqs, a retry its first seq.
// The safe shard, in the same situation, gives no answer.
func TestAckBeforeCommit(t *testing.T) {
	conv := convid.DMKey(1, 2)
	send := func(cmid string) fsm.Command {
		return fsm.Command{Send: &fsm.Send{Conv: conv, FromUID: 1, From: "alice", To: 2, Text: cmid, Cmid: cmid, ID: "m-" + cmid}}
	}
	setup := func(t *testing.T, s *Shard) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		for _, name := range []string{"alice", "bob"} {
			if _, err := s.Propose(ctx, fsm.Command{Register: &fsm.Register{Name: name, PwHash: []byte("h")}}); err != nil {
				t.Fatal(err)
			}
		}
		waitFor(t, "the users applied", func() bool {
			var ok bool
			s.View(func(tx fsm.Tx) error { _, ok = fsm.UserByName(tx, "bob"); return nil })
			return ok
		})
	}

	t.Run("unsafe", func(t *testing.T) {
		s := openOne(t, true)
		setup(t, s)
		s.Hold(true) // the state machine applies nothing from now on
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		for _, tc := range []struct {
			cmid string
			seq  uint64
			dup  bool
		}{{"c1", 1, false}, {"c2", 2, false}, {"c1", 1, true}, {"c3", 3, false}} {
			r, err := s.Propose(ctx, send(tc.cmid))
			if err != nil || r.Err != nil || r.Seq != tc.seq || r.Dup != tc.dup {
				t.Fatalf("send %s while applies are held: seq %d dup %v (%v %v); want an answer at once, seq %d dup %v",
					tc.cmid, r.Seq, r.Dup, err, r.Err, tc.seq, tc.dup)
			}
		}
		if n := maxSeq(s, conv); n != 0 {
			t.Fatalf("the state holds %d messages while applies are held", n)
		}
		s.Hold(false)
		waitFor(t, "the acknowledged sends applied", func() bool { return maxSeq(s, conv) == 3 })
		var ids []string
		s.View(func(tx fsm.Tx) error {
			msgs, _ := fsm.Messages(tx, conv, 0, 0, 10)
			for _, m := range msgs {
				ids = append(ids, fmt.Sprintf("%d:%s", m.Seq, m.ID))
			}
			return nil
		})
		if fmt.Sprint(ids) != "[1:m-c1 2:m-c2 3:m-c3]" {
			t.Fatalf("the state holds %v, want what the early answers said: [1:m-c1 2:m-c2 3:m-c3]", ids)
		}
		// Nothing pending any more: a fresh overlay on the applied state.
		r, err := s.Propose(ctx, send("c4"))
		if err != nil || r.Seq != 4 {
			t.Fatalf("send after the applies: seq %d (%v), want 4", r.Seq, err)
		}
	})

	t.Run("safe", func(t *testing.T) {
		s := openOne(t, false)
		setup(t, s)
		s.Hold(true)
		defer s.Hold(false)
		// A bound, not a timing claim: the answer must not come while the
		// entry is unapplied, however long that takes.
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		r, err := s.Propose(ctx, send("c1"))
		if !errors.Is(err, ErrUnknown) {
			t.Fatalf("the safe leader answered %+v, %v while its entry was unapplied; want no answer (ErrUnknown at the deadline)", r, err)
		}
	})
}
