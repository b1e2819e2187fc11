// Package convid is the one home of conversation ids. A conversation has
// two names:
//
//   - its wire id, what clients send and are shown: "dm:<name>:<name>"
//     (the two user names in byte order, so both users name it alike) or
//     "g:<group>";
//   - its state key, what the state machine stores and shards by:
//     "d:<uid>:<uid>" (smaller uid first) or the same "g:<group>".
//
// A direct conversation is keyed by uids, never by names, so that a name
// changing hands (an AP registration conflict renames the losing account)
// moves no message from one account to another; nodes translate between
// the two names (node/dmconv.go). Wire and Key are the parsed forms.
package convid

import (
	"hash/fnv"
	"strconv"
	"strings"
)

// Kind is a conversation's kind.
type Kind int

const (
	// Direct is a conversation between two users.
	Direct Kind = iota + 1
	// Group is a group's conversation.
	Group
)

// MaxName is the longest user or group name, in bytes.
const MaxName = 32

// ValidName reports whether s is a valid user or group name:
// ^[a-z0-9_.-]{1,32}$. It is a byte loop rather than a regexp because it
// runs for every name of every request. Names cannot hold ':', which keeps
// conversation ids unambiguous.
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

const (
	groupPrefix = "g:"
	dmPrefix    = "dm:"
	keyPrefix   = "d:"
)

// OfGroup is the id of a group's conversation, the same on the wire and in
// the state: "g:<group>".
func OfGroup(group string) string { return groupPrefix + group }

// GroupOf returns the group of a group conversation id (wire id or key);
// ok is false for any other id.
func GroupOf(conv string) (group string, ok bool) { return strings.CutPrefix(conv, groupPrefix) }

// IsGroup reports whether conv names a group's conversation.
func IsGroup(conv string) bool { return strings.HasPrefix(conv, groupPrefix) }

// DM is the wire id of the direct conversation of two user names.
func DM(a, b string) string {
	if b < a {
		a, b = b, a
	}
	return dmPrefix + a + ":" + b
}

// Wire is a parsed wire id: Kind Direct with the two user names A < B, or
// Kind Group with the group in A.
type Wire struct {
	Kind Kind
	A, B string
}

// ParseWire parses a wire id; ok is false unless the names are valid and a
// direct conversation is written in canonical form (A < B, so never with
// oneself).
func ParseWire(conv string) (w Wire, ok bool) {
	if g, found := strings.CutPrefix(conv, groupPrefix); found {
		return Wire{Kind: Group, A: g}, ValidName(g)
	}
	rest, found := strings.CutPrefix(conv, dmPrefix)
	if !found {
		return Wire{}, false
	}
	a, b, found := strings.Cut(rest, ":")
	if !found || !ValidName(a) || !ValidName(b) || a >= b {
		return Wire{}, false
	}
	return Wire{Kind: Direct, A: a, B: b}, true
}

// String is the wire id.
func (w Wire) String() string {
	if w.Kind == Group {
		return OfGroup(w.A)
	}
	return DM(w.A, w.B)
}

// DMKey is the state key of two users' direct conversation.
func DMKey(a, b uint64) string {
	if b < a {
		a, b = b, a
	}
	return keyPrefix + strconv.FormatUint(a, 10) + ":" + strconv.FormatUint(b, 10)
}

// IsDMKey reports whether conv is a direct conversation's state key.
func IsDMKey(conv string) bool { return strings.HasPrefix(conv, keyPrefix) }

// Key is a parsed state key: Kind Direct with the two uids, smaller first,
// or Kind Group with the group.
type Key struct {
	Kind       Kind
	UIDA, UIDB uint64
	Group      string
}

// ParseKey parses a state key; ok is false unless it is canonical (a
// direct key's uids nonzero, distinct, smaller first, in decimal without
// leading zeros).
func ParseKey(conv string) (k Key, ok bool) {
	if g, found := strings.CutPrefix(conv, groupPrefix); found {
		return Key{Kind: Group, Group: g}, g != ""
	}
	rest, found := strings.CutPrefix(conv, keyPrefix)
	if !found {
		return Key{}, false
	}
	as, bs, found := strings.Cut(rest, ":")
	if !found {
		return Key{}, false
	}
	a, errA := strconv.ParseUint(as, 10, 64)
	b, errB := strconv.ParseUint(bs, 10, 64)
	if errA != nil || errB != nil || a == 0 || a >= b || DMKey(a, b) != conv {
		return Key{}, false
	}
	return Key{Kind: Direct, UIDA: a, UIDB: b}, true
}

// ShardTrailer is the gRPC trailer in which a CP node answers a send with
// the shard of its conversation, so that a gateway can send the next one
// to that shard's leader (it cannot compute a direct conversation's key:
// that needs the recipient's uid).
const ShardTrailer = "mpim-shard"

// Shard maps a conversation's state key to its shard by a stable hash
// (FNV-1a), so that every node, every gateway and every restart agree.
// Users live in shard 0.
func Shard(key string, shards int) int {
	h := fnv.New32a()
	h.Write([]byte(key))
	return int(h.Sum32() % uint32(shards))
}

// DMUIDs returns the two uids of a direct conversation key, smaller
// first; ok is false if conv is not one.
func DMUIDs(conv string) (a, b uint64, ok bool) {
	k, ok := ParseKey(conv)
	if !ok || k.Kind != Direct {
		return 0, 0, false
	}
	return k.UIDA, k.UIDB, true
}
