// Package ports picks free loopback ports for processes the lab and the
// tests start on fixed addresses.
//
// Ports come from below the kernel's ephemeral range (Linux: 32768-60999),
// so that a port picked now and bound a moment later by a child process
// cannot meanwhile be taken by some outgoing connection's ephemeral port —
// the "address already in use" that port 0 followed by a close invites.
package ports

import (
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
)

// The range ports are drawn from.
const (
	Low  = 20000
	High = 32000
)

// Free returns n distinct loopback ports that were free a moment ago.
func Free(n int) ([]int, error) {
	var out []int
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for tries := 0; len(out) < n; tries++ {
		if tries > 100*n+1000 {
			return nil, fmt.Errorf("ports: no %d free loopback ports in %d-%d", n, Low, High)
		}
		p := Low + rand.IntN(High-Low)
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			continue
		}
		lns = append(lns, ln)
		out = append(out, p)
	}
	return out, nil
}

// Addr returns one free loopback address, HOST:PORT.
func Addr() (string, error) {
	p, err := Free(1)
	if err != nil {
		return "", err
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(p[0])), nil
}
