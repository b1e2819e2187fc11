package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"

	"mpim/chaos/fault"
	"mpim/chaos/scenario"
	"mpim/dashboard"
	"mpim/docs/course/slides"
)

// routeDashboard adds the teaching dashboard (docs/teaching.md) to the
// API: its pages and assets, the topology snapshot and stream, the
// scenario library, the mode switch and the WebSocket relay to the
// gateways.
func (l *Lab) routeDashboard(mux *http.ServeMux) {
	pages := dashboard.Handler()
	// GET / is the dashboard for browsers and the JSON status for every
	// other client (curl, scripts, `mpim fault`), which ask for no HTML:
	// the JSON stays where scripts found it before the dashboard existed.
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		if wantsHTML(r) {
			pages.ServeHTTP(w, r)
			return
		}
		writeJSON(w, http.StatusOK, l.Status())
	})
	mux.Handle("GET /dashboard", pages)
	mux.Handle("GET /student", pages)
	mux.Handle("GET /assets/", pages)
	mux.Handle("GET /slides/", slides.Handler("/slides/"))
	mux.HandleFunc("GET /api/topology", l.handleTopology)
	mux.HandleFunc("GET /api/scenarios", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, l.Scenarios())
	})
	mux.HandleFunc("POST /api/mode", l.handleMode)
	mux.HandleFunc("GET /gw/{name}/ws", l.handleRelay)
}

// wantsHTML reports whether the request prefers an HTML page: browsers
// list text/html in Accept, curl and Go's client do not.
func wantsHTML(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "text/html")
}

// GuidedStep is one fault step of a library scenario, as the dashboard's
// guided mode shows it.
type GuidedStep struct {
	AtS     float64 `json:"at_s"`
	Do      string  `json:"do"`
	Caption string  `json:"caption,omitempty"`
	Observe string  `json:"observe,omitempty"`
}

// GuidedScenario is one library scenario for the guided mode.
type GuidedScenario struct {
	Name        string           `json:"name"`
	Description string           `json:"description"`
	Cluster     scenario.Cluster `json:"cluster"`
	DurationS   float64          `json:"duration_s"`
	Unsafe      []string         `json:"unsafe,omitempty"`
	Steps       []GuidedStep     `json:"steps"`
	// Fits is false when a step names a member this lab lacks (the
	// scenario wants a bigger cluster); Note says what to start instead.
	Fits bool   `json:"fits"`
	Note string `json:"note,omitempty"`
}

// Scenarios returns the built-in scenario library (package scenarios) for
// the guided mode, marking the scenarios whose steps this lab can apply.
func (l *Lab) Scenarios() []GuidedScenario {
	have := l.memberNames()
	out := []GuidedScenario{}
	for _, s := range scenario.List() {
		g := GuidedScenario{Name: s.Name, Description: s.Description, Cluster: s.Cluster,
			DurationS: s.Duration.Seconds(), Unsafe: s.Unsafe, Steps: []GuidedStep{}, Fits: true}
		for _, st := range s.Faults {
			g.Steps = append(g.Steps, GuidedStep{AtS: st.At.Seconds(), Do: st.Do, Caption: st.Caption, Observe: st.Observe})
			if missing := missingMembers(st.Fault, have); len(missing) > 0 && g.Fits {
				g.Fits = false
				g.Note = fmt.Sprintf("needs %s: start the lab with --nodes %d --gateways %d", strings.Join(missing, ", "), s.Cluster.Nodes, s.Cluster.Gateways)
			}
		}
		if s.Cluster.Nodes > l.cfg.Nodes && g.Fits && needsNodes(s) {
			g.Fits = false
			g.Note = fmt.Sprintf("written for %d nodes: start the lab with --nodes %d", s.Cluster.Nodes, s.Cluster.Nodes)
		}
		if len(s.Unsafe) > 0 && g.Fits {
			g.Note = "its CP lesson needs the unsafe switch: start the lab with --unsafe " + strings.Join(s.Unsafe, ",")
		}
		out = append(out, g)
	}
	return out
}

