package node

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"

	"mpim/internal/batch"
	"mpim/internal/channels"
	"mpim/internal/spans"
	pb "mpim/proto/mpimpb"
)

// streamBuffer bounds each gateway's fallback stream queue. A full queue
// drops the push; the gateway's gap detection pulls what it missed.
const streamBuffer = 8192

// Message pushes that did not reach a gateway are kept and sent again
// ("message retry"): retryLimit bounds how many (the oldest go first past
// it; a dropped one is still found by a client's sync, it only loses its
// push), retryFor how long one is tried, retryFirst the first wait, which
// doubles after every miss.
//
// A message push whose recipient has no route is tried again too, for
// unroutedFor: no route usually means offline, but right after a Redis
// restart (routes are not persisted) it means "not bound again yet" — the
// gateways rebind their sessions once their subscription is back, and a
// push published in between would otherwise be lost to an online client.
const (
	retryLimit  = 65536
	retryFor    = 30 * time.Second
	retryFirst  = 250 * time.Millisecond
	unroutedFor = 5 * time.Second
)

// fanout hands pushes to gateways. The primary path is the seed's: look up
// each recipient's route in Redis and publish on that gateway's channel.
// The fallback path is the Attach stream a gateway keeps open to its node:
// used for every push while this node cannot use Redis, for a push whose
// publish failed, and for gateways that report their own subscription
// broken. Gateways drop what they already delivered, so a push that takes
// both paths reaches each device once.
type fanout struct {
	// onRecover runs (in its own goroutine) when Redis becomes reachable
	// again.
	onRecover func()
	// refresh rebuilds a message push before a retry (its position may
	// have moved since); nil keeps the push as it was.
	refresh  func(*pb.Message) *pb.Message
	rdb      *redis.Client
	node     string
	metrics  *metrics
	log      *slog.Logger
	spans    *spans.Recorder
	degraded atomic.Bool

	mu       sync.Mutex
	attached map[*attachment]struct{}
	// retry holds message pushes that did not get through: those whose
	// publish failed (the streams carried them only to this node's own
	// gateways) are routed again once Redis is back; those published to a
	// gateway channel nobody listened on (its subscription was down) are
	// published to it again. Gateways drop what a device already has.
	retry []retryPush

	// queue holds the pushes deliverLater accepted, for the worker (nil
	// until start). queueMu guards closing it: deliverLater holds it
	// shared while it sends, stop exclusively to close. stopping frees
	// callers waiting for room; stopped says the worker ended.
	queueMu  sync.RWMutex
	closed   bool
	queue    chan pushJob
	stopping chan struct{}
	stopped  chan struct{}
}

// pushJob is one push and its recipients.
type pushJob struct {
	push *pb.Push
	uids []uint64
}

// pushQueue bounds the pushes waiting for the worker (a sender whose push
// finds it full waits: backpressure, not loss); pushBatch bounds what the
// worker routes and publishes in one pair of round trips.
const (
	pushQueue = 4096
	pushBatch = 256
)

// retryPush is a message push to send again: to gateway's channel, or
// routed from scratch when gateway is "".
type retryPush struct {
	push    *pb.Push
	uids    []uint64
	gateway string
	next    time.Time
	wait    time.Duration
	until   time.Time
}

// attachment is one gateway's open Attach stream.
type attachment struct {
	gateway string
	redisOK atomic.Bool
	out     chan *pb.Push
}

func newFanout(rdb *redis.Client, node string, m *metrics, log *slog.Logger) *fanout {
	return &fanout{rdb: rdb, node: node, metrics: m, log: log, attached: map[*attachment]struct{}{}}
}

// start runs the worker that delivers what deliverLater queues, until
// stop.
func (f *fanout) start() {
	f.queueMu.Lock()
	defer f.queueMu.Unlock()
	f.queue = make(chan pushJob, pushQueue)
	f.stopping, f.stopped = make(chan struct{}), make(chan struct{})
	go f.run()
}

// stop ends the worker once it has delivered what was queued; from then on
// deliverLater delivers in its caller.
func (f *fanout) stop() {
	f.queueMu.RLock()
	started := f.queue != nil
	f.queueMu.RUnlock()
	if !started {
		return
	}
	close(f.stopping) // callers waiting for room deliver themselves
	f.queueMu.Lock()
	f.closed = true
	close(f.queue)
	f.queueMu.Unlock()
	<-f.stopped
}

