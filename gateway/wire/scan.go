package wire

import (
	"bytes"
	"unicode/utf16"
	"unicode/utf8"
)

// This file is a minimal JSON scanner over raw tokens. It assumes the input
// passed json.Valid for decoding; on input that did not (only used to pull
// the id out of a broken frame) it stops at the first surprise and never
// reads out of bounds.

// members iterates over the members of a JSON object, yielding each key and
// value as raw tokens (the key with its quotes).
//
//	m := members{data: b}
//	for m.next() { use(m.key, m.val) }
//	if !m.ok() { not an object }
type members struct {
	data     []byte
	pos      int
	state    int // 0: before '{', 1: after a member, 2: done, 3: failed
	key, val []byte
}

// next advances to the next member and reports whether there is one.
func (m *members) next() bool {
	switch m.state {
	case 0:
		m.pos = skipSpace(m.data, m.pos)
		if m.pos >= len(m.data) || m.data[m.pos] != '{' {
			m.state = 3
			return false
		}
		m.pos = skipSpace(m.data, m.pos+1)
		if m.pos < len(m.data) && m.data[m.pos] == '}' {
			m.pos++
			m.state = 2
			return false
		}
	case 1:
		m.pos = skipSpace(m.data, m.pos)
		if m.pos < len(m.data) && m.data[m.pos] == '}' {
			m.pos++
			m.state = 2
			return false
		}
		if m.pos >= len(m.data) || m.data[m.pos] != ',' {
			m.state = 3
			return false
		}
		m.pos = skipSpace(m.data, m.pos+1)
	default:
		return false
	}
	if m.pos >= len(m.data) || m.data[m.pos] != '"' {
		m.state = 3
		return false
	}
	end := skipString(m.data, m.pos)
	if end < 0 {
		m.state = 3
		return false
	}
	m.key = m.data[m.pos:end]
	m.pos = skipSpace(m.data, end)
	if m.pos >= len(m.data) || m.data[m.pos] != ':' {
		m.state = 3
		return false
	}
	m.pos = skipSpace(m.data, m.pos+1)
	end = skipValue(m.data, m.pos)
	if end < 0 {
		m.state = 3
		return false
	}
	m.val = m.data[m.pos:end]
	m.pos = end
	m.state = 1
	return true
}

// ok reports whether the object ended cleanly with '}'.
func (m *members) ok() bool { return m.state == 2 }

// elements iterates over the elements of a JSON array like members does over
// an object.
type elements struct {
	data  []byte
	pos   int
	state int
	val   []byte
}

// next advances to the next element and reports whether there is one.
func (e *elements) next() bool {
	switch e.state {
	case 0:
		e.pos = skipSpace(e.data, e.pos)
		if e.pos >= len(e.data) || e.data[e.pos] != '[' {
			e.state = 3
			return false
		}
		e.pos = skipSpace(e.data, e.pos+1)
		if e.pos < len(e.data) && e.data[e.pos] == ']' {
			e.pos++
			e.state = 2
			return false
		}
	case 1:
		e.pos = skipSpace(e.data, e.pos)
		if e.pos < len(e.data) && e.data[e.pos] == ']' {
			e.pos++
			e.state = 2
			return false
		}
		if e.pos >= len(e.data) || e.data[e.pos] != ',' {
			e.state = 3
			return false
		}
		e.pos = skipSpace(e.data, e.pos+1)
	default:
		return false
	}
	end := skipValue(e.data, e.pos)
	if end < 0 {
		e.state = 3
		return false
	}
	e.val = e.data[e.pos:end]
	e.pos = end
	e.state = 1
	return true
}

// skipSpace returns the index of the first byte at or after i that is not
// JSON whitespace.
func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index just past the string starting at b[i] == '"',
// or -1 if it does not end. It jumps from quote to quote with IndexByte and
// counts the backslashes before each: an odd number escapes it.
func skipString(b []byte, i int) int {
	for i++; i < len(b); {
		q := bytes.IndexByte(b[i:], '"')
		if q < 0 {
			return -1
		}
		j := i + q
		n := 0
		for k := j - 1; k >= i && b[k] == '\\'; k-- {
			n++
		}
		if n%2 == 0 {
			return j + 1
		}
		i = j + 1
	}
	return -1
}

// skipValue returns the index just past the value starting at b[i], or -1.
// Objects and arrays are skipped with a depth counter, not recursion, so a
// deeply nested hostile frame costs no stack.
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = skipString(b, i)
				if i < 0 {
					return -1
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return -1
	}
	start := i
	for i < len(b) {
		switch b[i] {
		case ',', '}', ']', ':', '"', '{', '[', ' ', '\t', '\n', '\r':
			if i == start {
				return -1
			}
			return i
		}
		i++
	}
	if i == start {
		return -1
	}
	return i
}

// isNull reports whether a raw value is JSON null.
func isNull(v []byte) bool { return len(v) == 4 && string(v) == "null" }

// unquote decodes a raw JSON string token. It fails on a token that is not a
// string, on a bad escape, and on an escaped UTF-16 surrogate without its
// pair, which encoding/json would silently turn into U+FFFD. It does not check
// the UTF-8 of unescaped bytes; Decode checks the whole frame once.
func unquote(tok []byte) (string, bool) {
	if len(tok) < 2 || tok[0] != '"' || tok[len(tok)-1] != '"' {
		return "", false
	}
	s := tok[1 : len(tok)-1]
	if bytes.IndexByte(s, '\\') < 0 {
		return string(s), true
	}
	buf := make([]byte, 0, len(s))
	for i := 0; i < len(s); {
		c := s[i]
		if c != '\\' {
			buf = append(buf, c)
			i++
			continue
		}
		if i+1 >= len(s) {
			return "", false
		}
		switch s[i+1] {
		case '"', '\\', '/':
			buf = append(buf, s[i+1])
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			r, ok := hex4(s[i+2:])
			if !ok {
				return "", false
			}
			i += 6
			if utf16.IsSurrogate(r) {
				if r >= 0xdc00 || i+1 >= len(s) || s[i] != '\\' || s[i+1] != 'u' {
					return "", false
				}
				lo, ok := hex4(s[i+2:])
				if !ok {
					return "", false
				}
				r = utf16.DecodeRune(r, lo)
				if r == utf8.RuneError {
					return "", false
				}
				i += 6
			}
			buf = utf8.AppendRune(buf, r)
			continue
		default:
			return "", false
		}
		i += 2
	}
	return string(buf), true
}

// hex4 decodes the four hex digits at the start of b.
func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// Outcomes of parseUint besides success.
const (
	uintOK = iota
	uintNotInteger
	uintOverflow
)

// parseUint decodes a raw JSON number that must be a non-negative integer
// written without fraction or exponent, as every JSON encoder writes one.
func parseUint(tok []byte) (uint64, int) {
	if len(tok) == 0 {
		return 0, uintNotInteger
	}
	var n uint64
	for _, c := range tok {
		if c < '0' || c > '9' {
			return 0, uintNotInteger
		}
		if n > (1<<64-1)/10 {
			return 0, uintOverflow
		}
		n *= 10
		d := uint64(c - '0')
		if n > 1<<64-1-d {
			return 0, uintOverflow
		}
		n += d
	}
	return n, uintOK
}

// appendString appends s to dst as a JSON string. Invalid UTF-8 becomes
// U+FFFD, as with encoding/json, so the output is always valid.
func appendString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
