package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"mpim/fsm"
	"mpim/internal/clustertls"
	"mpim/internal/rpcerr"
	"mpim/internal/tracing"
	"mpim/node/cp"
	"mpim/node/outcome"
	pb "mpim/proto/mpimpb"
)

// cluster is this node's part of the CP mode: the node-to-node listener
// (every shard's Raft traffic and the Internal RPCs on one port), the
// peers' addresses, and forwarding to shard leaders.
type cluster struct {
	n      *Node
	mux    *cp.Mux
	peers  map[string]string
	rpcSrv *grpc.Server

	mu    sync.Mutex
	conns map[string]*grpc.ClientConn // by address

	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
	// colocating is the colocate loop, which reads the node's shards:
	// stopBackground waits for it, so that it never sees them closing.
	colocating sync.WaitGroup
}

// errUnknownPeer makes Raft fall back to the address in its configuration.
var errUnknownPeer = errors.New("node: peer not in --peers")

func startCluster(n *Node) (*cluster, error) {
	cfg := n.cfg
	mux, err := cp.Listen(cfg.RaftListen, n.log, cfg.TLS)
	if err != nil {
		return nil, err
	}
	c := &cluster{n: n, mux: mux, peers: cfg.Peers, conns: map[string]*grpc.ClientConn{}, stop: make(chan struct{})}
	if cfg.Mode == "ap" {
		if err := c.startAP(); err != nil {
			mux.Close()
			return nil, err
		}
		c.serveInternal()
		return c, nil
	}
	var voters []string
	switch {
	case cfg.Join != "":
		// Added by the running cluster.
	case len(cfg.Peers) == 0:
		voters = []string{cfg.ID}
	default:
		for id := range cfg.Peers {
			voters = append(voters, id)
		}
		sort.Strings(voters)
	}
	for i := 0; i < cfg.Shards; i++ {
		rc := cfg.Raft
		rc.Spans = cfg.Spans
		rc.ID, rc.Shard = cfg.ID, i
		rc.Voters, rc.Nonvoters = placement(voters, i)
		rc.Dir = filepath.Join(cfg.DataDir, fmt.Sprintf("shard-%d", i))
		rc.FSM, rc.Logger = cfg.FSM, n.log
		rc.AckBeforeCommit = cfg.unsafe(UnsafeAckBeforeCommit)
		rc.Observe = n.metrics.obs.cpObserver()
		s, err := cp.Open(rc, mux, c, n.applied)
		if err != nil {
			for _, r := range n.shards {
				r.close()
			}
			n.shards = nil
			mux.Close()
			return nil, err
		}
		n.shards = append(n.shards, &cpReplica{n: n, c: c, id: i, s: s})
	}
	c.serveInternal()
	if cfg.Leaders == "colocate" {
		c.colocating.Add(1)
		go func() { defer c.colocating.Done(); c.colocate() }()
	}
	if cfg.Join != "" {
		c.wg.Add(1)
		go func() { defer c.wg.Done(); c.join() }()
	}
	for _, u := range cfg.Unsafe {
		n.log.Warn("UNSAFE switch on: this node breaks Raft's guarantees on purpose", "switch", u)
	}
	return c, nil
}

// ReplicationFactor is how many nodes vote in each shard of a larger
// cluster.
const ReplicationFactor = 5

// placement splits a shard's initial members into voters and non-voters.
// Up to ReplicationFactor nodes all vote. Beyond, shard i's voters are the
// ReplicationFactor nodes starting at position i (mod N) of the sorted
// members, so that leadership and votes spread over the cluster; every
// other node follows the shard as a non-voter, so that each node still
// serves local reads of every shard.
func placement(members []string, shard int) (voters, nonvoters []string) {
	if len(members) <= ReplicationFactor {
		return members, nil
	}
	for k := 0; k < len(members); k++ {
		m := members[(shard+k)%len(members)]
		if k < ReplicationFactor {
			voters = append(voters, m)
		} else {
			nonvoters = append(nonvoters, m)
		}
	}
	sort.Strings(voters)
	sort.Strings(nonvoters)
	return voters, nonvoters
}

