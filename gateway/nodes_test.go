package gateway

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"mpim/chaos/proxy"
	"mpim/gateway/wire"
	"mpim/internal/convid"
	"mpim/internal/rpcerr"
	pb "mpim/proto/mpimpb"
)

// testNode is a node as the gateway's node pool sees it: a real gRPC
// server on loopback answering health checks (Admin.Status) and the two
// calls the tests make (Messages.History, a read; Messages.Send, a write),
// counting what it served.
type testNode struct {
	id   string
	addr string
	srv  *grpc.Server
	mu   sync.Mutex
	// served counts the calls answered, by method.
	served map[string]int
	// mode and leads are what its status says: the mode ("cp" when
	// empty) and, of four shards, which it leads.
	mode  string
	leads map[int]bool
}

type testAdmin struct {
	pb.UnimplementedAdminServer
	n *testNode
}

func (a testAdmin) Status(context.Context, *pb.Empty) (*pb.NodeStatus, error) {
	a.n.mu.Lock()
	defer a.n.mu.Unlock()
	st := &pb.NodeStatus{Id: a.n.id, Mode: cmp.Or(a.n.mode, "cp")}
	for i := range 4 {
		state := "Follower"
		if a.n.leads[i] {
			state = "Leader"
		}
		st.Shards = append(st.Shards, &pb.ShardStatus{Shard: uint32(i), State: state})
	}
	return st, nil
}

type testMessages struct {
	pb.UnimplementedMessagesServer
	n *testNode
}

func (m testMessages) History(_ context.Context, req *pb.HistoryRequest) (*pb.HistoryReply, error) {
	m.n.count("history")
	if req.Conv == "g:missing" {
		return nil, rpcerr.Error(rpcerr.NotFound, "no group missing")
	}
	return &pb.HistoryReply{}, nil
}

func (m testMessages) Send(_ context.Context, req *pb.SendRequest) (*pb.SendReply, error) {
	m.n.count("send")
	if req.Group == "g:refused" {
		return nil, rpcerr.Error(rpcerr.Unavailable, "no quorum; not applied")
	}
	return &pb.SendReply{Message: &pb.Message{}}, nil
}

func (n *testNode) count(method string) {
	n.mu.Lock()
	n.served[method]++
	n.mu.Unlock()
}

func (n *testNode) servedOf(method string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.served[method]
}

// startTestNode serves a test node on a free loopback port until stop (or
// the test's end).
func startTestNode(t *testing.T, id string) *testNode {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n := &testNode{id: id, addr: ln.Addr().String(), srv: grpc.NewServer(), served: map[string]int{}}
	pb.RegisterAdminServer(n.srv, testAdmin{n: n})
	pb.RegisterMessagesServer(n.srv, testMessages{n: n})
	done := make(chan struct{})
	go func() { defer close(done); n.srv.Serve(ln) }()
	t.Cleanup(func() { n.stop(); <-done })
	return n
}

// stop kills the node: its port refuses connections from now on.
func (n *testNode) stop() { n.srv.Stop() }

