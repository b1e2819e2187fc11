// Package export writes a chaos scenario (package chaos/scenario) as the
// resources of a fault injector that runs on Kubernetes, for users who
// already run one: today Chaos Mesh, as one Workflow (chaos-mesh.org/
// v1alpha1) whose templates inject NetworkChaos and PodChaos specs at the
// scenario's times, against the pods of deploy/k8s.
//
// What maps, and how (docs/chaos.md, "mpim chaos export"):
//
//   - partition (groups or a shape) → NetworkChaos partition, direction
//     both, one resource per side pair and kind of pod; oneway → partition,
//     direction to, from the FROM side to the TO side.
//   - delay, loss → NetworkChaos delay, loss (netem while both are in force
//     on one link), direction both: each way of each link, as in the lab.
//   - kill X … restart X → PodChaos pod-failure on X for the time between
//     them (see mapKill for why not pod-kill).
//   - heal ends every network fault in force; a partition ends the
//     previous partition and oneways, as in the lab.
//
// What does not map is refused with ErrUnmappable and the reason: pause
// and resume (Chaos Mesh cannot freeze a process and let it go on), and a
// fault on one gateway (deploy/k8s's gateways are one Deployment, whose
// pods Chaos Mesh can select only all together). `leader` is known only
// while a cluster runs: it is refused with ErrLeader unless Config.Leader
// pins it to a node.
package export

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"mpim/chaos/fault"
	"mpim/chaos/scenario"
)

// Errors of this package, checked with errors.Is.
var (
	// ErrUnmappable wraps the refusal of a fault Chaos Mesh has no
	// equivalent for; the message says why.
	ErrUnmappable = errors.New("export: no Chaos Mesh equivalent")
	// ErrLeader wraps the refusal of a fault naming `leader` when no
	// Config.Leader pins it.
	ErrLeader = errors.New("export: the leader is known only while the cluster runs")
	// ErrConfig wraps an invalid Config.
	ErrConfig = errors.New("export: config")
)

// The labels of deploy/k8s's pods that an export's selectors match
// (deploy's tests check that the manifests carry them).
const (
	LabelPartOf    = "app.kubernetes.io/part-of"
	LabelComponent = "app.kubernetes.io/component"
	// LabelPodName is the label the StatefulSet controller gives each of
	// its pods: its name, e.g. mpim-node-0.
	LabelPodName = "statefulset.kubernetes.io/pod-name"

	PartOf           = "mpim"
	ComponentNode    = "node"
	ComponentGateway = "gateway"
	ComponentRedis   = "redis"

	// NodeStatefulSet names the nodes' StatefulSet: node nI is its pod
	// mpim-node-(I-1).
	NodeStatefulSet = "mpim-node"
)

// Config says where the lab's pods are and pins what only a running
// cluster knows.
type Config struct {
	// Namespace holds the lab's pods (deploy/k8s: mpim) and the Workflow.
	Namespace string
	// Leader, a node (n1, n2, ...), is what faults naming `leader` (kill
	// leader, partition isolate:leader, loss leader ...) hit. Which node
	// leads shard 0 changes while a cluster runs and Chaos Mesh cannot ask;
	// empty refuses such faults with ErrLeader. In AP mode the lab's
	// leader is n1.
	Leader string
}

// DefaultConfig is deploy/k8s's namespace and no leader pinned.
func DefaultConfig() Config { return Config{Namespace: "mpim"} }

var (
	dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)
	nodeName = regexp.MustCompile(`^n[1-9][0-9]*$`)
)

// Validate checks the namespace is a DNS label and the leader a node name.
func (c Config) Validate() error {
	var errs []error
	if !dnsLabel.MatchString(c.Namespace) {
		errs = append(errs, fmt.Errorf("%w: namespace %q is not a Kubernetes namespace name (lowercase letters, digits and -)", ErrConfig, c.Namespace))
	}
	if c.Leader != "" && !nodeName.MatchString(c.Leader) {
		errs = append(errs, fmt.Errorf("%w: leader %q is not a node (n1, n2, ...)", ErrConfig, c.Leader))
	}
	return errors.Join(errs...)
}

// Export is a scenario as a Chaos Mesh Workflow.
type Export struct {
	Scenario string
	Workflow Workflow
	// Schedule lists what the workflow injects when, in start order.
	Schedule []Entry
	// Notes say where the export differs from a lab run of the scenario,
	// and what the cluster must look like.
	Notes []string
}

// Entry is one injection of the workflow: the chaos template named
// Template (a chaos template, or a Parallel one of several) is in force
// from Start to End after the workflow starts, for the scenario's Faults.
type Entry struct {
	Start, End time.Duration
	Template   string
	// Kind is e.g. "NetworkChaos partition" and Resources how many chaos
	// resources it creates.
	Kind      string
	Resources int
	Faults    []string
}

