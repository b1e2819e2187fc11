package ap

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"mpim/internal/batch"
	"mpim/internal/channels"
	"net"
	"time"

	"github.com/redis/go-redis/v9"
)

// heartbeat is what a node publishes between writes: its clock, and how
// far its own log goes. A receiver that holds that much of the node's log
// knows the node will never again write below that clock.
type heartbeat struct {
	Node string `json:"node"`
	HLC  uint64 `json:"hlc"`
	OSeq uint64 `json:"oseq"`
}

// receivedBuffer bounds the entries read from Redis and not yet applied;
// the reader waits while it is full.
const receivedBuffer = 4096

// subscribe receives entries and heartbeats from Redis until stop. Entries
// go to applyReceived through a queue, so that a burst (an outbox
// re-published after a partition heals) is applied in batches — one
// transaction, one log write and one renumbering of each conversation's
// tail per batch — instead of one entry at a time.
func (r *Replicator) subscribe() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-r.stop
		cancel()
	}()
	received := make(chan Entry, receivedBuffer)
	r.run(func() { r.applyReceived(received) })
	defer close(received)
	for {
		ps := r.rdb.Subscribe(ctx, channels.APLog, channels.APHeartbeat)
		pinged := false
		for {
			// A subscription that stays silent past a ping is dead (a cut
			// link holds its bytes, it does not close it): drop it and
			// subscribe again. Whatever was published meanwhile is lost to
			// this node — pub/sub is at-most-once — which the outbox and
			// anti-entropy repair, and the naive mode shows.
			raw, err := ps.ReceiveTimeout(ctx, time.Second)
			if ctx.Err() != nil {
				// Stopping. A receive does not watch ctx while messages
				// keep coming (other nodes' heartbeats), so look here.
				break
			}
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() && !pinged && ps.Ping(ctx) == nil {
					pinged = true
					continue
				}
				break
			}
			pinged = false
			msg, ok := raw.(*redis.Message)
			if !ok {
				continue
			}
			switch msg.Channel {
			case channels.APLog:
				var e Entry
				if json.Unmarshal([]byte(msg.Payload), &e) == nil {
					r.mu.Lock()
					r.stats.Received++
					r.mu.Unlock()
					select {
					case received <- e:
					case <-ctx.Done():
					}
				}
			case channels.APHeartbeat:
				var hb heartbeat
				if json.Unmarshal([]byte(msg.Payload), &hb) == nil {
					// A node heard again after missing heartbeats (a
					// healed partition, a restart) that has written
					// entries this one neither holds nor has queued:
					// pull now rather than at the next round.
					now := r.cfg.Now()
					r.mu.Lock()
					prev := r.heard[hb.Node]
					r.heard[hb.Node] = now
					behind := hb.OSeq > r.vec[hb.Node]+uint64(len(received))+uint64(len(r.pending[hb.Node]))
					r.mu.Unlock()
					r.observe(hb.Node, hb.HLC, hb.OSeq)
					if behind && (prev.IsZero() || now.Sub(prev) > 3*r.cfg.Heartbeat) {
						r.kickAntiEntropy()
					}
				}
			}
		}
		ps.Close()
		if ctx.Err() != nil {
			return // stopping, not a dead subscription
		}
		r.mu.Lock()
		r.stats.Resubscribes++
		r.mu.Unlock()
		if !r.sleep(200 * time.Millisecond) {
			return
		}
	}
}

// applyReceived applies the entries subscribe reads, in the order read,
// each time everything queued so far (up to MaxBatch) as one batch.
func (r *Replicator) applyReceived(received <-chan Entry) {
	for e := range received {
		r.receive(batch.Drain(received, []Entry{e}, r.cfg.MaxBatch), false)
	}
}

// observe records that node is at clock hlc having written oseq entries:
// if this node holds all of them, node's future writes sort after hlc.
func (r *Replicator) observe(node string, hlc, oseq uint64) {
	r.clock.Observe(hlc)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.vec[node] >= oseq {
		r.water[node] = max(r.water[node], hlc)
	}
}

