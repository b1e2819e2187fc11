package wire

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestValidate covers what Decode cannot reach: requests built by hand,
// which must carry the defaults Decode would fill.
func TestValidate(t *testing.T) {
	cases := []struct {
		name string
		r    *Request
		code Code // "" means valid
		msg  string
	}{
		{"nil", nil, BadRequest, "no request"},
		{"no id is fine", &Request{Op: "ping"}, "", ""},
		{"id not a string", &Request{ID: json.RawMessage(`5`), Op: "ping"}, BadRequest, "id must be a JSON string"},
		{"id too long", &Request{ID: json.RawMessage(`"` + strings.Repeat("i", 129) + `"`), Op: "ping"}, TooLarge, "id is 129 bytes"},
		{"id broken escape", &Request{ID: json.RawMessage(`"\x"`), Op: "ping"}, BadRequest, "id is not"},
		{"empty op", &Request{}, BadRequest, "unknown op"},
		{"sync limit 0", &Request{Op: "sync"}, BadRequest, "limit is 0"},
		{"sync limit -1", &Request{Op: "sync", Limit: -1}, BadRequest, "limit is -1"},
		{"sync limit 1001", &Request{Op: "sync", Limit: 1001}, TooLarge, "limit is 1001"},
		{"sync ok", &Request{Op: "sync", Limit: 1}, "", ""},
		{"sync cursor and empty after", &Request{Op: "sync", Limit: 1, Cursor: "c", After: map[string]uint64{}}, BadRequest, "not both"},
		{"history no read", &Request{Op: "history", Conv: "g:x", Limit: 50}, BadRequest, "read is \"\""},
		{"history limit 0", &Request{Op: "history", Conv: "g:x", Read: "local"}, BadRequest, "limit is 0"},
		{"login no device", &Request{Op: "login", User: "a", Password: "p"}, BadRequest, "device"},
		{"resume no device", &Request{Op: "resume", Token: "t"}, BadRequest, "device"},
		{"ack neither", &Request{Op: "ack", Conv: "g:x"}, BadRequest, "ack needs seq"},
		{"read both", &Request{Op: "read", Conv: "g:x", Seq: 1, MsgID: "m"}, BadRequest, "not both"},
		{"read msg_id invalid UTF-8", &Request{Op: "read", Conv: "g:x", MsgID: "m\xff"}, BadRequest, "msg_id is not valid UTF-8"},
		{"send invalid UTF-8", &Request{Op: "send", To: "bob", Text: "a\xc3", Cmid: "c"}, BadRequest, "text is not valid UTF-8"},
		{"send neither", &Request{Op: "send", Text: "a", Cmid: "c"}, BadRequest, "send needs to (a user) or group"},
		{"nickname invalid UTF-8", &Request{Op: "user_update", Nickname: "\xed\xa0\x80"}, BadRequest, "nickname is not valid UTF-8"},
		{"password invalid UTF-8", &Request{Op: "register", User: "a", Password: "12345678\x80"}, BadRequest, "password"},
		{"presence too many", &Request{Op: "presence", Users: make([]string, 257)}, TooLarge, "users has 257 names"},
		{"group_create too many", &Request{Op: "group_create", Group: "g", Members: make([]string, 257)}, TooLarge, "members has 257"},
		{"group_create empty member", &Request{Op: "group_create", Group: "g", Members: []string{""}}, BadRequest, "members[0]"},
		{"other ops' fields ignored", &Request{Op: "typing", Conv: "g:x", Text: strings.Repeat("x", 9999), Limit: -3}, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := Validate(c.r)
			if c.code == "" {
				if e != nil {
					t.Fatalf("Validate(%+v) = %v; want valid", c.r, e)
				}
				return
			}
			if e == nil || e.Code != c.code || !strings.Contains(e.Message, c.msg) {
				t.Fatalf("Validate(%+v) = %v; want %s mentioning %q", c.r, e, c.code, c.msg)
			}
		})
	}
}

func TestErrorf(t *testing.T) {
	e := Errorf(TooLarge, "text is %d bytes", 5000)
	if e.Code != TooLarge || e.Message != "text is 5000 bytes" || e.Error() != "too_large: text is 5000 bytes" {
		t.Errorf("Errorf gave %#v (%q)", e, e.Error())
	}
	var err error = e
	if err.Error() == "" {
		t.Errorf("*Error must implement error with a message")
	}
}
