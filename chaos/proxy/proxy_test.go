package proxy

import (
	"bufio"
	"bytes"
	"io"
	"math/rand/v2"
	"net"
	"testing"
	"time"
)

// TestForwardBothWays checks that bytes cross a link intact in both
// directions and that Links counts them.
func TestForwardBothWays(t *testing.T) {
	n := newNet(t)
	srv := serve(t, echo)
	tests := []struct {
		name string
		size int
	}{
		{"one byte", 1},
		{"one chunk", bufSize},
		{"many chunks", 3<<20 + 17},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := link(t, n, "g1", "n1", srv.Addr())
			c := dial(t, l.Addr())
			payload := make([]byte, tt.size)
			for i := range payload {
				payload[i] = byte(rand.N(256))
			}
			go func() { c.Write(payload) }()
			got := make([]byte, tt.size)
			c.SetReadDeadline(time.Now().Add(20 * time.Second))
			if _, err := io.ReadFull(c, got); err != nil {
				t.Fatalf("echo of %d bytes: %v", tt.size, err)
			}
			if !bytes.Equal(got, payload) {
				t.Fatalf("echo of %d bytes came back altered", tt.size)
			}
			state := func() LinkState {
				for _, s := range n.Links() {
					if s.Addr == l.Addr() {
						return s
					}
				}
				t.Fatalf("link %s missing from Links()", l.Addr())
				return LinkState{}
			}
			want := int64(tt.size)
			waitFor(t, 2*time.Second, "byte counts reach the payload size", func() bool {
				s := state()
				return s.BytesFromTo == want && s.BytesToFrom == want
			})
			if s := state(); s.Conns != 1 || s.From != "g1" || s.To != "n1" || s.Target != srv.Addr() {
				t.Fatalf("Links() = %+v, want one open g1→n1 connection to %s", s, srv.Addr())
			}
			c.Close()
			waitFor(t, 2*time.Second, "closed connection leaves Links()", func() bool { return state().Conns == 0 })
		})
	}
	if got := len(n.Links()); got != len(tests) {
		t.Fatalf("Links() has %d links, want %d", got, len(tests))
	}
}

// TestHoldKeepsStreamIntact holds traffic in the middle of a long numbered
// stream: nothing arrives while held, no side sees an error, and after
// Release every line arrives once, in order.
func TestHoldKeepsStreamIntact(t *testing.T) {
	tests := []struct {
		name string
		held [][2]string
	}{
		{"both directions", [][2]string{{"a", "b"}, {"b", "a"}}},
		{"requests only", [][2]string{{"a", "b"}}},
		{"replies only", [][2]string{{"b", "a"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := newNet(t)
			srv := serve(t, echo)
			l := link(t, n, "a", "b", srv.Addr())
			c := dial(t, l.Addr())
			const total = 150_000 // 1.35 MB: more than the proxy queues, so TCP backpressure is exercised
			seq := runSequence(c, total, 2000)
			waitFor(t, 5*time.Second, "the stream starts flowing", func() bool { return seq.got.Load() >= 300 })

			for _, d := range tt.held {
				n.Hold(d[0], d[1])
			}
			time.Sleep(100 * time.Millisecond) // bytes already handed to the kernel still land
			before := seq.got.Load()
			time.Sleep(300 * time.Millisecond)
			if after := seq.got.Load(); after != before {
				t.Fatalf("%d lines arrived while held", after-before)
			}
			seq.noVerdictYet(t)
			if before >= total {
				t.Fatalf("the whole stream crossed before the hold; nothing was tested")
			}

			for _, d := range tt.held {
				n.Release(d[0], d[1])
			}
			select {
			case err := <-seq.recvd:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("after release only %d of %d lines arrived", seq.got.Load(), total)
			}
			if err := <-seq.sent; err != nil {
				t.Fatalf("sender: %v", err)
			}
		})
	}
}

// TestLongLivedConnSurvivesHold runs a ping-pong, holds both directions for
// a second in the middle of it, and checks the same connection carries on.
func TestLongLivedConnSurvivesHold(t *testing.T) {
	n := newNet(t)
	srv := serve(t, echo)
	l := link(t, n, "n1", "n2", srv.Addr())
	c := dial(t, l.Addr())
	r := bufio.NewReader(c)
	ping := func(i int) {
		t.Helper()
		msg := string(rune('a'+i%26)) + "-ping\n"
		if _, err := io.WriteString(c, msg); err != nil {
			t.Fatalf("ping %d: %v", i, err)
		}
		if got := readLine(t, c, r, 5*time.Second); got != msg {
			t.Fatalf("ping %d: got %q, want %q", i, got, msg)
		}
	}
	for i := range 5 {
		ping(i)
	}

	start := time.Now()
	n.Hold("n1", "n2")
	n.Hold("n2", "n1")
	if _, err := io.WriteString(c, "held\n"); err != nil {
		t.Fatalf("write while held: %v", err)
	}
	expectSilence(t, c, r, 300*time.Millisecond, "reply during a hold")
	time.Sleep(time.Second - time.Since(start))
	n.Heal()
	if got := readLine(t, c, r, 5*time.Second); got != "held\n" {
		t.Fatalf("after heal got %q, want the held message", got)
	}
	if waited := time.Since(start); waited < time.Second {
		t.Fatalf("held reply arrived after %v, before the 1s hold ended", waited)
	}
	for i := range 5 {
		ping(i)
	}
}

// TestOnewayEitherDialler holds a→b only and checks, on a connection a
// dialled and on one b dialled, that b→a bytes still flow while a→b bytes
// wait and arrive after Release.
func TestOnewayEitherDialler(t *testing.T) {
	tests := []struct {
		name     string
		dialler  string // who opens the connection
		listener string
	}{
		{"a dials b", "a", "b"},
		{"b dials a", "b", "a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := newNet(t)
			accepted := make(chan *net.TCPConn, 1)
			srv := serve(t, handOver(accepted))
			l := link(t, n, tt.dialler, tt.listener, srv.Addr())
			client := dial(t, l.Addr())
			var server *net.TCPConn
			select {
			case server = <-accepted:
			case <-time.After(5 * time.Second):
				t.Fatal("proxy never dialled the listener")
			}
			side := map[string]*net.TCPConn{tt.dialler: client, tt.listener: server}
			a, b := side["a"], side["b"]
			ra, rb := bufio.NewReader(a), bufio.NewReader(b)

			n.Hold("a", "b")
			if _, err := io.WriteString(a, "a-to-b\n"); err != nil {
				t.Fatalf("a writes: %v", err)
			}
			if _, err := io.WriteString(b, "b-to-a\n"); err != nil {
				t.Fatalf("b writes: %v", err)
			}
			if got := readLine(t, a, ra, 2*time.Second); got != "b-to-a\n" {
				t.Fatalf("b→a is not held but a got %q", got)
			}
			expectSilence(t, b, rb, 300*time.Millisecond, "a→b is held")
			if _, err := io.WriteString(b, "b-again\n"); err != nil {
				t.Fatalf("b writes again: %v", err)
			}
			if got := readLine(t, a, ra, 2*time.Second); got != "b-again\n" {
				t.Fatalf("b→a stopped flowing during a→b hold: a got %q", got)
			}
			n.Release("a", "b")
			if got := readLine(t, b, rb, 2*time.Second); got != "a-to-b\n" {
				t.Fatalf("after release b got %q, want the held a-to-b", got)
			}
		})
	}
}

