package export

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"mpim/chaos/fault"
)

// injection is one entry of the schedule and the chaos templates that
// make it (named and given their deadline by build).
type injection struct {
	Entry
	verb  string
	chaos []Template
}

// injections turns the windows into chaos templates, in start order.
func (x *exporter) injections() ([]injection, error) {
	var out []injection
	for _, w := range x.cuts {
		out = append(out, x.cutInjection(w))
	}
	netem, err := x.netemInjections()
	if err != nil {
		return nil, err
	}
	out = append(out, netem...)
	for _, w := range x.kills {
		out = append(out, x.killInjection(w))
	}
	kept := out[:0]
	for _, in := range out {
		if in.End <= in.Start {
			x.note(fmt.Sprintf("`%s` at %s ends as it starts; left out", strings.Join(in.Faults, "`, `"), in.Start))
			continue
		}
		kept = append(kept, in)
	}
	slices.SortStableFunc(kept, func(a, b injection) int { return int(a.Start - b.Start) })
	return kept, nil
}

// cutInjection is a partition or oneway: one NetworkChaos partition per
// selected side and target side of one kind of pod.
func (x *exporter) cutInjection(w *window) injection {
	in := injection{Entry: x.entry(w, "NetworkChaos partition"), verb: string(w.f.Verb)}
	if w.dir == DirectionTo {
		in.Kind = "NetworkChaos partition (direction to)"
	}
	for _, l := range x.decompose(w.pairs, w.f.Verb == fault.Partition) {
		target := x.selector(l.to)
		spec := &NetworkChaosSpec{PodSelector: x.selector(l.from), Action: ActionPartition, Direction: w.dir, Target: &target}
		in.chaos = append(in.chaos, Template{Type: TypeNetworkChaos, NetworkChaos: spec})
	}
	return in
}

// killInjection keeps a killed member down until its restart. PodChaos
// pod-failure swaps the pod's container images for a pause image: the
// member's process ends, and it starts again on the same volume when the
// chaos ends, which is the lab's kill … restart. pod-kill would end it
// with SIGKILL, closer to the lab's kill, but the StatefulSet (or
// Deployment) recreates the pod within seconds, so the member would be
// back long before the scenario's restart; what the scenario measures
// while it is down (AP's missed writes, CP's majority) would not happen.
// The price: the kubelet stops the containers with SIGTERM, then SIGKILL
// after the pod's grace period, so the member may shut down cleanly.
func (x *exporter) killInjection(w *window) injection {
	m := w.f.Members[0]
	in := injection{Entry: x.entry(w, "PodChaos pod-failure"), verb: "kill"}
	spec := &PodChaosSpec{PodSelector: x.selector([]string{m}), Action: PodFailure}
	in.chaos = []Template{{Type: TypePodChaos, PodChaos: spec}}
	x.note("kill … restart is PodChaos pod-failure for the time between them: the member stops (the kubelet's SIGTERM, then SIGKILL after the grace period, not the lab's immediate SIGKILL) and starts again on its volume when the chaos ends; pod-kill is not used because Kubernetes would restart the pod at once")
	return in
}

func (x *exporter) entry(w *window, kind string) Entry {
	e := Entry{Start: w.start, End: w.end, Kind: kind}
	for _, st := range w.steps {
		e.Faults = append(e.Faults, st.Do)
	}
	return e
}

