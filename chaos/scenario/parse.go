package scenario

import (
	"fmt"
	"math"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"mpim/chaos/fault"
)

// The fields each part of a file accepts, in the order the docs list them.
var (
	topFields      = []string{"name", "description", "cluster", "workload", "duration", "faults", "unsafe", "expect"}
	clusterFields  = []string{"nodes", "gateways", "shards"}
	workloadFields = []string{"users", "groups", "rate", "reads"}
	stepFields     = []string{"at", "do", "caption", "observe"}
)

// NumericKeys are the report keys an expectation may compare as numbers
// (shared/spec/lab.md, "Report"); keys under "availability.by_side." are
// numeric too. BoolKeys are compared as true or false; `linearizable` may
// also be expected to be "unknown".
var (
	NumericKeys = []string{
		"lost", "duplicated", "unexpected", "recovered", "fail_applied",
		"reordered", "resyncs", "stale_reads", "stale_local_reads", "divergent_conversations",
		"convergence_ms", "duration_s",
		"availability.overall", "availability.during_faults", "availability.outside_faults",
		"ops.ok", "ops.fail", "ops.info",
		"latency_ms.p50", "latency_ms.p99", "latency_ms.max",
	}
	BoolKeys = []string{"linearizable", "converged"}
)

// Parse reads a scenario from data; file names it in error messages.
func Parse(data []byte, file string) (*Scenario, error) {
	p := &parser{file: file}
	s, err := p.scenario(data)
	if err != nil {
		return nil, err
	}
	return s, nil
}

type parser struct{ file string }

func (p *parser) errf(line int, format string, args ...any) error {
	return &Error{File: p.file, Line: line, Msg: fmt.Sprintf(format, args...)}
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func (p *parser) scenario(data []byte) (*Scenario, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
			line, _ := strconv.Atoi(m[1])
			return nil, &Error{File: p.file, Line: line, Msg: "not valid YAML: " + m[2], Err: err}
		}
		return nil, &Error{File: p.file, Msg: "not valid YAML: " + strings.TrimPrefix(err.Error(), "yaml: "), Err: err}
	}
	if len(doc.Content) == 0 {
		return nil, p.errf(0, "the file is empty; a scenario needs at least `duration` and `faults`")
	}
	root := resolve(doc.Content[0])
	if root.Kind != yaml.MappingNode {
		return nil, p.errf(root.Line, "a scenario is a mapping of keys (%s), not %s", strings.Join(topFields, ", "), kindName(root))
	}
	s := &Scenario{Cluster: DefaultCluster, Workload: DefaultWorkload, File: p.file, Expect: map[string][]Expectation{}}
	top, err := p.fields(root, "", topFields)
	if err != nil {
		return nil, err
	}
	if v := top["name"]; v != nil {
		if s.Name, err = p.text(v, "name"); err != nil {
			return nil, err
		}
	} else {
		base := filepath.Base(p.file)
		s.Name = strings.TrimSuffix(base, filepath.Ext(base))
	}
	if v := top["description"]; v != nil {
		if s.Description, err = p.text(v, "description"); err != nil {
			return nil, err
		}
	}
	if err := p.cluster(top["cluster"], &s.Cluster); err != nil {
		return nil, err
	}
	if err := p.workload(top["workload"], &s.Workload); err != nil {
		return nil, err
	}
	v := top["duration"]
	if v == nil {
		return nil, p.errf(0, "duration is missing; add e.g. `duration: 40s`")
	}
	if s.Duration, err = p.duration(v, "duration"); err != nil {
		return nil, err
	}
	if s.Duration <= 0 {
		return nil, p.errf(v.Line, "duration %s must be more than zero", v.Value)
	}
	if s.Faults, err = p.faults(top["faults"], s); err != nil {
		return nil, err
	}
	if s.Unsafe, err = p.unsafe(top["unsafe"]); err != nil {
		return nil, err
	}
	if err := p.expect(top["expect"], s.Expect); err != nil {
		return nil, err
	}
	return s, nil
}

