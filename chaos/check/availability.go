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
// write attempts, the share that was acknowledged while it counted, with
// how many attempts each share is over.
type Availability struct {
	// Overall is over every write attempt of the run.
	Overall float64 `json:"overall"`
	// DuringFaults is over attempts invoked while a fault window was in
	// force, after its detection period; one counts only if it was
	// acknowledged before that window closed.
	DuringFaults float64 `json:"during_faults"`
	// OutsideFaults is over attempts invoked outside every fault window.
	OutsideFaults float64 `json:"outside_faults"`
	// BySide is per partition side the client was on (Op.Side), by the
	// same rule as DuringFaults: acknowledged before the partition healed.
	BySide map[string]float64 `json:"by_side"`
	// Samples is how many attempts each share is over.
	Samples Samples `json:"samples"`
	// CompletedAfterHeal counts the attempts invoked during a fault and
	// acknowledged only after it was healed: answered, but not while the
	// fault was in force, so not available during it.
	CompletedAfterHeal AfterHeal `json:"completed_after_heal"`
}

// Samples is the number of write attempts behind each availability share.
type Samples struct {
	Overall       int            `json:"overall"`
	DuringFaults  int            `json:"during_faults"`
	OutsideFaults int            `json:"outside_faults"`
	BySide        map[string]int `json:"by_side"`
}

// AfterHeal counts attempts acknowledged after their fault window closed.
type AfterHeal struct {
	DuringFaults int            `json:"during_faults"`
	BySide       map[string]int `json:"by_side"`
}

// ratio counts write attempts and their acknowledgements.
type ratio struct{ ok, all int }

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
//   - Overall: every send, acknowledged whenever.
//   - DuringFaults: sends invoked inside some fault window, at least
//     detection after it started; one counts as acknowledged only if its
//     ok came before that window closed (CAP's A: answered while the
//     partition was in force). One acknowledged after the heal is counted
//     in CompletedAfterHeal instead.
//   - OutsideFaults: sends invoked inside no window.
//   - BySide: sends grouped by Op.Side (the partition side the client was
//     on, recorded only while a partition was in force), with the rule of
//     DuringFaults against the window the send was invoked in; sends with
//     no side are left out of this map only.
//
// A send invoked within detection of a window's start (of any window, even
// when another window is already in force) counts neither during nor
// outside: clients need a moment to notice a fault, and it is the system's
// behaviour once they have that the report judges, as Jepsen's and etcd's
// robustness tests allow for a detection period. There is no such period
// after a window ends: recovering from a heal is part of being available.
// A bucket with no attempt reports 1.0, since nothing was refused; its
// sample size (0) says so.
func AvailabilityOf(ops []Op, faults []Window, detection time.Duration) Availability {
	var overall, during, outside ratio
	sides := make(map[string]*ratio)
	a := Availability{Samples: Samples{BySide: map[string]int{}}, CompletedAfterHeal: AfterHeal{BySide: map[string]int{}}}
	// okWithin: acknowledged before the window invoked in closed.
	okWithin := func(op Op, w Window) bool {
		return op.Status == StatusOK && (w.End.IsZero() || !op.Return.After(w.End))
	}
	for _, op := range ops {
		if op.Kind != KindSend {
			continue
		}
		overall.all++
		if op.Status == StatusOK {
			overall.ok++
		}
		i := slices.IndexFunc(faults, func(w Window) bool { return w.contains(op.Call, 0) })
		if op.Side != "" {
			r := sides[op.Side]
			if r == nil {
				r = &ratio{}
				sides[op.Side] = r
			}
			r.all++
			switch {
			case i < 0:
				if op.Status == StatusOK {
					r.ok++ // a side recorded outside any window: no heal to wait for
				}
			case okWithin(op, faults[i]):
				r.ok++
			case op.Status == StatusOK:
				a.CompletedAfterHeal.BySide[op.Side]++
			}
		}
		detecting := slices.ContainsFunc(faults, func(w Window) bool {
			return w.contains(op.Call, 0) && !w.contains(op.Call, detection)
		})
		in := slices.IndexFunc(faults, func(w Window) bool { return w.contains(op.Call, detection) })
		switch {
		case detecting:
			// Clients are still noticing the fault: neither bucket.
		case in >= 0:
			during.all++
			switch {
			case okWithin(op, faults[in]):
				during.ok++
			case op.Status == StatusOK:
				a.CompletedAfterHeal.DuringFaults++
			}
		default:
			outside.all++
			if op.Status == StatusOK {
				outside.ok++
			}
		}
	}
	a.Overall, a.DuringFaults, a.OutsideFaults = overall.share(), during.share(), outside.share()
	a.Samples.Overall, a.Samples.DuringFaults, a.Samples.OutsideFaults = overall.all, during.all, outside.all
	a.BySide = make(map[string]float64, len(sides))
	for side, r := range sides {
		a.BySide[side] = r.share()
		a.Samples.BySide[side] = r.all
	}
	return a
}

// MeasuredFaultTime is how long faults were in force past their detection
// period: the time DuringFaults measures.
func MeasuredFaultTime(faults []Window, end time.Time, detection time.Duration) time.Duration {
	var total time.Duration
	for _, w := range faults {
		stop := w.End
		if stop.IsZero() {
			stop = end
		}
		total += max(stop.Sub(w.Start.Add(detection)), 0)
	}
	return total
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

// SideCount is what happened to the write attempts made on one partition
// side: acknowledged while the side was cut off, refused (fail: not
// applied), unknown (info), or acknowledged only after the heal.
type SideCount struct {
	Sends      int `json:"sends"`
	AckedWhile int `json:"acked_while_cut"`
	Refused    int `json:"refused"`
	Unknown    int `json:"unknown"`
	AckedLater int `json:"acked_after_heal"`
}

// NoPartition is the side of a send made while no partition was in force.
const NoPartition = "all"

// SideCounts counts, per partition side (Op.Side), the outcomes of the
// sends made there, against the fault window each was invoked in (sends
// with no side, or made while no partition was in force, are left out).
func SideCounts(ops []Op, faults []Window) map[string]SideCount {
	out := map[string]SideCount{}
	for _, op := range ops {
		if op.Kind != KindSend || op.Side == "" || op.Side == NoPartition {
			continue
		}
		c := out[op.Side]
		c.Sends++
		i := slices.IndexFunc(faults, func(w Window) bool { return w.contains(op.Call, 0) })
		switch {
		case op.Status == StatusFail:
			c.Refused++
		case op.Status == StatusInfo:
			c.Unknown++
		case i >= 0 && !faults[i].End.IsZero() && op.Return.After(faults[i].End):
			c.AckedLater++
		default:
			c.AckedWhile++
		}
		out[op.Side] = c
	}
	return out
}
