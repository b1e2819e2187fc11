package gateway

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"mpim/internal/rpcerr"
	"mpim/internal/token"
	pb "mpim/proto/mpimpb"
)

// fakeNode is the node behind the gateway in the delivery and session
// tests. It implements the gRPC client interfaces the gateway calls
// (users, messages, presence) in memory: it stores messages per
// conversation, answers sync and history from them as a node does
// (docs/protocol.md), and records every sync and history call with its
// answer, so that a transcript shows what the deliverer pulled and when.
// Its message service can be made to refuse (down) or to hang until the
// caller's deadline (a partition).
type fakeNode struct {
	mu    sync.Mutex
	mode  string // "cp" or "ap"
	state string // how the message service answers: "up", "down" or "hang"
	msgs  map[string][]*pb.Message
	// arrival numbers the messages in the order the node stored them: the
	// fake's exact AP sync cursor is the last arrival number returned per
	// conversation (a real node uses per-origin positions).
	arrival map[*pb.Message]int
	arrived int
	// acked is the logged-in device's delivery cursor per conversation,
	// where a login backlog starts.
	acked map[string]uint64
	calls []string
	// routes counts each user's presence routes: binds less unbinds.
	routes map[string]int
}

func newFakeNode(mode string) *fakeNode {
	return &fakeNode{mode: mode, state: "up", msgs: map[string][]*pb.Message{},
		arrival: map[*pb.Message]int{}, acked: map[string]uint64{}, routes: map[string]int{}}
}

// users of the tests, by uid.
var testUsers = []string{1: "alice", 2: "bob", 3: "carol", 4: "dave"}

func uidOf(name string) uint64 {
	for i, n := range testUsers {
		if n == name && i > 0 {
			return uint64(i)
		}
	}
	return 0
}

// members of a test conversation: dm:A:B is the DM of users A and B; a
// group (g:NAME) has every test user.
func members(conv string) []uint64 {
	if rest, ok := strings.CutPrefix(conv, "dm:"); ok {
		a, b, _ := strings.Cut(rest, ":")
		return []uint64{uidOf(a), uidOf(b)}
	}
	var all []uint64
	for uid := 1; uid < len(testUsers); uid++ {
		all = append(all, uint64(uid))
	}
	return all
}

// put stores a message, or finds the one it repeats: in CP the same seq of
// the conversation, in AP the same id (whose position is then updated: a
// replica placed it elsewhere).
func (n *fakeNode) put(conv string, seq uint64, id string, tentative bool) *pb.Message {
	n.mu.Lock()
	defer n.mu.Unlock()
	for i, m := range n.msgs[conv] {
		if n.mode == "ap" && m.Id == id {
			// A new value: the old one may still be on its way to a client.
			moved := proto.Clone(m).(*pb.Message)
			moved.Seq, moved.Tentative = seq, tentative
			n.arrival[moved] = n.arrival[m]
			n.msgs[conv][i] = moved
			return moved
		}
		if n.mode != "ap" && m.Seq == seq {
			return m
		}
	}
	m := &pb.Message{Conv: conv, Seq: seq, Id: id, From: "alice", FromUid: 1, Text: "hi", Cmid: "c-" + id,
		Ts: time.Now().UnixMilli(), Origin: "n1", Ap: n.mode == "ap", Tentative: n.mode == "ap" && tentative}
	n.arrived++
	n.arrival[m] = n.arrived
	n.msgs[conv] = append(n.msgs[conv], m)
	return m
}

func (n *fakeNode) setState(state string) {
	n.mu.Lock()
	n.state = state
	n.mu.Unlock()
}

// takeCalls returns the calls recorded since the last take.
func (n *fakeNode) takeCalls() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := n.calls
	n.calls = nil
	return out
}

func (n *fakeNode) record(call string, err error, answer string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err != nil {
		answer = status.Code(err).String()
		if status.Code(err) == codes.DeadlineExceeded {
			answer = "no answer before the deadline"
		}
	}
	n.calls = append(n.calls, call+" -> "+answer)
}

