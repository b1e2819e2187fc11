package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"mpim/chaos/runner"
)

// Meta is what the generator records beside a sweep's sweep.json
// (numbers.json): what was run, on which commit, when, and how loaded the
// machine was, so that a table can say so.
type Meta struct {
	Scenario  string  `json:"scenario"` // the name, as markers write it
	Command   string  `json:"command"`  // the sweep, without its --out
	Quick     bool    `json:"quick"`
	Commit    string  `json:"commit"` // short hash, "+dirty" when the tree was
	Date      string  `json:"date"`   // YYYY-MM-DD, UTC
	LoadStart string  `json:"load_start"`
	LoadEnd   string  `json:"load_end"`
	WallS     float64 `json:"wall_s"`
}

// sweepData is one scenario's sweep as the tables read it: its matrix,
// and every run's report by mode, in seed order.
type sweepData struct {
	meta    Meta
	sweep   runner.Sweep
	reports map[string][]runner.Report
}

// loadSweep reads dir/numbers.json, dir/sweep.json and the report of
// every run, at the place the sweep writes it
// (dir/SCENARIO/MODE/seed-N/report.json, so the folder may be moved).
// Where sweep.json's spread has a figure the tables compute from the
// reports too, the two must agree.
func loadSweep(dir string) (*sweepData, error) {
	d := &sweepData{reports: map[string][]runner.Report{}}
	if err := readJSON(filepath.Join(dir, "numbers.json"), &d.meta); err != nil {
		return nil, err
	}
	if err := readJSON(filepath.Join(dir, "sweep.json"), &d.sweep); err != nil {
		return nil, err
	}
	for _, r := range d.sweep.Runs {
		if r.Err != "" {
			return nil, fmt.Errorf("%s: %s %s seed %d did not run (%s): run the sweep again", dir, r.Scenario, r.Mode, r.Seed, r.Err)
		}
		var rep runner.Report
		if err := readJSON(filepath.Join(dir, r.Scenario, r.Mode, fmt.Sprintf("seed-%d", r.Seed), "report.json"), &rep); err != nil {
			return nil, err
		}
		d.reports[r.Mode] = append(d.reports[r.Mode], rep)
	}
	for _, c := range d.sweep.Cells {
		for key, want := range c.Spread {
			if !slices.Contains(runner.SweepKeys, key) {
				continue
			}
			got := d.spread(c.Mode, row{key: key})
			if got.n != want.N || got.nulls != want.Null || (got.n > 0 && (got.min != want.Min || got.median != want.Median || got.max != want.Max)) {
				return nil, fmt.Errorf("%s: %s %s: sweep.json gives %s %v/%v/%v over %d, the reports %v/%v/%v over %d: the folder does not hold the runs sweep.json names",
					dir, c.Scenario, c.Mode, key, want.Min, want.Median, want.Max, want.N, got.min, got.median, got.max, got.n)
			}
		}
	}
	return d, nil
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// cell is the sweep's cell of a mode.
func (d *sweepData) cell(mode string) (runner.SweepCell, bool) {
	for _, c := range d.sweep.Cells {
		if c.Mode == mode {
			return c, true
		}
	}
	return runner.SweepCell{}, false
}

// seeds is the range of seeds the sweep ran, "1–5".
func (d *sweepData) seeds() string {
	var all []uint64
	for _, c := range d.sweep.Cells {
		all = append(all, c.Seeds...)
	}
	if len(all) == 0 {
		return "none"
	}
	lo, hi := slices.Min(all), slices.Max(all)
	if lo == hi {
		return strconv.FormatUint(lo, 10)
	}
	return fmt.Sprintf("%d–%d", lo, hi)
}

// runs is how many seeds each mode ran.
func (d *sweepData) runs() int {
	n := 0
	for _, c := range d.sweep.Cells {
		n = max(n, c.Runs)
	}
	return n
}

// spread is a figure over the runs of a mode.
type spread struct {
	min, median, max float64
	n, nulls         int
	// trues and falses count the runs of a bool figure.
	trues, falses int
}

// errNoMode is a table naming a mode its sweep did not run.
var errNoMode = errors.New("the sweep did not run this mode")

// spread computes a row's figure over the mode's runs: min, median (of the
// two middle values when there is an even number of them, as sweep.json's)
// and max of the runs that have a number for it.
func (d *sweepData) spread(mode string, r row) spread {
	var vs []float64
	var s spread
	for _, rep := range d.reports[mode] {
		v := lookup(rep, resolveSide(rep, r.key))
		if v == nil && r.zero {
			v = 0.0
		}
		switch v := v.(type) {
		case float64:
			vs = append(vs, v)
		case bool:
			if v {
				s.trues++
			} else {
				s.falses++
			}
		default:
			s.nulls++
		}
	}
	s.n = len(vs)
	if s.n > 0 {
		slices.Sort(vs)
		s.min, s.max = vs[0], vs[s.n-1]
		if s.n%2 == 1 {
			s.median = vs[s.n/2]
		} else {
			s.median = (vs[s.n/2-1] + vs[s.n/2]) / 2
		}
	}
	return s
}

// resolveSide replaces <cut> and <rest> in key by the names of the run's
// smallest and largest partition sides (fewest and most members), as
// `availability.by_side` and `side_counts` name them.
func resolveSide(rep runner.Report, key string) string {
	if !strings.Contains(key, "<cut>") && !strings.Contains(key, "<rest>") {
		return key
	}
	var sides []string
	if m, ok := lookup(rep, "availability.by_side").(map[string]any); ok {
		for s := range m {
			if s != "all" {
				sides = append(sides, s)
			}
		}
	}
	if m, ok := lookup(rep, "side_counts").(map[string]any); ok {
		for s := range m {
			if !slices.Contains(sides, s) {
				sides = append(sides, s)
			}
		}
	}
	if len(sides) == 0 {
		return "" // no partition: the figure has no value
	}
	members := func(s string) int { return strings.Count(s, ",") + 1 }
	slices.SortFunc(sides, func(a, b string) int {
		if c := members(a) - members(b); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	key = strings.ReplaceAll(key, "<cut>", sides[0])
	return strings.ReplaceAll(key, "<rest>", sides[len(sides)-1])
}

// lookup is the value at a dotted key of a report (nil when absent). No
// part of a key holds a dot: sides are named with commas.
func lookup(rep runner.Report, key string) any {
	if key == "" {
		return nil
	}
	var cur any = map[string]any(rep)
	for _, part := range strings.Split(key, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[part]
	}
	return cur
}

// figure is the text of one table cell: the median, and in brackets the
// lowest and the highest value when they differ; then how many runs had
// no value, when some did ("2/5 —"). Cells are the same in every
// language, so the English and Chinese tables can be compared.
func (d *sweepData) figure(mode string, r row) (string, error) {
	c, ok := d.cell(mode)
	if !ok {
		return "", fmt.Errorf("%s %s: %w", d.meta.Scenario, mode, errNoMode)
	}
	if r.kind == kindPassed {
		return fmt.Sprintf("%d/%d", c.Passed, c.Runs), nil
	}
	s := d.spread(mode, r)
	total := s.n + s.nulls + s.trues + s.falses
	if total == 0 {
		return "—", nil
	}
	if r.kind == kindBool {
		var parts []string
		for _, p := range []struct {
			text string
			n    int
		}{{"`true`", s.trues}, {"`false`", s.falses}, {"—", s.nulls + s.n}} {
			switch {
			case p.n == total:
				return p.text, nil
			case p.n > 0:
				parts = append(parts, fmt.Sprintf("%s %d/%d", p.text, p.n, total))
			}
		}
		return strings.Join(parts, ", "), nil
	}
	if s.n == 0 {
		return "—", nil
	}
	out := show(r.kind, s.median)
	if s.min != s.max {
		out += " (" + bare(r.kind, s.min) + "–" + bare(r.kind, s.max) + ")"
	}
	if s.nulls > 0 {
		out += fmt.Sprintf("; %d/%d —", s.nulls, total)
	}
	return out, nil
}

// median is a row's median alone, as prose quotes it (an inline span).
func (d *sweepData) median(mode string, r row) (string, error) {
	if r.kind == kindPassed || r.kind == kindBool {
		return d.figure(mode, r)
	}
	if _, ok := d.cell(mode); !ok {
		return "", fmt.Errorf("%s %s: %w", d.meta.Scenario, mode, errNoMode)
	}
	s := d.spread(mode, r)
	if s.n == 0 {
		return "—", nil
	}
	return show(r.kind, s.median), nil
}

// show is a value with its unit.
func show(k kind, v float64) string {
	switch k {
	case kindShare:
		return bare(k, v) + "%"
	case kindMS:
		return bare(k, v) + " ms"
	}
	return bare(k, v)
}

// bare is a value without its unit: a share as a percentage with one
// decimal, a duration with three significant digits (whole milliseconds
// from 100 ms), a count as it is.
func bare(k kind, v float64) string {
	switch k {
	case kindShare:
		return trim(strconv.FormatFloat(math.Round(v*1000)/10, 'f', 1, 64))
	case kindMS:
		switch a := math.Abs(v); {
		case a >= 100:
			return strconv.FormatFloat(math.Round(v), 'f', 0, 64)
		case a >= 10:
			return trim(strconv.FormatFloat(v, 'f', 1, 64))
		default:
			return trim(strconv.FormatFloat(v, 'f', 2, 64))
		}
	}
	return trim(strconv.FormatFloat(v, 'f', 1, 64))
}

// trim drops a fraction of zeros: "10.0" is "10", "4.50" is "4.5".
func trim(s string) string {
	if !strings.Contains(s, ".") {
		return s
	}
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}
