package gateway

import (
	"context"
	"errors"
	"strconv"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"mpim/gateway/wire"
	"mpim/internal/convid"
	"mpim/internal/spans"
	"mpim/internal/token"
	pb "mpim/proto/mpimpb"
)

// Reply and push bodies, as the protocol spells them.
type (
	loginFields struct {
		UID     uint64 `json:"uid"`
		Token   string `json:"token"`
		Mode    string `json:"mode"`
		Gateway string `json:"gateway"`
		Node    string `json:"node"`
	}
	sendFields struct {
		Conv string `json:"conv"`
		Seq  uint64 `json:"seq"`
		// MsgID is the message id: the protocol's reply field "id" is also
		// the envelope's, which must echo the request, so the message id
		// travels as msg_id (see docs/protocol.md).
		MsgID string `json:"msg_id"`
		Ts    int64  `json:"ts"`
		Dup   bool   `json:"dup"`
	}
	convMax struct {
		Conv   string `json:"conv"`
		MaxSeq uint64 `json:"max_seq"`
	}
	syncFields struct {
		Messages []wire.Message `json:"messages"`
		Convs    []convMax      `json:"convs"`
		Cursor   string         `json:"cursor"`
		More     bool           `json:"more"`
	}
	historyFields struct {
		Messages    []wire.Message `json:"messages"`
		More        bool           `json:"more"`
		Consistency string         `json:"consistency"`
	}
	userFields struct {
		User     string `json:"user"`
		UID      uint64 `json:"uid"`
		Nickname string `json:"nickname"`
		Created  int64  `json:"created"`
	}
	cursorFields struct {
		Seq uint64 `json:"seq"`
		ID  string `json:"msg_id"`
	}
	presenceState struct {
		Online  bool   `json:"online"`
		Gateway string `json:"gateway,omitempty"`
	}
	messageFields struct {
		Message wire.Message `json:"message"`
	}
	receiptFields struct {
		Conv string `json:"conv"`
		User string `json:"user"`
		Seq  uint64 `json:"seq"`
		ID   string `json:"id"`
	}
	typingFields struct {
		Conv string `json:"conv"`
		User string `json:"user"`
	}
	presenceFields struct {
		User    string `json:"user"`
		Online  bool   `json:"online"`
		Gateway string `json:"gateway,omitempty"`
	}
	resyncFields struct {
		Conv    string `json:"conv"`
		FromSeq uint64 `json:"from_seq"`
	}
	kickedFields struct {
		Reason  string `json:"reason"`
		Message string `json:"message,omitempty"`
	}
)

func toWire(m *pb.Message) wire.Message {
	out := wire.Message{Conv: m.Conv, Seq: m.Seq, ID: m.Id, From: m.From, Text: m.Text, Cmid: m.Cmid, Ts: m.Ts, Origin: m.Origin}
	if m.Ap {
		t := m.Tentative
		out.Tentative = &t
	}
	return out
}

func toWireList(ms []*pb.Message) []wire.Message {
	out := make([]wire.Message, len(ms))
	for i, m := range ms {
		out[i] = toWire(m)
	}
	return out
}

// serve answers one request. A panic becomes an internal error reply: a
// bug must never take the gateway or other clients down.
// serve answers one request whose frame was read at read.
func (s *session) serve(req *wire.Request, read time.Time) {
	code := "ok"
	ctx := context.Background()
	if req.Op == wire.OpSend {
		if id := s.who(); id != nil {
			key := spans.Key(id.user, req.Cmid)
			// The send's trace (with --trace-file or --otlp): its root span
			// here, carried to the node in the call's metadata; the stages
			// below are its children.
			var end func()
			ctx, end = s.g.cfg.Spans.Start(ctx, key, "gateway: send")
			defer end()
			s.g.cfg.Spans.Since(key, "gateway: frame read, waiting for a request slot", read)
			defer s.g.cfg.Spans.Since(key, "gateway: the whole send, frame read to reply queued", read)
		}
	}
	defer func() {
		if r := recover(); r != nil {
			s.g.log.Error("panic serving request", "op", req.Op, "panic", r)
			code = string(wire.Internal)
			s.send(wire.ErrorReply(req.ID, wire.Errorf(wire.Internal, "gateway bug while serving %s (%v); please report it", req.Op, r)))
		}
		s.g.metrics.requests.WithLabelValues(req.Op, code).Inc()
		s.g.metrics.requestSeconds.WithLabelValues(req.Op, outcomeOf(code)).Observe(time.Since(read).Seconds())
	}()
	var body any
	var werr *wire.Error
	if wire.NeedsAuth(req.Op) && s.who() == nil {
		werr = wire.Errorf(wire.Unauthorized, "%s needs a logged-in connection; send login or resume first", req.Op)
	} else {
		body, werr = s.do(ctx, req)
	}
	if werr != nil {
		code = string(werr.Code)
		s.send(wire.ErrorReply(req.ID, werr))
		return
	}
	s.send(wire.Reply(req.ID, body))
	if req.Op == wire.OpLogin || req.Op == wire.OpResume {
		// Undelivered messages follow the reply.
		close(s.authed)
	}
}

