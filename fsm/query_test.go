package fsm

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func seqs(msgs []Message) []uint64 {
	out := []uint64{}
	for _, m := range msgs {
		out = append(out, m.Seq)
	}
	return out
}

func span(lo, hi uint64) []uint64 {
	out := []uint64{}
	for s := lo; s <= hi; s++ {
		out = append(out, s)
	}
	return out
}

func TestMessages(t *testing.T) {
	h := newHarness(t, DefaultConfig())
	h.users("alice")
	h.ok(mkGroup("t", 1))
	h.ok(mkGroup("team", 1)) // "g:t" is a prefix of "g:team"
	for i := range 10 {
		h.ok(send("g:team", 1, fmt.Sprintf("c%d", i)))
	}
	h.ok(send("g:t", 1, "x"))
	cases := []struct {
		name          string
		conv          string
		after, before uint64
		limit         int
		want          []uint64
		wantMore      bool
	}{
		{"latest, fewer than all", "g:team", 0, 0, 3, span(8, 10), true},
		{"latest, exactly all", "g:team", 0, 0, 10, span(1, 10), false},
		{"latest, more than all", "g:team", 0, 0, 20, span(1, 10), false},
		{"after, limited", "g:team", 7, 0, 2, span(8, 9), true},
		{"after, to the end", "g:team", 7, 0, 3, span(8, 10), false},
		{"after, past the end", "g:team", 7, 0, 10, span(8, 10), false},
		{"after the last", "g:team", 10, 0, 5, nil, false},
		{"after beyond the last", "g:team", 99, 0, 5, nil, false},
		{"after the largest seq (after+1 must not wrap to the start)", "g:team", math.MaxUint64, 0, 5, nil, false},
		{"before, to the start", "g:team", 0, 4, 10, span(1, 3), false},
		{"before, limited: the last ones before", "g:team", 0, 6, 2, span(4, 5), true},
		{"before, exactly to the start", "g:team", 0, 4, 3, span(1, 3), false},
		{"before 1", "g:team", 0, 1, 5, nil, false},
		{"before beyond the last", "g:team", 0, 100, 4, span(7, 10), true},
		{"between", "g:team", 2, 8, 10, span(3, 7), false},
		{"between, limited: the last ones", "g:team", 2, 8, 3, span(5, 7), true},
		{"between, exactly", "g:team", 2, 8, 5, span(3, 7), false},
		{"between, empty", "g:team", 2, 3, 5, nil, false},
		{"between, inverted", "g:team", 5, 2, 5, nil, false},
		{"limit 0", "g:team", 0, 0, 0, nil, false},
		{"negative limit", "g:team", 0, 0, -1, nil, false},
		{"limit 1", "g:team", 0, 0, 1, []uint64{10}, true},
		{"prefix conversation kept apart", "g:t", 0, 0, 20, []uint64{1}, false},
		{"unknown conversation", "g:nope", 0, 0, 5, nil, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			msgs, more := Messages(h.kv, tc.conv, tc.after, tc.before, tc.limit)
			got := seqs(msgs)
			if tc.want == nil {
				tc.want = []uint64{}
			}
			if !slices.Equal(got, tc.want) || more != tc.wantMore {
				t.Fatalf("Messages(%s, after %d, before %d, limit %d) = %v more=%v, want %v more=%v",
					tc.conv, tc.after, tc.before, tc.limit, got, more, tc.want, tc.wantMore)
			}
			for _, m := range msgs {
				if m.Conv != tc.conv {
					t.Fatalf("Messages(%s) returned seq %d of conversation %s", tc.conv, m.Seq, m.Conv)
				}
			}
		})
	}
}

