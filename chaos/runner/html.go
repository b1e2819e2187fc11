package runner

import (
	"encoding/json"
	"fmt"
	"html"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"mpim/chaos/check"
	"mpim/chaos/scenario"
)

// The self-contained HTML reports: inline CSS and SVG, no script, no
// network, so a report opens anywhere and can be mailed or archived.

// chart geometry, in SVG user units.
const (
	chartW, chartH = 900.0, 220.0
	padL, padR     = 56.0, 12.0
	padT, padB     = 14.0, 30.0
)

var statusColor = map[check.Status]string{check.StatusOK: "#2e7d32", check.StatusFail: "#c62828", check.StatusInfo: "#ef8f00"}

const reportCSS = `body{font:15px/1.45 system-ui,sans-serif;margin:24px auto;max-width:960px;color:#222}
h1{font-size:24px}h2{font-size:19px;margin-top:28px}table{border-collapse:collapse;margin:8px 0}
td,th{border:1px solid #ccc;padding:3px 9px;text-align:left;font-variant-numeric:tabular-nums}
.pass{color:#2e7d32;font-weight:bold}.fail{color:#c62828;font-weight:bold}
code{background:#f4f4f4;padding:1px 4px}svg{background:#fafafa;border:1px solid #ddd}
.legend span{display:inline-block;margin-right:14px}.legend i{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:-1px}
.small{color:#666;font-size:13px}.verdict{font-size:17px;background:#f3f6fa;border-left:4px solid #5b7fa6;padding:8px 12px}
td,th{overflow-wrap:anywhere}`

// reportHTML is report.html: the verdict, the numbers, and three charts
// drawn from the history: operations per second by outcome with the fault
// windows shaded, send latency over time, and availability by side.
func reportHTML(rep Report, ops []check.Op, start time.Time) string {
	var b strings.Builder
	title := fmt.Sprintf("%v — %v", rep["scenario"], modeLabel(rep))
	fmt.Fprintf(&b, "<!doctype html><html><head><meta charset=utf-8><title>%s</title><style>%s</style></head><body>\n", esc(title), reportCSS)
	verdict := fmt.Sprint(rep["verdict"])
	fmt.Fprintf(&b, "<h1>%s: <span class='%s'>%s</span></h1>\n", esc(title), esc(verdict), esc(verdict))
	fmt.Fprintf(&b, "<p class=verdict>%s</p>\n", esc(sentence(rep)))
	if note := shortFaultNote(rep); note != "" {
		fmt.Fprintf(&b, "<p class=small>%s</p>\n", esc(note))
	}
	fmt.Fprintf(&b, "<p>Rerun: <code>%s</code></p>\n", esc(fmt.Sprint(rep["command"])))

	b.WriteString(capTable(rep))

	windows, _ := rep["fault_windows"].([]check.Window)
	events, _ := rep["events"].([]string)
	end := start.Add(time.Duration(toFloat(rep["duration_s"]) * float64(time.Second)))
	for _, op := range ops {
		if op.Return.After(end) {
			end = op.Return
		}
	}
	span := max(end.Sub(start).Seconds(), 1)

	b.WriteString("<h2>Operations per second</h2>\n")
	b.WriteString(legend())
	b.WriteString(throughputSVG(ops, windows, events, start, span))
	b.WriteString("<p class=small>Grey: a fault in force. Vertical lines: fault steps. Reads and sends together; the final reads after heal are included.</p>\n")

	b.WriteString("<h2>Send latency</h2>\n")
	b.WriteString(legend())
	b.WriteString(latencySVG(ops, windows, start, span))
	b.WriteString("<p class=small>One dot per send, at its invocation time; log scale. Unknown outcomes (info) have no latency and sit on the top edge.</p>\n")

	if av, ok := rep["availability"].(check.Availability); ok && len(av.BySide) > 0 {
		b.WriteString("<h2>Availability by side</h2>\n")
		var bars []bar
		for side, v := range av.BySide {
			bars = append(bars, bar{side, v, av.Samples.BySide[side]})
		}
		b.WriteString(barsSVG(bars))
	}

	b.WriteString("<h2>Numbers</h2>\n<table>\n")
	for _, r := range numbers(rep) {
		fmt.Fprintf(&b, "<tr><th>%s</th><td>%s</td></tr>\n", esc(r.label), esc(r.value))
	}
	b.WriteString("</table>\n<p class=small>report.json holds every value at full precision; docs/chaos.md defines each.</p>\n")
	if outs, ok := rep["expectations"].([]scenario.Outcome); ok && len(outs) > 0 {
		b.WriteString("<h2>Expectations</h2>\n<table><tr><th>key</th><th>want</th><th>got</th><th>ok</th></tr>\n")
		for _, o := range outs {
			cls := "pass"
			if !o.OK {
				cls = "fail"
			}
			fmt.Fprintf(&b, "<tr><td>%s</td><td>%s</td><td>%s</td><td class='%s'>%s</td></tr>\n",
				esc(o.Key), esc(show(o.Want)), esc(show(o.Got)), cls, show(o.OK))
		}
		b.WriteString("</table>\n")
	}
	if len(events) > 0 {
		b.WriteString("<h2>Faults</h2>\n<ul>\n")
		for _, e := range events {
			fmt.Fprintf(&b, "<li><code>%s</code></li>\n", esc(strings.TrimSpace(e)))
		}
		b.WriteString("</ul>\n")
	}
	b.WriteString("<p class=small>Files beside this one: <a href='report.json'>report.json</a>, <a href='report.md'>report.md</a>, <a href='history.jsonl'>history.jsonl</a>")
	if rep["mode"] == "cp" {
		b.WriteString(", <a href='linearizability.html'>linearizability.html</a> (porcupine's view of every conversation's history)")
	}
	b.WriteString(".</p></body></html>\n")
	return b.String()
}

