package proxy

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Errors returned by this package.
var (
	// ErrClosed is returned by Link after Close: the fault layer is shut down.
	ErrClosed = errors.New("proxy: net closed")
	// ErrMember is returned by Link when a member name is empty or a link
	// would join a member to itself.
	ErrMember = errors.New("proxy: bad member name")
)

const (
	// dialTimeout bounds how long an accepted connection waits for its
	// target. On loopback a dead member refuses at once; the bound matters
	// only for remote targets (an external Redis).
	dialTimeout = 5 * time.Second
	// maxAcceptBackoff caps the pause after a failed Accept (e.g. EMFILE).
	maxAcceptBackoff = time.Second
)

// Net is the set of links between named members and the faults on them.
// Faults are directional and keyed by member names, not by link: Hold(a, b)
// affects every connection on which bytes travel from a to b, on links that
// already exist and on links made later.
type Net struct {
	log  *slog.Logger
	done chan struct{} // closed by Close
	wg   sync.WaitGroup

	// state is the current fault table, replaced (never mutated) under mu,
	// so that pumps read it without locking.
	state atomic.Pointer[faultState]

	mu      sync.Mutex // guards the fields below; taken before Link.mu
	closed  bool
	links   []*Link
	dialing map[*int]context.CancelFunc // cancels pending dials on Close
}

// dir is a direction of travel: bytes going from member `from` to member `to`.
type dir struct{ from, to string }

// fault is what is applied to one direction.
type fault struct {
	held          bool
	delay, jitter time.Duration
	loss          float64 // share of chunks lost, in [0,1]
}

func (f fault) zero() bool { return !f.held && f.delay == 0 && f.jitter == 0 && f.loss == 0 }

// Loss emulation: a proxy has already acknowledged the bytes it read, so it
// cannot drop them without making a hole no real network makes. It does
// what TCP does for a lost segment instead: the chunk arrives one
// retransmission timeout late (rto, Linux's minimum), and each further
// loss of the retransmission doubles the wait, up to maxLosses in a row.
const (
	rto       = 200 * time.Millisecond
	maxLosses = 6
)

// due is when a chunk read at `at` with jitter sample u and loss sample l
// may be written.
func (f fault) due(at time.Time, u, l float64) time.Time {
	return at.Add(f.delay + time.Duration(u*float64(f.jitter)) + f.stall(l))
}

// stall is the retransmission wait of a chunk whose loss sample is l: it is
// lost k times in a row while l < loss^k (so each retransmission is lost
// again with probability loss), and waits rto·(2^k − 1).
func (f fault) stall(l float64) time.Duration {
	if f.loss <= 0 {
		return 0
	}
	k := 0
	for p := f.loss; k < maxLosses && l < p; p *= f.loss {
		k++
	}
	return rto * time.Duration(1<<k-1)
}

// faultState is an immutable snapshot of the fault table. changed is closed
// when the snapshot is replaced, which wakes every pump waiting on a hold or
// a delay so that it re-reads the new table.
type faultState struct {
	dirs    map[dir]fault
	changed chan struct{}
}

// DirFault is the fault on one direction, as reported by Faults.
type DirFault struct {
	From   string        `json:"from"`
	To     string        `json:"to"`
	Held   bool          `json:"held"`
	Delay  time.Duration `json:"delay"`
	Jitter time.Duration `json:"jitter"`
	// LossPercent is the share of chunks emulated as lost (see SetLoss).
	LossPercent int `json:"loss_percent,omitempty"`
}

// LinkState is one link as reported by Links. BytesFromTo counts bytes
// delivered to To (sent by From); BytesToFrom the reverse.
type LinkState struct {
	From   string `json:"from"`
	To     string `json:"to"`
	Addr   string `json:"addr"`
	Target string `json:"target"`
	Conns  int    `json:"conns"`
	// Accepted counts every connection the link ever carried: a reset
	// that made a member reconnect shows as a new one.
	Accepted    int64 `json:"accepted"`
	BytesFromTo int64 `json:"bytes_from_to"`
	BytesToFrom int64 `json:"bytes_to_from"`
}

// NewNet returns an empty Net with no faults. A nil log discards.
func NewNet(log *slog.Logger) *Net {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	n := &Net{
		log:     log,
		done:    make(chan struct{}),
		dialing: make(map[*int]context.CancelFunc),
	}
	n.state.Store(&faultState{dirs: map[dir]fault{}, changed: make(chan struct{})})
	return n
}

