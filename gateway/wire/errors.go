package wire

import "fmt"

// Code is the machine-readable kind of an error reply, one of the spec's
// error codes. Clients branch on it; the message is for humans.
type Code string

// Error codes of protocol version 1. This package itself produces only
// BadRequest, TooLarge and (for an unencodable reply) Internal; the others are
// here so the gateway and the nodes speak one vocabulary.
const (
	BadRequest   Code = "bad_request"  // malformed frame, missing or invalid field
	Unauthorized Code = "unauthorized" // not logged in, bad credentials, bad token
	Forbidden    Code = "forbidden"    // not a member of that conversation
	NotFound     Code = "not_found"    // no such user or group
	Conflict     Code = "conflict"     // name already taken
	TooLarge     Code = "too_large"    // a field over its limit
	RateLimited  Code = "rate_limited" // too many requests; retry later
	Unavailable  Code = "unavailable"  // refused and guaranteed not applied
	Timeout      Code = "timeout"      // outcome unknown; retry with the same cmid
	Internal     Code = "internal"     // a bug
)

// Error is an error reply: a code and a message that says what happened and
// what the client can do about it.
type Error struct {
	Code    Code
	Message string
}

// Error returns the code and the message, so an *Error reads well in logs.
func (e *Error) Error() string { return string(e.Code) + ": " + e.Message }

// Errorf returns an *Error with code and a message formatted as by fmt.Sprintf.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// clip returns s quoted for an error message, cut to a few dozen bytes so a
// hostile 60 KiB value does not come back in the reply.
func clip(s string) string {
	const max = 40
	if len(s) <= max {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprintf("%q...", s[:max])
}
