package spans

import (
	"context"

	"encoding/json"
	"fmt"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"net/http/httptest"
	"testing"
	"time"
)

func TestRecorder(t *testing.T) {
	r := New("n1", 4)
	t0 := time.Unix(100, 0)
	for i := range 6 {
		r.Add(fmt.Sprint("k", i%3), fmt.Sprint("stage", i), t0.Add(time.Duration(i)*time.Millisecond), t0.Add(time.Duration(i+1)*time.Millisecond))
	}
	// The ring keeps the last 4: stage2..stage5.
	got := r.Find([]string{"k0", "k2"})
	if len(got) != 3 || got[0].Name != "stage2" || got[1].Name != "stage3" || got[2].Name != "stage5" || got[0].Proc != "n1" {
		t.Fatalf("Find(k0, k2) = %+v, want stage2, stage3, stage5 in order (stage0 overwritten)", got)
	}
	var nilRec *Recorder
	nilRec.Add("k", "x", t0, t0) // a nil recorder records nothing, and does not panic
	if nilRec.Find([]string{"k"}) != nil {
		t.Fatal("a nil recorder found spans")
	}
	w := httptest.NewRecorder()
	r.ServeHTTP(w, httptest.NewRequest("GET", "/debug/spans?key=k1", nil))
	var served []Span
	if err := json.Unmarshal(w.Body.Bytes(), &served); err != nil || len(served) != 1 || served[0].Name != "stage4" {
		t.Fatalf("GET /debug/spans?key=k1 = %s (%v), want the one span of k1 still kept (stage4)", w.Body, err)
	}
}

// TestRecorderTracer: with a tracer, a stage recorded for a key becomes an
// OpenTelemetry span under the span adopted for that key (with its times),
// and one recorded after the request ended starts a trace of its own.
func TestRecorderTracer(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	r := New("g1", 0).WithTracer(tp.Tracer("test"))
	t0 := time.Unix(100, 0)
	ctx, end := r.Start(context.Background(), "alice/c1", "gateway: send")
	r.Add("alice/c1", "stage", t0, t0.Add(time.Millisecond))
	r.Add("bob/c9", "another send's stage", t0, t0)
	end()
	r.Add("alice/c1", "after the reply", t0, t0)
	_ = ctx
	got := map[string]tracetest.SpanStub{}
	for _, s := range exp.GetSpans() {
		got[s.Name] = s
	}
	root, stage, other, after := got["gateway: send"], got["stage"], got["another send's stage"], got["after the reply"]
	if stage.Parent.SpanID() != root.SpanContext.SpanID() || !stage.StartTime.Equal(t0) || stage.EndTime.Sub(stage.StartTime) != time.Millisecond {
		t.Fatalf("the stage %+v is not a child of the send's span %s with its own times", stage.Parent, root.SpanContext.SpanID())
	}
	if other.Parent.IsValid() || after.Parent.IsValid() {
		t.Fatal("a stage of another key, or one after the request ended, was put under the send's span")
	}
	if len(r.Find([]string{"alice/c1"})) != 0 {
		t.Fatal("a recorder without a ring kept spans")
	}
}