// deliverLater queues push for uids and returns: the worker routes and
// publishes it after the caller has answered. CP acknowledges a send once
// it is committed; its pushes follow (protocol.md promises no order
// between a sender's reply and its recipients' pushes), and a push that
// fails is kept for a retry like any other.
func (f *fanout) deliverLater(push *pb.Push, uids []uint64) {
	if len(uids) == 0 {
		return
	}
	f.queueMu.RLock()
	if f.queue != nil && !f.closed {
		select {
		case f.queue <- pushJob{push: push, uids: uids}:
			f.queueMu.RUnlock()
			return
		case <-f.stopping:
		}
	}
	f.queueMu.RUnlock()
	ctx, cancel := context.WithTimeout(context.Background(), fanoutTimeout)
	defer cancel()
	f.deliver(ctx, push, uids)
}

// run is the worker: it takes every push waiting, up to pushBatch, and
// delivers them together, so that a burst of sends costs two Redis round
// trips rather than two per send. Pushes leave in the order they came.
func (f *fanout) run() {
	defer close(f.stopped)
	jobs := make([]pushJob, 0, pushBatch)
	for {
		j, ok := <-f.queue
		if !ok {
			return
		}
		jobs = batch.Drain(f.queue, append(jobs[:0], j), pushBatch)
		ctx, cancel := context.WithTimeout(context.Background(), fanoutTimeout)
		f.deliverAll(ctx, jobs)
		cancel()
	}
}

func (f *fanout) setDegraded(d bool) {
	if f.degraded.Swap(d) != d {
		if d {
			f.log.Warn("redis unreachable: degraded (cache bypassed, pushes on the fallback path)")
			f.metrics.degraded.Set(1)
		} else {
			f.log.Info("redis reachable again")
			f.metrics.degraded.Set(0)
			go func() {
				if f.onRecover != nil {
					f.onRecover()
				}
				f.retryDue(true)
			}()
		}
	}
}

// watchRedis pings Redis until stop closes, keeping the degraded flag true.
func (f *fanout) watchRedis(stop <-chan struct{}) {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		f.setDegraded(f.rdb.Ping(ctx).Err() != nil)
		cancel()
		f.retryDue(false)
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}

// deliver routes push to the gateways of uids now.
func (f *fanout) deliver(ctx context.Context, push *pb.Push, uids []uint64) {
	f.deliverAll(ctx, []pushJob{{push: push, uids: uids}})
}

// deliverAll routes pushes to their recipients' gateways: all routes in
// one Redis round trip, all publishes in a second.
func (f *fanout) deliverAll(ctx context.Context, jobs []pushJob) {
	jobs = slices.DeleteFunc(jobs, func(j pushJob) bool { return len(j.uids) == 0 })
	if len(jobs) == 0 {
		return
	}
	for _, j := range jobs {
		j.push.Origin = f.node
	}
	var published []bool
	var unrouted [][]uint64
	if f.rdb != nil && !f.degraded.Load() {
		published, unrouted = f.publishRouted(ctx, jobs)
	}
	for i, j := range jobs {
		ok := published != nil && published[i]
		// Gateways whose subscription is broken get message pushes from
		// every replica's apply hook (Node.applied); other pushes, and
		// everything this node could not publish, go on the streams from
		// here.
		if _, isMessage := j.push.Event.(*pb.Push_Message); !ok || !isMessage {
			f.stream(j.push, j.uids, !ok)
		}
		switch {
		case !ok && f.rdb != nil:
			f.keepForRetry(j.push, j.uids, "")
		case ok && len(unrouted[i]) > 0:
			f.keepForRetryFor(j.push, unrouted[i], "", unroutedFor)
		}
	}
}

// keepForRetry remembers a message push to send again (to gateway, or
// routed again when gateway is "").
func (f *fanout) keepForRetry(push *pb.Push, uids []uint64, gateway string) {
	f.keepForRetryFor(push, uids, gateway, retryFor)
}

// keepForRetryFor is keepForRetry tried for d.
func (f *fanout) keepForRetryFor(push *pb.Push, uids []uint64, gateway string, d time.Duration) {
	if _, ok := push.Event.(*pb.Push_Message); !ok {
		return
	}
	now := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.retry = append(f.retry, retryPush{push: push, uids: uids, gateway: gateway,
		next: now.Add(retryFirst), wait: retryFirst, until: now.Add(d)})
	f.trimRetry()
}

// trimRetry drops the oldest retries past retryLimit. Caller holds mu.
func (f *fanout) trimRetry() {
	if over := len(f.retry) - retryLimit; over > 0 {
		f.retry = f.retry[over:]
		f.metrics.pushes.WithLabelValues("retry_dropped").Add(float64(over))
	}
}