// call runs fn on a node with the session's timeout.
func (s *session) call(kind callKind, fn func(context.Context, *nodeConn) error) (*nodeConn, *wire.Error) {
	return s.g.nodes.call(context.Background(), s.g.cfg.CallTimeout, kind, fn)
}

func (s *session) do(ctx context.Context, req *wire.Request) (any, *wire.Error) {
	c := s.caller()
	switch req.Op {
	case wire.OpPing:
		return struct {
			Ts int64 `json:"ts"`
		}{time.Now().UnixMilli()}, nil
	case wire.OpRegister:
		var rep *pb.RegisterReply
		_, werr := s.call(write, func(ctx context.Context, n *nodeConn) (err error) {
			rep, err = n.users.Register(ctx, &pb.RegisterRequest{User: req.User, Password: req.Password})
			return
		})
		if werr != nil {
			return nil, werr
		}
		return struct {
			UID uint64 `json:"uid"`
		}{rep.Uid}, nil
	case wire.OpLogin:
		return s.login(req)
	case wire.OpResume:
		return s.resume(req)
	case wire.OpUserInfo:
		var rep *pb.UserInfoReply
		_, werr := s.call(readCall, func(ctx context.Context, n *nodeConn) (err error) {
			rep, err = n.users.Info(ctx, &pb.UserInfoRequest{Caller: c, User: req.User})
			return
		})
		if werr != nil {
			return nil, werr
		}
		return userFields{User: rep.User, UID: rep.Uid, Nickname: rep.Nickname, Created: rep.Created}, nil
	case wire.OpUserUpdate:
		_, werr := s.call(idempotentWrite, func(ctx context.Context, n *nodeConn) error {
			_, err := n.users.Update(ctx, &pb.UserUpdateRequest{Caller: c, Nickname: req.Nickname})
			return err
		})
		return nil, werr
	case wire.OpSend:
		var rep *pb.SendReply
		called := time.Now()
		// A CP write goes first to its shard's leader when the gateway
		// knows the shard (from an earlier send to the same target) and
		// reaches the leader; else to the preferred node, which forwards.
		target := sendTarget(req)
		var leader *nodeConn
		if sh, ok := s.shardOf(target); ok {
			leader = s.g.nodes.leaderOf(sh)
		}
		var trailer metadata.MD
		_, werr := s.g.nodes.callVia(ctx, s.g.cfg.CallTimeout, idempotentWrite, leader, func(ctx context.Context, n *nodeConn) (err error) {
			rep, err = n.messages.Send(ctx, &pb.SendRequest{Caller: c, To: req.To, Group: req.Group, Text: req.Text, Cmid: req.Cmid}, grpc.Trailer(&trailer))
			return
		})
		s.learnShard(target, trailer)
		s.g.cfg.Spans.Since(spans.Key(c.User, req.Cmid), "gateway: node call (gRPC send)", called)
		if werr != nil {
			return nil, werr
		}
		m := rep.Message
		return sendFields{Conv: m.Conv, Seq: m.Seq, MsgID: m.Id, Ts: m.Ts, Dup: rep.Dup}, nil
	case wire.OpSync:
		var rep *pb.SyncReply
		_, werr := s.call(readCall, func(ctx context.Context, n *nodeConn) (err error) {
			rep, err = n.messages.Sync(ctx, &pb.SyncRequest{Caller: c, Cursor: req.Cursor, After: req.After, Limit: uint32(req.Limit)})
			return
		})
		if werr != nil {
			return nil, werr
		}
		out := syncFields{Messages: toWireList(rep.Messages), Convs: make([]convMax, len(rep.Convs)), Cursor: rep.Cursor, More: rep.More}
		for i, cv := range rep.Convs {
			out.Convs[i] = convMax{Conv: cv.Conv, MaxSeq: cv.MaxSeq}
		}
		return out, nil
	case wire.OpHistory:
		var rep *pb.HistoryReply
		_, werr := s.call(readCall, func(ctx context.Context, n *nodeConn) (err error) {
			rep, err = n.messages.History(ctx, &pb.HistoryRequest{Caller: c, Conv: req.Conv, Before: req.BeforeSeq,
				After: req.AfterSeq, Limit: uint32(req.Limit), Read: req.Read})
			return
		})
		if werr != nil {
			return nil, werr
		}
		return historyFields{Messages: toWireList(rep.Messages), More: rep.More, Consistency: rep.Consistency}, nil
	case wire.OpAck, wire.OpRead:
		var rep *pb.CursorReply
		_, werr := s.call(idempotentWrite, func(ctx context.Context, n *nodeConn) (err error) {
			r := &pb.CursorRequest{Caller: c, Conv: req.Conv, Seq: req.Seq, Id: req.MsgID}
			if req.Op == wire.OpAck {
				rep, err = n.messages.Ack(ctx, r)
			} else {
				rep, err = n.messages.Read(ctx, r)
			}
			return
		})
		if werr != nil {
			return nil, werr
		}
		return cursorFields{Seq: rep.Seq, ID: rep.Id}, nil
	case wire.OpTyping:
		if !s.typingAllowed(req.Conv, time.Now()) {
			s.g.metrics.refused.WithLabelValues("typing").Inc()
			return nil, wire.Errorf(wire.RateLimited, "typing: at most one notice per %v in a conversation", s.g.cfg.TypingInterval)
		}
		_, werr := s.call(readCall, func(ctx context.Context, n *nodeConn) error {
			_, err := n.messages.Typing(ctx, &pb.TypingRequest{Caller: c, Conv: req.Conv})
			return err
		})
		return nil, werr
	case wire.OpGroupCreate, wire.OpGroupJoin, wire.OpGroupLeave, wire.OpGroupMembers:
		return s.group(req, c)
	case wire.OpPresence:
		var rep *pb.PresenceReply
		_, werr := s.call(readCall, func(ctx context.Context, n *nodeConn) (err error) {
			rep, err = n.presence.Query(ctx, &pb.PresenceQuery{Caller: c, Users: req.Users})
			return
		})
		if werr != nil {
			return nil, werr
		}
		// The node answers for the users who share a conversation with
		// the caller; the others read as offline, and are not followed.
		out := make(map[string]presenceState, len(req.Users))
		var follow []string
		for _, name := range req.Users {
			p, ok := rep.Presence[name]
			if !ok {
				out[name] = presenceState{}
				continue
			}
			out[name] = presenceState{Online: p.Online, Gateway: p.Gateway}
			follow = append(follow, name)
		}
		s.g.watch(s, follow)
		return struct {
			Presence map[string]presenceState `json:"presence"`
		}{out}, nil
	case wire.OpStatus:
		return s.status(req, c)
	}
	return nil, wire.Errorf(wire.BadRequest, "unknown op %q", req.Op)
}

