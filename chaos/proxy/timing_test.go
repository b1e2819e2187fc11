package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"slices"
	"testing"
	"time"
)

// roundTrips sends count small messages one at a time over c (an echo) and
// returns the sorted round-trip times.
func roundTrips(t *testing.T, c net.Conn, r *bufio.Reader, count int) []time.Duration {
	t.Helper()
	return roundTripsWithin(t, c, r, count, 5*time.Second)
}

// roundTripsWithin is roundTrips allowing each round trip up to within.
func roundTripsWithin(t *testing.T, c net.Conn, r *bufio.Reader, count int, within time.Duration) []time.Duration {
	t.Helper()
	rtts := make([]time.Duration, 0, count)
	for i := range count {
		msg := fmt.Sprintf("rtt-%d\n", i)
		start := time.Now()
		if _, err := io.WriteString(c, msg); err != nil {
			t.Fatalf("write: %v", err)
		}
		if got := readLine(t, c, r, within); got != msg {
			t.Fatalf("round trip %d: got %q, want %q (reordered or lost)", i, got, msg)
		}
		rtts = append(rtts, time.Since(start))
	}
	slices.Sort(rtts)
	return rtts
}

// TestDelay sets 50ms ± 20ms on one direction and checks the measured
// latency, that order survives jitter when messages are pipelined, and that
// clearing the delay brings latency back down. Bounds are loose: the
// machine is shared and noisy; only the lower bound is exact by design.
func TestDelay(t *testing.T) {
	const d, jitter = 50 * time.Millisecond, 20 * time.Millisecond
	tests := []struct {
		name     string
		from, to string
	}{
		{"on requests", "a", "b"},
		{"on replies", "b", "a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := newNet(t)
			srv := serve(t, echo)
			l := link(t, n, "a", "b", srv.Addr())
			c := dial(t, l.Addr())
			r := bufio.NewReader(c)

			n.SetDelay(tt.from, tt.to, d, jitter)
			rtts := roundTrips(t, c, r, 20)
			if rtts[0] < d {
				t.Fatalf("fastest round trip %v is below the %v delay", rtts[0], d)
			}
			if med := rtts[len(rtts)/2]; med > d+jitter+80*time.Millisecond {
				t.Fatalf("median round trip %v, want about %v..%v", med, d, d+jitter)
			} else {
				t.Logf("delay %v jitter %v: round trips min %v median %v max %v", d, jitter, rtts[0], med, rtts[len(rtts)-1])
			}

			// Pipelined: many writes in flight at once, each with its own
			// jitter sample; the echo must still come back in order.
			seq := runSequence(c, 2000, 2000)
			select {
			case err := <-seq.recvd:
				if err != nil {
					t.Fatalf("with jitter: %v", err)
				}
			case <-time.After(20 * time.Second):
				t.Fatalf("pipelined stream stalled at %d lines", seq.got.Load())
			}
			if err := <-seq.sent; err != nil {
				t.Fatalf("sender: %v", err)
			}

			n.SetDelay(tt.from, tt.to, 0, 0)
			if f := n.Faults(); len(f) != 0 {
				t.Fatalf("Faults() after clearing = %+v, want none", f)
			}
			rtts = roundTrips(t, c, r, 20)
			if med := rtts[len(rtts)/2]; med > 25*time.Millisecond {
				t.Fatalf("median round trip %v after clearing the delay, want well under %v", med, d)
			}
		})
	}
}

