package gateway

import (
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gorilla/websocket"

	"mpim/internal/token"
	pb "mpim/proto/mpimpb"
)

// expect checks the lines of one settle against want; a want line ending
// in "..." matches any line with that prefix.
func expect(t *testing.T, step string, got []string, want ...string) {
	t.Helper()
	ok := len(got) == len(want)
	for i := 0; ok && i < len(want); i++ {
		prefix, isPrefix := strings.CutSuffix(want[i], "...")
		ok = got[i] == want[i] || (isPrefix && strings.HasPrefix(got[i], prefix))
	}
	if !ok {
		t.Fatalf("%s:\ngot:\n  %s\nwant:\n  %s", step, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// TestSessionOpsBeforeLogin: a connection that has not logged in may only
// ping, register, log in or resume; anything else is refused without a
// node call, and the connection stays usable.
func TestSessionOpsBeforeLogin(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, harnessOptions{})
		c := h.dial("bob")
		c.request("history", map[string]any{"conv": "dm:alice:bob"})
		expect(t, "history before login", h.settle(),
			`bob: reply 1 error unauthorized: history needs a logged-in connection; send login or resume first`)
		c.request("ping", nil)
		expect(t, "ping before login", h.settle(), `bob: reply 2 ok {"ts":...`)
		h.login("bob", "", "bob")
		expect(t, "login after the refusal", h.settle(),
			"node: sync from-device limit=500 -> nothing",
			"bob: reply 3 ok uid=2 mode=cp")
	})
}

// TestSessionLoginOnce: a connection is one user on one device for its
// whole life; a second login or a resume on it is refused, and the
// session goes on as the first identity.
func TestSessionLoginOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, harnessOptions{})
		c := h.login("bob", "phone", "bob")
		h.settle()
		c.request("login", map[string]any{"user": "alice", "password": "pw"})
		tok := token.Sign([]byte(testSecret), token.Claims{UID: 1, User: "alice", Exp: time.Now().Add(time.Hour).UnixMilli()})
		c.request("resume", map[string]any{"token": tok})
		expect(t, "login and resume on a logged-in connection", h.settle(),
			"bob: reply 2 error bad_request: this connection is already logged in; open a new connection for another user or device",
			"bob: reply 3 error bad_request: this connection is already logged in; open a new connection for another user or device")
		h.push("dm:alice:bob", 1, "m1", false, "")
		h.push("g:team", 1, "m1", false, "")
		expect(t, "pushes after the refused logins", h.settle(),
			"bob: message dm:alice:bob seq=1",
			"bob: message g:team seq=1")
		if got := h.node.routes; got["bob"] != 1 || got["alice"] != 0 {
			t.Fatalf("presence routes %v, want bob's alone (a refused login must not bind)", got)
		}
	})
}

// TestSessionResume: resume authenticates with a token alone, without a
// node (it must work on any side of a partition); the session's mode is
// the node's the gateway prefers. Bad and expired tokens are refused with
// what to do.
func TestSessionResume(t *testing.T) {
	now := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC) // the bubble's clock
	sign := func(exp time.Time) string {
		return token.Sign([]byte(testSecret), token.Claims{UID: 2, User: "bob", Exp: exp.UnixMilli()})
	}
	for _, tc := range []struct {
		name, mode, token string
		want              []string
	}{
		{"valid cp", "cp", sign(now.Add(time.Hour)), []string{
			"node: sync from-device limit=500 -> nothing",
			"bob: reply 1 ok uid=2 mode=cp"}},
		{"valid ap", "ap", sign(now.Add(time.Hour)), []string{
			"node: sync from-device limit=500 -> nothing, cursor ",
			"bob: reply 1 ok uid=2 mode=ap"}},
		{"expired", "cp", sign(now.Add(-time.Millisecond)), []string{
			"bob: reply 1 error unauthorized: token expired; log in with your password"}},
		{"forged", "cp", token.Sign([]byte("another-secret-0123456789"), token.Claims{UID: 2, User: "bob", Exp: now.Add(time.Hour).UnixMilli()}), []string{
			"bob: reply 1 error unauthorized: invalid token; log in with your password"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := newHarness(t, harnessOptions{mode: tc.mode})
				c := h.dial("bob")
				c.request("resume", map[string]any{"token": tc.token})
				expect(t, "resume", h.settle(), tc.want...)
			})
		})
	}
}

// TestSessionResumeAPDeliversByID: a resumed session takes AP delivery
// from the node's mode: a message pushed twice at different positions
// reaches it once, and a push ahead of the next seq is not held.
func TestSessionResumeAPDeliversByID(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, harnessOptions{mode: "ap"})
		c := h.dial("bob")
		c.request("resume", map[string]any{"token": token.Sign([]byte(testSecret),
			token.Claims{UID: 2, User: "bob", Exp: time.Now().Add(time.Hour).UnixMilli()})})
		h.settle()
		h.push("g:team", 5, "x", true, "")
		h.push("g:team", 6, "x", true, "")
		expect(t, "one message pushed at two positions", h.settle(),
			"bob: message g:team seq=5 id=x tentative")
	})
}

