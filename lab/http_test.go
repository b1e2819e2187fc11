package lab

import (
	"bufio"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

func doJSON(t *testing.T, method, url string, out any) int {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := testClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s %s: Content-Type %q, want application/json", method, url, ct)
	}
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("%s %s: decode: %v", method, url, err)
		}
	}
	return resp.StatusCode
}

func TestHTTPAPI(t *testing.T) {
	cfg := testConfig(t)
	cfg.Nodes, cfg.Gateways = 1, 1
	l := startLab(t, cfg)
	base := strings.TrimSuffix(l.Dashboard(), "/")

	var st Status
	if code := doJSON(t, "GET", base+"/", &st); code != 200 {
		t.Fatalf("GET /: %d", code)
	}
	if st.Mode != "cp" || st.RedisKind != "embedded miniredis" || len(st.Members) != 3 || st.Dashboard != l.Dashboard() {
		t.Fatalf("GET / = %+v", st)
	}
	var ms []MemberState
	if code := doJSON(t, "GET", base+"/api/members", &ms); code != 200 || len(ms) != 3 || ms[0].Name != "n1" {
		t.Fatalf("GET /api/members: %d %+v", code, ms)
	}
	before := ms[0].PID

	// Every action answers the member's new state.
	for _, step := range []struct {
		action string
		state  State
	}{
		{"pause", StatePaused}, {"resume", StateRunning}, {"kill", StateKilled}, {"restart", StateRunning},
	} {
		var m MemberState
		if code := doJSON(t, "POST", base+"/api/members/n1/"+step.action, &m); code != 200 || m.State != step.state {
			t.Fatalf("POST %s: %d %+v, want state %s", step.action, code, m, step.state)
		}
	}
	if m, _ := l.Member("n1"); m.PID == before || m.PID == 0 {
		t.Fatalf("n1 pid %d after kill and restart over HTTP, was %d", m.PID, before)
	}

	for _, tc := range []struct {
		method, path string
		code         int
	}{
		{"POST", "/api/members/n9/kill", http.StatusNotFound},
		{"POST", "/api/members/n1/explode", http.StatusBadRequest},
		{"GET", "/api/members/n9", http.StatusNotFound},
	} {
		var e map[string]string
		if code := doJSON(t, tc.method, base+tc.path, &e); code != tc.code || e["error"] == "" {
			t.Errorf("%s %s: %d %v, want %d with an error message", tc.method, tc.path, code, e, tc.code)
		}
	}
	if err := l.Kill("g1"); err != nil {
		t.Fatal(err)
	}
	var e map[string]string
	if code := doJSON(t, "POST", base+"/api/members/g1/pause", &e); code != http.StatusConflict {
		t.Fatalf("pause killed g1: %d %v, want 409", code, e)
	}

	var evs []Event
	if code := doJSON(t, "GET", base+"/api/events", &evs); code != 200 || len(evs) == 0 {
		t.Fatalf("GET /api/events: %d %d events", code, len(evs))
	}
	last := evs[len(evs)-1]
	if last.Kind != EventKilled || last.Member != "g1" {
		t.Fatalf("last event %+v, want g1 killed", last)
	}
	var since []Event
	doJSON(t, "GET", base+"/api/events?since="+strconv.FormatUint(last.Seq-1, 10), &since)
	if len(since) != 1 || since[0].Seq != last.Seq {
		t.Fatalf("GET /api/events?since=%d: %+v", last.Seq-1, since)
	}
}

// TestHTTPEventStream checks the SSE stream replays the log, then streams
// live events, and ends when the lab closes.
func TestHTTPEventStream(t *testing.T) {
	cfg := testConfig(t)
	cfg.Nodes, cfg.Gateways = 1, 0
	l := startLab(t, cfg)
	resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Get(l.Dashboard() + "api/events?stream=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	events := make(chan Event, 16)
	go func() {
		defer close(events)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var ev Event
				if json.Unmarshal([]byte(data), &ev) == nil {
					events <- ev
				}
			}
		}
	}()
	next := func() Event {
		t.Helper()
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatal("event stream ended early")
			}
			return ev
		case <-time.After(5 * time.Second):
			t.Fatal("no event on the stream")
		}
		return Event{}
	}
	// Backlog: redis and n1 started during Up.
	for _, want := range []string{"redis", "n1"} {
		if ev := next(); ev.Kind != EventStarted || ev.Member != want {
			t.Fatalf("backlog event %+v, want %s started", ev, want)
		}
	}
	if err := l.Pause("n1"); err != nil {
		t.Fatal(err)
	}
	if ev := next(); ev.Kind != EventPaused || ev.Member != "n1" {
		t.Fatalf("live event %+v, want n1 paused", ev)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	for range events { // drains the stopped events, then the stream must end
	}
}