// netemInjections cuts the delays and losses into segments of constant
// netem per link: while a delay and a loss are both in force on one link
// they are one NetworkChaos netem, since Chaos Mesh gives each
// NetworkChaos its own netem queue and a packet goes through one queue
// only; two NetworkChaos on one link would not add up.
func (x *exporter) netemInjections() ([]injection, error) {
	key := func(w *window) string { return strings.Join(x.ordered(w.f.Members), " ") }
	var keys []string
	byKey := map[string][]*window{}
	for _, w := range x.netem {
		k := key(w)
		if _, ok := byKey[k]; !ok {
			keys = append(keys, k)
		}
		byKey[k] = append(byKey[k], w)
	}
	for i, a := range x.netem {
		for _, b := range x.netem[i+1:] {
			overlap := a.start < b.end && b.start < a.end && a.end > a.start && b.end > b.start
			if overlap && key(a) != key(b) && sharesLink(a.f.Members, b.f.Members) {
				return nil, fmt.Errorf("%w: `%s` (at %s) and `%s` (at %s) are in force together on a link they both touch; Chaos Mesh gives each NetworkChaos its own netem queue and a packet goes through one, so one of them would not apply; give both the same members (they then merge into one netem) or schedule them apart",
					ErrUnmappable, a.steps[0].Do, a.start, b.steps[0].Do, b.start)
			}
		}
	}
	var out []injection
	for _, k := range keys {
		ws := byKey[k]
		var times []time.Duration
		for _, w := range ws {
			times = append(times, w.start, w.end)
		}
		slices.Sort(times)
		times = slices.Compact(times)
		last := -1 // index in out of the segment the next one may extend
		var lastDelay, lastLoss *window
		for i := 0; i+1 < len(times); i++ {
			t0, t1 := times[i], times[i+1]
			var delay, loss *window
			for _, w := range ws { // later ones replace earlier ones, as in the lab
				if w.start <= t0 && w.end > t0 {
					if w.f.Verb == fault.Delay {
						delay = w
					} else {
						loss = w
					}
				}
			}
			if delay == nil && loss == nil {
				last = -1
				continue
			}
			if last >= 0 && out[last].End == t0 && delay == lastDelay && loss == lastLoss {
				out[last].End = t1
				continue
			}
			out = append(out, x.netemInjection(strings.Fields(k), delay, loss, t0, t1))
			last, lastDelay, lastLoss = len(out)-1, delay, loss
		}
	}
	return out, nil
}

// sharesLink says whether two delay/loss member lists touch a common
// link: one member means every link touching it.
func sharesLink(a, b []string) bool {
	switch {
	case len(a) == 1 && len(b) == 1:
		return true // the link between them (or, the same member, every one)
	case len(a) == 1:
		return slices.Contains(b, a[0])
	case len(b) == 1:
		return slices.Contains(a, b[0])
	}
	return slices.Contains(b, a[0]) && slices.Contains(b, a[1])
}

func (x *exporter) netemInjection(members []string, delay, loss *window, start, end time.Duration) injection {
	spec := &NetworkChaosSpec{PodSelector: x.selector(members[:1]), Direction: DirectionBoth}
	if len(members) == 2 {
		t := x.selector(members[1:])
		spec.Target = &t
	} else {
		t := x.othersThan(members[0])
		spec.Target = &t
	}
	in := injection{Entry: Entry{Start: start, End: end}}
	if delay != nil {
		spec.Delay = &DelaySpec{Latency: strconv.Itoa(delay.f.MS) + "ms"}
		if delay.f.Jitter > 0 {
			spec.Delay.Jitter = strconv.Itoa(delay.f.Jitter) + "ms"
		}
		spec.Action = ActionDelay
		in.Faults = append(in.Faults, delay.steps[0].Do)
	}
	if loss != nil {
		spec.Loss = &LossSpec{Loss: strconv.Itoa(loss.f.Percent)}
		spec.Action = ActionLoss
		in.Faults = append(in.Faults, loss.steps[0].Do)
	}
	if delay != nil && loss != nil {
		spec.Action = ActionNetem
	}
	in.verb, in.Kind = string(spec.Action), "NetworkChaos "+string(spec.Action)
	in.chaos = []Template{{Type: TypeNetworkChaos, NetworkChaos: spec}}
	return in
}

// link is a set of members cut from a set of targets, each of one kind of
// pod (nodes or redis), so that one selector can name each.
type link struct{ from, to []string }

