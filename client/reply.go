package client

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"mpim/gateway/wire"
	"mpim/internal/convid"
)

// Error codes of the protocol, as carried in Error.Code.
const (
	CodeBadRequest   = string(wire.BadRequest)
	CodeUnauthorized = string(wire.Unauthorized)
	CodeForbidden    = string(wire.Forbidden)
	CodeNotFound     = string(wire.NotFound)
	CodeConflict     = string(wire.Conflict)
	CodeTooLarge     = string(wire.TooLarge)
	CodeRateLimited  = string(wire.RateLimited)
	CodeUnavailable  = string(wire.Unavailable)
	CodeTimeout      = string(wire.Timeout)
	CodeInternal     = string(wire.Internal)
)

// Error is an error reply ({"ok": false, "error": {...}}) from the gateway.
// Every code except "timeout" means the request was not applied.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Error formats the reply as "gateway: code: message".
func (e *Error) Error() string {
	if e.Message == "" {
		return "gateway: " + e.Code
	}
	return "gateway: " + e.Code + ": " + e.Message
}

// ErrorCode returns the code of the *Error in err's chain, or "" when err is
// not an error reply (nil, a transport failure, an expired context).
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// Reply is a success reply, field by field. The accessors return the zero
// value when a field is missing or has another type; Decode reports why.
type Reply map[string]json.RawMessage

// Decode unmarshals field k into v.
func (r Reply) Decode(k string, v any) error {
	raw, ok := r[k]
	if !ok {
		return fmt.Errorf("client: reply has no field %q", k)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("client: reply field %q: %w", k, err)
	}
	return nil
}

// String returns field k as a string.
func (r Reply) String(k string) string {
	var s string
	_ = r.Decode(k, &s)
	return s
}

// Uint returns field k as an unsigned integer.
func (r Reply) Uint(k string) uint64 {
	var n uint64
	_ = r.Decode(k, &n)
	return n
}

// Bool returns field k as a boolean.
func (r Reply) Bool(k string) bool {
	var b bool
	_ = r.Decode(k, &b)
	return b
}

// Message is a chat message as the protocol carries it (the gateway's
// codec's type). Tentative is nil in CP, where positions never change.
type Message = wire.Message

// Push is a frame the gateway sent on its own ({"push": kind, ...}). Raw is
// the whole frame.
type Push struct {
	Kind string
	Raw  json.RawMessage
}

// Push kinds of the protocol.
const (
	PushMessage   = wire.PushMessage
	PushDelivered = wire.PushDelivered
	PushRead      = wire.PushRead
	PushTyping    = wire.PushTyping
	PushPresence  = wire.PushPresence
	PushResync    = wire.PushResync
	PushKicked    = wire.PushKicked
)

// Message decodes the message of a `message` push.
func (p Push) Message() (Message, error) {
	var f struct {
		Message *Message `json:"message"`
	}
	if err := json.Unmarshal(p.Raw, &f); err != nil {
		return Message{}, fmt.Errorf("client: %s push: %w", p.Kind, err)
	}
	if f.Message == nil {
		return Message{}, fmt.Errorf("client: %s push has no message object", p.Kind)
	}
	return *f.Message, nil
}

// PushFields holds the fields of every push kind other than `message`; each
// kind fills the ones the protocol lists for it. Text is the `message` field
// of a `kicked` push (e.g. the account's new name after a name conflict).
type PushFields struct {
	Conv    string `json:"conv"`
	User    string `json:"user"`
	Seq     uint64 `json:"seq"`
	ID      string `json:"id"`
	Online  bool   `json:"online"`
	Gateway string `json:"gateway"`
	FromSeq uint64 `json:"from_seq"`
	Reason  string `json:"reason"`
	Text    string `json:"-"`
}

// Fields decodes a push other than `message`.
func (p Push) Fields() (PushFields, error) {
	var f struct {
		PushFields
		Message json.RawMessage `json:"message"`
	}
	if err := json.Unmarshal(p.Raw, &f); err != nil {
		return PushFields{}, fmt.Errorf("client: %s push: %w", p.Kind, err)
	}
	_ = json.Unmarshal(f.Message, &f.Text) // only a string in `kicked`
	return f.PushFields, nil
}

// DMConv returns the conversation id of the direct conversation of a and b
// (the protocol's naming, convid.DM).
func DMConv(a, b string) string { return convid.DM(a, b) }

// GroupConv returns the conversation id of group g (convid.OfGroup).
func GroupConv(g string) string { return convid.OfGroup(g) }

// NewCmid returns a fresh random client message id (26 characters). Reuse
// it on every retry of the same send: the gateway deduplicates by it.
func NewCmid() string { return rand.Text() }
