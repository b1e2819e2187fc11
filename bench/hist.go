package bench

import (
	"encoding/json"
	"math"
	"math/bits"
	"time"
)

// subBits sets the histogram's precision: each power of two is split into
// 2^subBits buckets, so a recorded value is off by less than 1/2^subBits
// (0.8 %) of itself — the "two significant digits" of HdrHistogram.
const subBits = 7

const subCount = 1 << subBits

// Histogram counts latencies in log-linear buckets (HdrHistogram's layout,
// without the dependency): exact below 128 ns, then 128 buckets per power
// of two up to about 2^63 ns. Recording is O(1) and allocation-free; two
// histograms merge by adding counts, which is how the results of several
// processes are combined. The zero value is ready to use. A Histogram is
// not safe for concurrent use.
type Histogram struct {
	counts []uint64
	n      uint64
	sum    float64 // ns
	min    int64
	max    int64
}

// bucketOf maps a value in ns to its bucket.
func bucketOf(v int64) int {
	if v < subCount {
		return int(max(v, 0))
	}
	shift := bits.Len64(uint64(v)) - subBits - 1
	return (shift+1)<<subBits + int(uint64(v)>>shift) - subCount
}

// bucketRange is the smallest value of bucket i and its width.
func bucketRange(i int) (low, width int64) {
	if i < subCount {
		return int64(i), 1
	}
	shift := i>>subBits - 1
	return int64(i-(shift+1)<<subBits+subCount) << shift, 1 << shift
}

// Record adds one latency.
func (h *Histogram) Record(d time.Duration) {
	v := max(int64(d), 0)
	i := bucketOf(v)
	if i >= len(h.counts) {
		n := max(i+1, 2*len(h.counts), 16*subCount)
		h.counts = append(h.counts, make([]uint64, n-len(h.counts))...)
	}
	h.counts[i]++
	if h.n == 0 || v < h.min {
		h.min = v
	}
	h.max = max(h.max, v)
	h.n++
	h.sum += float64(v)
}

// Count is the number of recorded values.
func (h *Histogram) Count() uint64 { return h.n }

// Merge adds every value of o to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	if len(o.counts) > len(h.counts) {
		h.counts = append(h.counts, make([]uint64, len(o.counts)-len(h.counts))...)
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	h.max = max(h.max, o.max)
	h.n += o.n
	h.sum += o.sum
}

// Quantile returns the value at quantile q (0..1) by nearest rank: the
// smallest recorded value such that at least q of all values are at or
// below it, reported as the middle of its bucket (the first and last ranks
// exactly: the minimum and maximum). 0 when empty.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = min(max(rank, 1), h.n)
	switch rank {
	case 1:
		return time.Duration(h.min)
	case h.n:
		return time.Duration(h.max)
	}
	var seen uint64
	for i, c := range h.counts {
		if seen += c; seen >= rank {
			low, width := bucketRange(i)
			return time.Duration(min(max(low+(width-1)/2, h.min), h.max))
		}
	}
	return time.Duration(h.max)
}

// Summary is a histogram's percentiles in milliseconds, as the JSON result
// and the Markdown report show them.
type Summary struct {
	Count uint64  `json:"count"`
	Mean  float64 `json:"mean"`
	Min   float64 `json:"min"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	P999  float64 `json:"p999"`
	Max   float64 `json:"max"`
}

// Summary returns the percentiles in milliseconds.
func (h *Histogram) Summary() Summary {
	ms := func(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }
	s := Summary{Count: h.n}
	if h.n == 0 {
		return s
	}
	s.Mean = math.Round(h.sum/float64(h.n)/1e3) / 1e3
	s.Min, s.Max = ms(time.Duration(h.min)), ms(time.Duration(h.max))
	s.P50, s.P90, s.P99, s.P999 = ms(h.Quantile(0.5)), ms(h.Quantile(0.9)), ms(h.Quantile(0.99)), ms(h.Quantile(0.999))
	return s
}

// histJSON is the wire form of a Histogram between processes: the non-zero
// buckets as (index, count) pairs.
type histJSON struct {
	Buckets [][2]uint64 `json:"buckets"`
	Sum     float64     `json:"sum_ns"`
	Min     int64       `json:"min_ns"`
	Max     int64       `json:"max_ns"`
}

// MarshalJSON writes the non-zero buckets, so that a parent process can
// merge its children's histograms exactly.
func (h *Histogram) MarshalJSON() ([]byte, error) {
	j := histJSON{Buckets: [][2]uint64{}, Sum: h.sum, Min: h.min, Max: h.max}
	for i, c := range h.counts {
		if c > 0 {
			j.Buckets = append(j.Buckets, [2]uint64{uint64(i), c})
		}
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (h *Histogram) UnmarshalJSON(b []byte) error {
	var j histJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*h = Histogram{sum: j.Sum, min: j.Min, max: j.Max}
	for _, bc := range j.Buckets {
		i := int(bc[0])
		if i >= len(h.counts) {
			h.counts = append(h.counts, make([]uint64, i+1-len(h.counts))...)
		}
		h.counts[i] += bc[1]
		h.n += bc[1]
	}
	return nil
}