// answer fails a call as the message service's state says: down refuses
// at once, hang waits for the caller to give up.
func (n *fakeNode) answer(ctx context.Context) error {
	n.mu.Lock()
	state := n.state
	n.mu.Unlock()
	switch state {
	case "down":
		return status.Error(codes.Unavailable, "connection refused")
	case "hang":
		<-ctx.Done()
		return status.FromContextError(ctx.Err()).Err()
	case "broken":
		// A refusal no retry changes (a reply the node cannot make).
		return rpcerr.Error(rpcerr.Internal, "state corrupt")
	}
	return nil
}

// sorted returns conv's messages in seq order (n.mu held).
func (n *fakeNode) sorted(conv string) []*pb.Message {
	out := slices.Clone(n.msgs[conv])
	slices.SortFunc(out, func(a, b *pb.Message) int { return cmp.Compare(a.Seq, b.Seq) })
	return out
}

type fakeUsers struct {
	pb.UsersClient
	n *fakeNode
}

func (f fakeUsers) Login(ctx context.Context, req *pb.LoginRequest, _ ...grpc.CallOption) (*pb.LoginReply, error) {
	uid := uidOf(req.User)
	if uid == 0 {
		return nil, status.Error(codes.Unauthenticated, "wrong user name or password")
	}
	f.n.mu.Lock()
	mode := f.n.mode
	f.n.mu.Unlock()
	tok := token.Sign([]byte(testSecret), token.Claims{UID: uid, User: req.User, Exp: time.Now().Add(time.Hour).UnixMilli()})
	return &pb.LoginReply{Uid: uid, User: req.User, Token: tok, Mode: mode, Node: "n1"}, nil
}

// fakePresence counts the routes bound and unbound per user.
type fakePresence struct {
	pb.PresenceClient
	n *fakeNode
}

func (f fakePresence) Bind(_ context.Context, req *pb.BindRequest, _ ...grpc.CallOption) (*pb.Empty, error) {
	f.n.mu.Lock()
	f.n.routes[req.Caller.GetUser()]++
	f.n.mu.Unlock()
	return &pb.Empty{}, nil
}

func (f fakePresence) Unbind(_ context.Context, req *pb.BindRequest, _ ...grpc.CallOption) (*pb.Empty, error) {
	f.n.mu.Lock()
	f.n.routes[req.Caller.GetUser()]--
	f.n.mu.Unlock()
	return &pb.Empty{}, nil
}

type fakeMessages struct {
	pb.MessagesClient
	n *fakeNode
}

// Sync answers as a node does: every conversation in byte order, each
// after its position (CP: a seq; AP: an arrival number, exact however
// positions move), at most limit messages in all, with each
// conversation's max seq and a cursor for the next page.
func (f fakeMessages) Sync(ctx context.Context, req *pb.SyncRequest, _ ...grpc.CallOption) (*pb.SyncReply, error) {
	call := "sync " + describeSync(req)
	if err := f.n.answer(ctx); err != nil {
		f.n.record(call, err, "")
		return nil, err
	}
	n := f.n
	n.mu.Lock()
	limit := int(cmp.Or(req.Limit, 500))
	from := parseCursor(req.Cursor)
	rep := &pb.SyncReply{}
	var next []string
	for _, conv := range slices.Sorted(maps.Keys(n.msgs)) {
		msgs := n.sorted(conv)
		maxSeq := msgs[len(msgs)-1].Seq
		pos := from[conv]
		switch {
		case req.Cursor != "":
		case req.After != nil:
			pos = req.After[conv]
		case req.FromDevice:
			pos = n.acked[conv]
		}
		if n.mode == "ap" && req.Cursor == "" {
			// Start after the arrivals of the messages at or below pos.
			seq := pos
			pos = 0
			for _, m := range msgs {
				if m.Seq <= seq {
					pos = max(pos, uint64(n.arrival[m]))
				}
			}
		}
		if n.mode == "ap" {
			slices.SortFunc(msgs, func(a, b *pb.Message) int { return cmp.Compare(n.arrival[a], n.arrival[b]) })
		}
		for _, m := range msgs {
			at := m.Seq
			if n.mode == "ap" {
				at = uint64(n.arrival[m])
			}
			if at <= pos {
				continue
			}
			if len(rep.Messages) == limit {
				rep.More = true
				break
			}
			rep.Messages = append(rep.Messages, m)
			pos = at
		}
		next = append(next, fmt.Sprintf("%s=%d", conv, pos))
		rep.Convs = append(rep.Convs, &pb.ConvMax{Conv: conv, MaxSeq: maxSeq})
	}
	n.mu.Unlock()
	rep.Cursor = strings.Join(next, ",")
	answer := describeMessages(rep.Messages, n.mode == "ap")
	if rep.More {
		answer += ", more"
	}
	if n.mode == "ap" && !rep.More {
		answer += ", cursor " + rep.Cursor // where an AP catch-up resumes
	}
	n.record(call, nil, answer)
	return rep, nil
}