// missingMembers lists the members f names that the lab does not have.
func missingMembers(f fault.Fault, have []string) []string {
	var out []string
	names := slices.Concat(f.Members, slices.Concat(f.Groups...))
	for _, m := range names {
		if m != fault.Leader && !slices.Contains(have, m) && !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	return out
}

// needsNodes reports whether a scenario's shapes depend on its node count
// (majorities-ring and bridge need 5 nodes).
func needsNodes(s *scenario.Scenario) bool {
	for _, st := range s.Faults {
		if st.Fault.Shape == "majorities-ring" || st.Fault.Shape == "bridge" {
			return true
		}
	}
	return false
}

// modeRequest is the body of POST /api/mode.
type modeRequest struct {
	Mode string `json:"mode"`
}

// handleMode restarts the cluster in another mode on fresh data and
// answers the new status.
func (l *Lab) handleMode(w http.ResponseWriter, r *http.Request) {
	var req modeRequest
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<12))
	if err := json.Unmarshal(body, &req); err != nil || (req.Mode != "cp" && req.Mode != "ap") {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": `send {"mode": "cp"} or {"mode": "ap"}`})
		return
	}
	// A client hanging up must not abort the switch half-way; every start
	// is bounded by ReadyTimeout.
	err := l.SwitchMode(context.WithoutCancel(r.Context()), req.Mode)
	switch {
	case errors.Is(err, ErrBusy):
		writeJSON(w, http.StatusConflict, map[string]string{"error": err.Error()})
	case err != nil:
		writeError(w, err)
	default:
		writeJSON(w, http.StatusOK, l.Status())
	}
}

// handleRelay passes a WebSocket from the dashboard's listener to a
// gateway, so that a student's browser on another machine reaches the
// gateways, which listen on loopback only. The relay is a client's path
// to its gateway, outside the fault layer, like a direct connection.
func (l *Lab) handleRelay(w http.ResponseWriter, r *http.Request) {
	m, err := l.Member(r.PathValue("name"))
	if err != nil {
		writeError(w, err)
		return
	}
	if m.Kind != KindGateway {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": m.Name + " is not a gateway; use /gw/gI/ws"})
		return
	}
	target, err := url.Parse(m.HTTP)
	if err != nil {
		writeError(w, err)
		return
	}
	// The gateway sees every relayed connection come from the lab: the
	// relay bounds each student's address itself.
	ip, _, _ := net.SplitHostPort(r.RemoteAddr)
	if !l.relayed.take(ip) {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": fmt.Sprintf("at most %d connections through the lab from one address", relayPerIP)})
		return
	}
	defer l.relayed.give(ip)
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.URL.Path = "/ws"
			pr.Out.URL.RawPath = ""
			// The gateway accepts a browser whose Origin names the host
			// it asked for: keep the dashboard's host.
			pr.Out.Host = pr.In.Host
		},
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			writeJSON(w, http.StatusBadGateway, map[string]string{"error": "gateway " + m.Name + " unreachable: " + err.Error()})
		},
	}
	rp.ServeHTTP(w, r)
}

// StudentURLs returns the student page's address for every address the
// dashboard listens on beyond loopback (each interface address when it
// listens on all of them), or nothing when it listens on loopback only.
func (l *Lab) StudentURLs() []string {
	u, err := url.Parse(l.dashboard)
	if err != nil {
		return nil
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil {
		return nil
	}
	if l.listenAll {
		var out []string
		addrs, _ := net.InterfaceAddrs()
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok || ipn.IP.IsLoopback() || ipn.IP.IsLinkLocalUnicast() {
				continue
			}
			out = append(out, "http://"+net.JoinHostPort(ipn.IP.String(), port)+"/student")
		}
		return out
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() || host == "localhost" {
		return nil
	}
	return []string{"http://" + net.JoinHostPort(host, port) + "/student"}
}

// relayPerIP bounds the relayed connections from one address.
const relayPerIP = 32

// relayCount counts relayed connections per client address.
type relayCount struct {
	mu   sync.Mutex
	byIP map[string]int
}

func (c *relayCount) take(ip string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byIP == nil {
		c.byIP = map[string]int{}
	}
	if c.byIP[ip] >= relayPerIP {
		return false
	}
	c.byIP[ip]++
	return true
}

func (c *relayCount) give(ip string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byIP[ip]--; c.byIP[ip] <= 0 {
		delete(c.byIP, ip)
	}
}
