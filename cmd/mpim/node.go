package main

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"mpim/node"
)

func nodeCmd() *cobra.Command {
	cfg := node.DefaultConfig()
	var secret string
	cmd := &cobra.Command{
		Use:   "node",
		Short: "Run one node (user, message, group and presence services; state shards)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.Secret = []byte(secretOrEnv(secret))
			cfg.Logger = newLogger("node", cfg.ID)
			if err := cfg.Validate(); err != nil {
				return usageError{err}
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
			fmt.Printf("node %s grpc %s%s\n", cfg.ID, n.GRPCAddr(), http)
			<-cmd.Context().Done()
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.ID, "id", cfg.ID, "node id (n1, n2, ...): the origin of the messages it accepts")
	f.StringVar(&cfg.DataDir, "data", cfg.DataDir, "data directory (one bbolt file per shard)")
	f.StringVar(&cfg.ListenAddr, "listen", cfg.ListenAddr, "gRPC listen address")
	f.StringVar(&cfg.HTTPAddr, "http", cfg.HTTPAddr, "metrics/health/admin HTTP address (empty: off)")
	f.StringVar(&cfg.RedisAddr, "redis", cfg.RedisAddr, "Redis HOST:PORT (empty: no Redis, fallback delivery only)")
	f.DurationVar(&cfg.RedisTimeout, "redis-timeout", cfg.RedisTimeout, "bound on every Redis call")
	f.StringVar(&secret, "secret", "", "token signing secret shared by the cluster (default $MPIM_SECRET)")
	f.DurationVar(&cfg.TokenTTL, "token-ttl", cfg.TokenTTL, "login token lifetime")
	f.StringVar(&cfg.Mode, "mode", cfg.Mode, "consistency mode: cp or ap")
	f.IntVar(&cfg.Shards, "shards", cfg.Shards, "number of state shards")
	f.IntVar(&cfg.BcryptCost, "bcrypt-cost", cfg.BcryptCost, "bcrypt cost for password hashes")
	f.DurationVar(&cfg.RouteTTL, "route-ttl", cfg.RouteTTL, "presence route lifetime without heartbeat")
	f.DurationVar(&cfg.CacheTTL, "cache-ttl", cfg.CacheTTL, "user-info cache entry lifetime")
	f.BoolVar(&cfg.NoSync, "no-sync", cfg.NoSync, "skip fsync (benchmarks only: a crash can lose acknowledged messages)")
	f.BoolVar(&cfg.TestHooks, "test-hooks", false, "enable failure hooks for tests (never in production)")
	f.MarkHidden("test-hooks")
	return cmd
}

func secretOrEnv(flag string) string {
	if flag != "" {
		return flag
	}
	return os.Getenv("MPIM_SECRET")
}

// newLogger returns the process's structured logger: JSON on stderr,
// level from $MPIM_LOG (debug, info, warn, error).
func newLogger(kind, id string) *slog.Logger {
	var level slog.Level
	level.UnmarshalText([]byte(os.Getenv("MPIM_LOG")))
	h := slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level})
	return slog.New(h).With(kind, id)
}
