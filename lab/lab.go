// Package lab is the supervisor behind `mpim lab up`: it runs a whole local
// cluster (Redis, nodes n1..nN and gateways g1..gM as separate OS processes
// of the mpim binary), keeps every member on fixed loopback ports and data
// directories so that a killed member comes back where it was, and exposes
// the member faults (kill, restart, pause, resume) through one Go API, an
// HTTP API (docs/lab-api.md) and a typed event stream.
//
// Lock order: member.op before Lab.mu; the event log's mutex is a leaf.
// No lock is held while waiting for a process.
package lab

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"mpim/agent"
	"mpim/chaos/netfault"
	"mpim/chaos/netns"
	"mpim/chaos/proxy"
	"mpim/internal/clustertls"
	"mpim/internal/ports"
	"mpim/internal/redisproc"
)

// Lab supervises one local cluster. Create it with New, start it with Up,
// and always Close it.
type Lab struct {
	cfg    Config
	log    *slog.Logger
	events *events

	// Fixed by Up before any member starts.
	data      string
	tempData  bool
	redisNote string // how Redis was chosen, for the banner
	redisKind RedisImpl
	redisAddr string
	// redisPassword is what Redis requires of every client (the lab makes
	// one for the Redis it runs); tlsDir holds the cluster's mutual TLS
	// credentials, "" without them.
	redisPassword, tlsDir string
	// panelPassword is the dashboard panels' password (panels.go).
	panelPassword string
	replicas      replicaCache
	relayed       relayCount // the student relay's connections per address
	dashboard     string     // http://HOST:PORT/
	listenAll     bool       // the dashboard listens on every interface
	members       []*member
	byName        map[string]*member
	httpSrv       *http.Server
	started       time.Time
	stateFile     string

	// network is the fault layer: every link between members passes
	// through one of its proxies.
	network *network
	// hosts is the agents of a lab spread over hosts (nil on one machine).
	hosts *hostsLab

	mu     sync.Mutex // guards the mutable member fields, up and closed
	up     bool
	closed bool

	// mode is the consistency mode the nodes run now: cfg.Mode until
	// SwitchMode changes it. Guarded by mu.
	mode string
	// stopWatch ends the current leader watch (nil when none runs).
	// Guarded by mu.
	stopWatch chan struct{}
	// switching is true while SwitchMode restarts the members.
	switching atomic.Bool
	// stopHTTP is closed by Close: it ends the dashboard's streams.
	stopHTTP chan struct{}
	// topology caches the dashboard's snapshot.
	topology topologyCache

	closeOnce sync.Once
	wg        sync.WaitGroup // reapers, stdout readers, the HTTP server, the leader watch
}

// New checks cfg and returns a Lab that has not started anything yet.
func New(cfg Config) (*Lab, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Lab{cfg: cfg, log: log, events: newEvents(cfg.EventLogSize), byName: map[string]*member{},
		mode: cfg.Mode, stopHTTP: make(chan struct{})}, nil
}

// Up starts the HTTP API, Redis, the nodes and then the gateways, and
// returns once every member is ready, or with the first failure, having
// stopped whatever it started. ctx bounds the start only: the members run
// until Close.
func (l *Lab) Up(ctx context.Context) (err error) {
	l.mu.Lock()
	if l.up || l.closed {
		l.mu.Unlock()
		return fmt.Errorf("%w: Up may be called once per Lab", ErrClosed)
	}
	l.up = true
	l.mu.Unlock()
	defer func() {
		if err != nil {
			_ = l.Close()
		}
	}()
	l.started = time.Now()
	if err := l.prepare(); err != nil {
		return err
	}
	if l.cfg.Hosts != nil {
		if err := l.prepareHosts(ctx); err != nil {
			return err
		}
	}
	ln, err := l.listenHTTP()
	if err != nil {
		return err
	}
	addr := ln.Addr().(*net.TCPAddr)
	if addr.IP.IsUnspecified() {
		// Listening on every interface (students join from their own
		// machines): this machine's browser uses loopback, and Banner
		// prints the student page's addresses.
		l.listenAll = true
		addr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: addr.Port}
	}
	l.dashboard = "http://" + addr.String() + "/"
	if err := l.plan(addr.String()); err != nil {
		ln.Close()
		return err
	}
	l.serveHTTP(ln)

	var waves [3][]*member
	for _, m := range l.members {
		switch m.info.Kind {
		case KindRedis:
			waves[0] = append(waves[0], m)
		case KindNode:
			waves[1] = append(waves[1], m)
		default:
			waves[2] = append(waves[2], m)
		}
	}
	// Members of a wave start together: nodes may only become ready once
	// they reach each other.
	for _, wave := range waves {
		if err := l.startAll(ctx, wave); err != nil {
			return err
		}
	}
	if err := l.writeState(); err != nil {
		l.log.Warn("cannot record the lab for `mpim fault`", "err", err)
	}
	l.startLeaderWatch(ctx)
	if err := l.reservePanels(ctx); err != nil {
		l.log.Warn("could not reserve the chat panels' users", "err", err)
	}
	l.log.Info("lab up", "dashboard", l.dashboard, "data", l.data)
	return nil
}

