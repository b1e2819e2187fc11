package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gorilla/websocket"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"mpim/gateway/wire"
	pb "mpim/proto/mpimpb"
)

const testSecret = "test-secret-0123456789abcdef"

// harness is one gateway with its real sessions, deliverers and writers,
// in front of a fakeNode, with WebSocket clients on in-memory connections.
// It runs inside a testing/synctest bubble: time is the bubble's fake
// clock, and settle waits until every goroutine of the gateway is blocked,
// so each step of a test sees the complete, deterministic outcome of its
// input — no sleeps, no timed assertions. Inputs are what a gateway gets
// in production (pushes from a node, through dispatch; client frames;
// sync and history answers); outputs are what it sends (frames to
// clients, calls to the node).
type harness struct {
	t       *testing.T
	g       *Gateway
	node    *fakeNode
	window  int
	clients []*wsClient
	dialed  int
}

// harnessOptions shape a harness: the gateway's config (changed by cfg),
// the node's mode, and the socket buffer of each client connection.
type harnessOptions struct {
	mode   string
	window int
	cfg    func(*Config)
}

// newHarness starts a gateway in front of a fake node; it must be called
// inside a synctest bubble. Cleanup closes every client and checks that
// the gateway's goroutines end (synctest.Test fails on any left behind).
func newHarness(t *testing.T, opt harnessOptions) *harness {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Nodes = []string{"n1"}
	cfg.Secret = []byte(testSecret)
	cfg.RateLimit = 0
	// No pings in the tests' time frames (a ping is a frame of its own).
	cfg.PingInterval, cfg.PongTimeout = 100*time.Hour, 200*time.Hour
	cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
	if opt.cfg != nil {
		opt.cfg(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if opt.mode == "" {
		opt.mode = "cp"
	}
	if opt.window == 0 {
		opt.window = 1 << 20
	}
	node := newFakeNode(opt.mode)
	// The gateway asks the connection of a node whether it is up before a
	// call; a client that never dials stays idle, which counts as up. The
	// node's services are the fakes.
	cc, err := grpc.NewClient("passthrough:///n1", grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	n := &nodeConn{addr: "n1", cc: cc, id: "n1", mode: opt.mode,
		users: fakeUsers{n: node}, messages: fakeMessages{n: node}, presence: fakePresence{n: node}}
	n.healthy.Store(true)
	log := cfg.Logger.With("gateway", cfg.ID)
	g := newGateway(cfg, log)
	g.nodes = &nodePool{nodes: []*nodeConn{n}, log: log, interval: cfg.HealthInterval, changed: make(chan struct{}, 1)}
	h := &harness{t: t, g: g, node: node, window: opt.window}
	t.Cleanup(func() {
		for _, c := range h.clients {
			c.conn.Close()
			<-c.done
		}
		synctest.Wait()
		g.work.Close()
		cc.Close()
	})
	return h
}

// wsClient is a WebSocket client of the harness: a pump reads its frames
// as they come and renders them for settle.
type wsClient struct {
	name    string
	session string // the id of its session on the gateway
	conn    *websocket.Conn
	mem     *memConn
	done    chan struct{}
	mu      sync.Mutex
	got     []string
	closed  string // how the connection ended, once it has
	nextID  int
}

// dial connects a client named name (its session's id is g1-N for the
// Nth connection). The request goes through the gateway's real upgrade
// handler, on an in-memory connection.
func (h *harness) dial(name string) *wsClient {
	h.t.Helper()
	srv, cli := memPipe(h.window)
	go func() {
		br := bufio.NewReader(srv)
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		h.g.serveWS(&hijacker{conn: srv, brw: bufio.NewReadWriter(br, bufio.NewWriter(srv)), header: http.Header{}}, req)
	}()
	d := websocket.Dialer{NetDialContext: func(context.Context, string, string) (net.Conn, error) { return cli, nil }}
	conn, _, err := d.Dial("ws://g1/ws", nil)
	if err != nil {
		h.t.Fatalf("dial %s: %v", name, err)
	}
	h.dialed++
	c := &wsClient{name: name, session: fmt.Sprintf("g1-%d", h.dialed), conn: conn, mem: cli, done: make(chan struct{})}
	h.clients = append(h.clients, c)
	go c.pump()
	return c
}

func (c *wsClient) pump() {
	defer close(c.done)
	for {
		_, data, err := c.conn.ReadMessage()
		c.mu.Lock()
		if err != nil {
			var ce *websocket.CloseError
			switch {
			case errors.As(err, &ce):
				c.closed = fmt.Sprintf("closed %d %q", ce.Code, ce.Text)
			case errors.Is(err, net.ErrClosed):
				c.closed = "closed by the client"
			default:
				c.closed = "closed without a close frame (" + err.Error() + ")"
			}
			c.got = append(c.got, c.closed)
			c.mu.Unlock()
			return
		}
		c.got = append(c.got, renderFrame(data))
		c.mu.Unlock()
	}
}

// request sends op with fields as a request frame; it returns the frame's id.
func (c *wsClient) request(op string, fields map[string]any) string {
	c.nextID++
	req := map[string]any{"id": strconv.Itoa(c.nextID), "op": op}
	for k, v := range fields {
		req[k] = v
	}
	b, _ := json.Marshal(req)
	c.conn.WriteMessage(websocket.TextMessage, b)
	return strconv.Itoa(c.nextID)
}

// take returns the frames rendered since the last take.
func (c *wsClient) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.got
	c.got = nil
	return out
}

// login logs in as user on device on the client named name, which it
// dials unless it is connected already.
func (h *harness) login(user, device, name string) *wsClient {
	var c *wsClient
	for _, x := range h.clients {
		if x.name == name {
			c = x
		}
	}
	if c == nil {
		c = h.dial(name)
	}
	fields := map[string]any{"user": user, "password": "pw"}
	if device != "" {
		fields["device"] = device
	}
	c.request(wire.OpLogin, fields)
	return c
}

// client returns the client named name, or the only (last) one for "".
func (h *harness) client(name string) *wsClient {
	h.t.Helper()
	for _, c := range h.clients {
		if c.name == name {
			return c
		}
	}
	if name == "" && len(h.clients) > 0 {
		return h.clients[len(h.clients)-1]
	}
	h.t.Fatalf("no client %q", name)
	return nil
}

// push has the node store a message and push it to the gateway, as its
// Redis channel or its node stream would (dispatch is where both land).
// skip names the session that sent it (it has the send reply).
func (h *harness) push(conv string, seq uint64, id string, tentative bool, skip string) {
	m := h.node.put(conv, seq, id, tentative)
	h.g.dispatch(&pb.Push{Event: &pb.Push_Message{Message: m}, ToUids: members(conv), Origin: "n1", SkipSession: skip}, "redis")
}

// typing has the node push that user is typing in conv.
func (h *harness) typing(conv, user string) {
	h.g.dispatch(&pb.Push{Event: &pb.Push_Typing{Typing: &pb.Typing{Conv: conv, User: user}}, ToUids: members(conv), Origin: "n1"}, "redis")
}

// resync has the node push a reorder of conv from seq on (AP).
func (h *harness) resync(conv string, from uint64) {
	h.g.dispatch(&pb.Push{Event: &pb.Push_Resync{Resync: &pb.Resync{Conv: conv, FromSeq: from}}, ToUids: members(conv), Origin: "n1"}, "redis")
}

// settle waits until every goroutine of the gateway is blocked and
// returns what happened since the last settle: the node calls first, in
// the order they ended, then each client's frames in the order it read
// them (runs of consecutive CP message frames collapsed).
func (h *harness) settle() []string {
	synctest.Wait()
	var out []string
	for _, c := range h.node.takeCalls() {
		out = append(out, "node: "+c)
	}
	for _, c := range h.clients {
		for _, l := range collapse(c.take()) {
			out = append(out, c.name+": "+l)
		}
	}
	return out
}

// metrics renders the gateway's delivery counters, as /metrics shows them.
func (h *harness) metrics() string {
	fams, err := h.g.metrics.reg.Gather()
	if err != nil {
		h.t.Fatal(err)
	}
	v := map[string]float64{}
	for _, f := range fams {
		if ms := f.GetMetric(); len(ms) == 1 && ms[0].GetCounter() != nil {
			v[f.GetName()] = ms[0].GetCounter().GetValue()
		}
	}
	return fmt.Sprintf("gap_fills=%v duplicates=%v slow_clients_dropped=%v", v["mpim_gateway_gap_fills_total"],
		v["mpim_gateway_duplicate_pushes_total"], v["mpim_gateway_slow_clients_dropped_total"])
}

// renderFrame renders a frame from the gateway in one line.
func renderFrame(data []byte) string {
	var f map[string]json.RawMessage
	if err := json.Unmarshal(data, &f); err != nil {
		return "undecodable frame " + string(data)
	}
	str := func(k string) string {
		var s string
		json.Unmarshal(f[k], &s)
		return s
	}
	if kind := str("push"); kind != "" {
		switch kind {
		case wire.PushMessage:
			var mf messageFields
			json.Unmarshal(data, &mf)
			m := mf.Message
			if m.Tentative == nil {
				return fmt.Sprintf("message %s seq=%d", m.Conv, m.Seq)
			}
			s := fmt.Sprintf("message %s seq=%d id=%s", m.Conv, m.Seq, m.ID)
			if *m.Tentative {
				s += " tentative"
			}
			return s
		case wire.PushResync:
			var r resyncFields
			json.Unmarshal(data, &r)
			return fmt.Sprintf("resync %s from=%d", r.Conv, r.FromSeq)
		}
		delete(f, "push")
		rest, _ := json.Marshal(f)
		return "push " + kind + " " + string(rest)
	}
	id := str("id")
	var ok bool
	json.Unmarshal(f["ok"], &ok)
	if !ok {
		var e struct{ Code, Message string }
		json.Unmarshal(f["error"], &e)
		return fmt.Sprintf("reply %s error %s: %s", id, e.Code, e.Message)
	}
	if _, login := f["token"]; login {
		var l loginFields
		json.Unmarshal(data, &l)
		return fmt.Sprintf("reply %s ok uid=%d mode=%s", id, l.UID, l.Mode)
	}
	delete(f, "id")
	delete(f, "ok")
	if len(f) == 0 {
		return "reply " + id + " ok"
	}
	rest, _ := json.Marshal(f)
	return "reply " + id + " ok " + string(rest)
}

var cpMessage = regexp.MustCompile(`^message (\S+) seq=(\d+)$`)

// collapse folds runs of six or more consecutive CP message frames of one
// conversation into one line.
func collapse(lines []string) []string {
	var out []string
	for i := 0; i < len(lines); {
		m := cpMessage.FindStringSubmatch(lines[i])
		if m == nil {
			out = append(out, lines[i])
			i++
			continue
		}
		first, _ := strconv.ParseUint(m[2], 10, 64)
		j := i + 1
		for ; j < len(lines); j++ {
			n := cpMessage.FindStringSubmatch(lines[j])
			if n == nil || n[1] != m[1] || n[2] != strconv.FormatUint(first+uint64(j-i), 10) {
				break
			}
		}
		if j-i < 6 {
			out = append(out, lines[i:j]...)
		} else {
			out = append(out, fmt.Sprintf("message %s seq=%d..%d (%d frames)", m[1], first, first+uint64(j-i-1), j-i))
		}
		i = j
	}
	return out
}

// hijacker is the http.ResponseWriter of an upgrade request read from an
// in-memory connection; gorilla hijacks the connection from it.
type hijacker struct {
	conn   net.Conn
	brw    *bufio.ReadWriter
	header http.Header
}

func (w *hijacker) Header() http.Header         { return w.header }
func (w *hijacker) Write(b []byte) (int, error) { return w.conn.Write(b) }
func (w *hijacker) WriteHeader(int)             {}
func (w *hijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return w.conn, w.brw, nil
}
