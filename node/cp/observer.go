package cp

import "time"

// Observer is told what a shard measures; the node turns it into
// Prometheus series (docs/observability.md). A nil Observer, or a nil
// field, is skipped.
type Observer struct {
	// Queued is a proposal's wait for the batcher (entries in flight).
	Queued func(shard int, d time.Duration)
	// Committed is one log entry's Raft commit and apply, from the
	// batcher's Apply to its answer, and how many proposals it carried.
	Committed func(shard int, d time.Duration, proposals int)
	// Refused counts proposals answered not applied (no leader, no
	// quorum) or unknown.
	Refused func(shard int, proposals int, unknown bool)
	// Leadership is this replica gaining (true) or losing the lead.
	Leadership func(shard int, leader bool)
}

func (o *Observer) queued(shard int, d time.Duration) {
	if o != nil && o.Queued != nil {
		o.Queued(shard, d)
	}
}

func (o *Observer) committed(shard int, d time.Duration, n int) {
	if o != nil && o.Committed != nil {
		o.Committed(shard, d, n)
	}
}

func (o *Observer) refused(shard, n int, unknown bool) {
	if o != nil && o.Refused != nil {
		o.Refused(shard, n, unknown)
	}
}

func (o *Observer) leadership(shard int, leader bool) {
	if o != nil && o.Leadership != nil {
		o.Leadership(shard, leader)
	}
}
