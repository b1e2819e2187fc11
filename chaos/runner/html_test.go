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
		"duration_s": 8.0, "lost": 2, "linearizable": true,
		"availability":  check.Availability{Overall: 0.5, DuringFaults: 0.25, BySide: map[string]float64{"g1,n1": 0.1, "g2,g3,n2,n3,redis": 0.9}},
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
		"<td class='fail'>false</td>", "href='linearizability.html'", "CAP verdict",
		"no: acknowledged writes were lost",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
	if strings.Contains(page, "<x>") || strings.Contains(page, "<script") || strings.Contains(page, "http://") || strings.Contains(page, "https://") {
		t.Error("report.html must be escaped, script-free and self-contained")
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
		"availability": check.Availability{DuringFaults: 1}}
	norepair := Report{"scenario": "demo", "mode": "ap", "ap_repair": false, "verdict": "fail", "lost": 446}
	dir := t.TempDir()
	if err := WriteComparison(dir, []*Report{&cp, &ap, &norepair}); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(dir, "comparison.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| key | cp | ap | ap (repair off) |", "| lost | `2` | `0` | `446` |",
		"| availability.during_faults | `0.25` | `1` | `null` |", "| verdict | `\"fail\"` | `\"pass\"` | `\"fail\"` |"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("comparison.md lacks %q:\n%s", want, md)
		}
	}
	page, err := os.ReadFile(filepath.Join(dir, "comparison.html"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`href="cp/report.html"`, `href="ap-norepair/report.html"`, "<code>446</code>"} {
		if !strings.Contains(string(page), want) {
			t.Errorf("comparison.html lacks %q", want)
		}
	}
}
