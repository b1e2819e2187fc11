package bench

import "bytes"

// messagePush is what the load generator reads of a message push.
type messagePush struct{ id, from, text string }

var pushPrefix = []byte(`{"push":"message",`)

// scanMessagePush reads a message push without encoding/json, whose
// validation and reflection were a third of the load generator's CPU in
// the 100-member group run (the clients decode 80–90k pushes a second on
// the same two cores as the system they measure). It accepts only the
// shape the gateway writes — one object of scalar fields with one nested
// object of scalar fields, strings without escapes — and reports ok false
// for anything else, which the caller then decodes with encoding/json.
func scanMessagePush(data []byte) (p messagePush, ok bool) {
	if !bytes.HasPrefix(data, pushPrefix) {
		return p, false
	}
	s := scanner{b: data, i: len(pushPrefix) - 1}
	found := false
	ok = s.object(func(key []byte, nested bool) bool {
		if !nested || string(key) != "message" {
			return !nested
		}
		found = true
		return s.object(func(key []byte, nested bool) bool {
			if nested {
				return false
			}
			v, isString := s.last, s.lastString
			switch string(key) {
			case "id":
				p.id = string(v)
			case "from":
				p.from = string(v)
			case "text":
				p.text = string(v)
			default:
				return true
			}
			return isString
		})
	})
	return p, ok && found && s.i == len(data)
}

// scanner walks a JSON object of the restricted shape above.
type scanner struct {
	b          []byte
	i          int
	last       []byte // the last scalar value read (a string without quotes)
	lastString bool
}

// object reads from the ',' or '{' at s.i through the closing '}'. For
// each key, a nested object is left to field (nested true, s.i at its
// '{'), a scalar is read first (into last) and field is called after it.
func (s *scanner) object(field func(key []byte, nested bool) bool) bool {
	if s.i >= len(s.b) || (s.b[s.i] != '{' && s.b[s.i] != ',') {
		return false
	}
	for {
		s.i++ // past '{' or ','
		if s.i < len(s.b) && s.b[s.i] == '}' {
			s.i++
			return true
		}
		key, ok := s.str()
		if !ok || s.i >= len(s.b) || s.b[s.i] != ':' {
			return false
		}
		s.i++
		if s.i < len(s.b) && s.b[s.i] == '{' {
			if !field(key, true) {
				return false
			}
		} else {
			if !s.scalar() || !field(key, false) {
				return false
			}
		}
		if s.i >= len(s.b) {
			return false
		}
		switch s.b[s.i] {
		case ',':
			continue
		case '}':
			s.i++
			return true
		default:
			return false
		}
	}
}

// str reads a string without escapes at s.i.
func (s *scanner) str() ([]byte, bool) {
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return nil, false
	}
	end := bytes.IndexByte(s.b[s.i+1:], '"')
	if end < 0 {
		return nil, false
	}
	v := s.b[s.i+1 : s.i+1+end]
	if bytes.IndexByte(v, '\\') >= 0 {
		return nil, false
	}
	s.i += end + 2
	return v, true
}

// scalar reads a string, number, true, false or null at s.i.
func (s *scanner) scalar() bool {
	if s.i < len(s.b) && s.b[s.i] == '"' {
		v, ok := s.str()
		s.last, s.lastString = v, true
		return ok
	}
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		if c == ',' || c == '}' {
			break
		}
		if !(c >= '0' && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E' || c >= 'a' && c <= 'z') {
			return false
		}
		s.i++
	}
	s.last, s.lastString = s.b[start:s.i], false
	return s.i > start
}
