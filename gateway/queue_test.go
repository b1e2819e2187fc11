package gateway

import (
	"sync"
	"testing"
)

// TestQueueBoundAndOrder: the queue keeps FIFO order, refuses the item
// past its limit (the caller then drops the client or catches up, as with
// the full channel it replaces), and accepts again once drained.
func TestQueueBoundAndOrder(t *testing.T) {
	q := newQueue[int](3)
	for i := range 3 {
		if !q.push(i) {
			t.Fatalf("push %d refused below the limit", i)
		}
	}
	if q.push(3) {
		t.Fatal("push accepted past the limit of 3")
	}
	for want := range 3 {
		if got, ok := q.pop(); !ok || got != want {
			t.Fatalf("pop = %d, %v; want %d, true (FIFO)", got, ok, want)
		}
	}
	if _, ok := q.pop(); ok {
		t.Fatal("pop from an empty queue reported an item")
	}
	if !q.push(9) {
		t.Fatal("push refused after draining")
	}
}

// TestQueueNoLostSignal: a consumer that waits on ready and drains sees
// every item a concurrent producer pushed.
func TestQueueNoLostSignal(t *testing.T) {
	const n = 100_000
	q := newQueue[int](n)
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range n {
			q.push(i)
		}
	})
	next := 0
	for next < n {
		<-q.ready
		for v, ok := q.pop(); ok; v, ok = q.pop() {
			if v != next {
				t.Fatalf("got %d, want %d", v, next)
			}
			next++
		}
	}
	wg.Wait()
}

// TestQueueNeverEmptyStaysSmall: a queue kept busy (one item always
// waiting) slides its live items down instead of growing its buffer.
func TestQueueNeverEmptyStaysSmall(t *testing.T) {
	q := newQueue[int](8)
	q.push(-1)
	for i := range 100_000 {
		q.push(i)
		if got, ok := q.pop(); !ok || got != i-1 {
			t.Fatalf("pop = %d, %v; want %d (FIFO)", got, ok, i-1)
		}
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if c := cap(q.items); c > 64 {
		t.Fatalf("a queue holding one or two items grew its buffer to %d", c)
	}
}
