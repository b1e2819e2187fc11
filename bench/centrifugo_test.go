package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"

	"mpim/internal/redisproc"
)

// TestParseCFLine reads every kind of line Centrifugo's JSON protocol
// sends: the ping, replies, error replies and publication pushes, in the
// field order Centrifugo writes (the fast path) and in any other (the
// encoding/json path), which must agree.
func TestParseCFLine(t *testing.T) {
	data := string(cfData(nil, 42))
	for _, tc := range []struct {
		name, line string
		want       cfLine
		fast       bool
	}{
		{"ping", `{}`, cfLine{ping: true}, false},
		{"ping with spaces", " {} \r", cfLine{ping: true}, false},
		{"connect reply", `{"id":1,"connect":{"client":"c1","version":"6.9.1","ping":25,"pong":true}}`, cfLine{id: 1}, false},
		{"publish reply", `{"id":7,"publish":{}}`, cfLine{id: 7}, false},
		{"error reply", `{"id":3,"error":{"code":103,"message":"permission denied"}}`, cfLine{id: 3, err: &cfError{Code: 103, Message: "permission denied"}}, false},
		{"push as centrifugo writes it", `{"push":{"channel":"mpim_bench_3","pub":{"data":` + data + `,"offset":9}}}`, cfLine{push: true, channel: "mpim_bench_3", seq: 42}, true},
		{"push, data last", `{"push":{"channel":"mpim_bench_3","pub":{"data":` + data + `}}}`, cfLine{push: true, channel: "mpim_bench_3", seq: 42}, true},
		{"push, other field order", `{"push":{"pub":{"offset":9,"data":` + data + `},"channel":"mpim_bench_3"}}`, cfLine{push: true, channel: "mpim_bench_3", seq: 42}, false},
		{"push, escaped channel", `{"push":{"channel":"a\"b","pub":{"data":` + data + `}}}`, cfLine{push: true, channel: `a"b`, seq: 42}, false},
		{"push without a sequence number", `{"push":{"channel":"c","pub":{"data":{"text":"hi"}}}}`, cfLine{push: true, channel: "c"}, false},
		{"join push", `{"push":{"channel":"c","join":{"info":{"client":"x"}}}}`, cfLine{push: true, channel: "c"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseCFLine([]byte(tc.line))
			if err != nil {
				t.Fatalf("parseCFLine(%s): %v", tc.line, err)
			}
			ge, we := got.err, tc.want.err
			got.err, tc.want.err = nil, nil
			if got != tc.want || (ge == nil) != (we == nil) || ge != nil && *ge != *we {
				t.Fatalf("parseCFLine(%s) = %+v, want %+v", tc.line, got, tc.want)
			}
			if _, fast := scanCFPush([]byte(tc.line)); fast != tc.fast {
				t.Fatalf("scanCFPush(%s) answered %v, want %v", tc.line, fast, tc.fast)
			}
		})
	}
	if _, err := parseCFLine([]byte(`{"push":`)); err == nil {
		t.Fatal("parseCFLine read a truncated line without an error")
	}
}

// TestCFData checks that every publication's data is valid JSON of
// exactly cfPayload bytes carrying its sequence number.
func TestCFData(t *testing.T) {
	for _, seq := range []uint64{1, 9, 10, 12345, 1<<63 + 7} {
		b := cfData(nil, seq)
		var d struct {
			S uint64 `json:"s"`
		}
		if err := json.Unmarshal(b, &d); err != nil || d.S != seq || len(b) != cfPayload {
			t.Fatalf("cfData(%d) = %s (%d bytes, seq %d, %v), want %d bytes carrying it", seq, b, len(b), d.S, err, cfPayload)
		}
	}
}

// fakeCF speaks the server side of Centrifugo's JSON protocol well enough
// for the bench's client: it answers connect (with a ping in the same
// frame), subscribe and publish, delivers publications to the channel's
// subscriber, and puts everything one incoming frame causes for one
// connection into one outgoing frame, line by line, as Centrifugo does.
// dupEvery/dropEvery deliver every k-th publication twice or not at all;
// pingEvery sends a ping along with every k-th delivery.
type fakeCF struct {
	dupEvery, dropEvery, pingEvery int

	mu        sync.Mutex
	subs      map[string]*fakeCFConn
	published int
	dupes     int
	pings     atomic.Int64
	pongs     atomic.Int64
}

type fakeCFConn struct {
	ws  *websocket.Conn
	wmu sync.Mutex
}

