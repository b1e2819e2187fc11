package e2e

import (
	"bufio"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"testing"
	"time"

	"mpim/client"
)

// TestTerminalClient drives `mpim client` through its stdin and stdout
// against a lab of real processes: it registers, receives a DM, answers
// with /to, and reconnects by itself to another gateway when its gateway
// is killed.
func TestTerminalClient(t *testing.T) {
	c := startLab(t, labOpts{nodes: 1, gateways: 2})
	ctx := ctxFor(t, 60*time.Second)
	c.register("g2", "bob")
	bob := c.login("g2", "bob", "d")

	cmd := exec.Command(mpimBin, "client", "--gateway", c.ws("g1"), "--gateway", c.ws("g2"), "--user", "alice", "--register")
	cmd.Env = append(cmd.Environ(), "MPIM_PASSWORD="+password)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = testWriter{t}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); cmd.Process.Kill(); cmd.Wait() }()
	lines := make(chan string, 1000)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			t.Logf("client> %s", sc.Text())
			lines <- sc.Text()
		}
		close(lines)
	}()
	expect := func(what string, match func(string) bool) {
		t.Helper()
		deadline := time.After(15 * time.Second)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("client exited while waiting for %s", what)
				}
				if match(l) {
					return
				}
			case <-deadline:
				t.Fatalf("client never printed %s", what)
			}
		}
	}
	expect("its login", func(l string) bool { return strings.Contains(l, "logged in as alice") })

	if _, err := bob.Send(ctx, client.SendArgs{To: "alice", Text: "hi alice", Cmid: "b1"}); err != nil {
		t.Fatal(err)
	}
	expect("bob's message", func(l string) bool { return strings.Contains(l, "[dm:alice:bob #1] bob: hi alice") })

	fmt.Fprintln(stdin, "/to bob")
	fmt.Fprintln(stdin, "hello bob")
	m := messages(t, bob, 1, 10*time.Second)[0]
	if m.From != "alice" || m.Text != "hello bob" || m.Seq != 2 {
		t.Fatalf("bob got %+v from the terminal client", m)
	}

	// Kill the terminal client's gateway: it resumes on g2 by itself and
	// still receives.
	if err := c.Kill("g1"); err != nil {
		t.Fatal(err)
	}
	expect("a reconnect to g2", func(l string) bool { return strings.Contains(l, "connected "+c.ws("g2")) })
	if _, err := bob.Send(ctx, client.SendArgs{To: "alice", Text: "still there?", Cmid: "b2"}); err != nil {
		t.Fatal(err)
	}
	expect("the message sent after the failover", func(l string) bool { return strings.Contains(l, "#3] bob: still there?") })
	fmt.Fprintln(stdin, "/quit")
	io.Copy(io.Discard, stdout)
}
