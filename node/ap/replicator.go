package ap

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"maps"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"mpim/fsm"
	"mpim/internal/batch"
	"mpim/internal/spans"
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
	// Dir holds the log (ap.log).
	Dir string
	// Repair turns on the outbox and anti-entropy. Off is the seed's naive
	// design: pub/sub is at-most-once, so what a node misses is lost.
	Repair bool
	// AntiEntropy is how often a node compares vectors with each peer;
	// Heartbeat how often it publishes its clock.
	AntiEntropy time.Duration
	Heartbeat   time.Duration
	// PullLimit bounds the entries one pull returns; a pull is also cut at
	// PullBytes (past its first entry), well under gRPC's 4 MiB message.
	PullLimit int
	PullBytes int
	// MaxBatch bounds the local writes logged together.
	MaxBatch int
	// NoSync skips the log's fsync (benchmarks only: a crash can lose
	// acknowledged writes).
	NoSync bool
	Logger *slog.Logger
	// Check, if set, is asked about every local write before it is
	// logged; a write it refuses is answered with that domain error and
	// never logged (see fsm.Precheck).
	Check func(fsm.Command) error
	// Spans, when set, records each local send's stages in the engine
	// (mpim bench --trace).
	Spans *spans.Recorder
	// Now is the wall clock the hybrid logical clock and the late-entry
	// rule read; nil is time.Now (tests inject a clock they step).
	Now func() time.Time
	// Observe, when set, is told what the replicator measures (metrics).
	Observe *Observer
	// LogKey authenticates what the nodes publish on Redis (see sealer;
	// LogKey derives it from the cluster's secret). Empty: nothing is
	// signed or checked (unit tests).
	LogKey []byte
}

// DefaultConfig returns the lab's settings.
func DefaultConfig() Config {
	return Config{Repair: true, AntiEntropy: 250 * time.Millisecond, Heartbeat: 200 * time.Millisecond,
		PullLimit: 5000, PullBytes: 1 << 20, MaxBatch: 512}
}

// Arrival says how entries reach the state, which decides their pushes.
type Arrival int

const (
	// Live: a local write, or an entry received as it was published.
	Live Arrival = iota
	// Late: pulled by anti-entropy, or received long after it was made:
	// its origin's pushes may have missed gateways, so it is pushed again.
	Late
	// Replay: read back from the log at a restart; it was applied and
	// pushed before, so it pushes nothing.
	Replay
)

// Applier applies entries, in the order given, to the node's state and
// returns one result per entry.
type Applier func(entries []Entry, how Arrival) []fsm.Result

// Peers reaches the other nodes for anti-entropy.
type Peers interface {
	// State exchanges vectors with node.
	State(ctx context.Context, node string, mine Vector) (Vector, error)
	// Pull returns node's encoded entries of origin after an oseq (see
	// EncodeEntry), at most limit and a page of bytes.
	Pull(ctx context.Context, node, origin string, after uint64, limit int) ([][]byte, error)
}

// Vector is a node's replication position: per origin the highest oseq it
// holds in order, and its clock.
type Vector struct {
	Node   string            `json:"node"`
	Vector map[string]uint64 `json:"vector"`
	HLC    uint64            `json:"hlc"`
}

// Replicator is one node's AP replication. One engine goroutine owns the
// log and the state's writes: each round it takes every local write and
// every received entry waiting (group commit), applies the received ones,
// stamps the local ones, writes them all to the log in one write with one
// fsync (when it holds a local write), applies the local ones and answers
// them. Publishing reads the log behind it, so a slow or cut Redis delays
// replication, never the writes, and costs no memory.
type Replicator struct {
	cfg    Config
	number uint64 // this node's number (NodeNumber), minted into user ids
	log    *log
	clock  *Clock
	rdb    *redis.Client
	seal   sealer
	apply  Applier
	peers  Peers
	logger *slog.Logger

	submits chan *submit
	remote  chan remoteBatch
	// barrier asks the engine to commit what is queued and then close the
	// channel it is given (the tests' way to wait for it).
	barrier chan chan struct{}
	// recvMu orders the hand-over of received entries: takeReady and the
	// send to the engine happen under it, so the engine gets each
	// origin's entries in oseq order.
	recvMu sync.Mutex

	mu sync.Mutex // guards the fields below
	// vec is, per origin, the entries logged and applied; queued the
	// entries handed to the engine (at least vec).
	vec, queued map[string]uint64
	pending     map[string]map[uint64]received // waiting for their dependencies
	water       map[string]uint64              // per node: a clock value it will never go below
	// heard is when each peer's heartbeat last arrived on the
	// subscription, whatever this node lacks of it.
	heard map[string]time.Time
	// published is how many of this node's own entries are published:
	// with repair on, the outbox is the log after it.
	published uint64
	stats     Stats

	publishKick chan struct{}
	// aeKick starts an anti-entropy round before its interval is up.
	aeKick chan struct{}

	stop       chan struct{}
	engineDone chan struct{}
	wg         sync.WaitGroup
}