// TestMessagesPaging pages backwards and forwards through a conversation
// with the cursors a client would use, and checks every message is seen
// exactly once in order.
func TestMessagesPaging(t *testing.T) {
	h := newHarness(t, DefaultConfig())
	h.users("alice")
	h.ok(mkGroup("team", 1))
	const n = 23
	for i := range n {
		h.ok(send("g:team", 1, fmt.Sprintf("c%d", i)))
	}
	for _, limit := range []int{1, 4, 5, 23, 30} {
		// Backwards: latest page, then before the oldest seen.
		var back []uint64
		msgs, more := Messages(h.kv, "g:team", 0, 0, limit)
		back = append(seqs(msgs), back...)
		for more {
			msgs, more = Messages(h.kv, "g:team", 0, back[0], limit)
			back = append(seqs(msgs), back...)
		}
		if !slices.Equal(back, span(1, n)) {
			t.Fatalf("limit %d: paging backwards saw %v, want 1..%d once each", limit, back, n)
		}
		// Forwards: a client that has seen seq 1 catches up with after.
		// (after == 0 means "latest page", so forward sync starts from a seq.)
		fwd := []uint64{1}
		for more := true; more; {
			var msgs []Message
			msgs, more = Messages(h.kv, "g:team", fwd[len(fwd)-1], 0, limit)
			if more && len(msgs) != limit {
				t.Fatalf("limit %d: short page %v with more=true", limit, seqs(msgs))
			}
			fwd = append(fwd, seqs(msgs)...)
		}
		if !slices.Equal(fwd, span(1, n)) {
			t.Fatalf("limit %d: paging forwards saw %v, want 1..%d once each", limit, fwd, n)
		}
	}
}

func TestDigest(t *testing.T) {
	build := func(sends ...Command) *harness {
		h := newHarness(t, DefaultConfig())
		h.users("alice", "bob")
		h.ok(mkGroup("team", 1, 2))
		h.ok(mkGroup("other", 1))
		for _, s := range sends {
			h.ok(s)
		}
		return h
	}
	a, b, c := send("g:team", 1, "a"), send("g:team", 2, "b"), send("g:team", 1, "c")
	base := build(a, b, c)
	baseN, baseD := Digest(base.kv, "g:team")
	if baseN != 3 {
		t.Fatalf("conversation g:team: digest count %d, want 3", baseN)
	}
	cases := []struct {
		name     string
		h        *harness
		wantSame bool
	}{
		{"same history", build(a, b, c), true},
		{"same history, retries and other traffic in between", build(a, a, send("g:other", 1, "z"), b, a, c, ack(1, "p", "g:team", 2)), true},
		{"different order", build(a, c, b), false},
		{"prefix", build(a, b), false},
		{"longer", build(a, b, c, send("g:team", 2, "d")), false},
		{"different id", build(a, b, Command{Send: &Send{Conv: "g:team", FromUID: 1, Cmid: "c", ID: "other-id"}}), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n, d := Digest(tc.h.kv, "g:team")
			if same := n == baseN && d == baseD; same != tc.wantSame {
				t.Fatalf("conversation g:team: digest (%d, %s) vs base (%d, %s): equal=%v, want %v",
					n, d, baseN, baseD, same, tc.wantSame)
			}
		})
	}
	n0, d0 := Digest(base.kv, "g:nope")
	n1, d1 := Digest(base.kv, "g:other")
	if n0 != 0 || n1 != 0 || d0 != d1 {
		t.Fatalf("empty conversations: digests (%d, %s) and (%d, %s), want equal with count 0", n0, d0, n1, d1)
	}
	if d0 == baseD {
		t.Fatalf("empty conversation has the digest of a non-empty one")
	}
}

