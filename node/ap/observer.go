package ap

import "time"

// Observer is told what the replicator measures; the node turns it into
// Prometheus series (docs/observability.md). A nil Observer, or a nil
// field, is skipped.
type Observer struct {
	// Round is one engine round: the local writes and received entries
	// it committed, and its log write (with the fsync when it held a
	// local write).
	Round func(locals, remotes int, write time.Duration)
	// Published is one pipelined publish of this node's entries.
	Published func(entries int, d time.Duration, failed bool)
	// Synced is one anti-entropy exchange with a peer and the entries it
	// pulled.
	Synced func(peer string, d time.Duration, pulled int, failed bool)
}

func (o *Observer) round(locals, remotes int, d time.Duration) {
	if o != nil && o.Round != nil {
		o.Round(locals, remotes, d)
	}
}

func (o *Observer) published(n int, d time.Duration, failed bool) {
	if o != nil && o.Published != nil {
		o.Published(n, d, failed)
	}
}

func (o *Observer) synced(peer string, d time.Duration, pulled int, failed bool) {
	if o != nil && o.Synced != nil {
		o.Synced(peer, d, pulled, failed)
	}
}
