package export

import (
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"mpim/chaos/fault"
	"mpim/chaos/scenario"
)

var update = flag.Bool("update", false, "rewrite testdata/*.yaml from the exporter's output")

// decodeStrictly reads an export's YAML into the mirrored Chaos Mesh types
// with unknown fields refused, and its metadata into Kubernetes' own
// ObjectMeta.
func decodeStrictly(t *testing.T, b []byte) Workflow {
	t.Helper()
	var w Workflow
	if err := yaml.UnmarshalStrict(b, &w); err != nil {
		t.Fatalf("the export does not decode strictly into the Chaos Mesh types: %v\n%s", err, b)
	}
	var meta struct {
		metav1.TypeMeta `json:",inline"`
		Metadata        metav1.ObjectMeta `json:"metadata"`
		Spec            json.RawMessage   `json:"spec"`
	}
	if err := yaml.UnmarshalStrict(b, &meta); err != nil {
		t.Fatalf("the export's metadata does not decode strictly into metav1.ObjectMeta: %v", err)
	}
	if meta.APIVersion != APIVersion || meta.Kind != "Workflow" || meta.Metadata.Name == "" {
		t.Errorf("export is %s %s named %q, want %s Workflow with a name", meta.APIVersion, meta.Kind, meta.Metadata.Name, APIVersion)
	}
	return w
}

var dns1123 = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)

// checkWorkflow holds w to the rules of Chaos Mesh's workflow webhook
// (workflow_webhook.go at the version chaosmesh.go names: an entry that
// exists, unique DNS-1123 template names, a deadline on every Suspend,
// children that exist, no chaos spec outside a chaos template, no duration
// inside one), and returns when each chaos template is in force, by
// walking the workflow as Chaos Mesh runs it.
func checkWorkflow(t *testing.T, w Workflow) map[string][2]time.Duration {
	t.Helper()
	byName := map[string]Template{}
	for _, tp := range w.Spec.Templates {
		if _, dup := byName[tp.Name]; dup {
			t.Errorf("template name %s is used twice", tp.Name)
		}
		if !dns1123.MatchString(tp.Name) || len(tp.Name) > 253 {
			t.Errorf("template name %q is not a DNS-1123 subdomain", tp.Name)
		}
		byName[tp.Name] = tp
		chaos := tp.NetworkChaos != nil || tp.PodChaos != nil
		switch tp.Type {
		case TypeSuspend:
			if tp.Deadline == nil || chaos || len(tp.Children) > 0 {
				t.Errorf("Suspend %s: want a deadline, no children, no chaos", tp.Name)
			}
		case TypeSerial, TypeParallel:
			if chaos || len(tp.Children) == 0 {
				t.Errorf("%s %s: want children and no chaos", tp.Type, tp.Name)
			}
		case TypeNetworkChaos:
			if tp.NetworkChaos == nil || tp.PodChaos != nil || tp.Deadline == nil || tp.NetworkChaos.Duration != nil {
				t.Errorf("NetworkChaos %s: want networkChaos alone, a deadline, no duration", tp.Name)
			}
		case TypePodChaos:
			if tp.PodChaos == nil || tp.NetworkChaos != nil || tp.Deadline == nil || tp.PodChaos.Duration != nil {
				t.Errorf("PodChaos %s: want podChaos alone, a deadline, no duration", tp.Name)
			}
		default:
			t.Errorf("template %s has type %q", tp.Name, tp.Type)
		}
	}
	if _, ok := byName[w.Spec.Entry]; !ok {
		t.Fatalf("entry %q names no template", w.Spec.Entry)
	}
	in := map[string][2]time.Duration{}
	var run func(name string, at time.Duration) time.Duration
	run = func(name string, at time.Duration) time.Duration {
		tp, ok := byName[name]
		if !ok {
			t.Fatalf("child %q names no template", name)
		}
		switch tp.Type {
		case TypeSerial:
			for _, c := range tp.Children {
				at = run(c, at)
			}
			return at
		case TypeParallel:
			end := at
			for _, c := range tp.Children {
				end = max(end, run(c, at))
			}
			return end
		}
		d, err := time.ParseDuration(*tp.Deadline)
		if err != nil || d <= 0 {
			t.Fatalf("template %s: deadline %q is not a positive Go duration", name, *tp.Deadline)
		}
		if tp.Type != TypeSuspend {
			in[name] = [2]time.Duration{at, at + d}
		}
		return at + d
	}
	run(w.Spec.Entry, 0)
	return in
}

