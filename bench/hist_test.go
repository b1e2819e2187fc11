package bench

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// nearestRank is the reference: the value at quantile q of a sorted slice.
func nearestRank(sorted []int64, q float64) int64 {
	r := int(math.Ceil(q * float64(len(sorted))))
	return sorted[min(max(r, 1), len(sorted))-1]
}

// TestHistogramQuantiles compares every percentile the reports use with the
// exact nearest-rank value of the sorted input: the histogram may be off by
// its bucket width, 1/128 of the value, and no more.
func TestHistogramQuantiles(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	dists := []struct {
		name string
		gen  func() int64
	}{
		{"uniform-1ms", func() int64 { return r.Int64N(int64(time.Millisecond)) }},
		{"lognormal", func() int64 { return int64(math.Exp(r.NormFloat64()*1.5 + 14)) }},
		{"small-exact", func() int64 { return r.Int64N(100) }},
		{"bimodal", func() int64 {
			if r.IntN(100) == 0 {
				return int64(200*time.Millisecond) + r.Int64N(int64(50*time.Millisecond))
			}
			return int64(2*time.Millisecond) + r.Int64N(int64(time.Millisecond))
		}},
	}
	for _, d := range dists {
		t.Run(d.name, func(t *testing.T) {
			var h Histogram
			vals := make([]int64, 20_000)
			for i := range vals {
				vals[i] = d.gen()
				h.Record(time.Duration(vals[i]))
			}
			slices.Sort(vals)
			for _, q := range []float64{0, 0.001, 0.25, 0.5, 0.9, 0.99, 0.999, 1} {
				want, got := nearestRank(vals, q), int64(h.Quantile(q))
				if tol := want/subCount + 1; got < want-tol || got > want+tol {
					t.Errorf("quantile %v: histogram says %d ns, the sorted values %d ns (tolerance %d)", q, got, want, tol)
				}
			}
			if h.Count() != uint64(len(vals)) || int64(h.Quantile(1)) != vals[len(vals)-1] || int64(h.Quantile(0)) != vals[0] {
				t.Errorf("count %d, min %v, max %v: want %d, %d, %d", h.Count(), h.Quantile(0), h.Quantile(1), len(vals), vals[0], vals[len(vals)-1])
			}
		})
	}
}

// TestHistogramMergeAndJSON: a histogram sent between processes as JSON and
// merged gives the same percentiles as one that saw every value.
func TestHistogramMergeAndJSON(t *testing.T) {
	var all, a, b Histogram
	for i := range 10_000 {
		v := time.Duration(i*i) * time.Nanosecond
		all.Record(v)
		if i%3 == 0 {
			a.Record(v)
		} else {
			b.Record(v)
		}
	}
	raw, err := json.Marshal(&b)
	if err != nil {
		t.Fatal(err)
	}
	var back Histogram
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	a.Merge(&back)
	if a.Summary() != all.Summary() {
		t.Fatalf("merged %+v, want %+v", a.Summary(), all.Summary())
	}
	var empty Histogram
	if s := empty.Summary(); s != (Summary{}) || empty.Quantile(0.5) != 0 {
		t.Fatalf("empty histogram: %+v", s)
	}
}

// TestBuckets: every value falls in a bucket whose range holds it, and
// buckets are contiguous.
func TestBuckets(t *testing.T) {
	next := int64(0)
	for i := range 40 * subCount {
		low, width := bucketRange(i)
		if low != next {
			t.Fatalf("bucket %d starts at %d, want %d", i, low, next)
		}
		for _, v := range []int64{low, low + width - 1} {
			if bucketOf(v) != i {
				t.Fatalf("value %d: bucket %d, want %d", v, bucketOf(v), i)
			}
		}
		next = low + width
	}
}
