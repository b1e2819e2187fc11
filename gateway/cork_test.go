package gateway

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// countingConn counts the writes that reach the socket and the deadlines
// set on it.
type countingConn struct {
	net.Conn
	writes    atomic.Int64
	deadlines atomic.Int64
}

func (c *countingConn) Write(p []byte) (int, error) { c.writes.Add(1); return c.Conn.Write(p) }
func (c *countingConn) SetWriteDeadline(t time.Time) error {
	c.deadlines.Add(1)
	return c.Conn.SetWriteDeadline(t)
}

// TestCork upgrades a real loopback connection through corkingWriter and
// has gorilla write frames corked, uncorked and past the flush size: the
// client must read every frame whole and in order, a corked burst must
// reach the socket in one write, and Close must send what was collected
// (a close frame among it) before it closes.
func TestCork(t *testing.T) {
	var (
		mu     sync.Mutex
		server *websocket.Conn
		cork   *corkConn
		under  *countingConn
	)
	ready := make(chan struct{})
	up := websocket.Upgrader{WriteBufferPool: &sync.Pool{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cw := &corkingWriter{ResponseWriter: countingHijacker{w, &under}}
		c, err := up.Upgrade(cw, r, nil)
		if err != nil {
			t.Error(err)
			return
		}
		mu.Lock()
		server, cork = c, cw.conn
		mu.Unlock()
		close(ready)
	}))
	defer srv.Close()
	client, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	<-ready
	mu.Lock()
	defer mu.Unlock()
	if server.NetConn() != net.Conn(cork) {
		t.Fatal("the websocket connection is not on the corkConn")
	}
	read := func(n int, prefix string) {
		t.Helper()
		client.SetReadDeadline(time.Now().Add(5 * time.Second))
		for i := range n {
			_, data, err := client.ReadMessage()
			if want := fmt.Sprint(prefix, i); err != nil || string(data) != want {
				t.Fatalf("frame %d: %q, %v; want %q", i, data, err, want)
			}
		}
	}

	// A corked burst: nothing reaches the socket until uncork, then one write.
	base := under.writes.Load()
	cork.cork()
	for i := range 50 {
		server.SetWriteDeadline(time.Now().Add(time.Second))
		if err := server.WriteMessage(websocket.TextMessage, []byte(fmt.Sprint("burst-", i))); err != nil {
			t.Fatal(err)
		}
	}
	if n := under.writes.Load() - base; n != 0 {
		t.Fatalf("%d socket writes while corked", n)
	}
	deadlines := under.deadlines.Load()
	if err := cork.uncork(); err != nil {
		t.Fatal(err)
	}
	if n := under.writes.Load() - base; n != 1 {
		t.Fatalf("a corked burst of 50 frames took %d socket writes, want 1", n)
	}
	if under.deadlines.Load() != deadlines+1 {
		t.Fatal("the flush did not apply the deadline gorilla set while corked")
	}
	read(50, "burst-")

	// Uncorked, each frame is written through.
	base = under.writes.Load()
	for i := range 3 {
		server.WriteMessage(websocket.TextMessage, []byte(fmt.Sprint("plain-", i)))
	}
	if n := under.writes.Load() - base; n != 3 {
		t.Fatalf("3 uncorked frames took %d socket writes", n)
	}
	read(3, "plain-")

	// Past corkFlushAt a cork writes anyway, without reordering.
	base = under.writes.Load()
	big := strings.Repeat("x", 1000)
	cork.cork()
	for i := range 100 {
		server.WriteMessage(websocket.TextMessage, []byte(fmt.Sprint("big-", i, big)))
	}
	if n := under.writes.Load() - base; n < 2 {
		t.Fatalf("100 KB corked went out in %d writes before uncork: the flush size is not enforced", n)
	}
	cork.uncork()
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	for i := range 100 {
		_, data, err := client.ReadMessage()
		if want := fmt.Sprint("big-", i, big); err != nil || string(data) != want {
			t.Fatalf("big frame %d: %d bytes, %v", i, len(data), err)
		}
	}

	// A deadline recorded in an earlier cork is not reused: bytes collected
	// with no deadline of their own go out under the socket's.
	cork.cork()
	cork.SetWriteDeadline(time.Now().Add(-time.Second))
	if err := cork.uncork(); err != nil { // nothing collected
		t.Fatal(err)
	}
	cork.SetWriteDeadline(time.Now().Add(5 * time.Second)) // uncorked: on the socket
	cork.cork()
	cork.Write([]byte{0x81, 2, 'x', '0'}) // a text frame "x0", as gorilla writes it
	if err := cork.uncork(); err != nil {
		t.Fatalf("a flush used a stale deadline: %v", err)
	}
	read(1, "x")

	// A close frame collected while corked still reaches the client.
	cork.cork()
	server.WriteMessage(websocket.TextMessage, []byte("last"))
	server.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(4001, "bye"), time.Now().Add(time.Second))
	server.Close()
	_, data, err := client.ReadMessage()
	if string(data) != "last" || err != nil {
		t.Fatalf("last frame before close: %q, %v", data, err)
	}
	_, _, err = client.ReadMessage()
	if ce, ok := err.(*websocket.CloseError); !ok || ce.Code != 4001 {
		t.Fatalf("after Close the client read %v, want close 4001", err)
	}
}

// countingHijacker hijacks into a countingConn.
type countingHijacker struct {
	http.ResponseWriter
	out **countingConn
}

func (h countingHijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := h.ResponseWriter.(http.Hijacker).Hijack()
	if err != nil {
		return nil, nil, err
	}
	*h.out = &countingConn{Conn: nc}
	return *h.out, brw, nil
}
