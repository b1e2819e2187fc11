package gateway

import (
	"errors"
	"fmt"
	"log/slog"
	"mpim/internal/clustertls"
	"mpim/internal/spans"
	"time"
)

// Config is one gateway's configuration.
type Config struct {
	// ID names the gateway (g1, g2, ...); routes point at it and its Redis
	// channel is mpim:gw:<ID>.
	ID string
	// ListenAddr serves /ws, /healthz and /metrics.
	ListenAddr string
	// Nodes are the node gRPC addresses in order of preference; the gateway
	// uses the first healthy one and fails over down the list.
	Nodes []string
	// RedisAddr is the Redis server whose channel carries this gateway's
	// pushes; empty runs on the node streams alone.
	RedisAddr string
	// Secret verifies session tokens on resume (shared with the nodes).
	Secret []byte
	// RateLimit is the sustained requests per second allowed on one
	// connection, RateBurst the burst; RateLimit 0 switches limiting off
	// (benchmarks).
	RateLimit float64
	RateBurst int
	// MaxConns bounds the connections of the gateway and MaxConnsPerIP
	// those from one address (0: no bound); a connection past either is
	// refused with 503 before the WebSocket handshake.
	MaxConns, MaxConnsPerIP int
	// LoginTimeout is how long a connection may stay without logging in
	// (or resuming) before it is closed.
	LoginTimeout time.Duration
	// LoginFailuresPerAccount and LoginFailuresPerIP bound the failed
	// logins per minute of one account and of one address; past them a
	// login is answered rate_limited without asking a node (a bcrypt is a
	// node's CPU). 0: no bound.
	LoginFailuresPerAccount, LoginFailuresPerIP int
	// TypingInterval is the least time between two typing notices of one
	// connection in one conversation (a typing notice fans out to every
	// member).
	TypingInterval time.Duration
	// RedisPassword authenticates to Redis (requirepass); empty: none.
	RedisPassword string
	// TLS, when set, is the cluster's mutual TLS to the nodes: the gateway
	// presents the cluster's certificate and requires the node's (package
	// clustertls).
	TLS *clustertls.Credentials
	// Spans, when set, records where each send spends its time in this
	// gateway, served at /debug/spans (mpim bench --trace reads them).
	Spans *spans.Recorder
	// Pprof serves the Go profiler at /debug/pprof/ on ListenAddr. Off by
	// default: that is the clients' port. The lab turns it on (loopback).
	Pprof bool
	// SendQueue bounds the frames waiting for one slow client; a client
	// whose queue is full is dropped so that it never blocks anyone else.
	SendQueue int
	// MaxInflight bounds the requests of one connection served at once.
	MaxInflight int
	// AllowedOrigins are the browser origins accepted ("*" allows any).
	// Requests without an Origin header (non-browser clients) and same-host
	// origins are always accepted.
	AllowedOrigins []string
	// PingInterval is how often the gateway pings each client; PongTimeout
	// drops a client that has not answered (the protocol says 30 s).
	PingInterval time.Duration
	PongTimeout  time.Duration
	// WriteTimeout bounds writing one frame to a client.
	WriteTimeout time.Duration
	// CallTimeout bounds one call to a node.
	CallTimeout time.Duration
	// HealthInterval is how often nodes are health-checked.
	HealthInterval time.Duration
	// RouteTTL is the presence route lifetime; routes are refreshed every
	// RouteTTL/3.
	RouteTTL time.Duration
	// RedisTimeout bounds Redis calls and detects a dead subscription.
	RedisTimeout time.Duration
	// ReorderWindow is how long a CP push that arrives ahead of its
	// conversation's next seq waits for the pushes before it, before the
	// gap is pulled from a node: the nodes that accepted those messages
	// publish them independently, so pushes of a busy conversation often
	// arrive a little out of order. 0 pulls at once.
	ReorderWindow time.Duration
	Logger        *slog.Logger
}

// DefaultConfig returns a gateway's defaults.
func DefaultConfig() Config {
	return Config{
		ID:                      "g1",
		ListenAddr:              "127.0.0.1:7301",
		RateLimit:               100,
		RateBurst:               200,
		MaxConns:                20000,
		MaxConnsPerIP:           1000,
		LoginTimeout:            10 * time.Second,
		TypingInterval:          time.Second,
		LoginFailuresPerAccount: 10,
		LoginFailuresPerIP:      100,
		SendQueue:               1024,
		MaxInflight:             64,
		PingInterval:            10 * time.Second,
		PongTimeout:             30 * time.Second,
		WriteTimeout:            10 * time.Second,
		CallTimeout:             5 * time.Second,
		HealthInterval:          300 * time.Millisecond,
		RouteTTL:                30 * time.Second,
		RedisTimeout:            250 * time.Millisecond,
		ReorderWindow:           25 * time.Millisecond,
	}
}

// Validate reports a configuration the gateway cannot run with.
func (c Config) Validate() error {
	var errs []error
	if c.ID == "" {
		errs = append(errs, errors.New("gateway: --id is required"))
	}
	if len(c.Nodes) == 0 {
		errs = append(errs, errors.New("gateway: --nodes needs at least one node address"))
	}
	if len(c.Secret) < 16 {
		errs = append(errs, errors.New("gateway: the token secret must be at least 16 bytes (--secret or MPIM_SECRET)"))
	}
	if c.RateLimit < 0 || (c.RateLimit > 0 && c.RateBurst < 1) {
		errs = append(errs, fmt.Errorf("gateway: rate limit %v with burst %d: use a limit ≥ 0 (0 = off) and a burst ≥ 1", c.RateLimit, c.RateBurst))
	}
	if c.MaxConns < 0 || c.MaxConnsPerIP < 0 || c.LoginFailuresPerAccount < 0 || c.LoginFailuresPerIP < 0 || c.LoginTimeout <= 0 || c.TypingInterval < 0 {
		errs = append(errs, errors.New("gateway: connection and login limits must be ≥ 0 (0 = off) and the login timeout positive"))
	}
	if c.SendQueue < 1 || c.MaxInflight < 1 {
		errs = append(errs, errors.New("gateway: send queue and max inflight must be at least 1"))
	}
	if c.PingInterval <= 0 || c.PongTimeout <= c.PingInterval || c.WriteTimeout <= 0 || c.CallTimeout <= 0 ||
		c.HealthInterval <= 0 || c.RouteTTL <= 0 || c.RedisTimeout <= 0 || c.ReorderWindow < 0 {
		errs = append(errs, errors.New("gateway: timeouts must be positive and the pong timeout longer than the ping interval"))
	}
	return errors.Join(errs...)
}
