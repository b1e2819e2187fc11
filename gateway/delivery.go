package gateway

import (
	"context"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"mpim/gateway/wire"
	"mpim/internal/spans"
	pb "mpim/proto/mpimpb"
)

// eventBuffer bounds the message pushes waiting for one session's
// deliverer. When it is full the push is dropped and the session pulls
// everything after its cursors instead (a catch-up), so nothing is lost.
const eventBuffer = 1024

// maxPage is the page size of the gateway's own pulls; maxSyncPages bounds
// the pages of one backlog or catch-up (what remains comes with the next
// catch-up).
const (
	maxPage      = 500
	maxSyncPages = 1000
)

// deliverer is a session's push state, owned by the session's deliverer
// goroutine (run) and touched by nothing else: that is what makes delivery
// exactly once and in order. Other goroutines hand it pushes and catch-up
// requests through the session's inbox (offer, offerResync,
// requestCatchUp). What differs between the modes — how a push is known
// to be new, what a gap means, how a catch-up resumes — is its order (CP:
// per-conversation seqs; AP: message ids and an exact sync cursor).
type deliverer struct {
	s     *session
	order order
	// backlogCursor is the sync cursor of the login backlog in progress.
	backlogCursor string
	// shown is the highest seq pushed per conversation: a resync matters
	// only to a client shown a position that moved.
	shown map[string]uint64
}

// order is what differs between the modes in delivering pushes once and
// in order.
type order interface {
	// live delivers a live push.
	live(e event)
	// fresh reports whether the device has not been pushed m, recording
	// that it now is.
	fresh(m message) bool
	// backlogPage takes a page of the login backlog, once pushed.
	backlogPage(rep *pb.SyncReply)
	// catchUp pushes everything the device has not been pushed.
	catchUp()
	// timer fires when held pushes are due (nil: never); expire delivers
	// them.
	timer() <-chan time.Time
	expire()
}

// event is a message push for the deliverer. silent marks the sender's
// own session: it has the message in its send reply, so the cursor moves
// past it without pushing it back.
type event struct {
	m      message
	silent bool
	// resync, when set, is a reorder of conv from this seq (m is nil).
	conv   string
	resync uint64
}

// message is a message as the deliverer handles it: a live push carries
// its frame, encoded at most once for every session of the gateway it is
// pushed to (a group message reaches many); a pulled one has none.
type message struct {
	*pb.Message
	frame *sharedFrame
}

// sharedFrame is a message push frame encoded on first use.
type sharedFrame struct {
	once sync.Once
	b    []byte
}

func (f *sharedFrame) get(m *pb.Message) []byte {
	f.once.Do(func() { f.b = messageFrame(m) })
	return f.b
}

func messageFrame(m *pb.Message) []byte {
	return wire.Push(wire.PushMessage, messageFields{Message: toWire(m)})
}

func (s *session) ready() bool { return s.isReady.Load() }

// offerResync hands the deliverer a reorder: positions of conv from seq on
// changed on the node.
func (s *session) offerResync(conv string, from uint64) {
	if !s.events.push(event{conv: conv, resync: from}) {
		s.requestCatchUp()
	}
}

// offer hands a message push to the deliverer.
func (s *session) offer(m message, silent bool) {
	if !s.events.push(event{m: m, silent: silent}) {
		s.requestCatchUp()
	}
}

func (s *session) requestCatchUp() {
	select {
	case s.catchup <- struct{}{}:
	default:
	}
}

// deliverLoop is the deliverer goroutine: from login on, it owns the
// session's deliverer.
func (s *session) deliverLoop() {
	select {
	case <-s.authed:
	case <-s.closing:
		return
	}
	d := &deliverer{s: s, shown: map[string]uint64{}}
	if s.who().ap {
		d.order = &apOrder{d: d}
	} else {
		d.order = &cpOrder{d: d, cursor: map[string]uint64{}}
	}
	d.run()
}

func (d *deliverer) run() {
	s := d.s
	// The login backlog first: pushes that arrive meanwhile wait in events,
	// so that none moves the cursor past a message not yet pulled. Until
	// it succeeds the session has no cursors, so it is retried rather than
	// replaced by a catch-up (which would start from seq 0).
	start := time.Now()
	for {
		werr := d.backlogOnFreshStack()
		if werr == nil {
			break
		}
		// A refusal that a retry cannot change (a node answering the
		// request itself wrong) or one that has lasted too long ends the
		// session with the reason, rather than a retry forever; the client
		// reconnects and tries again.
		if (werr.Code != wire.Unavailable && werr.Code != wire.Timeout) || time.Since(start) > backlogPatience {
			s.g.log.Warn("login backlog failed; closing the session", "session", s.id, "code", werr.Code, "err", werr.Message)
			s.close(websocket.CloseInternalServerErr, truncate("could not load your undelivered messages: "+string(werr.Code)+": "+werr.Message+"; reconnect to try again", 120))
			return
		}
		select {
		case <-s.closing:
			return
		case <-time.After(500 * time.Millisecond):
		}
	}
	s.isReady.Store(true)
	for {
		select {
		case <-s.events.ready:
			for e, ok := s.events.pop(); ok; e, ok = s.events.pop() {
				if e.resync > 0 {
					d.resync(e.conv, e.resync)
					continue
				}
				d.order.live(e)
				if s.closed() {
					return
				}
			}
		case <-d.order.timer():
			d.order.expire()
		case <-s.catchup:
			d.order.catchUp()
		case <-s.closing:
			return
		}
	}
}

