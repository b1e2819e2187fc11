package main

import "strings"

// kind is how a row's figures are computed and shown.
type kind int

const (
	// kindShare is a share of sends in [0, 1], shown as a percentage.
	kindShare kind = iota
	// kindMS is a duration in milliseconds.
	kindMS
	// kindCount is a number of operations, messages or runs.
	kindCount
	// kindBool is true, false or null in each run.
	kindBool
	// kindPassed is how many of the runs passed, from sweep.json.
	kindPassed
)

// row is one figure a table can show: what it is in report.json and what
// it is called in each language. A key may name a partition side as
// <cut> (the smaller side of the run's partition: the one cut off) or
// <rest> (the larger): the names of the sides depend on the run (in CP,
// on which node the start-up elections made leader), so a row names them
// by their role.
type row struct {
	key string
	kind
	// zero is the value of a run whose report lacks the key: the
	// report leaves out a count that is zero (completed_after_heal).
	zero bool
	en   string
	zh   string
}

// rows are the figures a table may name in its marker's rows=, by id.
var rows = map[string]row{
	"passed":   {kind: kindPassed, en: "runs whose every expectation held", zh: "每条期望都成立的运行"},
	"ops.ok":   {key: "ops.ok", kind: kindCount, en: "`ops.ok`", zh: "`ops.ok`"},
	"ops.fail": {key: "ops.fail", kind: kindCount, en: "`ops.fail`", zh: "`ops.fail`"},
	"ops.info": {key: "ops.info", kind: kindCount, en: "`ops.info`", zh: "`ops.info`"},
	"availability.overall": {key: "availability.overall", kind: kindShare,
		en: "`availability.overall`", zh: "`availability.overall`"},
	"availability.outside_faults": {key: "availability.outside_faults", kind: kindShare,
		en: "`availability.outside_faults`", zh: "`availability.outside_faults`"},
	"availability.during_faults": {key: "availability.during_faults", kind: kindShare,
		en: "`availability.during_faults`", zh: "`availability.during_faults`"},
	"availability.samples.during_faults": {key: "availability.samples.during_faults", kind: kindCount,
		en: "sends `during_faults` is over", zh: "`during_faults` 所基于的发送次数"},
	"availability.completed_after_heal.during_faults": {key: "availability.completed_after_heal.during_faults", kind: kindCount, zero: true,
		en: "of those, answered ok only after the heal", zh: "其中恢复之后才得到 ok 的"},
	"cut.share": {key: "availability.by_side.<cut>", kind: kindShare,
		en: "`availability.by_side`, the cut-off side", zh: "`availability.by_side`，被隔开的一侧"},
	"cut.sends": {key: "side_counts.<cut>.sends", kind: kindCount,
		en: "the cut-off side: sends while cut off", zh: "被隔开的一侧：隔开期间的发送"},
	"cut.acked_while_cut": {key: "side_counts.<cut>.acked_while_cut", kind: kindCount,
		en: "the cut-off side: acknowledged while cut off", zh: "被隔开的一侧：隔开期间得到确认的"},
	"cut.refused": {key: "side_counts.<cut>.refused", kind: kindCount,
		en: "the cut-off side: refused (`fail`)", zh: "被隔开的一侧：被拒绝的（`fail`）"},
	"cut.unknown": {key: "side_counts.<cut>.unknown", kind: kindCount,
		en: "the cut-off side: outcome unknown (`info`)", zh: "被隔开的一侧：结果未知的（`info`）"},
	"cut.acked_after_heal": {key: "side_counts.<cut>.acked_after_heal", kind: kindCount,
		en: "the cut-off side: answered ok only after the heal", zh: "被隔开的一侧：恢复之后才得到 ok 的"},
	"rest.share": {key: "availability.by_side.<rest>", kind: kindShare,
		en: "`availability.by_side`, the other side", zh: "`availability.by_side`，另一侧"},
	"rest.sends": {key: "side_counts.<rest>.sends", kind: kindCount,
		en: "the other side: sends while the cut held", zh: "另一侧：切断期间的发送"},
	"latency_ms.p50": {key: "latency_ms.p50", kind: kindMS, en: "`latency_ms.p50`", zh: "`latency_ms.p50`"},
	"latency_ms.p99": {key: "latency_ms.p99", kind: kindMS, en: "`latency_ms.p99`", zh: "`latency_ms.p99`"},
	"latency_ms.max": {key: "latency_ms.max", kind: kindMS, en: "`latency_ms.max`", zh: "`latency_ms.max`"},
	"lost":           {key: "lost", kind: kindCount, en: "`lost`", zh: "`lost`"},
	"duplicated":     {key: "duplicated", kind: kindCount, en: "`duplicated`", zh: "`duplicated`"},
	"fail_applied":   {key: "fail_applied", kind: kindCount, en: "`fail_applied`", zh: "`fail_applied`"},
	"stale_reads":    {key: "stale_reads", kind: kindCount, en: "`stale_reads`", zh: "`stale_reads`"},
	"stale_local_reads": {key: "stale_local_reads", kind: kindCount,
		en: "`stale_local_reads`", zh: "`stale_local_reads`"},
	"recovered": {key: "recovered", kind: kindCount, en: "`recovered`", zh: "`recovered`"},
	"divergent_conversations": {key: "divergent_conversations", kind: kindCount,
		en: "`divergent_conversations`", zh: "`divergent_conversations`"},
	"reordered":    {key: "reordered", kind: kindCount, en: "`reordered`", zh: "`reordered`"},
	"resyncs":      {key: "resyncs", kind: kindCount, en: "`resyncs`", zh: "`resyncs`"},
	"linearizable": {key: "linearizable", kind: kindBool, en: "`linearizable`", zh: "`linearizable`"},
	"converged":    {key: "converged", kind: kindBool, en: "`converged`", zh: "`converged`"},
	"convergence_ms": {key: "convergence_ms", kind: kindMS,
		en: "`convergence_ms` (from the end of the scenario's fault)", zh: "`convergence_ms`（从场景自己的故障结束时算起）"},
	"convergence_after_final_heal_ms": {key: "convergence_after_final_heal_ms", kind: kindMS,
		en: "`convergence_after_final_heal_ms`", zh: "`convergence_after_final_heal_ms`"},
}

