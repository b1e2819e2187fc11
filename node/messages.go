package node

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"sort"
	"strconv"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"mpim/fsm"
	"mpim/internal/convid"
	"mpim/internal/rpcerr"
	"mpim/internal/spans"
	"mpim/node/ap"
	pb "mpim/proto/mpimpb"
)

// messageService sends, syncs and reads messages and moves cursors.
type messageService struct {
	pb.UnimplementedMessagesServer
	n *Node
}

// fanoutTimeout bounds one delivery of pushes (a batch of them for the
// fan-out worker).
const fanoutTimeout = time.Second

// toPB is the wire form of a stored message. In AP mode it carries
// tentative: whether a message from a node not yet heard from could still
// sort before it.
// currentMessage is m as this replica holds it now (its position may have
// moved since m was read), or nil if the replica does not have it.
func (n *Node) currentMessage(m *pb.Message) *pb.Message {
	// m carries the wire id, which may name another pair by now (a
	// rename): find the message by its id in every shard.
	for _, sh := range n.shards {
		var cur fsm.Message
		var ok bool
		if err := sh.view(func(tx fsm.Tx) error { cur, ok = fsm.MessageByID(tx, m.Id); return nil }); err == nil && ok {
			return n.toPB(&cur)
		}
	}
	return nil
}

func (n *Node) toPB(m *fsm.Message) *pb.Message {
	out := &pb.Message{Conv: n.wireConv(m.Conv), Seq: m.Seq, Id: m.ID, From: m.From, Text: m.Text, Cmid: m.Cmid,
		Ts: m.Ts, Origin: m.Origin, FromUid: m.FromUID}
	if n.ap != nil {
		out.Ap = true
		out.Tentative = ap.HLCOf(m.Order) > n.ap.Stable()
	}
	return out
}

func caller(c *pb.Caller) error {
	if c == nil || c.Uid == 0 || c.User == "" {
		return rpcerr.Error(rpcerr.Unauthorized, "no authenticated caller; log in first")
	}
	return nil
}

// lookupUser resolves a user name on the meta shard: the local replica,
// and, when it does not know the name, after catching up with the leader
// (a user registered a moment ago through another node).
//
// The catch-up is a quorum round (ReadIndex) that a name nobody has would
// cost on every request: such catch-ups are bounded per node
// (missCatchUps a second); past that a miss is answered from the local
// replica.
func (n *Node) lookupUser(ctx context.Context, name string) (fsm.User, bool) {
	var u fsm.User
	var ok bool
	read := func() {
		u, ok = n.users.get(n.metaShard(), name, func(tx fsm.Tx) (fsm.User, bool) { return fsm.UserByName(tx, name) })
	}
	if read(); !ok && n.misses.allow(time.Now()) && n.metaShard().linearize(ctx) == nil {
		read()
	}
	return u, ok
}

// missCatchUps bounds the catch-ups lookupUser makes for unknown names,
// per second and node.
const missCatchUps = 200

