package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// fakeCluster is an in-test stand-in for the gateways and nodes: one shared
// state served by several fake gateways. It speaks enough of the protocol
// to exercise the client (register, login, resume, send, sync, history,
// groups, presence, user info) plus test-only ops:
//   - test_push {kind, n}: n pushes {"push": kind, "i": i}, then the reply;
//   - test_slow {delay_ms, text}: replies {"echo": text} after the delay,
//     concurrently with later requests, so replies come out of order.
//
// Lock order: fakeCluster.mu, then fakeGateway.mu, then fakeConn.wmu.
type fakeCluster struct {
	t        testing.TB
	gateways []*fakeGateway

	mu        sync.Mutex
	users     map[string]*fakeUser
	tokens    map[string]string // token -> user
	log       []Message         // every message; a sync cursor is an index
	seqs      map[string]uint64 // conv -> last seq
	groups    map[string]map[string]bool
	sent      map[string]SendResult // user|conv|cmid -> first result
	nextToken int
	logins    int
	resumes   int
	syncReqs  []string // cursor of each sync request ("" when by after)

	// Knobs, set by tests under mu.
	syncIgnoresCursor bool   // sync replays everything: the client must dedup
	syncHook          func() // runs (unlocked) before a sync reply is made
	sendTimeouts      int    // the next sends apply but reply `timeout`
	sendRefusals      int    // the next sends are refused `unavailable`, not applied
}

type fakeUser struct {
	uid      uint64
	password string
	nickname string
	created  int64
}

type fakeGateway struct {
	c      *fakeCluster
	name   string
	srv    *httptest.Server
	url    string
	refuse atomic.Bool // answer handshakes with 503
	wg     sync.WaitGroup

	mu     sync.Mutex
	conns  map[*fakeConn]bool
	closed bool
}

type fakeConn struct {
	gw     *fakeGateway
	ws     *websocket.Conn
	closed chan struct{} // ends the waits of test_slow
	wmu    sync.Mutex
	user   string // guarded by fakeCluster.mu
}

// fakeRequest holds the fields of every op; "after" is an object in sync
// and a number in history.
type fakeRequest struct {
	User, Password, Device, Token, Nickname string
	To, Group, Text, Cmid, Cursor, Conv     string
	Kind                                    string
	After                                   json.RawMessage
	Before, Seq                             uint64
	Limit, N                                int
	DelayMs                                 int `json:"delay_ms"`
	Members, Users                          []string
}

func newFakeCluster(t testing.TB, gateways int) *fakeCluster {
	t.Helper()
	c := &fakeCluster{
		t:      t,
		users:  map[string]*fakeUser{},
		tokens: map[string]string{},
		seqs:   map[string]uint64{},
		groups: map[string]map[string]bool{},
		sent:   map[string]SendResult{},
	}
	for i := range gateways {
		g := &fakeGateway{c: c, name: fmt.Sprintf("g%d", i+1), conns: map[*fakeConn]bool{}}
		g.srv = httptest.NewServer(g)
		g.url = "ws" + strings.TrimPrefix(g.srv.URL, "http") + "/ws"
		c.gateways = append(c.gateways, g)
	}
	t.Cleanup(func() {
		for _, g := range c.gateways {
			g.kill()
		}
	})
	return c
}

func (c *fakeCluster) urls() []string {
	var u []string
	for _, g := range c.gateways {
		u = append(u, g.url)
	}
	return u
}

// addUser creates an account directly.
func (c *fakeCluster) addUser(name, password string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.users[name] = &fakeUser{uid: uint64(len(c.users) + 1), password: password, created: 1700000000000}
}

// kill stops the gateway like a crash: the listener and every connection.
func (g *fakeGateway) kill() {
	g.mu.Lock()
	already := g.closed
	g.closed = true
	g.mu.Unlock()
	if !already {
		g.srv.Close()
	}
	g.drop()
	g.wg.Wait()
}

// drop breaks every connection without a close frame (code 1006).
func (g *fakeGateway) drop() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for fc := range g.conns {
		_ = fc.ws.UnderlyingConn().Close()
	}
}

var fakeUpgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}

