package node

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"mpim/fsm"
	"mpim/internal/rpcerr"
	pb "mpim/proto/mpimpb"
)

// routeKey is the Redis hash of a user's routes: one field per device,
// valued "gateway|session|expiry-ms". The key itself expires too, so a user
// whose gateways all died disappears without a sweeper.
func routeKey(uid uint64) string { return "mpim:route:" + strconv.FormatUint(uid, 10) }

type route struct {
	gateway, session string
	expires          int64
}

func (r route) String() string { return fmt.Sprintf("%s|%s|%d", r.gateway, r.session, r.expires) }

func parseRoute(s string) (route, bool) {
	p := strings.Split(s, "|")
	if len(p) != 3 {
		return route{}, false
	}
	exp, err := strconv.ParseInt(p[2], 10, 64)
	return route{gateway: p[0], session: p[1], expires: exp}, err == nil
}

// routes is the presence service's state: the routes in Redis, and a local
// copy of the routes this node bound, which serves presence while Redis is
// unreachable (each side of a Redis outage then answers from what it knows).
type routes struct {
	rdb    *redis.Client
	ttl    time.Duration
	fanout *fanout
	log    *slog.Logger

	mu    sync.Mutex
	local map[uint64]map[string]route // uid -> device -> route
}

func newRoutes(rdb *redis.Client, ttl time.Duration, f *fanout, log *slog.Logger) *routes {
	return &routes{rdb: rdb, ttl: ttl, fanout: f, log: log, local: map[uint64]map[string]route{}}
}

func liveRoutes(fields map[string]string, now int64) map[string]route {
	out := map[string]route{}
	for dev, v := range fields {
		if r, ok := parseRoute(v); ok && r.expires > now {
			out[dev] = r
		}
	}
	return out
}

// lookupRoutes finds the gateways holding live routes of uids (each
// gateway once per user), in one pipelined round trip.
func lookupRoutes(ctx context.Context, rdb *redis.Client, uids []uint64) (map[uint64][]string, error) {
	pipe := rdb.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, len(uids))
	for i, uid := range uids {
		cmds[i] = pipe.HGetAll(ctx, routeKey(uid))
	}
	if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
		return nil, err
	}
	now := time.Now().UnixMilli()
	out := make(map[uint64][]string, len(uids))
	for i, c := range cmds {
		for _, r := range liveRoutes(c.Val(), now) {
			if !slices.Contains(out[uids[i]], r.gateway) {
				out[uids[i]] = append(out[uids[i]], r.gateway)
			}
		}
	}
	return out, nil
}

// bind records that uid's device is connected to gateway as session. A
// different session already holding the device is kicked; a user coming
// online is announced.
func (r *routes) bind(ctx context.Context, c *pb.Caller, gateway string) error {
	now := time.Now()
	rt := route{gateway: gateway, session: c.Session, expires: now.Add(r.ttl).UnixMilli()}
	r.mu.Lock()
	devs := r.local[c.Uid]
	if devs == nil {
		devs = map[string]route{}
		r.local[c.Uid] = devs
	}
	prevLocal, hadLocal := devs[c.Device]
	wasOnline := len(liveRoutes(stringify(devs), now.UnixMilli())) > 0
	devs[c.Device] = rt
	r.mu.Unlock()

	var prev route
	hadPrev := false
	if r.rdb != nil && !r.fanout.degraded.Load() {
		key := routeKey(c.Uid)
		pipe := r.rdb.TxPipeline()
		all := pipe.HGetAll(ctx, key)
		pipe.HSet(ctx, key, c.Device, rt.String())
		pipe.PExpire(ctx, key, r.ttl)
		if _, err := pipe.Exec(ctx); err != nil {
			r.fanout.setDegraded(true)
		} else {
			live := liveRoutes(all.Val(), now.UnixMilli())
			prev, hadPrev = live[c.Device]
			wasOnline = len(live) > 0
		}
	}
	if !hadPrev && hadLocal && prevLocal.expires > now.UnixMilli() {
		prev, hadPrev = prevLocal, true
	}
	if hadPrev && prev.session != c.Session {
		r.fanout.broadcast(ctx, &pb.Push{Event: &pb.Push_Kick{Kick: &pb.Kick{
			Uid: c.Uid, Device: c.Device, Reason: "device_replaced", Gateway: gateway, Session: c.Session,
			Message: "this device logged in again elsewhere"}}})
	}
	if !wasOnline {
		r.fanout.broadcast(ctx, &pb.Push{Event: &pb.Push_Presence{Presence: &pb.PresenceChange{
			User: c.User, Uid: c.Uid, Online: true, Gateway: gateway}}})
	}
	return nil
}

