package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// recorder collects what a Session hands to its callbacks.
type recorder struct {
	mu     sync.Mutex
	msgs   []Message
	pushes []Push
	states []string
	wake   chan struct{} // signalled on every callback
}

func newRecorder() *recorder { return &recorder{wake: make(chan struct{}, 1)} }

func (r *recorder) options(fc *fakeCluster, t *testing.T) SessionOptions {
	return SessionOptions{
		Gateways:   fc.urls(),
		User:       "alice",
		Password:   testPassword,
		Register:   true,
		OnMessage:  func(m Message) { r.add(func() { r.msgs = append(r.msgs, m) }) },
		OnPush:     func(p Push) { r.add(func() { r.pushes = append(r.pushes, p) }) },
		OnState:    func(s string) { r.add(func() { r.states = append(r.states, s) }) },
		Logger:     slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
		MinBackoff: 5 * time.Millisecond,
		MaxBackoff: 50 * time.Millisecond,
	}
}

func (r *recorder) add(f func()) {
	r.mu.Lock()
	f()
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// waitFor waits until cond holds on the recorder, or fails the test.
func (r *recorder) waitFor(t *testing.T, what string, cond func(r *recorder) bool) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		r.mu.Lock()
		ok := cond(r)
		r.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-r.wake:
		case <-time.After(10 * time.Millisecond):
		case <-deadline:
			r.mu.Lock()
			defer r.mu.Unlock()
			t.Fatalf("timed out waiting for %s; states %q, %d messages", what, r.states, len(r.msgs))
		}
	}
}

// checkExactlyOnce fails unless the recorder got exactly the messages want,
// each once.
func (r *recorder) checkExactlyOnce(t *testing.T, want []Message) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	count := map[string]int{}
	for _, m := range r.msgs {
		count[m.ID]++
	}
	for _, m := range want {
		if count[m.ID] != 1 {
			t.Errorf("message %s (%q) delivered %d times, want once", m.ID, m.Text, count[m.ID])
		}
		delete(count, m.ID)
	}
	for id, n := range count {
		t.Errorf("unexpected message %s delivered %d times", id, n)
	}
}

func (r *recorder) hasState(s string) bool { return slices.Contains(r.states, s) }

