package main

import (
	"context"
	"time"

	"github.com/spf13/pflag"

	"mpim/internal/spans"
	"mpim/internal/tracing"
)

// traceFlags are where a member records one send's stages: the last N in
// a ring for mpim bench --trace (--spans), and OpenTelemetry spans to a
// file or an OTLP collector (--trace-file, --otlp). All off by default.
type traceFlags struct {
	ring   int
	export tracing.Config
}

func (t *traceFlags) add(f *pflag.FlagSet, where string) {
	f.IntVar(&t.ring, "spans", 0, "record where each send spends its time in the last N spans, served at /debug/spans"+where+" (mpim bench --trace); 0: off")
	f.StringVar(&t.export.File, "trace-file", "", "write OpenTelemetry spans of every send, as JSON lines, to this file (off by default)")
	f.StringVar(&t.export.OTLP, "otlp", "", "send OpenTelemetry spans of every send to this OTLP/gRPC collector, HOST:PORT (off by default)")
}

// recorder is the member's span recorder (nil when every kind is off) and
// a function that flushes the exporter at exit.
func (t *traceFlags) recorder(service, id string) (*spans.Recorder, func(), error) {
	if t.ring <= 0 && !t.export.On() {
		return nil, func() {}, nil
	}
	rec := spans.New(id, max(t.ring, 0))
	if !t.export.On() {
		return rec, func() {}, nil
	}
	p, err := tracing.Start(context.Background(), t.export, service, id)
	if err != nil {
		return nil, nil, usageError{err}
	}
	return rec.WithTracer(p.Tracer("mpim")), func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = p.Shutdown(ctx)
	}, nil
}
