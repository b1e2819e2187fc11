package lab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"mpim/internal/procstate"
	"mpim/internal/redisproc"
)

// Kind is what a member is.
type Kind string

// The member kinds.
const (
	KindNode    Kind = "node"
	KindGateway Kind = "gateway"
	KindRedis   Kind = "redis"
)

// State is where a member is in its lifecycle.
type State string

// The member states.
const (
	// StateStarting: the process is launched and not yet ready.
	StateStarting State = "starting"
	// StateRunning: the process is ready and not stopped.
	StateRunning State = "running"
	// StatePaused: the process is stopped with SIGSTOP.
	StatePaused State = "paused"
	// StateKilled: the process was killed through Kill (or Close).
	StateKilled State = "killed"
	// StateExited: the process ended on its own or failed to start.
	StateExited State = "exited"
	// StateExternal: the member is an external Redis the lab does not run.
	StateExternal State = "external"
)

// MemberState is a snapshot of one member, as Members and the HTTP API
// report it.
type MemberState struct {
	Name string `json:"name"`
	Kind Kind   `json:"kind"`
	// PID is the process id while the process is alive, else 0.
	PID   int   `json:"pid,omitempty"`
	State State `json:"state"`
	// GRPC is a node's gRPC address, HOST:PORT.
	GRPC string `json:"grpc,omitempty"`
	// Raft is a node's node-to-node address (Raft and forwarding).
	Raft string `json:"raft,omitempty"`
	// HTTP is a node's or gateway's HTTP base URL (/healthz; /metrics on
	// gateways).
	HTTP string `json:"http,omitempty"`
	// WS is a gateway's WebSocket URL.
	WS string `json:"ws,omitempty"`
	// Redis is the Redis URL, redis://HOST:PORT, on the redis member.
	Redis string `json:"redis,omitempty"`
	// Impl is the Redis implementation (RedisServer, RedisMiniredis or
	// RedisExternal).
	Impl RedisImpl `json:"impl,omitempty"`
	// Host is the host the member runs on, with Config.Hosts ("" on one
	// machine); Data and Log are then paths on that host.
	Host string `json:"host,omitempty"`
	// Data is a node's data directory.
	Data string `json:"data,omitempty"`
	// Log is the file holding the member's stderr and stdout.
	Log string `json:"log,omitempty"`
	// Restarts counts successful restarts after Up.
	Restarts int       `json:"restarts"`
	Since    time.Time `json:"since"`
}

// member is one supervised process slot: its fixed command line and
// addresses, and the process currently filling it.
type member struct {
	info        MemberState // fixed part: name, kind, addresses, paths
	path        string      // executable
	args        []string
	env         []string
	readyPrefix string // stdout line prefix meaning ready; "" = wait for PING
	healthURL   string // GET must answer 200 before the member counts as ready
	pingAddr    string // Redis address to PING when readyPrefix is ""
	// host is the host whose agent runs the member ("": this machine), and
	// program what the agent runs (agent.ProgramMpim or ProgramRedis).
	host, program string

	// op serializes lifecycle operations (start, kill, pause, resume,
	// stop) on this member. Lock order: member.op, then Lab.mu.
	op sync.Mutex

	// Guarded by Lab.mu.
	state    State
	proc     *process
	restarts int
	since    time.Time
}

// process is one run of a member's command.
type process struct {
	cmd   *exec.Cmd
	pid   int
	ready chan string   // the ready line, once
	done  chan struct{} // closed once the process is reaped and its state recorded

	// Guarded by Lab.mu.
	reason  EventKind // why the lab ended it (EventKilled, EventStopped); "" = on its own
	failure string    // why the start failed, for the exited event
	waitErr error     // result of Wait, valid once done is closed
}

// errExitedEarly marks a start that failed because the process ended before
// it was ready; Restart retries those.
var errExitedEarly = errors.New("exited before it was ready")