// fields checks that n is a mapping of known, distinct keys and returns
// their values by key. where names the part for messages ("" is the top
// level).
func (p *parser) fields(n *yaml.Node, where string, known []string) (map[string]*yaml.Node, error) {
	out := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), resolve(n.Content[i+1])
		if k.Kind != yaml.ScalarNode || !slices.Contains(known, k.Value) {
			if where == "" {
				return nil, p.errf(k.Line, "unknown top-level key %q (known: %s)", k.Value, strings.Join(known, ", "))
			}
			return nil, p.errf(k.Line, "unknown field %q in %s (known: %s)", k.Value, where, strings.Join(known, ", "))
		}
		if _, dup := out[k.Value]; dup {
			return nil, p.errf(k.Line, "%q is given twice; keep one", k.Value)
		}
		out[k.Value] = v
	}
	return out, nil
}

// mapping checks that n, the value of key, is a mapping.
func (p *parser) mapping(n *yaml.Node, key, example string) error {
	if n.Kind != yaml.MappingNode {
		return p.errf(n.Line, "%s must be a mapping, e.g. `%s: %s`, not %s", key, key, example, kindName(n))
	}
	return nil
}

func (p *parser) cluster(n *yaml.Node, c *Cluster) error {
	if n == nil {
		return nil
	}
	if err := p.mapping(n, "cluster", "{nodes: 3, gateways: 3, shards: 4}"); err != nil {
		return err
	}
	f, err := p.fields(n, "cluster", clusterFields)
	if err != nil {
		return err
	}
	for _, it := range []struct {
		key string
		dst *int
	}{{"nodes", &c.Nodes}, {"gateways", &c.Gateways}, {"shards", &c.Shards}} {
		if v := f[it.key]; v != nil {
			if *it.dst, err = p.count(v, "cluster "+it.key, 1); err != nil {
				return err
			}
		}
	}
	return nil
}

func (p *parser) workload(n *yaml.Node, w *Workload) error {
	if n == nil {
		return nil
	}
	if err := p.mapping(n, "workload", "{users: 12, groups: 2, rate: 200, reads: 0.2}"); err != nil {
		return err
	}
	f, err := p.fields(n, "workload", workloadFields)
	if err != nil {
		return err
	}
	if v := f["users"]; v != nil {
		if w.Users, err = p.count(v, "workload users", 1); err != nil {
			return err
		}
	}
	if v := f["groups"]; v != nil {
		if w.Groups, err = p.count(v, "workload groups", 0); err != nil {
			return err
		}
	}
	if v := f["rate"]; v != nil {
		if w.Rate, err = p.number(v, "workload rate"); err != nil {
			return err
		}
		if w.Rate <= 0 {
			return p.errf(v.Line, "workload rate %s must be more than zero (operations per second over all clients)", v.Value)
		}
	}
	if v := f["reads"]; v != nil {
		if w.Reads, err = p.number(v, "workload reads"); err != nil {
			return err
		}
		if w.Reads < 0 || w.Reads > 1 {
			return p.errf(v.Line, "workload reads %s must be a share between 0 and 1 (0.2: one operation in five is a read)", v.Value)
		}
	}
	return nil
}

func (p *parser) faults(n *yaml.Node, s *Scenario) ([]Step, error) {
	if n == nil || n.ShortTag() == "!!null" {
		return nil, nil
	}
	if n.Kind != yaml.SequenceNode {
		return nil, p.errf(n.Line, "faults must be a list of steps, e.g. `- {at: 10s, do: \"partition halves\"}`, not %s", kindName(n))
	}
	members := s.Members()
	var steps []Step
	for _, item := range n.Content {
		item = resolve(item)
		if item.Kind != yaml.MappingNode {
			return nil, p.errf(item.Line, "a fault step is a mapping with at and do, e.g. `- {at: 10s, do: heal}`, not %s", kindName(item))
		}
		f, err := p.fields(item, "a fault step", stepFields)
		if err != nil {
			return nil, err
		}
		st := Step{Line: item.Line}
		v := f["at"]
		if v == nil {
			return nil, p.errf(item.Line, "fault step has no `at`; add the time since the start, e.g. `at: 10s`")
		}
		if st.At, err = p.duration(v, "at"); err != nil {
			return nil, err
		}
		switch {
		case st.At < 0:
			return nil, p.errf(v.Line, "at %s is before the start; times count from the start of the workload", v.Value)
		case st.At >= s.Duration:
			return nil, p.errf(v.Line, "at %s is not within the run's duration %s; move the step earlier or lengthen duration", v.Value, s.Duration)
		case len(steps) > 0 && st.At < steps[len(steps)-1].At:
			return nil, p.errf(v.Line, "at %s comes before the previous step's %s; list fault steps in time order", v.Value, steps[len(steps)-1].At)
		}
		v = f["do"]
		if v == nil {
			return nil, p.errf(item.Line, "fault step has no `do`; add a fault, e.g. `do: \"partition isolate:leader\"` or `do: heal`")
		}
		if st.Do, err = p.text(v, "do"); err != nil {
			return nil, err
		}
		if st.Fault, err = fault.Parse(st.Do); err != nil {
			return nil, &Error{File: p.file, Line: v.Line, Msg: fmt.Sprintf("do %q: %v", st.Do, err), Err: err}
		}
		if err := checkMembers(st.Fault, members); err != nil {
			return nil, &Error{File: p.file, Line: v.Line, Msg: fmt.Sprintf("do %q: %v (set cluster nodes and gateways to match)", st.Do, err), Err: err}
		}
		for _, t := range []struct {
			key string
			dst *string
		}{{"caption", &st.Caption}, {"observe", &st.Observe}} {
			if v := f[t.key]; v != nil {
				if *t.dst, err = p.text(v, t.key); err != nil {
					return nil, err
				}
			}
		}
		steps = append(steps, st)
	}
	return steps, nil
}

