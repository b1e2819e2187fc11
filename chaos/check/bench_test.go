package check

import (
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
