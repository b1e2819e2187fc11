package bench

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"time"
)

// userPlan is one benchmark connection: a user logged in on one gateway,
// sending (to a user or a group) or only receiving.
type userPlan struct {
	User    string `json:"user"`
	Gateway string `json:"gateway"`
	Send    bool   `json:"send,omitempty"`
	To      string `json:"to,omitempty"`
	Group   string `json:"group,omitempty"`
}

// workerPlan is the share of the load one process runs.
type workerPlan struct {
	Users    []userPlan `json:"users"`
	Password string     `json:"password"`
	Device   string     `json:"device"`
}

// Phase is one measured stretch of load. Rate is per sender (sends per
// second); 0 makes every sender closed-loop (one send outstanding, the
// next as soon as the reply arrives), the shape of the references.
type Phase struct {
	ID       int           `json:"id"`
	Start    time.Time     `json:"start"`
	Warmup   time.Duration `json:"warmup"`
	Duration time.Duration `json:"duration"`
	Rate     float64       `json:"rate_per_sender"`
	// MaxOutstanding bounds the open-loop sends of one sender waiting for
	// a reply; a send due beyond it is skipped and counted, so that an
	// overloaded cluster shows up as skipped sends rather than as unbounded
	// memory in the load generator.
	MaxOutstanding int `json:"max_outstanding"`
	// Drain is how long to wait after the last send for replies and
	// deliveries.
	Drain time.Duration `json:"drain"`
	// Slowest is how many of the slowest acknowledged sends to keep (for
	// --trace).
	Slowest int `json:"slowest,omitempty"`
}

// phaseStats is what one process measured in one phase: the merge of its
// connections' connStats.
type phaseStats struct {
	Phase      int               `json:"phase"`
	Ack        *Histogram        `json:"ack"`
	Delivery   *Histogram        `json:"delivery"`
	Sent       uint64            `json:"sent"`
	OK         uint64            `json:"ok"`
	Skipped    uint64            `json:"skipped"`
	Errors     map[string]uint64 `json:"errors"`
	Deliveries uint64            `json:"deliveries"`
	Dupes      uint64            `json:"duplicate_pushes"`
	// Slowest are the slowest acknowledged sends kept (Phase.Slowest).
	Slowest     slowest `json:"slowest,omitempty"`
	keepSlowest int
}

func (p *phaseStats) merge(o *phaseStats) {
	p.Ack.Merge(o.Ack)
	p.Delivery.Merge(o.Delivery)
	p.Sent += o.Sent
	p.OK += o.OK
	p.Skipped += o.Skipped
	p.Deliveries += o.Deliveries
	p.Dupes += o.Dupes
	for _, s := range o.Slowest {
		p.Slowest = p.Slowest.add(s, max(p.keepSlowest, len(o.Slowest)))
	}
	for k, v := range o.Errors {
		p.Errors[k] += v
	}
}

func newPhaseStats(id int) *phaseStats {
	return &phaseStats{Phase: id, Ack: &Histogram{}, Delivery: &Histogram{}, Errors: map[string]uint64{}}
}

// progress counts, for the once-a-second line, everything a process has
// done so far.
type progress struct {
	sent, acked, delivered, errors atomic.Uint64
}

// Counts is a snapshot of progress, as children report it to the parent.
type Counts struct {
	Sent      uint64 `json:"sent"`
	Acked     uint64 `json:"acked"`
	Delivered uint64 `json:"delivered"`
	Errors    uint64 `json:"errors"`
}

func (p *progress) snapshot() Counts {
	return Counts{p.sent.Load(), p.acked.Load(), p.delivered.Load(), p.errors.Load()}
}

// worker runs one process's connections.
type worker struct {
	plan  workerPlan
	conns []*conn
	prog  progress
}

// setupParallel bounds the dials and logins in flight at once.
const setupParallel = 64

// connect dials and logs in every connection of the plan.
func (w *worker) connect(ctx context.Context) error {
	w.conns = make([]*conn, len(w.plan.Users))
	errs := make([]error, len(w.plan.Users))
	sem := make(chan struct{}, setupParallel)
	var wg sync.WaitGroup
	for i, u := range w.plan.Users {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			c, err := dial(ctx, u.Gateway, u.User, &w.prog)
			if err == nil {
				_, err = c.callRetry(ctx, "login", map[string]any{"user": u.User, "password": w.plan.Password, "device": w.plan.Device})
				if err != nil {
					c.close()
				}
			}
			w.conns[i], errs[i] = c, err
		})
		if ctx.Err() != nil {
			break
		}
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		w.close()
		return fmt.Errorf("bench: connect %d clients: %w", len(w.plan.Users), firstErr(errs))
	}
	return nil
}