// Stats are counters for the dashboard and tests.
type Stats struct {
	Published, PublishFailed, Received, Pulled, Applied, Outbox, Pending uint64
	// Forged counts messages on the replication channels whose tag did not
	// check: not published by a member; dropped.
	Forged uint64
	// Resubscribes counts Redis subscriptions dropped as dead (silent past
	// a ping) and made again.
	Resubscribes uint64
}

type submit struct {
	cmd    fsm.Command
	done   chan submitResult
	queued time.Time
}

// spanKey is the key of a write's spans: a send's sender and cmid.
func spanKey(cmd fsm.Command) string {
	if cmd.Send == nil {
		return ""
	}
	return spans.Key(cmd.Send.From, cmd.Send.Cmid)
}

type submitResult struct {
	res fsm.Result
	err error
}

// remoteBatch is received entries, ready in causal order, for the engine.
type remoteBatch struct {
	entries []Entry
	raw     [][]byte // each entry's encoding, as received
	how     Arrival
}

// replayBatch bounds the entries applied together at a restart.
const replayBatch = 512

// Open starts the replicator: it reads the log back into the state (the
// state is in memory; the log is its durable copy), then replicates. rdb
// may be nil (no Redis: anti-entropy only).
func Open(cfg Config, rdb *redis.Client, apply Applier, peers Peers) (*Replicator, error) {
	number, err := NodeNumber(cfg.ID)
	if err != nil {
		return nil, err
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.PullBytes <= 0 {
		cfg.PullBytes = 1 << 20
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	r := &Replicator{cfg: cfg, number: number, clock: &Clock{now: cfg.Now}, rdb: rdb, seal: sealer{cfg.LogKey}, apply: apply, peers: peers, logger: logger,
		submits: make(chan *submit, 4*cfg.MaxBatch), remote: make(chan remoteBatch, 16), barrier: make(chan chan struct{}),
		vec: map[string]uint64{}, queued: map[string]uint64{}, pending: map[string]map[uint64]received{},
		water: map[string]uint64{}, heard: map[string]time.Time{}, stop: make(chan struct{}), engineDone: make(chan struct{}),
		publishKick: make(chan struct{}, 1), aeKick: make(chan struct{}, 1)}
	if err := r.replay(); err != nil {
		return nil, err
	}
	r.published = r.vec[cfg.ID] // what a crash left unpublished, anti-entropy carries
	go func() { defer close(r.engineDone); r.engine() }()
	if rdb != nil {
		r.run(r.publisher)
		r.run(r.subscribe)
		r.run(r.heartbeat)
	}
	if cfg.Repair {
		r.run(r.antiEntropy)
	}
	return r, nil
}

// replay opens the log and applies what it holds, in its order (the
// order this node applied it in, a causal one).
func (r *Replicator) replay() error {
	var buf []Entry
	flush := func() {
		if len(buf) > 0 {
			r.apply(buf, Replay)
			buf = buf[:0]
		}
	}
	l, err := openLog(r.cfg.Dir, func(e Entry) error {
		r.clock.Observe(e.HLC)
		buf = append(buf, e)
		if len(buf) == replayBatch {
			flush()
		}
		return nil
	})
	if err != nil {
		return err
	}
	flush()
	r.log = l
	r.vec = l.vector()
	r.queued = maps.Clone(r.vec)
	if n := r.vec[r.cfg.ID]; n > 0 {
		r.water[r.cfg.ID] = r.clock.Peek()
	}
	return nil
}

func (r *Replicator) run(fn func()) {
	r.wg.Add(1)
	go func() { defer r.wg.Done(); fn() }()
}

// Close stops replication and closes the log.
func (r *Replicator) Close() error {
	close(r.stop)
	r.wg.Wait()
	<-r.engineDone
	return r.log.close()
}

// Submit accepts a local write: it is stamped, logged (fsync), applied and
// answered at once — it never waits for Redis or for peers — then
// published for the other nodes.
func (r *Replicator) Submit(ctx context.Context, cmd fsm.Command) (fsm.Result, error) {
	s := &submit{cmd: cmd, done: make(chan submitResult, 1), queued: time.Now()}
	select {
	case r.submits <- s:
	case <-ctx.Done():
		return fsm.Result{}, fmt.Errorf("%w: %v", ErrNotApplied, ctx.Err())
	case <-r.stop:
		return fsm.Result{}, fmt.Errorf("%w: %v", ErrNotApplied, errStopping)
	}
	// Once queued the write will be logged and applied, unless the engine
	// stops first: it answers every write it took.
	select {
	case res := <-s.done:
		return res.res, res.err
	case <-r.engineDone:
		select {
		case res := <-s.done:
			return res.res, res.err
		default:
			return fsm.Result{}, fmt.Errorf("%w: %v", ErrNotApplied, errStopping)
		}
	}
}

// engine is the one goroutine that writes the log and the state.
func (r *Replicator) engine() {
	for {
		var locals []*submit
		var remotes []remoteBatch
		var done chan struct{}
		select {
		case s := <-r.submits:
			locals = append(locals, s)
		case rb := <-r.remote:
			remotes = append(remotes, rb)
		case done = <-r.barrier:
		case <-r.stop:
			return
		}
		locals = batch.Drain(r.submits, locals, r.cfg.MaxBatch)
		remotes = batch.Drain(r.remote, remotes, cap(r.remote))
		r.commit(locals, remotes)
		if done != nil {
			close(done)
		}
	}
}

// commit is one round of the engine: received entries first (the local
// writes' checks and dependencies then see them), one log write for
// everything, fsynced when it holds a local write, then the local writes
// applied and answered.
func (r *Replicator) commit(locals []*submit, remotes []remoteBatch) {
	round := time.Now()
	var entries []Entry
	var encoded [][]byte
	for i := 0; i < len(remotes); {
		// Consecutive batches that arrived alike apply as one.
		from, how := len(entries), remotes[i].how
		for ; i < len(remotes) && remotes[i].how == how; i++ {
			entries = append(entries, remotes[i].entries...)
			encoded = append(encoded, remotes[i].raw...)
		}
		r.apply(entries[from:], how)
	}
	nRemote := len(entries)
	if r.cfg.Check != nil {
		// Refuse, before logging, what this replica would refuse: a logged
		// entry reaches every replica, and one that knows more than the
		// origin would apply what the origin refused.
		kept := locals[:0]
		for _, s := range locals {
			if err := r.cfg.Check(s.cmd); err != nil {
				s.done <- submitResult{res: fsm.Result{Err: err}}
				continue
			}
			kept = append(kept, s)
		}
		locals = kept
	}
	r.mu.Lock()
	deps := maps.Clone(r.vec)
	for _, e := range entries {
		deps[e.Origin] = max(deps[e.Origin], e.OSeq)
	}
	next := r.vec[r.cfg.ID]
	r.mu.Unlock()
	for _, s := range locals {
		next++
		e := Entry{Origin: r.cfg.ID, OSeq: next, HLC: r.clock.Now(), Deps: deps, Cmd: s.cmd}
		r.stamp(&e)
		b, err := EncodeEntry(e)
		if err != nil {
			r.logger.Error("ap: encode a local write", "err", err) // a bug: every command encodes
		}
		entries, encoded = append(entries, e), append(encoded, b)
	}
	if len(entries) == 0 {
		return
	}
	written := time.Now()
	err := r.log.appendEntries(entries, encoded, len(locals) > 0 && !r.cfg.NoSync)
	synced := time.Now()
	r.cfg.Observe.round(len(locals), nRemote, synced.Sub(written))
	if rec := r.cfg.Spans; rec != nil {
		for _, s := range locals {
			k := spanKey(s.cmd)
			rec.Add(k, "ap: queued for the engine", s.queued, round)
			rec.Add(k, fmt.Sprintf("ap: engine round: %d received entries applied, checks, stamps", nRemote), round, written)
			rec.Add(k, fmt.Sprintf("ap: log write and fsync (%d entries)", len(entries)), written, synced)
		}
	}
	if err != nil {
		r.logger.Error("ap: log write failed", "err", err)
		r.mu.Lock()
		for _, e := range entries[:nRemote] {
			// Not logged: let anti-entropy bring them again.
			r.queued[e.Origin] = min(r.queued[e.Origin], e.OSeq-1)
		}
		r.mu.Unlock()
		for _, s := range locals {
			s.done <- submitResult{err: fmt.Errorf("%w: log: %v", ErrNotApplied, err)}
		}
		return
	}
	var results []fsm.Result
	if len(locals) > 0 {
		results = r.apply(entries[nRemote:], Live)
	}
	r.mu.Lock()
	for _, e := range entries {
		r.vec[e.Origin] = max(r.vec[e.Origin], e.OSeq)
		r.water[e.Origin] = max(r.water[e.Origin], e.HLC)
	}
	r.queued[r.cfg.ID] = r.vec[r.cfg.ID]
	r.stats.Applied += uint64(len(entries))
	r.mu.Unlock()
	for i, s := range locals {
		s.done <- submitResult{res: results[i]}
		r.cfg.Spans.Since(spanKey(s.cmd), "ap: applied and answered", synced)
	}
	if len(locals) > 0 {
		select {
		case r.publishKick <- struct{}{}:
		default:
		}
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
