package gateway

import (
	"cmp"
	"context"
	"maps"
	"slices"
	"time"

	"mpim/gateway/wire"
	pb "mpim/proto/mpimpb"
)

// newConvWindow: a conversation unknown to a session whose first push has
// a seq up to this is pulled from seq 1 (see deliver).
const newConvWindow = 64

// gapPage bounds the messages one gap pull asks for.
const gapPage = 1000

// cpOrder delivers by seq, the "seq + pull" model: per conversation the
// highest seq this device has been pushed (cursor); a push at or below it
// is a duplicate (it came on both paths, or after a pull), one beyond
// cursor+1 reveals a gap that is pulled first. A push that comes ahead of
// its conversation's next seq is first held for up to ReorderWindow for
// the pushes before it, usually on their way from another node.
type cpOrder struct {
	d      *deliverer
	cursor map[string]uint64
	// held are pushes that came ahead of their conversation's next seq,
	// waiting (until heldUntil) for the pushes before them; reorder fires
	// at the earliest deadline. All three are made at the first hold (an
	// idle session does not pay for them).
	held      map[string][]event
	heldUntil map[string]time.Time
	reorder   *time.Timer
}

func (o *cpOrder) timer() <-chan time.Time {
	if o.reorder == nil {
		return nil
	}
	return o.reorder.C
}

func (o *cpOrder) expire() { o.releaseHeld() }

func (o *cpOrder) fresh(m message) bool {
	if m.Seq <= o.cursor[m.Conv] {
		return false
	}
	o.cursor[m.Conv] = m.Seq
	return true
}

func (o *cpOrder) backlogPage(rep *pb.SyncReply) {
	if rep.More {
		return
	}
	for _, c := range rep.Convs {
		o.cursor[c.Conv] = max(o.cursor[c.Conv], c.MaxSeq)
	}
}

// catchUp pushes everything after the cursors (after a lost push).
func (o *cpOrder) catchUp() {
	d := o.d
	ok := d.syncPages(func() *pb.SyncRequest {
		return &pb.SyncRequest{Caller: d.s.caller(), After: maps.Clone(o.cursor), Limit: maxPage}
	}, func(rep *pb.SyncReply) {
		for _, m := range rep.Messages {
			o.deliver(message{Message: m}, false, true)
		}
	})
	if !ok {
		d.retryCatchUpSoon()
	}
}

// live delivers a live push, or holds one beyond its conversation's next
// seq in the reorder window; each push that arrives lets out the held
// ones that now follow in order.
func (o *cpOrder) live(e event) {
	m := e.m
	if o.d.s.g.cfg.ReorderWindow <= 0 {
		o.deliver(m, e.silent, false)
		return
	}
	cur, known := o.cursor[m.Conv]
	if held := o.held[m.Conv]; len(held) == 0 && (!known || m.Seq <= cur+1) {
		o.deliver(m, e.silent, false) // in order, a duplicate, or a conversation new to the session
		return
	}
	if o.held == nil {
		o.held, o.heldUntil = map[string][]event{}, map[string]time.Time{}
		o.reorder = time.NewTimer(time.Hour)
	}
	if len(o.held[m.Conv]) == 0 {
		o.heldUntil[m.Conv] = time.Now().Add(o.d.s.g.cfg.ReorderWindow)
		o.armReorder()
	}
	o.held[m.Conv] = append(o.held[m.Conv], e)
	o.releaseConv(m.Conv, false)
}

// releaseConv delivers conv's held pushes that follow its cursor in order;
// when force (the window passed), all of them, pulling the gaps.
func (o *cpOrder) releaseConv(conv string, force bool) {
	held := o.held[conv]
	slices.SortStableFunc(held, func(a, b event) int { return cmp.Compare(a.m.Seq, b.m.Seq) })
	n := 0
	for _, e := range held {
		if !force && e.m.Seq > o.cursor[conv]+1 {
			break
		}
		o.deliver(e.m, e.silent, false)
		n++
	}
	if held = held[n:]; len(held) > 0 {
		o.held[conv] = held
		return
	}
	delete(o.held, conv)
	delete(o.heldUntil, conv)
}

// releaseHeld delivers the held pushes whose window has passed, pulling
// what is still missing before them.
func (o *cpOrder) releaseHeld() {
	now := time.Now()
	for conv, until := range o.heldUntil {
		if !now.Before(until) {
			o.releaseConv(conv, true)
		}
	}
	o.armReorder()
}

// armReorder sets the timer to the earliest held deadline.
func (o *cpOrder) armReorder() {
	o.reorder.Stop()
	var first time.Time
	for _, until := range o.heldUntil {
		if first.IsZero() || until.Before(first) {
			first = until
		}
	}
	if !first.IsZero() {
		o.reorder.Reset(max(time.Until(first), 0))
	}
}

// deliver pushes m (paced: see push) if it is the next of its
// conversation, after pulling any gap before it (always paced); it drops
// m if the device has it.
func (o *cpOrder) deliver(m message, silent, paced bool) {
	d := o.d
	cur, known := o.cursor[m.Conv]
	if !known && m.Seq > newConvWindow {
		// A conversation joined after login with a long history: push from
		// here on; its history is the client's to read. A young one
		// (a new DM or group) is pulled from its start, so that pushes
		// racing each other cannot skip its first messages.
		cur = m.Seq - 1
	}
	if m.Seq <= cur {
		d.s.g.metrics.duplicates.Inc()
		return
	}
	for cur+1 < m.Seq && !d.s.closed() {
		d.s.g.metrics.gapFills.Inc()
		before := min(m.Seq, cur+1+gapPage)
		var rep *pb.HistoryReply
		ok := d.pull(func(ctx context.Context, n *nodeConn) error {
			var err error
			rep, err = n.messages.History(ctx, &pb.HistoryRequest{Caller: d.s.caller(), Conv: m.Conv,
				After: cur, Before: before, Limit: uint32(before - cur - 1), Read: wire.ReadLocal})
			return err
		})
		if !ok || len(rep.Messages) == 0 {
			// Cannot fill the gap now: keep the cursor, so that the gap is
			// pulled by the next catch-up rather than skipped.
			d.retryCatchUpSoon()
			o.cursor[m.Conv] = cur
			return
		}
		for _, g := range rep.Messages {
			if g.Seq == cur+1 {
				d.push(message{Message: g}, true)
				cur = g.Seq
			}
		}
		if cur+1 < before {
			o.cursor[m.Conv] = cur
			d.retryCatchUpSoon()
			return
		}
	}
	if silent {
		o.cursor[m.Conv] = max(o.cursor[m.Conv], m.Seq)
		return
	}
	d.push(m, paced)
}
