package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// conn is one benchmark client: a raw WebSocket speaking the protocol with
// as little client-side work as possible, because on a 2-core machine the
// load generator competes with the cluster for CPU. (Package client does
// more per frame — a map per request, a goroutine per call — which is right
// for applications and too heavy here.) Load sends are fire-and-forget:
// the reader matches each reply to its scheduled time by id and records
// the latency, so no goroutine waits per request.
type conn struct {
	ws   *websocket.Conn
	user string

	wmu sync.Mutex // gorilla allows one writer
	buf []byte     // frame being written, guarded by wmu

	mu      sync.Mutex // guards pending, stats, err
	pending map[uint64]pendingCall
	stats   *connStats // the current phase's, nil between phases
	err     error

	next        atomic.Uint64
	outstanding atomic.Int64
	prog        *progress
	done        chan struct{} // closed when the reader has ended
}

// pendingCall is a request waiting for its reply: a load send (stats set)
// or a setup call (reply set).
type pendingCall struct {
	id    uint64
	sched time.Time
	stats *connStats
	wake  chan struct{} // closed-loop senders wait on it
	reply chan inFrame
}

// connStats is what one connection saw during one phase.
type connStats struct {
	phase      int
	from, to   time.Time // the measured window of scheduled send times
	ack        Histogram
	delivery   Histogram
	sent, ok   uint64
	skipped    uint64 // open loop: sends not made because too many were outstanding
	errors     map[string]uint64
	deliveries uint64
	dupes      uint64              // pushes of a message id already delivered
	seen       map[string]struct{} // message ids delivered
	// slow are the slowest acknowledged sends, at most keepSlowest.
	slow        slowest
	keepSlowest int
}

// asPhaseStats views st as a phaseStats (sharing its histograms and
// errors), for merging into the process's total.
func (st *connStats) asPhaseStats() *phaseStats {
	return &phaseStats{Phase: st.phase, Ack: &st.ack, Delivery: &st.delivery, Sent: st.sent, OK: st.ok,
		Skipped: st.skipped, Errors: st.errors, Deliveries: st.deliveries, Dupes: st.dupes, Slowest: st.slow, keepSlowest: st.keepSlowest}
}

// inFrame holds the fields of an incoming frame the benchmark reads.
type inFrame struct {
	ID    json.RawMessage `json:"id"`
	OK    bool            `json:"ok"`
	Error *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	Push    string `json:"push"`
	Message *struct {
		ID   string `json:"id"`
		From string `json:"from"`
		Text string `json:"text"`
	} `json:"message"`
	raw []byte
}

// errLost is a connection that ended while calls waited.
var errLost = errors.New("bench: connection lost")

func dial(ctx context.Context, url, user string, prog *progress) (*conn, error) {
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second, ReadBufferSize: 2048, WriteBufferSize: 1024}
	ws, _, err := d.DialContext(ctx, url, nil)
	if err != nil {
		return nil, fmt.Errorf("bench: dial %s: %w", url, err)
	}
	c := &conn{ws: ws, user: user, pending: map[uint64]pendingCall{}, prog: prog, done: make(chan struct{})}
	go c.read()
	return c, nil
}

func (c *conn) close() {
	c.wmu.Lock()
	_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	c.wmu.Unlock()
	_ = c.ws.Close()
	<-c.done
}

