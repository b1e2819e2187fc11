// Package gateway is the WebSocket front of the chat system: it speaks the
// client protocol (package wire), keeps sessions and the uid -> sessions
// index, calls nodes over gRPC with health checks and failover, and
// delivers pushes that arrive on its Redis channel or, as the fallback
// path, on the stream from its node.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	"mpim/gateway/wire"
	"mpim/internal/profiling"
	"mpim/internal/workers"
	pb "mpim/proto/mpimpb"
)

// Gateway is a running gateway.
type Gateway struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics
	guard   *guard
	nodes   *nodePool
	rdb     *redis.Client
	redis   *subscriber
	up      websocket.Upgrader
	// work runs the sessions' requests (session.readLoop).
	work *workers.Pool

	// mu guards the session indexes and session.gone. It is a leaf lock:
	// nothing else is locked while it is held, and nothing that can block
	// (network, channel sends) runs under it.
	mu        sync.RWMutex
	sessions  map[*session]struct{}
	byUID     map[uint64]map[*session]struct{}
	watchers  map[string]map[*session]struct{} // presence subscriptions by user name
	sessionID uint64

	ln     net.Listener
	srv    *http.Server
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Start begins serving.
func Start(cfg Config) (*Gateway, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("gateway", cfg.ID)
	g := newGateway(cfg, log)
	var err error
	if g.nodes, err = newNodePool(cfg.Nodes, cfg.HealthInterval, cfg.TLS, log); err != nil {
		return nil, err
	}
	g.nodes.onHealth = func(addr string, ok bool) {
		v := 0.0
		if ok {
			v = 1
		}
		g.metrics.nodeHealthy.WithLabelValues(addr).Set(v)
	}
	if g.ln, err = net.Listen("tcp", cfg.ListenAddr); err != nil {
		g.nodes.close()
		return nil, fmt.Errorf("gateway: listen %s: %w", cfg.ListenAddr, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	g.cancel = cancel
	// One round of health checks before serving: until it, every node
	// counts as unhealthy, and a round half done would send a client's
	// first requests past its own node (in AP, a registration on one node
	// and the login on another that has not heard of it yet).
	g.nodes.checkAll(ctx)
	g.goRun(func() { g.nodes.watch(ctx) })
	if cfg.RedisAddr != "" {
		g.rdb = redis.NewClient(&redis.Options{Addr: cfg.RedisAddr, Password: cfg.RedisPassword, DialTimeout: cfg.RedisTimeout,
			ReadTimeout: cfg.RedisTimeout, WriteTimeout: cfg.RedisTimeout, MaxRetries: -1})
		g.redis = newSubscriber(g)
		g.goRun(func() { g.redis.run(ctx) })
	} else {
		g.metrics.degraded.Set(1)
	}
	g.goRun(func() { g.attach(ctx) })
	g.goRun(func() { g.heartbeat(ctx) })
	mux := http.NewServeMux()
	mux.HandleFunc("/ws", g.serveWS)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.Handle("/metrics", promhttp.HandlerFor(g.metrics.reg, promhttp.HandlerOpts{}))
	mux.Handle("/debug/spans", g.cfg.Spans)
	if g.cfg.Pprof {
		profiling.Serve(mux)
	}
	g.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	g.goRun(func() {
		if err := g.srv.Serve(g.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http serve", "err", err)
		}
	})
	return g, nil
}

// newGateway returns a gateway's sessions state, without nodes, listener
// or background loops (Start adds them; tests put a gateway in front of
// fake nodes).
func newGateway(cfg Config, log *slog.Logger) *Gateway {
	g := &Gateway{cfg: cfg, log: log, metrics: newMetrics(cfg.ID), guard: newGuard(cfg),
		sessions: map[*session]struct{}{}, byUID: map[uint64]map[*session]struct{}{}, watchers: map[string]map[*session]struct{}{}}
	g.up = websocket.Upgrader{ReadBufferSize: 1024, WriteBufferSize: 1024, CheckOrigin: g.checkOrigin,
		// Write buffers only while a frame is written: idle connections hold none.
		WriteBufferPool: &sync.Pool{}}
	g.work = workers.New(requestWorkerIdle)
	return g
}

// requestWorkerIdle is how long a request worker waits for the next
// request before it ends.
const requestWorkerIdle = 10 * time.Second

func (g *Gateway) goRun(fn func()) {
	g.wg.Add(1)
	go func() { defer g.wg.Done(); fn() }()
}

// Addr is the listening address.
func (g *Gateway) Addr() string { return g.ln.Addr().String() }

// Close drops every client and stops.
func (g *Gateway) Close() error {
	g.cancel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	g.srv.Shutdown(ctx)
	cancel()
	g.mu.RLock()
	all := make([]*session, 0, len(g.sessions))
	for s := range g.sessions {
		all = append(all, s)
	}
	g.mu.RUnlock()
	for _, s := range all {
		s.close(websocket.CloseGoingAway, "gateway shutting down")
	}
	g.wg.Wait()
	for _, s := range all {
		s.wait()
	}
	g.work.Close()
	if g.rdb != nil {
		g.rdb.Close()
	}
	g.nodes.close()
	return nil
}

// checkOrigin accepts non-browser clients, the configured origins, and
// same-host pages when the host is an IP address or localhost. A same-host
// page under a DNS name is not enough: a page of the attacker's whose name
// is rebound to this gateway's address sends that name as both Host and
// Origin (DNS rebinding); such names must be listed in AllowedOrigins.
func (g *Gateway) checkOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	if slices.Contains(g.cfg.AllowedOrigins, "*") || slices.Contains(g.cfg.AllowedOrigins, origin) {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host != r.Host {
		return false
	}
	host := u.Hostname()
	return host == "localhost" || net.ParseIP(host) != nil
}

func (g *Gateway) serveWS(w http.ResponseWriter, r *http.Request) {
	ip := clientIP(r)
	if limit, why := g.guard.admit(ip); limit != "" {
		g.metrics.refused.WithLabelValues(limit).Inc()
		http.Error(w, why, http.StatusServiceUnavailable)
		return
	}
	cw := &corkingWriter{ResponseWriter: w}
	conn, err := g.up.Upgrade(cw, r, nil)
	if err != nil {
		g.guard.release(ip)
		return // the upgrader has answered with an HTTP error
	}
	g.mu.Lock()
	g.sessionID++
	s := newSession(g, conn, cw.conn, fmt.Sprintf("%s-%d", g.cfg.ID, g.sessionID))
	s.ip = ip
	g.sessions[s] = struct{}{}
	g.mu.Unlock()
	g.metrics.conns.Inc()
	s.start()
}

// forget removes a closed session from every index.
func (g *Gateway) forget(s *session) {
	g.mu.Lock()
	delete(g.sessions, s)
	if uid := s.uidOf(); uid != 0 {
		if set := g.byUID[uid]; set != nil {
			delete(set, s)
			if len(set) == 0 {
				delete(g.byUID, uid)
			}
		}
	}
	for user, set := range g.watchers {
		delete(set, s)
		if len(set) == 0 {
			delete(g.watchers, user)
		}
	}
	g.mu.Unlock()
	g.guard.release(s.ip)
	g.metrics.conns.Dec()
}

// maxWatched bounds the users one session follows the presence of.
const maxWatched = 256

func (g *Gateway) watch(s *session, users []string) {
	g.mu.Lock()
	for _, u := range users {
		set := g.watchers[u]
		if set == nil {
			set = map[*session]struct{}{}
			g.watchers[u] = set
		}
		if _, ok := set[s]; !ok && s.watching < maxWatched {
			set[s] = struct{}{}
			s.watching++
		}
		if len(set) == 0 {
			delete(g.watchers, u)
		}
	}
	g.mu.Unlock()
}

func (g *Gateway) sessionsOf(uid uint64) []*session {
	g.mu.RLock()
	defer g.mu.RUnlock()
	out := make([]*session, 0, len(g.byUID[uid]))
	for s := range g.byUID[uid] {
		out = append(out, s)
	}
	return out
}

func (g *Gateway) allAuthed() []*session {
	g.mu.RLock()
	defer g.mu.RUnlock()
	var out []*session
	for _, set := range g.byUID {
		for s := range set {
			out = append(out, s)
		}
	}
	return out
}

// dispatch hands a push from a node to the sessions it is for.
func (g *Gateway) dispatch(p *pb.Push, path string) {
	g.metrics.pushes.WithLabelValues(path).Inc()
	switch ev := p.Event.(type) {
	case *pb.Push_Message:
		if ev.Message.Ts > 0 {
			g.metrics.pushAge.WithLabelValues(path).Observe(time.Since(time.UnixMilli(ev.Message.Ts)).Seconds())
		}
		m := message{Message: ev.Message, frame: &sharedFrame{}}
		for _, uid := range p.ToUids {
			for _, s := range g.sessionsOf(uid) {
				s.offer(m, s.id == p.SkipSession)
			}
		}
	case *pb.Push_Receipt:
		frame := wire.Push(ev.Receipt.Kind, receiptFields{Conv: ev.Receipt.Conv, User: ev.Receipt.User, Seq: ev.Receipt.Seq, ID: ev.Receipt.Id})
		g.toUIDsEphemeral(p.ToUids, frame)
	case *pb.Push_Typing:
		g.toUIDsEphemeral(p.ToUids, wire.Push(wire.PushTyping, typingFields{Conv: ev.Typing.Conv, User: ev.Typing.User}))
	case *pb.Push_Presence:
		pc := ev.Presence
		frame := wire.Push(wire.PushPresence, presenceFields{User: pc.User, Online: pc.Online, Gateway: pc.Gateway})
		g.mu.RLock()
		var to []*session
		for s := range g.watchers[pc.User] {
			to = append(to, s)
		}
		g.mu.RUnlock()
		for _, s := range to {
			s.sendEphemeral(frame)
		}
	case *pb.Push_Resync:
		for _, uid := range p.ToUids {
			for _, s := range g.sessionsOf(uid) {
				s.offerResync(ev.Resync.Conv, ev.Resync.FromSeq)
			}
		}
	case *pb.Push_Kick:
		k := ev.Kick
		for _, s := range g.sessionsOf(k.Uid) {
			// An empty device kicks every device of the user.
			if id := s.who(); id != nil && (k.Device == "" || id.device == k.Device) && s.id != k.Session {
				s.kick(k.Reason, k.Message)
			}
		}
	}
}

// toUIDsEphemeral hands an ephemeral push (typing, a receipt) to the
// ready sessions of uids (see sendEphemeral).
func (g *Gateway) toUIDsEphemeral(uids []uint64, frame []byte) {
	for _, uid := range uids {
		for _, s := range g.sessionsOf(uid) {
			if s.ready() {
				s.sendEphemeral(frame)
			}
		}
	}
}

// catchUpAll makes every session pull what it may have missed (after the
// Redis subscription was broken for a while).
func (g *Gateway) catchUpAll() {
	for _, s := range g.allAuthed() {
		s.requestCatchUp()
	}
}

// rebindAll binds the presence route of every session again.
func (g *Gateway) rebindAll() {
	ctx, cancel := context.WithTimeout(context.Background(), g.cfg.RouteTTL/3)
	defer cancel()
	for _, s := range g.allAuthed() {
		s.bind(ctx)
	}
}

// heartbeat refreshes the presence route of every session.
func (g *Gateway) heartbeat(ctx context.Context) {
	t := time.NewTicker(g.cfg.RouteTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		g.rebindAll()
	}
}

// attach keeps the fallback push stream open to the preferred node,
// telling it whether this gateway's Redis subscription works.
func (g *Gateway) attach(ctx context.Context) {
	for ctx.Err() == nil {
		n := g.nodes.preferred()
		err := g.attachOnce(ctx, n)
		if ctx.Err() != nil {
			return
		}
		g.log.Debug("push stream ended; reattaching", "node", n.addr, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (g *Gateway) attachOnce(ctx context.Context, n *nodeConn) error {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := n.gateways.Attach(sctx)
	if err != nil {
		return err
	}
	redisOK := func() bool { return g.redis != nil && g.redis.healthy() }
	sent := redisOK()
	if err := stream.Send(&pb.GatewayStatus{Gateway: g.cfg.ID, RedisOk: sent}); err != nil {
		return err
	}
	// While detached, pushes may have been missed, but only if they
	// needed this stream: with the Redis subscription healthy they came
	// through Redis (and a subscription that broke and came back made its
	// own catch-up). A catch-up that is not needed is not free: in AP it
	// shows positions not yet settled, which the writes of other nodes
	// then move (a resync for the client).
	if !sent {
		g.catchUpAll()
	}
	errc := make(chan error, 1)
	go func() {
		for {
			p, err := stream.Recv()
			if err != nil {
				errc <- err
				return
			}
			g.dispatch(p, "stream")
		}
	}()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case err := <-errc:
			return err
		case <-g.nodes.changed:
			if g.nodes.preferred() != n {
				return errors.New("preferred node changed")
			}
		case <-t.C:
			if ok := redisOK(); ok != sent {
				sent = ok
				if err := stream.Send(&pb.GatewayStatus{Gateway: g.cfg.ID, RedisOk: ok}); err != nil {
					return err
				}
			}
		}
	}
}
