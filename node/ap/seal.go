package ap

import (
	"crypto/hmac"
	"crypto/sha256"
)

// tagSize is the length of the authentication tag in front of everything
// a node publishes on Redis.
const tagSize = 16

// sealer authenticates what nodes publish on Redis — log entries and
// heartbeats — with a key every member shares (Config.LogKey), so that a
// replica applies only entries a member wrote. Redis is reachable by the
// gateways and by whoever holds its password; without this, anything
// published on mpim:ap:log would be applied as a replicated write. The
// channel is part of the tag, so a heartbeat cannot pass for an entry.
// Pulls need no tag: they come over the members' mutual TLS.
type sealer struct{ key []byte }

// seal prepends b's tag; without a key it returns b unchanged.
func (s sealer) seal(channel string, b []byte) []byte {
	if len(s.key) == 0 {
		return b
	}
	return append(s.tag(channel, b), b...)
}

// open checks and strips the tag; without a key it returns b unchanged.
func (s sealer) open(channel string, b []byte) ([]byte, bool) {
	if len(s.key) == 0 {
		return b, true
	}
	if len(b) < tagSize || !hmac.Equal(b[:tagSize], s.tag(channel, b[tagSize:])) {
		return nil, false
	}
	return b[tagSize:], true
}

func (s sealer) tag(channel string, b []byte) []byte {
	mac := hmac.New(sha256.New, s.key)
	mac.Write([]byte(channel))
	mac.Write([]byte{0})
	mac.Write(b)
	return mac.Sum(nil)[:tagSize]
}

// LogKey derives the key that authenticates a cluster's Redis traffic
// from its shared secret (the token secret), so that no second secret
// need be handed to every member.
func LogKey(secret []byte) []byte {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte("mpim ap log v1"))
	return mac.Sum(nil)
}
