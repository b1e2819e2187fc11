package fsm

import (
	"encoding/json"
	"reflect"
	"testing"

	"mpim/internal/fill"
)

// TestSendCodecFields: a Send with every field set survives the log
// encoding. Filling fields by reflection makes this fail when a field is
// added to Send but not to appendSend and readSend.
func TestSendCodecFields(t *testing.T) {
	var s Send
	if err := fill.Struct(&s); err != nil {
		t.Fatalf("%v: teach appendSend, readSend and internal/fill about it", err)
	}
	b, err := EncodeBatch([]Command{{Send: &s}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeBatch(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !reflect.DeepEqual(*got[0].Send, s) {
		t.Fatalf("DecodeBatch(EncodeBatch(send)) = %+v, want %+v", got, s)
	}
}

// TestDecodeBatchJSON: entries of the JSON encoding (logs written before
// the binary one) still decode, to the same commands.
func TestDecodeBatchJSON(t *testing.T) {
	cmds := []Command{reg("alice"), sendTo("dm:alice:bob", 1, 7, "c1"), mkGroup("team", 1, 2), read(1, "g:team", 2)}
	old, err := json.Marshal(cmds)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeBatch(old)
	if err != nil {
		t.Fatalf("DecodeBatch(JSON entry): %v", err)
	}
	if !reflect.DeepEqual(got, cmds) {
		t.Fatalf("DecodeBatch(JSON entry) = %+v, want %+v", got, cmds)
	}
}

// TestDecodeBatchMalformed: a cut or corrupted entry is refused, never
// applied as something else.
func TestDecodeBatchMalformed(t *testing.T) {
	b, err := EncodeBatch([]Command{sendTo("dm:alice:bob", 1, 7, "c1"), reg("carol")})
	if err != nil {
		t.Fatal(err)
	}
	for n := range len(b) {
		if _, err := DecodeBatch(b[:n]); err == nil {
			t.Errorf("an entry cut to %d of %d bytes decoded", n, len(b))
		}
	}
	if _, err := DecodeBatch(append(b, 0)); err == nil {
		t.Error("an entry with a trailing byte decoded")
	}
	bad := append([]byte(nil), b...)
	bad[2] = 9 // the first command's tag
	if _, err := DecodeBatch(bad); err == nil {
		t.Error("an entry with an unknown tag decoded")
	}
}
