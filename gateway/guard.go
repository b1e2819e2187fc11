package gateway

import (
	"net"
	"net/http"
	"sync"
	"time"
)

// guard holds the gateway's limits against a hostile client: how many
// connections one address and the whole gateway may hold, and how many
// failed logins an account or an address may make before it must wait.
// Every map is bounded: entries expire, and past guardEntries the oldest
// window is forgotten first.
type guard struct {
	maxConns, maxPerIP int
	// failures allowed per loginWindow, per account and per address.
	perAccount, perIP int

	mu     sync.Mutex
	conns  int
	byIP   map[string]int
	failed map[string]*failures // "u:" + user or "ip:" + address
}

// failures counts one key's failed logins in the current window.
type failures struct {
	n     int
	since time.Time
}

// loginWindow is how long failed logins are remembered; guardEntries
// bounds the remembered keys.
const (
	loginWindow  = time.Minute
	guardEntries = 100_000
)

func newGuard(cfg Config) *guard {
	return &guard{maxConns: cfg.MaxConns, maxPerIP: cfg.MaxConnsPerIP, perAccount: cfg.LoginFailuresPerAccount,
		perIP: cfg.LoginFailuresPerIP, byIP: map[string]int{}, failed: map[string]*failures{}}
}

// clientIP is the address a request came from (its TCP peer: the gateway
// does not trust forwarding headers, which a client writes itself).
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// admit takes a connection slot for ip, or names the limit in the way
// (the metric's reason) and says why (0 limits are off).
func (g *guard) admit(ip string) (limit, why string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case g.maxConns > 0 && g.conns >= g.maxConns:
		return "max_conns", "this gateway holds its maximum of connections; try another gateway or later"
	case g.maxPerIP > 0 && g.byIP[ip] >= g.maxPerIP:
		return "max_conns_per_ip", "too many connections from your address; close some first"
	}
	g.conns++
	g.byIP[ip]++
	return "", ""
}

// release gives ip's slot back.
func (g *guard) release(ip string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.conns--
	if g.byIP[ip]--; g.byIP[ip] <= 0 {
		delete(g.byIP, ip)
	}
}

// loginWait is how long user at ip must wait before trying a password
// again: 0 unless the account or the address has used its failures of
// the window (checked before the node spends a bcrypt on it).
func (g *guard) loginWait(user, ip string, now time.Time) time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	var wait time.Duration
	for key, limit := range map[string]int{"u:" + user: g.perAccount, "ip:" + ip: g.perIP} {
		f := g.failed[key]
		if limit <= 0 || f == nil {
			continue
		}
		if now.Sub(f.since) >= loginWindow {
			delete(g.failed, key)
			continue
		}
		if f.n >= limit {
			wait = max(wait, loginWindow-now.Sub(f.since))
		}
	}
	return wait
}

// loginFailed records a failed password for user at ip.
func (g *guard) loginFailed(user, ip string, now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.failed) >= guardEntries {
		g.forgetOldest(now)
	}
	for _, key := range []string{"u:" + user, "ip:" + ip} {
		f := g.failed[key]
		if f == nil || now.Sub(f.since) >= loginWindow {
			f = &failures{since: now}
			g.failed[key] = f
		}
		f.n++
	}
}

// forgetOldest drops the windows that have ended, or else half of them.
// Caller holds mu.
func (g *guard) forgetOldest(now time.Time) {
	for k, f := range g.failed {
		if now.Sub(f.since) >= loginWindow {
			delete(g.failed, k)
		}
	}
	for k := range g.failed {
		if len(g.failed) < guardEntries/2 {
			break
		}
		delete(g.failed, k)
	}
}
