// Package netfault is the network half of the fault layer: a Backend that
// holds, delays and loses the traffic between two members (the lab's TCP
// proxies, network namespaces with nftables, or nothing at all), and
// Network, which applies the vocabulary's network verbs — partition,
// oneway, delay, loss, heal — to a backend and remembers what is in force.
//
// Network knows nothing of processes or leaders: it receives faults
// already completed by their caller (package fault: Complete, and
// fault.Topology.Shape for partition shapes, with `leader` resolved), so
// the one-machine lab and a lab spread over hosts apply them alike.
package netfault

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"mpim/chaos/fault"
	"mpim/chaos/hostnet"
	"mpim/chaos/netns"
	"mpim/chaos/proxy"
)

// ErrUnsupported: the fault is valid but this backend cannot apply it.
var ErrUnsupported = errors.New("netfault: unsupported fault")

// Backend applies directional faults: Hold(a, b) stops the traffic from a
// to b, whichever side opened the connection.
type Backend interface {
	Hold(a, b string) error
	Release(a, b string) error
	SetDelay(a, b string, d, jitter time.Duration) error
	SetLoss(a, b string, percent int) error
	Heal() error
	// Faults lists the directional faults in force.
	Faults() []proxy.DirFault
	Close() error
	// Batch runs fn, whose changes take effect together at its end.
	Batch(fn func() error) error
}

// Proxy is the backend of the lab's TCP proxies (package proxy), whose
// operations cannot fail.
func Proxy(n *proxy.Net) Backend { return proxyBackend{n} }

type proxyBackend struct{ *proxy.Net }

func (p proxyBackend) Hold(a, b string) error    { p.Net.Hold(a, b); return nil }
func (p proxyBackend) Release(a, b string) error { p.Net.Release(a, b); return nil }
func (p proxyBackend) SetDelay(a, b string, d, j time.Duration) error {
	p.Net.SetDelay(a, b, d, j)
	return nil
}
func (p proxyBackend) SetLoss(a, b string, pct int) error { p.Net.SetLoss(a, b, pct); return nil }
func (p proxyBackend) Heal() error                        { p.Net.Heal(); return nil }

// Batch runs fn: each proxy change takes effect at once and costs
// nothing, so a batch is just the calls.
func (p proxyBackend) Batch(fn func() error) error { return fn() }

// Netns is the backend of network namespaces and nftables (package netns);
// what this host's kernel cannot do comes back as ErrUnsupported.
func Netns(n *netns.Net) Backend { return nsBackend{n} }

type nsBackend struct{ *netns.Net }

func (n nsBackend) SetDelay(a, b string, d, j time.Duration) error {
	err := n.Net.SetDelay(a, b, d, j)
	if errors.Is(err, netns.ErrUnsupported) {
		return fmt.Errorf("%w: %v", ErrUnsupported, err)
	}
	return err
}

// Hosts is the backend of a lab spread over hosts (package hostnet):
// faults the hosts' addresses cannot express, and delay, come back as
// ErrUnsupported, with nothing applied.
func Hosts(n *hostnet.Net) Backend { return hostsBackend{n} }

type hostsBackend struct{ *hostnet.Net }

func hostsErr(err error) error {
	if errors.Is(err, hostnet.ErrUnsupported) {
		return fmt.Errorf("%w: %v", ErrUnsupported, err)
	}
	return err
}

func (h hostsBackend) Hold(a, b string) error    { return hostsErr(h.Net.Hold(a, b)) }
func (h hostsBackend) Release(a, b string) error { return hostsErr(h.Net.Release(a, b)) }
func (h hostsBackend) SetLoss(a, b string, pct int) error {
	return hostsErr(h.Net.SetLoss(a, b, pct))
}
func (h hostsBackend) SetDelay(a, b string, d, j time.Duration) error {
	return hostsErr(h.Net.SetDelay(a, b, d, j))
}
func (h hostsBackend) Batch(fn func() error) error { return hostsErr(h.Net.Batch(fn)) }

// None is no fault layer at all (a lab started for benchmarks): members
// dial each other directly and every network fault is refused.
func None() Backend { return noBackend{} }

type noBackend struct{}

func (noBackend) refuse(verb string) error {
	return fmt.Errorf("%w: %s needs the fault layer, and this lab runs without it (started for benchmarks with NoFaultLayer)", ErrUnsupported, verb)
}
func (b noBackend) Hold(a, c string) error                         { return b.refuse("partition") }
func (b noBackend) Release(a, c string) error                      { return nil }
func (b noBackend) SetDelay(a, c string, d, j time.Duration) error { return b.refuse("delay") }
func (b noBackend) SetLoss(a, c string, pct int) error             { return b.refuse("loss") }
func (noBackend) Heal() error                                      { return nil }
func (noBackend) Faults() []proxy.DirFault                         { return nil }
func (noBackend) Close() error                                     { return nil }
func (noBackend) Batch(fn func() error) error                      { return fn() }

