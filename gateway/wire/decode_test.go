package wire

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// decodeCase is one frame and what Decode must make of it. want, when set,
// is the exact Request (ID is filled from the case); code "" means success.
type decodeCase struct {
	name   string
	frame  string
	code   Code
	id     string // raw id expected back; "" means nil (the reply says null)
	msg    string // a substring the error message must contain, e.g. the field
	want   *Request
	verify func(t *testing.T, r *Request)
}

func runDecodeCases(t *testing.T, cases []decodeCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, id, e := Decode([]byte(tc.frame))
			if string(id) != tc.id {
				t.Errorf("echoed id = %s, want %q", id, tc.id)
			}
			if tc.code != "" {
				if e == nil {
					t.Fatalf("Decode accepted %s as %+v; want %s", tc.frame, r, tc.code)
				}
				if e.Code != tc.code || !strings.Contains(e.Message, tc.msg) {
					t.Fatalf("error = %v; want code %s mentioning %q", e, tc.code, tc.msg)
				}
				if r != nil {
					t.Errorf("Decode returned a request with an error")
				}
				return
			}
			if e != nil {
				t.Fatalf("Decode(%s) = %v; want success", tc.frame, e)
			}
			if string(r.ID) != string(id) {
				t.Errorf("r.ID = %s, returned id = %s; they must agree", r.ID, id)
			}
			if tc.want != nil {
				want := *tc.want
				want.ID = json.RawMessage(tc.id)
				if !reflect.DeepEqual(r, &want) {
					t.Errorf("Decode(%s)\n got %+v\nwant %+v", tc.frame, r, &want)
				}
			}
			if tc.verify != nil {
				tc.verify(t, r)
			}
		})
	}
}