func (s *messageService) Send(ctx context.Context, req *pb.SendRequest) (*pb.SendReply, error) {
	c := req.Caller
	if err := caller(c); err != nil {
		return nil, err
	}
	ctx, end := s.n.cfg.Spans.Start(ctx, spans.Key(c.User, req.Cmid), "node: send")
	defer end()
	defer s.n.cfg.Spans.Since(spans.Key(c.User, req.Cmid), "node: send RPC, received to reply", time.Now())
	cmd := &fsm.Send{FromUID: c.Uid, From: c.User, Text: req.Text, Cmid: req.Cmid,
		ID: s.n.ids.next(), Ts: time.Now().UnixMilli(), Origin: s.n.cfg.ID}
	what := ""
	switch {
	case req.To != "":
		if req.To == c.User {
			return nil, rpcerr.Error(rpcerr.BadRequest, "you cannot send a direct message to yourself")
		}
		looked := time.Now()
		to, ok := s.n.lookupUser(ctx, req.To)
		s.n.cfg.Spans.Since(spans.Key(c.User, req.Cmid), "node: recipient looked up", looked)
		if !ok {
			return nil, rpcerr.Error(rpcerr.NotFound, "no user %q", req.To)
		}
		cmd.Conv, cmd.To, what = convid.DMKey(c.Uid, to.UID), to.UID, req.To
		checked := time.Now()
		err := s.n.roomForNewDM(cmd.Conv, c.Uid, to.UID, req.To)
		s.n.cfg.Spans.Since(spans.Key(c.User, req.Cmid), "node: conversation limit checked", checked)
		if err != nil {
			return nil, err
		}
	case req.Group != "":
		cmd.Conv, what = convid.OfGroup(req.Group), req.Group
	default:
		return nil, rpcerr.Error(rpcerr.BadRequest, "send needs to or group")
	}
	if s.n.ap == nil {
		grpc.SetTrailer(ctx, metadata.Pairs(convid.ShardTrailer, strconv.Itoa(ShardOf(cmd.Conv, len(s.n.shards)))))
	}
	if s.n.cfg.TestHooks && req.Text == TestInternalText {
		return nil, rpcerr.Error(rpcerr.Internal, "test hook: provoked internal error; nothing was applied")
	}
	res, err := s.n.convShard(cmd.Conv).propose(ctx, fsm.Command{Send: cmd})
	if err != nil {
		return nil, commitError(err)
	}
	if res.Err != nil {
		return nil, domainError(res.Err, what)
	}
	// A duplicate is pushed again too: if the first attempt's pushes were
	// lost, this repairs them; gateways drop what was delivered already.
	msg := s.n.toPB(res.Message) // shared by the push and the reply, which only read it
	if s.n.ap != nil {
		s.n.pushLater(res.Message.Conv, res.Message.ID, res.Members, c.Session, pushRouted)
	} else {
		s.n.fanout.deliverLater(&pb.Push{Event: &pb.Push_Message{Message: msg}, SkipSession: c.Session}, res.Members)
	}
	return &pb.SendReply{Message: msg, Dup: res.Dup}, nil
}

// authorize checks that the caller may read the conversation it names
// (wire id) and returns its state key and members. A DM that has no
// message yet is readable (and empty) for its two users. A refusal is
// checked again after catching up with the leader, so that a conversation
// or membership created a moment ago through another node is seen.
func (n *Node) authorize(ctx context.Context, c *pb.Caller, wire string) (string, []uint64, error) {
	conv, err := n.convKey(ctx, c, wire)
	if err != nil {
		return "", nil, err
	}
	members, err := n.authorizeLocal(c, conv, wire)
	if err != nil && n.convShard(conv).linearize(ctx) == nil {
		members, err = n.authorizeLocal(c, conv, wire)
	}
	return conv, members, err
}

func (n *Node) authorizeLocal(c *pb.Caller, conv, wire string) ([]uint64, error) {
	var members []uint64
	var exists, member bool
	n.convShard(conv).view(func(tx fsm.Tx) error {
		exists = fsm.ConvExists(tx, conv)
		member = fsm.IsMember(tx, conv, c.Uid)
		members = fsm.Members(tx, conv)
		return nil
	})
	switch {
	case convid.IsDMKey(conv):
		if exists && !member {
			return nil, rpcerr.Error(rpcerr.Forbidden, "%s is another pair's conversation", wire)
		}
	case convid.IsGroup(conv):
		if !exists {
			return nil, rpcerr.Error(rpcerr.NotFound, "no group %q", group(conv))
		}
		if !member {
			return nil, rpcerr.Error(rpcerr.Forbidden, "you are not a member of %s; join the group first", conv)
		}
	default:
		return nil, rpcerr.Error(rpcerr.BadRequest, "bad conversation id %q", conv)
	}
	return members, nil
}

