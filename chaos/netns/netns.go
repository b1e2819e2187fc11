// Package netns is the lab's real-host fault layer: each member runs in a
// network namespace of its own, with its own address on a bridge, and
// faults are nftables rules in the receiving member's namespace, so that
// packets really are dropped on the wire and TCP's own retransmissions,
// timeouts and backoff decide what the applications see.
//
// # Layout
//
// One Net owns, for a lab whose process id is P:
//
//	mpimP-hub          a namespace holding the bridge br0
//	mpimP-<member>     one namespace per member, eth0 = 10.213.X.i/24
//	mhP (host)         a veth in the lab's own namespace, 10.213.X.254/24,
//	                   so that the lab, its HTTP API and the chaos clients
//	                   reach every member
//
// X is picked at random among the /24s no interface on the host uses.
// Namespaces of labs whose process is gone are removed by New.
//
// # Faults
//
// A fault on the direction a→b is a rule in b's namespace, on the input
// hook: `ip saddr A drop` holds it (a blackhole: nothing is answered, TCP
// retransmits until heal or its own timeout), `ip saddr A numgen random mod
// 100 < N drop` loses N % of its packets. Dropping on the receiver's input,
// not the sender's output, keeps the sender's system calls from failing
// with EPERM, which a real cut never does. Each change rewrites the
// member's whole table in one nft transaction. Delay needs tc netem; the
// probe tells whether the kernel has it, and without it SetDelay fails with
// ErrUnsupported.
package netns

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"mpim/chaos/proxy"
)

// ErrUnsupported: this host cannot apply the fault in this backend.
var ErrUnsupported = errors.New("netns: unsupported")

// Support is what Probe found this host can do.
type Support struct {
	// Netns: namespaces and veth pairs can be created (root, iproute2).
	Netns bool `json:"netns"`
	// Nftables: an nft table can be loaded inside a namespace.
	Nftables bool `json:"nftables"`
	// Netem: the kernel has the netem qdisc (tc delay).
	Netem bool `json:"netem"`
	// Why holds, per missing capability, the error that showed it.
	Why map[string]string `json:"why,omitempty"`
}

// OK reports whether partitions, one-way cuts and loss work.
func (s Support) OK() bool { return s.Netns && s.Nftables }

// Err explains what is missing, or nil.
func (s Support) Err() error {
	if s.OK() {
		return nil
	}
	var parts []string
	for _, k := range []string{"netns", "nftables"} {
		if w, ok := s.Why[k]; ok {
			parts = append(parts, k+": "+w)
		}
	}
	return fmt.Errorf("%w: the netns backend needs network namespaces and nftables (%s); use the proxy backend", ErrUnsupported, strings.Join(parts, "; "))
}

// Probe tries, in a throwaway namespace, each thing the backend needs:
// create a namespace and a veth, load an nft rule, add a netem qdisc. It
// decides by doing, not by asking whether the process is root.
func Probe() Support {
	s := Support{Why: map[string]string{}}
	ns := fmt.Sprintf("mpim%d-probe", os.Getpid())
	defer run("ip", "netns", "del", ns)
	if err := run("ip", "netns", "add", ns); err != nil {
		s.Why["netns"] = err.Error()
		return s
	}
	if err := run("ip", "-n", ns, "link", "add", "pa", "type", "veth", "peer", "name", "pb"); err != nil {
		s.Why["netns"] = err.Error()
		return s
	}
	s.Netns = true
	if err := nft(ns, "table inet mpimprobe { chain in { type filter hook input priority 0; policy accept; ip saddr 10.0.0.1 numgen random mod 100 < 5 drop\n}\n}\n"); err != nil {
		s.Why["nftables"] = err.Error()
	} else {
		s.Nftables = true
	}
	if err := run("ip", "-n", ns, "link", "set", "pa", "up"); err == nil {
		if err := run("ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", "pa", "root", "netem", "delay", "10ms"); err != nil {
			s.Why["netem"] = err.Error()
		} else {
			s.Netem = true
		}
	}
	return s
}

// dir is a direction of travel.
type dir struct{ from, to string }

type fault struct {
	held bool
	loss int // percent
}

// Net is one lab's namespaces and the faults in force.
type Net struct {
	prefix  string // mpimP
	subnet  string // 10.213.X.
	hostIf  string
	support Support

	mu      sync.Mutex
	members map[string]int // name -> last octet
	order   []string
	faults  map[dir]fault
	closed  bool
	// batch, while Batch runs, collects the members whose rules changed,
	// so that each is reloaded once at the end.
	batch map[string]bool
}