// retryDue sends again the kept pushes whose time has come (all of them
// when all, i.e. right after Redis recovered). A push is sent at its
// message's position now. What misses again waits twice as long, until
// retryFor has passed.
func (f *fanout) retryDue(all bool) {
	if f.rdb == nil || f.degraded.Load() {
		return
	}
	now := time.Now()
	f.mu.Lock()
	var due, keep []retryPush
	for _, rp := range f.retry {
		if all || !now.Before(rp.next) {
			due = append(due, rp)
		} else {
			keep = append(keep, rp)
		}
	}
	f.retry = keep
	f.mu.Unlock()
	for _, rp := range due {
		if m, ok := rp.push.Event.(*pb.Push_Message); ok && f.refresh != nil {
			if fresh := f.refresh(m.Message); fresh != nil {
				rp.push = proto.Clone(rp.push).(*pb.Push)
				rp.push.Event = &pb.Push_Message{Message: fresh}
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), fanoutTimeout)
		if rp.gateway == "" {
			ok, unrouted := f.publishRouted(ctx, []pushJob{{push: rp.push, uids: rp.uids}})
			switch {
			case !ok[0]:
			case len(unrouted[0]) > 0:
				// Those still without a route are tried again until the
				// push's own deadline.
				f.metrics.pushes.WithLabelValues("retried").Inc()
				rp.uids = unrouted[0]
			default:
				f.metrics.pushes.WithLabelValues("retried").Inc()
				rp.until = time.Time{} // delivered, or kept per gateway
			}
		} else if n, err := f.publish(ctx, rp.gateway, rp.push, rp.uids); err == nil && n > 0 {
			f.metrics.pushes.WithLabelValues("retried").Inc()
			rp.until = time.Time{}
		}
		cancel()
		if now.Before(rp.until) {
			rp.wait *= 2
			rp.next = now.Add(rp.wait)
			f.mu.Lock()
			f.retry = append(f.retry, rp)
			f.trimRetry()
			f.mu.Unlock()
		}
	}
}

// broadcast sends push to every gateway (presence changes).
func (f *fanout) broadcast(ctx context.Context, push *pb.Push) {
	push.Origin = f.node
	published := false
	if f.rdb != nil && !f.degraded.Load() {
		if b, err := proto.Marshal(push); err == nil {
			published = f.rdb.Publish(ctx, channels.Presence, b).Err() == nil
			if !published {
				f.setDegraded(true)
			}
		}
	}
	f.stream(push, push.ToUids, !published)
}

// publishRouted looks up the recipients' routes of every job and
// publishes each job's push once per gateway, in two pipelined round
// trips; it reports, per job, whether every step succeeded, and the
// recipients Redis held no route for. A message push that no one received
// (that gateway's subscription is down) is kept for a retry.
func (f *fanout) publishRouted(ctx context.Context, jobs []pushJob) (ok []bool, unrouted [][]uint64) {
	ok = make([]bool, len(jobs))
	unrouted = make([][]uint64, len(jobs))
	var uids []uint64
	for _, j := range jobs {
		uids = append(uids, j.uids...)
	}
	slices.Sort(uids)
	gateways, err := lookupRoutes(ctx, f.rdb, slices.Compact(uids))
	if err != nil {
		f.setDegraded(true)
		return ok, unrouted
	}
	type publish struct {
		job     int
		gateway string
		to      []uint64
		cmd     *redis.IntCmd
	}
	var pubs []publish
	pipe := f.rdb.Pipeline()
	for i, j := range jobs {
		ok[i] = true
		for _, uid := range j.uids {
			if len(gateways[uid]) == 0 {
				unrouted[i] = append(unrouted[i], uid)
			}
		}
		base, err := proto.Marshal(j.push)
		if err != nil {
			ok[i] = false
			continue
		}
		for gw, to := range byGateway(j.uids, gateways) {
			b, err := withRecipients(j.push, base, to)
			if err != nil {
				ok[i] = false
				break
			}
			pubs = append(pubs, publish{job: i, gateway: gw, to: to, cmd: pipe.Publish(ctx, channels.Gateway(gw), b)})
		}
	}
	if len(pubs) == 0 {
		return ok, unrouted
	}
	if _, err := pipe.Exec(ctx); err != nil {
		f.setDegraded(true)
	}
	published := time.Now()
	for _, p := range pubs {
		n, err := p.cmd.Result()
		if err != nil {
			ok[p.job] = false
			continue
		}
		if m := jobs[p.job].push.GetMessage(); m != nil {
			f.spans.Add(spans.Key(m.From, m.Cmid), "node: push published on Redis for "+p.gateway, published, published)
		}
		f.metrics.pushes.WithLabelValues("redis").Inc()
		if n == 0 {
			f.keepForRetry(jobs[p.job].push, p.to, p.gateway)
		}
	}
	return ok, unrouted
}

