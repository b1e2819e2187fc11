package cp

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"mpim/fsm"
	"mpim/internal/batch"
	"mpim/internal/spans"
	"mpim/node/outcome"
	"mpim/node/store"
)

// Errors of the commit path. Every failed proposal wraps exactly one.
var (
	// ErrNotApplied: refused before it was appended; guaranteed not
	// applied (the client sees unavailable).
	ErrNotApplied = fmt.Errorf("cp: %w", outcome.ErrNotApplied)
	// ErrUnknown: it may have been appended, so it may yet be applied (the
	// client sees timeout; a retry with the same cmid cannot duplicate).
	ErrUnknown = fmt.Errorf("cp: %w", outcome.ErrUnknown)
	// ErrNotLeader: this replica does not lead the shard (not applied).
	ErrNotLeader = fmt.Errorf("%w: not the leader", ErrNotApplied)
)

// Shard is one shard's replica on this node: its Raft group member, its
// state and, while it leads, the batcher. The state is in memory
// (store.Mem): the Raft log (fsynced) and its snapshots are the durable
// copy, and applying a committed entry touches no state file. A restart
// restores the last snapshot and applies the log after it up to the
// applied floor before it serves (see recoverState).
type Shard struct {
	cfg   Config
	log   *slog.Logger
	r     *raft.Raft
	st    *store.Mem
	m     *fsm.Machine
	logs  *raftboltdb.BoltStore
	trans *raft.NetworkTransport

	queue    chan *proposal
	inflight chan struct{}
	spec     speculation // ack-before-commit only
	// readyTerm is the term in which this leader's barrier completed: from
	// then on its commit index covers every entry of earlier terms, the
	// precondition of ReadIndex (Ongaro's dissertation §6.4; Raft paper §8).
	readyTerm atomic.Uint64
	// hold, when set by a test hook, blocks the state machine's applies.
	holdMu  sync.Mutex
	hold    chan struct{}
	onApply func([]fsm.Result)
	// restores counts snapshots installed into this replica (a lagging
	// follower catching up past the leader's compacted log).
	restores atomic.Uint64
	// floor is the applied-floor file: the last log index applied to the
	// state, rewritten after every applied batch (see recoverState).
	floor *os.File
	// fsmIndex is the last command entry this replica's state machine has
	// applied. (raft's AppliedIndex counts entries handed to the state
	// machine, not finished: a read must wait for this one.)
	fsmIndex atomic.Uint64
	stop     chan struct{}
	wg       sync.WaitGroup
	shutOnce sync.Once
}

type proposal struct {
	cmd    fsm.Command
	done   chan result
	queued time.Time
}

// spanKey is the key of a proposal's spans: a send's sender and cmid.
func spanKey(cmd fsm.Command) string {
	if cmd.Send == nil {
		return ""
	}
	return spans.Key(cmd.Send.From, cmd.Send.Cmid)
}

type result struct {
	res fsm.Result
	err error
}

