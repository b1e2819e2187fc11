package scenario

import (
	"fmt"
	"testing"
	"time"
)

// schedule builds a scenario of the given duration with fault steps at the
// given times.
func schedule(t *testing.T, duration string, at ...string) *Scenario {
	t.Helper()
	src := "duration: " + duration + "\nfaults:\n"
	for i, a := range at {
		src += fmt.Sprintf("  - {at: %s, do: \"kill n%d\"}\n", a, i%3+1)
	}
	s, err := Parse([]byte(src), "quick.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestQuick checks that a compressed schedule keeps the steps' order,
// lasts about 10 s (at most 12 s unless the floors need more), keeps 1 s
// before the first step and between steps that were apart and 1.5 s after
// the last step, and
// leaves the original alone.
func TestQuick(t *testing.T) {
	tests := []struct {
		name     string
		duration string
		at       []string
		maxTotal time.Duration
	}{
		{"typical", "40s", []string{"10s", "25s"}, 12 * time.Second},
		{"long", "10m", []string{"1m", "2m", "9m59s"}, 12 * time.Second},
		{"steps close together", "60s", []string{"10s", "10500ms", "11s", "50s"}, 12 * time.Second},
		{"same instant", "40s", []string{"10s", "10s", "20s"}, 12 * time.Second},
		{"at start", "30s", []string{"0s", "29s"}, 12 * time.Second},
		{"many steps", "2m", []string{"5s", "10s", "15s", "20s", "25s", "30s", "35s", "40s", "45s", "50s", "55s", "60s", "65s", "70s"}, 16 * time.Second},
		{"no faults", "1m", nil, 12 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := schedule(t, tt.duration, tt.at...)
			before := s.clone()
			q := s.Quick()
			if q.Duration > tt.maxTotal || q.Duration < 8*time.Second && s.Duration >= 8*time.Second {
				t.Errorf("quick run lasts %v, want 8s to %v", q.Duration, tt.maxTotal)
			}
			if len(q.Faults) != len(s.Faults) {
				t.Fatalf("quick run has %d steps, want %d", len(q.Faults), len(s.Faults))
			}
			prev, prevOrig := time.Duration(0), time.Duration(0)
			for i, st := range q.Faults {
				orig := s.Faults[i]
				if st.Do != orig.Do || st.Line != orig.Line {
					t.Errorf("step %d is %q (line %d), want %q (line %d): order changed", i, st.Do, st.Line, orig.Do, orig.Line)
				}
				gap, origGap := st.At-prev, orig.At-prevOrig
				if gap < min(origGap, time.Second) {
					t.Errorf("step %d comes %v after the previous one, want at least %v", i, gap, min(origGap, time.Second))
				}
				if st.At < prev || st.At > orig.At {
					t.Errorf("step %d at %v: want between %v and the original %v", i, st.At, prev, orig.At)
				}
				prev, prevOrig = st.At, orig.At
			}
			if tail, origTail := q.Duration-prev, s.Duration-prevOrig; tail < min(origTail, 1500*time.Millisecond) {
				t.Errorf("the run ends %v after the last step, want at least %v", tail, min(origTail, 1500*time.Millisecond))
			}
			if s.Duration != before.Duration || len(s.Faults) != len(before.Faults) || (len(s.Faults) > 0 && s.Faults[0].At != before.Faults[0].At) {
				t.Errorf("Quick changed the original scenario")
			}
		})
	}
}

// TestQuickShort checks that a run already short enough is left as it is.
func TestQuickShort(t *testing.T) {
	s := schedule(t, "9s", "2s", "5s")
	q := s.Quick()
	if q == s || q.Duration != 9*time.Second || q.Faults[0].At != 2*time.Second || q.Faults[1].At != 5*time.Second {
		t.Errorf("a 9 s run became %v with steps %v, %v (or was not copied)", q.Duration, q.Faults[0].At, q.Faults[1].At)
	}
}

// TestQuickSameInstant checks that steps written at one instant stay at
// one instant.
func TestQuickSameInstant(t *testing.T) {
	q := schedule(t, "40s", "10s", "10s", "20s").Quick()
	if q.Faults[0].At != q.Faults[1].At {
		t.Errorf("steps written at the same instant moved apart: %v, %v", q.Faults[0].At, q.Faults[1].At)
	}
}