func TestDecodeEnvelope(t *testing.T) {
	runDecodeCases(t, []decodeCase{
		{name: "ping", frame: `{"id":"1","op":"ping"}`, id: `"1"`, want: &Request{Op: "ping"}},
		{name: "whitespace", frame: " \n{ \"op\" : \"ping\" ,\t\"id\" : \"a b\" }\r\n", id: `"a b"`, want: &Request{Op: "ping"}},
		{name: "empty id is an id", frame: `{"id":"","op":"ping"}`, id: `""`, want: &Request{Op: "ping"}},
		{name: "escaped id echoed verbatim", frame: `{"id":"a\"\u00e9","op":"ping"}`, id: `"a\"\u00e9"`},
		{name: "unknown fields ignored", frame: `{"id":"1","op":"ping","x":[1,{"y":"}"}],"z":null,"w":-1.5e3,"v":true}`, id: `"1"`},
		{name: "fields of other ops ignored", frame: `{"id":"1","op":"ping","text":5,"user":"BAD NAME"}`, id: `"1"`, want: &Request{Op: "ping"}},
		{name: "keys are case-sensitive", frame: `{"id":"1","op":"send","to":"bob","text":"hi","cmid":"c","Text":5,"TO":"x"}`, id: `"1"`,
			want: &Request{Op: "send", To: "bob", Text: "hi", Cmid: "c"}},
		{name: "escaped key matches", frame: `{"i\u0064":"1","op":"ping"}`, id: `"1"`},
		{name: "duplicate key keeps last", frame: `{"id":"1","op":"send","to":"bob","text":"a","text":"b","cmid":"c"}`, id: `"1"`,
			verify: func(t *testing.T, r *Request) {
				if r.Text != "b" {
					t.Errorf("text = %q; a repeated key must keep its last value", r.Text)
				}
			}},

		{name: "invalid JSON, id readable", frame: `{"id":"7","op":"ping",`, code: BadRequest, id: `"7"`, msg: "not valid JSON"},
		{name: "invalid JSON after id", frame: `{"id":"7","op":"ping","x":tru}`, code: BadRequest, id: `"7"`, msg: "not valid JSON"},
		{name: "invalid JSON, no id", frame: `{"op":`, code: BadRequest, msg: "not valid JSON"},
		{name: "invalid JSON, broken id", frame: `{"id":"7`, code: BadRequest, msg: "not valid JSON"},
		{name: "invalid JSON, id not string", frame: `{"id":7,}`, code: BadRequest, msg: "not valid JSON"},
		{name: "empty frame", frame: ``, code: BadRequest, msg: "not valid JSON"},
		{name: "garbage", frame: `hello`, code: BadRequest, msg: "not valid JSON"},
		{name: "two objects", frame: `{"id":"1","op":"ping"}{}`, code: BadRequest, id: `"1"`, msg: "not valid JSON"},
		{name: "array", frame: `[{"id":"1","op":"ping"}]`, code: BadRequest, msg: "not a JSON object"},
		{name: "string", frame: `"ping"`, code: BadRequest, msg: "not a JSON object"},
		{name: "null", frame: `null`, code: BadRequest, msg: "not a JSON object"},
		{name: "missing id", frame: `{"op":"ping"}`, code: BadRequest, msg: "missing id"},
		{name: "null id", frame: `{"id":null,"op":"ping"}`, code: BadRequest, msg: "missing id"},
		{name: "number id", frame: `{"id":1,"op":"ping"}`, code: BadRequest, msg: "id must be a JSON string"},
		{name: "object id", frame: `{"id":{"a":"b"},"op":"ping"}`, code: BadRequest, msg: "id must be a JSON string"},
		{name: "id of 128 bytes", frame: `{"id":"` + strings.Repeat("x", 128) + `","op":"ping"}`, id: `"` + strings.Repeat("x", 128) + `"`},
		{name: "id of 129 bytes", frame: `{"id":"` + strings.Repeat("x", 129) + `","op":"ping"}`, code: TooLarge, msg: "id is 129 bytes"},
		{name: "missing op", frame: `{"id":"1"}`, code: BadRequest, id: `"1"`, msg: "missing op"},
		{name: "null op", frame: `{"id":"1","op":null}`, code: BadRequest, id: `"1"`, msg: "missing op"},
		{name: "number op", frame: `{"id":"1","op":3}`, code: BadRequest, id: `"1"`, msg: "op must be a JSON string"},
		{name: "unknown op", frame: `{"id":"1","op":"dance"}`, code: BadRequest, id: `"1"`, msg: `unknown op "dance"`},
		{name: "op is case-sensitive", frame: `{"id":"1","op":"PING"}`, code: BadRequest, id: `"1"`, msg: "unknown op"},
		{name: "long unknown op clipped", frame: `{"id":"1","op":"` + strings.Repeat("o", 5000) + `"}`, code: BadRequest, id: `"1"`, msg: `"...`},
		{name: "missing id and unknown op", frame: `{"op":"dance"}`, code: BadRequest, msg: "missing id"},
		{name: "frame over MaxFrame", frame: `{"id":"1","op":"ping","pad":"` + strings.Repeat("x", MaxFrame) + `"}`, code: TooLarge, msg: "frame is"},

		{name: "invalid UTF-8 in text", frame: "{\"id\":\"1\",\"op\":\"send\",\"to\":\"bob\",\"cmid\":\"c\",\"text\":\"a\xffb\"}", code: BadRequest, id: `"1"`, msg: "text is not valid UTF-8"},
		{name: "invalid UTF-8 in unknown field", frame: "{\"id\":\"1\",\"op\":\"ping\",\"x\":\"\xc3\"}", code: BadRequest, id: `"1"`, msg: "frame is not valid UTF-8"},
		{name: "invalid UTF-8 in id", frame: "{\"id\":\"\xff\",\"op\":\"ping\"}", code: BadRequest, msg: "id is not a valid UTF-8"},
		{name: "unpaired surrogate in text", frame: `{"id":"1","op":"send","to":"bob","cmid":"c","text":"a\ud800b"}`, code: BadRequest, id: `"1"`, msg: "text has an invalid escape"},
		{name: "reversed surrogates in text", frame: `{"id":"1","op":"send","to":"bob","cmid":"c","text":"\udc00\ud800"}`, code: BadRequest, id: `"1"`, msg: "text"},
		{name: "surrogate pair in text", frame: `{"id":"1","op":"send","to":"bob","cmid":"c","text":"\ud83d\ude00\n\t\"\\\/\b\f\r\u0041"}`, id: `"1"`,
			verify: func(t *testing.T, r *Request) {
				if want := "😀\n\t\"\\/\b\f\rA"; r.Text != want {
					t.Errorf("text = %q, want %q", r.Text, want)
				}
			}},
	})
}