// TestConnectWhileHeld opens a connection across a hold in both
// directions: the proxy accepts and dials through, the bytes wait, and they
// arrive on Release.
func TestConnectWhileHeld(t *testing.T) {
	n := newNet(t)
	accepted := make(chan *net.TCPConn, 1)
	srv := serve(t, handOver(accepted))
	l := link(t, n, "g2", "n2", srv.Addr())
	n.Hold("g2", "n2")
	n.Hold("n2", "g2")

	c := dial(t, l.Addr())
	var s *net.TCPConn
	select {
	case s = <-accepted:
	case <-time.After(5 * time.Second):
		t.Fatal("a connection opened during a hold was not dialled through")
	}
	io.WriteString(c, "hello\n")
	io.WriteString(s, "welcome\n")
	rc, rs := bufio.NewReader(c), bufio.NewReader(s)
	expectSilence(t, s, rs, 300*time.Millisecond, "g2→n2 is held")
	expectSilence(t, c, rc, 50*time.Millisecond, "n2→g2 is held")
	n.Heal()
	if got := readLine(t, s, rs, 2*time.Second); got != "hello\n" {
		t.Fatalf("server got %q after heal", got)
	}
	if got := readLine(t, c, rc, 2*time.Second); got != "welcome\n" {
		t.Fatalf("client got %q after heal", got)
	}
}

// BenchmarkForward measures one-way throughput across a link with no fault.
func BenchmarkForward(b *testing.B) {
	n := NewNet(nil)
	defer n.Close()
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	sunk := make(chan int64, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			sunk <- 0
			return
		}
		defer c.Close()
		got, _ := io.Copy(io.Discard, c)
		sunk <- got
	}()
	l, err := n.Link("a", "b", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	c, err := net.Dial("tcp", l.Addr())
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, bufSize)
	b.SetBytes(bufSize)
	b.ResetTimer()
	for range b.N {
		if _, err := c.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	c.(*net.TCPConn).CloseWrite()
	if got := <-sunk; got != int64(b.N)*bufSize {
		b.Fatalf("sink got %d bytes, want %d", got, int64(b.N)*bufSize)
	}
	c.Close()
}
