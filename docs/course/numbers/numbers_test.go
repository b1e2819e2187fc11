package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fixture is the sweep in testdata: isolate-leader, CP and AP, seeds 1–3,
// with reports whose values are out of order (CP's latency_ms.p50 is 10,
// 100, 40: median 40, mean 50, middle of the file 100), a side cut off
// that changes name from seed to seed, a null convergence, a count the
// report leaves out when it is zero, and a failed run.
func fixture(t *testing.T) map[sweepKey]*sweepData {
	t.Helper()
	d, err := loadSweep("testdata/sweeps/isolate-leader")
	if err != nil {
		t.Fatal(err)
	}
	return map[sweepKey]*sweepData{{"isolate-leader", true}: d}
}

const samplePage = `# A page

Before.

<!-- numbers: isolate-leader quick modes=cp,ap rows=passed,latency_ms.p50,convergence_ms,lost,linearizable,cut.share,cut.sends,availability.completed_after_heal.during_faults -->

| the | old | table |
|---|---|---|
| 1 | 2 | 3 |

<!-- /numbers -->

CP's repair took <!-- n:isolate-leader/cp/convergence_ms -->999 ms<!-- /n --> and AP's <!-- n:isolate-leader/ap/convergence_ms -->1 ms<!-- /n -->; CP passed <!-- n:isolate-leader/cp/passed -->0/0<!-- /n -->.
`

const wantEN = `# A page

Before.

<!-- numbers: isolate-leader quick modes=cp,ap rows=passed,latency_ms.p50,convergence_ms,lost,linearizable,cut.share,cut.sends,availability.completed_after_heal.during_faults -->

Made by ` + "`make course-numbers`: `mpim chaos sweep isolate-leader --mode both --seeds 3 --first-seed 1 --quick`" + `, seeds 1–3, run on 2026-12-08 at commit ` + "`abc1234`" + `, load average 1.20 at the start and 1.80 at the end. Each figure is the median over a mode's 3 runs (one per seed), with the lowest and the highest in brackets; “k/3 —” counts the runs that had no value.

| report key | CP | AP |
|---|---|---|
| runs whose every expectation held | 2/3 | 3/3 |
| ` + "`latency_ms.p50`" + ` | 40 ms (10–100) | 4.04 ms (3.9–4.5) |
| ` + "`convergence_ms`" + ` (from the end of the scenario's fault) | 135 ms (120–150); 1/3 — | 178 ms |
| ` + "`lost`" + ` | 0 | 0 |
| ` + "`linearizable` | `true` 2/3, `false` 1/3" + ` | — |
| ` + "`availability.by_side`" + `, the cut-off side | 25% (0–50) | 99.5% (90–100) |
| the cut-off side: sends while cut off | 13 (7–20) | 193 (190–201) |
| of those, answered ok only after the heal | 1 (0–4) | 0 (0–1) |

<!-- /numbers -->

CP's repair took <!-- n:isolate-leader/cp/convergence_ms -->135 ms<!-- /n --> and AP's <!-- n:isolate-leader/ap/convergence_ms -->178 ms<!-- /n -->; CP passed <!-- n:isolate-leader/cp/passed -->2/3<!-- /n -->.
`

