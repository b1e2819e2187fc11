package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"mpim/client"
	"mpim/internal/testenv"
	"mpim/lab"
)

// The dashboard's browser tests drive the teaching dashboard in a real
// headless Chromium against `mpim lab up` run as a user runs it: they
// partition the cluster by clicking and dragging on the topology, type in
// both chat panels, and check what the page shows — CP refuses the side
// without a quorum (Raft §5.2: no leader, no commit) while the majority
// goes on; AP accepts on both sides and, after heal, both panels show the
// same messages in the same order (convergence). Screenshots go to
// $MPIM_ARTIFACTS, else a temporary directory named in the log.

// chromium returns the browser binary, or "" when none is installed.
func chromium() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// needChromium returns the Chromium binary, or stops the test: a skip on a
// machine without one, a failure where MPIM_REQUIRE_BROWSER=1 (CI).
func needChromium(t *testing.T) string {
	t.Helper()
	bin := chromium()
	var missing error
	if bin == "" {
		missing = errors.New("no chromium binary on PATH (chromium, chromium-browser, google-chrome): `apt-get install chromium` (.ci/run installs it)")
	}
	testenv.Need(t, testenv.Browser, missing)
	return bin
}

// labUp runs `mpim lab up` with args and returns the dashboard URL; the
// lab is stopped with SIGINT when the test ends.
func labUp(t *testing.T, args ...string) string {
	t.Helper()
	lines := labUpLines(t, args...)
	return strings.TrimPrefix(lines[len(lines)-1], "dashboard ")
}

// labUpLines starts `mpim lab up` with args and returns the lines it
// printed, up to and with the "dashboard" line.
func labUpLines(t *testing.T, args ...string) []string {
	t.Helper()
	cmd := exec.Command(mpimBin, append([]string{"lab", "up", "--http", "127.0.0.1:0", "--data", t.TempDir()}, args...)...)
	// A private runtime directory: this lab must not become the one that
	// `mpim fault` without --lab finds.
	cmd.Env = append(os.Environ(), "XDG_RUNTIME_DIR="+t.TempDir())
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = testWriter{t}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGINT)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		for range lines {
		}
	})
	timeout := time.After(60 * time.Second)
	var printed []string
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("lab up exited before printing its dashboard line")
			}
			printed = append(printed, l)
			if strings.HasPrefix(l, "dashboard ") {
				return printed
			}
		case <-timeout:
			t.Fatal("no dashboard line within 60s")
		}
	}
}

// page is one browser tab on the dashboard.
type page struct {
	t         *testing.T
	ctx       context.Context
	artifacts string
}

// openDashboard starts Chromium (1280x720, the projector size) on url.
func openDashboard(t *testing.T, url string) *page {
	t.Helper()
	bin := needChromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin), chromedp.DisableGPU, chromedp.WindowSize(1280, 720),
		chromedp.UserDataDir(t.TempDir()))
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium refuses to run as root with its sandbox
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() { cancel(); cancelAlloc() })
	dir := os.Getenv("MPIM_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", dir)
	p := &page{t: t, ctx: ctx, artifacts: dir}
	// The first run starts the browser, which lives as long as the context
	// of that run: no timeout on it.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	p.do(chromedp.EmulateViewport(1280, 720), chromedp.Navigate(url))
	p.waitJS(30*time.Second, "the dashboard to load", `document.body.dataset.ready === "1"`)
	return p
}

// newTab opens url in another tab of p's browser.
func (p *page) newTab(url string) *page {
	p.t.Helper()
	ctx, cancel := chromedp.NewContext(p.ctx)
	p.t.Cleanup(cancel)
	tab := &page{t: p.t, ctx: ctx, artifacts: p.artifacts}
	// As for the browser: the first run creates the tab, which lives as
	// long as the context of that run, so no timeout on it.
	if err := chromedp.Do(ctx); err != nil {
		p.t.Fatalf("open a tab: %v", err)
	}
	tab.do(chromedp.EmulateViewport(1280, 720), chromedp.Navigate(url))
	return tab
}

func (p *page) do(actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.fail("browser action: %v", err)
	}
}

// fail saves a screenshot of the page as it is and fails the test.
func (p *page) fail(format string, args ...any) {
	p.t.Helper()
	p.screenshot("failure-" + strings.ReplaceAll(p.t.Name(), "/", "-"))
	p.t.Fatalf(format, args...)
}

