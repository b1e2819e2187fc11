package gateway

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"

	"mpim/internal/channels"
	pb "mpim/proto/mpimpb"
)

// subscriber listens on the gateway's Redis channel and the presence
// channel. Redis pub/sub is at-most-once: while the subscription is broken
// pushes published meanwhile are lost, so the gateway reports the break to
// its node (which then streams pushes directly) and, when it notices the
// break or the repair, makes every session pull what it may have missed.
type subscriber struct {
	g  *Gateway
	ok atomic.Bool
}

func newSubscriber(g *Gateway) *subscriber { return &subscriber{g: g} }

func (s *subscriber) healthy() bool { return s.ok.Load() }

func (s *subscriber) set(ok bool) {
	if s.ok.Swap(ok) == ok {
		return
	}
	if ok {
		s.g.log.Info("redis subscription up")
		s.g.metrics.degraded.Set(0)
		// A Redis that came back may have lost every route (the lab runs it
		// without persistence): bind every session again now rather than at
		// the next heartbeat.
		go s.g.rebindAll()
	} else {
		s.g.log.Warn("redis subscription broken: pushes come on the node stream")
		s.g.metrics.degraded.Set(1)
	}
	s.g.catchUpAll()
}

func (s *subscriber) run(ctx context.Context) {
	for ctx.Err() == nil {
		s.subscribeOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		s.set(false)
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (s *subscriber) subscribeOnce(ctx context.Context) {
	ps := s.g.rdb.Subscribe(ctx, channels.Gateway(s.g.cfg.ID), channels.Presence)
	defer ps.Close()
	timeout := s.g.cfg.RedisTimeout
	pinged := false
	for ctx.Err() == nil {
		msg, err := ps.ReceiveTimeout(ctx, 4*timeout)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && !pinged {
				// Quiet: ask for a pong, which proves the connection.
				pinged = ps.Ping(ctx) == nil
				if pinged {
					continue
				}
			}
			return
		}
		pinged = false
		switch m := msg.(type) {
		case *redis.Subscription, *redis.Pong:
			s.set(true)
		case *redis.Message:
			s.set(true)
			var p pb.Push
			if err := proto.Unmarshal([]byte(m.Payload), &p); err != nil {
				s.g.log.Warn("undecodable push on redis", "channel", m.Channel, "err", err)
				continue
			}
			s.g.dispatch(&p, "redis")
		}
	}
}
