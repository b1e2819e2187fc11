package scenario

import (
	"maps"
	"slices"
	"time"
)

// The bounds of a quick run (Quick).
const (
	quickTarget   = 10 * time.Second        // what a compressed run aims at
	quickMax      = 12 * time.Second        // runs this short are left as they are
	quickStepGap  = time.Second             // the least time kept between fault steps
	quickTail     = 1500 * time.Millisecond // the least time kept after the last step
	quickRounding = 10 * time.Millisecond
)

// Quick returns a copy of s compressed for CI: the duration and every
// fault time divided by one factor so that the run lasts about 10 s. Order
// is kept, and so are floors that let the cluster react: at least 1 s
// before the first fault step (the workload's warm-up) and between
// consecutive steps, and 1.5 s after the last one (or the
// original gap, where the file had it shorter — steps written at the same
// instant stay together). When the floors alone exceed the target, the
// run lasts what the floors need. A scenario of 12 s or less is returned
// unchanged.
func (s *Scenario) Quick() *Scenario {
	out := s.clone()
	if s.Duration <= quickMax {
		return out
	}
	// The gaps between the start, each step and the end.
	gaps := make([]time.Duration, 0, len(s.Faults)+1)
	prev := time.Duration(0)
	for _, st := range s.Faults {
		gaps = append(gaps, st.At-prev)
		prev = st.At
	}
	gaps = append(gaps, s.Duration-prev)
	floors := make([]time.Duration, len(gaps))
	for i, g := range gaps {
		floor := quickStepGap
		if i == len(gaps)-1 {
			floor = quickTail
		}
		floors[i] = min(g, floor)
	}
	scaled := func(factor float64) []time.Duration {
		out := make([]time.Duration, len(gaps))
		for i, g := range gaps {
			out[i] = max((time.Duration(float64(g) / factor)).Round(quickRounding), floors[i])
		}
		return out
	}
	total := func(gs []time.Duration) (t time.Duration) {
		for _, g := range gs {
			t += g
		}
		return t
	}
	// The total falls as the factor grows; find the smallest factor that
	// reaches the target, or the floors.
	lo, hi := 1.0, float64(s.Duration)/float64(quickTarget)
	for total(scaled(hi)) > quickTarget && hi < 1e6 {
		lo, hi = hi, hi*2
	}
	for range 60 {
		mid := (lo + hi) / 2
		if total(scaled(mid)) > quickTarget {
			lo = mid
		} else {
			hi = mid
		}
	}
	gs := scaled(hi)
	at := time.Duration(0)
	for i := range out.Faults {
		at += gs[i]
		out.Faults[i].At = at
	}
	out.Duration = at + gs[len(gs)-1]
	return out
}

// clone returns a copy of s that shares nothing mutable with it.
func (s *Scenario) clone() *Scenario {
	c := *s
	c.Faults = slices.Clone(s.Faults)
	c.Unsafe = slices.Clone(s.Unsafe)
	c.Expect = maps.Clone(s.Expect)
	for k, v := range c.Expect {
		c.Expect[k] = slices.Clone(v)
	}
	return &c
}
