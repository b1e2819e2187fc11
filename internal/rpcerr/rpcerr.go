// Package rpcerr carries the protocol's error codes across gRPC between
// nodes and gateways. Each code has one gRPC status code, chosen so that a
// node's own answers never look like a transport failure: codes.Unavailable
// and codes.DeadlineExceeded are left to gRPC itself, which a gateway must
// judge by whether the request could have reached the node. A node's
// answer also names its protocol code in an ErrorInfo detail (domain
// "mpim"), so that a status gRPC makes itself — ResourceExhausted for a
// message over the size limit — is never read as a node's answer
// (rate_limited).
package rpcerr

import (
	"errors"
	"fmt"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// domain marks the ErrorInfo details of a node's answers.
const domain = "mpim"

// Code is a protocol error code (see docs/protocol.md).
type Code string

// The protocol's error codes.
const (
	BadRequest   Code = "bad_request"
	Unauthorized Code = "unauthorized"
	Forbidden    Code = "forbidden"
	NotFound     Code = "not_found"
	Conflict     Code = "conflict"
	TooLarge     Code = "too_large"
	RateLimited  Code = "rate_limited"
	Unavailable  Code = "unavailable"
	Timeout      Code = "timeout"
	Internal     Code = "internal"
)

var toGRPC = map[Code]codes.Code{
	BadRequest:   codes.InvalidArgument,
	Unauthorized: codes.Unauthenticated,
	Forbidden:    codes.PermissionDenied,
	NotFound:     codes.NotFound,
	Conflict:     codes.AlreadyExists,
	TooLarge:     codes.OutOfRange,
	RateLimited:  codes.ResourceExhausted,
	Unavailable:  codes.FailedPrecondition,
	Timeout:      codes.Aborted,
	Internal:     codes.Internal,
}

// Error returns a gRPC status error that a gateway decodes back into code.
func Error(code Code, format string, args ...any) error {
	c, ok := toGRPC[code]
	if !ok {
		c = codes.Internal
	}
	st := status.New(c, fmt.Sprintf(format, args...))
	if d, err := st.WithDetails(&errdetails.ErrorInfo{Reason: string(code), Domain: domain}); err == nil {
		st = d
	}
	return st.Err()
}

// nodeCode is the protocol code a node's answer names in its detail.
func nodeCode(st *status.Status) (Code, bool) {
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.Domain == domain {
			return Code(info.Reason), true
		}
	}
	return "", false
}

// ErrTransport marks a failure of the call itself rather than a node's
// answer: the node may be down, or the connection broke.
var ErrTransport = errors.New("rpcerr: transport failure")

// Decode returns the protocol code and message of a node's error. For a
// transport failure (gRPC's own Unavailable, Canceled or DeadlineExceeded)
// it returns ErrTransport with the gRPC code in the message, and the caller
// decides between unavailable and timeout.
func Decode(err error) (Code, string, error) {
	if err == nil {
		return "", "", nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return Internal, err.Error(), nil
	}
	if code, ok := nodeCode(st); ok {
		return code, st.Message(), nil
	}
	switch st.Code() {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled, codes.Unknown:
		return "", st.Message(), fmt.Errorf("%w: %s: %s", ErrTransport, st.Code(), st.Message())
	case codes.ResourceExhausted:
		// gRPC's own: a request or reply over the size limit (a node never
		// answers rate_limited without its detail).
		return TooLarge, "a message between gateway and node exceeded gRPC's size limit (" + st.Message() + "); ask for a smaller page", nil
	}
	for code, c := range toGRPC {
		if c == st.Code() {
			return code, st.Message(), nil
		}
	}
	return Internal, st.Message(), nil
}
