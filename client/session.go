package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"
)

// SessionOptions configures OpenSession.
type SessionOptions struct {
	// Gateways lists the gateway URLs (ws://HOST:PORT/ws). The session starts
	// with the first and moves to the next one after a failure.
	Gateways []string
	// User and Password are the account; Device names this client's device
	// ("" means the gateway's default).
	User, Password, Device string
	// Register makes the first connection register the account before
	// logging in; a `conflict` (the account exists) is not an error.
	Register bool
	// OnMessage receives every message of the user's conversations exactly
	// once (by message id), from pushes and from catch-up syncs, except the
	// ones sent with Session.Send (recognised by their cmid). It runs on the
	// session goroutine: while it runs, no other message is delivered and no
	// reconnection happens.
	OnMessage func(Message)
	// OnPush receives every push other than `message`, on the same goroutine.
	OnPush func(Push)
	// OnState receives changes of the session's state: "connected URL",
	// "unreachable URL: ERROR" (an attempt failed; the next gateway is
	// next), "disconnected: ERROR", "reconnecting", "kicked: REASON",
	// "failed: ERROR" (a permanent login failure) and "closed".
	OnState func(string)
	// Logger receives the session's logs; nil discards them.
	Logger *slog.Logger
	// Dial configures every connection.
	Dial Options
	// Ack makes the session send an `ack` (delivery receipt) for the highest
	// seq it delivered in each conversation, after each burst of messages.
	Ack bool
	// CallTimeout bounds each dial, login, resume, sync and ack the session
	// makes, and each attempt of Session.Send (default 10s).
	CallTimeout time.Duration
	// MinBackoff and MaxBackoff bound the wait between connection attempts,
	// which doubles after each failure (defaults 100ms and 5s).
	MinBackoff, MaxBackoff time.Duration
	// NoRetry makes Session.Send make one attempt: a refusal or an unknown
	// outcome is final (for experiments that want to see each one).
	NoRetry bool
}