// History answers conv's messages after After and before Before (0: no
// bound), oldest first, at most Limit.
func (f fakeMessages) History(ctx context.Context, req *pb.HistoryRequest, _ ...grpc.CallOption) (*pb.HistoryReply, error) {
	call := fmt.Sprintf("history %s after=%d before=%d limit=%d", req.Conv, req.After, req.Before, req.Limit)
	if err := f.n.answer(ctx); err != nil {
		f.n.record(call, err, "")
		return nil, err
	}
	n := f.n
	n.mu.Lock()
	rep := &pb.HistoryReply{Consistency: "local"}
	for _, m := range n.sorted(req.Conv) {
		if m.Seq <= req.After || (req.Before > 0 && m.Seq >= req.Before) {
			continue
		}
		if len(rep.Messages) == int(req.Limit) {
			rep.More = true
			break
		}
		rep.Messages = append(rep.Messages, m)
	}
	n.mu.Unlock()
	n.record(call, nil, describeMessages(rep.Messages, n.mode == "ap"))
	return rep, nil
}

func describeSync(req *pb.SyncRequest) string {
	switch {
	case req.Cursor != "":
		return fmt.Sprintf("cursor=%s limit=%d", req.Cursor, req.Limit)
	case req.After != nil:
		var after []string
		for _, conv := range slices.Sorted(maps.Keys(req.After)) {
			after = append(after, fmt.Sprintf("%s=%d", conv, req.After[conv]))
		}
		return fmt.Sprintf("after=%s limit=%d", strings.Join(after, ","), req.Limit)
	case req.FromDevice:
		return fmt.Sprintf("from-device limit=%d", req.Limit)
	}
	return fmt.Sprintf("limit=%d", req.Limit)
}

// describeMessages renders a reply's messages: per conversation its seq
// runs (CP) or its ids (AP).
func describeMessages(msgs []*pb.Message, ap bool) string {
	if len(msgs) == 0 {
		return "nothing"
	}
	var parts []string
	for i := 0; i < len(msgs); {
		j := i
		for j+1 < len(msgs) && msgs[j+1].Conv == msgs[i].Conv {
			j++
		}
		var items []string
		if ap {
			for _, m := range msgs[i : j+1] {
				items = append(items, m.Id)
			}
		} else {
			items = seqRuns(msgs[i : j+1])
		}
		parts = append(parts, msgs[i].Conv+" "+strings.Join(items, ","))
		i = j + 1
	}
	return strings.Join(parts, "; ")
}

// seqRuns renders seqs as runs: 2..5,7.
func seqRuns(msgs []*pb.Message) []string {
	var out []string
	for i := 0; i < len(msgs); {
		j := i
		for j+1 < len(msgs) && msgs[j+1].Seq == msgs[j].Seq+1 {
			j++
		}
		if i == j {
			out = append(out, fmt.Sprint(msgs[i].Seq))
		} else {
			out = append(out, fmt.Sprintf("%d..%d", msgs[i].Seq, msgs[j].Seq))
		}
		i = j + 1
	}
	return out
}

// parseCursor reads the fake's cursor: conv=pos pairs.
func parseCursor(c string) map[string]uint64 {
	out := map[string]uint64{}
	for _, kv := range strings.Split(c, ",") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			out[k], _ = strconv.ParseUint(v, 10, 64)
		}
	}
	return out
}
