package wire

import "strings"

// ValidName reports whether s is a valid user or group name:
// ^[a-z0-9_.-]{1,32}$. It is a byte loop rather than a regexp because it runs
// for every name of every request.
func ValidName(s string) bool {
	if len(s) == 0 || len(s) > MaxName {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

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

// DMConv is the id of the direct conversation between two user names:
// "dm:<a>:<b>" with the names in byte order, so both users name it alike.
func DMConv(a, b string) string {
	if b < a {
		a, b = b, a
	}
	return "dm:" + a + ":" + b
}

// GroupConv is the id of a group's conversation: "g:<group>".
func GroupConv(group string) string { return "g:" + group }

// ParseConv splits a conversation id. For "dm:<a>:<b>" it returns kind "dm"
// and the two user names; for "g:<group>" it returns kind "g" and the group in
// a. ok is false unless the names are valid and a direct conversation is
// written in canonical form (a < b, so never with oneself). Names cannot
// contain ':', so the split is unambiguous.
func ParseConv(conv string) (kind string, a, b string, ok bool) {
	switch {
	case strings.HasPrefix(conv, "g:"):
		g := conv[2:]
		if !ValidName(g) {
			return "", "", "", false
		}
		return "g", g, "", true
	case strings.HasPrefix(conv, "dm:"):
		a, b, found := strings.Cut(conv[3:], ":")
		if !found || !ValidName(a) || !ValidName(b) || a >= b {
			return "", "", "", false
		}
		return "dm", a, b, true
	}
	return "", "", "", false
}

// validConv reports whether conv is a well-formed conversation id.
func validConv(conv string) bool {
	_, _, _, ok := ParseConv(conv)
	return ok
}
