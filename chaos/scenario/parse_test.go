package scenario

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"mpim/chaos/fault"
)

// TestParseErrors checks that each bad file is refused with its file name,
// the line of the mistake and a message saying what is wrong.
func TestParseErrors(t *testing.T) {
	tests := []struct {
		file string
		line int // 0: the error names no line
		want string
	}{
		{"unknown-step-field.yaml", 7, `unknown field "dooo" in a fault step`},
		{"unknown-top-key.yaml", 2, `unknown top-level key "clutser"`},
		{"unknown-cluster-field.yaml", 4, `unknown field "node" in cluster`},
		{"bad-duration.yaml", 3, `duration "40" is not a duration`},
		{"zero-duration.yaml", 1, "must be more than zero"},
		{"missing-duration.yaml", 0, "duration is missing"},
		{"bad-at.yaml", 4, `at "ten seconds" is not a duration`},
		{"fault-after-end.yaml", 5, "not within the run's duration"},
		{"out-of-order.yaml", 5, "comes before the previous step's 20s"},
		{"bad-do.yaml", 5, `do "partiton halves": fault: unknown verb "partiton"`},
		{"unknown-member.yaml", 4, `no member "n4"`},
		{"missing-do.yaml", 3, "fault step has no `do`"},
		{"bad-mode.yaml", 4, `unknown field "ap-repair" in expect`},
		{"bad-comparison.yaml", 5, `">= high": >= must be followed by a number`},
		{"unknown-report-key.yaml", 5, `"lots" is not a report key`},
		{"bool-key-number.yaml", 3, "expectation linearizable is true or false"},
		{"numeric-key-word.yaml", 4, `"none" is neither a number nor a comparison`},
		{"bad-unsafe.yaml", 4, `unknown unsafe switch "skip-fsync"`},
		{"bad-reads.yaml", 3, "workload reads 1.5 must be a share between 0 and 1"},
		{"bad-yaml.yaml", 5, "not valid YAML"},
		{"not-a-mapping.yaml", 1, "a scenario is a mapping"},
		{"duplicate-key.yaml", 5, `"at" is given twice`},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			path := filepath.Join("testdata", tt.file)
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			_, err = Parse(data, tt.file)
			if err == nil {
				t.Fatalf("%s parsed; want an error at line %d containing %q", tt.file, tt.line, tt.want)
			}
			prefix := tt.file + ": "
			if tt.line > 0 {
				prefix = tt.file + ":" + strconv.Itoa(tt.line) + ": "
			}
			if !strings.HasPrefix(err.Error(), prefix) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q: want prefix %q and %q in it", err, prefix, tt.want)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %q does not wrap ErrInvalid", err)
			}
			var se *Error
			if !errors.As(err, &se) || se.Line != tt.line {
				t.Errorf("error %q: want an *Error at line %d", err, tt.line)
			}
		})
	}
}

// TestParseFaultError checks that a bad `do` keeps the fault package's
// error reachable with errors.Is.
func TestParseFaultError(t *testing.T) {
	_, err := Parse([]byte("duration: 40s\nfaults:\n  - {at: 1s, do: \"partition\"}\n"), "x.yaml")
	if !errors.Is(err, fault.ErrSyntax) || !strings.HasPrefix(err.Error(), "x.yaml:3: ") {
		t.Fatalf("error %v: want x.yaml:3 wrapping fault.ErrSyntax", err)
	}
}

// TestParseFull checks every field of a complete file, the defaults of
// omitted ones, and that expectations keep the file's order.
func TestParseFull(t *testing.T) {
	s, err := Load(filepath.Join("testdata", "full.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "full" || s.Description != "Every field." || s.File != "testdata/full.yaml" {
		t.Errorf("name %q, description %q, file %q", s.Name, s.Description, s.File)
	}
	if want := (Cluster{Nodes: 5, Gateways: 2, Shards: 4}); s.Cluster != want {
		t.Errorf("cluster %+v, want %+v (shards defaulted)", s.Cluster, want)
	}
	if want := (Workload{Users: 6, Groups: 2, Rate: 50.5, Reads: 0.2}); s.Workload != want {
		t.Errorf("workload %+v, want %+v", s.Workload, want)
	}
	if s.Duration != time.Minute {
		t.Errorf("duration %v, want 1m", s.Duration)
	}
	wantSteps := []Step{
		{At: 10 * time.Second, Do: "partition n1 g1 / n2 n3", Caption: "Cut.", Observe: "Watch.", Line: 10,
			Fault: fault.Fault{Verb: fault.Partition, Groups: [][]string{{"n1", "g1"}, {"n2", "n3"}}}},
		{At: 10 * time.Second, Do: "delay n4 ms=40", Line: 14,
			Fault: fault.Fault{Verb: fault.Delay, Members: []string{"n4"}, MS: 40}},
		{At: 30 * time.Second, Do: "heal", Line: 15, Fault: fault.Fault{Verb: fault.Heal}},
	}
	if !reflect.DeepEqual(s.Faults, wantSteps) {
		t.Errorf("faults\n%+v\nwant\n%+v", s.Faults, wantSteps)
	}
	if !reflect.DeepEqual(s.Unsafe, []string{"local-linearizable"}) {
		t.Errorf("unsafe %v", s.Unsafe)
	}
	wantCP := []Expectation{
		{Key: "lost", Want: 0.0, Line: 21},
		{Key: "linearizable", Want: "unknown", Line: 22},
		{Key: "availability.during_faults", Want: ">= 0.99", Line: 23},
		{Key: "stale_reads", Want: 0.0, Line: 24},
		{Key: "latency_ms.p99", Want: "<500", Line: 25},
	}
	if !reflect.DeepEqual(s.Expect["cp"], wantCP) {
		t.Errorf("cp expectations\n%+v\nwant\n%+v", s.Expect["cp"], wantCP)
	}
	if want := []Expectation{{Key: "converged", Want: true, Line: 19}}; !reflect.DeepEqual(s.Expect["ap"], want) {
		t.Errorf("ap expectations %+v, want %+v", s.Expect["ap"], want)
	}
	if _, ok := s.Expect["ap-norepair"]; ok {
		t.Errorf("an empty ap-norepair gave expectations %+v", s.Expect["ap-norepair"])
	}
}

// TestParseNameFromFile checks that a file without a name is named after
// the file.
func TestParseNameFromFile(t *testing.T) {
	s, err := Parse([]byte("duration: 5s\n"), "dir/my-scenario.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "my-scenario" || len(s.Faults) != 0 || s.Cluster != DefaultCluster || s.Workload != DefaultWorkload {
		t.Errorf("got %+v", s)
	}
}

// TestLoadMissing checks the message for a file that is not there.
func TestLoadMissing(t *testing.T) {
	_, err := Load(filepath.Join("testdata", "no-such.yaml"))
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "mpim chaos list") {
		t.Errorf("error %v: want ErrInvalid pointing at `mpim chaos list`", err)
	}
}
