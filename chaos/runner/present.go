package runner

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"mpim/chaos/check"
)

// The reports' pages show numbers for reading: three significant figures,
// shares as percentages with the number of attempts they are over, and
// each mode's verdict as one sentence built from the numbers.
// report.json keeps every value at full precision.

// num shows a number to three significant figures, whole numbers whole.
func num(v float64) string {
	switch a := math.Abs(v); {
	case v == math.Trunc(v) && a < 1e15:
		return strconv.FormatInt(int64(v), 10)
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}

// share shows a share of n attempts: "31% of 13", "— (no attempt)".
func share(v float64, n int) string {
	if n == 0 {
		return "— (no attempt)"
	}
	return num(v*100) + "% of " + strconv.Itoa(n)
}

// show is one report value as a page shows it.
func show(v any) string {
	switch x := v.(type) {
	case nil:
		return "—"
	case bool:
		if x {
			return "yes"
		}
		return "no"
	case float64:
		return num(x)
	case int:
		return strconv.Itoa(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case string:
		return x
	}
	return fmt.Sprint(v)
}

// row is one line of a report's numbers: a label and its value as shown.
type row struct{ label, value string }

// numbers are the report's figures as rows for reading (report.md's and
// report.html's tables): availability expanded with its sample sizes,
// latency and operation counts on one line each.
func numbers(rep Report) []row {
	var rows []row
	add := func(label string, v any) { rows = append(rows, row{label, show(v)}) }
	if ops, ok := rep["ops"].(map[string]int); ok {
		rows = append(rows, row{"operations", fmt.Sprintf("%d ok, %d fail (not applied), %d info (unknown)", ops["ok"], ops["fail"], ops["info"])})
	}
	if av, ok := rep["availability"].(check.Availability); ok {
		rows = append(rows,
			row{"availability, overall", share(av.Overall, av.Samples.Overall)},
			row{"availability, during faults", share(av.DuringFaults, av.Samples.DuringFaults) + afterHeal(av.CompletedAfterHeal.DuringFaults)},
			row{"availability, outside faults", share(av.OutsideFaults, av.Samples.OutsideFaults)})
		for _, side := range sortedKeys(av.BySide) {
			rows = append(rows, row{"availability, side " + side, share(av.BySide[side], av.Samples.BySide[side]) + afterHeal(av.CompletedAfterHeal.BySide[side])})
		}
	}
	if f, ok := rep["fault_measured_s"].(float64); ok {
		rows = append(rows, row{"fault time measured (past detection)", num(f) + " s"})
	}
	if l, ok := rep["latency_ms"].(check.Latency); ok {
		rows = append(rows, row{"latency of ok operations (sends and reads), ms", fmt.Sprintf("p50 %s, p99 %s, max %s", num(l.P50), num(l.P99), num(l.Max))})
	}
	for _, k := range []string{"lost", "duplicated", "unexpected", "recovered", "fail_applied", "reordered", "resyncs",
		"stale_reads", "stale_local_reads", "divergent_conversations", "linearizable", "converged"} {
		add(k, rep[k])
	}
	conv := show(rep["convergence_ms"])
	if rep["convergence_ms"] != nil {
		conv += " ms"
	}
	rows = append(rows, row{"convergence_ms", conv + " (from " + show(rep["convergence_from"]) + ")"},
		row{"convergence after the final heal", show(rep["convergence_after_final_heal_ms"]) + " ms"})
	return rows
}

func afterHeal(n int) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("; %d more answered ok only after the heal", n)
}

// sentence is the mode's verdict in words a student can repeat, built from
// the numbers: what each partition side acknowledged while cut off (or the
// share during faults), what was lost, linearizability (CP), convergence.
func sentence(rep Report) string {
	var b strings.Builder
	name := strings.ToUpper(fmt.Sprint(rep["mode"]))
	if rep["mode"] == "ap" && rep["ap_repair"] == false {
		name = "AP without repair"
	}
	b.WriteString(name)
	sides, _ := rep["side_counts"].(map[string]check.SideCount)
	av, _ := rep["availability"].(check.Availability)
	if len(sides) > 0 {
		names := make([]string, 0, len(sides))
		for s := range sides {
			names = append(names, s)
		}
		// The side that fared worst first: it is the lesson.
		sort.Slice(names, func(i, j int) bool {
			a, c := sides[names[i]], sides[names[j]]
			ra, rc := float64(a.AckedWhile)/float64(a.Sends), float64(c.AckedWhile)/float64(c.Sends)
			if ra != rc {
				return ra < rc
			}
			return names[i] < names[j]
		})
		for i, s := range names {
			c := sides[s]
			if i == 0 {
				fmt.Fprintf(&b, " acknowledged %d of %d writes on the side %s while the partition was in force", c.AckedWhile, c.Sends, s)
			} else {
				fmt.Fprintf(&b, ", and %d of %d on the side %s", c.AckedWhile, c.Sends, s)
			}
			var why []string
			if c.Refused > 0 {
				why = append(why, fmt.Sprintf("%d refused", c.Refused))
			}
			if c.Unknown > 0 {
				why = append(why, fmt.Sprintf("%d unknown", c.Unknown))
			}
			if c.AckedLater > 0 {
				why = append(why, fmt.Sprintf("%d answered only after the heal", c.AckedLater))
			}
			if len(why) > 0 {
				fmt.Fprintf(&b, " (%s)", strings.Join(why, ", "))
			}
		}
	} else if av.Samples.DuringFaults == 0 {
		b.WriteString(" made no write while faults were in force")
	} else {
		fmt.Fprintf(&b, " acknowledged %s writes while faults were in force%s", share(av.DuringFaults, av.Samples.DuringFaults), afterHeal(av.CompletedAfterHeal.DuringFaults))
	}
	var rest []string
	lost := toFloat(rep["lost"])
	if lost == 0 {
		rest = append(rest, "lost nothing")
	} else {
		rest = append(rest, fmt.Sprintf("lost %s acknowledged messages", num(lost)))
	}
	if d := toFloat(rep["duplicated"]); d > 0 {
		rest = append(rest, fmt.Sprintf("duplicated %s", num(d)))
	}
	switch rep["linearizable"] {
	case true:
		rest = append(rest, "its history is linearizable")
	case false:
		rest = append(rest, "its history is not linearizable")
	case "unknown":
		rest = append(rest, "the linearizability check ran out of time")
	}
	switch {
	case rep["converged"] != true:
		rest = append(rest, "its replicas did not converge")
	case rep["convergence_ms"] != nil:
		rest = append(rest, fmt.Sprintf("its replicas converged %s ms after the faults ended", show(rep["convergence_ms"])))
	default:
		rest = append(rest, "its replicas converged after the final heal")
	}
	fmt.Fprintf(&b, "; it %s.", joinAnd(rest))
	return b.String()
}

// joinAnd joins phrases as "a, b and c".
func joinAnd(p []string) string {
	if len(p) < 2 {
		return strings.Join(p, "")
	}
	return strings.Join(p[:len(p)-1], ", ") + " and " + p[len(p)-1]
}
