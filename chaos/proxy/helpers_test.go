package proxy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// newNet returns a Net that logs through the test and is closed at cleanup.
func newNet(t *testing.T) *Net {
	t.Helper()
	n := NewNet(slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})))
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("Net.Close: %v", err)
		}
	})
	return n
}

func link(t *testing.T, n *Net, from, to, target string) *Link {
	t.Helper()
	l, err := n.Link(from, to, target)
	if err != nil {
		t.Fatalf("Link(%s, %s): %v", from, to, err)
	}
	return l
}

// server is a loopback TCP server whose handlers run until they return or
// the server is closed; Close waits for all of them.
type server struct {
	ln     *net.TCPListener
	stop   chan struct{}
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[*net.TCPConn]struct{}
	closed bool
}

// serve starts a server calling handle for each connection; the connection
// is closed when handle returns. stop is closed when the server closes.
func serve(t *testing.T, handle func(c *net.TCPConn, stop <-chan struct{})) *server {
	t.Helper()
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	s := &server{ln: ln, stop: make(chan struct{}), conns: map[*net.TCPConn]struct{}{}}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.AcceptTCP()
			if err != nil {
				return
			}
			s.mu.Lock()
			if s.closed {
				s.mu.Unlock()
				c.Close()
				return
			}
			s.conns[c] = struct{}{}
			s.wg.Add(1)
			s.mu.Unlock()
			go func() {
				defer s.wg.Done()
				defer c.Close()
				handle(c, s.stop)
			}()
		}
	}()
	t.Cleanup(s.Close)
	return s
}

func (s *server) Addr() string { return s.ln.Addr().String() }

// Close stops accepting, closes every connection and waits for handlers.
func (s *server) Close() {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.stop)
		s.ln.Close()
		for c := range s.conns {
			c.Close()
		}
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// echo copies everything back, then half-closes.
func echo(c *net.TCPConn, _ <-chan struct{}) {
	io.Copy(c, c)
	c.CloseWrite()
}

// handOver passes each accepted connection to the test on ch and keeps it
// open until the server closes.
func handOver(ch chan<- *net.TCPConn) func(*net.TCPConn, <-chan struct{}) {
	return func(c *net.TCPConn, stop <-chan struct{}) {
		select {
		case ch <- c:
		case <-stop:
			return
		}
		<-stop
	}
}

func dial(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// readLine reads one '\n'-terminated line within d.
func readLine(t *testing.T, c net.Conn, r *bufio.Reader, d time.Duration) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(d))
	defer c.SetReadDeadline(time.Time{})
	s, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("read within %v: %v (partial %q)", d, err, s)
	}
	return s
}

// expectSilence asserts that nothing arrives on c for d and that the
// connection stays healthy: the read must time out, not fail.
func expectSilence(t *testing.T, c net.Conn, r *bufio.Reader, d time.Duration, why string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(d))
	defer c.SetReadDeadline(time.Time{})
	b, err := r.ReadByte()
	switch {
	case err == nil:
		t.Fatalf("%s: byte %q arrived while it should be held", why, b)
	case !errors.Is(err, os.ErrDeadlineExceeded):
		t.Fatalf("%s: connection failed while held (a hold must never close or reset): %v", why, err)
	}
}

// sequence writes numbered lines 0..total-1 and checks that they come back
// in order with no gap and no duplicate.
type sequence struct {
	total int
	got   atomic.Int64 // lines received so far, all in order
	recvd chan error   // the receiver's verdict
	sent  chan error   // the sender's verdict
}

// runSequence sends total numbered lines on c (the first `paced` of them
// slowly, the rest as fast as the connection takes them) and reads them
// back from the echo.
func runSequence(c *net.TCPConn, total, paced int) *sequence {
	s := &sequence{total: total, recvd: make(chan error, 1), sent: make(chan error, 1)}
	go func() {
		w := bufio.NewWriter(c)
		for i := range total {
			fmt.Fprintf(w, "%08d\n", i)
			if i < paced && i%20 == 19 {
				if err := w.Flush(); err != nil {
					s.sent <- err
					return
				}
				time.Sleep(2 * time.Millisecond)
			}
		}
		s.sent <- w.Flush()
	}()
	go func() {
		sc := bufio.NewScanner(c)
		for want := range total {
			if !sc.Scan() {
				s.recvd <- fmt.Errorf("stream ended after line %d of %d: %v", want, total, sc.Err())
				return
			}
			got, err := strconv.Atoi(sc.Text())
			if err != nil || got != want {
				s.recvd <- fmt.Errorf("stream has a hole or is reordered: line %q where %08d was due", sc.Text(), want)
				return
			}
			s.got.Add(1)
		}
		s.recvd <- nil
	}()
	return s
}

// noVerdictYet fails if either side of the sequence has already finished
// with an error (a reset or close while held).
func (s *sequence) noVerdictYet(t *testing.T) {
	t.Helper()
	select {
	case err := <-s.recvd:
		t.Fatalf("receiver finished early: %v", err)
	default:
	}
	select {
	case err := <-s.sent:
		if err != nil {
			t.Fatalf("sender failed while held: %v", err)
		}
		s.sent <- nil
	default:
	}
}
