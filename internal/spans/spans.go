// Package spans records where one send spends its time in a process: the
// gateway and the node each note timestamped spans ("queued for the
// engine", "log write and fsync", ...) under the send's key — the
// sender's name and the send's cmid — in a bounded ring, and serve them
// at /debug/spans. `mpim bench --trace N` reads them from every member
// for its N slowest sends and lays them out on one timeline (the members
// of a lab share one clock). It is off unless a process is started with
// --spans, and then costs a lock and a copy per span.
//
// The same spans go to OpenTelemetry when the recorder has a tracer
// (WithTracer: a member started with --trace-file or --otlp): each stage
// becomes a span whose parent is the span of the request serving the
// send (Adopt), whose own parent came in the call's gRPC metadata from
// the gateway — one trace per send across gateway, node, and the shard's
// leader.
package spans

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
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

	// tracer, when set, also makes each span an OpenTelemetry span, a
	// child of the request span adopted for its key (parents).
	tracer  trace.Tracer
	parents sync.Map // key -> context.Context
}

// New returns a recorder for process proc keeping the last size spans (0:
// none kept, for a recorder that only feeds a tracer).
func New(proc string, size int) *Recorder {
	return &Recorder{proc: proc, ring: make([]Span, size)}
}

// WithTracer makes r's spans OpenTelemetry spans of t too.
func (r *Recorder) WithTracer(t trace.Tracer) *Recorder {
	r.tracer = t
	return r
}

// Tracing reports whether r feeds a tracer.
func (r *Recorder) Tracing() bool { return r != nil && r.tracer != nil }

// keyAttr names a span's send in OpenTelemetry.
const keyAttr = "mpim.send"

// Start begins an OpenTelemetry span named name for key, a child of ctx's
// span, and adopts it (see Adopt) until the returned end is called; it
// returns ctx carrying the new span (to call the next process with).
// Without a tracer it returns ctx and an end that does nothing.
func (r *Recorder) Start(ctx context.Context, key, name string) (context.Context, func()) {
	if !r.Tracing() || key == "" {
		return ctx, func() {}
	}
	ctx, span := r.tracer.Start(ctx, name, trace.WithAttributes(attribute.String(keyAttr, key), attribute.String("mpim.member", r.proc)))
	unadopt := r.Adopt(ctx, key)
	return ctx, func() { unadopt(); span.End() }
}

// Adopt makes ctx's span the parent of the stages Add records for key,
// until the returned function is called.
func (r *Recorder) Adopt(ctx context.Context, key string) func() {
	if !r.Tracing() || key == "" {
		return func() {}
	}
	r.parents.Store(key, ctx)
	return func() { r.parents.CompareAndDelete(key, ctx) }
}

// Key is the key of a send: its sender and cmid.
func Key(user, cmid string) string { return user + "/" + cmid }

// Add records that the send key spent start..end in the named stage.
func (r *Recorder) Add(key, name string, start, end time.Time) {
	if r == nil || key == "" {
		return
	}
	if r.tracer != nil {
		parent := context.Background()
		if p, ok := r.parents.Load(key); ok {
			parent = p.(context.Context)
		}
		_, span := r.tracer.Start(parent, name, trace.WithTimestamp(start),
			trace.WithAttributes(attribute.String(keyAttr, key), attribute.String("mpim.member", r.proc)))
		span.End(trace.WithTimestamp(end))
	}
	if len(r.ring) == 0 {
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
