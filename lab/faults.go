package lab

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"mpim/chaos/fault"
	"mpim/chaos/netns"
	"mpim/chaos/proxy"
)

// Fault events, beside the member lifecycle events.
const (
	// EventFault: a network fault was applied (Detail spells it).
	EventFault EventKind = "fault"
	// EventHeal: every network fault was removed.
	EventHeal EventKind = "heal"
)

// ErrUnsupported: the fault is valid but this backend cannot apply it.
var ErrUnsupported = errors.New("lab: unsupported fault")

// network is the lab's fault layer: a backend (a proxy per link between
// members, or a namespace per member), and the network faults in force, in
// the vocabulary's spelling.
type network struct {
	net backend
	// proxies is the proxy backend (nil with netns); ns the netns one.
	proxies *proxy.Net
	ns      *netns.Net
	// planned are the links the members were given (netns: their direct
	// addresses; the proxy backend lists its own).
	planned []proxy.LinkState
	mu      sync.Mutex
	// active are the network faults applied since the last heal.
	active []fault.Fault
	// downLeader remembers the node `pause leader` / `kill leader` hit, by
	// the verb that undoes it.
	downLeader map[fault.Verb]string
}

// backend applies directional faults: Hold(a, b) stops a→b traffic.
type backend interface {
	Hold(a, b string) error
	Release(a, b string) error
	SetDelay(a, b string, d, jitter time.Duration) error
	SetLoss(a, b string, percent int) error
	Heal() error
	Faults() []proxy.DirFault
	Close() error
	// Batch runs fn, whose changes take effect together at its end.
	Batch(fn func() error) error
}

// proxyBackend adapts proxy.Net, whose operations cannot fail.
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

// noBackend is the lab without a fault layer (Config.NoFaultLayer):
// members dial each other directly and every network fault is refused.
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

// nsBackend adapts netns.Net, whose unsupported faults become the lab's.
type nsBackend struct{ *netns.Net }

func (n nsBackend) SetDelay(a, b string, d, j time.Duration) error {
	return labUnsupported(n.Net.SetDelay(a, b, d, j))
}

func labUnsupported(err error) error {
	if errors.Is(err, netns.ErrUnsupported) {
		return fmt.Errorf("%w: %v", ErrUnsupported, err)
	}
	return err
}

// link returns the address member from must dial to reach member to (whose
// real address is target): the proxy of that link, or with netns the
// target itself (the namespaces' rules do the cutting).
func (l *Lab) link(from, to, target string) (string, error) {
	switch {
	case l.network.ns != nil:
		l.network.planned = append(l.network.planned, proxy.LinkState{From: from, To: to, Addr: target, Target: target})
		return target, nil
	case l.network.proxies == nil: // no fault layer
		return target, nil
	}
	lk, err := l.network.proxies.Link(from, to, target)
	if err != nil {
		return "", fmt.Errorf("lab: proxy %s->%s: %w", from, to, err)
	}
	return lk.Addr(), nil
}

// memberNames lists the lab's members: nodes, gateways, redis.
func (l *Lab) memberNames() []string {
	out := make([]string, 0, len(l.members))
	for _, m := range l.members {
		out = append(out, m.info.Name)
	}
	return out
}

// ApplyString parses and applies one fault, e.g. "partition n1 / n2".
func (l *Lab) ApplyString(ctx context.Context, s string) (fault.Fault, error) {
	f, err := fault.Parse(s)
	if err != nil {
		return f, err
	}
	return l.Apply(ctx, f)
}

