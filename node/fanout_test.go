package node

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"

	"mpim/internal/channels"
	"mpim/internal/redisproc"
	pb "mpim/proto/mpimpb"
)

// testRedis starts a private redis-server and a client of it.
func testRedis(t *testing.T) (*redisproc.Server, *redis.Client) {
	t.Helper()
	srv := redisproc.ForTest(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), MaxRetries: -1})
	t.Cleanup(func() { rdb.Close() })
	return srv, rdb
}

// testFanout is a node's fan-out and routes over rdb, logging nowhere.
func testFanout(rdb *redis.Client, node string) (*fanout, *routes) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	f := newFanout(rdb, node, newMetrics(node), log)
	return f, newRoutes(rdb, time.Minute, f, log)
}

// TestFanoutRetry: a message push that no gateway heard (its subscription
// was down), and one whose publish failed because Redis was down, both
// reach the gateway's channel once it listens again.
func TestFanoutRetry(t *testing.T) {
	srv, rdb := testRedis(t)
	f, rt := testFanout(rdb, "n1")
	alice := &pb.Caller{Uid: 7, User: "alice", Device: "d", Session: "s1"}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := rt.bind(ctx, alice, "g9"); err != nil {
		t.Fatal(err)
	}
	msg := func(id string) *pb.Push {
		return &pb.Push{Event: &pb.Push_Message{Message: &pb.Message{Conv: "g:room", Id: id, Seq: 1}}}
	}

	// Nobody subscribed to g9: the publish succeeds but reaches no one.
	f.deliver(ctx, msg("m1"), []uint64{7})
	if got := pendingFor(f); len(got) != 1 || got[0] != "g9" {
		t.Fatalf("after an unheard publish the retry queue holds %v, want one push for g9", got)
	}
	sub := rdb.Subscribe(ctx, channels.Gateway("g9"))
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	f.retryDue(true)
	expectPush(t, sub, "m1")
	if got := pendingFor(f); len(got) != 0 {
		t.Fatalf("a delivered retry stays queued: %v", got)
	}

	// Redis down: the publish fails; the push is routed again after the
	// recovery, when the route is back.
	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	f.deliver(ctx, msg("m2"), []uint64{7})
	if !f.degraded.Load() {
		t.Fatal("a failed publish did not mark the node degraded")
	}
	if got := pendingFor(f); len(got) != 1 || got[0] != "" {
		t.Fatalf("after a failed publish the retry queue holds %v, want one push to route again", got)
	}
	if err := srv.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	// The restarted Redis lost the route; the node's recovery writes the
	// routes it holds back before routing the kept pushes again.
	f.onRecover = rt.restore
	sub2 := rdb.Subscribe(ctx, channels.Gateway("g9"))
	defer sub2.Close()
	for _, err := sub2.Receive(ctx); err != nil; _, err = sub2.Receive(ctx) {
		time.Sleep(50 * time.Millisecond)
	}
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() { f.watchRedis(stop); close(stopped) }()
	defer func() { close(stop); <-stopped }()
	expectPush(t, sub2, "m2")
}

// TestFanoutRetryUnrouted: a message push to a recipient with no route is
// routed again for a while (right after a Redis restart that lost the
// routes, no route is "not bound again yet", not "offline"), reaches the
// recipient's gateway once its route is back, and is not kept for ever.
func TestFanoutRetryUnrouted(t *testing.T) {
	_, rdb := testRedis(t)
	f, rt := testFanout(rdb, "n1")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	push := &pb.Push{Event: &pb.Push_Message{Message: &pb.Message{Conv: "g:room", Id: "m1", Seq: 1}}}
	f.deliver(ctx, push, []uint64{8})
	if got := pendingFor(f); len(got) != 1 || got[0] != "" {
		t.Fatalf("after a push without a route the retry queue holds %v, want one push to route again", got)
	}
	f.mu.Lock()
	until := f.retry[0].until
	f.mu.Unlock()
	if d := time.Until(until); d > unroutedFor || d <= 0 {
		t.Fatalf("an unrouted push is kept %v, want at most %v", d, unroutedFor)
	}
	sub := rdb.Subscribe(ctx, channels.Gateway("g9"))
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	if err := rt.bind(ctx, &pb.Caller{Uid: 8, User: "bob", Device: "d", Session: "s2"}, "g9"); err != nil {
		t.Fatal(err)
	}
	f.retryDue(true)
	expectPush(t, sub, "m1")
	if got := pendingFor(f); len(got) != 0 {
		t.Fatalf("a delivered retry stays queued: %v", got)
	}
}

// pendingFor lists the gateway of every queued retry ("" = route again).
func pendingFor(f *fanout) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, rp := range f.retry {
		out = append(out, rp.gateway)
	}
	return out
}

func expectPush(t *testing.T, sub *redis.PubSub, id string) {
	t.Helper()
	select {
	case m := <-sub.Channel():
		var p pb.Push
		if err := proto.Unmarshal([]byte(m.Payload), &p); err != nil {
			t.Fatal(err)
		}
		if got := p.GetMessage().GetId(); got != id {
			t.Fatalf("pushed %q, want %q", got, id)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("push %s never reached the gateway channel", id)
	}
}

// TestFanoutLater: pushes queued for the worker reach each recipient's
// gateway, one publish per gateway addressed to exactly its recipients, in
// the order they were queued, and stop delivers what is still queued.
func TestFanoutLater(t *testing.T) {
	_, rdb := testRedis(t)
	f, rt := testFanout(rdb, "n1")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for uid, gw := range map[uint64]string{7: "g1", 8: "g1", 9: "g2"} {
		if err := rt.bind(ctx, &pb.Caller{Uid: uid, User: "u", Device: "d", Session: "s"}, gw); err != nil {
			t.Fatal(err)
		}
	}
	sub := rdb.Subscribe(ctx, channels.Gateway("g1"), channels.Gateway("g2"))
	defer sub.Close()
	for n := 0; n < 2; n++ {
		if _, err := sub.Receive(ctx); err != nil {
			t.Fatal(err)
		}
	}
	f.start()
	const n = 50
	for i := range n {
		f.deliverLater(&pb.Push{Event: &pb.Push_Message{Message: &pb.Message{Conv: "g:room", Id: fmt.Sprint(i)}}}, []uint64{7, 8, 9, 10})
	}
	f.stop()
	next := map[string]int{}
	for range 2 * n {
		select {
		case m := <-sub.Channel():
			var p pb.Push
			if err := proto.Unmarshal([]byte(m.Payload), &p); err != nil {
				t.Fatal(err)
			}
			gw := strings.TrimPrefix(m.Channel, channels.Gateway(""))
			want := map[string]string{"g1": "[7 8]", "g2": "[9]"}[gw]
			if got := fmt.Sprint(p.ToUids); got != want || p.Origin != "n1" {
				t.Fatalf("push on %s addressed to %s from %q, want %s from n1", gw, got, p.Origin, want)
			}
			if id := p.GetMessage().GetId(); id != fmt.Sprint(next[gw]) {
				t.Fatalf("gateway %s got push %s after %d pushes: out of order", gw, id, next[gw])
			}
			next[gw]++
		case <-time.After(10 * time.Second):
			t.Fatalf("only %v pushes arrived of %d per gateway", next, n)
		}
	}
	// After stop, deliverLater delivers in its caller.
	f.deliverLater(&pb.Push{Event: &pb.Push_Message{Message: &pb.Message{Conv: "g:room", Id: "late"}}}, []uint64{9})
	expectPush(t, sub, "late")
}
