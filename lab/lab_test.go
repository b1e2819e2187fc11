package lab

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"mpim/internal/redisproc"
)

// tWriter routes the lab's logs through t.Log.
type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*Config)
		want   string // substring of the error; "" = valid
	}{
		{"default", func(*Config) {}, ""},
		{"ap", func(c *Config) { c.Mode = "ap" }, ""},
		{"bad mode", func(c *Config) { c.Mode = "ca" }, "--mode cp or --mode ap"},
		{"no nodes", func(c *Config) { c.Nodes = 0 }, "--nodes"},
		{"no gateways", func(c *Config) { c.Gateways = 0 }, ""},
		{"negative gateways", func(c *Config) { c.Gateways = -1 }, "--gateways"},
		{"no shards", func(c *Config) { c.Shards = 0 }, "--shards"},
		{"leaders", func(c *Config) { c.Leaders = "all" }, "--leaders"},
		{"redis addr", func(c *Config) { c.Redis = "127.0.0.1:6380" }, ""},
		{"redis junk", func(c *Config) { c.Redis = "somewhere" }, "--redis"},
		{"http junk", func(c *Config) { c.HTTP = "7070" }, "--http"},
		{"bcrypt", func(c *Config) { c.BcryptCost = 2 }, "bcrypt"},
		{"timeout", func(c *Config) { c.ReadyTimeout = 0 }, "ReadyTimeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.change(&c)
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tc.want != "" && (err == nil || !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Validate() = %v, want ErrConfig mentioning %q", err, tc.want)
			}
		})
	}
}

