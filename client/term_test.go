package client

import (
	"bytes"
	"context"
	"io"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestParseCommand(t *testing.T) {
	long := strings.Repeat("x", maxTextBytes+1)
	tests := []struct {
		line    string
		want    Command
		wantErr string
	}{
		{"", Command{}, ""},
		{"   \r\n", Command{}, ""},
		{"hello there", Command{Text: "hello there"}, ""},
		{"  keeps its spaces ", Command{Text: "  keeps its spaces "}, ""},
		{"//not a command", Command{Text: "/not a command"}, ""},
		{"/to bob", Command{Name: "to", Args: []string{"bob"}}, ""},
		{"/TO bob\r", Command{Name: "to", Args: []string{"bob"}}, ""},
		{"/to", Command{}, "usage: /to USER"},
		{"/to bob carol", Command{}, "usage: /to USER"},
		{"/to Bob", Command{}, `bad name "Bob"`},
		{"/group team-1", Command{Name: "group", Args: []string{"team-1"}}, ""},
		{"/join team", Command{Name: "join", Args: []string{"team"}}, ""},
		{"/leave team", Command{Name: "leave", Args: []string{"team"}}, ""},
		{"/members", Command{Name: "members", Args: []string{}}, ""},
		{"/history", Command{Name: "history", Args: []string{}, N: defaultHistory}, ""},
		{"/history 5", Command{Name: "history", Args: []string{"5"}, N: 5}, ""},
		{"/history 0", Command{}, "N from 1 to 1000"},
		{"/history lots", Command{}, "N from 1 to 1000"},
		{"/history local", Command{Name: "history", Args: []string{"local"}, N: defaultHistory, Read: "local"}, ""},
		{"/history 7 linearizable", Command{Name: "history", Args: []string{"7", "linearizable"}, N: 7, Read: "linearizable"}, ""},
		{"/history local local", Command{}, "usage: /history"},
		{"/retry off", Command{Name: "retry", Args: []string{"off"}}, ""},
		{"/retry ON", Command{Name: "retry", Args: []string{"ON"}, On: true}, ""},
		{"/retry maybe", Command{}, "usage: /retry on|off"},
		{"/status", Command{Name: "status", Args: []string{}}, ""},
		{"/who bob carol", Command{Name: "who", Args: []string{"bob", "carol"}}, ""},
		{"/who", Command{}, "usage: /who USER..."},
		{"/info bob", Command{Name: "info", Args: []string{"bob"}}, ""},
		{"/nick Captain  Al", Command{Name: "nick", Args: []string{"Captain", "Al"}, Text: "Captain Al"}, ""},
		{"/nick", Command{Name: "nick", Args: []string{}}, ""},
		{"/nick " + strings.Repeat("n", 65), Command{}, "nickname is 65 bytes"},
		{"/help", Command{Name: "help", Args: []string{}}, ""},
		{"/quit now", Command{}, "usage: /quit"},
		{"/frobnicate", Command{}, "unknown command /frobnicate; type /help"},
		{"/", Command{}, "empty command"},
		{long, Command{}, "the limit is 4096"},
	}
	for _, tt := range tests {
		got, err := ParseCommand(tt.line)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseCommand(%.40q) error %v, want one containing %q", tt.line, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseCommand(%.40q) = %+v, %v; want %+v", tt.line, got, err, tt.want)
		}
	}
}

func TestHelpListsEveryCommand(t *testing.T) {
	help := HelpText()
	for name := range commands {
		if !strings.Contains(help, "/"+name) {
			t.Errorf("help does not mention /%s", name)
		}
	}
}