// prepare resolves the binary, the data directory and the Redis choice.
func (l *Lab) prepare() error {
	if l.cfg.Binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("lab: find the mpim binary: %w", err)
		}
		l.cfg.Binary = exe
	}
	l.data = l.cfg.Data
	if l.data == "" {
		dir, err := os.MkdirTemp("", "mpim-lab-")
		if err != nil {
			return fmt.Errorf("lab: create a data directory: %w (pass --data DIR)", err)
		}
		l.data, l.tempData = dir, true
	}
	abs, err := filepath.Abs(l.data)
	if err != nil {
		return fmt.Errorf("lab: data directory %s: %w", l.data, err)
	}
	l.data = abs
	if err := os.MkdirAll(filepath.Join(l.data, "logs"), 0o755); err != nil {
		return fmt.Errorf("lab: create %s: %w (pass a writable --data DIR)", l.data, err)
	}
	if l.cfg.Secret == "" {
		l.cfg.Secret = randomHex(24)
	}
	l.panelPassword = randomHex(12)
	// Cluster traffic is authenticated: members present the lab's
	// certificates to each other, and Redis wants a password.
	// (Across hosts, the inventory's credentials, which the agents share.)
	l.tlsDir = filepath.Join(l.data, "credentials")
	if l.cfg.Hosts == nil {
		if err := clustertls.Generate(l.tlsDir); err != nil {
			return fmt.Errorf("lab: cluster credentials: %w", err)
		}
	}
	l.redisPassword = os.Getenv("MPIM_REDIS_PASSWORD")
	switch l.cfg.Redis {
	case RedisAuto:
		if redisproc.Available() {
			l.redisKind, l.redisNote = RedisServer, "redis: redis-server (found on PATH)"
		} else {
			l.redisKind, l.redisNote = RedisMiniredis, "redis: embedded miniredis (no redis-server binary found)"
		}
	case RedisEmbedded:
		l.redisKind, l.redisNote = RedisMiniredis, "redis: embedded miniredis (--redis embedded)"
	default:
		l.redisKind, l.redisNote = RedisExternal, "redis: external "+l.cfg.Redis+" (not managed by the lab; its password, if any, from $MPIM_REDIS_PASSWORD)"
	}
	if l.redisKind != RedisExternal && l.redisPassword == "" {
		l.redisPassword = randomHex(16)
	}
	l.stateFile = l.cfg.StateFile
	if l.stateFile == "" {
		l.stateFile = DefaultStateFile()
	}
	return nil
}

// listenHTTP binds the API address, falling back to a free port when the
// default one is busy.
func (l *Lab) listenHTTP() (net.Listener, error) {
	ln, err := net.Listen("tcp", l.cfg.HTTP)
	if err != nil && l.cfg.HTTP == DefaultHTTP {
		l.log.Info("default dashboard port busy; using a free port", "addr", DefaultHTTP)
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		return nil, fmt.Errorf("lab: listen for the HTTP API on %s: %w (pick another --http)", l.cfg.HTTP, err)
	}
	return ln, nil
}

