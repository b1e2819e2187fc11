package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/spf13/cobra"

	"mpim/internal/clustertls"
	"mpim/node"
	pb "mpim/proto/mpimpb"
)

func nodeCmd() *cobra.Command {
	cfg := node.DefaultConfig()
	var peers, unsafe, apRepair string
	var cluster clusterFlags
	var traces traceFlags
	// A node's live heap is small (~10 MB) and it allocates fast: Go's
	// default GOGC of 100 spent ~10 % of its CPU collecting under load.
	gogc := 400
	cmd := &cobra.Command{
		Use:   "node",
		Short: "Run one node (user, message, group and presence services; state shards)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if cfg.Secret, cfg.RedisPassword, cfg.TLS, err = cluster.load(); err != nil {
				return err
			}
			cfg.Logger = newLogger("node", cfg.ID)
			cfg.RaftMetrics = true
			rec, flush, err := traces.recorder("mpim-node", cfg.ID)
			if err != nil {
				return err
			}
			defer flush()
			cfg.Spans = rec
			if cfg.Peers, err = parsePeers(peers); err != nil {
				return usageError{err}
			}
			cfg.Unsafe = splitList(unsafe)
			if cfg.AP.Repair, err = onOff("--ap-repair", apRepair); err != nil {
				return err
			}
			if err := cfg.Validate(); err != nil {
				return usageError{err}
			}
			if os.Getenv("GOGC") == "" {
				debug.SetGCPercent(gogc)
			}
			n, err := node.Start(cfg)
			if err != nil {
				return err
			}
			defer n.Close()
			http := ""
			if a := n.HTTPAddr(); a != "" {
				http = " http http://" + a + "/"
			}
			if len(cfg.Unsafe) > 0 {
				fmt.Fprintf(os.Stderr, "WARNING: node %s runs with --unsafe %s: it breaks Raft's guarantees on purpose\n", cfg.ID, strings.Join(cfg.Unsafe, ","))
			}
			fmt.Printf("node %s grpc %s%s\n", cfg.ID, n.GRPCAddr(), http)
			<-cmd.Context().Done()
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.ID, "id", cfg.ID, "node id (n1, n2, ...): the origin of the messages it accepts")
	f.StringVar(&cfg.DataDir, "data", cfg.DataDir, "data directory (CP: each shard's Raft log and snapshots; AP: one bbolt file per shard)")
	f.StringVar(&cfg.ListenAddr, "listen", cfg.ListenAddr, "gRPC listen address")
	f.StringVar(&cfg.HTTPAddr, "http", cfg.HTTPAddr, "metrics/health/admin HTTP address (empty: off)")
	f.BoolVar(&cfg.Pprof, "pprof", false, "also serve the Go profiler at /debug/pprof/ on the --http address")
	f.StringVar(&cfg.RedisAddr, "redis", cfg.RedisAddr, "Redis HOST:PORT (empty: no Redis, fallback delivery only)")
	f.DurationVar(&cfg.RedisTimeout, "redis-timeout", cfg.RedisTimeout, "bound on every Redis call")
	cluster.add(f)
	f.DurationVar(&cfg.TokenTTL, "token-ttl", cfg.TokenTTL, "login token lifetime")
	f.StringVar(&cfg.Mode, "mode", cfg.Mode, "consistency mode: cp or ap")
	f.IntVar(&cfg.Shards, "shards", cfg.Shards, "number of state shards")
	f.IntVar(&cfg.Limits.MaxUserConvs, "max-user-convs", cfg.Limits.MaxUserConvs, "conversations one user may be in (0: no bound)")
	f.IntVar(&cfg.Limits.MaxGroupMembers, "max-group-members", cfg.Limits.MaxGroupMembers, "members a group_create may name (0: no bound)")
	f.IntVar(&cfg.Limits.GroupsPerMinute, "groups-per-minute", cfg.Limits.GroupsPerMinute, "groups one user may create per minute through one node (0: no bound)")
	f.IntVar(&cfg.BcryptCost, "bcrypt-cost", cfg.BcryptCost, "bcrypt cost for password hashes")
	f.DurationVar(&cfg.RouteTTL, "route-ttl", cfg.RouteTTL, "presence route lifetime without heartbeat")
	f.DurationVar(&cfg.CacheTTL, "cache-ttl", cfg.CacheTTL, "user-info cache entry lifetime")
	f.IntVar(&gogc, "gogc", gogc, "garbage collector target percent, as GOGC (which wins when set); see docs/benchmarks.md")
	f.BoolVar(&cfg.NoSync, "no-sync", cfg.NoSync, "skip fsync (benchmarks only: a crash can lose acknowledged messages)")
	f.StringVar(&cfg.RaftListen, "raft-listen", cfg.RaftListen, "node-to-node address (cp mode): every shard's Raft traffic and forwarding, on one port")
	f.StringVar(&cfg.RaftAdvertise, "raft-advertise", "", "address other nodes dial to reach --raft-listen (default: --raft-listen)")
	f.StringVar(&peers, "peers", "", "initial members as id=address,... including this node (the address this node dials to reach each)")
	f.StringVar(&cfg.Join, "join", "", "gRPC address of a running node: join its cluster instead of bootstrapping one")
	f.StringVar(&cfg.Leaders, "leaders", cfg.Leaders, "colocate (every shard led by shard 0's leader) or spread")
	f.DurationVar(&cfg.LeaderWait, "leader-wait", cfg.LeaderWait, "how long a write waits for a shard leader before answering unavailable")
	f.DurationVar(&cfg.Raft.HeartbeatTimeout, "heartbeat-timeout", cfg.Raft.HeartbeatTimeout, "Raft heartbeat timeout")
	f.DurationVar(&cfg.Raft.ElectionTimeout, "election-timeout", cfg.Raft.ElectionTimeout, "Raft election timeout")
	f.DurationVar(&cfg.Raft.LeaderLeaseTimeout, "leader-lease", cfg.Raft.LeaderLeaseTimeout, "Raft leader lease: a leader without a quorum for this long steps down")
	f.Uint64Var(&cfg.Raft.SnapshotThreshold, "snapshot-threshold", cfg.Raft.SnapshotThreshold, "log entries between snapshots")
	f.DurationVar(&cfg.Raft.SnapshotInterval, "snapshot-interval", cfg.Raft.SnapshotInterval, "how often to check whether a snapshot is due")
	f.DurationVar(&cfg.ForwardTimeout, "forward-timeout", cfg.ForwardTimeout, "bound on one call forwarded to a shard leader")
	f.Uint64Var(&cfg.Raft.TrailingLogs, "trailing-logs", cfg.Raft.TrailingLogs, "log entries kept after a snapshot")
	f.IntVar(&cfg.Raft.MaxInflight, "max-inflight", cfg.Raft.MaxInflight, "CP: log entries a shard leader's batcher keeps in flight (proposals arriving meanwhile join the next entry)")
	f.DurationVar(&cfg.APPushDelay, "ap-push-delay", cfg.APPushDelay, "AP: hold message pushes back this long so that shown positions rarely move")
	traces.add(f, " on --http")
	f.StringVar(&apRepair, "ap-repair", "on", "AP mode: outbox and anti-entropy repair (on), or the naive lossy fan-out (off)")
	f.StringVar(&unsafe, "unsafe", "", "UNSAFE teaching switches: ack-before-commit, local-linearizable (comma-separated)")
	f.BoolVar(&cfg.TestHooks, "test-hooks", false, "enable failure hooks for tests (never in production)")
	f.MarkHidden("test-hooks")
	cmd.AddCommand(nodeRemoveCmd())
	return cmd
}

