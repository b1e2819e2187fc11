package gateway

import (
	"bufio"
	"net"
	"net/http"
	"sync"
	"time"
)

// corkConn is the connection under a session's websocket.Conn. While the
// session's writer drains its send queue the connection is corked: the
// frames gorilla writes collect in a buffer and reach the socket in one
// write when the queue is empty, or whenever corkFlushAt bytes have
// collected (TCP_CORK's idea, in user space). A burst of pushes to one
// client then costs one write system call instead of one per frame, which
// was 40 % of a gateway's CPU in a 100-member group (docs/benchmarks.md).
// Uncorked, writes pass straight through: the handshake, pings and close
// frames sent while no writer runs.
//
// gorilla/websocket serializes its own writes, but a flush comes from the
// session's writer, outside gorilla's lock: every socket write therefore
// holds sock, so that a frame written through (a close frame, say) cannot
// overtake frames collected before it. mu only guards the buffer and is
// never held across a socket write.
type corkConn struct {
	net.Conn
	sock   sockLock // held across each socket write
	mu     sync.Mutex
	corked bool
	buf    []byte // only while frames are collected
	// deadline is the last write deadline gorilla set while corked; the
	// flush writes under it (zero: the socket's own, set uncorked).
	deadline time.Time
}

func newCorkConn(c net.Conn) *corkConn { return &corkConn{Conn: c, sock: make(sockLock, 1)} }

// sockLock is a mutex made of a channel. A writer stuck on a client that
// does not read holds it, and a close frame queued meanwhile waits for it.
// It behaves as a sync.Mutex; it is a channel so that this wait is
// "durably blocked" for testing/synctest (a sync.Mutex wait is not), which
// lets the delivery tests move their fake clock past a slow client.
type sockLock chan struct{}

func (l sockLock) Lock()   { l <- struct{}{} }
func (l sockLock) Unlock() { <-l }

func (l sockLock) TryLock() bool {
	select {
	case l <- struct{}{}:
		return true
	default:
		return false
	}
}

// corkFlushAt bounds what a cork collects before it writes anyway.
const corkFlushAt = 32 << 10

var corkBufs = sync.Pool{New: func() any { b := make([]byte, 0, corkFlushAt+4<<10); return &b }}

// corkKeepCap is the largest buffer given back to the pool (one large
// frame can grow a buffer well past corkFlushAt).
const corkKeepCap = 64 << 10

// cork starts collecting writes.
func (c *corkConn) cork() {
	c.mu.Lock()
	c.corked = true
	c.mu.Unlock()
}

// uncork writes what was collected and lets later writes pass through.
// It takes the socket before it stops collecting, so that a write passing
// through after it cannot reach the socket before the collected frames.
func (c *corkConn) uncork() error {
	c.sock.Lock()
	defer c.sock.Unlock()
	c.mu.Lock()
	c.corked = false
	buf, deadline := c.take()
	c.mu.Unlock()
	return c.writeOut(buf, deadline)
}

// take hands over the collected bytes and their deadline (mu held).
func (c *corkConn) take() ([]byte, time.Time) {
	buf, deadline := c.buf, c.deadline
	c.buf, c.deadline = nil, time.Time{}
	return buf, deadline
}

// writeOut writes buf to the socket; sock is held.
func (c *corkConn) writeOut(buf []byte, deadline time.Time) error {
	if len(buf) == 0 {
		return nil
	}
	if !deadline.IsZero() {
		c.Conn.SetWriteDeadline(deadline)
	}
	_, err := c.Conn.Write(buf)
	if cap(buf) <= corkKeepCap {
		buf = buf[:0]
		corkBufs.Put(&buf)
	}
	return err
}

// Write collects p while corked, and writes it through otherwise.
func (c *corkConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	if !c.corked {
		c.mu.Unlock()
		c.sock.Lock()
		defer c.sock.Unlock()
		return c.Conn.Write(p)
	}
	if c.buf == nil {
		c.buf = *corkBufs.Get().(*[]byte)
	}
	c.buf = append(c.buf, p...)
	if len(c.buf) < corkFlushAt {
		c.mu.Unlock()
		return len(p), nil
	}
	// A full buffer goes out now; the cork stays on. Collecting is
	// serialized by gorilla, so nothing is collected meanwhile that could
	// be written ahead of it.
	buf, deadline := c.take()
	c.mu.Unlock()
	c.sock.Lock()
	defer c.sock.Unlock()
	if err := c.writeOut(buf, deadline); err != nil {
		return 0, err
	}
	return len(p), nil
}

// SetWriteDeadline applies at once when uncorked; while corked it is the
// deadline of the next flush.
func (c *corkConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	if c.corked {
		c.deadline = t
		c.mu.Unlock()
		return nil
	}
	c.mu.Unlock()
	return c.Conn.SetWriteDeadline(t)
}

// Close writes what is collected (a close frame may be among it), then
// closes. It waits at most a second for a write in progress (a client
// that stopped reading), then closes anyway, which ends that write.
func (c *corkConn) Close() error {
	for deadline := time.Now().Add(time.Second); ; time.Sleep(5 * time.Millisecond) {
		if c.sock.TryLock() {
			c.mu.Lock()
			c.corked = false
			buf, _ := c.take()
			c.mu.Unlock()
			c.writeOut(buf, time.Now().Add(time.Second))
			c.sock.Unlock()
			break
		}
		if time.Now().After(deadline) {
			break
		}
	}
	return c.Conn.Close()
}

// corkingWriter hands gorilla's upgrader a corkConn when it hijacks the
// HTTP connection.
type corkingWriter struct {
	http.ResponseWriter
	conn *corkConn
}

func (w *corkingWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, http.ErrNotSupported
	}
	nc, brw, err := h.Hijack()
	if err != nil {
		return nil, nil, err
	}
	w.conn = newCorkConn(nc)
	return w.conn, brw, nil
}