// exported exports sc with cfg, renders, decodes strictly and checks the
// workflow; the chaos templates' times must be the schedule's.
func exported(t *testing.T, sc *scenario.Scenario, cfg Config) (*Export, Workflow) {
	t.Helper()
	e, err := ChaosMesh(sc, cfg)
	if err != nil {
		t.Fatalf("%s: %v", sc.Name, err)
	}
	b, err := e.YAML("")
	if err != nil {
		t.Fatal(err)
	}
	w := decodeStrictly(t, b)
	times := checkWorkflow(t, w)
	for _, s := range e.Schedule {
		names := []string{s.Template}
		if s.Resources > 1 {
			names = nil
			for _, tp := range w.Spec.Templates {
				if strings.HasPrefix(tp.Name, s.Template+"-") && tp.Type != TypeSuspend {
					names = append(names, tp.Name)
				}
			}
		}
		if len(names) != s.Resources {
			t.Errorf("%s: schedule says %s makes %d resources, the workflow has %v", sc.Name, s.Template, s.Resources, names)
		}
		for _, n := range names {
			if got := times[n]; got != [2]time.Duration{s.Start, s.End} {
				t.Errorf("%s: %s is in force %v-%v, the schedule says %v-%v", sc.Name, n, got[0], got[1], s.Start, s.End)
			}
		}
	}
	return e, w
}

