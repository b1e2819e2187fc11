package ap

import (
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"mpim/fsm"
	"mpim/internal/batch"
	"mpim/internal/channels"
	"mpim/node/outcome"
)

// ErrNotApplied: the write could not be logged; it is not applied (the
// modes' shared vocabulary, package outcome).
var ErrNotApplied = fmt.Errorf("ap: %w", outcome.ErrNotApplied)

// Config configures a node's replicator.
type Config struct {
	// ID is this node; Nodes are every node of the cluster (this one too):
	// a message is stable once every one of them has moved past it.
	ID    string
	Nodes []string
	// Dir holds the log (ap.db).
	Dir string
	// Repair turns on the outbox and anti-entropy. Off is the seed's naive
	// design: pub/sub is at-most-once, so what a node misses is lost.
	Repair bool
	// AntiEntropy is how often a node compares vectors with each peer;
	// Heartbeat how often it publishes its clock.
	AntiEntropy time.Duration
	Heartbeat   time.Duration
	// PullLimit bounds the entries one pull returns.
	PullLimit int
	// MaxBatch bounds the local writes logged together.
	MaxBatch int
	Logger   *slog.Logger
	// Check, if set, is asked about every local write before it is
	// logged; a write it refuses is answered with that domain error and
	// never logged (see fsm.Precheck).
	Check func(fsm.Command) error
	// Now is the wall clock the hybrid logical clock and the late-entry
	// rule read; nil is time.Now (tests inject a clock they step).
	Now func() time.Time
}

// DefaultConfig returns the lab's settings.
func DefaultConfig() Config {
	return Config{Repair: true, AntiEntropy: 250 * time.Millisecond, Heartbeat: 200 * time.Millisecond,
		PullLimit: 5000, MaxBatch: 512}
}

// Applier applies entries, in the order given, to the node's state and
// returns one result per entry. late marks entries that came by a pull
// (anti-entropy) rather than live: their origin's pushes may have missed
// gateways, so the applier pushes them again.
type Applier func(entries []Entry, late bool) []fsm.Result

// Peers reaches the other nodes for anti-entropy.
type Peers interface {
	// State exchanges vectors with node.
	State(ctx context.Context, node string, mine Vector) (Vector, error)
	// Pull returns node's entries of origin after an oseq.
	Pull(ctx context.Context, node, origin string, after uint64, limit int) ([]Entry, error)
}

// Vector is a node's replication position: per origin the highest oseq it
// holds in order, and its clock.
type Vector struct {
	Node   string            `json:"node"`
	Vector map[string]uint64 `json:"vector"`
	HLC    uint64            `json:"hlc"`
}

// Replicator is one node's AP replication.
type Replicator struct {
	cfg    Config
	log    *log
	clock  *Clock
	rdb    *redis.Client
	apply  Applier
	peers  Peers
	logger *slog.Logger

	submits chan *submit

	// applyMu serializes applying (local batches and remote entries), so
	// that the vector only moves forward with the state.
	applyMu sync.Mutex
	mu      sync.Mutex // guards the fields below
	vec     map[string]uint64
	pending map[string]map[uint64]Entry // waiting for their dependencies
	water   map[string]uint64           // per node: a clock value it will never go below
	outbox  []Entry
	stats   Stats
	// number is this node's number (NodeNumber), minted into user ids.
	number uint64
	// heard is when each peer's heartbeat last arrived on the
	// subscription, whatever this node lacks of it.
	heard map[string]time.Time
	// toPublish are local entries waiting for the publisher.
	toPublish   []Entry
	publishKick chan struct{}
	// aeKick starts an anti-entropy round before its interval is up.
	aeKick chan struct{}

	stop chan struct{}
	wg   sync.WaitGroup
}

// Stats are counters for the dashboard and tests.
type Stats struct {
	Published, PublishFailed, Received, Pulled, Applied, Outbox, Pending uint64
	// Resubscribes counts Redis subscriptions dropped as dead (silent past
	// a ping) and made again.
	Resubscribes uint64
}

type submit struct {
	cmd  fsm.Command
	done chan submitResult
}

type submitResult struct {
	res fsm.Result
	err error
}

