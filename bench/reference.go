package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"github.com/redis/go-redis/v9"

	"mpim/internal/ports"
	"mpim/internal/redisproc"
	"mpim/node/cp"
)

// Reference is a bare baseline measured in the same run: what the system
// is compared against.
type Reference struct {
	// Kind is "raft", "redis" or "centrifugo".
	Kind string `json:"kind"`
	// What says exactly what was measured.
	What    string  `json:"what"`
	Clients int     `json:"clients"`
	Ops     uint64  `json:"ops"`
	Errors  uint64  `json:"errors"`
	OpsPerS float64 `json:"ops_per_s"`
	Latency Summary `json:"latency_ms"`
	// Measured is when the reference ran, to show how far apart from the
	// system's own numbers.
	Measured time.Time `json:"measured"`
}

// referencePayload is the size of one operation's data in the raft and
// redis references, about the size of an encoded chat send.
const referencePayload = 256

// closedLoop runs clients goroutines, each calling op back to back, and
// measures the calls that start after warmup and before warmup+duration.
func closedLoop(ctx context.Context, clients int, warmup, duration time.Duration, op func(ctx context.Context, client int) error) (ops, errs uint64, h *Histogram, elapsed time.Duration) {
	return closedLoopTimed(ctx, clients, warmup, duration, func(ctx context.Context, client int) (time.Duration, error) {
		t := time.Now()
		err := op(ctx, client)
		return time.Since(t), err
	})
}

// closedLoopTimed is closedLoop for an op that measures its own latency
// (Centrifugo's: from the publish to its delivery, not to the op's end).
func closedLoopTimed(ctx context.Context, clients int, warmup, duration time.Duration, op func(ctx context.Context, client int) (time.Duration, error)) (ops, errs uint64, h *Histogram, elapsed time.Duration) {
	start := time.Now()
	from, to := start.Add(warmup), start.Add(warmup+duration)
	hs := make([]Histogram, clients)
	n := make([]uint64, clients)
	e := make([]uint64, clients)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() {
			for ctx.Err() == nil {
				t := time.Now()
				if !t.Before(to) {
					return
				}
				lat, err := op(ctx, i)
				if t.Before(from) {
					continue
				}
				if err != nil {
					e[i]++
					continue
				}
				n[i]++
				hs[i].Record(lat)
			}
		})
	}
	wg.Wait()
	h = &Histogram{}
	for i := range clients {
		h.Merge(&hs[i])
		ops += n[i]
		errs += e[i]
	}
	return ops, errs, h, duration
}

