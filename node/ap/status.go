package ap

import (
	"encoding/json"
	"math"

	bolt "go.etcd.io/bbolt"
)

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
		Received: s.Received, Pulled: s.Pulled, Applied: s.Applied, Resubscribes: s.Resubscribes, LagMS: map[string]int64{}, HeardMS: map[string]int64{}, Vector: map[string]uint64{}}
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

// countAbove counts the message entries whose clock is above hlc, reading
// each origin's entries from its newest back (entries of one origin are in
// clock order) and at most limit per origin.
func (l *log) countAbove(hlc uint64, limit int) (n int, capped bool) {
	_ = l.db.View(func(tx *bolt.Tx) error {
		origins, err := l.origins(tx)
		if err != nil {
			return err
		}
		c := tx.Bucket(bLog).Cursor()
		for _, origin := range origins {
			prefix := append([]byte(origin), 0)
			k, v := c.Seek(entryKey(origin, math.MaxUint64))
			if k == nil {
				k, v = c.Last()
			} else {
				k, v = c.Prev()
			}
			for read := 0; k != nil && len(k) == len(prefix)+8 && string(k[:len(prefix)]) == string(prefix); read++ {
				if read == limit {
					capped = true
					break
				}
				var e struct {
					HLC uint64 `json:"hlc"`
					Cmd struct {
						Send json.RawMessage `json:"send"`
					} `json:"cmd"`
				}
				if json.Unmarshal(v, &e) != nil || e.HLC <= hlc {
					break
				}
				if len(e.Cmd.Send) > 0 {
					n++
				}
				k, v = c.Prev()
			}
		}
		return nil
	})
	return n, capped
}

// origins lists the origins that have entries in the log (the vector's
// keys: every origin whose entries this node holds in order).
func (l *log) origins(tx *bolt.Tx) ([]string, error) {
	var out []string
	err := tx.Bucket(bVec).ForEach(func(k, _ []byte) error {
		out = append(out, string(k))
		return nil
	})
	return out, err
}
