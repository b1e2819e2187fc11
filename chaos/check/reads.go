package check

import (
	"slices"
	"time"
)

// StaleReads counts the ok reads that miss a message acknowledged before
// they began: a read of conversation c, invoked at Call, whose Read lacks a
// cmid of c whose send returned ok strictly before Call. This is the stale
// read of Jepsen's set-full checker (an element known present when the read
// began, yet absent from it), and the anomaly a deposed leader serving reads
// without a quorum produces. Each stale read counts once, however many
// messages it misses.
//
// Reads whose ReadMode is ReadLocal are counted in staleLocal, the others
// (ReadLinearizable, or no mode recorded) in stale: a local read is allowed
// to be stale in both modes, a linearizable one never.
func StaleReads(ops []Op) (stale, staleLocal int) {
	// Acknowledged sends per conversation, by completion time.
	acked := make(map[string][]Op)
	for _, op := range ops {
		if op.Kind == KindSend && op.Status == StatusOK {
			acked[op.Conv] = append(acked[op.Conv], op)
		}
	}
	for _, sends := range acked {
		slices.SortFunc(sends, func(a, b Op) int { return a.Return.Compare(b.Return) })
	}
	for _, op := range ops {
		if op.Kind != KindRead || op.Status != StatusOK {
			continue
		}
		sends := acked[op.Conv]
		before, _ := slices.BinarySearchFunc(sends, op.Call, func(s Op, t time.Time) int { return s.Return.Compare(t) })
		if before == 0 {
			continue
		}
		read := make(map[string]bool, len(op.Read))
		for _, cmid := range op.Read {
			read[cmid] = true
		}
		if !slices.ContainsFunc(sends[:before], func(s Op) bool { return !read[s.Cmid] }) {
			continue
		}
		if op.ReadMode == ReadLocal {
			staleLocal++
		} else {
			stale++
		}
	}
	return stale, staleLocal
}

// Shown is one message as a client was shown it: pushed to it, or returned
// by a read or sync, at position Seq of conversation Conv.
type Shown struct {
	Client string    `json:"client"`
	Conv   string    `json:"conv"`
	ID     string    `json:"id"`
	Seq    uint64    `json:"seq"`
	Time   time.Time `json:"time"`
}

// Reordered counts the times a client was shown a message at a position
// before one it had already been shown: the nonmonotonic and conflicting
// offsets of Jepsen's kafka checker, seen from a chat client. Each client's
// view of each conversation is replayed in Time order (input order among
// equal times), and a message shown at seq s counts once when, before it,
// the client had been shown
//
//   - a different message at a seq greater than or equal to s (it arrives
//     behind a later message, or two messages claim one seq), or
//   - the same message at a different seq (the message moved).
//
// Showing again a message at the seq it was already shown at is never
// counted: that is the ordinary overlap between a push and a later sync.
// A message that fills a gap after a later one was shown (a sync repairing
// a missed push) does count: the client displayed it out of order.
func Reordered(shown []Shown) int {
	type key struct{ client, conv string }
	type at struct {
		id  string
		seq uint64
	}
	type stream struct {
		maxSeq  uint64          // highest seq shown
		shownAt map[at]bool     // every (id, seq) shown
		ids     map[string]bool // every id shown
		bySeq   map[uint64]string
	}
	order := make([]int, len(shown))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return shown[a].Time.Compare(shown[b].Time) })

	streams := make(map[key]*stream)
	n := 0
	for _, i := range order {
		m := shown[i]
		st := streams[key{m.Client, m.Conv}]
		if st == nil {
			st = &stream{shownAt: make(map[at]bool), ids: make(map[string]bool), bySeq: make(map[uint64]string)}
			streams[key{m.Client, m.Conv}] = st
		}
		p := at{m.ID, m.Seq}
		if st.shownAt[p] {
			continue
		}
		other, taken := st.bySeq[m.Seq]
		if st.ids[m.ID] || m.Seq < st.maxSeq || (taken && other != m.ID) {
			n++
		}
		st.shownAt[p], st.ids[m.ID] = true, true
		if !taken {
			st.bySeq[m.Seq] = m.ID
		}
		st.maxSeq = max(st.maxSeq, m.Seq)
	}
	return n
}