// capTable is the CAP verdict: what this run showed for consistency,
// availability and behaviour under partition, each from the checkers.
func capTable(rep Report) string {
	get := func(k string) any { return lookup(rep, k) }
	consistent := toFloat(get("lost")) == 0 && toFloat(get("duplicated")) == 0 && toFloat(get("fail_applied")) == 0
	cVerdict := "no: acknowledged writes were lost, duplicated or wrongly refused"
	switch {
	case consistent && rep["linearizable"] == true && toFloat(get("stale_reads")) == 0:
		cVerdict = "yes: linearizable, nothing lost, no stale linearizable read"
	case consistent && rep["converged"] == true:
		cVerdict = "eventually: nothing lost and every replica converged after heal, but not linearizable"
	case consistent:
		cVerdict = "partly: nothing lost, but replicas did not converge"
	}
	av, _ := rep["availability"].(check.Availability)
	aVerdict := share(av.DuringFaults, av.Samples.DuringFaults) + " of writes acknowledged while faults were in force" + afterHeal(av.CompletedAfterHeal.DuringFaults)
	var b strings.Builder
	b.WriteString("<h2>CAP verdict</h2>\n<table>\n")
	fmt.Fprintf(&b, "<tr><th>Consistency</th><td>%s</td><td class=small>lost %s, duplicated %s, fail_applied %s, linearizable %s, stale_reads %s, converged %s</td></tr>\n",
		esc(cVerdict), show(get("lost")), show(get("duplicated")), show(get("fail_applied")), show(rep["linearizable"]), show(get("stale_reads")), show(rep["converged"]))
	fmt.Fprintf(&b, "<tr><th>Availability</th><td>%s</td><td class=small>overall %s, outside faults %s</td></tr>\n",
		esc(aVerdict), share(av.Overall, av.Samples.Overall), share(av.OutsideFaults, av.Samples.OutsideFaults))
	var sides []string
	for _, s := range sortedKeys(av.BySide) {
		sides = append(sides, s+": "+share(av.BySide[s], av.Samples.BySide[s]))
	}
	if len(sides) == 0 {
		sides = []string{"no partition in this run"}
	}
	fmt.Fprintf(&b, "<tr><th>Partition</th><td>availability per side: %s</td><td class=small>a side that cannot reach a quorum refuses (CP) or keeps accepting and diverges (AP)</td></tr>\n", esc(strings.Join(sides, "; ")))
	b.WriteString("</table>\n")
	return b.String()
}