func (s *messageService) History(ctx context.Context, req *pb.HistoryRequest) (*pb.HistoryReply, error) {
	if err := caller(req.Caller); err != nil {
		return nil, err
	}
	conv, _, err := s.n.authorize(ctx, req.Caller, req.Conv)
	if err != nil {
		return nil, err
	}
	limit := int(req.Limit)
	if limit <= 0 {
		limit = 50
	}
	sh := s.n.convShard(conv)
	out := &pb.HistoryReply{Consistency: "local"}
	switch {
	case s.n.cfg.Mode == "ap":
		// AP always serves the local replica, and says so.
	case req.Read == "local":
		// A gateway pulling a gap it saw in pushes asks for messages this
		// replica may not have applied yet: give it a moment to catch up —
		// for a gap a push can show (a few seqs past what is applied), not
		// for any before a client names.
		if req.Before > 1 {
			s.n.awaitSeq(ctx, sh, conv, req.Before-1)
		}
	case s.n.cfg.unsafe(UnsafeLocalLinearizable):
		// The unsafe switch: a "linearizable" read served from the local
		// replica without ReadIndex (and reported as linearizable, which is
		// the lie the checkers must catch).
		out.Consistency = "linearizable"
	default:
		if err := sh.linearize(ctx); err != nil {
			return nil, rpcerr.Error(rpcerr.Unavailable, "%v; a linearizable read needs the shard's leader and a quorum (read \"local\" may be stale)", err)
		}
		out.Consistency = "linearizable"
	}
	var msgs []fsm.Message
	sh.view(func(tx fsm.Tx) error {
		msgs, out.More = fsm.Messages(tx, conv, req.After, req.Before, limit)
		return nil
	})
	// A page backwards (the latest, or before a seq) keeps its newest
	// messages; a page forwards its oldest: either way the client's next
	// page starts where this one stopped.
	var cut bool
	msgs, _, cut = fitBytes(msgs, replyBytes, req.Before > 0 || req.After == 0)
	out.More = out.More || cut
	for i := range msgs {
		out.Messages = append(out.Messages, s.n.toPB(&msgs[i]))
	}
	return out, nil
}

// awaitSeq waits, briefly, until conv on this replica reaches seq: at most
// a second, only for a seq within awaitAhead of what is applied, and for
// at most awaitWaiters requests of the node at once (the others answer at
// once: a request must not buy a second of polling for nothing).
func (n *Node) awaitSeq(ctx context.Context, sh replica, conv string, seq uint64) {
	maxSeq := func() (m uint64) {
		sh.view(func(tx fsm.Tx) error { m = fsm.MaxSeq(tx, conv); return nil })
		return m
	}
	m := maxSeq()
	if m >= seq || seq-m > awaitAhead {
		return
	}
	select {
	case n.waiters <- struct{}{}:
		defer func() { <-n.waiters }()
	default:
		return
	}
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil && maxSeq() < seq {
		time.Sleep(5 * time.Millisecond)
	}
}

// awaitAhead bounds how far past the applied seq awaitSeq waits for, and
// awaitWaiters how many requests wait at once.
const (
	awaitAhead   = 1024
	awaitWaiters = 16
)

// syncCursor is the opaque cursor: per conversation the last seq the
// client holds (CP, where seqs never change) or, in AP where positions
// move, the last origin sequence of each origin — exact on every replica.
type syncCursor struct {
	Seq    map[string]uint64            `json:"s,omitempty"`
	Origin map[string]map[string]uint64 `json:"o,omitempty"`
}

func encodeCursor(c syncCursor) string {
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s string) (syncCursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	var c syncCursor
	if err == nil {
		err = json.Unmarshal(b, &c)
	}
	if err != nil {
		return c, rpcerr.Error(rpcerr.BadRequest, "cursor is not one this server issued; sync with after instead")
	}
	return c, nil
}