// Open starts the shard's replica. addrs resolves server ids to the
// address this node must dial (the lab's per-link proxy); onApply sees the
// results of every committed command on this replica.
func Open(cfg Config, mux *Mux, addrs raft.ServerAddressProvider, onApply func([]fsm.Result)) (*Shard, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	s := &Shard{cfg: cfg, log: log.With("shard", cfg.Shard), queue: make(chan *proposal, 4*cfg.MaxBatch),
		inflight: make(chan struct{}, cfg.MaxInflight), onApply: onApply, stop: make(chan struct{})}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, err
	}
	var err error
	if s.m, err = fsm.New(cfg.FSM); err != nil {
		return nil, err
	}
	s.st = store.NewMem()
	if s.logs, err = raftboltdb.New(raftboltdb.Options{Path: filepath.Join(cfg.Dir, "raft.db")}); err != nil {
		return nil, fmt.Errorf("cp: raft log of shard %d: %w", cfg.Shard, err)
	}
	if s.floor, err = os.OpenFile(filepath.Join(cfg.Dir, "applied"), os.O_RDWR|os.O_CREATE, 0o600); err != nil {
		s.closeStores()
		return nil, fmt.Errorf("cp: applied floor of shard %d: %w", cfg.Shard, err)
	}
	hlog := hclog.New(&hclog.LoggerOptions{Name: fmt.Sprintf("raft-%s-%d", cfg.ID, cfg.Shard), Level: hclog.Warn, Output: os.Stderr})
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.Dir, 2, hlog)
	if err != nil {
		s.closeStores()
		return nil, err
	}
	if err := s.recoverState(snaps); err != nil {
		s.closeStores()
		return nil, fmt.Errorf("cp: recover shard %d: %w", cfg.Shard, err)
	}
	s.trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: mux.StreamLayer(cfg.Shard), ServerAddressProvider: addrs, MaxPool: 3,
		Timeout: 2 * time.Second, Logger: hlog,
	})
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.ID)
	rc.HeartbeatTimeout, rc.ElectionTimeout = cfg.HeartbeatTimeout, cfg.ElectionTimeout
	rc.LeaderLeaseTimeout, rc.CommitTimeout = cfg.LeaderLeaseTimeout, cfg.CommitTimeout
	rc.SnapshotThreshold, rc.SnapshotInterval, rc.TrailingLogs = cfg.SnapshotThreshold, cfg.SnapshotInterval, cfg.TrailingLogs
	rc.Logger = hlog
	// recoverState has restored the last snapshot and replayed the log up to
	// the applied floor; Raft applies the entries after the snapshot again
	// once their commit is known, and the fsm skips those the state holds.
	rc.NoSnapshotRestoreOnStart = true
	if len(cfg.Voters) > 0 {
		has, err := raft.HasExistingState(s.logs, s.logs, snaps)
		if err != nil {
			s.closeStores()
			return nil, err
		}
		if !has {
			var conf raft.Configuration
			for _, v := range cfg.Voters {
				conf.Servers = append(conf.Servers, raft.Server{ID: raft.ServerID(v), Address: raft.ServerAddress(v)})
			}
			for _, v := range cfg.Nonvoters {
				conf.Servers = append(conf.Servers, raft.Server{Suffrage: raft.Nonvoter, ID: raft.ServerID(v), Address: raft.ServerAddress(v)})
			}
			if err := raft.BootstrapCluster(rc, s.logs, s.logs, snaps, s.trans, conf); err != nil {
				s.closeStores()
				return nil, fmt.Errorf("cp: bootstrap shard %d: %w", cfg.Shard, err)
			}
		}
	}
	if s.r, err = raft.NewRaft(rc, (*shardFSM)(s), s.logs, s.logs, snaps, s.trans); err != nil {
		s.closeStores()
		return nil, fmt.Errorf("cp: start raft for shard %d: %w", cfg.Shard, err)
	}
	s.wg.Add(2)
	go func() { defer s.wg.Done(); s.batch() }()
	go func() { defer s.wg.Done(); s.watchLeadership() }()
	return s, nil
}

func (s *Shard) closeStores() {
	if s.logs != nil {
		s.logs.Close()
	}
	if s.floor != nil {
		s.floor.Close()
	}
}

