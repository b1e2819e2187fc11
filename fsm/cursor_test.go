package fsm

import (
	"errors"
	"fmt"
	"testing"
)

// cursorFixture: alice(1), bob(2), carol(3); g:team = {1, 2} with five
// messages, seqs 1..5 with ids id-1-g:team-c1..c5; dm:alice:bob with one.
func cursorFixture(t *testing.T) *harness {
	t.Helper()
	h := newHarness(t, DefaultConfig())
	h.users("alice", "bob", "carol")
	h.ok(mkGroup("team", 1, 2))
	for i := 1; i <= 5; i++ {
		h.ok(send("g:team", 1, fmt.Sprintf("c%d", i)))
	}
	h.ok(sendTo("d:1:2", 1, 2, "d1"))
	return h
}

func teamID(seq int) string { return fmt.Sprintf("id-1-g:team-c%d", seq) }

func TestAck(t *testing.T) {
	type step struct {
		cmd     Command
		wantErr error
		wantSeq uint64 // the message the command named
	}
	type cur struct {
		uid    uint64
		device string
		want   uint64
	}
	cases := []struct {
		name  string
		steps []step
		want  []cur // delivery cursors in g:team afterwards
	}{
		{"by seq", []step{
			{ack(2, "phone", "g:team", 3), nil, 3},
		}, []cur{{2, "phone", 3}, {2, "laptop", 0}, {1, "phone", 0}}},
		{"by id", []step{
			{ackID(2, "phone", "g:team", teamID(4)), nil, 4},
		}, []cur{{2, "phone", 4}}},
		{"only moves forward", []step{
			{ack(2, "phone", "g:team", 4), nil, 4},
			{ack(2, "phone", "g:team", 2), nil, 2},
			{ackID(2, "phone", "g:team", teamID(1)), nil, 1},
			{ack(2, "phone", "g:team", 4), nil, 4},
		}, []cur{{2, "phone", 4}}},
		{"devices independent", []step{
			{ack(2, "phone", "g:team", 5), nil, 5},
			{ack(2, "laptop", "g:team", 1), nil, 1},
			{ack(1, "phone", "g:team", 2), nil, 2},
		}, []cur{{2, "phone", 5}, {2, "laptop", 1}, {1, "phone", 2}, {1, "laptop", 0}}},
		{"empty device is a device", []step{
			{ack(2, "", "g:team", 2), nil, 2},
		}, []cur{{2, "", 2}, {2, "phone", 0}}},
		{"seq beyond the last message", []step{
			{ack(2, "phone", "g:team", 6), ErrNoSuchMessage, 0},
		}, []cur{{2, "phone", 0}}},
		{"unknown id", []step{
			{ackID(2, "phone", "g:team", "nope"), ErrNoSuchMessage, 0},
		}, []cur{{2, "phone", 0}}},
		{"id of another conversation", []step{
			{ackID(2, "phone", "g:team", "id-1-d:1:2-d1"), ErrNoSuchMessage, 0},
		}, []cur{{2, "phone", 0}}},
		{"non-member", []step{
			{ack(3, "phone", "g:team", 1), ErrNotMember, 0},
		}, []cur{{3, "phone", 0}}},
		{"unknown conversation", []step{
			{ack(2, "phone", "g:nope", 1), ErrNotMember, 0},
		}, []cur{{2, "phone", 0}}},
		{"neither seq nor id", []step{
			{ack(2, "phone", "g:team", 0), ErrInvalid, 0},
		}, []cur{{2, "phone", 0}}},
		{"after leaving", []step{
			{ack(2, "phone", "g:team", 2), nil, 2},
			{leaveGroup("team", 2), nil, 0},
			{ack(2, "phone", "g:team", 4), ErrNotMember, 0},
		}, []cur{{2, "phone", 2}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := cursorFixture(t)
			for i, s := range tc.steps {
				r := h.do(s.cmd)
				if !errors.Is(r.Err, s.wantErr) {
					t.Fatalf("step %d %s: error %v, want %v", i, describe(s.cmd), r.Err, s.wantErr)
				}
				if s.cmd.Ack == nil || s.wantErr != nil {
					continue
				}
				if r.Seq != s.wantSeq || r.ID != teamID(int(s.wantSeq)) || r.Conv != "g:team" {
					t.Fatalf("step %d %s: result seq %d id %q conv %q, want seq %d id %q", i, describe(s.cmd), r.Seq, r.ID, r.Conv, s.wantSeq, teamID(int(s.wantSeq)))
				}
			}
			for _, c := range tc.want {
				if got := Delivered(h.kv, c.uid, c.device, "g:team"); got != c.want {
					t.Errorf("conversation g:team: user %d device %q delivered cursor %d, want %d", c.uid, c.device, got, c.want)
				}
			}
			// Delivery receipts never move read cursors.
			for uid := uint64(1); uid <= 3; uid++ {
				if got := ReadCursor(h.kv, uid, "g:team"); got != 0 {
					t.Errorf("conversation g:team: user %d read cursor %d after acks only", uid, got)
				}
			}
		})
	}
}