// modeLabels are the column headings.
var modeLabels = map[string][2]string{
	"cp":          {"CP", "CP"},
	"ap":          {"AP", "AP"},
	"ap-norepair": {"AP, repair off", "AP，关闭修复"},
}

// scenarioLabels name a scenario where a table has a row per scenario.
var scenarioLabels = map[string][2]string{
	"no-fault": {"one machine (`no-fault`)", "一台机器（`no-fault`）"},
	"wan":      {"40 ms between nodes (`wan`)", "节点之间相隔 40 毫秒（`wan`）"},
}

// lang is a page's language: 0 English, 1 Chinese.
type lang int

const (
	langEN lang = 0
	langZH lang = 1
)

// label is a row's name in l.
func (r row) label(l lang) string {
	if l == langZH {
		return r.zh
	}
	return r.en
}

func modeLabel(mode string, l lang) string {
	if m, ok := modeLabels[mode]; ok {
		return m[l]
	}
	return mode
}

func scenarioLabel(name string, l lang) string {
	if s, ok := scenarioLabels[name]; ok {
		return s[l]
	}
	return "`" + name + "`"
}

// langOf is the language of a page: the Chinese pages are under a zh/
// folder, and a file named zh.* is the Chinese slide deck.
func langOf(path string) lang {
	p := "/" + strings.ReplaceAll(path, "\\", "/")
	if strings.Contains(p, "/zh/") || strings.HasPrefix(baseName(p), "zh.") {
		return langZH
	}
	return langEN
}

func baseName(p string) string {
	if i := strings.LastIndex(p, "/"); i >= 0 {
		return p[i+1:]
	}
	return p
}
