package e2e

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"mpim/client"
	"mpim/lab"
)

// TestLabUpCLI runs `mpim lab up` as a user would: it prints the spec's
// address lines, the cluster serves chat, and Ctrl-C (SIGINT) stops every
// process it started.
func TestLabUpCLI(t *testing.T) {
	for _, redis := range []string{"auto", "embedded"} {
		t.Run(redis, func(t *testing.T) {
			cmd := exec.Command(mpimBin, "lab", "up", "--http", "127.0.0.1:0", "--data", t.TempDir(), "--redis", redis)
			// A private runtime directory: this lab must not overwrite the
			// machine's lab state file (what `mpim fault` without --lab finds).
			cmd.Env = append(os.Environ(), "XDG_RUNTIME_DIR="+t.TempDir())
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			cmd.Stderr = testWriter{t}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()
			lines := make(chan string, 100)
			go func() {
				sc := bufio.NewScanner(out)
				for sc.Scan() {
					lines <- sc.Text()
				}
				close(lines)
			}()
			gatewayLine := regexp.MustCompile(`^gateway (g\d+) (ws://127\.0\.0\.1:\d+/ws)$`)
			var gateways []string
			var dashboard string
			var printed []string
			timeout := time.After(30 * time.Second)
			for dashboard == "" {
				select {
				case l, ok := <-lines:
					if !ok {
						t.Fatalf("lab up exited before printing its dashboard line; printed:\n%s", strings.Join(printed, "\n"))
					}
					printed = append(printed, l)
					if m := gatewayLine.FindStringSubmatch(l); m != nil {
						gateways = append(gateways, m[2])
					}
					if u, ok := strings.CutPrefix(l, "dashboard "); ok {
						dashboard = u
					}
				case <-timeout:
					t.Fatalf("no dashboard line within 30s; printed:\n%s", strings.Join(printed, "\n"))
				}
			}
			if len(gateways) != 3 {
				t.Fatalf("lab printed %d gateway lines, want 3 by default:\n%s", len(gateways), strings.Join(printed, "\n"))
			}
			wantRedis := "redis-server"
			if redis == "embedded" {
				wantRedis = "embedded miniredis"
			}
			if !strings.Contains(strings.Join(printed, "\n"), wantRedis) {
				t.Fatalf("lab did not say which Redis it runs (want %q):\n%s", wantRedis, strings.Join(printed, "\n"))
			}
			resp, err := http.Get(dashboard + "api/members")
			if err != nil {
				t.Fatal(err)
			}
			var members []lab.MemberState
			json.NewDecoder(resp.Body).Decode(&members)
			resp.Body.Close()
			if len(members) < 5 {
				t.Fatalf("api/members lists %d members, want node, 3 gateways and redis", len(members))
			}
			ctx := ctxFor(t, 20*time.Second)
			conn, err := client.Dial(ctx, gateways[2], client.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := conn.Register(ctx, "alice", password); err != nil {
				t.Fatalf("register through the lab's g3: %v", err)
			}
			conn.Close()

			cmd.Process.Signal(syscall.SIGINT)
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				t.Fatal("lab up did not exit within 20s of SIGINT")
			}
			for _, m := range members {
				if m.PID != 0 && syscall.Kill(m.PID, 0) == nil {
					t.Errorf("member %s (pid %d) still runs after the lab stopped", m.Name, m.PID)
				}
			}
		})
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
