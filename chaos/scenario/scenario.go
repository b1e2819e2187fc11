// Package scenario reads the chaos harness's scenario files (the "Scenario
// files (YAML)" section of shared/spec/lab.md): a cluster shape, a
// workload, a schedule of faults in the lab's one fault vocabulary
// (package fault), and the expectations each mode must meet, which
// Evaluate checks against a run's report.
//
// A file is checked strictly when it is read: an unknown key, a duration
// that does not parse, a fault outside the run or out of order, a `do` that
// is not in the vocabulary, a member the cluster does not have or an
// expectation on a key no report carries is an error naming the file and
// line, so that a teacher's typo fails before a cluster is started rather
// than as a puzzling verdict forty seconds later.
//
// Beyond lab.md, a file may carry `unsafe: [ack-before-commit]` or
// `unsafe: [local-linearizable]`: CP mode's unsafe teaching switches
// (docs/cp-mode.md), turned on for the CP run of the scenario so that its
// expectations can show the checkers catching the broken system. AP runs
// ignore them. The built-in library lives in package mpim/scenarios and is
// described in scenarios/README.md.
package scenario

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
	"time"

	"mpim/chaos/fault"
	"mpim/scenarios"
)

// Errors of this package, checked with errors.Is.
var (
	// ErrInvalid wraps every error about a scenario file's content.
	ErrInvalid = errors.New("scenario")
	// ErrNotFound is Builtin's error for a name the library does not hold.
	ErrNotFound = errors.New("scenario: no such built-in scenario")
)

// Mode keys of a scenario's expect section: CP, AP with repair on, and AP
// with repair off.
const (
	ModeCP         = "cp"
	ModeAP         = "ap"
	ModeAPNoRepair = "ap-norepair"
)

// Modes lists the mode keys in the order reports present them.
var Modes = []string{ModeCP, ModeAP, ModeAPNoRepair}

// UnsafeSwitches are the values the `unsafe` list accepts: CP mode's
// teaching switches that break Raft's guarantees on purpose.
var UnsafeSwitches = []string{"ack-before-commit", "local-linearizable"}

// Scenario is one parsed scenario file.
type Scenario struct {
	Name, Description string
	Cluster           Cluster
	Workload          Workload
	// Duration is how long the workload runs, faults included.
	Duration time.Duration
	// Faults is the schedule, in time order.
	Faults []Step
	// Unsafe are CP unsafe switches (see UnsafeSwitches) for the CP run.
	Unsafe []string
	// Expect holds the expectations by mode key (ModeCP, ModeAP,
	// ModeAPNoRepair), each list in the order of the file.
	Expect map[string][]Expectation
	// File is where the scenario came from, for messages.
	File string
}

// Cluster is the shape of the cluster a scenario starts.
type Cluster struct {
	Nodes, Gateways, Shards int
}

// Workload is the load the harness's clients put on the cluster.
type Workload struct {
	// Users is the number of client users; Groups the number of group
	// conversations they share.
	Users, Groups int
	// Rate is operations per second over all clients.
	Rate float64
	// Reads is the share of operations that are reads, 0 to 1.
	Reads float64
}

// Step is one scheduled fault.
type Step struct {
	// At is the time since the workload started.
	At time.Duration
	// Do is the fault as written in the file, and Fault its parse.
	Do    string
	Fault fault.Fault
	// Caption says what the step does and Observe what to watch for, for
	// the guided mode and the report.
	Caption, Observe string
	// Line is the step's line in the file.
	Line int
}

// Expectation is one expected report value.
type Expectation struct {
	// Key is a report key, dotted for nested ones
	// ("availability.during_faults").
	Key string
	// Want is a float64 or a bool to equal, a string to equal (such as
	// "unknown"), or a comparison string such as ">= 0.99" or "> 0".
	Want any
	// Line is the expectation's line in the file.
	Line int
}

// DefaultCluster and DefaultWorkload are what a file that omits them, or
// some of their fields, gets.
var (
	DefaultCluster  = Cluster{Nodes: 3, Gateways: 3, Shards: 4}
	DefaultWorkload = Workload{Users: 12, Groups: 2, Rate: 200, Reads: 0.2}
)

// Error is a problem with a scenario file, at a line when one is known.
// It unwraps to ErrInvalid and, for a bad fault, to fault.ErrSyntax.
type Error struct {
	File string
	Line int
	Msg  string
	Err  error
}

// Error spells the problem as "file:line: message", the form editors and
// terminals turn into links.
func (e *Error) Error() string {
	file := e.File
	if file == "" {
		file = "scenario"
	}
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", file, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", file, e.Msg)
}

// Unwrap lets errors.Is find ErrInvalid and the cause.
func (e *Error) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrInvalid, e.Err}
	}
	return []error{ErrInvalid}
}

// Load reads and parses the scenario file at path.
func Load(path string) (*Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v (give a scenario file, or a built-in name from `mpim chaos list`)", ErrInvalid, err)
	}
	return Parse(data, path)
}

// Builtin returns the library scenario called name (with or without the
// .yaml suffix).
func Builtin(name string) (*Scenario, error) {
	file := strings.TrimSuffix(name, ".yaml") + ".yaml"
	data, err := fs.ReadFile(scenarios.FS, file)
	if err != nil {
		return nil, fmt.Errorf("%w: %q; `mpim chaos list` shows the built-in ones (%s)", ErrNotFound, name, strings.Join(builtinNames(), ", "))
	}
	return Parse(data, file)
}

// List returns every library scenario, sorted by name. It panics if an
// embedded file does not parse, a build defect this package's tests rule
// out.
func List() []*Scenario {
	var out []*Scenario
	for _, n := range builtinNames() {
		s, err := Builtin(n)
		if err != nil {
			panic(fmt.Sprintf("scenario: built-in %s does not parse: %v", n, err))
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b *Scenario) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func builtinNames() []string {
	files, _ := fs.Glob(scenarios.FS, "*.yaml")
	names := make([]string, len(files))
	for i, f := range files {
		names[i] = strings.TrimSuffix(f, ".yaml")
	}
	slices.Sort(names)
	return names
}

// Members returns the lab members of the scenario's cluster: n1..nN,
// g1..gM and redis.
func (s *Scenario) Members() []string {
	var m []string
	for i := 1; i <= s.Cluster.Nodes; i++ {
		m = append(m, fmt.Sprintf("n%d", i))
	}
	for i := 1; i <= s.Cluster.Gateways; i++ {
		m = append(m, fmt.Sprintf("g%d", i))
	}
	return append(m, "redis")
}
