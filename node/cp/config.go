// Package cp is the CP consistency mode's replication: one hashicorp/raft
// group per shard, all shards of a node multiplexed on one listener, a
// batcher that group-commits concurrent proposals into one log entry, and
// ReadIndex reads. The state machine is package fsm, applied in a bbolt
// transaction that records the log index with the state.
package cp

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"mpim/fsm"
	"mpim/internal/spans"
)

// Config configures one shard's Raft group on one node. The timeouts are
// tuned for a lab network (loopback): see docs/cp-mode.md for the measured
// failover they give.
type Config struct {
	// ID is this node's server id (n1, n2, ...).
	ID string
	// Shard is the shard number.
	Shard int
	// Dir holds the shard's files: state, raft log, snapshots.
	Dir string
	// Voters are the server ids of the shard's initial configuration; a node
	// that finds no Raft state bootstraps with them. Empty: wait to be added
	// (a joining node).
	Voters []string
	// Nonvoters follow the shard's log without voting (clusters of more
	// than 5 nodes: every node keeps a copy for local reads, 5 vote).
	Nonvoters []string
	// HeartbeatTimeout and ElectionTimeout (hashicorp/raft's names): a
	// follower that hears nothing for this long starts an election.
	HeartbeatTimeout time.Duration
	ElectionTimeout  time.Duration
	// LeaderLeaseTimeout: a leader that cannot reach a quorum for this long
	// steps down.
	LeaderLeaseTimeout time.Duration
	// CommitTimeout bounds the wait before an idle leader sends an
	// AppendEntries carrying a new commit index.
	CommitTimeout time.Duration
	// SnapshotThreshold is the number of log entries after which a
	// snapshot is taken; TrailingLogs are kept after it.
	SnapshotThreshold uint64
	SnapshotInterval  time.Duration
	TrailingLogs      uint64
	// MaxBatch caps the commands in one log entry; MaxInflight the entries
	// the batcher has in flight at once (what makes later proposals batch).
	// One: most of an entry's cost is per entry (Raft log write,
	// replication, the state transaction), and on two cores a second entry
	// in flight overlaps little; waiting proposals join the next entry
	// instead (docs/benchmarks.md).
	MaxBatch int
	// Spans, when set, records each send's wait for the batcher and its
	// entry's commit (mpim bench --trace).
	Spans *spans.Recorder
	// Observe, when set, is told what the shard measures (metrics).
	Observe     *Observer
	MaxInflight int
	// ApplyTimeout bounds enqueueing one entry.
	ApplyTimeout time.Duration
	// AckBeforeCommit is the unsafe teaching switch: the leader answers a
	// proposal once it is enqueued, before it commits.
	AckBeforeCommit bool
	FSM             fsm.Config
	Logger          *slog.Logger
}

// DefaultConfig returns the lab's Raft settings.
func DefaultConfig() Config {
	return Config{
		HeartbeatTimeout:   300 * time.Millisecond,
		ElectionTimeout:    300 * time.Millisecond,
		LeaderLeaseTimeout: 150 * time.Millisecond,
		CommitTimeout:      5 * time.Millisecond,
		SnapshotThreshold:  8192,
		SnapshotInterval:   30 * time.Second,
		TrailingLogs:       10240,
		MaxBatch:           512,
		MaxInflight:        1,
		ApplyTimeout:       time.Second,
		FSM:                fsm.DefaultConfig(),
	}
}

// Validate reports an unusable configuration.
func (c Config) Validate() error {
	var errs []error
	if c.ID == "" || c.Dir == "" {
		errs = append(errs, errors.New("cp: ID and Dir are required"))
	}
	if c.HeartbeatTimeout < 5*time.Millisecond || c.ElectionTimeout < 5*time.Millisecond ||
		c.LeaderLeaseTimeout <= 0 || c.LeaderLeaseTimeout > c.HeartbeatTimeout || c.CommitTimeout <= 0 {
		errs = append(errs, fmt.Errorf("cp: timeouts: heartbeat %v, election %v, lease %v (≤ heartbeat), commit %v must be positive",
			c.HeartbeatTimeout, c.ElectionTimeout, c.LeaderLeaseTimeout, c.CommitTimeout))
	}
	if c.SnapshotThreshold < 1 || c.MaxBatch < 1 || c.MaxInflight < 1 || c.ApplyTimeout <= 0 {
		errs = append(errs, errors.New("cp: snapshot threshold, batch, inflight and apply timeout must be positive"))
	}
	return errors.Join(errs...)
}
