// Package fault is the lab's one fault vocabulary (shared/spec/lab.md):
// partition, oneway, delay, loss, kill, restart, pause, resume and heal,
// parsed from the one spelling that the CLI, scenario files, the HTTP API
// and the dashboard all use, and printed back in that spelling.
package fault

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Verb is a fault's kind.
type Verb string

// The verbs of the vocabulary.
const (
	Partition Verb = "partition"
	Oneway    Verb = "oneway"
	Delay     Verb = "delay"
	Loss      Verb = "loss"
	Kill      Verb = "kill"
	Restart   Verb = "restart"
	Pause     Verb = "pause"
	Resume    Verb = "resume"
	Heal      Verb = "heal"
)

// Verbs lists every verb, in the order the spec gives them.
var Verbs = []Verb{Partition, Oneway, Delay, Loss, Kill, Restart, Pause, Resume, Heal}

// Leader names, as a target of kill, restart, pause and resume, the node
// that leads shard 0 (in AP mode: n1).
const Leader = "leader"

// Fault is one parsed fault.
type Fault struct {
	Verb Verb `json:"verb"`
	// Groups are a partition's sides, or a oneway's FROM and TO.
	Groups [][]string `json:"groups,omitempty"`
	// Shape is a partition shape instead of groups: halves, isolate:<m>,
	// majorities-ring, bridge.
	Shape string `json:"shape,omitempty"`
	// Cuts are the member pairs a partition cuts (both directions) when
	// its groups overlap in what they reach (majorities-ring, bridge): the
	// groups then only name the sides for reports. Without Cuts every
	// pair across two groups is cut.
	Cuts [][2]string `json:"cuts,omitempty"`
	// Members are the targets of delay and loss (one member: every link
	// touching it; two: that link) and of kill, restart, pause and resume
	// (exactly one).
	Members []string `json:"members,omitempty"`
	// MS and Jitter are delay's latency in milliseconds; Percent is loss's
	// share of traffic.
	MS      int `json:"ms,omitempty"`
	Jitter  int `json:"jitter,omitempty"`
	Percent int `json:"percent,omitempty"`
}

// ErrSyntax wraps every parse error.
var ErrSyntax = errors.New("fault")

func syntaxf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrSyntax, fmt.Sprintf(format, args...))
}

// Shapes are the partition shapes over the nodes.
var Shapes = []string{"halves", "isolate:<member>", "isolate:leader", "majorities-ring", "bridge"}

// Parse reads one fault in the vocabulary's spelling, e.g.
// "partition n1 g1 / n2 n3 g2 g3 redis", "oneway n1 / n2", "delay n1 n2
// ms=40 jitter=20", "kill leader", "heal". It checks the syntax only;
// which members exist is the lab's to check.
func Parse(s string) (Fault, error) {
	words := strings.Fields(s)
	if len(words) == 0 {
		return Fault{}, syntaxf("empty fault; use one of %s", verbList())
	}
	f := Fault{Verb: Verb(words[0])}
	args := words[1:]
	switch f.Verb {
	case Partition:
		if len(args) == 1 && !strings.Contains(args[0], "/") {
			if !validShape(args[0]) {
				return f, syntaxf("partition %s: not a shape (%s) and no groups; write e.g. `partition n1 / n2 n3`", args[0], strings.Join(Shapes, ", "))
			}
			f.Shape = args[0]
			return f, nil
		}
		groups, err := splitGroups(args)
		if err != nil {
			return f, err
		}
		if len(groups) < 2 {
			return f, syntaxf("partition needs two or more groups separated by /, e.g. `partition n1 g1 / n2 n3`, or a shape (%s)", strings.Join(Shapes, ", "))
		}
		f.Groups = groups
	case Oneway:
		groups, err := splitGroups(args)
		if err != nil {
			return f, err
		}
		if len(groups) != 2 {
			return f, syntaxf("oneway needs FROM / TO, e.g. `oneway n1 / n2 n3`")
		}
		f.Groups = groups
	case Delay, Loss:
		for _, a := range args {
			k, v, ok := strings.Cut(a, "=")
			if !ok {
				f.Members = append(f.Members, a)
				continue
			}
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return f, syntaxf("%s: %s must be a non-negative integer", f.Verb, a)
			}
			switch {
			case f.Verb == Delay && k == "ms":
				f.MS = n
			case f.Verb == Delay && k == "jitter":
				f.Jitter = n
			case f.Verb == Loss && k == "percent":
				if n > 100 {
					return f, syntaxf("loss: percent=%d is over 100", n)
				}
				f.Percent = n
			default:
				return f, syntaxf("%s: unknown parameter %q", f.Verb, k)
			}
		}
		if len(f.Members) < 1 || len(f.Members) > 2 {
			return f, syntaxf("%s needs one member (every link touching it) or two (that link), e.g. `delay n1 n2 ms=40 jitter=20`", f.Verb)
		}
		if f.Verb == Delay && f.MS == 0 && f.Jitter == 0 {
			return f, syntaxf("delay needs ms=N (and optionally jitter=N)")
		}
		if f.Verb == Loss && f.Percent == 0 {
			return f, syntaxf("loss needs percent=N")
		}
	case Kill, Restart, Pause, Resume:
		if len(args) != 1 {
			return f, syntaxf("%s needs exactly one member or `leader`, e.g. `%s n2`", f.Verb, f.Verb)
		}
		f.Members = args
	case Heal:
		if len(args) != 0 {
			return f, syntaxf("heal takes no arguments (it removes every network fault)")
		}
	default:
		return f, syntaxf("unknown verb %q; use one of %s", words[0], verbList())
	}
	return f, nil
}