// Link is one proxy: connections made to Addr by member From are forwarded
// to the current target, the address of member To.
type Link struct {
	net      *Net
	from, to string
	ln       *net.TCPListener

	bytesFromTo atomic.Int64
	bytesToFrom atomic.Int64

	mu     sync.Mutex // guards the fields below; taken after Net.mu
	target string
	conns  map[*conn]struct{}
	// accepted counts connections carried (guarded like conns).
	accepted int64
}

// Link starts a proxy listening on a free 127.0.0.1 port; connections to it
// (made by member from) are forwarded to target (the address of member to).
func (n *Net) Link(from, to, target string) (*Link, error) {
	if from == "" || to == "" || from == to {
		return nil, fmt.Errorf("%w: link %q→%q needs two different non-empty names", ErrMember, from, to)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, ErrClosed
	}
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, fmt.Errorf("proxy: link %s→%s: listen on loopback: %w", from, to, err)
	}
	l := &Link{net: n, from: from, to: to, ln: ln, target: target, conns: map[*conn]struct{}{}}
	n.links = append(n.links, l)
	n.wg.Add(1)
	go l.serve()
	n.log.Debug("proxy: link up", "from", from, "to", to, "addr", l.Addr(), "target", target)
	return l, nil
}

// Addr is the proxy's listening address, the one member From should dial.
func (l *Link) Addr() string { return l.ln.Addr().String() }

// From is the member that dials through this link.
func (l *Link) From() string { return l.from }

// To is the member this link forwards to.
func (l *Link) To() string { return l.to }

// Target is where new connections currently go.
func (l *Link) Target() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.target
}

// SetTarget changes where new connections go (a restarted member on a new
// port); existing connections are not touched.
func (l *Link) SetTarget(addr string) {
	l.mu.Lock()
	l.target = addr
	l.mu.Unlock()
	l.net.log.Debug("proxy: link retargeted", "from", l.from, "to", l.to, "target", addr)
}

// serve accepts connections until the listener is closed.
func (l *Link) serve() {
	defer l.net.wg.Done()
	var backoff time.Duration
	for {
		c, err := l.ln.AcceptTCP()
		if err != nil {
			select {
			case <-l.net.done:
				return
			default:
			}
			backoff = min(max(2*backoff, 5*time.Millisecond), maxAcceptBackoff)
			l.net.log.Warn("proxy: accept failed, retrying", "from", l.from, "to", l.to, "err", err, "backoff", backoff)
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-l.net.done:
				t.Stop()
				return
			}
			continue
		}
		backoff = 0
		l.net.wg.Add(1) // serve is counted, so the counter is not zero here
		go l.handle(c)
	}
}

// handle dials the target for one accepted connection and starts its pumps.
// A target that cannot be dialled gets the accepted connection closed: that
// is what a dead member looks like.
func (l *Link) handle(down *net.TCPConn) {
	defer l.net.wg.Done()
	target := l.Target()
	ctx, cancel, ok := l.net.dialContext()
	if !ok {
		down.Close()
		return
	}
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", target)
	cancel()
	if err != nil {
		l.net.log.Debug("proxy: target unreachable, closing accepted connection",
			"from", l.from, "to", l.to, "target", target, "err", err)
		down.Close()
		return
	}
	up := raw.(*net.TCPConn)
	c := newConn(l, down, up)

	n := l.net
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		down.Close()
		up.Close()
		return
	}
	l.mu.Lock()
	l.conns[c] = struct{}{}
	l.accepted++
	l.mu.Unlock()
	n.wg.Add(1) // released by the last pump goroutine, in conn.exit
	n.mu.Unlock()
	c.start()
}

// dialContext returns a context for one dial that Close cancels. ok is false
// when the Net is already closed.
func (n *Net) dialContext() (ctx context.Context, cancel func(), ok bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, nil, false
	}
	ctx, stop := context.WithTimeout(context.Background(), dialTimeout)
	key := new(int)
	n.dialing[key] = stop
	return ctx, func() {
		stop()
		n.mu.Lock()
		delete(n.dialing, key)
		n.mu.Unlock()
	}, true
}

// remove forgets a finished connection.
func (l *Link) remove(c *conn) {
	l.mu.Lock()
	delete(l.conns, c)
	l.mu.Unlock()
}

// Hold makes bytes travelling from member a to member b wait, both on
// connections a dialled and on connections b dialled. Nothing is dropped,
// closed or reset; Release lets the bytes flow again in order.
func (n *Net) Hold(a, b string) {
	n.update(func(m map[dir]fault) {
		f := m[dir{a, b}]
		f.held = true
		m[dir{a, b}] = f
	})
	n.log.Info("proxy: hold", "from", a, "to", b)
}

