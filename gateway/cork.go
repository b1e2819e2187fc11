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
// gorilla/websocket serializes its writes to the connection; the socket
// write of a flush happens outside mu, so that Close never waits for it.
type corkConn struct {
	net.Conn
	mu     sync.Mutex
	corked bool
	buf    []byte // only while frames are collected
	// deadline is the last write deadline gorilla set while corked; the
	// flush writes under it.
	deadline time.Time
}

// corkFlushAt bounds what a cork collects before it writes anyway.
const corkFlushAt = 32 << 10

var corkBufs = sync.Pool{New: func() any { b := make([]byte, 0, corkFlushAt+4<<10); return &b }}

// cork starts collecting writes.
func (c *corkConn) cork() {
	c.mu.Lock()
	c.corked = true
	c.mu.Unlock()
}

// uncork writes what was collected and lets later writes pass through.
func (c *corkConn) uncork() error {
	c.mu.Lock()
	c.corked = false
	buf, deadline := c.take()
	c.mu.Unlock()
	return c.writeOut(buf, deadline)
}

// take hands over the collected bytes (mu held).
func (c *corkConn) take() ([]byte, time.Time) {
	buf := c.buf
	c.buf = nil
	return buf, c.deadline
}

func (c *corkConn) writeOut(buf []byte, deadline time.Time) error {
	if len(buf) == 0 {
		return nil
	}
	if !deadline.IsZero() {
		c.Conn.SetWriteDeadline(deadline)
	}
	_, err := c.Conn.Write(buf)
	buf = buf[:0]
	corkBufs.Put(&buf)
	return err
}

// Write collects p while corked, and writes it through otherwise.
func (c *corkConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	if !c.corked {
		c.mu.Unlock()
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
	buf, deadline := c.take()
	c.mu.Unlock()
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

// Close writes what is collected (a close frame may be among it), within
// a second, then closes.
func (c *corkConn) Close() error {
	c.mu.Lock()
	c.corked = false
	buf, _ := c.take()
	c.mu.Unlock()
	c.writeOut(buf, time.Now().Add(time.Second))
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
	w.conn = &corkConn{Conn: nc}
	return w.conn, brw, nil
}
