package lab

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// get GETs url with an Accept header and returns the status, the
// Content-Type and the body.
func get(t *testing.T, url, accept string) (int, string, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := testClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
}

// TestDashboardRoutes: GET / is the dashboard for a browser and the JSON
// status for every other client; the pages, assets, topology, scenarios
// and error paths answer as docs/lab-api.md says.
func TestDashboardRoutes(t *testing.T) {
	cfg := testConfig(t)
	l := startLab(t, cfg)
	base := strings.TrimSuffix(l.Dashboard(), "/")
	const browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"

	for _, tc := range []struct {
		path, accept, wantType, wantBody string
		wantCode                         int
	}{
		{"/", browser, "text/html; charset=utf-8", `id="topology"`, 200},
		{"/", "", "application/json", `"mode": "cp"`, 200},
		{"/", "*/*", "application/json", `"members"`, 200},
		{"/api/status", browser, "application/json", `"mode": "cp"`, 200},
		{"/student", browser, "text/html; charset=utf-8", `id="student"`, 200},
		{"/dashboard", "", "text/html; charset=utf-8", `id="topology"`, 200},
		{"/assets/app.js", "", "text/javascript; charset=utf-8", "EventSource", 200},
		{"/assets/chat.js", "", "text/javascript; charset=utf-8", "resync", 200},
		{"/assets/app.css", "", "text/css; charset=utf-8", "font-size", 200},
		{"/assets/nothing.js", "", "", "", 404},
		{"/gw/n1/ws", "", "application/json", "not a gateway", 404},
		{"/gw/zz/ws", "", "application/json", "unknown member", 404},
	} {
		code, ctype, body := get(t, base+tc.path, tc.accept)
		if code != tc.wantCode || (tc.wantType != "" && ctype != tc.wantType) || !strings.Contains(body, tc.wantBody) {
			t.Errorf("GET %s (Accept %q) = %d %q, body %.80q…; want %d %q containing %q",
				tc.path, tc.accept, code, ctype, body, tc.wantCode, tc.wantType, tc.wantBody)
		}
	}

	var topo Topology
	if code := doJSON(t, "GET", base+"/api/topology", &topo); code != 200 {
		t.Fatalf("GET /api/topology: %d", code)
	}
	if topo.Mode != "cp" || len(topo.Members) != 5 || len(topo.Links) == 0 || len(topo.Nodes) != 2 || topo.EventSeq == 0 {
		t.Fatalf("topology = %+v; want cp, 5 members, the links, 2 nodes and the event seq", topo)
	}

	var scenarios []GuidedScenario
	if code := doJSON(t, "GET", base+"/api/scenarios", &scenarios); code != 200 {
		t.Fatalf("GET /api/scenarios: %d", code)
	}
	i := slices.IndexFunc(scenarios, func(s GuidedScenario) bool { return s.Name == "isolate-leader" })
	if i < 0 || len(scenarios[i].Steps) != 2 || scenarios[i].Steps[0].Do != "partition isolate:leader" ||
		scenarios[i].Steps[0].Caption == "" || scenarios[i].Steps[0].Observe == "" || scenarios[i].Steps[0].AtS != 10 {
		t.Fatalf("isolate-leader in /api/scenarios = %+v", scenarios)
	}
	// This lab has n1 n2 g1 g2: a scenario naming n3 or n4 does not fit.
	for _, name := range []string{"split-2-3", "one-way"} {
		if !slices.ContainsFunc(scenarios, func(s GuidedScenario) bool { return s.Name == name }) {
			t.Errorf("/api/scenarios lacks %s", name)
		}
	}
	for _, s := range scenarios {
		if (s.Name == "split-2-3" || s.Name == "one-way") && (s.Fits || !strings.Contains(s.Note, "--nodes")) {
			t.Errorf("%s on a 2-node lab: fits %v, note %q; want a note naming --nodes", s.Name, s.Fits, s.Note)
		}
		if s.Name == "isolate-leader" && !s.Fits {
			t.Errorf("isolate-leader does not fit a 2-node lab: %s", s.Note)
		}
	}

	for _, body := range []string{``, `{"mode": "xp"}`} {
		resp, err := testClient.Post(base+"/api/mode", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("POST /api/mode %q: %d, want 400", body, resp.StatusCode)
		}
	}
}

// TestTopologyStream: ?stream=1 sends a snapshot at once and then every
// interval, each a server-sent event named topology.
func TestTopologyStream(t *testing.T) {
	cfg := testConfig(t)
	cfg.Nodes, cfg.Gateways = 1, 1
	l := startLab(t, cfg)
	resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Get(l.Dashboard() + "api/topology?stream=1&interval_ms=500")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	var snaps []Topology
	for len(snaps) < 2 && sc.Scan() {
		line := sc.Text()
		if data, ok := strings.CutPrefix(line, "data: "); ok {
			var topo Topology
			if err := json.Unmarshal([]byte(data), &topo); err != nil {
				t.Fatalf("bad topology event %q: %v", data, err)
			}
			snaps = append(snaps, topo)
		} else if line != "" && !strings.HasPrefix(line, "id: ") && line != "event: topology" {
			t.Fatalf("unexpected stream line %q", line)
		}
	}
	if len(snaps) != 2 || len(snaps[0].Members) != 3 || !snaps[1].Time.After(snaps[0].Time) {
		t.Fatalf("got %d snapshots: %+v", len(snaps), snaps)
	}
}

