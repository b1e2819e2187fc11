package node_test

import (
	"fmt"
	"strings"
	"testing"

	"mpim/internal/rpcerr"
	"mpim/node"
	pb "mpim/proto/mpimpb"
)

// TestLimits: one user cannot make another carry more conversations than
// a user may be in — a group creation skips a member at the bound, a
// join and a first DM are refused too_large, an existing DM goes on — and
// cannot create groups of more than the member bound or faster than the
// creation rate.
func TestLimits(t *testing.T) {
	r := startNode(t, func(c *node.Config) {
		c.Limits = node.Limits{MaxUserConvs: 3, MaxGroupMembers: 2, GroupsPerMinute: 4}
	})
	mallory, victim, carol := register(t, r, "mallory"), register(t, r, "victim"), register(t, r, "carol")
	// The victim talks to carol: one conversation.
	if _, err := r.messages.Send(ctx(t), &pb.SendRequest{Caller: victim, To: "carol", Text: "hi", Cmid: "v1"}); err != nil {
		t.Fatal(err)
	}
	// Mallory puts the victim in two groups: three conversations, the bound.
	for i := range 2 {
		if _, err := r.groups.Create(ctx(t), &pb.GroupRequest{Caller: mallory, Group: fmt.Sprint("junk", i), Members: []string{"victim"}}); err != nil {
			t.Fatalf("group %d: %v", i, err)
		}
	}
	// A third group is made, without the victim.
	if _, err := r.groups.Create(ctx(t), &pb.GroupRequest{Caller: mallory, Group: "junk2", Members: []string{"victim"}}); err != nil {
		t.Fatalf("group 3: %v", err)
	}
	rep, err := r.groups.Members(ctx(t), &pb.GroupRequest{Caller: mallory, Group: "junk2"})
	if err != nil || len(rep.Members) != 1 {
		t.Fatalf("junk2's members %v (%v): the victim at the bound was added", rep.GetMembers(), err)
	}
	// Joining and a new DM are refused; the existing DM goes on.
	if _, err := r.groups.Join(ctx(t), &pb.GroupRequest{Caller: victim, Group: "junk2"}); code(err) != rpcerr.TooLarge {
		t.Fatalf("a join past the bound: %v, want too_large", err)
	}
	dave := register(t, r, "dave")
	if _, err := r.messages.Send(ctx(t), &pb.SendRequest{Caller: dave, To: "victim", Text: "hey", Cmid: "d1"}); code(err) != rpcerr.TooLarge {
		t.Fatalf("a first DM to a user at the bound: %v, want too_large", err)
	}
	if _, err := r.messages.Send(ctx(t), &pb.SendRequest{Caller: carol, To: "victim", Text: "still here", Cmid: "c1"}); err != nil {
		t.Fatalf("a message in an existing DM: %v", err)
	}
	// The victim leaves a group and has room again.
	if _, err := r.groups.Leave(ctx(t), &pb.GroupRequest{Caller: victim, Group: "junk0"}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.messages.Send(ctx(t), &pb.SendRequest{Caller: dave, To: "victim", Text: "hey", Cmid: "d2"}); err != nil {
		t.Fatalf("a first DM after the victim made room: %v", err)
	}
	// Mallory herself is at the bound now.
	if _, err := r.groups.Create(ctx(t), &pb.GroupRequest{Caller: mallory, Group: "junk3"}); code(err) != rpcerr.TooLarge {
		t.Fatalf("a creator at the bound made a group: %v, want too_large", err)
	}

	// Members per creation and creations per minute, on a node without
	// the conversation bound.
	r2 := startNode(t, func(c *node.Config) { c.Limits = node.Limits{MaxGroupMembers: 2, GroupsPerMinute: 3} })
	erin := register(t, r2, "erin")
	for _, u := range []string{"f", "g", "h"} {
		register(t, r2, u)
	}
	if _, err := r2.groups.Create(ctx(t), &pb.GroupRequest{Caller: erin, Group: "big", Members: []string{"f", "g", "h"}}); code(err) != rpcerr.TooLarge {
		t.Fatalf("a group of 3 members past the bound of 2: %v, want too_large", err)
	}
	for i := range 3 {
		if _, err := r2.groups.Create(ctx(t), &pb.GroupRequest{Caller: erin, Group: fmt.Sprint("g", i), Members: []string{"f", "g"}}); err != nil {
			t.Fatalf("group %d of 3 in a minute: %v", i+1, err)
		}
	}
	if _, err := r2.groups.Create(ctx(t), &pb.GroupRequest{Caller: erin, Group: "g3"}); code(err) != rpcerr.RateLimited {
		t.Fatalf("the 4th group in a minute: %v, want rate_limited", err)
	}
}

// TestLongPasswords: the protocol allows passwords of up to 128 bytes and
// every byte counts, though bcrypt reads 72: two passwords that differ
// only past byte 72 are different passwords.
func TestLongPasswords(t *testing.T) {
	r := startNode(t, nil)
	long := strings.Repeat("p", 72)
	for _, pw := range []string{long + "a", strings.Repeat("x", 128)} {
		name := fmt.Sprint("u", len(pw), pw[len(pw)-1:])
		if _, err := r.users.Register(ctx(t), &pb.RegisterRequest{User: name, Password: pw}); err != nil {
			t.Fatalf("register with a %d-byte password: %v", len(pw), err)
		}
		if _, err := r.users.Login(ctx(t), &pb.LoginRequest{User: name, Password: pw, Device: "d"}); err != nil {
			t.Fatalf("login with the %d-byte password: %v", len(pw), err)
		}
		wrong := pw[:len(pw)-1] + "Z"
		if _, err := r.users.Login(ctx(t), &pb.LoginRequest{User: name, Password: wrong, Device: "d"}); code(err) != rpcerr.Unauthorized {
			t.Fatalf("login with a password differing only in byte %d: %v, want unauthorized", len(pw), err)
		}
	}
	if _, err := r.users.Login(ctx(t), &pb.LoginRequest{User: "nobody", Password: "whatever1", Device: "d"}); code(err) != rpcerr.Unauthorized {
		t.Fatalf("login of a name that does not exist: %v", err)
	}
}

// TestPresenceOfContactsOnly: presence answers only for users who share a
// conversation with the caller; a stranger, or a name that does not
// exist, is left out alike (nothing tells which names exist).
func TestPresenceOfContactsOnly(t *testing.T) {
	r := startNode(t, nil)
	alice := register(t, r, "alice")
	register(t, r, "bob")
	query := func(users ...string) map[string]*pb.PresenceState {
		t.Helper()
		rep, err := r.presence.Query(ctx(t), &pb.PresenceQuery{Caller: alice, Users: users})
		if err != nil {
			t.Fatal(err)
		}
		return rep.Presence
	}
	if got := query("bob", "nobody", "alice"); len(got) != 1 || got["alice"] == nil {
		t.Fatalf("before alice and bob share a conversation: presence of %v, want alice's own only", got)
	}
	if _, err := r.messages.Send(ctx(t), &pb.SendRequest{Caller: alice, To: "bob", Text: "hi", Cmid: "1"}); err != nil {
		t.Fatal(err)
	}
	if got := query("bob", "nobody"); len(got) != 1 || got["bob"] == nil {
		t.Fatalf("after a DM: presence of %v, want bob's", got)
	}
}