// eval evaluates a JavaScript expression and decodes its value into out.
func (p *page) eval(expr string, out any) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[json.RawMessage]("JSON.stringify("+expr+")"))
	if err != nil {
		p.fail("evaluate %s: %v", expr, err)
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		p.fail("evaluate %s: %s: %v", expr, raw, err)
	}
	if err := json.Unmarshal([]byte(s), out); err != nil {
		p.fail("evaluate %s: %s: %v", expr, s, err)
	}
}

// waitJS polls a JavaScript condition until it holds or d passes.
func (p *page) waitJS(d time.Duration, what, cond string) {
	p.t.Helper()
	deadline := time.Now().Add(d)
	for {
		var ok bool
		p.eval("!!("+cond+")", &ok)
		if ok {
			return
		}
		if time.Now().After(deadline) {
			p.fail("waiting for %s: %s not true within %v", what, cond, d)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (p *page) screenshot(name string) {
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	buf, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		p.t.Logf("screenshot %s: %v", name, err)
		return
	}
	path := filepath.Join(p.artifacts, name+".png")
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		p.t.Logf("screenshot %s: %v", name, err)
	}
}

// center returns the middle of the first element matching a CSS selector,
// in page coordinates.
func (p *page) center(sel string) (float64, float64) {
	p.t.Helper()
	var r struct{ X, Y float64 }
	p.eval(fmt.Sprintf(`(() => { const b = document.querySelector(%q).getBoundingClientRect(); return {X: b.x + b.width / 2, Y: b.y + b.height / 2}; })()`, sel), &r)
	return r.X, r.Y
}

// drag presses the mouse on one element, moves it in steps and releases it
// over another: the pointer events a person's drag makes.
func (p *page) drag(from, to string) {
	p.t.Helper()
	x0, y0 := p.center(from)
	x1, y1 := p.center(to)
	steps := []chromedp.Action[chromedp.Void]{chromedp.MouseEvent(chromedp.MousePressed, x0, y0, chromedp.ButtonLeft, chromedp.ClickCount(1))}
	for i := 1; i <= 10; i++ {
		f := float64(i) / 10
		steps = append(steps, chromedp.MouseEvent(chromedp.MouseMoved, x0+(x1-x0)*f, y0+(y1-y0)*f, chromedp.ButtonLeft))
	}
	steps = append(steps, chromedp.MouseEvent(chromedp.MouseReleased, x1, y1, chromedp.ButtonLeft, chromedp.ClickCount(1)))
	p.do(steps...)
}

// clickMember clicks a member of the topology graph.
func (p *page) clickMember(name string) {
	p.t.Helper()
	x, y := p.center(fmt.Sprintf(`[data-member=%q] .shape`, name))
	p.do(chromedp.MouseClickXY(x, y))
}

// panelSel is the CSS selector of a user's chat panel.
func panelSel(user string) string { return fmt.Sprintf(`.chat[data-panel=%q]`, user) }

// send types text in a user's chat panel and presses Enter, then waits for
// the send's outcome as the page marks it and returns it: accepted,
// refused, unknown or error.
func (p *page) send(user, text string) string {
	p.t.Helper()
	p.do(chromedp.SendKeys(chromedp.CSS(panelSel(user)+" input.compose"), text+"\r"))
	status := fmt.Sprintf(`(() => { const li = [...document.querySelectorAll(%q)].find((l) => l.querySelector(".text").textContent === %q); return li ? li.dataset.status || "" : ""; })()`,
		panelSel(user)+" li.msg", text)
	p.waitJS(30*time.Second, user+"'s send of "+text+" to be answered", status+` !== "" && `+status+` !== "sending"`)
	var s string
	p.eval(status, &s)
	return s
}

// sendUntil sends user's messages prefix-0, prefix-1, ... until one is
// marked want, for at most d (a count alone could end inside an election
// window on a loaded machine); a send marked forbid fails the test.
func (p *page) sendUntil(user, prefix, want, forbid string, d time.Duration) {
	p.t.Helper()
	deadline := time.Now().Add(d)
	for i := 0; ; i++ {
		text := fmt.Sprintf("%s-%d", prefix, i)
		switch s := p.send(user, text); s {
		case want:
			return
		case forbid:
			p.fail("%s's send %s was marked %s", user, text, s)
		default:
			p.t.Logf("%s: %s (the election window)", text, s)
		}
		if time.Now().After(deadline) {
			p.fail("no send of %s's was marked %s within %v", user, want, d)
		}
	}
}

// partitionByClicking puts n1 (clicked with the side-A brush) and g1
// (dragged onto side A) on one side, everyone else on the other, and
// applies the partition with the palette's button.
func (p *page) partitionByClicking() {
	p.t.Helper()
	p.do(chromedp.Click(chromedp.CSS(`.brush[data-side="A"]`)))
	p.clickMember("n1")
	p.do(chromedp.Click(chromedp.CSS(`.brush[data-side="A"]`))) // brush off: g1 goes by drag
	p.drag(`[data-member="g1"] .shape`, `#side-A`)
	p.waitJS(5*time.Second, "n1 and g1 on side A", `document.querySelector("#side-A .chips").textContent === "n1g1"`)
	p.do(chromedp.Click(chromedp.ID("apply-partition")))
	p.waitJS(10*time.Second, "the partition to be in force", `document.getElementById("faults").textContent.includes("partition n1 g1 / n2 n3 g2 g3 redis")`)
}

func (p *page) heal() {
	p.t.Helper()
	p.do(chromedp.Click(chromedp.ID("heal")))
	p.waitJS(10*time.Second, "the network to heal", `document.getElementById("faults").textContent === "no network faults"`)
}

// served returns the message texts a panel shows as served by its
// replica, in its order.
func (p *page) served(user string) []string {
	var out []string
	p.eval(fmt.Sprintf(`[...document.querySelectorAll(%q)].map((l) => l.querySelector(".text").textContent)`, panelSel(user)+" li.msg.served"), &out)
	return out
}

func (p *page) panelsReady(mode string) {
	p.t.Helper()
	for _, u := range []string{"alice", "bob"} {
		p.waitJS(60*time.Second, u+"'s panel to log in", fmt.Sprintf(`document.querySelector(%q).dataset.ready === "1" && document.querySelector(%q).dataset.mode === %q`, panelSel(u), panelSel(u), mode))
	}
}

// TestDashboard runs a lecture's core in the browser: CP, then the AP/CP
// switch, then AP, with the same clicks.
func TestDashboard(t *testing.T) {
	needChromium(t)
	url := labUp(t, "--mode", "cp")
	p := openDashboard(t, url)
	p.panelsReady("cp")
	p.screenshot("dashboard-cp")

	// CP: alice (g1 -> n1) is cut off with n1; bob (g3 -> n3) is on the
	// majority.
	for _, u := range []string{"alice", "bob"} {
		if s := p.send(u, "hello from "+u); s != "accepted" {
			p.fail("%s's first send: %s, want accepted", u, s)
		}
	}
	p.partitionByClicking()
	// CP refuses the side without a quorum and never accepts there; the
	// majority accepts once it has a leader.
	p.sendUntil("alice", "alice-minority", "refused", "accepted", 60*time.Second)
	p.sendUntil("bob", "bob-majority", "accepted", "", 60*time.Second)
	p.waitJS(10*time.Second, "the timeline to show the CLI command", `document.getElementById("timeline").textContent.includes("$ mpim fault partition n1 g1 / n2 n3 g2 g3 redis")`)
	p.screenshot("cp-partition")
	p.do(chromedp.Click(chromedp.CSS(`#tabs [data-tab="replicas"]`)))
	p.waitJS(5*time.Second, "the CP replica table", `document.getElementById("replicas").textContent.includes("shard 0")`)
	p.screenshot("cp-replicas")
	p.do(chromedp.Click(chromedp.CSS(`#tabs [data-tab="timeline"]`)))
	p.heal()
	// After heal alice's replica catches up: both panels show one history.
	p.waitJS(30*time.Second, "alice's panel to show bob's majority message", `document.querySelector('.chat[data-panel="alice"]').textContent.includes("bob-majority-")`)
	p.screenshot("cp-healed")

	// The AP/CP switch: the lab restarts in AP on fresh data, the panels
	// log in again.
	p.do(chromedp.Click(chromedp.ID("mode-switch")))
	p.do(chromedp.Click(chromedp.ID("mode-confirm")))
	p.waitJS(90*time.Second, "the lab to run in AP", `document.getElementById("mode-badge").textContent === "AP"`)
	p.panelsReady("ap")

	// AP: both sides accept; after heal both panels converge on one order.
	if s := p.send("alice", "ap-before"); s != "accepted" {
		p.fail("AP first send: %s", s)
	}
	p.partitionByClicking()
	sent := []string{"ap-before"}
	for i := 0; i < 2; i++ {
		for _, u := range []string{"alice", "bob"} {
			text := fmt.Sprintf("%s-side-%d", u, i)
			if s := p.send(u, text); s != "accepted" {
				p.fail("AP refused a send during the partition: %s got %s", text, s)
			}
			sent = append(sent, text)
		}
	}
	p.waitJS(10*time.Second, "alice's own messages to be marked tentative", `[...document.querySelectorAll('.chat[data-panel="alice"] li.msg')].some((l) => l.dataset.tentative === "1")`)
	p.screenshot("ap-partition")
	p.do(chromedp.Click(chromedp.CSS(`#tabs [data-tab="replicas"]`)))
	p.waitJS(5*time.Second, "the AP replica table", `document.getElementById("replicas").textContent.includes("tentative")`)
	p.screenshot("ap-replicas")
	p.do(chromedp.Click(chromedp.CSS(`#tabs [data-tab="timeline"]`)))
	p.heal()
	deadline := time.Now().Add(45 * time.Second)
	for {
		a, b := p.served("alice"), p.served("bob")
		if slices.Equal(a, b) && len(a) == len(sent) {
			t.Logf("converged: %v", a)
			break
		}
		if time.Now().After(deadline) {
			p.fail("AP after heal: the panels did not converge within 45s:\nalice %v\nbob   %v\nsent  %v", a, b, sent)
		}
		time.Sleep(300 * time.Millisecond)
	}
	p.screenshot("ap-healed")

	// Guided mode: a library scenario's step with its caption and observe
	// text, and the help overlay.
	p.do(chromedp.Click(chromedp.CSS(`#tabs [data-tab="guide"]`)))
	p.do(chromedp.Click(chromedp.CSS(`#guide [data-scenario]`)))
	p.waitJS(5*time.Second, "the guide's scenario list", `document.querySelector("#guide button[data-scenario]")`)
	p.eval(`(() => { const b = [...document.querySelectorAll("#guide [data-scenario]")].find((b) => b.textContent === "isolate-leader"); b.click(); return true; })()`, new(bool))
	p.do(chromedp.Click(chromedp.ID("guide-next")))
	p.waitJS(5*time.Second, "the step's caption", `document.getElementById("guide-caption").textContent.includes("Cut the leader")`)
	p.screenshot("guided")
	p.do(chromedp.KeyEvent("?"))
	p.waitJS(5*time.Second, "the help overlay", `!document.getElementById("overlay").hidden`)
	p.screenshot("help")
}

// TestStudentPage runs the student page's script in the browser, as a
// class uses it: two students join #lab on different gateways from the
// page's own form; one's message reaches the other; when the teacher cuts
// the first student's gateway off with its node (CP), that student's send
// is marked refused while the other's is accepted.
func TestStudentPage(t *testing.T) {
	needChromium(t)
	url := labUp(t, "--mode", "cp")
	teacher := openDashboard(t, url)
	join := func(name, gateway string) *page {
		t.Helper()
		p := teacher.newTab(url + "student")
		p.waitJS(30*time.Second, "the student page's gateway list", `document.querySelectorAll("#gateway option").length === 3`)
		p.eval(fmt.Sprintf(`(() => { document.getElementById("name").value = %q; document.getElementById("password").value = "correct horse"; document.getElementById("gateway").value = %q; return true; })()`, name, gateway), new(bool))
		p.do(chromedp.Click(chromedp.CSS(`#join button[type="submit"]`)))
		p.waitJS(60*time.Second, name+"'s panel to join #lab", `document.querySelector('.chat[data-panel="student"]').dataset.ready === "1"`)
		var badge string
		p.eval(`document.getElementById("mode-badge").textContent`, &badge)
		if badge != "CP" {
			p.fail("the student page's mode badge says %q, want CP", badge)
		}
		return p
	}
	sam, kim := join("sam", "g1"), join("kim", "g3")
	if s := sam.send("student", "hello class"); s != "accepted" {
		sam.fail("sam's send: %s, want accepted", s)
	}
	kim.waitJS(30*time.Second, "kim's panel to show sam's message", `document.querySelector('.chat[data-panel="student"]').textContent.includes("hello class")`)
	kim.screenshot("student-kim")

	teacher.partitionByClicking() // n1 and g1 (sam's gateway) on side A
	sam.sendUntil("student", "sam-cut", "refused", "accepted", 60*time.Second)
	sam.screenshot("student-sam-refused")
	kim.sendUntil("student", "kim-majority", "accepted", "", 60*time.Second)
	teacher.heal()
	sam.waitJS(30*time.Second, "sam's panel to show kim's message after heal", `document.querySelector('.chat[data-panel="student"]').textContent.includes("kim-majority-")`)
}

// checkReportPages opens chaos report pages (file paths) in headless
// Chromium at the projector's size and checks what a class would see: the
// page no wider than the window (no cell pushes it out), no raw JSON or
// long decimals in a table cell, and verdicts verdict sentences.
func checkReportPages(t *testing.T, pages map[string]int) {
	t.Helper()
	bin := needChromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin), chromedp.DisableGPU, chromedp.WindowSize(1280, 720), chromedp.UserDataDir(t.TempDir()))
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox)
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(alloc, chromedp.WithLogf(t.Logf))
	defer cancel()
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	p := &page{t: t, ctx: ctx, artifacts: t.TempDir()}
	for path, verdicts := range pages {
		p.do(chromedp.EmulateViewport(1280, 720), chromedp.Navigate("file://"+path))
		var got struct {
			Wide     bool
			Raw      []string
			Verdicts []string
		}
		p.eval(`(() => ({
			Wide: document.documentElement.scrollWidth > window.innerWidth,
			Raw: [...document.querySelectorAll("td")].map((c) => c.textContent).filter((s) => /[{}\[\]]|\d\.\d{5,}|"/.test(s)),
			Verdicts: [...document.querySelectorAll("p.verdict")].map((v) => v.textContent),
		}))()`, &got)
		if got.Wide {
			p.fail("%s is wider than the window (1280 px): a cell pushes it out", path)
		}
		if len(got.Raw) > 0 {
			p.fail("%s shows raw values in table cells: %q", path, got.Raw)
		}
		if len(got.Verdicts) != verdicts {
			p.fail("%s has %d verdict sentences, want %d: %q", path, len(got.Verdicts), verdicts, got.Verdicts)
		}
		for _, v := range got.Verdicts {
			if !strings.Contains(v, " writes ") || !strings.Contains(v, "; it ") {
				p.fail("%s: the verdict %q is not a sentence built from the numbers", path, v)
			}
		}
		t.Logf("%s: %q", filepath.Base(path), got.Verdicts)
	}
}

