package node

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"time"

	"golang.org/x/crypto/bcrypt"

	"mpim/fsm"
	"mpim/internal/clustertls"
	"mpim/internal/spans"
	"mpim/node/ap"
	"mpim/node/cp"
)

// Config is one node's configuration. Timeouts live here, never in
// package globals.
type Config struct {
	// ID names the node in the cluster (n1, n2, ...); it is the origin of
	// the messages it accepts.
	ID string
	// DataDir holds one bbolt file per shard.
	DataDir string
	// ListenAddr is the gRPC address gateways call.
	ListenAddr string
	// HTTPAddr serves /metrics, /healthz and /admin/...; empty disables it.
	HTTPAddr string
	// Spans, when set, records where each send spends its time in this
	// node, served at /debug/spans on HTTPAddr (mpim bench --trace).
	Spans *spans.Recorder
	// RedisPassword authenticates to Redis (requirepass); empty: none.
	RedisPassword string
	// TLS, when set, is the cluster's mutual TLS: the gRPC port gateways
	// call, and the node-to-node link, accept only peers with a
	// certificate of the cluster's authority, and this node presents its
	// own when it dials (package clustertls).
	TLS *clustertls.Credentials
	// Pprof also serves the Go profiler at /debug/pprof/ on HTTPAddr (off
	// by default; the lab turns it on, on loopback).
	Pprof bool
	// RedisAddr is the Redis server for routes, the user cache and fan-out.
	// Empty runs without Redis: every push takes the fallback path.
	RedisAddr string
	// RedisTimeout bounds every Redis call, so that a dead or paused Redis
	// degrades the node instead of stalling it.
	RedisTimeout time.Duration
	// Secret signs session tokens; every member of a cluster shares it.
	Secret []byte
	// TokenTTL is how long a login token stays valid.
	TokenTTL time.Duration
	// Mode is "cp" or "ap". Until the replicated modes land, both run the
	// single-node commit path; the mode is reported to clients as chosen.
	Mode string
	// Shards is the number of state shards (shard 0 holds users).
	Shards int
	// BcryptCost is the password hashing cost (bcrypt.DefaultCost in
	// production; the lab's tests lower it to save CPU).
	BcryptCost int
	// RouteTTL is how long a presence route lives without a heartbeat.
	RouteTTL time.Duration
	// CacheTTL is how long a user-info entry stays in the Redis cache.
	CacheTTL time.Duration
	// NoSync skips fsync (benchmarks that say so only).
	NoSync bool
	// RaftListen is the node-to-node address (CP mode): every shard's Raft
	// traffic and the forwarding RPCs, multiplexed on one port.
	RaftListen string
	// RaftAdvertise is the address other nodes dial to reach RaftListen
	// (default RaftListen); a joining node announces it.
	RaftAdvertise string
	// Peers maps every initial member's id (this node's included) to the
	// address this node dials to reach it — in the lab, the proxy of that
	// link. Without Join, they are the members the shards bootstrap with;
	// with Join, only addresses (the running cluster adds this node).
	Peers map[string]string
	// Join is the gRPC address of a running node to join through.
	Join string
	// Leaders is "colocate" (move every shard's leadership to the leader of
	// shard 0) or "spread" (leave them where elections put them).
	Leaders string
	// LeaderWait bounds how long a write or linearizable read waits for a
	// shard to have a leader before it is refused unavailable.
	LeaderWait time.Duration
	// ForwardTimeout bounds one forwarded call to a shard leader.
	ForwardTimeout time.Duration
	// Raft tunes every shard's Raft group (CP mode).
	Raft cp.Config
	// AP tunes the AP mode's replication (Repair: outbox and anti-entropy).
	AP ap.Config
	// APPushDelay holds AP message pushes back so that concurrent writes
	// from other nodes are placed first and shown positions rarely move.
	APPushDelay time.Duration
	// Unsafe switches, for teaching and for testing the checkers:
	// "ack-before-commit", "local-linearizable".
	Unsafe []string
	// TestHooks enables failure hooks that tests use to provoke errors
	// (e.g. a send whose text is TestInternalText fails with internal).
	TestHooks bool
	FSM       fsm.Config
	// Limits bound what one user can make others carry (Limits).
	Limits Limits
	// RaftMetrics exports what hashicorp/raft measures itself (go-metrics,
	// process-wide) on /metrics: set it only where a process runs one node
	// (mpim node does).
	RaftMetrics bool
	Logger      *slog.Logger
}