// recoverState rebuilds the in-memory state as it was applied before the
// replica stopped: the newest snapshot (the one Raft starts from), then
// the log's command entries after it up to the applied floor. Entries up
// to the floor were applied, hence committed, so applying them before Raft
// knows the commit index is safe; a restarted replica then serves at once
// what it served before (the bbolt state file's guarantee, which the
// in-memory state would otherwise lose until a leader is heard). The
// floor is written without fsync: after a machine crash it may lag, and
// the entries after it are applied once Raft learns their commit.
func (s *Shard) recoverState(snaps raft.SnapshotStore) error {
	metas, err := snaps.List()
	if err != nil {
		return err
	}
	var from uint64
	if len(metas) > 0 {
		_, rc, err := snaps.Open(metas[0].ID)
		if err != nil {
			return fmt.Errorf("open snapshot %s: %w", metas[0].ID, err)
		}
		err = s.st.Restore(rc)
		rc.Close()
		if err != nil {
			return fmt.Errorf("restore snapshot %s: %w", metas[0].ID, err)
		}
		from = metas[0].Index
	}
	var b [8]byte
	var floor uint64
	if n, _ := s.floor.ReadAt(b[:], 0); n == len(b) {
		floor = binary.BigEndian.Uint64(b[:])
	}
	replayed := 0
	err = s.st.Update(func(tx fsm.Tx) error {
		for i := from + 1; i <= floor; i++ {
			var l raft.Log
			if err := s.logs.GetLog(i, &l); err != nil {
				s.log.Warn("applied floor beyond the log; the rest is applied once committed", "index", i, "floor", floor, "err", err)
				return nil
			}
			if l.Type != raft.LogCommand {
				continue
			}
			cmds, err := fsm.DecodeBatch(l.Data)
			if err != nil {
				continue // skipped when first applied too (ApplyBatch)
			}
			if _, err := s.m.Apply(tx, l.Index, cmds); err != nil && !errors.Is(err, fsm.ErrApplied) {
				return fmt.Errorf("replay %d: %w", l.Index, err)
			}
			replayed++
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.st.View(func(tx fsm.Tx) error { s.fsmIndex.Store(fsm.Applied(tx)); return nil })
	if from > 0 || replayed > 0 {
		s.log.Info("state recovered", "snapshot", from, "replayed", replayed, "applied", s.fsmIndex.Load())
	}
	return nil
}

// writeFloor records index as applied (see recoverState). A failure only
// makes a later restart replay less before it serves.
func (s *Shard) writeFloor(index uint64) {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], index)
	if _, err := s.floor.WriteAt(b[:], 0); err != nil {
		s.log.Warn("applied floor not written", "err", err)
	}
}

// Close stops the replica.
func (s *Shard) Close() error {
	var err error
	s.shutOnce.Do(func() {
		close(s.stop)
		s.Hold(false)
		err = s.r.Shutdown().Error()
		s.trans.Close()
		// Close stops the listener only: release the pooled connections
		// to peers too, so that their handlers of them end.
		s.trans.CloseStreams()
		s.wg.Wait()
		s.closeStores()
	})
	return err
}

// Propose commits cmd through the shard's log and returns its result once
// this replica applied it. It must run on the leader (ErrNotLeader
// otherwise); errors wrap ErrNotApplied or ErrUnknown.
func (s *Shard) Propose(ctx context.Context, cmd fsm.Command) (fsm.Result, error) {
	if s.r.State() != raft.Leader {
		return fsm.Result{}, ErrNotLeader
	}
	p := &proposal{cmd: cmd, done: make(chan result, 1), queued: time.Now()}
	select {
	case s.queue <- p:
	case <-ctx.Done():
		return fsm.Result{}, fmt.Errorf("%w: shard %d queue full: %v", ErrNotApplied, s.cfg.Shard, ctx.Err())
	case <-s.stop:
		return fsm.Result{}, fmt.Errorf("%w: shutting down", ErrNotApplied)
	}
	select {
	case r := <-p.done:
		return r.res, r.err
	case <-ctx.Done():
		return fsm.Result{}, fmt.Errorf("%w: shard %d: %v", ErrUnknown, s.cfg.Shard, ctx.Err())
	}
}

// batch is the group commit: it takes every proposal waiting, up to
// MaxBatch, into one log entry, with at most MaxInflight entries in flight
// so that proposals arriving meanwhile gather into the next one.
func (s *Shard) batch() {
	for {
		var first *proposal
		select {
		case first = <-s.queue:
		case <-s.stop:
			return
		}
		select {
		case s.inflight <- struct{}{}:
		case <-s.stop:
			first.done <- result{err: fmt.Errorf("%w: shutting down", ErrNotApplied)}
			return
		}
		props := batch.Drain(s.queue, []*proposal{first}, s.cfg.MaxBatch)
		cmds := make([]fsm.Command, len(props))
		taken := time.Now()
		for i, p := range props {
			cmds[i] = p.cmd
			s.cfg.Spans.Add(spanKey(p.cmd), "cp: queued for the batcher (entries in flight)", p.queued, taken)
			s.cfg.Observe.queued(s.cfg.Shard, taken.Sub(p.queued))
		}
		data, err := fsm.EncodeBatch(cmds)
		if err != nil {
			<-s.inflight
			for _, p := range props {
				p.done <- result{err: fmt.Errorf("%w: encode: %v", ErrNotApplied, err)}
			}
			continue
		}
		if s.cfg.AckBeforeCommit {
			s.ackEarly(props, cmds)
		}
		f := s.r.Apply(data, s.cfg.ApplyTimeout)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() { <-s.inflight }()
			if s.cfg.AckBeforeCommit {
				f.Error()
				s.spec.pending.Add(-1)
				return
			}
			s.finish(f, props)
			s.cfg.Observe.committed(s.cfg.Shard, time.Since(taken), len(props))
			for _, p := range props {
				s.cfg.Spans.Since(spanKey(p.cmd), fmt.Sprintf("cp: Raft commit and apply (an entry of %d)", len(props)), taken)
			}
		}()
	}
}