// ChaosMesh maps sc's faults to a Chaos Mesh Workflow against deploy/k8s's
// pods. A fault that cannot be mapped fails the whole export, naming the
// step and the reason (ErrUnmappable, ErrLeader): a partial export would
// be a different experiment under the scenario's name.
func ChaosMesh(sc *scenario.Scenario, cfg Config) (*Export, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	x := newExporter(sc, cfg)
	if cfg.Leader != "" && !slices.Contains(x.topo.Nodes, cfg.Leader) {
		return nil, fmt.Errorf("%w: leader %s is not a node of %s (%s)", ErrConfig, cfg.Leader, sc.Name, strings.Join(x.topo.Nodes, " "))
	}
	for _, st := range sc.Faults {
		if err := x.step(st); err != nil {
			return nil, fmt.Errorf("%s:%d: `%s` at %s: %w", sc.File, st.Line, st.Do, st.At, err)
		}
	}
	x.closeAll(sc.Duration)
	injections, err := x.injections()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", sc.File, err)
	}
	return x.build(injections), nil
}

// window is one fault in force from start to end (end 0 while open).
type window struct {
	steps      []scenario.Step
	f          fault.Fault
	start, end time.Duration
	// pairs are the directed member pairs a partition or oneway cuts
	// (gateways left out); dir is how they are cut.
	pairs [][2]string
	dir   Direction
}

type exporter struct {
	sc       *scenario.Scenario
	cfg      Config
	topo     fault.Topology
	gateways map[string]bool

	cuts  []*window          // partitions and oneways
	netem []*window          // delays and losses
	kills []*window          // killed members, until restarted
	down  map[string]*window // member -> its open kill
	notes []string
}

func newExporter(sc *scenario.Scenario, cfg Config) *exporter {
	x := &exporter{sc: sc, cfg: cfg, gateways: map[string]bool{}, down: map[string]*window{}}
	x.topo = fault.Topology{Members: sc.Members(), FirstNode: map[string]string{}}
	for i := 1; i <= sc.Cluster.Nodes; i++ {
		x.topo.Nodes = append(x.topo.Nodes, "n"+strconv.Itoa(i))
	}
	for i := 1; i <= sc.Cluster.Gateways; i++ {
		g := "g" + strconv.Itoa(i)
		x.gateways[g] = true
		// As the lab: gateway gI talks first to node nI.
		x.topo.FirstNode[g] = "n" + strconv.Itoa((i-1)%sc.Cluster.Nodes+1)
	}
	if sc.Cluster.Nodes != 3 {
		x.note(fmt.Sprintf("the scenario needs %d nodes: deploy/k8s runs 3; scale the StatefulSet mpim-node to %d replicas and set MPIM_NODE_COUNT=%d in its pods (and the gateways' --nodes) before applying", sc.Cluster.Nodes, sc.Cluster.Nodes, sc.Cluster.Nodes))
	}
	if len(sc.Unsafe) > 0 {
		x.note(fmt.Sprintf("the scenario's CP run starts the nodes with --unsafe %s; deploy/k8s's nodes run without it (add it to the StatefulSet's command to see what the scenario shows)", strings.Join(sc.Unsafe, ",")))
	}
	return x
}

func (x *exporter) note(s string) {
	if !slices.Contains(x.notes, s) {
		x.notes = append(x.notes, s)
	}
}

// step applies one scheduled fault to the open windows.
func (x *exporter) step(st scenario.Step) error {
	f, err := st.Fault.Complete(x.topo.Members)
	if err != nil {
		return err
	}
	if f, err = x.resolveLeader(f); err != nil {
		return err
	}
	switch f.Verb {
	case fault.Pause, fault.Resume:
		return fmt.Errorf("%w: %s freezes a process (SIGSTOP) and lets it go on with its memory and connections; Chaos Mesh's PodChaos pod-failure and pod-kill end the process, which is `kill`, not `pause`, and StressChaos only slows it. Run this scenario with mpim chaos run (or mpim lab up --hosts)", ErrUnmappable, f.Verb)
	case fault.Heal:
		x.endCuts(st.At)
		for _, w := range x.netem {
			if w.end == 0 {
				w.end = st.At
			}
		}
	case fault.Partition, fault.Oneway:
		w, err := x.cut(f)
		if err != nil {
			return err
		}
		if f.Verb == fault.Partition {
			x.endCuts(st.At) // a partition replaces the previous one and any oneway
		}
		w.steps, w.start = []scenario.Step{st}, st.At
		x.cuts = append(x.cuts, w)
	case fault.Delay, fault.Loss:
		if err := x.noGateway(f, f.Members); err != nil {
			return err
		}
		x.netem = append(x.netem, &window{steps: []scenario.Step{st}, f: f, start: st.At})
	case fault.Kill:
		m := f.Members[0]
		if err := x.noGateway(f, f.Members); err != nil {
			return err
		}
		if w := x.down[m]; w != nil {
			x.note(fmt.Sprintf("`%s` at %s: %s is already down since %s; a no-op, as in the lab", st.Do, st.At, m, w.start))
			return nil
		}
		w := &window{steps: []scenario.Step{st}, f: f, start: st.At}
		x.down[m] = w
		x.kills = append(x.kills, w)
	case fault.Restart:
		m := f.Members[0]
		if err := x.noGateway(f, f.Members); err != nil {
			return err
		}
		w := x.down[m]
		if w == nil {
			x.note(fmt.Sprintf("`%s` at %s: %s is running; a no-op, as in the lab", st.Do, st.At, m))
			return nil
		}
		w.end = st.At
		w.steps = append(w.steps, st)
		delete(x.down, m)
	}
	return nil
}

