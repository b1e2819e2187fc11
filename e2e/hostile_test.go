package e2e

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"mpim/client"
	"mpim/gateway/wire"
)

// TestHostileClient: while mallory, on g1, floods everything a client may
// send — groups naming the victim, typing into them, repeated read and ack
// receipts, lookups of names that do not exist, the largest history
// pages, and connections that never log in — the victim on g2 keeps
// chatting with a friend on g3. Every message of the victim reaches the
// friend and every message of the friend reaches the victim, in order and
// once; the victim's connection is never closed; the victim can still log
// in afresh and is ready; and each node and gateway stays under a memory
// bound (hostileRSS).
func TestHostileClient(t *testing.T) {
	c := startLab(t, labOpts{nodes: 3, gateways: 3})
	for _, u := range []string{"mallory", "victim", "friend"} {
		c.register("g1", u)
	}
	mal, vic, fr := c.login("g1", "mallory", "d"), c.login("g2", "victim", "d"), c.login("g3", "friend", "d")
	if _, err := mal.Send(ctxFor(t, 10*time.Second), client.SendArgs{To: "friend", Text: "hi", Cmid: "hi"}); err != nil {
		t.Fatal(err)
	}
	ctx := ctxFor(t, 120*time.Second)
	// A long history to page through.
	for i := range 100 {
		if _, err := mal.Send(ctx, client.SendArgs{To: "victim", Text: strings.Repeat("<", wire.MaxText), Cmid: fmt.Sprint("big", i)}); err != nil {
			t.Fatal(err)
		}
	}
	flood, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var attacks []struct{}
	var refused sync.Map // error code -> *atomic.Int64, for the log
	count := func(err error) {
		if err != nil {
			v, _ := refused.LoadOrStore(string(client.ErrorCode(err)), new(atomic.Int64))
			v.(*atomic.Int64).Add(1)
		}
	}
	// Each attack runs on connections of its own (a connection's rate
	// limit would stop one), on every gateway.
	attack := func(f func(conn *client.Conn, i int)) {
		for k := range 3 {
			conn := c.login(fmt.Sprint("g", k+1), "mallory", fmt.Sprintf("d%d-%d", len(attacks), k))
			wg.Go(func() {
				for i := 0; flood.Err() == nil; i++ {
					f(conn, i)
				}
			})
		}
		attacks = append(attacks, struct{}{})
	}
	attack(func(m *client.Conn, i int) { // groups naming the victim (the creation rate, then the bound)
		_, err := m.GroupCreate(flood, fmt.Sprintf("junk-%p-%d", m, i), []string{"victim", "friend"})
		count(err)
	})
	attack(func(m *client.Conn, i int) { // typing into them
		count(m.Typing(flood, "dm:mallory:victim"))
		count(m.Typing(flood, "dm:friend:mallory"))
	})
	attack(func(m *client.Conn, _ int) { // receipts that move nothing
		count(m.ReadCursor(flood, "dm:mallory:victim", 1))
		count(m.Ack(flood, "dm:mallory:victim", 1))
	})
	attack(func(m *client.Conn, i int) { // names that do not exist
		_, err := m.UserInfo(flood, fmt.Sprint("nobody", i))
		count(err)
	})
	attack(func(m *client.Conn, _ int) { // the largest pages of large messages
		_, err := m.History(flood, client.HistoryArgs{Conv: "dm:mallory:victim", Limit: wire.MaxHistoryLimit, Read: "local"})
		count(err)
	})
	attack(func(_ *client.Conn, _ int) { // connections that never log in
		conn, err := client.Dial(flood, c.ws("g1"), client.Options{})
		if err == nil {
			time.Sleep(50 * time.Millisecond)
			conn.Close()
		}
	})

	// Meanwhile the victim and the friend talk.
	const n = 25
	for i := range n {
		if _, err := vic.Send(ctx, client.SendArgs{To: "friend", Text: fmt.Sprint("v", i), Cmid: fmt.Sprint("v", i)}); err != nil {
			t.Fatalf("the victim's send %d during the flood: %v", i, err)
		}
		if _, err := fr.Send(ctx, client.SendArgs{To: "victim", Text: fmt.Sprint("f", i), Cmid: fmt.Sprint("f", i)}); err != nil {
			t.Fatalf("the friend's send %d during the flood: %v", i, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	checkOnce := func(who string, conn *client.Conn, prefix string) {
		t.Helper()
		var got []string
		deadline := time.After(30 * time.Second)
		for len(got) < n {
			select {
			case p := <-conn.Pushes():
				if p.Kind != "message" {
					continue
				}
				m, err := p.Message()
				if err != nil {
					t.Fatal(err)
				}
				if strings.HasPrefix(m.Cmid, prefix) {
					got = append(got, m.Cmid)
				}
			case <-conn.Done():
				t.Fatalf("%s's connection was closed during the flood: %v", who, conn.Err())
			case <-deadline:
				t.Fatalf("%s got %d of %d messages: %v", who, len(got), n, got)
			}
		}
		for i, cm := range got {
			if cm != fmt.Sprint(prefix, i) {
				t.Fatalf("%s got %v: want %s0..%s%d in order, once each", who, got, prefix, prefix, n-1)
			}
		}
	}
	checkOnce("the friend", fr, "v")
	checkOnce("the victim", vic, "f")
	stop()
	wg.Wait()
	refused.Range(func(k, v any) bool {
		t.Logf("mallory's requests refused %q: %d", k, v.(*atomic.Int64).Load())
		return true
	})

	// The victim logs in afresh: the backlog of everything it is in fits.
	again := c.dial("g2")
	if _, err := again.Login(ctx, "victim", password, "tablet"); err != nil {
		t.Fatalf("the victim's new login after the flood: %v", err)
	}
	s, err := again.Sync(ctx, client.SyncArgs{Limit: wire.MaxSyncLimit})
	if err != nil {
		t.Fatalf("the victim's sync after the flood: %v", err)
	}
	t.Logf("after the flood the victim is in %d conversations", len(s.Convs))
	for _, m := range c.Members() {
		if m.PID == 0 {
			continue
		}
		if rss := rssKiB(m.PID); rss > hostileRSS {
			t.Errorf("%s holds %d KiB after the flood, over the bound of %d", m.Name, rss, hostileRSS)
		} else {
			t.Logf("%s: %d KiB", m.Name, rss)
		}
	}
}

// hostileRSS bounds each member's resident memory after the flood (KiB).
const hostileRSS = 300 << 10

// rssKiB is a process's resident set size in KiB (0 if unknown).
func rssKiB(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.Atoi(f[1])
			return kb
		}
	}
	return 0
}

// TestGatewayLimits: through real sockets, a connection that does not log
// in is closed at the login deadline; connections past the per-address
// cap are refused before the WebSocket handshake; an account whose
// password was guessed wrong too often is answered rate_limited — the
// right password too — without a node spending a bcrypt.
func TestGatewayLimits(t *testing.T) {
	c := startLab(t, labOpts{nodes: 1, gateways: 1, gatewayArgs: []string{
		"--login-timeout", "1s", "--max-conns-per-ip", "4", "--login-failures-per-account", "3"}})
	c.register("g1", "alice")
	ctx := ctxFor(t, 30*time.Second)

	idle := c.dial("g1")
	select {
	case <-idle.Done():
		if idle.CloseCode() != 1008 {
			t.Fatalf("a connection that never logged in closed with %d (%v), want 1008", idle.CloseCode(), idle.Err())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a connection that never logged in is still open 10 s after a 1 s login deadline")
	}

	var open []*client.Conn
	for i := range 4 {
		conn := c.dial("g1")
		if _, err := conn.Login(ctx, "alice", password, fmt.Sprint("d", i)); err != nil {
			t.Fatal(err)
		}
		open = append(open, conn)
	}
	if extra, err := client.Dial(ctx, c.ws("g1"), client.Options{}); err == nil {
		extra.Close()
		t.Fatal("a fifth connection from one address was accepted past the cap of 4")
	} else if !strings.Contains(err.Error(), "503") {
		t.Fatalf("the fifth connection: %v, want HTTP 503", err)
	}
	open[0].Close()
	eventually(t, 5*time.Second, "a closed connection's slot is given back", func() bool {
		conn, err := client.Dial(ctx, c.ws("g1"), client.Options{})
		if err != nil {
			return false
		}
		open[0] = conn
		return true
	})

	for _, conn := range open {
		conn.Close()
	}
	// Each guess on a connection of its own (each within its login
	// deadline).
	login := func(pw string) error {
		var err error
		eventually(t, 5*time.Second, "a connection slot", func() bool {
			var conn *client.Conn
			if conn, err = client.Dial(ctx, c.ws("g1"), client.Options{}); err != nil {
				return false
			}
			defer conn.Close()
			_, err = conn.Login(ctx, "alice", pw, "x")
			return true
		})
		return err
	}
	for i := range 3 {
		if err := login(fmt.Sprint("wrong", i)); client.ErrorCode(err) != client.CodeUnauthorized {
			t.Fatalf("wrong password %d: %v, want unauthorized", i+1, err)
		}
	}
	if err := login(password); client.ErrorCode(err) != client.CodeRateLimited {
		t.Fatalf("a login after three wrong passwords: %v, want rate_limited", err)
	}
}
