package node

import (
	"context"
	"fmt"
	"hash/fnv"
	"log/slog"
	"path/filepath"
	"sync"

	"sync/atomic"

	"mpim/fsm"
	"mpim/node/cp"
	"mpim/node/store"
	pb "mpim/proto/mpimpb"
)

// Errors of a shard's commit path, shared with the CP mode's replicas.
var (
	// ErrNotApplied: the command was refused before it reached the log; it
	// is guaranteed not applied (the client sees unavailable).
	ErrNotApplied = cp.ErrNotApplied
	// ErrUnknown: the command may or may not have been applied (the client
	// sees timeout and may retry with the same cmid).
	ErrUnknown = cp.ErrUnknown
)

// replica is this node's copy of one shard, whatever the mode.
type replica interface {
	// propose commits cmd (forwarding it to the shard's leader when there
	// is one) and returns its result; errors wrap ErrNotApplied or
	// ErrUnknown.
	propose(ctx context.Context, cmd fsm.Command) (fsm.Result, error)
	// view reads the local copy.
	view(fn func(fsm.Tx) error) error
	// linearize waits until a read of the local copy would be
	// linearizable (ReadIndex); a replica that is the only copy returns at
	// once.
	linearize(ctx context.Context) error
	status() *pb.ShardStatus
	close() error
}

// localShard is a shard with no replication: a bbolt file applied by the
// fsm, committed locally. Proposals are group-committed, many commands to
// one transaction and one fsync, which is what makes throughput grow with
// concurrency. Until the AP mode lands it serves --mode ap.
type localShard struct {
	id      int
	st      *store.Store
	m       *fsm.Machine
	log     *slog.Logger
	onApply func([]fsm.Result)
	// commitMu serializes commits: the group-commit loop and applyBatch.
	commitMu sync.Mutex
	queue    chan *proposal
	applied  atomic.Uint64
	stop     chan struct{}
	done     chan struct{}
}

type proposal struct {
	cmd  fsm.Command
	done chan commitResult
}

type commitResult struct {
	res fsm.Result
	err error
}

func openShard(dir string, id int, cfg Config, m *fsm.Machine, log *slog.Logger, onApply func([]fsm.Result)) (*localShard, error) {
	st, err := store.Open(filepath.Join(dir, fmt.Sprintf("shard-%d.db", id)), store.Options{NoSync: cfg.NoSync})
	if err != nil {
		return nil, err
	}
	s := &localShard{id: id, st: st, m: m, log: log.With("shard", id), onApply: onApply,
		queue: make(chan *proposal, 4*cfg.MaxBatch), stop: make(chan struct{}), done: make(chan struct{})}
	_ = st.View(func(tx fsm.Tx) error { s.applied.Store(fsm.Applied(tx)); return nil })
	go s.run(cfg.MaxBatch)
	return s, nil
}

// propose commits cmd and returns its result once it is applied. An error
// wraps ErrNotApplied or ErrUnknown.
func (s *localShard) propose(ctx context.Context, cmd fsm.Command) (fsm.Result, error) {
	p := &proposal{cmd: cmd, done: make(chan commitResult, 1)}
	select {
	case s.queue <- p:
	case <-ctx.Done():
		return fsm.Result{}, fmt.Errorf("%w: shard %d busy: %v", ErrNotApplied, s.id, ctx.Err())
	case <-s.stop:
		return fsm.Result{}, fmt.Errorf("%w: node stopping", ErrNotApplied)
	}
	select {
	case r := <-p.done:
		return r.res, r.err
	case <-ctx.Done():
		return fsm.Result{}, fmt.Errorf("%w: shard %d: %v", ErrUnknown, s.id, ctx.Err())
	}
}

func (s *localShard) run(maxBatch int) {
	defer close(s.done)
	batch := make([]*proposal, 0, maxBatch)
	for {
		batch = batch[:0]
		select {
		case p := <-s.queue:
			batch = append(batch, p)
		case <-s.stop:
			return
		}
	fill:
		for len(batch) < maxBatch {
			select {
			case p := <-s.queue:
				batch = append(batch, p)
			default:
				break fill
			}
		}
		s.commit(batch)
	}
}

// commit applies a batch as one log index in one transaction.
func (s *localShard) commit(batch []*proposal) {
	cmds := make([]fsm.Command, len(batch))
	for i, p := range batch {
		cmds[i] = p.cmd
	}
	results, err := s.applyBatch(cmds)
	if err != nil {
		for _, p := range batch {
			p.done <- commitResult{err: err}
		}
		return
	}
	for i, p := range batch {
		p.done <- commitResult{res: results[i]}
	}
}

// applyBatch commits cmds as the next index in one transaction.
func (s *localShard) applyBatch(cmds []fsm.Command) ([]fsm.Result, error) {
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	index := s.applied.Load() + 1
	var results []fsm.Result
	err := s.st.Update(func(tx fsm.Tx) error {
		var err error
		results, err = s.m.Apply(tx, index, cmds)
		return err
	})
	if err != nil {
		s.log.Error("commit failed", "index", index, "err", err)
		return nil, fmt.Errorf("%w: shard %d storage: %v", ErrNotApplied, s.id, err)
	}
	s.applied.Store(index)
	if s.onApply != nil {
		s.onApply(results)
	}
	return results, nil
}

func (s *localShard) view(fn func(fsm.Tx) error) error { return s.st.View(fn) }

func (s *localShard) linearize(context.Context) error { return nil }

func (s *localShard) status() *pb.ShardStatus {
	a := s.applied.Load()
	return &pb.ShardStatus{Shard: uint32(s.id), AppliedIndex: a, CommitIndex: a, LastIndex: a, State: "Local"}
}

func (s *localShard) close() error {
	close(s.stop)
	<-s.done
	return s.st.Close()
}

// shardOf maps a conversation to its shard by a stable hash (FNV-1a), so
// that every node and every restart agree. Users live in shard 0.
func shardOf(conv string, shards int) int {
	h := fnv.New32a()
	h.Write([]byte(conv))
	return int(h.Sum32() % uint32(shards))
}
