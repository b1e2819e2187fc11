package main

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// A page marks what the generator owns in two ways.
//
// A table: everything between a line
//
//	<!-- numbers: SCENARIO[,SCENARIO...] [quick] modes=MODE,... rows=ROW,... -->
//
// and the next line <!-- /numbers --> is rewritten: a line that states the
// sweep (command, seeds, commit, date, load average), then a table with a
// column per mode and a row per ROW (the ids of rows.go), each figure the
// median over the seeds with its min–max. With several scenarios the table
// has a row per scenario and ROW.
//
// A number in prose: <!-- n:SCENARIO/MODE/ROW -->TEXT<!-- /n --> has TEXT
// replaced by the median of that figure in the quick sweep of SCENARIO.
// The key is lower case, so that a page may show the pattern itself with
// upper-case placeholders, as docs/course/README.md does.
var (
	blockStart = regexp.MustCompile(`^<!-- numbers: (.*?) -->\s*$`)
	blockEnd   = regexp.MustCompile(`^<!-- /numbers -->\s*$`)
	inlineSpan = regexp.MustCompile(`<!-- n:([a-z0-9_./-]+) -->(.*?)<!-- /n -->`)
)

// spec is a table's marker.
type spec struct {
	raw   string
	names []string
	quick bool
	modes []string
	rows  []string
}

// sweepKey names a sweep: a scenario, quick or full length.
type sweepKey struct {
	name  string
	quick bool
}

func (k sweepKey) String() string {
	if k.quick {
		return k.name + " (--quick)"
	}
	return k.name
}

var knownModes = []string{"cp", "ap", "ap-norepair"}

func parseSpec(raw string) (spec, error) {
	s := spec{raw: raw}
	fields := strings.Fields(raw)
	if len(fields) == 0 {
		return s, fmt.Errorf("empty marker: write <!-- numbers: SCENARIO quick modes=cp,ap rows=lost,... -->")
	}
	s.names = strings.Split(fields[0], ",")
	for _, f := range fields[1:] {
		switch {
		case f == "quick":
			s.quick = true
		case strings.HasPrefix(f, "modes="):
			s.modes = strings.Split(strings.TrimPrefix(f, "modes="), ",")
		case strings.HasPrefix(f, "rows="):
			s.rows = strings.Split(strings.TrimPrefix(f, "rows="), ",")
		default:
			return s, fmt.Errorf("marker %q: unknown word %q (quick, modes=..., rows=...)", raw, f)
		}
	}
	if len(s.modes) == 0 || len(s.rows) == 0 {
		return s, fmt.Errorf("marker %q: it needs modes= and rows=", raw)
	}
	for _, m := range s.modes {
		if !slices.Contains(knownModes, m) {
			return s, fmt.Errorf("marker %q: unknown mode %q (cp, ap, ap-norepair)", raw, m)
		}
	}
	for _, r := range s.rows {
		if _, ok := rows[r]; !ok {
			return s, fmt.Errorf("marker %q: unknown row %q (the ids are in docs/course/numbers/rows.go)", raw, r)
		}
	}
	return s, nil
}

// span is an inline number: SCENARIO/MODE/ROW.
type span struct {
	name, mode, row string
}

func parseSpan(key string) (span, error) {
	p := strings.Split(key, "/")
	if len(p) != 3 {
		return span{}, fmt.Errorf("inline number %q: write <!-- n:SCENARIO/MODE/ROW -->", key)
	}
	s := span{p[0], p[1], p[2]}
	if !slices.Contains(knownModes, s.mode) {
		return s, fmt.Errorf("inline number %q: unknown mode %q", key, s.mode)
	}
	if _, ok := rows[s.row]; !ok {
		return s, fmt.Errorf("inline number %q: unknown row %q", key, s.row)
	}
	return s, nil
}

// needs is what a page asks of the sweeps: per sweep, the modes its tables
// and inline numbers show.
func needs(text string, into map[sweepKey][]string) error {
	add := func(k sweepKey, modes ...string) {
		for _, m := range modes {
			if !slices.Contains(into[k], m) {
				into[k] = append(into[k], m)
			}
		}
	}
	for _, line := range strings.Split(text, "\n") {
		if m := blockStart.FindStringSubmatch(line); m != nil {
			s, err := parseSpec(m[1])
			if err != nil {
				return err
			}
			for _, n := range s.names {
				add(sweepKey{n, s.quick}, s.modes...)
			}
		}
		for _, m := range inlineSpan.FindAllStringSubmatch(line, -1) {
			s, err := parseSpan(m[1])
			if err != nil {
				return err
			}
			add(sweepKey{s.name, true}, s.mode)
		}
	}
	return nil
}