// byGateway groups uids by the gateways holding their routes.
func byGateway(uids []uint64, gateways map[uint64][]string) map[string][]uint64 {
	out := map[string][]uint64{}
	for _, uid := range uids {
		for _, gw := range gateways[uid] {
			out[gw] = append(out[gw], uid)
		}
	}
	return out
}

// withRecipients is push addressed to uids, encoded: base (push encoded)
// followed by the encoding of a Push holding only to_uids. Protobuf
// merges concatenated encodings (a repeated field's elements append), so
// this decodes as push with to_uids set, without encoding push once per
// gateway. A push that carries recipients of its own is encoded afresh.
func withRecipients(push *pb.Push, base []byte, uids []uint64) ([]byte, error) {
	if len(push.ToUids) > 0 {
		p := proto.Clone(push).(*pb.Push)
		p.ToUids = uids
		return proto.Marshal(p)
	}
	return proto.MarshalOptions{}.MarshalAppend(slices.Clip(base), &pb.Push{ToUids: uids})
}

// publish sends push for uids on gateway's channel and returns how many
// subscribers received it.
func (f *fanout) publish(ctx context.Context, gateway string, push *pb.Push, uids []uint64) (int64, error) {
	p := proto.Clone(push).(*pb.Push)
	p.ToUids = uids
	b, err := proto.Marshal(p)
	if err != nil {
		return 0, err
	}
	n, err := f.rdb.Publish(ctx, channels.Gateway(gateway), b).Result()
	if err != nil {
		f.setDegraded(true)
		return 0, err
	}
	f.metrics.pushes.WithLabelValues("redis").Inc()
	return n, nil
}

// stream puts push on the Attach streams: all of them when force, else
// only those of gateways whose Redis subscription is broken.
func (f *fanout) stream(push *pb.Push, uids []uint64, force bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for a := range f.attached {
		if !force && a.redisOK.Load() {
			continue
		}
		p := proto.Clone(push).(*pb.Push)
		p.ToUids = uids
		select {
		case a.out <- p:
			f.metrics.pushes.WithLabelValues("stream").Inc()
		default:
			f.log.Warn("fallback stream full; gateway will pull the gap", "gateway", a.gateway)
		}
	}
}

// streamsWanted reports whether stream(…, force) would reach any gateway:
// with force, any attached one; without, one whose Redis subscription is
// broken. Callers that must read state to build a push ask first.
func (f *fanout) streamsWanted(force bool) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for a := range f.attached {
		if force || !a.redisOK.Load() {
			return true
		}
	}
	return false
}

func (f *fanout) attach(gateway string) *attachment {
	a := &attachment{gateway: gateway, out: make(chan *pb.Push, streamBuffer)}
	a.redisOK.Store(true)
	f.mu.Lock()
	f.attached[a] = struct{}{}
	f.mu.Unlock()
	return a
}

func (f *fanout) detach(a *attachment) {
	f.mu.Lock()
	delete(f.attached, a)
	f.mu.Unlock()
}

func (f *fanout) closeStreams() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for a := range f.attached {
		delete(f.attached, a)
		close(a.out)
	}
}

// gatewayService serves the Attach streams.
type gatewayService struct {
	pb.UnimplementedGatewaysServer
	n *Node
}

// Attach keeps a gateway's fallback stream: the gateway reports its Redis
// health on it; the node sends pushes on it.
func (s *gatewayService) Attach(stream pb.Gateways_AttachServer) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	a := s.n.fanout.attach(first.Gateway)
	a.redisOK.Store(first.RedisOk)
	defer s.n.fanout.detach(a)
	s.n.log.Info("gateway attached", "gateway", first.Gateway, "redis_ok", first.RedisOk)
	go func() {
		for {
			st, err := stream.Recv()
			if err != nil {
				return
			}
			a.redisOK.Store(st.RedisOk)
		}
	}()
	for {
		select {
		case p, ok := <-a.out:
			if !ok {
				return nil
			}
			if err := stream.Send(p); err != nil {
				return err
			}
		case <-stream.Context().Done():
			return nil
		}
	}
}
