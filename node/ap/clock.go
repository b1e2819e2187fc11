// Package ap is the AP consistency mode's replication: every node accepts
// every write at once, stamps it with a hybrid logical clock, keeps it in
// its own log, and replicates it to the other nodes through Redis pub/sub;
// with repair on, an outbox re-publishes what could not be published and
// anti-entropy between nodes pulls whatever a node is missing, so that
// replicas converge after any partition.
package ap

import (
	"sync"
	"time"
)

// Clock is a hybrid logical clock (Kulkarni et al., 2014): the high 48
// bits are wall-clock milliseconds, the low 16 a counter, so timestamps
// follow real time closely yet never go backwards and always exceed every
// timestamp this node has seen.
type Clock struct {
	mu   sync.Mutex
	last uint64
	now  func() time.Time
}

// NewClock returns a clock reading the wall clock.
func NewClock() *Clock { return &Clock{now: time.Now} }

func physical(t time.Time) uint64 { return uint64(t.UnixMilli()) << 16 }

// Now returns a timestamp greater than every one returned or observed.
func (c *Clock) Now() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.last = max(c.last+1, physical(c.now()))
	return c.last
}

// Observe folds in a timestamp seen from another node.
func (c *Clock) Observe(ts uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.last = max(c.last, ts)
}

// Peek returns the latest timestamp without advancing it.
func (c *Clock) Peek() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return max(c.last, physical(c.now()))
}

// Millis is the wall-clock part of an HLC timestamp.
func Millis(ts uint64) int64 { return int64(ts >> 16) }
