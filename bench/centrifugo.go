package bench

import (
	"context"
	"debug/buildinfo"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"mpim/internal/ports"
	"mpim/internal/redisproc"
)

// ErrNoCentrifugo means --reference centrifugo found no server to run.
var ErrNoCentrifugo = errors.New("bench: no centrifugo binary next to mpim (bin/) or on PATH: run make peers, " +
	"which installs github.com/centrifugal/centrifugo/v6@v6.9.1 into bin/")

// CentrifugoBinary finds the centrifugo executable: next to the mpim
// binary (the repository's bin/, where `make peers` installs it), then on
// PATH.
func CentrifugoBinary(mpim string) (string, error) {
	if mpim != "" {
		p := filepath.Join(filepath.Dir(mpim), "centrifugo")
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return filepath.Abs(p) // the server runs in its own directory
		}
	}
	if p, err := exec.LookPath("centrifugo"); err == nil {
		return filepath.Abs(p)
	}
	return "", ErrNoCentrifugo
}

// centrifugoVersion is the module version the binary was built from
// (`go install …@v6.9.1` stamps it there, not in `centrifugo version`).
func centrifugoVersion(bin string) string {
	if bi, err := buildinfo.ReadFile(bin); err == nil && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "(version unknown)"
}

// CentrifugoReference starts a private redis-server and one Centrifugo
// server (bin) on it with the Redis engine and channel history on (100
// publications, 300 s), and measures `clients` raw-WebSocket clients:
// client i publishes 200 B into client i+1's channel and waits for the
// reply and for the delivery to its subscriber, one publication at a time.
// Latency is publish → delivery. Every publication carries a sequence
// number; one not delivered, or delivered twice, is an error. It is a peer
// a user might pick instead of mpim for Redis-backed fan-out messaging.
func CentrifugoReference(ctx context.Context, bin, dir string, clients int, warmup, duration time.Duration) (*Reference, error) {
	rdb, err := redisproc.Start(ctx, filepath.Join(dir, "redis"))
	if err != nil {
		return nil, err
	}
	defer rdb.Stop()
	srv, err := startCentrifugo(ctx, bin, dir, rdb.URL())
	if err != nil {
		return nil, err
	}
	defer srv.stop()
	measured := time.Now()
	ref, err := centrifugoLoad(ctx, cfLoadConfig{URL: srv.wsURL(), Clients: clients, Warmup: warmup, Duration: duration, Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("%w (server log: %s)", err, srv.logPath)
	}
	ref.Kind, ref.Measured = "centrifugo", measured
	ref.What = centrifugoWhat(centrifugoVersion(bin), clients)
	return ref, nil
}

// centrifugoWhat says what the reference measured, and what Centrifugo
// does and does not do that mpim does.
func centrifugoWhat(version string, clients int) string {
	return fmt.Sprintf("Centrifugo %s, one server process, Redis engine on a private redis-server (persistence off), "+
		"history on (100 publications, 300 s, kept in Redis memory); %d raw-WebSocket JSON-protocol clients, client i publishes %d B "+
		"into client i+1's channel and waits for the reply and the delivery (latency publish → delivery), "+
		"every publication checked delivered exactly once by its sequence number. "+
		"Unlike mpim: one process, no fsync, no durable store (history lives only in Redis memory and a Redis restart loses it), "+
		"no replication, no consensus, anonymous clients (no login, no users or conversations); "+
		"like mpim it fans out through Redis and keeps recent history",
		version, clients, cfPayload)
}

// cfLoadConfig is one closed-loop run against a Centrifugo WebSocket URL.
type cfLoadConfig struct {
	URL              string
	Clients          int
	Warmup, Duration time.Duration
	// Timeout bounds one publication's wait for its reply and delivery.
	Timeout time.Duration
}

// cfChannel is client i's channel (no ':' : the default namespace).
func cfChannel(i int) string { return "mpim_bench_" + strconv.Itoa(i) }

// centrifugoLoad connects the clients, runs the closed loop and returns
// what it measured (Kind, What and Measured left to the caller). Errors
// are the publications that failed or were not delivered in time, plus
// every duplicate delivery and every push on a wrong channel.
func centrifugoLoad(ctx context.Context, lc cfLoadConfig) (*Reference, error) {
	conns := make([]*cfConn, 0, lc.Clients)
	defer func() {
		for _, c := range conns {
			c.close()
		}
	}()
	for i := range lc.Clients {
		c, err := dialCF(ctx, lc.URL, cfChannel(i))
		if err != nil {
			return nil, fmt.Errorf("client %d: %w", i, err)
		}
		conns = append(conns, c)
	}
	seqs := make([]uint64, lc.Clients)
	bufs := make([][]byte, lc.Clients)
	ops, errs, h, d := closedLoopTimed(ctx, lc.Clients, lc.Warmup, lc.Duration, func(ctx context.Context, i int) (time.Duration, error) {
		seqs[i]++
		lat, err := conns[i].publish(ctx, conns[(i+1)%lc.Clients], seqs[i], bufs[i], lc.Timeout)
		if err != nil {
			sleepCtx(ctx, time.Millisecond) // a lost connection must not spin
		}
		return lat, err
	})
	// A duplicate may trail its original; give it a moment to arrive.
	sleepCtx(ctx, 200*time.Millisecond)
	var dupes, stray uint64
	for _, c := range conns {
		dupes += c.dupes.Load()
		stray += c.stray.Load()
	}
	return &Reference{Clients: lc.Clients, Ops: ops, Errors: errs + dupes + stray, OpsPerS: float64(ops) / d.Seconds(),
		Latency: h.Summary()}, nil
}

// centrifugoServer is one centrifugo child process.
type centrifugoServer struct {
	cmd     *exec.Cmd
	port    int
	logPath string
	done    chan struct{} // closed when cmd has been reaped
}

// centrifugoConfig is the server's configuration (keys of Centrifugo v6's
// config.json, checked with `centrifugo checkconfig --strict`): loopback
// only, the Redis engine, anonymous clients allowed to subscribe and
// publish, history on in the default namespace, the health endpoint on,
// no usage statistics sent anywhere.
func centrifugoConfig(port int, redisURL string) ([]byte, error) {
	return json.MarshalIndent(map[string]any{
		"http_server": map[string]any{"address": "127.0.0.1", "port": port},
		"log":         map[string]any{"level": "error"},
		"engine":      map[string]any{"type": "redis", "redis": map[string]any{"address": []string{redisURL}}},
		"client":      map[string]any{"insecure": true, "allowed_origins": []string{"*"}},
		"channel": map[string]any{"without_namespace": map[string]any{
			"history_size": 100, "history_ttl": "300s",
			"allow_publish_for_client": true, "allow_subscribe_for_client": true,
		}},
		"health":      map[string]any{"enabled": true},
		"usage_stats": map[string]any{"disabled": true},
	}, "", "  ")
}

// startCentrifugo writes the configuration into dir, starts bin on a free
// loopback port and waits until its /health answers 200.
func startCentrifugo(ctx context.Context, bin, dir, redisURL string) (*centrifugoServer, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var lastErr error
	// Another process may take the free port before the server binds it.
	for range 3 {
		p, err := ports.Free(1)
		if err != nil {
			return nil, err
		}
		conf, err := centrifugoConfig(p[0], redisURL)
		if err != nil {
			return nil, err
		}
		confPath := filepath.Join(dir, "centrifugo.json")
		if err := os.WriteFile(confPath, conf, 0o600); err != nil {
			return nil, err
		}
		s := &centrifugoServer{port: p[0], logPath: filepath.Join(dir, "centrifugo.log"), done: make(chan struct{})}
		if lastErr = s.start(ctx, bin, confPath); lastErr == nil {
			return s, nil
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, lastErr
}

func (s *centrifugoServer) start(ctx context.Context, bin, confPath string) error {
	logf, err := os.Create(s.logPath)
	if err != nil {
		return err
	}
	defer logf.Close() // the child has its own descriptor
	s.cmd = exec.Command(bin, "--config", confPath)
	s.cmd.Dir = filepath.Dir(confPath)
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("bench: start %s: %w", bin, err)
	}
	go func() {
		s.cmd.Wait()
		close(s.done)
	}()
	health := fmt.Sprintf("http://127.0.0.1:%d/health", s.port)
	hc := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(15 * time.Second)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, health, nil)
		if resp, err := hc.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-s.done:
			return fmt.Errorf("bench: centrifugo exited before its %s answered: %s", health, s.logTail())
		case <-ctx.Done():
			s.stop()
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.stop()
			return fmt.Errorf("bench: centrifugo's %s did not answer 200 in 15 s: %s", health, s.logTail())
		}
	}
}

// logTail is the end of the server's log, for an error message.
func (s *centrifugoServer) logTail() string {
	b, _ := os.ReadFile(s.logPath)
	t := strings.TrimSpace(string(b))
	if len(t) > 600 {
		t = "…" + t[len(t)-600:]
	}
	if t == "" {
		return "(its log " + s.logPath + " is empty)"
	}
	return t
}

func (s *centrifugoServer) wsURL() string {
	return fmt.Sprintf("ws://127.0.0.1:%d/connection/websocket", s.port)
}

// stop sends SIGTERM, waits up to 5 s, then kills.
func (s *centrifugoServer) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
		return
	case <-time.After(5 * time.Second):
	}
	_ = s.cmd.Process.Kill()
	<-s.done
}