// testPool is a node pool over addrs with the gateway's real gRPC clients,
// health checks run by hand (check) rather than by watch, so that a test
// decides when the pool learns of a fault.
func testPool(t *testing.T, addrs ...string) *nodePool {
	t.Helper()
	// A health check waits interval+200ms: 1s, as long as a call.
	p, err := newNodePool(addrs, 800*time.Millisecond, nil, slog.New(slog.NewTextHandler(t.Output(), nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.close)
	return p
}

// check health-checks every node of p once, as watch does each interval.
func check(p *nodePool) {
	for _, n := range p.nodes {
		p.check(context.Background(), n)
	}
}

// callTimeout bounds each call of these tests, as Config.CallTimeout: long
// enough that a loaded machine never makes a healthy node look hung.
const callTimeout = time.Second

// attempt runs one call of kind through p and reports the nodes it was
// tried on, in order, and its error.
func attempt(p *nodePool, kind callKind, conv string) (tried []string, werr *wire.Error) {
	return attemptVia(p, kind, nil, conv)
}

// attemptVia is attempt trying first first (p.callVia).
func attemptVia(p *nodePool, kind callKind, first *nodeConn, conv string) (tried []string, werr *wire.Error) {
	var mu sync.Mutex
	_, werr = p.callVia(context.Background(), callTimeout, kind, first, func(ctx context.Context, n *nodeConn) error {
		mu.Lock()
		tried = append(tried, n.addr)
		mu.Unlock()
		var err error
		if kind == readCall {
			_, err = n.messages.History(ctx, &pb.HistoryRequest{Conv: conv})
		} else {
			_, err = n.messages.Send(ctx, &pb.SendRequest{Group: conv})
		}
		return err
	})
	return tried, werr
}

// names maps node addresses to names for failure messages.
func names(addrs []string, byAddr map[string]string) string {
	var out []string
	for _, a := range addrs {
		out = append(out, byAddr[a])
	}
	return "[" + strings.Join(out, " ") + "]"
}

// TestNodePoolPrefersItsOwnNode: with every node healthy, every call goes
// to the first node of the list (the gateway's own); an answer from the
// node, an error included, is final: it is not retried elsewhere.
func TestNodePoolPrefersItsOwnNode(t *testing.T) {
	n1, n2 := startTestNode(t, "n1"), startTestNode(t, "n2")
	p := testPool(t, n1.addr, n2.addr)
	check(p)
	byAddr := map[string]string{n1.addr: "n1", n2.addr: "n2"}
	for _, kind := range []callKind{readCall, idempotentWrite, write} {
		tried, werr := attempt(p, kind, "g:team")
		if werr != nil || !slices.Equal(tried, []string{n1.addr}) {
			t.Fatalf("kind %d: tried %s, err %v; want n1 alone, no error", kind, names(tried, byAddr), werr)
		}
	}
	tried, werr := attempt(p, readCall, "g:missing")
	if werr == nil || werr.Code != wire.NotFound || len(tried) != 1 {
		t.Fatalf("a node's not_found: tried %s, err %v; want not_found from n1 alone", names(tried, byAddr), werr)
	}
}

// TestNodePoolFailoverOnRefusal: a node that is down refuses connections.
// A read moves on to the next node; the refused call marks the node
// unhealthy at once, so that every later call, writes included, goes to
// the next node first; the health check agrees and signals the change
// (the gateway then moves its push stream). With every node down the
// answer is unavailable, and says that nothing was applied.
func TestNodePoolFailoverOnRefusal(t *testing.T) {
	n1, n2 := startTestNode(t, "n1"), startTestNode(t, "n2")
	p := testPool(t, n1.addr, n2.addr)
	check(p)
	byAddr := map[string]string{n1.addr: "n1", n2.addr: "n2"}
	n1.stop()
	tried, werr := attempt(p, readCall, "g:team")
	if werr != nil || !slices.Equal(tried, []string{n1.addr, n2.addr}) {
		t.Fatalf("a read with n1 down: tried %s, err %v; want n1 (refused) then n2", names(tried, byAddr), werr)
	}
	for _, kind := range []callKind{readCall, idempotentWrite, write} {
		tried, werr := attempt(p, kind, "g:team")
		if werr != nil || !slices.Equal(tried, []string{n2.addr}) {
			t.Fatalf("kind %d after n1 refused: tried %s, err %v; want n2 alone", kind, names(tried, byAddr), werr)
		}
	}
	check(p)
	if p.preferred() != p.nodes[1] {
		t.Fatalf("after a failed health check the preferred node is %s, want n2", byAddr[p.preferred().addr])
	}
	select {
	case <-p.changed:
	default:
		t.Fatal("the health flip did not signal changed (the push stream would stay on the dead node)")
	}
	n2.stop()
	_, werr = attempt(p, readCall, "g:team")
	if werr == nil || werr.Code != wire.Unavailable || !strings.Contains(werr.Message, "nothing was applied") {
		t.Fatalf("a read with every node down: %v; want unavailable, nothing applied", werr)
	}
}

// TestNodePoolWriteToJustDeadNode pins down a conservative answer. A
// node that has just died leaves the gateway's gRPC connection to it
// idle, not failed: the next call dials, the dial is refused, and gRPC
// reports that as Unavailable, exactly like a connection that broke
// mid-call. So the first non-idempotent write after the death (before a
// health check or another call has noticed it) is answered timeout, the
// outcome unknown, and is not tried on n2, although nothing was sent.
// That is safe (a write is never applied twice) but pessimistic; a pool
// that told a refused dial from a broken call could fail over instead, and
// this test would then change.
func TestNodePoolWriteToJustDeadNode(t *testing.T) {
	n1, n2 := startTestNode(t, "n1"), startTestNode(t, "n2")
	p := testPool(t, n1.addr, n2.addr)
	check(p)
	n1.stop()
	tried, werr := attempt(p, write, "g:team")
	if werr == nil || werr.Code != wire.Timeout || !slices.Equal(tried, []string{n1.addr}) || n2.servedOf("send") != 0 {
		t.Fatalf("the first write after n1 died: tried %v, err %v; want timeout from n1 alone", tried, werr)
	}
}

// TestNodePoolFailoverOnPartition: a partition is not a refusal. The
// link to n1 is held by the lab's fault proxy (a blackhole: nothing is
// refused or reset, bytes just stop), so a call to n1 hangs until its
// timeout. A read then fails over to n2; a write that may have reached n1
// is not repeated anywhere and answers timeout (outcome unknown); an
// idempotent write fails over. (The held write is not lost either: the
// proxy keeps its bytes, as TCP would, and n1 may apply it after heal,
// long after the client was told "timeout": which is why the answer is
// not "failed".) The call that timed out marks n1 unhealthy
// at once, so later calls do not wait for it; the health check agrees;
// after heal it marks n1 healthy and the gateway fails back to it.
func TestNodePoolFailoverOnPartition(t *testing.T) {
	p, faults, link, n2, byAddr := poolBehindFaults(t)
	if tried, werr := attempt(p, readCall, "g:team"); werr != nil || tried[0] != link.Addr() {
		t.Fatalf("before the partition: tried %s, err %v; want n1", names(tried, byAddr), werr)
	}

	faults.Hold("g1", "n1")
	faults.Hold("n1", "g1")
	tried, werr := attempt(p, readCall, "g:team")
	if werr != nil || !slices.Equal(tried, []string{link.Addr(), n2.addr}) {
		t.Fatalf("a read across the partition: tried %s, err %v; want n1 (timeout) then n2", names(tried, byAddr), werr)
	}
	if tried, _ := attempt(p, readCall, "g:team"); !slices.Equal(tried, []string{n2.addr}) {
		t.Fatalf("the next read tried %s; want n2 alone (n1 timed out just now)", names(tried, byAddr))
	}

	// Until a health check or a call notices, n1 is still first in line.
	p.setHealthy(p.nodes[0], true, nil)
	sends := n2.servedOf("send")
	tried, werr = attempt(p, write, "g:team")
	if werr == nil || werr.Code != wire.Timeout || !slices.Equal(tried, []string{link.Addr()}) || n2.servedOf("send") != sends {
		t.Fatalf("a write across the partition: tried %s, err %v; want timeout from n1 alone, never repeated on n2", names(tried, byAddr), werr)
	}
	p.setHealthy(p.nodes[0], true, nil)
	tried, werr = attempt(p, idempotentWrite, "g:team")
	if werr != nil || !slices.Equal(tried, []string{link.Addr(), n2.addr}) {
		t.Fatalf("an idempotent write across the partition: tried %s, err %v; want n1 (timeout) then n2", names(tried, byAddr), werr)
	}

	// n2 refuses (not applied), but n1 may have applied it: unknown.
	p.setHealthy(p.nodes[0], true, nil)
	tried, werr = attempt(p, idempotentWrite, "g:refused")
	if werr == nil || werr.Code != wire.Timeout || !slices.Equal(tried, []string{link.Addr(), n2.addr}) {
		t.Fatalf("an idempotent write timed out on n1 and refused by n2: tried %s, err %v; want timeout (n1 may have applied it)", names(tried, byAddr), werr)
	}
	if tried, werr = attempt(p, idempotentWrite, "g:refused"); werr == nil || werr.Code != wire.Unavailable || tried[0] != n2.addr {
		t.Fatalf("an idempotent write refused by n2 alone: tried %s, err %v; want unavailable (nothing applied)", names(tried, byAddr), werr)
	}

	p.setHealthy(p.nodes[0], true, nil)
	check(p)
	if p.preferred() != p.nodes[1] {
		t.Fatal("the health check passed a node behind a partition")
	}

	faults.Heal()
	check(p)
	if p.preferred() != p.nodes[0] {
		t.Fatal("after heal the health check did not restore n1: no failback")
	}
	if tried, werr := attempt(p, readCall, "g:team"); werr != nil || !slices.Equal(tried, []string{link.Addr()}) {
		t.Fatalf("after heal: tried %s, err %v; want n1 again", names(tried, byAddr), werr)
	}
}

// poolBehindFaults is a checked pool over n1, reached through a link of
// the fault layer (g1→n1), and n2, reached directly; byAddr names them.
func poolBehindFaults(t *testing.T) (p *nodePool, faults *proxy.Net, link *proxy.Link, n2 *testNode, byAddr map[string]string) {
	t.Helper()
	n1 := startTestNode(t, "n1")
	n2 = startTestNode(t, "n2")
	faults = proxy.NewNet(slog.New(slog.NewTextHandler(t.Output(), nil)))
	t.Cleanup(func() { faults.Close() })
	link, err := faults.Link("g1", "n1", n1.addr)
	if err != nil {
		t.Fatal(err)
	}
	p = testPool(t, link.Addr(), n2.addr)
	byAddr = map[string]string{link.Addr(): "n1", n2.addr: "n2"}
	check(p)
	return p, faults, link, n2, byAddr
}

// TestNodePoolLeaderFirst: a CP write goes first to the node whose last
// status said it leads the write's shard, while that node is healthy; a
// node that no longer answers, or an AP node (no leaders), is not chosen.
// A session learns a target's shard from a node's send trailer.
func TestNodePoolLeaderFirst(t *testing.T) {
	n1, n2, n3 := startTestNode(t, "n1"), startTestNode(t, "n2"), startTestNode(t, "n3")
	n2.leads = map[int]bool{1: true}
	n3.mode, n3.leads = "ap", map[int]bool{2: true}
	p := testPool(t, n1.addr, n2.addr, n3.addr)
	check(p)
	byAddr := map[string]string{n1.addr: "n1", n2.addr: "n2", n3.addr: "n3"}
	if l := p.leaderOf(1); l == nil || l.addr != n2.addr {
		t.Fatalf("leader of shard 1: %v, want n2", l)
	}
	for _, sh := range []int{0, 2, 3, 4, -1} {
		if l := p.leaderOf(sh); l != nil {
			t.Fatalf("leader of shard %d: %s, want none (n3 is an AP node)", sh, byAddr[l.addr])
		}
	}
	tried, werr := attemptVia(p, idempotentWrite, p.leaderOf(1), "g:team")
	if werr != nil || !slices.Equal(tried, []string{n2.addr}) {
		t.Fatalf("a write for shard 1 tried %s (err %v), want n2 alone", names(tried, byAddr), werr)
	}
	if n2.servedOf("send") != 1 || n1.servedOf("send") != 0 {
		t.Fatalf("sends served: n1 %d, n2 %d; want the leader's 1", n1.servedOf("send"), n2.servedOf("send"))
	}
	n2.stop()
	check(p)
	if l := p.leaderOf(1); l != nil {
		t.Fatalf("a stopped leader is still chosen: %s", byAddr[l.addr])
	}
	tried, werr = attemptVia(p, idempotentWrite, p.leaderOf(1), "g:team")
	if werr != nil || len(tried) == 0 || tried[0] != n1.addr {
		t.Fatalf("with the leader down a write tried %s (err %v), want the preferred n1 first", names(tried, byAddr), werr)
	}

	s := &session{}
	if _, ok := s.shardOf("@bob"); ok {
		t.Fatal("a new session knows a shard")
	}
	s.learnShard("@bob", metadata.Pairs(convid.ShardTrailer, "3"))
	s.learnShard("@carol", metadata.Pairs(convid.ShardTrailer, "x"))
	s.learnShard("#team", metadata.MD{})
	if sh, ok := s.shardOf("@bob"); !ok || sh != 3 {
		t.Fatalf("@bob: shard %d %v, want 3", sh, ok)
	}
	for _, target := range []string{"@carol", "#team"} {
		if sh, ok := s.shardOf(target); ok {
			t.Fatalf("%s: shard %d learned from a bad or missing trailer", target, sh)
		}
	}
	for i := range maxSendTargets + 1 {
		s.learnShard(fmt.Sprint("@u", i), metadata.Pairs(convid.ShardTrailer, "1"))
	}
	if len(s.shards) > maxSendTargets {
		t.Fatalf("the session keeps %d targets, more than %d", len(s.shards), maxSendTargets)
	}
}

// TestNodePoolLeavesANodeThatTurnsUnhealthy: a call that may be repeated
// elsewhere stops waiting for a node cut off mid-call as soon as a health
// check fails, and goes to the next node, instead of holding the client
// for the whole call timeout (a CP write sent straight to a leader just
// cut off: `mpim bench --failover` measured 5 s, the call timeout, before
// this). A write that may not be repeated keeps waiting.
func TestNodePoolLeavesANodeThatTurnsUnhealthy(t *testing.T) {
	p, faults, link, n2, byAddr := poolBehindFaults(t)
	faults.Hold("g1", "n1")
	faults.Hold("n1", "g1")

	call := func(kind callKind) (chan []string, chan *wire.Error) {
		tried, errs := make(chan []string, 1), make(chan *wire.Error, 1)
		go func() {
			var mu sync.Mutex
			var seen []string
			_, werr := p.callVia(context.Background(), time.Hour, kind, p.nodes[0], func(ctx context.Context, n *nodeConn) error {
				mu.Lock()
				seen = append(seen, n.addr)
				mu.Unlock()
				_, err := n.messages.Send(ctx, &pb.SendRequest{Group: "g:team"})
				return err
			})
			mu.Lock()
			tried <- seen
			mu.Unlock()
			errs <- werr
		}()
		return tried, errs
	}
	tried, errs := call(idempotentWrite)
	time.Sleep(100 * time.Millisecond) // the send is held on its way to n1
	check(p)                           // n1's check times out: n1 unhealthy
	select {
	case got := <-tried:
		if werr := <-errs; werr != nil || !slices.Equal(got, []string{link.Addr(), n2.addr}) {
			t.Fatalf("an idempotent write to a node cut off: tried %s, err %v; want n1, then n2 once n1's check failed", names(got, byAddr), werr)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("an idempotent write still waits for a node whose health check failed (call timeout: an hour)")
	}

	p.setHealthy(p.nodes[0], true, nil)
	_, errs = call(write)
	time.Sleep(100 * time.Millisecond)
	check(p)
	select {
	case werr := <-errs:
		t.Fatalf("a write that may not be repeated gave up on its node when a check failed: %v", werr)
	case <-time.After(500 * time.Millisecond):
	}
	faults.Heal() // the held write reaches n1 and returns
	if werr := <-errs; werr != nil {
		t.Fatalf("the held write after heal: %v", werr)
	}
}
