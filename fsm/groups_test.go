package fsm

import (
	"errors"
	"mpim/internal/convid"
	"slices"
	"testing"
)

// checkMembership verifies that the members bucket and the userconvs index
// agree: uid is in Members(conv) exactly when conv is in UserConvs(uid).
func checkMembership(t *testing.T, tx Tx, conv string, want []uint64, allUIDs []uint64) {
	t.Helper()
	if got := Members(tx, conv); !slices.Equal(got, want) {
		t.Fatalf("conversation %s: members %v, want %v", conv, got, want)
	}
	for _, uid := range allUIDs {
		member := slices.Contains(want, uid)
		if IsMember(tx, conv, uid) != member {
			t.Fatalf("conversation %s: IsMember(%d) = %v, want %v", conv, uid, !member, member)
		}
		if slices.Contains(UserConvs(tx, uid), conv) != member {
			t.Fatalf("user %d: UserConvs %v disagrees with membership of %s (member=%v)", uid, UserConvs(tx, uid), conv, member)
		}
	}
}

func TestGroups(t *testing.T) {
	all := []uint64{1, 2, 3, 4}
	type step struct {
		cmd         Command
		wantErr     error
		wantMembers []uint64 // of g:team after the step (also the result's Members on success)
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{"create with creator only", []step{
			{mkGroup("team", 1), nil, []uint64{1}},
		}},
		{"create with members, duplicates and creator listed again", []step{
			{mkGroup("team", 2, 3, 1, 3, 2), nil, []uint64{1, 2, 3}},
		}},
		{"create twice", []step{
			{mkGroup("team", 1), nil, []uint64{1}},
			{mkGroup("team", 2, 3), ErrGroupExists, []uint64{1}},
		}},
		{"create invalid", []step{
			{mkGroup("", 1), ErrInvalid, nil},
			{mkGroup("team", 0), ErrInvalid, nil},
		}},
		{"join and leave", []step{
			{mkGroup("team", 1), nil, []uint64{1}},
			{joinGroup("team", 3), nil, []uint64{1, 3}},
			{joinGroup("team", 2), nil, []uint64{1, 2, 3}},
			{leaveGroup("team", 3), nil, []uint64{1, 2}},
			{leaveGroup("team", 1), nil, []uint64{2}},
		}},
		{"join twice is idempotent", []step{
			{mkGroup("team", 1), nil, []uint64{1}},
			{joinGroup("team", 2), nil, []uint64{1, 2}},
			{joinGroup("team", 2), nil, []uint64{1, 2}},
		}},
		{"leave when not a member", []step{
			{mkGroup("team", 1), nil, []uint64{1}},
			{leaveGroup("team", 2), ErrNotMember, []uint64{1}},
			{joinGroup("team", 2), nil, []uint64{1, 2}},
			{leaveGroup("team", 2), nil, []uint64{1}},
			{leaveGroup("team", 2), ErrNotMember, []uint64{1}},
		}},
		{"rejoin after leave", []step{
			{mkGroup("team", 1, 2), nil, []uint64{1, 2}},
			{leaveGroup("team", 2), nil, []uint64{1}},
			{joinGroup("team", 2), nil, []uint64{1, 2}},
		}},
		{"last member leaves, group stays", []step{
			{mkGroup("team", 1), nil, []uint64{1}},
			{leaveGroup("team", 1), nil, nil},
			{mkGroup("team", 2), ErrGroupExists, nil},
			{joinGroup("team", 4), nil, []uint64{4}},
		}},
		{"unknown group", []step{
			{joinGroup("team", 1), ErrNoSuchGroup, nil},
			{leaveGroup("team", 1), ErrNoSuchGroup, nil},
			{mkGroup("other", 1), nil, nil},
			{joinGroup("team", 1), ErrNoSuchGroup, nil},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, DefaultConfig())
			h.users("alice", "bob", "carol", "dave")
			for i, s := range tc.steps {
				r := h.do(s.cmd)
				if !errors.Is(r.Err, s.wantErr) {
					t.Fatalf("step %d %s: error %v, want %v", i, describe(s.cmd), r.Err, s.wantErr)
				}
				if s.wantErr == nil && s.cmd.GroupCreate != nil && s.cmd.GroupCreate.Group != "team" {
					continue // a step on another group
				}
				if s.wantErr == nil {
					if r.Conv != "g:team" {
						t.Fatalf("step %d %s: conv %q, want g:team", i, describe(s.cmd), r.Conv)
					}
					if !slices.Equal(r.Members, s.wantMembers) {
						t.Fatalf("step %d %s: result members %v, want %v for fan-out", i, describe(s.cmd), r.Members, s.wantMembers)
					}
				}
				checkMembership(t, h.kv, "g:team", s.wantMembers, all)
			}
		})
	}
}

func TestGroupCreateState(t *testing.T) {
	h := newHarness(t, DefaultConfig())
	h.users("alice", "bob")
	h.ok(mkGroup("team", 2, 1))
	g, ok := GroupByName(h.kv, "team")
	if !ok || g != (Group{Name: "team", Creator: 2, Created: 200}) {
		t.Fatalf("GroupByName(team) = %+v, %v", g, ok)
	}
	if _, ok := GroupByName(h.kv, "nope"); ok {
		t.Fatalf("GroupByName(nope) found a group never created")
	}
	if !ConvExists(h.kv, "g:team") {
		t.Fatalf("conversation g:team does not exist after its group was created")
	}
	if n := MaxSeq(h.kv, "g:team"); n != 0 {
		t.Fatalf("conversation g:team: max seq %d before any message", n)
	}
	// A refused create must not change the first group.
	h.fails(mkGroup("team", 1), ErrGroupExists)
	if g2, _ := GroupByName(h.kv, "team"); g2 != g {
		t.Fatalf("refused create changed the group: %+v -> %+v", g, g2)
	}
}

func TestUserConvsAcrossConversations(t *testing.T) {
	h := newHarness(t, DefaultConfig())
	h.users("alice", "bob", "carol")
	dm := convid.DMKey(1, 2)
	h.ok(mkGroup("b", 1))
	h.ok(mkGroup("a", 1, 2))
	h.ok(sendTo(dm, 1, 2, "c1"))
	cases := []struct {
		uid  uint64
		want []string
	}{
		{1, []string{dm, "g:a", "g:b"}}, // byte order: "d:" < "g:"
		{2, []string{dm, "g:a"}},
		{3, nil},
	}
	for _, tc := range cases {
		if got := UserConvs(h.kv, tc.uid); !slices.Equal(got, tc.want) {
			t.Errorf("user %d: UserConvs %v, want %v", tc.uid, got, tc.want)
		}
	}
	h.ok(leaveGroup("a", 1))
	if got, want := UserConvs(h.kv, 1), []string{dm, "g:b"}; !slices.Equal(got, want) {
		t.Errorf("user 1 after leaving a: UserConvs %v, want %v", got, want)
	}
	if got, want := Convs(h.kv), []string{dm, "g:a", "g:b"}; !slices.Equal(got, want) {
		t.Errorf("Convs %v, want %v", got, want)
	}
}