// call sends a setup request and waits for its reply: nil on ok:true, else
// the error code and message.
func (c *conn) call(ctx context.Context, op string, fields map[string]any) (inFrame, error) {
	id := c.next.Add(1)
	req := map[string]any{"id": strconv.FormatUint(id, 10), "op": op}
	for k, v := range fields {
		req[k] = v
	}
	data, err := json.Marshal(req)
	if err != nil {
		return inFrame{}, err
	}
	ch := make(chan inFrame, 1)
	if err := c.register(id, pendingCall{reply: ch}); err != nil {
		return inFrame{}, err
	}
	if err := c.write(data); err != nil {
		return inFrame{}, err
	}
	select {
	case f := <-ch:
		if !f.OK {
			if f.Error != nil {
				return f, fmt.Errorf("bench: %s as %s: %s: %s", op, c.user, f.Error.Code, f.Error.Message)
			}
			return f, fmt.Errorf("bench: %s as %s: %w", op, c.user, errLost)
		}
		return f, nil
	case <-ctx.Done():
		return inFrame{}, fmt.Errorf("bench: %s as %s: no reply: %w", op, c.user, ctx.Err())
	}
}

// retryCodes are setup answers that a moment may fix: in AP mode a user
// registered through one node reaches the others asynchronously, and a
// loaded CP cluster may be between leaders.
var retryCodes = []string{"unauthorized", "not_found", "unavailable", "timeout", "forbidden"}

// callRetry is call, retried for up to 20 s while the answer is one of
// retryCodes. Only for setup ops that are safe to repeat.
func (c *conn) callRetry(ctx context.Context, op string, fields map[string]any) (inFrame, error) {
	deadline := time.Now().Add(20 * time.Second)
	for {
		f, err := c.call(ctx, op, fields)
		if err == nil || f.Error == nil || !slices.Contains(retryCodes, f.Error.Code) || time.Now().After(deadline) {
			return f, err
		}
		sleepCtx(ctx, 200*time.Millisecond)
	}
}

// isCode reports whether f is an error reply with that code.
func isCode(f inFrame, code string) bool { return f.Error != nil && f.Error.Code == code }

func (c *conn) register(id uint64, p pendingCall) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return c.err
	}
	c.pending[id] = p
	return nil
}

func (c *conn) write(data []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if err := c.ws.WriteMessage(websocket.TextMessage, data); err != nil {
		c.ws.Close() // the reader fails every pending call
		return fmt.Errorf("bench: write as %s: %w", c.user, err)
	}
	return nil
}

// send fires one load send scheduled at sched to a user or a group; the
// reader records its outcome in st. The text carries the phase and the
// scheduled time, so that the recipient measures send→delivery from the
// same instant as send→ack.
func (c *conn) send(st *connStats, sched time.Time, to, group string, wake chan struct{}) error {
	id := c.next.Add(1)
	if err := c.register(id, pendingCall{id: id, sched: sched, stats: st, wake: wake}); err != nil {
		return err
	}
	c.outstanding.Add(1)
	c.wmu.Lock()
	b := append(c.buf[:0], `{"id":"`...)
	b = strconv.AppendUint(b, id, 10)
	if group != "" {
		b = append(b, `","op":"send","group":"`...)
		b = append(b, group...)
	} else {
		b = append(b, `","op":"send","to":"`...)
		b = append(b, to...)
	}
	b = append(b, `","text":"bench `...)
	b = strconv.AppendInt(b, int64(st.phase), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, sched.UnixNano(), 10)
	b = append(b, ` hello from the load generator","cmid":"b`...)
	b = strconv.AppendUint(b, id, 10)
	b = append(b, `"}`...)
	c.buf = b
	c.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	err := c.ws.WriteMessage(websocket.TextMessage, b)
	c.wmu.Unlock()
	if err != nil {
		c.ws.Close()
		return fmt.Errorf("bench: write as %s: %w", c.user, err)
	}
	c.prog.sent.Add(1)
	return nil
}

// setStats makes st the phase the reader records into (nil: none).
func (c *conn) setStats(st *connStats) {
	c.mu.Lock()
	c.stats = st
	c.mu.Unlock()
}

