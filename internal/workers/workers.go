// Package workers runs short tasks on goroutines that outlive them.
//
// A goroutine started per task begins with a small stack; a task that
// goes through gRPC, tracing and JSON grows it to 16–32 KiB, copying it at
// each doubling, and the copy is thrown away when the goroutine ends. The
// gateway did that for every request: runtime.newstack was 10 % of its CPU
// in `mpim bench --profile` (docs/benchmarks.md). A worker keeps its grown
// stack between tasks, and ends after a while without one, so that an idle
// gateway holds no workers.
package workers

import (
	"sync"
	"sync/atomic"
	"time"
)

// Pool runs tasks on idle workers, starting a new one when none is idle:
// it never queues a task and never bounds how many run at once (callers
// bound that, as the gateway's request slots do).
type Pool struct {
	idle  time.Duration
	tasks chan func() // unbuffered: a send succeeds only if a worker waits
	stop  chan struct{}
	once  sync.Once
	wg    sync.WaitGroup
	// started counts the workers ever started.
	started atomic.Int64
}

// New returns a pool whose workers end after idle without a task.
func New(idle time.Duration) *Pool {
	return &Pool{idle: idle, tasks: make(chan func()), stop: make(chan struct{})}
}

// Go runs fn on a worker.
func (p *Pool) Go(fn func()) {
	select {
	case p.tasks <- fn:
		return
	default:
	}
	p.wg.Add(1)
	p.started.Add(1)
	go p.work(fn)
}

func (p *Pool) work(fn func()) {
	defer p.wg.Done()
	fn()
	t := time.NewTimer(p.idle)
	defer t.Stop()
	for {
		select {
		case fn := <-p.tasks:
			fn()
			t.Reset(p.idle)
		case <-t.C:
			return
		case <-p.stop:
			return
		}
	}
}

// Close ends the idle workers and waits for the busy ones to finish their
// task; Go must not be called after it.
func (p *Pool) Close() {
	p.once.Do(func() { close(p.stop) })
	p.wg.Wait()
}
