package e2e

import (
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestSessionRules: a device logging in again elsewhere kicks its old
// session (device_replaced, close 4001); a client that stops answering
// pings is dropped; browser origins are checked.
func TestSessionRules(t *testing.T) {
	c := startLab(t, labOpts{nodes: 1, gateways: 2,
		gatewayArgs: []string{"--ping-interval", "200ms", "--pong-timeout", "1s", "--origins", "http://allowed.example"}})
	c.register("g1", "alice")

	t.Run("device-replaced", func(t *testing.T) {
		old := c.login("g1", "alice", "phone")
		other := c.login("g1", "alice", "laptop")
		c.login("g2", "alice", "phone")
		f := pushOf(t, old, "kicked", 5*time.Second)
		if f.Reason != "device_replaced" {
			t.Fatalf("kicked push reason = %q, want device_replaced", f.Reason)
		}
		select {
		case <-old.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("the replaced session was not closed")
		}
		if code := old.CloseCode(); code != 4001 {
			t.Fatalf("replaced session closed with %d, want 4001", code)
		}
		// Another device of the same user is untouched.
		if err := other.Ping(ctxFor(t, 5*time.Second)); err != nil {
			t.Fatalf("alice's laptop was disturbed by her phone's re-login: %v", err)
		}
	})

	t.Run("pong-timeout", func(t *testing.T) {
		// A raw connection that never reads never answers pings.
		conn, _, err := websocket.DefaultDialer.Dial(c.ws("g1"), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetPongHandler(nil)
		conn.SetPingHandler(func(string) error { return nil }) // swallow pings: no pong
		// Read (swallowing pings) until the gateway gives up on us: the
		// connection must end well before this generous deadline.
		start := time.Now()
		conn.SetReadDeadline(start.Add(15 * time.Second))
		for {
			if _, _, err := conn.ReadMessage(); err != nil {
				if ne, ok := err.(interface{ Timeout() bool }); ok && ne.Timeout() {
					t.Fatal("a client that answered no ping for 15s (pong timeout 1s) was not dropped")
				}
				t.Logf("dropped %v after connecting: %v", time.Since(start).Round(time.Millisecond), err)
				return // closed by the gateway
			}
		}
	})

	t.Run("pings-keep-idle-alive", func(t *testing.T) {
		// An idle client that answers pings outlives the pong timeout
		// many times over: the gateway pings it (from a timer; no writer
		// goroutine waits on an idle connection).
		conn, _, err := websocket.DefaultDialer.Dial(c.ws("g1"), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		var pings atomic.Int32
		conn.SetPingHandler(func(data string) error {
			pings.Add(1)
			return conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
		})
		ended := make(chan error, 1)
		go func() {
			for {
				if _, _, err := conn.ReadMessage(); err != nil {
					ended <- err
					return
				}
			}
		}()
		select {
		case err := <-ended:
			t.Fatalf("an idle client answering pings was dropped: %v", err)
		case <-time.After(3 * time.Second):
		}
		if n := pings.Load(); n < 5 {
			t.Fatalf("%d pings in 3 s at a 200 ms interval, want at least 5", n)
		}
	})

	t.Run("origins", func(t *testing.T) {
		for origin, want := range map[string]int{
			"http://allowed.example": http.StatusSwitchingProtocols,
			"http://evil.example":    http.StatusForbidden,
			"":                       http.StatusSwitchingProtocols, // not a browser
		} {
			h := http.Header{}
			if origin != "" {
				h.Set("Origin", origin)
			}
			conn, resp, err := websocket.DefaultDialer.Dial(c.ws("g1"), h)
			if conn != nil {
				conn.Close()
			}
			got := 0
			if resp != nil {
				got = resp.StatusCode
			}
			if got != want {
				t.Errorf("origin %q: HTTP %d (err %v), want %d", origin, got, err, want)
			}
		}
	})
}
