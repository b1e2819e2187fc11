package wire

import (
	"bytes"
	"encoding/json"
	"sync"
)

// Message is the protocol's message object, as carried by sync and history
// replies and message pushes.
type Message struct {
	Conv   string `json:"conv"`
	Seq    uint64 `json:"seq"`
	ID     string `json:"id"`
	From   string `json:"from"`
	Text   string `json:"text"`
	Cmid   string `json:"cmid"`
	Ts     int64  `json:"ts"`
	Origin string `json:"origin"`
	// Tentative is set in AP only (true while the seq can still change);
	// CP leaves it nil and it is omitted.
	Tentative *bool `json:"tentative,omitempty"`
}

// Reply encodes a success reply {"id":<id>,"ok":true, ...fields of v}. v is a
// struct or map whose JSON is an object, or nil for no fields. id is the raw
// id that Decode returned, echoed verbatim; a nil id is written as null.
//
// The envelope owns the keys id and ok, so v must not have them. A reply
// that carries a message id (send's, which the spec's table calls id) must
// name it differently, e.g. msg_id: a duplicate "id" would make JavaScript's
// JSON.parse keep the message id and lose the reply's correlation. If v
// cannot be encoded or has such a key, Reply returns an internal error reply
// instead, so the bug shows in the first test.
func Reply(id json.RawMessage, v any) []byte {
	b := getBuf()
	defer putBuf(b)
	inner, e := b.object(v, "id", "ok")
	if e != nil {
		return ErrorReply(id, e)
	}
	out := make([]byte, 0, len(id)+len(inner)+24)
	out = append(out, `{"id":`...)
	out = appendID(out, id)
	out = append(out, `,"ok":true`...)
	return appendInner(out, inner)
}

// ErrorReply encodes {"id":<id or null>,"ok":false,"error":{"code","message"}}.
// A nil e is a bug in the caller and is sent as an internal error.
func ErrorReply(id json.RawMessage, e *Error) []byte {
	if e == nil {
		e = Errorf(Internal, "the gateway built an error reply without an error: please report this bug")
	}
	out := make([]byte, 0, len(id)+len(e.Message)+64)
	out = append(out, `{"id":`...)
	out = appendID(out, id)
	out = append(out, `,"ok":false,"error":{"code":`...)
	out = appendString(out, string(e.Code))
	out = append(out, `,"message":`...)
	out = appendString(out, e.Message)
	return append(out, "}}"...)
}

// Push encodes {"push":kind, ...fields of v}. As with Reply, v must encode
// to an object (or be nil) without a push key; otherwise Push returns an
// internal error reply with a null id.
func Push(kind string, v any) []byte {
	b := getBuf()
	defer putBuf(b)
	inner, e := b.object(v, "push")
	if e != nil {
		return ErrorReply(nil, e)
	}
	out := make([]byte, 0, len(kind)+len(inner)+16)
	out = append(out, `{"push":`...)
	out = appendString(out, kind)
	return appendInner(out, inner)
}

// appendID appends the envelope id, or null when there is none.
func appendID(out []byte, id json.RawMessage) []byte {
	if len(id) == 0 {
		return append(out, "null"...)
	}
	return append(out, id...)
}

// appendInner appends the members of an object (without braces), then '}'.
func appendInner(out, inner []byte) []byte {
	if len(inner) > 0 {
		out = append(out, ',')
		out = append(out, inner...)
	}
	return append(out, '}')
}

// encBuf is a pooled buffer and encoder for the fields of replies; replies are
// the gateway's hottest allocation, so the encoder state is reused.
type encBuf struct {
	buf bytes.Buffer
	enc *json.Encoder
}

var encPool = sync.Pool{New: func() any {
	b := new(encBuf)
	b.enc = json.NewEncoder(&b.buf)
	b.enc.SetEscapeHTML(false) // chat text is full of < > &; escaping them only costs bytes
	return b
}}

// getBuf takes an encoder buffer from the pool.
func getBuf() *encBuf { return encPool.Get().(*encBuf) }

// putBuf returns b to the pool unless it grew too large to keep.
func putBuf(b *encBuf) {
	if b.buf.Cap() > 1<<20 { // do not pin one huge sync reply's buffer forever
		return
	}
	b.buf.Reset()
	encPool.Put(b)
}

// object encodes v and returns the members of its JSON object without the
// braces (empty for nil, null or {}). The result aliases b until putBuf.
func (b *encBuf) object(v any, reserved ...string) ([]byte, *Error) {
	if v == nil {
		return nil, nil
	}
	if err := b.enc.Encode(v); err != nil {
		return nil, Errorf(Internal, "the gateway could not encode its reply (%v): please report this bug", err)
	}
	data := bytes.TrimRight(b.buf.Bytes(), "\n")
	if string(data) == "null" {
		return nil, nil
	}
	m := members{data: data}
	for m.next() {
		for _, r := range reserved {
			if len(m.key) == len(r)+2 && string(m.key[1:len(m.key)-1]) == r {
				return nil, Errorf(Internal, "the gateway's reply has a field %q that the envelope owns: please report this bug", r)
			}
		}
	}
	if !m.ok() {
		return nil, Errorf(Internal, "the gateway's reply fields are not a JSON object: please report this bug")
	}
	return data[1 : len(data)-1], nil
}
