package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"mpim/gateway/wire"
	pb "mpim/proto/mpimpb"
)

// Close codes the gateway uses besides the standard ones.
const (
	closeKicked = 4001 // the session was kicked (see the kicked push)
)

// identity is who a session is logged in as; it never changes once set.
type identity struct {
	uid    uint64
	user   string
	device string
	// ap: the cluster runs in AP mode (the deliverer orders by message id,
	// not by seq).
	ap bool
}

// session is one client connection. Two goroutines own it for its whole
// life: the reader (decodes frames, serves auth ops inline and other ops on
// up to MaxInflight goroutines) and the deliverer (pushes messages in seq
// order per conversation, exactly once per device). The writer — the only
// one that writes data frames, from a bounded queue — runs only while the
// queue has frames, and pings come from a timer: an idle connection keeps
// no writer goroutine (its stack was a third of an idle session's memory).
type session struct {
	g    *Gateway
	conn *websocket.Conn
	cork *corkConn // under conn: the writer corks it while it drains out
	id   string
	ip   string // the client's address, for the guard's limits

	ident  atomic.Pointer[identity]
	authed chan struct{} // closed at login or resume
	gone   bool          // guarded by g.mu: forgotten, never index again
	// watching counts the users whose presence this session follows
	// (guarded by g.mu; at most maxWatched).
	watching int

	out       *queue[[]byte]
	pinger    *time.Timer
	wmu       sync.Mutex // guards writing and noWriter
	writing   bool       // a writer goroutine is draining out
	noWriter  bool       // closed: no writer starts any more
	inflight  chan struct{}
	bucket    tokenBucket
	closing   chan struct{}
	closeOnce sync.Once
	ops       sync.WaitGroup
	loops     sync.WaitGroup

	// The deliverer's inbox, which any goroutine may hand pushes and
	// catch-up requests; the deliverer's own state lives in its loop.
	events  *queue[event]
	catchup chan struct{}
	isReady atomic.Bool

	// typed is when this connection last sent a typing notice, per
	// conversation (TypingInterval); made on first use. shards is the
	// shard of each send target's conversation, as CP nodes named it
	// (learnShard). typedMu guards both.
	typedMu sync.Mutex
	typed   map[string]time.Time
	shards  map[string]int
}

func newSession(g *Gateway, conn *websocket.Conn, cork *corkConn, id string) *session {
	s := &session{g: g, conn: conn, cork: cork, id: id, authed: make(chan struct{}),
		out: newQueue[[]byte](g.cfg.SendQueue), inflight: make(chan struct{}, g.cfg.MaxInflight),
		closing: make(chan struct{}), bucket: newTokenBucket(g.cfg.RateLimit, g.cfg.RateBurst),
		events: newQueue[event](eventBuffer), catchup: make(chan struct{}, 1)}
	return s
}

func (s *session) start() {
	s.loops.Add(2)
	s.pinger = time.AfterFunc(s.g.cfg.PingInterval, s.ping)
	// A connection that never logs in holds a slot for nothing.
	time.AfterFunc(s.g.cfg.LoginTimeout, func() {
		if s.who() == nil {
			s.close(websocket.ClosePolicyViolation, fmt.Sprintf("log in or resume within %v of connecting", s.g.cfg.LoginTimeout))
		}
	})
	go func() { defer s.loops.Done(); s.readLoop() }()
	go func() { defer s.loops.Done(); s.deliverLoop() }()
}

// wait blocks until the session's goroutines have ended.
func (s *session) wait() { s.loops.Wait() }

func (s *session) who() *identity { return s.ident.Load() }

// uid of the session, 0 before login.
func (s *session) uidOf() uint64 {
	if id := s.who(); id != nil {
		return id.uid
	}
	return 0
}

// close ends the session with a close frame; safe to call many times and
// from any goroutine. The close frame is written with a short deadline so
// that a client that stopped reading cannot hold the session open.
func (s *session) close(code int, text string) {
	s.closeOnce.Do(func() {
		close(s.closing)
		s.pinger.Stop()
		s.wmu.Lock()
		s.noWriter = true
		s.wmu.Unlock()
		go func() {
			s.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text), time.Now().Add(time.Second))
			s.conn.Close()
		}()
	})
}

func (s *session) closed() bool {
	select {
	case <-s.closing:
		return true
	default:
		return false
	}
}

// send queues a frame for the client. A full queue means the client is not
// reading: it is dropped rather than allowed to block anyone.
func (s *session) send(frame []byte) bool {
	if s.closed() {
		return false
	}
	if s.out.push(frame) {
		s.kickWriter()
		return true
	}
	s.g.metrics.dropped.Inc()
	s.g.log.Warn("client too slow: send queue full, dropping it", "session", s.id)
	s.close(websocket.ClosePolicyViolation, "too slow: send queue full")
	return false
}

