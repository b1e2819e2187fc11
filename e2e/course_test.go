package e2e

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The course (docs/course) promises that every command it shows runs, and
// that its Chinese pages show the same commands as its English ones. This
// file keeps that promise: TestCourse extracts the fenced ```sh blocks of
// docs/course/*.md and docs/course/zh/*.md, checks that each Chinese page
// carries exactly the English page's commands in the same order, and runs
// the English pages' commands against real processes.
//
// How a block is read (docs/course/README.md states the same for readers):
//
//   - every line that is not blank and not a comment is one command; a line
//     ending in `\` continues on the next; a comment after a command
//     (` # ...`) is dropped;
//   - a comment line directly above a command may annotate it, in English
//     on every page: `# expect exit N` (default 0), `# expect output: TEXT`
//     (the command's output must contain TEXT; repeatable) and
//     `# keep running` (a process the reader leaves running in another
//     terminal: the test starts it in the background with its stdin held
//     open and stops it with the lab). Other comments are prose and may be
//     translated;
//   - commands run with `sh -c` from the repository root, with `mpim` on
//     PATH meaning $MPIM_BIN;
//   - `mpim chaos run` runs with `--quick` added when absent and `--out`
//     pointed into t.TempDir(); each distinct such command (and every other
//     command outside a lab) runs once, however many pages show it;
//   - `mpim lab up ...` starts a lab in the background (with `--data` in
//     t.TempDir() and `--http 127.0.0.1:0` added), waits for its
//     `dashboard` line and sets MPIM_LAB and G1, G2, ... (the gateway URLs
//     it printed) for the commands that follow. The lab runs until the next
//     `mpim lab up` or `mpim chaos run`, or the end of the page, and the
//     commands in between always run, in order.
//
// MPIM_COURSE_OUT=DIR keeps every chaos run's reports in DIR, one folder
// per command. MPIM_COURSE_PAGES=01-cap.md,05-more-experiments.md (page
// basenames, comma-separated) runs the commands of those English pages
// only, to iterate on a page; the Chinese pages are still compared with
// every English one.

// courseDir is the course, relative to this package.
const courseDir = "../docs/course"

// courseStep is one command of a block, with its annotations.
type courseStep struct {
	Cmd        string
	Exit       int
	Output     []string
	Background bool
	// Line is where the command starts in its page.
	Line int
}

// courseBlock is one fenced ```sh block.
type courseBlock struct {
	Line  int
	Steps []courseStep
}

func (s courseStep) same(o courseStep) bool {
	return s.Cmd == o.Cmd && s.Exit == o.Exit && s.Background == o.Background && slices.Equal(s.Output, o.Output)
}

func (s courseStep) String() string {
	var b strings.Builder
	if s.Exit != 0 {
		fmt.Fprintf(&b, "# expect exit %d\n", s.Exit)
	}
	for _, o := range s.Output {
		fmt.Fprintf(&b, "# expect output: %s\n", o)
	}
	if s.Background {
		b.WriteString("# keep running\n")
	}
	b.WriteString(s.Cmd)
	return b.String()
}

var (
	annotExit   = regexp.MustCompile(`^#\s*expect exit (\d+)\s*$`)
	annotOutput = regexp.MustCompile(`^#\s*expect output:\s?(.*)$`)
	annotKeep   = regexp.MustCompile(`^#\s*keep running\s*$`)
)

