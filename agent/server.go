package agent

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"mpim/internal/clustertls"
	"mpim/internal/procstate"
	"mpim/internal/redisproc"
)

// Config is one agent.
type Config struct {
	// Name is the host's name (reported; optional).
	Name string
	// Data holds a directory per member and logs/ (created).
	Data string
	// TLSDir holds the cluster's credentials (ca.pem, member.pem,
	// member-key.pem).
	TLSDir string
	// NoMembers makes an agent that applies faults only.
	NoMembers bool
	// StopGrace is how long stop waits after SIGTERM (default 3 s).
	StopGrace time.Duration
	Logger    *slog.Logger
}

// Server is a running agent.
type Server struct {
	cfg     Config
	log     *slog.Logger
	self    string // this executable
	redis   string // redis-server, "" if not on PATH
	support support
	nft     *nftTable

	mu      sync.Mutex
	members map[string]*member
	closed  bool
	wg      sync.WaitGroup
}

type member struct {
	name string
	log  string
	op   sync.Mutex // serializes start/kill/stop/pause/resume

	// Guarded by Server.mu.
	proc   *process
	state  string
	status string
	since  time.Time
}

type process struct {
	pid    int
	done   chan struct{}
	status string // valid once done is closed
	ready  chan struct{}
}

// NewServer checks cfg, probes nftables and netem, and clears any rules
// a previous agent left.
func NewServer(cfg Config) (*Server, error) {
	if cfg.Data == "" || cfg.TLSDir == "" {
		return nil, errors.New("agent: --data and --tls-dir are required")
	}
	if cfg.StopGrace <= 0 {
		cfg.StopGrace = 3 * time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	abs, err := filepath.Abs(cfg.Data)
	if err != nil {
		return nil, err
	}
	cfg.Data = abs
	if cfg.TLSDir, err = filepath.Abs(cfg.TLSDir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(cfg.Data, "logs"), 0o755); err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("agent: find my executable: %w", err)
	}
	s := &Server{cfg: cfg, log: log, self: self, members: map[string]*member{}}
	if p, err := exec.LookPath("redis-server"); err == nil {
		s.redis = p
	}
	s.support = probe()
	s.nft = &nftTable{}
	if s.support.Nftables {
		if err := s.nft.load(nil); err != nil {
			return nil, fmt.Errorf("agent: clear the fault table: %w", err)
		}
	}
	return s, nil
}

// Serve answers on ln with mutual TLS until ctx ends, then stops every
// member (SIGTERM, then SIGKILL) and removes its rules.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	creds, err := clustertls.Load(s.cfg.TLSDir)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: s.Handler(), TLSConfig: creds.Server(), ReadHeaderTimeout: 5 * time.Second,
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)}
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(ln, "", "") }()
	select {
	case <-ctx.Done():
	case err := <-errc:
		s.Close()
		return err
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	_ = srv.Shutdown(sctx)
	cancel()
	s.Close()
	return nil
}

// Close stops every member and removes the host's rules.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	ms := make([]*member, 0, len(s.members))
	for _, m := range s.members {
		ms = append(ms, m)
	}
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, m := range ms {
		wg.Go(func() { s.stop(m) })
	}
	wg.Wait()
	s.wg.Wait()
	if s.support.Nftables {
		_ = s.nft.remove()
	}
}

// Info is what the agent reports about itself.
func (s *Server) Info() Info {
	return Info{Name: s.cfg.Name, Data: s.cfg.Data, TLSDir: s.cfg.TLSDir, Redis: s.redis != "", Members: !s.cfg.NoMembers,
		Nftables: s.support.Nftables, Netem: s.support.Netem, Why: s.support.Why, PID: os.Getpid()}
}

var memberName = regexp.MustCompile(`^[a-z][a-z0-9-]{0,30}$`)

// Handler is the agent's API (without TLS: Serve adds it).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/info", func(w http.ResponseWriter, r *http.Request) { reply(w, http.StatusOK, s.Info()) })
	mux.HandleFunc("GET /v1/members", func(w http.ResponseWriter, r *http.Request) { reply(w, http.StatusOK, s.states()) })
	mux.HandleFunc("POST /v1/members/{name}/{action}", s.handleAction)
	mux.HandleFunc("GET /v1/members/{name}/wait", s.handleWait)
	mux.HandleFunc("GET /v1/members/{name}/log", s.handleLog)
	mux.HandleFunc("PUT /v1/rules", s.handleRules)
	return http.MaxBytesHandler(mux, 1<<20)
}

func reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func fail(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	switch {
	case errors.Is(err, ErrUnknownMember):
		status = http.StatusNotFound
	case errors.Is(err, ErrNotRunning):
		status = http.StatusConflict
	case errors.Is(err, ErrRefused):
		status = http.StatusBadRequest
	case errors.Is(err, ErrExitedEarly):
		status = http.StatusGone
	case errors.Is(err, ErrNotReady):
		status = http.StatusServiceUnavailable
	}
	reply(w, status, errorReply{Error: err.Error()})
}

func (s *Server) handleAction(w http.ResponseWriter, r *http.Request) {
	name, action := r.PathValue("name"), r.PathValue("action")
	if !memberName.MatchString(name) {
		fail(w, fmt.Errorf("%w: member name %q (lower-case letters, digits and dashes)", ErrRefused, name))
		return
	}
	if s.cfg.NoMembers {
		fail(w, fmt.Errorf("%w: this agent runs no members (--no-members): its host's processes are managed elsewhere (Kubernetes, systemd)", ErrRefused))
		return
	}
	if action == "start" {
		var req StartRequest
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			fail(w, fmt.Errorf("%w: start request: %v", ErrRefused, err))
			return
		}
		pid, err := s.start(r.Context(), name, req)
		if err != nil {
			fail(w, err)
			return
		}
		reply(w, http.StatusOK, StartReply{PID: pid})
		return
	}
	m, err := s.member(name)
	if err != nil {
		fail(w, err)
		return
	}
	switch action {
	case "kill":
		err = s.kill(m)
	case "stop":
		s.stop(m)
	case "pause":
		err = s.signal(m, "running", "paused", syscall.SIGSTOP)
	case "resume":
		err = s.signal(m, "paused", "running", syscall.SIGCONT)
	case "wipe":
		err = s.wipe(m)
	default:
		err = fmt.Errorf("%w: unknown action %q (start, kill, stop, pause, resume, wipe)", ErrRefused, action)
	}
	if err != nil {
		fail(w, err)
		return
	}
	reply(w, http.StatusOK, s.stateOf(m))
}

func (s *Server) member(name string) (*member, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.members[name]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownMember, name)
	}
	return m, nil
}

// start launches a member, or is a no-op returning the live pid when it
// already runs.
func (s *Server) start(ctx context.Context, name string, req StartRequest) (int, error) {
	var path string
	switch req.Program {
	case ProgramMpim:
		path = s.self
	case ProgramRedis:
		if s.redis == "" {
			return 0, fmt.Errorf("%w: no redis-server on this host's PATH (install it, or let the lab run the embedded Redis)", ErrRefused)
		}
		path = s.redis
	default:
		return 0, fmt.Errorf("%w: program %q: an agent runs only %q and %q", ErrRefused, req.Program, ProgramMpim, ProgramRedis)
	}
	for _, e := range req.Env {
		if !strings.HasPrefix(e, "MPIM_") {
			return 0, fmt.Errorf("%w: environment %q: only MPIM_ variables", ErrRefused, strings.SplitN(e, "=", 2)[0])
		}
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return 0, fmt.Errorf("%w: the agent is stopping", ErrRefused)
	}
	m, ok := s.members[name]
	if !ok {
		m = &member{name: name, log: filepath.Join(s.cfg.Data, "logs", name+".log"), state: "exited"}
		s.members[name] = m
	}
	s.mu.Unlock()
	m.op.Lock()
	defer m.op.Unlock()
	s.mu.Lock()
	if p := m.proc; p != nil {
		s.mu.Unlock()
		return p.pid, nil
	}
	s.mu.Unlock()

	dir := filepath.Join(s.cfg.Data, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, fmt.Errorf("agent: %w", err)
	}
	args := req.Args
	if req.Program == ProgramRedis {
		// The password goes into a file of the member's directory, not
		// onto the command line, as the one-machine lab does.
		for _, e := range req.Env {
			if pw, ok := strings.CutPrefix(e, "MPIM_REDIS_PASSWORD="); ok && pw != "" {
				conf := filepath.Join(dir, "auth.conf")
				if err := os.WriteFile(conf, []byte("requirepass "+pw+"\n"), 0o600); err != nil {
					return 0, fmt.Errorf("agent: %w", err)
				}
				args = append([]string{conf}, args...)
			}
		}
	}
	logFile, err := os.OpenFile(m.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return 0, fmt.Errorf("agent: open log of %s: %w", name, err)
	}
	fmt.Fprintf(logFile, "=== agent: %s starting %s %s\n", time.Now().Format(time.RFC3339Nano), path, strings.Join(args, " "))
	cmd := exec.Command(path, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), req.Env...)
	// Own process group (signals reach the member's children); killed if
	// the agent dies, as a systemd unit's children are.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Stderr = logFile
	r, wr, err := os.Pipe()
	if err != nil {
		logFile.Close()
		return 0, err
	}
	cmd.Stdout = wr
	if err := cmd.Start(); err != nil {
		wr.Close()
		r.Close()
		logFile.Close()
		return 0, fmt.Errorf("agent: start %s: %w", name, err)
	}
	wr.Close()
	p := &process{pid: cmd.Process.Pid, done: make(chan struct{}), ready: make(chan struct{})}
	s.mu.Lock()
	m.proc, m.state, m.status, m.since = p, "starting", "", time.Now()
	s.mu.Unlock()
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		err := cmd.Wait()
		status := "exit status 0"
		if err != nil {
			status = err.Error()
		}
		s.mu.Lock()
		p.status = status
		if m.proc == p {
			m.proc, m.status, m.since = nil, status, time.Now()
			if m.state != "killed" {
				m.state = "exited"
			}
		}
		s.mu.Unlock()
		close(p.done)
	}()
	go func() {
		defer s.wg.Done()
		defer logFile.Close()
		defer r.Close()
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 0, 4096), 1<<20)
		sent := req.ReadyPrefix == ""
		for sc.Scan() {
			fmt.Fprintf(logFile, "[stdout] %s\n", sc.Text())
			if !sent && strings.HasPrefix(sc.Text(), req.ReadyPrefix) {
				close(p.ready)
				sent = true
			}
		}
	}()
	if err := waitReady(ctx, req, p); err != nil {
		_ = syscall.Kill(-p.pid, syscall.SIGKILL)
		<-p.done
		return 0, fmt.Errorf("%w: %s %w (log: %s)", ErrNotReady, name, err, redisproc.Tail(m.log, 8))
	}
	s.mu.Lock()
	if m.proc == p {
		m.state = "running"
	}
	s.mu.Unlock()
	s.log.Info("member started", "member", name, "pid", p.pid)
	return p.pid, nil
}