func (o SessionOptions) withDefaults() (SessionOptions, error) {
	if len(o.Gateways) == 0 {
		return o, errors.New("client: no gateway URL given")
	}
	if o.User == "" || o.Password == "" {
		return o, errors.New("client: a session needs a user name and a password")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.CallTimeout <= 0 {
		o.CallTimeout = 10 * time.Second
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 100 * time.Millisecond
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(5*time.Second, o.MinBackoff)
	}
	return o, nil
}

// Session is a logged-in user that survives broken connections. Its
// goroutine owns the connection: on a break it reconnects (to the next
// gateway after a failure, with bounded backoff), resumes with the token,
// and catches up with sync from its cursor. Pushes that arrive during the
// catch-up are held and delivered after it, and every message is delivered
// once: the session remembers every message id it delivered (memory grows
// with the number of messages, which is fine for a client and a test run).
type Session struct {
	opt    SessionOptions
	log    *slog.Logger
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	conn    *Conn         // the authenticated connection, nil while reconnecting
	url     string        // conn's gateway
	changed chan struct{} // closed and replaced whenever conn or err changes
	auth    LoginResult
	err     error
	seen    map[string]struct{} // ids of delivered messages
	own     map[string]struct{} // cmids of messages in or after Session.Send

	// Owned by whichever goroutine connects: OpenSession's, then run's.
	gw         int
	registered bool
	cursor     string
	after      map[string]uint64
	ackDue     map[string]uint64
}

// OpenSession connects to the first gateway that accepts the user, trying
// the list in turn until ctx ends, and starts the session goroutine. Wrong
// credentials fail at once. Close stops the session.
func OpenSession(ctx context.Context, opt SessionOptions) (*Session, error) {
	opt, err := opt.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Session{
		opt:     opt,
		log:     opt.Logger.With("user", opt.User),
		done:    make(chan struct{}),
		changed: make(chan struct{}),
		seen:    make(map[string]struct{}),
		own:     make(map[string]struct{}),
		after:   make(map[string]uint64),
		ackDue:  make(map[string]uint64),
	}
	conn, err := s.connect(ctx, 0)
	if err != nil {
		return nil, err
	}
	s.setConn(conn)
	runCtx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go s.run(runCtx, conn)
	return s, nil
}

// Conn waits until the session has an authenticated connection and returns
// it. Use it for any op; a call that fails on the transport may be retried
// on the next Conn. It fails when ctx ends or the session has stopped.
func (s *Session) Conn(ctx context.Context) (*Conn, error) {
	for {
		s.mu.Lock()
		c, changed, err := s.conn, s.changed, s.err
		s.mu.Unlock()
		if err != nil {
			return nil, err
		}
		if c != nil {
			select {
			case <-c.Done():
			default:
				return c, nil
			}
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, fmt.Errorf("client: no connection to a gateway: %w", ctx.Err())
		}
	}
}

// Send sends a message and retries it with the same cmid, on whatever
// connection the session has, while the outcome is unknown or the refusal
// temporary (codes timeout, rate_limited, unavailable, or a transport
// failure), until ctx ends. OnMessage does not see the sent message, even
// when a push or sync brings it before the reply; if Send fails, it may
// still arrive there later (the outcome was unknown and it was applied).
func (s *Session) Send(ctx context.Context, a SendArgs) (SendResult, error) {
	if a.Cmid == "" {
		a.Cmid = NewCmid()
	}
	s.mu.Lock()
	s.own[a.Cmid] = struct{}{}
	s.mu.Unlock()
	r, err := s.send(ctx, a)
	if err != nil {
		s.mu.Lock()
		delete(s.own, a.Cmid)
		s.mu.Unlock()
	}
	return r, err
}

func (s *Session) send(ctx context.Context, a SendArgs) (SendResult, error) {
	tell := func(e SendEvent) {
		if a.OnEvent != nil {
			e.Cmid = a.Cmid
			a.OnEvent(e)
		}
	}
	var last error
	for attempt := 1; ; attempt++ {
		c, err := s.Conn(ctx)
		if err != nil {
			return SendResult{}, errors.Join(last, err)
		}
		tell(SendEvent{Kind: SendAttempt, Attempt: attempt})
		actx, cancel := context.WithTimeout(ctx, s.opt.CallTimeout)
		r, err := c.Send(actx, a)
		cancel()
		if err == nil {
			s.mu.Lock()
			s.seen[r.ID] = struct{}{}
			s.mu.Unlock()
			tell(SendEvent{Kind: SendAccepted, Attempt: attempt, Result: r})
			return r, nil
		}
		code := ErrorCode(err)
		kind := SendRefused
		if code == "" || code == CodeTimeout {
			kind = SendUnknown
		}
		retryable := code == "" || code == CodeTimeout || code == CodeRateLimited || code == CodeUnavailable
		wait := s.backoff(attempt)
		if ctx.Err() != nil || !retryable || s.opt.NoRetry || a.Once || (a.Retry != nil && !a.Retry()) {
			wait = 0
		}
		tell(SendEvent{Kind: kind, Attempt: attempt, Code: code, Err: err, Retry: wait})
		if wait == 0 {
			return SendResult{}, errors.Join(last, err)
		}
		last = err
		s.log.Debug("send not confirmed; retrying", "cmid", a.Cmid, "attempt", attempt, "err", err)
		if !sleep(ctx, wait) {
			return SendResult{}, errors.Join(last, ctx.Err())
		}
	}
}

// Auth returns the reply to the latest login or resume.
func (s *Session) Auth() LoginResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.auth
}

// Gateway returns the URL of the current connection, "" while reconnecting.
func (s *Session) Gateway() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil {
		return ""
	}
	return s.url
}

// Done returns a channel closed when the session has stopped.
func (s *Session) Done() <-chan struct{} { return s.done }

// Err returns why the session stopped: ErrClosed after Close, an error
// wrapping ErrKicked, or the permanent failure of a login. It is nil while
// the session runs.
func (s *Session) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Close stops the session goroutine and closes its connection.
func (s *Session) Close() error {
	s.cancel()
	<-s.done
	return nil
}

