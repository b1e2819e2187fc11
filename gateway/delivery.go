package gateway

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"mpim/gateway/wire"
	pb "mpim/proto/mpimpb"
)

// eventBuffer bounds the message pushes waiting for one session's
// deliverer. When it is full the push is dropped and the session pulls
// everything after its cursors instead (a catch-up), so nothing is lost.
const eventBuffer = 1024

// maxPage is the page size of the gateway's own pulls.
const maxPage = 500

// newConvWindow: a conversation unknown to a session whose first push has
// a seq up to this is pulled from seq 1 (see deliver).
const newConvWindow = 64

// delivery is a session's push state: per conversation, the highest seq
// this device has been pushed. The deliverer goroutine alone touches
// cursor, which is what makes delivery exactly once and in order: a push at
// or below the cursor is a duplicate (it came on both paths, or after a
// pull), a push beyond cursor+1 reveals a gap that is pulled first (the
// "seq + pull" model).
type delivery struct {
	events  *queue[event]
	catchup chan struct{}
	isReady atomic.Bool
	cursor  map[string]uint64
	// backlogCursor is the sync cursor of the login backlog in progress.
	backlogCursor string
	// AP mode: positions differ between replicas and move, so delivery
	// deduplicates by message id and catches up with the exact sync
	// cursor; shown is the highest seq pushed per conversation (a resync
	// matters only to a client shown a position that moved).
	apMode   bool
	apCursor string
	seen     idSet
	shown    map[string]uint64
	// held are CP pushes that came ahead of their conversation's next seq,
	// waiting (until heldUntil) for the pushes before them; reorder fires
	// at the earliest deadline. All three are made at the first hold (an
	// idle session does not pay for them).
	held      map[string][]event
	heldUntil map[string]time.Time
	reorder   *time.Timer
}

// reorderC is the reorder timer's channel, nil (never ready) before the
// first hold.
func (d *delivery) reorderC() <-chan time.Time {
	if d.reorder == nil {
		return nil
	}
	return d.reorder.C
}

// idSet remembers the last ids delivered (bounded: older ones may be
// delivered again, and clients deduplicate by id anyway).
type idSet struct {
	ids  map[string]bool
	ring []string
	next int
}

// seenIDs bounds the ids remembered per connection (16 KiB of ring), enough
// to cover the overlap between pushes and a catch-up.
const seenIDs = 1024

func (s *idSet) add(id string) bool {
	if s.ids == nil {
		s.ids, s.ring = map[string]bool{}, make([]string, seenIDs)
	}
	if s.ids[id] {
		return false
	}
	if old := s.ring[s.next]; old != "" {
		delete(s.ids, old)
	}
	s.ring[s.next] = id
	s.next = (s.next + 1) % seenIDs
	s.ids[id] = true
	return true
}

func (d *delivery) init() {
	d.events = newQueue[event](eventBuffer)
	d.catchup = make(chan struct{}, 1)
	d.cursor = map[string]uint64{}
	d.shown = map[string]uint64{}
}

func (s *session) ready() bool { return s.isReady.Load() }

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

func (s *session) deliverLoop() {
	select {
	case <-s.authed:
	case <-s.closing:
		return
	}
	// The login backlog first: pushes that arrive meanwhile wait in events,
	// so that none moves the cursor past a message not yet pulled. Until
	// it succeeds the session has no cursors, so it is retried rather than
	// replaced by a catch-up (which would start from seq 0).
	for !s.backlogOnFreshStack() {
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
					s.resync(e.conv, e.resync)
					continue
				}
				s.deliverLive(e)
				if s.closed() {
					return
				}
			}
		case <-s.reorderC():
			s.releaseHeld(false)
		case <-s.catchup:
			s.catchUp()
		case <-s.closing:
			return
		}
	}
}

// pull calls a node for the deliverer; it gives up when the session closes.
func (s *session) pull(fn func(context.Context, *nodeConn) error) bool {
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
	return werr == nil
}

// backlogOnFreshStack runs backlog on its own goroutine (see onFreshStack).
func (s *session) backlogOnFreshStack() (ok bool) {
	onFreshStack(func() { ok = s.backlog() })
	return ok
}

