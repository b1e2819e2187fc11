// Package node is one server process of the chat system: the user,
// message, group and presence services over gRPC, the shards that hold
// state, the Redis cache and fan-out, and the fallback push streams to
// gateways.
package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"mpim/fsm"
	"mpim/internal/profiling"
	"mpim/internal/rpcerr"
	"mpim/internal/tracing"
	"mpim/node/ap"
	pb "mpim/proto/mpimpb"
)

// Node is a running node.
type Node struct {
	cfg     Config
	log     *slog.Logger
	shards  []replica
	cluster *cluster // node-to-node listener, peers, forwarding
	ap      *ap.Replicator
	locals  []*localShard // AP mode: the shards the replicator applies
	rdb     *redis.Client
	metrics *metrics
	fanout  *fanout
	routes  *routes
	ids     *idGen
	names   usersCache[uint64, string]   // uid → current name, for wire conversation ids
	users   usersCache[string, fsm.User] // name → user record, for lookupUser
	dms     convSet                      // DMs seen to exist, for roomForNewDM
	// created counts group creations per user (Limits.GroupsPerMinute).
	created creations
	// misses bounds lookupUser's catch-ups for unknown names; waiters
	// the history requests waiting in awaitSeq.
	misses  rate
	waiters chan struct{}
	// dummy is dummyHash's hash.
	dummyOnce sync.Once
	dummy     []byte

	grpcLn  net.Listener
	grpcSrv *grpc.Server
	health  *health.Server
	httpLn  net.Listener
	httpSrv *http.Server

	stopOnce sync.Once
	stop     chan struct{}
	wg       sync.WaitGroup
}

// streamWorkers is how many goroutines serve the node's gRPC streams.
const streamWorkers = 64

// Start opens the node's state and starts serving.
func Start(cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("node", cfg.ID)
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("node: data dir: %w", err)
	}
	if err := cfg.FSM.Validate(); err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, log: log, stop: make(chan struct{}), ids: newIDGen(cfg.ID),
		misses: rate{per: missCatchUps}, waiters: make(chan struct{}, awaitWaiters)}
	n.metrics = newMetrics(cfg.ID)
	if cfg.RaftMetrics && cfg.Mode == "cp" {
		if err := exportRaftMetrics(n.metrics.reg); err != nil {
			log.Warn("hashicorp/raft's own metrics not exported", "err", err)
		}
	}
	if cfg.RedisAddr != "" {
		n.rdb = redis.NewClient(&redis.Options{
			Addr: cfg.RedisAddr, Password: cfg.RedisPassword, DialTimeout: cfg.RedisTimeout, ReadTimeout: cfg.RedisTimeout,
			WriteTimeout: cfg.RedisTimeout, MaxRetries: -1, PoolTimeout: cfg.RedisTimeout,
		})
	}
	n.fanout = newFanout(n.rdb, cfg.ID, n.metrics, log)
	n.fanout.spans = cfg.Spans
	n.routes = newRoutes(n.rdb, cfg.RouteTTL, n.fanout, log)
	n.fanout.onRecover = n.routes.restore
	n.fanout.refresh = n.currentMessage
	var err error
	if n.cluster, err = startCluster(n); err != nil {
		n.closeShards()
		return nil, err
	}
	n.metrics.watchShards(n.shards)

	if n.grpcLn, err = net.Listen("tcp", cfg.ListenAddr); err != nil {
		n.closeShards()
		return nil, fmt.Errorf("node: listen %s: %w", cfg.ListenAddr, err)
	}
	// Stream workers keep their grown stacks between requests; a
	// goroutine per request grew a fresh one each time (runtime.newstack
	// in the profiles). Past streamWorkers at once, gRPC starts goroutines
	// again.
	opts := []grpc.ServerOption{grpc.UnaryInterceptor(n.countOps), grpc.NumStreamWorkers(streamWorkers)}
	if cfg.TLS != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(cfg.TLS.Server())))
	}
	n.grpcSrv = grpc.NewServer(opts...)
	n.health = health.NewServer()
	healthpb.RegisterHealthServer(n.grpcSrv, n.health)
	pb.RegisterUsersServer(n.grpcSrv, &userService{n: n})
	pb.RegisterMessagesServer(n.grpcSrv, &messageService{n: n})
	pb.RegisterGroupsServer(n.grpcSrv, &groupService{n: n})
	pb.RegisterPresenceServer(n.grpcSrv, &presenceService{n: n})
	pb.RegisterGatewaysServer(n.grpcSrv, &gatewayService{n: n})
	pb.RegisterAdminServer(n.grpcSrv, &adminService{n: n})
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if err := n.grpcSrv.Serve(n.grpcLn); err != nil {
			log.Error("grpc serve", "err", err)
		}
	}()
	if cfg.HTTPAddr != "" {
		if n.httpLn, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
			n.Close()
			return nil, fmt.Errorf("node: listen %s: %w", cfg.HTTPAddr, err)
		}
		n.httpSrv = &http.Server{Handler: n.httpHandler(), ReadHeaderTimeout: 5 * time.Second}
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			if err := n.httpSrv.Serve(n.httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("http serve", "err", err)
			}
		}()
	}
	if n.rdb != nil {
		n.wg.Add(1)
		go func() { defer n.wg.Done(); n.fanout.watchRedis(n.stop) }()
	} else {
		n.fanout.setDegraded(true)
		log.Warn("no redis configured: pushes take the fallback path only")
	}
	n.fanout.start()
	return n, nil
}

