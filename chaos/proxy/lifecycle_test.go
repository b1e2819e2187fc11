package proxy

import (
	"bufio"
	"errors"
	"io"
	"net"
	"reflect"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestClosePropagation closes the client while its direction is held: the
// server sees nothing until Release, then the data, then the close.
func TestClosePropagation(t *testing.T) {
	type result struct {
		data []byte
		err  error // nil means a clean EOF
	}
	tests := []struct {
		name      string
		close     func(c *net.TCPConn)
		wantReset bool
	}{
		{"half close", func(c *net.TCPConn) { c.CloseWrite() }, false},
		{"close", func(c *net.TCPConn) { c.Close() }, false},
		{"reset", func(c *net.TCPConn) { c.SetLinger(0); c.Close() }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := newNet(t)
			results := make(chan result, 1)
			srv := serve(t, func(c *net.TCPConn, _ <-chan struct{}) {
				data, err := io.ReadAll(c)
				results <- result{data, err}
				if err == nil {
					io.WriteString(c, "bye\n")
					c.CloseWrite()
				}
			})
			l := link(t, n, "g1", "n1", srv.Addr())
			c := dial(t, l.Addr())
			n.Hold("g1", "n1")
			if _, err := io.WriteString(c, "payload"); err != nil {
				t.Fatalf("write: %v", err)
			}
			time.Sleep(20 * time.Millisecond) // let the proxy read the data before the close
			tt.close(c)

			select {
			case r := <-results:
				t.Fatalf("server saw %q, %v while g1→n1 was held: a close overtook the hold", r.data, r.err)
			case <-time.After(300 * time.Millisecond):
			}
			n.Release("g1", "n1")
			var r result
			select {
			case r = <-results:
			case <-time.After(5 * time.Second):
				t.Fatal("the close never reached the server after release")
			}
			if tt.wantReset {
				if !errors.Is(r.err, syscall.ECONNRESET) {
					t.Fatalf("server read %q then %v, want a reset", r.data, r.err)
				}
				return
			}
			if r.err != nil || string(r.data) != "payload" {
				t.Fatalf("server read %q then %v, want all of %q then EOF", r.data, r.err, "payload")
			}
			if tt.name == "half close" {
				// The other direction was never closed: the reply still flows.
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				rest, err := io.ReadAll(c)
				if err != nil || string(rest) != "bye\n" {
					t.Fatalf("after half close the client read %q, %v, want the reply then EOF", rest, err)
				}
			}
		})
	}
}