func (c *conn) read() {
	defer close(c.done)
	for {
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			c.fail(fmt.Errorf("%w: %v", errLost, err))
			return
		}
		now := time.Now()
		if p, ok := scanMessagePush(data); ok {
			if p.from != c.user {
				c.delivered(now, p.id, p.text)
			}
			continue
		}
		var f inFrame
		if json.Unmarshal(data, &f) != nil {
			continue
		}
		if f.Push != "" {
			// A sender may be shown its own messages (a gap pulled in
			// its conversation); only recipients' pushes are deliveries.
			if f.Push == "message" && f.Message != nil && f.Message.From != c.user {
				c.delivered(now, f.Message.ID, f.Message.Text)
			}
			continue
		}
		var sid string
		if json.Unmarshal(f.ID, &sid) != nil {
			continue
		}
		id, _ := strconv.ParseUint(sid, 10, 64)
		c.mu.Lock()
		p, ok := c.pending[id]
		delete(c.pending, id)
		if ok && p.stats != nil {
			c.outcome(p, now, f)
		}
		c.mu.Unlock()
		if !ok {
			continue
		}
		if p.reply != nil {
			f.raw = data
			p.reply <- f
		}
		if p.wake != nil {
			p.wake <- struct{}{}
		}
	}
}

// outcome records a load send's reply; c.mu is held.
func (c *conn) outcome(p pendingCall, now time.Time, f inFrame) {
	c.outstanding.Add(-1)
	// The progress line counts everything, warm-up included; the stats
	// only the measured window.
	if f.OK {
		c.prog.acked.Add(1)
	} else {
		c.prog.errors.Add(1)
	}
	st := p.stats
	if p.sched.Before(st.from) || !p.sched.Before(st.to) {
		return // warm-up, or scheduled after the window
	}
	if f.OK {
		st.ok++
		st.ack.Record(now.Sub(p.sched))
		if st.keepSlowest > 0 {
			st.slow = st.slow.add(SlowSend{Key: c.user + "/b" + strconv.FormatUint(p.id, 10), Sched: p.sched.UnixNano(), Acked: now.UnixNano()}, st.keepSlowest)
		}
		return
	}
	code := "lost"
	if f.Error != nil {
		code = f.Error.Code
	}
	st.errors[code]++
}

// delivered records a message push sent by the load generator.
func (c *conn) delivered(now time.Time, id, text string) {
	phase, ns, ok := parseText(text)
	if !ok {
		return
	}
	sched := time.Unix(0, ns)
	c.prog.delivered.Add(1)
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.stats
	if st == nil || st.phase != phase || sched.Before(st.from) || !sched.Before(st.to) {
		return
	}
	// Clients deduplicate by message id (the protocol); a second push of
	// an id is counted, not delivered again.
	if _, dup := st.seen[id]; dup {
		st.dupes++
		return
	}
	if st.seen == nil {
		st.seen = map[string]struct{}{}
	}
	st.seen[id] = struct{}{}
	st.deliveries++
	st.delivery.Record(now.Sub(sched))
}

// fail ends every pending call: setup calls get an empty reply, load sends
// count as "lost" (outcome unknown).
func (c *conn) fail(err error) {
	now := time.Now()
	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	pending := c.pending
	c.pending = map[uint64]pendingCall{}
	for _, p := range pending {
		if p.stats != nil {
			c.outcome(p, now, inFrame{})
		}
	}
	c.mu.Unlock()
	for _, p := range pending {
		if p.reply != nil {
			p.reply <- inFrame{}
		}
		if p.wake != nil {
			p.wake <- struct{}{}
		}
	}
}

// parseText reads "bench <phase> <unix ns> ..." as send writes it.
func parseText(text string) (phase int, ns int64, ok bool) {
	rest, found := strings.CutPrefix(text, "bench ")
	if !found {
		return 0, 0, false
	}
	p, rest, _ := strings.Cut(rest, " ")
	t, _, _ := strings.Cut(rest, " ")
	pv, err1 := strconv.Atoi(p)
	tv, err2 := strconv.ParseInt(t, 10, 64)
	return pv, tv, err1 == nil && err2 == nil
}
