package node

import (
	"context"
	"strconv"
	"sync"

	"mpim/fsm"
	"mpim/internal/convid"
	"mpim/internal/rpcerr"
	pb "mpim/proto/mpimpb"
)

// Conversation ids on the wire and in the state.
//
// Clients name a direct conversation by its two user names
// ("dm:<a>:<b>", a < b). The state keys it by the two uids
// (convid.DMKey: "d:<uid>:<uid>"), and the shards are chosen by that key, so
// that a name changing hands — an AP registration conflict moves the
// losing account to a new name — moves no message between accounts: the
// loser's conversations keep their key and show up under its new name, the
// winner's under the old one. convKey translates a request's wire id into
// the key (the caller must be one of the two), wireConv translates back
// from the current names when a message, receipt or list goes out. Group
// ids ("g:<group>") are the same on both sides.

// convKey is the state key of the conversation a caller names on the wire.
// A direct conversation must be the caller's own, with a user that
// exists.
func (n *Node) convKey(ctx context.Context, c *pb.Caller, conv string) (string, error) {
	w, ok := convid.ParseWire(conv)
	a, b := w.A, w.B
	switch {
	case !ok:
		return "", rpcerr.Error(rpcerr.BadRequest, "bad conversation id %q (dm:<name>:<name> in byte order, or g:<group>)", conv)
	case w.Kind == convid.Group:
		return conv, nil
	case c.User != a && c.User != b:
		return "", rpcerr.Error(rpcerr.Forbidden, "%s is another pair's conversation", conv)
	}
	peer := a
	if c.User == a {
		peer = b
	}
	u, found := n.lookupUser(ctx, peer)
	if !found {
		return "", rpcerr.Error(rpcerr.NotFound, "no user %q", peer)
	}
	return convid.DMKey(c.Uid, u.UID), nil
}

// wireConv is the wire id of a conversation key: a direct conversation is
// named by its users' current names (a uid this replica cannot name yet
// shows as "#<uid>").
func (n *Node) wireConv(key string) string {
	a, b, ok := convid.DMUIDs(key)
	if !ok {
		return key
	}
	return convid.DM(n.names.name(n, a), n.names.name(n, b))
}

// nameCache remembers uid → name. Names change only by AP registration
// conflicts, which reset it (forget); a generation keeps a lookup that
// raced a reset from storing what it read before.
type nameCache struct {
	mu    sync.RWMutex
	gen   uint64
	names map[uint64]string
}

func (c *nameCache) name(n *Node, uid uint64) string {
	name, ok := c.lookup(n, uid)
	if !ok {
		return "#" + strconv.FormatUint(uid, 10)
	}
	return name
}

// lookup is uid's current name on this replica, if it knows the user.
func (c *nameCache) lookup(n *Node, uid uint64) (string, bool) {
	c.mu.RLock()
	name, ok := c.names[uid]
	gen := c.gen
	c.mu.RUnlock()
	if ok {
		return name, true
	}
	var u fsm.User
	n.metaShard().view(func(tx fsm.Tx) error { u, ok = fsm.UserByUID(tx, uid); return nil })
	if !ok {
		return "", false
	}
	c.mu.Lock()
	if c.gen == gen {
		if c.names == nil {
			c.names = map[uint64]string{}
		}
		c.names[uid] = u.Name
	}
	c.mu.Unlock()
	return u.Name, true
}

// forget drops every cached name (a registration conflict renamed an
// account).
func (c *nameCache) forget() {
	c.mu.Lock()
	c.gen++
	c.names = nil
	c.mu.Unlock()
}
