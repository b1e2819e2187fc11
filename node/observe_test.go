package node

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// BenchmarkObserveSend measures what the metrics add to one CP send on its
// leader: the op histogram, the queue and commit histograms and the
// proposals-per-entry sample (docs/benchmarks.md compares it with the
// ~1 ms of CPU a send costs end to end).
func BenchmarkObserveSend(b *testing.B) {
	o := newObservations(prometheus.NewRegistry(), "n1")
	cpo := o.cpObserver()
	b.ReportAllocs()
	for b.Loop() {
		o.observeOp("/mpim.Messages/Send", 3*time.Millisecond, nil)
		cpo.Queued(2, time.Millisecond)
		cpo.Committed(2, 2*time.Millisecond, 8)
	}
}
