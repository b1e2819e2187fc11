package procstate

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestWaitReady(t *testing.T) {
	ctx := context.Background()
	never := func(context.Context) bool { return false }
	always := func(context.Context) bool { return true }

	ready := make(chan string, 1)
	ready <- "node n1 ready"
	if err := WaitReady(ctx, ready, nil, always); err != nil {
		t.Errorf("ready line and check: %v", err)
	}
	done := make(chan struct{})
	close(done)
	if err := WaitReady(ctx, make(chan string), done, always); !errors.Is(err, ErrExited) {
		t.Errorf("exited before its ready line: %v, want ErrExited", err)
	}
	if err := WaitReady[string](ctx, nil, done, never); !errors.Is(err, ErrExited) {
		t.Errorf("exited while the check fails: %v, want ErrExited", err)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := WaitReady[string](short, nil, make(chan struct{}), never); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("never ready: %v, want the deadline", err)
	}
	calls := 0
	third := func(context.Context) bool { calls++; return calls == 3 }
	if err := WaitReady[string](ctx, nil, make(chan struct{}), third); err != nil || calls != 3 {
		t.Errorf("ready on the third check: %v after %d checks", err, calls)
	}
}
