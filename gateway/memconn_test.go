package gateway

import (
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// memPipe returns the two ends of an in-memory connection. It is net.Pipe
// with two differences the delivery tests need. Each direction buffers up
// to window bytes, as a socket buffer does, so a writer blocks only once
// the reader has fallen that far behind. And an end's reading can be
// paused exactly: a paused end reads nothing more, whereas a net.Pipe Read
// already in progress would still take the next write. Every wait is a
// sync.Cond wait and every deadline a time.AfterFunc, so under
// testing/synctest a blocked reader or writer is durably blocked and the
// bubble's fake clock moves past it.
func memPipe(window int) (a, b *memConn) {
	ab, ba := newMemStream(window), newMemStream(window)
	return &memConn{in: ba, out: ab, name: "a"}, &memConn{in: ab, out: ba, name: "b"}
}

// memConn is one end of a memPipe.
type memConn struct {
	in, out *memStream
	name    string
}

// memStream is one direction of a memPipe.
type memStream struct {
	mu     sync.Mutex
	cond   *sync.Cond
	buf    []byte
	window int
	// wclosed: the writing end closed (the reader drains, then reads EOF);
	// rclosed: the reading end closed (writes fail).
	wclosed, rclosed bool
	paused           bool
	rdl, wdl         memDeadline
}

// memDeadline is a deadline that wakes the stream's waiters when it passes.
type memDeadline struct {
	at    time.Time
	timer *time.Timer
}

func newMemStream(window int) *memStream {
	s := &memStream{window: window}
	s.cond = sync.NewCond(&s.mu)
	return s
}

// set moves d to t (zero: none) and wakes s's waiters when it passes.
func (s *memStream) set(d *memDeadline, t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d.timer != nil {
		d.timer.Stop()
	}
	d.at, d.timer = t, nil
	if !t.IsZero() {
		d.timer = time.AfterFunc(time.Until(t), func() {
			s.mu.Lock()
			s.cond.Broadcast()
			s.mu.Unlock()
		})
	}
	s.cond.Broadcast()
}

func (d *memDeadline) passed() bool { return !d.at.IsZero() && !time.Now().Before(d.at) }

func (c *memConn) Read(p []byte) (int, error) {
	s := c.in
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		switch {
		case s.rclosed:
			return 0, net.ErrClosed
		case s.rdl.passed():
			return 0, os.ErrDeadlineExceeded
		case s.paused: // wait
		case len(s.buf) > 0:
			n := copy(p, s.buf)
			s.buf = s.buf[n:]
			s.cond.Broadcast()
			return n, nil
		case s.wclosed:
			return 0, io.EOF
		}
		s.cond.Wait()
	}
}

func (c *memConn) Write(p []byte) (int, error) {
	s := c.out
	s.mu.Lock()
	defer s.mu.Unlock()
	written := 0
	for len(p) > 0 {
		switch {
		case s.wclosed:
			return written, net.ErrClosed
		case s.rclosed:
			return written, io.ErrClosedPipe
		case s.wdl.passed():
			return written, os.ErrDeadlineExceeded
		case len(s.buf) < s.window:
			n := min(len(p), s.window-len(s.buf))
			s.buf = append(s.buf, p[:n]...)
			p, written = p[n:], written+n
			s.cond.Broadcast()
			continue
		}
		s.cond.Wait()
	}
	return written, nil
}

// pause stops (or resumes) this end's reading; what is written to it
// stays buffered, up to the window, and then blocks the writer.
func (c *memConn) pause(paused bool) {
	c.in.mu.Lock()
	c.in.paused = paused
	c.in.cond.Broadcast()
	c.in.mu.Unlock()
}

func (c *memConn) Close() error {
	for _, s := range []*memStream{c.in, c.out} {
		s.mu.Lock()
		if s == c.in {
			s.rclosed = true
		} else {
			s.wclosed = true
		}
		s.cond.Broadcast()
		s.mu.Unlock()
	}
	c.SetDeadline(time.Time{})
	return nil
}

func (c *memConn) SetDeadline(t time.Time) error {
	c.SetReadDeadline(t)
	return c.SetWriteDeadline(t)
}
func (c *memConn) SetReadDeadline(t time.Time) error  { c.in.set(&c.in.rdl, t); return nil }
func (c *memConn) SetWriteDeadline(t time.Time) error { c.out.set(&c.out.wdl, t); return nil }
func (c *memConn) LocalAddr() net.Addr                { return memAddr(c.name) }
func (c *memConn) RemoteAddr() net.Addr               { return memAddr("peer-of-" + c.name) }

type memAddr string

func (a memAddr) Network() string { return "mem" }
func (a memAddr) String() string  { return string(a) }
