package gateway

import (
	"time"

	pb "mpim/proto/mpimpb"
)

// apOrder delivers by message id: in AP positions differ between replicas
// and move, so a push is new when its id is, nothing is held for a gap,
// and a catch-up resumes from the exact sync cursor of the last page.
type apOrder struct {
	d      *deliverer
	cursor string // the exact AP sync cursor
	seen   idSet
}

func (o *apOrder) live(e event) { o.deliver(e.m, e.silent, false) }

func (o *apOrder) deliver(m message, silent, paced bool) {
	if silent {
		o.seen.add(m.Id)
		return
	}
	o.d.push(m, paced)
}

func (o *apOrder) fresh(m message) bool {
	if !o.seen.add(m.Id) {
		o.d.s.g.metrics.duplicates.Inc()
		return false
	}
	return true
}

func (o *apOrder) backlogPage(rep *pb.SyncReply) { o.cursor = rep.Cursor }

// catchUp pulls everything after the session's exact AP cursor.
func (o *apOrder) catchUp() {
	d := o.d
	ok := d.syncPages(func() *pb.SyncRequest {
		return &pb.SyncRequest{Caller: d.s.caller(), Cursor: o.cursor, Limit: maxPage}
	}, func(rep *pb.SyncReply) {
		for _, m := range rep.Messages {
			d.push(message{Message: m}, true)
		}
		o.cursor = rep.Cursor
	})
	if !ok {
		d.retryCatchUpSoon()
	}
}

func (o *apOrder) timer() <-chan time.Time { return nil }
func (o *apOrder) expire()                 {}

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
