package node

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"mpim/fsm"
	"mpim/internal/ports"
	"mpim/internal/rpcerr"
	pb "mpim/proto/mpimpb"
)

// logWriter routes a node's logs through t.Log.
type logWriter struct{ t *testing.T }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

// startCP starts CP node id in this process, on real sockets, without
// Redis (pushes take the fallback path; membership does not need them).
func startCP(t *testing.T, id string, shards int, peers map[string]string, join string) *Node {
	t.Helper()
	return startCPWith(t, id, shards, peers, join, nil)
}

// startCPWith is startCP with the configuration changed by edit first.
func startCPWith(t *testing.T, id string, shards int, peers map[string]string, join string, edit func(*Config)) *Node {
	t.Helper()
	cfg := DefaultConfig()
	cfg.ID, cfg.DataDir, cfg.Shards = id, t.TempDir(), shards
	cfg.ListenAddr, cfg.HTTPAddr, cfg.RaftListen = "127.0.0.1:0", "", peers[id]
	cfg.Peers, cfg.Join = peers, join
	cfg.Secret = []byte("test-secret-0123456789abcdef")
	cfg.BcryptCost, cfg.NoSync = bcrypt.MinCost, true
	cfg.Logger = slog.New(slog.NewTextHandler(logWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if edit != nil {
		edit(&cfg)
	}
	n, err := Start(cfg)
	if err != nil {
		t.Fatalf("start %s: %v", id, err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// raftAddrs picks a free node-to-node address for each id.
func raftAddrs(t *testing.T, ids ...string) map[string]string {
	t.Helper()
	ps, err := ports.Free(len(ids))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for i, id := range ids {
		out[id] = net.JoinHostPort("127.0.0.1", strconv.Itoa(ps[i]))
	}
	return out
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after 30 s: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func cpShard(n *Node, i int) *cpReplica { return n.shards[i].(*cpReplica) }

// voters lists, per shard, the voters n's replica knows of.
func voters(n *Node) [][]string {
	var out [][]string
	for i := range n.shards {
		v := cpShard(n, i).s.Voters()
		slices.Sort(v)
		out = append(out, v)
	}
	return out
}

// hasUser reports whether n's local replica of shard 0 holds name.
func hasUser(n *Node, name string) (ok bool) {
	n.shards[0].view(func(tx fsm.Tx) error { _, ok = fsm.UserByName(tx, name); return nil })
	return ok
}

func registerOn(t *testing.T, n *Node, name string) {
	t.Helper()
	if _, err := (&userService{n: n}).Register(testContext(t), &pb.RegisterRequest{User: name, Password: "password1"}); err != nil {
		t.Fatalf("register %s through %s: %v", name, n.cfg.ID, err)
	}
}

// TestJoinRemove: a node started with --join is added as a voter to every
// shard of the running cluster, catches up on what was committed before
// it came, and serves writes (forwarded to the leader); removed through
// any member, it leaves every shard, and the cluster commits without it.
func TestJoinRemove(t *testing.T) {
	addrs := raftAddrs(t, "n1", "n2")
	n1 := startCP(t, "n1", 2, map[string]string{"n1": addrs["n1"]}, "")
	waitUntil(t, "n1 leads every shard", func() bool {
		return cpShard(n1, 0).s.IsLeader() && cpShard(n1, 1).s.IsLeader()
	})
	registerOn(t, n1, "alice")

	if _, err := (&adminService{n: n1}).Join(testContext(t), &pb.MemberRequest{Id: "n9"}); code(err) != rpcerr.BadRequest {
		t.Fatalf("a join without the node's address: %v, want bad_request", err)
	}

	n2 := startCP(t, "n2", 2, addrs, n1.GRPCAddr())
	waitUntil(t, "n2 votes in every shard", func() bool { return fmt.Sprint(voters(n1)) == "[[n1 n2] [n1 n2]]" })
	waitUntil(t, "n2 caught up on what was committed before it joined", func() bool { return hasUser(n2, "alice") })
	registerOn(t, n2, "bob") // forwarded to the leader, committed by both
	waitUntil(t, "n1 applied the write made through n2", func() bool { return hasUser(n1, "bob") })

	// Remove through n2 itself: it forwards to the leader of each shard.
	if _, err := (&adminService{n: n2}).Remove(testContext(t), &pb.MemberRequest{Id: "n2"}); err != nil {
		t.Fatalf("remove n2 through n2: %v", err)
	}
	if got := fmt.Sprint(voters(n1)); got != "[[n1] [n1]]" {
		t.Fatalf("after the remove the shards' voters are %s, want [[n1] [n1]]", got)
	}
	registerOn(t, n1, "carol") // a quorum of one again
}

// code is the protocol code of a node's error answer.
func code(err error) rpcerr.Code {
	if err == nil {
		return ""
	}
	c, _, _ := rpcerr.Decode(err)
	return c
}

// TestColocateLeaders: with --leaders colocate every shard's leadership
// follows the leader of shard 0, so that "the leader" names one node —
// also after shard 0's leadership moves.
func TestColocateLeaders(t *testing.T) {
	addrs := raftAddrs(t, "n1", "n2", "n3")
	nodes := map[string]*Node{}
	for _, id := range []string{"n1", "n2", "n3"} {
		nodes[id] = startCP(t, id, 3, addrs, "")
	}
	// colocated returns the node that leads every shard, or nil.
	colocated := func() *Node {
		for _, n := range nodes {
			if cpShard(n, 0).s.IsLeader() && cpShard(n, 1).s.IsLeader() && cpShard(n, 2).s.IsLeader() {
				return n
			}
		}
		return nil
	}
	waitUntil(t, "one node leads every shard", func() bool { return colocated() != nil })
	old := colocated().cfg.ID

	// Elections may have put every leader there by chance: move shard 0's
	// leadership away and watch the others follow.
	to := "n1"
	if old == to {
		to = "n2"
	}
	waitUntil(t, fmt.Sprintf("shard 0's leadership moved from %s to %s", old, to), func() bool {
		if cpShard(nodes[to], 0).s.IsLeader() {
			return true
		}
		if s := cpShard(nodes[old], 0).s; s.IsLeader() {
			s.TransferLeadership(to) // retried until it takes
		}
		return false
	})
	waitUntil(t, fmt.Sprintf("shards 1 and 2 followed shard 0 to %s", to), func() bool {
		n := colocated()
		return n != nil && n.cfg.ID == to
	})
}

// TestSpreadLeavesLeaders: with --leaders spread nothing moves a shard's
// leadership after an election; a shard led by another node than shard
// 0's leader stays there (colocate moves it within a second).
func TestSpreadLeavesLeaders(t *testing.T) {
	addrs := raftAddrs(t, "n1", "n2", "n3")
	nodes := map[string]*Node{}
	for _, id := range []string{"n1", "n2", "n3"} {
		nodes[id] = startCPWith(t, id, 2, addrs, "", func(c *Config) { c.Leaders = "spread" })
	}
	leader := func(shard int) *Node {
		for _, n := range nodes {
			if cpShard(n, shard).s.IsLeader() {
				return n
			}
		}
		return nil
	}
	waitUntil(t, "both shards have a leader", func() bool { return leader(0) != nil && leader(1) != nil })
	// Put shard 1's leadership on a node that does not lead shard 0.
	waitUntil(t, "shard 1 led by another node than shard 0", func() bool {
		l0, l1 := leader(0), leader(1)
		if l0 == nil || l1 == nil {
			return false
		}
		if l0 != l1 {
			return true
		}
		for id := range nodes {
			if id != l0.cfg.ID {
				cpShard(l1, 1).s.TransferLeadership(id) // retried until it takes
				break
			}
		}
		return false
	})
	apart := leader(1).cfg.ID
	// Colocation would move it within its 200 ms tick plus a transfer
	// (TestColocateLeaders); watch for three seconds that nothing does.
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if l0, l1 := leader(0), leader(1); l0 != nil && l1 != nil && l0 == l1 {
			t.Fatalf("with --leaders spread shard 1's leadership moved from %s to shard 0's leader %s", apart, l0.cfg.ID)
		}
	}
}
