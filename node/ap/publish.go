package ap

import (
	"context"
	"encoding/json"
	"time"

	"mpim/internal/channels"
)

// publishChunk and publishBytes bound what one Redis pipeline carries.
const (
	publishChunk = 1000
	publishBytes = 1 << 20
)

// publishRetry is how soon a failed publish is tried again (repair on).
const publishRetry = 200 * time.Millisecond

// publisher publishes this node's own entries, reading them back from the
// log after the last one published, whenever the engine logs more. With
// repair on, what fails to publish stays after that position — the
// outbox is the log itself, bounded by the disk, not the heap — and is
// tried again; with repair off it is skipped and lost to the nodes that
// did not get it (the seed's naive fan-out).
func (r *Replicator) publisher() {
	retry := time.NewTimer(time.Hour)
	defer retry.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-r.publishKick:
		case <-retry.C:
		}
		if !r.publishLogged() {
			retry.Reset(publishRetry)
		}
	}
}

// publishLogged publishes everything logged and not yet published; it
// reports false when a publish failed and must be tried again.
func (r *Replicator) publishLogged() bool {
	for {
		r.mu.Lock()
		from, to := r.published, r.vec[r.cfg.ID]
		r.mu.Unlock()
		if from >= to {
			return true
		}
		raw, err := r.log.readRaw(r.cfg.ID, from, publishChunk, publishBytes)
		if err != nil || len(raw) == 0 {
			r.logger.Error("ap: read the log to publish", "after", from, "err", err)
			return false
		}
		began := time.Now()
		err = r.publishRaw(raw)
		r.cfg.Observe.published(len(raw), time.Since(began), err != nil)
		r.mu.Lock()
		switch {
		case err == nil:
			r.stats.Published += uint64(len(raw))
			r.published = from + uint64(len(raw))
		case !r.cfg.Repair:
			r.stats.PublishFailed += uint64(len(raw))
			r.published = from + uint64(len(raw)) // lost: nobody keeps them
		default:
			r.stats.PublishFailed += uint64(len(raw))
		}
		r.stats.Outbox = 0
		if r.cfg.Repair {
			r.stats.Outbox = to - r.published
		}
		r.mu.Unlock()
		if err != nil {
			return !r.cfg.Repair
		}
	}
}

// publishRaw publishes encoded entries in one pipeline.
func (r *Replicator) publishRaw(raw [][]byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	pipe := r.rdb.Pipeline()
	for _, b := range raw {
		pipe.Publish(ctx, channels.APLog, r.seal.seal(channels.APLog, b))
	}
	_, err := pipe.Exec(ctx)
	return err
}

// heartbeat is what a node publishes between writes: its clock, and how
// far its own log goes. A receiver that holds that much of the node's log
// knows the node will never again write below that clock.
type heartbeat struct {
	Node string `json:"node"`
	HLC  uint64 `json:"hlc"`
	OSeq uint64 `json:"oseq"`
}

// heartbeat publishes this node's clock.
func (r *Replicator) heartbeat() {
	for r.sleep(r.cfg.Heartbeat) {
		r.mu.Lock()
		hb := heartbeat{Node: r.cfg.ID, OSeq: r.vec[r.cfg.ID]}
		r.mu.Unlock()
		hb.HLC = r.clock.Now()
		b, _ := json.Marshal(hb)
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		r.rdb.Publish(ctx, channels.APHeartbeat, r.seal.seal(channels.APHeartbeat, b))
		cancel()
	}
}

func (r *Replicator) sleep(d time.Duration) bool {
	select {
	case <-r.stop:
		return false
	case <-time.After(d):
		return true
	}
}