func (g *fakeGateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.wg.Add(1)
	defer g.wg.Done()
	if g.refuse.Load() {
		http.Error(w, "gateway refusing connections", http.StatusServiceUnavailable)
		return
	}
	ws, err := fakeUpgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	fc := &fakeConn{gw: g, ws: ws, closed: make(chan struct{})}
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		_ = ws.Close()
		return
	}
	g.conns[fc] = true
	g.mu.Unlock()
	var slow sync.WaitGroup
	defer func() {
		g.mu.Lock()
		delete(g.conns, fc)
		g.mu.Unlock()
		_ = ws.Close()
		close(fc.closed)
		slow.Wait()
	}()
	ws.SetReadLimit(64 << 10)
	for {
		_, data, err := ws.ReadMessage()
		if errors.Is(err, websocket.ErrReadLimit) {
			// gorilla has sent close 1009; read on until the client hangs up,
			// so that unread input does not turn our close into a reset.
			_ = ws.UnderlyingConn().SetReadDeadline(time.Now().Add(5 * time.Second))
			_, _ = io.Copy(io.Discard, ws.UnderlyingConn())
			return
		}
		if err != nil {
			return
		}
		fc.serve(data, &slow)
	}
}

func (fc *fakeConn) write(v any) {
	data, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	fc.wmu.Lock()
	defer fc.wmu.Unlock()
	_ = fc.ws.WriteMessage(websocket.TextMessage, data)
}

func (fc *fakeConn) serve(data []byte, slow *sync.WaitGroup) {
	var env struct {
		ID json.RawMessage `json:"id"`
		Op string          `json:"op"`
	}
	fail := func(id json.RawMessage, code, msg string) {
		if id == nil {
			id = json.RawMessage("null")
		}
		fc.write(map[string]any{"id": id, "ok": false, "error": map[string]string{"code": code, "message": msg}})
	}
	if err := json.Unmarshal(data, &env); err != nil {
		fail(nil, CodeBadRequest, "frame is not a JSON object")
		return
	}
	if env.ID == nil || string(env.ID) == "null" {
		fail(nil, CodeBadRequest, "missing id")
		return
	}
	var req fakeRequest
	if err := json.Unmarshal(data, &req); err != nil {
		fail(env.ID, CodeBadRequest, err.Error())
		return
	}
	if env.Op == "test_slow" {
		slow.Add(1)
		go func() {
			defer slow.Done()
			select {
			case <-time.After(time.Duration(req.DelayMs) * time.Millisecond):
			case <-fc.closed:
				return
			}
			fc.write(map[string]any{"id": env.ID, "ok": true, "echo": req.Text})
		}()
		return
	}
	if env.Op == "test_push" {
		for i := range req.N {
			fc.write(map[string]any{"push": req.Kind, "i": i})
		}
	}
	fields, e := fc.gw.c.apply(fc, env.Op, req)
	if e != nil {
		fail(env.ID, e.Code, e.Message)
		return
	}
	if fields == nil {
		fields = map[string]any{}
	}
	fields["id"], fields["ok"] = env.ID, true
	fc.write(fields)
}

