// Package profiling serves the Go profiler on a member's HTTP mux.
package profiling

import (
	"net/http"
	"net/http/pprof"
)

// Serve adds the Go profiler under /debug/pprof/ to a node's or gateway's
// HTTP mux, beside /metrics: `mpim bench --profile` and `go tool pprof
// http://ADDR/debug/pprof/profile` read CPU and allocation profiles of a
// running member. It is served on the member's own HTTP listener (loopback
// in the lab); put that listener behind a firewall when running members
// on a network.
func Serve(mux *http.ServeMux) {
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
}