// statusFields is the reply to status: where this session's requests go,
// and, for a conversation, its shard and that shard's leader as the node
// answering sees it (CP; AP has no leader).
type statusFields struct {
	Mode    string `json:"mode"`
	Gateway string `json:"gateway"`
	Node    string `json:"node"`
	RedisOK bool   `json:"redis_ok"`
	Shards  int    `json:"shards"`
	Conv    string `json:"conv,omitempty"`
	Shard   *int   `json:"shard,omitempty"`
	Leader  string `json:"leader,omitempty"`
	State   string `json:"state,omitempty"`
	Term    uint64 `json:"term,omitempty"`
}

// status answers the status op from the node the gateway uses now.
func (s *session) status(req *wire.Request, c *pb.Caller) (any, *wire.Error) {
	var st *pb.NodeStatus
	var key string
	_, werr := s.call(readCall, func(ctx context.Context, n *nodeConn) (err error) {
		if st, err = n.admin.Status(ctx, &pb.Empty{}); err != nil || req.Conv == "" {
			return err
		}
		w, _ := convid.ParseWire(req.Conv)
		if w.Kind == convid.Group {
			key = req.Conv
			return nil
		}
		peer := w.A
		if peer == c.User {
			peer = w.B
		}
		info, err := n.users.Info(ctx, &pb.UserInfoRequest{Caller: c, User: peer})
		if err == nil {
			key = convid.DMKey(c.Uid, info.Uid)
		}
		return err
	})
	if werr != nil {
		return nil, werr
	}
	out := statusFields{Mode: st.Mode, Gateway: s.g.cfg.ID, Node: st.Id, RedisOK: st.RedisOk, Shards: len(st.Shards), Conv: req.Conv}
	if key != "" && len(st.Shards) > 0 {
		i := convid.Shard(key, len(st.Shards))
		sh := st.Shards[i]
		out.Shard, out.Leader, out.State, out.Term = &i, sh.Leader, sh.State, sh.Term
	}
	return out, nil
}

