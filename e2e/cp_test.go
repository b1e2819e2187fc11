package e2e

import (
	"context"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"mpim/chaos/netns"
	"mpim/client"
	"mpim/internal/clustertls"
	"mpim/internal/ports"
	"mpim/internal/testcluster"
	"mpim/internal/testenv"
	"mpim/lab"
	pb "mpim/proto/mpimpb"
)

// admin is a direct (unproxied) admin client of a node, with the lab's
// cluster credentials (members accept nothing else).
func (c *cluster) admin(node string) pb.AdminClient {
	c.t.Helper()
	creds, err := clustertls.Load(c.CredentialsDir())
	if err != nil {
		c.t.Fatal(err)
	}
	cc, err := grpc.NewClient(c.member(node).GRPC, grpc.WithTransportCredentials(credentials.NewTLS(creds.Client())))
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { cc.Close() })
	return pb.NewAdminClient(cc)
}

// waitConverged waits until every node's replica holds the same digest for
// every conversation, and returns one node's view.
func (c *cluster) waitConverged(d time.Duration, nodes ...string) map[string]uint64 {
	c.t.Helper()
	var counts map[string]uint64
	eventually(c.t, d, "every replica converges", func() bool {
		reps := c.Replicas(context.Background())
		var ref string
		counts = map[string]uint64{}
		for i, n := range nodes {
			r := reps[n]
			if r.Error != "" {
				return false
			}
			for conv, cr := range r.Convs {
				counts[conv] = cr.Count
			}
			key := fmt.Sprint(r.Convs)
			if i == 0 {
				ref = key
			} else if key != ref {
				return false
			}
		}
		return true
	})
	return counts
}

// sendLog records what clients were told about their sends.
type sendLog struct {
	mu      sync.Mutex
	ok      map[string]client.SendResult // cmid -> reply
	refused map[string]bool              // answered unavailable: must never be applied
	unknown map[string]bool              // answered timeout
}

func newSendLog() *sendLog {
	return &sendLog{ok: map[string]client.SendResult{}, refused: map[string]bool{}, unknown: map[string]bool{}}
}

func (l *sendLog) record(cmid string, r client.SendResult, err error) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	code := client.ErrorCode(err)
	switch {
	case err == nil:
		l.ok[cmid] = r
		return "ok"
	case code == "unavailable":
		l.refused[cmid] = true
	case code == "timeout":
		l.unknown[cmid] = true
	}
	return code
}

// history reads conv through gateway gw's node (local read).
func (c *cluster) history(conn *client.Conn, conv, read string) []client.Message {
	c.t.Helper()
	h, err := conn.History(ctxFor(c.t, 10*time.Second), client.HistoryArgs{Conv: conv, Limit: 1000, Read: read})
	if err != nil {
		c.t.Fatalf("history %s (%s): %v", conv, read, err)
	}
	return h.Messages
}

// checkExactlyOnce: every acknowledged send is present exactly once, in
// the order of its seq, and no send refused as unavailable is present.
func checkExactlyOnce(t *testing.T, who string, msgs []client.Message, log *sendLog) {
	t.Helper()
	seen := map[string]int{}
	for i, m := range msgs {
		if m.Seq != uint64(i+1) {
			t.Fatalf("%s: position %d holds seq %d: seqs are not dense", who, i+1, m.Seq)
		}
		seen[m.Cmid]++
		if seen[m.Cmid] > 1 {
			t.Fatalf("%s: cmid %s appears twice", who, m.Cmid)
		}
		if log.refused[m.Cmid] {
			t.Fatalf("%s: cmid %s was answered unavailable (guaranteed not applied) yet is present", who, m.Cmid)
		}
		if r, ok := log.ok[m.Cmid]; ok && r.Seq != m.Seq {
			t.Fatalf("%s: cmid %s acknowledged at seq %d but sits at seq %d", who, m.Cmid, r.Seq, m.Seq)
		}
	}
	for cmid := range log.ok {
		if seen[cmid] != 1 {
			t.Fatalf("%s: acknowledged cmid %s is missing", who, cmid)
		}
	}
}

// TestCPIsolateNode: with one of three nodes cut off, its clients are
// refused (unavailable; timeout only for sends begun within the election
// window) while the majority keeps working; after heal the node catches up
// and every replica holds every acknowledged message exactly once, in one
// order, and no refused one.
func TestCPIsolateNode(t *testing.T) { cpIsolateNode(t, lab.NetProxy) }

