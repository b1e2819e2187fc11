package fsm

import (
	"bytes"
	"testing"
)

// TestConflictsConverge: the same name registered and the same group
// created on two sides of a partition end identically on replicas that
// apply the two writes in either order.
func TestConflictsConverge(t *testing.T) {
	const a, b = uint64(1<<40 | 1), uint64(2<<40 | 1) // uids two nodes make
	regA := Command{Register: &Register{Name: "alice", PwHash: []byte("ha"), UID: a, Created: 10}}
	regB := Command{Register: &Register{Name: "alice", PwHash: []byte("hb"), UID: b, Created: 20}}
	grpA := Command{GroupCreate: &GroupCreate{Group: "team", Creator: a, Created: 30, Merge: true}}
	grpB := Command{GroupCreate: &GroupCreate{Group: "team", Creator: b, Created: 31, Merge: true}}
	var snaps [][]byte
	for _, order := range [][]Command{{regA, regB, grpA, grpB}, {regB, regA, grpB, grpA}} {
		h := newHarness(t, DefaultConfig())
		var renamed *Rename
		for _, c := range order {
			r := h.ok(c)
			if r.Renamed != nil {
				renamed = r.Renamed
			}
		}
		want := Rename{UID: b, From: "alice", To: AltName("alice", b)}
		if renamed == nil || *renamed != want {
			t.Fatalf("rename reported %+v, want %+v (the later registration loses)", renamed, want)
		}
		if u, ok := UserByName(h.kv, "alice"); !ok || u.UID != a {
			t.Fatalf("alice belongs to %+v, want uid %d (created first)", u, a)
		}
		if u, ok := UserByUID(h.kv, b); !ok || u.Name != want.To || string(u.PwHash) != "hb" {
			t.Fatalf("the losing account is %+v, want %s with its own password", u, want.To)
		}
		if got := Renamed(h.kv, "alice"); len(got) != 1 || got[0] != want {
			t.Fatalf("Renamed(alice) = %+v", got)
		}
		if g, _ := GroupByName(h.kv, "team"); g.Creator != a {
			t.Fatalf("merged group keeps creator %d, want %d (created first)", g.Creator, a)
		}
		if m := Members(h.kv, "g:team"); len(m) != 2 {
			t.Fatalf("merged group members %v, want both creators", m)
		}
		snaps = append(snaps, h.snapshot())
	}
	if !bytes.Equal(snaps[0], snaps[1]) {
		t.Fatal("replicas that applied the conflicting writes in different orders differ")
	}
}

func TestAltName(t *testing.T) {
	for _, name := range []string{"al", "a_very_long_user_name_of_32_byte"} {
		alt := AltName(name, 1<<40|77)
		if len(alt) > 32 || alt == name {
			t.Fatalf("AltName(%q) = %q: not a distinct name of at most 32 bytes", name, alt)
		}
	}
}