// TestTargetDown checks that a dead target looks dead (the connection is
// closed at once, no hang) and that SetTarget moves new connections.
func TestTargetDown(t *testing.T) {
	n := newNet(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	l := link(t, n, "g1", "n1", dead)

	c := dial(t, l.Addr())
	start := time.Now()
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	_, err = c.Read(make([]byte, 1))
	if err == nil || errors.Is(err, net.ErrClosed) || isTimeout(err) {
		t.Fatalf("read through a link to a dead member: %v, want the connection closed by the proxy", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("a dead member took %v to look dead", took)
	}

	srv := serve(t, echo)
	l.SetTarget(srv.Addr())
	if got := l.Target(); got != srv.Addr() {
		t.Fatalf("Target() = %q after SetTarget(%q)", got, srv.Addr())
	}
	c2 := dial(t, l.Addr())
	io.WriteString(c2, "alive\n")
	if got := readLine(t, c2, bufio.NewReader(c2), 2*time.Second); got != "alive\n" {
		t.Fatalf("after SetTarget got %q", got)
	}
	if s := n.Links()[0]; s.Target != srv.Addr() || s.Conns != 1 {
		t.Fatalf("Links()[0] = %+v, want target %s with one connection", s, srv.Addr())
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestCloseEndsEverything closes a Net with connections idle, held with
// a backlog, and waiting out a delay: every client sees its connection
// end, and no goroutine survives.
func TestCloseEndsEverything(t *testing.T) {
	n := NewNet(nil)
	srv := serve(t, echo)
	l := link(t, n, "a", "b", srv.Addr())

	idle := dial(t, l.Addr())
	held := dial(t, l.Addr())
	delayed := dial(t, l.Addr())
	io.WriteString(idle, "x\n")
	readLine(t, idle, bufio.NewReader(idle), 2*time.Second)

	n.SetDelay("b", "a", 10*time.Second, 0)
	io.WriteString(delayed, "slow\n")
	n.Hold("a", "b")
	blocked := make(chan error, 1)
	go func() {
		_, err := held.Write(make([]byte, 8<<20)) // far more than the proxy and the kernel buffer
		blocked <- err
	}()
	waitFor(t, 2*time.Second, "the proxy holds a backlog", func() bool { return n.Links()[0].Conns == 3 })
	time.Sleep(200 * time.Millisecond)
	select {
	case err := <-blocked:
		t.Fatalf("an 8 MiB write across a hold returned (%v): the proxy should have stopped reading and let TCP push back", err)
	default:
	}

	closed := make(chan error, 1)
	go func() { closed <- n.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close hung")
	}
	for name, c := range map[string]*net.TCPConn{"idle": idle, "held": held, "delayed": delayed} {
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := io.ReadAll(c); isTimeout(err) {
			t.Fatalf("%s connection still open after Close", name)
		}
	}
	select {
	case err := <-blocked:
		if err == nil {
			t.Fatal("8 MiB write into a held, closed proxy succeeded")
		}
	case <-time.After(2 * time.Second):
		t.Fatal("a writer blocked by a hold stayed blocked after Close")
	}
	if _, err := n.Link("a", "c", srv.Addr()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Link after Close: %v, want ErrClosed", err)
	}
	if err := n.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	srv.Close()
	for _, c := range []*net.TCPConn{idle, held, delayed} {
		c.Close()
	}
	goleak.VerifyNone(t)
}

// TestFaultsReport checks the fault table the lab's HTTP API shows.
func TestFaultsReport(t *testing.T) {
	n := newNet(t)
	steps := []struct {
		name  string
		apply func()
		want  []DirFault
	}{
		{"empty", func() {}, []DirFault{}},
		{"hold", func() { n.Hold("n2", "n1") }, []DirFault{{From: "n2", To: "n1", Held: true}}},
		{"delay", func() { n.SetDelay("n1", "n2", 40*time.Millisecond, 20*time.Millisecond) }, []DirFault{
			{From: "n1", To: "n2", Delay: 40 * time.Millisecond, Jitter: 20 * time.Millisecond},
			{From: "n2", To: "n1", Held: true},
		}},
		{"delay on a held direction", func() { n.SetDelay("n2", "n1", time.Millisecond, 0) }, []DirFault{
			{From: "n1", To: "n2", Delay: 40 * time.Millisecond, Jitter: 20 * time.Millisecond},
			{From: "n2", To: "n1", Held: true, Delay: time.Millisecond},
		}},
		{"release keeps the delay", func() { n.Release("n2", "n1") }, []DirFault{
			{From: "n1", To: "n2", Delay: 40 * time.Millisecond, Jitter: 20 * time.Millisecond},
			{From: "n2", To: "n1", Delay: time.Millisecond},
		}},
		{"heal", func() { n.Hold("g1", "redis"); n.Heal() }, []DirFault{}},
	}
	for _, s := range steps {
		s.apply()
		if got := n.Faults(); !reflect.DeepEqual(got, s.want) {
			t.Fatalf("after %s: Faults() = %+v, want %+v", s.name, got, s.want)
		}
	}
	for _, bad := range [][2]string{{"", "n1"}, {"n1", ""}, {"n1", "n1"}} {
		if _, err := n.Link(bad[0], bad[1], "127.0.0.1:1"); !errors.Is(err, ErrMember) {
			t.Fatalf("Link(%q, %q): %v, want ErrMember", bad[0], bad[1], err)
		}
	}
}
