package wire

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// sendResult is the shape the gateway is expected to reply to send with; the
// message id goes in msg_id because the envelope owns id.
type sendResult struct {
	Conv  string `json:"conv"`
	Seq   uint64 `json:"seq"`
	MsgID string `json:"msg_id"`
	Ts    int64  `json:"ts"`
	Dup   bool   `json:"dup"`
}

func TestReply(t *testing.T) {
	tentative := true
	cases := []struct {
		name string
		id   json.RawMessage
		v    any
		want string
	}{
		{"no fields", json.RawMessage(`"1"`), nil, `{"id":"1","ok":true}`},
		{"null id", nil, nil, `{"id":null,"ok":true}`},
		{"empty struct", json.RawMessage(`"1"`), struct{}{}, `{"id":"1","ok":true}`},
		{"nil map", json.RawMessage(`"1"`), map[string]int(nil), `{"id":"1","ok":true}`},
		{"nil pointer", json.RawMessage(`"1"`), (*sendResult)(nil), `{"id":"1","ok":true}`},
		{"struct", json.RawMessage(`"a\"b"`), sendResult{Conv: "dm:a:b", Seq: 3, MsgID: "m1", Ts: 17, Dup: true},
			`{"id":"a\"b","ok":true,"conv":"dm:a:b","seq":3,"msg_id":"m1","ts":17,"dup":true}`},
		{"map", json.RawMessage(`"1"`), map[string]any{"uid": 7, "mode": "cp"}, `{"id":"1","ok":true,"mode":"cp","uid":7}`},
		{"html not escaped", json.RawMessage(`"1"`), map[string]string{"text": "<b>&"}, `{"id":"1","ok":true,"text":"<b>&"}`},
		{"messages", json.RawMessage(`"1"`), map[string]any{"messages": []Message{
			{Conv: "g:x", Seq: 1, ID: "m", From: "a", Text: "hi", Cmid: "c", Ts: 5, Origin: "n1"},
			{Conv: "g:x", Seq: 2, ID: "n", From: "b", Text: "yo", Cmid: "d", Ts: 6, Origin: "n2", Tentative: &tentative},
		}},
			`{"id":"1","ok":true,"messages":[` +
				`{"conv":"g:x","seq":1,"id":"m","from":"a","text":"hi","cmid":"c","ts":5,"origin":"n1"},` +
				`{"conv":"g:x","seq":2,"id":"n","from":"b","text":"yo","cmid":"d","ts":6,"origin":"n2","tentative":true}]}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := string(Reply(c.id, c.v))
			if got != c.want {
				t.Errorf("Reply =\n %s\nwant\n %s", got, c.want)
			}
			if !json.Valid([]byte(got)) {
				t.Errorf("Reply is not valid JSON: %s", got)
			}
		})
	}
}

func TestReplyInternal(t *testing.T) {
	cases := []struct {
		name string
		v    any
		msg  string
	}{
		{"not encodable", map[string]any{"c": make(chan int)}, "could not encode"},
		{"not an object", []int{1}, "not a JSON object"},
		{"a string", "x", "not a JSON object"},
		{"owns id", Message{ID: "m"}, `field "id"`},
		{"owns ok", map[string]bool{"ok": false}, `field "ok"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := Reply(json.RawMessage(`"9"`), c.v)
			var got struct {
				ID    string `json:"id"`
				OK    bool   `json:"ok"`
				Error struct{ Code, Message string }
			}
			if err := json.Unmarshal(out, &got); err != nil {
				t.Fatalf("Reply wrote invalid JSON %s: %v", out, err)
			}
			if got.ID != "9" || got.OK || got.Error.Code != string(Internal) || !strings.Contains(got.Error.Message, c.msg) {
				t.Errorf("Reply(%#v) = %s; want an internal error reply for id 9 mentioning %q", c.v, out, c.msg)
			}
		})
	}
}

