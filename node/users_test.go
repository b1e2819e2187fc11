package node

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"mpim/fsm"
	"mpim/node/store"
	pb "mpim/proto/mpimpb"
)

// memReplica is a replica over a bare store.Mem that counts its views.
type memReplica struct {
	st    *store.Mem
	views int
}

func (r *memReplica) propose(context.Context, fsm.Command) (fsm.Result, error) {
	return fsm.Result{}, errors.New("memReplica: no writes")
}
func (r *memReplica) view(fn func(fsm.Tx) error) error { r.views++; return r.st.View(fn) }
func (r *memReplica) version(b string) uint64          { return r.st.Version(b) }
func (r *memReplica) linearize(context.Context) error  { return nil }
func (r *memReplica) status() *pb.ShardStatus          { return &pb.ShardStatus{} }
func (r *memReplica) close() error                     { return nil }

// TestUserCache: a lookup through usersCache (as lookupUser makes it) is
// served from the cache until the users bucket changes, then read again; a
// change to another bucket keeps it; an unknown name is not remembered.
func TestUserCache(t *testing.T) {
	r := &memReplica{st: store.NewMem()}
	putUser := func(u fsm.User) {
		t.Helper()
		b, _ := json.Marshal(u)
		if err := r.st.Update(func(tx fsm.Tx) error { return tx.Put(fsm.UsersBucket, []byte(u.Name), b) }); err != nil {
			t.Fatal(err)
		}
	}
	var c usersCache[string, fsm.User]
	lookup := func(name string, wantUID uint64, wantViews int) {
		t.Helper()
		u, ok := c.get(r, name, func(tx fsm.Tx) (fsm.User, bool) { return fsm.UserByName(tx, name) })
		if got := map[bool]uint64{true: u.UID}[ok]; got != wantUID {
			t.Fatalf("lookup %s: uid %d (found %v), want %d", name, got, ok, wantUID)
		}
		if r.views != wantViews {
			t.Fatalf("lookup %s: %d views in all, want %d", name, r.views, wantViews)
		}
	}
	putUser(fsm.User{UID: 1, Name: "alice"})
	lookup("alice", 1, 1)
	lookup("alice", 1, 1) // cached
	lookup("bob", 0, 2)
	lookup("bob", 0, 3) // a miss is read every time
	putUser(fsm.User{UID: 2, Name: "bob"})
	lookup("bob", 2, 4)
	lookup("alice", 1, 5) // the bucket changed: read again
	lookup("alice", 1, 5)
	if err := r.st.Update(func(tx fsm.Tx) error { return tx.Put("msgs", []byte("m"), []byte("x")) }); err != nil {
		t.Fatal(err)
	}
	lookup("alice", 1, 5)                    // another bucket's write keeps the cache
	putUser(fsm.User{UID: 7, Name: "alice"}) // e.g. an AP name conflict resolved
	lookup("alice", 7, 6)
}
