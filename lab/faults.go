package lab

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"

	"mpim/chaos/fault"
	"mpim/chaos/hostnet"
	"mpim/chaos/netfault"
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
var ErrUnsupported = netfault.ErrUnsupported

// network is the lab's fault layer: the network faults in force on a
// backend (a proxy per link between members, or a namespace per member),
// and which node `pause leader` / `kill leader` hit.
type network struct {
	*netfault.Network
	// proxies is the proxy backend (nil with netns or without a fault
	// layer); ns the netns one.
	proxies *proxy.Net
	ns      *netns.Net
	// hosts is the backend of a lab spread over hosts.
	hosts *hostnet.Net
	// planned are the links the members were given (netns: their direct
	// addresses; the proxy backend lists its own).
	planned []proxy.LinkState
	// applyMu orders network faults and their events.
	applyMu sync.Mutex
	mu      sync.Mutex
	// downLeader remembers the node `pause leader` / `kill leader` hit, by
	// the verb that undoes it.
	downLeader map[fault.Verb]string
}

// link returns the address member from must dial to reach member to (whose
// real address is target): the proxy of that link, or with netns the
// target itself (the namespaces' rules do the cutting).
func (l *Lab) link(from, to, target string) (string, error) {
	switch {
	case l.hosts != nil:
		l.network.planned = append(l.network.planned, proxy.LinkState{From: from, To: to, Addr: target, Target: target})
		return l.hosts.link(from, to, target), nil
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
// resolved). Member verbs act on the lab's processes; network verbs go to
// the fault layer (package netfault), which keeps what is in force.
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
		l.network.applyMu.Lock()
		defer l.network.applyMu.Unlock()
		err := l.network.Heal()
		l.emit(Event{Kind: EventHeal, Detail: "heal"})
		return f, err
	case fault.Partition:
		if f.Shape != "" {
			shape := f.Shape
			if shape == "isolate:"+fault.Leader {
				shape = "isolate:" + l.leader()
			}
			groups, cuts, err := l.shapes().Shape(shape)
			if err != nil {
				return f, fmt.Errorf("lab: %w", err)
			}
			f.Groups, f.Cuts = groups, cuts
		}
	}
	// Applied and announced under one lock, so that the events come in
	// the order the faults took effect.
	l.network.applyMu.Lock()
	defer l.network.applyMu.Unlock()
	listed, err := l.network.Apply(f, l.memberNames())
	switch {
	case err == nil:
		l.emit(Event{Kind: EventFault, Detail: f.String()})
	case listed:
		l.emit(Event{Kind: EventFault, Detail: f.String() + " (partly failed: " + err.Error() + ")"})
	}
	return f, err
}

// shapes is the topology partition shapes are drawn on.
func (l *Lab) shapes() fault.Topology {
	t := fault.Topology{Members: l.memberNames(), FirstNode: map[string]string{}}
	for _, m := range l.members {
		switch m.info.Kind {
		case KindNode:
			t.Nodes = append(t.Nodes, m.info.Name)
		case KindGateway:
			t.FirstNode[m.info.Name] = l.firstNode(m.info.Name)
		}
	}
	return t
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

// firstNode is the node gateway gI talks to first.
func (l *Lab) firstNode(gateway string) string {
	i, _ := strconv.Atoi(strings.TrimPrefix(gateway, "g"))
	return "n" + strconv.Itoa((i-1)%l.cfg.Nodes+1)
}

// Faults are the network faults in force, in the vocabulary's spelling.
func (l *Lab) Faults() []string { return l.network.Faults() }

// Links are the proxied links with their directional faults.
func (l *Lab) Links() []LinkState {
	faults := map[[2]string]proxy.DirFault{}
	for _, d := range l.network.Backend().Faults() {
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
