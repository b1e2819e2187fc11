package cp

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"go.uber.org/goleak"
)

// noLeaks checks, after every other cleanup of the test, that it left no
// goroutine behind (the mux's accept loop and routing goroutines).
func noLeaks(t *testing.T) {
	before := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, before) })
}

func listenMux(t *testing.T) *Mux {
	t.Helper()
	m, err := Listen("127.0.0.1:0", slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// accepted is one Accept's outcome.
type accepted struct {
	c   net.Conn
	err error
}

func acceptOne(l net.Listener) <-chan accepted {
	ch := make(chan accepted, 1)
	go func() {
		c, err := l.Accept()
		ch <- accepted{c, err}
	}()
	return ch
}

// await waits for an Accept; a bound of 10 s only guards against a hang.
func await(t *testing.T, ch <-chan accepted, what string) accepted {
	t.Helper()
	select {
	case a := <-ch:
		return a
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: no Accept within 10 s", what)
		return accepted{}
	}
}

// closedByMux fails unless the mux closed c: a read ends (EOF or reset)
// instead of waiting.
func closedByMux(t *testing.T, c net.Conn, what string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	if err == nil || errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("%s: the mux kept the connection open (read: %v), want it closed", what, err)
	}
}

func rawDial(t *testing.T, m *Mux, hdr []byte) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", m.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := c.Write(hdr); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestMuxRoutes: one port carries the node-to-node RPCs and every shard's
// Raft traffic; the header a connection opens with decides which listener
// gets it, and the bytes after the header reach it untouched.
func TestMuxRoutes(t *testing.T) {
	noLeaks(t)
	m := listenMux(t)
	shard1, shard2 := m.StreamLayer(1), m.StreamLayer(2)
	if m.StreamLayer(1) != shard1 {
		t.Fatal("StreamLayer(1) asked twice gave two listeners: a shard's connections would be split")
	}
	addr := raft.ServerAddress(m.Addr().String())
	for _, tc := range []struct {
		name string
		to   net.Listener
		dial func() (net.Conn, error)
	}{
		{"rpc", m.RPCListener(), func() (net.Conn, error) { return m.DialRPC(string(addr), time.Second) }},
		{"raft shard 1", shard1, func() (net.Conn, error) { return shard1.Dial(addr, time.Second) }},
		{"raft shard 2", shard2, func() (net.Conn, error) { return shard2.Dial(addr, time.Second) }},
	} {
		if tc.to.Addr().String() != m.Addr().String() {
			t.Errorf("%s listener's address %s, want the mux's %s", tc.name, tc.to.Addr(), m.Addr())
		}
		got := acceptOne(tc.to)
		c, err := tc.dial()
		if err != nil {
			t.Fatalf("%s: dial: %v", tc.name, err)
		}
		msg := []byte("hello " + tc.name)
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		a := await(t, got, tc.name)
		if a.err != nil {
			t.Fatalf("%s: accept: %v", tc.name, a.err)
		}
		buf := make([]byte, len(msg))
		if _, err := io.ReadFull(a.c, buf); err != nil || string(buf) != string(msg) {
			t.Fatalf("%s: the listener read %q (%v), want %q: the header must be consumed, the rest passed on", tc.name, buf, err, msg)
		}
		// And back.
		a.c.Write([]byte("ok"))
		if _, err := io.ReadFull(c, buf[:2]); err != nil || string(buf[:2]) != "ok" {
			t.Fatalf("%s: the dialer read %q (%v), want ok", tc.name, buf[:2], err)
		}
		c.Close()
		a.c.Close()
	}
}

// TestMuxRefuses: a connection whose header names no listener — an
// unknown kind, a shard this node does not run, a shard listener that was
// closed — is closed at once, and the others keep working.
func TestMuxRefuses(t *testing.T) {
	noLeaks(t)
	m := listenMux(t)
	shard1 := m.StreamLayer(1)
	shard2 := m.StreamLayer(2)
	shard2.Close()
	if _, err := shard2.Accept(); !errors.Is(err, ErrMuxClosed) {
		t.Fatalf("Accept on a closed shard listener: %v, want ErrMuxClosed", err)
	}
	closedByMux(t, rawDial(t, m, []byte{'X', 0, 1}), "unknown kind")
	closedByMux(t, rawDial(t, m, []byte{kindRaft, 0, 9}), "shard 9, which this node does not run")
	closedByMux(t, rawDial(t, m, []byte{kindRaft, 0, 2}), "shard 2, whose listener was closed")

	// A peer that connects and says nothing holds up no one else.
	rawDial(t, m, nil)
	got := acceptOne(shard1)
	c, err := shard1.Dial(raft.ServerAddress(m.Addr().String()), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if a := await(t, got, "shard 1 beside a silent connection"); a.err != nil {
		t.Fatalf("shard 1 after the refusals: %v", a.err)
	} else {
		a.c.Close()
	}
}

// TestMuxClose: closing the mux ends every Accept waiting on it (so that
// Raft's transports and the RPC server stop), twice is harmless, and
// nobody can connect any more.
func TestMuxClose(t *testing.T) {
	noLeaks(t)
	m := listenMux(t)
	waiting := []<-chan accepted{acceptOne(m.RPCListener()), acceptOne(m.StreamLayer(0)), acceptOne(m.StreamLayer(3))}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("a second Close: %v", err)
	}
	for i, ch := range waiting {
		if a := await(t, ch, "Accept across Close"); !errors.Is(a.err, ErrMuxClosed) {
			t.Errorf("listener %d: Accept after Close returned %v, want ErrMuxClosed", i, a.err)
		}
	}
	if _, err := m.StreamLayer(4).Accept(); !errors.Is(err, ErrMuxClosed) {
		t.Errorf("a shard listener made after Close accepts: %v", err)
	}
	if c, err := m.DialRPC(m.Addr().String(), time.Second); err == nil {
		c.Close()
		t.Fatal("a dial to a closed mux succeeded")
	}
}