// TestRewriteFromFixture: the table and the inline numbers a sample page
// gets from the fixture sweep. A wrong median (the mean, or the middle of
// the unsorted runs), a swapped min and max, or a side picked by name
// rather than by size changes a cell.
func TestRewriteFromFixture(t *testing.T) {
	got, skipped, err := rewrite(samplePage, langEN, fixture(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(skipped) > 0 {
		t.Errorf("skipped %v with the sweep at hand", skipped)
	}
	if got != wantEN {
		t.Errorf("rewritten page differs:\n%s", lineDiff(wantEN, got))
	}
	again, _, err := rewrite(got, langEN, fixture(t))
	if err != nil || again != got {
		t.Errorf("a second rewrite changed the page (err %v):\n%s", err, lineDiff(got, again))
	}
}

// TestRewriteChinese: the Chinese table has the Chinese statement and row
// labels, and the same cells as the English one.
func TestRewriteChinese(t *testing.T) {
	zh, _, err := rewrite(samplePage, langZH, fixture(t))
	if err != nil {
		t.Fatal(err)
	}
	en, _, _ := rewrite(samplePage, langEN, fixture(t))
	if !strings.Contains(zh, "由 `make course-numbers` 生成") || !strings.Contains(zh, "| 报告字段 | CP | AP |") || !strings.Contains(zh, "| 被隔开的一侧：隔开期间的发送 | 13 (7–20) | 193 (190–201) |") {
		t.Errorf("the Chinese table lacks its statement or labels:\n%s", zh)
	}
	eb, zb := parseBlocks(en), parseBlocks(zh)
	if len(eb) != 1 || len(zb) != 1 {
		t.Fatalf("blocks: %d English, %d Chinese, want 1 each", len(eb), len(zb))
	}
	if d := compareCells(eb[0], zb[0]); d != "" {
		t.Error(d)
	}
}

// TestRewriteLeavesMissingSweeps: a table whose sweep was not made stays
// as it is, and is named.
func TestRewriteLeavesMissingSweeps(t *testing.T) {
	got, skipped, err := rewrite(samplePage, langEN, map[sweepKey]*sweepData{})
	if err != nil {
		t.Fatal(err)
	}
	if got != samplePage {
		t.Errorf("a table without its sweep was changed:\n%s", lineDiff(samplePage, got))
	}
	if len(skipped) != 4 {
		t.Errorf("skipped %v, want the table and the three inline numbers", skipped)
	}
}

func TestRewriteRefusesBadMarkers(t *testing.T) {
	for _, page := range []string{
		"<!-- numbers: isolate-leader quick modes=cp rows=nosuchrow -->\n<!-- /numbers -->\n",
		"<!-- numbers: isolate-leader quick modes=xp rows=lost -->\n<!-- /numbers -->\n",
		"<!-- numbers: isolate-leader quick modes=cp rows=lost -->\nno end\n",
		"<!-- numbers: isolate-leader quick -->\n<!-- /numbers -->\n",
		"text <!-- n:isolate-leader/cp -->1<!-- /n -->\n",
	} {
		if _, _, err := rewrite(page, langEN, fixture(t)); err == nil {
			t.Errorf("rewrite accepted %q", page)
		}
	}
}

// TestLoadSweepChecksReports: sweep.json's spread and the reports must
// agree, or the folder does not hold the runs it names.
func TestLoadSweepChecksReports(t *testing.T) {
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS("testdata/sweeps/isolate-leader")); err != nil {
		t.Fatal(err)
	}
	js := filepath.Join(dir, "sweep.json")
	b, err := os.ReadFile(js)
	if err != nil {
		t.Fatal(err)
	}
	// CP's latency_ms.p50 as sweep.json would give it with min and max swapped.
	tampered := strings.Replace(string(b), `"min": 10,`, `"min": 100,`, 1)
	if tampered == string(b) {
		t.Fatal("the fixture's sweep.json no longer has CP's latency min of 10")
	}
	if err := os.WriteFile(js, []byte(tampered), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := loadSweep(dir); err == nil || !strings.Contains(err.Error(), "latency_ms.p50") {
		t.Errorf("loadSweep accepted a sweep.json that disagrees with its reports (err %v)", err)
	}
}

func TestBare(t *testing.T) {
	for _, c := range []struct {
		k    kind
		v    float64
		want string
	}{
		{kindShare, 0.9575757, "95.8"}, {kindShare, 1, "100"}, {kindShare, 0, "0"}, {kindShare, 0.995, "99.5"},
		{kindMS, 12.111611, "12.1"}, {kindMS, 4.04, "4.04"}, {kindMS, 105.0, "105"}, {kindMS, 288.9, "289"},
		{kindMS, 10.0, "10"}, {kindMS, 3, "3"}, {kindMS, 10095, "10095"},
		{kindCount, 1381, "1381"}, {kindCount, 1.5, "1.5"}, {kindCount, 0, "0"},
	} {
		if got := bare(c.k, c.v); got != c.want {
			t.Errorf("bare(%v, %v) = %q, want %q", c.k, c.v, got, c.want)
		}
	}
}

// lineDiff shows the lines where two texts differ.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := range max(len(w), len(g)) {
		var a, c string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			c = g[i]
		}
		if a != c {
			fmt.Fprintf(&b, "line %d:\n  want %s\n  got  %s\n", i+1, a, c)
		}
	}
	return b.String()
}

// TestRewriteSeveralScenarios: a table over two sweeps has a row per
// scenario, and states both sweeps.
func TestRewriteSeveralScenarios(t *testing.T) {
	d := fixture(t)[sweepKey{"isolate-leader", true}]
	data := map[sweepKey]*sweepData{{"no-fault", true}: d, {"wan", true}: d}
	page := "<!-- numbers: no-fault,wan quick modes=cp,ap rows=latency_ms.p50 -->\n<!-- /numbers -->\n"
	got, _, err := rewrite(page, langEN, data)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| `latency_ms.p50` | CP | AP |",
		"| one machine (`no-fault`) | 40 ms (10–100) | 4.04 ms (3.9–4.5) |",
		"| 40 ms between nodes (`wan`) | 40 ms (10–100) | 4.04 ms (3.9–4.5) |",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the table lacks %q:\n%s", want, got)
		}
	}
	if n := strings.Count(got, "seeds 1–3, run on 2026-12-08"); n != 2 {
		t.Errorf("the statement names %d sweeps, want 2:\n%s", n, got)
	}
	if strings.Contains(got, "k/3 —") {
		t.Errorf("the statement explains “k/3 —” though no figure lacks a value:\n%s", got)
	}
}

// TestMeasured: which changed files make a table's commit "+dirty".
func TestMeasured(t *testing.T) {
	pkgs := map[string]bool{"node/cp": true, "docs/course/slides": true, "cmd/mpim": true}
	for _, c := range []struct {
		status string
		want   bool
	}{
		{" M docs/course/01-cap.md\n M e2e/hosts_test.go\n", false},
		{" M node/cp/raft_test.go\n", false},
		{" M docs/course/slides/en.html\n", false},
		{"?? docs/course/numbers/main.go\n", false},
		{" M node/cp/raft.go\n", true},
		{" M docs/course/scenarios/wan.yaml\n", true},
		{"R  lab/a.go -> cmd/mpim/b.go\n", true},
	} {
		if got := measured(c.status, pkgs); got != c.want {
			t.Errorf("measured(%q) = %v, want %v", c.status, got, c.want)
		}
	}
}
