package runner

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// SweepRun is one run of a sweep: a scenario in one mode on one seed, and
// its report (nil when the run could not be made: Err says why).
type SweepRun struct {
	Scenario string  `json:"scenario"`
	Mode     string  `json:"mode"` // cp, ap or ap-norepair
	Seed     uint64  `json:"seed"`
	Verdict  string  `json:"verdict"`
	Dir      string  `json:"dir"`
	Err      string  `json:"error,omitempty"`
	Report   *Report `json:"-"`
}

// SweepKeys are the report figures a sweep shows the spread of (dotted keys
// of report.json).
var SweepKeys = []string{
	"availability.during_faults", "availability.outside_faults", "availability.overall",
	"latency_ms.p50", "latency_ms.p99",
	"lost", "duplicated", "fail_applied", "stale_reads", "stale_local_reads",
	"reordered", "resyncs", "divergent_conversations", "convergence_ms",
}

// Spread is one figure over the seeds of a (scenario, mode): min, median
// and max of the runs that had a number for it, how many did, and how
// many had none (null: e.g. convergence never seen).
type Spread struct {
	Min    float64 `json:"min"`
	Median float64 `json:"median"`
	Max    float64 `json:"max"`
	N      int     `json:"n"`
	Null   int     `json:"null,omitempty"`
}

// SweepCell is one (scenario, mode) of the matrix.
type SweepCell struct {
	Scenario string            `json:"scenario"`
	Mode     string            `json:"mode"`
	Passed   int               `json:"passed"`
	Runs     int               `json:"runs"`
	Seeds    []uint64          `json:"seeds"`
	Spread   map[string]Spread `json:"spread"`
	// Linearizable counts, for CP, the runs whose history checked
	// linearizable.
	Linearizable int `json:"linearizable,omitempty"`
}

// Sweep is the verdict matrix of a sweep.
type Sweep struct {
	Command string      `json:"command"`
	Cells   []SweepCell `json:"cells"`
	Runs    []SweepRun  `json:"runs"`
}

// Summarize builds the matrix from a sweep's runs, scenarios in the order
// first run, modes cp, ap, ap-norepair.
func Summarize(command string, runs []SweepRun) Sweep {
	s := Sweep{Command: command, Runs: runs}
	index := map[[2]string]int{}
	var order [][2]string
	for _, r := range runs {
		k := [2]string{r.Scenario, r.Mode}
		if _, ok := index[k]; !ok {
			index[k] = len(order)
			order = append(order, k)
		}
	}
	rank := map[string]int{"cp": 0, "ap": 1, "ap-norepair": 2}
	scen := map[string]int{}
	for i, k := range order {
		if _, ok := scen[k[0]]; !ok {
			scen[k[0]] = i
		}
	}
	sort.SliceStable(order, func(i, j int) bool {
		if scen[order[i][0]] != scen[order[j][0]] {
			return scen[order[i][0]] < scen[order[j][0]]
		}
		return rank[order[i][1]] < rank[order[j][1]]
	})
	for _, k := range order {
		cell := SweepCell{Scenario: k[0], Mode: k[1], Spread: map[string]Spread{}}
		values := map[string][]float64{}
		nulls := map[string]int{}
		for _, r := range runs {
			if r.Scenario != k[0] || r.Mode != k[1] {
				continue
			}
			cell.Runs++
			cell.Seeds = append(cell.Seeds, r.Seed)
			if r.Verdict == "pass" {
				cell.Passed++
			}
			if r.Report == nil {
				continue
			}
			if (*r.Report)["linearizable"] == true {
				cell.Linearizable++
			}
			for _, key := range SweepKeys {
				switch v := lookup(*r.Report, key).(type) {
				case float64:
					values[key] = append(values[key], v)
				case nil:
					nulls[key]++
				}
			}
		}
		for _, key := range SweepKeys {
			vs := values[key]
			if len(vs) == 0 && nulls[key] == 0 {
				continue
			}
			sp := Spread{N: len(vs), Null: nulls[key]}
			if len(vs) > 0 {
				slices.Sort(vs)
				sp.Min, sp.Max = vs[0], vs[len(vs)-1]
				if len(vs)%2 == 1 {
					sp.Median = vs[len(vs)/2]
				} else {
					sp.Median = (vs[len(vs)/2-1] + vs[len(vs)/2]) / 2
				}
			}
			cell.Spread[key] = sp
		}
		s.Cells = append(s.Cells, cell)
	}
	return s
}

