package node

import (
	"context"
	"fmt"
	"sort"
	"time"

	"mpim/fsm"
	"mpim/internal/convid"
	"mpim/internal/rpcerr"
	"mpim/node/ap"
	pb "mpim/proto/mpimpb"
)

// startAP opens the AP mode: local shards, applied by the replicator from
// local writes and from every other node's entries.
func (c *cluster) startAP() error {
	n := c.n
	m, err := fsm.New(n.cfg.FSM)
	if err != nil {
		return err
	}
	var locals []*localShard
	for i := 0; i < n.cfg.Shards; i++ {
		locals = append(locals, newLocalShard(i, m, n.log))
	}
	nodes := []string{n.cfg.ID}
	for id := range n.cfg.Peers {
		if id != n.cfg.ID {
			nodes = append(nodes, id)
		}
	}
	sort.Strings(nodes)
	rc := n.cfg.AP
	rc.ID, rc.Nodes, rc.Dir, rc.Logger, rc.NoSync, rc.Spans = n.cfg.ID, nodes, n.cfg.DataDir, n.log, n.cfg.NoSync, n.cfg.Spans
	rc.LogKey = ap.LogKey(n.cfg.Secret)
	rc.Observe = n.metrics.obs.apObserver()
	rc.Check = func(cmd fsm.Command) error {
		var err error
		// On the engine, between its own writes: the live state, no copy.
		n.locals[n.shardOfCommand(cmd)].st.ViewLive(func(tx fsm.Tx) error { err = fsm.Precheck(tx, cmd); return nil })
		return err
	}
	n.locals = locals
	rep, err := ap.Open(rc, n.rdb, n.applyEntries, apPeers{c})
	if err != nil {
		return err
	}
	n.ap = rep
	n.metrics.watchAP(rep, n.cfg.ID)
	for i, l := range locals {
		n.shards = append(n.shards, &apReplica{n: n, id: i, s: l})
	}
	if !rc.Repair {
		n.log.Warn("AP repair is off: the seed's naive fan-out, which loses what a node misses")
	}
	return nil
}

// applyEntries applies replicated entries to the shards, each shard's in
// the order given, one transaction per shard, and fans out what changed
// (nothing for entries replayed from the log at a restart).
func (n *Node) applyEntries(entries []ap.Entry, how ap.Arrival) []fsm.Result {
	out := make([]fsm.Result, len(entries))
	byShard := map[int][]int{}
	for i, e := range entries {
		s := n.shardOfCommand(e.Cmd)
		byShard[s] = append(byShard[s], i)
	}
	for s, idx := range byShard {
		cmds := make([]fsm.Command, len(idx))
		for j, i := range idx {
			cmds[j] = entries[i].Cmd
		}
		results, err := n.locals[s].applyBatch(cmds)
		for j, i := range idx {
			if err != nil {
				out[i] = fsm.Result{Err: err}
				continue
			}
			out[i] = results[j]
		}
	}
	// Pushes for this node's gateways whose Redis is broken (all of them
	// for a late entry: its origin's routed push may have found a gateway
	// without its subscription, and that gateway's catch-up may have read
	// this replica before the entry came), and a resync where a message
	// sorted before ones already shown.
	if how == ap.Replay {
		return out // applied and pushed before the restart
	}
	path := pushBroken
	if how == ap.Late {
		path = pushStreams
	}
	var pushes []delayedPush
	for i := range entries {
		r := out[i]
		if r.Renamed != nil {
			n.kickRenamed(r.Renamed)
		}
		if r.Err != nil || r.Message == nil || r.Dup {
			continue
		}
		pushes = append(pushes, delayedPush{conv: r.Conv, id: r.Message.ID, members: r.Members})
		if r.Reordered > 0 {
			n.metrics.obs.resyncs.Inc()
			// Positions moved in this replica: tell the gateways attached
			// to it (their sessions read this replica's positions).
			n.fanout.stream(&pb.Push{Event: &pb.Push_Resync{Resync: &pb.Resync{Conv: n.wireConv(r.Conv), FromSeq: r.Reordered}}}, r.Members, true)
		}
	}
	n.pushAllLater(pushes, path)
	return out
}