func modeLabel(rep Report) string {
	if rep["mode"] == "ap" && rep["ap_repair"] == false {
		return "ap (repair off)"
	}
	return fmt.Sprint(rep["mode"])
}

func esc(s string) string { return html.EscapeString(s) }

func legend() string {
	var b strings.Builder
	b.WriteString("<div class=legend>")
	for _, s := range []check.Status{check.StatusOK, check.StatusFail, check.StatusInfo} {
		fmt.Fprintf(&b, "<span><i style=\"background:%s\"></i>%s</span>", statusColor[s], s)
	}
	b.WriteString("</div>\n")
	return b.String()
}

// xOf maps seconds since start to the chart's x.
func xOf(sec, span float64) float64 { return padL + sec/span*(chartW-padL-padR) }

// frame draws the shaded fault windows, the step lines and the time axis.
func frame(b *strings.Builder, windows []check.Window, events []string, start time.Time, span float64) {
	fmt.Fprintf(b, "<svg viewBox=\"0 0 %.0f %.0f\" width=\"100%%\" role=img>\n", chartW, chartH)
	for _, w := range windows {
		x0 := xOf(w.Start.Sub(start).Seconds(), span)
		x1 := xOf(span, span)
		if !w.End.IsZero() {
			x1 = xOf(w.End.Sub(start).Seconds(), span)
		}
		fmt.Fprintf(b, "<rect x='%.1f' y='%.1f' width='%.1f' height='%.1f' fill=\"#e0e0e0\"/>\n", x0, padT, max(x1-x0, 1), chartH-padT-padB)
	}
	for _, e := range events {
		fields := strings.Fields(e)
		if len(fields) < 2 || fields[1] == "error:" {
			continue
		}
		sec, err := strconv.ParseFloat(strings.TrimSuffix(fields[0], "s"), 64)
		if err != nil {
			continue
		}
		x := xOf(sec, span)
		fmt.Fprintf(b, "<line x1='%.1f' x2='%.1f' y1='%.1f' y2='%.1f' stroke=\"#555\" stroke-dasharray=\"4 3\"/>", x, x, padT, chartH-padB)
		fmt.Fprintf(b, "<text x='%.1f' y='%.1f' font-size='11' fill=\"#333\">%s</text>\n", x+3, padT+10, esc(strings.Join(fields[1:], " ")))
	}
	step := niceStep(span / 10)
	for t := 0.0; t <= span; t += step {
		x := xOf(t, span)
		fmt.Fprintf(b, "<text x='%.1f' y='%.1f' font-size='11' text-anchor='middle'>%gs</text>", x, chartH-padB+16, t)
	}
	fmt.Fprintf(b, "<line x1='%.1f' x2='%.1f' y1='%.1f' y2='%.1f' stroke=\"#999\"/>\n", padL, chartW-padR, chartH-padB, chartH-padB)
}

// niceStep rounds a raw axis step up to 1, 2 or 5 times a power of ten.
func niceStep(raw float64) float64 {
	if raw <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw {
			return m * p
		}
	}
	return 10 * p
}

