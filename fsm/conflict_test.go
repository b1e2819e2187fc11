package fsm

import (
	"bytes"
	"errors"
	"fmt"
	"mpim/internal/convid"
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

// TestStampedMembershipLWW: concurrent joins and leaves carrying stamps
// (AP) leave every replica with the same members whatever order each
// applied them in: the later stamp wins, an earlier one arriving after it
// changes nothing, and a leave that arrives before the join it overrides
// still wins. Unstamped (CP, log order) commands keep their old meaning.
func TestStampedMembershipLWW(t *testing.T) {
	stamp := func(s string) []byte { return []byte(s) }
	join := func(uid uint64, s string) Command {
		return Command{GroupJoin: &GroupMember{Group: "team", UID: uid, Stamp: stamp(s)}}
	}
	leave := func(uid uint64, s string) Command {
		return Command{GroupLeave: &GroupMember{Group: "team", UID: uid, Stamp: stamp(s)}}
	}
	ops := []Command{join(2, "b"), leave(2, "c"), join(3, "d"), leave(3, "a"), join(4, "e")}
	perms := [][]int{{0, 1, 2, 3, 4}, {1, 0, 3, 2, 4}, {4, 3, 2, 1, 0}, {2, 4, 1, 3, 0}}
	var want []byte
	for _, p := range perms {
		h := newHarness(t, DefaultConfig())
		h.users("a", "b", "c", "d")
		h.ok(mkGroup("team", 1))
		for _, i := range p {
			if r := h.do(ops[i]); r.Err != nil {
				t.Fatalf("order %v: %s: %v", p, describe(ops[i]), r.Err)
			}
		}
		members := Members(h.kv, convid.OfGroup("team"))
		if fmt.Sprint(members) != "[1 3 4]" {
			t.Fatalf("order %v: members %v, want [1 3 4] (2 left last, 3's join is later than its leave)", p, members)
		}
		snap := h.snapshot()
		if want == nil {
			want = snap
		} else if !bytes.Equal(snap, want) {
			t.Fatalf("order %v: state differs from order %v", p, perms[0])
		}
	}
	// Unstamped leave of a non-member is still refused (CP).
	h := newHarness(t, DefaultConfig())
	h.users("a", "b")
	h.ok(mkGroup("team", 1))
	h.fails(leaveGroup("team", 2), ErrNotMember)
}

// TestStampedUserUpdateLWW: of two concurrent nickname updates the later
// stamp stands on every replica, whichever was applied last.
func TestStampedUserUpdateLWW(t *testing.T) {
	upd := func(nick, s string) Command {
		return Command{UserUpdate: &UserUpdate{UID: 1, Nickname: nick, Stamp: []byte(s)}}
	}
	for _, order := range [][]Command{{upd("old", "1"), upd("new", "2")}, {upd("new", "2"), upd("old", "1")}} {
		h := newHarness(t, DefaultConfig())
		h.users("a")
		for _, c := range order {
			h.ok(c)
		}
		u, _ := UserByUID(h.kv, 1)
		if u.Nickname != "new" {
			t.Fatalf("nickname %q after %s then %s, want the later stamp's %q", u.Nickname, describe(order[0]), describe(order[1]), "new")
		}
	}
}

// TestPrecheck: Precheck refuses exactly what applying would refuse for
// the state-dependent commands, and reads only.
func TestPrecheck(t *testing.T) {
	h := newHarness(t, DefaultConfig())
	h.users("a", "b", "c")
	h.ok(mkGroup("team", 1, 2))
	send := func(conv string, from uint64) Command {
		return Command{Send: &Send{Conv: conv, FromUID: from, To: 2, ID: "x", Cmid: "x"}}
	}
	for _, c := range []struct {
		cmd  Command
		want error
	}{
		{send("g:team", 1), nil},
		{send("g:team", 3), ErrNotMember},
		{send("g:nope", 1), ErrNoSuchGroup},
		{send(convid.DMKey(1, 2), 1), nil},
		{joinGroup("nope", 3), ErrNoSuchGroup},
		{leaveGroup("team", 3), ErrNotMember},
		{joinGroup("team", 3), nil},
		{leaveGroup("team", 2), nil},
		{leaveGroup("nope", 2), ErrNoSuchGroup},
	} {
		before := h.snapshot()
		if got := Precheck(h.kv, c.cmd); !errors.Is(got, c.want) || (got == nil) != (c.want == nil) {
			t.Errorf("Precheck(%s) = %v, want %v", describe(c.cmd), got, c.want)
		}
		if !bytes.Equal(h.snapshot(), before) {
			t.Fatalf("Precheck(%s) changed the state", describe(c.cmd))
		}
		if r := h.do(c.cmd); (r.Err == nil) != (c.want == nil) {
			t.Errorf("%s: apply gave %v where Precheck said %v", describe(c.cmd), r.Err, c.want)
		}
	}
}
