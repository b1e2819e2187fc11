package node

import (
	"sync"
	"time"

	"mpim/fsm"
	"mpim/internal/rpcerr"
)

// Limits bound what one user can make other users carry. Conversations
// are joined without the other side's consent (group_create names its
// members, a first message opens a DM), as in IM systems where a contact
// may add you to a group; these bounds keep that from being a weapon:
// nobody can be put in so many conversations that a sync reply, a login
// backlog or the node's memory cannot hold them.
type Limits struct {
	// MaxUserConvs bounds the conversations one user is in, over every
	// shard; a group creation skips members already at it, a join or a
	// first DM to or from them is refused (too_large).
	MaxUserConvs int
	// MaxGroupMembers bounds the members a group_create names.
	MaxGroupMembers int
	// GroupsPerMinute bounds the groups one user may create per minute
	// through one node.
	GroupsPerMinute int
}

// DefaultLimits are the lab's limits.
func DefaultLimits() Limits {
	return Limits{MaxUserConvs: 2000, MaxGroupMembers: 256, GroupsPerMinute: 30}
}

// userConvs counts the conversations uid is in over every shard's local
// replica, stopping at limit (a bound, not an exact figure: a replica may
// lag by the writes in flight).
func (n *Node) userConvs(uid uint64, limit int) int {
	total := 0
	for _, sh := range n.shards {
		sh.view(func(tx fsm.Tx) error { total += fsm.CountUserConvs(tx, uid, limit-total); return nil })
		if total >= limit {
			break
		}
	}
	return total
}

// roomForConv refuses with too_large when uid is in as many conversations
// as a user may be; who names the user for the message ("" for the
// caller).
func (n *Node) roomForConv(uid uint64, who string) error {
	if max := n.cfg.Limits.MaxUserConvs; max > 0 && n.userConvs(uid, max) >= max {
		if who == "" {
			return rpcerr.Error(rpcerr.TooLarge, "you are in %d conversations, the most one user may be in; leave a group first", max)
		}
		return rpcerr.Error(rpcerr.TooLarge, "%s is in %d conversations, the most one user may be in", who, max)
	}
	return nil
}

// rate allows per events a second (a fixed one-second window).
type rate struct {
	per    int
	mu     sync.Mutex
	window time.Time
	n      int
}

func (r *rate) allow(now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now.Sub(r.window) >= time.Second {
		r.window, r.n = now, 0
	}
	if r.n >= r.per {
		return false
	}
	r.n++
	return true
}

// creations counts, per user, the groups created through this node in the
// current minute.
type creations struct {
	mu     sync.Mutex
	window time.Time
	n      map[uint64]int
}

// allow records one creation by uid and reports whether it is within per
// a minute.
func (c *creations) allow(uid uint64, per int, now time.Time) bool {
	if per <= 0 {
		return true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if now.Sub(c.window) >= time.Minute || c.n == nil {
		c.window, c.n = now, map[uint64]int{}
	}
	if c.n[uid] >= per {
		return false
	}
	c.n[uid]++
	return true
}

// roomForNewDM refuses the first message of a DM when either side is in
// as many conversations as a user may be; an existing DM is not checked.
func (n *Node) roomForNewDM(conv string, from, to uint64, toName string) error {
	if n.cfg.Limits.MaxUserConvs <= 0 {
		return nil
	}
	if n.dms.has(conv) {
		return nil
	}
	var exists bool
	n.convShard(conv).view(func(tx fsm.Tx) error { exists = fsm.ConvExists(tx, conv); return nil })
	if exists {
		n.dms.add(conv)
		return nil
	}
	if err := n.roomForConv(from, ""); err != nil {
		return err
	}
	return n.roomForConv(to, toName)
}

// convSet remembers conversations seen to exist. A conversation is never
// removed from the state, so what it holds stays true: roomForNewDM
// checks it before taking a view of the shard, which waits while the
// shard applies a batch (every send to an existing DM asks).
type convSet struct {
	mu    sync.RWMutex
	convs map[string]struct{}
}

// maxKnownConvs bounds a convSet; past it, it starts again empty.
const maxKnownConvs = 1 << 16

func (s *convSet) has(conv string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, ok := s.convs[conv]
	return ok
}

func (s *convSet) add(conv string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.convs == nil || len(s.convs) >= maxKnownConvs {
		s.convs = make(map[string]struct{})
	}
	s.convs[conv] = struct{}{}
}
