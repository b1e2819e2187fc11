package bench

import (
	"bytes"
	"unicode/utf8"
)

// messagePush is what the load generator reads of a message push.
type messagePush struct{ id, from, text string }

var pushPrefix = []byte(`{"push":"message","message":{`)

// The kinds of the message object's fields.
const (
	kindString = iota
	kindInt
	kindBool
)

// messageField names a field of the gateway's message object: its bit in
// the set of fields seen, and its kind; ok is false for any other key.
func messageField(key []byte) (bit uint, kind int, ok bool) {
	switch string(key) {
	case "conv":
		return 0, kindString, true
	case "seq":
		return 1, kindInt, true
	case "id":
		return 2, kindString, true
	case "from":
		return 3, kindString, true
	case "text":
		return 4, kindString, true
	case "cmid":
		return 5, kindString, true
	case "ts":
		return 6, kindInt, true
	case "origin":
		return 7, kindString, true
	case "tentative":
		return 8, kindBool, true
	}
	return 0, 0, false
}

// needed are the bits of id, from and text.
const needed = 1<<2 | 1<<3 | 1<<4

// scanMessagePush reads a message push without encoding/json, whose
// validation and reflection were a third of the load generator's CPU in
// the 100-member group run (the clients decode 80–90k pushes a second on
// the same two cores as the system they measure). It accepts exactly the
// compact shape the gateway writes — {"push":"message","message":{...}}
// with the message's known fields, each once, of its type, strings
// without escapes or control characters — and reports ok false for
// anything else, which the caller then decodes with encoding/json. When it
// answers, it answers what encoding/json would.
func scanMessagePush(data []byte) (p messagePush, ok bool) {
	if !bytes.HasPrefix(data, pushPrefix) || !bytes.HasSuffix(data, []byte("}}")) {
		return p, false
	}
	body := data[len(pushPrefix) : len(data)-2] // the message object's fields
	var seen uint
	for len(body) > 0 {
		key, rest, ok := scanString(body)
		if !ok || len(rest) == 0 || rest[0] != ':' {
			return p, false
		}
		bit, kind, known := messageField(key)
		if !known || seen&(1<<bit) != 0 {
			return p, false
		}
		seen |= 1 << bit
		rest = rest[1:]
		var val []byte
		switch kind {
		case kindBool:
			switch {
			case bytes.HasPrefix(rest, []byte("true")):
				rest = rest[4:]
			case bytes.HasPrefix(rest, []byte("false")):
				rest = rest[5:]
			default:
				return p, false
			}
		case kindString:
			if val, rest, ok = scanString(rest); !ok {
				return p, false
			}
		default:
			if rest, ok = scanInt(rest); !ok {
				return p, false
			}
		}
		switch string(key) {
		case "id":
			p.id = string(val)
		case "from":
			p.from = string(val)
		case "text":
			p.text = string(val)
		}
		switch {
		case len(rest) == 0:
			body = nil
		case rest[0] == ',' && len(rest) > 1:
			body = rest[1:]
		default:
			return p, false
		}
	}
	return p, seen&needed == needed
}

// scanString reads a JSON string that needs no unescaping: no backslash,
// no control character, valid UTF-8. It returns the contents and the rest.
func scanString(b []byte) (val, rest []byte, ok bool) {
	if len(b) == 0 || b[0] != '"' {
		return nil, nil, false
	}
	end := bytes.IndexByte(b[1:], '"')
	if end < 0 {
		return nil, nil, false
	}
	val = b[1 : 1+end]
	for _, c := range val {
		if c < 0x20 || c == '\\' {
			return nil, nil, false
		}
	}
	if !utf8.Valid(val) {
		return nil, nil, false
	}
	return val, b[end+2:], true
}

// scanInt reads a JSON integer (-?(0|[1-9][0-9]*)) and returns the rest.
func scanInt(b []byte) (rest []byte, ok bool) {
	i := 0
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i++; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		}
	default:
		return nil, false
	}
	return b[i:], true
}
