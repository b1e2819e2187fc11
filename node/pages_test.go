package node

import (
	"strings"
	"testing"

	"mpim/fsm"
)

// TestFitBytes: a page is cut by the size its messages take in a client's
// frame — escaped characters counted at six bytes — keeping the oldest
// (forwards) or the newest (backwards), and always at least one message.
func TestFitBytes(t *testing.T) {
	msg := func(seq uint64, text string) fsm.Message {
		return fsm.Message{Conv: "g:room", Seq: seq, ID: "n1-x-1", From: "alice", Cmid: "c", Text: text}
	}
	plain, escaped := msg(1, strings.Repeat("a", 4096)), msg(1, strings.Repeat("<", 4096))
	if p, e := wireSize(&plain), wireSize(&escaped); p < 4096 || e < 6*4096 {
		t.Fatalf("wire sizes %d (plain) and %d (escaped) under the bytes a client reads", p, e)
	}
	var msgs []fsm.Message
	for i := range 400 {
		msgs = append(msgs, msg(uint64(i+1), strings.Repeat("<", 4096)))
	}
	fwd, used, cut := fitBytes(msgs, replyBytes, false)
	if !cut || len(fwd) == 0 || len(fwd) >= len(msgs) || used > replyBytes || fwd[0].Seq != 1 {
		t.Fatalf("forwards: kept %d of %d (%d bytes, cut %v), want a prefix under %d bytes", len(fwd), len(msgs), used, cut, replyBytes)
	}
	back, _, _ := fitBytes(msgs, replyBytes, true)
	if len(back) != len(fwd) || back[len(back)-1].Seq != 400 {
		t.Fatalf("backwards: kept %d ending at #%d, want the newest %d", len(back), back[len(back)-1].Seq, len(fwd))
	}
	if one, _, cut := fitBytes(msgs[:3], 10, false); len(one) != 1 || !cut {
		t.Fatalf("a budget under one message kept %d (cut %v), want exactly one", len(one), cut)
	}
	if all, _, cut := fitBytes(msgs[:3], replyBytes, false); len(all) != 3 || cut {
		t.Fatalf("three small messages: kept %d (cut %v), want all", len(all), cut)
	}
	if none, _, cut := fitBytes(msgs[:3], 0, false); len(none) != 0 || !cut {
		t.Fatalf("an exhausted budget kept %d (cut %v), want none and cut", len(none), cut)
	}
}