// TestClassroomLabReservesPanels: a lab whose dashboard listens beyond
// loopback (a classroom) registers the chat panels' users before any
// student can: registering "alice" is refused, and the password the lab
// answers its own machine (GET /api/panels) logs in as her.
func TestClassroomLabReservesPanels(t *testing.T) {
	url := labUp(t, "--http", "0.0.0.0:0")
	var members []lab.MemberState
	getJSON := func(path string, v any) {
		t.Helper()
		resp, err := http.Get(url + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s", path, resp.Status)
		}
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatal(err)
		}
	}
	getJSON("api/members", &members)
	var ws string
	for _, m := range members {
		if m.Name == "g1" {
			ws = m.WS
		}
	}
	ctx := ctxFor(t, 30*time.Second)
	var creds struct{ Password string }
	getJSON("api/panels", &creds)
	eventually(t, 20*time.Second, "the panels' users are reserved", func() bool {
		conn, err := client.Dial(ctx, ws, client.Options{})
		if err != nil {
			return false
		}
		defer conn.Close()
		_, err = conn.Login(ctx, "alice", creds.Password, "panel")
		return err == nil
	})
	conn, err := client.Dial(ctx, ws, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Register(ctx, "alice", "a student's password"); client.ErrorCode(err) != client.CodeConflict {
		t.Fatalf("a student registering a panel's name: %v, want conflict", err)
	}
}
