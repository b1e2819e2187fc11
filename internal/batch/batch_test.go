package batch

import (
	"slices"
	"testing"
)

func TestDrain(t *testing.T) {
	ch := make(chan int, 10)
	for i := range 5 {
		ch <- i
	}
	if got := Drain(ch, []int{-1}, 3); !slices.Equal(got, []int{-1, 0, 1}) {
		t.Fatalf("Drain up to 3 = %v", got)
	}
	if got := Drain(ch, nil, 10); !slices.Equal(got, []int{2, 3, 4}) {
		t.Fatalf("Drain of the rest = %v: it must stop, not wait, when the queue is empty", got)
	}
	ch <- 7
	close(ch)
	if got := Drain(ch, nil, 10); !slices.Equal(got, []int{7}) {
		t.Fatalf("Drain of a closed queue = %v", got)
	}
}
