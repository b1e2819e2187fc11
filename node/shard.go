package node

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"sync/atomic"

	"mpim/fsm"
	"mpim/internal/convid"
	"mpim/node/cp"
	"mpim/node/outcome"
	"mpim/node/store"
	pb "mpim/proto/mpimpb"
)

// Errors of the CP commit path outside package cp (forwarding, leader
// lookup, ReadIndex): the CP mode's names for the shared vocabulary of
// package outcome, which is what the node's answers test against.
var (
	// ErrNotApplied: refused before it reached the log; the client sees
	// unavailable.
	ErrNotApplied = cp.ErrNotApplied
	// ErrUnknown: may or may not have been applied; the client sees
	// timeout and may retry with the same cmid.
	ErrUnknown = cp.ErrUnknown
)

// replica is this node's copy of one shard, whatever the mode.
type replica interface {
	// propose commits cmd (forwarding it to the shard's leader when there
	// is one) and returns its result; errors wrap outcome.ErrNotApplied
	// or outcome.ErrUnknown.
	propose(ctx context.Context, cmd fsm.Command) (fsm.Result, error)
	// view reads the local copy.
	view(fn func(fsm.Tx) error) error
	// version counts the changes to a bucket of the local copy
	// (store.Mem.Version).
	version(bucket string) uint64
	// linearize waits until a read of the local copy would be
	// linearizable (ReadIndex); a replica that is the only copy returns at
	// once.
	linearize(ctx context.Context) error
	status() *pb.ShardStatus
	close() error
}

// localShard is one shard's state in AP mode, in memory (store.Mem): the
// replicator's log is its durable copy, read back into it at a restart.
// The replicator decides what to apply (its own writes and every other
// node's); applyBatch applies a batch as one transaction.
type localShard struct {
	id  int
	st  *store.Mem
	m   *fsm.Machine
	log *slog.Logger
	// mu serializes commits, so that indexes are assigned in order.
	mu      sync.Mutex
	applied atomic.Uint64
}

func newLocalShard(id int, m *fsm.Machine, log *slog.Logger) *localShard {
	return &localShard{id: id, st: store.NewMem(), m: m, log: log.With("shard", id)}
}

// applyBatch commits cmds as the next index in one transaction.
func (s *localShard) applyBatch(cmds []fsm.Command) ([]fsm.Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	index := s.applied.Load() + 1
	var results []fsm.Result
	err := s.st.Update(func(tx fsm.Tx) error {
		var err error
		results, err = s.m.Apply(tx, index, cmds)
		return err
	})
	if err != nil {
		s.log.Error("commit failed", "index", index, "err", err)
		return nil, fmt.Errorf("%w: shard %d storage: %v", outcome.ErrNotApplied, s.id, err)
	}
	s.applied.Store(index)
	return results, nil
}

func (s *localShard) view(fn func(fsm.Tx) error) error { return s.st.View(fn) }

func (s *localShard) status() *pb.ShardStatus {
	a := s.applied.Load()
	return &pb.ShardStatus{Shard: uint32(s.id), AppliedIndex: a, CommitIndex: a, LastIndex: a, State: "AP"}
}

func (s *localShard) close() error { return nil }

// ShardOf maps a conversation's state key to its shard (convid.Shard).
func ShardOf(conv string, shards int) int { return convid.Shard(conv, shards) }
