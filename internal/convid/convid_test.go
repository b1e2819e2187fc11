package convid

import (
	"regexp"
	"strings"
	"testing"
)

var nameRE = regexp.MustCompile(`^[a-z0-9_.-]{1,32}$`)

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

func TestWire(t *testing.T) {
	if got := DM("bob", "alice"); got != "dm:alice:bob" {
		t.Errorf("DM(bob, alice) = %q; both sides must name the conversation dm:alice:bob", got)
	}
	if got := OfGroup("team"); got != "g:team" {
		t.Errorf("OfGroup(team) = %q", got)
	}
	cases := []struct {
		conv string
		want Wire
		ok   bool
	}{
		{"dm:alice:bob", Wire{Direct, "alice", "bob"}, true},
		{"dm:a-1:a.1", Wire{Direct, "a-1", "a.1"}, true}, // byte order: '-' (0x2d) < '.' (0x2e)
		{"dm:a.1:a-1", Wire{}, false},
		{"dm:bob:alice", Wire{}, false},
		{"dm:bob:bob", Wire{}, false},
		{"dm:bob", Wire{}, false},
		{"dm::bob", Wire{}, false},
		{"dm:a:b:c", Wire{}, false},
		{"dm:A:b", Wire{}, false},
		{"g:team", Wire{Group, "team", ""}, true},
		{"g:", Wire{}, false},
		{"g:Team", Wire{}, false},
		{"g:a:b", Wire{}, false},
		{"d:1:2", Wire{}, false}, // a state key is not a wire id
		{"x:a", Wire{}, false},
		{"", Wire{}, false},
		{"team", Wire{}, false},
	}
	for _, c := range cases {
		w, ok := ParseWire(c.conv)
		if ok != c.ok || (ok && w != c.want) {
			t.Errorf("ParseWire(%q) = %+v, %v; want %+v, %v", c.conv, w, ok, c.want, c.ok)
		}
		if ok && w.String() != c.conv {
			t.Errorf("ParseWire(%q).String() = %q: parse and print disagree", c.conv, w.String())
		}
	}
}

func TestKey(t *testing.T) {
	for _, tc := range []struct {
		a, b uint64
		want string
	}{{1, 2, "d:1:2"}, {2, 1, "d:1:2"}, {10, 9, "d:9:10"}} {
		got := DMKey(tc.a, tc.b)
		if got != tc.want {
			t.Errorf("DMKey(%d, %d) = %q, want %q (independent of order)", tc.a, tc.b, got, tc.want)
		}
		a, b, ok := DMUIDs(got)
		if !ok || a != min(tc.a, tc.b) || b != max(tc.a, tc.b) || !IsDMKey(got) || IsGroup(got) {
			t.Errorf("DMUIDs(%q) = %d, %d, %v", got, a, b, ok)
		}
	}
	for _, bad := range []string{"dm:alice:bob", "d:2:1", "d:1:1", "d:0:3", "d:01:2", "d:1", "d:1:x", "g:1:2", ""} {
		if a, b, ok := DMUIDs(bad); ok {
			t.Errorf("DMUIDs(%q) = %d, %d, ok; want not a DM key", bad, a, b)
		}
	}
	if k, ok := ParseKey("g:team"); !ok || k.Kind != Group || k.Group != "team" {
		t.Errorf("ParseKey(g:team) = %+v, %v", k, ok)
	}
	if g, ok := GroupOf("g:team"); !ok || g != "team" || !IsGroup("g:team") {
		t.Errorf("GroupOf(g:team) = %q, %v", g, ok)
	}
	if _, ok := GroupOf("d:1:2"); ok {
		t.Error("GroupOf accepted a direct key")
	}
}
