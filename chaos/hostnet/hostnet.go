// Package hostnet is the fault layer of a lab spread over hosts: members
// share their host's address, so a fault between two members becomes
// nftables rules on the input hook of the receiving host, matched by the
// sending host's address and by the member's port.
//
// # From members to packets
//
// Every connection between two members is one the lab planned: member X
// dials member Y on one of Y's ports p (a gateway dials a node's gRPC
// port, a node another node's Raft port, both dial Redis). Its packets
// fall in two classes, seen on the receiving host's input:
//
//	X→Y   saddr host(X)  tcp dport p   (on host(Y))
//	Y→X   saddr host(Y)  tcp sport p   (on host(X))
//
// A rule of one class acts on every direction in that class: two members
// of one host that both dial Y on p (a node and its gateway dialing
// Redis) cannot be told apart by an address and a port. Compile therefore
// checks, rule by rule, that every direction a rule covers carries the
// same fault, and refuses the fault otherwise, naming the members to
// place on different hosts. A lab with one member per host can apply
// every fault; the default placement (node nI and gateway gI together)
// applies every shape that keeps a gateway with its first node, which is
// what the partition shapes do.
//
// Dropping on input, not output, keeps the sender's system calls from
// failing with EPERM, which a real cut never does: the connection stalls
// and TCP's own retransmissions decide, as over a real network.
package hostnet

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"mpim/chaos/proxy"
)

// ErrUnsupported: the fault is valid but cannot be applied on these
// hosts (members that share a host and would be cut apart, or delay).
var ErrUnsupported = errors.New("hostnet: unsupported")

// Dial is one planned connection: member From dials member To on Port.
type Dial struct {
	From, To string
	Port     int
}

// Topology is where the members are and who dials whom.
type Topology struct {
	// Host maps a member to its host's name; Addr a host's name to the
	// IPv4 address its packets carry.
	Host  map[string]string
	Addr  map[string]string
	Dials []Dial
}

// Rule is one input rule of a host: drop Loss percent (100: every packet)
// of the TCP packets from Src with the destination port DPort, or the
// source port SPort (one of the two is set).
type Rule struct {
	Src   string `json:"src"`
	DPort int    `json:"dport,omitempty"`
	SPort int    `json:"sport,omitempty"`
	Loss  int    `json:"loss"`
}

// class is a set of packets one rule can match.
type class struct {
	host string // where the rule goes (the receiving host)
	Rule        // Loss unused in the key
}

// Fault is what is in force on one direction.
type Fault struct {
	Held bool
	Loss int // percent
}

func (f Fault) percent() int {
	if f.Held {
		return 100
	}
	return f.Loss
}

// Dir is a direction of travel between two members.
type Dir struct{ From, To string }