// apply runs one op against the shared state.
func (c *fakeCluster) apply(fc *fakeConn, op string, r fakeRequest) (map[string]any, *Error) {
	if op == "sync" {
		c.mu.Lock()
		hook := c.syncHook
		c.mu.Unlock()
		if hook != nil {
			hook()
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	me := fc.user
	if !fakeOps[op] {
		return nil, &Error{CodeBadRequest, "unknown op " + strconv.Quote(op)}
	}
	switch op {
	case "ping", "test_push":
		return nil, nil
	case "register":
		if !nameRE.MatchString(r.User) || len(r.Password) < 8 {
			return nil, &Error{CodeBadRequest, "bad user name or password"}
		}
		if c.users[r.User] != nil {
			return nil, &Error{CodeConflict, "name taken"}
		}
		c.users[r.User] = &fakeUser{uid: uint64(len(c.users) + 1), password: r.Password, created: 1700000000000}
		return map[string]any{"uid": c.users[r.User].uid}, nil
	case "login":
		u := c.users[r.User]
		if u == nil || u.password != r.Password {
			return nil, &Error{CodeUnauthorized, "bad credentials"}
		}
		c.logins++
		c.nextToken++
		tok := "tok" + strconv.Itoa(c.nextToken)
		c.tokens[tok] = r.User
		fc.user = r.User
		return c.authReply(fc, r.User, tok), nil
	case "resume":
		user, ok := c.tokens[r.Token]
		if !ok {
			return nil, &Error{CodeUnauthorized, "unknown token"}
		}
		c.resumes++
		fc.user = user
		return c.authReply(fc, user, r.Token), nil
	}
	if me == "" {
		return nil, &Error{CodeUnauthorized, "log in first"}
	}
	switch op {
	case "send":
		conv := GroupConv(r.Group)
		if r.To != "" {
			conv = DMConv(me, r.To)
		}
		if !slices.Contains(c.members(conv), me) {
			return nil, &Error{CodeForbidden, "not a member of " + conv}
		}
		if r.Text == "" || r.Cmid == "" {
			return nil, &Error{CodeBadRequest, "text and cmid are required"}
		}
		if c.sendRefusals > 0 {
			c.sendRefusals--
			return nil, &Error{CodeUnavailable, "no quorum: the shard has no leader on this side"}
		}
		key := me + "|" + conv + "|" + r.Cmid
		res, dup := c.sent[key]
		if !dup {
			m := c.appendLocked(conv, me, r.Text, r.Cmid, fc)
			res = SendResult{Conv: m.Conv, Seq: m.Seq, ID: m.ID, Ts: m.Ts}
			c.sent[key] = res
		}
		if c.sendTimeouts > 0 {
			c.sendTimeouts--
			return nil, &Error{CodeTimeout, "commit not confirmed in time"}
		}
		return map[string]any{"conv": res.Conv, "seq": res.Seq, "msg_id": res.ID, "ts": res.Ts, "dup": dup}, nil
	case "sync":
		return c.syncLocked(me, r), nil
	case "history":
		if !slices.Contains(c.members(r.Conv), me) {
			return nil, &Error{CodeForbidden, "not a member of " + r.Conv}
		}
		var after uint64
		_ = json.Unmarshal(r.After, &after)
		var page []Message
		for _, m := range c.log {
			if m.Conv == r.Conv && m.Seq > after && (r.Before == 0 || m.Seq < r.Before) {
				page = append(page, m)
			}
		}
		limit := orDefault(r.Limit, 50)
		more := len(page) > limit
		if more && after == 0 {
			page = page[len(page)-limit:]
		} else if more {
			page = page[:limit]
		}
		return map[string]any{"messages": nonNil(page), "more": more, "consistency": "linearizable"}, nil
	case "ack", "read", "typing":
		return nil, nil
	case "group_create":
		if c.groups[r.Group] != nil {
			return nil, &Error{CodeConflict, "group exists"}
		}
		c.groups[r.Group] = map[string]bool{me: true}
		for _, m := range r.Members {
			c.groups[r.Group][m] = true
		}
		return map[string]any{"conv": GroupConv(r.Group)}, nil
	case "group_join", "group_leave", "group_members":
		g := c.groups[r.Group]
		if g == nil {
			return nil, &Error{CodeNotFound, "no group " + r.Group}
		}
		switch op {
		case "group_join":
			g[me] = true
		case "group_leave":
			delete(g, me)
		default:
			return map[string]any{"members": c.members(GroupConv(r.Group))}, nil
		}
		return nil, nil
	case "presence":
		p := map[string]PresenceState{}
		for _, u := range r.Users {
			p[u] = PresenceState{}
			for _, g := range c.gateways {
				if g.online(u) {
					p[u] = PresenceState{Online: true, Gateway: g.name}
				}
			}
		}
		return map[string]any{"presence": p}, nil
	case "user_info":
		u := c.users[r.User]
		if u == nil {
			return nil, &Error{CodeNotFound, "no user " + r.User}
		}
		return map[string]any{"user": r.User, "uid": u.uid, "nickname": u.nickname, "created": u.created}, nil
	case "user_update":
		c.users[me].nickname = r.Nickname
		return nil, nil
	}
	panic("fake gateway: op " + op + " listed but not served")
}

var fakeOps = map[string]bool{"ping": true, "test_push": true, "register": true, "login": true, "resume": true,
	"send": true, "sync": true, "history": true, "ack": true, "read": true, "typing": true, "group_create": true,
	"group_join": true, "group_leave": true, "group_members": true, "presence": true, "user_info": true, "user_update": true}

func orDefault(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}

func nonNil(m []Message) []Message {
	if m == nil {
		return []Message{}
	}
	return m
}

func (c *fakeCluster) authReply(fc *fakeConn, user, token string) map[string]any {
	return map[string]any{"uid": c.users[user].uid, "token": token, "mode": "cp", "gateway": fc.gw.name, "node": "n1"}
}

func (c *fakeCluster) syncLocked(me string, r fakeRequest) map[string]any {
	c.syncReqs = append(c.syncReqs, r.Cursor)
	start := 0
	if r.Cursor != "" && !c.syncIgnoresCursor {
		start, _ = strconv.Atoi(r.Cursor)
	}
	after := map[string]uint64{}
	if r.Cursor == "" {
		_ = json.Unmarshal(r.After, &after)
	}
	limit := orDefault(r.Limit, 500)
	var msgs []Message
	i := start
	for ; i < len(c.log) && len(msgs) < limit; i++ {
		m := c.log[i]
		if slices.Contains(c.members(m.Conv), me) && m.Seq > after[m.Conv] {
			msgs = append(msgs, m)
		}
	}
	var convs []ConvMax
	for conv, seq := range c.seqs {
		if slices.Contains(c.members(conv), me) {
			convs = append(convs, ConvMax{conv, seq})
		}
	}
	return map[string]any{"messages": nonNil(msgs), "convs": convs, "cursor": strconv.Itoa(i), "more": i < len(c.log)}
}

// members lists who belongs to conv.
func (c *fakeCluster) members(conv string) []string {
	if rest, ok := strings.CutPrefix(conv, "dm:"); ok {
		return strings.SplitN(rest, ":", 2)
	}
	var m []string
	for u := range c.groups[strings.TrimPrefix(conv, "g:")] {
		m = append(m, u)
	}
	slices.Sort(m)
	return m
}

// appendLocked adds a message and pushes it to every member's connection
// but the sender's (skip may be nil).
func (c *fakeCluster) appendLocked(conv, from, text, cmid string, skip *fakeConn) Message {
	c.seqs[conv]++
	m := Message{Conv: conv, Seq: c.seqs[conv], ID: fmt.Sprintf("m%d", len(c.log)+1), From: from,
		Text: text, Cmid: cmid, Ts: time.Now().UnixMilli(), Origin: "n1"}
	c.log = append(c.log, m)
	for _, u := range c.members(conv) {
		c.pushLocked(u, skip, map[string]any{"push": PushMessage, "message": m})
	}
	return m
}

// send adds a message from a user, as if sent on another connection.
func (c *fakeCluster) send(from, to, text string) Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.appendLocked(DMConv(from, to), from, text, NewCmid(), nil)
}

// insertSilently adds a message and pushes nothing, like a message that an
// AP replica learns about after a partition heals.
func (c *fakeCluster) insertSilently(from, to, text string) Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	conv := DMConv(from, to)
	c.seqs[conv]++
	m := Message{Conv: conv, Seq: c.seqs[conv], ID: fmt.Sprintf("m%d", len(c.log)+1), From: from, Text: text, Cmid: NewCmid()}
	c.log = append(c.log, m)
	return m
}

// push sends a push frame to every connection of user.
func (c *fakeCluster) push(user string, frame map[string]any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pushLocked(user, nil, frame)
}

func (c *fakeCluster) pushLocked(user string, skip *fakeConn, frame map[string]any) {
	for _, g := range c.gateways {
		g.mu.Lock()
		for fc := range g.conns {
			if fc.user == user && fc != skip {
				fc.write(frame)
			}
		}
		g.mu.Unlock()
	}
}

func (g *fakeGateway) online(user string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	for fc := range g.conns {
		if fc.user == user {
			return true
		}
	}
	return false
}

// counters returns logins, resumes and the sync cursors seen so far.
func (c *fakeCluster) counters() (logins, resumes int, syncs []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.logins, c.resumes, slices.Clone(c.syncReqs)
}

func (c *fakeCluster) set(f func(c *fakeCluster)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f(c)
}
