package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"mpim/gateway"
)

func gatewayCmd() *cobra.Command {
	cfg := gateway.DefaultConfig()
	var nodes, origins string
	var cluster clusterFlags
	var traces traceFlags
	cmd := &cobra.Command{
		Use:   "gateway",
		Short: "Run one gateway (the WebSocket front clients connect to)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if cfg.Secret, cfg.RedisPassword, cfg.TLS, err = cluster.load(); err != nil {
				return err
			}
			cfg.Nodes = splitList(nodes)
			cfg.AllowedOrigins = splitList(origins)
			cfg.Logger = newLogger("gateway", cfg.ID)
			rec, flush, err := traces.recorder("mpim-gateway", cfg.ID)
			if err != nil {
				return err
			}
			defer flush()
			cfg.Spans = rec
			if err := cfg.Validate(); err != nil {
				return usageError{err}
			}
			g, err := gateway.Start(cfg)
			if err != nil {
				return err
			}
			defer g.Close()
			fmt.Printf("gateway %s ws://%s/ws\n", cfg.ID, g.Addr())
			<-cmd.Context().Done()
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.ID, "id", cfg.ID, "gateway id (g1, g2, ...)")
	f.StringVar(&cfg.ListenAddr, "listen", cfg.ListenAddr, "address serving /ws, /healthz and /metrics")
	f.BoolVar(&cfg.Pprof, "pprof", false, "also serve the Go profiler at /debug/pprof/ on the --listen address (the clients' port)")
	f.StringVar(&nodes, "nodes", "127.0.0.1:7101", "node gRPC addresses, comma-separated, in order of preference")
	f.StringVar(&cfg.RedisAddr, "redis", cfg.RedisAddr, "Redis HOST:PORT (empty: node streams only)")
	cluster.add(f)
	f.Float64Var(&cfg.RateLimit, "rate-limit", cfg.RateLimit, "requests per second per connection (0: off, for benchmarks)")
	f.IntVar(&cfg.RateBurst, "rate-burst", cfg.RateBurst, "burst of the per-connection rate limit")
	f.IntVar(&cfg.MaxConns, "max-conns", cfg.MaxConns, "connections the gateway holds at most (0: no bound)")
	f.IntVar(&cfg.MaxConnsPerIP, "max-conns-per-ip", cfg.MaxConnsPerIP, "connections from one address at most (0: no bound; a classroom behind one NAT shares an address)")
	f.DurationVar(&cfg.LoginTimeout, "login-timeout", cfg.LoginTimeout, "a connection that has not logged in or resumed by then is closed")
	f.IntVar(&cfg.LoginFailuresPerAccount, "login-failures-per-account", cfg.LoginFailuresPerAccount, "failed logins per minute of one account before it must wait (0: no bound)")
	f.IntVar(&cfg.LoginFailuresPerIP, "login-failures-per-ip", cfg.LoginFailuresPerIP, "failed logins per minute from one address before it must wait (0: no bound)")
	f.DurationVar(&cfg.TypingInterval, "typing-interval", cfg.TypingInterval, "least time between two typing notices of one connection in one conversation")
	f.IntVar(&cfg.SendQueue, "send-queue", cfg.SendQueue, "frames queued for one client before it is dropped as too slow")
	f.StringVar(&origins, "origins", "", "allowed browser origins, comma-separated (\"*\" for any)")
	f.DurationVar(&cfg.PingInterval, "ping-interval", cfg.PingInterval, "WebSocket ping interval")
	f.DurationVar(&cfg.PongTimeout, "pong-timeout", cfg.PongTimeout, "drop a client that has not answered pings for this long")
	f.DurationVar(&cfg.CallTimeout, "call-timeout", cfg.CallTimeout, "bound on one call to a node")
	f.DurationVar(&cfg.HealthInterval, "health-interval", cfg.HealthInterval, "node health-check interval")
	f.DurationVar(&cfg.RouteTTL, "route-ttl", cfg.RouteTTL, "presence route lifetime (refreshed every third of it)")
	traces.add(f, "")
	f.DurationVar(&cfg.ReorderWindow, "reorder-window", cfg.ReorderWindow, "CP: how long a push ahead of its conversation waits for the ones before it before the gap is pulled (0: pull at once)")
	return cmd
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