// Sync returns the messages of every conversation of the caller after the
// given positions, oldest first per conversation, conversations in byte
// order, at most limit in all.
func (s *messageService) Sync(ctx context.Context, req *pb.SyncRequest) (*pb.SyncReply, error) {
	c := req.Caller
	if err := caller(c); err != nil {
		return nil, err
	}
	var cur syncCursor
	switch {
	case req.Cursor != "":
		var err error
		if cur, err = decodeCursor(req.Cursor); err != nil {
			return nil, err
		}
	case req.After != nil:
		if max := s.n.cfg.Limits.MaxUserConvs; max > 0 && len(req.After) > max {
			return nil, rpcerr.Error(rpcerr.TooLarge, "after names %d conversations, more than a user can be in (%d)", len(req.After), max)
		}
		// Positions by wire id; the state keys them by conversation key.
		cur.Seq = map[string]uint64{}
		for wire, seq := range req.After {
			if conv, err := s.n.convKey(ctx, c, wire); err == nil {
				cur.Seq[conv] = seq
			}
		}
	}
	limit := int(req.Limit)
	if limit <= 0 {
		limit = 500
	}
	apMode := s.n.ap != nil
	out := &pb.SyncReply{}
	next := syncCursor{Seq: map[string]uint64{}}
	if apMode {
		next = syncCursor{Origin: map[string]map[string]uint64{}}
	}
	budget := replyBytes
	var convs []string
	for _, sh := range s.n.shards {
		sh.view(func(tx fsm.Tx) error { convs = append(convs, fsm.UserConvs(tx, c.Uid)...); return nil })
	}
	sort.Strings(convs)
	// Messages and ids are turned into their wire form after each read:
	// that looks names up, in a read of its own, and bbolt reads must not
	// nest.
	for _, conv := range convs {
		sh := s.n.convShard(conv)
		var maxSeq uint64
		var msgs []fsm.Message
		sh.view(func(tx fsm.Tx) error {
			from := cur.Seq[conv]
			if req.FromDevice && req.Cursor == "" && req.After == nil {
				from = fsm.Delivered(tx, c.Uid, c.Device, conv)
			}
			maxSeq = fsm.MaxSeq(tx, conv)
			room := limit - len(out.Messages)
			if budget <= 0 {
				room = 0 // the page is full by bytes: the rest on the next
			}
			var more, cut bool
			var used int
			if apMode {
				pos := cur.Origin[conv]
				if pos == nil {
					pos = fsm.OriginPositions(tx, conv, from)
				}
				msgs, more = fsm.MessagesSinceOrigins(tx, conv, pos, room)
				msgs, used, cut = fitBytes(msgs, budget, false)
				for _, m := range msgs {
					pos[m.Origin] = max(pos[m.Origin], m.OSeq)
				}
				next.Origin[conv] = pos
			} else {
				msgs, more = fsm.MessagesAfter(tx, conv, from, room)
				msgs, used, cut = fitBytes(msgs, budget, false)
				if len(msgs) > 0 {
					from = msgs[len(msgs)-1].Seq
				}
				next.Seq[conv] = from
			}
			budget -= used
			out.More = out.More || more || cut
			return nil
		})
		out.Convs = append(out.Convs, &pb.ConvMax{Conv: s.n.wireConv(conv), MaxSeq: maxSeq})
		for i := range msgs {
			out.Messages = append(out.Messages, s.n.toPB(&msgs[i]))
		}
	}
	out.Cursor = encodeCursor(next)
	return out, nil
}

