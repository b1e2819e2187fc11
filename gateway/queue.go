package gateway

import "sync"

// queue is a bounded FIFO that allocates as it fills. It replaces the
// buffered channels a session used for its send queue (SendQueue frames)
// and its push buffer (eventBuffer events): a buffered channel allocates
// its whole capacity when it is made, 64 KiB per session even while the
// client is idle, which made idle connections cost 44 KiB of RSS each
// (heap profile in docs/benchmarks.md). The bound and what happens when it
// is reached are unchanged; only idle sessions stop paying for it.
//
// One consumer waits on ready, then pops until pop reports empty; push
// signals ready whenever it adds an item, so a signal is never lost. (The
// send queue's consumer does not wait: its producers start it, see
// session.kickWriter, and it ends when empty reports true.)
type queue[T any] struct {
	mu    sync.Mutex
	items []T
	head  int
	limit int
	ready chan struct{}
	// space is signalled after a pop, for a producer waiting for room
	// (session.sendPaced; one waiter).
	space chan struct{}
}

// shrinkAbove is the capacity above which an emptied queue gives its
// buffer back, so that a burst does not pin memory for the session's life.
const shrinkAbove = 64

func newQueue[T any](limit int) *queue[T] {
	return &queue[T]{limit: limit, ready: make(chan struct{}, 1), space: make(chan struct{}, 1)}
}

// push appends v and reports true, or reports false when limit items are
// already waiting.
func (q *queue[T]) push(v T) bool {
	q.mu.Lock()
	if len(q.items)-q.head >= q.limit {
		q.mu.Unlock()
		return false
	}
	if q.head > 0 && len(q.items) == cap(q.items) {
		// Full backing array with consumed items in front: slide the live
		// ones down instead of growing, so a queue that never quite
		// empties does not grow for the session's life.
		n := copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items, q.head = q.items[:n], 0
	}
	q.items = append(q.items, v)
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
	return true
}

// pop removes the oldest item; ok is false when the queue is empty.
func (q *queue[T]) pop() (v T, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.head == len(q.items) {
		return v, false
	}
	v = q.items[q.head]
	var zero T
	q.items[q.head] = zero
	q.head++
	select {
	case q.space <- struct{}{}:
	default:
	}
	if q.head == len(q.items) {
		if cap(q.items) > shrinkAbove {
			q.items = nil
		} else {
			q.items = q.items[:0]
		}
		q.head = 0
	}
	return v, true
}

// empty reports whether nothing is waiting.
func (q *queue[T]) empty() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.head == len(q.items)
}

// free is how many more items push would accept now.
func (q *queue[T]) free() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.limit - (len(q.items) - q.head)
}