// TestFaultChangesReachQueuedChunks checks that a change of fault applies
// at once to bytes already waiting in the proxy.
func TestFaultChangesReachQueuedChunks(t *testing.T) {
	tests := []struct {
		name   string
		before func(n *Net) // applied before the message is sent
		during func(n *Net) // applied while it waits
		silent time.Duration
		after  func(n *Net) // must let it through at once
	}{
		{
			name:   "long delay cleared",
			before: func(n *Net) { n.SetDelay("a", "b", 10*time.Second, 0) },
			silent: 200 * time.Millisecond,
			after:  func(n *Net) { n.SetDelay("a", "b", 0, 0) },
		},
		{
			name:   "long delay shortened",
			before: func(n *Net) { n.SetDelay("a", "b", 10*time.Second, 0) },
			silent: 200 * time.Millisecond,
			after:  func(n *Net) { n.SetDelay("a", "b", time.Millisecond, 0) },
		},
		{
			name:   "hold lands on a delayed chunk",
			before: func(n *Net) { n.SetDelay("a", "b", 100*time.Millisecond, 0) },
			during: func(n *Net) { n.Hold("a", "b") },
			silent: 400 * time.Millisecond,
			after:  func(n *Net) { n.Release("a", "b") },
		},
		{
			name: "heal clears hold and delay",
			before: func(n *Net) {
				n.Hold("a", "b")
				n.SetDelay("b", "a", 10*time.Second, time.Second)
			},
			silent: 200 * time.Millisecond,
			after:  func(n *Net) { n.Heal() },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := newNet(t)
			srv := serve(t, echo)
			l := link(t, n, "a", "b", srv.Addr())
			c := dial(t, l.Addr())
			r := bufio.NewReader(c)
			tt.before(n)
			io.WriteString(c, "waiting\n")
			if tt.during != nil {
				tt.during(n)
			}
			expectSilence(t, c, r, tt.silent, "the message is still held or delayed")
			start := time.Now()
			tt.after(n)
			if got := readLine(t, c, r, 2*time.Second); got != "waiting\n" {
				t.Fatalf("got %q, want the waiting message", got)
			}
			if took := time.Since(start); took > time.Second {
				t.Fatalf("the change took %v to reach a waiting chunk", took)
			}
		})
	}
}

// TestLossStall: the retransmission arithmetic: a chunk is stalled k RTOs
// deep with probability loss^k, waits rto·(2^k−1), and no more than
// maxLosses in a row.
func TestLossStall(t *testing.T) {
	f := fault{loss: 0.2}
	for _, c := range []struct {
		l    float64
		want time.Duration
	}{
		{0.5, 0}, {0.19, rto}, {0.039, 3 * rto}, {0.0079, 7 * rto}, {0, 63 * rto},
	} {
		if got := f.stall(c.l); got != c.want {
			t.Errorf("loss 20%%, sample %v: stall %v, want %v", c.l, got, c.want)
		}
	}
	if got := (fault{}).stall(0); got != 0 {
		t.Errorf("no loss stalls %v", got)
	}
}

// TestLoss: with 30% loss on the replies, round trips show retransmission
// stalls (some at least one RTO late), yet every message arrives once and
// in order; clearing the loss clears the fault.
func TestLoss(t *testing.T) {
	n := newNet(t)
	srv := serve(t, echo)
	l := link(t, n, "a", "b", srv.Addr())
	c := dial(t, l.Addr())
	r := bufio.NewReader(c)

	n.SetLoss("b", "a", 30)
	if got := n.Faults(); len(got) != 1 || got[0].LossPercent != 30 {
		t.Fatalf("faults %+v, want 30%% loss b->a", got)
	}
	// A chunk may stall up to rto·(2^maxLosses − 1) = 12.6 s (six losses
	// in a row, 0.07 % at 30 %): allow each round trip more than that.
	rtts := roundTripsWithin(t, c, r, 40, rto*(1<<maxLosses)+2*time.Second)
	stalled := 0
	for _, d := range rtts {
		if d >= rto {
			stalled++
		}
	}
	// P(no stall in 40 tries at 30%) = 0.7^40 ≈ 6e-7.
	if stalled == 0 {
		t.Fatalf("40 round trips at 30%% loss, none stalled a retransmission timeout: %v", rtts)
	}
	t.Logf("30%% loss: %d of 40 round trips stalled; median %v max %v", stalled, rtts[len(rtts)/2], rtts[len(rtts)-1])

	seq := runSequence(c, 200, 200)
	select {
	case err := <-seq.recvd:
		if err != nil {
			t.Fatalf("with loss: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("stream under loss stalled at %d lines", seq.got.Load())
	}
	if err := <-seq.sent; err != nil {
		t.Fatalf("sender: %v", err)
	}

	n.SetLoss("b", "a", 0)
	if got := n.Faults(); len(got) != 0 {
		t.Fatalf("faults after clearing %+v", got)
	}
}