// parseCourseBlocks returns the ```sh blocks of a Markdown page.
func parseCourseBlocks(t *testing.T, path string) []courseBlock {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var blocks []courseBlock
	var cur *courseBlock
	var pending courseStep
	annotated := false
	lines := strings.Split(string(data), "\n")
	for i := 0; i < len(lines); i++ {
		raw := strings.TrimRight(lines[i], " \t\r")
		trimmed := strings.TrimSpace(raw)
		if cur == nil {
			if trimmed == "```sh" {
				cur = &courseBlock{Line: i + 1}
			}
			continue
		}
		switch {
		case trimmed == "```":
			if annotated {
				t.Errorf("%s:%d: an annotation (%s) with no command after it in its block", path, i, strings.TrimSpace(pending.String()))
			}
			blocks = append(blocks, *cur)
			cur, pending, annotated = nil, courseStep{}, false
		case trimmed == "":
			// A blank line keeps the annotations for the next command.
		case strings.HasPrefix(trimmed, "#"):
			if m := annotExit.FindStringSubmatch(trimmed); m != nil {
				pending.Exit, _ = strconv.Atoi(m[1])
				annotated = true
			} else if m := annotOutput.FindStringSubmatch(trimmed); m != nil {
				pending.Output = append(pending.Output, strings.TrimSpace(m[1]))
				annotated = true
			} else if annotKeep.MatchString(trimmed) {
				pending.Background = true
				annotated = true
			}
		default:
			step := pending
			step.Line = i + 1
			cmd := trimmed
			for strings.HasSuffix(cmd, `\`) && i+1 < len(lines) {
				i++
				cmd = strings.TrimSuffix(cmd, `\`) + " " + strings.TrimSpace(lines[i])
			}
			step.Cmd = strings.Join(strings.Fields(stripShellComment(cmd)), " ")
			cur.Steps = append(cur.Steps, step)
			pending, annotated = courseStep{}, false
		}
	}
	if cur != nil {
		t.Errorf("%s:%d: the ```sh block is never closed", path, cur.Line)
	}
	return blocks
}

// stripShellComment drops a ` # comment` after a command, outside quotes.
func stripShellComment(s string) string {
	var quote rune
	prev := ' '
	for i, r := range s {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			}
		case r == '\'' || r == '"':
			quote = r
		case r == '#' && (prev == ' ' || prev == '\t'):
			return strings.TrimSpace(s[:i])
		}
		prev = r
	}
	return s
}

// coursePages returns the English pages, sorted, each with its Chinese
// counterpart's path.
func coursePages(t *testing.T) (en []string) {
	t.Helper()
	en, _ = filepath.Glob(filepath.Join(courseDir, "*.md"))
	zh, _ := filepath.Glob(filepath.Join(courseDir, "zh", "*.md"))
	if len(en) == 0 {
		t.Fatalf("no course pages in %s", courseDir)
	}
	for _, z := range zh {
		if !slices.Contains(en, filepath.Join(courseDir, filepath.Base(z))) {
			t.Errorf("%s has no English page %s: every Chinese page translates one English page", z, filepath.Base(z))
		}
	}
	slices.Sort(en)
	return en
}

func zhPage(en string) string { return filepath.Join(courseDir, "zh", filepath.Base(en)) }

// TestCourse checks that the Chinese course pages carry the English pages'
// commands, then runs every command of the course.
func TestCourse(t *testing.T) {
	pages := coursePages(t)
	t.Run("zh-commands-match-en", func(t *testing.T) {
		for _, en := range pages {
			zh := zhPage(en)
			if _, err := os.Stat(zh); err != nil {
				t.Errorf("%s has no Chinese page: %v", en, err)
				continue
			}
			compareCourseBlocks(t, en, parseCourseBlocks(t, en), zh, parseCourseBlocks(t, zh))
		}
	})
	t.Run("commands", func(t *testing.T) {
		r := newCourseRunner(t)
		start := time.Now()
		only := coursePagesFilter()
		for name := range only {
			if !slices.Contains(pages, filepath.Join(courseDir, name)) {
				t.Errorf("MPIM_COURSE_PAGES names %s, which is not an English course page", name)
			}
		}
		for _, en := range pages {
			if only != nil && !only[filepath.Base(en)] {
				continue
			}
			for _, b := range parseCourseBlocks(t, en) {
				for _, s := range b.Steps {
					r.run(en, s)
				}
			}
			r.stopLab()
		}
		t.Logf("course: %d commands run, %d shown again and skipped, in %s", r.ran, r.skipped, time.Since(start).Round(time.Second))
	})
}

// coursePagesFilter returns the page basenames MPIM_COURSE_PAGES names,
// or nil when it is unset: then every page runs.
func coursePagesFilter() map[string]bool {
	v := strings.TrimSpace(os.Getenv("MPIM_COURSE_PAGES"))
	if v == "" {
		return nil
	}
	only := map[string]bool{}
	for _, name := range strings.Split(v, ",") {
		if name = strings.TrimSpace(name); name != "" {
			only[filepath.Base(name)] = true
		}
	}
	return only
}

