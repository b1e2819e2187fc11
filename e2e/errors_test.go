package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"mpim/client"
	"mpim/internal/testcluster"
	"mpim/internal/token"
)

// TestErrors provokes every error code of the protocol that is not about the
// shape of a request (TestBadInput covers bad_request, too_large and close
// code 1009) through real sockets on real processes, and checks the promise
// each code makes: every code but timeout means "not applied".
func TestErrors(t *testing.T) {
	c := startLab(t, labOpts{nodes: 1, gateways: 1})
	ctx := ctxFor(t, 90*time.Second)
	for _, u := range []string{"alice", "bob", "carol"} {
		c.register("g1", u)
	}
	alice := c.login("g1", "alice", "phone")
	bob := c.login("g1", "bob", "phone")
	carol := c.login("g1", "carol", "phone")
	if _, err := alice.GroupCreate(ctx, "team", []string{"bob"}); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Send(ctx, client.SendArgs{To: "bob", Text: "hi bob", Cmid: "setup-1"}); err != nil {
		t.Fatal(err)
	}

	t.Run("unauthorized", func(t *testing.T) {
		me, err := alice.UserInfo(ctx, "alice")
		if err != nil {
			t.Fatal(err)
		}
		anon := c.dial("g1")
		_, err = anon.Send(ctx, client.SendArgs{To: "bob", Text: "psst", Cmid: "anon-1"})
		wantCode(t, err, client.CodeUnauthorized, "send before login")
		_, err = anon.History(ctx, client.HistoryArgs{Conv: "dm:alice:bob"})
		wantCode(t, err, client.CodeUnauthorized, "history before login")
		_, err = anon.UserInfo(ctx, "bob")
		wantCode(t, err, client.CodeUnauthorized, "user_info before login")
		_, err = anon.Login(ctx, "alice", "wrong password", "")
		wantCode(t, err, client.CodeUnauthorized, "login with a wrong password")
		_, err = anon.Login(ctx, "nobody", password, "")
		wantCode(t, err, client.CodeUnauthorized, "login of an unknown user (must not reveal which names exist)")

		claims := token.Claims{UID: me.UID, User: "alice", Exp: time.Now().Add(time.Hour).UnixMilli()}
		forged := token.Sign([]byte("another-cluster-secret-0123456789"), claims)
		_, err = anon.Resume(ctx, forged, "")
		wantCode(t, err, client.CodeUnauthorized, "resume with a token signed by another secret")
		old := claims
		old.Exp = time.Now().Add(-time.Minute).UnixMilli()
		_, err = anon.Resume(ctx, token.Sign([]byte(testcluster.Secret), old), "")
		wantCode(t, err, client.CodeUnauthorized, "resume with an expired token")
		for _, junk := range []string{"garbage", "a.b", "!!!.###", forged[:len(forged)/2]} {
			_, err = anon.Resume(ctx, junk, "")
			wantCode(t, err, client.CodeUnauthorized, fmt.Sprintf("resume with the malformed token %q", junk))
		}
		// None of the refusals authenticated the connection ...
		_, err = anon.Send(ctx, client.SendArgs{To: "bob", Text: "psst", Cmid: "anon-2"})
		wantCode(t, err, client.CodeUnauthorized, "send after failed logins and resumes")
		// ... and a token signed with the lab's secret is accepted on it, so
		// the refusals above were about the signature and the expiry.
		res, err := anon.Resume(ctx, token.Sign([]byte(testcluster.Secret), claims), "tablet")
		if err != nil || res.UID != me.UID {
			t.Fatalf("resume with a valid token = %+v, %v; want alice's uid %d", res, err, me.UID)
		}
	})

	t.Run("forbidden", func(t *testing.T) {
		_, err := carol.History(ctx, client.HistoryArgs{Conv: "g:team"})
		wantCode(t, err, client.CodeForbidden, "carol (not a member) reads g:team")
		_, err = carol.History(ctx, client.HistoryArgs{Conv: "dm:alice:bob"})
		wantCode(t, err, client.CodeForbidden, "carol reads alice and bob's DM")
		_, err = carol.Send(ctx, client.SendArgs{Group: "team", Text: "let me in", Cmid: "carol-1"})
		wantCode(t, err, client.CodeForbidden, "carol sends into g:team")
		_, err = carol.GroupMembers(ctx, "team")
		wantCode(t, err, client.CodeForbidden, "carol lists the members of team")
		err = carol.Typing(ctx, "dm:alice:bob")
		wantCode(t, err, client.CodeForbidden, "carol types in alice and bob's DM")
		err = carol.ReadCursor(ctx, "g:team", 1)
		wantCode(t, err, client.CodeForbidden, "carol moves a read cursor in g:team")
		h, err := alice.History(ctx, client.HistoryArgs{Conv: "g:team"})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range h.Messages {
			if m.From == "carol" {
				t.Fatalf("g:team holds %+v: a forbidden send must not be applied", m)
			}
		}
	})

	t.Run("not_found", func(t *testing.T) {
		_, err := carol.UserInfo(ctx, "nobody")
		wantCode(t, err, client.CodeNotFound, "user_info of an unknown user")
		_, err = carol.Send(ctx, client.SendArgs{To: "nobody", Text: "hello?", Cmid: "nf-1"})
		wantCode(t, err, client.CodeNotFound, "send to an unknown user")
		err = carol.GroupJoin(ctx, "nogroup")
		wantCode(t, err, client.CodeNotFound, "group_join of an unknown group")
		_, err = carol.History(ctx, client.HistoryArgs{Conv: "g:nogroup"})
		wantCode(t, err, client.CodeNotFound, "history of an unknown group")
	})

	t.Run("conflict", func(t *testing.T) {
		anon := c.dial("g1")
		_, err := anon.Register(ctx, "alice", "another password")
		wantCode(t, err, client.CodeConflict, "registering the taken name alice")
		if _, err := anon.Login(ctx, "alice", password, "laptop"); err != nil {
			t.Fatalf("alice cannot log in with her password after a conflicting register (%v): a refused register must change nothing", err)
		}
		_, err = alice.GroupCreate(ctx, "team", nil)
		wantCode(t, err, client.CodeConflict, "alice creates the existing group team")
		_, err = carol.GroupCreate(ctx, "team", []string{"carol"})
		wantCode(t, err, client.CodeConflict, "carol creates the existing group team")
		members, err := bob.GroupMembers(ctx, "team")
		if err != nil || fmt.Sprint(members) != "[alice bob]" {
			t.Fatalf("members of team = %v, %v; want [alice bob]: a refused group_create must change nothing", members, err)
		}
	})

	t.Run("internal", func(t *testing.T) {
		_, err := alice.Send(ctx, client.SendArgs{To: "bob", Text: "mpim:test:internal", Cmid: "int-1"})
		wantCode(t, err, client.CodeInternal, "send of the node's internal-error test hook")
		// internal promises "not applied": the same cmid is still free.
		r, err := alice.Send(ctx, client.SendArgs{To: "bob", Text: "after internal", Cmid: "int-1"})
		if err != nil || r.Dup {
			t.Fatalf("retry of cmid int-1 after an internal error = %+v, %v; want a fresh message (dup false): the failed send must not be applied", r, err)
		}
	})

	t.Run("rate_limited", func(t *testing.T) {
		conn := c.dial("g1")
		const n = 400 // twice the default burst of 200 at 100/s
		var mu sync.Mutex
		codes := map[string]int{}
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				err := conn.Ping(ctx)
				code := "ok"
				if err != nil {
					if code = client.ErrorCode(err); code == "" {
						code = err.Error()
					}
				}
				mu.Lock()
				codes[code]++
				mu.Unlock()
			})
		}
		wg.Wait()
		if codes[client.CodeRateLimited] == 0 {
			t.Fatalf("%d pings at once on one connection: %v; want some rate_limited (limit 100/s, burst 200)", n, codes)
		}
		if codes["ok"] < 200 {
			t.Fatalf("%d pings at once on a fresh connection: %v; want at least the burst of 200 served", n, codes)
		}
		if codes["ok"]+codes[client.CodeRateLimited] != n {
			t.Fatalf("%d pings at once: %v; want every reply ok or rate_limited", n, codes)
		}
		time.Sleep(1100 * time.Millisecond) // the bucket refills at 100/s
		for i := range 50 {
			if err := conn.Ping(ctx); err != nil {
				t.Fatalf("ping %d a second after the flood: %v; a rate-limited connection must recover once its bucket refills", i, err)
			}
		}
	})

	t.Run("unavailable", func(t *testing.T) {
		c := startLab(t, labOpts{nodes: 1, gateways: 1})
		ctx := ctxFor(t, 60*time.Second)
		alice := c.aliceToBob("g1", "phone")
		if err := c.Kill("n1"); err != nil {
			t.Fatal(err)
		}
		var refused []string
		eventually(t, 10*time.Second, "a send with the only node killed is answered unavailable", func() bool {
			cmid := fmt.Sprint("down-", len(refused))
			_, err := alice.Send(ctx, client.SendArgs{To: "bob", Text: "into the void", Cmid: cmid})
			if err == nil {
				t.Fatalf("send %s succeeded with the only node killed", cmid)
			}
			code := client.ErrorCode(err)
			if code == client.CodeUnavailable {
				refused = append(refused, cmid)
				return true
			}
			t.Logf("send %s with n1 killed: %v", cmid, err)
			return false
		})
		_, err := alice.History(ctx, client.HistoryArgs{Conv: "dm:alice:bob"})
		wantCode(t, err, client.CodeUnavailable, "history with the only node killed")
		// unavailable promises "guaranteed not applied": check it once the
		// node is back.
		if err := c.Restart(ctx, "n1"); err != nil {
			t.Fatal(err)
		}
		var h client.HistoryResult
		eventually(t, 10*time.Second, "history after n1 restarts", func() bool {
			h, err = alice.History(ctx, client.HistoryArgs{Conv: "dm:alice:bob", Limit: 100})
			return err == nil
		})
		for _, m := range h.Messages {
			if strings.HasPrefix(m.Cmid, "down-") {
				t.Fatalf("history holds %+v, a send answered unavailable: unavailable must mean not applied", m)
			}
		}
	})

	t.Run("timeout", func(t *testing.T) {
		c := startLab(t, labOpts{nodes: 1, gateways: 1, gatewayArgs: []string{"--call-timeout", "500ms"}})
		ctx := ctxFor(t, 60*time.Second)
		alice := c.aliceToBob("g1", "phone")
		if err := c.Pause("n1"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Resume("n1") })
		// The gateway's connection to the stopped node stays up, so each
		// request reaches the node's socket and waits there; whether it is
		// applied depends on what the node does when it wakes up. Several
		// sends at once make that race visible.
		const n = 20
		answers := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				_, answers[i] = alice.Send(ctx, client.SendArgs{To: "bob", Text: "while paused", Cmid: fmt.Sprint("paused-", i)})
			})
		}
		// group_create may not be retried blindly (it is no idempotent
		// write), so the gateway answers it timeout rather than fail over.
		var createErr error
		wg.Go(func() { _, createErr = alice.GroupCreate(ctx, "paused", nil) })
		wg.Wait()
		if err := c.Resume("n1"); err != nil {
			t.Fatal(err)
		}
		// A retry of each cmid tells whether its first attempt was applied.
		var lied []string
		for i, err := range answers {
			if err == nil {
				t.Fatalf("send paused-%d succeeded while the only node was paused", i)
			}
			var retry client.SendResult
			eventually(t, 10*time.Second, "retry after n1 resumes", func() bool {
				var err error
				retry, err = alice.Send(ctx, client.SendArgs{To: "bob", Text: "while paused", Cmid: fmt.Sprint("paused-", i)})
				return err == nil
			})
			if retry.Dup && client.ErrorCode(err) == client.CodeUnavailable {
				lied = append(lied, fmt.Sprint("paused-", i))
			}
		}
		if code := client.ErrorCode(createErr); code != client.CodeTimeout {
			t.Errorf("group_create on a paused node past the call timeout = %v; want timeout: the request reached the node, so its outcome is unknown", createErr)
		}
		if len(lied) > 0 {
			t.Errorf("sends %v were answered unavailable (%v) yet applied (their retries are dups): unavailable must mean guaranteed not applied",
				lied, answers[0])
		}
		for i, err := range answers {
			if code := client.ErrorCode(err); code != client.CodeTimeout {
				t.Errorf("send paused-%d to a paused node past the call timeout = %v; want timeout: the request reached the node, so its outcome is unknown", i, err)
				break
			}
		}
	})
}

