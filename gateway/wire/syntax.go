package wire

// maxDepth is the deepest nesting checkJSON accepts, the same as
// encoding/json's, so both agree on what is valid.
const maxDepth = 10000

// plain marks the bytes a JSON string can hold without a closer look: all
// but control characters, '"' and '\\'. Bytes of UTF-8 sequences are plain
// here; Decode checks UTF-8 with utf8.Valid, which is faster at it.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 0x100; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// checkJSON reports whether b is exactly one JSON value (RFC 8259), the same
// as json.Valid (which, like it, leaves UTF-8 alone) but without the per-byte
// function call of encoding/json's scanner, because it runs on every frame.
// Nesting is tracked in a stack, not by recursion.
func checkJSON(b []byte) bool {
	var stackBuf [32]byte
	stack := stackBuf[:0]
	i := 0
	for {
		// A value starts at i, after optional whitespace.
		i = skipSpace(b, i)
		if i >= len(b) {
			return false
		}
		var ok bool
		switch c := b[i]; c {
		case '{', '[':
			end := byte('}')
			if c == '[' {
				end = ']'
			}
			if len(stack) >= maxDepth {
				return false
			}
			i = skipSpace(b, i+1)
			if i < len(b) && b[i] == end {
				i++
				break // an empty container is a complete value
			}
			stack = append(stack, c)
			if c == '{' {
				if i, ok = checkKey(b, i); !ok {
					return false
				}
			}
			continue
		case '"':
			if i, ok = checkString(b, i); !ok {
				return false
			}
		case 't':
			if i = checkLiteral(b, i, "true"); i < 0 {
				return false
			}
		case 'f':
			if i = checkLiteral(b, i, "false"); i < 0 {
				return false
			}
		case 'n':
			if i = checkLiteral(b, i, "null"); i < 0 {
				return false
			}
		default:
			if i = checkNumber(b, i); i < 0 {
				return false
			}
		}
		// A value ended at i: close containers until one expects another value.
		for {
			i = skipSpace(b, i)
			if len(stack) == 0 {
				if i == len(b) {
					return true
				}
				return false
			}
			if i >= len(b) {
				return false
			}
			top, c := stack[len(stack)-1], b[i]
			if c == ',' {
				i++
				if top == '{' {
					if i, ok = checkKey(b, skipSpace(b, i)); !ok {
						return false
					}
				}
				break
			}
			if top == '{' && c == '}' || top == '[' && c == ']' {
				stack = stack[:len(stack)-1]
				i++
				continue
			}
			return false
		}
	}
}

// checkKey checks a member's key and colon at b[i] and returns the index of
// its value.
func checkKey(b []byte, i int) (int, bool) {
	if i >= len(b) || b[i] != '"' {
		return 0, false
	}
	i, ok := checkString(b, i)
	if !ok {
		return 0, false
	}
	i = skipSpace(b, i)
	if i >= len(b) || b[i] != ':' {
		return 0, false
	}
	return i + 1, true
}

// checkString checks the string at b[i] == '"' and returns the index past it.
func checkString(b []byte, i int) (int, bool) {
	for i++; i < len(b); {
		if plain[b[i]] {
			i++
			continue
		}
		switch b[i] {
		case '"':
			return i + 1, true
		case '\\':
			if i+1 >= len(b) {
				return 0, false
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if _, ok := hex4(b[i+2:]); !ok {
					return 0, false
				}
				i += 6
			default:
				return 0, false
			}
		default: // a control character
			return 0, false
		}
	}
	return 0, false
}

// checkLiteral checks that lit is at b[i] and returns the index past it.
func checkLiteral(b []byte, i int, lit string) int {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return -1
	}
	return i + len(lit)
}

// checkNumber checks the number at b[i] and returns the index past it:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func checkNumber(b []byte, i int) int {
	digits := func(i int) int { // one or more digits
		j := i
		for j < len(b) && '0' <= b[j] && b[j] <= '9' {
			j++
		}
		if j == i {
			return -1
		}
		return j
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i >= len(b):
		return -1
	case b[i] == '0':
		i++
	default:
		if i = digits(i); i < 0 {
			return -1
		}
	}
	if i < len(b) && b[i] == '.' {
		if i = digits(i + 1); i < 0 {
			return -1
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i = digits(i); i < 0 {
			return -1
		}
	}
	return i
}
