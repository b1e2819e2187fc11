package fsm

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
)

// apMsg is a message with its own order key (as a mode without a single
// log makes them): key = ts, origin.
func apMsg(origin string, ts int, oseq uint64) Command {
	order := []byte(fmt.Sprintf("%08d/%s", ts, origin))
	return Command{Send: &Send{Conv: "g:team", FromUID: 1, From: "u1", Text: origin, Cmid: fmt.Sprintf("%s-%d", origin, oseq),
		ID: fmt.Sprintf("%s-%d", origin, oseq), Ts: int64(ts), Origin: origin, Order: order, OSeq: oseq}}
}

// TestOrderConverges: replicas that apply the same keyed messages in any
// order, one by one or in batches, end in the same state, seqs dense and
// in key order — the AP mode's convergence, in the state machine.
func TestOrderConverges(t *testing.T) {
	var msgs []Command
	for i := 1; i <= 40; i++ {
		msgs = append(msgs, apMsg("n1", 10*i, uint64(i)), apMsg("n2", 10*i+5, uint64(i)))
	}
	var ref []byte
	for trial := 0; trial < 6; trial++ {
		h := newHarness(t, DefaultConfig())
		h.users("u1")
		h.ok(mkGroup("team", 1))
		rng := rand.New(rand.NewPCG(uint64(trial), 1))
		order := rng.Perm(len(msgs))
		for i := 0; i < len(order); {
			n := 1 + rng.IntN(7) // batches of 1..7, like anti-entropy pulls
			var cmds []Command
			for ; n > 0 && i < len(order); n-- {
				cmds = append(cmds, msgs[order[i]])
				i++
			}
			if _, err := h.m.Apply(h.kv, 0, cmds); err != nil {
				t.Fatal(err)
			}
		}
		got, _ := Messages(h.kv, "g:team", 0, 0, 1000)
		if len(got) != len(msgs) {
			t.Fatalf("trial %d: %d messages, want %d", trial, len(got), len(msgs))
		}
		for i, m := range got {
			if m.Seq != uint64(i+1) || (i > 0 && bytes.Compare(got[i-1].Order, m.Order) >= 0) {
				t.Fatalf("trial %d: position %d holds seq %d order %s after %s", trial, i+1, m.Seq, m.Order, got[max(i-1, 0)].Order)
			}
		}
		var conv []byte
		for _, m := range got {
			conv = append(conv, m.ID...)
		}
		if trial == 0 {
			ref = conv
		} else if !bytes.Equal(conv, ref) {
			t.Fatalf("trial %d: a different order than trial 0", trial)
		}
		// Replaying any message again changes nothing.
		r := h.ok(msgs[5])
		if !r.Dup {
			t.Fatalf("trial %d: a message applied twice was not recognised", trial)
		}
	}
}

// TestOrderReordered: a message that sorts before ones already there
// reports the first seq that moved.
func TestOrderReordered(t *testing.T) {
	h := newHarness(t, DefaultConfig())
	h.users("u1")
	h.ok(mkGroup("team", 1))
	for _, c := range []Command{apMsg("n1", 10, 1), apMsg("n1", 30, 2), apMsg("n1", 40, 3)} {
		if r := h.ok(c); r.Reordered != 0 {
			t.Fatalf("an append reported a reorder from %d", r.Reordered)
		}
	}
	r := h.ok(apMsg("n2", 20, 1))
	if r.Reordered != 2 || r.Seq != 2 || r.Message.Seq != 2 {
		t.Fatalf("late message sorting second: reordered %d seq %d, want 2 and 2", r.Reordered, r.Seq)
	}
	got, _ := Messages(h.kv, "g:team", 0, 0, 10)
	want := "n1-1 n2-1 n1-2 n1-3"
	var ids []string
	for _, m := range got {
		ids = append(ids, m.ID)
	}
	if fmt.Sprint(ids) != "["+want+"]" {
		t.Fatalf("order %v, want [%s]", ids, want)
	}
	if m, ok := MessageByID(h.kv, "n1-3"); !ok || m.Seq != 4 {
		t.Fatalf("MessageByID after renumbering: %+v %v, want seq 4", m, ok)
	}
	rec, ok := MessageRecordByID(h.kv, "n1-3")
	if m, decoded := rec.Decode(); !ok || !decoded || m.Seq != 4 || m.ID != "n1-3" {
		t.Fatalf("MessageRecordByID after renumbering: %+v %v %v, want n1-3 at seq 4", m, ok, decoded)
	}
	if rec, ok := MessageRecordByID(h.kv, "n9-9"); ok {
		t.Fatal("MessageRecordByID found a message never sent")
	} else if _, decoded := rec.Decode(); decoded {
		t.Fatal("the record of a message never sent decodes")
	}
}

// TestDedupConflictConverges: one (sender, conv, cmid) accepted as two
// messages by two nodes (a retry through another node during a partition)
// ends as one message — the smaller order key — on every replica.
func TestDedupConflictConverges(t *testing.T) {
	a := apMsg("n1", 50, 1)
	b := apMsg("n2", 40, 1)
	b.Send.Cmid = a.Send.Cmid // the same retried send
	other := apMsg("n1", 30, 2)
	later := apMsg("n1", 60, 3)
	var snaps [][]byte
	for _, order := range [][]Command{{other, a, later, b}, {b, later, other, a}} {
		h := newHarness(t, DefaultConfig())
		h.users("u1")
		h.ok(mkGroup("team", 1))
		for _, c := range order {
			if _, err := h.m.Apply(h.kv, 0, []Command{c}); err != nil {
				t.Fatal(err)
			}
		}
		got, _ := Messages(h.kv, "g:team", 0, 0, 10)
		var ids []string
		for i, m := range got {
			ids = append(ids, m.ID)
			if m.Seq != uint64(i+1) {
				t.Fatalf("seqs not dense after the conflict: %v", got)
			}
		}
		if fmt.Sprint(ids) != "[n1-2 n2-1 n1-3]" {
			t.Fatalf("messages %v, want [n1-2 n2-1 n1-3] (n2-1 wins the cmid)", ids)
		}
		if _, ok := MessageByID(h.kv, "n1-1"); ok {
			t.Fatal("the losing copy is still found by id")
		}
		snaps = append(snaps, h.snapshot())
	}
	if !bytes.Equal(snaps[0], snaps[1]) {
		t.Fatal("replicas that applied the conflicting copies in different orders differ")
	}
}