// pushPath is where pushLater sends a message push.
type pushPath int

const (
	// pushBroken: the streams of this node's gateways whose Redis
	// subscription is broken.
	pushBroken pushPath = iota
	// pushStreams: the streams of all of this node's gateways.
	pushStreams
	// pushRouted: through Redis to the recipients' gateways (the origin's
	// fan-out).
	pushRouted
)

// delayedPush is a message push waiting for APPushDelay.
type delayedPush struct {
	conv, id string
	members  []uint64
	skip     string // the sender's session, which has the message
}

// pushLater pushes a message once APPushDelay has passed, at its position
// in this replica then. Messages written concurrently on other nodes
// arrive within a replication delay; by the time a message is pushed they
// have been placed, so the position clients are shown rarely moves
// afterwards (and a resync is rare without faults).
func (n *Node) pushLater(conv, id string, members []uint64, skip string, path pushPath) {
	n.pushAllLater([]delayedPush{{conv: conv, id: id, members: members, skip: skip}}, path)
}

// pushAllLater is pushLater for the messages of one applied batch: one
// timer, and one read of each shard for all of them (a pull after a heal
// applies thousands at once).
func (n *Node) pushAllLater(items []delayedPush, path pushPath) {
	if len(items) == 0 {
		return
	}
	time.AfterFunc(n.cfg.APPushDelay, func() {
		if path != pushRouted && !n.fanout.streamsWanted(path == pushStreams) {
			// Every attached gateway hears Redis (the usual case for a
			// replicated entry): the origin's routed push reaches them, and
			// reading the messages back would be work for no one.
			return
		}
		byShard := map[int][]int{}
		for i, it := range items {
			s := ShardOf(it.conv, len(n.shards))
			byShard[s] = append(byShard[s], i)
		}
		recs := make([]fsm.MessageRecord, len(items)) // the zero record: not found
		for s, idx := range byShard {
			// A few lookups, on the live state under its lock: a read copy
			// here, after every round, would make the engine's next writes
			// copy the B-trees' paths (BenchmarkApplyAfterRead: 27 against
			// 60 µs a send). The engine waits meanwhile, so the records
			// are decoded after.
			n.locals[s].st.ViewLive(func(tx fsm.Tx) error {
				for _, i := range idx {
					recs[i], _ = fsm.MessageRecordByID(tx, items[i].id)
				}
				return nil
			})
		}
		msgs := make([]*fsm.Message, len(items))
		for i := range items {
			if m, ok := recs[i].Decode(); ok {
				msgs[i] = &m
			}
		}
		for i, it := range items {
			if msgs[i] == nil {
				continue
			}
			// toPB after the read: naming looks users up in a read of its
			// own, and bbolt reads must not nest.
			push := &pb.Push{Event: &pb.Push_Message{Message: n.toPB(msgs[i])}, SkipSession: it.skip}
			if path != pushRouted {
				n.fanout.stream(push, it.members, path == pushStreams)
				continue
			}
			n.fanout.deliverLater(push, it.members)
		}
	})
}

// kickRenamed ends the sessions of an account that lost its name to a
// registration made on the other side of a partition.
func (n *Node) kickRenamed(r *fsm.Rename) {
	ctx, cancel := context.WithTimeout(context.Background(), fanoutTimeout)
	defer cancel()
	n.fanout.broadcast(ctx, &pb.Push{Event: &pb.Push_Kick{Kick: &pb.Kick{Uid: r.UID, Reason: "name_conflict",
		Message: fmt.Sprintf("during a partition the name %q was registered on both sides and this account lost it: it is now %q; log in as %s", r.From, r.To, r.To)}}})
}

