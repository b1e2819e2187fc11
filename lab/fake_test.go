package lab

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"

	"mpim/internal/redisproc"
)

// The lab's unit tests run the supervisor against stand-in members: the
// test binary itself, re-executed with fakeEnv set, plays `mpim node`,
// `mpim gateway` and `mpim lab miniredis` with the real flags, ready lines
// and /healthz, so the supervisor is tested before the real commands exist.
const (
	fakeEnv = "MPIM_LAB_FAKE_MEMBER"
	// failEnv names a member that writes an error on stderr and exits 3
	// instead of starting.
	failEnv = "MPIM_LAB_FAKE_FAIL"
	// hangEnv names a member that never prints its ready line.
	hangEnv = "MPIM_LAB_FAKE_HANG"
	// failNextFile, in a node's data directory, makes its next start fail
	// once (the file is removed).
	failNextFile = "fail-next"
)

func TestMain(m *testing.M) {
	if os.Getenv(fakeEnv) == "1" {
		os.Exit(fakeMember(os.Args[1:]))
	}
	goleak.VerifyTestMain(m)
}

// fakeHealth is what a fake member's /healthz answers, so that tests can
// tell which process answered and with which flags it was started.
type fakeHealth struct {
	ID   string   `json:"id"`
	PID  int      `json:"pid"`
	Args []string `json:"args"`
	// Secret and RedisPassword are what the member found in its
	// environment.
	Secret        string `json:"secret"`
	RedisPassword string `json:"redis_password"`
}

func fakeMember(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if len(args) >= 2 && args[0] == "lab" && args[1] == "miniredis" {
		fs := flag.NewFlagSet("miniredis", flag.ContinueOnError)
		listen := fs.String("listen", "", "")
		if err := fs.Parse(args[2:]); err != nil {
			return 2
		}
		s, err := redisproc.EmbeddedAt(*listen, os.Getenv("MPIM_REDIS_PASSWORD"))
		if err != nil {
			fmt.Fprintln(os.Stderr, "fake redis:", err)
			return 1
		}
		fmt.Printf("redis %s embedded miniredis\n", s.URL())
		<-ctx.Done()
		_ = s.Stop()
		return 0
	}
	if len(args) == 0 || (args[0] != "node" && args[0] != "gateway") {
		fmt.Fprintf(os.Stderr, "fake member: unexpected command line %q\n", args)
		return 2
	}
	kind := args[0]
	fs := flag.NewFlagSet(kind, flag.ContinueOnError)
	id := fs.String("id", "", "")
	data := fs.String("data", "", "")
	listen := fs.String("listen", "", "")
	httpAddr := fs.String("http", "", "")
	redis := fs.String("redis", "", "")
	fs.String("tls-dir", "", "")
	fs.Int("shards", 0, "")
	fs.String("mode", "", "")
	fs.Int("bcrypt-cost", 0, "")
	fs.String("nodes", "", "")
	fs.String("origins", "", "")
	fs.String("raft-listen", "", "")
	fs.String("peers", "", "")
	fs.String("leaders", "", "")
	fs.String("ap-repair", "", "")
	fs.String("unsafe", "", "")
	fs.Bool("pprof", false, "")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if os.Getenv(failEnv) == *id {
		fmt.Fprintf(os.Stderr, "fake %s: cannot open data directory: permission denied (simulated)\n", *id)
		return 3
	}
	if *data != "" {
		if err := os.Remove(filepath.Join(*data, failNextFile)); err == nil {
			fmt.Fprintf(os.Stderr, "fake %s: failing this start once (simulated)\n", *id)
			return 3
		}
	}
	if err := redisproc.Ping(ctx, *redis); err != nil {
		fmt.Fprintf(os.Stderr, "fake %s: redis %s unreachable: %v\n", *id, *redis, err)
		return 4
	}
	fmt.Fprintf(os.Stderr, "fake %s starting\n", *id)

	health := fakeHealth{ID: *id, PID: os.Getpid(), Args: args, Secret: os.Getenv("MPIM_SECRET"), RedisPassword: os.Getenv("MPIM_REDIS_PASSWORD")}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(health)
	})
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "# fake metrics")
	})
	// /ws echoes text frames prefixed with the member's id and the Host it
	// was asked for, for the relay's test.
	mux.HandleFunc("GET /ws", func(w http.ResponseWriter, r *http.Request) {
		up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			_, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			if c.WriteMessage(websocket.TextMessage, []byte(*id+" "+r.Host+" "+string(msg))) != nil {
				return
			}
		}
	})
	serve := func(addr string) error {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return err
		}
		go func() { _ = http.Serve(ln, mux) }()
		return nil
	}
	var ready string
	if kind == "node" {
		// The gRPC port only needs to be held; nothing speaks gRPC to a fake.
		ln, err := net.Listen("tcp", *listen)
		if err != nil {
			fmt.Fprintf(os.Stderr, "fake %s: %v\n", *id, err)
			return 1
		}
		defer ln.Close()
		if err := serve(*httpAddr); err != nil {
			fmt.Fprintf(os.Stderr, "fake %s: %v\n", *id, err)
			return 1
		}
		ready = fmt.Sprintf("node %s grpc %s http http://%s/", *id, *listen, *httpAddr)
	} else {
		if err := serve(*listen); err != nil {
			fmt.Fprintf(os.Stderr, "fake %s: %v\n", *id, err)
			return 1
		}
		ready = fmt.Sprintf("gateway %s ws://%s/ws", *id, *listen)
	}
	if os.Getenv(hangEnv) != *id {
		fmt.Println("some chatter before the ready line")
		fmt.Println(ready)
	}
	<-ctx.Done()
	fmt.Fprintf(os.Stderr, "fake %s stopping\n", *id)
	return 0
}