// onOff reads a flag spelled on or off.
func onOff(flag, v string) (bool, error) {
	switch v {
	case "on":
		return true, nil
	case "off":
		return false, nil
	}
	return false, usageError{fmt.Errorf("%s %q: use on or off", flag, v)}
}

// parsePeers reads "n1=addr,n2=addr".
func parsePeers(s string) (map[string]string, error) {
	if s == "" {
		return nil, nil
	}
	out := map[string]string{}
	for _, p := range splitList(s) {
		id, addr, ok := strings.Cut(p, "=")
		if !ok || id == "" || addr == "" {
			return nil, fmt.Errorf("--peers: %q is not id=address", p)
		}
		out[id] = addr
	}
	return out, nil
}

// nodeRemoveCmd removes a node from a running CP cluster.
func nodeRemoveCmd() *cobra.Command {
	var via, tlsDir string
	cmd := &cobra.Command{
		Use:   "remove ID",
		Short: "Remove a node from every shard of a running CP cluster",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			transport := grpc.WithTransportCredentials(insecure.NewCredentials())
			if tlsDir != "" {
				creds, err := clustertls.Load(tlsDir)
				if err != nil {
					return usageError{err}
				}
				transport = grpc.WithTransportCredentials(credentials.NewTLS(creds.Client()))
			}
			cc, err := grpc.NewClient(via, transport)
			if err != nil {
				return usageError{err}
			}
			defer cc.Close()
			ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
			defer cancel()
			if _, err := pb.NewAdminClient(cc).Remove(ctx, &pb.MemberRequest{Id: args[0]}); err != nil {
				return fmt.Errorf("remove %s via %s: %w", args[0], via, err)
			}
			fmt.Printf("removed %s\n", args[0])
			return nil
		},
	}
	cmd.Flags().StringVar(&via, "via", "127.0.0.1:7101", "gRPC address of a running node")
	cmd.Flags().StringVar(&tlsDir, "tls-dir", "", "the cluster's TLS credentials, when its members use them")
	return cmd
}

// newLogger returns the process's structured logger: JSON on stderr,
// level from $MPIM_LOG (debug, info, warn, error).
func newLogger(kind, id string) *slog.Logger {
	var level slog.Level
	level.UnmarshalText([]byte(os.Getenv("MPIM_LOG")))
	h := slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level})
	return slog.New(h).With(kind, id)
}
