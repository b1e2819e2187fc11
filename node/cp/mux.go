package cp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// One node-to-node listener carries every shard's Raft traffic and the
// node-to-node RPCs, so that a fault on the link between two nodes hits
// every shard alike (Consul's RaftLayer and rqlite's tcp.Mux do the same).
// Each connection opens with a 3-byte header: a kind byte and, for Raft,
// the shard number.
const (
	kindRaft byte = 'R'
	kindRPC  byte = 'G'
)

// headerTimeout bounds how long an accepted connection may take to send
// its header.
const headerTimeout = 5 * time.Second

// ErrMuxClosed: the mux is closed.
var ErrMuxClosed = errors.New("cp: mux closed")

// Mux demultiplexes one listener into a raft.StreamLayer per shard and a
// listener for RPCs.
type Mux struct {
	ln     net.Listener
	log    *slog.Logger
	mu     sync.Mutex
	shards map[uint16]*streamLayer
	rpc    *subListener
	done   chan struct{}
	wg     sync.WaitGroup
}

// Listen starts the mux on addr.
func Listen(addr string, log *slog.Logger) (*Mux, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("cp: listen %s: %w", addr, err)
	}
	m := &Mux{ln: ln, log: log, shards: map[uint16]*streamLayer{}, done: make(chan struct{})}
	m.rpc = newSubListener(ln.Addr(), m.done)
	m.wg.Add(1)
	go m.serve()
	return m, nil
}

// Addr is the listening address.
func (m *Mux) Addr() net.Addr { return m.ln.Addr() }

// Close stops accepting; connections already handed out stay with their
// owners.
func (m *Mux) Close() error {
	select {
	case <-m.done:
		return nil
	default:
	}
	close(m.done)
	err := m.ln.Close()
	m.wg.Wait()
	return err
}

func (m *Mux) serve() {
	defer m.wg.Done()
	for {
		c, err := m.ln.Accept()
		if err != nil {
			select {
			case <-m.done:
				return
			default:
			}
			m.log.Warn("mux accept", "err", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		m.wg.Add(1)
		go func() { defer m.wg.Done(); m.route(c) }()
	}
}

func (m *Mux) route(c net.Conn) {
	var hdr [3]byte
	c.SetReadDeadline(time.Now().Add(headerTimeout))
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		c.Close()
		return
	}
	c.SetReadDeadline(time.Time{})
	var dst *subListener
	switch hdr[0] {
	case kindRPC:
		dst = m.rpc
	case kindRaft:
		shard := binary.BigEndian.Uint16(hdr[1:])
		m.mu.Lock()
		if sl := m.shards[shard]; sl != nil {
			dst = sl.subListener
		}
		m.mu.Unlock()
	}
	if dst == nil || !dst.deliver(c) {
		c.Close()
	}
}

// StreamLayer returns the raft.StreamLayer of one shard.
func (m *Mux) StreamLayer(shard int) raft.StreamLayer {
	m.mu.Lock()
	defer m.mu.Unlock()
	sl := m.shards[uint16(shard)]
	if sl == nil {
		sl = &streamLayer{subListener: newSubListener(m.ln.Addr(), m.done), shard: uint16(shard)}
		m.shards[uint16(shard)] = sl
	}
	return sl
}

// RPCListener is the listener of node-to-node RPC connections.
func (m *Mux) RPCListener() net.Listener { return m.rpc }

// DialRPC opens an RPC connection to the mux at addr.
func DialRPC(addr string, timeout time.Duration) (net.Conn, error) {
	return dial(addr, [3]byte{kindRPC}, timeout)
}

func dial(addr string, hdr [3]byte, timeout time.Duration) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	c.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := c.Write(hdr[:]); err != nil {
		c.Close()
		return nil, err
	}
	c.SetWriteDeadline(time.Time{})
	return c, nil
}

// subListener is a net.Listener fed by the mux.
type subListener struct {
	addr  net.Addr
	conns chan net.Conn
	done  <-chan struct{}
	once  sync.Once
	stop  chan struct{}
}

func newSubListener(addr net.Addr, done <-chan struct{}) *subListener {
	return &subListener{addr: addr, conns: make(chan net.Conn, 16), done: done, stop: make(chan struct{})}
}

func (l *subListener) deliver(c net.Conn) bool {
	// A closed listener first: its buffer may have room, and a select
	// with both ready picks either, which would park the connection
	// where no Accept will ever take it.
	select {
	case <-l.stop:
		return false
	case <-l.done:
		return false
	default:
	}
	select {
	case l.conns <- c:
		return true
	case <-l.stop:
		return false
	case <-l.done:
		return false
	}
}

func (l *subListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.stop:
		return nil, ErrMuxClosed
	case <-l.done:
		return nil, ErrMuxClosed
	}
}

func (l *subListener) Close() error {
	l.once.Do(func() { close(l.stop) })
	return nil
}

func (l *subListener) Addr() net.Addr { return l.addr }

// streamLayer is one shard's raft.StreamLayer.
type streamLayer struct {
	*subListener
	shard uint16
}

func (s *streamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	var hdr [3]byte
	hdr[0] = kindRaft
	binary.BigEndian.PutUint16(hdr[1:], s.shard)
	return dial(string(address), hdr, timeout)
}