// checkMembers checks that every member f names exists in the cluster.
func checkMembers(f fault.Fault, members []string) error {
	if _, err := f.Complete(members); err != nil {
		return err
	}
	if m, ok := strings.CutPrefix(f.Shape, "isolate:"); ok && m != fault.Leader && !slices.Contains(members, m) {
		return fmt.Errorf("%w: no member %q in this lab (members: %s)", fault.ErrSyntax, m, strings.Join(members, " "))
	}
	return nil
}

func (p *parser) unsafe(n *yaml.Node) ([]string, error) {
	if n == nil {
		return nil, nil
	}
	if n.Kind != yaml.SequenceNode {
		return nil, p.errf(n.Line, "unsafe must be a list, e.g. `unsafe: [ack-before-commit]`, not %s", kindName(n))
	}
	var out []string
	for _, item := range n.Content {
		item = resolve(item)
		if item.Kind != yaml.ScalarNode || !slices.Contains(UnsafeSwitches, item.Value) {
			return nil, p.errf(item.Line, "unknown unsafe switch %q (known: %s)", item.Value, strings.Join(UnsafeSwitches, ", "))
		}
		out = append(out, item.Value)
	}
	return out, nil
}

func (p *parser) expect(n *yaml.Node, out map[string][]Expectation) error {
	if n == nil || n.ShortTag() == "!!null" {
		return nil
	}
	if err := p.mapping(n, "expect", "{cp: {lost: 0}, ap: {converged: true}}"); err != nil {
		return err
	}
	modes, err := p.fields(n, "expect (the mode keys)", Modes)
	if err != nil {
		return err
	}
	for _, mode := range Modes {
		m := modes[mode]
		if m == nil || m.ShortTag() == "!!null" {
			continue
		}
		if err := p.mapping(m, mode, "{lost: 0, \"availability.during_faults\": \">= 0.99\"}"); err != nil {
			return err
		}
		list := []Expectation{}
		seen := map[string]bool{}
		for i := 0; i+1 < len(m.Content); i += 2 {
			k, v := resolve(m.Content[i]), resolve(m.Content[i+1])
			if seen[k.Value] {
				return p.errf(k.Line, "expectation %q is given twice in %s; keep one", k.Value, mode)
			}
			seen[k.Value] = true
			e, err := p.expectation(k, v)
			if err != nil {
				return err
			}
			list = append(list, e)
		}
		out[mode] = list
	}
	return nil
}