// backlog pushes every message after this device's delivery cursors and
// reports whether it got through; pages already pushed are not pushed
// again on a retry.
func (s *session) backlog() bool {
	for page := 0; page < 1000 && !s.closed(); page++ {
		var rep *pb.SyncReply
		ok := s.pull(func(ctx context.Context, n *nodeConn) error {
			var err error
			rep, err = n.messages.Sync(ctx, &pb.SyncRequest{Caller: s.caller(), Cursor: s.backlogCursor,
				FromDevice: s.backlogCursor == "", Limit: maxPage})
			return err
		})
		if !ok {
			return false
		}
		for _, m := range rep.Messages {
			s.push(message{Message: m}, true)
		}
		s.apCursor = rep.Cursor
		if !rep.More {
			for _, c := range rep.Convs {
				s.cursor[c.Conv] = max(s.cursor[c.Conv], c.MaxSeq)
			}
			return true
		}
		s.backlogCursor = rep.Cursor
	}
	return true
}

// catchUp pushes everything after the cursors (after a lost push).
func (s *session) catchUp() {
	if s.apMode {
		s.catchUpAP()
		return
	}
	for page := 0; page < 1000 && !s.closed(); page++ {
		after := make(map[string]uint64, len(s.cursor))
		for k, v := range s.cursor {
			after[k] = v
		}
		var rep *pb.SyncReply
		ok := s.pull(func(ctx context.Context, n *nodeConn) error {
			var err error
			rep, err = n.messages.Sync(ctx, &pb.SyncRequest{Caller: s.caller(), After: after, Limit: maxPage})
			return err
		})
		if !ok {
			time.AfterFunc(time.Second, s.requestCatchUp)
			return
		}
		for _, m := range rep.Messages {
			s.deliver(message{Message: m}, false, true)
		}
		if !rep.More {
			return
		}
	}
}

// catchUpAP pulls everything after the session's exact AP cursor.
func (s *session) catchUpAP() {
	for page := 0; page < 1000 && !s.closed(); page++ {
		var rep *pb.SyncReply
		ok := s.pull(func(ctx context.Context, n *nodeConn) error {
			var err error
			rep, err = n.messages.Sync(ctx, &pb.SyncRequest{Caller: s.caller(), Cursor: s.apCursor, Limit: maxPage})
			return err
		})
		if !ok {
			time.AfterFunc(time.Second, s.requestCatchUp)
			return
		}
		for _, m := range rep.Messages {
			s.push(message{Message: m}, true)
		}
		s.apCursor = rep.Cursor
		if !rep.More {
			return
		}
	}
}

// deliverLive delivers a live push. In CP, a push beyond its
// conversation's next seq is held for up to ReorderWindow for the pushes
// before it (usually on their way from another node) instead of pulling
// the gap at once; each push that arrives lets out the held ones that now
// follow in order.
func (s *session) deliverLive(e event) {
	m := e.m
	if s.apMode || s.g.cfg.ReorderWindow <= 0 {
		s.deliver(m, e.silent, false)
		return
	}
	cur, known := s.cursor[m.Conv]
	if held := s.held[m.Conv]; len(held) == 0 && (!known || m.Seq <= cur+1) {
		s.deliver(m, e.silent, false) // in order, a duplicate, or a conversation new to the session
		return
	}
	if s.held == nil {
		s.held, s.heldUntil = map[string][]event{}, map[string]time.Time{}
		s.reorder = time.NewTimer(time.Hour)
	}
	if len(s.held[m.Conv]) == 0 {
		s.heldUntil[m.Conv] = time.Now().Add(s.g.cfg.ReorderWindow)
		s.armReorder()
	}
	s.held[m.Conv] = append(s.held[m.Conv], e)
	s.releaseConv(m.Conv, false)
}

// releaseConv delivers conv's held pushes that follow its cursor in order;
// when force (the window passed), all of them, pulling the gaps.
func (s *session) releaseConv(conv string, force bool) {
	held := s.held[conv]
	slices.SortStableFunc(held, func(a, b event) int { return cmp.Compare(a.m.Seq, b.m.Seq) })
	n := 0
	for _, e := range held {
		if !force && e.m.Seq > s.cursor[conv]+1 {
			break
		}
		s.deliver(e.m, e.silent, false)
		n++
	}
	if held = held[n:]; len(held) > 0 {
		s.held[conv] = held
		return
	}
	delete(s.held, conv)
	delete(s.heldUntil, conv)
}

