package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Topology is one snapshot of everything the dashboard draws: the members
// and their states, every proxied link with its faults, the faults in
// force, and each node's replicas (CP: the Raft view of every shard; AP:
// outbox, lag and tentative messages).
type Topology struct {
	Time     time.Time             `json:"time"`
	Mode     string                `json:"mode"`
	APRepair bool                  `json:"ap_repair"`
	Leaders  string                `json:"leaders"`
	Started  time.Time             `json:"started"`
	Members  []MemberState         `json:"members"`
	Links    []LinkState           `json:"links"`
	Faults   []string              `json:"faults"`
	Nodes    map[string]NodeShards `json:"nodes"`
	// EventSeq is the seq of the newest event when the snapshot was taken.
	EventSeq uint64 `json:"event_seq"`
	// Switching is true while the lab restarts in another mode (POST
	// /api/mode).
	Switching bool `json:"switching,omitempty"`
}

// topologyMaxAge is how long one snapshot serves every dashboard that asks:
// the nodes are polled once however many pages are open.
const topologyMaxAge = 400 * time.Millisecond

// topologyCache shares recent snapshots between callers.
type topologyCache struct {
	mu   sync.Mutex // held while a snapshot is taken, so callers queue behind one poll
	last Topology
}

// Topology returns a snapshot of the lab, at most topologyMaxAge old.
func (l *Lab) Topology(ctx context.Context) Topology {
	c := &l.topology
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(c.last.Time) < topologyMaxAge {
		return c.last
	}
	t := Topology{
		Mode: l.currentMode(), APRepair: l.cfg.APRepair, Leaders: l.cfg.Leaders, Started: l.started,
		Members: l.Members(), Links: l.Links(), Faults: l.faultsOrNone(),
		Nodes: l.Shards(ctx), EventSeq: l.events.lastSeq(), Switching: l.switching.Load(),
	}
	if t.Links == nil {
		t.Links = []LinkState{}
	}
	t.Time = time.Now()
	c.last = t
	return t
}

// handleTopology answers one snapshot as JSON, or with ?stream=1 a
// snapshot as a server-sent event (`event: topology`) every
// ?interval_ms=N (default 1000, at least 250) until the client leaves or
// the lab closes.
func (l *Lab) handleTopology(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("stream") == "" || q.Get("stream") == "0" {
		writeJSON(w, http.StatusOK, l.Topology(r.Context()))
		return
	}
	interval := time.Second
	if ms, err := strconv.Atoi(q.Get("interval_ms")); err == nil {
		interval = max(250*time.Millisecond, time.Duration(ms)*time.Millisecond)
	}
	flusher, ok := w.(http.Flusher)
	if !ok {
		writeError(w, errors.New("lab: streaming unsupported by this connection"))
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for n := 1; ; n++ {
		b, _ := json.Marshal(l.Topology(r.Context()))
		if _, err := fmt.Fprintf(w, "id: %d\nevent: topology\ndata: %s\n\n", n, b); err != nil {
			return
		}
		flusher.Flush()
		select {
		case <-tick.C:
		case <-r.Context().Done():
			return
		case <-l.stopHTTP:
			return
		}
	}
}
