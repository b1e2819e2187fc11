package lab

import (
	"sync"
	"time"
)

// EventKind names what happened to a member.
type EventKind string

// The member lifecycle events. They use the fault vocabulary's words.
const (
	// EventStarted: the member printed its ready line (or, for Redis,
	// answered PING), at Up or after a restart.
	EventStarted EventKind = "started"
	// EventKilled: the member was SIGKILLed through Kill.
	EventKilled EventKind = "killed"
	// EventPaused: the member was SIGSTOPped through Pause.
	EventPaused EventKind = "paused"
	// EventResumed: the member was SIGCONTed through Resume.
	EventResumed EventKind = "resumed"
	// EventExited: the member's process ended without being asked to
	// (a crash, or a failed start).
	EventExited EventKind = "exited"
	// EventStopped: the lab stopped the member while closing.
	EventStopped EventKind = "stopped"
)

// Event is one entry of the lab's typed event stream, consumed by the
// dashboard, the chaos reports and the logs.
type Event struct {
	// Seq numbers events from 1 in the order they happened.
	Seq    uint64    `json:"seq"`
	Time   time.Time `json:"time"`
	Kind   EventKind `json:"kind"`
	Member string    `json:"member"`
	PID    int       `json:"pid,omitempty"`
	// Detail says more, e.g. the exit status of an exited member.
	Detail string `json:"detail,omitempty"`
}

// subscriberBuffer is how many events a subscriber may fall behind before
// it misses some (the log still holds them).
const subscriberBuffer = 256

// events is a bounded log of events plus live subscribers. Its mutex is a
// leaf: nothing else is locked while it is held.
type events struct {
	mu     sync.Mutex
	seq    uint64
	log    []Event // ring: the last cap(log) events, oldest first once full
	max    int
	subs   map[int]chan Event
	nextID int
	closed bool
}

func newEvents(max int) *events {
	return &events{max: max, subs: make(map[int]chan Event)}
}

// emit stamps ev, appends it to the log and offers it to every subscriber
// without blocking: a subscriber that is subscriberBuffer events behind
// misses this one.
func (e *events) emit(ev Event) Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.seq++
	ev.Seq = e.seq
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	if len(e.log) == e.max {
		copy(e.log, e.log[1:])
		e.log = e.log[:e.max-1]
	}
	e.log = append(e.log, ev)
	for _, ch := range e.subs {
		select {
		case ch <- ev:
		default:
		}
	}
	return ev
}

// snapshot returns a copy of the log, oldest first.
func (e *events) snapshot() []Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]Event(nil), e.log...)
}

// subscribe returns a channel of the events emitted from now on, a copy of
// the log so far (so that nothing falls in between) and a cancel function.
// The channel is closed by cancel or when the lab closes.
func (e *events) subscribe() (<-chan Event, []Event, func()) {
	e.mu.Lock()
	defer e.mu.Unlock()
	ch := make(chan Event, subscriberBuffer)
	if e.closed {
		close(ch)
		return ch, append([]Event(nil), e.log...), func() {}
	}
	id := e.nextID
	e.nextID++
	e.subs[id] = ch
	var once sync.Once
	cancel := func() {
		once.Do(func() {
			e.mu.Lock()
			defer e.mu.Unlock()
			if c, ok := e.subs[id]; ok {
				delete(e.subs, id)
				close(c)
			}
		})
	}
	return ch, append([]Event(nil), e.log...), cancel
}

// close closes every subscriber channel; later subscribers get a closed
// channel.
func (e *events) close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.closed = true
	for id, ch := range e.subs {
		delete(e.subs, id)
		close(ch)
	}
}

// lastSeq returns the seq of the newest event (0 before any).
func (e *events) lastSeq() uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.seq
}