// start launches m's command and waits until it is ready, at most
// ReadyTimeout or until ctx ends. The caller holds m.op. On failure the
// process is gone and the error wraps ErrNotReady and quotes the member's
// last log lines.
func (l *Lab) start(ctx context.Context, m *member) error {
	if m.host != "" {
		return l.startRemote(ctx, m)
	}
	logFile, err := os.OpenFile(m.info.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("lab: open log of %s: %w", m.info.Name, err)
	}
	cmdline := strings.Join(m.args, " ")
	if l.cfg.Secret != "" {
		cmdline = strings.ReplaceAll(cmdline, l.cfg.Secret, "[secret]")
	}
	fmt.Fprintf(logFile, "=== lab: %s starting %s %s\n", time.Now().Format(time.RFC3339Nano), m.path, cmdline)

	cmd := exec.Command(m.path, m.args...)
	cmd.Env = append(os.Environ(), m.env...)
	// Own process group, so signals reach the member's children and a
	// terminal's Ctrl-C reaches only the lab, which then stops everyone.
	// Pdeathsig kills the member if the lab dies without cleaning up.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Stderr = logFile
	var stdout *os.File
	if m.readyPrefix != "" {
		r, w, err := os.Pipe()
		if err != nil {
			logFile.Close()
			return fmt.Errorf("lab: pipe for %s: %w", m.info.Name, err)
		}
		stdout, cmd.Stdout = r, w
	} else {
		cmd.Stdout = logFile
	}

	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		logFile.Close()
		if stdout != nil {
			stdout.Close()
		}
		return ErrClosed
	}
	err = cmd.Start()
	if w, ok := cmd.Stdout.(*os.File); ok && w != logFile {
		w.Close() // the child holds its own copy; closing ours lets the reader see EOF
	}
	if err != nil {
		l.mu.Unlock()
		logFile.Close()
		if stdout != nil {
			stdout.Close()
		}
		return fmt.Errorf("lab: start %s (%s): %w", m.info.Name, m.path, err)
	}
	p := &process{cmd: cmd, pid: cmd.Process.Pid, ready: make(chan string, 1), done: make(chan struct{})}
	m.proc, m.state, m.since = p, StateStarting, time.Now()
	l.wg.Add(2)
	l.mu.Unlock()

	// The reaper and the stdout reader belong to the Lab: they end when the
	// process (group) does, and Close waits for them through l.wg.
	go func() {
		defer l.wg.Done()
		err := cmd.Wait()
		l.exited(m, p, err)
	}()
	go func() {
		defer l.wg.Done()
		defer logFile.Close()
		if stdout == nil {
			return
		}
		defer stdout.Close()
		readStdout(stdout, logFile, m.readyPrefix, p.ready)
	}()

	if err := l.waitReady(ctx, m, p); err != nil {
		l.mu.Lock()
		p.failure = err.Error()
		l.mu.Unlock()
		_ = syscall.Kill(-p.pid, syscall.SIGKILL)
		<-p.done
		who := string(m.info.Kind) + " " + m.info.Name
		if m.info.Kind == KindRedis {
			who = string(m.info.Impl)
		}
		return fmt.Errorf("%w: %s %w (log %s: %s)", ErrNotReady, who, err, m.info.Log, redisproc.Tail(m.info.Log, 8))
	}
	l.mu.Lock()
	m.state = StateRunning
	l.mu.Unlock()
	l.emit(Event{Kind: EventStarted, Member: m.info.Name, PID: p.pid})
	return nil
}

// readStdout copies the member's stdout into its log and hands the first
// line starting with prefix to ready. It keeps draining until EOF, so that
// a chatty member never blocks on a full pipe.
func readStdout(r *os.File, log *os.File, prefix string, ready chan<- string) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	sent := false
	for sc.Scan() {
		line := sc.Text()
		fmt.Fprintf(log, "[stdout] %s\n", line)
		if !sent && strings.HasPrefix(line, prefix) {
			ready <- line
			sent = true
		}
	}
}

// waitReady waits for m's ready line and /healthz (or PING, for Redis).
func (l *Lab) waitReady(parent context.Context, m *member, p *process) error {
	ctx, cancel := context.WithTimeout(parent, l.cfg.ReadyTimeout)
	defer cancel()
	var ready <-chan string
	check := func(ctx context.Context) bool { return redisproc.Ping(ctx, m.pingAddr) == nil }
	if m.readyPrefix != "" {
		ready = p.ready
		check = func(ctx context.Context) bool { return procstate.Healthy(ctx, m.healthURL) }
	}
	err := procstate.WaitReady(ctx, ready, p.done, check)
	switch {
	case errors.Is(err, procstate.ErrExited):
		l.mu.Lock()
		werr := p.waitErr
		l.mu.Unlock()
		return fmt.Errorf("%w (%v)", errExitedEarly, werr)
	case err != nil && parent.Err() != nil:
		return fmt.Errorf("start interrupted: %w", parent.Err())
	case err != nil:
		return fmt.Errorf("not ready after %v", l.cfg.ReadyTimeout)
	}
	return nil
}

