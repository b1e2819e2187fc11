package ap

// maxTentativeScan bounds how many log entries Status reads per origin
// when it counts tentative messages, so that a status request stays cheap
// however far a partition let the clocks run apart.
const maxTentativeScan = 20000

// Status is the replication state the lab's dashboard shows for one node:
// what waits to be published, how far behind each peer this node's view
// is, and how many messages are still tentative here.
type Status struct {
	// Outbox counts entries waiting to be published again (Redis was
	// unreachable); Pending counts received entries waiting for their
	// causal dependencies.
	Outbox  uint64 `json:"outbox"`
	Pending uint64 `json:"pending"`
	// Published, Received, Pulled (by anti-entropy) and Applied count
	// entries since the node started.
	Published     uint64 `json:"published"`
	PublishFailed uint64 `json:"publish_failed"`
	Received      uint64 `json:"received"`
	Pulled        uint64 `json:"pulled"`
	Applied       uint64 `json:"applied"`
	// Resubscribes counts Redis subscriptions dropped as dead and made
	// again: what pub/sub delivered to a dead one is lost to this node.
	Resubscribes uint64 `json:"resubscribes"`
	// Forged counts messages on the replication channels not signed by a
	// member (dropped).
	Forged uint64 `json:"forged"`
	// LagMS is, per peer, how far (in ms of hybrid logical clock) the last
	// clock heard from that peer trails this node's clock: about the
	// heartbeat interval while the peer is reachable, growing while it is
	// cut off. Messages newer than the smallest of these are tentative.
	LagMS map[string]int64 `json:"lag_ms"`
	// HeardMS is, per peer, how long ago (ms of wall clock) its last
	// heartbeat arrived on this node's Redis subscription, -1 if none has
	// since the node started: while it stays small, what the peer
	// publishes reaches this node, whatever LagMS says of the past.
	HeardMS map[string]int64 `json:"heard_ms"`
	// StableLagMS is how far the stable clock trails this node's clock.
	StableLagMS int64 `json:"stable_lag_ms"`
	// Tentative counts the messages in this node's log whose position can
	// still change (their clock is above the stable clock); Capped says
	// the count stopped at the scan bound.
	Tentative int  `json:"tentative"`
	Capped    bool `json:"tentative_capped,omitempty"`
	// Vector is this node's replication position per origin.
	Vector map[string]uint64 `json:"vector"`
}

// Status returns the replication state for the dashboard.
func (r *Replicator) Status() Status {
	now := r.clock.Peek()
	r.mu.Lock()
	s := r.stats
	st := Status{Outbox: s.Outbox, Pending: s.Pending, Published: s.Published, PublishFailed: s.PublishFailed,
		Received: s.Received, Pulled: s.Pulled, Applied: s.Applied, Resubscribes: s.Resubscribes, Forged: s.Forged, LagMS: map[string]int64{}, HeardMS: map[string]int64{}, Vector: map[string]uint64{}}
	for o, n := range r.vec {
		st.Vector[o] = n
	}
	for _, n := range r.cfg.Nodes {
		if n != r.cfg.ID {
			st.LagMS[n] = max(0, Millis(now)-Millis(r.water[n]))
			st.HeardMS[n] = -1
			if at, ok := r.heard[n]; ok {
				st.HeardMS[n] = r.cfg.Now().Sub(at).Milliseconds()
			}
		}
	}
	r.mu.Unlock()
	stable := r.Stable()
	st.StableLagMS = max(0, Millis(now)-Millis(stable))
	st.Tentative, st.Capped = r.log.countAbove(stable, maxTentativeScan)
	return st
}
