package cp

import (
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mpim/internal/clustertls"
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
	ln  net.Listener
	log *slog.Logger
	// client dials peers over TLS (nil: plain TCP).
	client *tls.Config
	mu     sync.Mutex
	shards map[uint16]*streamLayer
	rpc    *subListener
	done   chan struct{}
	wg     sync.WaitGroup
}

// Listen starts the mux on addr. With creds, every connection, both
// ways, is mutual TLS with the cluster's certificates (package
// clustertls): a peer without one never gets its header read.
func Listen(addr string, log *slog.Logger, creds *clustertls.Credentials) (*Mux, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("cp: listen %s: %w", addr, err)
	}
	m := &Mux{ln: ln, log: log, shards: map[uint16]*streamLayer{}, done: make(chan struct{})}
	if creds != nil {
		m.ln, m.client = tls.NewListener(ln, creds.Server()), creds.Client()
	}
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
		sl = &streamLayer{subListener: newSubListener(m.ln.Addr(), m.done), shard: uint16(shard), mux: m}
		m.shards[uint16(shard)] = sl
	}
	return sl
}

// RPCListener is the listener of node-to-node RPC connections.
func (m *Mux) RPCListener() net.Listener { return m.rpc }

// DialRPC opens an RPC connection to the mux at addr.
func (m *Mux) DialRPC(addr string, timeout time.Duration) (net.Conn, error) {
	return m.dial(addr, [3]byte{kindRPC}, timeout)
}

func (m *Mux) dial(addr string, hdr [3]byte, timeout time.Duration) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(timeout))
	if m.client != nil {
		tc := tls.Client(c, m.client)
		if err := tc.Handshake(); err != nil {
			c.Close()
			return nil, fmt.Errorf("cp: TLS with %s: %w", addr, err)
		}
		c = tc
	}
	if _, err := c.Write(hdr[:]); err != nil {
		c.Close()
		return nil, err
	}
	c.SetDeadline(time.Time{})
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
	mux   *Mux
}

func (s *streamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	var hdr [3]byte
	hdr[0] = kindRaft
	binary.BigEndian.PutUint16(hdr[1:], s.shard)
	return s.mux.dial(string(address), hdr, timeout)
}