func (f *fakeCF) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer ws.Close()
	me := &fakeCFConn{ws: ws}
	for {
		_, frame, err := ws.ReadMessage()
		if err != nil {
			return
		}
		var order []*fakeCFConn
		out := map[*fakeCFConn][]string{}
		add := func(c *fakeCFConn, line string) {
			if _, ok := out[c]; !ok {
				order = append(order, c)
			}
			out[c] = append(out[c], line)
		}
		for _, line := range strings.Split(string(frame), "\n") {
			if line == "{}" {
				f.pongs.Add(1)
				continue
			}
			var cmd struct {
				ID        uint32          `json:"id"`
				Connect   json.RawMessage `json:"connect"`
				Subscribe *struct {
					Channel string `json:"channel"`
				} `json:"subscribe"`
				Publish *struct {
					Channel string          `json:"channel"`
					Data    json.RawMessage `json:"data"`
				} `json:"publish"`
			}
			if err := json.Unmarshal([]byte(line), &cmd); err != nil || cmd.ID == 0 {
				return // Centrifugo disconnects a client sending garbage
			}
			switch {
			case cmd.Connect != nil:
				add(me, fmt.Sprintf(`{"id":%d,"connect":{"client":"fake","version":"6.9.1","ping":25,"pong":true}}`, cmd.ID))
				add(me, "{}")
				f.pings.Add(1)
			case cmd.Subscribe != nil:
				f.mu.Lock()
				f.subs[cmd.Subscribe.Channel] = me
				f.mu.Unlock()
				add(me, fmt.Sprintf(`{"id":%d,"subscribe":{"recoverable":true,"epoch":"e"}}`, cmd.ID))
			case cmd.Publish != nil:
				f.mu.Lock()
				f.published++
				n, sub := f.published, f.subs[cmd.Publish.Channel]
				push := fmt.Sprintf(`{"push":{"channel":%q,"pub":{"data":%s,"offset":%d}}}`, cmd.Publish.Channel, cmd.Publish.Data, n)
				if n%3 == 0 { // another field order: the slow path
					push = fmt.Sprintf(`{"push":{"pub":{"offset":%d,"data":%s},"channel":%q}}`, n, cmd.Publish.Data, cmd.Publish.Channel)
				}
				if sub != nil && (f.dropEvery == 0 || n%f.dropEvery != 0) {
					add(sub, push)
					if f.dupEvery > 0 && n%f.dupEvery == 0 {
						add(sub, push)
						f.dupes++
					}
					if f.pingEvery > 0 && n%f.pingEvery == 0 {
						add(sub, "{}")
						f.pings.Add(1)
					}
				}
				f.mu.Unlock()
				add(me, fmt.Sprintf(`{"id":%d,"publish":{}}`, cmd.ID))
			}
		}
		for _, c := range order {
			c.wmu.Lock()
			err := c.ws.WriteMessage(websocket.TextMessage, []byte(strings.Join(out[c], "\n")))
			c.wmu.Unlock()
			if err != nil && c == me {
				return
			}
		}
	}
}

