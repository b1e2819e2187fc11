// Package agent is `mpim agent`, the lab's hand on one host of a cluster
// spread over machines, and the client the lab drives it with.
//
// An agent runs the members placed on its host as its child processes
// (start, kill, stop, restart on the same data, pause, resume), loads the
// host's fault rules into an nftables table on the input hook (package
// chaos/hostnet renders them), and reports its members' state and logs.
// It listens on HTTPS with mutual TLS: a caller must present a
// certificate of the cluster's authority (internal/clustertls), the same
// credentials the members use, and the agent refuses everything else at
// the handshake. It runs only two programs: its own executable (mpim
// node, gateway, lab miniredis) and the redis-server it found on PATH.
//
// # API (JSON over HTTPS)
//
//	GET  /v1/info                        what the agent is and can do (Info)
//	GET  /v1/members                     every member's state
//	POST /v1/members/{name}/start        StartRequest; answers once ready
//	POST /v1/members/{name}/{kill|stop|pause|resume|wipe}
//	GET  /v1/members/{name}/wait?pid=P   returns when process P ended, or after ~10 s
//	GET  /v1/members/{name}/log?lines=N  the tail of the member's log
//	PUT  /v1/rules                       RulesRequest: the host's whole rule set
package agent

import (
	"errors"
	"time"

	"mpim/chaos/hostnet"
)

// Program names a StartRequest may run.
const (
	// ProgramMpim is the agent's own executable.
	ProgramMpim = "mpim"
	// ProgramRedis is the redis-server binary found on the agent's PATH.
	ProgramRedis = "redis-server"
)

// Info is what GET /v1/info answers.
type Info struct {
	// Name is the agent's --name (its host's name in the inventory, if
	// the operator gave it).
	Name string `json:"name,omitempty"`
	// Data is the directory holding one directory per member and logs/;
	// TLSDir the cluster's credentials, which members are started with.
	Data   string `json:"data"`
	TLSDir string `json:"tls_dir"`
	// Redis says whether redis-server is on this host's PATH.
	Redis bool `json:"redis_server"`
	// Members is false for an agent started with --no-members (a sidecar
	// in a pod: it applies faults only).
	Members bool `json:"members"`
	// Nftables and Netem are what the probe found; Why explains what is
	// missing.
	Nftables bool              `json:"nftables"`
	Netem    bool              `json:"netem"`
	Why      map[string]string `json:"why,omitempty"`
	PID      int               `json:"pid"`
}

// StartRequest starts a member.
type StartRequest struct {
	// Program is ProgramMpim or ProgramRedis; Args its arguments (paths
	// in them are the agent's, from Info).
	Program string   `json:"program"`
	Args    []string `json:"args"`
	// Env is added to the agent's environment (the cluster's secrets:
	// they stay off the command line).
	Env []string `json:"env,omitempty"`
	// ReadyPrefix is the stdout line prefix meaning ready, then HealthURL
	// must answer 200; with no prefix, PingAddr must answer a Redis PING.
	ReadyPrefix string `json:"ready_prefix,omitempty"`
	HealthURL   string `json:"health_url,omitempty"`
	PingAddr    string `json:"ping_addr,omitempty"`
	// ReadyTimeoutMS bounds the start (default 20 s).
	ReadyTimeoutMS int `json:"ready_timeout_ms,omitempty"`
}

// StartReply is the answer to a start.
type StartReply struct {
	PID int `json:"pid"`
}

// State is one member as the agent sees it.
type State struct {
	Name string `json:"name"`
	// PID is the live process, 0 when none.
	PID int `json:"pid,omitempty"`
	// State is "running", "paused", "exited" or "killed".
	State string `json:"state"`
	// Status is how the last process ended ("exit status 1", "signal:
	// killed"), once it has.
	Status string    `json:"status,omitempty"`
	Log    string    `json:"log"`
	Since  time.Time `json:"since"`
}

// WaitReply answers a wait: Exited once process PID has ended, with how.
type WaitReply struct {
	Exited bool   `json:"exited"`
	Status string `json:"status,omitempty"`
}

// RulesRequest replaces the host's rules.
type RulesRequest struct {
	Rules []hostnet.Rule `json:"rules"`
}

// errorReply is every error's body.
type errorReply struct {
	Error string `json:"error"`
}

// Errors a caller can tell apart (the client maps HTTP statuses to them).
var (
	// ErrUnknownMember: the agent runs no member of that name.
	ErrUnknownMember = errors.New("agent: unknown member")
	// ErrNotRunning: the member has no live process.
	ErrNotRunning = errors.New("agent: member is not running")
	// ErrRefused: the request is not one this agent carries out.
	ErrRefused = errors.New("agent: refused")
	// ErrNotReady: a started member did not become ready.
	ErrNotReady = errors.New("agent: member did not become ready")
	// ErrExitedEarly: a started member exited before it was ready (a
	// retry may succeed, e.g. once its port leaves TIME_WAIT).
	ErrExitedEarly = errors.New("agent: member exited before it was ready")
	// ErrUnreachable: the agent cannot be reached (or refused the
	// handshake).
	ErrUnreachable = errors.New("agent: unreachable")
)