// restore writes this node's live routes back to Redis, which may have
// lost them while it was unreachable (a restarted Redis without
// persistence).
func (r *routes) restore() {
	now := time.Now().UnixMilli()
	r.mu.Lock()
	type entry struct {
		uid    uint64
		device string
		rt     route
	}
	var live []entry
	for uid, devs := range r.local {
		for dev, rt := range devs {
			if rt.expires > now {
				live = append(live, entry{uid, dev, rt})
			} else {
				delete(devs, dev)
			}
		}
		if len(devs) == 0 {
			delete(r.local, uid)
		}
	}
	r.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	pipe := r.rdb.Pipeline()
	for _, e := range live {
		pipe.HSet(ctx, routeKey(e.uid), e.device, e.rt.String())
		pipe.PExpire(ctx, routeKey(e.uid), time.Duration(e.rt.expires-now)*time.Millisecond)
	}
	if _, err := pipe.Exec(ctx); err != nil && len(live) > 0 {
		r.log.Warn("restoring routes to redis failed; gateways rebind at their next heartbeat", "err", err)
	}
}

func stringify(devs map[string]route) map[string]string {
	out := make(map[string]string, len(devs))
	for d, r := range devs {
		out[d] = r.String()
	}
	return out
}

// unbind removes a session's route; the user's last route going announces
// them offline.
// unbindScript removes a device's route only if this session still holds
// it, and returns the routes left: in one step, so that a new login of the
// same device (which has just written its own route) is never removed by
// the old session's late unbind.
var unbindScript = redis.NewScript(`
local v = redis.call('HGET', KEYS[1], ARGV[1])
if v and string.match(v, '^[^|]*|([^|]*)|') == ARGV[2] then
  redis.call('HDEL', KEYS[1], ARGV[1])
end
return redis.call('HGETALL', KEYS[1])
`)

func (r *routes) unbind(ctx context.Context, c *pb.Caller) {
	now := time.Now().UnixMilli()
	r.mu.Lock()
	if devs := r.local[c.Uid]; devs != nil {
		if rt, ok := devs[c.Device]; ok && rt.session == c.Session {
			delete(devs, c.Device)
		}
	}
	online := len(liveRoutes(stringify(r.local[c.Uid]), now)) > 0
	r.mu.Unlock()
	if r.rdb != nil && !r.fanout.degraded.Load() {
		all, err := unbindScript.Run(ctx, r.rdb, []string{routeKey(c.Uid)}, c.Device, c.Session).StringSlice()
		if err != nil {
			r.fanout.setDegraded(true)
		} else {
			fields := make(map[string]string, len(all)/2)
			for i := 0; i+1 < len(all); i += 2 {
				fields[all[i]] = all[i+1]
			}
			online = len(liveRoutes(fields, now)) > 0
		}
	}
	if !online {
		r.fanout.broadcast(ctx, &pb.Push{Event: &pb.Push_Presence{Presence: &pb.PresenceChange{
			User: c.User, Uid: c.Uid, Online: false}}})
	}
}

