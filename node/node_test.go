package node_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"mpim/internal/rpcerr"
	"mpim/internal/testcluster"
	"mpim/node"
	pb "mpim/proto/mpimpb"
)

// TestMain checks that a stopped node leaves no goroutine behind.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type rpc struct {
	users    pb.UsersClient
	messages pb.MessagesClient
	groups   pb.GroupsClient
	admin    pb.AdminClient
	presence pb.PresenceClient
}

func startNode(t *testing.T, mutate func(*node.Config)) rpc {
	t.Helper()
	c := testcluster.StartInProcess(t, testcluster.Options{Nodes: 1, Gateways: 0, NodeConfig: mutate})
	cc, err := grpc.NewClient(c.Nodes[0].GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return rpc{pb.NewUsersClient(cc), pb.NewMessagesClient(cc), pb.NewGroupsClient(cc), pb.NewAdminClient(cc), pb.NewPresenceClient(cc)}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func register(t *testing.T, r rpc, name string) *pb.Caller {
	t.Helper()
	rep, err := r.users.Register(ctx(t), &pb.RegisterRequest{User: name, Password: "password1"})
	if err != nil {
		t.Fatalf("register %s: %v", name, err)
	}
	return &pb.Caller{Uid: rep.Uid, User: name, Device: "d", Session: name + "-s"}
}

func code(err error) rpcerr.Code {
	if err == nil {
		return ""
	}
	c, _, _ := rpcerr.Decode(err)
	return c
}

// TestGroupCommit: concurrent sends to one shard share log entries — the
// batching that makes throughput grow with concurrency.
func TestGroupCommit(t *testing.T) {
	r := startNode(t, func(c *node.Config) { c.NoSync = false; c.Shards = 1 })
	a, b := register(t, r, "alice"), register(t, r, "bob")
	st, err := r.admin.Status(ctx(t), &pb.Empty{})
	if err != nil {
		t.Fatal(err)
	}
	before := st.Shards[0].AppliedIndex
	const n = 64
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			from := a
			if i%2 == 1 {
				from = b
			}
			to := map[bool]string{true: "bob", false: "alice"}[from == a]
			if _, err := r.messages.Send(ctx(t), &pb.SendRequest{Caller: from, To: to, Text: "x", Cmid: fmt.Sprint(i)}); err != nil {
				t.Errorf("send %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	if st, err = r.admin.Status(ctx(t), &pb.Empty{}); err != nil {
		t.Fatal(err)
	}
	entries := st.Shards[0].AppliedIndex - before
	t.Logf("%d concurrent sends took %d log entries", n, entries)
	if entries > n/4 {
		t.Fatalf("%d concurrent sends took %d log entries, want at most %d: group commit batches concurrent sends", n, entries, n/4)
	}
}

// TestSyncPaging: sync across conversations in pages returns every
// message exactly once, in seq order per conversation, and reports the
// conversations with their max seq.
func TestSyncPaging(t *testing.T) {
	r := startNode(t, nil)
	a := register(t, r, "alice")
	register(t, r, "bob")
	register(t, r, "carol")
	want := map[string]int{}
	for i := 0; i < 23; i++ {
		to := []string{"bob", "carol"}[i%2]
		rep, err := r.messages.Send(ctx(t), &pb.SendRequest{Caller: a, To: to, Text: "m", Cmid: fmt.Sprint(i)})
		if err != nil {
			t.Fatal(err)
		}
		want[rep.Message.Conv]++
	}
	got := map[string]uint64{}
	cursor := ""
	for page := 0; ; page++ {
		if page > 10 {
			t.Fatal("sync never ended")
		}
		rep, err := r.messages.Sync(ctx(t), &pb.SyncRequest{Caller: a, Cursor: cursor, Limit: 5})
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Messages) > 5 {
			t.Fatalf("page of %d messages with limit 5", len(rep.Messages))
		}
		for _, m := range rep.Messages {
			if m.Seq != got[m.Conv]+1 {
				t.Fatalf("conversation %s: sync gave seq %d after %d", m.Conv, m.Seq, got[m.Conv])
			}
			got[m.Conv] = m.Seq
		}
		if len(rep.Convs) != 2 {
			t.Fatalf("sync lists %d conversations, want 2", len(rep.Convs))
		}
		cursor = rep.Cursor
		if !rep.More {
			break
		}
	}
	for conv, n := range want {
		if got[conv] != uint64(n) {
			t.Fatalf("conversation %s: synced up to %d of %d", conv, got[conv], n)
		}
	}
	// after is exact too: nothing new after the final positions.
	rep, err := r.messages.Sync(ctx(t), &pb.SyncRequest{Caller: a, After: got})
	if err != nil || len(rep.Messages) != 0 || rep.More {
		t.Fatalf("sync after the final positions: %d messages more=%v err=%v", len(rep.Messages), rep.More, err)
	}
	if _, err := r.messages.Sync(ctx(t), &pb.SyncRequest{Caller: a, Cursor: "not-a-cursor"}); code(err) != rpcerr.BadRequest {
		t.Fatalf("a forged cursor: %v, want bad_request", err)
	}
}

// TestAuthorize: who may read which conversation.
func TestAuthorize(t *testing.T) {
	r := startNode(t, nil)
	a, b, c := register(t, r, "alice"), register(t, r, "bob"), register(t, r, "carol")
	if _, err := r.messages.Send(ctx(t), &pb.SendRequest{Caller: a, To: "bob", Text: "x", Cmid: "1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.groups.Create(ctx(t), &pb.GroupRequest{Caller: a, Group: "g", Members: []string{"bob"}}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		who  *pb.Caller
		conv string
		want rpcerr.Code
	}{
		{a, "dm:alice:bob", ""},
		{b, "dm:alice:bob", ""},
		{c, "dm:alice:bob", rpcerr.Forbidden},
		{c, "dm:alice:carol", ""}, // no message yet: empty, not forbidden
		{c, "dm:carol:nobody", rpcerr.NotFound},
		{a, "dm:alice:alice", rpcerr.BadRequest},
		{a, "dm:bob:alice", rpcerr.BadRequest}, // not in byte order
		{a, "d:1:2", rpcerr.BadRequest},        // a state key is not a wire id
		{b, "g:g", ""},
		{c, "g:g", rpcerr.Forbidden},
		{c, "g:nope", rpcerr.NotFound},
		{a, "x:y", rpcerr.BadRequest},
	} {
		_, err := r.messages.History(ctx(t), &pb.HistoryRequest{Caller: tc.who, Conv: tc.conv, Limit: 10})
		if code(err) != tc.want {
			t.Errorf("%s reading %s: %v, want %q", tc.who.User, tc.conv, err, tc.want)
		}
	}
	if _, err := r.messages.Send(ctx(t), &pb.SendRequest{Caller: c, Group: "g", Text: "x", Cmid: "1"}); code(err) != rpcerr.Forbidden {
		t.Errorf("non-member sending to a group: %v, want forbidden", err)
	}
	if _, err := r.messages.Send(ctx(t), &pb.SendRequest{Caller: a, To: "alice", Text: "x", Cmid: "1"}); code(err) != rpcerr.BadRequest {
		t.Errorf("DM to oneself: %v, want bad_request", err)
	}
}
