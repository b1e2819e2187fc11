// Command numbers makes the course's tables of measured numbers (`make
// course-numbers`). It finds the tables the course marks
// (<!-- numbers: ... --> ... <!-- /numbers -->, and inline numbers
// <!-- n:... -->...<!-- /n -->: rewrite.go), runs `mpim chaos sweep` once
// for every scenario they show, over several seeds, and rewrites every
// marked table and number in both languages from the sweeps: each figure
// the median over the seeds with its min–max, each table stating the
// command, the seeds, the commit, the date and the load average. The
// sweeps stay in the output folder (sweep.json, sweep.md, each run's
// report), so that every number can be checked.
//
//	go run ./docs/course/numbers [-seeds 5] [-first-seed 1] [-out DIR] [-only a,b] [-n]
//	go run ./docs/course/numbers -from DIR   # rewrite from sweeps already made
//	go run ./docs/course/numbers -list       # what the generator owns
//
// The sweeps run one after another (one cluster at a time, as everywhere
// in this repository): 16 minutes for the course on two cores.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// pageGlobs are the files the generator rewrites, relative to the
// repository root: the course in both languages, the class kit, and the
// slide decks with the script that writes them.
var pageGlobs = []string{
	"docs/course/*.md", "docs/course/zh/*.md",
	"docs/course/class/*.md", "docs/course/zh/class/*.md",
	"docs/teaching.md",
	"docs/course/slides/make_slides.py", "docs/course/slides/en.html", "docs/course/slides/zh.html",
}

// config is what a run of the generator does.
type config struct {
	root      string // the repository
	bin       string // mpim; built into out when empty
	seeds     int
	firstSeed uint64
	out       string   // where the sweeps go
	from      string   // sweeps already made: run nothing
	only      []string // sweep only these scenarios
	dry       bool     // print what would change, write nothing
}

func (c config) validate() error {
	if c.seeds < 1 {
		return errors.New("-seeds must be at least 1 (the course shows 5)")
	}
	if c.from != "" && len(c.only) > 0 {
		return errors.New("-from runs nothing, so -only has nothing to restrict: use one of them")
	}
	return nil
}

func main() {
	var c config
	var only string
	var list bool
	flag.IntVar(&c.seeds, "seeds", 5, "seeds per scenario and mode")
	flag.Uint64Var(&c.firstSeed, "first-seed", 1, "the first seed")
	flag.StringVar(&c.out, "out", "", "folder for the sweeps (default: a new folder under the temp dir)")
	flag.StringVar(&c.from, "from", "", "rewrite from the sweeps in this folder (an earlier -out) and run nothing")
	flag.StringVar(&only, "only", "", "sweep only these scenarios (comma-separated); the other tables stay as they are")
	flag.BoolVar(&c.dry, "n", false, "print the rewritten tables and numbers instead of writing the pages")
	flag.BoolVar(&list, "list", false, "list the marked tables and inline numbers, and the sweeps they need")
	flag.StringVar(&c.bin, "bin", os.Getenv("MPIM_BIN"), "the mpim binary (default $MPIM_BIN, else built)")
	flag.Parse()
	if only != "" {
		c.only = strings.Split(only, ",")
	}
	root, err := findRoot()
	if err != nil {
		fail(err)
	}
	c.root = root
	if err := c.validate(); err != nil {
		fail(err)
	}
	if list {
		if err := listMarks(c); err != nil {
			fail(err)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, c); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "course-numbers:", err)
	os.Exit(1)
}

// findRoot is the repository root: the folder above the working directory
// whose go.mod declares module mpim.
func findRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && bytes.HasPrefix(b, []byte("module mpim\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside the mpim repository: run from its root (make course-numbers)")
		}
		dir = parent
	}
}

// page is a file the generator may rewrite.
type page struct {
	path string // relative to the root
	text string
}

func readPages(root string) ([]page, error) {
	var out []page
	for _, g := range pageGlobs {
		files, err := filepath.Glob(filepath.Join(root, g))
		if err != nil {
			return nil, err
		}
		slices.Sort(files)
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				return nil, err
			}
			rel, _ := filepath.Rel(root, f)
			out = append(out, page{rel, string(b)})
		}
	}
	return out, nil
}

// need is every sweep the pages ask for, with the modes they show.
func need(pages []page) (map[sweepKey][]string, error) {
	n := map[sweepKey][]string{}
	for _, p := range pages {
		if err := needs(p.text, n); err != nil {
			return nil, fmt.Errorf("%s: %w", p.path, err)
		}
	}
	return n, nil
}

func sortedKeys(n map[sweepKey][]string) []sweepKey {
	var keys []sweepKey
	for k := range n {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b sweepKey) int {
		if c := strings.Compare(a.name, b.name); c != 0 {
			return c
		}
		if a.quick == b.quick {
			return 0
		}
		if a.quick {
			return -1
		}
		return 1
	})
	return keys
}