// run is the session goroutine: serve a connection, then find another.
func (s *Session) run(ctx context.Context, conn *Conn) {
	defer close(s.done)
	for {
		start := time.Now()
		err := s.serve(ctx, conn)
		_ = conn.Close()
		s.setConn(nil)
		switch {
		case ctx.Err() != nil:
			s.stop(ErrClosed, "closed")
			return
		case errors.Is(err, ErrKicked):
			s.stop(err, "kicked: "+err.Error())
			return
		}
		s.log.Warn("connection lost", "err", err)
		s.state("disconnected: " + err.Error())
		s.state("reconnecting")
		// A connection that broke quickly waits before the next attempt, so a
		// gateway that accepts and drops cannot make the session spin.
		failures := 0
		if time.Since(start) < s.opt.MaxBackoff {
			failures = 1
		}
		conn, err = s.connect(ctx, failures)
		if err != nil {
			if ctx.Err() != nil {
				s.stop(ErrClosed, "closed")
			} else {
				s.stop(err, "failed: "+err.Error())
			}
			return
		}
		s.setConn(conn)
	}
}

// connect dials the gateways in turn, starting with the current one, until
// one authenticates the session. It waits a backoff before each attempt
// once failures > 0, and moves to the next gateway after each failure.
func (s *Session) connect(ctx context.Context, failures int) (*Conn, error) {
	var last error
	for {
		if failures > 0 && !sleep(ctx, s.backoff(failures)) {
			return nil, fmt.Errorf("client: no gateway accepted the session: %w", errors.Join(ctx.Err(), last))
		}
		url := s.opt.Gateways[s.gw]
		conn, err := s.dial(ctx, url)
		if err == nil {
			s.state("connected " + url)
			return conn, nil
		}
		if permanent(err) {
			return nil, fmt.Errorf("client: log in as %s at %s: %w", s.opt.User, url, err)
		}
		s.state(fmt.Sprintf("unreachable %s: %v", url, err))
		last = err
		s.gw = (s.gw + 1) % len(s.opt.Gateways)
		failures++
	}
}

// permanent reports a login or register refusal that retrying cannot cure.
func permanent(err error) bool {
	switch ErrorCode(err) {
	case CodeUnauthorized, CodeBadRequest, CodeForbidden, CodeNotFound, CodeConflict, CodeTooLarge:
		return true
	}
	return false
}

// dial opens a connection to url and authenticates it: resume with the
// token when there is one, else (register and) log in.
func (s *Session) dial(ctx context.Context, url string) (*Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opt.CallTimeout)
	defer cancel()
	conn, err := Dial(ctx, url, s.opt.Dial)
	if err != nil {
		return nil, err
	}
	auth, err := s.authenticate(ctx, conn)
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	s.mu.Lock()
	if auth.Token == "" {
		auth.Token = s.auth.Token
	}
	s.auth, s.url = auth, url
	s.mu.Unlock()
	return conn, nil
}

func (s *Session) authenticate(ctx context.Context, conn *Conn) (LoginResult, error) {
	if token := s.Auth().Token; token != "" {
		auth, err := conn.Resume(ctx, token, s.opt.Device)
		if ErrorCode(err) != CodeUnauthorized {
			return auth, err
		}
		s.log.Info("token refused; logging in again", "err", err)
	}
	if s.opt.Register && !s.registered {
		if _, err := conn.Register(ctx, s.opt.User, s.opt.Password); err != nil && ErrorCode(err) != CodeConflict {
			return LoginResult{}, err
		}
		s.registered = true
	}
	return conn.Login(ctx, s.opt.User, s.opt.Password, s.opt.Device)
}

func (s *Session) setConn(c *Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.conn = c
	close(s.changed)
	s.changed = make(chan struct{})
}

// stop records why the session ended and wakes Conn waiters.
func (s *Session) stop(err error, state string) {
	s.mu.Lock()
	if s.err == nil {
		s.err = err
	}
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
	s.state(state)
}

func (s *Session) state(st string) {
	s.log.Info("session state", "state", st)
	if s.opt.OnState != nil {
		s.opt.OnState(st)
	}
}

// backoff returns the wait before attempt number failures+1: MinBackoff
// doubled per failure, capped at MaxBackoff, with jitter in [d/2, d].
func (s *Session) backoff(failures int) time.Duration {
	d := s.opt.MaxBackoff
	if failures < 30 {
		d = min(d, s.opt.MinBackoff<<(failures-1))
	}
	return d/2 + rand.N(d/2+1)
}

// sleep waits d or until ctx ends, and reports whether it waited d.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
