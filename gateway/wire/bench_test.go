package wire

import (
	"encoding/json"
	"strings"
	"testing"
)

// benchSend is a typical send: a short id, a DM, a sentence with an escape.
var benchSend = []byte(`{"id":"c7-1042","op":"send","to":"bob","text":"on my way, see you at 6 \"sharp\"\nbring the slides","cmid":"c7-m-1042"}`)

func BenchmarkDecodeSend(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchSend)))
	for b.Loop() {
		if _, _, e := Decode(benchSend); e != nil {
			b.Fatal(e)
		}
	}
}

// BenchmarkDecodeSendText4K decodes a send at the text limit, to show the
// cost per byte of the checks (JSON syntax, UTF-8, length).
func BenchmarkDecodeSendText4K(b *testing.B) {
	frame := []byte(`{"id":"1","op":"send","group":"team","cmid":"c","text":"` + strings.Repeat("ab☃", 4096/5) + `"}`)
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		if _, _, e := Decode(frame); e != nil {
			b.Fatal(e)
		}
	}
}

// BenchmarkDecodeSendEncodingJSON is the baseline this package replaced:
// encoding/json into a struct of pointer fields, without any validation.
func BenchmarkDecodeSendEncodingJSON(b *testing.B) {
	type envelope struct {
		ID   json.RawMessage `json:"id"`
		Op   *string         `json:"op"`
		To   *string         `json:"to"`
		Text *string         `json:"text"`
		Cmid *string         `json:"cmid"`
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(benchSend)))
	for b.Loop() {
		var e envelope
		if err := json.Unmarshal(benchSend, &e); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReplySend(b *testing.B) {
	id := json.RawMessage(`"c7-1042"`)
	v := struct {
		Conv  string `json:"conv"`
		Seq   uint64 `json:"seq"`
		MsgID string `json:"msg_id"`
		Ts    int64  `json:"ts"`
		Dup   bool   `json:"dup"`
	}{"dm:alice:bob", 1042, "n1-0000000000001042", 1767225600000, false}
	b.ReportAllocs()
	for b.Loop() {
		if out := Reply(id, v); len(out) == 0 {
			b.Fatal("empty reply")
		}
	}
}

func BenchmarkPushMessage(b *testing.B) {
	m := struct {
		Message Message `json:"message"`
	}{Message{Conv: "dm:alice:bob", Seq: 1042, ID: "n1-0000000000001042", From: "alice",
		Text: "on my way, see you at 6", Cmid: "c7-m-1042", Ts: 1767225600000, Origin: "n1"}}
	b.ReportAllocs()
	for b.Loop() {
		if out := Push(PushMessage, m); len(out) == 0 {
			b.Fatal("empty push")
		}
	}
}