// testConfig returns a Config running fake members from the test binary,
// with an embedded Redis, a private data directory and state file.
func testConfig(t *testing.T, extraEnv ...string) Config {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Binary = exe
	// GORACE: a race-enabled member otherwise sleeps a second on exit.
	cfg.Env = append([]string{fakeEnv + "=1", "GORACE=atexit_sleep_ms=0"}, extraEnv...)
	cfg.Nodes, cfg.Gateways = 2, 2
	cfg.Redis = RedisEmbedded
	cfg.HTTP = "127.0.0.1:0"
	cfg.Data = t.TempDir()
	cfg.StateFile = filepath.Join(t.TempDir(), StateFileName)
	cfg.ReadyTimeout = 10 * time.Second
	cfg.StopGrace = 2 * time.Second
	cfg.Logger = testLogger(t)
	return cfg
}

// startLab runs Up and registers Close.
func startLab(t *testing.T, cfg Config) *Lab {
	t.Helper()
	l, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := l.Up(ctx); err != nil {
		t.Fatalf("Up: %v", err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

var testClient = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

// healthOf asks a member's /healthz which process answers.
func healthOf(t *testing.T, m MemberState) (fakeHealth, error) {
	t.Helper()
	resp, err := testClient.Get(strings.TrimSuffix(m.HTTP, "/") + "/healthz")
	if err != nil {
		return fakeHealth{}, err
	}
	defer resp.Body.Close()
	var h fakeHealth
	if resp.StatusCode != http.StatusOK {
		return h, fmt.Errorf("healthz %s: status %d", m.Name, resp.StatusCode)
	}
	return h, json.NewDecoder(resp.Body).Decode(&h)
}

// procState returns the state letter of pid in /proc (R, S, T, Z...), or
// "" when the process does not exist.
func procState(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return ""
	}
	return s[i+2 : i+3]
}

// gone reports whether pid no longer exists (reaped, not a zombie).
func gone(pid int) bool {
	return syscall.Kill(pid, 0) == syscall.ESRCH
}