// plan picks every member's ports up front, so that a restarted member
// keeps its addresses, and builds the command lines.
func (l *Lab) plan(httpAddr string) error {
	if err := l.planNetwork(); err != nil {
		return err
	}
	need := 3*l.cfg.Nodes + l.cfg.Gateways
	if l.redisKind != RedisExternal {
		need++
	}
	var ports []int
	if l.network.ns == nil && l.hosts == nil {
		var err error
		if ports, err = freePorts(need); err != nil {
			return err
		}
	}
	// addr is a member's listen address for one role: a free loopback
	// port with the proxy backend, the member's own namespace address and
	// a fixed port per role with netns.
	addr := func(member string, role int) string {
		if l.hosts != nil {
			return l.hosts.hostAddr(member, role)
		}
		if l.network.ns != nil {
			return net.JoinHostPort(l.network.ns.Addr(member), strconv.Itoa(nsPorts[role]))
		}
		p := ports[0]
		ports = ports[1:]
		return net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
	}
	redis, err := l.planRedis(addr)
	if err != nil {
		return err
	}
	nodes, err := l.planNodes(addr)
	if err != nil {
		return err
	}
	gateways, err := l.planGateways(addr, nodes, httpAddr)
	if err != nil {
		return err
	}
	if ns := l.network.ns; ns != nil {
		for _, m := range append(append(nodes, gateways...), redis) {
			if m.path != "" {
				m.path, m.args = ns.Command(m.info.Name, m.path, m.args)
			}
		}
	}
	if l.hosts != nil {
		for _, m := range append(append(nodes, gateways...), redis) {
			m.host, m.info.Host = l.hosts.place[m.info.Name], l.hosts.place[m.info.Name]
			if m.program == "" {
				m.program = agent.ProgramMpim
			}
		}
	}
	l.mu.Lock()
	l.members = append(append(nodes, gateways...), redis)
	for _, m := range l.members {
		l.byName[m.info.Name] = m
	}
	l.mu.Unlock()
	if l.hosts != nil && !l.cfg.NoFaultLayer {
		return l.startHostsNetwork()
	}
	return nil
}

// RedisImpl is the Redis a lab uses; its value is also how the banner and
// the API name it.
type RedisImpl string

// The Redis implementations.
const (
	// RedisServer is a redis-server the lab starts.
	RedisServer RedisImpl = "redis-server"
	// RedisMiniredis is the embedded miniredis the lab starts when no
	// redis-server binary exists (or --redis embedded).
	RedisMiniredis RedisImpl = "embedded miniredis"
	// RedisExternal is a Redis the lab does not manage (--redis HOST:PORT).
	RedisExternal RedisImpl = "external"
)

// logPath is where the lab writes member name's output (across hosts,
// where its agent does, on its host).
func (l *Lab) logPath(name string) string {
	if l.hosts != nil {
		return filepath.Join(l.hosts.info[l.hosts.place[name]].Data, "logs", l.hosts.remote(name)+".log")
	}
	return filepath.Join(l.data, "logs", name+".log")
}

// dataOf is node name's data directory (across hosts, on its host).
func (l *Lab) dataOf(name string) string {
	if l.hosts != nil {
		return l.hosts.dataOf(name)
	}
	return filepath.Join(l.data, name)
}

// tlsDirOf is the credentials directory member name is started with.
func (l *Lab) tlsDirOf(name string) string {
	if l.hosts != nil {
		return l.hosts.info[l.hosts.place[name]].TLSDir
	}
	return l.tlsDir
}