// Open starts the replicator. rdb may be nil (no Redis: anti-entropy only).
func Open(cfg Config, rdb *redis.Client, apply Applier, peers Peers) (*Replicator, error) {
	number, err := NodeNumber(cfg.ID)
	if err != nil {
		return nil, err
	}
	l, err := openLog(cfg.Dir)
	if err != nil {
		return nil, err
	}
	vec, err := l.vector()
	if err != nil {
		l.close()
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	r := &Replicator{cfg: cfg, number: number, log: l, clock: &Clock{now: cfg.Now}, rdb: rdb, apply: apply, peers: peers, logger: logger,
		submits: make(chan *submit, 4*cfg.MaxBatch), vec: vec, pending: map[string]map[uint64]Entry{},
		water: map[string]uint64{}, heard: map[string]time.Time{}, stop: make(chan struct{}), publishKick: make(chan struct{}, 1),
		aeKick: make(chan struct{}, 1)}
	if err := r.recover(); err != nil {
		l.close()
		return nil, err
	}
	r.run(r.writer)
	if rdb != nil {
		r.run(r.publisher)
		r.run(r.subscribe)
		r.run(r.heartbeat)
	}
	if cfg.Repair {
		r.run(r.antiEntropy)
		r.run(r.drainOutbox)
	}
	return r, nil
}

func (r *Replicator) run(fn func()) {
	r.wg.Add(1)
	go func() { defer r.wg.Done(); fn() }()
}

// Close stops replication.
func (r *Replicator) Close() error {
	close(r.stop)
	r.wg.Wait()
	// What the last local batch applied (see commitLocal).
	r.mu.Lock()
	self := r.vec[r.cfg.ID]
	r.mu.Unlock()
	err := r.log.put(nil, map[string]uint64{r.cfg.ID: self})
	return errors.Join(err, r.log.close())
}

// recover re-applies this node's own entries that were logged but may not
// have reached the state before a crash (applying is idempotent).
func (r *Replicator) recover() error {
	entries, err := r.log.after(r.cfg.ID, r.vec[r.cfg.ID], 1<<30)
	if err != nil || len(entries) == 0 {
		return err
	}
	r.apply(entries, false)
	last := entries[len(entries)-1]
	r.vec[r.cfg.ID] = last.OSeq
	r.clock.Observe(last.HLC)
	return r.log.put(nil, map[string]uint64{r.cfg.ID: last.OSeq})
}

// Submit accepts a local write: it is stamped, logged (fsync), applied and
// answered at once — it never waits for Redis or for peers — then
// published for the other nodes.
func (r *Replicator) Submit(ctx context.Context, cmd fsm.Command) (fsm.Result, error) {
	s := &submit{cmd: cmd, done: make(chan submitResult, 1)}
	select {
	case r.submits <- s:
	case <-ctx.Done():
		return fsm.Result{}, fmt.Errorf("%w: %v", ErrNotApplied, ctx.Err())
	case <-r.stop:
		return fsm.Result{}, fmt.Errorf("%w: stopping", ErrNotApplied)
	}
	// Once queued the write will be logged and applied; wait for it.
	res := <-s.done
	return res.res, res.err
}

// writer group-commits local writes: every submit waiting becomes part of
// one log write and one apply.
func (r *Replicator) writer() {
	for {
		var first *submit
		select {
		case first = <-r.submits:
		case <-r.stop:
			return
		}
		r.commitLocal(batch.Drain(r.submits, []*submit{first}, r.cfg.MaxBatch))
	}
}

func (r *Replicator) commitLocal(batch []*submit) {
	r.applyMu.Lock()
	if r.cfg.Check != nil {
		// Refuse, before logging, what this replica would refuse: a logged
		// entry reaches every replica, and one that knows more than the
		// origin would apply what the origin refused.
		kept := batch[:0]
		for _, s := range batch {
			if err := r.cfg.Check(s.cmd); err != nil {
				s.done <- submitResult{res: fsm.Result{Err: err}}
				continue
			}
			kept = append(kept, s)
		}
		if batch = kept; len(batch) == 0 {
			r.applyMu.Unlock()
			return
		}
	}
	r.mu.Lock()
	entries := make([]Entry, len(batch))
	deps := maps.Clone(r.vec)
	next := r.vec[r.cfg.ID]
	for i, s := range batch {
		next++
		e := Entry{Origin: r.cfg.ID, OSeq: next, HLC: r.clock.Now(), Deps: deps, Cmd: s.cmd}
		r.stamp(&e)
		entries[i] = e
	}
	prev := r.vec[r.cfg.ID]
	r.mu.Unlock()
	// The stored vector of this node's own writes rides on the next log
	// write: this batch's write records the previous batch's, which is
	// applied. recover re-applies, idempotently, whatever the stored
	// vector does not cover, so it may lag the state, never lead it — and
	// a batch costs one log fsync fewer.
	if err := r.log.put(entries, map[string]uint64{r.cfg.ID: prev}); err != nil {
		r.applyMu.Unlock()
		for _, s := range batch {
			s.done <- submitResult{err: fmt.Errorf("%w: log: %v", ErrNotApplied, err)}
		}
		return
	}
	results := r.apply(entries, false)
	r.mu.Lock()
	r.vec[r.cfg.ID] = next
	r.water[r.cfg.ID] = entries[len(entries)-1].HLC
	r.stats.Applied += uint64(len(entries))
	r.mu.Unlock()
	r.applyMu.Unlock()
	for i, s := range batch {
		s.done <- submitResult{res: results[i]}
	}
	r.mu.Lock()
	r.toPublish = append(r.toPublish, entries...)
	r.mu.Unlock()
	select {
	case r.publishKick <- struct{}{}:
	default:
	}
}

// publisher publishes local entries off the write path: a slow or cut
// Redis delays replication, never the writes.
func (r *Replicator) publisher() {
	for {
		select {
		case <-r.stop:
			return
		case <-r.publishKick:
		}
		r.mu.Lock()
		out := r.toPublish
		r.toPublish = nil
		r.mu.Unlock()
		r.publishAll(out)
	}
}

// stamp fills in what the origin decides for every replica: a message's
// order key and origin sequence, a new user's uid.
func (r *Replicator) stamp(e *Entry) {
	switch {
	case e.Cmd.Send != nil:
		s := *e.Cmd.Send
		s.Order = OrderKey(e.HLC, e.Origin, s.ID)
		s.OSeq = e.OSeq
		e.Cmd.Send = &s
	case e.Cmd.Register != nil:
		reg := *e.Cmd.Register
		reg.UID = UID(r.number, e.OSeq)
		e.Cmd.Register = &reg
	case e.Cmd.GroupCreate != nil:
		// The same group created on two sides merges (fsm conflict rules).
		g := *e.Cmd.GroupCreate
		g.Merge = true
		e.Cmd.GroupCreate = &g
	case e.Cmd.GroupJoin != nil, e.Cmd.GroupLeave != nil:
		// Concurrent joins and leaves resolve last-writer-wins by stamp.
		if e.Cmd.GroupJoin != nil {
			m := *e.Cmd.GroupJoin
			m.Stamp = r.entryStamp(e)
			e.Cmd.GroupJoin = &m
		} else {
			m := *e.Cmd.GroupLeave
			m.Stamp = r.entryStamp(e)
			e.Cmd.GroupLeave = &m
		}
	case e.Cmd.UserUpdate != nil:
		u := *e.Cmd.UserUpdate
		u.Stamp = r.entryStamp(e)
		e.Cmd.UserUpdate = &u
	}
}

// entryStamp is an entry's last-writer-wins stamp: its clock, then origin
// and origin sequence, so that no two entries tie.
func (r *Replicator) entryStamp(e *Entry) []byte {
	return OrderKey(e.HLC, e.Origin, strconv.FormatUint(e.OSeq, 10))
}

// OrderKey is a message's place in AP mode: hybrid logical clock, then
// origin, then id — a total order every replica computes alike.
func OrderKey(hlc uint64, origin, id string) []byte {
	k := binary.BigEndian.AppendUint64(nil, hlc)
	k = append(k, origin...)
	k = append(k, 0)
	return append(k, id...)
}

// HLCOf reads the clock out of an AP order key (0 for other keys).
func HLCOf(order []byte) uint64 {
	if len(order) < 9 {
		return 0
	}
	return binary.BigEndian.Uint64(order[:8])
}

// UID makes a user id no other node can make: the node's number (see
// NodeNumber) in the high bits, its log position below.
func UID(number, oseq uint64) uint64 { return number<<40 | oseq }

// NodeNumber is the number a node id ends in, which AP mode puts in the
// uids the node mints, so ids must end in distinct numbers: "n3" is 3,
// "node12" 12. It refuses an id without a final number, with a leading
// zero ("n01" would mint n1's uids) or above 65535.
func NodeNumber(id string) (uint64, error) {
	digits := id[strings.LastIndexFunc(id, func(r rune) bool { return r < '0' || r > '9' })+1:]
	n, err := strconv.ParseUint(digits, 10, 16)
	if err != nil || n == 0 || digits[0] == '0' {
		return 0, fmt.Errorf("ap: node id %q must end in a number from 1 to 65535 without a leading zero (n1, n2, ...): AP mode mints user ids from it", id)
	}
	return n, nil
}

// publish sends entries to the other nodes; with repair on, what could
// not be published waits in the outbox.
func (r *Replicator) publish(entries []Entry) {
	if r.rdb == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	pipe := r.rdb.Pipeline()
	for _, e := range entries {
		b, _ := json.Marshal(e)
		pipe.Publish(ctx, channels.APLog, b)
	}
	_, err := pipe.Exec(ctx)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err == nil {
		r.stats.Published += uint64(len(entries))
		return
	}
	r.stats.PublishFailed += uint64(len(entries))
	if r.cfg.Repair {
		// In origin order: the publisher and the outbox drainer both put
		// failed entries back, and receivers apply an origin's entries in
		// order (a gap waits, pending, until it is filled).
		r.outbox = append(r.outbox, entries...)
		slices.SortFunc(r.outbox, func(a, b Entry) int { return cmp.Compare(a.OSeq, b.OSeq) })
		r.stats.Outbox = uint64(len(r.outbox))
	}
}

// publishChunk bounds the entries one Redis pipeline carries.
const publishChunk = 1000

// publishAll publishes entries in pipelines of publishChunk.
func (r *Replicator) publishAll(entries []Entry) {
	for len(entries) > 0 {
		n := min(len(entries), publishChunk)
		r.publish(entries[:n])
		entries = entries[n:]
	}
}

// drainOutbox re-publishes what could not be published.
func (r *Replicator) drainOutbox() {
	for r.sleep(200 * time.Millisecond) {
		r.mu.Lock()
		out := r.outbox
		r.outbox = nil
		r.stats.Outbox = 0
		r.mu.Unlock()
		r.publishAll(out)
	}
}

func (r *Replicator) sleep(d time.Duration) bool {
	select {
	case <-r.stop:
		return false
	case <-time.After(d):
		return true
	}
}

// lateAfter is the age past which an entry that came live counts as late
// (an outbox re-publishing after Redis came back, a held link released).
const lateAfter = time.Second

// receive takes entries from Redis or a pull (pulled). With repair on an
// entry is applied once everything it depends on is (causal order), waiting
// meanwhile; with repair off it is applied as it comes, and a missed one
// stays missed. Pulled or old entries are applied as late.
func (r *Replicator) receive(entries []Entry, pulled bool) {
	r.applyMu.Lock()
	defer r.applyMu.Unlock()
	r.mu.Lock()
	var ready []Entry
	for _, e := range entries {
		r.clock.Observe(e.HLC)
		if e.Origin == r.cfg.ID || e.OSeq <= r.vec[e.Origin] {
			continue
		}
		if !r.cfg.Repair {
			ready = append(ready, e)
			r.vec[e.Origin] = max(r.vec[e.Origin], e.OSeq)
			continue
		}
		if r.pending[e.Origin] == nil {
			r.pending[e.Origin] = map[uint64]Entry{}
		}
		r.pending[e.Origin][e.OSeq] = e
	}
	if r.cfg.Repair {
		ready = r.takeReady()
	}
	r.stats.Pending = 0
	for _, p := range r.pending {
		r.stats.Pending += uint64(len(p))
	}
	vec := maps.Clone(r.vec)
	r.mu.Unlock()
	if len(ready) == 0 {
		return
	}
	late := pulled
	oldest := r.cfg.Now().Add(-lateAfter).UnixMilli()
	for _, e := range ready {
		late = late || Millis(e.HLC) < oldest
	}
	r.apply(ready, late)
	if err := r.log.put(ready, vec); err != nil {
		r.logger.Error("ap: log write failed", "err", err)
	}
	r.mu.Lock()
	r.stats.Applied += uint64(len(ready))
	for _, e := range ready {
		r.water[e.Origin] = max(r.water[e.Origin], e.HLC)
	}
	r.mu.Unlock()
}

// takeReady removes from pending, in a causal order, every entry whose
// dependencies are met, advancing the vector. Caller holds mu.
func (r *Replicator) takeReady() []Entry {
	var ready []Entry
	for progress := true; progress; {
		progress = false
		for _, origin := range slices.Sorted(maps.Keys(r.pending)) {
			p := r.pending[origin]
			for {
				e, ok := p[r.vec[origin]+1]
				if !ok || !r.depsMet(e) {
					break
				}
				delete(p, e.OSeq)
				r.vec[origin] = e.OSeq
				ready = append(ready, e)
				progress = true
			}
			if len(p) == 0 {
				delete(r.pending, origin)
			}
		}
	}
	return ready
}

func (r *Replicator) depsMet(e Entry) bool {
	for o, n := range e.Deps {
		if o != e.Origin && r.vec[o] < n {
			return false
		}
	}
	return true
}
