package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"time"
)

// Status is the lab as `GET /` reports it.
type Status struct {
	Mode      string        `json:"mode"`
	Nodes     int           `json:"nodes"`
	Gateways  int           `json:"gateways"`
	Shards    int           `json:"shards"`
	Leaders   string        `json:"leaders"`
	APRepair  bool          `json:"ap_repair"`
	Redis     string        `json:"redis"` // redis://HOST:PORT
	RedisKind RedisImpl     `json:"redis_kind"`
	Data      string        `json:"data"`
	Dashboard string        `json:"dashboard"`
	PID       int           `json:"pid"`
	Started   time.Time     `json:"started"`
	Members   []MemberState `json:"members"`
	// Faults are the network faults in force.
	Faults []string `json:"faults"`
	// StudentURLs are the student page's addresses when the dashboard
	// listens beyond loopback.
	StudentURLs []string `json:"student_urls,omitempty"`
}

// Status returns the lab's configuration, addresses and members.
func (l *Lab) Status() Status {
	return Status{
		Mode: l.currentMode(), Nodes: l.cfg.Nodes, Gateways: l.cfg.Gateways, Shards: l.cfg.Shards,
		Leaders: l.cfg.Leaders, APRepair: l.cfg.APRepair,
		Redis: "redis://" + l.redisAddr, RedisKind: l.redisKind,
		Data: l.data, Dashboard: l.dashboard, PID: os.Getpid(), Started: l.started,
		Members: l.Members(),
		Faults:  l.faultsOrNone(), StudentURLs: l.StudentURLs(),
	}
}

// Handler returns the lab's HTTP API, documented in docs/lab-api.md.
func (l *Lab) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/status", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, l.Status()) })
	mux.HandleFunc("GET /api/members", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, l.Members()) })
	mux.HandleFunc("GET /api/members/{name}", func(w http.ResponseWriter, r *http.Request) {
		m, err := l.Member(r.PathValue("name"))
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, m)
	})
	mux.HandleFunc("POST /api/members/{name}/{action}", l.handleAction)
	mux.HandleFunc("GET /api/events", l.handleEvents)
	l.routeFaults(mux)
	l.routeDashboard(mux)
	return guardControls(mux)
}

// guardControls lets every read through but answers a request that
// changes the lab (kill, faults, a mode switch: anything but GET, HEAD and
// OPTIONS) only when it comes from this machine, names the lab by address
// (an IP literal or localhost, which defeats DNS rebinding), and, when a
// browser sent it, comes from the lab's own pages (Origin). Students who
// reach a lab listening beyond loopback can read and chat, not break it;
// another web page open in the teacher's browser cannot post to it.
func guardControls(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			next.ServeHTTP(w, r)
			return
		}
		if why := controlRefusal(r); why != "" {
			writeJSON(w, http.StatusForbidden, map[string]string{"error": why})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// controlRefusal says why r may not change the lab, or "".
func controlRefusal(r *http.Request) string {
	peer, _, _ := net.SplitHostPort(r.RemoteAddr)
	if ip := net.ParseIP(peer); ip == nil || !ip.IsLoopback() {
		return "the lab's controls answer only on the machine it runs on; from " + peer + " the dashboard is read-only"
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if host != "localhost" && net.ParseIP(host) == nil {
		return "the lab's controls must be addressed by IP or localhost, not " + r.Host
	}
	if origin := r.Header.Get("Origin"); origin != "" {
		u, err := url.Parse(origin)
		if err != nil || u.Host != r.Host {
			return "the lab's controls accept requests from its own pages only, not from " + origin
		}
	}
	return ""
}

// serveHTTP serves the API on ln until Close.
func (l *Lab) serveHTTP(ln net.Listener) {
	l.httpSrv = &http.Server{Handler: l.Handler(), ReadHeaderTimeout: 10 * time.Second}
	l.wg.Go(func() {
		if err := l.httpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			l.log.Error("lab HTTP API stopped", "err", err)
		}
	})
}

func (l *Lab) handleAction(w http.ResponseWriter, r *http.Request) {
	name, action := r.PathValue("name"), r.PathValue("action")
	var err error
	switch action {
	case "kill":
		err = l.Kill(name)
	case "restart":
		// A client hanging up must not abort a restart half-way; the
		// restart is bounded by ReadyTimeout anyway.
		err = l.Restart(context.WithoutCancel(r.Context()), name)
	case "pause":
		err = l.Pause(name)
	case "resume":
		err = l.Resume(name)
	default:
		err = fmt.Errorf("%w %q: use kill, restart, pause or resume", ErrUnknownAction, action)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	m, err := l.Member(name)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, m)
}

// handleEvents answers the event log as JSON, or with ?stream=1 as
// server-sent events: the log first, then live events until the client
// leaves or the lab closes. ?since=SEQ keeps only events after SEQ.
func (l *Lab) handleEvents(w http.ResponseWriter, r *http.Request) {
	since, _ := strconv.ParseUint(r.URL.Query().Get("since"), 10, 64)
	if r.URL.Query().Get("stream") == "" || r.URL.Query().Get("stream") == "0" {
		out := []Event{}
		for _, ev := range l.events.snapshot() {
			if ev.Seq > since {
				out = append(out, ev)
			}
		}
		writeJSON(w, http.StatusOK, out)
		return
	}
	flusher, ok := w.(http.Flusher)
	if !ok {
		writeError(w, errors.New("lab: streaming unsupported by this connection"))
		return
	}
	ch, backlog, cancel := l.events.subscribe()
	defer cancel()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	send := func(ev Event) bool {
		if ev.Seq <= since {
			return true
		}
		since = ev.Seq
		b, _ := json.Marshal(ev)
		_, err := fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", ev.Seq, ev.Kind, b)
		return err == nil
	}
	for _, ev := range backlog {
		if !send(ev) {
			return
		}
	}
	flusher.Flush()
	keepAlive := time.NewTicker(15 * time.Second)
	defer keepAlive.Stop()
	for {
		select {
		case ev, ok := <-ch:
			if !ok || !send(ev) {
				return
			}
		case <-keepAlive.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
				return
			}
		case <-r.Context().Done():
			return
		}
		flusher.Flush()
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// writeError maps the lab's sentinel errors to HTTP status codes.
func writeError(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, ErrUnknownMember):
		code = http.StatusNotFound
	case errors.Is(err, ErrUnknownAction):
		code = http.StatusBadRequest
	case errors.Is(err, ErrNotRunning), errors.Is(err, ErrExternal):
		code = http.StatusConflict
	case errors.Is(err, ErrClosed):
		code = http.StatusServiceUnavailable
	case errors.Is(err, ErrNotReady):
		code = http.StatusBadGateway
	}
	writeJSON(w, code, map[string]string{"error": err.Error()})
}
