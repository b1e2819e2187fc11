package runner

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSweep: the matrix counts each (scenario, mode)'s passing runs over
// its seeds and gives each figure's min / median / max, runs without a
// number counted apart; the three files hold it.
func TestSweep(t *testing.T) {
	rep := func(verdict string, during, p99 float64, conv any) *Report {
		var r Report
		b, _ := json.Marshal(map[string]any{"verdict": verdict, "linearizable": true, "lost": 0,
			"availability": map[string]any{"during_faults": during}, "latency_ms": map[string]any{"p99": p99}, "convergence_ms": conv})
		json.Unmarshal(b, &r)
		return &r
	}
	runs := []SweepRun{
		{Scenario: "isolate-leader", Mode: "ap", Seed: 1, Verdict: "pass", Report: rep("pass", 1, 30, 120.0)},
		{Scenario: "isolate-leader", Mode: "cp", Seed: 1, Verdict: "pass", Report: rep("pass", 0.9, 200, 80.0)},
		{Scenario: "isolate-leader", Mode: "cp", Seed: 2, Verdict: "fail", Report: rep("fail", 0.5, 400, nil)},
		{Scenario: "isolate-leader", Mode: "cp", Seed: 3, Verdict: "pass", Report: rep("pass", 0.7, 100, 60.0)},
		{Scenario: "redis-down", Mode: "cp", Seed: 1, Verdict: "error", Err: "no redis-server"},
	}
	s := Summarize("mpim chaos sweep --all", runs)
	if len(s.Cells) != 3 || s.Cells[0].Mode != "cp" || s.Cells[1].Mode != "ap" || s.Cells[2].Scenario != "redis-down" {
		t.Fatalf("cells %+v: want isolate-leader cp, ap, then redis-down", s.Cells)
	}
	cp := s.Cells[0]
	if cp.Passed != 2 || cp.Runs != 3 || cp.Linearizable != 3 {
		t.Fatalf("isolate-leader cp: %d/%d passed, %d linearizable; want 2/3 and 3", cp.Passed, cp.Runs, cp.Linearizable)
	}
	if sp := cp.Spread["availability.during_faults"]; sp.Min != 0.5 || sp.Median != 0.7 || sp.Max != 0.9 || sp.N != 3 {
		t.Fatalf("during_faults spread %+v", sp)
	}
	if sp := cp.Spread["convergence_ms"]; sp.N != 2 || sp.Null != 1 || sp.Median != 70 {
		t.Fatalf("convergence spread %+v: want two numbers (median 70) and one null", sp)
	}
	if got := showSpread("availability.during_faults", cp.Spread["availability.during_faults"]); got != "50% / 70% / 90%" {
		t.Fatalf("shown as %q", got)
	}
	if s.Cells[2].Passed != 0 || s.Cells[2].Runs != 1 {
		t.Fatalf("a run that could not be made counts as run, not passed: %+v", s.Cells[2])
	}
	out := t.TempDir()
	if err := WriteSweep(out, s); err != nil {
		t.Fatal(err)
	}
	md, _ := os.ReadFile(filepath.Join(out, "sweep.md"))
	for _, want := range []string{"| isolate-leader | cp | 2/3 |", "60 / 70 / 80 (1 without)", "| redis-down | cp | 0/1 |"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("sweep.md lacks %q:\n%s", want, md)
		}
	}
	page, _ := os.ReadFile(filepath.Join(out, "sweep.html"))
	if !strings.Contains(string(page), "class=fail>2/3") || strings.Contains(string(page), "<script") {
		t.Errorf("sweep.html: %s", page)
	}
	var back Sweep
	b, _ := os.ReadFile(filepath.Join(out, "sweep.json"))
	if err := json.Unmarshal(b, &back); err != nil || len(back.Cells) != 3 || len(back.Runs) != 5 {
		t.Fatalf("sweep.json: %v, %d cells, %d runs", err, len(back.Cells), len(back.Runs))
	}
}
