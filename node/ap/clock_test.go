package ap

import (
	"fmt"
	"testing"
	"time"
)

// steppedClock is a wall clock a test sets by hand, in milliseconds.
type steppedClock struct{ ms int64 }

func (c *steppedClock) now() time.Time { return time.UnixMilli(c.ms) }

// hlc writes a timestamp as the clock's two parts, "millis.counter", the
// way the tests and transcripts show it.
func hlc(ts uint64) string { return fmt.Sprintf("%d.%d", Millis(ts), ts&0xffff) }

// at is the timestamp of wall-clock millisecond ms with counter c.
func at(ms int64, c uint64) uint64 { return uint64(ms)<<16 | c }

// TestClock drives the hybrid logical clock through its cases (Kulkarni et
// al., 2014): each step sets the wall clock, then either reads the clock
// (now) or folds in a timestamp from another node (observe), and states
// the timestamp the clock then holds. The invariant behind every row: a
// timestamp this node hands out is greater than every one it handed out or
// observed before, and equals the wall clock when the wall clock is ahead.
func TestClock(t *testing.T) {
	type step struct {
		wall    int64  // the wall clock, ms
		observe uint64 // 0: read the clock; else a remote timestamp seen
		want    string // Now's result, or Peek's after an observe
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"wall clock moves: the counter stays 0", []step{
			{wall: 1000, want: "1000.0"},
			{wall: 1001, want: "1001.0"},
			{wall: 1500, want: "1500.0"},
		}},
		{"same millisecond: the counter orders the events", []step{
			{wall: 1000, want: "1000.0"},
			{wall: 1000, want: "1000.1"},
			{wall: 1000, want: "1000.2"},
			{wall: 1001, want: "1001.0"},
		}},
		{"remote ahead: later events follow the remote clock until the wall clock catches up", []step{
			{wall: 1000, want: "1000.0"},
			{wall: 1000, observe: at(5000, 3), want: "5000.3"},
			{wall: 1001, want: "5000.4"},
			{wall: 4999, want: "5000.5"},
			{wall: 5001, want: "5001.0"},
		}},
		{"remote behind: observing the past changes nothing", []step{
			{wall: 2000, want: "2000.0"},
			{wall: 2000, observe: at(1500, 9), want: "2000.0"},
			{wall: 2000, want: "2000.1"},
		}},
		{"wall clock goes backwards: timestamps never do", []step{
			{wall: 3000, want: "3000.0"},
			{wall: 3000, want: "3000.1"},
			{wall: 1000, want: "3000.2"}, // an NTP step back by two seconds
			{wall: 1000, want: "3000.3"},
			{wall: 3000, want: "3000.4"},
			{wall: 3001, want: "3001.0"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wall := &steppedClock{}
			c := &Clock{now: wall.now}
			var last uint64
			for i, s := range tc.steps {
				wall.ms = s.wall
				var got uint64
				if s.observe != 0 {
					c.Observe(s.observe)
					got = c.Peek()
				} else {
					got = c.Now()
					if got <= last {
						t.Fatalf("step %d: Now() = %s after %s: the clock went backwards", i, hlc(got), hlc(last))
					}
				}
				last = max(last, got)
				if hlc(got) != s.want {
					t.Fatalf("step %d (wall %d ms): clock at %s, want %s", i, s.wall, hlc(got), s.want)
				}
			}
		})
	}
}

// TestClockPeek: Peek reads without advancing — two peeks agree, and the
// next Now is still above them.
func TestClockPeek(t *testing.T) {
	wall := &steppedClock{ms: 1000}
	c := &Clock{now: wall.now}
	c.Now()
	c.Now() // 1000.1
	if p1, p2 := c.Peek(), c.Peek(); p1 != p2 || hlc(p1) != "1000.1" {
		t.Fatalf("Peek twice = %s, %s; want 1000.1 both times", hlc(p1), hlc(p2))
	}
	wall.ms = 1200
	if hlc(c.Peek()) != "1200.0" {
		t.Fatalf("Peek after the wall clock moved = %s, want 1200.0", hlc(c.Peek()))
	}
	if got := c.Now(); hlc(got) != "1200.0" {
		t.Fatalf("Now after a Peek at 1200.0 = %s, want 1200.0 (Peek must not advance)", hlc(got))
	}
}

// TestOrderKey: a message's AP order key sorts by clock first, then
// origin, then id, and keeps its clock readable (HLCOf).
func TestOrderKey(t *testing.T) {
	keys := [][]byte{
		OrderKey(at(1000, 0), "n2", "m9"),
		OrderKey(at(1000, 1), "n1", "m1"), // a later counter beats a smaller origin
		OrderKey(at(1000, 1), "n1", "m2"),
		OrderKey(at(1000, 1), "n10", "m0"), // origin, then a 0 separator: "n1" < "n10"
		OrderKey(at(1000, 1), "n2", "m0"),
		OrderKey(at(1001, 0), "n1", "m0"),
	}
	for i := 1; i < len(keys); i++ {
		if string(keys[i-1]) >= string(keys[i]) {
			t.Errorf("order key %d does not sort before key %d: %q >= %q", i-1, i, keys[i-1], keys[i])
		}
	}
	if got := HLCOf(keys[1]); got != at(1000, 1) {
		t.Errorf("HLCOf = %s, want 1000.1", hlc(got))
	}
	if got := HLCOf([]byte("short")); got != 0 {
		t.Errorf("HLCOf of a log-order key = %d, want 0", got)
	}
}

// TestUID: user ids made by different nodes never collide — the node's
// number sits above its log position.
func TestUID(t *testing.T) {
	for _, tc := range []struct {
		origin string
		oseq   uint64
		want   uint64
	}{
		{"n1", 1, 1<<40 | 1},
		{"n2", 1, 2<<40 | 1},
		{"n12", 7, 12<<40 | 7},
		{"node7", 3, 7<<40 | 3},
	} {
		n, err := NodeNumber(tc.origin)
		if err != nil {
			t.Fatal(err)
		}
		if got := UID(n, tc.oseq); got != tc.want {
			t.Errorf("UID(NodeNumber(%s), %d) = %#x, want %#x", tc.origin, tc.oseq, got, tc.want)
		}
	}
	// Ids that would mint another node's uids, or none at all, are refused.
	for _, bad := range []string{"alpha", "beta", "n", "n0", "n01", "n70000", "", "n1x"} {
		if n, err := NodeNumber(bad); err == nil {
			t.Errorf("NodeNumber(%q) = %d; want it refused", bad, n)
		}
	}
}