// TestUp checks the members come up with the contract's flags, addresses
// and banner, and that the state file points at the lab.
func TestUp(t *testing.T) {
	cfg := testConfig(t)
	cfg.Nodes, cfg.Gateways = 2, 3
	cfg.Mode, cfg.Shards = "ap", 8
	l := startLab(t, cfg)

	ms := l.Members()
	var names []string
	pids := map[int]string{}
	for _, m := range ms {
		names = append(names, m.Name)
		if m.State != StateRunning || m.PID == 0 {
			t.Errorf("member %s: state %s pid %d after Up, want running with a pid", m.Name, m.State, m.PID)
		}
		if other, dup := pids[m.PID]; dup {
			t.Errorf("members %s and %s share pid %d", m.Name, other, m.PID)
		}
		pids[m.PID] = m.Name
		if _, err := os.Stat(m.Log); err != nil {
			t.Errorf("member %s: no log file: %v", m.Name, err)
		}
	}
	if want := []string{"n1", "n2", "g1", "g2", "g3", "redis"}; !slices.Equal(names, want) {
		t.Fatalf("members %v, want %v", names, want)
	}

	byName := map[string]MemberState{}
	for _, m := range ms {
		byName[m.Name] = m
	}
	secrets := map[string]bool{}
	// Every link between members goes through the fault layer: a member
	// is given the proxy of its link, which forwards to the real address.
	proxyOf := func(from, to string) string {
		for _, lk := range l.Links() {
			if lk.From == from && lk.To == to {
				return lk.Addr
			}
		}
		t.Fatalf("no proxied link %s->%s", from, to)
		return ""
	}
	for _, lk := range l.Links() {
		want := strings.TrimPrefix(byName[lk.To].Redis, "redis://") + byName[lk.To].GRPC
		if byName[lk.From].Kind == KindNode && byName[lk.To].Kind == KindNode {
			want = byName[lk.To].Raft
		}
		if lk.Target != want {
			t.Errorf("link %s->%s forwards to %s, want %s's address %s", lk.From, lk.To, lk.Target, lk.To, want)
		}
	}
	for _, m := range ms {
		if m.Kind == KindRedis {
			continue
		}
		h, err := healthOf(t, m)
		if err != nil {
			t.Fatalf("member %s /healthz: %v", m.Name, err)
		}
		if h.PID != m.PID || h.ID != m.Name {
			t.Fatalf("member %s: /healthz answered by %s pid %d, want pid %d", m.Name, h.ID, h.PID, m.PID)
		}
		// The cluster's secrets reach members in their environment, never
		// on their command lines (which ps shows to every local user).
		secrets[h.Secret+" "+h.RedisPassword] = true
		for _, a := range h.Args {
			if (h.Secret != "" && strings.Contains(a, h.Secret)) || (h.RedisPassword != "" && strings.Contains(a, h.RedisPassword)) {
				t.Errorf("member %s has a secret on its command line: %q", m.Name, h.Args)
			}
		}
		if dir := flagValue(h.Args, "--tls-dir"); dir != l.CredentialsDir() || dir == "" {
			t.Errorf("member %s: --tls-dir %q, want the lab's credentials %q", m.Name, dir, l.CredentialsDir())
		}
		if got := flagValue(h.Args, "--redis"); got != proxyOf(m.Name, "redis") {
			t.Errorf("member %s: --redis %s, want the proxy of link %s->redis", m.Name, got, m.Name)
		}
		switch m.Kind {
		case KindNode:
			for flag, want := range map[string]string{"--mode": "ap", "--shards": "8", "--bcrypt-cost": "10",
				"--data": filepath.Join(cfg.Data, m.Name), "--listen": m.GRPC} {
				if got := flagValue(h.Args, flag); got != want {
					t.Errorf("node %s: %s %q, want %q", m.Name, flag, got, want)
				}
			}
		case KindGateway:
			// Gateway gI talks first to node nI, wrapping when there are
			// fewer nodes, then to the others.
			g := m.Name
			want := map[string]string{
				"g1": proxyOf(g, "n1") + "," + proxyOf(g, "n2"),
				"g2": proxyOf(g, "n2") + "," + proxyOf(g, "n1"),
				"g3": proxyOf(g, "n1") + "," + proxyOf(g, "n2"),
			}[m.Name]
			if got := flagValue(h.Args, "--nodes"); got != want {
				t.Errorf("gateway %s: --nodes %s, want %s", m.Name, got, want)
			}
			// The dashboard's origin first, then the same port on localhost.
			if got, _, _ := strings.Cut(flagValue(h.Args, "--origins"), ","); got+"/" != l.Dashboard() {
				t.Errorf("gateway %s: --origins %s, want the dashboard %s first", m.Name, flagValue(h.Args, "--origins"), l.Dashboard())
			}
		}
	}
	if len(secrets) != 1 || secrets[" "] || slices.ContainsFunc(slices.Collect(maps.Keys(secrets)), func(s string) bool { return strings.HasPrefix(s, " ") || strings.HasSuffix(s, " ") }) {
		t.Errorf("members got secrets %v, want one shared non-empty token secret and Redis password", secrets)
	}

	banner := l.Banner()
	patterns := []string{
		`^redis: embedded miniredis \(--redis embedded\)$`,
		`^data ` + regexp.QuoteMeta(cfg.Data) + `$`,
		`^node n1 grpc 127\.0\.0\.1:\d+ http http://127\.0\.0\.1:\d+/$`,
		`^node n2 grpc 127\.0\.0\.1:\d+ http http://127\.0\.0\.1:\d+/$`,
		`^redis redis://127\.0\.0\.1:\d+ \(embedded miniredis\)$`,
		`^gateway g1 ws://127\.0\.0\.1:\d+/ws$`,
		`^gateway g2 ws://127\.0\.0\.1:\d+/ws$`,
		`^gateway g3 ws://127\.0\.0\.1:\d+/ws$`,
		`^dashboard http://127\.0\.0\.1:\d+/$`,
	}
	if len(banner) != len(patterns) {
		t.Fatalf("banner has %d lines, want %d:\n%s", len(banner), len(patterns), strings.Join(banner, "\n"))
	}
	for i, p := range patterns {
		if !regexp.MustCompile(p).MatchString(banner[i]) {
			t.Errorf("banner line %d %q does not match %s", i, banner[i], p)
		}
	}

	rec, err := ReadState(cfg.StateFile)
	if err != nil || rec.URL != l.Dashboard() || rec.PID != os.Getpid() {
		t.Fatalf("state file: %+v, %v; want url %s pid %d", rec, err, l.Dashboard(), os.Getpid())
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadState(cfg.StateFile); !errors.Is(err, ErrNoLab) {
		t.Fatalf("state file after Close: %v, want ErrNoLab", err)
	}
}

func flagValue(args []string, flag string) string {
	if i := slices.Index(args, flag); i >= 0 && i+1 < len(args) {
		return args[i+1]
	}
	return ""
}

// TestMemberFaults checks kill, restart, pause and resume act on the right
// process and only on it.
func TestMemberFaults(t *testing.T) {
	cfg := testConfig(t)
	cfg.Gateways = 1
	l := startLab(t, cfg)
	events, cancel := l.Subscribe()
	defer cancel()
	ctx := context.Background()

	n1, _ := l.Member("n1")
	n2, _ := l.Member("n2")

	if err := l.Kill("n1"); err != nil {
		t.Fatalf("kill n1: %v", err)
	}
	if !gone(n1.PID) {
		t.Fatalf("killed n1 pid %d still exists (state %q)", n1.PID, procState(n1.PID))
	}
	if procState(n2.PID) == "" {
		t.Fatalf("killing n1 took n2 (pid %d) down too", n2.PID)
	}
	if m, _ := l.Member("n1"); m.State != StateKilled || m.PID != 0 {
		t.Fatalf("n1 after kill: state %s pid %d, want killed with no pid", m.State, m.PID)
	}
	if _, err := healthOf(t, n1); err == nil {
		t.Fatal("killed n1 still answers /healthz")
	}
	if err := l.Kill("n1"); err != nil {
		t.Fatalf("killing a killed member must be a no-op: %v", err)
	}
	if err := l.Pause("n1"); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("pause killed n1: %v, want ErrNotRunning", err)
	}

	if err := l.Restart(ctx, "n1"); err != nil {
		t.Fatalf("restart n1: %v", err)
	}
	r1, _ := l.Member("n1")
	if r1.PID == 0 || r1.PID == n1.PID || r1.State != StateRunning || r1.Restarts != 1 {
		t.Fatalf("n1 after restart: %+v, want running with a new pid", r1)
	}
	if r1.HTTP != n1.HTTP || r1.GRPC != n1.GRPC {
		t.Fatalf("restart moved n1 from %s/%s to %s/%s", n1.GRPC, n1.HTTP, r1.GRPC, r1.HTTP)
	}
	if h, err := healthOf(t, r1); err != nil || h.PID != r1.PID {
		t.Fatalf("restarted n1 /healthz on the old port: %+v %v, want pid %d", h, err, r1.PID)
	}
	if err := l.Restart(ctx, "n1"); err != nil {
		t.Fatalf("restart running n1: %v", err)
	}
	if m, _ := l.Member("n1"); m.PID != r1.PID {
		t.Fatalf("restarting a running member must be a no-op; pid %d -> %d", r1.PID, m.PID)
	}

	if err := l.Pause("n2"); err != nil {
		t.Fatalf("pause n2: %v", err)
	}
	if s := procState(n2.PID); s != "T" {
		t.Fatalf("paused n2 pid %d has state %q, want T (stopped)", n2.PID, s)
	}
	if s := procState(r1.PID); s == "T" {
		t.Fatalf("pausing n2 stopped n1 (pid %d) too", r1.PID)
	}
	if m, _ := l.Member("n2"); m.State != StatePaused {
		t.Fatalf("n2 after pause: state %s", m.State)
	}
	if err := l.Pause("n2"); err != nil {
		t.Fatalf("pausing a paused member must be a no-op: %v", err)
	}
	if err := l.Restart(ctx, "n2"); err != nil {
		t.Fatalf("restart paused n2: %v", err)
	}
	if err := l.Resume("n2"); err != nil {
		t.Fatalf("resume n2: %v", err)
	}
	if s := procState(n2.PID); s == "T" || s == "" {
		t.Fatalf("resumed n2 pid %d has state %q", n2.PID, s)
	}
	if h, err := healthOf(t, n2); err != nil || h.PID != n2.PID {
		t.Fatalf("resumed n2 /healthz: %+v %v", h, err)
	}
	if err := l.Resume("n2"); err != nil {
		t.Fatalf("resuming a running member must be a no-op: %v", err)
	}
	if err := l.Kill("nobody"); !errors.Is(err, ErrUnknownMember) {
		t.Fatalf("kill nobody: %v, want ErrUnknownMember", err)
	}

	want := []struct {
		kind   EventKind
		member string
		pid    int
	}{
		{EventKilled, "n1", n1.PID}, {EventStarted, "n1", r1.PID},
		{EventPaused, "n2", n2.PID}, {EventResumed, "n2", n2.PID},
	}
	for _, w := range want {
		select {
		case ev := <-events:
			if ev.Kind != w.kind || ev.Member != w.member || ev.PID != w.pid || ev.Time.IsZero() {
				t.Fatalf("event %+v, want %s %s pid %d", ev, w.kind, w.member, w.pid)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no %s event for %s", w.kind, w.member)
		}
	}
	select {
	case ev := <-events:
		t.Fatalf("unexpected event %+v (no-op operations must not emit events)", ev)
	default:
	}
}

// TestCloseLeavesNoProcess checks Close ends every member, paused ones
// included, and closes subscriptions.
func TestCloseLeavesNoProcess(t *testing.T) {
	l := startLab(t, testConfig(t))
	if err := l.Pause("g1"); err != nil {
		t.Fatal(err)
	}
	events, cancel := l.Subscribe()
	defer cancel()
	var pids []int
	for _, m := range l.Members() {
		pids = append(pids, m.PID)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids {
		if !gone(pid) {
			t.Errorf("pid %d (state %q) left behind after Close", pid, procState(pid))
		}
	}
	stopped := 0
	for ev := range events { // closed by Close
		if ev.Kind == EventStopped {
			stopped++
		}
	}
	if stopped != len(pids) {
		t.Errorf("%d stopped events, want %d", stopped, len(pids))
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := l.Restart(context.Background(), "n1"); !errors.Is(err, ErrClosed) {
		t.Fatalf("restart after Close: %v, want ErrClosed", err)
	}
}

// startedPIDs returns the pid of every started event.
func startedPIDs(l *Lab) []int {
	var pids []int
	for _, ev := range l.Events() {
		if ev.Kind == EventStarted {
			pids = append(pids, ev.PID)
		}
	}
	return pids
}

// TestUpFailures checks that a member that exits early or never becomes
// ready fails Up with an error naming it and quoting its stderr, and that
// nothing is left running.
func TestUpFailures(t *testing.T) {
	for _, tc := range []struct {
		name    string
		env     string
		timeout time.Duration
		want    []string
	}{
		{"exits early", failEnv + "=n2", 10 * time.Second,
			[]string{"node n2", "exited before it was ready", "exit status 3", "permission denied (simulated)", "n2.log"}},
		{"never ready", hangEnv + "=g1", time.Second,
			[]string{"gateway g1", "not ready after 1s", "fake g1 starting"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t, tc.env)
			cfg.ReadyTimeout = tc.timeout
			l, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			err = l.Up(context.Background())
			if !errors.Is(err, ErrNotReady) {
				t.Fatalf("Up: %v, want ErrNotReady", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Up error %q does not mention %q", err, w)
				}
			}
			for _, pid := range startedPIDs(l) {
				if !gone(pid) {
					t.Errorf("pid %d left behind after a failed Up", pid)
				}
			}
			for _, m := range l.Members() {
				if m.PID != 0 {
					t.Errorf("member %s still has pid %d after a failed Up", m.Name, m.PID)
				}
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestUpInterrupted checks that cancelling Up's context (Ctrl-C while the
// cluster starts) stops the start at once and leaves nothing behind.
func TestUpInterrupted(t *testing.T) {
	cfg := testConfig(t, hangEnv+"=g2")
	l, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Ctrl-C once g2 (which never becomes ready) has been launched, however
	// long the waves before it took on a loaded machine.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var cancelled atomic.Int64 // UnixNano of the cancel
	go func() {
		for ctx.Err() == nil {
			if g2, err := l.Member("g2"); err == nil && g2.PID != 0 {
				cancelled.Store(time.Now().UnixNano())
				cancel()
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	err = l.Up(ctx)
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "gateway g2 start interrupted") {
		t.Fatalf("interrupted Up: %v, want g2's start interrupted by the context", err)
	}
	if d := time.Since(time.Unix(0, cancelled.Load())); d > cfg.ReadyTimeout/2 {
		t.Fatalf("Up returned %v after it was interrupted; it must not wait for ReadyTimeout %v", d, cfg.ReadyTimeout)
	}
	for _, pid := range startedPIDs(l) {
		if !gone(pid) {
			t.Errorf("pid %d left behind after an interrupted Up", pid)
		}
	}
}

// TestRestartRetries checks Restart tries again when the member exits
// before it is ready, as when its port is still in TIME_WAIT.
func TestRestartRetries(t *testing.T) {
	cfg := testConfig(t)
	cfg.Gateways = 0
	l := startLab(t, cfg)
	if err := l.Kill("n1"); err != nil {
		t.Fatal(err)
	}
	n1, _ := l.Member("n1")
	if err := os.WriteFile(filepath.Join(n1.Data, failNextFile), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := l.Restart(context.Background(), "n1"); err != nil {
		t.Fatalf("restart n1 after one failed attempt: %v", err)
	}
	var kinds []EventKind
	for _, ev := range l.Events() {
		if ev.Member == "n1" {
			kinds = append(kinds, ev.Kind)
		}
	}
	if want := []EventKind{EventStarted, EventKilled, EventExited, EventStarted}; !slices.Equal(kinds, want) {
		t.Fatalf("n1 events %v, want %v", kinds, want)
	}
}

// TestRedisMember checks the redis member can be killed and restarted on
// the same port, whichever way it runs, and that an external Redis is left
// alone.
func TestRedisMember(t *testing.T) {
	ctx := context.Background()
	for _, kind := range []RedisImpl{RedisServer, RedisMiniredis} {
		t.Run(string(kind), func(t *testing.T) {
			cfg := testConfig(t)
			cfg.Nodes, cfg.Gateways = 1, 0
			if kind == RedisServer {
				cfg.Redis = RedisAuto // redis-server is installed wherever these tests run
			}
			l := startLab(t, cfg)
			r, _ := l.Member("redis")
			addr := strings.TrimPrefix(r.Redis, "redis://")
			if r.Impl != kind || l.Status().RedisKind != kind {
				t.Fatalf("redis impl %q (status %q), want %q", r.Impl, l.Status().RedisKind, kind)
			}
			if err := l.Kill("redis"); err != nil {
				t.Fatal(err)
			}
			if redisproc.Ping(ctx, addr) == nil || !gone(r.PID) {
				t.Fatalf("killed redis (pid %d) still answers on %s", r.PID, addr)
			}
			if err := l.Restart(ctx, "redis"); err != nil {
				t.Fatal(err)
			}
			if err := redisproc.Ping(ctx, addr); err != nil {
				t.Fatalf("restarted redis does not answer on %s: %v", addr, err)
			}
		})
	}
	t.Run("external", func(t *testing.T) {
		ext := redisproc.ForTest(t)
		cfg := testConfig(t)
		cfg.Nodes, cfg.Gateways = 1, 0
		cfg.Redis = ext.Addr()
		l := startLab(t, cfg)
		r, _ := l.Member("redis")
		if r.State != StateExternal || r.PID != 0 || r.Redis != ext.URL() {
			t.Fatalf("external redis member %+v", r)
		}
		if err := l.Kill("redis"); !errors.Is(err, ErrExternal) {
			t.Fatalf("kill external redis: %v, want ErrExternal", err)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if err := redisproc.Ping(ctx, ext.Addr()); err != nil {
			t.Fatalf("Close stopped the external redis: %v", err)
		}
	})
}

func TestEventLogBounded(t *testing.T) {
	e := newEvents(3)
	ch, _, cancel := e.subscribe()
	for i := range 5 {
		e.emit(Event{Kind: EventStarted, Member: "n" + string(rune('1'+i))})
	}
	log := e.snapshot()
	if len(log) != 3 || log[0].Seq != 3 || log[2].Seq != 5 {
		t.Fatalf("log %+v, want seqs 3..5", log)
	}
	if len(ch) != 5 {
		t.Fatalf("subscriber got %d events, want 5", len(ch))
	}
	cancel()
	cancel()
	e.close()
	if _, ok := <-ch; !ok {
		t.Fatal("events buffered before cancel were dropped")
	}
}

// TestNoFaultLayer: without the fault layer members are given each
// other's real addresses (no proxied links), network faults are refused
// as unsupported, and member faults still work.
func TestNoFaultLayer(t *testing.T) {
	cfg := testConfig(t)
	cfg.NoFaultLayer = true
	l := startLab(t, cfg)
	if links := l.Links(); len(links) != 0 {
		t.Fatalf("%d proxied links without the fault layer, want 0: %v", len(links), links)
	}
	n1, _ := l.Member("n1")
	n2, _ := l.Member("n2")
	if got := flagValue(l.byName["g1"].args, "--nodes"); !strings.HasPrefix(got, n1.GRPC+",") {
		t.Fatalf("g1 --nodes %q, want n1's own address %s first", got, n1.GRPC)
	}
	ctx := context.Background()
	if _, err := l.ApplyString(ctx, "partition n1 / n2"); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("partition without the fault layer: %v, want ErrUnsupported", err)
	}
	if _, err := l.ApplyString(ctx, "kill n2"); err != nil {
		t.Fatalf("kill without the fault layer: %v", err)
	}
	if !gone(n2.PID) {
		t.Fatalf("n2 (pid %d) still running after kill", n2.PID)
	}
}
