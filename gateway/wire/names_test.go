package wire

import (
	"regexp"
	"strings"
	"testing"
)

var (
	nameRE   = regexp.MustCompile(`^[a-z0-9_.-]{1,32}$`)
	deviceRE = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,64}$`)
)

func TestValidName(t *testing.T) {
	for _, s := range []string{
		"", "a", "alice", "a.b-c_d", "0", strings.Repeat("z", 32), strings.Repeat("z", 33),
		"Alice", "a b", "a:b", "a/b", "é", "a\x00", "-", "..", "g:x", "a\xff",
	} {
		if got, want := ValidName(s), nameRE.MatchString(s); got != want {
			t.Errorf("ValidName(%q) = %v; the spec's pattern says %v", s, got, want)
		}
	}
}

func TestValidDevice(t *testing.T) {
	for _, s := range []string{
		"", "default", "Phone-1", "host:42", "a.b_c", strings.Repeat("D", 64), strings.Repeat("D", 65),
		"a b", "a/b", "é", "a\n",
	} {
		if got, want := validDevice(s), deviceRE.MatchString(s); got != want {
			t.Errorf("validDevice(%q) = %v; the pattern says %v", s, got, want)
		}
	}
}

func TestConvIDs(t *testing.T) {
	if got := DMConv("bob", "alice"); got != "dm:alice:bob" {
		t.Errorf("DMConv(bob, alice) = %q; both sides must name the conversation dm:alice:bob", got)
	}
	if DMConv("alice", "bob") != DMConv("bob", "alice") {
		t.Errorf("DMConv is not symmetric")
	}
	if got := GroupConv("team"); got != "g:team" {
		t.Errorf("GroupConv(team) = %q", got)
	}
	cases := []struct {
		conv, kind, a, b string
		ok               bool
	}{
		{"dm:alice:bob", "dm", "alice", "bob", true},
		{"dm:a-1:a.1", "dm", "a-1", "a.1", true}, // byte order: '-' (0x2d) < '.' (0x2e)
		{"dm:a.1:a-1", "", "", "", false},
		{"dm:bob:alice", "", "", "", false},
		{"dm:bob:bob", "", "", "", false},
		{"dm:bob", "", "", "", false},
		{"dm::bob", "", "", "", false},
		{"dm:a:b:c", "", "", "", false},
		{"dm:A:b", "", "", "", false},
		{"g:team", "g", "team", "", true},
		{"g:", "", "", "", false},
		{"g:Team", "", "", "", false},
		{"g:a:b", "", "", "", false},
		{"x:a", "", "", "", false},
		{"", "", "", "", false},
		{"team", "", "", "", false},
	}
	for _, c := range cases {
		kind, a, b, ok := ParseConv(c.conv)
		if kind != c.kind || a != c.a || b != c.b || ok != c.ok {
			t.Errorf("ParseConv(%q) = %q, %q, %q, %v; want %q, %q, %q, %v", c.conv, kind, a, b, ok, c.kind, c.a, c.b, c.ok)
		}
		if ok && kind == "dm" && DMConv(b, a) != c.conv {
			t.Errorf("DMConv(%q, %q) = %q; ParseConv and DMConv disagree on %q", b, a, DMConv(b, a), c.conv)
		}
	}
}

func TestNeedsAuth(t *testing.T) {
	for _, op := range []string{OpRegister, OpLogin, OpResume, OpPing} {
		if NeedsAuth(op) {
			t.Errorf("NeedsAuth(%s) = true; the spec lets it run before login", op)
		}
	}
	for _, op := range []string{OpUserInfo, OpUserUpdate, OpSend, OpSync, OpHistory, OpAck, OpRead, OpTyping,
		OpGroupCreate, OpGroupJoin, OpGroupLeave, OpGroupMembers, OpPresence} {
		if !NeedsAuth(op) {
			t.Errorf("NeedsAuth(%s) = false; the spec requires an authenticated connection", op)
		}
	}
}