func TestErrorReply(t *testing.T) {
	cases := []struct {
		id   json.RawMessage
		e    *Error
		want string
	}{
		{json.RawMessage(`"1"`), Errorf(BadRequest, "missing field text"), `{"id":"1","ok":false,"error":{"code":"bad_request","message":"missing field text"}}`},
		{nil, Errorf(TooLarge, `id "x" <&> `+"\n\x01\xff"), `{"id":null,"ok":false,"error":{"code":"too_large","message":"id \"x\" <&> \n\u0001\ufffd"}}`},
		{nil, nil, `{"id":null,"ok":false,"error":{"code":"internal","message":"the gateway built an error reply without an error: please report this bug"}}`},
	}
	for _, c := range cases {
		if got := string(ErrorReply(c.id, c.e)); got != c.want {
			t.Errorf("ErrorReply =\n %s\nwant\n %s", got, c.want)
		}
	}
	// Every code round-trips through an error reply.
	for _, code := range []Code{BadRequest, Unauthorized, Forbidden, NotFound, Conflict, TooLarge, RateLimited, Unavailable, Timeout, Internal} {
		var got struct{ Error struct{ Code Code } }
		if err := json.Unmarshal(ErrorReply(nil, Errorf(code, "m")), &got); err != nil || got.Error.Code != code {
			t.Errorf("code %s: got %v, %v", code, got.Error.Code, err)
		}
	}
}

func TestPush(t *testing.T) {
	f := false
	cases := []struct {
		kind string
		v    any
		want string
	}{
		{PushMessage, map[string]Message{"message": {Conv: "g:x", Seq: 1, ID: "m", Tentative: &f}},
			`{"push":"message","message":{"conv":"g:x","seq":1,"id":"m","from":"","text":"","cmid":"","ts":0,"origin":"","tentative":false}}`},
		{PushResync, struct {
			Conv    string `json:"conv"`
			FromSeq uint64 `json:"from_seq"`
		}{"dm:a:b", 4}, `{"push":"resync","conv":"dm:a:b","from_seq":4}`},
		{PushKicked, nil, `{"push":"kicked"}`},
		{"odd\"kind", nil, `{"push":"odd\"kind"}`},
	}
	for _, c := range cases {
		if got := string(Push(c.kind, c.v)); got != c.want {
			t.Errorf("Push(%s) =\n %s\nwant\n %s", c.kind, got, c.want)
		}
	}
	out := Push(PushTyping, map[string]string{"push": "x"})
	if !strings.Contains(string(out), `"code":"internal"`) {
		t.Errorf("Push with a push field = %s; want an internal error", out)
	}
}

// TestAppendString checks the string encoder used for error messages and push
// kinds against encoding/json, which must read back what was meant.
func TestAppendString(t *testing.T) {
	for _, s := range []string{"", "plain", "q\"b\\s/", "\x00\x1f\x7f", "\n\r\t\b\f", "é☃😀", "bad\xff\xfe", "\xed\xa0\x80", "\u2028"} {
		out := appendString(nil, s)
		var back string
		if err := json.Unmarshal(out, &back); err != nil {
			t.Errorf("appendString(%q) = %s is not a JSON string: %v", s, out, err)
			continue
		}
		want := strings.ToValidUTF8(s, "\ufffd")
		if !utf8.ValidString(s) {
			want = string([]rune(s)) // one U+FFFD per bad byte, as encoding/json does
		}
		if back != want {
			t.Errorf("appendString(%q) reads back as %q; want %q", s, back, want)
		}
	}
}

// TestRequestDoesNotAliasFrame guards against a gateway that reuses its read
// buffer: the request must own its bytes.
func TestRequestDoesNotAliasFrame(t *testing.T) {
	frame := []byte(`{"id":"abc","op":"send","to":"bob","text":"hello","cmid":"c1"}`)
	r, id, e := Decode(frame)
	if e != nil {
		t.Fatal(e)
	}
	snapshot := *r
	snapshot.ID = append(json.RawMessage(nil), r.ID...)
	for i := range frame {
		frame[i] = 'X'
	}
	if !reflect.DeepEqual(*r, snapshot) || string(id) != `"abc"` {
		t.Errorf("request changed when the frame buffer was overwritten: %+v", r)
	}
}