func firstErr(errs []error) error {
	n, first := 0, error(nil)
	for _, e := range errs {
		if e != nil {
			if first == nil {
				first = e
			}
			n++
		}
	}
	if n > 1 {
		return fmt.Errorf("%w (and %d more failures)", first, n-1)
	}
	return first
}

func (w *worker) close() {
	var wg sync.WaitGroup
	for _, c := range w.conns {
		if c != nil {
			wg.Go(c.close)
		}
	}
	wg.Wait()
}

// run runs one phase on every connection and returns the merged stats.
func (w *worker) run(ctx context.Context, ph Phase) *phaseStats {
	from := ph.Start.Add(ph.Warmup)
	to := from.Add(ph.Duration)
	stats := make([]*connStats, len(w.conns))
	for i, c := range w.conns {
		stats[i] = &connStats{phase: ph.ID, from: from, to: to, errors: map[string]uint64{}, keepSlowest: ph.Slowest}
		c.setStats(stats[i])
	}
	var wg sync.WaitGroup
	for i, c := range w.conns {
		u := w.plan.Users[i]
		if !u.Send {
			continue
		}
		wg.Go(func() {
			if ph.Rate > 0 {
				w.openLoop(ctx, c, u, stats[i], ph, to)
			} else {
				w.closedLoop(ctx, c, u, stats[i], ph.Start, to)
			}
		})
	}
	wg.Wait()
	// Wait for the replies and pushes still on their way, then stop
	// recording.
	drainUntil := time.Now().Add(ph.Drain)
	for time.Now().Before(drainUntil) && ctx.Err() == nil {
		var out int64
		for _, c := range w.conns {
			out += c.outstanding.Load()
		}
		if out == 0 {
			// Replies are in; pushes may still be travelling: wait while
			// deliveries keep arriving (up to the drain), so that late
			// ones count rather than biasing delivery latency low.
			for last := w.prog.delivered.Load(); time.Now().Before(drainUntil) && ctx.Err() == nil; {
				sleepCtx(ctx, min(time.Until(drainUntil), 500*time.Millisecond))
				now := w.prog.delivered.Load()
				if now == last {
					break
				}
				last = now
			}
			break
		}
		sleepCtx(ctx, 20*time.Millisecond)
	}
	total := newPhaseStats(ph.ID)
	for i, c := range w.conns {
		c.mu.Lock()
		total.merge(stats[i].asPhaseStats())
		c.stats = nil
		c.mu.Unlock()
	}
	return total
}

// openLoop sends at fixed intervals from ph.Start, whatever the replies
// do: a send is due at Start + phase offset + k·interval, and its latency
// counts from that instant, so a stalled cluster is charged for every send
// it delayed (no coordinated omission).
func (w *worker) openLoop(ctx context.Context, c *conn, u userPlan, st *connStats, ph Phase, to time.Time) {
	interval := time.Duration(float64(time.Second) / ph.Rate)
	// Spread the senders' phases over one interval.
	offset := time.Duration(fnv32(u.User)) % interval
	for k := 0; ; k++ {
		sched := ph.Start.Add(offset + time.Duration(k)*interval)
		if !sched.Before(to) || ctx.Err() != nil {
			return
		}
		if d := time.Until(sched); d > 0 {
			sleepCtx(ctx, d)
		}
		counted := !sched.Before(st.from)
		if c.outstanding.Load() >= int64(ph.MaxOutstanding) {
			if counted {
				c.mu.Lock()
				st.skipped++
				c.mu.Unlock()
			}
			continue
		}
		if counted {
			c.mu.Lock()
			st.sent++
			c.mu.Unlock()
		}
		if c.send(st, sched, u.To, u.Group, nil) != nil {
			return // the reader counts the pending sends as lost
		}
	}
}

// closedLoop keeps one send outstanding: the next starts when the reply
// arrives (the shape of the Raft and Redis references).
func (w *worker) closedLoop(ctx context.Context, c *conn, u userPlan, st *connStats, start, to time.Time) {
	sleepCtx(ctx, time.Until(start))
	wake := make(chan struct{}, 1)
	// A reply that never comes ends this sender, not the phase.
	giveUp := time.NewTimer(time.Until(to) + 10*time.Second)
	defer giveUp.Stop()
	for ctx.Err() == nil {
		sched := time.Now()
		if !sched.Before(to) {
			return
		}
		if !sched.Before(st.from) {
			c.mu.Lock()
			st.sent++
			c.mu.Unlock()
		}
		if c.send(st, sched, u.To, u.Group, wake) != nil {
			return
		}
		select {
		case <-wake:
		case <-giveUp.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

func fnv32(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}

// cloneErrors copies an error-count map (nil-safe).
func cloneErrors(m map[string]uint64) map[string]uint64 {
	out := map[string]uint64{}
	maps.Copy(out, m)
	return out
}