// shardOfCommand is the shard a command belongs to.
func (n *Node) shardOfCommand(c fsm.Command) int {
	switch {
	case c.Send != nil:
		return ShardOf(c.Send.Conv, len(n.locals))
	case c.Ack != nil:
		return ShardOf(c.Ack.Conv, len(n.locals))
	case c.Read != nil:
		return ShardOf(c.Read.Conv, len(n.locals))
	case c.GroupCreate != nil:
		return ShardOf(convid.OfGroup(c.GroupCreate.Group), len(n.locals))
	case c.GroupJoin != nil:
		return ShardOf(convid.OfGroup(c.GroupJoin.Group), len(n.locals))
	case c.GroupLeave != nil:
		return ShardOf(convid.OfGroup(c.GroupLeave.Group), len(n.locals))
	}
	return 0
}

// apReplica is a shard in AP mode: writes go to the replicator, reads to
// the local state (AP reads are always local).
type apReplica struct {
	n  *Node
	id int
	s  *localShard
}

func (r *apReplica) propose(ctx context.Context, cmd fsm.Command) (fsm.Result, error) {
	return r.n.ap.Submit(ctx, cmd) // errors wrap outcome.ErrNotApplied
}

func (r *apReplica) view(fn func(fsm.Tx) error) error { return r.s.view(fn) }

func (r *apReplica) version(bucket string) uint64 { return r.s.st.Version(bucket) }

func (r *apReplica) linearize(context.Context) error { return nil }

func (r *apReplica) status() *pb.ShardStatus { return r.s.status() }

func (r *apReplica) close() error { return r.s.close() }

// apPeers reaches other nodes' Internal service for anti-entropy.
type apPeers struct{ c *cluster }

func (p apPeers) State(ctx context.Context, node string, mine ap.Vector) (ap.Vector, error) {
	cc, ic, err := p.c.client(p.c.peers[node])
	if err != nil {
		return ap.Vector{}, err
	}
	rep, err := ic.APState(ctx, &pb.APVector{Node: mine.Node, Vector: mine.Vector, Hlc: mine.HLC})
	if err != nil {
		// Try the connection again at the next round instead of after
		// gRPC's backoff (up to a second): a healed partition should not
		// wait for it.
		cc.ResetConnectBackoff()
		return ap.Vector{}, err
	}
	return ap.Vector{Node: rep.Node, Vector: rep.Vector, HLC: rep.Hlc}, nil
}

func (p apPeers) Pull(ctx context.Context, node, origin string, after uint64, limit int) ([][]byte, error) {
	_, ic, err := p.c.client(p.c.peers[node])
	if err != nil {
		return nil, err
	}
	rep, err := ic.APPull(ctx, &pb.APPullRequest{Origin: origin, After: after, Limit: uint32(limit)})
	if err != nil {
		return nil, err
	}
	return rep.Entries, nil
}

func (s *internalService) APState(ctx context.Context, req *pb.APVector) (*pb.APVector, error) {
	if s.n.ap == nil {
		return nil, rpcerr.Error(rpcerr.BadRequest, "this node does not run the AP mode")
	}
	s.n.ap.Observe(ap.Vector{Node: req.Node, Vector: req.Vector, HLC: req.Hlc})
	v := s.n.ap.State()
	return &pb.APVector{Node: v.Node, Vector: v.Vector, Hlc: v.HLC}, nil
}

func (s *internalService) APPull(ctx context.Context, req *pb.APPullRequest) (*pb.APEntries, error) {
	if s.n.ap == nil {
		return nil, rpcerr.Error(rpcerr.BadRequest, "this node does not run the AP mode")
	}
	entries, err := s.n.ap.Entries(req.Origin, req.After, int(req.Limit))
	if err != nil {
		return nil, rpcerr.Error(rpcerr.Internal, "read the AP log: %v", err)
	}
	return &pb.APEntries{Entries: entries}, nil
}
