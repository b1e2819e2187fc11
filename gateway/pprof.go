package gateway

import (
	"net/http"
	"net/http/pprof"
)

// servePprof adds the Go profiler under /debug/pprof/ to the process's HTTP
// mux, beside /metrics: `mpim bench --profile` and
// `go tool pprof http://ADDR/debug/pprof/profile` read CPU and allocation
// profiles of a running member. The listener is the member's own
// (loopback in the lab), so nothing new is exposed.
func servePprof(mux *http.ServeMux) {
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
}
