package node

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"path/filepath"

	"sync/atomic"

	"mpim/fsm"
	"mpim/node/store"
)

// Errors of a shard's commit path.
var (
	// ErrNotApplied: the command was refused before it reached the log; it
	// is guaranteed not applied (the client sees unavailable).
	ErrNotApplied = errors.New("node: command not applied")
	// ErrUnknown: the command may or may not have been applied (the client
	// sees timeout and may retry with the same cmid).
	ErrUnknown = errors.New("node: outcome unknown")
)

// shard is one slice of the chat state: a bbolt file applied by the fsm.
// At this stage a shard commits locally: proposals are group-committed, many
// commands to one transaction and one fsync, which is what makes
// throughput grow with concurrency. The replicated modes replace commit().
type shard struct {
	id      int
	st      *store.Store
	m       *fsm.Machine
	log     *slog.Logger
	queue   chan *proposal
	applied atomic.Uint64
	stop    chan struct{}
	done    chan struct{}
}

type proposal struct {
	cmd  fsm.Command
	done chan commitResult
}

type commitResult struct {
	res fsm.Result
	err error
}

func openShard(dir string, id int, cfg Config, m *fsm.Machine, log *slog.Logger) (*shard, error) {
	st, err := store.Open(filepath.Join(dir, fmt.Sprintf("shard-%d.db", id)), store.Options{NoSync: cfg.NoSync})
	if err != nil {
		return nil, err
	}
	s := &shard{id: id, st: st, m: m, log: log.With("shard", id),
		queue: make(chan *proposal, 4*cfg.MaxBatch), stop: make(chan struct{}), done: make(chan struct{})}
	_ = st.View(func(tx fsm.Tx) error { s.applied.Store(fsm.Applied(tx)); return nil })
	go s.run(cfg.MaxBatch)
	return s, nil
}

// propose commits cmd and returns its result once it is applied. An error
// wraps ErrNotApplied or ErrUnknown.
func (s *shard) propose(ctx context.Context, cmd fsm.Command) (fsm.Result, error) {
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

func (s *shard) run(maxBatch int) {
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
func (s *shard) commit(batch []*proposal) {
	cmds := make([]fsm.Command, len(batch))
	for i, p := range batch {
		cmds[i] = p.cmd
	}
	index := s.applied.Load() + 1
	var results []fsm.Result
	err := s.st.Update(func(tx fsm.Tx) error {
		var err error
		results, err = s.m.Apply(tx, index, cmds)
		return err
	})
	if err != nil {
		s.log.Error("commit failed", "index", index, "err", err)
		for _, p := range batch {
			p.done <- commitResult{err: fmt.Errorf("%w: shard %d storage: %v", ErrNotApplied, s.id, err)}
		}
		return
	}
	s.applied.Store(index)
	for i, p := range batch {
		p.done <- commitResult{res: results[i]}
	}
}

func (s *shard) view(fn func(fsm.Tx) error) error { return s.st.View(fn) }

func (s *shard) close() error {
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
