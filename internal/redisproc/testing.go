package redisproc

import (
	"context"
	"testing"
	"time"
)

// ForTest starts a private redis-server for the test and stops it in
// t.Cleanup. It never skips: a missing redis-server binary fails the test,
// because CI installs it and a silently skipped integration test proves
// nothing.
func ForTest(t testing.TB) *Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := Start(ctx, t.TempDir())
	if err != nil {
		t.Fatalf("redisproc: cannot start a private redis-server for the test: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("redisproc: stop %s: %v", s.Addr(), err)
		}
	})
	return s
}
