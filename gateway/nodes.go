package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"mpim/gateway/wire"
	"mpim/internal/clustertls"
	"mpim/internal/rpcerr"
	"mpim/internal/tracing"
	pb "mpim/proto/mpimpb"
)

// nodeConn is the gateway's connection to one node.
type nodeConn struct {
	addr     string
	cc       *grpc.ClientConn
	users    pb.UsersClient
	messages pb.MessagesClient
	groups   pb.GroupsClient
	presence pb.PresenceClient
	gateways pb.GatewaysClient
	admin    pb.AdminClient

	healthy atomic.Bool
	mu      sync.Mutex
	// alive is cancelled when the node turns unhealthy: a call in flight
	// to it that may be repeated elsewhere stops waiting then (callVia).
	// nil while the node is unhealthy. Guarded by mu, as are the changes
	// of healthy.
	alive     context.Context
	stopAlive context.CancelFunc
	id        string // learned from the node's status
	mode      string
	// leads is which shards the node led at its last status (CP mode),
	// indexed by shard; nil when it leads none or is not CP.
	leads atomic.Pointer[[]bool]
}

// leader reports whether the node said at its last status that it leads
// shard.
func (n *nodeConn) leader(shard int) bool {
	l := n.leads.Load()
	return l != nil && shard >= 0 && shard < len(*l) && (*l)[shard]
}

func (n *nodeConn) identity() (id, mode string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.id, n.mode
}

// connectParams keep reconnects to a restarted node prompt: gRPC's default
// backoff grows to two minutes, far too long for a lab where nodes are
// killed and restarted on purpose.
var connectParams = grpc.ConnectParams{
	Backoff:           backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
	MinConnectTimeout: time.Second,
}

// reconnectWait bounds how long a call waits for a node whose connection
// is down to come back before moving on.
const reconnectWait = 500 * time.Millisecond

// ready makes a down connection retry at once and waits, briefly, for it
// to come up; it reports whether the connection can carry a call.
func ready(ctx context.Context, cc *grpc.ClientConn) bool {
	st := cc.GetState()
	if st != connectivity.TransientFailure && st != connectivity.Shutdown {
		return true
	}
	if st == connectivity.Shutdown {
		return false
	}
	cc.ResetConnectBackoff()
	wctx, cancel := context.WithTimeout(ctx, reconnectWait)
	defer cancel()
	for {
		st = cc.GetState()
		if st == connectivity.Ready {
			return true
		}
		if st == connectivity.Shutdown || !cc.WaitForStateChange(wctx, st) {
			return false
		}
	}
}

// nodePool is the seed's discovery and failover without ZooKeeper: the
// gateway is given its nodes in order of preference, health-checks each,
// and sends every call to the first healthy one.
type nodePool struct {
	nodes    []*nodeConn
	log      *slog.Logger
	interval time.Duration
	changed  chan struct{} // pinged when a node's health flips
	// onHealth, when set, is told of every health change.
	onHealth func(addr string, ok bool)
}

// newNodePool connects to the nodes at addrs (with creds, over the
// cluster's mutual TLS).
func newNodePool(addrs []string, interval time.Duration, creds *clustertls.Credentials, log *slog.Logger) (*nodePool, error) {
	p := &nodePool{log: log, interval: interval, changed: make(chan struct{}, 1)}
	transport := grpc.WithTransportCredentials(insecure.NewCredentials())
	if creds != nil {
		transport = grpc.WithTransportCredentials(credentials.NewTLS(creds.Client()))
	}
	for _, a := range addrs {
		cc, err := grpc.NewClient(a, transport, grpc.WithConnectParams(connectParams), grpc.WithUnaryInterceptor(tracing.ClientInterceptor))
		if err != nil {
			p.close()
			return nil, fmt.Errorf("gateway: node %s: %w", a, err)
		}
		p.nodes = append(p.nodes, &nodeConn{addr: a, cc: cc,
			users: pb.NewUsersClient(cc), messages: pb.NewMessagesClient(cc), groups: pb.NewGroupsClient(cc),
			presence: pb.NewPresenceClient(cc), gateways: pb.NewGatewaysClient(cc), admin: pb.NewAdminClient(cc)})
		cc.Connect()
	}
	return p, nil
}

func (p *nodePool) close() {
	for _, n := range p.nodes {
		n.cc.Close()
	}
}