// throughputSVG stacks, per second, the operations invoked that second by
// how they ended.
func throughputSVG(ops []check.Op, windows []check.Window, events []string, start time.Time, span float64) string {
	buckets := int(math.Ceil(span))
	counts := make([]map[check.Status]int, buckets)
	for i := range counts {
		counts[i] = map[check.Status]int{}
	}
	peak := 1
	for _, op := range ops {
		i := int(op.Call.Sub(start).Seconds())
		if i < 0 || i >= buckets {
			continue
		}
		st := op.Status
		if st != check.StatusOK && st != check.StatusFail {
			st = check.StatusInfo
		}
		counts[i][st]++
		peak = max(peak, counts[i][check.StatusOK]+counts[i][check.StatusFail]+counts[i][check.StatusInfo])
	}
	var b strings.Builder
	frame(&b, windows, events, start, span)
	plotH := chartH - padT - padB
	w := xOf(1, span) - xOf(0, span)
	for i, c := range counts {
		y := chartH - padB
		for _, st := range []check.Status{check.StatusOK, check.StatusFail, check.StatusInfo} {
			if c[st] == 0 {
				continue
			}
			h := float64(c[st]) / float64(peak) * plotH
			y -= h
			fmt.Fprintf(&b, "<rect x='%.1f' y='%.1f' width='%.1f' height='%.1f' fill=\"%s\"><title>%ds: %d %s</title></rect>",
				xOf(float64(i), span)+0.5, y, max(w-1, 0.5), h, statusColor[st], i, c[st], st)
		}
	}
	fmt.Fprintf(&b, "\n<text x='4' y='%.1f' font-size='11'>%d/s</text><text x='4' y='%.1f' font-size='11'>0</text></svg>\n", padT+10, peak, chartH-padB)
	return b.String()
}

// latencySVG plots each send's latency (log scale) at its invocation time.
func latencySVG(ops []check.Op, windows []check.Window, start time.Time, span float64) string {
	const lo, hi = 0.1, 100000.0 // ms
	yOf := func(ms float64) float64 {
		ms = min(max(ms, lo), hi)
		f := (math.Log10(ms) - math.Log10(lo)) / (math.Log10(hi) - math.Log10(lo))
		return chartH - padB - f*(chartH-padT-padB)
	}
	var b strings.Builder
	frame(&b, windows, nil, start, span)
	for _, ms := range []float64{1, 10, 100, 1000, 10000} {
		y := yOf(ms)
		fmt.Fprintf(&b, "<line x1='%.1f' x2='%.1f' y1='%.1f' y2='%.1f' stroke=\"#e8e8e8\"/><text x='4' y='%.1f' font-size='11'>%g ms</text>", padL, chartW-padR, y, y, y+4, ms)
	}
	b.WriteString("\n")
	for _, op := range ops {
		if op.Kind != check.KindSend {
			continue
		}
		x := xOf(op.Call.Sub(start).Seconds(), span)
		y := padT
		st := op.Status
		if st == check.StatusOK || st == check.StatusFail {
			y = yOf(float64(op.Return.Sub(op.Call).Microseconds()) / 1000)
		} else {
			st = check.StatusInfo
		}
		fmt.Fprintf(&b, "<circle cx='%.1f' cy='%.1f' r='1.8' fill=\"%s\" fill-opacity='.6'/>", x, y, statusColor[st])
	}
	b.WriteString("\n</svg>\n")
	return b.String()
}

// barsSVG draws one horizontal bar per side: its availability, 0 to 1.
// bar is one bar of barsSVG: a share and how many attempts it is over.
type bar struct {
	label   string
	share   float64
	samples int
}

// barsSVG draws shares as horizontal bars, each labelled as the tables
// show it ("31% of 13"), in label order.
func barsSVG(bars []bar) string {
	sort.Slice(bars, func(i, j int) bool { return bars[i].label < bars[j].label })
	const rowH, labelW = 26.0, 220.0
	h := float64(len(bars))*rowH + 10
	var b strings.Builder
	fmt.Fprintf(&b, "<svg viewBox=\"0 0 %.0f %.0f\" width=\"100%%\" role=img>\n", chartW, h)
	for i, br := range bars {
		y := 5 + float64(i)*rowH
		w := br.share * (chartW - labelW - 120)
		if br.samples == 0 {
			w = 0
		}
		fmt.Fprintf(&b, "<text x='4' y='%.1f' font-size='13'>%s</text><rect x='%.1f' y='%.1f' width='%.1f' height='%.1f' fill=\"#1565c0\"/><text x='%.1f' y='%.1f' font-size='13'>%s</text>\n",
			y+16, esc(br.label), labelW, y+3, w, rowH-8, labelW+w+6, y+16, esc(share(br.share, br.samples)))
	}
	b.WriteString("</svg>\n")
	return b.String()
}