// New creates the hub namespace, its bridge and the host's veth on a free
// /24, after removing the namespaces of labs that are gone.
func New() (*Net, error) {
	s := Probe()
	if err := s.Err(); err != nil {
		return nil, err
	}
	removeStale()
	n := &Net{prefix: fmt.Sprintf("mpim%d", os.Getpid()), support: s, members: map[string]int{}, faults: map[dir]fault{}}
	n.hostIf = "mh" + strconv.Itoa(os.Getpid())
	octet, err := freeSubnet()
	if err != nil {
		return nil, err
	}
	n.subnet = fmt.Sprintf("10.213.%d.", octet)
	hub := n.ns("hub")
	steps := [][]string{
		{"ip", "netns", "add", hub},
		{"ip", "-n", hub, "link", "add", "br0", "type", "bridge"},
		{"ip", "-n", hub, "link", "set", "br0", "up"},
		{"ip", "link", "add", n.hostIf, "type", "veth", "peer", "name", "hostport", "netns", hub},
		{"ip", "-n", hub, "link", "set", "hostport", "master", "br0", "up"},
		{"ip", "addr", "add", n.subnet + "254/24", "dev", n.hostIf},
		{"ip", "link", "set", n.hostIf, "up"},
	}
	for _, st := range steps {
		if err := run(st[0], st[1:]...); err != nil {
			n.Close()
			return nil, err
		}
	}
	return n, nil
}

// Support is what the probe found.
func (n *Net) Support() Support { return n.support }

func (n *Net) ns(member string) string { return n.prefix + "-" + member }

// Add creates member's namespace and its veth on the bridge, and returns
// the member's address.
func (n *Net) Add(member string) (string, error) {
	n.mu.Lock()
	octet := len(n.order) + 1
	if octet > 250 {
		n.mu.Unlock()
		return "", fmt.Errorf("netns: more than 250 members")
	}
	n.members[member] = octet
	n.order = append(n.order, member)
	n.mu.Unlock()
	ns, hub := n.ns(member), n.ns("hub")
	port := "v" + strconv.Itoa(octet) + "-" + strconv.Itoa(os.Getpid()) // peer name in the hub, <= 15 bytes
	addr := n.subnet + strconv.Itoa(octet)
	steps := [][]string{
		{"ip", "netns", "add", ns},
		{"ip", "-n", ns, "link", "set", "lo", "up"},
		{"ip", "-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", port, "netns", hub},
		{"ip", "-n", hub, "link", "set", port, "master", "br0", "up"},
		{"ip", "-n", ns, "addr", "add", addr + "/24", "dev", "eth0"},
		{"ip", "-n", ns, "link", "set", "eth0", "up"},
	}
	for _, st := range steps {
		if err := run(st[0], st[1:]...); err != nil {
			return "", fmt.Errorf("netns: add %s: %w", member, err)
		}
	}
	return addr, n.load(member)
}

// Addr is member's address.
func (n *Net) Addr(member string) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.subnet + strconv.Itoa(n.members[member])
}

// Command wraps a member's command line so that it runs in its namespace.
func (n *Net) Command(member, path string, args []string) (string, []string) {
	ip, err := exec.LookPath("ip")
	if err != nil {
		ip = "ip"
	}
	return ip, append([]string{"netns", "exec", n.ns(member), path}, args...)
}

// Hold drops every packet travelling from a to b.
func (n *Net) Hold(a, b string) error {
	return n.change(b, func() { f := n.faults[dir{a, b}]; f.held = true; n.faults[dir{a, b}] = f })
}

// Release lets packets from a to b through again.
func (n *Net) Release(a, b string) error {
	return n.change(b, func() { f := n.faults[dir{a, b}]; f.held = false; n.faults[dir{a, b}] = f })
}

// SetLoss drops percent of the packets travelling from a to b (0 clears).
func (n *Net) SetLoss(a, b string, percent int) error {
	return n.change(b, func() { f := n.faults[dir{a, b}]; f.loss = min(max(percent, 0), 100); n.faults[dir{a, b}] = f })
}

// SetDelay is not implemented: it needs netem, which the probe reports.
func (n *Net) SetDelay(a, b string, d, jitter time.Duration) error {
	if d == 0 && jitter == 0 {
		return nil
	}
	if !n.support.Netem {
		return fmt.Errorf("%w: delay needs the tc netem qdisc, which this kernel lacks (%s); use the proxy backend (--net proxy) for delay", ErrUnsupported, n.support.Why["netem"])
	}
	return fmt.Errorf("%w: delay in the netns backend is not built yet (this kernel has netem, but per-link netem filters are not); use --net proxy", ErrUnsupported)
}

// Heal removes every rule.
func (n *Net) Heal() error {
	n.mu.Lock()
	clear(n.faults)
	members := slices.Clone(n.order)
	n.mu.Unlock()
	var errs []error
	for _, m := range members {
		errs = append(errs, n.load(m))
	}
	return errors.Join(errs...)
}