func TestDecodeOps(t *testing.T) {
	long := func(n int) string { return strings.Repeat("a", n) }
	runDecodeCases(t, []decodeCase{
		{name: "register", frame: `{"id":"1","op":"register","user":"alice","password":"12345678"}`, id: `"1"`,
			want: &Request{Op: "register", User: "alice", Password: "12345678"}},
		{name: "register password 7", frame: `{"id":"1","op":"register","user":"alice","password":"1234567"}`, code: BadRequest, id: `"1"`, msg: "password is 7 bytes, under the minimum of 8"},
		{name: "register password 128", frame: `{"id":"1","op":"register","user":"alice","password":"` + long(128) + `"}`, id: `"1"`},
		{name: "register password 129", frame: `{"id":"1","op":"register","user":"alice","password":"` + long(129) + `"}`, code: TooLarge, id: `"1"`, msg: "password is 129 bytes, over the limit of 128"},
		{name: "register missing password", frame: `{"id":"1","op":"register","user":"alice"}`, code: BadRequest, id: `"1"`, msg: "missing field password"},
		{name: "register missing user", frame: `{"id":"1","op":"register","password":"12345678"}`, code: BadRequest, id: `"1"`, msg: "missing field user"},
		{name: "register bad name", frame: `{"id":"1","op":"register","user":"Alice","password":"12345678"}`, code: BadRequest, id: `"1"`, msg: "user \"Alice\" is not a valid name"},
		{name: "register name 33", frame: `{"id":"1","op":"register","user":"` + long(33) + `","password":"12345678"}`, code: BadRequest, id: `"1"`, msg: "not a valid name"},
		{name: "register name 32", frame: `{"id":"1","op":"register","user":"` + long(32) + `","password":"12345678"}`, id: `"1"`},
		{name: "register empty user", frame: `{"id":"1","op":"register","user":"","password":"12345678"}`, code: BadRequest, id: `"1"`, msg: "user is empty"},
		{name: "register user wrong type", frame: `{"id":"1","op":"register","user":["alice"],"password":"12345678"}`, code: BadRequest, id: `"1"`, msg: "user must be a JSON string"},

		{name: "login default device", frame: `{"id":"1","op":"login","user":"alice","password":"pw"}`, id: `"1"`,
			want: &Request{Op: "login", User: "alice", Password: "pw", Device: "default"}},
		{name: "login device", frame: `{"id":"1","op":"login","user":"alice","password":"pw","device":"Phone-1:a.b_c"}`, id: `"1"`,
			want: &Request{Op: "login", User: "alice", Password: "pw", Device: "Phone-1:a.b_c"}},
		{name: "login null device", frame: `{"id":"1","op":"login","user":"alice","password":"pw","device":null}`, id: `"1"`,
			want: &Request{Op: "login", User: "alice", Password: "pw", Device: "default"}},
		{name: "login empty device", frame: `{"id":"1","op":"login","user":"alice","password":"pw","device":""}`, code: BadRequest, id: `"1"`, msg: "device"},
		{name: "login device 64", frame: `{"id":"1","op":"login","user":"alice","password":"pw","device":"` + long(64) + `"}`, id: `"1"`},
		{name: "login device 65", frame: `{"id":"1","op":"login","user":"alice","password":"pw","device":"` + long(65) + `"}`, code: BadRequest, id: `"1"`, msg: "device"},
		{name: "login device slash", frame: `{"id":"1","op":"login","user":"alice","password":"pw","device":"a/b"}`, code: BadRequest, id: `"1"`, msg: "device"},
		{name: "login device number", frame: `{"id":"1","op":"login","user":"alice","password":"pw","device":1}`, code: BadRequest, id: `"1"`, msg: "device must be a JSON string"},
		{name: "login empty password", frame: `{"id":"1","op":"login","user":"alice","password":""}`, code: BadRequest, id: `"1"`, msg: "password is empty"},
		{name: "login password 129", frame: `{"id":"1","op":"login","user":"alice","password":"` + long(129) + `"}`, code: TooLarge, id: `"1"`, msg: "password"},

		{name: "resume", frame: `{"id":"1","op":"resume","token":"t0k"}`, id: `"1"`, want: &Request{Op: "resume", Token: "t0k", Device: "default"}},
		{name: "resume missing token", frame: `{"id":"1","op":"resume"}`, code: BadRequest, id: `"1"`, msg: "missing field token"},
		{name: "resume empty token", frame: `{"id":"1","op":"resume","token":""}`, code: BadRequest, id: `"1"`, msg: "token is empty"},
		{name: "resume token 1024", frame: `{"id":"1","op":"resume","token":"` + long(1024) + `"}`, id: `"1"`},
		{name: "resume token 1025", frame: `{"id":"1","op":"resume","token":"` + long(1025) + `"}`, code: TooLarge, id: `"1"`, msg: "token is 1025 bytes, over the limit of 1024"},

		{name: "user_info", frame: `{"id":"1","op":"user_info","user":"bob"}`, id: `"1"`, want: &Request{Op: "user_info", User: "bob"}},
		{name: "user_info missing", frame: `{"id":"1","op":"user_info"}`, code: BadRequest, id: `"1"`, msg: "missing field user"},

		{name: "user_update", frame: `{"id":"1","op":"user_update","nickname":"Bob ☃"}`, id: `"1"`, want: &Request{Op: "user_update", Nickname: "Bob ☃"}},
		{name: "user_update empty clears", frame: `{"id":"1","op":"user_update","nickname":""}`, id: `"1"`, want: &Request{Op: "user_update"}},
		{name: "user_update missing", frame: `{"id":"1","op":"user_update"}`, code: BadRequest, id: `"1"`, msg: "missing field nickname"},
		{name: "user_update 64", frame: `{"id":"1","op":"user_update","nickname":"` + long(64) + `"}`, id: `"1"`},
		{name: "user_update 65", frame: `{"id":"1","op":"user_update","nickname":"` + long(65) + `"}`, code: TooLarge, id: `"1"`, msg: "nickname is 65 bytes"},
		{name: "user_update 22 snowmen", frame: `{"id":"1","op":"user_update","nickname":"` + strings.Repeat("☃", 22) + `"}`, code: TooLarge, id: `"1"`, msg: "nickname is 66 bytes"},
	})
}