func builtin(t *testing.T, name string) *scenario.Scenario {
	t.Helper()
	sc, err := scenario.Builtin(name)
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

func pinned(leader string) Config {
	c := DefaultConfig()
	c.Leader = leader
	return c
}

// TestLibrary: every built-in scenario either exports to a workflow that
// decodes strictly and keeps its schedule, or is refused for a named
// reason (ErrLeader without --leader, ErrUnmappable for what Chaos Mesh
// cannot do), both without and with the leader pinned.
func TestLibrary(t *testing.T) {
	// What each library scenario must give: "" exported, else the refusal.
	want := map[string][2]error{ // without --leader, with --leader n1
		"isolate-leader":            {ErrLeader, nil},
		"unsafe-ack-before-commit":  {ErrLeader, nil},
		"unsafe-local-linearizable": {ErrLeader, nil},
		"lossy-leader":              {ErrLeader, nil},
		"leader-pause":              {ErrLeader, ErrUnmappable},
		"isolate-gateway":           {ErrUnmappable, ErrUnmappable},
	}
	for _, sc := range scenario.List() {
		for i, cfg := range []Config{DefaultConfig(), pinned("n1")} {
			_, err := ChaosMesh(sc, cfg)
			w, known := want[sc.Name]
			switch {
			case err == nil && (!known || w[i] == nil):
				exported(t, sc, cfg)
			case err == nil:
				t.Errorf("%s (leader %q): exported, want %v", sc.Name, cfg.Leader, w[i])
			case !errors.Is(err, ErrLeader) && !errors.Is(err, ErrUnmappable):
				t.Errorf("%s (leader %q): %v, which names no reason (ErrLeader, ErrUnmappable)", sc.Name, cfg.Leader, err)
			case known && !errors.Is(err, w[i]):
				t.Errorf("%s (leader %q): %v, want %v", sc.Name, cfg.Leader, err, w[i])
			case !strings.Contains(err.Error(), sc.File):
				t.Errorf("%s: the refusal %q does not say where (file:line)", sc.Name, err)
			}
		}
	}
}

// sel returns the members a selector picks: nodes by pod name (In), redis
// by label, everyone but one member (NotIn) from members.
func sel(t *testing.T, s PodSelector, members []string) []string {
	t.Helper()
	if s.Mode != ModeAll || !slices.Equal(s.Selector.Namespaces, []string{"mpim"}) {
		t.Errorf("selector %+v: want mode all in namespace mpim", s)
	}
	ls := s.Selector.LabelSelectors
	exprs := s.Selector.ExpressionSelectors
	podMember := func(pod string) string {
		i, err := strconv.Atoi(strings.TrimPrefix(pod, NodeStatefulSet+"-"))
		if err != nil {
			t.Fatalf("pod %q is not one of %s's", pod, NodeStatefulSet)
		}
		return "n" + strconv.Itoa(i+1)
	}
	switch {
	case ls[LabelComponent] == ComponentRedis && len(exprs) == 0:
		return []string{"redis"}
	case len(ls) == 0 && len(exprs) == 1 && exprs[0].Key == LabelPodName && exprs[0].Operator == "In":
		var out []string
		for _, p := range exprs[0].Values {
			out = append(out, podMember(p))
		}
		return out
	case ls[LabelPartOf] == PartOf && len(exprs) == 1 && exprs[0].Operator == "NotIn":
		but := "redis"
		if exprs[0].Key == LabelPodName {
			but = podMember(exprs[0].Values[0])
		}
		return slices.DeleteFunc(slices.Clone(members), func(m string) bool { return m == but })
	}
	t.Fatalf("selector %+v selects no lab member this test knows", s)
	return nil
}

// pairs are the unordered member pairs a set of NetworkChaos cut.
func cutPairs(t *testing.T, specs []*NetworkChaosSpec, members []string) [][2]string {
	t.Helper()
	var out [][2]string
	for _, s := range specs {
		for _, a := range sel(t, s.PodSelector, members) {
			for _, b := range sel(t, *s.Target, members) {
				p := [2]string{a, b}
				if slices.Index(members, a) > slices.Index(members, b) {
					p = [2]string{b, a}
				}
				if slices.Contains(out, p) {
					t.Errorf("pair %v is cut by two resources", p)
				}
				out = append(out, p)
			}
		}
	}
	slices.SortFunc(out, func(a, b [2]string) int { return strings.Compare(a[0]+" "+a[1], b[0]+" "+b[1]) })
	return out
}

// TestPartitionsCutExactly: for every library partition, the pairs its
// NetworkChaos resources cut are exactly the pairs the lab cuts, gateways
// left out.
func TestPartitionsCutExactly(t *testing.T) {
	for _, sc := range scenario.List() {
		e, err := ChaosMesh(sc, pinned("n1"))
		if err != nil {
			continue // TestLibrary checks the refusals
		}
		x := newExporter(sc, pinned("n1"))
		for _, st := range sc.Faults {
			if st.Fault.Verb != fault.Partition {
				continue
			}
			f, _ := st.Fault.Complete(x.topo.Members)
			if f.Shape != "" {
				shape := strings.Replace(f.Shape, "isolate:leader", "isolate:n1", 1)
				f.Groups, f.Cuts, _ = x.topo.Shape(shape)
			}
			var want [][2]string
			for _, p := range f.CutPairs() {
				if !strings.HasPrefix(p[0], "g") && !strings.HasPrefix(p[1], "g") {
					want = append(want, p)
				}
			}
			slices.SortFunc(want, func(a, b [2]string) int { return strings.Compare(a[0]+" "+a[1], b[0]+" "+b[1]) })
			var specs []*NetworkChaosSpec
			for _, tp := range e.Workflow.Spec.Templates {
				if tp.NetworkChaos != nil && tp.NetworkChaos.Action == ActionPartition && st.At == scheduledAt(e, tp.Name) {
					if tp.NetworkChaos.Direction != DirectionBoth {
						t.Errorf("%s: %s cuts in direction %s, want both", sc.Name, tp.Name, tp.NetworkChaos.Direction)
					}
					specs = append(specs, tp.NetworkChaos)
				}
			}
			if got := cutPairs(t, specs, x.topo.Members); !slices.Equal(got, want) {
				t.Errorf("%s: `%s` cuts %v in Chaos Mesh, the lab cuts %v", sc.Name, st.Do, got, want)
			}
		}
	}
}

// scheduledAt is when the schedule entry holding template name starts.
func scheduledAt(e *Export, name string) time.Duration {
	for _, s := range e.Schedule {
		if name == s.Template || strings.HasPrefix(name, s.Template+"-") {
			return s.Start
		}
	}
	return -1
}

func template(t *testing.T, w Workflow, name string) Template {
	t.Helper()
	for _, tp := range w.Spec.Templates {
		if tp.Name == name {
			return tp
		}
	}
	t.Fatalf("no template %s", name)
	return Template{}
}

// TestIsolateLeader: the leader can only be pinned; pinned to n1, the
// isolation is n1 cut from n2, n3 and from redis, 10 s to 25 s.
func TestIsolateLeader(t *testing.T) {
	sc := builtin(t, "isolate-leader")
	_, err := ChaosMesh(sc, DefaultConfig())
	if !errors.Is(err, ErrLeader) || !strings.Contains(err.Error(), "--leader") || !strings.Contains(err.Error(), "isolate-leader.yaml:") {
		t.Errorf("isolate-leader without a leader: %v; want ErrLeader saying where and to pass --leader", err)
	}
	e, w := exported(t, sc, pinned("n1"))
	if len(e.Schedule) != 1 || e.Schedule[0].Start != 10*time.Second || e.Schedule[0].End != 25*time.Second || e.Schedule[0].Resources != 2 {
		t.Fatalf("schedule %+v, want one partition from 10s to 25s in 2 resources", e.Schedule)
	}
	if wait := template(t, w, "f1-wait"); *wait.Deadline != "10s" {
		t.Errorf("f1-wait waits %s, want 10s", *wait.Deadline)
	}
	nodes := template(t, w, "f1-partition-1").NetworkChaos
	redis := template(t, w, "f1-partition-2").NetworkChaos
	members := newExporter(sc, pinned("n1")).topo.Members
	if got := sel(t, nodes.PodSelector, members); !slices.Equal(got, []string{"n1"}) {
		t.Errorf("f1-partition-1 selects %v, want n1", got)
	}
	if got := sel(t, *nodes.Target, members); !slices.Equal(got, []string{"n2", "n3"}) {
		t.Errorf("f1-partition-1 targets %v, want n2 n3", got)
	}
	if got := sel(t, *redis.Target, members); !slices.Equal(got, []string{"redis"}) {
		t.Errorf("f1-partition-2 targets %v, want redis", got)
	}
	if *template(t, w, "f1-partition-1").Deadline != "15s" {
		t.Errorf("the partition lasts %s, want 15s (10s to the heal at 25s)", *template(t, w, "f1-partition-1").Deadline)
	}
	if !slices.ContainsFunc(e.Notes, func(n string) bool { return strings.Contains(n, "pinned to n1") }) {
		t.Errorf("notes %q do not say the leader is pinned", e.Notes)
	}
	golden(t, e, "isolate-leader.yaml", "mpim chaos export --to chaos-mesh isolate-leader --leader n1")
}

// TestSplit23: five nodes split two against three: n1 n2 cut from n3 n4 n5
// and from redis; gateways are left out, and the notes say so and that the
// StatefulSet needs five replicas.
func TestSplit23(t *testing.T) {
	sc := builtin(t, "split-2-3")
	e, w := exported(t, sc, DefaultConfig())
	members := newExporter(sc, DefaultConfig()).topo.Members
	a, b := template(t, w, "f1-partition-1").NetworkChaos, template(t, w, "f1-partition-2").NetworkChaos
	if got := sel(t, a.PodSelector, members); !slices.Equal(got, []string{"n1", "n2"}) {
		t.Errorf("selector %v, want n1 n2", got)
	}
	if got := sel(t, *a.Target, members); !slices.Equal(got, []string{"n3", "n4", "n5"}) {
		t.Errorf("target %v, want n3 n4 n5", got)
	}
	if got := sel(t, *b.Target, members); !slices.Equal(got, []string{"redis"}) {
		t.Errorf("target %v, want redis", got)
	}
	for _, want := range []string{"needs 5 nodes", "gateways are left out"} {
		if !slices.ContainsFunc(e.Notes, func(n string) bool { return strings.Contains(n, want) }) {
			t.Errorf("notes %q lack %q", e.Notes, want)
		}
	}
	golden(t, e, "split-2-3.yaml", "mpim chaos export --to chaos-mesh split-2-3")
}

// TestNetemSegments: flaky-link's delay (10-30 s) and loss (20-30 s) on one
// link are a delay from 10 to 20 s and one netem with both from 20 to 30 s.
func TestNetemSegments(t *testing.T) {
	e, w := exported(t, builtin(t, "flaky-link"), DefaultConfig())
	want := []Entry{
		{Start: 10 * time.Second, End: 20 * time.Second, Template: "f1-delay", Kind: "NetworkChaos delay", Resources: 1, Faults: []string{"delay n1 n2 ms=50 jitter=20"}},
		{Start: 20 * time.Second, End: 30 * time.Second, Template: "f2-netem", Kind: "NetworkChaos netem", Resources: 1, Faults: []string{"delay n1 n2 ms=50 jitter=20", "loss n1 n2 percent=10"}},
	}
	if len(e.Schedule) != len(want) {
		t.Fatalf("schedule %+v, want %+v", e.Schedule, want)
	}
	for i := range want {
		if g := e.Schedule[i]; g.Start != want[i].Start || g.End != want[i].End || g.Template != want[i].Template || g.Kind != want[i].Kind || !slices.Equal(g.Faults, want[i].Faults) {
			t.Errorf("schedule[%d] = %+v, want %+v", i, g, want[i])
		}
	}
	n := template(t, w, "f2-netem").NetworkChaos
	if n.Direction != DirectionBoth || *n.Delay != (DelaySpec{Latency: "50ms", Jitter: "20ms"}) || *n.Loss != (LossSpec{Loss: "10"}) {
		t.Errorf("f2-netem = %+v; want both directions, 50ms±20ms, 10%% loss", n)
	}
}

// TestOneMemberLinks: `loss leader percent=20` pinned to n2 hits every link
// of n2: n2 against every other pod of the lab, both ways.
func TestOneMemberLinks(t *testing.T) {
	sc := builtin(t, "lossy-leader")
	_, w := exported(t, sc, pinned("n2"))
	l := template(t, w, "f1-loss").NetworkChaos
	members := newExporter(sc, pinned("n2")).topo.Members
	if got := sel(t, l.PodSelector, members); !slices.Equal(got, []string{"n2"}) {
		t.Errorf("selects %v, want n2", got)
	}
	if got := sel(t, *l.Target, members); !slices.Equal(got, []string{"n1", "n3", "g1", "g2", "g3", "redis"}) {
		t.Errorf("targets %v, want every member but n2", got)
	}
	if l.Direction != DirectionBoth || l.Loss.Loss != "20" {
		t.Errorf("loss %+v, want 20%% both ways", l)
	}
}

// TestKillRestart: kill … restart is a pod-failure for the time between
// them, on the node's pod or on redis.
func TestKillRestart(t *testing.T) {
	for _, tc := range []struct {
		scenario, member string
		start, end       time.Duration
	}{{"kill-under-load", "n2", 10 * time.Second, 22 * time.Second}, {"redis-down", "redis", 10 * time.Second, 22 * time.Second}} {
		sc := builtin(t, tc.scenario)
		e, w := exported(t, sc, DefaultConfig())
		if len(e.Schedule) != 1 || e.Schedule[0].Start != tc.start || e.Schedule[0].End != tc.end {
			t.Fatalf("%s: schedule %+v, want one kill from %s to %s", tc.scenario, e.Schedule, tc.start, tc.end)
		}
		p := template(t, w, "f1-kill").PodChaos
		if p.Action != PodFailure {
			t.Errorf("%s: action %s, want pod-failure", tc.scenario, p.Action)
		}
		if got := sel(t, p.PodSelector, newExporter(sc, DefaultConfig()).topo.Members); !slices.Equal(got, []string{tc.member}) {
			t.Errorf("%s: kills %v, want %s", tc.scenario, got, tc.member)
		}
	}
}

// TestOneway: oneway FROM / TO is a partition in direction to, from FROM's
// pods to TO's.
func TestOneway(t *testing.T) {
	sc := builtin(t, "one-way")
	_, w := exported(t, sc, DefaultConfig())
	o := template(t, w, "f1-oneway").NetworkChaos
	members := newExporter(sc, DefaultConfig()).topo.Members
	if o.Action != ActionPartition || o.Direction != DirectionTo ||
		!slices.Equal(sel(t, o.PodSelector, members), []string{"n1"}) || !slices.Equal(sel(t, *o.Target, members), []string{"n2", "n3"}) {
		t.Errorf("oneway n1 / n2 n3 = %+v; want partition to, from n1 to n2 n3", o)
	}
}

// TestRefusals: what cannot be mapped is refused for its reason.
func TestRefusals(t *testing.T) {
	for _, tc := range []struct {
		name, faults string
		cfg          Config
		want         error
		says         string
	}{
		{"pause", "- {at: 5s, do: pause n2}\n- {at: 8s, do: resume n2}", DefaultConfig(), ErrUnmappable, "SIGSTOP"},
		{"one gateway's link", "- {at: 5s, do: delay g1 n1 ms=40}", DefaultConfig(), ErrUnmappable, "gateway g1"},
		{"kill a gateway", "- {at: 5s, do: kill g2}", DefaultConfig(), ErrUnmappable, "gateway g2"},
		{"gateways only", "- {at: 5s, do: partition g1 g2 / n1 n2 n3 g3 redis}", DefaultConfig(), ErrUnmappable, "only gateways"},
		{"netem on a shared link", "- {at: 5s, do: delay n1 ms=40}\n- {at: 6s, do: loss n1 n2 percent=5}", DefaultConfig(), ErrUnmappable, "netem queue"},
		{"leader", "- {at: 5s, do: kill leader}", DefaultConfig(), ErrLeader, "--leader"},
		{"leader not a node", "- {at: 5s, do: kill leader}", pinned("n7"), ErrConfig, "not a node"},
		{"bad namespace", "- {at: 5s, do: kill n1}", Config{Namespace: "Not_A_Name"}, ErrConfig, "namespace"},
	} {
		sc, err := scenario.Parse([]byte("duration: 20s\nfaults:\n"+indent(tc.faults)), tc.name+".yaml")
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		_, err = ChaosMesh(sc, tc.cfg)
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s: %v; want %v saying %q", tc.name, err, tc.want, tc.says)
		}
	}
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(s, "\n", "\n  ") + "\n"
}

// TestDisjointLinks: netem faults on links that share no pair may overlap:
// they are separate resources, each ended by the heal.
func TestDisjointLinks(t *testing.T) {
	sc, err := scenario.Parse([]byte("duration: 20s\nfaults:\n"+indent("- {at: 5s, do: delay n1 n2 ms=40}\n- {at: 6s, do: loss n2 n3 percent=5}\n- {at: 9s, do: heal}")), "disjoint.yaml")
	if err != nil {
		t.Fatal(err)
	}
	e, _ := exported(t, sc, DefaultConfig())
	if len(e.Schedule) != 2 || e.Schedule[0].End != 9*time.Second || e.Schedule[1].End != 9*time.Second {
		t.Errorf("schedule %+v, want a delay and a loss, both healed at 9s", e.Schedule)
	}
}

// golden compares the export's YAML with testdata/NAME (rewritten with
// -update).
func golden(t *testing.T, e *Export, name, command string) {
	t.Helper()
	b, err := e.YAML(command)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to write it)", err)
	}
	if string(b) != string(want) {
		t.Errorf("export of %s differs from %s (go test -update rewrites it after review):\n%s", e.Scenario, path, b)
	}
}