func TestRead(t *testing.T) {
	type step struct {
		cmd     Command
		wantErr error
	}
	cases := []struct {
		name  string
		steps []step
		want  map[uint64]uint64 // uid -> read cursor in g:team
	}{
		{"by seq", []step{{read(2, "g:team", 3), nil}}, map[uint64]uint64{1: 0, 2: 3}},
		{"by id", []step{{readID(1, "g:team", teamID(5)), nil}}, map[uint64]uint64{1: 5, 2: 0}},
		{"only moves forward", []step{
			{read(2, "g:team", 4), nil},
			{read(2, "g:team", 1), nil},
		}, map[uint64]uint64{2: 4}},
		{"per user", []step{
			{read(1, "g:team", 2), nil},
			{read(2, "g:team", 5), nil},
		}, map[uint64]uint64{1: 2, 2: 5}},
		{"device ignored: one cursor per user", []step{
			{Command{Read: &Cursor{UID: 2, Device: "phone", Conv: "g:team", Seq: 2}}, nil},
			{Command{Read: &Cursor{UID: 2, Device: "laptop", Conv: "g:team", Seq: 3}}, nil},
		}, map[uint64]uint64{2: 3}},
		{"no such message", []step{
			{read(2, "g:team", 9), ErrNoSuchMessage},
			{readID(2, "g:team", "nope"), ErrNoSuchMessage},
		}, map[uint64]uint64{2: 0}},
		{"not a member", []step{{read(3, "g:team", 1), ErrNotMember}}, map[uint64]uint64{3: 0}},
		{"invalid", []step{{read(2, "g:team", 0), ErrInvalid}}, map[uint64]uint64{2: 0}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := cursorFixture(t)
			for i, s := range tc.steps {
				if r := h.do(s.cmd); !errors.Is(r.Err, s.wantErr) {
					t.Fatalf("step %d %s: error %v, want %v", i, describe(s.cmd), r.Err, s.wantErr)
				}
			}
			for uid, want := range tc.want {
				if got := ReadCursor(h.kv, uid, "g:team"); got != want {
					t.Errorf("conversation g:team: user %d read cursor %d, want %d", uid, got, want)
				}
				if got := Delivered(h.kv, uid, "", "g:team"); got != 0 {
					t.Errorf("conversation g:team: user %d delivery cursor %d moved by a read receipt", uid, got)
				}
			}
		})
	}
}

// TestCursorsPerConversation checks cursors of one conversation do not leak
// into another, including in the DM.
func TestCursorsPerConversation(t *testing.T) {
	h := cursorFixture(t)
	h.ok(ack(2, "phone", "g:team", 5))
	h.ok(read(2, "g:team", 5))
	if got := Delivered(h.kv, 2, "phone", "d:1:2"); got != 0 {
		t.Fatalf("conversation dm:alice:bob: delivered %d, moved by an ack in g:team", got)
	}
	if got := ReadCursor(h.kv, 2, "d:1:2"); got != 0 {
		t.Fatalf("conversation dm:alice:bob: read %d, moved by a read in g:team", got)
	}
	h.ok(ackID(2, "phone", "d:1:2", "id-1-d:1:2-d1"))
	if got := Delivered(h.kv, 2, "phone", "d:1:2"); got != 1 {
		t.Fatalf("conversation dm:alice:bob: delivered %d after ack by id, want 1", got)
	}
	if got := Delivered(h.kv, 2, "phone", "g:team"); got != 5 {
		t.Fatalf("conversation g:team: delivered %d, want 5 (unchanged by the DM ack)", got)
	}
}

// TestStaleAckChangesNothing checks a late receipt leaves the state
// byte-identical (applied at index 0, which records nothing).
func TestStaleAckChangesNothing(t *testing.T) {
	h := cursorFixture(t)
	h.ok(ack(2, "phone", "g:team", 4))
	h.ok(read(2, "g:team", 4))
	before := h.snapshot()
	for _, c := range []Command{ack(2, "phone", "g:team", 3), ack(2, "phone", "g:team", 4), read(2, "g:team", 1)} {
		rs, err := h.m.Apply(h.kv, 0, []Command{c})
		if err != nil || rs[0].Err != nil {
			t.Fatalf("%s: %v %v", describe(c), err, rs[0].Err)
		}
	}
	requireSameState(t, "stale receipts", before, h.snapshot())
}