// Network is a backend and the network faults in force on it, in the
// vocabulary's spelling. Its methods are safe for concurrent use.
type Network struct {
	backend Backend
	mu      sync.Mutex
	// active are the network faults applied since the last heal.
	active []fault.Fault
}

// New returns the network of backend b, with no fault in force.
func New(b Backend) *Network { return &Network{backend: b} }

// Backend is the backend the network applies faults to.
func (n *Network) Backend() Backend { return n.backend }

// Apply applies one network fault, completed by the caller, among
// members (the names of every member, for a delay or loss that names one
// member: every link touching it). A new partition replaces the previous
// partition and any oneway; oneway, delay and loss add to what is in
// force; heal removes every network fault. A fault that partly failed
// stays listed as in force, and the error says what failed; listed says
// whether the fault is listed (false when it was refused as a whole).
func (n *Network) Apply(f fault.Fault, members []string) (listed bool, err error) {
	if f.Verb == fault.Heal {
		return false, n.Heal()
	}
	if _, none := n.backend.(noBackend); none {
		return false, noBackend{}.refuse(string(f.Verb))
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	before := n.active
	var errs []error
	try := func(err error) { errs = append(errs, err) }
	b := n.backend
	switch f.Verb {
	case fault.Partition:
		// A partition replaces the previous one (and any oneway): release
		// every hold, keep delays and losses.
		var kept []fault.Fault
		for _, a := range n.active {
			if a.Verb == fault.Delay || a.Verb == fault.Loss {
				kept = append(kept, a)
			}
		}
		n.active = kept
		// One batch: the old cut never opens before the new one closes.
		try(b.Batch(func() error {
			var errs []error
			for _, d := range b.Faults() {
				if d.Held {
					errs = append(errs, b.Release(d.From, d.To))
				}
			}
			for _, c := range f.CutPairs() {
				errs = append(errs, b.Hold(c[0], c[1]), b.Hold(c[1], c[0]))
			}
			return errors.Join(errs...)
		}))
	case fault.Oneway:
		try(b.Batch(func() error {
			var errs []error
			for _, from := range f.Groups[0] {
				for _, to := range f.Groups[1] {
					errs = append(errs, b.Hold(from, to))
				}
			}
			return errors.Join(errs...)
		}))
	case fault.Delay:
		d, j := time.Duration(f.MS)*time.Millisecond, time.Duration(f.Jitter)*time.Millisecond
		for i, p := range Pairs(f.Members, members) {
			err := b.SetDelay(p[0], p[1], d, j)
			if i == 0 && errors.Is(err, ErrUnsupported) {
				return false, err // the backend refuses delay as a whole
			}
			try(err)
			try(b.SetDelay(p[1], p[0], d, j))
		}
	case fault.Loss:
		try(b.Batch(func() error {
			var errs []error
			for _, p := range Pairs(f.Members, members) {
				errs = append(errs, b.SetLoss(p[0], p[1], f.Percent), b.SetLoss(p[1], p[0], f.Percent))
			}
			return errors.Join(errs...)
		}))
	default:
		return false, fmt.Errorf("netfault: %s is not a network fault", f.Verb)
	}
	if f.Verb != fault.Delay && errors.Is(errs[0], ErrUnsupported) {
		// The backend refused the batch as a whole and kept what was in
		// force before it (the hosts backend does).
		n.active = before
		return false, errs[0]
	}
	n.active = append(n.active, f)
	return true, errors.Join(errs...)
}

// Heal removes every network fault. On a failed heal some rules remain,
// and the faults stay listed.
func (n *Network) Heal() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	err := n.backend.Heal()
	if err == nil {
		n.active = nil
	}
	return err
}

// Faults are the network faults in force, in the vocabulary's spelling.
func (n *Network) Faults() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]string, len(n.active))
	for i, f := range n.active {
		out[i] = f.String()
	}
	return out
}

// Close closes the backend.
func (n *Network) Close() error { return n.backend.Close() }

// Pairs are the links a delay or loss names: one member means every link
// touching it (to each of members), two mean that link.
func Pairs(named, members []string) [][2]string {
	if len(named) == 2 {
		return [][2]string{{named[0], named[1]}}
	}
	var out [][2]string
	for _, m := range members {
		if m != named[0] {
			out = append(out, [2]string{named[0], m})
		}
	}
	return out
}
