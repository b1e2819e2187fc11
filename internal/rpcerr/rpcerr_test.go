package rpcerr

import (
	"errors"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestRoundTrip: every protocol code a node answers with decodes back to
// itself, and gRPC's own statuses decode as what they are: a transport
// failure, or a message over the size limit (too_large, never the
// rate_limited its gRPC code shares).
func TestRoundTrip(t *testing.T) {
	for code := range toGRPC {
		got, msg, err := Decode(Error(code, "what happened: %d", 7))
		if got != code || msg != "what happened: 7" || err != nil {
			t.Errorf("Error(%s) decodes to (%q, %q, %v)", code, got, msg, err)
		}
	}
	if got, _, err := Decode(status.Error(codes.ResourceExhausted, "grpc: received message larger than max (5000000 vs. 4194304)")); got != TooLarge || err != nil {
		t.Errorf("gRPC's size limit decodes to (%q, %v), want too_large", got, err)
	}
	for _, c := range []codes.Code{codes.Unavailable, codes.DeadlineExceeded, codes.Canceled} {
		if _, _, err := Decode(status.Error(c, "x")); !errors.Is(err, ErrTransport) {
			t.Errorf("gRPC %s decodes to %v, want a transport failure", c, err)
		}
	}
	if got, _, _ := Decode(status.Error(codes.PermissionDenied, "no detail")); got != Forbidden {
		t.Errorf("a status without the detail decodes by its gRPC code: got %q, want forbidden", got)
	}
}
