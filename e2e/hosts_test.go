package e2e

import (
	"bufio"
	"context"
	"crypto/tls"
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

	"mpim/agent"
	"mpim/chaos/netns"
	"mpim/client"
	"mpim/internal/clustertls"
	"mpim/internal/ports"
	"mpim/internal/testenv"
)

// hostsEnv is a cluster of "hosts" on this machine: each a network
// namespace of its own (its own address on a bridge) with its own agent
// process, data directory and copy of the credentials — nothing shared
// with the others but the mpim binary. The control process (the test, or
// the lab it starts) stays outside them and reaches them through the
// bridge, as a control machine reaches its hosts.
type hostsEnv struct {
	t      *testing.T
	net    *netns.Net
	file   string // hosts.yaml
	creds  string // the control machine's credentials
	agents map[string]*exec.Cmd
	logs   map[string]string
	home   map[string]string // a host's directory: data/, creds/, agent.log
}

// startHosts makes the hosts and their agents and writes hosts.yaml.
// extra is appended to the inventory (e.g. a place: line).
func startHosts(t *testing.T, names []string, extra string) *hostsEnv {
	t.Helper()
	testenv.Need(t, testenv.NetNS, netns.Probe().Err())
	n, err := netns.New()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	h := &hostsEnv{t: t, net: n, file: filepath.Join(dir, "hosts.yaml"), creds: filepath.Join(dir, "creds"),
		agents: map[string]*exec.Cmd{}, logs: map[string]string{}, home: map[string]string{}}
	t.Cleanup(h.close)
	if err := clustertls.Generate(h.creds); err != nil {
		t.Fatal(err)
	}
	var inv strings.Builder
	inv.WriteString("hosts:\n")
	for _, name := range names {
		addr, err := n.Add(name)
		if err != nil {
			t.Fatal(err)
		}
		home := filepath.Join(dir, "host-"+name)
		creds := filepath.Join(home, "creds")
		if err := os.MkdirAll(creds, 0o700); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{clustertls.CAFile, clustertls.CertFile, clustertls.KeyFile} {
			b, err := os.ReadFile(filepath.Join(h.creds, f))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(creds, f), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		h.logs[name] = filepath.Join(home, "agent.log")
		h.home[name] = home
		h.startAgent(name, addr, home)
		fmt.Fprintf(&inv, "  - {name: %s, agent: \"%s:7400\", address: %s}\n", name, addr, addr)
	}
	inv.WriteString("credentials: ./creds\n" + extra)
	if err := os.WriteFile(h.file, []byte(inv.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return h
}

// startAgent runs `mpim agent` inside host name's namespace and waits for
// its "agent" line.
func (h *hostsEnv) startAgent(name, addr, home string) {
	h.t.Helper()
	path, args := h.net.Command(name, mpimBin, []string{"agent", "--listen", addr + ":7400", "--name", name,
		"--data", filepath.Join(home, "data"), "--tls-dir", filepath.Join(home, "creds")})
	cmd := exec.Command(path, args...)
	logf, err := os.Create(h.logs[name])
	if err != nil {
		h.t.Fatal(err)
	}
	cmd.Stderr = logf
	out, err := cmd.StdoutPipe()
	if err != nil {
		h.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		h.t.Fatal(err)
	}
	logf.Close()
	h.agents[name] = cmd
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "agent ") {
				ready <- sc.Text()
			}
		}
	}()
	select {
	case line := <-ready:
		h.t.Logf("host %s: %s", name, line)
	case <-time.After(20 * time.Second):
		b, _ := os.ReadFile(h.logs[name])
		h.t.Fatalf("agent %s did not start: %s", name, b)
	}
}

// killAgent SIGKILLs host name's agent (its members die with it).
func (h *hostsEnv) killAgent(name string) {
	cmd := h.agents[name]
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	delete(h.agents, name)
}

func (h *hostsEnv) close() {
	for name, cmd := range h.agents {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			h.t.Errorf("agent %s ignored SIGTERM for 15 s", name)
			cmd.Process.Kill()
			<-done
		}
	}
	if h.t.Failed() {
		for name, p := range h.logs {
			h.t.Logf("agent %s log:\n%s", name, tail(readFile(p), 10))
		}
	}
	if err := h.net.Close(); err != nil {
		h.t.Errorf("remove the hosts' namespaces: %v", err)
	}
}