// backlogPatience is how long a login backlog is retried while the nodes
// are unreachable (a partition) before the session is closed.
const backlogPatience = 2 * time.Minute

// truncate cuts s to n bytes (a close frame's reason has at most 123).
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// pull calls a node for the deliverer; it gives up when the session closes.
func (d *deliverer) pull(fn func(context.Context, *nodeConn) error) bool {
	return d.pullErr(fn) == nil
}

// pullErr is pull, saying why it failed.
func (d *deliverer) pullErr(fn func(context.Context, *nodeConn) error) *wire.Error {
	s := d.s
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-s.closing:
			cancel()
		case <-ctx.Done():
		}
	}()
	_, werr := s.g.nodes.call(ctx, s.g.cfg.CallTimeout, readCall, fn)
	if werr != nil && !s.closed() {
		s.g.log.Warn("pull failed; will retry on the next push or catch-up", "session", s.id, "err", werr.Message)
	}
	return werr
}

// syncPages pulls sync pages until the node has no more (or maxSyncPages):
// next makes each page's request, got takes its reply. It reports false
// when a pull failed.
func (d *deliverer) syncPages(next func() *pb.SyncRequest, got func(*pb.SyncReply)) bool {
	return d.syncPagesErr(next, got) == nil
}

// syncPagesErr is syncPages, saying why it failed.
func (d *deliverer) syncPagesErr(next func() *pb.SyncRequest, got func(*pb.SyncReply)) *wire.Error {
	for page := 0; page < maxSyncPages && !d.s.closed(); page++ {
		req := next()
		var rep *pb.SyncReply
		werr := d.pullErr(func(ctx context.Context, n *nodeConn) error {
			var err error
			rep, err = n.messages.Sync(ctx, req)
			return err
		})
		if werr != nil {
			return werr
		}
		got(rep)
		if !rep.More {
			break
		}
	}
	return nil
}

// retryCatchUpSoon asks for a catch-up in a second, after a pull failed.
func (d *deliverer) retryCatchUpSoon() { time.AfterFunc(time.Second, d.s.requestCatchUp) }

// backlogOnFreshStack runs backlog on its own goroutine (see onFreshStack).
func (d *deliverer) backlogOnFreshStack() (werr *wire.Error) {
	onFreshStack(func() { werr = d.backlog() })
	return werr
}

// backlog pushes every message after this device's delivery cursors and
// reports whether it got through; pages already pushed are not pushed
// again on a retry.
func (d *deliverer) backlog() *wire.Error {
	return d.syncPagesErr(func() *pb.SyncRequest {
		return &pb.SyncRequest{Caller: d.s.caller(), Cursor: d.backlogCursor, FromDevice: d.backlogCursor == "", Limit: maxPage}
	}, func(rep *pb.SyncReply) {
		for _, m := range rep.Messages {
			d.push(message{Message: m}, true)
		}
		d.order.backlogPage(rep)
		if rep.More {
			d.backlogCursor = rep.Cursor
		}
	})
}

// resync tells the client to refetch conv from seq when it was shown a
// position that changed. The cursor stays: later pushes continue after it,
// and the client's refetch (deduplicated by id) shows the new order.
func (d *deliverer) resync(conv string, from uint64) {
	if d.shown[conv] >= from {
		d.s.send(wire.Push(wire.PushResync, resyncFields{Conv: conv, FromSeq: from}))
	}
}

// push sends m to the client unless the device has it, and records it.
// A push of a long run (backlog, catch-up, gap fill) is paced by the
// client's reading (sendPaced); a live push to a client whose queue is
// full drops the client.
func (d *deliverer) push(m message, paced bool) {
	if !d.order.fresh(m) {
		return
	}
	d.shown[m.Conv] = max(d.shown[m.Conv], m.Seq)
	if r := d.s.g.cfg.Spans; r != nil {
		now := time.Now()
		r.Add(spans.Key(m.From, m.Cmid), "gateway: pushed to "+d.s.who().user, now, now)
	}
	var frame []byte
	if m.frame != nil {
		frame = m.frame.get(m.Message)
	} else {
		frame = messageFrame(m.Message)
	}
	if paced {
		d.s.sendPaced(frame)
		return
	}
	d.s.send(frame)
}