// TestSessionPushesBeforeReady: until its login backlog has been pushed a
// session is not ready. Message pushes wait for the backlog (in order,
// once); receipts and typing, which a later pull cannot bring back, are
// dropped rather than shown ahead of the messages they refer to. Before
// login a connection is not anybody's and gets no pushes at all.
func TestSessionPushesBeforeReady(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, harnessOptions{})
		h.dial("bob")
		receipt := func() {
			h.g.dispatch(&pb.Push{Event: &pb.Push_Receipt{Receipt: &pb.Receipt{Kind: "read", Conv: "dm:alice:bob", User: "alice", Seq: 1, Id: "m1"}},
				ToUids: []uint64{2}}, "redis")
		}
		h.push("dm:alice:bob", 1, "m1", false, "")
		receipt()
		expect(t, "pushes before login", h.settle())

		h.node.setState("down")
		h.login("bob", "", "bob")
		h.settle()
		h.push("dm:alice:bob", 2, "m2", false, "")
		receipt()
		expect(t, "pushes while the backlog fails", h.settle())

		h.node.setState("up")
		time.Sleep(500 * time.Millisecond)
		expect(t, "the backlog retried", h.settle(),
			"node: sync from-device limit=500 -> dm:alice:bob 1..2",
			"bob: message dm:alice:bob seq=1",
			"bob: message dm:alice:bob seq=2")
		receipt()
		expect(t, "a receipt once ready", h.settle(),
			`bob: push read {"conv":"dm:alice:bob","id":"m1","seq":1,"user":"alice"}`)
	})
}

// TestSessionKick: a kick push closes the named device's sessions with
// 4001 after telling them why, except the session that stays (the new
// login that caused it); other devices are untouched.
func TestSessionKick(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, harnessOptions{})
		oldPhone := h.login("bob", "phone", "old-phone")
		h.login("bob", "laptop", "laptop")
		newPhone := h.login("bob", "phone", "new-phone")
		h.settle()
		h.g.dispatch(&pb.Push{Event: &pb.Push_Kick{Kick: &pb.Kick{Uid: 2, Device: "phone", Reason: "device_replaced",
			Message: "this device logged in again elsewhere", Session: newPhone.session}}}, "redis")
		expect(t, "kick", h.settle(),
			`old-phone: push kicked {"message":"this device logged in again elsewhere","reason":"device_replaced"}`)
		time.Sleep(100 * time.Millisecond)
		expect(t, "100ms after the kick", h.settle(), `old-phone: closed 4001 "kicked: device_replaced"`)
		h.push("dm:alice:bob", 1, "m1", false, "")
		expect(t, "a push after the kick", h.settle(),
			"laptop: message dm:alice:bob seq=1",
			"new-phone: message dm:alice:bob seq=1")
		if oldPhone.closed == "" {
			t.Fatal("the kicked connection is still open")
		}
	})
}

// TestSessionCloseForgets: a client that goes away leaves every index: its
// presence route is unbound and pushes for its user reach nobody.
func TestSessionCloseForgets(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, harnessOptions{})
		c := h.login("bob", "", "bob")
		h.settle()
		if h.node.routes["bob"] != 1 {
			t.Fatalf("after login bob has %d routes, want 1", h.node.routes["bob"])
		}
		c.conn.Close()
		h.settle()
		h.push("dm:alice:bob", 1, "m1", false, "")
		expect(t, "a push after the client left", h.settle())
		if h.node.routes["bob"] != 0 {
			t.Fatalf("after the client left bob has %d routes, want 0", h.node.routes["bob"])
		}
		if n := len(h.g.sessionsOf(2)); n != 0 {
			t.Fatalf("bob still has %d sessions indexed", n)
		}
	})
}

// TestSessionRateLimit: every frame counts against the connection's token
// bucket, malformed and binary ones included; a refused frame gets
// rate_limited, and the bucket refills with time.
func TestSessionRateLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, harnessOptions{cfg: func(c *Config) { c.RateLimit, c.RateBurst = 2, 2 }})
		c := h.dial("bob")
		c.conn.WriteMessage(websocket.BinaryMessage, []byte("hi"))
		c.request("ping", nil)
		c.request("ping", nil)
		expect(t, "three frames at once with a burst of 2", h.settle(),
			"bob: reply  error bad_request: binary frames are not accepted; send JSON in text frames",
			`bob: reply 1 ok {"ts":...`,
			"bob: reply 2 error rate_limited: more than 2 requests per second on this connection; slow down and retry")
		time.Sleep(500 * time.Millisecond)
		c.request("ping", nil)
		c.request("ping", nil)
		expect(t, "two frames 500ms later (one token back)", h.settle(),
			`bob: reply 3 ok {"ts":...`,
			"bob: reply 4 error rate_limited: more than 2 requests per second on this connection; slow down and retry")
	})
}

// TestTokenBucket: the bucket starts full, refills at rate up to burst,
// and a rate of 0 means no limit.
func TestTokenBucket(t *testing.T) {
	t0 := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name        string
		rate        float64
		burst       int
		at          []time.Duration // offsets from t0 of each frame
		wantAllowed []bool
	}{
		{"burst then refused", 10, 3, []time.Duration{0, 0, 0, 0}, []bool{true, true, true, false}},
		{"refill at rate", 10, 1, []time.Duration{0, 50 * time.Millisecond, 100 * time.Millisecond}, []bool{true, false, true}},
		{"refill capped at burst", 10, 2, []time.Duration{0, 0, 10 * time.Second, 10 * time.Second, 10 * time.Second}, []bool{true, true, true, true, false}},
		{"rate 0 is off", 0, 0, []time.Duration{0, 0, 0}, []bool{true, true, true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newTokenBucket(tc.rate, tc.burst)
			var got []bool
			for _, d := range tc.at {
				got = append(got, b.allow(t0.Add(d)))
			}
			if !slices.Equal(got, tc.wantAllowed) {
				t.Fatalf("allowed %v, want %v", got, tc.wantAllowed)
			}
		})
	}
}