// testWriter routes session logs through t.Log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func openSession(t *testing.T, opt SessionOptions) *Session {
	t.Helper()
	s, err := OpenSession(testCtx(t), opt)
	if err != nil {
		t.Fatalf("open session: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// TestSessionFailsOverResumesAndDeliversOnce walks the resilient path: a
// gateway dies, the next one refuses for a while, a message is sent while
// the user is offline, and the catch-up sync both replays messages already
// pushed and races a push. Every message must reach OnMessage exactly once.
func TestSessionFailsOverResumesAndDeliversOnce(t *testing.T) {
	fc := newFakeCluster(t, 2)
	g1, g2 := fc.gateways[0], fc.gateways[1]
	fc.addUser("bob", testPassword)
	rec := newRecorder()
	s := openSession(t, rec.options(fc, t))
	if s.Gateway() != g1.url || s.Auth().Token == "" {
		t.Fatalf("session on %q with auth %+v; want %s and a token", s.Gateway(), s.Auth(), g1.url)
	}
	var want []Message
	for _, text := range []string{"one", "two", "three"} {
		want = append(want, fc.send("bob", "alice", text))
	}
	rec.waitFor(t, "three pushed messages", func(r *recorder) bool { return len(r.msgs) == 3 })

	g2.refuse.Store(true)
	g1.kill()
	rec.waitFor(t, "the session to notice", func(r *recorder) bool { return r.hasState("reconnecting") })
	want = append(want, fc.send("bob", "alice", "sent while alice is offline"))
	raced := make(chan Message, 1)
	fc.set(func(c *fakeCluster) {
		c.syncIgnoresCursor = true // replays one..three: dedup must drop them
		c.syncHook = func() {
			// A push that races the catch-up: it is in the sync reply too.
			fc.set(func(c *fakeCluster) { c.syncHook = nil })
			raced <- fc.send("bob", "alice", "during catch-up")
		}
	})
	g2.refuse.Store(false)
	want = append(want, <-raced)
	rec.waitFor(t, "all five messages", func(r *recorder) bool { return len(r.msgs) >= 5 })
	time.Sleep(50 * time.Millisecond) // room for a duplicate to show up
	rec.checkExactlyOnce(t, want)

	if !slices.Contains(rec.states, "connected "+g2.url) || s.Gateway() != g2.url {
		t.Errorf("states %q, gateway %q: want a connection to %s", rec.states, s.Gateway(), g2.url)
	}
	logins, resumes, syncs := fc.counters()
	if logins != 1 || resumes != 1 {
		t.Errorf("%d logins and %d resumes; the reconnection must resume with the token", logins, resumes)
	}
	if len(syncs) != 2 || syncs[0] != "" || syncs[1] == "" {
		t.Errorf("sync cursors %q: want a first sync from the start, then one from its cursor", syncs)
	}
}

func TestSessionLogsInAgainWhenTokenIsRefused(t *testing.T) {
	fc := newFakeCluster(t, 1)
	rec := newRecorder()
	s := openSession(t, rec.options(fc, t))
	fc.set(func(c *fakeCluster) { clear(c.tokens) })
	fc.gateways[0].drop()
	rec.waitFor(t, "a second connection", func(r *recorder) bool {
		n := 0
		for _, st := range r.states {
			if strings.HasPrefix(st, "connected ") {
				n++
			}
		}
		return n == 2
	})
	if logins, _, _ := fc.counters(); logins != 2 {
		t.Errorf("%d logins, want 2: a refused token falls back to the password", logins)
	}
	if _, err := s.Conn(testCtx(t)); err != nil {
		t.Fatal(err)
	}
}

func TestSessionWrongPasswordFailsFast(t *testing.T) {
	fc := newFakeCluster(t, 2)
	fc.addUser("alice", "another-password")
	opt := newRecorder().options(fc, t)
	opt.Register = false
	start := time.Now()
	_, err := OpenSession(testCtx(t), opt)
	if ErrorCode(err) != CodeUnauthorized {
		t.Fatalf("open with a wrong password: %v, want an unauthorized error", err)
	}
	if time.Since(start) > time.Second {
		t.Errorf("took %v to give up on a wrong password; it cannot get better by retrying", time.Since(start))
	}
}

func TestSessionOpenGivesUpWithContext(t *testing.T) {
	fc := newFakeCluster(t, 2)
	for _, g := range fc.gateways {
		g.refuse.Store(true)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := OpenSession(ctx, newRecorder().options(fc, t))
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "dial ws://") {
		t.Fatalf("open with every gateway refusing: %v; want the deadline and the last failure", err)
	}
}

func TestSessionStopsWhenKicked(t *testing.T) {
	fc := newFakeCluster(t, 1)
	rec := newRecorder()
	s := openSession(t, rec.options(fc, t))
	fc.push("alice", map[string]any{"push": PushKicked, "reason": "device_replaced"})
	select {
	case <-s.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("session still running after a kicked push")
	}
	if err := s.Err(); !errors.Is(err, ErrKicked) || !strings.Contains(err.Error(), "device_replaced") {
		t.Errorf("Err() = %v, want ErrKicked with the reason", err)
	}
	if _, err := s.Conn(testCtx(t)); !errors.Is(err, ErrKicked) {
		t.Errorf("Conn after kick: %v, want ErrKicked", err)
	}
	rec.waitFor(t, "the kicked push and state", func(r *recorder) bool {
		return len(r.pushes) == 1 && r.hasState("kicked: "+s.Err().Error())
	})
}

func TestSessionSendRetriesWithSameCmid(t *testing.T) {
	fc := newFakeCluster(t, 1)
	fc.addUser("bob", testPassword)
	rec := newRecorder()
	s := openSession(t, rec.options(fc, t))
	fc.set(func(c *fakeCluster) { c.sendTimeouts = 2 })
	var events []string
	r, err := s.Send(testCtx(t), SendArgs{To: "bob", Text: "are you there?", Cmid: "c1", OnEvent: func(e SendEvent) {
		events = append(events, fmt.Sprintf("%s %d %s %s retry=%v", e.Kind, e.Attempt, e.Cmid, e.Code, e.Retry > 0))
	}})
	if err != nil {
		t.Fatalf("send through two timeouts: %v", err)
	}
	// Every change of the send's fate is told, with the one cmid.
	if want := "[attempt 1 c1  retry=false unknown 1 c1 timeout retry=true attempt 2 c1  retry=false unknown 2 c1 timeout retry=true attempt 3 c1  retry=false accepted 3 c1  retry=false]"; fmt.Sprint(events) != want {
		t.Errorf("send events %v\nwant %s", events, want)
	}
	if !r.Dup || r.Seq != 1 {
		t.Errorf("send result %+v: want the first result (seq 1) again, marked dup", r)
	}
	fc.set(func(c *fakeCluster) {
		if len(c.log) != 1 || len(c.sent) != 1 {
			t.Errorf("the gateway stored %d messages under %d cmids; retries must reuse one cmid", len(c.log), len(c.sent))
		}
	})
	// Messages a session sent are not delivered back to it.
	bob := dial(t, fc.gateways[0].url, Options{})
	if _, err := bob.Login(testCtx(t), "bob", testPassword, ""); err != nil {
		t.Fatal(err)
	}
	reply, err := bob.Send(testCtx(t), SendArgs{To: "alice", Text: "yes"})
	if err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, "bob's reply", func(r *recorder) bool { return len(r.msgs) >= 1 })
	rec.checkExactlyOnce(t, []Message{{ID: reply.ID}})

	fc.set(func(c *fakeCluster) { c.sendTimeouts = 1000 })
	ctx, cancel := context.WithTimeout(testCtx(t), 100*time.Millisecond)
	defer cancel()
	if _, err := s.Send(ctx, SendArgs{To: "bob", Text: "hello?"}); ErrorCode(err) != CodeTimeout {
		t.Errorf("send that never confirms: %v, want the last timeout error", err)
	}
	// Once: one attempt, its unknown outcome final (no retry announced).
	var once []SendEvent
	_, err = s.Send(testCtx(t), SendArgs{To: "bob", Text: "once", Once: true, OnEvent: func(e SendEvent) { once = append(once, e) }})
	if ErrorCode(err) != CodeTimeout || len(once) != 2 || once[1].Kind != SendUnknown || once[1].Retry != 0 {
		t.Errorf("a send with Once: %v, events %+v; want one attempt, unknown, final", err, once)
	}
}

// TestSanitize: what another user typed cannot move the cursor, recolour
// the terminal or reorder what is shown.
func TestSanitize(t *testing.T) {
	for in, want := range map[string]string{
		"hello, 世界":          "hello, 世界",
		"\x1b[2J\x1b[31mred": "\ufffd[2J\ufffd[31mred",
		"bell\a and tab\t":   "bell\ufffd and tab\ufffd",
		"\u202eevil.exe":     "\ufffdevil.exe",
		"c1\u009b31m":        "c1\ufffd31m",
	} {
		if got := Sanitize(in); got != want {
			t.Errorf("Sanitize(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestSessionCatchesUpAfterPushOverflow fills a tiny push buffer behind a
// blocked OnMessage: the dropped pushes must come back through sync.
func TestSessionCatchesUpAfterPushOverflow(t *testing.T) {
	fc := newFakeCluster(t, 1)
	fc.addUser("bob", testPassword)
	rec := newRecorder()
	opt := rec.options(fc, t)
	opt.Dial.PushBuffer = 2
	release := make(chan struct{})
	var once sync.Once
	onMessage := opt.OnMessage
	opt.OnMessage = func(m Message) {
		once.Do(func() { <-release })
		onMessage(m)
	}
	openSession(t, opt)
	var want []Message
	for range 20 {
		want = append(want, fc.send("bob", "alice", "flood"))
	}
	close(release)
	rec.waitFor(t, "all 20 messages", func(r *recorder) bool { return len(r.msgs) >= 20 })
	time.Sleep(50 * time.Millisecond)
	rec.checkExactlyOnce(t, want)
}

// TestSessionRefetchesOnResync covers the AP `resync` push: the session
// re-reads the conversation and delivers what it had not seen.
func TestSessionRefetchesOnResync(t *testing.T) {
	fc := newFakeCluster(t, 1)
	fc.addUser("bob", testPassword)
	rec := newRecorder()
	openSession(t, rec.options(fc, t))
	first := fc.send("bob", "alice", "before the partition")
	rec.waitFor(t, "the first message", func(r *recorder) bool { return len(r.msgs) == 1 })
	healed := fc.insertSilently("bob", "alice", "from the other side")
	fc.push("alice", map[string]any{"push": PushResync, "conv": first.Conv, "from_seq": 1})
	rec.waitFor(t, "the refetched message", func(r *recorder) bool { return len(r.msgs) == 2 && len(r.pushes) == 1 })
	rec.checkExactlyOnce(t, []Message{first, healed})
}

func TestSessionCloseWakesWaiters(t *testing.T) {
	fc := newFakeCluster(t, 1)
	s := openSession(t, newRecorder().options(fc, t))
	fc.gateways[0].refuse.Store(true)
	fc.gateways[0].drop()
	waiting := make(chan error, 1)
	ctx := &watchedContext{Context: context.Background(), entered: make(chan struct{})}
	go func() {
		// Waits for a connection that will not come until Close.
		_, err := s.Send(ctx, SendArgs{To: "alice", Text: "x"})
		waiting <- err
	}()
	// Close only once Send waits (on its context, with no connection to
	// use): a Send begun after Close fails at once, which would prove
	// nothing about waking it.
	select {
	case <-ctx.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("Send never waited for a connection")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-waiting; !errors.Is(err, ErrClosed) {
		t.Errorf("send waiting during Close: %v, want ErrClosed", err)
	}
	if !errors.Is(s.Err(), ErrClosed) {
		t.Errorf("Err() after Close = %v, want ErrClosed", s.Err())
	}
}

// watchedContext tells when a goroutine first waits on it (asks for Done).
type watchedContext struct {
	context.Context
	once    sync.Once
	entered chan struct{}
}

func (c *watchedContext) Done() <-chan struct{} {
	c.once.Do(func() { close(c.entered) })
	return c.Context.Done()
}