func toFloat(v any) float64 {
	switch x := v.(type) {
	case float64:
		return x
	case int:
		return float64(x)
	case int64:
		return float64(x)
	}
	return 0
}

// comparisonRows are the figures comparison.md and comparison.html put
// side by side: a label and how to read it from one report.
var comparisonRows = []struct {
	label string
	value func(Report) string
}{
	{"verdict", func(r Report) string { return show(r["verdict"]) }},
	{"operations ok / fail / info", func(r Report) string {
		return fmt.Sprintf("%s / %s / %s", show(lookup(r, "ops.ok")), show(lookup(r, "ops.fail")), show(lookup(r, "ops.info")))
	}},
	{"availability, overall", func(r Report) string { av := availability(r); return share(av.Overall, av.Samples.Overall) }},
	{"availability, during faults", func(r Report) string {
		av := availability(r)
		return share(av.DuringFaults, av.Samples.DuringFaults) + afterHeal(av.CompletedAfterHeal.DuringFaults)
	}},
	{"availability, outside faults", func(r Report) string { av := availability(r); return share(av.OutsideFaults, av.Samples.OutsideFaults) }},
	{"latency p50 / p99 / max ms (ok ops)", func(r Report) string {
		return fmt.Sprintf("%s / %s / %s", show(lookup(r, "latency_ms.p50")), show(lookup(r, "latency_ms.p99")), show(lookup(r, "latency_ms.max")))
	}},
	{"lost", func(r Report) string { return show(lookup(r, "lost")) }},
	{"duplicated", func(r Report) string { return show(lookup(r, "duplicated")) }},
	{"unexpected", func(r Report) string { return show(lookup(r, "unexpected")) }},
	{"recovered", func(r Report) string { return show(lookup(r, "recovered")) }},
	{"fail_applied", func(r Report) string { return show(lookup(r, "fail_applied")) }},
	{"reordered", func(r Report) string { return show(lookup(r, "reordered")) }},
	{"resyncs", func(r Report) string { return show(lookup(r, "resyncs")) }},
	{"stale_reads", func(r Report) string { return show(lookup(r, "stale_reads")) }},
	{"stale_local_reads", func(r Report) string { return show(lookup(r, "stale_local_reads")) }},
	{"divergent_conversations", func(r Report) string { return show(lookup(r, "divergent_conversations")) }},
	{"linearizable", func(r Report) string { return show(r["linearizable"]) }},
	{"converged", func(r Report) string { return show(r["converged"]) }},
	{"convergence_ms (from the faults' end)", func(r Report) string { return show(lookup(r, "convergence_ms")) }},
}

// availability is a report's availability as its type, in memory or read
// back from JSON.
func availability(r Report) check.Availability {
	if av, ok := r["availability"].(check.Availability); ok {
		return av
	}
	var av check.Availability
	b, _ := json.Marshal(r["availability"])
	json.Unmarshal(b, &av)
	return av
}

// faultNotes are the reports' short-fault notes for a comparison, each
// prefixed with its mode, or once for all when every mode has the same.
func faultNotes(reps []*Report, cols []string) []string {
	var notes []string
	same := true
	for i, r := range reps {
		note := shortFaultNote(*r)
		if note != "" {
			notes = append(notes, cols[i]+": "+note)
		}
		same = same && note != "" && note == shortFaultNote(*reps[0])
	}
	if same && len(reps) > 1 {
		return []string{"Every mode: " + shortFaultNote(*reps[0])}
	}
	return notes
}