func readFile(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}

// TestHostsChaos runs isolate-leader across three hosts in CP and in AP,
// and a one-machine run of the same scenario and seed beside the CP one
// (on the netns backend: every member in a namespace of its own, which
// it must leave behind it): both pass, with the same report keys and the
// same verdicts.
func TestHostsChaos(t *testing.T) {
	h := startHosts(t, []string{"a", "b", "c"}, "")
	reports := map[string]map[string]any{}
	namespaces := func() map[string]bool {
		b, _ := exec.Command("ip", "netns", "list").Output()
		m := map[string]bool{}
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) > 0 {
				m[f[0]] = true
			}
		}
		return m
	}
	before := namespaces()
	for _, run := range []struct{ name, mode, hosts string }{
		{"hosts-cp", "cp", h.file}, {"hosts-ap", "ap", h.file}, {"local-cp", "cp", ""},
	} {
		out := t.TempDir()
		args := []string{"isolate-leader", "--quick", "--mode", run.mode, "--seed", "5", "--out", out}
		if run.hosts != "" {
			args = append(args, "--hosts", run.hosts)
		} else {
			args = append(args, "--net", "netns")
		}
		code, output := chaosRun(t, args...)
		rep := readReport(t, filepath.Join(out, "report.json"))
		if code != 0 || rep["verdict"] != "pass" {
			t.Fatalf("%s: exit %d, verdict %v:\n%s\n%s", run.name, code, rep["verdict"], readFile(filepath.Join(out, "report.md")), tail(output, 15))
		}
		reports[run.name] = rep
	}
	// Each run had members of its own on the agents: the CP run's data
	// never met the AP run's.
	if dirs, _ := filepath.Glob(filepath.Join(h.home["a"], "data", "l*-n1")); len(dirs) != 2 {
		t.Errorf("host a holds node directories %v after two runs, want one per run", dirs)
	}
	if cmd, _ := reports["hosts-cp"]["command"].(string); !strings.Contains(cmd, "--hosts "+h.file) {
		t.Errorf("the rerun command %q does not name the inventory", cmd)
	}
	if cmd, _ := reports["local-cp"]["command"].(string); !strings.Contains(cmd, "--net netns") {
		t.Errorf("the rerun command %q does not say --net netns", cmd)
	}
	for ns := range namespaces() {
		if !before[ns] {
			t.Errorf("namespace %s left behind by the runs", ns)
		}
	}
	keys := func(r map[string]any) []string {
		var ks []string
		for k := range r {
			ks = append(ks, k)
		}
		slices.Sort(ks)
		return ks
	}
	if a, b := keys(reports["hosts-cp"]), keys(reports["local-cp"]); !slices.Equal(a, b) {
		t.Errorf("report keys differ:\nhosts %v\nlocal %v", a, b)
	}
	verdicts := func(r map[string]any) map[string]any {
		out := map[string]any{}
		for _, o := range r["expectations"].([]any) {
			e := o.(map[string]any)
			out[fmt.Sprint(e["key"])] = e["ok"]
		}
		return out
	}
	hv, lv := verdicts(reports["hosts-cp"]), verdicts(reports["local-cp"])
	if fmt.Sprint(hv) != fmt.Sprint(lv) {
		t.Errorf("expectation outcomes differ:\nhosts %v\nlocal %v", hv, lv)
	}
	// A fault the hosts' addresses cannot express (loss on the leader's
	// links only: its gateway shares its host and dials the same Redis
	// port) is refused, and a run whose fault never happened has no
	// verdict.
	out := t.TempDir()
	code, output := chaosRun(t, "lossy-leader", "--quick", "--mode", "cp", "--seed", "5", "--out", out, "--hosts", h.file)
	if code != 2 || !strings.Contains(output, "did not happen as written") || !strings.Contains(output, "place them on different hosts") {
		t.Errorf("lossy-leader on shared hosts: exit %d, want 2 naming the refusal:\n%s", code, tail(output, 8))
	}
	if _, err := os.Stat(filepath.Join(out, "report.json")); err == nil {
		t.Error("the refused run wrote a report with a verdict")
	}
	// The cut was real: the old leader's side answered nothing while cut.
	sides := reports["hosts-cp"]["availability"].(map[string]any)["by_side"].(map[string]any)
	for side, v := range sides {
		if side != "all" && strings.Contains(side, "redis") == false && v.(float64) != 0 {
			t.Errorf("CP across hosts: the minority side %s answered %.2f of its operations while cut", side, v)
		}
	}
}