// planRedis plans the Redis member: redis-server, the embedded miniredis,
// or an external Redis the lab does not manage.
func (l *Lab) planRedis(addr func(string, int) string) (*member, error) {
	redis := &member{info: MemberState{Name: "redis", Kind: KindRedis, Impl: l.redisKind}, env: l.memberEnv(), state: StateStarting}
	switch l.redisKind {
	case RedisExternal:
		l.redisAddr = l.cfg.Redis
		redis.state = StateExternal
	case RedisServer:
		l.redisAddr = addr("redis", roleRedis)
		if l.hosts != nil {
			host, portStr, _ := net.SplitHostPort(l.redisAddr)
			port, _ := strconv.Atoi(portStr)
			redis.program = agent.ProgramRedis
			redis.args = redisproc.ArgsOn(host, port, l.hosts.dataOf("redis"))
			redis.info.Log, redis.pingAddr = l.logPath("redis"), l.redisAddr
			break
		}
		host, portStr, _ := net.SplitHostPort(l.redisAddr)
		port, _ := strconv.Atoi(portStr)
		dir := filepath.Join(l.data, "redis")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("lab: create %s: %w", dir, err)
		}
		cmd, err := redisproc.CommandOn(host, port, dir, l.redisPassword)
		if err != nil {
			return nil, err
		}
		redis.path, redis.args = cmd.Path, cmd.Args[1:]
		redis.info.Log, redis.pingAddr = l.logPath("redis"), l.redisAddr
	default:
		l.redisAddr = addr("redis", roleRedis)
		redis.path = l.cfg.Binary
		redis.args = l.hook("redis", []string{"lab", "miniredis", "--listen", l.redisAddr})
		redis.info.Log, redis.pingAddr = l.logPath("redis"), l.redisAddr
	}
	redis.info.Redis = "redis://" + l.redisAddr
	return redis, nil
}

// planNodes plans n1..nN. Node-to-node addresses come first: every node's
// --peers names the proxy of its link to each other node.
func (l *Lab) planNodes(addr func(string, int) string) ([]*member, error) {
	raftAddrs := make([]string, l.cfg.Nodes)
	for i := range raftAddrs {
		raftAddrs[i] = addr("n"+strconv.Itoa(i+1), roleRaft)
	}
	var nodes []*member
	for i := 1; i <= l.cfg.Nodes; i++ {
		name := "n" + strconv.Itoa(i)
		spec := NodeSpec{ID: name, Data: l.dataOf(name), Listen: addr(name, roleGRPC), HTTP: addr(name, roleHTTP),
			TLSDir: l.tlsDirOf(name), Mode: l.mode, Shards: l.cfg.Shards, BcryptCost: l.cfg.BcryptCost,
			RaftListen: raftAddrs[i-1], Leaders: l.cfg.Leaders, Unsafe: l.cfg.Unsafe, APRepair: l.cfg.APRepair,
			Pprof: true} // the lab's members listen on loopback (or its own namespaces)
		for j, a := range raftAddrs {
			peer := "n" + strconv.Itoa(j+1)
			if peer != name {
				var err error
				if a, err = l.link(name, peer, a); err != nil {
					return nil, err
				}
			}
			spec.Peers = append(spec.Peers, peer+"="+a)
		}
		if l.hosts == nil {
			if err := os.MkdirAll(spec.Data, 0o755); err != nil {
				return nil, fmt.Errorf("lab: create %s: %w", spec.Data, err)
			}
		}
		var err error
		if spec.Redis, err = l.link(name, "redis", l.redisAddr); err != nil {
			return nil, err
		}
		nodes = append(nodes, &member{
			info: MemberState{Name: name, Kind: KindNode, GRPC: spec.Listen, Raft: spec.RaftListen, HTTP: "http://" + spec.HTTP + "/",
				Data: spec.Data, Log: l.logPath(name)},
			path: l.cfg.Binary, args: l.hook(name, spec.Args()), env: l.memberEnv(),
			readyPrefix: "node " + name + " ", healthURL: "http://" + spec.HTTP + "/healthz",
			state: StateStarting,
		})
	}
	return nodes, nil
}

// planGateways plans g1..gM: gateway gI talks first to node nI, then to
// the others in order.
func (l *Lab) planGateways(addr func(string, int) string, nodes []*member, httpAddr string) ([]*member, error) {
	var gateways []*member
	for i := 1; i <= l.cfg.Gateways; i++ {
		name := "g" + strconv.Itoa(i)
		spec := GatewaySpec{ID: name, Listen: addr(name, roleGateway), TLSDir: l.tlsDirOf(name),
			Origins: dashboardOrigins(httpAddr), Pprof: true}
		first := (i - 1) % len(nodes)
		for j := range nodes {
			n := nodes[(first+j)%len(nodes)]
			a, err := l.link(name, n.info.Name, n.info.GRPC)
			if err != nil {
				return nil, err
			}
			spec.Nodes = append(spec.Nodes, a)
		}
		var err error
		if spec.Redis, err = l.link(name, "redis", l.redisAddr); err != nil {
			return nil, err
		}
		gateways = append(gateways, &member{
			info: MemberState{Name: name, Kind: KindGateway, HTTP: "http://" + spec.Listen + "/",
				WS: "ws://" + spec.Listen + "/ws", Log: l.logPath(name)},
			path: l.cfg.Binary, args: l.hook(name, spec.Args()), env: l.memberEnv(),
			readyPrefix: "gateway " + name + " ", healthURL: "http://" + spec.Listen + "/healthz",
			state: StateStarting,
		})
	}
	return gateways, nil
}

