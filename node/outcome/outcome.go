// Package outcome is the one vocabulary, shared by both modes, for a
// write that did not succeed:
//
//   - ErrNotApplied: refused before it reached the log; guaranteed not
//     applied, so a client is told unavailable and may simply try again;
//   - ErrUnknown: it may have reached the log and may yet be applied, so a
//     client is told timeout and retries with the same cmid, which the
//     state machine deduplicates.
//
// Each mode wraps them under its own name (cp.ErrNotApplied is
// "cp: not applied", ap.ErrNotApplied "ap: not applied"), and the node
// decides the client's answer with errors.Is against these two alone.
package outcome

import "errors"

var (
	// ErrNotApplied: guaranteed not applied.
	ErrNotApplied = errors.New("not applied")
	// ErrUnknown: may or may not be applied.
	ErrUnknown = errors.New("outcome unknown")
)