func verbList() string {
	s := make([]string, len(Verbs))
	for i, v := range Verbs {
		s[i] = string(v)
	}
	return strings.Join(s, ", ")
}

func validShape(s string) bool {
	switch s {
	case "halves", "majorities-ring", "bridge":
		return true
	}
	m, ok := strings.CutPrefix(s, "isolate:")
	return ok && m != ""
}

// splitGroups splits "a b / c d" (also "a b/c d") into groups.
func splitGroups(args []string) ([][]string, error) {
	joined := strings.ReplaceAll(strings.Join(args, " "), "/", " / ")
	var groups [][]string
	cur := []string{}
	seen := map[string]bool{}
	for _, w := range strings.Fields(joined) {
		if w == "/" {
			groups = append(groups, cur)
			cur = []string{}
			continue
		}
		if seen[w] {
			return nil, syntaxf("member %s is named twice; each member belongs to one group", w)
		}
		seen[w] = true
		cur = append(cur, w)
	}
	groups = append(groups, cur)
	for i, g := range groups {
		if len(g) == 0 && i != len(groups)-1 {
			return nil, syntaxf("empty group in %q", strings.Join(args, " "))
		}
	}
	return groups, nil
}

// String spells f in the vocabulary, so that Parse(f.String()) == f.
func (f Fault) String() string {
	parts := []string{string(f.Verb)}
	switch f.Verb {
	case Partition, Oneway:
		if f.Shape != "" {
			return string(f.Verb) + " " + f.Shape
		}
		gs := make([]string, len(f.Groups))
		for i, g := range f.Groups {
			gs[i] = strings.Join(g, " ")
		}
		return string(f.Verb) + " " + strings.Join(gs, " / ")
	case Delay:
		parts = append(parts, f.Members...)
		parts = append(parts, "ms="+strconv.Itoa(f.MS))
		if f.Jitter > 0 {
			parts = append(parts, "jitter="+strconv.Itoa(f.Jitter))
		}
	case Loss:
		parts = append(parts, f.Members...)
		parts = append(parts, "percent="+strconv.Itoa(f.Percent))
	default:
		parts = append(parts, f.Members...)
	}
	return strings.Join(parts, " ")
}

// CutPairs are the member pairs a partition cuts: f.Cuts when set, else
// every pair across two groups.
func (f Fault) CutPairs() [][2]string {
	if f.Cuts != nil {
		return f.Cuts
	}
	var out [][2]string
	for i, g := range f.Groups {
		for _, h := range f.Groups[i+1:] {
			for _, a := range g {
				for _, b := range h {
					out = append(out, [2]string{a, b})
				}
			}
		}
	}
	return out
}

// Complete fills a partition's last group with the members not named in
// any group ("members not named join the last group") and checks every
// named member exists.
func (f Fault) Complete(members []string) (Fault, error) {
	named := map[string]bool{}
	for _, g := range f.Groups {
		for _, m := range g {
			if !slices.Contains(members, m) {
				return f, fmt.Errorf("%w: no member %q in this lab (members: %s)", ErrSyntax, m, strings.Join(members, " "))
			}
			named[m] = true
		}
	}
	for _, m := range f.Members {
		if m != Leader && !slices.Contains(members, m) {
			return f, fmt.Errorf("%w: no member %q in this lab (members: %s)", ErrSyntax, m, strings.Join(members, " "))
		}
	}
	if f.Verb != Partition || len(f.Groups) == 0 {
		return f, nil
	}
	out := f
	out.Groups = make([][]string, len(f.Groups))
	for i, g := range f.Groups {
		out.Groups[i] = slices.Clone(g)
	}
	last := len(out.Groups) - 1
	for _, m := range members {
		if !named[m] {
			out.Groups[last] = append(out.Groups[last], m)
		}
	}
	if len(out.Groups[last]) == 0 {
		return f, fmt.Errorf("%w: the last group of %q is empty", ErrSyntax, f)
	}
	return out, nil
}