// TestInternalText, sent as a message's text to a node started with
// TestHooks, makes the send fail with an internal error.
const TestInternalText = "mpim:test:internal"

// DefaultConfig returns a single node's defaults.
func DefaultConfig() Config {
	return Config{
		ID:             "n1",
		DataDir:        "data/n1",
		ListenAddr:     "127.0.0.1:7101",
		HTTPAddr:       "127.0.0.1:7201",
		RedisTimeout:   250 * time.Millisecond,
		TokenTTL:       24 * time.Hour,
		Mode:           "cp",
		Shards:         4,
		BcryptCost:     bcrypt.DefaultCost,
		RouteTTL:       30 * time.Second,
		CacheTTL:       60 * time.Second,
		FSM:            fsm.DefaultConfig(),
		Limits:         DefaultLimits(),
		RaftListen:     "127.0.0.1:7401",
		Leaders:        "colocate",
		LeaderWait:     time.Second,
		ForwardTimeout: time.Second,
		Raft:           cp.DefaultConfig(),
		AP:             ap.DefaultConfig(),
		APPushDelay:    150 * time.Millisecond,
	}
}

// unsafe reports whether an unsafe switch is on.
func (c Config) unsafe(name string) bool { return slices.Contains(c.Unsafe, name) }

// The unsafe switches.
const (
	UnsafeAckBeforeCommit   = "ack-before-commit"
	UnsafeLocalLinearizable = "local-linearizable"
)

// Validate reports a configuration the node cannot run with.
func (c Config) Validate() error {
	var errs []error
	if c.ID == "" {
		errs = append(errs, errors.New("node: --id is required"))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("node: --data is required"))
	}
	if len(c.Secret) < 16 {
		errs = append(errs, errors.New("node: the token secret must be at least 16 bytes (--secret or MPIM_SECRET)"))
	}
	if c.Mode != "cp" && c.Mode != "ap" {
		errs = append(errs, fmt.Errorf("node: --mode must be cp or ap, got %q", c.Mode))
	}
	if c.Shards < 1 || c.Shards > 64 {
		errs = append(errs, fmt.Errorf("node: --shards must be in 1..64, got %d", c.Shards))
	}
	if c.BcryptCost < bcrypt.MinCost || c.BcryptCost > bcrypt.MaxCost {
		errs = append(errs, fmt.Errorf("node: --bcrypt-cost must be in %d..%d", bcrypt.MinCost, bcrypt.MaxCost))
	}
	if c.RedisTimeout <= 0 || c.TokenTTL <= 0 || c.RouteTTL <= 0 || c.CacheTTL <= 0 {
		errs = append(errs, errors.New("node: timeouts and TTLs must be positive"))
	}
	if err := c.FSM.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.RaftListen == "" {
		errs = append(errs, errors.New("node: --raft-listen (the node-to-node address) is required"))
	}
	if c.Mode == "cp" {
		if len(c.Peers) > 0 && c.Peers[c.ID] == "" {
			errs = append(errs, fmt.Errorf("node: --peers must name this node (%s) too", c.ID))
		}
		if c.Leaders != "colocate" && c.Leaders != "spread" {
			errs = append(errs, fmt.Errorf("node: --leaders must be colocate or spread, got %q", c.Leaders))
		}
		if c.LeaderWait <= 0 || c.ForwardTimeout <= 0 {
			errs = append(errs, errors.New("node: --leader-wait and the forward timeout must be positive"))
		}
	}
	if c.Mode == "ap" {
		// Every node mints user ids from its number: two nodes with one
		// number would mint the same uids.
		owner := map[uint64]string{}
		ids := []string{c.ID}
		for id := range c.Peers {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for _, id := range slices.Compact(ids) {
			n, err := ap.NodeNumber(id)
			if err != nil {
				errs = append(errs, fmt.Errorf("node: %w", err))
			} else if other, dup := owner[n]; dup {
				errs = append(errs, fmt.Errorf("node: node ids %s and %s end in the same number %d: AP mode would mint the same user ids on both", other, id, n))
			} else {
				owner[n] = id
			}
		}
	}
	for _, u := range c.Unsafe {
		if u != UnsafeAckBeforeCommit && u != UnsafeLocalLinearizable {
			errs = append(errs, fmt.Errorf("node: unknown unsafe switch %q (known: %s, %s)", u, UnsafeAckBeforeCommit, UnsafeLocalLinearizable))
		}
	}
	return errors.Join(errs...)
}