// decompose covers the directed pairs with few links: members with the
// same targets share a link, and targets are split by kind. byOrder
// orients each pair by member order first (a partition cuts both ways;
// a oneway keeps its direction).
func (x *exporter) decompose(pairs [][2]string, byOrder bool) []link {
	idx := func(m string) int { return slices.Index(x.topo.Members, m) }
	targets := map[string][]string{}
	for _, p := range pairs {
		a, b := p[0], p[1]
		if byOrder && idx(a) > idx(b) {
			a, b = b, a
		}
		if !slices.Contains(targets[a], b) {
			targets[a] = append(targets[a], b)
		}
	}
	var order []string // sources in member order
	for _, m := range x.topo.Members {
		if len(targets[m]) > 0 {
			order = append(order, m)
		}
	}
	var keys []string
	groups := map[string][]string{}
	for _, m := range order {
		ts := x.ordered(targets[m])
		k := x.kind(m) + ":" + strings.Join(ts, " ")
		if _, ok := groups[k]; !ok {
			keys = append(keys, k)
		}
		groups[k] = append(groups[k], m)
	}
	var out []link
	for _, k := range keys {
		from := groups[k]
		ts := x.ordered(targets[from[0]])
		for _, kind := range []string{ComponentNode, ComponentRedis} {
			var to []string
			for _, t := range ts {
				if x.kind(t) == kind {
					to = append(to, t)
				}
			}
			if len(to) > 0 {
				out = append(out, link{from: from, to: to})
			}
		}
	}
	return out
}

// ordered returns ms in member order.
func (x *exporter) ordered(ms []string) []string {
	out := slices.Clone(ms)
	slices.SortFunc(out, func(a, b string) int { return slices.Index(x.topo.Members, a) - slices.Index(x.topo.Members, b) })
	return out
}

// kind is a member's kind of pod: a node or redis (gateways never reach
// here).
func (x *exporter) kind(m string) string {
	if m == "redis" {
		return ComponentRedis
	}
	return ComponentNode
}

// podName is node nI's pod.
func podName(node string) string {
	i, _ := strconv.Atoi(strings.TrimPrefix(node, "n"))
	return NodeStatefulSet + "-" + strconv.Itoa(i-1)
}

// selector selects the pods of members, all of one kind: nodes by their
// StatefulSet pod names, redis by its component label.
func (x *exporter) selector(members []string) PodSelector {
	spec := PodSelectorSpec{Namespaces: []string{x.cfg.Namespace}}
	if x.kind(members[0]) == ComponentRedis {
		spec.LabelSelectors = map[string]string{LabelPartOf: PartOf, LabelComponent: ComponentRedis}
		return PodSelector{Selector: spec, Mode: ModeAll}
	}
	var pods []string
	for _, m := range members {
		pods = append(pods, podName(m))
	}
	spec.ExpressionSelectors = []LabelSelectorRequirement{{Key: LabelPodName, Operator: "In", Values: pods}}
	return PodSelector{Selector: spec, Mode: ModeAll}
}

// othersThan selects every pod of the lab but m's: the other end of every
// link touching m. A label a pod lacks satisfies NotIn, so gateways and
// redis match the node rule, and nodes and gateways the redis one.
func (x *exporter) othersThan(m string) PodSelector {
	spec := PodSelectorSpec{Namespaces: []string{x.cfg.Namespace}, LabelSelectors: map[string]string{LabelPartOf: PartOf}}
	if x.kind(m) == ComponentRedis {
		spec.ExpressionSelectors = []LabelSelectorRequirement{{Key: LabelComponent, Operator: "NotIn", Values: []string{ComponentRedis}}}
	} else {
		spec.ExpressionSelectors = []LabelSelectorRequirement{{Key: LabelPodName, Operator: "NotIn", Values: []string{podName(m)}}}
	}
	return PodSelector{Selector: spec, Mode: ModeAll}
}
