package node

import (
	"encoding/json"
	"reflect"
	"testing"

	"mpim/fsm"
	"mpim/internal/fill"
)

// fillFields sets every field of the struct p points to (internal/fill),
// so that a codec that forgets a field fails the round trip.
func fillFields(t *testing.T, p any) {
	t.Helper()
	if err := fill.Struct(p); err != nil {
		t.Fatalf("%v: teach the forward codec, this test and internal/fill about it", err)
	}
}

// TestResultCodec: a forwarded result keeps every message field and every
// result field a forwarding node uses, its domain error as the sentinel,
// and reads the JSON of an older node alike.
func TestResultCodec(t *testing.T) {
	var m fsm.Message
	fillFields(t, &m)
	want := fsm.Result{Err: fsm.ErrNotMember, UID: 3, Conv: "g:team", Message: &m, Dup: true, Seq: 9, ID: "n1-x-1", Members: []uint64{1, 2, 1 << 50}}
	b, err := encodeResult(want)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeResult(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("decodeResult(encodeResult(r)) = %+v\nwant %+v", got, want)
	}
	old, _ := json.Marshal(wireResult{Err: want.Err.Error(), UID: want.UID, Conv: want.Conv, Message: want.Message,
		Dup: want.Dup, Seq: want.Seq, ID: want.ID, Members: want.Members})
	if got, err := decodeResult(old); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("decodeResult(JSON) = %+v, %v\nwant %+v", got, err, want)
	}
	for n := range len(b) {
		if _, err := decodeResult(b[:n]); err == nil {
			t.Errorf("a result cut to %d of %d bytes decoded", n, len(b))
		}
	}
	if r, err := decodeResult(mustEncode(t, fsm.Result{Conv: "g:x"})); err != nil || r.Err != nil || r.Message != nil || r.Members != nil {
		t.Fatalf("an empty result decoded as %+v, %v", r, err)
	}
}

func mustEncode(t *testing.T, r fsm.Result) []byte {
	t.Helper()
	b, err := encodeResult(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCommandCodec: a forwarded command round-trips, in the log-entry
// encoding and as an older node's JSON.
func TestCommandCodec(t *testing.T) {
	cmd := fsm.Command{Send: &fsm.Send{Conv: "g:team", FromUID: 1, From: "alice", Text: "hi", Cmid: "c1", ID: "n1-x-1", Ts: 5, Origin: "n1"}}
	b, err := encodeCommand(cmd)
	if err != nil {
		t.Fatal(err)
	}
	old, _ := json.Marshal(cmd)
	for _, enc := range [][]byte{b, old} {
		got, err := decodeCommand(enc)
		if err != nil || !reflect.DeepEqual(got, cmd) {
			t.Fatalf("decodeCommand(%q) = %+v, %v; want %+v", enc, got, err, cmd)
		}
	}
	two, _ := fsm.EncodeBatch([]fsm.Command{cmd, cmd})
	if _, err := decodeCommand(two); err == nil {
		t.Fatal("a forwarded entry of two commands was accepted")
	}
}