func (p *parser) expectation(k, v *yaml.Node) (Expectation, error) {
	e := Expectation{Key: k.Value, Line: k.Line}
	numeric := slices.Contains(NumericKeys, k.Value) || strings.HasPrefix(k.Value, "availability.by_side.")
	if k.Kind != yaml.ScalarNode || (!numeric && !slices.Contains(BoolKeys, k.Value)) {
		return e, p.errf(k.Line, "%q is not a report key; expect one of %s, %s or availability.by_side.SIDE",
			k.Value, strings.Join(NumericKeys, ", "), strings.Join(BoolKeys, ", "))
	}
	if v.Kind != yaml.ScalarNode || v.ShortTag() == "!!null" {
		return e, p.errf(v.Line, "expectation %s needs a value to equal or a comparison such as \">= 0.99\", not %s", k.Value, kindName(v))
	}
	switch v.ShortTag() {
	case "!!bool":
		var b bool
		if err := v.Decode(&b); err != nil {
			return e, p.errf(v.Line, "expectation %s: %q is not true or false", k.Value, v.Value)
		}
		e.Want = b
	case "!!int", "!!float":
		f, err := p.number(v, "expectation "+k.Value)
		if err != nil {
			return e, err
		}
		e.Want = f
	default:
		s := strings.TrimSpace(v.Value)
		if _, _, isCmp, err := parseComparison(s); isCmp {
			if err != nil {
				return e, p.errf(v.Line, "expectation %s: %v", k.Value, err)
			}
			e.Want = s
		} else if f, err := strconv.ParseFloat(s, 64); err == nil && !math.IsNaN(f) {
			e.Want = f
		} else {
			e.Want = s
		}
	}
	switch w := e.Want.(type) {
	case bool:
		if numeric {
			return e, p.errf(v.Line, "expectation %s is a number; write a value such as 0 or a comparison such as \"> 0\", not %v", k.Value, w)
		}
	case float64:
		if !numeric {
			return e, p.errf(v.Line, "expectation %s is true or false, not %v", k.Value, v.Value)
		}
	case string:
		_, _, isCmp, _ := parseComparison(w)
		switch {
		case numeric && !isCmp:
			return e, p.errf(v.Line, "expectation %s: %q is neither a number nor a comparison such as \">= 0.99\" (operators: ==, !=, >=, <=, >, <)", k.Value, w)
		case !numeric && isCmp:
			return e, p.errf(v.Line, "expectation %s is true or false and cannot be compared with %q", k.Value, w)
		case !numeric && !(k.Value == "linearizable" && w == "unknown"):
			return e, p.errf(v.Line, "expectation %s is true or false, not %q", k.Value, w)
		}
	}
	return e, nil
}

// The comparison operators, longest first so that ">=" is not read as ">".
var operators = []string{">=", "<=", "==", "!=", ">", "<"}

// parseComparison splits a comparison string such as ">= 0.99". isCmp
// says whether s starts with an operator; err whether the rest is not a
// number.
func parseComparison(s string) (op string, n float64, isCmp bool, err error) {
	s = strings.TrimSpace(s)
	for _, o := range operators {
		if rest, ok := strings.CutPrefix(s, o); ok {
			rest = strings.TrimSpace(rest)
			n, perr := strconv.ParseFloat(rest, 64)
			if perr != nil || math.IsNaN(n) {
				return o, 0, true, fmt.Errorf("%q: %s must be followed by a number, e.g. \"%s 0.99\"", s, o, o)
			}
			return o, n, true, nil
		}
	}
	return "", 0, false, nil
}

func (p *parser) text(n *yaml.Node, key string) (string, error) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() == "!!null" {
		return "", p.errf(n.Line, "%s must be a text, not %s", key, kindName(n))
	}
	return n.Value, nil
}

func (p *parser) count(n *yaml.Node, key string, min int) (int, error) {
	i, err := strconv.Atoi(n.Value)
	if n.Kind != yaml.ScalarNode || err != nil || i < min {
		return 0, p.errf(n.Line, "%s must be a whole number of at least %d, not %s", key, min, describe(n))
	}
	return i, nil
}

func (p *parser) number(n *yaml.Node, key string) (float64, error) {
	var f float64
	if n.Kind != yaml.ScalarNode || (n.ShortTag() != "!!int" && n.ShortTag() != "!!float") || n.Decode(&f) != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, p.errf(n.Line, "%s must be a number, not %s", key, describe(n))
	}
	return f, nil
}

func (p *parser) duration(n *yaml.Node, key string) (time.Duration, error) {
	if n.Kind != yaml.ScalarNode {
		return 0, p.errf(n.Line, "%s must be a duration such as 10s or 1m30s, not %s", key, kindName(n))
	}
	d, err := time.ParseDuration(strings.TrimSpace(n.Value))
	if err != nil {
		return 0, p.errf(n.Line, "%s %q is not a duration; write e.g. 10s, 1500ms or 1m30s", key, n.Value)
	}
	return d, nil
}

// resolve follows an alias to the node it names.
func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	if n.ShortTag() == "!!null" {
		return "nothing"
	}
	return fmt.Sprintf("%q", n.Value)
}

func describe(n *yaml.Node) string {
	if n.Kind == yaml.ScalarNode && n.ShortTag() != "!!null" {
		return strconv.Quote(n.Value)
	}
	return kindName(n)
}
