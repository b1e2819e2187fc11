package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"mpim/client"
)

// maxFrame is the protocol's frame limit: a larger frame closes the
// connection with close code 1009.
const maxFrame = 64 << 10

// TestBadInput sends malformed frames and invalid fields to a real gateway
// and checks the protocol's answer to each: bad_request or too_large with
// the request's id (null when it had none), the connection left open, and
// only a frame over 64 KiB closing it (code 1009). Afterwards the gateway,
// a bystander logged in before the barrage and the abused connections
// themselves must all still work.
func TestBadInput(t *testing.T) {
	c := startLab(t, labOpts{nodes: 1, gateways: 1})
	ctx := ctxFor(t, 60*time.Second)
	c.register("g1", "alice")
	c.register("g1", "bob")
	bystander := c.login("g1", "bob", "phone")
	abused := c.login("g1", "alice", "phone")
	anon := c.dial("g1") // never logged in

	t.Run("malformed-frames", func(t *testing.T) {
		tests := []struct {
			name, frame string
			ids         []string // acceptable reply ids, as raw JSON
		}{
			{"not JSON", `this is not json`, []string{"null"}},
			{"truncated object without id", `{"op": "ping"`, []string{"null"}},
			// The spec leaves open whether an id before the damage is echoed.
			{"truncated object with id", `{"id": "trunc", "op": "ping"`, []string{"null", `"trunc"`}},
			{"JSON array", `[{"id": "arr", "op": "ping"}]`, []string{"null"}},
			{"JSON string", `"ping"`, []string{"null"}},
			{"empty frame", ``, []string{"null"}},
			{"no id", `{"op": "ping"}`, []string{"null"}},
			{"numeric id", `{"id": 7, "op": "ping"}`, []string{"null"}},
			{"unknown op without id", `{"op": "frobnicate"}`, []string{"null"}},
			{"no op", `{"id": "noop"}`, []string{`"noop"`}},
			{"op not a string", `{"id": "op7", "op": 7}`, []string{`"op7"`}},
			{"invalid UTF-8", "{\"id\": \"utf\", \"op\": \"send\", \"to\": \"bob\", \"text\": \"\xff\xfe\", \"cmid\": \"u\"}", []string{`"utf"`}},
		}
		for _, tt := range tests {
			for _, conn := range []*client.Conn{abused, anon} {
				r := sendRaw(t, conn, tt.frame)
				if r.code() != client.CodeBadRequest || !containsID(tt.ids, r.ID) {
					t.Fatalf("%s: reply %s; want bad_request with id %s and the connection open", tt.name, r.data, strings.Join(tt.ids, " or "))
				}
			}
		}
	})

	t.Run("invalid-fields", func(t *testing.T) {
		long := strings.Repeat("a", 33)
		tests := []struct {
			name   string
			anon   bool // send on the connection that is not logged in
			op     string
			fields map[string]any
			code   string // "" means the request must succeed
		}{
			{"unknown op with id", false, "frobnicate", nil, client.CodeBadRequest},
			{"send without text", false, "send", map[string]any{"to": "bob", "cmid": "m1"}, client.CodeBadRequest},
			{"send without cmid", false, "send", map[string]any{"to": "bob", "text": "hi"}, client.CodeBadRequest},
			{"send without recipient", false, "send", map[string]any{"text": "hi", "cmid": "m1"}, client.CodeBadRequest},
			{"send to a user and a group", false, "send", map[string]any{"to": "bob", "group": "team", "text": "hi", "cmid": "m1"}, client.CodeBadRequest},
			{"send with empty text", false, "send", map[string]any{"to": "bob", "text": "", "cmid": "m1"}, client.CodeBadRequest},
			{"login without password", true, "login", map[string]any{"user": "alice"}, client.CodeBadRequest},
			{"register without password", true, "register", map[string]any{"user": "zed"}, client.CodeBadRequest},
			{"resume without token", true, "resume", nil, client.CodeBadRequest},
			{"text as number", false, "send", map[string]any{"to": "bob", "text": 42, "cmid": "m1"}, client.CodeBadRequest},
			{"limit as string", false, "history", map[string]any{"conv": "dm:alice:bob", "limit": "10"}, client.CodeBadRequest},
			{"limit negative", false, "history", map[string]any{"conv": "dm:alice:bob", "limit": -1}, client.CodeBadRequest},
			{"limit zero", false, "history", map[string]any{"conv": "dm:alice:bob", "limit": 0}, client.CodeBadRequest},
			{"users not a list", false, "presence", map[string]any{"users": "bob"}, client.CodeBadRequest},
			{"seq 0", false, "ack", map[string]any{"conv": "dm:alice:bob", "seq": 0}, client.CodeBadRequest},
			{"register upper-case name", true, "register", map[string]any{"user": "Zed", "password": password}, client.CodeBadRequest},
			{"register 33-byte name", true, "register", map[string]any{"user": long, "password": password}, client.CodeBadRequest},
			{"register empty name", true, "register", map[string]any{"user": "", "password": password}, client.CodeBadRequest},
			{"register name with a space", true, "register", map[string]any{"user": "zed zed", "password": password}, client.CodeBadRequest},
			{"register 32-byte name", true, "register", map[string]any{"user": long[:32], "password": password}, ""},
			{"register 7-byte password", true, "register", map[string]any{"user": "zed", "password": "1234567"}, client.CodeBadRequest},
			{"login upper-case name", true, "login", map[string]any{"user": "Alice", "password": password}, client.CodeBadRequest},
			{"user_info upper-case name", false, "user_info", map[string]any{"user": "BOB"}, client.CodeBadRequest},
			{"send to a 33-byte name", false, "send", map[string]any{"to": long, "text": "hi", "cmid": "m1"}, client.CodeBadRequest},
			{"group_join empty name", false, "group_join", map[string]any{"group": ""}, client.CodeBadRequest},
			{"history dm not in byte order", false, "history", map[string]any{"conv": "dm:bob:alice"}, client.CodeBadRequest},
			{"history dm with oneself", false, "history", map[string]any{"conv": "dm:alice:alice"}, client.CodeBadRequest},
			{"history dm with one name", false, "history", map[string]any{"conv": "dm:alice"}, client.CodeBadRequest},
			{"history empty group", false, "history", map[string]any{"conv": "g:"}, client.CodeBadRequest},
			{"history unknown kind", false, "history", map[string]any{"conv": "x:alice:bob"}, client.CodeBadRequest},
			{"history empty conv", false, "history", map[string]any{"conv": ""}, client.CodeBadRequest},
			{"history read mode", false, "history", map[string]any{"conv": "dm:alice:bob", "read": "eventual"}, client.CodeBadRequest},
		}
		for _, tt := range tests {
			conn := abused
			if tt.anon {
				conn = anon
			}
			_, err := conn.Call(ctxFor(t, 5*time.Second), tt.op, tt.fields)
			if got := client.ErrorCode(err); got != tt.code || (tt.code == "" && err != nil) {
				t.Fatalf("%s: %s %v got %v (code %q); want code %q echoing the request's id", tt.name, tt.op, tt.fields, err, got, tt.code)
			}
		}
	})

	t.Run("too-large", func(t *testing.T) {
		euro := strings.Repeat("€", 1365) // 4095 bytes in 1365 characters
		tests := []struct {
			name   string
			op     string
			fields map[string]any
			code   string
		}{
			{"text of 4096 bytes", "send", map[string]any{"to": "bob", "text": strings.Repeat("t", 4096), "cmid": "big-1"}, ""},
			{"text of 4097 bytes", "send", map[string]any{"to": "bob", "text": strings.Repeat("t", 4097), "cmid": "big-2"}, client.CodeTooLarge},
			{"text of 4096 bytes in 1366 characters", "send", map[string]any{"to": "bob", "text": euro + "e", "cmid": "big-3"}, ""},
			{"text of 4098 bytes in 1366 characters", "send", map[string]any{"to": "bob", "text": euro + "€", "cmid": "big-4"}, client.CodeTooLarge},
			{"cmid of 64 bytes", "send", map[string]any{"to": "bob", "text": "hi", "cmid": strings.Repeat("c", 64)}, ""},
			{"cmid of 65 bytes", "send", map[string]any{"to": "bob", "text": "hi", "cmid": strings.Repeat("c", 65)}, client.CodeTooLarge},
			{"nickname of 64 bytes", "user_update", map[string]any{"nickname": strings.Repeat("n", 64)}, ""},
			{"nickname of 65 bytes", "user_update", map[string]any{"nickname": strings.Repeat("n", 65)}, client.CodeTooLarge},
			{"password of 129 bytes", "register", map[string]any{"user": "zed", "password": strings.Repeat("p", 129)}, client.CodeTooLarge},
			{"history limit over 1000", "history", map[string]any{"conv": "dm:alice:bob", "limit": 1001}, client.CodeTooLarge},
		}
		for _, tt := range tests {
			_, err := abused.Call(ctxFor(t, 5*time.Second), tt.op, tt.fields)
			if got := client.ErrorCode(err); got != tt.code || (tt.code == "" && err != nil) {
				t.Fatalf("%s: got %v (code %q); want code %q: lengths are bytes of UTF-8 and the limit itself is allowed", tt.name, err, got, tt.code)
			}
		}
		// A refused send is not applied: none of the over-long texts arrived.
		h, err := abused.History(ctx, client.HistoryArgs{Conv: "dm:alice:bob", Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range h.Messages {
			if m.Cmid == "big-2" || m.Cmid == "big-4" || len(m.Cmid) > 64 {
				t.Fatalf("history holds message cmid %.20q of %d bytes: a too_large send must not be applied", m.Cmid, len(m.Text))
			}
		}
	})

	t.Run("binary-frame", func(t *testing.T) {
		ws, _, err := websocket.DefaultDialer.DialContext(ctx, c.ws("g1"), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer ws.Close()
		ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		roundTrip := func(kind int, frame string) rawReply {
			t.Helper()
			if err := ws.WriteMessage(kind, []byte(frame)); err != nil {
				t.Fatal(err)
			}
			_, data, err := ws.ReadMessage()
			if err != nil {
				t.Fatalf("no reply to frame %q: %v; a malformed frame must get an error reply and leave the connection open", frame, err)
			}
			r := rawReply{data: data}
			if err := json.Unmarshal(data, &r); err != nil {
				t.Fatalf("reply %s: %v", data, err)
			}
			return r
		}
		if r := roundTrip(websocket.BinaryMessage, `{"id": "bin", "op": "ping"}`); r.code() != client.CodeBadRequest || string(r.ID) != "null" {
			t.Fatalf("binary frame: reply %s; want bad_request with id null", r.data)
		}
		if r := roundTrip(websocket.TextMessage, `{"id": "after-bin", "op": "ping"}`); !r.OK || string(r.ID) != `"after-bin"` {
			t.Fatalf("ping after a binary frame: reply %s; want ok with id \"after-bin\": the connection stays usable", r.data)
		}
	})

	t.Run("frame-over-64KiB", func(t *testing.T) {
		conn := c.dial("g1")
		// pingOf is a ping frame of exactly n bytes.
		pingOf := func(n int) string {
			head, tail := `{"id": "big", "op": "ping", "pad": "`, `"}`
			return head + strings.Repeat("x", n-len(head)-len(tail)) + tail
		}
		if r := sendRaw(t, conn, pingOf(maxFrame)); !r.OK || string(r.ID) != `"big"` {
			t.Fatalf("frame of exactly 64 KiB: reply %.200s; want the ping answered", r.data)
		}
		if err := conn.SendRaw(ctx, []byte(pingOf(maxFrame+1))); err != nil {
			t.Logf("writing the over-long frame: %v", err)
		}
		select {
		case <-conn.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("connection still open 5s after a frame of 64 KiB + 1 byte; want it closed with code 1009")
		}
		if code := conn.CloseCode(); code != websocket.CloseMessageTooBig {
			t.Fatalf("connection closed with code %d (%v) after a frame over 64 KiB; want 1009", code, conn.Err())
		}
	})

	t.Run("gateway-still-serves", func(t *testing.T) {
		for name, conn := range map[string]*client.Conn{"abused": abused, "anonymous": anon, "bystander": bystander} {
			if err := conn.Ping(ctx); err != nil {
				t.Fatalf("%s connection does not answer ping after the barrage: %v", name, err)
			}
		}
		if _, err := bystander.Send(ctx, client.SendArgs{To: "alice", Text: "still there?", Cmid: "after-1"}); err != nil {
			t.Fatalf("bystander bob cannot send after another connection's barrage: %v", err)
		}
		messageWithText(t, abused, "still there?", 5*time.Second)
		if _, err := abused.Send(ctx, client.SendArgs{To: "bob", Text: "yes", Cmid: "after-2"}); err != nil {
			t.Fatalf("the abused connection cannot send after the barrage: %v", err)
		}
		messageWithText(t, bystander, "yes", 5*time.Second)
	})
}

// containsID reports whether id, as raw JSON, is one of ids.
func containsID(ids []string, id json.RawMessage) bool {
	for _, want := range ids {
		if string(id) == want {
			return true
		}
	}
	return false
}