// TestControlGuard: reads pass from anywhere; a change needs a loopback
// peer, an IP or localhost Host, and (from a browser) the lab's own
// Origin.
func TestControlGuard(t *testing.T) {
	hit := false
	h := guardControls(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hit = true }))
	for _, c := range []struct {
		name, method, remote, host, origin string
		pass                               bool
	}{
		{"read from the network", "GET", "10.1.2.3:5555", "lab.example:7070", "", true},
		{"kill from this machine (curl)", "POST", "127.0.0.1:5555", "127.0.0.1:7070", "", true},
		{"fault from the dashboard", "POST", "127.0.0.1:5555", "127.0.0.1:7070", "http://127.0.0.1:7070", true},
		{"localhost", "DELETE", "[::1]:5555", "localhost:7070", "http://localhost:7070", true},
		{"kill from a student", "POST", "10.1.2.3:5555", "10.0.0.9:7070", "http://10.0.0.9:7070", false},
		{"another page in the teacher's browser", "POST", "127.0.0.1:5555", "127.0.0.1:7070", "http://evil.example", false},
		{"DNS rebinding", "POST", "127.0.0.1:5555", "evil.example:7070", "http://evil.example:7070", false},
	} {
		hit = false
		r := httptest.NewRequest(c.method, "http://"+c.host+"/api/faults", nil)
		r.RemoteAddr, r.Host = c.remote, c.host
		if c.origin != "" {
			r.Header.Set("Origin", c.origin)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if hit != c.pass {
			t.Errorf("%s: passed=%v (status %d), want %v", c.name, hit, w.Code, c.pass)
		}
		if !c.pass && w.Code != http.StatusForbidden {
			t.Errorf("%s: status %d, want 403", c.name, w.Code)
		}
	}
}

// TestPanelsAndReplicasForStudents: the panels' password is answered to
// the teacher's own pages only; the replicas' digests are answered to
// everyone, but to a reader elsewhere without the conversations' ids
// (who talks to whom), divergence still visible.
func TestPanelsAndReplicasForStudents(t *testing.T) {
	l := &Lab{panelPassword: "p4ss"}
	l.replicas.last = map[string]Replica{"n1": {Convs: map[string]ConvReplica{"dm:alice:bob": {Count: 3, Digest: "x"}}}}
	l.replicas.at = time.Now().Add(time.Hour) // fresh: no node is read
	get := func(path, remote, host, origin string, h http.HandlerFunc) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "http://"+host+path, nil)
		r.RemoteAddr, r.Host = remote, host
		if origin != "" {
			r.Header.Set("Origin", origin)
		}
		w := httptest.NewRecorder()
		h(w, r)
		return w
	}
	if w := get("/api/panels", "127.0.0.1:5555", "127.0.0.1:7070", "http://127.0.0.1:7070", l.panelCredentials); w.Code != 200 || !strings.Contains(w.Body.String(), "p4ss") {
		t.Fatalf("the teacher's page: %d %s", w.Code, w.Body)
	}
	if w := get("/api/panels", "10.1.2.3:5555", "10.0.0.9:7070", "http://10.0.0.9:7070", l.panelCredentials); w.Code != 403 || strings.Contains(w.Body.String(), "p4ss") {
		t.Fatalf("a student's page got the panels' password: %d %s", w.Code, w.Body)
	}
	if w := get("/api/replicas", "127.0.0.1:5555", "127.0.0.1:7070", "", l.handleReplicas); !strings.Contains(w.Body.String(), "dm:alice:bob") {
		t.Fatalf("the teacher reads %s, want the conversations by id", w.Body)
	}
	w := get("/api/replicas", "10.1.2.3:5555", "10.0.0.9:7070", "", l.handleReplicas)
	if body := w.Body.String(); strings.Contains(body, "alice") || !strings.Contains(body, `"count": 3`) {
		t.Fatalf("a student reads %s, want the counts without the conversations' ids", body)
	}
}