// TestCentrifugoLoadFake runs the reference's clients against fakeCF:
// several replies in one frame (one client publishing into its own
// channel gets its reply and its delivery together), pings answered, and
// a duplicated or missing delivery counted as an error, never hidden.
func TestCentrifugoLoadFake(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	for _, tc := range []struct {
		name    string
		clients int
		fake    *fakeCF
	}{
		{"three clients", 3, &fakeCF{pingEvery: 10}},
		{"one client, reply and delivery in one frame", 1, &fakeCF{pingEvery: 7}},
		{"duplicates", 4, &fakeCF{dupEvery: 5}},
		{"missing deliveries", 4, &fakeCF{dropEvery: 7}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.fake
			f.subs = map[string]*fakeCFConn{}
			srv := httptest.NewServer(f)
			defer srv.Close()
			ref, err := centrifugoLoad(t.Context(), cfLoadConfig{URL: "ws" + strings.TrimPrefix(srv.URL, "http"), Clients: tc.clients,
				Warmup: 50 * time.Millisecond, Duration: 300 * time.Millisecond, Timeout: 100 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%d clients: %d publications delivered once, %d errors, %.0f/s, p50 %.3f ms", tc.clients, ref.Ops, ref.Errors, ref.OpsPerS, ref.Latency.P50)
			if ref.Ops == 0 || ref.Latency.P50 <= 0 {
				t.Fatalf("no publication delivered: %+v", ref)
			}
			f.mu.Lock()
			dupes := f.dupes
			f.mu.Unlock()
			switch {
			case f.dropEvery > 0 && ref.Errors == 0:
				t.Fatalf("every %dth publication was not delivered, yet no error was counted", f.dropEvery)
			case f.dropEvery == 0 && ref.Errors != uint64(dupes):
				t.Fatalf("the server delivered %d publications twice; the client counted %d errors", dupes, ref.Errors)
			case f.dupEvery > 0 && dupes == 0:
				t.Fatal("the fake server duplicated nothing: the test proves nothing")
			}
			if p, q := f.pings.Load(), f.pongs.Load(); p < int64(tc.clients) || q != p {
				t.Fatalf("the server sent %d pings (at least one per client, %d) and got %d answers", p, tc.clients, q)
			}
		})
	}
}

// TestCentrifugoReference runs the reference's clients against a real
// Centrifugo server on a real redis-server when both binaries are
// installed (`make peers` for Centrifugo; CI has neither, so it skips
// there): the configuration bench writes passes Centrifugo's strict check
// (no key it does not know), a few clients for about a second see every
// publication delivered exactly once, and the channel's history in Redis
// holds the last 100 of them (history is on, as the workload has
// it).
func TestCentrifugoReference(t *testing.T) {
	bin, err := CentrifugoBinary(filepath.Join("..", "bin", "mpim"))
	if errors.Is(err, ErrNoCentrifugo) {
		t.Skip("no centrifugo binary in ../bin or on PATH (make peers installs it; CI does not): ", err)
	}
	if !redisproc.Available() {
		t.Skip("no redis-server on PATH")
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	rdb, err := redisproc.Start(ctx, filepath.Join(dir, "redis"))
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Stop()
	srv, err := startCentrifugo(ctx, bin, filepath.Join(dir, "centrifugo"), rdb.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.stop()
	conf := filepath.Join(dir, "centrifugo", "centrifugo.json")
	if out, err := exec.Command(bin, "checkconfig", "--strict", "--config", conf).CombinedOutput(); err != nil {
		b, _ := os.ReadFile(conf)
		t.Fatalf("centrifugo checkconfig --strict rejects the configuration bench writes: %v\n%s\n%s", err, out, b)
	}

	ref, err := centrifugoLoad(ctx, cfLoadConfig{URL: srv.wsURL(), Clients: 4, Warmup: 300 * time.Millisecond, Duration: time.Second, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("centrifugo %s, 4 clients: %.0f publications/s, p50 %.2f ms, p99 %.2f ms, %d errors", centrifugoVersion(bin), ref.OpsPerS, ref.Latency.P50, ref.Latency.P99, ref.Errors)
	if ref.Ops == 0 || ref.Errors != 0 {
		t.Fatalf("4 clients for 1 s: %d publications delivered once and %d errors, want some and none", ref.Ops, ref.Errors)
	}

	ws, _, err := websocket.DefaultDialer.DialContext(ctx, srv.wsURL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	cmds := `{"id":1,"connect":{}}` + "\n" + `{"id":2,"history":{"channel":"` + cfChannel(1) + `","limit":1000}}`
	if err := ws.WriteMessage(websocket.TextMessage, []byte(cmds)); err != nil {
		t.Fatal(err)
	}
	for {
		_, frame, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("no reply to history: %v", err)
		}
		for _, line := range strings.Split(string(frame), "\n") {
			var r struct {
				ID      uint32   `json:"id"`
				Error   *cfError `json:"error"`
				History *struct {
					Publications []json.RawMessage `json:"publications"`
				} `json:"history"`
			}
			if json.Unmarshal([]byte(line), &r) != nil || r.ID != 2 {
				continue
			}
			if r.Error != nil || r.History == nil || len(r.History.Publications) != 100 {
				t.Fatalf("history of %s after %d publications: %s; want the last 100", cfChannel(1), ref.Ops/4, line[:min(len(line), 200)])
			}
			return
		}
	}
}

// TestCentrifugoWhat checks that the reference's result says what
// Centrifugo does not do that mpim does.
func TestCentrifugoWhat(t *testing.T) {
	w := centrifugoWhat("v6.9.1", 64)
	for _, want := range []string{"v6.9.1", "one process", "no fsync", "no durable store", "no consensus", "history on (100 publications, 300 s", "64 raw-WebSocket"} {
		if !strings.Contains(w, want) {
			t.Errorf("the reference's description lacks %q: %s", want, w)
		}
	}
}

// TestCentrifugoBinary finds the server next to the mpim binary, then on
// PATH, and otherwise names make peers.
func TestCentrifugoBinary(t *testing.T) {
	bin, path := t.TempDir(), t.TempDir()
	t.Setenv("PATH", path)
	if _, err := CentrifugoBinary(filepath.Join(bin, "mpim")); !errors.Is(err, ErrNoCentrifugo) || !strings.Contains(err.Error(), "make peers") {
		t.Fatalf("no centrifugo anywhere: %v, want ErrNoCentrifugo naming make peers", err)
	}
	for _, dir := range []string{path, bin} { // PATH first, then bin/ wins over it
		if err := os.WriteFile(filepath.Join(dir, "centrifugo"), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		if got, err := CentrifugoBinary(filepath.Join(bin, "mpim")); err != nil || got != filepath.Join(dir, "centrifugo") {
			t.Fatalf("centrifugo in %s: found %q, %v", dir, got, err)
		}
	}
}