// watch health-checks every node until ctx ends.
func (p *nodePool) watch(ctx context.Context) {
	t := time.NewTicker(p.interval)
	defer t.Stop()
	for {
		p.checkAll(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// checkAll health-checks every node at once and returns when every check
// has.
func (p *nodePool) checkAll(ctx context.Context) {
	var wg sync.WaitGroup
	for _, n := range p.nodes {
		wg.Add(1)
		go func() { defer wg.Done(); p.check(ctx, n) }()
	}
	wg.Wait()
}

func (p *nodePool) check(ctx context.Context, n *nodeConn) {
	cctx, cancel := context.WithTimeout(ctx, p.interval+200*time.Millisecond)
	defer cancel()
	st, err := n.admin.Status(cctx, &pb.Empty{})
	if err == nil {
		n.mu.Lock()
		n.id, n.mode = st.Id, st.Mode
		n.mu.Unlock()
		var leads []bool
		for i, sh := range st.Shards {
			if sh.State == "Leader" && st.Mode == "cp" {
				if leads == nil {
					leads = make([]bool, len(st.Shards))
				}
				leads[i] = true
			}
		}
		n.leads.Store(&leads)
	}
	p.setHealthy(n, err == nil, err)
}

// whileHealthy is a context cancelled when the node turns unhealthy, or
// nil when it is not healthy now.
func (n *nodeConn) whileHealthy() context.Context {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.alive
}

func (p *nodePool) setHealthy(n *nodeConn, ok bool, why error) {
	n.mu.Lock()
	if n.healthy.Swap(ok) == ok {
		n.mu.Unlock()
		return
	}
	if ok {
		n.alive, n.stopAlive = context.WithCancel(context.Background())
	} else if n.stopAlive != nil {
		n.stopAlive()
		n.alive, n.stopAlive = nil, nil
	}
	n.mu.Unlock()
	if p.onHealth != nil {
		p.onHealth(n.addr, ok)
	}
	if ok {
		p.log.Info("node healthy", "addr", n.addr)
	} else {
		p.log.Warn("node unhealthy; failing over", "addr", n.addr, "err", why)
	}
	select {
	case p.changed <- struct{}{}:
	default:
	}
}

// candidates lists healthy nodes in preference order, then the others (a
// node that just came back may not be marked healthy yet).
func (p *nodePool) candidates() []*nodeConn {
	out := make([]*nodeConn, 0, len(p.nodes))
	for _, n := range p.nodes {
		if n.healthy.Load() {
			out = append(out, n)
		}
	}
	for _, n := range p.nodes {
		if !n.healthy.Load() {
			out = append(out, n)
		}
	}
	return out
}

// leaderOf returns a healthy node that led shard at its last status, or
// nil. A node that no longer leads forwards the write, as nI would.
func (p *nodePool) leaderOf(shard int) *nodeConn {
	for _, n := range p.nodes {
		if n.healthy.Load() && n.leader(shard) {
			return n
		}
	}
	return nil
}

// preferred is the node the gateway attaches its push stream to.
func (p *nodePool) preferred() *nodeConn { return p.candidates()[0] }

// callKind says what a failed call may be retried as.
type callKind int

const (
	// readCall has no effect: retry on another node freely.
	readCall callKind = iota
	// idempotentWrite is safe to repeat (send by cmid, cursors): retry on
	// another node.
	idempotentWrite
	// write may not be repeated blindly: after a transport failure that
	// may have reached the node, the answer is timeout.
	write
)

// errNoNode: every node refused the connection.
var errNoNode = errors.New("gateway: no node reachable")

// call runs fn against the best node, failing over on transport failures
// as kind allows. It returns a *wire.Error for every failure.
func (p *nodePool) call(ctx context.Context, timeout time.Duration, kind callKind, fn func(context.Context, *nodeConn) error) (*nodeConn, *wire.Error) {
	return p.callVia(ctx, timeout, kind, nil, fn)
}

// callVia is call trying first, when it is not nil, the node first (a CP
// write's shard leader), then the usual candidates.
func (p *nodePool) callVia(ctx context.Context, timeout time.Duration, kind callKind, first *nodeConn, fn func(context.Context, *nodeConn) error) (*nodeConn, *wire.Error) {
	var last error
	// reached records that some attempt may have reached a node: then a
	// write's outcome is unknown even if a later node refuses it.
	reached := false
	order := p.candidates()
	if first != nil {
		order = append([]*nodeConn{first}, slices.DeleteFunc(order, func(n *nodeConn) bool { return n == first })...)
	}
	for _, n := range order {
		// A connection that is not up cannot have carried the request: it
		// is refused before anything was sent, so any call may move on.
		if !ready(ctx, n.cc) {
			last = fmt.Errorf("node %s: %s", n.addr, n.cc.GetState())
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, timeout)
		stop := func() bool { return false }
		if alive := n.whileHealthy(); alive != nil && kind != write {
			// A call that may be repeated elsewhere waits for this node
			// only while its health checks answer: a node cut off holds
			// the request until the timeout (5 s), and the next node can
			// take it as soon as the checks notice (within about half a
			// second). A CP write sent straight to a leader that was just
			// cut off moves on to nI this way.
			stop = context.AfterFunc(alive, cancel)
		}
		err := fn(cctx, n)
		stop()
		cancel()
		if err == nil {
			return n, nil
		}
		code, msg, terr := rpcerr.Decode(err)
		if terr == nil {
			if reached && kind != readCall && code == rpcerr.Unavailable {
				// This node did not apply it, but an earlier attempt may
				// have reached a node that did: the outcome is unknown.
				return n, ambiguous(kind, fmt.Errorf("an earlier attempt may have been applied (%v); then %s: %s", last, n.addr, msg))
			}
			return n, &wire.Error{Code: wire.Code(code), Message: msg}
		}
		if ctx.Err() != nil {
			return n, ambiguous(kind, fmt.Errorf("request cancelled: %w", ctx.Err()))
		}
		p.setHealthy(n, false, terr)
		last, reached = terr, true
		if kind == write {
			return n, ambiguous(kind, terr)
		}
	}
	if last == nil {
		last = errNoNode
	}
	if reached && kind != readCall {
		return nil, ambiguous(kind, last)
	}
	return nil, wire.Errorf(wire.Unavailable, "no node could take the request (%v); nothing was applied, try again", last)
}

// ambiguous is the answer to a call that broke after it may have reached
// a node.
func ambiguous(kind callKind, err error) *wire.Error {
	if kind == readCall {
		return wire.Errorf(wire.Unavailable, "node unreachable (%v); try again", err)
	}
	return wire.Errorf(wire.Timeout, "the node did not answer (%v); the write may or may not have been applied, retry with the same cmid", err)
}