// serveInternal serves the node-to-node RPCs on the mux.
func (c *cluster) serveInternal() {
	c.rpcSrv = grpc.NewServer(grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if c.n.cfg.Spans.Tracing() {
			ctx = tracing.FromIncoming(ctx)
		}
		return handler(ctx, req)
	}))
	pb.RegisterInternalServer(c.rpcSrv, &internalService{n: c.n})
	c.wg.Add(1)
	go func() { defer c.wg.Done(); c.rpcSrv.Serve(c.mux.RPCListener()) }()
}

// ServerAddr implements raft.ServerAddressProvider: the address this node
// dials for server id (in the lab, the proxy of that link).
func (c *cluster) ServerAddr(id raft.ServerID) (raft.ServerAddress, error) {
	if a, ok := c.peers[string(id)]; ok {
		return raft.ServerAddress(a), nil
	}
	return "", errUnknownPeer
}

// stopBackground ends the colocation and join loops (before the shards
// close), and waits for the colocation loop.
func (c *cluster) stopBackground() {
	c.stopOnce.Do(func() { close(c.stop) })
	c.colocating.Wait()
}

func (c *cluster) close() {
	c.stopBackground()
	c.rpcSrv.Stop()
	c.mux.Close()
	c.wg.Wait()
	c.mu.Lock()
	for _, cc := range c.conns {
		cc.Close()
	}
	c.mu.Unlock()
}

// addressOf is where to dial server id: --peers, else the address in the
// shard's Raft configuration (a node that joined later).
func (c *cluster) addressOf(id string, s *cp.Shard) string {
	if a, ok := c.peers[id]; ok {
		return a
	}
	return s.ServerAddress(id)
}

// client returns the Internal client of the node at addr.
func (c *cluster) client(addr string) (*grpc.ClientConn, pb.InternalClient, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cc := c.conns[addr]
	if cc == nil {
		var err error
		cc, err = grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithUnaryInterceptor(tracing.ClientInterceptor),
			grpc.WithConnectParams(grpc.ConnectParams{
				Backoff:           backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
				MinConnectTimeout: time.Second,
			}),
			grpc.WithContextDialer(func(ctx context.Context, a string) (net.Conn, error) {
				d := time.Second
				if dl, ok := ctx.Deadline(); ok {
					d = time.Until(dl)
				}
				return c.mux.DialRPC(a, d)
			}))
		if err != nil {
			return nil, nil, err
		}
		cc.Connect()
		c.conns[addr] = cc
	}
	return cc, pb.NewInternalClient(cc), nil
}

// forward calls the leader of shard s. A call that could not have left
// this node is ErrNotApplied; one that broke after it may have reached the
// leader is ErrUnknown.
func (c *cluster) forward(ctx context.Context, leader string, s *cp.Shard, call func(context.Context, pb.InternalClient) error) error {
	cc, client, err := c.client(c.addressOf(leader, s))
	if err != nil {
		return fmt.Errorf("%w: leader %s: %v", ErrNotApplied, leader, err)
	}
	if st := cc.GetState(); st == connectivity.TransientFailure || st == connectivity.Shutdown {
		cc.Connect()
		return fmt.Errorf("%w: leader %s unreachable", ErrNotApplied, leader)
	}
	cctx, cancel := context.WithTimeout(ctx, c.n.cfg.ForwardTimeout)
	defer cancel()
	began := time.Now()
	err = call(cctx, client)
	c.n.metrics.obs.forward.WithLabelValues(outcomeOf(err)).Observe(time.Since(began).Seconds())
	if err == nil {
		return nil
	}
	code, msg, terr := rpcerr.Decode(err)
	switch {
	case terr != nil:
		return fmt.Errorf("%w: forwarded to leader %s: %v", ErrUnknown, leader, terr)
	case code == rpcerr.Unavailable:
		return fmt.Errorf("%w: leader %s: %s", ErrNotApplied, leader, msg)
	default:
		return fmt.Errorf("%w: leader %s: %s", ErrUnknown, leader, msg)
	}
}

