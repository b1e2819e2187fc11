package fsm

import (
	"errors"
	"fmt"
	"mpim/internal/convid"
	"reflect"
	"slices"
	"testing"
)

// checkDense verifies conv holds exactly seqs 1..n, in order, with n its
// MaxSeq: the per-conversation seq has no gaps and no repeats.
func checkDense(t *testing.T, tx Tx, conv string, n uint64) {
	t.Helper()
	if got := MaxSeq(tx, conv); got != n {
		t.Fatalf("conversation %s: max seq %d, want %d", conv, got, n)
	}
	msgs, _ := Messages(tx, conv, 0, 0, int(n)+10)
	if uint64(len(msgs)) != n {
		t.Fatalf("conversation %s: %d messages stored, want %d", conv, len(msgs), n)
	}
	for i, m := range msgs {
		if m.Seq != uint64(i+1) {
			t.Fatalf("conversation %s: seq %d at position %d; seqs must be dense from 1", conv, m.Seq, i)
		}
		if m.Conv != conv {
			t.Fatalf("conversation %s: message seq %d names conversation %s", conv, m.Seq, m.Conv)
		}
	}
}

func TestSendDM(t *testing.T) {
	h := newHarness(t, DefaultConfig())
	h.users("alice", "bob", "carol")
	dm := convid.DMKey(1, 2)
	if ConvExists(h.kv, dm) {
		t.Fatalf("conversation %s exists before its first message", dm)
	}
	r := h.ok(sendTo(dm, 1, 2, "c1"))
	if r.Conv != dm || r.Seq != 1 || r.Dup || r.Message == nil || r.Message.Seq != 1 {
		t.Fatalf("first DM message: %+v; want seq 1 in %s, not a duplicate", r, dm)
	}
	if !slices.Equal(r.Members, []uint64{1, 2}) {
		t.Fatalf("conversation %s: members %v after first message, want [1 2]", dm, r.Members)
	}
	checkMembership(t, h.kv, dm, []uint64{1, 2}, []uint64{1, 2, 3})
	// The reply needs no To: the conversation exists now.
	if r := h.ok(send(dm, 2, "c1")); r.Seq != 2 {
		t.Fatalf("conversation %s: reply got seq %d, want 2", dm, r.Seq)
	}
	// A third user cannot write into someone else's DM, even naming a To.
	h.fails(send(dm, 3, "c9"), ErrNotMember)
	h.fails(sendTo(dm, 3, 1, "c9"), ErrNotMember)
	checkMembership(t, h.kv, dm, []uint64{1, 2}, []uint64{1, 2, 3})
	checkDense(t, h.kv, dm, 2)
}

func TestSendMessageFields(t *testing.T) {
	h := newHarness(t, DefaultConfig())
	h.users("alice", "bob")
	s := Send{Conv: "d:1:2", FromUID: 1, From: "alice", To: 2, Text: "hi", Cmid: "c1", ID: "m1", Ts: 77, Origin: "node-1"}
	r := h.ok(Command{Send: &s})
	want := Message{Conv: s.Conv, Seq: 1, ID: "m1", From: "alice", FromUID: 1, Text: "hi", Cmid: "c1", Ts: 77, Origin: "node-1"}
	want.Order = r.Message.Order
	if !reflect.DeepEqual(*r.Message, want) {
		t.Fatalf("result message %+v, want %+v", *r.Message, want)
	}
	if r.ID != "m1" {
		t.Fatalf("result id %q, want m1", r.ID)
	}
	if got, ok := MessageByID(h.kv, "m1"); !ok || !reflect.DeepEqual(got, want) {
		t.Fatalf("MessageByID(m1) = %+v, %v; want %+v", got, ok, want)
	}
	if _, ok := MessageByID(h.kv, "m2"); ok {
		t.Fatalf("MessageByID(m2) found a message never sent")
	}
}

func TestSendErrors(t *testing.T) {
	cases := []struct {
		name string
		cmd  Command
		want error
	}{
		{"unknown group", send("g:nope", 1, "c1"), ErrNoSuchGroup},
		{"non-member into group", send("g:team", 3, "c1"), ErrNotMember},
		{"non-member into existing DM", send("d:1:2", 3, "c1"), ErrNotMember},
		{"new DM without To", send("d:1:3", 1, "c1"), ErrInvalid},
		{"unknown conversation kind", send("x:1", 1, "c1"), ErrInvalid},
		{"empty conv", send("", 1, "c1"), ErrInvalid},
		{"no sender", send("g:team", 0, "c1"), ErrInvalid},
		{"no cmid", send("g:team", 1, ""), ErrInvalid},
		{"no id", Command{Send: &Send{Conv: "g:team", FromUID: 1, Cmid: "c1"}}, ErrInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, DefaultConfig())
			h.users("alice", "bob", "carol")
			h.ok(mkGroup("team", 1, 2))
			h.ok(sendTo("d:1:2", 1, 2, "c0"))
			r := h.do(tc.cmd)
			if !errors.Is(r.Err, tc.want) {
				t.Fatalf("%s: error %v, want %v", describe(tc.cmd), r.Err, tc.want)
			}
			if r.Message != nil || r.Seq != 0 {
				t.Fatalf("%s: refused send still produced %+v", describe(tc.cmd), r)
			}
			checkDense(t, h.kv, "g:team", 0)
			checkDense(t, h.kv, "d:1:2", 1)
			if ConvExists(h.kv, "d:1:3") {
				t.Fatalf("a refused send created conversation d:1:3")
			}
		})
	}
}

