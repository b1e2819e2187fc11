package proxy

import (
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// bufSize is the size of one read: one chunk is at most this long.
	bufSize = 32 << 10
	// maxQueued bounds the bytes a direction keeps read but undelivered
	// (held or waiting out a delay). Past it the reader stops and TCP flow
	// control holds the rest in the sender's kernel buffers.
	maxQueued = 256 << 10
	// keepBuf: reads at least this long hand their pooled buffer to the
	// queue; shorter ones are copied out so small messages do not pin 32 KiB.
	keepBuf = bufSize / 4
)

var bufPool = sync.Pool{New: func() any { b := make([]byte, bufSize); return &b }}

// conn is one proxied TCP connection: down is the socket member From opened
// to the link, up the one the proxy opened to member To.
type conn struct {
	link     *Link
	down, up *net.TCPConn
	fwd, rev *pump // fwd carries From→To bytes (down→up), rev To→From
	live     atomic.Int32
}

func newConn(l *Link, down, up *net.TCPConn) *conn {
	c := &conn{link: l, down: down, up: up}
	c.fwd = newPump(c, dir{l.from, l.to}, down, up, &l.bytesFromTo)
	c.rev = newPump(c, dir{l.to, l.from}, up, down, &l.bytesToFrom)
	return c
}

// start runs the four goroutines of a connection: a reader and a writer per
// direction. The last one to end tears the connection down.
func (c *conn) start() {
	c.live.Store(4)
	go c.fwd.read()
	go c.fwd.write()
	go c.rev.read()
	go c.rev.write()
}

// exit is called by each pump goroutine as it ends.
func (c *conn) exit() {
	if c.live.Add(-1) != 0 {
		return
	}
	c.closeSockets()
	c.fwd.drop()
	c.rev.drop()
	c.link.remove(c)
	c.link.net.wg.Done()
}

func (c *conn) closeSockets() {
	c.down.Close()
	c.up.Close()
}

// chunk is one read, or the end of the stream (a FIN, or a reset when
// reset is set), waiting in a pump's queue.
type chunk struct {
	b      []byte
	pooled *[]byte // the pool buffer behind b, returned once b is written
	at     time.Time
	u      float64 // jitter sample in [0,1)
	l      float64 // loss sample in [0,1)
	end    bool
	reset  bool
}

// pump moves the bytes of one direction of one connection: read copies from
// src into the queue, write delivers the queue to dst when the direction is
// not held and each chunk's delay has passed.
type pump struct {
	c        *conn
	dir      dir
	src, dst *net.TCPConn
	bytes    *atomic.Int64
	done     <-chan struct{}

	data  chan struct{} // cap 1: the queue grew
	space chan struct{} // cap 1: the queue shrank, or the pump broke

	mu     sync.Mutex // guards the fields below
	q      []chunk
	head   int // q[head:] is the queue
	queued int // bytes in q[head:]
	broken bool
}

