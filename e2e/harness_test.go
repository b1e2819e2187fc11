// Package e2e runs the system as separate OS processes of the mpim binary
// (MPIM_BIN, built once by `make e2e`; built here if unset), with a private
// redis-server per lab, and talks to it over real WebSocket connections.
package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"mpim/client"
	"mpim/internal/convid"
	"mpim/internal/testcluster"
	"mpim/lab"
	"mpim/node"
)

var mpimBin string

func TestMain(m *testing.M) {
	// The labs here choose Redis "auto", which falls back to an embedded
	// miniredis without redis-server: the end-to-end tests would then pass
	// on a fake. They need the real one (.ci/run installs it).
	if _, err := exec.LookPath("redis-server"); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: no redis-server on PATH: the end-to-end tests run against a real Redis (apt-get install redis-server)")
		os.Exit(2)
	}
	mpimBin = os.Getenv("MPIM_BIN")
	if mpimBin == "" {
		dir, err := os.MkdirTemp("", "mpim-e2e-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		mpimBin = filepath.Join(dir, "mpim")
		cmd := exec.Command("go", "build", "-o", mpimBin, "../cmd/mpim")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "e2e: cannot build mpim:", err)
			os.Exit(2)
		}
		defer os.RemoveAll(dir)
	}
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(goleak.IgnoreCurrent()); err != nil {
			fmt.Fprintln(os.Stderr, "e2e: leaked goroutines:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// labOpts shapes a test lab.
type labOpts struct {
	nodes, gateways int
	// nodeArgs and gatewayArgs are appended to every node's / gateway's
	// command line.
	nodeArgs, gatewayArgs []string
	// unsafe are CP unsafe switches for every node (the lab's --unsafe).
	unsafe []string
	// mode is "cp" (default) or "ap"; noRepair turns AP repair off.
	mode     string
	noRepair bool
	// net is the fault layer's backend (lab.NetProxy by default).
	net string
	// memberArgs, when set, adds arguments of each member's own.
	memberArgs func(member string) []string
}

// cluster is a running lab of real processes.
type cluster struct {
	*lab.Lab
	t *testing.T
}

// startLab starts nodes, gateways and a private redis-server as processes.
func startLab(t *testing.T, o labOpts) *cluster {
	t.Helper()
	if o.nodes == 0 {
		o.nodes = 1
	}
	if o.gateways == 0 {
		o.gateways = 2
	}
	cfg := lab.DefaultConfig()
	cfg.Binary = mpimBin
	cfg.Nodes, cfg.Gateways = o.nodes, o.gateways
	cfg.Data = t.TempDir()
	cfg.HTTP = "127.0.0.1:0"
	cfg.StateFile = "-"
	cfg.Secret = testcluster.Secret
	cfg.BcryptCost = 4
	cfg.Unsafe = o.unsafe
	if o.mode != "" {
		cfg.Mode = o.mode
	}
	cfg.APRepair = !o.noRepair
	if o.net != "" {
		cfg.Net = o.net
	}
	cfg.Args = func(member string, args []string) []string {
		if o.memberArgs != nil {
			args = append(args, o.memberArgs(member)...)
		}
		switch {
		case strings.HasPrefix(member, "n"):
			return append(args, append([]string{"--test-hooks"}, o.nodeArgs...)...)
		case strings.HasPrefix(member, "g"):
			args = append(args, "--health-interval", "100ms")
			return append(args, o.gatewayArgs...)
		}
		return args
	}
	l, err := lab.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := l.Up(ctx); err != nil {
		t.Fatalf("lab up: %v", err)
	}
	c := &cluster{Lab: l, t: t}
	t.Cleanup(func() {
		if t.Failed() {
			c.dumpLogs()
		}
		l.Close()
	})
	return c
}

// dumpLogs prints the tail of every member's log into the test output.
func (c *cluster) dumpLogs() {
	for _, m := range c.Members() {
		if m.Log == "" {
			continue
		}
		b, _ := os.ReadFile(m.Log)
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(lines) > 40 {
			lines = lines[len(lines)-40:]
		}
		c.t.Logf("--- %s log (tail) ---\n%s", m.Name, strings.Join(lines, "\n"))
	}
}

func (c *cluster) member(name string) lab.MemberState {
	c.t.Helper()
	m, err := c.Member(name)
	if err != nil {
		c.t.Fatal(err)
	}
	return m
}

// ws is the WebSocket URL of gateway gI.
func (c *cluster) ws(gw string) string { return c.member(gw).WS }

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// dial opens a client connection to gateway gw.
func (c *cluster) dial(gw string) *client.Conn {
	c.t.Helper()
	conn, err := client.Dial(ctxFor(c.t, 10*time.Second), c.ws(gw), client.Options{PushBuffer: 1 << 16})
	if err != nil {
		c.t.Fatalf("dial %s: %v", gw, err)
	}
	c.t.Cleanup(func() { conn.Close() })
	return conn
}

const password = "correct horse"

// register creates user through gateway gw.
func (c *cluster) register(gw, user string) {
	c.t.Helper()
	conn := c.dial(gw)
	if _, err := conn.Register(ctxFor(c.t, 10*time.Second), user, password); err != nil {
		c.t.Fatalf("register %s: %v", user, err)
	}
	conn.Close()
}

// login connects user's device to gateway gw.
func (c *cluster) login(gw, user, device string) *client.Conn {
	c.t.Helper()
	conn := c.dial(gw)
	if _, err := conn.Login(ctxFor(c.t, 10*time.Second), user, password, device); err != nil {
		c.t.Fatalf("login %s/%s on %s: %v", user, device, gw, err)
	}
	return conn
}

// dmShard is the shard (of 4) holding the direct conversation of users a
// and b: the state keys it by their uids (convid.DMKey).
func (c *cluster) dmShard(a, b string) uint32 {
	c.t.Helper()
	ctx := ctxFor(c.t, 10*time.Second)
	conn := c.login("g1", a, "dm-shard")
	defer conn.Close()
	me, err := conn.UserInfo(ctx, a)
	if err != nil {
		c.t.Fatalf("user_info %s: %v", a, err)
	}
	peer, err := conn.UserInfo(ctx, b)
	if err != nil {
		c.t.Fatalf("user_info %s: %v", b, err)
	}
	return uint32(node.ShardOf(convid.DMKey(me.UID, peer.UID), 4))
}

// aliceToBob registers alice and bob, logs alice's device in on gateway
// gw and sends bob one message (so the cluster has served a write and the
// DM exists); many tests start so.
func (c *cluster) aliceToBob(gw, device string) *client.Conn {
	c.t.Helper()
	c.register("g1", "alice")
	c.register("g1", "bob")
	alice := c.login(gw, "alice", device)
	if _, err := alice.Send(ctxFor(c.t, 10*time.Second), client.SendArgs{To: "bob", Text: "warm-up", Cmid: "warm-up"}); err != nil {
		c.t.Fatalf("warm-up send: %v", err)
	}
	return alice
}

// messages waits for n message pushes on conn and returns them in arrival
// order; it fails the test when they do not come within d.
func messages(t *testing.T, conn *client.Conn, n int, d time.Duration) []client.Message {
	t.Helper()
	var out []client.Message
	deadline := time.After(d)
	for len(out) < n {
		select {
		case p := <-conn.Pushes():
			if p.Kind != "message" {
				continue
			}
			m, err := p.Message()
			if err != nil {
				t.Fatalf("bad message push: %v", err)
			}
			out = append(out, m)
		case <-deadline:
			got := make([]string, len(out))
			for i, m := range out {
				got[i] = fmt.Sprintf("%s#%d %s", m.Conv, m.Seq, m.Cmid)
			}
			t.Fatalf("got %d of %d message pushes within %v: %v", len(out), n, d, got)
		}
	}
	return out
}

// quiet asserts that no message push arrives on conn for d.
func quiet(t *testing.T, conn *client.Conn, d time.Duration) {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case p := <-conn.Pushes():
			if p.Kind == "message" {
				m, _ := p.Message()
				t.Fatalf("unexpected extra message push (a duplicate?): %+v", m)
			}
		case <-deadline:
			return
		}
	}
}

// pushOf waits for a push of the given kind on conn.
func pushOf(t *testing.T, conn *client.Conn, kind string, d time.Duration) client.PushFields {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case p := <-conn.Pushes():
			if p.Kind == kind {
				f, err := p.Fields()
				if err != nil {
					t.Fatal(err)
				}
				return f
			}
		case <-deadline:
			t.Fatalf("no %s push within %v", kind, d)
		}
	}
}

// metric reads one series from a Prometheus /metrics page (the sum over its
// label sets when name has no labels).
func metric(t *testing.T, baseURL, name string) float64 {
	t.Helper()
	resp, err := http.Get(strings.TrimSuffix(baseURL, "/") + "/metrics")
	if err != nil {
		t.Fatalf("scrape %s: %v", baseURL, err)
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		series, val, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		if series == name || strings.HasPrefix(series, name+"{") {
			v, _ := strconv.ParseFloat(val, 64)
			sum += v
		}
	}
	io.Copy(io.Discard, resp.Body)
	return sum
}

// eventually polls cond until it holds or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true within %v", what, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
