package ports

import (
	"net"
	"strconv"
	"testing"
)

func TestFree(t *testing.T) {
	ps, err := Free(50)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range ps {
		if p < Low || p >= High || seen[p] {
			t.Fatalf("port %d: outside %d-%d or repeated", p, Low, High)
		}
		seen[p] = true
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			t.Fatalf("port %d was handed out but cannot be bound: %v", p, err)
		}
		ln.Close()
	}
}