// TestCPIsolateNodeNetns is TestCPIsolateNode on the real-host backend:
// every member in its own network namespace, the cut made of nftables
// drops, so TCP's own retransmissions and timeouts are what the members
// see.
func TestCPIsolateNodeNetns(t *testing.T) {
	testenv.Need(t, testenv.NetNS, netns.Probe().Err())
	cpIsolateNode(t, lab.NetNS)
}

func cpIsolateNode(t *testing.T, backend string) {
	c := startLab(t, labOpts{nodes: 3, gateways: 3, gatewayArgs: []string{"--call-timeout", "3s"}, net: backend})
	ctx := ctxFor(t, 120*time.Second)
	for _, u := range []string{"alice", "bob", "carol"} {
		c.register("g1", u)
	}
	alice, bob, carol := c.login("g1", "alice", "d"), c.login("g2", "bob", "d"), c.login("g3", "carol", "d")
	log := newSendLog()
	send := func(conn *client.Conn, cmid string) string {
		r, err := conn.Send(ctx, client.SendArgs{Group: "room", Text: cmid, Cmid: cmid})
		return log.record(cmid, r, err)
	}
	if _, err := alice.GroupCreate(ctx, "room", []string{"bob", "carol"}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if code := send(carol, fmt.Sprint("pre-", i)); code != "ok" {
			t.Fatalf("send before the partition: %s", code)
		}
	}

	// Cut off a node that does not lead shard 0's... whichever it is: n3.
	c.apply("partition isolate:n3")
	start := time.Now()
	// Send at least 8 times, and on until one send is refused promptly
	// after the election window (2s) or 20s pass: a count alone may end
	// before the window does when refusals are fast.
	var refusedFast bool
	for i := 0; i < 8 || (!refusedFast && time.Since(start) < 20*time.Second); i++ {
		begin := time.Now()
		code := send(carol, fmt.Sprint("minority-", i))
		took := time.Since(begin)
		t.Logf("minority send %d after %v: %s in %v", i, time.Since(start).Round(time.Millisecond), code, took.Round(time.Millisecond))
		switch code {
		case "unavailable":
			if time.Since(start) > 2*time.Second && took < 2500*time.Millisecond {
				refusedFast = true
			}
		case "timeout":
			// A send begun in the election window (2 s) may have gone to
			// the old leader — forwarded by n3, or sent straight there by
			// the gateway before its health check saw the cut — and its
			// outcome is unknown; one begun after it may not.
			if began := begin.Sub(start); began > 2500*time.Millisecond {
				t.Fatalf("minority send begun %v into the partition answered timeout: only the election window may give timeout", began)
			}
		default:
			t.Fatalf("a send on the side without a quorum got %q", code)
		}
	}
	if !refusedFast {
		t.Fatal("after the election window the minority was not refused promptly (unavailable within 2.5s)")
	}
	for i := 0; i < 20; i++ {
		for _, conn := range []*client.Conn{alice, bob} {
			if code := send(conn, fmt.Sprintf("majority-%p-%d", conn, i)); code != "ok" {
				t.Fatalf("majority send during the partition: %s", code)
			}
		}
	}
	// A linearizable read on the cut-off side is refused; a local one is
	// served, stale.
	if _, err := carol.History(ctx, client.HistoryArgs{Conv: "g:room", Limit: 1000}); client.ErrorCode(err) != "unavailable" {
		t.Fatalf("linearizable read on the minority: %v, want unavailable", err)
	}
	stale := c.history(carol, "g:room", "local")
	if len(stale) >= 5+40 {
		t.Fatalf("a local read on the cut-off replica shows %d messages: it should be stale (the majority wrote 40 more)", len(stale))
	}

	c.apply("heal")
	c.waitConverged(15*time.Second, "n1", "n2", "n3")
	for name, conn := range map[string]*client.Conn{"g1/n1": alice, "g2/n2": bob, "g3/n3": carol} {
		checkExactlyOnce(t, name, c.history(conn, "g:room", "local"), log)
	}
}