// showSpread is a spread as the tables show it: "min / median / max",
// shares as percentages, "—" where no run had a number.
func showSpread(key string, sp Spread) string {
	if sp.N == 0 {
		return "—"
	}
	f := num
	if strings.HasPrefix(key, "availability.") {
		f = func(v float64) string { return num(v*100) + "%" }
	}
	out := f(sp.Min)
	if sp.Min != sp.Max {
		out = f(sp.Min) + " / " + f(sp.Median) + " / " + f(sp.Max)
	}
	if sp.Null > 0 {
		out += fmt.Sprintf(" (%d without)", sp.Null)
	}
	return out
}

// WriteSweep writes sweep.json, sweep.md and sweep.html into out.
func WriteSweep(out string, s Sweep) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	js, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, "sweep.json"), js, 0o644); err != nil {
		return err
	}
	var md strings.Builder
	fmt.Fprintf(&md, "# Chaos sweep\n\n`%s`\n\n", s.Command)
	md.WriteString("Each cell: the runs whose every expectation held, of the seeds run; then each figure as min / median / max over the seeds (one value when all agree). Each run's own report is in its folder (`sweep.json` lists them).\n\n")
	md.WriteString("| scenario | mode | passed |")
	for _, k := range SweepKeys {
		md.WriteString(" " + k + " |")
	}
	md.WriteString("\n|---|---|---|" + strings.Repeat("---|", len(SweepKeys)) + "\n")
	for _, c := range s.Cells {
		fmt.Fprintf(&md, "| %s | %s | %d/%d |", c.Scenario, c.Mode, c.Passed, c.Runs)
		for _, k := range SweepKeys {
			md.WriteString(" " + showSpread(k, c.Spread[k]) + " |")
		}
		md.WriteString("\n")
	}
	if err := os.WriteFile(filepath.Join(out, "sweep.md"), []byte(md.String()), 0o644); err != nil {
		return err
	}
	var h strings.Builder
	fmt.Fprintf(&h, "<!doctype html><html><head><meta charset=utf-8><title>Chaos sweep</title><style>%s td.fail{color:#c62828}td.pass{color:#2e7d32}</style></head><body><h1>Chaos sweep</h1>\n", reportCSS)
	fmt.Fprintf(&h, "<p><code>%s</code></p><p class=small>Each figure: min / median / max over the seeds. Click a cell's scenario for its runs' reports.</p>\n<table><tr><th>scenario</th><th>mode</th><th>passed</th>", esc(s.Command))
	for _, k := range SweepKeys {
		fmt.Fprintf(&h, "<th>%s</th>", esc(k))
	}
	h.WriteString("</tr>\n")
	for _, c := range s.Cells {
		cls := "pass"
		if c.Passed < c.Runs {
			cls = "fail"
		}
		var links []string
		for _, r := range s.Runs {
			if r.Scenario == c.Scenario && r.Mode == c.Mode && r.Dir != "" {
				rel, err := filepath.Rel(out, r.Dir)
				if err != nil {
					rel = r.Dir
				}
				links = append(links, fmt.Sprintf("<a href=\"%s/report.html\">%d</a>", esc(filepath.ToSlash(rel)), r.Seed))
			}
		}
		fmt.Fprintf(&h, "<tr><th>%s<br><span class=small>seeds %s</span></th><td>%s</td><td class=%s>%d/%d</td>", esc(c.Scenario), strings.Join(links, " "), esc(c.Mode), cls, c.Passed, c.Runs)
		for _, k := range SweepKeys {
			fmt.Fprintf(&h, "<td>%s</td>", esc(showSpread(k, c.Spread[k])))
		}
		h.WriteString("</tr>\n")
	}
	h.WriteString("</table></body></html>\n")
	return os.WriteFile(filepath.Join(out, "sweep.html"), []byte(h.String()), 0o644)
}
