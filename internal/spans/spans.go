// Package spans records where one send spends its time in a process: the
// gateway and the node each note timestamped spans ("queued for the
// engine", "log write and fsync", ...) under the send's key — the
// sender's name and the send's cmid — in a bounded ring, and serve them
// at /debug/spans. `mpim bench --trace N` reads them from every member
// for its N slowest sends and lays them out on one timeline (the members
// of a lab share one clock). It is off unless a process is started with
// --spans, and then costs a lock and a copy per span.
package spans

import (
	"encoding/json"
	"net/http"
	"sync"
	"time"
)

// Span is one interval (or instant, when Start == End) of one send in one
// process.
type Span struct {
	Key   string `json:"key"`
	Proc  string `json:"proc"`
	Name  string `json:"name"`
	Start int64  `json:"start_ns"` // Unix nanoseconds
	End   int64  `json:"end_ns"`
}

// Recorder keeps the last spans of a process. A nil Recorder records
// nothing, so call sites need no checks.
type Recorder struct {
	proc string
	mu   sync.Mutex
	ring []Span
	next int
	full bool
}

// New returns a recorder for process proc keeping the last size spans.
func New(proc string, size int) *Recorder {
	return &Recorder{proc: proc, ring: make([]Span, size)}
}

// Key is the key of a send: its sender and cmid.
func Key(user, cmid string) string { return user + "/" + cmid }

// Add records that the send key spent start..end in the named stage.
func (r *Recorder) Add(key, name string, start, end time.Time) {
	if r == nil || key == "" {
		return
	}
	s := Span{Key: key, Proc: r.proc, Name: name, Start: start.UnixNano(), End: end.UnixNano()}
	r.mu.Lock()
	r.ring[r.next] = s
	r.next++
	if r.next == len(r.ring) {
		r.next, r.full = 0, true
	}
	r.mu.Unlock()
}

// Since records the stage from start until now.
func (r *Recorder) Since(key, name string, start time.Time) {
	if r != nil {
		r.Add(key, name, start, time.Now())
	}
}

// Find returns the spans recorded for keys, oldest first.
func (r *Recorder) Find(keys []string) []Span {
	if r == nil {
		return nil
	}
	want := make(map[string]bool, len(keys))
	for _, k := range keys {
		want[k] = true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Span
	n := r.next
	if r.full {
		n = len(r.ring)
	}
	for i := range n {
		s := r.ring[(r.next-n+i+len(r.ring))%len(r.ring)]
		if want[s.Key] {
			out = append(out, s)
		}
	}
	return out
}

// ServeHTTP answers GET /debug/spans?key=K&key=K2...: the spans of those
// keys, as a JSON array (empty when the recorder is off).
func (r *Recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	out := r.Find(req.URL.Query()["key"])
	if out == nil {
		out = []Span{}
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(out)
}