// TestHostsMajoritiesRing runs the scenario that needs five nodes on
// five hosts, in CP and in AP (partition and heal), then benches there.
func TestHostsMajoritiesRing(t *testing.T) {
	h := startHosts(t, []string{"a", "b", "c", "d", "e"}, "")
	for _, mode := range []string{"cp", "ap"} {
		out := t.TempDir()
		code, output := chaosRun(t, "majorities-ring", "--quick", "--mode", mode, "--seed", "3", "--out", out, "--hosts", h.file)
		rep := readReport(t, filepath.Join(out, "report.json"))
		if code != 0 || rep["verdict"] != "pass" {
			t.Fatalf("%s: exit %d, verdict %v:\n%s\n%s", mode, code, rep["verdict"], readFile(filepath.Join(out, "report.md")), tail(output, 15))
		}
	}

	// mpim bench on the same hosts: its cluster there, its clients here.
	bout := t.TempDir()
	b, err := exec.Command(mpimBin, "bench", "--hosts", h.file, "--conns", "6", "--rate", "60", "--warmup", "1s", "--duration", "2s", "--out", bout).CombinedOutput()
	if err != nil {
		t.Fatalf("mpim bench --hosts: %v\n%s", err, tail(string(b), 20))
	}
	var res struct {
		Cluster struct{ Hosts []string }
		Phases  []struct {
			Sent, OK uint64
			Errors   map[string]uint64
		}
	}
	if err := json.Unmarshal([]byte(readFile(filepath.Join(bout, "result.json"))), &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Cluster.Hosts) != 5 || len(res.Phases) != 1 || res.Phases[0].Sent == 0 || res.Phases[0].OK != res.Phases[0].Sent {
		t.Errorf("bench --hosts: hosts %v, phases %+v: want the five hosts and every send acknowledged", res.Cluster.Hosts, res.Phases)
	}
}