// Apply applies one fault with the semantics of shared/spec/lab.md and
// returns it as applied (a partition's groups completed, `leader`
// resolved). A new partition replaces the previous partition; oneway and
// delay add to what is in force; heal removes every network fault but
// does not restart killed or resume paused members.
func (l *Lab) Apply(ctx context.Context, f fault.Fault) (fault.Fault, error) {
	f, err := f.Complete(l.memberNames())
	if err != nil {
		return f, err
	}
	for i, m := range f.Members {
		if m == fault.Leader {
			f.Members[i] = l.leaderFor(f.Verb)
		}
	}
	nw := l.network
	switch f.Verb {
	case fault.Kill:
		return f, l.Kill(f.Members[0])
	case fault.Restart:
		return f, l.Restart(ctx, f.Members[0])
	case fault.Pause:
		return f, l.Pause(f.Members[0])
	case fault.Resume:
		return f, l.Resume(f.Members[0])
	case fault.Heal:
		nw.mu.Lock()
		err := nw.net.Heal()
		if err == nil {
			nw.active = nil // on a failed heal some rules remain: keep listing them
		}
		nw.mu.Unlock()
		l.emit(Event{Kind: EventHeal, Detail: "heal"})
		return f, err
	case fault.Partition:
		if f.Shape != "" {
			groups, cuts, err := l.shape(f.Shape)
			if err != nil {
				return f, err
			}
			f.Groups, f.Cuts = groups, cuts
		}
	}
	if _, none := nw.net.(noBackend); none {
		return f, noBackend{}.refuse(string(f.Verb))
	}
	nw.mu.Lock()
	defer nw.mu.Unlock()
	var errs []error
	try := func(err error) { errs = append(errs, err) }
	switch f.Verb {
	case fault.Partition:
		// A partition replaces the previous one (and any oneway): release
		// every hold, keep delays and losses.
		var kept []fault.Fault
		for _, a := range nw.active {
			if a.Verb == fault.Delay || a.Verb == fault.Loss {
				kept = append(kept, a)
			}
		}
		nw.active = kept
		// One batch: the old cut never opens before the new one closes.
		try(nw.net.Batch(func() error {
			var errs []error
			for _, d := range nw.net.Faults() {
				if d.Held {
					errs = append(errs, nw.net.Release(d.From, d.To))
				}
			}
			for _, c := range f.CutPairs() {
				errs = append(errs, nw.net.Hold(c[0], c[1]), nw.net.Hold(c[1], c[0]))
			}
			return errors.Join(errs...)
		}))
	case fault.Oneway:
		try(nw.net.Batch(func() error {
			var errs []error
			for _, a := range f.Groups[0] {
				for _, b := range f.Groups[1] {
					errs = append(errs, nw.net.Hold(a, b))
				}
			}
			return errors.Join(errs...)
		}))
	case fault.Delay:
		d, j := time.Duration(f.MS)*time.Millisecond, time.Duration(f.Jitter)*time.Millisecond
		for _, p := range l.pairs(f.Members) {
			err := nw.net.SetDelay(p[0], p[1], d, j)
			if errors.Is(err, ErrUnsupported) {
				return f, err // the backend refuses delay as a whole
			}
			try(err)
			try(nw.net.SetDelay(p[1], p[0], d, j))
		}
	case fault.Loss:
		for _, p := range l.pairs(f.Members) {
			try(nw.net.SetLoss(p[0], p[1], f.Percent))
			try(nw.net.SetLoss(p[1], p[0], f.Percent))
		}
	}
	if err := errors.Join(errs...); err != nil {
		l.emit(Event{Kind: EventFault, Detail: f.String() + " (partly failed: " + err.Error() + ")"})
		nw.active = append(nw.active, f)
		return f, err
	}
	nw.active = append(nw.active, f)
	l.emit(Event{Kind: EventFault, Detail: f.String()})
	return f, nil
}

// leaderFor resolves `leader` for verb: resume and restart act on the node
// that `pause leader` / `kill leader` hit (by then another node leads);
// the other verbs act on the current leader.
func (l *Lab) leaderFor(verb fault.Verb) string {
	l.network.mu.Lock()
	defer l.network.mu.Unlock()
	switch verb {
	case fault.Resume, fault.Restart:
		if m := l.network.downLeader[verb]; m != "" {
			delete(l.network.downLeader, verb)
			return m
		}
		return l.leader()
	case fault.Pause, fault.Kill:
		m := l.leader()
		undo := map[fault.Verb]fault.Verb{fault.Pause: fault.Resume, fault.Kill: fault.Restart}[verb]
		if l.network.downLeader == nil {
			l.network.downLeader = map[fault.Verb]string{}
		}
		l.network.downLeader[undo] = m
		return m
	}
	return l.leader()
}

// pairs are the links a delay or loss names: one member means every link
// touching it, two mean that link.
func (l *Lab) pairs(members []string) [][2]string {
	if len(members) == 2 {
		return [][2]string{{members[0], members[1]}}
	}
	var out [][2]string
	for _, m := range l.memberNames() {
		if m != members[0] {
			out = append(out, [2]string{members[0], m})
		}
	}
	return out
}