// syncBuffer is an io.Writer the test can read while the term writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// waitOutput waits until out contains want.
func waitOutput(t *testing.T, out *syncBuffer, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(out.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("output never showed %q; output:\n%s", want, out.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestTermSession drives the terminal client line by line against the fake
// gateway and checks what the user sees.
func TestTermSession(t *testing.T) {
	fc := newFakeCluster(t, 1)
	fc.addUser("bob", testPassword)
	bob := dial(t, fc.gateways[0].url, Options{})
	if _, err := bob.Login(testCtx(t), "bob", testPassword, ""); err != nil {
		t.Fatal(err)
	}
	in, typing := io.Pipe()
	out := &syncBuffer{}
	term := NewTerm(SessionOptions{Gateways: fc.urls(), User: "alice", Password: testPassword, Register: true}, out)
	done := make(chan error, 1)
	go func() { done <- term.Run(testCtx(t), in) }()
	steps := []struct{ line, want string }{
		{"", "* logged in as alice (uid 2), mode cp, gateway g1"},
		{"hello?", "! no conversation yet; use /to USER or /group NAME first"},
		{"/to bob", "* talking to bob (dm:alice:bob)"},
		{"hi bob", "[dm:alice:bob #1] alice: hi bob"},
		{"/group team", "* talking in group team (g:team)"},
		{"hi team", "[g:team #1] alice: hi team"},
		{"/members", "* team: [alice]"},
		{"/who bob carol", "* carol is offline"},
		{"/info bob", `* bob: uid 1, nickname "", since `},
		{"/nick Al", `* nickname set to "Al"`},
		{"/join nope", "! /join: gateway: not_found: no group nope"},
		{"/to bob", "* talking to bob"},
		{"/history 5", "* 1 messages of dm:alice:bob (linearizable read)"},
		{"/bogus", "! unknown command /bogus; type /help for the list"},
		{"/help", "/history [N]"},
	}
	for _, st := range steps {
		if st.line != "" {
			if _, err := io.WriteString(typing, st.line+"\n"); err != nil {
				t.Fatal(err)
			}
		}
		waitOutput(t, out, st.want)
	}
	if !strings.Contains(out.String(), "* bob is online (gateway g1)") {
		t.Errorf("/who did not show bob online; output:\n%s", out)
	}
	// Incoming messages print as they arrive.
	if _, err := bob.Send(testCtx(t), SendArgs{To: "alice", Text: "hey alice"}); err != nil {
		t.Fatal(err)
	}
	waitOutput(t, out, "[dm:alice:bob #2] bob: hey alice")
	fc.push("alice", map[string]any{"push": PushTyping, "conv": "dm:alice:bob", "user": "bob"})
	waitOutput(t, out, "* bob is typing in dm:alice:bob")

	if _, err := io.WriteString(typing, "/quit\n"); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Run after /quit: %v", err)
	}
	_ = typing.Close()
	if n := strings.Count(out.String(), "alice: hi team"); n != 1 {
		t.Errorf("own message printed %d times, want once; output:\n%s", n, out)
	}
}

func TestTermEndsWithInputOrContext(t *testing.T) {
	fc := newFakeCluster(t, 1)
	opt := SessionOptions{Gateways: fc.urls(), User: "alice", Password: testPassword, Register: true}
	out := &syncBuffer{}
	if err := NewTerm(opt, out).Run(testCtx(t), strings.NewReader("/to alice\nnote to self\n")); err != nil {
		t.Fatalf("Run to the end of input: %v", err)
	}
	if !strings.Contains(out.String(), "[dm:alice:alice #1] alice: note to self") {
		t.Errorf("output:\n%s", out)
	}
	in, typing := io.Pipe()
	defer typing.Close()
	ctx, cancel := context.WithCancel(testCtx(t))
	done := make(chan error, 1)
	out = &syncBuffer{}
	go func() { done <- NewTerm(opt, out).Run(ctx, in) }()
	waitOutput(t, out, "* logged in")
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after cancel: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return when its context ended")
	}
}

// TestTermSendsInTheBackground: while a send is refused and retried, the
// command loop still answers (/status-like commands, /retry off), the
// messages typed meanwhile wait their turn and go out in the order typed,
// and /retry off makes the waiting send's next refusal final.
func TestTermSendsInTheBackground(t *testing.T) {
	fc := newFakeCluster(t, 1)
	fc.addUser("bob", testPassword)
	fc.mu.Lock()
	fc.sendRefusals = 1 << 30
	fc.mu.Unlock()
	in, typing := io.Pipe()
	defer typing.Close()
	out := &syncBuffer{}
	term := NewTerm(SessionOptions{Gateways: fc.urls(), User: "alice", Password: testPassword, Register: true,
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 50 * time.Millisecond}, out)
	done := make(chan error, 1)
	go func() { done <- term.Run(testCtx(t), in) }()
	say := func(line string) {
		t.Helper()
		if _, err := io.WriteString(typing, line+"\n"); err != nil {
			t.Fatal(err)
		}
	}
	waitOutput(t, out, "* logged in as alice")
	say("/to bob")
	say("first")
	waitOutput(t, out, "✗ refused: unavailable (no quorum on this side, or no leader yet) — not applied; retrying as cmid")
	// The loop is free while "first" is retried.
	say("second")
	say("/info bob")
	waitOutput(t, out, `* bob: uid 1, nickname ""`)
	fc.mu.Lock()
	fc.sendRefusals = 0
	fc.mu.Unlock()
	waitOutput(t, out, "[dm:alice:bob #2] alice: second")
	o := out.String()
	if i, j := strings.Index(o, "alice: first"), strings.Index(o, "alice: second"); i < 0 || j < i || !strings.Contains(o, "[dm:alice:bob #1] alice: first") {
		t.Fatalf("the messages typed while the first was retried did not go out in order; output:\n%s", o)
	}
	// /retry off while a send waits to be retried: its next refusal is final.
	fc.mu.Lock()
	fc.sendRefusals = 1 << 30
	fc.mu.Unlock()
	say("third")
	waitOutput(t, out, "attempt 2")
	say("/retry off")
	waitOutput(t, out, "✗ refused: unavailable (no quorum on this side, or no leader yet) — final: not applied")
	say("/quit")
	if err := <-done; err != nil {
		t.Fatalf("Run after /quit: %v", err)
	}
	if strings.Contains(out.String(), "alice: third") {
		t.Fatalf("a send refused for good was shown as sent; output:\n%s", out)
	}
}