// WriteComparison writes comparison.md and comparison.html into out: the
// reports of one scenario in several modes (cp, ap, ap with repair off),
// side by side, each mode's verdict as a sentence first.
func WriteComparison(out string, reps []*Report) error {
	if len(reps) == 0 {
		return nil
	}
	cols := make([]string, len(reps))
	for i, r := range reps {
		cols[i] = modeLabel(*r)
	}
	var md strings.Builder
	fmt.Fprintf(&md, "# %v: %s side by side\n\n", (*reps[0])["scenario"], strings.Join(cols, ", "))
	for _, r := range reps {
		fmt.Fprintf(&md, "- %s\n", sentence(*r))
	}
	notes := faultNotes(reps, cols)
	for _, n := range notes {
		fmt.Fprintf(&md, "\n%s\n", n)
	}
	fmt.Fprintf(&md, "\n| key | %s |\n|---|%s\n", strings.Join(cols, " | "), strings.Repeat("---|", len(cols)))
	for _, row := range comparisonRows {
		vals := make([]string, len(reps))
		for i, r := range reps {
			vals[i] = row.value(*r)
		}
		fmt.Fprintf(&md, "| %s | %s |\n", row.label, strings.Join(vals, " | "))
	}
	md.WriteString("\nEach column's own report (with charts) is in the folder of that name; report.json holds every value at full precision.\n")

	var h strings.Builder
	title := fmt.Sprintf("%v: %s side by side", (*reps[0])["scenario"], strings.Join(cols, ", "))
	fmt.Fprintf(&h, "<!doctype html><html><head><meta charset=utf-8><title>%s</title><style>%s</style></head><body><h1>%s</h1>\n", esc(title), reportCSS, esc(title))
	for _, r := range reps {
		fmt.Fprintf(&h, "<p class=verdict>%s</p>\n", esc(sentence(*r)))
	}
	for _, n := range notes {
		fmt.Fprintf(&h, "<p class=small>%s</p>\n", esc(n))
	}
	h.WriteString("<h2>Availability during faults</h2>\n")
	var during []bar
	for i, r := range reps {
		av := availability(*r)
		during = append(during, bar{cols[i], av.DuringFaults, av.Samples.DuringFaults})
	}
	h.WriteString(barsSVG(during))
	h.WriteString("<h2>Numbers</h2><table><tr><th>key</th>")
	for i, c := range cols {
		fmt.Fprintf(&h, "<th><a href=\"%s/report.html\">%s</a></th>", esc(reps[i].modeDir()), esc(c))
	}
	h.WriteString("</tr>\n")
	for _, row := range comparisonRows {
		fmt.Fprintf(&h, "<tr><th>%s</th>", esc(row.label))
		for _, r := range reps {
			v := row.value(*r)
			cls := ""
			if row.label == "verdict" {
				cls = " class='" + esc(v) + "'"
			}
			fmt.Fprintf(&h, "<td%s>%s</td>", cls, esc(v))
		}
		h.WriteString("</tr>\n")
	}
	h.WriteString("</table><p class=small>report.json in each folder holds every value at full precision; docs/chaos.md defines each.</p></body></html>\n")
	if err := os.WriteFile(filepath.Join(out, "comparison.md"), []byte(md.String()), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(out, "comparison.html"), []byte(h.String()), 0o644)
}

// modeDir is the folder `--mode both` writes this report's run into.
func (r Report) modeDir() string {
	if r["mode"] == "ap" && r["ap_repair"] == false {
		return "ap-norepair"
	}
	return fmt.Sprint(r["mode"])
}

// lookup reads a dotted key ("availability.during_faults") from the report
// as JSON shows it.
func lookup(r Report, key string) any {
	b, _ := json.Marshal(r)
	var m map[string]any
	json.Unmarshal(b, &m)
	var cur any = m
	for _, part := range strings.Split(key, ".") {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = mm[part]
	}
	return cur
}
