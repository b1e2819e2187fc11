package check

import (
	"fmt"
	"time"

	"github.com/anishathalye/porcupine"
)

// Annotation colours: the checker's verdicts and the ops left out of the check.
const (
	colourOK      = "#c8f0c8"
	colourIllegal = "#f7c6c6"
	colourUnknown = "#f7e3b0"
	colourDropped = "#e4e4e4"
)

// Visualize writes porcupine's interactive HTML timeline of the history, all
// conversations, to path: one row per process, each conversation's
// linearization (or, for an illegal one, its longest partial
// linearizations, with the operation that cannot be placed in red). It
// annotates the timeline with what the check left out (fail ops, and reads
// that did not complete ok) on their process's row, and with each
// conversation's verdict on a "checker" row at the end. The timeout bounds
// each of the two passes: the per-conversation verdicts, then the search for
// the linearizations to draw.
func Visualize(ops []Op, timeout time.Duration, path string) error {
	verdict := Linearizable(ops, timeout)
	h := newHistory(ops)
	model := h.model()
	model.Partition = partitionByConv
	_, info := porcupine.CheckOperationsVerbose(model, h.ops, max(timeout, 0))
	info.AddAnnotations(h.annotations(verdict))
	if err := porcupine.VisualizePath(model, info, path); err != nil {
		return fmt.Errorf("check: write visualization %s: %w", path, err)
	}
	return nil
}

// annotations describes the dropped ops and the per-conversation verdicts.
func (h *history) annotations(v Verdict) []porcupine.Annotation {
	var as []porcupine.Annotation
	for _, d := range h.dropped {
		what := d.op.Kind
		if d.op.Kind == KindSend {
			what += " " + d.op.Cmid
		}
		why := "definitely not applied"
		if d.op.Kind == KindRead {
			why = "a read that did not complete ok has no effect"
		}
		as = append(as, porcupine.Annotation{
			ClientId:        d.op.Process,
			Start:           d.call,
			End:             d.ret,
			Description:     fmt.Sprintf("%s %s → %s", d.op.Conv, what, d.op.Status),
			Details:         "left out of the check: " + why,
			BackgroundColor: colourDropped,
		})
	}
	// At the end of time, where info ops return, one tick apart so that the
	// timeline draws them side by side.
	for i, conv := range h.convs {
		res := v.Convs[conv]
		a := porcupine.Annotation{
			Tag:         "checker",
			Start:       h.end + int64(i),
			Description: fmt.Sprintf("%s: %s", conv, res),
		}
		switch res {
		case ConvOK:
			a.BackgroundColor = colourOK
			a.Details = "a linearization exists; hover an operation to see the state after it"
		case ConvIllegal:
			a.BackgroundColor = colourIllegal
			a.Details = "no linearization exists; the longest partial linearizations end before the operations drawn in red"
		default:
			a.BackgroundColor = colourUnknown
			a.Details = "the checker ran out of time"
		}
		as = append(as, a)
	}
	return as
}
