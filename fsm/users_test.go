package fsm

import (
	"errors"
	"math"
	"testing"
)

func TestRegister(t *testing.T) {
	type step struct {
		cmd     Command
		wantUID uint64
		wantErr error
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{"uids assigned densely from 1", []step{
			{reg("alice"), 1, nil},
			{reg("bob"), 2, nil},
			{reg("carol"), 3, nil},
		}},
		{"name taken", []step{
			{reg("alice"), 1, nil},
			{reg("alice"), 0, ErrNameTaken},
			{reg("bob"), 2, nil}, // the refusal consumed no uid
		}},
		{"explicit uid honoured", []step{
			{regUID("alice", 7), 7, nil},
			{regUID("bob", 3), 3, nil},
		}},
		{"explicit uid taken", []step{
			{reg("alice"), 1, nil},
			{regUID("bob", 1), 0, ErrUIDTaken},
			{regUID("carol", 5), 5, nil},
			{regUID("dave", 5), 0, ErrUIDTaken},
		}},
		{"counter jumps past an explicit large uid", []step{
			{reg("alice"), 1, nil},
			{regUID("bob", 1000), 1000, nil},
			{reg("carol"), 1001, nil},
		}},
		{"counter never goes back after a smaller explicit uid", []step{
			{regUID("alice", 50), 50, nil},
			{regUID("bob", 10), 10, nil},
			{reg("carol"), 51, nil},
			{reg("dave"), 52, nil},
		}},
		{"uids below the counter that were skipped stay usable explicitly", []step{
			{regUID("alice", 5), 5, nil},
			{regUID("bob", 2), 2, nil},
			{reg("carol"), 6, nil},
		}},
		{"empty name invalid", []step{
			{reg(""), 0, ErrInvalid},
			{reg("alice"), 1, nil},
		}},
		{"empty password hash invalid", []step{
			{Command{Register: &Register{Name: "alice"}}, 0, ErrInvalid},
			{reg("alice"), 1, nil},
		}},
		{"max uid does not wrap the counter to 0", []step{
			{regUID("alice", math.MaxUint64), math.MaxUint64, nil},
			{reg("bob"), 1, nil},
			{reg("carol"), 2, nil},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, DefaultConfig())
			for i, s := range tc.steps {
				r := h.do(s.cmd)
				if !errors.Is(r.Err, s.wantErr) {
					t.Fatalf("step %d %s: error %v, want %v", i, describe(s.cmd), r.Err, s.wantErr)
				}
				if r.UID != s.wantUID {
					t.Fatalf("step %d %s: uid %d, want %d", i, describe(s.cmd), r.UID, s.wantUID)
				}
				if s.wantErr != nil {
					continue
				}
				name := s.cmd.Register.Name
				u, ok := UserByUID(h.kv, r.UID)
				if !ok || u.Name != name {
					t.Fatalf("step %d: UserByUID(%d) = %+v, %v; want user %s", i, r.UID, u, ok, name)
				}
				if u2, ok := UserByName(h.kv, name); !ok || u2.UID != r.UID {
					t.Fatalf("step %d: UserByName(%s) = %+v, %v; want uid %d", i, name, u2, ok, r.UID)
				}
			}
		})
	}
}

// TestRegisterNeverReusesUID registers a mix of assigned and explicit uids
// and checks that no uid is handed out twice and assigned uids only grow.
func TestRegisterNeverReusesUID(t *testing.T) {
	h := newHarness(t, DefaultConfig())
	seen := map[uint64]string{}
	var lastAssigned uint64
	explicit := map[int]uint64{3: 40, 7: 20, 11: 30, 15: 100, 16: 99}
	for i := range 30 {
		name := string(rune('a'+i%26)) + string(rune('0'+i/26))
		r := h.do(regUID(name, explicit[i]))
		if r.Err != nil {
			t.Fatalf("register %s (explicit uid %d): %v", name, explicit[i], r.Err)
		}
		if prev, dup := seen[r.UID]; dup {
			t.Fatalf("uid %d given to %s and again to %s", r.UID, prev, name)
		}
		seen[r.UID] = name
		if explicit[i] == 0 {
			if r.UID <= lastAssigned {
				t.Fatalf("assigned uid %d after %d: the counter went back", r.UID, lastAssigned)
			}
			lastAssigned = r.UID
		}
	}
	if lastAssigned <= 100 {
		t.Fatalf("last assigned uid %d; want > 100, the largest explicit uid", lastAssigned)
	}
}

func TestRegisterStoresProfile(t *testing.T) {
	h := newHarness(t, DefaultConfig())
	h.ok(Command{Register: &Register{Name: "alice", PwHash: []byte{0, 1, 2}, Created: 42}})
	u, ok := UserByName(h.kv, "alice")
	want := User{UID: 1, Name: "alice", PwHash: []byte{0, 1, 2}, Created: 42}
	if !ok || u.UID != want.UID || u.Name != want.Name || string(u.PwHash) != string(want.PwHash) || u.Created != want.Created || u.Nickname != "" {
		t.Fatalf("UserByName(alice) = %+v, %v; want %+v", u, ok, want)
	}
	if _, ok := UserByName(h.kv, "bob"); ok {
		t.Fatalf("UserByName(bob) found a user that was never registered")
	}
	if _, ok := UserByUID(h.kv, 2); ok {
		t.Fatalf("UserByUID(2) found a user that was never registered")
	}
}

func TestUserUpdate(t *testing.T) {
	cases := []struct {
		name     string
		cmd      Command
		wantErr  error
		wantNick map[uint64]string
	}{
		{"set nickname", nick(1, "Al"), nil, map[uint64]string{1: "Al", 2: ""}},
		{"clear nickname", nick(2, ""), nil, map[uint64]string{1: "", 2: ""}},
		{"unknown uid", nick(9, "x"), ErrNoSuchUser, map[uint64]string{1: "", 2: ""}},
		{"uid 0", nick(0, "x"), ErrNoSuchUser, map[uint64]string{1: "", 2: ""}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, DefaultConfig())
			h.users("alice", "bob")
			before := h.snapshot()
			// Index 0 records nothing, so a refusal must leave identical bytes.
			rs, err := h.m.Apply(h.kv, 0, []Command{tc.cmd})
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			r := rs[0]
			if !errors.Is(r.Err, tc.wantErr) {
				t.Fatalf("%s: error %v, want %v", describe(tc.cmd), r.Err, tc.wantErr)
			}
			if tc.wantErr == nil && r.UID != tc.cmd.UserUpdate.UID {
				t.Fatalf("%s: result uid %d", describe(tc.cmd), r.UID)
			}
			for uid, want := range tc.wantNick {
				u, ok := UserByUID(h.kv, uid)
				if !ok || u.Nickname != want {
					t.Fatalf("user %d nickname %q (found %v), want %q", uid, u.Nickname, ok, want)
				}
				if string(u.PwHash) != "hash-"+u.Name || u.Created != 100 {
					t.Fatalf("user %d: update touched more than the nickname: %+v", uid, u)
				}
			}
			if tc.wantErr != nil {
				requireSameState(t, "refused user update", before, h.snapshot())
			}
		})
	}
}

func TestUserUpdateTwice(t *testing.T) {
	h := newHarness(t, DefaultConfig())
	h.users("alice")
	h.ok(nick(1, "first"))
	h.ok(nick(1, "second"))
	if u, _ := UserByUID(h.kv, 1); u.Nickname != "second" {
		t.Fatalf("nickname %q after two updates, want the last one", u.Nickname)
	}
}