func TestSendGroupAfterLeave(t *testing.T) {
	h := newHarness(t, DefaultConfig())
	h.users("alice", "bob")
	h.ok(mkGroup("team", 1, 2))
	h.ok(send("g:team", 2, "c1"))
	h.ok(leaveGroup("team", 2))
	h.fails(send("g:team", 2, "c2"), ErrNotMember)
	// A retry of a message sent while a member is refused too: membership is
	// checked before dedup.
	h.fails(send("g:team", 2, "c1"), ErrNotMember)
	h.ok(joinGroup("team", 2))
	if r := h.ok(send("g:team", 2, "c2")); r.Seq != 2 {
		t.Fatalf("conversation g:team: seq %d after rejoin, want 2", r.Seq)
	}
}

// TestSendBatchSameEntry checks that a conversation created earlier in the
// same log entry is visible to the next command of that entry.
func TestSendBatchSameEntry(t *testing.T) {
	h := newHarness(t, DefaultConfig())
	rs := h.apply(
		reg("alice"), reg("bob"),
		mkGroup("team", 1, 2),
		send("g:team", 2, "c1"),
		sendTo("d:1:2", 1, 2, "c1"),
		send("d:1:2", 2, "c1"),
	)
	for i, r := range rs {
		if r.Err != nil {
			t.Fatalf("command %d of one entry: %v; state written earlier in the entry must be visible", i, r.Err)
		}
	}
	checkDense(t, h.kv, "g:team", 1)
	checkDense(t, h.kv, "d:1:2", 2)
}

func TestSendDenseSeq(t *testing.T) {
	h := newHarness(t, DefaultConfig())
	h.users("alice", "bob", "carol")
	h.ok(mkGroup("team", 1, 2, 3))
	h.ok(mkGroup("other", 1))
	last := map[string]uint64{}
	for i := range 60 {
		conv, from := "g:team", uint64(i%3+1)
		if i%4 == 0 {
			conv, from = "g:other", 1
		}
		r := h.ok(send(conv, from, fmt.Sprintf("c%d", i)))
		if r.Seq != last[conv]+1 {
			t.Fatalf("conversation %s: seq %d after %d", conv, r.Seq, last[conv])
		}
		last[conv] = r.Seq
	}
	checkDense(t, h.kv, "g:team", last["g:team"])
	checkDense(t, h.kv, "g:other", last["g:other"])
}

func TestSendDedup(t *testing.T) {
	type step struct {
		cmd     Command
		wantSeq uint64
		wantDup bool
	}
	dm := "d:1:2"
	cases := []struct {
		name  string
		steps []step
	}{
		{"retry returns the first message", []step{
			{send("g:team", 1, "c1"), 1, false},
			{send("g:team", 1, "c1"), 1, true},
			{send("g:team", 1, "c1"), 1, true},
			{send("g:team", 1, "c2"), 2, false},
		}},
		{"same cmid from another sender is new", []step{
			{send("g:team", 1, "c1"), 1, false},
			{send("g:team", 2, "c1"), 2, false},
			{send("g:team", 2, "c1"), 2, true},
			{send("g:team", 1, "c1"), 1, true},
		}},
		{"same cmid in another conversation is new", []step{
			{send("g:team", 1, "c1"), 1, false},
			{sendTo(dm, 1, 2, "c1"), 1, false},
			{send(dm, 1, "c1"), 1, true},
			{send("g:team", 1, "c1"), 1, true},
		}},
		{"retry of the DM-opening message", []step{
			{sendTo(dm, 1, 2, "c1"), 1, false},
			{sendTo(dm, 1, 2, "c1"), 1, true},
			{send(dm, 2, "c1"), 2, false},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, DefaultConfig())
			h.users("alice", "bob")
			h.ok(mkGroup("team", 1, 2))
			first := map[string]Message{} // "conv/seq" -> the message first stored
			for i, s := range tc.steps {
				r := h.ok(s.cmd)
				if r.Seq != s.wantSeq || r.Dup != s.wantDup {
					t.Fatalf("step %d %s: seq %d dup %v, want seq %d dup %v", i, describe(s.cmd), r.Seq, r.Dup, s.wantSeq, s.wantDup)
				}
				key := fmt.Sprintf("%s/%d", s.cmd.Send.Conv, s.wantSeq)
				if !s.wantDup {
					first[key] = *r.Message
					continue
				}
				if !reflect.DeepEqual(*r.Message, first[key]) || r.ID != first[key].ID {
					t.Fatalf("step %d: duplicate returned %+v, want the first message %+v", i, *r.Message, first[key])
				}
			}
		})
	}
}