// compareCourseBlocks requires zh to hold the same blocks, with the same
// commands and annotations, in the same order as en.
func compareCourseBlocks(t *testing.T, en string, eb []courseBlock, zh string, zb []courseBlock) {
	t.Helper()
	for i := 0; i < max(len(eb), len(zb)); i++ {
		if i >= len(eb) {
			t.Errorf("%s:%d: block %d has no counterpart in %s (which has %d ```sh blocks)", zh, zb[i].Line, i+1, en, len(eb))
			return
		}
		if i >= len(zb) {
			t.Errorf("%s:%d: block %d has no counterpart in %s (which has %d ```sh blocks)", en, eb[i].Line, i+1, zh, len(zb))
			return
		}
		e, z := eb[i], zb[i]
		for j := 0; j < max(len(e.Steps), len(z.Steps)); j++ {
			switch {
			case j >= len(e.Steps):
				t.Errorf("%s:%d: block %d has an extra command %q that %s:%d lacks", zh, z.Steps[j].Line, i+1, z.Steps[j].Cmd, en, e.Line)
			case j >= len(z.Steps):
				t.Errorf("%s:%d: block %d lacks the command %q of %s:%d", zh, z.Line, i+1, e.Steps[j].Cmd, en, e.Steps[j].Line)
			case !e.Steps[j].same(z.Steps[j]):
				t.Errorf("block %d differs between the pages:\n%s:%d:\n%s\n%s:%d:\n%s", i+1, en, e.Steps[j].Line, e.Steps[j], zh, z.Steps[j].Line, z.Steps[j])
			}
		}
	}
}

// courseRunner runs the course's commands, with at most one lab at a time.
type courseRunner struct {
	t    *testing.T
	root string   // the repository root: commands run there
	env  []string // PATH with the mpim shim first
	// seen holds the result of each distinct command run, so that a
	// repeat is checked against its own annotations without running again.
	seen map[string]courseResult
	last courseResult // of the command run last

	lab        *exec.Cmd
	labEnv     []string
	labOut     *lockedBuffer
	background []*backgroundCmd

	ran, skipped int
}

func newCourseRunner(t *testing.T) *courseRunner {
	t.Helper()
	bin, err := filepath.Abs(mpimBin)
	if err != nil {
		t.Fatal(err)
	}
	shim := t.TempDir()
	if err := os.Symlink(bin, filepath.Join(shim, "mpim")); err != nil {
		t.Fatal(err)
	}
	root, _ := filepath.Abs("..")
	env := []string{"PATH=" + shim + string(os.PathListSeparator) + os.Getenv("PATH"),
		// A lab started here records itself in this folder, not in the
		// machine's shared one, so that it never becomes someone else's
		// "most recent lab".
		"XDG_RUNTIME_DIR=" + t.TempDir()}
	gatewayVar := regexp.MustCompile(`^G\d+$`)
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k != "PATH" && k != "XDG_RUNTIME_DIR" && k != "MPIM_LAB" && !gatewayVar.MatchString(k) {
			env = append(env, kv)
		}
	}
	r := &courseRunner{t: t, root: root, env: env, seen: map[string]courseResult{}}
	t.Cleanup(r.stopLab)
	return r
}