// colocate moves every shard's leadership to the leader of shard 0, so
// that "the leader" names one node (the lab's --leaders colocate).
func (c *cluster) colocate() {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	last := map[int]time.Time{}
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		lead := c.n.shards[0].(*cpReplica).s.Leader()
		if lead == "" || lead == c.n.cfg.ID {
			continue
		}
		for i, r := range c.n.shards[1:] {
			s := r.(*cpReplica).s
			if !s.IsLeader() || time.Since(last[i]) < time.Second || !s.IsVoter(lead) {
				continue // a non-voter cannot lead the shard
			}
			last[i] = time.Now()
			if err := s.TransferLeadership(lead); err != nil {
				c.n.log.Debug("leadership transfer failed; retrying", "shard", i+1, "to", lead, "err", err)
			} else {
				c.n.log.Info("leadership moved to colocate with shard 0", "shard", i+1, "to", lead)
			}
		}
	}
}

// join asks the running cluster, through cfg.Join, to add this node to
// every shard, until it succeeds.
func (c *cluster) join() {
	addr := c.n.cfg.RaftAdvertise
	if addr == "" {
		addr = c.mux.Addr().String()
	}
	for {
		err := func() error {
			cc, err := grpc.NewClient(c.n.cfg.Join, transportCredentials(c.n.cfg.TLS))
			if err != nil {
				return err
			}
			defer cc.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			_, err = pb.NewAdminClient(cc).Join(ctx, &pb.MemberRequest{Id: c.n.cfg.ID, Address: addr})
			return err
		}()
		if err == nil {
			c.n.log.Info("joined the cluster", "via", c.n.cfg.Join)
			return
		}
		c.n.log.Warn("join failed; retrying", "via", c.n.cfg.Join, "err", err)
		select {
		case <-c.stop:
			return
		case <-time.After(time.Second):
		}
	}
}

// cpReplica is this node's replica of one shard in CP mode.
type cpReplica struct {
	n  *Node
	c  *cluster
	id int
	s  *cp.Shard
}

