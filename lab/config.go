package lab

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"mpim/agent"
)

// Sentinel errors of package lab. Errors returned by the Lab wrap one of
// these, so callers (the HTTP API, `mpim fault`, the chaos runner) can tell
// a usage mistake from a failure with errors.Is.
var (
	// ErrConfig means a Config field is out of range.
	ErrConfig = errors.New("lab: invalid config")
	// ErrUnknownMember means no member has the given name.
	ErrUnknownMember = errors.New("lab: unknown member")
	// ErrNotRunning means the member has no live process to act on.
	ErrNotRunning = errors.New("lab: member is not running")
	// ErrExternal means the member is not a process of this lab (an
	// external Redis given with --redis HOST:PORT).
	ErrExternal = errors.New("lab: member is external to the lab")
	// ErrNotReady means a member did not print its ready line in time, or
	// exited before it did.
	ErrNotReady = errors.New("lab: member did not become ready")
	// ErrClosed means the lab has been closed.
	ErrClosed = errors.New("lab: closed")
	// ErrUnknownAction means an HTTP request named an action that is not
	// kill, restart, pause or resume.
	ErrUnknownAction = errors.New("lab: unknown action")
	// ErrNoLab means no state file points at a running lab.
	ErrNoLab = errors.New("lab: no running lab found; start one with `mpim lab up`, or pass --lab URL or set MPIM_LAB")
)

// Redis choices for Config.Redis besides an explicit HOST:PORT.
const (
	// RedisAuto runs redis-server if the binary is on PATH, else an embedded
	// miniredis.
	RedisAuto = "auto"
	// RedisEmbedded runs an embedded miniredis (in a child process of the
	// lab binary, so that it can be killed and paused like the others).
	RedisEmbedded = "embedded"
)

// Fault-layer backends for Config.Net.
const (
	// NetProxy puts a TCP proxy on every link (no privileges needed).
	NetProxy = "proxy"
	// NetNS runs every member in its own network namespace and applies
	// faults with nftables.
	NetNS = "netns"
)

// DefaultHTTP is the default address of the lab HTTP API and dashboard.
// When it is busy the lab falls back to a free port.
const DefaultHTTP = "127.0.0.1:7070"

// Config describes one lab: the cluster shape passed to the members and the
// supervisor's own settings.
type Config struct {
	// Mode is the consistency mode, "cp" or "ap", passed to every node as
	// --mode.
	Mode string
	// Nodes is the number of node processes, n1..nN (default 3, as the lab
	// contract says).
	Nodes int
	// Gateways is the number of gateway processes, g1..gM. Gateway gI talks
	// first to node nI (wrapping when there are fewer nodes).
	Gateways int
	// Shards is the number of shards, passed to every node as --shards.
	Shards int
	// Leaders is "colocate" or "spread" (see lab.md). Recorded and reported;
	// acted upon once replication exists.
	Leaders string
	// APRepair enables the AP mode's outbox and anti-entropy (off: the
	// naive lossy fan-out, passed to nodes as --ap-repair off).
	APRepair bool
	// Redis is RedisAuto, RedisEmbedded or HOST:PORT of an external Redis
	// the lab does not manage.
	Redis string
	// Net is the fault layer's backend: NetProxy (the default: a TCP proxy
	// on every link, no privileges needed) or NetNS (every member in a
	// network namespace of its own, faults as nftables rules; needs root,
	// iproute2 and nftables, checked by probing).
	Net string
	// Hosts, when set, spreads the lab over the inventory's hosts: every
	// member runs under the agent of its host, and network faults are
	// nftables rules the agents load (package chaos/hostnet). Net must
	// then be NetProxy or empty (it is not used).
	Hosts *agent.Inventory
	// Data is the directory holding one data directory per node and logs/.
	// Empty means a new temporary directory (kept after Close, so the logs
	// can be read).
	Data string
	// HTTP is the listen address of the HTTP API and dashboard. When it is
	// DefaultHTTP and that port is busy, a free port is used instead.
	HTTP string
	// Secret is shared by all members to authenticate each other and sign
	// tokens. Empty means a fresh random secret.
	Secret string
	// ReservePanels registers the dashboard's panel users (PanelUsers) with
	// a password the lab makes, once the cluster is up and after each mode
	// switch, so that nobody else can take those names. A lab whose
	// dashboard listens beyond loopback (a classroom) always does; on
	// loopback alone the names stay free for the README's terminal clients.
	ReservePanels bool
	// Unsafe are the CP mode's unsafe teaching switches passed to every
	// node as --unsafe (ack-before-commit, local-linearizable); the lab
	// warns when any is on.
	Unsafe []string
	// BcryptCost is passed to every node as --bcrypt-cost.
	BcryptCost int
	// NoFaultLayer makes members dial each other directly instead of
	// through the fault layer's proxies: network faults (partition,
	// oneway, delay, loss) are then refused with ErrUnsupported, member
	// faults still work. For benchmarks that measure the system without
	// the lab's harness (`mpim bench --direct`).
	NoFaultLayer bool

	// Binary is the executable started for every member (and for the
	// embedded Redis, as `lab miniredis`). Empty means os.Executable().
	Binary string
	// Args, if set, rewrites a member's command line: it receives the
	// member name and the default arguments and returns the ones to use.
	// Tests use it (with Env) to run a stand-in member.
	Args func(member string, args []string) []string
	// Env is added to the environment of every member.
	Env []string

	// ReadyTimeout bounds how long a member may take to print its ready
	// line and answer /healthz (or PING, for Redis).
	ReadyTimeout time.Duration
	// StopGrace is how long Close waits after SIGTERM before SIGKILL.
	StopGrace time.Duration
	// RestartWindow is how long Restart keeps retrying a member that exits
	// before it is ready (for instance while its port is in TIME_WAIT).
	RestartWindow time.Duration
	// EventLogSize bounds the in-memory event log.
	EventLogSize int

	// StateFile is where Up records the dashboard URL and pid so that
	// `mpim fault` finds the lab most recently started. Empty means
	// DefaultStateFile(); "-" disables it.
	StateFile string
	// Logger receives the supervisor's logs. Nil discards them.
	Logger *slog.Logger
}