// run runs one command of page.
func (r *courseRunner) run(page string, s courseStep) {
	t := r.t
	t.Helper()
	where := fmt.Sprintf("%s:%d", page, s.Line)
	r.last = courseResult{code: -1, out: "(not run)"}
	words := strings.Fields(s.Cmd)
	has := func(prefix ...string) bool {
		return len(words) >= len(prefix) && slices.Equal(words[:len(prefix)], prefix)
	}
	cmd := s.Cmd
	switch {
	case has("mpim", "lab", "up"):
		r.stopLab()
		r.startLab(where, s)
		r.ran++
		return
	case has("mpim", "chaos", "run"):
		r.stopLab()
		args := quickChaosArgs(words)
		key := strings.Join(args, " ")
		if res, ok := r.seen[key]; ok {
			r.skipped++
			r.check(where, s, key, res.code, res.out)
			return
		}
		cmd = key + " --out " + r.chaosOut(key)
		defer func() { r.seen[key] = r.last }()
	case r.lab == nil:
		if res, ok := r.seen[cmd]; ok {
			r.skipped++
			r.check(where, s, cmd, res.code, res.out)
			return
		}
		defer func() { r.seen[s.Cmd] = r.last }()
	}
	if s.Background {
		if r.lab == nil {
			t.Errorf("%s: `# keep running` outside a lab session: %s", where, s.Cmd)
			return
		}
		r.startBackground(where, cmd)
		r.ran++
		return
	}
	r.ran++
	timeout := 2 * time.Minute
	if has("mpim", "chaos", "run") {
		timeout = 6 * time.Minute
	}
	start := time.Now()
	code, out := r.exec(cmd, timeout)
	r.last = courseResult{code, out}
	t.Logf("%s: exit %d in %s: %s", where, code, time.Since(start).Round(100*time.Millisecond), cmd)
	r.check(where, s, cmd, code, out)
}

// courseResult is how one command ended.
type courseResult struct {
	code int
	out  string
}

// check holds a command's exit code and output to the step's annotations.
func (r *courseRunner) check(where string, s courseStep, cmd string, code int, out string) {
	t := r.t
	t.Helper()
	if code != s.Exit {
		t.Errorf("%s: `%s` exited %d, the course says %d; its output ends:\n%s", where, cmd, code, s.Exit, tail(out, 25))
		r.dumpLabTail()
		return
	}
	for _, want := range s.Output {
		if !strings.Contains(out, want) {
			t.Errorf("%s: the output of `%s` lacks %q, which the course promises; it was:\n%s", where, cmd, want, tail(out, 25))
			r.dumpLabTail()
		}
	}
}

// chaosOut is the report folder of a chaos command: a temporary one, or a
// folder named after the command under $MPIM_COURSE_OUT, which keeps the
// reports of a course run for reading afterwards.
func (r *courseRunner) chaosOut(key string) string {
	keep := os.Getenv("MPIM_COURSE_OUT")
	if keep == "" {
		return r.t.TempDir()
	}
	name := strings.Trim(regexp.MustCompile(`[^A-Za-z0-9.-]+`).ReplaceAllString(strings.TrimPrefix(key, "mpim chaos run "), "_"), "_")
	return filepath.Join(keep, name)
}

// quickChaosArgs returns a `mpim chaos run` command with --quick and
// without --out.
func quickChaosArgs(words []string) []string {
	var out []string
	for i := 0; i < len(words); i++ {
		switch {
		case words[i] == "--out":
			i++
		case strings.HasPrefix(words[i], "--out="):
		default:
			out = append(out, words[i])
		}
	}
	if !slices.Contains(out, "--quick") {
		out = append(out, "--quick")
	}
	return out
}

// command prepares sh -c cmd in its own process group, so that a timeout
// or the end of a lab session stops every process of a pipeline.
func (r *courseRunner) command(cmd string) *exec.Cmd {
	c := exec.Command("sh", "-c", cmd)
	c.Dir = r.root
	c.Env = append(slices.Clone(r.env), r.labEnv...)
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return c
}

func killGroup(c *exec.Cmd, sig syscall.Signal) {
	if c.Process != nil {
		syscall.Kill(-c.Process.Pid, sig)
	}
}