// RaftReference runs a bare hashicorp/raft cluster of three servers in
// this process — TCP transport on loopback, raft-boltdb/v2 log and stable
// stores with fsync, file snapshots, node/cp's timeouts — and measures
// `clients` goroutines each doing Apply(256 bytes) and waiting for the
// commit, one entry per operation, no batching. Its FSM only counts: this
// is consensus alone, the ceiling that one Apply per message would give.
func RaftReference(ctx context.Context, dir string, clients int, warmup, duration time.Duration) (*Reference, error) {
	addrs, err := ports.Free(3)
	if err != nil {
		return nil, err
	}
	var conf raft.Configuration
	for i, p := range addrs {
		a := "127.0.0.1:" + strconv.Itoa(p)
		conf.Servers = append(conf.Servers, raft.Server{ID: raft.ServerID("r" + strconv.Itoa(i+1)), Address: raft.ServerAddress(a)})
	}
	var rafts []*raft.Raft
	var closers []func()
	defer func() {
		for _, r := range rafts {
			r.Shutdown().Error()
		}
		for _, c := range closers {
			c()
		}
	}()
	cpc := cp.DefaultConfig()
	logger := hclog.New(&hclog.LoggerOptions{Name: "raft-ref", Level: hclog.Error, Output: io.Discard})
	for _, s := range conf.Servers {
		d := filepath.Join(dir, string(s.ID))
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
		store, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(d, "raft.db")}) // fsync on
		if err != nil {
			return nil, err
		}
		closers = append(closers, func() { store.Close() })
		snaps, err := raft.NewFileSnapshotStoreWithLogger(d, 2, logger)
		if err != nil {
			return nil, err
		}
		trans, err := raft.NewTCPTransportWithLogger(string(s.Address), nil, 3, 2*time.Second, logger)
		if err != nil {
			return nil, err
		}
		closers = append(closers, func() { trans.Close() })
		rc := raft.DefaultConfig()
		rc.LocalID = s.ID
		rc.HeartbeatTimeout, rc.ElectionTimeout = cpc.HeartbeatTimeout, cpc.ElectionTimeout
		rc.LeaderLeaseTimeout, rc.CommitTimeout = cpc.LeaderLeaseTimeout, cpc.CommitTimeout
		rc.SnapshotThreshold, rc.SnapshotInterval, rc.TrailingLogs = cpc.SnapshotThreshold, cpc.SnapshotInterval, cpc.TrailingLogs
		rc.Logger = logger
		if err := raft.BootstrapCluster(rc, store, store, snaps, trans, conf); err != nil {
			return nil, err
		}
		r, err := raft.NewRaft(rc, &countFSM{}, store, store, snaps, trans)
		if err != nil {
			return nil, err
		}
		rafts = append(rafts, r)
	}
	// The clients follow the leader: on a loaded machine a missed
	// heartbeat can move it (an error is counted, the client waits a
	// millisecond and applies on the new leader).
	var leader atomic.Pointer[raft.Raft]
	findLeader := func() bool {
		for _, r := range rafts {
			if r.State() == raft.Leader {
				leader.Store(r)
				return true
			}
		}
		return false
	}
	for deadline := time.Now().Add(10 * time.Second); !findLeader(); {
		if time.Now().After(deadline) {
			return nil, errors.New("bench: the reference raft cluster elected no leader in 10 s")
		}
		sleepCtx(ctx, 10*time.Millisecond)
	}
	payload := make([]byte, referencePayload)
	measured := time.Now()
	ops, errs, h, d := closedLoop(ctx, clients, warmup, duration, func(ctx context.Context, _ int) error {
		err := leader.Load().Apply(payload, 5*time.Second).Error()
		if err != nil {
			findLeader()
			sleepCtx(ctx, time.Millisecond)
		}
		return err
	})
	return &Reference{Kind: "raft", Clients: clients, Ops: ops, Errors: errs, OpsPerS: float64(ops) / d.Seconds(),
		Latency: h.Summary(), Measured: measured,
		What: fmt.Sprintf("bare hashicorp/raft v1.7.3, 3 servers in one process, TCP on loopback, raft-boltdb/v2 (fsync), "+
			"node/cp timeouts; %d goroutines each Apply(%d B) and wait for commit, one entry per operation", clients, referencePayload)}, nil
}

// countFSM is the reference's state machine: it counts entries.
type countFSM struct {
	mu sync.Mutex
	n  uint64
}

func (f *countFSM) Apply(*raft.Log) any {
	f.mu.Lock()
	f.n++
	f.mu.Unlock()
	return nil
}

func (f *countFSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return countSnap(f.n), nil
}

func (f *countFSM) Restore(rc io.ReadCloser) error { return rc.Close() }

type countSnap uint64

func (s countSnap) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write([]byte(strconv.FormatUint(uint64(s), 10))); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}
func (countSnap) Release() {}

// RedisReference starts a private redis-server and measures `clients`
// goroutines each doing PUBLISH (256 bytes, unpipelined) to one channel
// that one subscriber reads, as a gateway reads its channel.
func RedisReference(ctx context.Context, dir string, clients int, warmup, duration time.Duration) (*Reference, error) {
	srv, err := redisproc.Start(ctx, dir)
	if err != nil {
		return nil, err
	}
	defer srv.Stop()
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), PoolSize: clients, MinIdleConns: clients})
	defer rdb.Close()
	sub := rdb.Subscribe(ctx, "mpim:bench")
	if _, err := sub.Receive(ctx); err != nil {
		return nil, fmt.Errorf("bench: subscribe on the reference redis: %w", err)
	}
	subDone := make(chan struct{})
	go func() {
		defer close(subDone)
		for range sub.Channel() {
		}
	}()
	payload := string(make([]byte, referencePayload))
	measured := time.Now()
	ops, errs, h, d := closedLoop(ctx, clients, warmup, duration, func(ctx context.Context, _ int) error {
		return rdb.Publish(ctx, "mpim:bench", payload).Err()
	})
	sub.Close()
	<-subDone
	return &Reference{Kind: "redis", Clients: clients, Ops: ops, Errors: errs, OpsPerS: float64(ops) / d.Seconds(),
		Latency: h.Summary(), Measured: measured,
		What: fmt.Sprintf("redis-server (private, persistence off), %d clients each PUBLISH(%d B) unpipelined and wait, one subscriber", clients, referencePayload)}, nil
}