func TestDecodeSend(t *testing.T) {
	send := func(extra string) string { return `{"id":"s1","op":"send",` + extra + `}` }
	runDecodeCases(t, []decodeCase{
		{name: "to user", frame: send(`"to":"bob","text":"hi <b>&","cmid":"c1"`), id: `"s1"`,
			want: &Request{Op: "send", To: "bob", Text: "hi <b>&", Cmid: "c1"}},
		{name: "to group", frame: send(`"group":"g1","text":"hi","cmid":"c1"`), id: `"s1"`,
			want: &Request{Op: "send", Group: "g1", Text: "hi", Cmid: "c1"}},
		{name: "both", frame: send(`"to":"bob","group":"g1","text":"hi","cmid":"c1"`), code: BadRequest, id: `"s1"`, msg: "not both"},
		{name: "neither", frame: send(`"text":"hi","cmid":"c1"`), code: BadRequest, id: `"s1"`, msg: "missing field to or group"},
		{name: "bad to", frame: send(`"to":"B@b","text":"hi","cmid":"c1"`), code: BadRequest, id: `"s1"`, msg: "to \"B@b\" is not a valid name"},
		{name: "bad group", frame: send(`"group":"g:x","text":"hi","cmid":"c1"`), code: BadRequest, id: `"s1"`, msg: "group"},
		{name: "empty to", frame: send(`"to":"","text":"hi","cmid":"c1"`), code: BadRequest, id: `"s1"`, msg: "send needs to (a user) or group"},
		{name: "text 4096", frame: send(`"to":"bob","cmid":"c1","text":"` + strings.Repeat("x", 4096) + `"`), id: `"s1"`},
		{name: "text 4097", frame: send(`"to":"bob","cmid":"c1","text":"` + strings.Repeat("x", 4097) + `"`), code: TooLarge, id: `"s1"`, msg: "text is 4097 bytes, over the limit of 4096"},
		{name: "text 1365 snowmen (4095 bytes)", frame: send(`"to":"bob","cmid":"c1","text":"` + strings.Repeat("☃", 1365) + `"`), id: `"s1"`},
		{name: "text 1366 snowmen (4098 bytes)", frame: send(`"to":"bob","cmid":"c1","text":"` + strings.Repeat("☃", 1366) + `"`), code: TooLarge, id: `"s1"`, msg: "text is 4098 bytes"},
		{name: "text 4096 via escapes", frame: send(`"to":"bob","cmid":"c1","text":"` + strings.Repeat(`\n`, 4096) + `"`), id: `"s1"`},
		{name: "text 4097 via escapes", frame: send(`"to":"bob","cmid":"c1","text":"` + strings.Repeat(`\u00e9`, 2048) + `x"`), code: TooLarge, id: `"s1"`, msg: "text is 4097 bytes"},
		{name: "empty text", frame: send(`"to":"bob","text":"","cmid":"c1"`), code: BadRequest, id: `"s1"`, msg: "text is empty"},
		{name: "missing text", frame: send(`"to":"bob","cmid":"c1"`), code: BadRequest, id: `"s1"`, msg: "missing field text"},
		{name: "number text", frame: send(`"to":"bob","text":42,"cmid":"c1"`), code: BadRequest, id: `"s1"`, msg: "text must be a JSON string"},
		{name: "missing cmid", frame: send(`"to":"bob","text":"hi"`), code: BadRequest, id: `"s1"`, msg: "missing field cmid"},
		{name: "empty cmid", frame: send(`"to":"bob","text":"hi","cmid":""`), code: BadRequest, id: `"s1"`, msg: "cmid is empty"},
		{name: "cmid 64", frame: send(`"to":"bob","text":"hi","cmid":"` + strings.Repeat("c", 64) + `"`), id: `"s1"`},
		{name: "cmid 65", frame: send(`"to":"bob","text":"hi","cmid":"` + strings.Repeat("c", 65) + `"`), code: TooLarge, id: `"s1"`, msg: "cmid is 65 bytes, over the limit of 64"},
		{name: "cmid number", frame: send(`"to":"bob","text":"hi","cmid":7`), code: BadRequest, id: `"s1"`, msg: "cmid must be a JSON string"},
	})
}

