package check

import (
	"math"
	"slices"
	"time"
)

// Window is a period of the run, such as the time a fault was in force,
// from Start to End. A zero End means the window never closed: it lasts to
// the end of the run.
type Window struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end,omitzero"`
}

// contains reports whether t falls in [w.Start+from, w.End).
func (w Window) contains(t time.Time, from time.Duration) bool {
	return !t.Before(w.Start.Add(from)) && (w.End.IsZero() || t.Before(w.End))
}

// Availability is the report's `availability` object: for each bucket of
// write attempts, the share that was acknowledged.
type Availability struct {
	// Overall is over every write attempt of the run.
	Overall float64 `json:"overall"`
	// DuringFaults is over attempts invoked while a fault window was in
	// force, after its detection period.
	DuringFaults float64 `json:"during_faults"`
	// OutsideFaults is over attempts invoked outside every fault window.
	OutsideFaults float64 `json:"outside_faults"`
	// BySide is per partition side the client was on (Op.Side).
	BySide map[string]float64 `json:"by_side"`
}

// ratio counts write attempts and their acknowledgements.
type ratio struct{ ok, all int }

func (r *ratio) add(op Op) {
	r.all++
	if op.Status == StatusOK {
		r.ok++
	}
}

// share is the acknowledged share; with no attempt at all it is 1: nothing
// was asked, so nothing was refused.
func (r ratio) share() float64 {
	if r.all == 0 {
		return 1
	}
	return float64(r.ok) / float64(r.all)
}

// AvailabilityOf is the share of write attempts (sends, whatever their
// outcome) that were acknowledged (ok); fail and info both count as not
// acknowledged, since the client could not tell its user the message was
// sent. This is Maelstrom's availability, an ok fraction, bucketed the way
// Jepsen's plots shade fault windows:
//
//   - Overall: every send.
//   - DuringFaults: sends invoked inside some fault window, at least
//     detection after it started.
//   - OutsideFaults: sends invoked inside no window.
//   - BySide: every send, grouped by Op.Side; sends with no side recorded
//     are left out of this map only.
//
// A send invoked within detection of a window's start (of any window, even
// when another window is already in force) counts neither during nor
// outside: clients need a moment to notice a fault, and it is the system's
// behaviour once they have that the report judges, as Jepsen's and etcd's
// robustness tests allow for a detection period. There is no such period
// after a window ends: recovering from a heal is part of being available.
// A bucket with no attempt reports 1.0, since nothing was refused.
func AvailabilityOf(ops []Op, faults []Window, detection time.Duration) Availability {
	var overall, during, outside ratio
	sides := make(map[string]*ratio)
	for _, op := range ops {
		if op.Kind != KindSend {
			continue
		}
		overall.add(op)
		if op.Side != "" {
			if sides[op.Side] == nil {
				sides[op.Side] = &ratio{}
			}
			sides[op.Side].add(op)
		}
		detecting := slices.ContainsFunc(faults, func(w Window) bool {
			return w.contains(op.Call, 0) && !w.contains(op.Call, detection)
		})
		in := slices.ContainsFunc(faults, func(w Window) bool { return w.contains(op.Call, detection) })
		switch {
		case detecting:
			// Clients are still noticing the fault: neither bucket.
		case in:
			during.add(op)
		default:
			outside.add(op)
		}
	}
	a := Availability{
		Overall: overall.share(), DuringFaults: during.share(), OutsideFaults: outside.share(),
		BySide: make(map[string]float64, len(sides)),
	}
	for side, r := range sides {
		a.BySide[side] = r.share()
	}
	return a
}

// Latency is the report's `latency_ms` object, in milliseconds.
type Latency struct {
	P50 float64 `json:"p50"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// LatencyOf is the latency, Return minus Call, of the ok ops of every kind,
// by the nearest-rank percentile. Fail and info ops are left out: an info op
// has no known completion, and a timeout's latency is the timeout, which
// says nothing about the system. With no ok op every value is 0. A negative
// latency (a clock that stepped back) counts as 0.
func LatencyOf(ops []Op) Latency {
	var ms []float64
	for _, op := range ops {
		if op.Status != StatusOK {
			continue
		}
		d := max(op.Return.Sub(op.Call), 0)
		ms = append(ms, float64(d)/float64(time.Millisecond))
	}
	if len(ms) == 0 {
		return Latency{}
	}
	slices.Sort(ms)
	return Latency{P50: nearestRank(ms, 0.50), P99: nearestRank(ms, 0.99), Max: ms[len(ms)-1]}
}

// nearestRank is the p-th percentile of sorted by the nearest-rank method:
// the smallest value with at least p of the values at or below it, always
// one of the values observed.
func nearestRank(sorted []float64, p float64) float64 {
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}