// TestDigestBefore: replicas that hold the same messages stamped before a
// moment agree on DigestBefore of it, whatever came after; a replica that
// lacks one of the earlier messages does not.
func TestDigestBefore(t *testing.T) {
	at := func(c Command, ts int64) Command { s := *c.Send; s.Ts = ts; return Command{Send: &s} }
	a, b := at(send("g:team", 1, "a"), 100), at(send("g:team", 2, "b"), 200)
	late1, late2 := at(send("g:team", 1, "c"), 300), at(send("g:team", 2, "d"), 400)
	build := func(sends ...Command) *harness {
		h := newHarness(t, DefaultConfig())
		h.users("alice", "bob")
		h.ok(mkGroup("team", 1, 2))
		for _, s := range sends {
			h.ok(s)
		}
		return h
	}
	n1, d1 := DigestBefore(build(a, b, late1).kv, "g:team", 300)
	n2, d2 := DigestBefore(build(a, b, late2, late1).kv, "g:team", 300)
	if n1 != 2 || n1 != n2 || d1 != d2 {
		t.Fatalf("same messages before 300, different ones after: (%d, %s) vs (%d, %s), want equal with count 2", n1, d1, n2, d2)
	}
	if n, d := Digest(build(a, b).kv, "g:team"); n != n1 || d != d1 {
		t.Fatalf("DigestBefore over the earlier messages (%d, %s) differs from Digest of just them (%d, %s)", n1, d1, n, d)
	}
	if n3, d3 := DigestBefore(build(a, late1).kv, "g:team", 300); n3 == n1 || d3 == d1 {
		t.Fatalf("a replica lacking an earlier message agrees: (%d, %s)", n3, d3)
	}
}

// TestRecordID: the id read without decoding a record is the id decoding
// it gives, whatever the other fields hold.
func TestRecordID(t *testing.T) {
	for _, m := range []Message{
		{Conv: "g:team", ID: "n1-5-1", Text: "plain"},
		{Conv: "g:team", ID: `we"ird\id`, Text: `"id":"fake"`},
		{Conv: "d:1:2", ID: "<tag>&", From: `"id":"x"`},
		{Conv: "g:a", Seq: 7, ID: "with-seq"},
		{Conv: "g:a", ID: ""},
	} {
		rec, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := recordID(rec)
		if !ok || string(got) != m.ID {
			t.Errorf("recordID(%s) = %q, %v; want %q", rec, got, ok, m.ID)
		}
	}
	if _, ok := recordID([]byte("not json")); ok {
		t.Errorf("recordID of garbage reported an id")
	}
}

// TestMessagesSinceOrigins: the exact AP cursor read, against a reading of
// every message: for random positions per origin and limits, the page is
// the messages after those positions in order-key order, the first limit
// of them, and more says whether others remain.
func TestMessagesSinceOrigins(t *testing.T) {
	h := newHarness(t, DefaultConfig())
	h.users("alice", "bob")
	h.ok(mkGroup("team", 1, 2))
	origins := []string{"n1", "n2", "n3"}
	rng := rand.New(rand.NewPCG(1, 2))
	oseq := map[string]uint64{}
	for i := range 120 {
		o := origins[rng.IntN(3)]
		oseq[o]++
		s := send("g:team", uint64(1+i%2), fmt.Sprint("c", i))
		s.Send.Origin, s.Send.OSeq = o, oseq[o]
		// Clocks of different origins interleave; one origin's grow (an HLC).
		s.Send.Order = binary.BigEndian.AppendUint64(nil, uint64(i*10+rng.IntN(9))<<16|uint64(oseq[o]))
		s.Send.Order = append(s.Send.Order, o...)
		h.ok(s)
	}
	all, _ := Messages(h.kv, "g:team", 0, 0, 1000)
	for round := range 200 {
		after := map[string]uint64{}
		for _, o := range origins {
			if rng.IntN(4) > 0 {
				after[o] = uint64(rng.IntN(int(oseq[o]) + 2))
			}
		}
		limit := 1 + rng.IntN(60)
		var want []string
		for _, m := range all {
			if m.OSeq > after[m.Origin] {
				want = append(want, m.ID)
			}
		}
		wantMore := len(want) > limit
		want = want[:min(limit, len(want))]
		msgs, more := MessagesSinceOrigins(h.kv, "g:team", after, limit)
		var got []string
		for _, m := range msgs {
			got = append(got, m.ID)
		}
		if !slices.Equal(got, want) || more != wantMore {
			t.Fatalf("round %d, after %v, limit %d: got %v (more %v), want %v (more %v)", round, after, limit, got, more, want, wantMore)
		}
	}
}