// Compile turns the directional faults into each host's rules, or
// refuses them when a rule would cut a direction the faults leave open
// (or cut two directions differently). Every host of the topology gets an
// entry, empty when nothing reaches it.
func (t Topology) Compile(faults map[Dir]Fault) (map[string][]Rule, error) {
	type cover struct {
		dirs []Dir
		pct  map[int][]Dir
	}
	classes := map[class]*cover{}
	var order []class
	add := func(c class, d Dir) {
		cv := classes[c]
		if cv == nil {
			cv = &cover{pct: map[int][]Dir{}}
			classes[c] = cv
			order = append(order, c)
		}
		if slices.Contains(cv.dirs, d) {
			return
		}
		cv.dirs = append(cv.dirs, d)
		p := faults[d].percent()
		cv.pct[p] = append(cv.pct[p], d)
	}
	for _, d := range t.Dials {
		hx, hy := t.Host[d.From], t.Host[d.To]
		if hx == "" || hy == "" {
			continue // a member outside the inventory (an external Redis)
		}
		add(class{host: hy, Rule: Rule{Src: t.Addr[hx], DPort: d.Port}}, Dir{d.From, d.To})
		add(class{host: hx, Rule: Rule{Src: t.Addr[hy], SPort: d.Port}}, Dir{d.To, d.From})
	}
	out := map[string][]Rule{}
	for _, h := range t.hosts() {
		out[h] = []Rule{}
	}
	var errs []error
	for _, c := range order {
		cv := classes[c]
		if len(cv.pct) > 1 {
			errs = append(errs, t.conflict(c, cv.pct))
			continue
		}
		for p := range cv.pct {
			if p > 0 {
				r := c.Rule
				r.Loss = p
				out[c.host] = append(out[c.host], r)
			}
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%w: %w", ErrUnsupported, errors.Join(errs...))
	}
	return out, nil
}

// conflict explains a rule that would treat two of its directions alike
// although the faults treat them differently.
func (t Topology) conflict(c class, pct map[int][]Dir) error {
	var parts []string
	keys := make([]int, 0, len(pct))
	for p := range pct {
		keys = append(keys, p)
	}
	slices.Sort(keys)
	for _, p := range keys {
		var ds []string
		for _, d := range pct[p] {
			ds = append(ds, d.From+"→"+d.To)
		}
		what := "open"
		switch {
		case p == 100:
			what = "cut"
		case p > 0:
			what = strconv.Itoa(p) + "% lost"
		}
		parts = append(parts, strings.Join(ds, ", ")+" "+what)
	}
	port := "port " + strconv.Itoa(c.DPort)
	if c.SPort != 0 {
		port = "source port " + strconv.Itoa(c.SPort)
	}
	return fmt.Errorf("on host %s, packets from %s with %s are %s: members that share a host and dial the same port cannot be cut apart by address; place them on different hosts (hosts.yaml place:)",
		c.host, c.Src, port, strings.Join(parts, " but "))
}

func (t Topology) hosts() []string {
	var hs []string
	for h := range t.Addr {
		hs = append(hs, h)
	}
	slices.Sort(hs)
	return hs
}

// Render is host's nftables table for rules: one transaction that
// replaces the whole table, so a change never opens the cut in between.
func Render(rules []Rule) string {
	var b strings.Builder
	b.WriteString("table inet mpim\ndelete table inet mpim\ntable inet mpim {\n\tchain in {\n\t\ttype filter hook input priority 0; policy accept;\n")
	for _, r := range rules {
		match := "tcp dport " + strconv.Itoa(r.DPort)
		if r.SPort != 0 {
			match = "tcp sport " + strconv.Itoa(r.SPort)
		}
		if r.Loss >= 100 {
			fmt.Fprintf(&b, "\t\tip saddr %s %s drop\n", r.Src, match)
		} else {
			fmt.Fprintf(&b, "\t\tip saddr %s %s numgen random mod 100 < %d drop\n", r.Src, match, r.Loss)
		}
	}
	b.WriteString("\t}\n}\n")
	return b.String()
}

// Validate checks a rule received over the wire before it is rendered.
func (r Rule) Validate() error {
	ip := net.ParseIP(r.Src)
	switch {
	case ip == nil || ip.To4() == nil:
		return fmt.Errorf("hostnet: rule source %q is not an IPv4 address", r.Src)
	case (r.DPort == 0) == (r.SPort == 0):
		return fmt.Errorf("hostnet: a rule names exactly one of dport and sport (got %d, %d)", r.DPort, r.SPort)
	case r.DPort < 0 || r.DPort > 65535 || r.SPort < 0 || r.SPort > 65535:
		return fmt.Errorf("hostnet: port out of range in %+v", r)
	case r.Loss < 1 || r.Loss > 100:
		return fmt.Errorf("hostnet: loss %d%%: use 1 to 100", r.Loss)
	}
	return nil
}

// Push loads a host's rules (through its agent).
type Push func(host string, rules []Rule) error

// Net is the directional faults in force on a Topology, applied through
// Push. It has the methods of the lab's fault-layer backends.
type Net struct {
	topo Topology
	push Push

	mu     sync.Mutex
	faults map[Dir]Fault
	loaded map[string]string // host -> rendered table last pushed
	batch  bool
	closed bool
}

// New returns the fault layer of topo; nothing is pushed until a fault
// changes.
func New(topo Topology, push Push) *Net {
	return &Net{topo: topo, push: push, faults: map[Dir]Fault{}, loaded: map[string]string{}}
}

// Hold drops every packet travelling from a to b.
func (n *Net) Hold(a, b string) error {
	return n.change(func() { f := n.faults[Dir{a, b}]; f.Held = true; n.faults[Dir{a, b}] = f })
}

// Release lets packets from a to b through again.
func (n *Net) Release(a, b string) error {
	return n.change(func() { f := n.faults[Dir{a, b}]; f.Held = false; n.faults[Dir{a, b}] = f })
}

// SetLoss drops percent of the packets travelling from a to b (0 clears).
func (n *Net) SetLoss(a, b string, percent int) error {
	return n.change(func() { f := n.faults[Dir{a, b}]; f.Loss = min(max(percent, 0), 100); n.faults[Dir{a, b}] = f })
}

// SetDelay is refused: it needs netem on every host and per-link netem
// filters, which are not built (and this machine's kernel lacks netem).
func (n *Net) SetDelay(a, b string, d, jitter time.Duration) error {
	if d == 0 && jitter == 0 {
		return nil
	}
	return fmt.Errorf("%w: delay across hosts needs tc netem with per-link filters on each host, which is not built; use the one-machine lab's proxy backend for delay", ErrUnsupported)
}

// Heal removes every rule on every host.
func (n *Net) Heal() error {
	n.mu.Lock()
	clear(n.faults)
	n.mu.Unlock()
	return n.apply(nil)
}

// change applies fn to the faults and pushes the result, unless a batch
// is open; a change the hosts cannot express is undone.
func (n *Net) change(fn func()) error {
	n.mu.Lock()
	before := clone(n.faults)
	fn()
	for d, f := range n.faults {
		if !f.Held && f.Loss == 0 {
			delete(n.faults, d)
		}
	}
	batch := n.batch
	n.mu.Unlock()
	if batch {
		return nil
	}
	return n.apply(before)
}

// Batch runs fn, whose changes take effect together at its end: each
// host's table is rewritten once. If the result cannot be expressed, the
// faults in force before the batch stay.
func (n *Net) Batch(fn func() error) error {
	n.mu.Lock()
	before := clone(n.faults)
	n.batch = true
	n.mu.Unlock()
	err := fn()
	n.mu.Lock()
	n.batch = false
	n.mu.Unlock()
	return errors.Join(err, n.apply(before))
}

// apply compiles the faults in force and pushes every host whose table
// changed. If they cannot be compiled, the faults go back to before (nil:
// nothing to go back to) and nothing is pushed.
func (n *Net) apply(before map[Dir]Fault) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil
	}
	rules, err := n.topo.Compile(n.faults)
	if err != nil {
		if before != nil {
			n.faults = before
		}
		return err
	}
	var errs []error
	for _, h := range n.topo.hosts() {
		table := Render(rules[h])
		if n.loaded[h] == table {
			continue
		}
		if err := n.push(h, rules[h]); err != nil {
			delete(n.loaded, h) // unknown: push it again next time
			errs = append(errs, fmt.Errorf("host %s: %w", h, err))
			continue
		}
		n.loaded[h] = table
	}
	return errors.Join(errs...)
}

// Faults lists the directions with a fault, in the proxy backend's shape.
func (n *Net) Faults() []proxy.DirFault {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []proxy.DirFault
	for d, f := range n.faults {
		out = append(out, proxy.DirFault{From: d.From, To: d.To, Held: f.Held, LossPercent: f.Loss})
	}
	proxy.SortDirFaults(out)
	return out
}

// Close removes every rule it loaded and stops pushing.
func (n *Net) Close() error {
	n.mu.Lock()
	clear(n.faults)
	n.mu.Unlock()
	err := n.apply(nil)
	n.mu.Lock()
	n.closed = true
	n.mu.Unlock()
	return err
}

func clone(m map[Dir]Fault) map[Dir]Fault {
	out := make(map[Dir]Fault, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
