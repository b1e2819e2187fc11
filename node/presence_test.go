package node

import (
	"context"
	"strings"
	"testing"
	"time"

	pb "mpim/proto/mpimpb"
)

// TestUnbindKeepsNewerSession: a device that logs in again (through
// another node) before its old session's unbind runs keeps its new route;
// only the session that holds a route removes it, even when its id is a
// prefix of the new one's. (The check and the delete are one script; the
// interleaving that a read-then-delete lost to — a bind landing between
// the two — is not provoked here, only the script's rule is checked.)
func TestUnbindKeepsNewerSession(t *testing.T) {
	_, rdb := testRedis(t)
	_, nodeA := testFanout(rdb, "n1")
	_, nodeB := testFanout(rdb, "n2")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	old := &pb.Caller{Uid: 7, User: "carol", Device: "laptop", Session: "g2-1"}
	renewed := &pb.Caller{Uid: 7, User: "carol", Device: "laptop", Session: "g2-11"} // the old id is its prefix
	route := func() string { return rdb.HGet(ctx, routeKey(7), "laptop").Val() }
	if err := nodeA.bind(ctx, old, "g2"); err != nil {
		t.Fatal(err)
	}
	if err := nodeB.bind(ctx, renewed, "g2"); err != nil {
		t.Fatal(err)
	}
	nodeA.unbind(ctx, old) // late: the device has a newer session
	if got := route(); !strings.Contains(got, "|g2-11|") {
		t.Fatalf("after the old session's unbind the laptop's route is %q, want the new session's", got)
	}
	nodeB.unbind(ctx, renewed)
	if got := route(); got != "" {
		t.Fatalf("after its own session's unbind the laptop's route is still %q", got)
	}
}