// ackEarly answers a batch before its entry commits (the unsafe switch
// ack-before-commit): see speculation.
func (s *Shard) ackEarly(batch []*proposal, cmds []fsm.Command) {
	results, err := s.spec.results(s, cmds)
	s.spec.pending.Add(1)
	for i, p := range batch {
		if err != nil {
			p.done <- result{err: fmt.Errorf("%w: speculative apply: %v", ErrUnknown, err)}
			continue
		}
		p.done <- result{res: results[i]}
	}
}

// finish waits for an entry's commit and answers its proposals, sorting
// the error into not-applied and unknown (Jepsen's fail and info).
func (s *Shard) finish(f raft.ApplyFuture, batch []*proposal) {
	err := f.Error()
	if err == nil {
		if results, ok := f.Response().([]fsm.Result); ok && len(results) == len(batch) {
			for i, p := range batch {
				p.done <- result{res: results[i]}
			}
			return
		}
		err = fmt.Errorf("%w: state machine answered %T", ErrUnknown, f.Response())
	}
	switch {
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrEnqueueTimeout),
		errors.Is(err, raft.ErrLeadershipTransferInProgress), errors.Is(err, raft.ErrRaftShutdown):
		err = fmt.Errorf("%w: shard %d: %v", ErrNotApplied, s.cfg.Shard, err)
		s.cfg.Observe.refused(s.cfg.Shard, len(batch), false)
	case !errors.Is(err, ErrUnknown):
		err = fmt.Errorf("%w: shard %d: %v", ErrUnknown, s.cfg.Shard, err)
		s.cfg.Observe.refused(s.cfg.Shard, len(batch), true)
	default:
		s.cfg.Observe.refused(s.cfg.Shard, len(batch), true)
	}
	for _, p := range batch {
		p.done <- result{err: err}
	}
}

// watchLeadership marks the shard ready for linearizable reads once a
// barrier commits in the new leader's term.
func (s *Shard) watchLeadership() {
	for {
		select {
		case <-s.stop:
			return
		case leader := <-s.r.LeaderCh():
			s.cfg.Observe.leadership(s.cfg.Shard, leader)
			if !leader {
				continue
			}
			term := s.r.CurrentTerm()
			if s.r.Barrier(5*time.Second).Error() == nil && s.r.CurrentTerm() == term {
				s.readyTerm.Store(term)
			}
		}
	}
}

// ReadIndex returns a commit index that a linearizable read must wait for:
// the leader confirms with a quorum that it still leads, in a term in which
// it has committed an entry, and records its commit index (Ongaro's
// dissertation §6.4, Raft paper §8; rqlite's and Consul's consistent
// reads). Only on the leader.
func (s *Shard) ReadIndex(ctx context.Context) (uint64, error) {
	if s.r.State() != raft.Leader {
		return 0, ErrNotLeader
	}
	term := s.r.CurrentTerm()
	for s.readyTerm.Load() != term {
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("%w: leader of shard %d has not committed in its term yet", ErrNotApplied, s.cfg.Shard)
		case <-time.After(2 * time.Millisecond):
		}
		if s.r.State() != raft.Leader || s.r.CurrentTerm() != term {
			return 0, ErrNotLeader
		}
	}
	idx := s.r.CommitIndex()
	if err := s.r.VerifyLeader().Error(); err != nil {
		return 0, fmt.Errorf("%w: %v", ErrNotLeader, err)
	}
	if s.r.CurrentTerm() != term {
		return 0, ErrNotLeader
	}
	return idx, nil
}