// shape turns a partition shape into groups: shapes cut the nodes; each
// gateway stays with its first node; redis joins the side with the most
// nodes (tie: the side holding the lowest-numbered node). Shapes whose
// sides overlap (majorities-ring, bridge) also return the pairs they cut.
func (l *Lab) shape(s string) ([][]string, [][2]string, error) {
	var nodes []string
	for _, m := range l.members {
		if m.info.Kind == KindNode {
			nodes = append(nodes, m.info.Name)
		}
	}
	var sides [][]string
	switch {
	case s == "halves":
		if len(nodes) < 2 {
			return nil, nil, fmt.Errorf("lab: partition halves needs at least 2 nodes, the lab has %d", len(nodes))
		}
		small := len(nodes) / 2
		sides = [][]string{slices.Clone(nodes[:small]), slices.Clone(nodes[small:])}
	case strings.HasPrefix(s, "isolate:"):
		target := strings.TrimPrefix(s, "isolate:")
		if target == fault.Leader {
			target = l.leader()
		}
		if _, ok := l.byName[target]; !ok {
			return nil, nil, fmt.Errorf("lab: isolate:%s: no such member", target)
		}
		rest := []string{}
		for _, m := range l.memberNames() {
			if m != target {
				rest = append(rest, m)
			}
		}
		if !slices.Contains(nodes, target) {
			// Isolating a gateway or redis cuts just that member off.
			return [][]string{{target}, rest}, nil, nil
		}
		var others []string
		for _, n := range nodes {
			if n != target {
				others = append(others, n)
			}
		}
		sides = [][]string{{target}, others}
	case s == "majorities-ring":
		return l.majoritiesRing(nodes)
	case s == "bridge":
		return l.bridge(nodes)
	default:
		return nil, nil, fmt.Errorf("lab: unknown partition shape %q (shapes: %s)", s, strings.Join(fault.Shapes, ", "))
	}
	return l.placeOthers(sides), nil, nil
}

// majoritiesRing places the nodes on a ring in name order; each node
// reaches the nodes within ringReach of it, which is a majority, and no
// two nodes reach the same majority. Jepsen's nemesis of that name: every
// node can form a quorum, yet no two agree on which. A gateway reaches
// what its first node reaches; redis what n1 reaches (the side holding the
// lowest-numbered node, all sides being the same size).
func (l *Lab) majoritiesRing(nodes []string) ([][]string, [][2]string, error) {
	n := len(nodes)
	if n < 5 {
		return nil, nil, fmt.Errorf("lab: partition majorities-ring needs at least 5 nodes (with %d, some two nodes would see the same majority); this lab has %d", n, n)
	}
	majority := n/2 + 1
	reach := majority / 2 // = ceil((majority-1)/2): how far a node reaches on each side
	views := map[string]map[string]bool{}
	for i, a := range nodes {
		views[a] = map[string]bool{}
		for j, b := range nodes {
			d := (i - j + n) % n
			if min(d, n-d) <= reach {
				views[a][b] = true
			}
		}
	}
	return l.cutViews(nodes, views, func(side int) string { return nodes[side] })
}

// bridge splits the nodes in two halves around one bridge node (the middle
// one in name order) that reaches both; the halves do not reach each
// other. Gateways follow their first node; redis joins the first half
// (the sides tie on nodes once the bridge is counted in both; the first
// holds the lowest-numbered node).
func (l *Lab) bridge(nodes []string) ([][]string, [][2]string, error) {
	if len(nodes) < 3 {
		return nil, nil, fmt.Errorf("lab: partition bridge needs at least 3 nodes (two halves and a bridge); this lab has %d", len(nodes))
	}
	mid := len(nodes) / 2
	b := nodes[mid]
	left, right := slices.Clone(nodes[:mid]), slices.Clone(nodes[mid+1:])
	views := map[string]map[string]bool{}
	for _, half := range [][]string{left, right} {
		for _, a := range half {
			views[a] = map[string]bool{b: true}
			for _, c := range half {
				views[a][c] = true
			}
		}
	}
	views[b] = map[string]bool{}
	for _, c := range nodes {
		views[b][c] = true
	}
	return l.cutViews(nodes, views, func(int) string { return left[0] })
}