// exited records the end of process p of member m and emits the matching
// event. It runs on p's reaper goroutine.
func (l *Lab) exited(m *member, p *process, waitErr error) {
	l.mu.Lock()
	p.waitErr = waitErr
	ev := Event{Member: m.info.Name, PID: p.pid}
	switch p.reason {
	case EventKilled, EventStopped:
		ev.Kind = p.reason
	default:
		ev.Kind = EventExited
		ev.Detail = exitStatus(waitErr)
		if p.failure != "" {
			ev.Detail = p.failure
		}
	}
	if m.proc == p {
		m.proc = nil
		m.since = time.Now()
		if p.reason == EventKilled || p.reason == EventStopped {
			m.state = StateKilled
		} else {
			m.state = StateExited
		}
	}
	l.mu.Unlock()
	l.emit(ev)
	close(p.done)
}

func exitStatus(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// liveProcess returns m's process and state, or an error wrapping
// ErrNotRunning or ErrExternal when there is no process to act on. The
// caller holds m.op.
func (l *Lab) liveProcess(m *member) (*process, State, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if m.state == StateExternal {
		return nil, m.state, fmt.Errorf("%w: %s is %s (--redis HOST:PORT); the lab only acts on processes it started",
			ErrExternal, m.info.Name, m.info.Redis)
	}
	if m.proc == nil {
		return nil, m.state, fmt.Errorf("%w: %s is %s; restart it first", ErrNotRunning, m.info.Name, m.state)
	}
	return m.proc, m.state, nil
}

// kill SIGKILLs m's process group with the given reason and waits until the
// process is reaped. The caller holds m.op.
func (l *Lab) kill(m *member, reason EventKind) {
	l.mu.Lock()
	p := m.proc
	if p != nil {
		p.reason = reason
	}
	l.mu.Unlock()
	if p == nil {
		return
	}
	if m.host != "" {
		if err := l.actRemote(m, "kill"); err != nil {
			l.log.Warn("remote kill", "member", m.info.Name, "err", err)
		}
		<-p.done
		return
	}
	_ = syscall.Kill(-p.pid, syscall.SIGKILL)
	<-p.done
}

// stop ends m's process gracefully: SIGTERM (and SIGCONT, as a paused
// process cannot act on SIGTERM), then SIGKILL after StopGrace. The caller
// holds m.op.
func (l *Lab) stop(m *member) {
	l.mu.Lock()
	p := m.proc
	if p != nil {
		p.reason = EventStopped
	}
	l.mu.Unlock()
	if p == nil {
		return
	}
	if m.host != "" {
		if err := l.actRemote(m, "stop"); err != nil {
			l.log.Warn("remote stop", "member", m.info.Name, "err", err)
		}
		<-p.done
		return
	}
	_ = syscall.Kill(-p.pid, syscall.SIGTERM)
	_ = syscall.Kill(-p.pid, syscall.SIGCONT)
	t := time.NewTimer(l.cfg.StopGrace)
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C:
		l.log.Warn("member ignored SIGTERM; killing it", "member", m.info.Name, "pid", p.pid, "grace", l.cfg.StopGrace)
		_ = syscall.Kill(-p.pid, syscall.SIGKILL)
		<-p.done
	}
}

// sigStop stops the process group of pid and waits (at most a second)
// until the kernel reports the leader stopped, so that "paused" means the
// member can no longer run by the time Pause returns.
func sigStop(pid int) error {
	if err := syscall.Kill(-pid, syscall.SIGSTOP); err != nil {
		return err
	}
	procstate.WaitStopped(pid, true)
	return nil
}

// sigCont continues the process group of pid and waits (at most a second)
// until the leader is no longer stopped.
func sigCont(pid int) error {
	if err := syscall.Kill(-pid, syscall.SIGCONT); err != nil {
		return err
	}
	procstate.WaitStopped(pid, false)
	return nil
}