func (s *messageService) cursor(ctx context.Context, req *pb.CursorRequest, delivered bool) (*pb.CursorReply, error) {
	c := req.Caller
	if err := caller(c); err != nil {
		return nil, err
	}
	conv, _, err := s.n.authorize(ctx, c, req.Conv)
	if err != nil {
		return nil, err
	}
	cur := &fsm.Cursor{UID: c.Uid, Conv: conv, Seq: req.Seq, ID: req.Id}
	cmd := fsm.Command{Read: cur}
	kind := "read"
	if delivered {
		cur.Device, cmd, kind = c.Device, fsm.Command{Ack: cur}, "delivered"
	}
	res, err := s.n.convShard(conv).propose(ctx, cmd)
	if err != nil {
		return nil, commitError(err)
	}
	if res.Err != nil {
		return nil, domainError(res.Err, req.Conv)
	}
	if res.Dup {
		// The cursor was there already: nothing to tell anyone (a client
		// repeating read or ack must not make pushes to the others).
		return &pb.CursorReply{Seq: res.Seq, Id: res.ID}, nil
	}
	to := res.Members
	if delivered {
		to = others(res.Members, c.Uid)
	}
	s.n.fanout.deliverLater(&pb.Push{Event: &pb.Push_Receipt{Receipt: &pb.Receipt{
		Kind: kind, Conv: req.Conv, User: c.User, Seq: res.Seq, Id: res.ID}}}, to)
	return &pb.CursorReply{Seq: res.Seq, Id: res.ID}, nil
}

func others(uids []uint64, me uint64) []uint64 {
	out := make([]uint64, 0, len(uids))
	for _, u := range uids {
		if u != me {
			out = append(out, u)
		}
	}
	return out
}

func (s *messageService) Ack(ctx context.Context, req *pb.CursorRequest) (*pb.CursorReply, error) {
	return s.cursor(ctx, req, true)
}

func (s *messageService) Read(ctx context.Context, req *pb.CursorRequest) (*pb.CursorReply, error) {
	return s.cursor(ctx, req, false)
}

func (s *messageService) Typing(ctx context.Context, req *pb.TypingRequest) (*pb.Empty, error) {
	c := req.Caller
	if err := caller(c); err != nil {
		return nil, err
	}
	conv, members, err := s.n.authorize(ctx, c, req.Conv)
	if err != nil {
		return nil, err
	}
	if a, b, ok := convid.DMUIDs(conv); ok && len(members) == 0 {
		// A DM with no message yet: its members are its two users.
		members = []uint64{a, b}
	}
	s.n.fanout.deliver(ctx, &pb.Push{Event: &pb.Push_Typing{Typing: &pb.Typing{Conv: req.Conv, User: c.User}}},
		others(members, c.Uid))
	return &pb.Empty{}, nil
}

// group is the group of a group conversation id.
func group(conv string) string {
	g, _ := convid.GroupOf(conv)
	return g
}

// replyBytes bounds the messages of one history or sync reply by their
// size in the client's frame (wireSize): well under gRPC's 4 MiB message
// between node and gateway, and under what a client reads in one frame. A
// page cut by it says more, and the next page goes on from where it
// stopped.
const replyBytes = 1 << 20

// wireSize is a message's size in a client's frame, an upper bound: JSON
// writes <, >, &, quotes, backslashes and control characters as up to six
// bytes.
func wireSize(m *fsm.Message) int {
	n := 160 + len(m.Conv) + len(m.ID) + len(m.From) + len(m.Cmid)
	for i := 0; i < len(m.Text); i++ {
		switch c := m.Text[i]; {
		case c < 0x20 || c == '<' || c == '>' || c == '&' || c == '"' || c == '\\':
			n += 6
		default:
			n++
		}
	}
	return n
}

// fitBytes keeps of msgs what fits in budget bytes of wireSize, from the
// start or, with keepEnd, from the end (the newest of a page read
// backwards). It always keeps one message when budget is positive, so
// that a page makes progress whatever one message weighs (a message is
// at most wire.MaxText). It returns the bytes kept and whether any
// message was left out.
func fitBytes(msgs []fsm.Message, budget int, keepEnd bool) (kept []fsm.Message, used int, cut bool) {
	if budget <= 0 {
		return nil, 0, len(msgs) > 0
	}
	n := 0
	for n < len(msgs) {
		i := n
		if keepEnd {
			i = len(msgs) - 1 - n
		}
		size := wireSize(&msgs[i])
		if n > 0 && used+size > budget {
			break
		}
		used += size
		n++
	}
	if keepEnd {
		return msgs[len(msgs)-n:], used, n < len(msgs)
	}
	return msgs[:n], used, n < len(msgs)
}