func (s *session) group(req *wire.Request, c *pb.Caller) (any, *wire.Error) {
	kind := write
	if req.Op == wire.OpGroupMembers {
		kind = readCall
	} else if req.Op == wire.OpGroupJoin {
		kind = idempotentWrite
	}
	var rep *pb.GroupReply
	_, werr := s.call(kind, func(ctx context.Context, n *nodeConn) (err error) {
		r := &pb.GroupRequest{Caller: c, Group: req.Group, Members: req.Members}
		switch req.Op {
		case wire.OpGroupCreate:
			rep, err = n.groups.Create(ctx, r)
		case wire.OpGroupJoin:
			rep, err = n.groups.Join(ctx, r)
		case wire.OpGroupLeave:
			rep, err = n.groups.Leave(ctx, r)
		default:
			rep, err = n.groups.Members(ctx, r)
		}
		return
	})
	if werr != nil {
		return nil, werr
	}
	switch req.Op {
	case wire.OpGroupCreate:
		return struct {
			Conv string `json:"conv"`
		}{rep.Conv}, nil
	case wire.OpGroupMembers:
		return struct {
			Members []string `json:"members"`
		}{append([]string{}, rep.Members...)}, nil
	}
	return nil, nil
}

func (s *session) login(req *wire.Request) (any, *wire.Error) {
	if s.who() != nil {
		return nil, wire.Errorf(wire.BadRequest, "this connection is already logged in; open a new connection for another user or device")
	}
	now := time.Now()
	if wait := s.g.guard.loginWait(req.User, s.ip, now); wait > 0 {
		s.g.metrics.refused.WithLabelValues("login_throttled").Inc()
		return nil, wire.Errorf(wire.RateLimited, "too many failed logins for this account or from your address; try again in %v", wait.Round(time.Second))
	}
	var rep *pb.LoginReply
	_, werr := s.call(readCall, func(ctx context.Context, n *nodeConn) (err error) {
		rep, err = n.users.Login(ctx, &pb.LoginRequest{User: req.User, Password: req.Password, Device: req.Device})
		return
	})
	if werr != nil {
		if werr.Code == wire.Unauthorized {
			s.g.guard.loginFailed(req.User, s.ip, now)
		}
		return nil, werr
	}
	if !s.authenticate(identity{uid: rep.Uid, user: rep.User, device: req.Device, ap: rep.Mode == "ap"}) {
		return nil, wire.Errorf(wire.BadRequest, "this connection is already logged in")
	}
	s.bind(context.Background())
	return loginFields{UID: rep.Uid, Token: rep.Token, Mode: rep.Mode, Gateway: s.g.cfg.ID, Node: rep.Node}, nil
}

// resume authenticates with a token alone: any gateway can verify it, on
// any side of a partition, without a node.
func (s *session) resume(req *wire.Request) (any, *wire.Error) {
	if s.who() != nil {
		return nil, wire.Errorf(wire.BadRequest, "this connection is already logged in; open a new connection for another user or device")
	}
	claims, err := token.Verify(s.g.cfg.Secret, req.Token, time.Now())
	if err != nil {
		msg := "invalid token; log in with your password"
		if errors.Is(err, token.ErrExpired) {
			msg = "token expired; log in with your password"
		}
		return nil, wire.Errorf(wire.Unauthorized, "%s", msg)
	}
	id, mode := s.g.nodes.preferred().identity()
	if !s.authenticate(identity{uid: claims.UID, user: claims.User, device: req.Device, ap: mode == "ap"}) {
		return nil, wire.Errorf(wire.BadRequest, "this connection is already logged in")
	}
	s.bind(context.Background())
	return loginFields{UID: claims.UID, Token: req.Token, Mode: mode, Gateway: s.g.cfg.ID, Node: id}, nil
}

// outcomeOf names a reply's code the way the histograms do: ok,
// not_applied (unavailable: definitely not), unknown (timeout), refused
// (any other error).
func outcomeOf(code string) string {
	switch wire.Code(code) {
	case "ok":
		return "ok"
	case wire.Unavailable:
		return "not_applied"
	case wire.Timeout:
		return "unknown"
	}
	return "refused"
}

// maxSendTargets bounds a session's cache of its send targets' shards.
const maxSendTargets = 256

// sendTarget names what a send goes to: a user or a group.
func sendTarget(req *wire.Request) string {
	if req.Group != "" {
		return "#" + req.Group
	}
	return "@" + req.To
}

// shardOf returns the shard a CP node said target's conversation is in.
func (s *session) shardOf(target string) (int, bool) {
	s.typedMu.Lock()
	defer s.typedMu.Unlock()
	sh, ok := s.shards[target]
	return sh, ok
}

// learnShard keeps the shard a node's send answer named in its trailer.
func (s *session) learnShard(target string, md metadata.MD) {
	v := md.Get(convid.ShardTrailer)
	if len(v) != 1 {
		return
	}
	sh, err := strconv.Atoi(v[0])
	if err != nil || sh < 0 {
		return
	}
	s.typedMu.Lock()
	defer s.typedMu.Unlock()
	if s.shards == nil || len(s.shards) >= maxSendTargets {
		s.shards = make(map[string]int)
	}
	s.shards[target] = sh
}