// Listen roles, and the fixed port of each with netns (every member has
// an address of its own there, so ports need not be unique).
const (
	roleRedis = iota
	roleRaft
	roleGRPC
	roleHTTP
	roleGateway
)

var nsPorts = [...]int{roleRedis: 16379, roleRaft: 7100, roleGRPC: 7101, roleHTTP: 7102, roleGateway: 7200}

// planNetwork sets up the fault layer's backend: a proxy net, or one
// namespace per member (probed first; the error says what is missing).
func (l *Lab) planNetwork() error {
	if l.cfg.NoFaultLayer {
		l.network = &network{Network: netfault.New(netfault.None())}
		return nil
	}
	if l.hosts != nil {
		// Replaced once the members are planned (startHostsNetwork): the
		// rules need to know who dials whom.
		l.network = &network{Network: netfault.New(netfault.None())}
		return nil
	}
	if l.cfg.Net != NetNS {
		p := proxy.NewNet(l.log)
		l.network = &network{Network: netfault.New(netfault.Proxy(p)), proxies: p}
		return nil
	}
	ns, err := netns.New()
	if err != nil {
		return fmt.Errorf("lab: --net netns: %w", err)
	}
	l.network = &network{Network: netfault.New(netfault.Netns(ns)), ns: ns}
	names := []string{"redis"}
	for i := 1; i <= l.cfg.Nodes; i++ {
		names = append(names, "n"+strconv.Itoa(i))
	}
	for i := 1; i <= l.cfg.Gateways; i++ {
		names = append(names, "g"+strconv.Itoa(i))
	}
	for _, name := range names {
		if _, err := ns.Add(name); err != nil {
			ns.Close()
			return fmt.Errorf("lab: --net netns: %w", err)
		}
	}
	if !ns.Support().Netem {
		l.log.Info("netns backend: no netem in this kernel; delay is refused (partition, oneway and loss work)")
	}
	return nil
}

// dashboardOrigins are the browser origins every gateway accepts: the
// dashboard's, and for 127.0.0.1 also the same port on localhost, so that
// the dashboard's chat panels may talk to the gateways directly. (Pages
// loaded from another host use the lab's relay, /gw/gI/ws, which the
// gateways see as same-host.)
func dashboardOrigins(addr string) string {
	origins := "http://" + addr
	if host, port, err := net.SplitHostPort(addr); err == nil && host == "127.0.0.1" {
		origins += ",http://" + net.JoinHostPort("localhost", port)
	}
	return origins
}

func (l *Lab) hook(name string, args []string) []string {
	if l.cfg.Args == nil {
		return args
	}
	return l.cfg.Args(name, args)
}

// freePorts returns n distinct loopback ports that were free a moment ago.
func freePorts(n int) ([]int, error) { return ports.Free(n) }