// waitReady waits for the ready line and the health URL (or the PING).
func waitReady(parent context.Context, req StartRequest, p *process) error {
	timeout := 20 * time.Second
	if req.ReadyTimeoutMS > 0 {
		timeout = time.Duration(req.ReadyTimeoutMS) * time.Millisecond
	}
	ctx, cancel := context.WithTimeout(parent, timeout)
	defer cancel()
	var ready <-chan struct{}
	if req.ReadyPrefix != "" {
		ready = p.ready
	}
	err := procstate.WaitReady(ctx, ready, p.done, func(ctx context.Context) bool {
		switch {
		case req.PingAddr != "":
			return redisproc.Ping(ctx, req.PingAddr) == nil
		case req.HealthURL != "":
			return procstate.Healthy(ctx, req.HealthURL)
		}
		return true
	})
	switch {
	case errors.Is(err, procstate.ErrExited):
		return fmt.Errorf("%w (%s)", ErrExitedEarly, p.status)
	case err != nil:
		return fmt.Errorf("not ready after %v", timeout)
	}
	return nil
}

// live returns m's process, or ErrNotRunning.
func (s *Server) live(m *member) (*process, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m.proc == nil {
		return nil, fmt.Errorf("%w: %s is %s", ErrNotRunning, m.name, m.state)
	}
	return m.proc, nil
}

// kill SIGKILLs m's process group and waits until it is reaped; a member
// without a process is left alone.
func (s *Server) kill(m *member) error {
	m.op.Lock()
	defer m.op.Unlock()
	p, err := s.live(m)
	if err != nil {
		return nil
	}
	s.mu.Lock()
	m.state = "killed"
	s.mu.Unlock()
	_ = syscall.Kill(-p.pid, syscall.SIGKILL)
	<-p.done
	return nil
}

// stop ends m gracefully: SIGTERM and SIGCONT, SIGKILL after StopGrace.
func (s *Server) stop(m *member) {
	m.op.Lock()
	defer m.op.Unlock()
	p, err := s.live(m)
	if err != nil {
		return
	}
	s.mu.Lock()
	m.state = "killed"
	s.mu.Unlock()
	_ = syscall.Kill(-p.pid, syscall.SIGTERM)
	_ = syscall.Kill(-p.pid, syscall.SIGCONT)
	select {
	case <-p.done:
	case <-time.After(s.cfg.StopGrace):
		_ = syscall.Kill(-p.pid, syscall.SIGKILL)
		<-p.done
	}
}