// rewrite is text with every table and inline number whose sweep data has
// rewritten in language l; the ones whose sweep is missing are left as
// they are and named in skipped.
func rewrite(text string, l lang, data map[sweepKey]*sweepData) (out string, skipped []string, err error) {
	lines := strings.Split(text, "\n")
	var b []string
	for i := 0; i < len(lines); i++ {
		m := blockStart.FindStringSubmatch(lines[i])
		if m == nil {
			line, sk, err := rewriteSpans(lines[i], data)
			if err != nil {
				return "", nil, fmt.Errorf("line %d: %w", i+1, err)
			}
			skipped = append(skipped, sk...)
			b = append(b, line)
			continue
		}
		end := i + 1
		for end < len(lines) && !blockEnd.MatchString(lines[end]) && !blockStart.MatchString(lines[end]) {
			end++
		}
		if end == len(lines) || !blockEnd.MatchString(lines[end]) {
			return "", nil, fmt.Errorf("line %d: <!-- numbers: %s --> has no <!-- /numbers --> after it", i+1, m[1])
		}
		s, err := parseSpec(m[1])
		if err != nil {
			return "", nil, fmt.Errorf("line %d: %w", i+1, err)
		}
		table, missing, err := renderTable(s, l, data)
		if err != nil {
			return "", nil, fmt.Errorf("line %d: %w", i+1, err)
		}
		b = append(b, lines[i])
		if missing != "" {
			skipped = append(skipped, missing)
			b = append(b, lines[i+1:end]...)
		} else {
			b = append(b, "", table, "")
		}
		b = append(b, lines[end])
		i = end
	}
	return strings.Join(b, "\n"), skipped, nil
}

func rewriteSpans(line string, data map[sweepKey]*sweepData) (string, []string, error) {
	var skipped []string
	var err error
	out := inlineSpan.ReplaceAllStringFunc(line, func(whole string) string {
		m := inlineSpan.FindStringSubmatch(whole)
		s, e := parseSpan(m[1])
		if e != nil {
			err = e
			return whole
		}
		d := data[sweepKey{s.name, true}]
		if d == nil {
			skipped = append(skipped, "n:"+m[1])
			return whole
		}
		v, e := d.median(s.mode, rows[s.row])
		if e != nil {
			err = fmt.Errorf("inline number %s: %w", m[1], e)
			return whole
		}
		return "<!-- n:" + m[1] + " -->" + v + "<!-- /n -->"
	})
	return out, skipped, err
}

// renderTable is a marker's statement line and table, or the name of the
// sweep it lacks.
func renderTable(s spec, l lang, data map[sweepKey]*sweepData) (string, string, error) {
	var ds []*sweepData
	for _, n := range s.names {
		d := data[sweepKey{n, s.quick}]
		if d == nil {
			return "", sweepKey{n, s.quick}.String(), nil
		}
		ds = append(ds, d)
	}
	var t strings.Builder
	head := map[lang]string{langEN: "report key", langZH: "报告字段"}[l]
	if len(ds) > 1 {
		head = ""
		if len(s.rows) == 1 {
			head = rows[s.rows[0]].label(l)
		}
	}
	t.WriteString("| " + head + " |")
	for _, m := range s.modes {
		t.WriteString(" " + modeLabel(m, l) + " |")
	}
	t.WriteString("\n|---|" + strings.Repeat("---|", len(s.modes)) + "\n")
	partial := false // some figure lacks a value in some runs
	for i, d := range ds {
		for _, id := range s.rows {
			r := rows[id]
			label := r.label(l)
			if len(ds) > 1 {
				label = scenarioLabel(s.names[i], l)
				if len(s.rows) > 1 {
					label += map[lang]string{langEN: ", ", langZH: "，"}[l] + r.label(l)
				}
			}
			t.WriteString("| " + label + " |")
			for _, m := range s.modes {
				f, err := d.figure(m, r)
				if err != nil {
					return "", "", err
				}
				partial = partial || strings.HasSuffix(f, " —")
				t.WriteString(" " + f + " |")
			}
			t.WriteString("\n")
		}
	}
	return statement(ds, l, partial) + "\n\n" + strings.TrimSuffix(t.String(), "\n"), "", nil
}

// statement is the line above a table: what made it, when, on what.
func statement(ds []*sweepData, l lang, partial bool) string {
	var parts []string
	runs := 0
	for _, d := range ds {
		m := d.meta
		runs = max(runs, d.runs())
		if l == langZH {
			parts = append(parts, fmt.Sprintf("`%s`，种子 %s，%s 在提交 `%s` 上运行，开始时负载均值 %s，结束时 %s", m.Command, d.seeds(), m.Date, m.Commit, m.LoadStart, m.LoadEnd))
		} else {
			parts = append(parts, fmt.Sprintf("`%s`, seeds %s, run on %s at commit `%s`, load average %s at the start and %s at the end", m.Command, d.seeds(), m.Date, m.Commit, m.LoadStart, m.LoadEnd))
		}
	}
	if l == langZH {
		out := fmt.Sprintf("由 `make course-numbers` 生成：%s。每个数字是一种模式 %d 次运行（每个种子一次）的中位数，括号里是最小值和最大值", strings.Join(parts, "；"), runs)
		if partial {
			out += fmt.Sprintf("；“k/%d —”表示有 k 次运行没有这个值", runs)
		}
		return out + "。"
	}
	out := fmt.Sprintf("Made by `make course-numbers`: %s. Each figure is the median over a mode's %d runs (one per seed), with the lowest and the highest in brackets", strings.Join(parts, "; "), runs)
	if partial {
		out += fmt.Sprintf("; “k/%d —” counts the runs that had no value", runs)
	}
	return out + "."
}
