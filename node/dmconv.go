package node

import (
	"context"
	"strconv"

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
	return convid.DM(n.nameOf(a), n.nameOf(b))
}

// nameOf is uid's current name on this replica, or "#<uid>" when it does
// not know the user yet.
func (n *Node) nameOf(uid uint64) string {
	name, ok := n.userName(uid)
	if !ok {
		return "#" + strconv.FormatUint(uid, 10)
	}
	return name
}

// userName is uid's current name on this replica, if it knows the user.
// Names change only by AP registration conflicts, which change the users
// bucket and so the cache's version.
func (n *Node) userName(uid uint64) (string, bool) {
	return n.names.get(n.metaShard(), uid, func(tx fsm.Tx) (string, bool) {
		u, ok := fsm.UserByUID(tx, uid)
		return u.Name, ok
	})
}
