package scenario

import (
	"encoding/json"
	"math"
	"testing"
)

// report is a report as chaos reads it back from JSON.
func report(t *testing.T) map[string]any {
	t.Helper()
	var r map[string]any
	err := json.Unmarshal([]byte(`{
		"lost": 0, "duplicated": 2, "linearizable": "unknown", "converged": true,
		"convergence_ms": 250, "resyncs": null,
		"availability": {"overall": 0.995, "during_faults": 0.5, "by_side": {"g1,n1": 0.25}},
		"latency_ms": {"p50": 3.5, "p99": 40}
	}`), &r)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestEvaluate checks every comparison form, equality of numbers, bools
// and strings, nested and dotted keys, and missing keys.
func TestEvaluate(t *testing.T) {
	tests := []struct {
		key  string
		want any
		ok   bool
		got  any
	}{
		{"lost", 0.0, true, 0.0},
		{"lost", 1.0, false, 0.0},
		{"lost", "== 0", true, 0.0},
		{"lost", "!= 0", false, 0.0},
		{"duplicated", "!= 0", true, 2.0},
		{"duplicated", "> 1", true, 2.0},
		{"duplicated", "> 2", false, 2.0},
		{"duplicated", ">= 2", true, 2.0},
		{"duplicated", "< 2", false, 2.0},
		{"duplicated", "<= 2", true, 2.0},
		{"duplicated", "<3", true, 2.0},
		{"availability.overall", ">= 0.99", true, 0.995},
		{"availability.during_faults", ">= 0.99", false, 0.5},
		{"availability.by_side.g1,n1", "< 0.5", true, 0.25},
		{"latency_ms.p99", "< 50", true, 40.0},
		{"converged", true, true, true},
		{"converged", false, false, true},
		{"linearizable", true, false, "unknown"},
		{"linearizable", "unknown", true, "unknown"},
		{"linearizable", "> 0", false, "unknown"},
		{"converged", "== 1", false, true},
		{"convergence_ms", 250.0, true, 250.0},
		{"resyncs", 0.0, false, nil},
		{"stale_reads", 0.0, false, nil},
		{"latency_ms.p90", "< 10", false, nil},
		{"availability.during_faults.x", "> 0", false, nil},
		{"lost", "unknown", false, 0.0},
		{"lost", ">= nonsense", false, 0.0},
	}
	r := report(t)
	for _, tt := range tests {
		out := Evaluate([]Expectation{{Key: tt.key, Want: tt.want}}, r)
		if len(out) != 1 {
			t.Fatalf("%d outcomes for one expectation", len(out))
		}
		o := out[0]
		if o.Key != tt.key || o.Want != tt.want || o.OK != tt.ok || o.Got != tt.got {
			t.Errorf("%s %v: got %+v, want ok=%v got=%v", tt.key, tt.want, o, tt.ok, tt.got)
		}
	}
}

// TestEvaluateGoValues checks a report built from Go values rather than
// decoded JSON: ints equal floats, nested typed maps and pointers are
// followed, and NaN satisfies nothing.
func TestEvaluateGoValues(t *testing.T) {
	ms := int64(120)
	var nothing *int
	r := map[string]any{
		"lost": 0, "recovered": uint8(3), "convergence_ms": &ms, "resyncs": nothing,
		"ops":          map[string]int{"ok": 10, "fail": 0},
		"availability": map[string]float64{"overall": math.NaN()},
		"latency_ms":   json.Number("2.5"),
	}
	exps := []Expectation{
		{Key: "lost", Want: 0.0}, {Key: "recovered", Want: "> 2"}, {Key: "convergence_ms", Want: "< 1000"},
		{Key: "ops.ok", Want: 10.0}, {Key: "ops.fail", Want: "== 0"}, {Key: "resyncs", Want: 0.0},
		{Key: "availability.overall", Want: "<= 1"}, {Key: "availability.overall", Want: "!= 0"},
		{Key: "latency_ms", Want: 2.5},
	}
	want := []bool{true, true, true, true, true, false, false, false, true}
	for i, o := range Evaluate(exps, r) {
		if o.OK != want[i] {
			t.Errorf("%s %v: ok=%v (got %v), want %v", o.Key, o.Want, o.OK, o.Got, want[i])
		}
	}
}

// TestEvaluateNeverPanics feeds odd reports and expectations.
func TestEvaluateNeverPanics(t *testing.T) {
	exps := []Expectation{
		{Key: "lost", Want: 0.0}, {Key: "", Want: nil}, {Key: ".", Want: "> 0"}, {Key: "a..b", Want: true},
		{Key: "x.y", Want: []int{1}}, {Key: "m.k", Want: map[string]any{}}, {Key: "lost", Want: ">="},
	}
	reports := []map[string]any{
		nil, {}, {"lost": []any{1}, "x": "y", "m": map[int]int{1: 1}, "a": map[string]any{"": map[string]any{"b": true}}},
		{"lost": struct{}{}, "x": map[string]any{"y": []int{1}}, "m": (map[string]any)(nil)},
	}
	for _, r := range reports {
		out := Evaluate(exps, r)
		if len(out) != len(exps) {
			t.Errorf("%d outcomes for %d expectations", len(out), len(exps))
		}
	}
	if out := Evaluate(nil, nil); len(out) != 0 {
		t.Errorf("outcomes %v for no expectations", out)
	}
}
