// Package wire is the client wire protocol of the gateway (shared/spec/protocol.md,
// version 1): it decodes one WebSocket text frame into a validated Request and
// encodes replies, error replies and pushes. It is pure: no sockets, no clocks,
// no state, so the gateway, the load generator and the fuzzers all share it.
//
// Decoding does not use encoding/json's struct decoder. That decoder matches
// keys case-insensitively ("Text" would fill text, while the spec says unknown
// fields are ignored), silently replaces invalid UTF-8 with U+FFFD (the spec
// wants bad_request), and cannot give a field a type that depends on the op
// (after is an object for sync but a seq for history). Instead a syntax check
// (syntax.go, equivalent to json.Valid but faster) and utf8.Valid look at the
// frame once, a small scanner (scan.go) walks its top-level members, and each
// op decodes only its own fields, checking their JSON types. That is exact,
// and about twice as fast as encoding/json's struct decoder without any
// validation (see BenchmarkDecodeSendEncodingJSON).
//
// Choices the spec leaves open, made here and relied on by the gateway:
//   - A field whose value is JSON null counts as absent, as in encoding/json.
//   - The envelope id must be a JSON string of at most MaxID bytes as written
//     between its quotes. An id that is not a string, too long or not UTF-8 is
//     not echoed: the error reply carries "id": null.
//   - A limit over its maximum is too_large (a field over its limit); a limit
//     of 0 or below is bad_request.
//   - Names (users, groups, devices) are checked against their pattern as a
//     whole, so a 33-byte user name is bad_request, not too_large.
//   - Fields that belong to other ops are ignored like unknown fields.
package wire

import "mpim/internal/convid"

// Limits of the protocol, in bytes of UTF-8 unless said otherwise.
const (
	// MaxFrame is the largest frame accepted; the gateway closes a connection
	// that sends a larger one with close code 1009.
	MaxFrame = 64 << 10
	// MaxID is the longest envelope id, measured as written between its quotes.
	MaxID = 128
	// MaxText is the longest message text; texts must not be empty.
	MaxText = 4096
	// MaxCmid is the longest client message id; cmids must not be empty.
	MaxCmid = 64
	// MaxNickname is the longest nickname; an empty nickname clears it.
	MaxNickname = 64
	// MinPassword and MaxPassword bound a password at register; login only
	// enforces MaxPassword, so a changed policy does not lock anyone out.
	MinPassword = 8
	MaxPassword = 128
	// DefaultSyncLimit is the sync page size when the request names none, and
	// MaxSyncLimit the largest a client may ask for (the spec sets only the
	// default; this package documents the maximum).
	DefaultSyncLimit = 500
	MaxSyncLimit     = 1000
	// DefaultHistoryLimit and MaxHistoryLimit bound a history page.
	DefaultHistoryLimit = 50
	MaxHistoryLimit     = 1000
	// MaxDevice is the longest device name (an extension of the spec: device
	// names match ^[A-Za-z0-9_.:-]{1,64}$).
	MaxDevice = 64
	// MaxToken is the longest session token accepted by resume.
	MaxToken = 1024
	// MaxCursor is the longest sync cursor; cursors are opaque and made by
	// the gateway, so a longer one was not made by it.
	MaxCursor = 1024
	// MaxMsgID is the longest message id accepted by ack and read.
	MaxMsgID = 128
	// MaxUsers is the most names in one presence request.
	MaxUsers = 256
	// MaxMembers is the most initial members in one group_create request.
	MaxMembers = 256
	// MaxName is the longest user or group name.
	MaxName = convid.MaxName
)

// Ops of protocol version 1, as sent in the envelope's op field.
const (
	OpRegister     = "register"
	OpLogin        = "login"
	OpResume       = "resume"
	OpUserInfo     = "user_info"
	OpUserUpdate   = "user_update"
	OpSend         = "send"
	OpSync         = "sync"
	OpHistory      = "history"
	OpAck          = "ack"
	OpRead         = "read"
	OpTyping       = "typing"
	OpGroupCreate  = "group_create"
	OpGroupJoin    = "group_join"
	OpGroupLeave   = "group_leave"
	OpGroupMembers = "group_members"
	OpPresence     = "presence"
	OpPing         = "ping"
	// OpStatus (an extension): the session's mode, gateway and node, and
	// for a conversation its shard and that shard's leader as the node
	// sees it.
	OpStatus = "status"
)

// Kinds of push, as sent in a push frame's push field.
const (
	PushMessage   = "message"
	PushDelivered = "delivered"
	PushRead      = "read"
	PushTyping    = "typing"
	PushPresence  = "presence"
	PushResync    = "resync"
	PushKicked    = "kicked"
)

// Defaults filled in by Decode when the request leaves a field out.
const (
	DefaultDevice = "default"
	// ReadLinearizable and ReadLocal are the values of history's read field.
	ReadLinearizable = "linearizable"
	ReadLocal        = "local"
)

// NeedsAuth reports whether op needs an authenticated connection: every op
// except register, login, resume and ping does (the gateway replies
// unauthorized otherwise).
func NeedsAuth(op string) bool {
	switch op {
	case OpRegister, OpLogin, OpResume, OpPing:
		return false
	}
	return true
}