// releaseHeld delivers the held pushes whose window has passed (all of
// them when all), pulling what is still missing before them.
func (s *session) releaseHeld(all bool) {
	now := time.Now()
	for conv, until := range s.heldUntil {
		if all || !now.Before(until) {
			s.releaseConv(conv, true)
		}
	}
	s.armReorder()
}

// armReorder sets the timer to the earliest held deadline.
func (s *session) armReorder() {
	s.reorder.Stop()
	var first time.Time
	for _, until := range s.heldUntil {
		if first.IsZero() || until.Before(first) {
			first = until
		}
	}
	if !first.IsZero() {
		s.reorder.Reset(max(time.Until(first), 0))
	}
}

// deliver pushes m (paced: see push) if it is the next of its
// conversation, after pulling any gap before it (always paced); it drops
// m if the device has it.
func (s *session) deliver(m message, silent, paced bool) {
	if s.apMode {
		if silent {
			s.seen.add(m.Id)
		} else {
			s.push(m, paced)
		}
		return
	}
	cur, known := s.cursor[m.Conv]
	if !known && m.Seq > newConvWindow {
		// A conversation joined after login with a long history: push from
		// here on; its history is the client's to read. A young one
		// (a new DM or group) is pulled from its start, so that pushes
		// racing each other cannot skip its first messages.
		cur = m.Seq - 1
	}
	if m.Seq <= cur {
		s.g.metrics.duplicates.Inc()
		return
	}
	for cur+1 < m.Seq && !s.closed() {
		s.g.metrics.gapFills.Inc()
		before := min(m.Seq, cur+1+1000)
		var rep *pb.HistoryReply
		ok := s.pull(func(ctx context.Context, n *nodeConn) error {
			var err error
			rep, err = n.messages.History(ctx, &pb.HistoryRequest{Caller: s.caller(), Conv: m.Conv,
				After: cur, Before: before, Limit: uint32(before - cur - 1), Read: wire.ReadLocal})
			return err
		})
		if !ok || len(rep.Messages) == 0 {
			// Cannot fill the gap now: keep the cursor, so that the gap is
			// pulled by the next catch-up rather than skipped.
			time.AfterFunc(time.Second, s.requestCatchUp)
			s.cursor[m.Conv] = cur
			return
		}
		for _, g := range rep.Messages {
			if g.Seq == cur+1 {
				s.push(message{Message: g}, true)
				cur = g.Seq
			}
		}
		if cur+1 < before {
			s.cursor[m.Conv] = cur
			time.AfterFunc(time.Second, s.requestCatchUp)
			return
		}
	}
	if silent {
		s.cursor[m.Conv] = max(s.cursor[m.Conv], m.Seq)
		return
	}
	s.push(m, paced)
}

// resync tells the client to refetch conv from seq when it was shown a
// position that changed. The cursor stays: later pushes continue after it,
// and the client's refetch (deduplicated by id) shows the new order.
func (s *session) resync(conv string, from uint64) {
	if s.shown[conv] >= from {
		s.send(wire.Push(wire.PushResync, resyncFields{Conv: conv, FromSeq: from}))
	}
}

// push sends m to the client and advances its conversation's cursor.
// A push of a long run (backlog, catch-up, gap fill) is paced by the
// client's reading (sendPaced); a live push to a client whose queue is
// full drops the client.
func (s *session) push(m message, paced bool) {
	if s.apMode {
		if !s.seen.add(m.Id) {
			s.g.metrics.duplicates.Inc()
			return
		}
	} else {
		if m.Seq <= s.cursor[m.Conv] {
			return
		}
		s.cursor[m.Conv] = m.Seq
	}
	s.shown[m.Conv] = max(s.shown[m.Conv], m.Seq)
	var frame []byte
	if m.frame != nil {
		frame = m.frame.get(m.Message)
	} else {
		frame = messageFrame(m.Message)
	}
	if paced {
		s.sendPaced(frame)
		return
	}
	s.send(frame)
}