// exec runs cmd to its end (or its timeout) and returns its exit code and
// combined output.
func (r *courseRunner) exec(cmd string, timeout time.Duration) (int, string) {
	c := r.command(cmd)
	var out bytes.Buffer
	c.Stdout, c.Stderr = &out, &out
	if err := c.Start(); err != nil {
		r.t.Fatalf("start %q: %v", cmd, err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(timeout):
		killGroup(c, syscall.SIGKILL)
		<-done
		return -1, out.String() + fmt.Sprintf("\n(killed after %s)", timeout)
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, out.String()
	case errors.As(err, &ee):
		return ee.ExitCode(), out.String()
	}
	r.t.Fatalf("%q: %v", cmd, err)
	return -1, ""
}

// startLab starts `mpim lab up ...` in the background and waits for its
// dashboard line.
func (r *courseRunner) startLab(where string, s courseStep) {
	t := r.t
	t.Helper()
	r.labEnv = nil
	c := r.command("exec " + s.Cmd + " --data " + filepath.Join(t.TempDir(), "lab") + " --http 127.0.0.1:0")
	stdout, err := c.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	r.labOut = &lockedBuffer{}
	c.Stderr = r.labOut
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	r.lab = c
	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	gateway := regexp.MustCompile(`^gateway g(\d+) (ws://\S+)$`)
	var printed []string
	deadline := time.After(90 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("%s: `%s` exited before its dashboard line; it printed:\n%s\n%s", where, s.Cmd, strings.Join(printed, "\n"), tail(r.labOut.String(), 20))
			}
			printed = append(printed, l)
			if m := gateway.FindStringSubmatch(l); m != nil {
				r.labEnv = append(r.labEnv, "G"+m[1]+"="+m[2])
			}
			if u, ok := strings.CutPrefix(l, "dashboard "); ok {
				r.labEnv = append(r.labEnv, "MPIM_LAB="+u)
				t.Logf("%s: lab up (%s): %s", where, s.Cmd, strings.Join(r.labEnv, " "))
				go func() {
					for range lines {
					}
				}()
				return
			}
		case <-deadline:
			t.Fatalf("%s: no dashboard line from `%s` within 90s; it printed:\n%s", where, s.Cmd, strings.Join(printed, "\n"))
		}
	}
}

// backgroundCmd is a command the reader leaves running in another
// terminal.
type backgroundCmd struct {
	where, cmd string
	c          *exec.Cmd
	stdin      io.WriteCloser // held open until the process is stopped
	out        *lockedBuffer
	exited     chan struct{} // closed when the process has ended
	err        error         // how it ended, once exited is closed
}

// startBackground starts a command the reader would leave running in
// another terminal: its stdin stays open (a terminal nobody types in).
func (r *courseRunner) startBackground(where, cmd string) {
	b := &backgroundCmd{where: where, cmd: cmd, c: r.command(cmd), out: &lockedBuffer{}, exited: make(chan struct{})}
	stdin, err := b.c.StdinPipe()
	if err != nil {
		r.t.Fatal(err)
	}
	b.stdin = stdin
	b.c.Stdout, b.c.Stderr = b.out, b.out
	if err := b.c.Start(); err != nil {
		r.t.Fatalf("%s: start %q: %v", where, cmd, err)
	}
	go func() { b.err = b.c.Wait(); close(b.exited) }()
	r.t.Logf("%s: started in the background: %s", where, cmd)
	r.background = append(r.background, b)
}

// checkBackground fails the test for every background command that has
// ended by itself: the course tells the reader to leave it running, so an
// early exit means the page's story did not happen.
func (r *courseRunner) checkBackground() {
	for _, b := range r.background {
		select {
		case <-b.exited:
			r.t.Errorf("%s: `%s`, which the course leaves running, exited by itself (%v); its output ends:\n%s", b.where, b.cmd, b.err, tail(b.out.String(), 25))
		default:
		}
	}
}

// stopLab stops the background commands and the lab, as Ctrl-C would.
func (r *courseRunner) stopLab() {
	r.checkBackground()
	for _, b := range r.background {
		killGroup(b.c, syscall.SIGKILL)
		<-b.exited
		b.stdin.Close()
	}
	r.background = nil
	if r.lab == nil {
		return
	}
	killGroup(r.lab, syscall.SIGINT)
	done := make(chan struct{})
	go func() { r.lab.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		r.t.Errorf("the lab did not stop within 30s of SIGINT; killing it")
		killGroup(r.lab, syscall.SIGKILL)
		<-done
	}
	r.lab, r.labEnv = nil, nil
}

func (r *courseRunner) dumpLabTail() {
	if r.lab != nil && r.labOut != nil {
		r.t.Logf("lab log (tail):\n%s", tail(r.labOut.String(), 20))
	}
}

// lockedBuffer is a bytes.Buffer safe for a writer goroutine and a reader.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
