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

// network is the lab's fault layer: one proxy per link between members,
// and the network faults in force, in the vocabulary's spelling.
type network struct {
	net *proxy.Net
	mu  sync.Mutex
	// active are the network faults applied since the last heal.
	active []fault.Fault
	// downLeader remembers the node `pause leader` / `kill leader` hit, by
	// the verb that undoes it.
	downLeader map[fault.Verb]string
}

// link returns the address member from must dial to reach member to (whose
// real address is target): the proxy of that link.
func (l *Lab) link(from, to, target string) (string, error) {
	if l.cfg.NoFaultLayer {
		return target, nil
	}
	lk, err := l.network.net.Link(from, to, target)
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
		nw.net.Heal()
		nw.active = nil
		nw.mu.Unlock()
		l.emit(Event{Kind: EventHeal, Detail: "heal"})
		return f, nil
	case fault.Loss:
		return f, fmt.Errorf("%w: loss is not implemented by the proxy backend yet; use delay", ErrUnsupported)
	}
	if l.cfg.NoFaultLayer {
		return f, fmt.Errorf("%w: %s needs the fault layer, and this lab runs without it (started for benchmarks with NoFaultLayer)", ErrUnsupported, f.Verb)
	}
	switch f.Verb {
	case fault.Partition:
		if f.Shape != "" {
			groups, err := l.shape(f.Shape)
			if err != nil {
				return f, err
			}
			f.Groups = groups
		}
	}
	nw.mu.Lock()
	defer nw.mu.Unlock()
	switch f.Verb {
	case fault.Partition:
		// A partition replaces the previous one (and any oneway): release
		// every hold, keep delays.
		var kept []fault.Fault
		for _, a := range nw.active {
			if a.Verb == fault.Delay {
				kept = append(kept, a)
			}
		}
		for _, d := range nw.net.Faults() {
			if d.Held {
				nw.net.Release(d.From, d.To)
			}
		}
		nw.active = kept
		for i, g := range f.Groups {
			for _, h := range f.Groups[i+1:] {
				for _, a := range g {
					for _, b := range h {
						nw.net.Hold(a, b)
						nw.net.Hold(b, a)
					}
				}
			}
		}
	case fault.Oneway:
		for _, a := range f.Groups[0] {
			for _, b := range f.Groups[1] {
				nw.net.Hold(a, b)
			}
		}
	case fault.Delay:
		d, j := time.Duration(f.MS)*time.Millisecond, time.Duration(f.Jitter)*time.Millisecond
		for _, p := range l.pairs(f.Members) {
			nw.net.SetDelay(p[0], p[1], d, j)
			nw.net.SetDelay(p[1], p[0], d, j)
		}
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
// nodes (tie: the side holding the lowest-numbered node).
func (l *Lab) shape(s string) ([][]string, error) {
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
			return nil, fmt.Errorf("lab: partition halves needs at least 2 nodes, the lab has %d", len(nodes))
		}
		small := len(nodes) / 2
		sides = [][]string{slices.Clone(nodes[:small]), slices.Clone(nodes[small:])}
	case strings.HasPrefix(s, "isolate:"):
		target := strings.TrimPrefix(s, "isolate:")
		if target == fault.Leader {
			target = l.leader()
		}
		if _, ok := l.byName[target]; !ok {
			return nil, fmt.Errorf("lab: isolate:%s: no such member", target)
		}
		rest := []string{}
		for _, m := range l.memberNames() {
			if m != target {
				rest = append(rest, m)
			}
		}
		if !slices.Contains(nodes, target) {
			// Isolating a gateway or redis cuts just that member off.
			return [][]string{{target}, rest}, nil
		}
		var others []string
		for _, n := range nodes {
			if n != target {
				others = append(others, n)
			}
		}
		sides = [][]string{{target}, others}
	default:
		return nil, fmt.Errorf("%w: partition %s arrives with the chaos harness; use explicit groups, halves or isolate:<member>", ErrUnsupported, s)
	}
	return l.placeOthers(sides), nil
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
			i, _ := strconv.Atoi(strings.TrimPrefix(m.info.Name, "g"))
			first := "n" + strconv.Itoa((i-1)%l.cfg.Nodes+1)
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
	for _, lk := range l.network.net.Links() {
		s := LinkState{LinkState: lk}
		fwd, back := faults[[2]string{lk.From, lk.To}], faults[[2]string{lk.To, lk.From}]
		s.Held = fwd.Held
		s.HeldBack = back.Held
		s.DelayMS = fwd.Delay.Milliseconds()
		s.DelayBackMS = back.Delay.Milliseconds()
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
}

func (l *Lab) faultsOrNone() []string {
	if l.network == nil {
		return []string{}
	}
	return l.Faults()
}