// change applies a change to the fault table and reloads the rules of the
// member that receives the direction changed (at the end of a Batch).
func (n *Net) change(to string, fn func()) error {
	n.mu.Lock()
	if _, ok := n.members[to]; !ok {
		n.mu.Unlock()
		return nil // not a member with a namespace (e.g. an external Redis)
	}
	fn()
	for d, f := range n.faults {
		if !f.held && f.loss == 0 {
			delete(n.faults, d)
		}
	}
	if n.batch != nil {
		n.batch[to] = true
		n.mu.Unlock()
		return nil
	}
	n.mu.Unlock()
	return n.load(to)
}

// Batch runs fn, whose changes take effect together at its end: each
// member's table is rewritten once, so replacing a partition never opens
// the cut for the time dozens of nft runs take.
func (n *Net) Batch(fn func() error) error {
	n.mu.Lock()
	n.batch = map[string]bool{}
	n.mu.Unlock()
	err := fn()
	n.mu.Lock()
	dirty := n.batch
	n.batch = nil
	members := slices.Clone(n.order)
	n.mu.Unlock()
	errs := []error{err}
	for _, m := range members {
		if dirty[m] {
			errs = append(errs, n.load(m))
		}
	}
	return errors.Join(errs...)
}

// Ruleset is the nft table of member: its input rules for every direction
// that ends at it.
func (n *Net) Ruleset(member string) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var rules []string
	for _, from := range n.order {
		f, ok := n.faults[dir{from, member}]
		if !ok {
			continue
		}
		src := n.subnet + strconv.Itoa(n.members[from])
		switch {
		case f.held || f.loss >= 100:
			rules = append(rules, fmt.Sprintf("ip saddr %s drop", src))
		case f.loss > 0:
			rules = append(rules, fmt.Sprintf("ip saddr %s numgen random mod 100 < %d drop", src, f.loss))
		}
	}
	var b strings.Builder
	b.WriteString("table inet mpim\ndelete table inet mpim\ntable inet mpim {\n\tchain in {\n\t\ttype filter hook input priority 0; policy accept;\n")
	for _, r := range rules {
		b.WriteString("\t\t" + r + "\n")
	}
	b.WriteString("\t}\n}\n")
	return b.String()
}

func (n *Net) load(member string) error {
	n.mu.Lock()
	closed := n.closed
	n.mu.Unlock()
	if closed {
		return nil
	}
	return nft(n.ns(member), n.Ruleset(member))
}

// Faults lists the directions with a fault, in the proxy backend's shape.
func (n *Net) Faults() []proxy.DirFault {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []proxy.DirFault
	for d, f := range n.faults {
		out = append(out, proxy.DirFault{From: d.from, To: d.to, Held: f.held, LossPercent: f.loss})
	}
	proxy.SortDirFaults(out)
	return out
}

// Close deletes every namespace it created (which removes their veths and
// the host's) and is idempotent.
func (n *Net) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	members := slices.Clone(n.order)
	n.mu.Unlock()
	var errs []error
	for _, m := range append(members, "hub") {
		if err := run("ip", "netns", "del", n.ns(m)); err != nil && !strings.Contains(err.Error(), "No such file") {
			errs = append(errs, err)
		}
	}
	run("ip", "link", "del", n.hostIf) // gone with the hub already, normally
	return errors.Join(errs...)
}

// removeStale deletes the namespaces of labs whose process has exited.
func removeStale() {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		name, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		rest, ok := strings.CutPrefix(name, "mpim")
		if !ok {
			continue
		}
		pidStr, _, ok := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidStr)
		if !ok || err != nil || pid == os.Getpid() {
			continue
		}
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			continue // that lab is alive (or not ours to judge)
		}
		run("ip", "netns", "del", name)
		run("ip", "link", "del", "mh"+pidStr)
	}
}

// freeSubnet picks X such that no host interface has an address in
// 10.213.X.0/24.
func freeSubnet() (int, error) {
	used := map[int]bool{}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return 0, err
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok {
			if ip4 := ipn.IP.To4(); ip4 != nil && ip4[0] == 10 && ip4[1] == 213 {
				used[int(ip4[2])] = true
			}
		}
	}
	for range 1000 {
		x := 1 + rand.IntN(254)
		if !used[x] {
			return x, nil
		}
	}
	return 0, errors.New("netns: no free 10.213.X.0/24")
}

func run(name string, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// nft loads a ruleset inside namespace ns.
func nft(ns, ruleset string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(ruleset)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("nft in %s: %v: %s", ns, err, strings.TrimSpace(stderr.String()))
	}
	return nil
}