func TestDecodeSyncHistory(t *testing.T) {
	runDecodeCases(t, []decodeCase{
		{name: "sync from start", frame: `{"id":"1","op":"sync"}`, id: `"1"`, want: &Request{Op: "sync", Limit: 500}},
		{name: "sync null cursor", frame: `{"id":"1","op":"sync","cursor":null}`, id: `"1"`, want: &Request{Op: "sync", Limit: 500}},
		{name: "sync empty cursor", frame: `{"id":"1","op":"sync","cursor":""}`, id: `"1"`, want: &Request{Op: "sync", Limit: 500}},
		{name: "sync cursor", frame: `{"id":"1","op":"sync","cursor":"abc=","limit":10}`, id: `"1"`, want: &Request{Op: "sync", Cursor: "abc=", Limit: 10}},
		{name: "sync cursor 1025", frame: `{"id":"1","op":"sync","cursor":"` + strings.Repeat("c", 1025) + `"}`, code: TooLarge, id: `"1"`, msg: "cursor"},
		{name: "sync cursor number", frame: `{"id":"1","op":"sync","cursor":5}`, code: BadRequest, id: `"1"`, msg: "cursor must be a JSON string"},
		{name: "sync after", frame: `{"id":"1","op":"sync","after":{"dm:a:b":3,"g:x":0}}`, id: `"1"`,
			want: &Request{Op: "sync", After: map[string]uint64{"dm:a:b": 3, "g:x": 0}, Limit: 500}},
		{name: "sync after empty", frame: `{"id":"1","op":"sync","after":{}}`, id: `"1"`, want: &Request{Op: "sync", Limit: 500}},
		{name: "sync after array", frame: `{"id":"1","op":"sync","after":[1]}`, code: BadRequest, id: `"1"`, msg: "after must be a JSON object"},
		{name: "sync after seq", frame: `{"id":"1","op":"sync","after":5}`, code: BadRequest, id: `"1"`, msg: "after must be a JSON object"},
		{name: "sync after bad conv", frame: `{"id":"1","op":"sync","after":{"dm:b:a":1}}`, code: BadRequest, id: `"1"`, msg: "after has a key \"dm:b:a\""},
		{name: "sync after string seq", frame: `{"id":"1","op":"sync","after":{"g:x":"1"}}`, code: BadRequest, id: `"1"`, msg: `after["g:x"] must be`},
		{name: "sync after negative", frame: `{"id":"1","op":"sync","after":{"g:x":-1}}`, code: BadRequest, id: `"1"`, msg: "after"},
		{name: "sync cursor and after", frame: `{"id":"1","op":"sync","cursor":"c","after":{"g:x":1}}`, code: BadRequest, id: `"1"`, msg: "not both"},
		{name: "sync limit 1000", frame: `{"id":"1","op":"sync","limit":1000}`, id: `"1"`, want: &Request{Op: "sync", Limit: 1000}},
		{name: "sync limit 1001", frame: `{"id":"1","op":"sync","limit":1001}`, code: TooLarge, id: `"1"`, msg: "limit is 1001, over the maximum of 1000"},
		{name: "sync limit huge", frame: `{"id":"1","op":"sync","limit":18446744073709551615}`, code: TooLarge, id: `"1"`, msg: "limit is 18446744073709551615"},
		{name: "sync limit overflow", frame: `{"id":"1","op":"sync","limit":18446744073709551616}`, code: BadRequest, id: `"1"`, msg: "limit is out of range"},
		{name: "sync limit 0", frame: `{"id":"1","op":"sync","limit":0}`, code: BadRequest, id: `"1"`, msg: "limit is 0"},
		{name: "sync limit negative", frame: `{"id":"1","op":"sync","limit":-5}`, code: BadRequest, id: `"1"`, msg: "limit must be a non-negative integer"},
		{name: "sync limit fraction", frame: `{"id":"1","op":"sync","limit":2.5}`, code: BadRequest, id: `"1"`, msg: "limit"},
		{name: "sync limit exponent", frame: `{"id":"1","op":"sync","limit":1e2}`, code: BadRequest, id: `"1"`, msg: "limit"},
		{name: "sync limit string", frame: `{"id":"1","op":"sync","limit":"10"}`, code: BadRequest, id: `"1"`, msg: "limit"},

		{name: "history defaults", frame: `{"id":"1","op":"history","conv":"g:x"}`, id: `"1"`,
			want: &Request{Op: "history", Conv: "g:x", Limit: 50, Read: "linearizable"}},
		{name: "history full", frame: `{"id":"1","op":"history","conv":"dm:a:b","before":10,"after":2,"limit":1000,"read":"local"}`, id: `"1"`,
			want: &Request{Op: "history", Conv: "dm:a:b", BeforeSeq: 10, AfterSeq: 2, Limit: 1000, Read: "local"}},
		{name: "history after 0", frame: `{"id":"1","op":"history","conv":"g:x","after":0}`, id: `"1"`},
		{name: "history before 0", frame: `{"id":"1","op":"history","conv":"g:x","before":0}`, code: BadRequest, id: `"1"`, msg: "before must be at least 1"},
		{name: "history after >= before", frame: `{"id":"1","op":"history","conv":"g:x","before":5,"after":5}`, code: BadRequest, id: `"1"`, msg: "after (5) must be less than before (5)"},
		{name: "history after object", frame: `{"id":"1","op":"history","conv":"g:x","after":{"g:x":1}}`, code: BadRequest, id: `"1"`, msg: "after must be a non-negative integer"},
		{name: "history limit 1001", frame: `{"id":"1","op":"history","conv":"g:x","limit":1001}`, code: TooLarge, id: `"1"`, msg: "limit"},
		{name: "history read bogus", frame: `{"id":"1","op":"history","conv":"g:x","read":"stale"}`, code: BadRequest, id: `"1"`, msg: "read is \"stale\""},
		{name: "history read empty", frame: `{"id":"1","op":"history","conv":"g:x","read":""}`, code: BadRequest, id: `"1"`, msg: "read"},
		{name: "history missing conv", frame: `{"id":"1","op":"history"}`, code: BadRequest, id: `"1"`, msg: "missing field conv"},
		{name: "history bad conv", frame: `{"id":"1","op":"history","conv":"dm:a:a"}`, code: BadRequest, id: `"1"`, msg: "conv \"dm:a:a\" is not a conversation id"},
	})
}