// startAll starts the members of one wave concurrently and returns every
// failure joined.
func (l *Lab) startAll(ctx context.Context, wave []*member) error {
	errs := make([]error, len(wave))
	var wg sync.WaitGroup
	for i, m := range wave {
		if m.state == StateExternal {
			continue
		}
		wg.Go(func() {
			m.op.Lock()
			defer m.op.Unlock()
			errs[i] = l.start(ctx, m)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Close stops every process the lab started (gateways, then nodes, then
// Redis; SIGTERM, then SIGKILL after StopGrace), waits for all of them,
// shuts the HTTP API down and ends every subscription. It is idempotent.
func (l *Lab) Close() error {
	l.closeOnce.Do(func() {
		l.mu.Lock()
		l.closed = true
		members := append([]*member(nil), l.members...)
		if l.stopWatch != nil {
			close(l.stopWatch)
			l.stopWatch = nil
		}
		l.mu.Unlock()
		close(l.stopHTTP)
		// Members shut down gracefully over a healed network.
		if l.network != nil {
			_ = l.network.Heal()
		}
		for _, kind := range []Kind{KindGateway, KindNode, KindRedis} {
			var wg sync.WaitGroup
			for _, m := range members {
				if m.info.Kind != kind {
					continue
				}
				wg.Go(func() {
					m.op.Lock()
					defer m.op.Unlock()
					l.stop(m)
				})
			}
			wg.Wait()
		}
		if l.network != nil {
			if err := l.network.Close(); err != nil {
				l.log.Warn("fault layer close", "err", err)
			}
		}
		l.events.close()
		if l.httpSrv != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			if err := l.httpSrv.Shutdown(ctx); err != nil {
				_ = l.httpSrv.Close()
			}
			cancel()
		}
		l.wg.Wait()
		l.removeState()
		l.log.Info("lab closed", "data", l.data)
	})
	return nil
}

// member returns the member called name, or ErrUnknownMember.
func (l *Lab) member(name string) (*member, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if m, ok := l.byName[name]; ok {
		return m, nil
	}
	names := make([]string, 0, len(l.members))
	for _, m := range l.members {
		names = append(names, m.info.Name)
	}
	return nil, fmt.Errorf("%w %q (members: %s)", ErrUnknownMember, name, strings.Join(names, " "))
}

// Kill SIGKILLs the member's process group and waits until it is gone.
// Killing a member that is not running is a no-op.
func (l *Lab) Kill(member string) error {
	m, err := l.member(member)
	if err != nil {
		return err
	}
	m.op.Lock()
	defer m.op.Unlock()
	if _, _, err := l.liveProcess(m); err != nil {
		if errors.Is(err, ErrNotRunning) {
			return nil
		}
		return err
	}
	l.kill(m, EventKilled)
	return nil
}

// Restart starts a killed or exited member again with the same command
// line: same data directory, same ports. It retries for RestartWindow while
// the member exits before it is ready (e.g. its port is in TIME_WAIT), and
// returns once it is ready. Restarting a running (or paused, or starting)
// member is a no-op; resume a paused one with Resume.
func (l *Lab) Restart(ctx context.Context, member string) error {
	m, err := l.member(member)
	if err != nil {
		return err
	}
	m.op.Lock()
	defer m.op.Unlock()
	if _, _, err := l.liveProcess(m); err == nil || !errors.Is(err, ErrNotRunning) {
		return err
	}
	deadline := time.Now().Add(l.cfg.RestartWindow)
	for {
		err = l.start(ctx, m)
		if err == nil {
			l.mu.Lock()
			m.restarts++
			l.mu.Unlock()
			return nil
		}
		if !errors.Is(err, errExitedEarly) || time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Pause SIGSTOPs the member's process group. Pausing a paused member is a
// no-op; a member that is not running gives ErrNotRunning.
func (l *Lab) Pause(member string) error {
	return l.signal(member, StateRunning, StatePaused, sigStop, EventPaused)
}

// Resume SIGCONTs a paused member. Resuming a running member is a no-op; a
// member that is not running gives ErrNotRunning.
func (l *Lab) Resume(member string) error {
	return l.signal(member, StatePaused, StateRunning, sigCont, EventResumed)
}

// signal moves a member from state from to state to by sending sig to its
// process group; a member already in state to is left alone.
func (l *Lab) signal(name string, from, to State, sig func(pid int) error, kind EventKind) error {
	m, err := l.member(name)
	if err != nil {
		return err
	}
	m.op.Lock()
	defer m.op.Unlock()
	p, state, err := l.liveProcess(m)
	if err != nil {
		return err
	}
	if state == to {
		return nil
	}
	if state != from {
		return fmt.Errorf("%w: %s is %s", ErrNotRunning, name, state)
	}
	if m.host != "" {
		action := map[EventKind]string{EventPaused: "pause", EventResumed: "resume"}[kind]
		if err := l.actRemote(m, action); err != nil {
			return err
		}
	} else if err := sig(p.pid); err != nil {
		return fmt.Errorf("lab: %s %s (pid %d): %w", kind, name, p.pid, err)
	}
	l.mu.Lock()
	m.state = to
	m.since = time.Now()
	l.mu.Unlock()
	l.emit(Event{Kind: kind, Member: name, PID: p.pid})
	return nil
}

// Members returns a snapshot of every member: nodes, gateways, then redis.
func (l *Lab) Members() []MemberState {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]MemberState, 0, len(l.members))
	for _, m := range l.members {
		out = append(out, l.snapshotLocked(m))
	}
	return out
}

// Member returns a snapshot of one member, or ErrUnknownMember.
func (l *Lab) Member(name string) (MemberState, error) {
	m, err := l.member(name)
	if err != nil {
		return MemberState{}, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.snapshotLocked(m), nil
}

func (l *Lab) snapshotLocked(m *member) MemberState {
	s := m.info
	s.State, s.Restarts, s.Since = m.state, m.restarts, m.since
	if m.proc != nil {
		s.PID = m.proc.pid
	}
	return s
}

// Events returns the in-memory event log, oldest first (at most
// Config.EventLogSize events).
func (l *Lab) Events() []Event { return l.events.snapshot() }

// Subscribe returns the events emitted from now on and a cancel function.
// A subscriber more than 256 events behind misses events (Events still has
// them). The channel is closed by cancel or by Close.
func (l *Lab) Subscribe() (<-chan Event, func()) {
	ch, _, cancel := l.events.subscribe()
	return ch, cancel
}

func (l *Lab) emit(ev Event) {
	ev = l.events.emit(ev)
	l.log.Info("member "+string(ev.Kind), "member", ev.Member, "pid", ev.PID, "detail", ev.Detail)
}

// Dashboard returns the URL of the HTTP API and dashboard, once Up has
// bound it.
func (l *Lab) Dashboard() string { return l.dashboard }

// Data returns the data directory, once Up has chosen it.
func (l *Lab) Data() string { return l.data }

// Banner returns the lines `mpim lab up` prints once the lab is ready: how
// Redis was chosen, the data directory, one line per node, the Redis line,
// one `gateway gI ws://HOST:PORT/ws` line per gateway, one `student URL`
// line per address beyond loopback that the dashboard listens on (see
// StudentURLs), and the `dashboard http://HOST:PORT/` line last.
func (l *Lab) Banner() []string {
	data := "data " + l.data
	if l.tempData {
		data += " (temporary directory, kept after exit)"
	}
	lines := []string{l.redisNote, data}
	if l.hosts != nil {
		lines = append(lines, l.hostsBanner())
	}
	if len(l.cfg.Unsafe) > 0 {
		lines = append(lines, "WARNING: unsafe switches on ("+strings.Join(l.cfg.Unsafe, ", ")+"): the nodes break Raft's guarantees on purpose, for teaching and for testing the checkers")
	}
	for _, m := range l.Members() {
		if m.Kind == KindNode {
			lines = append(lines, fmt.Sprintf("node %s grpc %s http %s", m.Name, m.GRPC, m.HTTP))
		}
	}
	lines = append(lines, fmt.Sprintf("redis %s (%s)", "redis://"+l.redisAddr, l.redisKind))
	for _, m := range l.Members() {
		if m.Kind == KindGateway {
			lines = append(lines, fmt.Sprintf("gateway %s %s", m.Name, m.WS))
		}
	}
	for _, u := range l.StudentURLs() {
		lines = append(lines, "student "+u)
	}
	return append(lines, "dashboard "+l.dashboard)
}

// memberEnv is the environment every member starts with: the lab's, and
// the cluster's secrets, which stay off the command lines (ps shows those
// to every local user; a process's environment only to its owner).
func (l *Lab) memberEnv() []string {
	return append(slices.Clone(l.cfg.Env), "MPIM_SECRET="+l.cfg.Secret, "MPIM_REDIS_PASSWORD="+l.redisPassword)
}

// CredentialsDir holds the cluster's mutual TLS credentials (for a member
// started by hand, e.g. a node joining: --tls-dir).
func (l *Lab) CredentialsDir() string { return l.tlsDir }

// RedisPassword is the password the lab's Redis requires (for tools and
// tests on this machine; the HTTP API never shows it).
func (l *Lab) RedisPassword() string { return l.redisPassword }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