// wipe empties a stopped member's directory, for a fresh start (the lab's
// mode switch).
func (s *Server) wipe(m *member) error {
	m.op.Lock()
	defer m.op.Unlock()
	if _, err := s.live(m); err == nil {
		return fmt.Errorf("%w: %s is running; stop it before wiping its data", ErrRefused, m.name)
	}
	dir := filepath.Join(s.cfg.Data, m.name)
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("agent: wipe %s: %w", m.name, err)
	}
	return os.MkdirAll(dir, 0o755)
}

// signal moves m from state from to state to with sig (a member already
// in state to is left alone).
func (s *Server) signal(m *member, from, to string, sig syscall.Signal) error {
	m.op.Lock()
	defer m.op.Unlock()
	p, err := s.live(m)
	if err != nil {
		return err
	}
	s.mu.Lock()
	state := m.state
	s.mu.Unlock()
	if state == to {
		return nil
	}
	if state != from {
		return fmt.Errorf("%w: %s is %s", ErrNotRunning, m.name, state)
	}
	if err := syscall.Kill(-p.pid, sig); err != nil {
		return fmt.Errorf("agent: signal %s: %w", m.name, err)
	}
	procstate.WaitStopped(p.pid, sig == syscall.SIGSTOP)
	s.mu.Lock()
	m.state, m.since = to, time.Now()
	s.mu.Unlock()
	return nil
}

func (s *Server) stateOf(m *member) State {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := State{Name: m.name, State: m.state, Status: m.status, Log: m.log, Since: m.since}
	if m.proc != nil {
		st.PID = m.proc.pid
	}
	return st
}

func (s *Server) states() []State {
	s.mu.Lock()
	ms := make([]*member, 0, len(s.members))
	for _, m := range s.members {
		ms = append(ms, m)
	}
	s.mu.Unlock()
	out := make([]State, 0, len(ms))
	for _, m := range ms {
		out = append(out, s.stateOf(m))
	}
	return out
}

// handleWait answers once process pid of the member has ended, or after
// ten seconds with Exited false (the caller asks again: a long poll that
// also tells the caller the agent is alive).
func (s *Server) handleWait(w http.ResponseWriter, r *http.Request) {
	m, err := s.member(r.PathValue("name"))
	if err != nil {
		fail(w, err)
		return
	}
	pid, _ := strconv.Atoi(r.URL.Query().Get("pid"))
	s.mu.Lock()
	p := m.proc
	status := m.status
	s.mu.Unlock()
	if p == nil || p.pid != pid {
		reply(w, http.StatusOK, WaitReply{Exited: true, Status: status})
		return
	}
	select {
	case <-p.done:
		reply(w, http.StatusOK, WaitReply{Exited: true, Status: p.status})
	case <-time.After(10 * time.Second):
		reply(w, http.StatusOK, WaitReply{})
	case <-r.Context().Done():
	}
}

func (s *Server) handleLog(w http.ResponseWriter, r *http.Request) {
	m, err := s.member(r.PathValue("name"))
	if err != nil {
		fail(w, err)
		return
	}
	n, _ := strconv.Atoi(r.URL.Query().Get("lines"))
	if n <= 0 || n > 10000 {
		n = 200
	}
	f, err := os.Open(m.log)
	if err != nil {
		fail(w, err)
		return
	}
	defer f.Close()
	// The last 1 MiB at most, then the last n lines of it.
	if st, err := f.Stat(); err == nil && st.Size() > 1<<20 {
		_, _ = f.Seek(st.Size()-1<<20, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, strings.Join(lines, "\n")+"\n")
}

func (s *Server) handleRules(w http.ResponseWriter, r *http.Request) {
	var req RulesRequest
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		fail(w, fmt.Errorf("%w: rules: %v", ErrRefused, err))
		return
	}
	for _, rule := range req.Rules {
		if err := rule.Validate(); err != nil {
			fail(w, fmt.Errorf("%w: %v", ErrRefused, err))
			return
		}
	}
	if !s.support.Nftables {
		fail(w, fmt.Errorf("%w: this host cannot load nftables rules (%s): run the agent as root with nftables installed", ErrRefused, s.support.Why["nftables"]))
		return
	}
	if err := s.nft.load(req.Rules); err != nil {
		fail(w, err)
		return
	}
	s.log.Info("rules loaded", "rules", len(req.Rules))
	reply(w, http.StatusOK, req)
}