// TestSendDedupKeepsFirst checks that a retry carrying different content
// (a new id, text, ts) is answered with the stored original, unchanged.
func TestSendDedupKeepsFirst(t *testing.T) {
	h := newHarness(t, DefaultConfig())
	h.users("alice")
	h.ok(mkGroup("team", 1))
	orig := h.ok(Command{Send: &Send{Conv: "g:team", FromUID: 1, From: "alice", Text: "one", Cmid: "c1", ID: "m1", Ts: 1}})
	before := h.snapshot()
	// Index 0 records no applied index, so the snapshot shows any change.
	rs, err := h.m.Apply(h.kv, 0, []Command{{Send: &Send{Conv: "g:team", FromUID: 1, From: "alice", Text: "two", Cmid: "c1", ID: "m2", Ts: 2}}})
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	retry := rs[0]
	if retry.Err != nil || !retry.Dup || !reflect.DeepEqual(*retry.Message, *orig.Message) || retry.ID != "m1" {
		t.Fatalf("retry with new content: %+v, want duplicate of %+v", retry, *orig.Message)
	}
	if _, ok := MessageByID(h.kv, "m2"); ok {
		t.Fatalf("a duplicate's id m2 was stored")
	}
	requireSameState(t, "duplicate send", before, h.snapshot())
}

// TestSendDedupWindow pins down the bounded dedup window: with
// DedupWindow w, a retry is recognised while fewer than w messages were
// appended to its conversation after the original; once w messages came
// after it the (sender, cmid) is forgotten and the retry is a new message.
// The window trades memory for the retry horizon a client may rely on.
func TestSendDedupWindow(t *testing.T) {
	const w = 3
	cases := []struct {
		after   int // messages sent to the conversation after the original
		wantDup bool
	}{
		{0, true},
		{1, true},
		{w - 1, true},
		{w, false},
		{w + 5, false},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%d after", tc.after), func(t *testing.T) {
			h := newHarness(t, Config{DedupWindow: w})
			h.users("alice", "bob")
			h.ok(mkGroup("team", 1, 2))
			h.ok(mkGroup("other", 1))
			h.ok(send("g:team", 1, "orig"))
			for i := range tc.after {
				h.ok(send("g:team", 2, fmt.Sprintf("f%d", i)))
				// Traffic in another conversation does not age the window.
				h.ok(send("g:other", 1, fmt.Sprintf("o%d", i)))
			}
			// A retry is a new request: the node gives it a new message id.
			retry := send("g:team", 1, "orig")
			retry.Send.ID += "-retry"
			r := h.ok(retry)
			if r.Dup != tc.wantDup {
				t.Fatalf("retry after %d messages with window %d: dup %v, want %v", tc.after, w, r.Dup, tc.wantDup)
			}
			wantSeq := uint64(1)
			if !tc.wantDup {
				wantSeq = uint64(tc.after + 2)
			}
			if r.Seq != wantSeq {
				t.Fatalf("retry after %d messages: seq %d, want %d", tc.after, r.Seq, wantSeq)
			}
			if !tc.wantDup {
				// The re-sent message opens a window of its own.
				again := send("g:team", 1, "orig")
				again.Send.ID += "-retry-2"
				if r2 := h.ok(again); !r2.Dup || r2.Seq != wantSeq {
					t.Fatalf("second retry: seq %d dup %v, want duplicate of seq %d", r2.Seq, r2.Dup, wantSeq)
				}
			}
		})
	}
}

// TestDedupTableBounded checks the table holds at most DedupWindow entries
// per conversation, however many messages were sent.
func TestDedupTableBounded(t *testing.T) {
	const w = 4
	h := newHarness(t, Config{DedupWindow: w})
	h.users("alice")
	h.ok(mkGroup("team", 1))
	for i := range 50 {
		h.ok(send("g:team", 1, fmt.Sprintf("c%d", i)))
		n := 0
		_ = h.kv.Scan(bDedup, nil, nil, false, func(_, _ []byte) bool { n++; return true })
		if want := min(i+1, w); n != want {
			t.Fatalf("after %d messages: %d dedup entries, want %d (window %d)", i+1, n, want, w)
		}
	}
}

func TestConfig(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("DefaultConfig().Validate() = %v", err)
	}
	if DefaultConfig().DedupWindow != DefaultDedupWindow {
		t.Fatalf("DefaultConfig().DedupWindow = %d, want %d", DefaultConfig().DedupWindow, DefaultDedupWindow)
	}
	if _, err := New(Config{}); err == nil {
		t.Fatalf("New(Config{}) accepted a zero dedup window")
	}
	if _, err := New(Config{DedupWindow: 1}); err != nil {
		t.Fatalf("New(window 1): %v", err)
	}
}