// DefaultConfig returns the configuration of `mpim lab up` without flags.
func DefaultConfig() Config {
	return Config{
		Mode:          "cp",
		Nodes:         3,
		Gateways:      3,
		Shards:        4,
		Leaders:       "colocate",
		APRepair:      true,
		Redis:         RedisAuto,
		Net:           NetProxy,
		HTTP:          DefaultHTTP,
		BcryptCost:    10,
		ReadyTimeout:  20 * time.Second,
		StopGrace:     3 * time.Second,
		RestartWindow: 3 * time.Second,
		EventLogSize:  1000,
	}
}

// Validate reports the first field that is out of range, wrapping
// ErrConfig, with a message naming the flag to fix.
func (c Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(format, args...))
	}
	switch {
	case c.Mode != "cp" && c.Mode != "ap":
		return bad("mode %q: use --mode cp or --mode ap", c.Mode)
	case c.Nodes < 1 || c.Nodes > 99:
		return bad("%d nodes: use --nodes between 1 and 99", c.Nodes)
	case c.Gateways < 0 || c.Gateways > 99:
		return bad("%d gateways: use --gateways between 0 and 99", c.Gateways)
	case c.Shards < 1 || c.Shards > 64:
		return bad("%d shards: use --shards between 1 and 64", c.Shards)
	case c.Leaders != "colocate" && c.Leaders != "spread":
		return bad("leaders %q: use --leaders colocate or --leaders spread", c.Leaders)
	case c.BcryptCost < 4 || c.BcryptCost > 31:
		return bad("bcrypt cost %d: use a cost between 4 and 31", c.BcryptCost)
	case c.ReadyTimeout <= 0 || c.StopGrace <= 0 || c.RestartWindow <= 0:
		return bad("ReadyTimeout, StopGrace and RestartWindow must be positive")
	case c.EventLogSize < 1:
		return bad("EventLogSize must be at least 1")
	case c.Net != "" && c.Net != NetProxy && c.Net != NetNS:
		return bad("net %q: use --net proxy or --net netns", c.Net)
	case c.Hosts != nil && c.Net == NetNS:
		return bad("--hosts applies faults on the hosts themselves: drop --net netns")
	case c.Hosts != nil && c.Redis != RedisAuto && c.Redis != RedisEmbedded:
		return bad("--hosts runs Redis on one of the hosts: use --redis auto or embedded")
	case c.Net == NetNS && c.Redis != RedisAuto && c.Redis != RedisEmbedded:
		return bad("--net netns runs Redis in its own namespace: use --redis auto or embedded")
	}
	if c.Redis != RedisAuto && c.Redis != RedisEmbedded {
		if _, _, err := net.SplitHostPort(c.Redis); err != nil {
			return bad("redis %q: use --redis auto, --redis embedded or --redis HOST:PORT", c.Redis)
		}
	}
	if _, _, err := net.SplitHostPort(c.HTTP); err != nil {
		return bad("http %q: use --http HOST:PORT, e.g. 127.0.0.1:7070", c.HTTP)
	}
	return nil
}