// WaitApplied blocks until this replica's state machine has applied every
// command up to index (or ctx ends): first until Raft has handed it every
// entry up to index, then until the state machine has finished the last
// command among them (entries without commands never reach it).
func (s *Shard) WaitApplied(ctx context.Context, index uint64) error {
	wait := func(done func() bool) error {
		for !done() {
			select {
			case <-ctx.Done():
				return fmt.Errorf("cp: shard %d replica applied %d, waiting for %d: %w", s.cfg.Shard, s.fsmIndex.Load(), index, ctx.Err())
			case <-time.After(time.Millisecond):
			}
		}
		return nil
	}
	if err := wait(func() bool { return s.r.AppliedIndex() >= index }); err != nil {
		return err
	}
	target := s.lastCommandAtOrBelow(index)
	return wait(func() bool { return s.fsmIndex.Load() >= target })
}

// lastCommandAtOrBelow finds the last command entry at or below index in
// this replica's log; an entry compacted away is covered by the snapshot
// the state already holds.
func (s *Shard) lastCommandAtOrBelow(index uint64) uint64 {
	var l raft.Log
	for i := index; i > 0 && i+256 > index; i-- {
		if err := s.logs.GetLog(i, &l); err != nil {
			return 0
		}
		if l.Type == raft.LogCommand {
			return i
		}
	}
	return 0
}

// View reads this replica's state (local: it may be stale).
func (s *Shard) View(fn func(fsm.Tx) error) error { return s.st.View(fn) }

// Version counts the changes to a bucket of the local state
// (store.Mem.Version).
func (s *Shard) Version(bucket string) uint64 { return s.st.Version(bucket) }

// Leader returns the shard's leader as this replica knows it ("" when it
// knows none).
func (s *Shard) Leader() string {
	_, id := s.r.LeaderWithID()
	return string(id)
}

// IsLeader reports whether this replica leads the shard.
func (s *Shard) IsLeader() bool { return s.r.State() == raft.Leader }

// TransferLeadership asks this leader to hand the shard to server id.
func (s *Shard) TransferLeadership(id string) error {
	return s.r.LeadershipTransferToServer(raft.ServerID(id), s.serverAddr(id)).Error()
}

// ServerAddress is the address the shard's configuration records for
// server id (for the lab's initial members, the id itself: the node's
// address provider maps it to the link's proxy).
func (s *Shard) ServerAddress(id string) string { return string(s.serverAddr(id)) }

func (s *Shard) serverAddr(id string) raft.ServerAddress {
	f := s.r.GetConfiguration()
	if f.Error() == nil {
		for _, srv := range f.Configuration().Servers {
			if string(srv.ID) == id {
				return srv.Address
			}
		}
	}
	return raft.ServerAddress(id)
}

// AddVoter adds a server to the shard (leader only).
func (s *Shard) AddVoter(id, addr string) error {
	return s.r.AddVoter(raft.ServerID(id), raft.ServerAddress(addr), 0, 10*time.Second).Error()
}

// RemoveServer removes a server from the shard (leader only).
func (s *Shard) RemoveServer(id string) error {
	return s.r.RemoveServer(raft.ServerID(id), 0, 10*time.Second).Error()
}

// Voters lists the shard's voting members.
func (s *Shard) Voters() []string {
	var out []string
	f := s.r.GetConfiguration()
	if f.Error() == nil {
		for _, srv := range f.Configuration().Servers {
			if srv.Suffrage == raft.Voter {
				out = append(out, string(srv.ID))
			}
		}
	}
	return out
}

// IsVoter reports whether server id votes in the shard.
func (s *Shard) IsVoter(id string) bool { return slices.Contains(s.Voters(), id) }

// Snapshot takes a snapshot now (tests and admin).
func (s *Shard) Snapshot() error { return s.r.Snapshot().Error() }

// Status is one replica's view of its shard.
type Status struct {
	Shard        int    `json:"shard"`
	State        string `json:"state"`
	Leader       string `json:"leader"`
	Term         uint64 `json:"term"`
	CommitIndex  uint64 `json:"commit_index"`
	AppliedIndex uint64 `json:"applied_index"`
	LastIndex    uint64 `json:"last_index"`
	Restores     uint64 `json:"restores"`
}

