package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"
)

// TestMain fails the package if any goroutine outlives the tests: every
// Conn and Session must stop what it started.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const testPassword = "secret-password"

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func dial(t *testing.T, url string, opt Options) *Conn {
	t.Helper()
	c, err := Dial(testCtx(t), url, opt)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// loggedIn returns a connection logged in as user, creating the account.
func loggedIn(t *testing.T, fc *fakeCluster, user string, opt Options) *Conn {
	t.Helper()
	fc.addUser(user, testPassword)
	c := dial(t, fc.gateways[0].url, opt)
	if _, err := c.Login(testCtx(t), user, testPassword, ""); err != nil {
		t.Fatalf("login %s: %v", user, err)
	}
	return c
}

func TestCallMatchesConcurrentRepliesByID(t *testing.T) {
	fc := newFakeCluster(t, 1)
	c := dial(t, fc.gateways[0].url, Options{})
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Later calls get shorter delays, so replies arrive out of order.
			text := fmt.Sprintf("call-%d", i)
			r, err := c.Call(testCtx(t), "test_slow", map[string]any{"delay_ms": 40 - i, "text": text})
			if err != nil {
				errs <- err
			} else if got := r.String("echo"); got != text {
				errs <- fmt.Errorf("call %q got the reply for %q", text, got)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestCallErrorReplyIsError(t *testing.T) {
	fc := newFakeCluster(t, 1)
	fc.addUser("alice", testPassword)
	c := dial(t, fc.gateways[0].url, Options{})
	ctx := testCtx(t)
	tests := []struct {
		name string
		call func() error
		code string
	}{
		{"unknown op", func() error { _, err := c.Call(ctx, "no_such_op", nil); return err }, CodeBadRequest},
		{"bad password", func() error { _, err := c.Login(ctx, "alice", "wrong-password", ""); return err }, CodeUnauthorized},
		{"name taken", func() error { _, err := c.Register(ctx, "alice", testPassword); return err }, CodeConflict},
		{"not logged in", func() error { _, err := c.Send(ctx, SendArgs{To: "alice", Text: "hi"}); return err }, CodeUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			var e *Error
			if !errors.As(err, &e) || e.Code != tt.code {
				t.Fatalf("error %v: want an *Error with code %s", err, tt.code)
			}
			if e.Message == "" {
				t.Errorf("error reply %v has no message", e)
			}
		})
	}
	if err := c.Ping(ctx); err != nil {
		t.Fatalf("connection unusable after error replies: %v", err)
	}
}

func TestTypedHelpersRoundTrip(t *testing.T) {
	fc := newFakeCluster(t, 1)
	ctx := testCtx(t)
	c := dial(t, fc.gateways[0].url, Options{})
	uid, err := c.Register(ctx, "alice", testPassword)
	if err != nil || uid == 0 {
		t.Fatalf("register: uid %d, %v", uid, err)
	}
	login, err := c.Login(ctx, "alice", testPassword, "laptop")
	if err != nil || login.UID != uid || login.Token == "" || login.Mode != "cp" || login.Gateway != "g1" {
		t.Fatalf("login: %+v, %v", login, err)
	}
	fc.addUser("bob", testPassword)
	sent, err := c.Send(ctx, SendArgs{To: "bob", Text: "hello", Cmid: "c1"})
	if err != nil || sent.Conv != "dm:alice:bob" || sent.Seq != 1 || sent.ID == "" || sent.Dup {
		t.Fatalf("send: %+v, %v", sent, err)
	}
	again, err := c.Send(ctx, SendArgs{To: "bob", Text: "hello", Cmid: "c1"})
	if err != nil || !again.Dup || again.ID != sent.ID {
		t.Fatalf("retried send: %+v, %v; want dup of %+v", again, err, sent)
	}
	conv, err := c.GroupCreate(ctx, "team", []string{"bob"})
	if err != nil || conv != "g:team" {
		t.Fatalf("group_create: %q, %v", conv, err)
	}
	if _, err := c.Send(ctx, SendArgs{Group: "team", Text: "hi team"}); err != nil {
		t.Fatalf("send to group: %v", err)
	}
	members, err := c.GroupMembers(ctx, "team")
	if err != nil || strings.Join(members, ",") != "alice,bob" {
		t.Fatalf("group_members: %v, %v", members, err)
	}
	s, err := c.Sync(ctx, SyncArgs{After: map[string]uint64{}})
	if err != nil || len(s.Messages) != 2 || s.Cursor == "" || s.More || len(s.Convs) != 2 {
		t.Fatalf("sync: %+v, %v", s, err)
	}
	s2, err := c.Sync(ctx, SyncArgs{Cursor: s.Cursor})
	if err != nil || len(s2.Messages) != 0 {
		t.Fatalf("sync from cursor %q: %+v, %v", s.Cursor, s2, err)
	}
	h, err := c.History(ctx, HistoryArgs{Conv: "dm:alice:bob", Limit: 10})
	if err != nil || len(h.Messages) != 1 || h.Messages[0].Text != "hello" || h.Consistency == "" {
		t.Fatalf("history: %+v, %v", h, err)
	}
	p, err := c.Presence(ctx, []string{"alice", "bob"})
	if err != nil || !p["alice"].Online || p["bob"].Online {
		t.Fatalf("presence: %+v, %v", p, err)
	}
	if err := c.UserUpdate(ctx, "Al"); err != nil {
		t.Fatalf("user_update: %v", err)
	}
	info, err := c.UserInfo(ctx, "alice")
	if err != nil || info.Nickname != "Al" || info.UID != uid || info.Created == 0 {
		t.Fatalf("user_info: %+v, %v", info, err)
	}
	for name, err := range map[string]error{
		"ack":         c.Ack(ctx, conv, 1),
		"read":        c.ReadCursor(ctx, conv, 1),
		"typing":      c.Typing(ctx, conv),
		"group_leave": c.GroupLeave(ctx, "team"),
		"group_join":  c.GroupJoin(ctx, "team"),
	} {
		if err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestPushesArriveInOrderAndDecode(t *testing.T) {
	fc := newFakeCluster(t, 1)
	c := loggedIn(t, fc, "alice", Options{})
	if _, err := c.Call(testCtx(t), "test_push", map[string]any{"kind": "typing", "n": 10}); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		p := <-c.Pushes()
		var f struct{ I int }
		if err := json.Unmarshal(p.Raw, &f); err != nil || p.Kind != "typing" || f.I != i {
			t.Fatalf("push %d: kind %q raw %s", i, p.Kind, p.Raw)
		}
	}
	fc.addUser("bob", testPassword)
	sent := fc.send("bob", "alice", "hi alice")
	p := <-c.Pushes()
	m, err := p.Message()
	if err != nil || m != sent {
		t.Fatalf("message push %s decoded as %+v, %v; want %+v", p.Raw, m, err, sent)
	}
	fc.push("alice", map[string]any{"push": PushKicked, "reason": "name_conflict", "message": "alice-2"})
	f, err := (<-c.Pushes()).Fields()
	if err != nil || f.Reason != "name_conflict" || f.Text != "alice-2" {
		t.Fatalf("kicked push fields %+v, %v", f, err)
	}
}

func TestFullPushBufferDropsAndCounts(t *testing.T) {
	fc := newFakeCluster(t, 1)
	c := loggedIn(t, fc, "alice", Options{PushBuffer: 4})
	// The pushes precede the reply on the wire, so they are all routed
	// by the time Call returns, and the reader did not stall on them.
	if _, err := c.Call(testCtx(t), "test_push", map[string]any{"kind": "typing", "n": 20}); err != nil {
		t.Fatal(err)
	}
	if got := c.Overflows(); got != 16 {
		t.Fatalf("Overflows() = %d, want 16 (20 pushes into a buffer of 4)", got)
	}
	if got := len(c.Pushes()); got != 4 {
		t.Fatalf("%d pushes buffered, want 4", got)
	}
}

func TestUnmatchedFrames(t *testing.T) {
	fc := newFakeCluster(t, 1)
	c := dial(t, fc.gateways[0].url, Options{})
	ctx := testCtx(t)
	tests := []struct {
		frame, wantID string
	}{
		{`not json`, "null"},
		{`{"op": "ping"}`, "null"},
		{`{"id": "mine", "op": "ping"}`, `"mine"`}, // a reply no Call waits for
	}
	for _, tt := range tests {
		if err := c.SendRaw(ctx, []byte(tt.frame)); err != nil {
			t.Fatal(err)
		}
		var r struct {
			ID    json.RawMessage
			OK    bool
			Error *Error
		}
		select {
		case data := <-c.Unmatched():
			if err := json.Unmarshal(data, &r); err != nil || string(r.ID) != tt.wantID {
				t.Fatalf("frame %q: unmatched reply %s, want id %s", tt.frame, data, tt.wantID)
			}
		case <-ctx.Done():
			t.Fatalf("frame %q: no unmatched reply", tt.frame)
		}
		if tt.wantID == "null" && (r.OK || r.Error == nil || r.Error.Code != CodeBadRequest) {
			t.Errorf("frame %q: reply %+v, want a bad_request error", tt.frame, r)
		}
	}
}

func TestLateReplyIsDropped(t *testing.T) {
	fc := newFakeCluster(t, 1)
	c := dial(t, fc.gateways[0].url, Options{})
	ctx, cancel := context.WithTimeout(testCtx(t), 20*time.Millisecond)
	defer cancel()
	_, err := c.Call(ctx, "test_slow", map[string]any{"delay_ms": 100})
	if !errors.Is(err, context.DeadlineExceeded) || ErrorCode(err) != "" {
		t.Fatalf("call past its deadline: %v, want context.DeadlineExceeded", err)
	}
	time.Sleep(150 * time.Millisecond)
	if err := c.Ping(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if n := len(c.Unmatched()); n != 0 {
		t.Fatalf("the late reply went to Unmatched (%d frames)", n)
	}
}

func TestOversizedFrameSurfacesClose1009(t *testing.T) {
	fc := newFakeCluster(t, 1)
	c := dial(t, fc.gateways[0].url, Options{})
	ctx := testCtx(t)
	pending := make(chan error, 1)
	go func() {
		_, err := c.Call(ctx, "test_slow", map[string]any{"delay_ms": 5000})
		pending <- err
	}()
	big := fmt.Sprintf(`{"id":"big","op":"ping","pad":%q}`, strings.Repeat("x", 70<<10))
	// The write itself may fail: gorilla sends a large message in fragments,
	// and the gateway's close can arrive before the last one is written.
	if err := c.SendRaw(ctx, []byte(big)); err != nil {
		t.Logf("writing the oversized frame: %v", err)
	}
	select {
	case <-c.Done():
	case <-ctx.Done():
		t.Fatal("connection still open after a frame over 64 KiB")
	}
	if code := c.CloseCode(); code != websocket.CloseMessageTooBig {
		t.Errorf("CloseCode() = %d, want 1009; Err() = %v", code, c.Err())
	}
	var ce *websocket.CloseError
	if err := c.Err(); !errors.Is(err, ErrConnectionLost) || !errors.As(err, &ce) || ce.Code != 1009 {
		t.Errorf("Err() = %v, want ErrConnectionLost wrapping close 1009", err)
	}
	if err := <-pending; !errors.Is(err, ErrConnectionLost) {
		t.Errorf("pending call: %v, want ErrConnectionLost", err)
	}
	if _, ok := <-c.Pushes(); ok {
		t.Error("Pushes not closed after the connection ended")
	}
}

func TestDroppedConnectionIs1006(t *testing.T) {
	fc := newFakeCluster(t, 1)
	c := dial(t, fc.gateways[0].url, Options{})
	if err := c.Ping(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	fc.gateways[0].drop()
	<-c.Done()
	if code := c.CloseCode(); code != websocket.CloseAbnormalClosure {
		t.Errorf("CloseCode() = %d, want 1006; Err() = %v", code, c.Err())
	}
	if err := c.Ping(testCtx(t)); !errors.Is(err, ErrConnectionLost) {
		t.Errorf("ping on a dropped connection: %v, want ErrConnectionLost", err)
	}
}

func TestCloseFailsCallsAndStopsReader(t *testing.T) {
	fc := newFakeCluster(t, 1)
	before := goleak.IgnoreCurrent()
	c := dial(t, fc.gateways[0].url, Options{})
	pending := make(chan error, 1)
	go func() {
		_, err := c.Call(context.Background(), "test_slow", map[string]any{"delay_ms": 5000})
		pending <- err
	}()
	// Close only once the call waits for its reply: a call begun after
	// Close fails at once, which would prove nothing about waking it.
	deadline := time.Now().Add(5 * time.Second)
	for {
		c.mu.Lock()
		n := len(c.pending)
		c.mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the call never became pending")
		}
		time.Sleep(time.Millisecond)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-pending; !errors.Is(err, ErrClosed) {
		t.Errorf("pending call: %v, want ErrClosed", err)
	}
	if err := c.Ping(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("call after Close: %v, want ErrClosed", err)
	}
	if err := c.SendRaw(context.Background(), []byte("{}")); !errors.Is(err, ErrClosed) {
		t.Errorf("SendRaw after Close: %v, want ErrClosed", err)
	}
	if c.Err() != ErrClosed || c.CloseCode() != websocket.CloseNormalClosure {
		t.Errorf("after Close: Err() %v, CloseCode() %d; want ErrClosed, 1000", c.Err(), c.CloseCode())
	}
	_ = c.Close() // idempotent
	// The reader and the fake gateway's side of this connection are gone.
	goleak.VerifyNone(t, before)
}

func TestDialFailureNamesURL(t *testing.T) {
	fc := newFakeCluster(t, 1)
	fc.gateways[0].refuse.Store(true)
	_, err := Dial(testCtx(t), fc.gateways[0].url, Options{Origin: "http://dashboard.example"})
	if err == nil || !strings.Contains(err.Error(), fc.gateways[0].url) || !strings.Contains(err.Error(), "503") {
		t.Fatalf("dial a refusing gateway: %v; want the URL and the HTTP status", err)
	}
}