// sendEphemeral queues a frame that may be lost without harm — typing,
// receipts, presence — only while the queue is at most half full: past
// that it is dropped and counted, and the client stays. Only what a client
// must not miss (messages, replies) drops a client that does not read, so
// another user's typing cannot disconnect anyone.
func (s *session) sendEphemeral(frame []byte) {
	if s.closed() {
		return
	}
	if s.out.free() > s.g.cfg.SendQueue/2 && s.out.push(frame) {
		s.kickWriter()
		return
	}
	s.g.metrics.ephemeralDropped.Inc()
}

// typingAllowed reports whether a typing notice in conv may go out now,
// recording it.
func (s *session) typingAllowed(conv string, now time.Time) bool {
	s.typedMu.Lock()
	defer s.typedMu.Unlock()
	if last, ok := s.typed[conv]; ok && now.Sub(last) < s.g.cfg.TypingInterval {
		return false
	}
	if s.typed == nil || len(s.typed) > 256 {
		s.typed = map[string]time.Time{}
	}
	s.typed[conv] = now
	return true
}

// sendPaced queues a frame of a long run (a login backlog, a catch-up,
// a gap fill), paced by the client's reading: while the send queue is
// full it waits for room instead of dropping the client, so a long
// backlog is not mistaken for a slow client. Only the deliverer sends
// paced (the queue's space signal has one waiter). It reports false when
// the session closes, or when the client has made no room within
// roomPatience: then it is too slow and is dropped.
func (s *session) sendPaced(frame []byte) bool {
	var timer *time.Timer
	for !s.out.push(frame) {
		if timer == nil {
			timer = time.NewTimer(roomPatience)
			defer timer.Stop()
		}
		select {
		case <-s.out.space:
		case <-s.closing:
			return false
		case <-timer.C:
			s.g.metrics.dropped.Inc()
			s.close(websocket.ClosePolicyViolation, "too slow: the backlog did not drain")
			return false
		}
		if s.closed() {
			return false
		}
	}
	s.kickWriter()
	return true
}

// roomPatience is how long a backlog waits for a client to read.
const roomPatience = 30 * time.Second

func (s *session) readLoop() {
	defer s.finish()
	cfg := s.g.cfg
	s.conn.SetReadLimit(wire.MaxFrame)
	alive := func() { s.conn.SetReadDeadline(time.Now().Add(cfg.PongTimeout)) }
	alive()
	s.conn.SetPongHandler(func(string) error { alive(); return nil })
	for {
		mt, data, err := s.conn.ReadMessage()
		read := time.Now()
		if err != nil {
			// Over-long frames were answered with 1009 by the library.
			s.close(websocket.CloseNormalClosure, "")
			return
		}
		alive()
		var req *wire.Request
		var id json.RawMessage
		var werr *wire.Error
		if mt == websocket.TextMessage {
			req, id, werr = wire.Decode(data)
		} else {
			werr = wire.Errorf(wire.BadRequest, "binary frames are not accepted; send JSON in text frames")
		}
		// Every frame counts against the limit, malformed ones included.
		if !s.bucket.allow(time.Now()) {
			s.g.metrics.requests.WithLabelValues("any", string(wire.RateLimited)).Inc()
			s.send(wire.ErrorReply(id, wire.Errorf(wire.RateLimited, "more than %g requests per second on this connection; slow down and retry", cfg.RateLimit)))
			continue
		}
		if werr != nil {
			s.g.metrics.requests.WithLabelValues("invalid", string(werr.Code)).Inc()
			s.send(wire.ErrorReply(id, werr))
			continue
		}
		if !wire.NeedsAuth(req.Op) {
			// Auth ops run to completion before the next frame is read,
			// so that a request pipelined behind a login already sees the
			// session authenticated. They run on a goroutine of their own
			// all the same: a node call grows a stack to 8 KiB or more, and
			// this loop's stack stays grown for the life of the
			// connection (stackless waiting keeps idle sessions small).
			onFreshStack(func() { s.serve(req, read) })
			continue
		}
		select {
		case s.inflight <- struct{}{}:
		case <-s.closing:
			return
		}
		s.ops.Add(1)
		// On a worker that keeps its stack between requests: a goroutine
		// of its own would grow a fresh one each time.
		s.g.work.Go(func() {
			defer func() { <-s.inflight; s.ops.Done() }()
			s.serve(req, read)
		})
	}
}