// heartbeat publishes this node's clock.
func (r *Replicator) heartbeat() {
	for r.sleep(r.cfg.Heartbeat) {
		r.mu.Lock()
		hb := heartbeat{Node: r.cfg.ID, OSeq: r.vec[r.cfg.ID]}
		r.mu.Unlock()
		hb.HLC = r.clock.Now()
		b, _ := json.Marshal(hb)
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		r.rdb.Publish(ctx, channels.APHeartbeat, b)
		cancel()
	}
}

// kickAntiEntropy starts an anti-entropy round now.
func (r *Replicator) kickAntiEntropy() {
	select {
	case r.aeKick <- struct{}{}:
	default:
	}
}

// antiEntropy compares vectors with every peer and pulls what is missing,
// every AntiEntropy interval or when kicked.
func (r *Replicator) antiEntropy() {
	for {
		select {
		case <-r.stop:
			return
		case <-time.After(r.cfg.AntiEntropy):
		case <-r.aeKick:
		}
		for _, peer := range r.cfg.Nodes {
			if peer != r.cfg.ID {
				r.syncWith(peer)
			}
		}
	}
}

func (r *Replicator) syncWith(peer string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	theirs, err := r.peers.State(ctx, peer, r.State())
	if err != nil {
		return
	}
	r.observe(peer, theirs.HLC, theirs.Vector[peer])
	for origin, n := range theirs.Vector {
		r.mu.Lock()
		have := r.vec[origin]
		r.mu.Unlock()
		if have < n && origin != r.cfg.ID {
			r.pull(ctx, peer, origin, have, n)
		}
	}
}

// pullChunk is how many entries one pull asks for: a backlog comes in
// chunks, the next one on its way while this one is applied.
const pullChunk = 1000

// pull fetches origin's entries after have, up to want, from peer and
// receives them. Entries whose dependencies on another origin are not met
// yet wait in pending until that origin's are pulled.
func (r *Replicator) pull(ctx context.Context, peer, origin string, have, want uint64) {
	chunks := make(chan []Entry, 1)
	go func() {
		defer close(chunks)
		for after := have; after < want; {
			entries, err := r.peers.Pull(ctx, peer, origin, after, min(pullChunk, r.cfg.PullLimit))
			if err != nil || len(entries) == 0 {
				return
			}
			select {
			case chunks <- entries:
			case <-ctx.Done():
				return
			}
			after = entries[len(entries)-1].OSeq
		}
	}()
	for entries := range chunks {
		r.mu.Lock()
		r.stats.Pulled += uint64(len(entries))
		r.mu.Unlock()
		r.receive(entries, true)
	}
}

// State is this node's vector and clock.
func (r *Replicator) State() Vector {
	r.mu.Lock()
	defer r.mu.Unlock()
	return Vector{Node: r.cfg.ID, Vector: maps.Clone(r.vec), HLC: r.clock.Now()}
}

// Entries serves a peer's pull: the log's records (JSON entries) as
// stored, not decoded and encoded again.
func (r *Replicator) Entries(origin string, after uint64, limit int) ([][]byte, error) {
	if limit <= 0 || limit > r.cfg.PullLimit {
		limit = r.cfg.PullLimit
	}
	return r.log.afterRaw(origin, after, limit)
}

// Observe lets a peer's state (from its anti-entropy call) count as a
// heartbeat.
func (r *Replicator) Observe(v Vector) { r.observe(v.Node, v.HLC, v.Vector[v.Node]) }

// Stable is the clock below which no node can still write: every node has
// been heard from past it. A message above it is tentative — a message
// from a node not yet heard from could still sort before it.
func (r *Replicator) Stable() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	stable := r.clock.Peek()
	for _, n := range r.cfg.Nodes {
		if n == r.cfg.ID {
			continue
		}
		stable = min(stable, r.water[n])
	}
	return stable
}

// Stats returns the replication counters.
func (r *Replicator) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats
}