// TestHostsAgentLost kills one host's agent in the middle of a run: the
// run must fail with an error naming the lost agent, never with a
// verdict.
func TestHostsAgentLost(t *testing.T) {
	h := startHosts(t, []string{"a", "b", "c"}, "")
	out := t.TempDir()
	cmd := exec.Command(mpimBin, "chaos", "run", "isolate-leader", "--quick", "--mode", "cp", "--seed", "2", "--out", out, "--hosts", h.file)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = cmd.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var output strings.Builder
	sc := bufio.NewScanner(stderr)
	killed := false
	for sc.Scan() {
		line := sc.Text()
		output.WriteString(line + "\n")
		if !killed && strings.Contains(line, "2s / ") {
			h.killAgent("b")
			killed = true
		}
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 {
		t.Fatalf("a run that lost an agent: %v, want exit code 2\n%s", err, tail(output.String(), 20))
	}
	if !killed {
		t.Fatalf("the run never reached 2 s:\n%s", tail(output.String(), 20))
	}
	for _, want := range []string{"lost control of the cluster", "agent of host b lost"} {
		if !strings.Contains(output.String(), want) {
			t.Errorf("the error does not say %q:\n%s", want, tail(output.String(), 10))
		}
	}
	if _, err := os.Stat(filepath.Join(out, "report.json")); err == nil {
		t.Errorf("a run that lost control wrote a report with a verdict: %s", readFile(filepath.Join(out, "report.json")))
	}
}

// TestHostsLab runs `mpim lab up --hosts`: it prints the one-machine
// lab's gateway and dashboard lines with the hosts' addresses; members
// killed and restarted through `mpim fault` keep their data (every node
// at once, so that no peer could have handed a wiped node its log back);
// and the dashboard's fault palette works against it in the browser.
func TestHostsLab(t *testing.T) {
	h := startHosts(t, []string{"a", "b", "c"}, "")
	lines := labUpLines(t, "--mode", "cp", "--hosts", h.file)
	dashboard := ""
	var gateways []string
	for _, l := range lines {
		if u, ok := strings.CutPrefix(l, "dashboard "); ok {
			dashboard = u
		}
		if f := strings.Fields(l); len(f) == 3 && f[0] == "gateway" {
			gateways = append(gateways, f[2])
		}
	}
	if len(gateways) != 3 || dashboard == "" {
		t.Fatalf("lab up --hosts printed:\n%s", strings.Join(lines, "\n"))
	}
	for i, g := range gateways {
		want := fmt.Sprintf("%s:%d/ws", h.net.Addr(string(rune('a'+i))), 7501+i)
		if !strings.HasPrefix(g, "ws://") || !strings.HasSuffix(g, want) {
			t.Errorf("gateway g%d at %s, want ws://%s (host %c)", i+1, g, want, 'a'+i)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, gateways[0], client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, u := range []string{"hana", "ivo"} {
		if _, err := c.Register(ctx, u, "password-1"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Login(ctx, "hana", "password-1", "t"); err != nil {
		t.Fatal(err)
	}
	conv := client.DMConv("hana", "ivo")
	for i := range 3 {
		if _, err := c.Send(ctx, client.SendArgs{To: "ivo", Text: fmt.Sprintf("kept-%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	c.Close()
	for _, verb := range []string{"kill", "restart"} {
		for _, n := range []string{"n1", "n2", "n3"} {
			if out, err := exec.Command(mpimBin, "fault", "--lab", dashboard, verb, n).CombinedOutput(); err != nil {
				t.Fatalf("mpim fault %s %s: %v\n%s", verb, n, err, out)
			}
		}
	}
	var texts []string
	eventually(t, 30*time.Second, "the history to survive every node's restart", func() bool {
		c2, err := client.Dial(ctx, gateways[1], client.Options{})
		if err != nil {
			return false
		}
		defer c2.Close()
		if _, err := c2.Login(ctx, "ivo", "password-1", "t"); err != nil {
			return false
		}
		r, err := c2.History(ctx, client.HistoryArgs{Conv: conv, Limit: 50, Read: "linearizable"})
		if err != nil {
			return false
		}
		texts = texts[:0]
		for _, m := range r.Messages {
			texts = append(texts, m.Text)
		}
		return slices.Equal(texts, []string{"kept-0", "kept-1", "kept-2"})
	})

	// The dashboard, in the browser: the palette's partition cuts alice
	// (g1 → n1, host a) off, CP refuses her and accepts bob; heal.
	needChromium(t)
	p := openDashboard(t, dashboard)
	p.panelsReady("cp")
	for _, u := range []string{"alice", "bob"} {
		if s := p.send(u, "hello from "+u); s != "accepted" {
			p.fail("%s's first send: %s, want accepted", u, s)
		}
	}
	p.partitionByClicking()
	p.sendUntil("alice", "alice-minority", "refused", "accepted", 60*time.Second)
	p.sendUntil("bob", "bob-majority", "accepted", "", 60*time.Second)
	p.screenshot("hosts-cp-partition")
	p.heal()
	p.waitJS(30*time.Second, "alice's panel to show bob's majority message", `document.querySelector('.chat[data-panel="alice"]').textContent.includes("bob-majority-")`)

	// The mode switch starts the nodes on fresh data, on their hosts: the
	// CP logs are gone from host a, the AP log is there.
	raftLogs := filepath.Join(h.home["a"], "data", "l*-n1", "shard-*", "raft.db")
	if logs, _ := filepath.Glob(raftLogs); len(logs) == 0 {
		t.Fatalf("no CP log under %s before the switch", raftLogs)
	}
	resp, err := (&http.Client{Timeout: 90 * time.Second}).Post(dashboard+"api/mode", "application/json", strings.NewReader(`{"mode": "ap"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /api/mode ap: %s", resp.Status)
	}
	if logs, _ := filepath.Glob(raftLogs); len(logs) != 0 {
		t.Errorf("after the switch to AP, host a still holds the CP logs %v", logs)
	}
	if logs, _ := filepath.Glob(filepath.Join(h.home["a"], "data", "l*-n1", "ap.log")); len(logs) != 1 {
		t.Errorf("after the switch to AP, host a's n1 has no AP log: %v", logs)
	}
}

// TestAgentRefusesStrangers: an agent answers only callers with a
// certificate of its cluster's authority, runs only mpim and
// redis-server, and a lab given the wrong credentials fails to start
// with the reason. No namespace needed: the agent listens on loopback.
func TestAgentRefusesStrangers(t *testing.T) {
	dir := t.TempDir()
	good, bad := filepath.Join(dir, "good"), filepath.Join(dir, "bad")
	for _, d := range []string{good, bad} {
		if err := clustertls.Generate(d); err != nil {
			t.Fatal(err)
		}
	}
	free, err := ports.Free(1)
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", free[0])
	cmd := exec.Command(mpimBin, "agent", "--listen", addr, "--name", "a", "--data", filepath.Join(dir, "data"), "--tls-dir", good)
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = testWriter{t}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() })
	if line, _ := bufio.NewReader(out).ReadString('\n'); !strings.HasPrefix(line, "agent a ") {
		t.Fatalf("agent printed %q", line)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	load := func(d string) *clustertls.Credentials {
		c, err := clustertls.Load(d)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	if _, err := agent.NewClient("a", addr, load(bad)).Info(ctx); !errors.Is(err, agent.ErrUnreachable) {
		t.Errorf("a certificate of another authority: %v, want the handshake refused", err)
	}
	// HTTPS without a client certificate (the server's not checked
	// either): refused at the handshake.
	anon := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13}}}
	if resp, err := anon.Get("https://" + addr + "/v1/info"); err == nil {
		resp.Body.Close()
		t.Errorf("an agent answered a caller without a certificate: %s", resp.Status)
	}
	c := agent.NewClient("a", addr, load(good))
	info, err := c.Info(ctx)
	if err != nil || !info.Members {
		t.Fatalf("the cluster's own credentials: %+v, %v", info, err)
	}
	for _, req := range []agent.StartRequest{
		{Program: "/bin/sh", Args: []string{"-c", "touch /tmp/pwned"}},
		{Program: agent.ProgramMpim, Args: []string{"--help"}, Env: []string{"LD_PRELOAD=/tmp/x.so"}},
	} {
		if _, err := c.Start(ctx, "x1", req); !errors.Is(err, agent.ErrRefused) {
			t.Errorf("start %+v: %v, want ErrRefused", req, err)
		}
	}
	if _, err := c.Start(ctx, "../etc", agent.StartRequest{Program: agent.ProgramMpim}); err == nil {
		t.Error("a member name with a path in it was accepted")
	}
	// The refused starts left nothing behind.
	if ms, err := c.Members(ctx); err != nil || len(ms) != 0 {
		t.Errorf("members after refused starts: %v, %v; want none", ms, err)
	}
	if _, err := c.Log(ctx, "x1", 10); !errors.Is(err, agent.ErrUnknownMember) {
		t.Errorf("the log of a member never started: %v, want ErrUnknownMember", err)
	}
	// A member that exits before its ready line: the lab's restart retries
	// exactly these, so the agent must say so distinctly.
	_, err = c.Start(ctx, "x2", agent.StartRequest{Program: agent.ProgramMpim, Args: []string{"node", "--no-such-flag"}, ReadyPrefix: "node x2 "})
	if !errors.Is(err, agent.ErrExitedEarly) {
		t.Errorf("a member exiting at once: %v, want ErrExitedEarly", err)
	}
	// A lab given credentials of another authority names the host and
	// the refusal.
	inv := filepath.Join(dir, "hosts.yaml")
	os.WriteFile(inv, []byte(fmt.Sprintf("hosts:\n  - {name: a, agent: %q, address: 127.0.0.1}\ncredentials: ./bad\n", addr)), 0o644)
	up := exec.Command(mpimBin, "lab", "up", "--hosts", inv, "--http", "127.0.0.1:0", "--data", filepath.Join(dir, "lab"))
	up.Env = append(os.Environ(), "XDG_RUNTIME_DIR="+t.TempDir())
	b, err := up.CombinedOutput()
	if err == nil || !strings.Contains(string(b), "host a") || !strings.Contains(string(b), "do not hold one cluster's credentials") {
		t.Errorf("lab up with the wrong credentials: %v\n%s", err, tail(string(b), 5))
	}
}
