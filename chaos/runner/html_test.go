package runner

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"mpim/chaos/check"
	"mpim/chaos/scenario"
)

func sampleRun() (Report, []check.Op, time.Time) {
	start := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return start.Add(time.Duration(s * float64(time.Second))) }
	ops := []check.Op{
		{Process: 1, Kind: check.KindSend, Conv: "g:a", Cmid: "1", Call: at(0.5), Return: at(0.51), Status: check.StatusOK},
		{Process: 1, Kind: check.KindSend, Conv: "g:a", Cmid: "2", Call: at(3.2), Return: at(5.2), Status: check.StatusFail},
		{Process: 2, Kind: check.KindSend, Conv: "g:a", Cmid: "3", Call: at(3.5), Status: check.StatusInfo},
		{Process: 3, Kind: check.KindRead, Conv: "g:a", Call: at(6), Return: at(6.01), Status: check.StatusOK},
	}
	rep := Report{
		"scenario": "demo <x>", "mode": "cp", "ap_repair": nil, "verdict": "fail", "command": "mpim chaos run demo",
		"duration_s": 8.0, "lost": 2, "linearizable": true, "converged": true, "convergence_ms": int64(120),
		"convergence_from": "the scenario's faults ended at 6.00s", "ops": map[string]int{"ok": 2, "fail": 1, "info": 1},
		"availability": check.Availability{Overall: 0.5, DuringFaults: 0.25, BySide: map[string]float64{"g1,n1": 0.1, "g2,g3,n2,n3,redis": 0.9081234},
			Samples:            check.Samples{Overall: 2, DuringFaults: 8, BySide: map[string]int{"g1,n1": 10, "g2,g3,n2,n3,redis": 98}},
			CompletedAfterHeal: check.AfterHeal{DuringFaults: 1, BySide: map[string]int{"g1,n1": 4}}},
		"side_counts": map[string]check.SideCount{"g1,n1": {Sends: 13, Refused: 8, Unknown: 1, AckedLater: 4},
			"g2,g3,n2,n3,redis": {Sends: 98, AckedWhile: 89, Refused: 9}},
		"fault_windows": []check.Window{{Start: at(3), End: at(6)}},
		"events":        []string{"  3.00s partition isolate:n1", "  6.00s heal"},
		"expectations":  []scenario.Outcome{{Key: "lost", Want: 0, Got: 2, OK: false}},
	}
	return rep, ops, start
}