// TestRelay: /gw/gI/ws reaches gateway gI's WebSocket, keeping the host
// the browser asked for (the gateway then accepts the page's origin as
// same-host).
func TestRelay(t *testing.T) {
	cfg := testConfig(t)
	l := startLab(t, cfg)
	host := strings.TrimSuffix(strings.TrimPrefix(l.Dashboard(), "http://"), "/")
	hdr := http.Header{"Origin": {"http://" + host}}
	c, _, err := websocket.DefaultDialer.Dial("ws://"+host+"/gw/g2/ws", hdr)
	if err != nil {
		t.Fatalf("dial the relay: %v", err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if err := c.WriteMessage(websocket.TextMessage, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	_, msg, err := c.ReadMessage()
	if err != nil || string(msg) != "g2 "+host+" hello" {
		t.Fatalf("relay answered %q, %v; want g2's echo with host %s", msg, err, host)
	}
}

// TestSwitchMode: the lab restarts every member with the other --mode on
// fresh node data, keeps the ports, and says so in its status and events.
func TestSwitchMode(t *testing.T) {
	cfg := testConfig(t)
	l := startLab(t, cfg)
	before := map[string]MemberState{}
	for _, m := range l.Members() {
		before[m.Name] = m
	}
	marker := filepath.Join(before["n1"].Data, "old-data")
	if err := os.WriteFile(marker, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := l.ApplyString(t.Context(), "partition n1 / n2"); err != nil {
		t.Fatal(err)
	}
	resp, err := (&http.Client{Timeout: 60 * time.Second}).Post(l.Dashboard()+"api/mode", "application/json", bytes.NewReader([]byte(`{"mode": "ap"}`)))
	if err != nil {
		t.Fatal(err)
	}
	var st Status
	json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if resp.StatusCode != 200 || st.Mode != "ap" || len(st.Faults) != 0 {
		t.Fatalf("POST /api/mode ap: %d %+v; want 200, mode ap, no faults", resp.StatusCode, st)
	}
	if _, err := os.Stat(marker); !os.IsNotExist(err) {
		t.Errorf("n1's old data survived the switch (%v); want a fresh data directory", err)
	}
	for _, m := range l.Members() {
		if m.State != StateRunning || m.PID == before[m.Name].PID || m.HTTP != before[m.Name].HTTP {
			t.Errorf("%s after the switch: %s pid %d http %s; want running, a new process, the same address", m.Name, m.State, m.PID, m.HTTP)
		}
		if m.Kind == KindNode {
			h, err := healthOf(t, m)
			if err != nil || !strings.Contains(strings.Join(h.Args, " "), "--mode ap") {
				t.Errorf("%s runs %v (%v); want --mode ap", m.Name, h.Args, err)
			}
		}
	}
	evs := l.Events()
	if last := evs[len(evs)-1]; last.Kind != EventMode || !strings.Contains(last.Detail, "ap") {
		t.Errorf("last event %+v; want the mode event", last)
	}
}

// TestStudentURLs: the student page's address is printed only when the
// dashboard listens beyond loopback.
func TestStudentURLs(t *testing.T) {
	for _, tc := range []struct {
		dashboard string
		all       bool
		want      []string
	}{
		{"http://127.0.0.1:7070/", false, nil},
		{"http://localhost:7070/", false, nil},
		{"http://192.0.2.7:7070/", false, []string{"http://192.0.2.7:7070/student"}},
	} {
		l := &Lab{dashboard: tc.dashboard, listenAll: tc.all}
		if got := l.StudentURLs(); !slices.Equal(got, tc.want) {
			t.Errorf("StudentURLs for %s = %v, want %v", tc.dashboard, got, tc.want)
		}
	}
	// Listening on every interface: one student URL per address of this
	// host that a student's machine could reach.
	reachable := 0
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() && !ipn.IP.IsLinkLocalUnicast() {
			reachable++
		}
	}
	l := &Lab{dashboard: "http://127.0.0.1:7070/", listenAll: true}
	urls := l.StudentURLs()
	if len(urls) != reachable {
		t.Errorf("listening on every interface: student URLs %v; want one for each of the host's %d reachable addresses", urls, reachable)
	}
	for _, u := range urls {
		if !strings.HasSuffix(u, ":7070/student") || strings.Contains(u, "127.0.0.1") {
			t.Errorf("listening on every interface: student URL %s; want a non-loopback address", u)
		}
	}
}