// folder is where a sweep goes inside the output folder.
func folder(k sweepKey) string {
	if k.quick {
		return k.name
	}
	return k.name + "-full"
}

// scenarioArg is what `mpim chaos sweep` is given for a name: the course's
// own scenario file when there is one, else the library's name.
func scenarioArg(root, name string) string {
	p := filepath.Join("docs", "course", "scenarios", name+".yaml")
	if _, err := os.Stat(filepath.Join(root, p)); err == nil {
		return p
	}
	return name
}

// sweepMode is the --mode that runs every mode in modes.
func sweepMode(modes []string) string {
	switch {
	case len(modes) == 1 && modes[0] == "cp":
		return "cp"
	case len(modes) == 1 && modes[0] == "ap":
		return "ap"
	}
	return "both"
}

func run(ctx context.Context, c config) error {
	start := time.Now()
	pages, err := readPages(c.root)
	if err != nil {
		return err
	}
	n, err := need(pages)
	if err != nil {
		return err
	}
	data := map[sweepKey]*sweepData{}
	var failed []string
	if c.from != "" {
		for _, k := range sortedKeys(n) {
			d, err := loadSweep(filepath.Join(c.from, folder(k)))
			if errors.Is(err, os.ErrNotExist) {
				fmt.Fprintf(os.Stderr, "course-numbers: no sweep of %s in %s: its tables stay as they are\n", k, c.from)
				continue
			}
			if err != nil {
				return err
			}
			data[k] = d
		}
	} else {
		if c.out == "" {
			if c.out, err = os.MkdirTemp("", "mpim-course-numbers-"); err != nil {
				return err
			}
		}
		if c.bin == "" {
			c.bin = filepath.Join(c.out, "mpim")
			fmt.Fprintf(os.Stderr, "course-numbers: building %s\n", c.bin)
			build := exec.CommandContext(ctx, "go", "build", "-o", c.bin, "./cmd/mpim")
			build.Dir, build.Stdout, build.Stderr = c.root, os.Stderr, os.Stderr
			if err := build.Run(); err != nil {
				return fmt.Errorf("go build ./cmd/mpim: %w", err)
			}
		}
		commit, err := commitOf(c.root)
		if err != nil {
			return err
		}
		for _, k := range sortedKeys(n) {
			if len(c.only) > 0 && !slices.Contains(c.only, k.name) {
				continue
			}
			d, err := sweep(ctx, c, k, n[k], commit)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if err != nil {
				fmt.Fprintf(os.Stderr, "course-numbers: %s: %v\n", k, err)
				failed = append(failed, k.String())
				continue
			}
			data[k] = d
		}
		fmt.Fprintf(os.Stderr, "course-numbers: sweeps in %s\n", c.out)
	}
	skipped := map[string]bool{}
	for _, p := range pages {
		out, sk, err := rewrite(p.text, langOf(p.path), data)
		if err != nil {
			return fmt.Errorf("%s: %w", p.path, err)
		}
		for _, s := range sk {
			skipped[s] = true
		}
		if out == p.text {
			continue
		}
		if c.dry {
			showChanges(p, out)
			continue
		}
		if err := os.WriteFile(filepath.Join(c.root, p.path), []byte(out), 0o644); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "course-numbers: rewrote %s\n", p.path)
	}
	if len(skipped) > 0 {
		var s []string
		for k := range skipped {
			s = append(s, k)
		}
		slices.Sort(s)
		fmt.Fprintf(os.Stderr, "course-numbers: left as they were, for want of a sweep: %s\n", strings.Join(s, ", "))
	}
	fmt.Fprintf(os.Stderr, "course-numbers: done in %s\n", time.Since(start).Round(time.Second))
	if len(failed) > 0 {
		return fmt.Errorf("these sweeps did not run, and their tables stay as they were: %s", strings.Join(failed, ", "))
	}
	return nil
}

// sweep runs one scenario's sweep into its folder, records what made it
// (numbers.json) and reads it back. A sweep whose runs did not all pass
// (exit 1) still measured: the tables say how many passed.
func sweep(ctx context.Context, c config, k sweepKey, modes []string, commit string) (*sweepData, error) {
	dir := filepath.Join(c.out, folder(k))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	args := []string{"chaos", "sweep", scenarioArg(c.root, k.name), "--mode", sweepMode(modes),
		"--seeds", fmt.Sprint(c.seeds), "--first-seed", fmt.Sprint(c.firstSeed)}
	if k.quick {
		args = append(args, "--quick")
	}
	meta := Meta{Scenario: k.name, Command: "mpim " + strings.Join(args, " "), Quick: k.quick, Commit: commit,
		Date: time.Now().UTC().Format("2006-01-02"), LoadStart: loadAverage()}
	log, err := os.Create(filepath.Join(dir, "sweep.log"))
	if err != nil {
		return nil, err
	}
	defer log.Close()
	fmt.Fprintf(os.Stderr, "course-numbers: %s (load %s; progress in %s)\n", meta.Command, meta.LoadStart, log.Name())
	cmd := exec.CommandContext(ctx, c.bin, append(args, "--out", dir)...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = c.root, os.Stdout, log
	// Ctrl-C reaches the sweep as an interrupt, so it stops its cluster.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 30 * time.Second
	began := time.Now()
	err = cmd.Run()
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 1) {
		return nil, fmt.Errorf("%s: %w (see %s)", meta.Command, err, log.Name())
	}
	meta.WallS = time.Since(began).Round(time.Second).Seconds()
	meta.LoadEnd = loadAverage()
	b, _ := json.MarshalIndent(meta, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, "numbers.json"), append(b, '\n'), 0o644); err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "course-numbers: %s took %.0f s (load %s at the end)\n", k, meta.WallS, meta.LoadEnd)
	return loadSweep(dir)
}