func newPump(c *conn, d dir, src, dst *net.TCPConn, bytes *atomic.Int64) *pump {
	return &pump{
		c: c, dir: d, src: src, dst: dst, bytes: bytes, done: c.link.net.done,
		data: make(chan struct{}, 1), space: make(chan struct{}, 1),
	}
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// read copies src into the queue until src ends or the pump breaks. The end
// of src (EOF or an error) is queued like data, so it is delivered after
// everything read before it.
func (p *pump) read() {
	defer p.c.exit()
	buf := bufPool.Get().(*[]byte)
	defer func() { bufPool.Put(buf) }()
	for p.waitSpace() {
		n, err := p.src.Read(*buf)
		if n > 0 {
			ch := chunk{at: time.Now(), u: rand.Float64(), l: rand.Float64()}
			if n >= keepBuf {
				ch.b, ch.pooled = (*buf)[:n], buf
				buf = bufPool.Get().(*[]byte)
			} else {
				ch.b = append([]byte(nil), (*buf)[:n]...)
			}
			p.push(ch)
		}
		if err != nil {
			p.push(chunk{at: time.Now(), u: rand.Float64(), l: 1, end: true, reset: !errors.Is(err, io.EOF)})
			return
		}
	}
}

// waitSpace blocks while the queue is full. It reports false when the pump
// is broken or the Net is closing.
func (p *pump) waitSpace() bool {
	for {
		p.mu.Lock()
		broken, full := p.broken, p.queued >= maxQueued
		p.mu.Unlock()
		switch {
		case broken:
			return false
		case !full:
			return true
		}
		select {
		case <-p.space:
		case <-p.done:
			return false
		}
	}
}

func (p *pump) push(ch chunk) {
	p.mu.Lock()
	if p.broken {
		p.mu.Unlock()
		if ch.pooled != nil {
			bufPool.Put(ch.pooled)
		}
		return
	}
	if p.head > 0 && p.head == len(p.q) {
		p.q, p.head = p.q[:0], 0
	}
	p.q = append(p.q, ch)
	p.queued += len(ch.b)
	p.mu.Unlock()
	signal(p.data)
}

// write delivers the queue to dst in order. It waits while the direction is
// held and until the head chunk is due; every change to the fault table
// wakes it, so a hold, a release or a new delay applies to chunks already
// queued. It ends after delivering the end of the stream, on a write error,
// or when the Net closes.
func (p *pump) write() {
	defer p.c.exit()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	var (
		vec   net.Buffers
		spent []*[]byte
	)
	for {
		st := p.c.link.net.state.Load()
		f := st.dirs[p.dir]
		p.mu.Lock()
		var head chunk
		empty := p.head == len(p.q)
		if !empty {
			head = p.q[p.head]
		}
		p.mu.Unlock()

		switch {
		case empty:
			select {
			case <-p.data:
			case <-p.done:
				return
			}
			continue
		case f.held:
			select {
			case <-st.changed:
			case <-p.done:
				return
			}
			continue
		}
		now := time.Now()
		if wait := f.due(head.at, head.u, head.l).Sub(now); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-st.changed:
				timer.Stop()
			case <-p.done:
				return
			}
			continue
		}
		if head.end {
			p.take(1)
			p.finish(head.reset)
			return
		}

		vec, spent = p.takeDue(f, now, vec[:0], spent[:0])
		out := vec // WriteTo consumes its receiver; keep vec's backing array
		n, err := out.WriteTo(p.dst)
		p.bytes.Add(n)
		for _, b := range spent {
			bufPool.Put(b)
		}
		clear(vec)
		clear(spent)
		if err != nil {
			p.fail(err)
			return
		}
	}
}

// takeDue removes from the queue every data chunk already due at now, up to
// the first end marker or the first chunk not yet due.
func (p *pump) takeDue(f fault, now time.Time, vec net.Buffers, spent []*[]byte) (net.Buffers, []*[]byte) {
	p.mu.Lock()
	k := p.head
	for ; k < len(p.q); k++ {
		ch := p.q[k]
		if ch.end || f.due(ch.at, ch.u, ch.l).After(now) {
			break
		}
		vec = append(vec, ch.b)
		if ch.pooled != nil {
			spent = append(spent, ch.pooled)
		}
	}
	p.takeLocked(k - p.head)
	p.mu.Unlock()
	signal(p.space)
	return vec, spent
}

func (p *pump) take(k int) {
	p.mu.Lock()
	p.takeLocked(k)
	p.mu.Unlock()
	signal(p.space)
}

func (p *pump) takeLocked(k int) {
	for i := p.head; i < p.head+k; i++ {
		p.queued -= len(p.q[i].b)
		p.q[i] = chunk{}
	}
	p.head += k
	if p.head == len(p.q) {
		p.q, p.head = p.q[:0], 0
	}
}

// finish passes the end of src on to dst: a FIN as a half-close, so the
// other direction keeps flowing; anything else as a reset.
func (p *pump) finish(reset bool) {
	if reset {
		p.dst.SetLinger(0)
		p.dst.Close()
		return
	}
	p.dst.CloseWrite()
}

// fail handles a write error: dst is gone, so the queue is dropped and the
// reader stopped. The other direction learns of it by reading dst and
// passes it on after the bytes it already read.
func (p *pump) fail(err error) {
	p.c.link.net.log.Debug("proxy: write failed, dropping direction",
		"from", p.dir.from, "to", p.dir.to, "err", err)
	p.drop()
	p.src.SetReadDeadline(time.Unix(1, 0))
	signal(p.space)
}

// drop marks the pump broken and returns its queued buffers to the pool.
func (p *pump) drop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.broken = true
	for _, ch := range p.q[p.head:] {
		if ch.pooled != nil {
			bufPool.Put(ch.pooled)
		}
	}
	clear(p.q)
	p.q, p.head, p.queued = nil, 0, 0
}
