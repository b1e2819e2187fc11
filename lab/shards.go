package lab

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"
)

// EventLeader: a shard's leader changed (CP mode); Detail names the shard,
// the new leader and the term.
const EventLeader EventKind = "leader"

// ShardReplica is one node's view of one shard (CP mode: its Raft state).
type ShardReplica struct {
	Shard        int      `json:"shard"`
	State        string   `json:"state"`
	Leader       string   `json:"leader"`
	Term         uint64   `json:"term"`
	CommitIndex  uint64   `json:"commit_index"`
	AppliedIndex uint64   `json:"applied_index"`
	LastIndex    uint64   `json:"last_index"`
	Voters       []string `json:"voters,omitempty"`
	Restores     uint64   `json:"restores,omitempty"`
}

// NodeShards is one node's replicas, or why they could not be read.
type NodeShards struct {
	Shards []ShardReplica `json:"shards,omitempty"`
	// AP is the node's replication state in AP mode.
	AP    *APReplication `json:"ap,omitempty"`
	Error string         `json:"error,omitempty"`
}

// APReplication is one node's AP replication state, as its admin status
// reports it (package node/ap, Status).
type APReplication struct {
	// Outbox counts entries waiting to be published again; Pending counts
	// received entries waiting for their causal dependencies.
	Outbox  uint64 `json:"outbox"`
	Pending uint64 `json:"pending"`
	// LagMS is, per peer, how far the last clock heard from it trails this
	// node's clock; StableLagMS how far the stable clock trails it.
	LagMS map[string]int64 `json:"lag_ms"`
	// HeardMS is, per peer, how long ago its last heartbeat arrived (-1:
	// never since the node started).
	HeardMS     map[string]int64 `json:"heard_ms"`
	StableLagMS int64            `json:"stable_lag_ms"`
	// Tentative counts messages whose position can still change here.
	Tentative int               `json:"tentative"`
	Capped    bool              `json:"tentative_capped,omitempty"`
	Vector    map[string]uint64 `json:"vector,omitempty"`
	Published uint64            `json:"published"`
	Received  uint64            `json:"received"`
	Pulled    uint64            `json:"pulled"`
	Applied   uint64            `json:"applied"`
	// Resubscribes counts Redis subscriptions the node dropped as dead.
	Resubscribes uint64 `json:"resubscribes"`
	// Forged counts messages on the replication channels not signed by a
	// member of the cluster (dropped).
	Forged uint64 `json:"forged"`
}

// Shards reads every running node's shard replicas directly from the node
// (not through the fault layer).
func (l *Lab) Shards(ctx context.Context) map[string]NodeShards {
	return eachNode(l, func(m MemberState) NodeShards {
		if m.State != StateRunning {
			return NodeShards{Error: string(m.State)}
		}
		var body struct {
			Shards []ShardReplica `json:"shards"`
			AP     *APReplication `json:"ap"`
		}
		if err := getNodeJSON(ctx, m.HTTP+"admin/status", time.Second, &body); err != nil {
			return NodeShards{Error: err.Error()}
		}
		sort.Slice(body.Shards, func(i, j int) bool { return body.Shards[i].Shard < body.Shards[j].Shard })
		return NodeShards{Shards: body.Shards, AP: body.AP}
	})
}

// leader is the member `leader` names: in CP mode the node leading shard
// 0 — the leader of the highest term any running node reports as
// itself leading it — and n1 in AP mode (or when no node leads).
func (l *Lab) leader() string {
	if l.currentMode() != "cp" {
		return "n1"
	}
	best, term := "n1", uint64(0)
	for name, ns := range l.Shards(context.Background()) {
		for _, s := range ns.Shards {
			if s.Shard == 0 && s.State == "Leader" && s.Term >= term {
				best, term = name, s.Term
			}
		}
	}
	return best
}

// watchLeaders turns leader changes into events, polling the nodes.
func (l *Lab) watchLeaders(stop <-chan struct{}) {
	last := map[int]string{}
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		type lead struct {
			node string
			term uint64
		}
		now := map[int]lead{}
		for name, ns := range l.Shards(context.Background()) {
			for _, s := range ns.Shards {
				if s.State == "Leader" && s.Term >= now[s.Shard].term {
					now[s.Shard] = lead{name, s.Term}
				}
			}
		}
		for shard, ld := range now {
			if last[shard] != ld.node {
				last[shard] = ld.node
				l.emit(Event{Kind: EventLeader, Member: ld.node, Detail: fmt.Sprintf("shard %d: leader %s, term %d", shard, ld.node, ld.term)})
			}
		}
	}
}

// startLeaderWatch, in CP mode, waits (bounded by ctx) until every shard
// has a leader and then starts the watch that turns leader changes into
// events, until Close or SwitchMode stops it.
func (l *Lab) startLeaderWatch(ctx context.Context) {
	if l.currentMode() != "cp" {
		return
	}
	l.waitLeaders(ctx)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || l.stopWatch != nil {
		return
	}
	stop := make(chan struct{})
	l.stopWatch = stop
	l.wg.Go(func() { l.watchLeaders(stop) })
}

// stopLeaderWatch ends the leader watch, if one runs.
func (l *Lab) stopLeaderWatch() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopWatch != nil {
		close(l.stopWatch)
		l.stopWatch = nil
	}
}

// waitLeaders waits (bounded by ctx) until every shard has a leader — all
// on one node with --leaders colocate — so that a lab is usable the moment
// it says it is ready.
func (l *Lab) waitLeaders(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, l.cfg.ReadyTimeout)
	defer cancel()
	for {
		leaders := map[int]string{}
		shards := 0
		for name, ns := range l.Shards(ctx) {
			if strings.HasPrefix(ns.Error, "bad answer") {
				return // not a node that speaks the admin API (a test stand-in)
			}
			shards = max(shards, len(ns.Shards))
			for _, s := range ns.Shards {
				if s.State == "Leader" {
					leaders[s.Shard] = name
				}
			}
		}
		distinct := map[string]bool{}
		for _, n := range leaders {
			distinct[n] = true
		}
		if shards > 0 && len(leaders) == shards && (l.cfg.Leaders != "colocate" || len(distinct) == 1) {
			return
		}
		select {
		case <-ctx.Done():
			l.log.Warn("not every shard has a leader yet; the lab starts anyway", "leaders", leaders)
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}
