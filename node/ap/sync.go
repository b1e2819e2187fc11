package ap

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"

	"mpim/internal/batch"
	"mpim/internal/channels"
)

// receivedBuffer bounds the entries read from Redis and not yet handed to
// the engine; the reader waits while it is full.
const receivedBuffer = 4096

// lateAfter is the age past which an entry that came live counts as late
// (an outbox re-publishing after Redis came back, a held link released).
const lateAfter = time.Second

// received is an entry as read from Redis: decoded, and as it came.
type received struct {
	e   Entry
	raw []byte
}

// subscribe receives entries and heartbeats from Redis until stop. Entries
// go to receiveLive through a queue, so that a burst (an outbox published
// again after a partition heals) reaches the engine in batches.
func (r *Replicator) subscribe() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-r.stop
		cancel()
	}()
	queue := make(chan received, receivedBuffer)
	r.run(func() { r.receiveLive(queue) })
	defer close(queue)
	for {
		ps := r.rdb.Subscribe(ctx, channels.APLog, channels.APHeartbeat)
		pinged := false
		for {
			// A subscription that stays silent past a ping is dead (a cut
			// link holds its bytes, it does not close it): drop it and
			// subscribe again. Whatever was published meanwhile is lost to
			// this node — pub/sub is at-most-once — which the outbox and
			// anti-entropy repair, and the naive mode shows.
			msg, err := ps.ReceiveTimeout(ctx, time.Second)
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
			if m, ok := msg.(*redis.Message); ok {
				r.handle(ctx, m, queue)
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

// handle takes one message of the subscription.
func (r *Replicator) handle(ctx context.Context, m *redis.Message, queue chan<- received) {
	payload, ok := r.seal.open(m.Channel, []byte(m.Payload))
	if !ok {
		r.mu.Lock()
		r.stats.Forged++
		first := r.stats.Forged == 1
		r.mu.Unlock()
		if first {
			r.logger.Warn("ap: dropped a message on Redis not signed by a member of this cluster (later ones are only counted: Forged)", "channel", m.Channel)
		}
		return
	}
	switch m.Channel {
	case channels.APLog:
		raw := payload
		e, err := DecodeEntry(raw)
		if err != nil {
			r.logger.Warn("ap: undecodable entry on Redis", "err", err)
			return
		}
		r.mu.Lock()
		r.stats.Received++
		r.mu.Unlock()
		select {
		case queue <- received{e, raw}:
		case <-ctx.Done():
		}
	case channels.APHeartbeat:
		var hb heartbeat
		if json.Unmarshal(payload, &hb) != nil {
			return
		}
		// A node heard again after missing heartbeats (a healed partition,
		// a restart) that has written entries this one neither holds nor
		// has queued: pull now rather than at the next round.
		now := r.cfg.Now()
		r.mu.Lock()
		prev := r.heard[hb.Node]
		r.heard[hb.Node] = now
		behind := hb.OSeq > r.queued[hb.Node]+uint64(len(queue))+uint64(len(r.pending[hb.Node]))
		r.mu.Unlock()
		r.observe(hb.Node, hb.HLC, hb.OSeq)
		if behind && (prev.IsZero() || now.Sub(prev) > 3*r.cfg.Heartbeat) {
			r.kickAntiEntropy()
		}
	}
}

// receiveLive hands the entries subscribe reads to receive, in the order
// read, each time everything queued so far (up to MaxBatch) as one batch.
func (r *Replicator) receiveLive(queue <-chan received) {
	for first := range queue {
		got := batch.Drain(queue, []received{first}, r.cfg.MaxBatch)
		entries, raw := make([]Entry, len(got)), make([][]byte, len(got))
		for i, g := range got {
			entries[i], raw[i] = g.e, g.raw
		}
		r.receive(entries, raw, false)
	}
}

// receive takes entries from Redis or a pull (pulled) and hands the engine
// those now ready. With repair on an entry is ready once everything it
// depends on is (causal order), waiting meanwhile; with repair off it is
// ready as it comes, and a missed one stays missed. Pulled or old entries
// arrive Late.
func (r *Replicator) receive(entries []Entry, raw [][]byte, pulled bool) {
	r.recvMu.Lock()
	defer r.recvMu.Unlock()
	r.mu.Lock()
	var ready []received
	for i, e := range entries {
		r.clock.Observe(e.HLC)
		if e.Origin == r.cfg.ID || e.OSeq <= r.queued[e.Origin] {
			continue
		}
		if !r.cfg.Repair {
			// The naive design applies what comes, gaps and all.
			ready = append(ready, received{e, raw[i]})
			r.queued[e.Origin] = e.OSeq
			continue
		}
		if r.pending[e.Origin] == nil {
			r.pending[e.Origin] = map[uint64]received{}
		}
		r.pending[e.Origin][e.OSeq] = received{e, raw[i]}
	}
	if r.cfg.Repair {
		ready = r.takeReady()
	}
	r.stats.Pending = 0
	for _, p := range r.pending {
		r.stats.Pending += uint64(len(p))
	}
	r.mu.Unlock()
	if len(ready) == 0 {
		return
	}
	how := Live
	oldest := r.cfg.Now().Add(-lateAfter).UnixMilli()
	rb := remoteBatch{entries: make([]Entry, len(ready)), raw: make([][]byte, len(ready))}
	for i, g := range ready {
		rb.entries[i], rb.raw[i] = g.e, g.raw
		if pulled || Millis(g.e.HLC) < oldest {
			how = Late
		}
	}
	rb.how = how
	select {
	case r.remote <- rb:
	case <-r.stop:
	}
}

// takeReady removes from pending, in a causal order, every entry whose
// dependencies are met, and counts it queued. Caller holds mu.
func (r *Replicator) takeReady() []received {
	var ready []received
	for progress := true; progress; {
		progress = false
		for _, origin := range slices.Sorted(maps.Keys(r.pending)) {
			p := r.pending[origin]
			for {
				g, ok := p[r.queued[origin]+1]
				if !ok || !r.depsMet(g.e) {
					break
				}
				delete(p, g.e.OSeq)
				r.queued[origin] = g.e.OSeq
				ready = append(ready, g)
				progress = true
			}
			if len(p) == 0 {
				delete(r.pending, origin)
			}
		}
	}
	return ready
}

// depsMet: every entry e depends on is queued for the engine (which
// applies in the order it is handed entries). Caller holds mu.
func (r *Replicator) depsMet(e Entry) bool {
	for o, n := range e.Deps {
		if o != r.cfg.ID && r.queued[o] < n {
			return false
		}
	}
	return true
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
	began := time.Now()
	theirs, err := r.peers.State(ctx, peer, r.State())
	if err != nil {
		r.cfg.Observe.synced(peer, time.Since(began), 0, true)
		return
	}
	pulledBefore := r.Stats().Pulled
	defer func() { r.cfg.Observe.synced(peer, time.Since(began), int(r.Stats().Pulled-pulledBefore), false) }()
	r.observe(peer, theirs.HLC, theirs.Vector[peer])
	for origin, n := range theirs.Vector {
		r.mu.Lock()
		have := r.queued[origin]
		r.mu.Unlock()
		if have < n && origin != r.cfg.ID {
			r.pull(ctx, peer, origin, have, n)
		}
	}
}

// pullChunk is how many entries one pull asks for; the serving node also
// cuts a page at its PullBytes. A backlog comes in pages, the next on its
// way while this one is handed to the engine.
const pullChunk = 1000

// pull fetches origin's entries after have, up to want, from peer and
// receives them. Entries whose dependencies on another origin are not met
// yet wait in pending until that origin's are pulled. A failed pull is
// logged: the next round asks again from where this one stopped.
func (r *Replicator) pull(ctx context.Context, peer, origin string, have, want uint64) {
	pages := make(chan [][]byte, 1)
	go func() {
		defer close(pages)
		for after := have; after < want; {
			raw, err := r.peers.Pull(ctx, peer, origin, after, min(pullChunk, r.cfg.PullLimit))
			if err != nil {
				r.logger.Warn("ap: anti-entropy pull failed; the next round asks again", "peer", peer, "origin", origin, "after", after, "err", err)
				return
			}
			if len(raw) == 0 {
				return
			}
			select {
			case pages <- raw:
			case <-ctx.Done():
				return
			}
			after += uint64(len(raw))
		}
	}()
	for raw := range pages {
		entries := make([]Entry, 0, len(raw))
		for _, b := range raw {
			e, err := DecodeEntry(b)
			if err != nil {
				r.logger.Warn("ap: undecodable pulled entry", "peer", peer, "err", err)
				return
			}
			entries = append(entries, e)
		}
		r.mu.Lock()
		r.stats.Pulled += uint64(len(entries))
		r.mu.Unlock()
		r.receive(entries, raw, true)
	}
}

// State is this node's vector and clock.
func (r *Replicator) State() Vector {
	r.mu.Lock()
	defer r.mu.Unlock()
	return Vector{Node: r.cfg.ID, Vector: maps.Clone(r.vec), HLC: r.clock.Now()}
}

// Entries serves a peer's pull: origin's encoded entries after an oseq, as
// the log holds them, at most limit (and PullLimit) and, past the first,
// PullBytes in all.
func (r *Replicator) Entries(origin string, after uint64, limit int) ([][]byte, error) {
	if limit <= 0 || limit > r.cfg.PullLimit {
		limit = r.cfg.PullLimit
	}
	return r.log.readRaw(origin, after, limit, r.cfg.PullBytes)
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
