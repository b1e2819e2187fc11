package wire

import "mpim/internal/convid"

// validDevice reports whether s is a valid device name: ^[A-Za-z0-9_.:-]{1,64}$.
// Devices allow upper case and ':' so clients can use host names and ids.
func validDevice(s string) bool {
	if len(s) == 0 || len(s) > MaxDevice {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '_' || c == '.' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}

// validConv reports whether conv is a well-formed conversation id.
func validConv(conv string) bool {
	_, ok := convid.ParseWire(conv)
	return ok
}
