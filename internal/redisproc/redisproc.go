// Package redisproc runs a private Redis for tests and for the lab: a real
// redis-server child process on a free loopback port when the binary is
// installed, or an embedded miniredis as the fallback.
//
// Both kinds offer the same lifecycle (Kill, Restart, Stop), so a test can
// take Redis away and bring it back on the same address. Persistence is off
// in both: a killed Redis comes back empty, exactly as a production Redis
// without AOF or RDB would.
package redisproc

import (
	"mpim/internal/ports"

	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/alicebob/miniredis/v2"
)

// Binary is the name of the Redis server executable looked up on PATH.
const Binary = "redis-server"

// Sentinel errors of package redisproc.
var (
	// ErrNoBinary means no redis-server executable is on PATH.
	ErrNoBinary = errors.New("redisproc: no redis-server binary on PATH (install redis-server, e.g. apt-get install redis-server, or use the embedded miniredis)")
	// ErrNotReady means the server did not answer PING in time.
	ErrNotReady = errors.New("redisproc: redis did not answer PING in time")
	// ErrExited means the server process exited before answering PING.
	ErrExited = errors.New("redisproc: redis-server exited before it was ready")
)

// Timeouts used while starting and stopping. They are constants rather than
// mutable globals; callers bound waits further with their context.
const (
	readyTimeout   = 5 * time.Second
	stopGrace      = 5 * time.Second
	restartRetries = 20
	restartBackoff = 100 * time.Millisecond
	startAttempts  = 3
)

// Server is one private Redis: either a redis-server child process or an
// embedded miniredis. Its methods are safe for concurrent use.
type Server struct {
	addr string
	dir  string // working directory of redis-server; "" when embedded

	mu   sync.Mutex
	cmd  *exec.Cmd     // running redis-server, nil when embedded or not running
	done chan struct{} // closed when cmd has been reaped
	mini *miniredis.Miniredis
}

// Available reports whether a redis-server binary is on PATH.
func Available() bool {
	_, err := exec.LookPath(Binary)
	return err == nil
}

// Args returns the redis-server arguments the lab and Start use: loopback
// only, on port, persistence off, working directory dir, log on stdout.
func Args(port int, dir string) []string { return ArgsOn("127.0.0.1", port, dir) }

// ArgsOn is Args listening on host instead of loopback (a lab member's own
// address in its network namespace, reachable only from the lab's
// namespaces: protected mode, which refuses every non-loopback client of a
// Redis without a password, is off there).
func ArgsOn(host string, port int, dir string) []string {
	protected := "yes"
	if ip := net.ParseIP(host); ip != nil && !ip.IsLoopback() {
		protected = "no"
	}
	return []string{
		"--port", strconv.Itoa(port),
		"--bind", host,
		"--protected-mode", protected,
		"--save", "",
		"--appendonly", "no",
		"--dir", dir,
		"--daemonize", "no",
		"--logfile", "",
	}
}

// Command returns an unstarted redis-server command listening on port with
// working directory dir. The child gets its own process group and is
// SIGKILLed if the parent dies. Stdout and stderr are left to the caller.
func Command(port int, dir string) (*exec.Cmd, error) { return CommandOn("127.0.0.1", port, dir, "") }

// CommandOn is Command listening on host.
//
// A non-empty password is required of every client (requirepass); it is
// written to a configuration file in dir (0600) rather than the command
// line, where ps would show it to every local user.
func CommandOn(host string, port int, dir, password string) (*exec.Cmd, error) {
	path, err := exec.LookPath(Binary)
	if err != nil {
		return nil, ErrNoBinary
	}
	args := ArgsOn(host, port, dir)
	if password != "" {
		conf := filepath.Join(dir, "auth.conf")
		if err := os.WriteFile(conf, []byte("requirepass "+password+"\n"), 0o600); err != nil {
			return nil, fmt.Errorf("redisproc: %w", err)
		}
		args = append([]string{conf}, args...)
	}
	cmd := exec.Command(path, args...)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	return cmd, nil
}

// Start runs redis-server on a free 127.0.0.1 port with persistence off,
// working in dir (its output goes to dir/redis-server.log), and waits until
// it answers PING, at most about five seconds or until ctx ends.
func Start(ctx context.Context, dir string) (*Server, error) {
	if !Available() {
		return nil, ErrNoBinary
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("redisproc: create dir: %w", err)
	}
	var lastErr error
	// Another process may take the free port between picking and binding
	// it; a fresh port fixes that.
	for range startAttempts {
		port, err := FreePort()
		if err != nil {
			return nil, err
		}
		s := &Server{addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), dir: dir}
		if lastErr = s.startProcess(ctx); lastErr == nil {
			return s, nil
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, lastErr
}

// Embedded starts a miniredis on a free loopback port: the lab's fallback
// when no redis-server binary exists.
func Embedded() (*Server, error) {
	return EmbeddedAt("127.0.0.1:0", "")
}

// EmbeddedAt starts a miniredis listening on addr ("127.0.0.1:0" picks a
// free port).
//
// A non-empty password is required of every client.
func EmbeddedAt(addr, password string) (*Server, error) {
	m := miniredis.NewMiniRedis()
	if password != "" {
		m.RequireAuth(password)
	}
	if err := m.StartAddr(addr); err != nil {
		return nil, fmt.Errorf("redisproc: start embedded miniredis on %s: %w", addr, err)
	}
	return &Server{addr: m.Addr(), mini: m}, nil
}

// Addr returns the server address, "127.0.0.1:PORT".
func (s *Server) Addr() string { return s.addr }

// URL returns the server address as a redis:// URL.
func (s *Server) URL() string { return "redis://" + s.addr }

// Kind names the implementation: "redis-server" or "embedded miniredis".
func (s *Server) Kind() string {
	if s.dir == "" {
		return "embedded miniredis"
	}
	return "redis-server"
}

// Pid returns the redis-server process id, or 0 when the server is embedded
// or its process has ended.
func (s *Server) Pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return 0
	}
	select {
	case <-s.done:
		return 0
	default:
		return s.cmd.Process.Pid
	}
}

