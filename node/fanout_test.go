package node

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/proto"

	"mpim/internal/redisproc"
	pb "mpim/proto/mpimpb"
)

// TestFanoutRetry: a message push that no gateway heard (its subscription
// was down), and one whose publish failed because Redis was down, both
// reach the gateway's channel once it listens again.
func TestFanoutRetry(t *testing.T) {
	srv := redisproc.ForTest(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), MaxRetries: -1})
	defer rdb.Close()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	f := newFanout(rdb, "n1", newMetrics("n1"), log)
	rt := newRoutes(rdb, time.Minute, f, log)
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
	sub := rdb.Subscribe(ctx, GatewayChannelPrefix+"g9")
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
	sub2 := rdb.Subscribe(ctx, GatewayChannelPrefix+"g9")
	defer sub2.Close()
	for _, err := sub2.Receive(ctx); err != nil; _, err = sub2.Receive(ctx) {
		time.Sleep(50 * time.Millisecond)
	}
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() { f.watchRedis(stop); close(stopped) }()
	defer func() { close(stop); <-stopped }()
	expectPush(t, sub2, "m2")
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
