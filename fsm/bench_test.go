package fsm

import (
	"fmt"
	"testing"
)

// BenchmarkApplySend measures the apply path of a log entry carrying
// batch sends into one group conversation in MemKV, with the default dedup
// window (so that, past 4096 messages, every send also forgets one entry).
// Reported per send, so batch sizes compare directly.
func BenchmarkApplySend(b *testing.B) {
	for _, batch := range []int{1, 64} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			h := newHarness(b, DefaultConfig())
			h.users("alice", "bob")
			h.ok(mkGroup("team", 1, 2))
			cmds := make([]Command, batch)
			sends := make([]Send, batch)
			n := 0
			b.ReportAllocs()
			for b.Loop() {
				for i := range cmds {
					n++
					sends[i] = Send{Conv: "g:team", FromUID: uint64(1 + n%2), From: "alice", Text: "hello there",
						Cmid: fmt.Sprintf("c%d", n), ID: fmt.Sprintf("m%d", n), Ts: int64(n), Origin: "bench"}
					cmds[i] = Command{Send: &sends[i]}
				}
				h.index++
				rs, err := h.m.Apply(h.kv, h.index, cmds)
				if err != nil || rs[batch-1].Err != nil {
					b.Fatalf("apply: %v %v", err, rs[batch-1].Err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/send")
		})
	}
}
