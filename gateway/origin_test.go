package gateway

import (
	"net/http/httptest"
	"testing"
)

// TestCheckOrigin: a browser page is accepted when its origin is listed,
// or is this gateway's own host by address or localhost; a same-host page
// under another DNS name is refused (DNS rebinding: the attacker's name
// rebound to this address sends it as both Host and Origin).
func TestCheckOrigin(t *testing.T) {
	g := &Gateway{cfg: Config{AllowedOrigins: []string{"http://dash.example:8080"}}}
	for _, c := range []struct {
		host, origin string
		ok           bool
	}{
		{"127.0.0.1:7301", "", true}, // not a browser
		{"127.0.0.1:7301", "http://127.0.0.1:7301", true},
		{"localhost:7301", "http://localhost:7301", true},
		{"[::1]:7301", "http://[::1]:7301", true},
		{"gw.example:7301", "http://dash.example:8080", true},
		{"evil.example:7301", "http://evil.example:7301", false}, // rebinding
		{"127.0.0.1:7301", "http://evil.example", false},
		{"127.0.0.1:7301", "http://127.0.0.1:9999", false},
		{"127.0.0.1:7301", "::not a url", false},
	} {
		r := httptest.NewRequest("GET", "/ws", nil)
		r.Host = c.host
		if c.origin != "" {
			r.Header.Set("Origin", c.origin)
		}
		if got := g.checkOrigin(r); got != c.ok {
			t.Errorf("Host %s, Origin %q: accepted %v, want %v", c.host, c.origin, got, c.ok)
		}
	}
}