// rawReply is a reply as it arrives on Conn.Unmatched.
type rawReply struct {
	ID    json.RawMessage `json:"id"`
	OK    bool            `json:"ok"`
	Error *client.Error   `json:"error"`
	data  []byte
}

// code is the reply's error code, "" for a success reply.
func (r rawReply) code() string {
	if r.Error == nil {
		return ""
	}
	return r.Error.Code
}

// sendRaw writes frame on conn as is and returns the next frame that no
// Call waits for, which is the reply to it when nothing else is in flight.
func sendRaw(t *testing.T, conn *client.Conn, frame string) rawReply {
	t.Helper()
	if err := conn.SendRaw(ctxFor(t, 5*time.Second), []byte(frame)); err != nil {
		t.Fatalf("send raw frame %.60q: %v", frame, err)
	}
	select {
	case data, ok := <-conn.Unmatched():
		if !ok {
			t.Fatalf("connection ended after frame %.60q (%v, close code %d): a malformed frame must get an error reply and leave the connection open",
				frame, conn.Err(), conn.CloseCode())
		}
		r := rawReply{data: data}
		if err := json.Unmarshal(data, &r); err != nil {
			t.Fatalf("reply %.200s to frame %.60q is not a JSON object: %v", data, frame, err)
		}
		return r
	case <-time.After(5 * time.Second):
		t.Fatalf("no reply within 5s to frame %.60q", frame)
	}
	return rawReply{}
}

// wantCode fails unless err is an error reply with code.
func wantCode(t *testing.T, err error, code, what string) {
	t.Helper()
	if got := client.ErrorCode(err); got != code {
		t.Fatalf("%s: got %v (code %q), want error code %q", what, err, got, code)
	}
}

// messageWithText waits for a message push with text on conn, skipping
// other pushes.
func messageWithText(t *testing.T, conn *client.Conn, text string, d time.Duration) client.Message {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case p, ok := <-conn.Pushes():
			if !ok {
				t.Fatalf("connection ended (%v) before a message push with text %q", conn.Err(), text)
			}
			if p.Kind != client.PushMessage {
				continue
			}
			if m, err := p.Message(); err == nil && m.Text == text {
				return m
			}
		case <-deadline:
			t.Fatalf("no message push with text %q within %v", text, d)
		}
	}
}
