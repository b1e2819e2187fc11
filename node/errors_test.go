package node

import (
	"fmt"
	"strings"
	"testing"

	"mpim/internal/rpcerr"
	"mpim/node/ap"
	"mpim/node/cp"
)

// TestCommitError: both modes' failures map to the protocol by the shared
// outcome vocabulary, and each keeps its own name in the message (an AP
// failure never reads "cp: ...").
func TestCommitError(t *testing.T) {
	for _, tc := range []struct {
		err      error
		code     rpcerr.Code
		prefix   string
		notFound string
	}{
		{fmt.Errorf("%w: log: disk full", ap.ErrNotApplied), rpcerr.Unavailable, "ap: not applied: log: disk full", "cp:"},
		{fmt.Errorf("%w: shard 2 queue full", cp.ErrNotApplied), rpcerr.Unavailable, "cp: not applied: shard 2", "ap:"},
		{fmt.Errorf("%w: shard 1: deadline", cp.ErrUnknown), rpcerr.Timeout, "cp: outcome unknown: shard 1", "ap:"},
	} {
		code, msg, err := rpcerr.Decode(commitError(tc.err))
		if err != nil {
			t.Fatal(err)
		}
		if code != tc.code || !strings.HasPrefix(msg, tc.prefix) || strings.Contains(msg, tc.notFound) {
			t.Errorf("commitError(%v) = %s %q; want %s starting %q", tc.err, code, msg, tc.code, tc.prefix)
		}
	}
}