// finish runs when the reader ends: the session leaves every index and its
// route is removed.
func (s *session) finish() {
	s.close(websocket.CloseNormalClosure, "")
	s.ops.Wait()
	s.g.mu.Lock()
	s.gone = true
	s.g.mu.Unlock()
	s.g.forget(s)
	if id := s.who(); id != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		s.g.nodes.call(ctx, s.g.cfg.CallTimeout, readCall, func(ctx context.Context, n *nodeConn) error {
			_, err := n.presence.Unbind(ctx, &pb.BindRequest{Caller: s.caller(), Gateway: s.g.cfg.ID})
			return err
		})
		cancel()
	}
}

// kickWriter starts a writer unless one is draining the queue already.
func (s *session) kickWriter() {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.writing || s.noWriter {
		return
	}
	s.writing = true
	s.loops.Add(1)
	go func() { defer s.loops.Done(); s.write() }()
}

// write delivers the send queue to the client and ends when it is empty.
// A frame queued after the last pop either finds writing still set (and
// this loop goes on) or starts a new writer. The frames of one drain go
// out in one socket write (corkConn).
func (s *session) write() {
	cfg := s.g.cfg
	for {
		s.cork.cork()
		for frame, ok := s.out.pop(); ok; frame, ok = s.out.pop() {
			s.conn.SetWriteDeadline(time.Now().Add(cfg.WriteTimeout))
			if err := s.conn.WriteMessage(websocket.TextMessage, frame); err != nil {
				s.cork.uncork()
				s.close(websocket.CloseGoingAway, "write failed")
				return
			}
		}
		if err := s.cork.uncork(); err != nil {
			s.close(websocket.CloseGoingAway, "write failed")
			return
		}
		s.wmu.Lock()
		if s.noWriter || s.out.empty() {
			s.writing = false
			s.wmu.Unlock()
			return
		}
		s.wmu.Unlock()
	}
}

// ping pings the client every PingInterval (from a timer, not a goroutine
// per session); a ping that cannot be written ends the session.
func (s *session) ping() {
	if s.closed() {
		return
	}
	if err := s.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(s.g.cfg.WriteTimeout)); err != nil {
		s.close(websocket.CloseGoingAway, "write failed")
		return
	}
	s.pinger.Reset(s.g.cfg.PingInterval)
}

// kick tells the client why and closes the session.
func (s *session) kick(reason, message string) {
	s.send(wire.Push(wire.PushKicked, kickedFields{Reason: reason, Message: message}))
	// Give the writer a moment to flush the push before the close frame.
	time.AfterFunc(100*time.Millisecond, func() { s.close(closeKicked, "kicked: "+reason) })
}

// caller is the identity a node acts for.
func (s *session) caller() *pb.Caller {
	id := s.who()
	if id == nil {
		return nil
	}
	return &pb.Caller{Uid: id.uid, User: id.user, Device: id.device, Gateway: s.g.cfg.ID, Session: s.id}
}

// authenticate makes the session act as id and indexes it; it reports
// false when the session already has an identity or is closing.
func (s *session) authenticate(id identity) bool {
	if !s.ident.CompareAndSwap(nil, &id) {
		return false
	}
	s.g.mu.Lock()
	if !s.gone {
		set := s.g.byUID[id.uid]
		if set == nil {
			set = map[*session]struct{}{}
			s.g.byUID[id.uid] = set
		}
		set[s] = struct{}{}
	}
	s.g.mu.Unlock()
	return true
}

// bind (re)binds the session's presence route.
func (s *session) bind(ctx context.Context) {
	s.g.nodes.call(ctx, s.g.cfg.CallTimeout, readCall, func(ctx context.Context, n *nodeConn) error {
		_, err := n.presence.Bind(ctx, &pb.BindRequest{Caller: s.caller(), Gateway: s.g.cfg.ID, TtlMs: s.g.cfg.RouteTTL.Milliseconds()})
		return err
	})
}

// onFreshStack runs fn on a new goroutine and waits for it. A session's
// long-lived goroutines call through it for work with deep stacks (node
// calls), so that their own stacks stay at the size an idle wait needs:
// goroutine stacks were most of an idle connection's memory (docs/benchmarks.md).
func onFreshStack(fn func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	<-done
}

// tokenBucket is the per-connection rate limiter.
type tokenBucket struct {
	rate, burst, tokens float64
	last                time.Time
	mu                  sync.Mutex
}

func newTokenBucket(rate float64, burst int) tokenBucket {
	return tokenBucket{rate: rate, burst: float64(burst), tokens: float64(burst)}
}

func (b *tokenBucket) allow(now time.Time) bool {
	if b.rate == 0 {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.last.IsZero() {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