// TestCPIsolateLeader: the leader is cut off; the majority elects a new
// leader and acknowledges writes; the old leader steps down and stops
// acknowledging; nothing acknowledged is lost.
func TestCPIsolateLeader(t *testing.T) {
	c := startLab(t, labOpts{nodes: 3, gateways: 3, gatewayArgs: []string{"--call-timeout", "3s"}})
	ctx := ctxFor(t, 120*time.Second)
	for _, u := range []string{"alice", "bob"} {
		c.register("g1", u)
	}
	old := c.colocatedLeader()
	oldGW := "g" + strings.TrimPrefix(old, "n")
	newSide := map[string]string{"n1": "g2", "n2": "g3", "n3": "g1"}[old]
	onOld, onNew := c.login(oldGW, "alice", "d"), c.login(newSide, "bob", "d")
	log := newSendLog()
	send := func(conn *client.Conn, cmid string) string {
		r, err := conn.Send(ctx, client.SendArgs{To: map[*client.Conn]string{onOld: "bob", onNew: "alice"}[conn], Text: cmid, Cmid: cmid})
		return log.record(cmid, r, err)
	}
	for i := 0; i < 5; i++ {
		if code := send(onOld, fmt.Sprint("pre-", i)); code != "ok" {
			t.Fatal(code)
		}
	}
	c.apply("partition isolate:" + old)
	cut := time.Now()
	var failover time.Duration
	for i := 0; failover == 0; i++ {
		if time.Since(cut) > 10*time.Second {
			t.Fatal("the majority acknowledged no write within 10s of cutting the leader off")
		}
		if send(onNew, fmt.Sprint("new-", i)) == "ok" {
			failover = time.Since(cut)
		}
	}
	t.Logf("failover: first acknowledged write on the majority %v after the leader was cut off", failover.Round(time.Millisecond))
	eventually(t, 5*time.Second, "the old leader steps down", func() bool {
		st, err := c.admin(old).Status(ctx, &pb.Empty{})
		return err == nil && st.Shards[0].State != "Leader"
	})
	for i := 0; i < 5; i++ {
		if code := send(onOld, fmt.Sprint("old-", i)); code == "ok" {
			t.Fatalf("the cut-off old leader's side acknowledged a write after stepping down")
		}
	}
	for i := 0; i < 10; i++ {
		if code := send(onNew, fmt.Sprint("more-", i)); code != "ok" {
			t.Fatalf("majority send: %s", code)
		}
	}
	c.apply("heal")
	c.waitConverged(15*time.Second, "n1", "n2", "n3")
	checkExactlyOnce(t, "after heal", c.history(onNew, "dm:alice:bob", "linearizable"), log)
}

// colocatedLeader waits until one node leads every shard (the lab moves
// leaderships after each election, asynchronously) and returns it.
func (c *cluster) colocatedLeader() string {
	c.t.Helper()
	var lead string
	eventually(c.t, 15*time.Second, "one node leads every shard", func() bool {
		lead = ""
		led := map[int]bool{}
		shards := map[int]bool{}
		for name, ns := range c.Shards(context.Background()) {
			for _, s := range ns.Shards {
				shards[s.Shard] = true
				if s.State == "Leader" {
					if lead != "" && lead != name {
						return false
					}
					lead = name
					led[s.Shard] = true
				}
			}
		}
		return lead != "" && len(led) == len(shards)
	})
	return lead
}

