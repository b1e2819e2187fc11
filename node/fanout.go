package node

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"

	pb "mpim/proto/mpimpb"
)

// Redis channel names shared with gateways.
const (
	// GatewayChannelPrefix + gateway id is the channel a gateway listens on.
	GatewayChannelPrefix = "mpim:gw:"
	// PresenceChannel carries presence changes to every gateway.
	PresenceChannel = "mpim:presence"
)

// streamBuffer bounds each gateway's fallback stream queue. A full queue
// drops the push; the gateway's gap detection pulls what it missed.
const streamBuffer = 8192

// Message pushes that did not reach a gateway are kept and sent again
// ("message retry"): retryLimit bounds how many (the oldest go first past
// it; a dropped one is still found by a client's sync, it only loses its
// push), retryFor how long one is tried, retryFirst the first wait, which
// doubles after every miss.
const (
	retryLimit = 65536
	retryFor   = 30 * time.Second
	retryFirst = 250 * time.Millisecond
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
	degraded atomic.Bool

	mu       sync.Mutex
	attached map[*attachment]struct{}
	// retry holds message pushes that did not get through: those whose
	// publish failed (the streams carried them only to this node's own
	// gateways) are routed again once Redis is back; those published to a
	// gateway channel nobody listened on (its subscription was down) are
	// published to it again. Gateways drop what a device already has.
	retry []retryPush
}

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

// deliver routes push to the gateways of uids.
func (f *fanout) deliver(ctx context.Context, push *pb.Push, uids []uint64) {
	if len(uids) == 0 {
		return
	}
	push.Origin = f.node
	published := false
	if f.rdb != nil && !f.degraded.Load() {
		published = f.publishRouted(ctx, push, uids)
	}
	// Gateways whose subscription is broken get message pushes from every
	// replica's apply hook (Node.applied); other pushes, and everything
	// when this node could not publish, go on the streams from here.
	_, isMessage := push.Event.(*pb.Push_Message)
	if !published || !isMessage {
		f.stream(push, uids, !published)
	}
	if !published && f.rdb != nil {
		f.keepForRetry(push, uids, "")
	}
}

// keepForRetry remembers a message push to send again (to gateway, or
// routed again when gateway is "").
func (f *fanout) keepForRetry(push *pb.Push, uids []uint64, gateway string) {
	if _, ok := push.Event.(*pb.Push_Message); !ok {
		return
	}
	now := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.retry = append(f.retry, retryPush{push: push, uids: uids, gateway: gateway,
		next: now.Add(retryFirst), wait: retryFirst, until: now.Add(retryFor)})
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
			if f.publishRouted(ctx, rp.push, rp.uids) {
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
			published = f.rdb.Publish(ctx, PresenceChannel, b).Err() == nil
			if !published {
				f.setDegraded(true)
			}
		}
	}
	f.stream(push, push.ToUids, !published)
}

// publishRouted looks up the recipients' routes and publishes one push per
// gateway; it reports whether every step succeeded. A message push that no
// one received (that gateway's subscription is down) is kept for a retry.
func (f *fanout) publishRouted(ctx context.Context, push *pb.Push, uids []uint64) bool {
	byGateway, err := lookupRoutes(ctx, f.rdb, uids)
	if err != nil {
		f.setDegraded(true)
		return false
	}
	for gw, to := range byGateway {
		n, err := f.publish(ctx, gw, push, to)
		if err != nil {
			return false
		}
		if n == 0 {
			f.keepForRetry(push, to, gw)
		}
	}
	return true
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
	n, err := f.rdb.Publish(ctx, GatewayChannelPrefix+gateway, b).Result()
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
