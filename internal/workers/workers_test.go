package workers

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestPoolReusesIdleWorkers: tasks one after another run on one worker;
// tasks at once each get one; every task runs; idle workers end, and
// Close ends the rest.
func TestPoolReusesIdleWorkers(t *testing.T) {
	p := New(time.Hour)
	defer p.Close()
	var ran atomic.Int64
	for range 100 {
		done := make(chan struct{})
		p.Go(func() { ran.Add(1); close(done) })
		<-done
		time.Sleep(time.Millisecond) // the worker goes back to waiting
	}
	if ran.Load() != 100 {
		t.Fatalf("%d of 100 tasks ran", ran.Load())
	}
	if n := p.started.Load(); n > 5 {
		t.Fatalf("100 tasks one after another started %d workers, want about 1", n)
	}

	var wg sync.WaitGroup
	release := make(chan struct{})
	for range 50 {
		wg.Add(1)
		p.Go(func() { defer wg.Done(); <-release; ran.Add(1) })
	}
	close(release) // 50 tasks blocked at once: none waited for another
	wg.Wait()
	if n := p.started.Load(); n < 50 {
		t.Fatalf("50 tasks at once ran on %d workers in all, want at least 50", n)
	}
	if ran.Load() != 150 {
		t.Fatalf("%d of 150 tasks ran", ran.Load())
	}
}

func TestPoolWorkersEndWhenIdle(t *testing.T) {
	before := runtime.NumGoroutine()
	p := New(20 * time.Millisecond)
	defer p.Close()
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		p.Go(func() { defer wg.Done(); time.Sleep(5 * time.Millisecond) })
	}
	wg.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Fatalf("%d goroutines after the workers were idle, %d before", n, before)
	}
}