// GRPCAddr is the address gateways dial.
func (n *Node) GRPCAddr() string { return n.grpcLn.Addr().String() }

// HTTPAddr is the metrics/admin address, or "" when disabled.
func (n *Node) HTTPAddr() string {
	if n.httpLn == nil {
		return ""
	}
	return n.httpLn.Addr().String()
}

// Close stops serving and closes the state files.
func (n *Node) Close() error {
	n.stopOnce.Do(func() {
		close(n.stop)
		n.fanout.closeStreams()
		if n.grpcSrv != nil {
			done := make(chan struct{})
			go func() { n.grpcSrv.GracefulStop(); close(done) }()
			select {
			case <-done:
			case <-time.After(2 * time.Second):
				n.grpcSrv.Stop()
			}
		}
		if n.httpSrv != nil {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			n.httpSrv.Shutdown(ctx)
			cancel()
		}
		// No handler runs any more: deliver the pushes they queued.
		n.fanout.stop()
		n.wg.Wait()
		if n.rdb != nil {
			n.rdb.Close()
		}
		n.closeShards()
	})
	return nil
}

func (n *Node) closeShards() {
	if n.cluster != nil {
		n.cluster.stopBackground()
	}
	if n.ap != nil {
		n.ap.Close()
	}
	for i, s := range n.shards {
		if err := s.close(); err != nil {
			n.log.Error("close shard", "shard", i, "err", err)
		}
	}
	n.shards = nil
	if n.cluster != nil {
		n.cluster.close()
	}
}

func (n *Node) httpHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(n.metrics.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.Handle("/debug/spans", n.cfg.Spans)
	mux.HandleFunc("/admin/status", n.serveStatus)
	mux.HandleFunc("/admin/digests", n.serveDigests)
	if n.cfg.Pprof {
		profiling.Serve(mux)
	}
	return mux
}

// countOps counts every unary call by method and protocol result.
func (n *Node) countOps(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	n.currentCaller(req)
	if n.cfg.Spans.Tracing() {
		ctx = tracing.FromIncoming(ctx)
	}
	began := time.Now()
	resp, err := handler(ctx, req)
	n.metrics.obs.observeOp(info.FullMethod, time.Since(began), err)
	code := "ok"
	if err != nil {
		c, _, terr := rpcerr.Decode(err)
		code = string(c)
		if terr != nil {
			code = "transport"
		}
	}
	n.metrics.ops.WithLabelValues(path.Base(info.FullMethod), code).Inc()
	return resp, err
}

// currentCaller names a request's caller by its uid's current name. In AP
// a registration conflict renames the account that lost the name, and a
// token minted before — which a gateway verifies without a node — still
// carries the old name: without this, that token's sessions would post
// as the account that won it. (CP never renames.)
func (n *Node) currentCaller(req any) {
	r, ok := req.(interface{ GetCaller() *pb.Caller })
	if !ok || n.ap == nil {
		return
	}
	if c := r.GetCaller(); c != nil && c.Uid != 0 {
		if name, ok := n.userName(c.Uid); ok {
			c.User = name
		}
	}
}

// metaShard holds users.
func (n *Node) metaShard() replica { return n.shards[0] }

// convShard holds a conversation (and, for a group, the group itself).
func (n *Node) convShard(conv string) replica { return n.shards[ShardOf(conv, len(n.shards))] }

// applied runs on every replica for every committed batch: pushes for
// gateways whose Redis subscription is broken go out on their streams from
// every node, so that a gateway attached to any node gets them.
func (n *Node) applied(results []fsm.Result) {
	for _, r := range results {
		if r.Message != nil && !r.Dup && r.Err == nil {
			n.fanout.stream(&pb.Push{Event: &pb.Push_Message{Message: n.toPB(r.Message)}, Origin: n.cfg.ID}, r.Members, false)
		}
	}
}