// Kill stops the server abruptly: SIGKILL for redis-server (waiting until
// it is reaped), closing every connection for miniredis. The data is gone,
// as persistence is off.
func (s *Server) Kill() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dir == "" {
		if s.mini != nil {
			s.mini.Close()
			s.mini = nil
		}
		return nil
	}
	if s.cmd == nil {
		return nil
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	<-s.done
	s.cmd = nil
	return nil
}

// Restart starts the server again on the same port, retrying briefly while
// the port is still held (e.g. in TIME_WAIT). Restarting a running server
// is a no-op.
func (s *Server) Restart(ctx context.Context) error {
	var err error
	for range restartRetries {
		if err = s.restartOnce(ctx); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("redisproc: restart %s: %w (last error: %v)", s.addr, ctx.Err(), err)
		case <-time.After(restartBackoff):
		}
	}
	return err
}

func (s *Server) restartOnce(ctx context.Context) error {
	if s.dir == "" {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.mini != nil {
			return nil
		}
		m := miniredis.NewMiniRedis()
		if err := m.StartAddr(s.addr); err != nil {
			return fmt.Errorf("redisproc: restart embedded miniredis on %s: %w", s.addr, err)
		}
		s.mini = m
		return nil
	}
	s.mu.Lock()
	running := s.cmd != nil
	if running {
		select {
		case <-s.done: // it died on its own: start it again
			s.cmd, running = nil, false
		default:
		}
	}
	s.mu.Unlock()
	if running {
		return nil
	}
	return s.startProcess(ctx)
}

// Stop shuts the server down gracefully (SIGTERM, then SIGKILL after a
// grace period) and waits for it. Stopping a stopped server is a no-op.
func (s *Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dir == "" {
		if s.mini != nil {
			s.mini.Close()
			s.mini = nil
		}
		return nil
	}
	if s.cmd == nil {
		return nil
	}
	pid := s.cmd.Process.Pid
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	_ = syscall.Kill(-pid, syscall.SIGCONT) // a paused server cannot act on SIGTERM
	select {
	case <-s.done:
	case <-time.After(stopGrace):
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-s.done
	}
	s.cmd = nil
	return nil
}

// startProcess launches redis-server on s.addr and waits for PING.
func (s *Server) startProcess(ctx context.Context) error {
	_, portStr, _ := net.SplitHostPort(s.addr)
	port, _ := strconv.Atoi(portStr)
	cmd, err := Command(port, s.dir)
	if err != nil {
		return err
	}
	logPath := filepath.Join(s.dir, "redis-server.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("redisproc: open log: %w", err)
	}
	defer logFile.Close() // the child holds its own copy of the descriptor
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("redisproc: start %s: %w", cmd.Path, err)
	}
	done := make(chan struct{})
	// The reaper goroutine is owned by s: it ends when the process does, and
	// Kill and Stop wait for it through done.
	go func() {
		_ = cmd.Wait()
		close(done)
	}()

	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	if err := waitReady(ctx, s.addr, done); err != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		return fmt.Errorf("%w on %s: %s", err, s.addr, Tail(logPath, 5))
	}
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()
	return nil
}

// waitReady polls PING on addr until it answers, exited is closed, or ctx
// ends.
func waitReady(ctx context.Context, addr string, exited <-chan struct{}) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if Ping(ctx, addr) == nil {
			return nil
		}
		select {
		case <-exited:
			return ErrExited
		case <-ctx.Done():
			return ErrNotReady
		case <-tick.C:
		}
	}
}

// Ping sends one PING to the Redis at addr on a fresh connection and
// expects +PONG. It uses no client library, so it leaves no goroutine or
// pooled connection behind.
func Ping(ctx context.Context, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	if _, err := conn.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	// A server that requires a password answers NOAUTH: it is up.
	if l := strings.TrimSpace(line); l != "+PONG" && !strings.HasPrefix(l, "-NOAUTH") {
		return fmt.Errorf("redisproc: PING %s answered %q", addr, strings.TrimSpace(line))
	}
	return nil
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	p, err := ports.Free(1)
	if err != nil {
		return 0, fmt.Errorf("redisproc: %w", err)
	}
	return p[0], nil
}

// Tail returns the last n lines of the file at path joined by " | ", for
// error messages; "(no output)" when the file is empty or missing.
func Tail(path string, n int) string {
	lines := TailLines(path, n)
	if len(lines) == 0 {
		return "(no output in " + path + ")"
	}
	return strings.Join(lines, " | ")
}

// TailLines returns up to the last n non-empty lines of the file at path,
// reading at most its last 16 KiB.
func TailLines(path string, n int) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	const max = 16 << 10
	if st, err := f.Stat(); err == nil && st.Size() > max {
		_, _ = f.Seek(st.Size()-max, 0)
	}
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 4096), max)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines
}