// TestCPReadIndex: a linearizable read through a replica whose applies are
// held back waits until it has applied the write it must see (ReadIndex,
// not just VerifyLeader).
func TestCPReadIndex(t *testing.T) {
	c := startLab(t, labOpts{nodes: 3, gateways: 3, gatewayArgs: []string{"--call-timeout", "8s"}})
	ctx := ctxFor(t, 60*time.Second)
	c.register("g1", "alice")
	c.register("g1", "bob")
	// The follower whose applies are held must not lead the DM's shard.
	lead := c.colocatedLeader()
	follower := map[string]string{"n1": "n2", "n2": "n3", "n3": "n1"}[lead]
	gw := func(n string) string { return "g" + strings.TrimPrefix(n, "n") }
	alice, bob := c.login(gw(lead), "alice", "d"), c.login(gw(follower), "bob", "d")
	if _, err := alice.Send(ctx, client.SendArgs{To: "bob", Text: "one", Cmid: "1"}); err != nil {
		t.Fatal(err)
	}
	c.waitConverged(10*time.Second, "n1", "n2", "n3")
	shard := c.dmShard("alice", "bob")
	// The follower serving bob stops applying that shard.
	if _, err := c.admin(follower).HoldApplies(ctx, &pb.HoldRequest{Shard: shard, Hold: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Send(ctx, client.SendArgs{To: "bob", Text: "two", Cmid: "2"}); err != nil {
		t.Fatal(err)
	}
	if n := len(c.history(bob, "dm:alice:bob", "local")); n != 1 {
		t.Fatalf("%s's applies are held, yet its local read shows %d messages (want the stale 1)", follower, n)
	}
	done := make(chan []client.Message, 1)
	go func() {
		h, err := bob.History(ctx, client.HistoryArgs{Conv: "dm:alice:bob", Limit: 100})
		if err != nil {
			t.Errorf("linearizable read: %v", err)
		}
		done <- h.Messages
	}()
	select {
	case msgs := <-done:
		t.Fatalf("a linearizable read returned %d messages while %s could not apply the write it must see", len(msgs), follower)
	case <-time.After(500 * time.Millisecond):
	}
	if _, err := c.admin(follower).HoldApplies(ctx, &pb.HoldRequest{Shard: shard, Hold: false}); err != nil {
		t.Fatal(err)
	}
	select {
	case msgs := <-done:
		if len(msgs) != 2 || msgs[1].Text != "two" {
			t.Fatalf("the linearizable read returned %+v, want both messages", msgs)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the linearizable read never returned after the replica caught up")
	}
}

// TestCPBatching: 64 concurrent sends to one shard advance its Raft log by
// far fewer entries (group commit).
func TestCPBatching(t *testing.T) {
	c := startLab(t, labOpts{nodes: 3, gateways: 1, gatewayArgs: []string{"--rate-limit", "0"}})
	ctx := ctxFor(t, 60*time.Second)
	alice := c.aliceToBob("g1", "d")
	shard := c.dmShard("alice", "bob")
	lead := c.colocatedLeader()
	before, err := c.admin(lead).Status(ctx, &pb.Empty{})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := 0; i < 64; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := alice.Send(ctx, client.SendArgs{To: "bob", Text: "x", Cmid: fmt.Sprint("b", i)}); err != nil {
				t.Errorf("send %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	after, err := c.admin(lead).Status(ctx, &pb.Empty{})
	if err != nil {
		t.Fatal(err)
	}
	entries := after.Shards[shard].LastIndex - before.Shards[shard].LastIndex
	t.Logf("64 concurrent sends took %d Raft entries on shard %d", entries, shard)
	if entries >= 16 {
		t.Fatalf("64 concurrent sends advanced shard %d's log by %d entries, want fewer than 16 (group commit)", shard, entries)
	}
}

// TestCPKillSnapshotJoin: kill -9 and restart a node under load; a node
// that lagged past the compacted log catches up by snapshot; a fourth node
// joins and is removed.
func TestCPKillSnapshotJoin(t *testing.T) {
	c := startLab(t, labOpts{nodes: 3, gateways: 2, nodeArgs: []string{"--snapshot-threshold", "32", "--trailing-logs", "8", "--snapshot-interval", "100ms"},
		gatewayArgs: []string{"--rate-limit", "0", "--call-timeout", "3s"}})
	ctx := ctxFor(t, 120*time.Second)
	c.register("g1", "alice")
	c.register("g1", "bob")
	alice := c.login("g1", "alice", "d")
	log := newSendLog()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var acked atomic.Int64 // acknowledged load sends
	bob := c.login("g2", "bob", "d")
	wg.Add(1)
	go func() { // load through g2 while n1 dies and returns
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			cmid := fmt.Sprint("load-", i)
			for {
				r, err := bob.Send(ctx, client.SendArgs{To: "alice", Text: cmid, Cmid: cmid})
				code := log.record(cmid, r, err)
				if code == "ok" {
					acked.Add(1)
				}
				if code != "timeout" {
					break // retried with the same cmid while unknown
				}
			}
		}
	}()
	atLeast := func(what string, n int64) {
		t.Helper()
		eventually(t, 20*time.Second, what, func() bool { return acked.Load() >= n })
	}
	atLeast("the load is acknowledged", 10)
	if err := c.Kill("n1"); err != nil {
		t.Fatal(err)
	}
	atLeast("the load is acknowledged with n1 killed", acked.Load()+10)
	if err := c.Restart(ctx, "n1"); err != nil {
		t.Fatal(err)
	}
	// Writes are acknowledged after the restart, through the load's
	// gateway and through g1 (whose preferred node is the restarted n1;
	// it may still be failed over to another). Each attempt has its own
	// cmid: a refused one must stay absent.
	atLeast("the load is acknowledged after n1's restart", acked.Load()+10)
	attempt := 0
	eventually(t, 20*time.Second, "g1's client has a write acknowledged after n1's restart", func() bool {
		attempt++
		cmid := fmt.Sprint("after-restart-", attempt)
		r, err := alice.Send(ctx, client.SendArgs{To: "bob", Text: cmid, Cmid: cmid})
		return log.record(cmid, r, err) == "ok"
	})
	close(stop)
	wg.Wait()
	c.waitConverged(20*time.Second, "n1", "n2", "n3")
	checkExactlyOnce(t, "after kill -9 and restart", c.history(alice, "dm:alice:bob", "linearizable"), log)
	log.mu.Lock()
	t.Logf("load: %d acknowledged, %d refused, %d unknown", len(log.ok), len(log.refused), len(log.unknown))
	log.mu.Unlock()

	// n3 misses 200 writes while cut off; the log is compacted past them.
	c.apply("partition isolate:n3")
	for i := 0; i < 200; i++ {
		// n1's restart may still be moving leaders back (--leaders
		// colocate): a send caught by a transfer is refused or its outcome
		// unknown, and the client retries it with the same cmid.
		sendUntilAcked(t, alice, client.SendArgs{To: "bob", Text: "snap", Cmid: fmt.Sprint("snap-", i)}, 10*time.Second)
	}
	c.apply("heal")
	c.waitConverged(20*time.Second, "n1", "n2", "n3")
	st, err := c.admin("n3").Status(ctx, &pb.Empty{})
	if err != nil {
		t.Fatal(err)
	}
	restores := uint64(0)
	for _, s := range st.Shards {
		restores += s.Restores
	}
	if restores == 0 {
		t.Fatal("n3 caught up without installing a snapshot, though the log was compacted past what it missed")
	}

	// A fourth node joins through n1 and is then removed.
	var peers []string
	for _, n := range []string{"n1", "n2", "n3"} {
		peers = append(peers, n+"="+c.member(n).Raft)
	}
	free, err := ports.Free(3) // three distinct ports
	if err != nil {
		t.Fatal(err)
	}
	addr := func(i int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(free[i])) }
	raft4, grpc4, http4 := addr(0), addr(1), addr(2)
	n4 := exec.Command(mpimBin, "node", "--id", "n4", "--data", t.TempDir(), "--listen", grpc4, "--http", http4,
		"--raft-listen", raft4, "--peers", strings.Join(append(peers, "n4="+raft4), ","), "--join", c.member("n1").GRPC,
		"--tls-dir", c.CredentialsDir(), "--shards", "4", "--bcrypt-cost", "4")
	n4.Env = append(os.Environ(), "MPIM_SECRET="+testcluster.Secret)
	n4.Stderr = testWriter{t}
	if err := n4.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { n4.Process.Kill(); n4.Wait() }()
	eventually(t, 20*time.Second, "n4 is a voter of every shard", func() bool {
		st, err := c.admin("n1").Status(ctx, &pb.Empty{})
		if err != nil {
			return false
		}
		for _, s := range st.Shards {
			if !strings.Contains(strings.Join(s.Voters, ","), "n4") {
				return false
			}
		}
		return true
	})
	var n4Rep, n1Rep lab.Replica
	eventually(t, 20*time.Second, "n4's replica holds what n1's does, digest for digest", func() bool {
		n4Rep = lab.ReadReplica(ctx, "http://"+http4+"/")
		n1Rep = c.Replicas(ctx)["n1"]
		return n4Rep.Error == "" && n1Rep.Error == "" && len(n1Rep.Convs) > 0 && maps.Equal(n4Rep.Convs, n1Rep.Convs)
	})
	out, err := exec.Command(mpimBin, "node", "remove", "n4", "--via", c.member("n2").GRPC, "--tls-dir", c.CredentialsDir()).CombinedOutput()
	if err != nil {
		t.Fatalf("mpim node remove n4: %v\n%s", err, out)
	}
	st, err = c.admin("n1").Status(ctx, &pb.Empty{})
	if err != nil {
		t.Fatalf("status of n1 after removing n4: %v", err)
	}
	for _, s := range st.Shards {
		if strings.Contains(strings.Join(s.Voters, ","), "n4") {
			t.Fatalf("shard %d still lists n4 after remove: %v", s.Shard, s.Voters)
		}
	}
}

// TestCPSixNodes: beyond five nodes each shard has five voters (quorum 3)
// and the other nodes follow it; writes survive two voters down and are
// refused with three down.
func TestCPSixNodes(t *testing.T) {
	c := startLab(t, labOpts{nodes: 6, gateways: 1, gatewayArgs: []string{"--call-timeout", "3s"}})
	ctx := ctxFor(t, 90*time.Second)
	alice := c.aliceToBob("g1", "d")
	shard := c.dmShard("alice", "bob")
	st, err := c.admin("n1").Status(ctx, &pb.Empty{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st.Shards {
		if len(s.Voters) != 5 {
			t.Fatalf("shard %d has voters %v, want 5 of the 6 nodes", s.Shard, s.Voters)
		}
	}
	voters := st.Shards[shard].Voters
	// Kill two voters that are neither n1 (g1's node) nor the leader.
	lead := st.Shards[shard].Leader
	var victims []string
	for _, v := range voters {
		if v != "n1" && v != lead && len(victims) < 3 {
			victims = append(victims, v)
		}
	}
	for _, v := range victims[:2] {
		if err := c.Kill(v); err != nil {
			t.Fatal(err)
		}
	}
	var sendErr error
	eventually(t, 10*time.Second, "a write with two of five voters down", func() bool {
		_, sendErr = alice.Send(ctx, client.SendArgs{To: "bob", Text: "x", Cmid: "1"})
		return sendErr == nil
	})
	if len(victims) == 3 {
		if err := c.Kill(victims[2]); err != nil {
			t.Fatal(err)
		}
		eventually(t, 15*time.Second, "writes refused with three of five voters down", func() bool {
			_, err := alice.Send(ctx, client.SendArgs{To: "bob", Text: "x", Cmid: "2"})
			code := client.ErrorCode(err)
			return code == "unavailable" || code == "timeout"
		})
	}
}

// TestCPWritesGoToTheLeader: once a send has named its conversation's
// shard, a gateway sends the next ones straight to the shard's leader, so
// its own node forwards only the first; cut off from the leader (and only
// from it), the gateway falls back to its node, which forwards again.
func TestCPWritesGoToTheLeader(t *testing.T) {
	c := startLab(t, labOpts{nodes: 3, gateways: 3, gatewayArgs: []string{"--call-timeout", "1500ms"}})
	c.register("g1", "alice")
	c.register("g1", "bob")
	lead := c.colocatedLeader()
	num := map[string]string{"n1": "2", "n2": "3", "n3": "1"}[lead]
	own := "n" + num
	alice := c.login("g"+num, "alice", "d")
	ctx := ctxFor(t, 60*time.Second)
	forwards := func() float64 { return c.scrape(own, "mpim_node_forward_duration_seconds_count") }
	before := forwards()
	for i := range 20 {
		if _, err := alice.Send(ctx, client.SendArgs{To: "bob", Text: "direct", Cmid: fmt.Sprint("d", i)}); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	direct := forwards() - before
	if direct > 1 {
		t.Fatalf("%s forwarded %v of 20 sends to the leader %s; want the first at most", own, direct, lead)
	}

	// Only the link between the gateway and the leader: both directions.
	c.apply(fmt.Sprintf("oneway g%s / %s", num, lead))
	c.apply(fmt.Sprintf("oneway %s / g%s", lead, num))
	for i := range 5 {
		sendUntilAcked(t, alice, client.SendArgs{To: "bob", Text: "via own node", Cmid: fmt.Sprint("cut", i)}, 15*time.Second)
	}
	if got := forwards() - before - direct; got < 5 {
		t.Fatalf("with g%s cut from the leader, %s forwarded %v sends; want the 5 sent", num, own, got)
	}
}

// sendUntilAcked sends args until it is acknowledged, within d, retrying
// with the same cmid after timeout or unavailable, as a client must; any
// other answer fails the test.
func sendUntilAcked(t *testing.T, conn *client.Conn, args client.SendArgs, d time.Duration) {
	t.Helper()
	ctx := ctxFor(t, d+5*time.Second)
	eventually(t, d, args.Cmid+" is acknowledged", func() bool {
		_, err := conn.Send(ctx, args)
		if code := client.ErrorCode(err); err != nil && code != client.CodeTimeout && code != client.CodeUnavailable {
			t.Fatalf("%s: %v", args.Cmid, err)
		}
		return err == nil
	})
}
