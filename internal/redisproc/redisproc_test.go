package redisproc

import (
	"context"
	"errors"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// ping asks the server at addr for PING through go-redis, the client the
// system itself uses.
func ping(t *testing.T, addr string) error {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second, ReadTimeout: time.Second})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return c.Ping(ctx).Err()
}

func TestLifecycle(t *testing.T) {
	ctx := context.Background()
	real := ForTest(t)
	emb, err := Embedded()
	if err != nil {
		t.Fatalf("embedded: %v", err)
	}
	t.Cleanup(func() { _ = emb.Stop() })

	for _, tc := range []struct {
		name string
		srv  *Server
		kind string
	}{
		{"redis-server", real, "redis-server"},
		{"embedded", emb, "embedded miniredis"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.srv
			if got := s.Kind(); got != tc.kind {
				t.Fatalf("Kind() = %q, want %q", got, tc.kind)
			}
			if err := ping(t, s.Addr()); err != nil {
				t.Fatalf("started server %s does not answer PING: %v", s.Addr(), err)
			}
			if err := Ping(ctx, s.Addr()); err != nil {
				t.Fatalf("Ping(%s): %v", s.Addr(), err)
			}
			pid := s.Pid()
			if (tc.kind == "redis-server") != (pid > 0) {
				t.Fatalf("Pid() = %d for %s", pid, tc.kind)
			}
			if err := s.Kill(); err != nil {
				t.Fatalf("kill: %v", err)
			}
			if err := Ping(ctx, s.Addr()); err == nil {
				t.Fatalf("killed server %s still answers PING", s.Addr())
			}
			if pid > 0 {
				if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
					t.Fatalf("killed redis-server pid %d still exists (kill -0: %v)", pid, err)
				}
			}
			addr := s.Addr()
			if err := s.Restart(ctx); err != nil {
				t.Fatalf("restart: %v", err)
			}
			if s.Addr() != addr {
				t.Fatalf("restart moved the server from %s to %s", addr, s.Addr())
			}
			if err := ping(t, s.Addr()); err != nil {
				t.Fatalf("restarted server %s does not answer PING: %v", s.Addr(), err)
			}
			// Restarting a running server is a no-op.
			before := s.Pid()
			if err := s.Restart(ctx); err != nil {
				t.Fatalf("restart running: %v", err)
			}
			if s.Pid() != before {
				t.Fatalf("restart of a running server changed pid %d -> %d", before, s.Pid())
			}
			if err := s.Stop(); err != nil {
				t.Fatalf("stop: %v", err)
			}
			if err := s.Stop(); err != nil {
				t.Fatalf("second stop: %v", err)
			}
			if err := Ping(ctx, s.Addr()); err == nil {
				t.Fatalf("stopped server %s still answers PING", s.Addr())
			}
		})
	}
}

// TestPersistenceOff checks the flags reached redis-server: a lab Redis
// must not write snapshots into the working directory.
func TestPersistenceOff(t *testing.T) {
	s := ForTest(t)
	c := redis.NewClient(&redis.Options{Addr: s.Addr()})
	defer c.Close()
	ctx := context.Background()
	for key, want := range map[string]string{"save": "", "appendonly": "no", "bind": "127.0.0.1"} {
		got, err := c.ConfigGet(ctx, key).Result()
		if err != nil {
			t.Fatalf("CONFIG GET %s: %v", key, err)
		}
		if got[key] != want {
			t.Errorf("redis-server config %s = %q, want %q", key, got[key], want)
		}
	}
}

func TestRestartAfterCrash(t *testing.T) {
	s := ForTest(t)
	pid := s.Pid()
	// The server dies behind our back; Restart must notice and start it.
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.Pid() != 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if err := s.Restart(context.Background()); err != nil {
		t.Fatalf("restart after crash: %v", err)
	}
	if s.Pid() == pid || s.Pid() == 0 {
		t.Fatalf("restart after crash: pid %d -> %d, want a new process", pid, s.Pid())
	}
	if err := ping(t, s.Addr()); err != nil {
		t.Fatalf("restarted server does not answer PING: %v", err)
	}
}

func TestNoBinary(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	if Available() {
		t.Fatal("Available() = true with an empty PATH")
	}
	_, err := Start(context.Background(), t.TempDir())
	if !errors.Is(err, ErrNoBinary) {
		t.Fatalf("Start with no binary: err = %v, want ErrNoBinary", err)
	}
}
