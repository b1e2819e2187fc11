package bench

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"

	"mpim/gateway/wire"
)

// TestScanMessagePush checks the fast push reader against encoding/json on
// frames the gateway's own encoder writes: whenever it answers, it must
// answer what encoding/json reads; it must answer for every frame whose
// strings need no escapes; and it must refuse what is not a message push
// of that shape.
func TestScanMessagePush(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	texts := []string{"bench 1 1732600000000000000 x", "", "quote \" inside", "back\\slash", "tab\t", "ünï €", "<html>&", "a,b}c{"}
	tentative := true
	answered := 0
	for i := range 2000 {
		m := wire.Message{Conv: fmt.Sprint("dm:u", i, ":v"), Seq: rng.Uint64() >> rng.IntN(64), ID: fmt.Sprint("n1-", i),
			From: fmt.Sprint("u", rng.IntN(100)), Text: texts[rng.IntN(len(texts))], Cmid: fmt.Sprint(i), Ts: -rng.Int64N(1 << 40), Origin: "n2"}
		if i%3 == 0 {
			m.Tentative = &tentative
		}
		frame := wire.Push(wire.PushMessage, struct {
			Message wire.Message `json:"message"`
		}{m})
		var want inFrame
		if err := json.Unmarshal(frame, &want); err != nil || want.Message == nil {
			t.Fatalf("encoding/json cannot read the gateway's frame %s: %v", frame, err)
		}
		got, ok := scanMessagePush(frame)
		plain := string(mustJSON(m.Text)) == `"`+m.Text+`"` // encoding/json writes it without escapes
		switch {
		case ok && (got.id != want.Message.ID || got.from != want.Message.From || got.text != want.Message.Text):
			t.Fatalf("frame %s: fast read %+v, encoding/json %+v", frame, got, *want.Message)
		case !ok && plain:
			t.Fatalf("frame %s needs no escapes but the fast reader refused it", frame)
		case ok:
			answered++
		}
	}
	if answered < 1000 {
		t.Fatalf("the fast reader answered only %d of 2000 frames", answered)
	}
	for _, frame := range []string{
		`{"push":"presence","user":"bob","online":true}`,
		`{"id":"7","ok":true,"msg_id":"n1-3","seq":3}`,
		`{"push":"message","message":{"id":"a","from":"b","text":"c"}`,         // unterminated
		`{"push":"message","message":{"id":"a","from":"b","text":"c"}}x`,       // trailing bytes
		`{"push":"message","message":{"id":1,"from":"b","text":"c"}}`,          // id not a string
		`{"push":"message","message":{"id":"a","from":"b","x":{"y":1}}}`,       // deeper nesting
		`{"push":"message","other":{"id":"a"}}`,                                // no message object
		`{"push":"message","message":{"id":"a","from":"b","text":"c"},"z":[]}`, // an array
		`{"push":"message","message":{"id":"a","from":"b","text":"c",}}`,       // trailing comma
		`{"push":"message","message":{"id":"a","from":"b","text":"c","seq":1.2.3}}`,
		`{"push":"message","message":{"id":"a","from":"b","text":"c","tentative":tru}}`,
		`{"push":"message","message":{"id":"a","from":"b","text":"c","seq":abc}}`,
		"{\"push\":\"message\",\"message\":{\"id\":\"a\",\"from\":\"b\",\"text\":\"c\x01\"}}", // a control character
		"{\"push\":\"message\",\"message\":{\"id\":\"a\",\"from\":\"b\",\"text\":\"\xff\"}}",  // invalid UTF-8
		`{"push":"message","message":{"id":"a","from":"b","text":"c"},"push":"presence"}`,
		`{"push":"message","message":{"id":"a","from":"b","text":"c"},"message":null}`,
		`{"push":"message","message":{"id":"a","from":"b","text":"c","ID":"z"}}`, // json matches keys case-insensitively
		`{"push":"message","message":{"id":"a","from":"b","text":"c","id":"z"}}`, // a duplicate key
		`{"push":"message","message":{"id":"a","from":"b"}}`,                     // no text
		`{"push":"message","message":{"id":"a","from":"b","text":"c","seq":01}}`, // not a JSON number
		`{"push":"message", "message":{"id":"a","from":"b","text":"c"}}`,         // whitespace: not the compact shape
	} {
		if p, ok := scanMessagePush([]byte(frame)); ok {
			t.Fatalf("fast reader accepted %s as %+v", frame, p)
		}
	}
}

func mustJSON(v any) []byte { b, _ := json.Marshal(v); return b }

// BenchmarkReadPush compares the fast push reader with encoding/json on a
// typical push frame.
func BenchmarkReadPush(b *testing.B) {
	frame := wire.Push("message", map[string]any{"message": wire.Message{Conv: "g:room-7", Seq: 123456, ID: "n2-98765",
		From: "u42", Text: "bench 1 1732600000000000000 0123456789", Cmid: "c-98765", Ts: 1732600000000, Origin: "n2"}})
	b.Run("scan", func(b *testing.B) {
		for b.Loop() {
			if _, ok := scanMessagePush(frame); !ok {
				b.Fatal("refused")
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		for b.Loop() {
			var f inFrame
			if json.Unmarshal(frame, &f) != nil {
				b.Fatal("refused")
			}
		}
	})
}
