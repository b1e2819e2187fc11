package bench

import (
	"fmt"
	"testing"
)

// TestSlowest keeps the slowest sends, slowest first, whatever order they
// come in, and merging keeps the slowest of both.
func TestSlowest(t *testing.T) {
	var l slowest
	for i, lat := range []int64{5, 9, 1, 7, 3, 8} {
		l = l.add(SlowSend{Key: fmt.Sprint("k", i), Sched: 100, Acked: 100 + lat}, 3)
	}
	if got := l[0].Key + " " + l[1].Key + " " + l[2].Key; got != "k1 k5 k3" || len(l) != 3 {
		t.Fatalf("kept %v, want k1 (9), k5 (8), k3 (7)", l)
	}
	a := &phaseStats{keepSlowest: 3, Slowest: slowest{{Key: "a", Acked: 10}, {Key: "b", Acked: 2}}}
	a.Ack, a.Delivery = &Histogram{}, &Histogram{}
	b := newPhaseStats(1)
	b.Slowest = slowest{{Key: "c", Acked: 5}, {Key: "d", Acked: 1}}
	a.merge(b)
	if got := a.Slowest[0].Key + " " + a.Slowest[1].Key + " " + a.Slowest[2].Key; got != "a c b" || len(a.Slowest) != 3 {
		t.Fatalf("merged %v, want a, c, b", a.Slowest)
	}
}