func TestDecodeReceiptsGroups(t *testing.T) {
	runDecodeCases(t, []decodeCase{
		{name: "ack seq", frame: `{"id":"1","op":"ack","conv":"g:x","seq":4}`, id: `"1"`, want: &Request{Op: "ack", Conv: "g:x", Seq: 4}},
		{name: "read msg_id", frame: `{"id":"1","op":"read","conv":"g:x","msg_id":"m-9"}`, id: `"1"`, want: &Request{Op: "read", Conv: "g:x", MsgID: "m-9"}},
		{name: "ack by envelope id", frame: `{"id":"m-\u0039","op":"ack","conv":"dm:a:b"}`, id: `"m-\u0039"`, want: &Request{Op: "ack", Conv: "dm:a:b", MsgID: "m-9"}},
		{name: "ack empty envelope id", frame: `{"id":"","op":"ack","conv":"dm:a:b"}`, code: BadRequest, id: `""`, msg: "ack needs seq"},
		{name: "ack seq and msg_id", frame: `{"id":"1","op":"ack","conv":"g:x","seq":1,"msg_id":"m"}`, code: BadRequest, id: `"1"`, msg: "not both"},
		{name: "ack seq 0", frame: `{"id":"1","op":"ack","conv":"g:x","seq":0}`, code: BadRequest, id: `"1"`, msg: "seq must be at least 1"},
		{name: "ack seq string", frame: `{"id":"1","op":"ack","conv":"g:x","seq":"4"}`, code: BadRequest, id: `"1"`, msg: "seq must be a non-negative integer"},
		{name: "ack msg_id 129", frame: `{"id":"1","op":"ack","conv":"g:x","msg_id":"` + strings.Repeat("m", 129) + `"}`, code: TooLarge, id: `"1"`, msg: "msg_id"},
		{name: "ack missing conv", frame: `{"id":"1","op":"ack","seq":1}`, code: BadRequest, id: `"1"`, msg: "missing field conv"},
		{name: "read bad conv", frame: `{"id":"1","op":"read","conv":"x:y","seq":1}`, code: BadRequest, id: `"1"`, msg: "conv"},

		{name: "typing", frame: `{"id":"1","op":"typing","conv":"dm:a:b"}`, id: `"1"`, want: &Request{Op: "typing", Conv: "dm:a:b"}},
		{name: "typing no conv", frame: `{"id":"1","op":"typing"}`, code: BadRequest, id: `"1"`, msg: "missing field conv"},

		{name: "group_create", frame: `{"id":"1","op":"group_create","group":"team","members":["a","b"]}`, id: `"1"`,
			want: &Request{Op: "group_create", Group: "team", Members: []string{"a", "b"}}},
		{name: "group_create no members", frame: `{"id":"1","op":"group_create","group":"team","members":[]}`, id: `"1"`,
			want: &Request{Op: "group_create", Group: "team"}},
		{name: "group_create bad member", frame: `{"id":"1","op":"group_create","group":"team","members":["a","B"]}`, code: BadRequest, id: `"1"`, msg: "members[1] \"B\""},
		{name: "group_create member number", frame: `{"id":"1","op":"group_create","group":"team","members":["a",2]}`, code: BadRequest, id: `"1"`, msg: "members[1] must be a JSON string"},
		{name: "group_create members string", frame: `{"id":"1","op":"group_create","group":"team","members":"a"}`, code: BadRequest, id: `"1"`, msg: "members must be a JSON array"},
		{name: "group_create 256 members", frame: `{"id":"1","op":"group_create","group":"team","members":` + nameArray(256) + `}`, id: `"1"`},
		{name: "group_create 257 members", frame: `{"id":"1","op":"group_create","group":"team","members":` + nameArray(257) + `}`, code: TooLarge, id: `"1"`, msg: "members has more than 256"},
		{name: "group_create missing group", frame: `{"id":"1","op":"group_create"}`, code: BadRequest, id: `"1"`, msg: "missing field group"},
		{name: "group_join", frame: `{"id":"1","op":"group_join","group":"team"}`, id: `"1"`, want: &Request{Op: "group_join", Group: "team"}},
		{name: "group_leave", frame: `{"id":"1","op":"group_leave","group":"team"}`, id: `"1"`, want: &Request{Op: "group_leave", Group: "team"}},
		{name: "group_members", frame: `{"id":"1","op":"group_members","group":"team"}`, id: `"1"`, want: &Request{Op: "group_members", Group: "team"}},
		{name: "group_join bad", frame: `{"id":"1","op":"group_join","group":"Team"}`, code: BadRequest, id: `"1"`, msg: "group"},
		{name: "group_leave missing", frame: `{"id":"1","op":"group_leave"}`, code: BadRequest, id: `"1"`, msg: "missing field group"},

		{name: "presence", frame: `{"id":"1","op":"presence","users":["a","b"]}`, id: `"1"`, want: &Request{Op: "presence", Users: []string{"a", "b"}}},
		{name: "presence empty", frame: `{"id":"1","op":"presence","users":[]}`, code: BadRequest, id: `"1"`, msg: "users is empty"},
		{name: "presence missing", frame: `{"id":"1","op":"presence"}`, code: BadRequest, id: `"1"`, msg: "missing field users"},
		{name: "presence 256", frame: `{"id":"1","op":"presence","users":` + nameArray(256) + `}`, id: `"1"`},
		{name: "presence 257", frame: `{"id":"1","op":"presence","users":` + nameArray(257) + `}`, code: TooLarge, id: `"1"`, msg: "users has more than 256"},
		{name: "presence null element", frame: `{"id":"1","op":"presence","users":[null]}`, code: BadRequest, id: `"1"`, msg: "users[0]"},
		{name: "presence bad name", frame: `{"id":"1","op":"presence","users":["ok","no way"]}`, code: BadRequest, id: `"1"`, msg: "users[1]"},
	})
}

// nameArray returns a JSON array of n distinct valid names.
func nameArray(n int) string {
	var b strings.Builder
	b.WriteByte('[')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"u` + strings.Repeat("x", i%20) + string(rune('a'+i%26)) + `"`)
	}
	b.WriteByte(']')
	return b.String()
}
