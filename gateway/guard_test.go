package gateway

import (
	"testing"
	"time"
)

// TestGuardConnections: the gateway's and each address's connection
// slots are bounded, released slots are taken again, and 0 is no bound.
func TestGuardConnections(t *testing.T) {
	g := newGuard(Config{MaxConns: 3, MaxConnsPerIP: 2})
	for i, c := range []struct{ ip, want string }{
		{"10.0.0.1", ""}, {"10.0.0.1", ""}, {"10.0.0.1", "max_conns_per_ip"},
		{"10.0.0.2", ""}, {"10.0.0.3", "max_conns"},
	} {
		if limit, why := g.admit(c.ip); limit != c.want || (limit != "" && why == "") {
			t.Fatalf("connection %d from %s: limit %q (%q), want %q", i+1, c.ip, limit, why, c.want)
		}
	}
	g.release("10.0.0.1")
	if limit, _ := g.admit("10.0.0.3"); limit != "" {
		t.Fatalf("a released slot was not given again: %q", limit)
	}
	if len(g.byIP) != 3 {
		t.Fatalf("per-address counts %v", g.byIP)
	}
	g.release("10.0.0.3")
	g.release("10.0.0.2")
	if _, ok := g.byIP["10.0.0.2"]; ok {
		t.Fatal("an address with no connection left is still counted")
	}
	open := newGuard(Config{})
	for range 5000 {
		if limit, _ := open.admit("10.0.0.9"); limit != "" {
			t.Fatalf("with no bounds a connection was refused: %s", limit)
		}
	}
}

// TestGuardLogins: an account that used its failures waits out the
// window, other accounts from other addresses do not; an address that
// tried many accounts waits too; the window ends.
func TestGuardLogins(t *testing.T) {
	g := newGuard(Config{LoginFailuresPerAccount: 3, LoginFailuresPerIP: 5})
	t0 := time.Unix(1000, 0)
	for i := range 3 {
		if w := g.loginWait("alice", "10.0.0.1", t0); w != 0 {
			t.Fatalf("failure %d: waited %v before the limit", i+1, w)
		}
		g.loginFailed("alice", "10.0.0.1", t0)
	}
	if w := g.loginWait("alice", "10.0.0.2", t0.Add(10*time.Second)); w != 50*time.Second {
		t.Fatalf("alice after 3 failures, from another address: wait %v, want the rest of the minute (50s)", w)
	}
	if w := g.loginWait("bob", "10.0.0.2", t0.Add(10*time.Second)); w != 0 {
		t.Fatalf("bob from a clean address waits %v", w)
	}
	// 10.0.0.1 has 3 failures; two more accounts make five.
	g.loginFailed("carol", "10.0.0.1", t0)
	g.loginFailed("dave", "10.0.0.1", t0)
	if w := g.loginWait("erin", "10.0.0.1", t0.Add(time.Second)); w == 0 {
		t.Fatal("an address that failed five logins may go on guessing")
	}
	if w := g.loginWait("alice", "10.0.0.1", t0.Add(loginWindow)); w != 0 {
		t.Fatalf("after the window alice still waits %v", w)
	}
}