// Release lets bytes travelling from a to b flow again, held bytes first.
func (n *Net) Release(a, b string) {
	n.update(func(m map[dir]fault) {
		f := m[dir{a, b}]
		f.held = false
		m[dir{a, b}] = f
	})
	n.log.Info("proxy: release", "from", a, "to", b)
}

// SetDelay adds latency to bytes travelling from a to b: each chunk is
// delivered at the time it was read plus d plus a uniform random share of
// jitter, never before a chunk read earlier. d=0, jitter=0 clears the delay.
// Negative values count as zero.
func (n *Net) SetDelay(a, b string, d, jitter time.Duration) {
	d, jitter = max(d, 0), max(jitter, 0)
	n.update(func(m map[dir]fault) {
		f := m[dir{a, b}]
		f.delay, f.jitter = d, jitter
		m[dir{a, b}] = f
	})
	n.log.Info("proxy: delay", "from", a, "to", b, "delay", d, "jitter", jitter)
}

// SetLoss makes percent of the chunks travelling from a to b arrive as a
// lost TCP segment would: after a retransmission timeout of 200 ms,
// doubled for each retransmission lost again. Bytes are never dropped
// (the proxy acknowledged them already) and never reordered: a stalled
// chunk holds back the ones behind it, as TCP's in-order delivery does.
// percent=0 clears the loss.
func (n *Net) SetLoss(a, b string, percent int) {
	percent = min(max(percent, 0), 100)
	n.update(func(m map[dir]fault) {
		f := m[dir{a, b}]
		f.loss = float64(percent) / 100
		m[dir{a, b}] = f
	})
	n.log.Info("proxy: loss", "from", a, "to", b, "percent", percent)
}

// Heal releases every hold and clears every delay and loss.
func (n *Net) Heal() {
	n.update(func(m map[dir]fault) { clear(m) })
	n.log.Info("proxy: heal")
}

// update replaces the fault table with a modified copy and wakes every pump
// waiting on the old one.
func (n *Net) update(change func(map[dir]fault)) {
	n.mu.Lock()
	defer n.mu.Unlock()
	old := n.state.Load()
	m := maps.Clone(old.dirs)
	change(m)
	maps.DeleteFunc(m, func(_ dir, f fault) bool { return f.zero() })
	n.state.Store(&faultState{dirs: m, changed: make(chan struct{})})
	close(old.changed)
}

// Faults returns the current directional faults, sorted by From then To.
func (n *Net) Faults() []DirFault {
	st := n.state.Load()
	out := make([]DirFault, 0, len(st.dirs))
	for d, f := range st.dirs {
		out = append(out, DirFault{From: d.from, To: d.to, Held: f.held, Delay: f.delay, Jitter: f.jitter,
			LossPercent: int(f.loss*100 + 0.5)})
	}
	SortDirFaults(out)
	return out
}

// SortDirFaults sorts directional faults by From, then To: the order
// every backend lists them in.
func SortDirFaults(fs []DirFault) {
	slices.SortFunc(fs, func(x, y DirFault) int {
		return cmp.Or(cmp.Compare(x.From, y.From), cmp.Compare(x.To, y.To))
	})
}

// Links lists the links in the order they were made, with their open
// connections and the bytes delivered in each direction.
func (n *Net) Links() []LinkState {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]LinkState, 0, len(n.links))
	for _, l := range n.links {
		l.mu.Lock()
		out = append(out, LinkState{
			From: l.from, To: l.to, Addr: l.Addr(), Target: l.target, Conns: len(l.conns), Accepted: l.accepted,
			BytesFromTo: l.bytesFromTo.Load(), BytesToFrom: l.bytesToFrom.Load(),
		})
		l.mu.Unlock()
	}
	return out
}

// Close closes every listener and every proxied connection and waits for
// all of the Net's goroutines to end. Held and delayed bytes are discarded.
// Close is idempotent.
func (n *Net) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		n.wg.Wait()
		return nil
	}
	n.closed = true
	close(n.done)
	for _, cancel := range n.dialing {
		cancel()
	}
	var conns []*conn
	var errs []error
	for _, l := range n.links {
		if err := l.ln.Close(); err != nil {
			errs = append(errs, fmt.Errorf("proxy: close link %s→%s: %w", l.from, l.to, err))
		}
		l.mu.Lock()
		for c := range l.conns {
			conns = append(conns, c)
		}
		l.mu.Unlock()
	}
	n.mu.Unlock()
	for _, c := range conns {
		c.closeSockets()
	}
	n.wg.Wait()
	n.log.Debug("proxy: net closed", "links", len(n.links), "conns", len(conns))
	return errors.Join(errs...)
}
