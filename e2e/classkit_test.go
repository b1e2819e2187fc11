package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"mpim/chaos/fault"
)

// The class kit (docs/course/class, in Chinese docs/course/zh/class) is
// what a teacher reads in front of a class, so it must not point at a page,
// a heading, a flag or a scenario that does not exist. TestClassKit checks,
// without starting a cluster:
//
//   - every English page has a Chinese page with the same ```sh commands
//     in the same order, and the same number of headings at each level (the
//     quiz's questions and the plan's blocks are headings);
//   - every relative link of both languages (and of zh/class/teaching.md,
//     the translation of docs/teaching.md, of the course's chapters, of
//     docs/*.md and of the READMEs) names a file that exists and, with a
//     #fragment, a heading of that file;
//   - every `mpim` command parses: its subcommand and flags are accepted by
//     the binary (run with --help appended), a scenario it runs is in
//     `mpim chaos list` or is a file in the repository (a file the reader
//     writes, outside docs/ and scenarios/, is not looked for), a fault
//     parses in the fault vocabulary, and every other command is a Makefile
//     target.

const classDir = courseDir + "/class"

func TestClassKit(t *testing.T) {
	en, _ := filepath.Glob(filepath.Join(classDir, "*.md"))
	if len(en) == 0 {
		t.Fatalf("no class kit pages in %s", classDir)
	}
	zhDir := filepath.Join(courseDir, "zh", "class")
	zh, _ := filepath.Glob(filepath.Join(zhDir, "*.md"))
	for _, z := range zh {
		if filepath.Base(z) != "teaching.md" && !slices.Contains(en, filepath.Join(classDir, filepath.Base(z))) {
			t.Errorf("%s has no English page: every Chinese class page translates one", z)
		}
	}

	t.Run("zh-matches-en", func(t *testing.T) {
		for _, e := range en {
			z := filepath.Join(zhDir, filepath.Base(e))
			if _, err := os.Stat(z); err != nil {
				t.Errorf("%s has no Chinese page: %v", e, err)
				continue
			}
			compareCourseBlocks(t, e, parseCourseBlocks(t, e), z, parseCourseBlocks(t, z))
			he, hz := headingLevels(t, e), headingLevels(t, z)
			if !slices.Equal(he, hz) {
				t.Errorf("%s and %s differ in headings: levels %v against %v", e, z, he, hz)
			}
		}
		he, hz := headingLevels(t, "../docs/teaching.md"), headingLevels(t, filepath.Join(zhDir, "teaching.md"))
		if !slices.Equal(he, hz) {
			t.Errorf("docs/teaching.md and its translation differ in headings: levels %v against %v", he, hz)
		}
	})

	t.Run("links", func(t *testing.T) {
		// The rest of the course and docs/ are checked too: the kit links
		// into them, and they into each other.
		pages := append(slices.Clone(en), zh...)
		for _, glob := range []string{courseDir + "/*.md", courseDir + "/zh/*.md", "../docs/*.md", "../README.md", "../scenarios/README.md"} {
			more, _ := filepath.Glob(glob)
			pages = append(pages, more...)
		}
		checked := 0
		for _, p := range pages {
			checked += checkRelativeLinks(t, p)
		}
		if checked == 0 {
			t.Fatal("no relative link found in the class kit: the link pattern is broken")
		}
		t.Logf("%d relative links checked in %d pages", checked, len(pages))
	})

	t.Run("commands", func(t *testing.T) {
		list, err := exec.Command(mpimBin, "chaos", "list").CombinedOutput()
		if err != nil {
			t.Fatalf("mpim chaos list: %v\n%s", err, list)
		}
		makefile, err := os.ReadFile("../Makefile")
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, e := range en {
			for _, b := range parseCourseBlocks(t, e) {
				for _, s := range b.Steps {
					checkClassCommand(t, e, s, string(list), string(makefile))
					n++
				}
			}
		}
		if n == 0 {
			t.Fatal("no command found in the class kit's ```sh blocks")
		}
	})
}

// headingLevels returns the level of every Markdown heading outside code
// blocks, in order.
func headingLevels(t *testing.T, path string) []int {
	t.Helper()
	var levels []int
	for _, h := range headings(t, path) {
		levels = append(levels, h.level)
	}
	return levels
}

type heading struct {
	level int
	text  string
}