// query returns each uid's presence: from Redis, or from this node's own
// routes while Redis is unreachable.
func (r *routes) query(ctx context.Context, uids []uint64) []*pb.PresenceState {
	out := make([]*pb.PresenceState, len(uids))
	now := time.Now().UnixMilli()
	if r.rdb != nil && !r.fanout.degraded.Load() {
		pipe := r.rdb.Pipeline()
		cmds := make([]*redis.MapStringStringCmd, len(uids))
		for i, uid := range uids {
			cmds[i] = pipe.HGetAll(ctx, routeKey(uid))
		}
		if _, err := pipe.Exec(ctx); err == nil || err == redis.Nil {
			for i, c := range cmds {
				out[i] = presenceOf(liveRoutes(c.Val(), now))
			}
			return out
		}
		r.fanout.setDegraded(true)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, uid := range uids {
		out[i] = presenceOf(liveRoutes(stringify(r.local[uid]), now))
	}
	return out
}

func presenceOf(live map[string]route) *pb.PresenceState {
	if len(live) == 0 {
		return &pb.PresenceState{}
	}
	gws := make([]string, 0, len(live))
	for _, r := range live {
		gws = append(gws, r.gateway)
	}
	sort.Strings(gws)
	return &pb.PresenceState{Online: true, Gateway: gws[0]}
}

// presenceService is the gRPC face of routes.
type presenceService struct {
	pb.UnimplementedPresenceServer
	n *Node
}

func (s *presenceService) Bind(ctx context.Context, req *pb.BindRequest) (*pb.Empty, error) {
	if req.Caller == nil || req.Caller.Uid == 0 || req.Gateway == "" {
		return nil, rpcerr.Error(rpcerr.BadRequest, "bind needs a caller and a gateway")
	}
	return &pb.Empty{}, s.n.routes.bind(ctx, req.Caller, req.Gateway)
}

func (s *presenceService) Unbind(ctx context.Context, req *pb.BindRequest) (*pb.Empty, error) {
	if req.Caller == nil || req.Caller.Uid == 0 {
		return nil, rpcerr.Error(rpcerr.BadRequest, "unbind needs a caller")
	}
	s.n.routes.unbind(ctx, req.Caller)
	return &pb.Empty{}, nil
}

// Query answers the presence of the users named who share a conversation
// with the caller (or are the caller); the others are left out of the
// reply, so that presence tells nothing about strangers — not even
// whether the name exists — and costs no lookup past the caller's
// conversations.
func (s *presenceService) Query(ctx context.Context, req *pb.PresenceQuery) (*pb.PresenceReply, error) {
	var names []string
	var uids []uint64
	known := s.n.contacts(req.Caller.GetUid())
	for _, name := range req.Users {
		u, ok := s.n.localUser(name)
		if !ok || (u.UID != req.Caller.GetUid() && !known[u.UID]) {
			continue
		}
		names, uids = append(names, name), append(uids, u.UID)
	}
	out := &pb.PresenceReply{Presence: map[string]*pb.PresenceState{}}
	if len(uids) == 0 {
		return out, nil
	}
	states := s.n.routes.query(ctx, uids)
	for i, name := range names {
		out.Presence[name] = states[i]
	}
	return out, nil
}

// contacts are the users who share a conversation with uid on this
// node's replicas (bounded by Limits.MaxUserConvs conversations).
func (n *Node) contacts(uid uint64) map[uint64]bool {
	out := map[uint64]bool{}
	for _, sh := range n.shards {
		sh.view(func(tx fsm.Tx) error {
			for _, conv := range fsm.UserConvs(tx, uid) {
				for _, m := range fsm.Members(tx, conv) {
					out[m] = true
				}
			}
			return nil
		})
	}
	return out
}

// localUser looks a name up on this replica only (no quorum read: a
// contact is a user this node already knows).
func (n *Node) localUser(name string) (u fsm.User, ok bool) {
	n.metaShard().view(func(tx fsm.Tx) error { u, ok = fsm.UserByName(tx, name); return nil })
	return u, ok
}