// commitOf is the short hash of HEAD, with "+dirty" when a file that
// changes what is measured differs from it: a source file of a package the
// mpim binary is built from, or a scenario file. Pages, tests and the
// slide decks (which the binary serves, and this program rewrites) do not
// count, so that the tables of a tree whose only change is prose name the
// commit they measured.
func commitOf(root string) (string, error) {
	out, err := exec.Command("git", "-C", root, "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "", fmt.Errorf("git rev-parse: %w: the tables name the commit they were made at", err)
	}
	commit := strings.TrimSpace(string(out))
	st, err := exec.Command("git", "-C", root, "status", "--porcelain", "--untracked-files=all").Output()
	if err != nil {
		return "", fmt.Errorf("git status: %w", err)
	}
	list := exec.Command("go", "list", "-deps", "-f", `{{with .Module}}{{if eq .Path "mpim"}}{{$.Dir}}{{end}}{{end}}`, "./cmd/mpim")
	list.Dir = root
	deps, err := list.Output()
	if err != nil {
		return "", fmt.Errorf("go list -deps ./cmd/mpim: %w", err)
	}
	pkgs := map[string]bool{}
	for _, d := range strings.Fields(string(deps)) {
		if rel, err := filepath.Rel(root, d); err == nil {
			pkgs[filepath.ToSlash(rel)] = true
		}
	}
	if measured(string(st), pkgs) {
		commit += "+dirty"
	}
	return commit, nil
}

// measured reports whether `git status --porcelain` lists a file that
// changes what a sweep measures: one in a package folder of the binary
// (pkgs, relative to the root) other than a test, or a scenario file.
func measured(status string, pkgs map[string]bool) bool {
	for _, line := range strings.Split(status, "\n") {
		if len(line) < 4 {
			continue
		}
		path := line[3:]
		if i := strings.Index(path, " -> "); i >= 0 {
			path = path[i+4:]
		}
		path = strings.Trim(path, `"`)
		dir := filepath.ToSlash(filepath.Dir(path))
		switch {
		case strings.HasSuffix(path, "_test.go"), strings.Contains("/"+path, "/testdata/"), dir == "docs/course/slides":
		case strings.HasPrefix(path, "docs/course/scenarios/"), strings.HasPrefix(path, "scenarios/"):
			return true
		case pkgs[dir]:
			return true
		}
	}
	return false
}

// loadAverage is the 1-minute load average ("unknown" off Linux).
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "unknown"
	}
	return f[0]
}

// showChanges prints a rewritten page's tables and its lines with inline
// numbers.
func showChanges(p page, out string) {
	fmt.Printf("=== %s\n", p.path)
	inBlock := false
	for i, l := range strings.Split(out, "\n") {
		switch {
		case blockStart.MatchString(l):
			inBlock = true
			fmt.Printf("%d: %s\n", i+1, l)
		case inBlock:
			fmt.Println(l)
			inBlock = !blockEnd.MatchString(l)
		case inlineSpan.MatchString(l):
			fmt.Printf("%d: %s\n", i+1, l)
		}
	}
}

// listMarks prints every marked table (file:line and marker), the inline
// numbers of each page, and the sweeps they need.
func listMarks(c config) error {
	pages, err := readPages(c.root)
	if err != nil {
		return err
	}
	for _, p := range pages {
		spans := 0
		for i, l := range strings.Split(p.text, "\n") {
			if m := blockStart.FindStringSubmatch(l); m != nil {
				fmt.Printf("%s:%d: table %s\n", p.path, i+1, m[1])
			}
			spans += len(inlineSpan.FindAllString(l, -1))
		}
		if spans > 0 {
			fmt.Printf("%s: %d inline numbers\n", p.path, spans)
		}
	}
	n, err := need(pages)
	if err != nil {
		return err
	}
	for _, k := range sortedKeys(n) {
		fmt.Printf("sweep: mpim chaos sweep %s --mode %s --seeds %d --first-seed %d%s\n", scenarioArg(c.root, k.name),
			sweepMode(n[k]), c.seeds, c.firstSeed, map[bool]string{true: " --quick"}[k.quick])
	}
	return nil
}