// Status reports the replica's Raft state.
func (s *Shard) Status() Status {
	return Status{Shard: s.cfg.Shard, State: s.r.State().String(), Leader: s.Leader(), Term: s.r.CurrentTerm(),
		CommitIndex: s.r.CommitIndex(), AppliedIndex: s.r.AppliedIndex(), LastIndex: s.r.LastIndex(),
		Restores: s.restores.Load()}
}

// Hold blocks (true) or releases (false) this replica's state machine
// applies: a test hook that makes a replica lag on purpose.
func (s *Shard) Hold(on bool) {
	s.holdMu.Lock()
	defer s.holdMu.Unlock()
	switch {
	case on && s.hold == nil:
		s.hold = make(chan struct{})
	case !on && s.hold != nil:
		close(s.hold)
		s.hold = nil
	}
}

func (s *Shard) waitHold() {
	s.holdMu.Lock()
	h := s.hold
	s.holdMu.Unlock()
	if h != nil {
		select {
		case <-h:
		case <-s.stop:
		}
	}
}

// shardFSM is the raft.FSM face of a shard.
type shardFSM Shard

func (f *shardFSM) Apply(l *raft.Log) any { return f.ApplyBatch([]*raft.Log{l})[0] }

// ApplyBatch applies the command entries Raft committed together in one
// state transaction (raft.BatchingFSM), so that readers see a batch whole.
// Each entry records its own index (fsm.Machine.Apply): entries Raft
// applies again after a restart, which recoverState already replayed, change
// nothing and are not handed to the apply hook again.
func (f *shardFSM) ApplyBatch(logs []*raft.Log) []any {
	s := (*Shard)(f)
	out := make([]any, len(logs))
	type entry struct {
		at   int
		log  *raft.Log
		cmds []fsm.Command
	}
	var entries []entry
	for i, l := range logs {
		if l.Type != raft.LogCommand {
			continue
		}
		cmds, err := fsm.DecodeBatch(l.Data)
		if err != nil {
			s.log.Error("undecodable log entry; skipped", "index", l.Index, "err", err)
			out[i] = err
			continue
		}
		entries = append(entries, entry{at: i, log: l, cmds: cmds})
	}
	if len(entries) == 0 {
		return out
	}
	s.waitHold()
	results := make([][]fsm.Result, len(entries))
	err := s.st.Update(func(tx fsm.Tx) error {
		for i, e := range entries {
			r, err := s.m.Apply(tx, e.log.Index, e.cmds)
			switch {
			case errors.Is(err, fsm.ErrApplied):
				// Already in the state: replayed by recoverState at start.
			case err != nil:
				return fmt.Errorf("apply %d: %w", e.log.Index, err)
			default:
				results[i] = r
			}
		}
		return nil
	})
	if err != nil {
		// The state machine failed: stop rather than diverge.
		s.log.Error("state machine apply failed; stopping the replica", "err", err)
		panic(fmt.Sprintf("cp: shard %d: %v", s.cfg.Shard, err))
	}
	s.advanceFSMIndex(entries[len(entries)-1].log.Index)
	s.writeFloor(entries[len(entries)-1].log.Index)
	for i, e := range entries {
		if results[i] == nil {
			continue
		}
		if s.onApply != nil {
			s.onApply(results[i])
		}
		out[e.at] = results[i]
	}
	return out
}

func (s *Shard) advanceFSMIndex(i uint64) {
	for {
		cur := s.fsmIndex.Load()
		if i <= cur || s.fsmIndex.CompareAndSwap(cur, i) {
			return
		}
	}
}

// Snapshot pins the state as of the last applied entry (Raft calls it
// between applies); Persist streams it while applies go on.
func (f *shardFSM) Snapshot() (raft.FSMSnapshot, error) {
	return snapshot{(*Shard)(f).st.BeginSnapshot()}, nil
}

func (f *shardFSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	s := (*Shard)(f)
	if err := s.st.Restore(rc); err != nil {
		return err
	}
	s.st.View(func(tx fsm.Tx) error { s.fsmIndex.Store(fsm.Applied(tx)); return nil })
	s.restores.Add(1)
	s.log.Info("snapshot installed", "restores", s.restores.Load())
	return nil
}

type snapshot struct{ tx *store.MemSnapshot }

func (s snapshot) Persist(sink raft.SnapshotSink) error {
	if err := s.tx.Stream(sink); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s snapshot) Release() {}
