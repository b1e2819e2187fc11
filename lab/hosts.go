package lab

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"mpim/agent"
	"mpim/chaos/hostnet"
	"mpim/chaos/netfault"
	"mpim/internal/clustertls"
)

// EventAgentLost: the lab lost an agent (Member names the host): its
// members are reported exited, and no run may return a verdict.
const EventAgentLost EventKind = "agent-lost"

// hostsLab is what a lab spread over hosts (Config.Hosts) adds: a client
// per agent, what each agent said of itself, where every member runs,
// and the hosts the lab lost.
type hostsLab struct {
	inv     *agent.Inventory
	clients map[string]*agent.Client
	info    map[string]agent.Info
	place   map[string]string // member -> host
	ip      map[string]string // host -> IPv4 its packets carry
	dials   []hostnet.Dial
	// prefix names this lab's members on the agents (prefix-n1), so that
	// labs sharing agents, one after another or at once, never share a
	// member or its data: it derives from the control machine and the
	// lab's data directory, so a lab started again on the same --data
	// finds its members' data again.
	prefix string

	mu   sync.Mutex
	lost map[string]string // host -> why, since when
}

// Per-host ports: members of one host share its address, so each member
// has ports of its own (node nI: 7100+I Raft, 7200+I gRPC, 7300+I HTTP;
// gateway gI: 7500+I; Redis 16379). The agent listens on 7400.
func hostPort(role int, member string) int {
	i, _ := strconv.Atoi(member[1:])
	switch role {
	case roleRedis:
		return 16379
	case roleRaft:
		return 7100 + i
	case roleGRPC:
		return 7200 + i
	case roleHTTP:
		return 7300 + i
	default:
		return 7500 + i
	}
}

// prepareHosts reaches every agent with the inventory's credentials and
// records what each said, so that a wrong address, a refused credential
// or an agent that cannot run members fails the start with its reason.
func (l *Lab) prepareHosts(ctx context.Context) error {
	inv := l.cfg.Hosts
	creds, err := clustertls.Load(inv.Credentials)
	if err != nil {
		return fmt.Errorf("lab: --hosts: %w", err)
	}
	place, err := inv.Placement(l.cfg.Nodes, l.cfg.Gateways)
	if err != nil {
		return fmt.Errorf("lab: --hosts: %w", err)
	}
	h := &hostsLab{inv: inv, clients: map[string]*agent.Client{}, info: map[string]agent.Info{}, place: place,
		ip: map[string]string{}, lost: map[string]string{}, prefix: labPrefix(l.data)}
	var errs []error
	for _, host := range inv.Hosts {
		c := agent.NewClient(host.Name, host.Agent, creds)
		ictx, cancel := context.WithTimeout(ctx, 5*time.Second)
		info, err := c.Info(ictx)
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("host %s: %w", host.Name, err))
			continue
		}
		if !info.Members {
			errs = append(errs, fmt.Errorf("host %s: its agent runs no members (--no-members)", host.Name))
			continue
		}
		ip, err := resolve(host.Address)
		if err != nil {
			errs = append(errs, fmt.Errorf("host %s: address %s: %w", host.Name, host.Address, err))
			continue
		}
		h.clients[host.Name], h.info[host.Name], h.ip[host.Name] = c, info, ip
		if !info.Nftables {
			l.log.Warn("an agent cannot load nftables rules: network faults touching its host are refused", "host", host.Name, "why", info.Why["nftables"])
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("lab: --hosts: %w", err)
	}
	l.hosts = h
	l.tlsDir = inv.Credentials
	// Redis runs on its host: redis-server if that host has it.
	redisHost := place["redis"]
	switch {
	case l.cfg.Redis == RedisEmbedded:
		l.redisKind, l.redisNote = RedisMiniredis, "redis: embedded miniredis on host "+redisHost+" (--redis embedded)"
	case h.info[redisHost].Redis:
		l.redisKind, l.redisNote = RedisServer, "redis: redis-server on host "+redisHost+" (found on its PATH)"
	default:
		l.redisKind, l.redisNote = RedisMiniredis, "redis: embedded miniredis on host "+redisHost+" (no redis-server binary found there)"
	}
	return nil
}