// leader waits (up to LeaderWait) for the shard to have a leader.
func (r *cpReplica) leader(ctx context.Context) (string, error) {
	deadline := time.Now().Add(r.n.cfg.LeaderWait)
	for {
		if l := r.s.Leader(); l != "" {
			return l, nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("%w: shard %d has no leader with a quorum on this side", ErrNotApplied, r.id)
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("%w: shard %d: no leader: %v", ErrNotApplied, r.id, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func (r *cpReplica) propose(ctx context.Context, cmd fsm.Command) (fsm.Result, error) {
	// A refusal that guarantees nothing was applied (no leader yet, a
	// leadership transfer, a leader that just stepped down) is retried
	// until LeaderWait has passed. An unknown outcome is retried only for
	// commands that are safe to repeat, and only once the leader changed:
	// the usual case is a leader cut off mid-call, whose entry can then
	// never commit.
	deadline := time.Now().Add(r.n.cfg.LeaderWait)
	// Once an attempt may have reached a leader, its request may still be
	// applied (held bytes flow on heal): no later refusal can be reported
	// as "not applied".
	maybe := false
	for {
		lead, res, err := r.proposeOnce(ctx, cmd)
		if errors.Is(err, outcome.ErrUnknown) {
			maybe = true
		} else if maybe && errors.Is(err, outcome.ErrNotApplied) {
			err = fmt.Errorf("%w: an earlier attempt may have reached the old leader: %v", ErrUnknown, err)
		}
		switch {
		case err == nil:
			return res, nil
		case errors.Is(err, outcome.ErrNotApplied) && time.Now().Before(deadline) && ctx.Err() == nil:
		case errors.Is(err, outcome.ErrUnknown) && idempotent(cmd) && ctx.Err() == nil && r.s.Leader() != lead:
		default:
			return res, err
		}
		select {
		case <-ctx.Done():
			return fsm.Result{}, err
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// idempotent reports whether cmd may be proposed again without a second
// effect: sends dedup on (sender, conversation, cmid), cursors only move
// forward, a join adds a member once.
func idempotent(cmd fsm.Command) bool {
	return cmd.Send != nil || cmd.Ack != nil || cmd.Read != nil || cmd.GroupJoin != nil || cmd.UserUpdate != nil
}

// proposeOnce proposes on this node when it leads the shard, else forwards
// to the leader; it returns the leader it tried.
func (r *cpReplica) proposeOnce(ctx context.Context, cmd fsm.Command) (string, fsm.Result, error) {
	lead, err := r.leader(ctx)
	if err != nil {
		return "", fsm.Result{}, err
	}
	if lead == r.n.cfg.ID {
		res, err := r.s.Propose(ctx, cmd)
		return lead, res, err
	}
	data, err := encodeCommand(cmd)
	if err != nil {
		return lead, fsm.Result{}, fmt.Errorf("%w: %v", ErrNotApplied, err)
	}
	// While the call is out, watch the shard's leader: when the majority
	// elects another one (the usual reason a forwarded call hangs is a
	// leader that was cut off), a command that is safe to repeat gives up
	// this call and goes to the new leader, so failover costs an election,
	// not a forward timeout.
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if idempotent(cmd) {
		go func() {
			for {
				select {
				case <-fctx.Done():
					return
				case <-time.After(10 * time.Millisecond):
				}
				if l := r.s.Leader(); l != "" && l != lead {
					cancel()
					return
				}
			}
		}()
	}
	var rep *pb.ProposeReply
	err = r.c.forward(fctx, lead, r.s, func(ctx context.Context, ic pb.InternalClient) error {
		var err error
		rep, err = ic.Propose(ctx, &pb.ProposeRequest{Shard: uint32(r.id), Command: data})
		return err
	})
	if err != nil {
		return lead, fsm.Result{}, err
	}
	res, err := decodeResult(rep.Result)
	return lead, res, err
}

func (r *cpReplica) view(fn func(fsm.Tx) error) error { return r.s.View(fn) }

func (r *cpReplica) version(bucket string) uint64 { return r.s.Version(bucket) }

// linearize is ReadIndex: the leader confirms its lead with a quorum and
// names its commit index; this replica waits until it has applied it.
func (r *cpReplica) linearize(ctx context.Context) error {
	lead, err := r.leader(ctx)
	if err != nil {
		return err
	}
	var index uint64
	if lead == r.n.cfg.ID {
		index, err = r.s.ReadIndex(ctx)
	} else {
		err = r.c.forward(ctx, lead, r.s, func(ctx context.Context, ic pb.InternalClient) error {
			rep, err := ic.ReadIndex(ctx, &pb.ReadIndexRequest{Shard: uint32(r.id)})
			if err == nil {
				index = rep.Index
			}
			return err
		})
	}
	if err != nil {
		return fmt.Errorf("%w: read index of shard %d: %v", ErrNotApplied, r.id, err)
	}
	wctx, cancel := context.WithTimeout(ctx, r.n.cfg.ForwardTimeout)
	defer cancel()
	if err := r.s.WaitApplied(wctx, index); err != nil {
		return fmt.Errorf("%w: %v", ErrNotApplied, err)
	}
	return nil
}

func (r *cpReplica) status() *pb.ShardStatus {
	st := r.s.Status()
	return &pb.ShardStatus{Shard: uint32(r.id), AppliedIndex: st.AppliedIndex, State: st.State, Leader: st.Leader,
		Term: st.Term, CommitIndex: st.CommitIndex, LastIndex: st.LastIndex, Voters: r.s.Voters(), Restores: st.Restores}
}

func (r *cpReplica) close() error { return r.s.Close() }

// transportCredentials are what this node dials another node's gRPC port
// with: the cluster's mutual TLS, or plain TCP without it.
func transportCredentials(c *clustertls.Credentials) grpc.DialOption {
	if c == nil {
		return grpc.WithTransportCredentials(insecure.NewCredentials())
	}
	return grpc.WithTransportCredentials(credentials.NewTLS(c.Client()))
}
