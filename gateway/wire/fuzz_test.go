package wire

import (
	"encoding/json"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

// seedFrames start FuzzDecodeFrame from every op, valid and subtly broken.
var seedFrames = []string{
	`{"id":"1","op":"ping"}`,
	`{"id":"1","op":"register","user":"alice","password":"12345678"}`,
	`{"id":"1","op":"login","user":"alice","password":"pw","device":"phone:1"}`,
	`{"id":"1","op":"resume","token":"tok"}`,
	`{"id":"1","op":"user_info","user":"bob"}`,
	`{"id":"1","op":"user_update","nickname":""}`,
	`{"id":"1","op":"send","to":"bob","text":"hi\n\u00e9\ud83d\ude00","cmid":"c1"}`,
	`{"id":"1","op":"send","group":"g","text":"<&>","cmid":"c1","extra":[1,{"a":null}]}`,
	`{"id":"1","op":"sync","after":{"dm:a:b":3,"g:x":0},"limit":10}`,
	`{"id":"1","op":"sync","cursor":"abc"}`,
	`{"id":"1","op":"history","conv":"dm:a:b","before":10,"after":2,"limit":5,"read":"local"}`,
	`{"id":"m1","op":"ack","conv":"g:x"}`,
	`{"id":"1","op":"read","conv":"g:x","seq":4}`,
	`{"id":"1","op":"read","conv":"g:x","msg_id":"m"}`,
	`{"id":"1","op":"typing","conv":"dm:a:b"}`,
	`{"id":"1","op":"group_create","group":"team","members":["a","b"]}`,
	`{"id":"1","op":"group_join","group":"team"}`,
	`{"id":"1","op":"presence","users":["a","b","c"]}`,
	`{"i\u0064":"x","op":"ping"}`,
	"{\"id\":\"<&>\u2028\",\"op\":\"ping\"}",
	`{"id":"1","op":"ping",`,
	`{"id":1,"op":"ping"}`,
	`[1,2]`,
	`{"id":"1","op":"send","to":"bob","text":"a\ud800","cmid":"c"}`,
	"{\"id\":\"1\",\"op\":\"send\",\"to\":\"bob\",\"text\":\"\xff\",\"cmid\":\"c\"}",
	`{"id":"1","op":"sync","limit":1e3}`,
	`{"id":"1","op":"history","conv":"g:x","after":{"g:x":1}}`,
	``, `"`, `{`, `{"`, `{"id"`, `{"id":`, `{"id":"\`, `[[[[[[[[[[`,
}

// FuzzDecodeFrame checks that Decode never panics, that what it accepts is a
// valid JSON object that encoding/json reads the same way, that Validate
// agrees, and that re-encoding the request decodes to the same request.
func FuzzDecodeFrame(f *testing.F) {
	for _, s := range seedFrames {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		checkSyntaxAgrees(t, frame)
		r, id, e := Decode(frame)
		if id != nil && checkID(id) != nil {
			t.Fatalf("Decode returned id %q, which a reply must not echo", id)
		}
		if e != nil {
			if r != nil {
				t.Fatalf("Decode returned both a request and %v", e)
			}
			if e.Code != BadRequest && e.Code != TooLarge {
				t.Fatalf("Decode returned code %s; it only produces bad_request and too_large", e.Code)
			}
			if out := ErrorReply(id, e); !json.Valid(out) || !utf8.Valid(out) {
				t.Fatalf("error reply is not valid UTF-8 JSON: %q", out)
			}
			return
		}
		if r == nil || string(r.ID) != string(id) {
			t.Fatalf("Decode accepted %q but returned request %+v, id %s", frame, r, id)
		}
		if ve := Validate(r); ve != nil {
			t.Fatalf("Decode accepted %q, but Validate rejects the result: %v", frame, ve)
		}
		if !json.Valid(frame) || !utf8.Valid(frame) {
			t.Fatalf("Decode accepted %q, which is not valid UTF-8 JSON", frame)
		}
		compareWithEncodingJSON(t, frame, r)
		again, _, e2 := Decode(encodeRequest(r))
		if e2 != nil || !reflect.DeepEqual(again, r) {
			t.Fatalf("re-encoding %+v and decoding it gave %+v, %v", r, again, e2)
		}
		if out := Reply(id, nil); !json.Valid(out) {
			t.Fatalf("Reply(%s) is not valid JSON", id)
		}
	})
}

// checkSyntaxAgrees checks checkJSON against json.Valid.
func checkSyntaxAgrees(t *testing.T, b []byte) {
	t.Helper()
	if got, want := checkJSON(b), json.Valid(b); got != want {
		t.Fatalf("checkJSON(%s) = %v; json.Valid says %v", clip(string(b)), got, want)
	}
}

// compareWithEncodingJSON checks the string fields Decode read against what
// encoding/json reads into a map, whose keys match exactly.
func compareWithEncodingJSON(t *testing.T, frame []byte, r *Request) {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(frame, &m); err != nil {
		t.Fatalf("encoding/json rejects %q, which Decode accepted: %v", frame, err)
	}
	var id string
	if err := json.Unmarshal(m["id"], &id); err != nil || string(m["id"]) != string(r.ID) {
		t.Fatalf("id: encoding/json sees %s, Decode %s", m["id"], r.ID)
	}
	for key, got := range map[string]string{
		"op": r.Op, "user": r.User, "password": r.Password, "token": r.Token, "nickname": r.Nickname,
		"to": r.To, "group": r.Group, "text": r.Text, "cmid": r.Cmid, "cursor": r.Cursor, "conv": r.Conv, "msg_id": r.MsgID,
	} {
		raw, ok := m[key]
		if got == "" || !ok {
			continue
		}
		var want string
		if err := json.Unmarshal(raw, &want); err != nil || want != got {
			t.Fatalf("%s: encoding/json reads %q (%v), Decode %q", key, want, err, got)
		}
	}
	if _, ok := m["msg_id"]; r.MsgID != "" && !ok && r.MsgID != id {
		t.Fatalf("msg_id taken from the envelope id %q is %q", id, r.MsgID)
	}
}

// encodeRequest writes r back as a frame, as a client would.
func encodeRequest(r *Request) []byte {
	m := map[string]any{"id": r.ID, "op": r.Op}
	put := func(k, v string) {
		if v != "" {
			m[k] = v
		}
	}
	put("user", r.User)
	put("password", r.Password)
	put("device", r.Device)
	put("token", r.Token)
	put("to", r.To)
	put("group", r.Group)
	put("text", r.Text)
	put("cmid", r.Cmid)
	put("cursor", r.Cursor)
	put("conv", r.Conv)
	put("read", r.Read)
	put("msg_id", r.MsgID)
	if r.Op == OpUserUpdate {
		m["nickname"] = r.Nickname
	}
	if r.Op == OpSync && r.After != nil {
		m["after"] = r.After
	}
	if r.AfterSeq != 0 {
		m["after"] = r.AfterSeq
	}
	for k, v := range map[string]uint64{"before": r.BeforeSeq, "seq": r.Seq, "limit": uint64(r.Limit)} {
		if v != 0 {
			m[k] = v
		}
	}
	if r.Members != nil {
		m["members"] = r.Members
	}
	if r.Users != nil {
		m["users"] = r.Users
	}
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // or a raw id like "&" comes back as "\u0026"
	if err := enc.Encode(m); err != nil {
		panic(err)
	}
	return []byte(b.String())
}

var convRE = regexp.MustCompile(`^(?:dm:([a-z0-9_.-]{1,32}):([a-z0-9_.-]{1,32})|g:[a-z0-9_.-]{1,32})$`)

// oracleValid restates the protocol's rules with regexps and lengths,
// independently of Validate.
func oracleValid(r *Request) bool {
	utf := utf8.ValidString
	between := func(s string, lo, hi int) bool { return lo <= len(s) && len(s) <= hi && utf(s) }
	conv := func(s string) bool {
		m := convRE.FindStringSubmatch(s)
		return m != nil && (m[1] == "" || m[1] < m[2])
	}
	names := func(l []string, lo, hi int) bool {
		for _, s := range l {
			if !nameRE.MatchString(s) {
				return false
			}
		}
		return lo <= len(l) && len(l) <= hi
	}
	if r.ID != nil {
		var s string
		if len(r.ID)-2 > MaxID || !utf8.Valid(r.ID) || json.Unmarshal(r.ID, &s) != nil || r.ID[0] != '"' || r.ID[len(r.ID)-1] != '"' {
			return false
		}
	}
	switch r.Op {
	case OpRegister:
		return nameRE.MatchString(r.User) && between(r.Password, 8, 128)
	case OpLogin:
		return nameRE.MatchString(r.User) && between(r.Password, 1, 128) && deviceRE.MatchString(r.Device)
	case OpResume:
		return between(r.Token, 1, 1024) && deviceRE.MatchString(r.Device)
	case OpUserInfo:
		return nameRE.MatchString(r.User)
	case OpUserUpdate:
		return between(r.Nickname, 0, 64)
	case OpSend:
		return (r.To == "") != (r.Group == "") && nameRE.MatchString(r.To+r.Group) &&
			between(r.Text, 1, 4096) && between(r.Cmid, 1, 64)
	case OpSync:
		for k := range r.After {
			if !conv(k) {
				return false
			}
		}
		return !(r.Cursor != "" && r.After != nil) && between(r.Cursor, 0, 1024) && 1 <= r.Limit && r.Limit <= 1000
	case OpHistory:
		return conv(r.Conv) && 1 <= r.Limit && r.Limit <= 1000 && (r.Read == "linearizable" || r.Read == "local") &&
			(r.BeforeSeq == 0 || r.AfterSeq < r.BeforeSeq)
	case OpAck, OpRead:
		return conv(r.Conv) && (r.Seq != 0) != (r.MsgID != "") && between(r.MsgID, 0, 128)
	case OpTyping:
		return conv(r.Conv)
	case OpGroupCreate:
		return nameRE.MatchString(r.Group) && names(r.Members, 0, 256)
	case OpGroupJoin, OpGroupLeave, OpGroupMembers:
		return nameRE.MatchString(r.Group)
	case OpPresence:
		return names(r.Users, 1, 256)
	case OpPing:
		return true
	case OpStatus:
		return r.Conv == "" || conv(r.Conv)
	}
	return false
}

// FuzzValidateRequest puts random values into a Request and checks that
// Validate never panics and accepts exactly what the spec's rules accept.
func FuzzValidateRequest(f *testing.F) {
	f.Add([]byte(`"1"`), "send", "", "", "", "", "", "bob", "", "hello", "c1", "", "", "", "", uint64(0), uint64(0), uint64(0), 0, "", "")
	f.Add([]byte(`"1"`), "send", "", "", "", "", "", "bob", "team", "hello", "c1", "", "", "", "", uint64(0), uint64(0), uint64(0), 0, "", "")
	f.Add([]byte(`"1"`), "send", "", "", "", "", "", "", "team", strings.Repeat("x", 4097), "c1", "", "", "", "", uint64(0), uint64(0), uint64(0), 0, "", "")
	f.Add([]byte(nil), "register", "alice", "12345678", "", "", "", "", "", "", "", "", "", "", "", uint64(0), uint64(0), uint64(0), 0, "", "")
	f.Add([]byte(`7`), "login", "alice", "pw", "default", "", "", "", "", "", "", "", "", "", "", uint64(0), uint64(0), uint64(0), 0, "", "")
	f.Add([]byte(nil), "resume", "", "", "phone:1", "tok", "", "", "", "", "", "", "", "", "", uint64(0), uint64(0), uint64(0), 0, "", "")
	f.Add([]byte(nil), "user_update", "", "", "", "", "nick\xff", "", "", "", "", "", "", "", "", uint64(0), uint64(0), uint64(0), 0, "", "")
	f.Add([]byte(nil), "sync", "", "", "", "", "", "", "", "", "", "cur", "", "", "", uint64(3), uint64(0), uint64(0), 500, "", "dm:a:b")
	f.Add([]byte(nil), "history", "", "", "", "", "", "", "", "", "", "", "dm:a:b", "local", "", uint64(0), uint64(9), uint64(3), 50, "", "")
	f.Add([]byte(nil), "ack", "", "", "", "", "", "", "", "", "", "", "g:x", "", "m1", uint64(0), uint64(0), uint64(0), 0, "", "")
	f.Add([]byte(nil), "read", "", "", "", "", "", "", "", "", "", "", "dm:b:a", "", "", uint64(5), uint64(0), uint64(0), 0, "", "")
	f.Add([]byte(nil), "group_create", "", "", "", "", "", "", "team", "", "", "", "", "", "", uint64(0), uint64(0), uint64(0), 0, "a,b,c", "")
	f.Add([]byte(nil), "presence", "", "", "", "", "", "", "", "", "", "", "", "", "", uint64(0), uint64(0), uint64(0), 0, "a,B", "")
	f.Add([]byte(nil), "typing", "", "", "", "", "", "", "", "", "", "", "g:", "", "", uint64(0), uint64(0), uint64(0), 0, "", "")
	f.Fuzz(func(t *testing.T, id []byte, op, user, password, device, token, nickname, to, group, text, cmid, cursor, conv, read, msgID string,
		seq, before, after uint64, limit int, list, afterKey string) {
		r := &Request{
			Op: op, User: user, Password: password, Device: device, Token: token, Nickname: nickname,
			To: to, Group: group, Text: text, Cmid: cmid, Cursor: cursor, Conv: conv, Read: read, MsgID: msgID,
			Seq: seq, BeforeSeq: before, AfterSeq: after, Limit: limit,
		}
		if len(id) > 0 {
			r.ID = id
		}
		if afterKey != "" {
			r.After = map[string]uint64{afterKey: seq}
		}
		if list != "" {
			r.Members = strings.Split(list, ",")
			r.Users = r.Members
		}
		e := Validate(r)
		if want := oracleValid(r); (e == nil) != want {
			t.Fatalf("Validate(%+v) = %v; the spec's rules say valid=%v", r, e, want)
		}
		if e != nil && e.Code != BadRequest && e.Code != TooLarge {
			t.Fatalf("Validate returned code %s", e.Code)
		}
	})
}