func headings(t *testing.T, path string) []heading {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var hs []heading
	fence := false
	for _, line := range strings.Split(string(data), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "```") {
			fence = !fence
			continue
		}
		if fence || !strings.HasPrefix(line, "#") {
			continue
		}
		level := len(line) - len(strings.TrimLeft(line, "#"))
		if level > 6 || !strings.HasPrefix(line[level:], " ") {
			continue
		}
		hs = append(hs, heading{level, strings.TrimSpace(line[level:])})
	}
	return hs
}

// anchors returns the GitHub-style anchors of a page's headings: lower
// case, punctuation dropped, spaces as hyphens, a repeated one suffixed -1,
// -2, ...
func anchors(t *testing.T, path string) map[string]bool {
	t.Helper()
	seen := map[string]int{}
	out := map[string]bool{}
	for _, h := range headings(t, path) {
		var b strings.Builder
		for _, r := range strings.ToLower(h.text) {
			switch {
			case r == ' ':
				b.WriteByte('-')
			case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.Is(unicode.Mn, r):
				b.WriteRune(r)
			}
		}
		a := b.String()
		if k := seen[a]; k > 0 {
			seen[a]++
			a += "-" + strconv.Itoa(k)
		} else {
			seen[a] = 1
		}
		out[a] = true
	}
	return out
}

var mdLink = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// checkRelativeLinks checks every relative link of a page and returns how
// many it checked.
func checkRelativeLinks(t *testing.T, page string) int {
	t.Helper()
	data, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, m := range mdLink.FindAllStringSubmatch(string(data), -1) {
		target := m[1]
		if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
			continue
		}
		file, frag, _ := strings.Cut(target, "#")
		path := page
		if file != "" {
			path = filepath.Join(filepath.Dir(page), file)
		}
		n++
		st, err := os.Stat(path)
		if err != nil {
			t.Errorf("%s: link %q: %v", page, target, err)
			continue
		}
		if frag != "" && !st.IsDir() && strings.HasSuffix(path, ".md") && !anchors(t, path)[frag] {
			t.Errorf("%s: link %q: %s has no heading with the anchor #%s", page, target, path, frag)
		}
	}
	return n
}

// checkClassCommand checks that one command of the class kit would run.
func checkClassCommand(t *testing.T, page string, s courseStep, scenarios, makefile string) {
	t.Helper()
	words := strings.Fields(s.Cmd)
	if words[0] == "make" {
		for _, target := range words[1:] {
			if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(target) + `:`).MatchString(makefile) {
				t.Errorf("%s:%d: %q: the Makefile has no target %s", page, s.Line, s.Cmd, target)
			}
		}
		return
	}
	if words[0] != "mpim" && words[0] != "bin/mpim" {
		t.Errorf("%s:%d: %q: the class kit's commands are mpim or make commands; this test cannot check this one", page, s.Line, s.Cmd)
		return
	}
	args := words[1:]
	if len(args) > 1 && args[0] == "fault" {
		// mpim fault takes everything after its verb as the fault, --help
		// included: check the fault with the lab's own parser.
		if args[1] != "list" {
			if _, err := fault.Parse(strings.Join(args[1:], " ")); err != nil {
				t.Errorf("%s:%d: %q: %v", page, s.Line, s.Cmd, err)
			}
		}
		return
	}
	out, err := exec.Command(mpimBin, append(slices.Clone(args), "--help")...).CombinedOutput()
	if err != nil {
		t.Errorf("%s:%d: %q does not parse: %v\n%s", page, s.Line, s.Cmd, err, out)
	}
	if len(args) >= 3 && args[0] == "chaos" && args[1] == "run" {
		name := args[2]
		if strings.HasPrefix(name, "docs/") || strings.HasPrefix(name, "scenarios/") {
			if _, err := os.Stat(filepath.Join("..", name)); err != nil {
				t.Errorf("%s:%d: %q: no scenario file %s in the repository", page, s.Line, s.Cmd, name)
			}
		} else if !strings.HasSuffix(name, ".yaml") && !regexp.MustCompile(`(?m)^\s*`+regexp.QuoteMeta(name)+`\b`).MatchString(scenarios) {
			t.Errorf("%s:%d: %q: %s is not in mpim chaos list", page, s.Line, s.Cmd, name)
		}
	}
}
