// Package tracing sets up OpenTelemetry for a member: where its spans go
// (a file of JSON lines, or an OTLP/gRPC collector; nowhere by default)
// and the W3C trace context carried in gRPC metadata between gateway and
// node and between nodes, so that one send is one trace across
// processes. The spans themselves are recorded by package spans.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"os"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// Config says where a member's spans go. Both empty: tracing is off.
type Config struct {
	// File receives the spans as JSON lines (the stdout exporter's form).
	File string
	// OTLP is the HOST:PORT of an OTLP/gRPC collector (plain text: a
	// collector on the same host or network).
	OTLP string
}

// On reports whether c sends spans anywhere.
func (c Config) On() bool { return c.File != "" || c.OTLP != "" }

// Provider is a member's tracer provider; Shutdown flushes what is
// buffered.
type Provider struct {
	*sdktrace.TracerProvider
	closeFile func() error
}

// Shutdown flushes and stops the exporter.
func (p *Provider) Shutdown(ctx context.Context) error {
	err := p.TracerProvider.Shutdown(ctx)
	if p.closeFile != nil {
		err = errors.Join(err, p.closeFile())
	}
	return err
}

// Start makes the provider of service (mpim-node, mpim-gateway) for
// member, exporting as c says.
func Start(ctx context.Context, c Config, service, member string) (*Provider, error) {
	var exp sdktrace.SpanExporter
	p := &Provider{}
	switch {
	case c.File != "":
		f, err := os.OpenFile(c.File, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, fmt.Errorf("tracing: --trace-file: %w", err)
		}
		p.closeFile = f.Close
		if exp, err = stdouttrace.New(stdouttrace.WithWriter(f)); err != nil {
			f.Close()
			return nil, err
		}
	case c.OTLP != "":
		var err error
		if exp, err = otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(c.OTLP), otlptracegrpc.WithInsecure()); err != nil {
			return nil, fmt.Errorf("tracing: --otlp %s: %w", c.OTLP, err)
		}
	default:
		return nil, errors.New("tracing: neither a file nor an OTLP endpoint")
	}
	res := resource.NewSchemaless(attribute.String("service.name", service), attribute.String("service.instance.id", member))
	p.TracerProvider = sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return p, nil
}

// propagator carries W3C trace context (traceparent) in gRPC metadata.
var propagator = propagation.TraceContext{}

// mdCarrier adapts gRPC metadata to the propagator.
type mdCarrier metadata.MD

func (m mdCarrier) Get(k string) string {
	if v := metadata.MD(m).Get(k); len(v) > 0 {
		return v[0]
	}
	return ""
}
func (m mdCarrier) Set(k, v string) { metadata.MD(m).Set(k, v) }
func (m mdCarrier) Keys() []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// ClientInterceptor puts the span of a call's ctx into its outgoing
// metadata (nothing when ctx carries no span).
func ClientInterceptor(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		md, _ := metadata.FromOutgoingContext(ctx)
		md = md.Copy()
		propagator.Inject(ctx, mdCarrier(md))
		ctx = metadata.NewOutgoingContext(ctx, md)
	}
	return invoker(ctx, method, req, reply, cc, opts...)
}

// FromIncoming returns ctx carrying the remote span of an incoming call's
// metadata as its parent (ctx unchanged when it has none).
func FromIncoming(ctx context.Context) context.Context {
	md, ok := metadata.FromIncomingContext(ctx)
	if !ok {
		return ctx
	}
	return propagator.Extract(ctx, mdCarrier(md))
}