// TestReportHTML: the page names the run (escaped), draws the three
// charts with the fault window and steps, one bar per outcome and one dot
// per send, and lists the failed expectation.
func TestReportHTML(t *testing.T) {
	rep, ops, start := sampleRun()
	page := reportHTML(rep, ops, start)
	for _, want := range []string{
		"demo &lt;x&gt; — cp", "<span class='fail'>fail</span>", "Operations per second", "Send latency",
		"Availability by side", "g2,g3,n2,n3,redis", `fill="#e0e0e0"`, "partition isolate:n1",
		"<title>0s: 1 ok</title>", "<title>3s: 1 fail</title>", "<title>3s: 1 info</title>", "<title>6s: 1 ok</title>",
		"<td class='fail'>no</td>", "href='linearizability.html'", "CAP verdict",
		"no: acknowledged writes were lost",
		// Values for reading: shares as percentages of their sample, three
		// significant figures, no raw JSON.
		"<td>90.8% of 98</td>", "<td>10% of 10; 4 more answered ok only after the heal</td>",
		// The bars read as the tables do.
		"font-size='13'>90.8% of 98</text>", "font-size='13'>10% of 10</text>",
		// The verdict in words, from the numbers.
		"CP acknowledged 0 of 13 writes on the side g1,n1 while the partition was in force (8 refused, 1 unknown, 4 answered only after the heal), and 89 of 98 on the side g2,g3,n2,n3,redis (9 refused); it lost 2 acknowledged messages, its history is linearizable and its replicas converged 120 ms after the faults ended.",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
	if strings.Contains(page, "<x>") || strings.Contains(page, "<script") || strings.Contains(page, "http://") || strings.Contains(page, "https://") {
		t.Error("report.html must be escaped, script-free and self-contained")
	}
	if raw := regexp.MustCompile(`<td>[^<]*[{}\[\]][^<]*</td>|0\.\d{5,}`).FindString(page); raw != "" {
		t.Errorf("report.html shows a raw value (JSON or a long decimal): %q", raw)
	}
	// An unquoted attribute value before "/>" swallows the slash, and the
	// browser nests every later element inside that one.
	if bad := regexp.MustCompile(`=[^"' >]+/>`).FindString(page); bad != "" {
		t.Errorf("unquoted attribute before a self-closing tag: %q", bad)
	}
	if dots := strings.Count(page, "<circle"); dots != 3 {
		t.Errorf("%d latency dots, want one per send (3)", dots)
	}
}

// TestWriteComparison: the side-by-side files hold one column per mode
// with the values of each report, and link each mode's own report.
func TestWriteComparison(t *testing.T) {
	cp, _, _ := sampleRun()
	ap := Report{"scenario": "demo", "mode": "ap", "ap_repair": true, "verdict": "pass", "lost": 0,
		"availability":     check.Availability{DuringFaults: 1, Samples: check.Samples{DuringFaults: 40}},
		"fault_measured_s": 1.75, "fault_windows": []check.Window{{}}}
	norepair := Report{"scenario": "demo", "mode": "ap", "ap_repair": false, "verdict": "fail", "lost": 446}
	dir := t.TempDir()
	if err := WriteComparison(dir, []*Report{&cp, &ap, &norepair}); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(dir, "comparison.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| key | cp | ap | ap (repair off) |", "| lost | 2 | 0 | 446 |",
		"| availability, during faults | 25% of 8; 1 more answered ok only after the heal | 100% of 40 | — (no attempt) |", "| verdict | fail | pass | fail |",
		"- AP acknowledged 100% of 40 writes while faults were in force; it lost nothing and its replicas did not converge."} {
		if !strings.Contains(string(md), want) {
			t.Errorf("comparison.md lacks %q:\n%s", want, md)
		}
	}
	page, err := os.ReadFile(filepath.Join(dir, "comparison.html"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(md), "ap: Note: this run measured only 1.75 s of faults") {
		t.Errorf("comparison.md does not warn that the AP run measured little fault time:\n%s", md)
	}
	for _, want := range []string{`href="cp/report.html"`, `href="ap-norepair/report.html"`, "<td>446</td>", "<p class=verdict>CP acknowledged 0 of 13",
		"font-size='13'>100% of 40</text>", "<p class=small>ap: Note: this run measured only 1.75 s"} {
		if !strings.Contains(string(page), want) {
			t.Errorf("comparison.html lacks %q", want)
		}
	}
}

// TestFaultNotes: a comparison warns once when every mode measured the
// same short fault time, per mode otherwise, and not for a long one.
func TestFaultNotes(t *testing.T) {
	short := func(s float64) *Report {
		return &Report{"fault_measured_s": s, "fault_windows": []check.Window{{}}}
	}
	cols := []string{"cp", "ap"}
	if n := faultNotes([]*Report{short(1.75), short(1.75)}, cols); len(n) != 1 || !strings.HasPrefix(n[0], "Every mode: Note: this run measured only 1.75 s") {
		t.Errorf("same short fault time in both modes: notes %q, want one for every mode", n)
	}
	if n := faultNotes([]*Report{short(1.75), short(2.5)}, cols); len(n) != 2 || !strings.HasPrefix(n[0], "cp: ") || !strings.HasPrefix(n[1], "ap: ") {
		t.Errorf("different short fault times: notes %q, want one per mode", n)
	}
	if n := faultNotes([]*Report{short(1.75), short(20)}, cols); len(n) != 1 || !strings.HasPrefix(n[0], "cp: ") {
		t.Errorf("one short, one long: notes %q, want cp's only", n)
	}
}
