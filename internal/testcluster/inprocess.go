// Package testcluster starts small clusters for tests: in-process nodes
// and gateways over real sockets and a real redis-server (run under -race),
// and, in e2e, the same as separate processes of the mpim binary.
package testcluster

import (
	"fmt"
	"log/slog"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"mpim/gateway"
	"mpim/internal/redisproc"
	"mpim/node"
)

// Secret is the token secret of test clusters.
const Secret = "test-secret-0123456789abcdef"

// InProcess is a cluster whose members run inside the test binary.
type InProcess struct {
	Redis    *redisproc.Server
	Nodes    []*node.Node
	Gateways []*gateway.Gateway
}

// Options shape an in-process cluster.
type Options struct {
	Nodes, Gateways int
	// NodeConfig and GatewayConfig adjust each member's config.
	NodeConfig    func(*node.Config)
	GatewayConfig func(*gateway.Config)
}

// StartInProcess starts the cluster; t.Cleanup stops it.
func StartInProcess(t testing.TB, opt Options) *InProcess {
	t.Helper()
	if opt.Nodes == 0 {
		opt.Nodes = 1
	}
	if opt.Gateways == 0 {
		opt.Gateways = 2
	}
	c := &InProcess{Redis: redisproc.ForTest(t)}
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	var addrs []string
	for i := 1; i <= opt.Nodes; i++ {
		cfg := node.DefaultConfig()
		cfg.ID = fmt.Sprintf("n%d", i)
		cfg.DataDir = t.TempDir()
		cfg.ListenAddr, cfg.HTTPAddr, cfg.RaftListen = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
		cfg.RedisAddr = c.Redis.Addr()
		cfg.Secret = []byte(Secret)
		cfg.BcryptCost = bcrypt.MinCost
		cfg.NoSync = true
		cfg.TestHooks = true
		cfg.Logger = log
		if opt.NodeConfig != nil {
			opt.NodeConfig(&cfg)
		}
		n, err := node.Start(cfg)
		if err != nil {
			t.Fatalf("start node %s: %v", cfg.ID, err)
		}
		t.Cleanup(func() { n.Close() })
		c.Nodes = append(c.Nodes, n)
		addrs = append(addrs, n.GRPCAddr())
	}
	for i := 1; i <= opt.Gateways; i++ {
		cfg := gateway.DefaultConfig()
		cfg.ID = fmt.Sprintf("g%d", i)
		cfg.ListenAddr = "127.0.0.1:0"
		// Gateway gI talks first to node nI.
		k := (i - 1) % len(addrs)
		cfg.Nodes = append(append([]string{}, addrs[k:]...), addrs[:k]...)
		cfg.RedisAddr = c.Redis.Addr()
		cfg.Secret = []byte(Secret)
		cfg.HealthInterval = 100 * time.Millisecond
		cfg.Logger = log
		if opt.GatewayConfig != nil {
			opt.GatewayConfig(&cfg)
		}
		g, err := gateway.Start(cfg)
		if err != nil {
			t.Fatalf("start gateway %s: %v", cfg.ID, err)
		}
		t.Cleanup(func() { g.Close() })
		c.Gateways = append(c.Gateways, g)
	}
	return c
}

// URL is the WebSocket URL of gateway i (0-based).
func (c *InProcess) URL(i int) string { return "ws://" + c.Gateways[i].Addr() + "/ws" }

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}
