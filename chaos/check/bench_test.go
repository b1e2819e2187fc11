package check

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkLinearizable checks a generated 10k-op history: 8 conversations,
// 16 concurrent processes, 30% reads, 2% info and 2% fail outcomes.
func BenchmarkLinearizable(b *testing.B) {
	ops := genHistory(3, genConfig{ops: 10_000, procs: 16, convs: 8, read: 0.3, info: 0.02, fail: 0.02, retry: 0.5})
	b.ReportAllocs()
	for b.Loop() {
		if v := Linearizable(ops, time.Minute); v.Linearizable != true {
			b.Fatalf("generated linearizable history: verdict %v, bad %q", v.Linearizable, v.Bad)
		}
	}
	b.ReportMetric(float64(len(ops)), "ops/history")
}

// BenchmarkLinearizable100k checks a generated 100k-op history, the size
// of the checker target (≤ 10 s), with 64 processes, 30% reads, 2%
// info and 2% fail outcomes, over 200 and over 20 conversations (a chaos
// run partitions its history per conversation, so fewer conversations
// means longer per-conversation searches). One iteration is one whole
// check; run it with -benchtime 1x.
func BenchmarkLinearizable100k(b *testing.B) {
	for _, convs := range []int{200, 20} {
		b.Run(fmt.Sprintf("convs=%d", convs), func(b *testing.B) {
			ops := genHistory(7, genConfig{ops: 100_000, procs: 64, convs: convs, read: 0.3, info: 0.02, fail: 0.02, retry: 0.5})
			b.ReportAllocs()
			for b.Loop() {
				if v := Linearizable(ops, time.Minute); v.Linearizable != true {
					b.Fatalf("generated linearizable history: verdict %v, bad %q", v.Linearizable, v.Bad)
				}
			}
			b.ReportMetric(float64(len(ops)), "ops/history")
		})
	}
}
