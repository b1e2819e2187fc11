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

	stdin, expect, stop := startTerminal(t, "--gateway", c.ws("g1"), "--gateway", c.ws("g2"), "--user", "alice", "--register")
	defer stop()
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
}

// startTerminal runs `mpim client` with args (and --color off), its
// password in the environment; it returns the client's stdin, a function
// that waits (up to 30 s) for an output line matching, and a stop.
func startTerminal(t *testing.T, args ...string) (io.Writer, func(what string, match func(string) bool) string, func()) {
	t.Helper()
	cmd := exec.Command(mpimBin, append([]string{"client", "--color", "off"}, args...)...)
	cmd.Env = append(cmd.Environ(), "MPIM_PASSWORD="+password)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = testWriter{t}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1000)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			t.Logf("client> %s", sc.Text())
			lines <- sc.Text()
		}
		close(lines)
	}()
	expect := func(what string, match func(string) bool) string {
		t.Helper()
		deadline := time.After(30 * time.Second)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("client exited while waiting for %s", what)
				}
				if match(l) {
					return l
				}
			case <-deadline:
				t.Fatalf("client never printed %s", what)
			}
		}
	}
	stop := func() {
		stdin.Close()
		cmd.Process.Kill()
		cmd.Wait()
		for range lines {
		}
	}
	return stdin, expect, stop
}

// TestTerminalPartitionStory is the README's story through real processes:
// alice (g1, n1) talks to bob (g2); the teacher cuts n1 and g1 off from
// everyone; alice types a message. In CP her terminal shows the refusal
// as it happens ("no quorum on this side") and the retry with the same
// cmid; while it retries she can still ask /status and read: a local
// read answers from n1's copy, a linearizable one is refused. After heal
// the message is accepted once and reaches bob. With /retry off a refusal
// is final. In AP the message is accepted at once, locally on n1,
// tentative; bob's message from the other side arrives after heal, and
// /history shows both sides merged in one order.
func TestTerminalPartitionStory(t *testing.T) {
	for _, mode := range []string{"cp", "ap"} {
		t.Run(mode, func(t *testing.T) {
			c := startLab(t, labOpts{mode: mode, nodes: 3, gateways: 3, gatewayArgs: []string{"--call-timeout", "2s"}})
			c.register("g2", "bob")
			bob := c.login("g2", "bob", "d")
			stdin, expect, stop := startTerminal(t, "--gateway", c.ws("g1"), "--user", "alice", "--register")
			defer stop()
			has := func(parts ...string) func(string) bool {
				return func(l string) bool {
					for _, p := range parts {
						if !strings.Contains(l, p) {
							return false
						}
					}
					return true
				}
			}
			expect("its login", has("logged in as alice", "mode "+mode))
			fmt.Fprintln(stdin, "/to bob")
			fmt.Fprintln(stdin, "hello bob")
			expect("the first send accepted", has("✓ accepted dm:alice:bob #1"))
			c.apply("partition n1 g1 / n2 n3 g2 g3 redis")
			fmt.Fprintln(stdin, "are you there during the cut")
			if mode == "ap" {
				expect("AP accepting on the cut-off side", has("✓ accepted dm:alice:bob #2", "locally on n1", "tentative"))
				fmt.Fprintln(stdin, "/status")
				expect("the status", has("mode ap", "-> node n1"))
				if _, err := bob.Send(ctxFor(t, 10*time.Second), client.SendArgs{To: "alice", Text: "bob on the other side", Cmid: "b-cut"}); err != nil {
					t.Fatalf("AP refused bob's send on the majority side: %v", err)
				}
				c.apply("heal")
				expect("bob's message from the other side, after heal", has("bob: bob on the other side"))
				fmt.Fprintln(stdin, "/history 10 local")
				expect("both sides merged in one history", has("* 3 messages of dm:alice:bob"))
				return
			}
			expect("the refusal, shown as it happens", has("✗ refused: unavailable (no quorum on this side", "retrying as cmid"))
			// While the send retries, the terminal still answers.
			fmt.Fprintln(stdin, "/status")
			expect("the status during the cut", has("dm:alice:bob is in shard", "as n1 sees it"))
			// n1's copy answers — with #1, or without it when the cut came
			// before n1 applied it: a local read may be stale.
			fmt.Fprintln(stdin, "/history 10 local")
			expect("a local read on the cut-off side", has("messages of dm:alice:bob (local read)"))
			fmt.Fprintln(stdin, "/history 10 linearizable")
			expect("a linearizable read refused on the cut-off side", has("! /history:", "unavailable"))
			c.apply("heal")
			expect("the retried send accepted after heal", has("✓ accepted dm:alice:bob #2"))
			if m := messages(t, bob, 2, 15*time.Second); m[1].Text != "are you there during the cut" || m[1].Seq != 2 {
				t.Fatalf("bob got %+v after heal, want alice's retried message as #2", m)
			}
			fmt.Fprintln(stdin, "/status")
			expect("the status of the conversation's shard", has("dm:alice:bob is in shard", "its leader as n1 sees it: n"))
			// With retry off, a refusal during a cut is final.
			fmt.Fprintln(stdin, "/retry off")
			expect("retry off", has("retry off"))
			c.apply("partition n1 g1 / n2 n3 g2 g3 redis")
			fmt.Fprintln(stdin, "once more during a cut")
			expect("a final refusal or unknown outcome", func(l string) bool {
				return strings.Contains(l, "final: not applied") || strings.Contains(l, "final: it may or may not")
			})
			c.apply("heal")
		})
	}
}
