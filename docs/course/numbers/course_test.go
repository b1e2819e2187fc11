package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The course's promise about its numbers, checked on the pages themselves
// (without running anything): every marked table is the generator's, it
// states its seeds (at least five), commit and date, and the Chinese page
// shows the same tables with the same figures as the English one, and the
// same inline numbers.

// repoRoot is the repository, from this package's folder.
const repoRoot = "../../.."

// minSeeds is the spread the course promises: at least five seeds.
const minSeeds = 5

// block is a marked table as a page shows it.
type block struct {
	line      int
	spec      string
	statement string
	head      []string
	labels    []string
	cells     [][]string // per row, the figures (every column but the first)
}

func parseBlocks(text string) []block {
	var out []block
	var cur *block
	for i, l := range strings.Split(text, "\n") {
		if m := blockStart.FindStringSubmatch(l); m != nil {
			cur = &block{line: i + 1, spec: m[1]}
			continue
		}
		if cur == nil {
			continue
		}
		t := strings.TrimSpace(l)
		switch {
		case blockEnd.MatchString(l):
			out = append(out, *cur)
			cur = nil
		case strings.HasPrefix(t, "|---"):
		case strings.HasPrefix(t, "|"):
			c := splitRow(t)
			if cur.head == nil {
				cur.head = c
			} else {
				cur.labels = append(cur.labels, c[0])
				cur.cells = append(cur.cells, c[1:])
			}
		case t != "" && cur.statement == "":
			cur.statement = t
		}
	}
	return out
}

func splitRow(t string) []string {
	parts := strings.Split(strings.Trim(t, "|"), "|")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts
}

// compareCells is "" when two blocks are the same table in two languages:
// the same marker, as many rows and columns, and the same figures.
func compareCells(e, z block) string {
	if e.spec != z.spec {
		return fmt.Sprintf("line %d / %d: markers differ: %q against %q", e.line, z.line, e.spec, z.spec)
	}
	if len(e.head) != len(z.head) || len(e.cells) != len(z.cells) {
		return fmt.Sprintf("line %d / %d (%s): %d columns and %d rows against %d and %d", e.line, z.line, e.spec, len(e.head), len(e.cells), len(z.head), len(z.cells))
	}
	for i := range e.cells {
		if !slices.Equal(e.cells[i], z.cells[i]) {
			return fmt.Sprintf("line %d / %d (%s): row %q shows %v, its translation %q shows %v", e.line, z.line, e.spec, e.labels[i], e.cells[i], z.labels[i], z.cells[i])
		}
	}
	return ""
}

// spans are a page's inline numbers, "KEY=VALUE", sorted.
func spans(text string) []string {
	var out []string
	for _, m := range inlineSpan.FindAllStringSubmatch(text, -1) {
		out = append(out, m[1]+"="+m[2])
	}
	slices.Sort(out)
	return out
}

var (
	statedEN = regexp.MustCompile("seeds (\\d+)(?:–(\\d+))?, run on \\d{4}-\\d{2}-\\d{2} at commit `[0-9a-f]{7,}(?:\\+dirty)?`, load average ")
	statedZH = regexp.MustCompile("种子 (\\d+)(?:–(\\d+))?，\\d{4}-\\d{2}-\\d{2} 在提交 `[0-9a-f]{7,}(?:\\+dirty)?` 上运行，开始时负载均值 ")
)

// coursePairs are the pages that carry numbers, English and Chinese.
func coursePairs(t *testing.T) [][2]string {
	t.Helper()
	var pairs [][2]string
	for _, g := range [][2]string{{"docs/course", "docs/course/zh"}, {"docs/course/class", "docs/course/zh/class"}} {
		en, _ := filepath.Glob(filepath.Join(repoRoot, g[0], "*.md"))
		for _, e := range en {
			pairs = append(pairs, [2]string{e, filepath.Join(repoRoot, g[1], filepath.Base(e))})
		}
	}
	pairs = append(pairs,
		[2]string{filepath.Join(repoRoot, "docs/teaching.md"), filepath.Join(repoRoot, "docs/course/zh/class/teaching.md")},
		[2]string{filepath.Join(repoRoot, "docs/course/slides/en.html"), filepath.Join(repoRoot, "docs/course/slides/zh.html")})
	if len(pairs) < 10 {
		t.Fatalf("found %d course pages: the test is not looking at the course", len(pairs))
	}
	return pairs
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestCourseTables: every marked table of the course in English has its
// Chinese counterpart with the same figures, every marked table states its
// seeds (at least five), commit and date, and both languages quote the
// same inline numbers.
func TestCourseTables(t *testing.T) {
	tables := 0
	var enSpans, zhSpans []string
	for _, p := range coursePairs(t) {
		en := read(t, p[0])
		zh := ""
		if _, err := os.Stat(p[1]); err == nil {
			zh = read(t, p[1])
		}
		eb, zb := parseBlocks(en), parseBlocks(zh)
		if len(eb) != len(zb) {
			t.Errorf("%s has %d marked tables, %s %d: each table is shown in both languages", p[0], len(eb), p[1], len(zb))
			continue
		}
		for i := range eb {
			if d := compareCells(eb[i], zb[i]); d != "" {
				t.Errorf("%s and %s: %s", p[0], p[1], d)
			}
			checkStated(t, p[0], eb[i], statedEN)
			checkStated(t, p[1], zb[i], statedZH)
		}
		tables += len(eb)
		es, zs := spans(en), spans(zh)
		if !slices.Equal(es, zs) {
			t.Errorf("%s quotes the inline numbers %v, %s quotes %v: both languages quote the same", p[0], es, p[1], zs)
		}
		if strings.HasSuffix(p[0], ".html") {
			enSpans, zhSpans = es, zs
		}
	}
	if tables == 0 {
		t.Fatal("no marked table in the course: the marker pattern is broken")
	}
	// The decks are written by make_slides.py: what it holds is what they show.
	py := spans(read(t, filepath.Join(repoRoot, "docs/course/slides/make_slides.py")))
	decks := append(slices.Clone(enSpans), zhSpans...)
	slices.Sort(decks)
	if !slices.Equal(py, decks) {
		t.Errorf("make_slides.py quotes %v, the decks %v: run python3 docs/course/slides/make_slides.py after make course-numbers", py, decks)
	}
	t.Logf("%d tables in both languages", tables)
}

func checkStated(t *testing.T, page string, b block, stated *regexp.Regexp) {
	t.Helper()
	ms := stated.FindAllStringSubmatch(b.statement, -1)
	if len(ms) == 0 || len(ms) != len(strings.Split(strings.Fields(b.spec)[0], ",")) {
		t.Errorf("%s:%d: the table does not state the seeds, commit and date of each of its sweeps (%q): run make course-numbers", page, b.line, b.statement)
		return
	}
	for _, m := range ms {
		lo, _ := strconv.Atoi(m[1])
		hi := lo
		if m[2] != "" {
			hi, _ = strconv.Atoi(m[2])
		}
		if hi-lo+1 < minSeeds {
			t.Errorf("%s:%d: the table is over seeds %d–%d, fewer than %d: run make course-numbers", page, b.line, lo, hi, minSeeds)
		}
	}
}