// cutViews turns what each node reaches into the pairs to cut. A gateway
// reaches what its first node reaches; redis reaches what the node
// redisWith names reaches. The groups returned name the sides for reports:
// one per node, holding it, its gateways, and redis on redisWith's side.
func (l *Lab) cutViews(nodes []string, views map[string]map[string]bool, redisWith func(int) string) ([][]string, [][2]string, error) {
	anchor := map[string]string{} // member -> the node whose view it has
	for _, n := range nodes {
		anchor[n] = n
	}
	groups := make([][]string, len(nodes))
	for i, n := range nodes {
		groups[i] = []string{n}
	}
	for _, m := range l.members {
		if m.info.Kind != KindGateway {
			continue
		}
		first := l.firstNode(m.info.Name)
		anchor[m.info.Name] = first
		i := slices.Index(nodes, first)
		groups[i] = append(groups[i], m.info.Name)
	}
	rn := redisWith(0)
	anchor["redis"] = rn
	i := slices.Index(nodes, rn)
	groups[i] = append(groups[i], "redis")
	reaches := func(a, b string) bool {
		// a node reaches b if b (or b's anchor node) is in a's view.
		return views[anchor[a]][anchor[b]]
	}
	var cuts [][2]string
	names := l.memberNames()
	for i, a := range names {
		for _, b := range names[i+1:] {
			if !reaches(a, b) || !reaches(b, a) {
				cuts = append(cuts, [2]string{a, b})
			}
		}
	}
	return groups, cuts, nil
}

// firstNode is the node gateway gI talks to first.
func (l *Lab) firstNode(gateway string) string {
	i, _ := strconv.Atoi(strings.TrimPrefix(gateway, "g"))
	return "n" + strconv.Itoa((i-1)%l.cfg.Nodes+1)
}

// placeOthers adds gateways to their first node's side and redis to the
// side with the most nodes (tie: the one with the lowest-numbered node).
func (l *Lab) placeOthers(sides [][]string) [][]string {
	sideOf := map[string]int{}
	for i, s := range sides {
		for _, n := range s {
			sideOf[n] = i
		}
	}
	for _, m := range l.members {
		if m.info.Kind == KindGateway {
			first := l.firstNode(m.info.Name)
			sides[sideOf[first]] = append(sides[sideOf[first]], m.info.Name)
		}
	}
	best := 0
	for i := range sides {
		if nodesIn(sides[i]) > nodesIn(sides[best]) ||
			(nodesIn(sides[i]) == nodesIn(sides[best]) && lowestNode(sides[i]) < lowestNode(sides[best])) {
			best = i
		}
	}
	sides[best] = append(sides[best], "redis")
	return sides
}

func nodesIn(side []string) int {
	n := 0
	for _, m := range side {
		if strings.HasPrefix(m, "n") {
			n++
		}
	}
	return n
}

func lowestNode(side []string) int {
	low := 1 << 30
	for _, m := range side {
		if i, err := strconv.Atoi(strings.TrimPrefix(m, "n")); err == nil && strings.HasPrefix(m, "n") && i < low {
			low = i
		}
	}
	return low
}

// Faults are the network faults in force, in the vocabulary's spelling.
func (l *Lab) Faults() []string {
	l.network.mu.Lock()
	defer l.network.mu.Unlock()
	out := make([]string, len(l.network.active))
	for i, f := range l.network.active {
		out[i] = f.String()
	}
	return out
}

// Links are the proxied links with their directional faults.
func (l *Lab) Links() []LinkState {
	faults := map[[2]string]proxy.DirFault{}
	for _, d := range l.network.net.Faults() {
		faults[[2]string{d.From, d.To}] = d
	}
	var out []LinkState
	links := l.network.planned
	if l.network.proxies != nil {
		links = l.network.proxies.Links()
	}
	for _, lk := range links {
		s := LinkState{LinkState: lk}
		fwd, back := faults[[2]string{lk.From, lk.To}], faults[[2]string{lk.To, lk.From}]
		s.Held = fwd.Held
		s.HeldBack = back.Held
		s.DelayMS = fwd.Delay.Milliseconds()
		s.DelayBackMS = back.Delay.Milliseconds()
		s.LossPercent = fwd.LossPercent
		s.LossBackPercent = back.LossPercent
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].From != out[j].From {
			return out[i].From < out[j].From
		}
		return out[i].To < out[j].To
	})
	return out
}

// LinkState is one link as the HTTP API shows it: Held means bytes from
// From to To are held, HeldBack the other direction.
type LinkState struct {
	proxy.LinkState
	Held        bool  `json:"held"`
	HeldBack    bool  `json:"held_back"`
	DelayMS     int64 `json:"delay_ms,omitempty"`
	DelayBackMS int64 `json:"delay_back_ms,omitempty"`
	// LossPercent and LossBackPercent: emulated loss, each direction.
	LossPercent     int `json:"loss_percent,omitempty"`
	LossBackPercent int `json:"loss_back_percent,omitempty"`
}

func (l *Lab) faultsOrNone() []string {
	if l.network == nil {
		return []string{}
	}
	return l.Faults()
}
