package check

import (
	"cmp"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
)

// Per-conversation results of the linearizability check.
const (
	ConvOK      = "ok"      // a linearization exists
	ConvIllegal = "illegal" // no linearization exists
	ConvUnknown = "unknown" // the checker ran out of time
)

// Verdict is the outcome of [Linearizable].
type Verdict struct {
	// Linearizable is the report's value: true, false, or "unknown" when
	// some conversation could not be decided in time and none is illegal.
	Linearizable any `json:"linearizable"`
	// Convs is each conversation's result: ConvOK, ConvIllegal or ConvUnknown.
	Convs map[string]string `json:"convs"`
	// Bad lists the conversations that are not linearizable, sorted.
	Bad []string `json:"bad"`
}

// Linearizable checks every conversation's history separately against the
// model in the package documentation, within timeout overall; a timeout of
// zero or less means no limit. Conversations are checked in parallel, up to
// GOMAXPROCS at a time, largest first; a conversation that the deadline
// interrupts, or that it reaches before it starts, is "unknown".
func Linearizable(ops []Op, timeout time.Duration) Verdict {
	deadline := time.Now().Add(timeout)
	h := newHistory(ops)
	model := h.model()

	parts := partitionByConv(h.ops)
	results := make(map[string]porcupine.CheckResult, len(h.convs))
	for _, c := range h.convs {
		results[c] = porcupine.Ok // conversations whose every op was dropped
	}
	order := make([]int, len(parts))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(len(parts[b]), len(parts[a])) })

	var mu sync.Mutex
	var wg sync.WaitGroup
	jobs := make(chan int)
	for range min(runtime.GOMAXPROCS(0), len(parts)) {
		wg.Go(func() {
			for i := range jobs {
				res := checkPart(model, parts[i], timeout, deadline)
				mu.Lock()
				results[parts[i][0].Input.(input).conv] = res
				mu.Unlock()
			}
		})
	}
	for _, i := range order {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	return verdictOf(results)
}

// checkPart checks one conversation's operations with what is left of the
// time budget. Porcupine reads a zero timeout as no limit, so a part reached
// after the deadline is not handed to it at all.
func checkPart(model porcupine.Model, part []porcupine.Operation, timeout time.Duration, deadline time.Time) porcupine.CheckResult {
	if timeout <= 0 {
		return porcupine.CheckOperationsTimeout(model, part, 0)
	}
	left := time.Until(deadline)
	if left <= 0 {
		return porcupine.Unknown
	}
	return porcupine.CheckOperationsTimeout(model, part, left)
}

// verdictOf folds per-conversation results into a verdict. One illegal
// conversation makes the whole history non-linearizable, whatever the
// others' results; otherwise one undecided conversation makes it "unknown".
func verdictOf(results map[string]porcupine.CheckResult) Verdict {
	v := Verdict{Linearizable: true, Convs: make(map[string]string, len(results)), Bad: []string{}}
	unknown := false
	for conv, res := range results {
		switch res {
		case porcupine.Ok:
			v.Convs[conv] = ConvOK
		case porcupine.Illegal:
			v.Convs[conv] = ConvIllegal
			v.Bad = append(v.Bad, conv)
		default:
			v.Convs[conv] = ConvUnknown
			unknown = true
		}
	}
	slices.Sort(v.Bad)
	switch {
	case len(v.Bad) > 0:
		v.Linearizable = false
	case unknown:
		v.Linearizable = ConvUnknown
	}
	return v
}