// labPrefix is the prefix of a lab's member names on the agents.
func labPrefix(data string) string {
	host, _ := os.Hostname()
	sum := sha256.Sum256([]byte(host + "\x00" + data))
	return "l" + hex.EncodeToString(sum[:4])
}

// remote is member's name on its agent.
func (h *hostsLab) remote(member string) string { return h.prefix + "-" + member }

func resolve(addr string) (string, error) {
	if ip := net.ParseIP(addr); ip != nil && ip.To4() != nil {
		return ip.String(), nil
	}
	ips, err := net.LookupIP(addr)
	if err != nil {
		return "", err
	}
	for _, ip := range ips {
		if ip.To4() != nil {
			return ip.String(), nil
		}
	}
	return "", fmt.Errorf("no IPv4 address (the fault rules match IPv4 sources)")
}

// hostAddr is member's listen address for role on its host.
func (h *hostsLab) hostAddr(member string, role int) string {
	host, _ := h.inv.Host(h.place[member])
	return net.JoinHostPort(host.Address, strconv.Itoa(hostPort(role, member)))
}

// dataOf is member's data directory on its host.
func (h *hostsLab) dataOf(member string) string {
	return filepath.Join(h.info[h.place[member]].Data, h.remote(member))
}

// startHostsNetwork builds the fault layer from the planned dials, once every
// member is planned, and clears whatever rules the hosts still hold.
func (l *Lab) startHostsNetwork() error {
	h := l.hosts
	topo := hostnet.Topology{Host: h.place, Addr: h.ip, Dials: h.dials}
	push := func(host string, rules []hostnet.Rule) error {
		c, ok := h.clients[host]
		if !ok {
			return fmt.Errorf("no agent for host %s", host)
		}
		if !h.info[host].Nftables {
			if len(rules) == 0 {
				return nil
			}
			return fmt.Errorf("%w: host %s cannot load nftables rules (%s)", hostnet.ErrUnsupported, host, h.info[host].Why["nftables"])
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return c.SetRules(ctx, rules)
	}
	n := hostnet.New(topo, push)
	l.network = &network{Network: netfault.New(netfault.Hosts(n)), hosts: n, planned: l.network.planned}
	return n.Heal()
}

// link records, with hosts, that from dials to at target (its port is
// what the rules match) and returns target.
func (h *hostsLab) link(from, to, target string) string {
	_, p, _ := net.SplitHostPort(target)
	port, _ := strconv.Atoi(p)
	h.dials = append(h.dials, hostnet.Dial{From: from, To: to, Port: port})
	return target
}

// startRemote asks m's agent to start it and waits until it is ready;
// a watcher then follows the process until it ends.
func (l *Lab) startRemote(ctx context.Context, m *member) error {
	c := l.hosts.clients[m.host]
	var env []string
	for _, e := range m.env {
		if strings.HasPrefix(e, "MPIM_") {
			env = append(env, e)
		}
	}
	req := agent.StartRequest{Program: m.program, Args: m.args, Env: env, ReadyPrefix: m.readyPrefix,
		HealthURL: m.healthURL, PingAddr: m.pingAddr, ReadyTimeoutMS: int(l.cfg.ReadyTimeout / time.Millisecond)}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	m.state, m.since = StateStarting, time.Now()
	l.mu.Unlock()
	pid, err := c.Start(ctx, l.hosts.remote(m.info.Name), req)
	if err != nil {
		l.mu.Lock()
		m.state, m.since = StateExited, time.Now()
		l.mu.Unlock()
		l.emit(Event{Kind: EventExited, Member: m.info.Name, Detail: err.Error()})
		if agent.IsUnreachable(err) {
			l.agentLost(m.host, err)
		}
		if errors.Is(err, agent.ErrExitedEarly) {
			err = fmt.Errorf("%w: %w", errExitedEarly, err)
		}
		return fmt.Errorf("%w: %s %s on host %s: %w", ErrNotReady, m.info.Kind, m.info.Name, m.host, err)
	}
	p := &process{pid: pid, done: make(chan struct{})}
	l.mu.Lock()
	m.proc, m.state, m.since = p, StateRunning, time.Now()
	l.wg.Add(1)
	l.mu.Unlock()
	go func() {
		defer l.wg.Done()
		l.exited(m, p, l.followRemote(c, m, p))
	}()
	l.emit(Event{Kind: EventStarted, Member: m.info.Name, PID: pid})
	return nil
}

// followRemote long-polls m's agent until process p ends and returns how
// it ended. An agent that cannot be reached for 5 s is lost: the member
// counts as exited, with the reason.
func (l *Lab) followRemote(c *agent.Client, m *member, p *process) error {
	var since time.Time
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		r, err := c.Wait(ctx, l.hosts.remote(m.info.Name), p.pid)
		cancel()
		switch {
		case err == nil && r.Exited:
			if r.Status == "exit status 0" {
				return nil
			}
			return errors.New(r.Status)
		case err == nil:
			since = time.Time{}
			continue
		}
		if since.IsZero() {
			since = time.Now()
		}
		if time.Since(since) > 5*time.Second || !agent.IsUnreachable(err) {
			l.agentLost(m.host, err)
			return fmt.Errorf("lost with its agent: %w", err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// agentLost records that host's agent could not be reached.
func (l *Lab) agentLost(host string, err error) {
	h := l.hosts
	h.mu.Lock()
	_, known := h.lost[host]
	if !known {
		h.lost[host] = fmt.Sprintf("%s (since %s)", err, time.Now().Format("15:04:05"))
	}
	h.mu.Unlock()
	l.mu.Lock()
	closed := l.closed
	l.mu.Unlock()
	if !known && !closed {
		l.emit(Event{Kind: EventAgentLost, Member: host, Detail: err.Error()})
	}
}

// Lost says which agents the lab could not reach while it ran (nil: none,
// or a lab on one machine). A run that lost an agent lost control of part
// of its cluster, and must not return a verdict.
func (l *Lab) Lost() error {
	if l.hosts == nil {
		return nil
	}
	h := l.hosts
	h.mu.Lock()
	defer h.mu.Unlock()
	var hosts []string
	for host := range h.lost {
		hosts = append(hosts, host)
	}
	slices.Sort(hosts)
	var errs []error
	for _, host := range hosts {
		errs = append(errs, fmt.Errorf("agent of host %s lost: %s", host, h.lost[host]))
	}
	return errors.Join(errs...)
}

// actRemote kills, stops, pauses or resumes m through its agent.
func (l *Lab) actRemote(m *member, action string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := l.hosts.clients[m.host].Act(ctx, l.hosts.remote(m.info.Name), action)
	if agent.IsUnreachable(err) {
		l.agentLost(m.host, err)
	}
	if err != nil {
		return fmt.Errorf("lab: %s %s on host %s: %w", action, m.info.Name, m.host, err)
	}
	return nil
}

// hostsBanner is the banner's line naming the hosts.
func (l *Lab) hostsBanner() string {
	var parts []string
	for _, host := range l.hosts.inv.Hosts {
		var on []string
		for _, m := range l.memberNames() {
			if l.hosts.place[m] == host.Name {
				on = append(on, m)
			}
		}
		parts = append(parts, fmt.Sprintf("%s (agent %s: %s)", host.Name, host.Agent, strings.Join(on, " ")))
	}
	return "hosts " + strings.Join(parts, ", ")
}