// resolveLeader replaces `leader` with Config.Leader, or refuses.
func (x *exporter) resolveLeader(f fault.Fault) (fault.Fault, error) {
	uses := slices.Contains(f.Members, fault.Leader) || f.Shape == "isolate:"+fault.Leader
	if !uses {
		return f, nil
	}
	if x.cfg.Leader == "" {
		return f, fmt.Errorf("%w: `leader` is the node leading shard 0 when the fault is applied, which changes as the cluster runs and which Chaos Mesh cannot ask; pass --leader nI to pin it to one node (in AP mode the lab's leader is n1)", ErrLeader)
	}
	x.note(fmt.Sprintf("`leader` is pinned to %s (--leader): Chaos Mesh hits that pod whether or not it leads when the fault comes; in CP mode check which node leads shard 0 first (its /metrics or mpim lab top) and export again", x.cfg.Leader))
	f.Members = slices.Clone(f.Members)
	for i, m := range f.Members {
		if m == fault.Leader {
			f.Members[i] = x.cfg.Leader
		}
	}
	if f.Shape == "isolate:"+fault.Leader {
		f.Shape = "isolate:" + x.cfg.Leader
	}
	return f, nil
}

// gatewayNote says why gateways are left out of partitions.
const gatewayNote = "gateways are left out of partitions and oneways: deploy/k8s runs them as one Deployment behind a Service, each gateway dialling every node, so Chaos Mesh can select them only all together; the cut is between the nodes (and Redis), and clients reach both sides through any gateway"

// cut turns a partition or oneway into the member pairs it cuts.
func (x *exporter) cut(f fault.Fault) (*window, error) {
	w := &window{f: f}
	var all [][2]string
	switch f.Verb {
	case fault.Partition:
		if f.Shape != "" {
			groups, cuts, err := x.topo.Shape(f.Shape)
			if err != nil {
				return nil, err
			}
			f.Groups, f.Cuts = groups, cuts
			w.f = f
		}
		all, w.dir = f.CutPairs(), DirectionBoth
	case fault.Oneway:
		for _, a := range f.Groups[0] {
			for _, b := range f.Groups[1] {
				all = append(all, [2]string{a, b})
			}
		}
		w.dir = DirectionTo
	}
	var dropped []string
	for _, p := range all {
		switch {
		case x.gateways[p[0]]:
			dropped = append(dropped, p[0])
		case x.gateways[p[1]]:
			dropped = append(dropped, p[1])
		default:
			w.pairs = append(w.pairs, p)
		}
	}
	if len(w.pairs) == 0 {
		slices.Sort(dropped)
		return nil, fmt.Errorf("%w: it cuts only gateways off (%s), and deploy/k8s runs the gateways as one Deployment whose pods Chaos Mesh cannot tell apart; name nodes or redis instead", ErrUnmappable, strings.Join(slices.Compact(dropped), " "))
	}
	if len(dropped) > 0 {
		x.note(gatewayNote)
	}
	return w, nil
}

// noGateway refuses a fault on a single gateway.
func (x *exporter) noGateway(f fault.Fault, members []string) error {
	for _, m := range members {
		if x.gateways[m] {
			return fmt.Errorf("%w: %s singles out gateway %s, and deploy/k8s runs the gateways as one Deployment whose pods Chaos Mesh can select only all together; name nodes or redis instead", ErrUnmappable, f.Verb, m)
		}
	}
	return nil
}

// endCuts ends the partitions and oneways in force.
func (x *exporter) endCuts(at time.Duration) {
	for _, w := range x.cuts {
		if w.end == 0 {
			w.end = at
		}
	}
}

// closeAll ends at the scenario's end whatever is still in force (a lab
// run stops its cluster then).
func (x *exporter) closeAll(end time.Duration) {
	for _, ws := range [][]*window{x.cuts, x.netem, x.kills} {
		for _, w := range ws {
			if w.end == 0 {
				w.end = end
			}
		}
	}
}
