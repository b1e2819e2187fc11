package runner

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"mpim/chaos/check"
	"mpim/client"
	"mpim/internal/convid"
)

// recorder collects the history and what clients were shown.
type recorder struct {
	mu      sync.Mutex
	ops     []check.Op
	shown   []check.Shown
	resyncs int
	procs   int
}

func (r *recorder) newProcess() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.procs++
	return r.procs
}

func (r *recorder) add(op check.Op) {
	r.mu.Lock()
	r.ops = append(r.ops, op)
	r.mu.Unlock()
}

func (r *recorder) show(client string, msgs []client.Message) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range msgs {
		r.shown = append(r.shown, check.Shown{Client: client, Conv: m.Conv, ID: m.ID, Seq: m.Seq, Time: now})
	}
}

// worker is one workload client: a user on its gateway, one outstanding
// operation at a time (Jepsen's process); a process whose operation ended
// unknown (info) is retired and the worker goes on as a new one.
type worker struct {
	user     string
	gateways []string // its own gateway first, then the others (reconnect order)
	convs    []string // conversations it is a member of
	peers    map[string]string
	rec      *recorder
	rng      *rand.Rand
	interval time.Duration
	reads    float64
	sideOf   func(gateway string) string
	mode     string

	conn    *client.Conn
	gateway string
	token   string
}

// connect logs the worker in on its gateway, or resumes on the next one.
func (w *worker) connect(ctx context.Context) error {
	var last error
	for _, gw := range w.gateways {
		c, err := client.Dial(ctx, gw, client.Options{PushBuffer: 1 << 14})
		if err != nil {
			last = err
			continue
		}
		if w.token != "" {
			_, err = c.Resume(ctx, w.token, "chaos")
		} else {
			var lr client.LoginResult
			lr, err = c.Login(ctx, w.user, password, "chaos")
			w.token = lr.Token
		}
		if err != nil {
			c.Close()
			last = err
			continue
		}
		w.conn, w.gateway = c, gw
		go w.watch(c)
		return nil
	}
	return fmt.Errorf("chaos: %s cannot reach any gateway: %w", w.user, last)
}

// watch records the pushes the client is shown.
func (w *worker) watch(c *client.Conn) {
	for p := range c.Pushes() {
		switch p.Kind {
		case "message":
			if m, err := p.Message(); err == nil {
				w.rec.show(w.user, []client.Message{m})
			}
		case "resync":
			w.rec.mu.Lock()
			w.rec.resyncs++
			w.rec.mu.Unlock()
		}
	}
}

// run issues operations until stop, at the worker's share of the rate.
func (w *worker) run(ctx context.Context, stop <-chan struct{}) {
	proc := w.rec.newProcess()
	retry := "" // a cmid whose send ended unknown: retried with the same cmid
	for n := 0; ; n++ {
		select {
		case <-stop:
			return
		case <-time.After(time.Duration(float64(w.interval) * (0.5 + w.rng.Float64()))):
		}
		if w.conn == nil || closed(w.conn) {
			if err := w.connect(ctx); err != nil {
				continue
			}
		}
		conv := w.convs[w.rng.IntN(len(w.convs))]
		op := check.Op{Process: proc, Conv: conv, Gateway: w.gateway, Side: w.sideOf(w.gateway), Call: time.Now()}
		octx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if retry == "" && w.rng.Float64() < w.reads {
			op.Kind, op.ReadMode = check.KindRead, "linearizable"
			if w.mode == "ap" || w.rng.IntN(4) == 0 {
				op.ReadMode = "local"
			}
			h, err := readConversation(octx, w.conn, conv, op.ReadMode)
			op.Return, op.Status = time.Now(), Outcome(err)
			if err != nil {
				op.Error = err.Error()
				op.Status = check.StatusFail // a read has no effect
			}
			// A read is a pull of a range, not the live view: only pushes
			// count towards reordered.
			for _, m := range h.Messages {
				op.Read = append(op.Read, m.Cmid)
			}
		} else {
			op.Kind = check.KindSend
			op.Cmid = retry
			if op.Cmid == "" {
				op.Cmid = fmt.Sprintf("%s-%d", w.user, n)
			}
			args := client.SendArgs{Text: op.Cmid, Cmid: op.Cmid}
			if peer, ok := w.peers[conv]; ok {
				args.To = peer
			} else {
				args.Group, _ = convid.GroupOf(conv)
			}
			r, err := w.conn.Send(octx, args)
			op.Return, op.Status = time.Now(), Outcome(err)
			op.Seq, op.MsgID = r.Seq, r.ID
			if err != nil {
				op.Error = err.Error()
			}
			retry = ""
			if op.Status == check.StatusInfo {
				retry = op.Cmid
			}
		}
		cancel()
		w.rec.add(op)
		if op.Status == check.StatusInfo {
			proc = w.rec.newProcess()
		}
	}
}

func closed(c *client.Conn) bool {
	select {
	case <-c.Done():
		return true
	default:
		return false
	}
}

// Outcome maps a reply to Jepsen's ok / fail / info: unavailable and the
// refusals that cannot have taken effect are fail; anything else that is
// not ok may have taken effect.
func Outcome(err error) check.Status {
	if err == nil {
		return check.StatusOK
	}
	switch client.ErrorCode(err) {
	case "unavailable", "forbidden", "not_found", "bad_request", "too_large", "rate_limited", "unauthorized", "conflict":
		return check.StatusFail
	}
	return check.StatusInfo
}
