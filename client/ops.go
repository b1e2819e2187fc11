package client

import (
	"context"
	"time"
)

// This file holds one typed helper per protocol op. Each is Call with the
// op's fields and its reply decoded; errors follow Call.

// LoginResult is the reply to login and resume.
type LoginResult struct {
	UID     uint64 `json:"uid"`
	Token   string `json:"token"`
	Mode    string `json:"mode"` // "ap" or "cp"
	Gateway string `json:"gateway"`
	Node    string `json:"node"`
}

// SendArgs names the recipient (To, a user, or Group) of a message. An empty
// Cmid is filled with NewCmid; set it yourself to retry safely.
type SendArgs struct {
	To    string
	Group string
	Text  string
	Cmid  string
	// OnEvent, when set, is told each change of the send's fate by
	// Session.Send (attempts, refusals, unknown outcomes, retries, the
	// acknowledgement); it runs on the sending goroutine.
	OnEvent func(SendEvent)
	// Once makes Session.Send make one attempt (see
	// SessionOptions.NoRetry).
	Once bool
	// Retry, when set, is asked after each failed attempt whether to try
	// again (a terminal's /retry off while the send waits); false makes
	// that attempt's outcome final.
	Retry func() bool
}

// SendEvent is one change of a send's fate, as Session.Send sees it.
type SendEvent struct {
	Kind SendEventKind
	// Cmid is the send's client message id, the same on every attempt:
	// the gateway deduplicates by it, so a retry cannot apply it twice.
	Cmid string
	// Attempt counts the attempts made, 1 for the first.
	Attempt int
	// Code is the error code of a refusal or an unknown outcome ("" for a
	// lost connection); Err the error itself.
	Code string
	Err  error
	// Retry is how long the session waits before the next attempt; 0
	// when it does not retry (the fate is final).
	Retry time.Duration
	// Result is the acknowledgement (Kind SendAccepted).
	Result SendResult
}

// SendEventKind names a SendEvent.
type SendEventKind string

// What can happen to a send.
const (
	// SendAttempt: an attempt is on its way.
	SendAttempt SendEventKind = "attempt"
	// SendRefused: the attempt was refused and is guaranteed not applied
	// (e.g. unavailable: no quorum on this side).
	SendRefused SendEventKind = "refused"
	// SendUnknown: the attempt's outcome is unknown (timeout, or the
	// connection broke): it may or may not have been applied.
	SendUnknown SendEventKind = "unknown"
	// SendAccepted: acknowledged; Result holds the reply.
	SendAccepted SendEventKind = "accepted"
)

// SendResult is the reply to send. Dup is true when the gateway had already
// accepted this cmid and returned the first result again. The message id
// travels as "msg_id": the envelope owns "id" (gateway/wire).
type SendResult struct {
	Conv string `json:"conv"`
	Seq  uint64 `json:"seq"`
	ID   string `json:"msg_id"`
	Ts   int64  `json:"ts"`
	Dup  bool   `json:"dup"`
}

// SyncArgs selects what sync returns: from Cursor when set, else after the
// seqs in After (a non-nil empty map asks for everything). Limit 0 means the
// gateway's default (500).
type SyncArgs struct {
	Cursor string
	After  map[string]uint64
	Limit  int
}

// ConvMax is one conversation of the user with its highest seq.
type ConvMax struct {
	Conv   string `json:"conv"`
	MaxSeq uint64 `json:"max_seq"`
}

// SyncResult is the reply to sync. More means another sync from Cursor
// returns more messages.
type SyncResult struct {
	Messages []Message `json:"messages"`
	Convs    []ConvMax `json:"convs"`
	Cursor   string    `json:"cursor"`
	More     bool      `json:"more"`
}

// HistoryArgs selects a page of a conversation. Zero fields are left out:
// no bound, the default limit (50) and the default read ("linearizable").
type HistoryArgs struct {
	Conv   string
	Before uint64
	After  uint64
	Limit  int
	Read   string // "linearizable" or "local"
}

// HistoryResult is the reply to history. Consistency says what was served.
type HistoryResult struct {
	Messages    []Message `json:"messages"`
	More        bool      `json:"more"`
	Consistency string    `json:"consistency"`
}

// PresenceState is one user's presence.
type PresenceState struct {
	Online  bool   `json:"online"`
	Gateway string `json:"gateway"`
}

// UserInfo is a user's profile. Created is in ms since the Unix epoch.
type UserInfo struct {
	User     string `json:"user"`
	UID      uint64 `json:"uid"`
	Nickname string `json:"nickname"`
	Created  int64  `json:"created"`
}

// Register creates an account and returns its uid.
func (c *Conn) Register(ctx context.Context, user, password string) (uint64, error) {
	var r struct {
		UID uint64 `json:"uid"`
	}
	err := c.do(ctx, "register", map[string]any{"user": user, "password": password}, &r)
	return r.UID, err
}

// Login authenticates this connection; an empty device means "default".
func (c *Conn) Login(ctx context.Context, user, password, device string) (LoginResult, error) {
	f := map[string]any{"user": user, "password": password}
	if device != "" {
		f["device"] = device
	}
	var r LoginResult
	err := c.do(ctx, "login", f, &r)
	return r, err
}

// Resume authenticates this connection with a token from an earlier login.
func (c *Conn) Resume(ctx context.Context, token, device string) (LoginResult, error) {
	f := map[string]any{"token": token}
	if device != "" {
		f["device"] = device
	}
	var r LoginResult
	err := c.do(ctx, "resume", f, &r)
	return r, err
}

// Send sends a message to a user (a.To) or a group (a.Group).
func (c *Conn) Send(ctx context.Context, a SendArgs) (SendResult, error) {
	if a.Cmid == "" {
		a.Cmid = NewCmid()
	}
	f := map[string]any{"text": a.Text, "cmid": a.Cmid}
	if a.To != "" {
		f["to"] = a.To
	}
	if a.Group != "" {
		f["group"] = a.Group
	}
	var r SendResult
	err := c.do(ctx, "send", f, &r)
	return r, err
}

// Sync pulls messages the client has not seen.
func (c *Conn) Sync(ctx context.Context, a SyncArgs) (SyncResult, error) {
	f := map[string]any{}
	if a.Cursor != "" {
		f["cursor"] = a.Cursor
	} else if a.After != nil {
		f["after"] = a.After
	}
	if a.Limit > 0 {
		f["limit"] = a.Limit
	}
	var r SyncResult
	err := c.do(ctx, "sync", f, &r)
	return r, err
}

// History reads a page of a conversation.
func (c *Conn) History(ctx context.Context, a HistoryArgs) (HistoryResult, error) {
	f := map[string]any{"conv": a.Conv}
	if a.Before > 0 {
		f["before"] = a.Before
	}
	if a.After > 0 {
		f["after"] = a.After
	}
	if a.Limit > 0 {
		f["limit"] = a.Limit
	}
	if a.Read != "" {
		f["read"] = a.Read
	}
	var r HistoryResult
	err := c.do(ctx, "history", f, &r)
	return r, err
}

// Ack sends a delivery receipt: everything in conv up to seq has arrived.
func (c *Conn) Ack(ctx context.Context, conv string, seq uint64) error {
	return c.do(ctx, "ack", map[string]any{"conv": conv, "seq": seq}, nil)
}

// ReadCursor moves this user's read cursor in conv to seq (op "read").
func (c *Conn) ReadCursor(ctx context.Context, conv string, seq uint64) error {
	return c.do(ctx, "read", map[string]any{"conv": conv, "seq": seq}, nil)
}

// Typing tells the members of conv that this user is typing.
func (c *Conn) Typing(ctx context.Context, conv string) error {
	return c.do(ctx, "typing", map[string]any{"conv": conv}, nil)
}

// GroupCreate creates a group with the caller and members in it and returns
// its conversation id.
func (c *Conn) GroupCreate(ctx context.Context, group string, members []string) (string, error) {
	f := map[string]any{"group": group}
	if len(members) > 0 {
		f["members"] = members
	}
	var r struct {
		Conv string `json:"conv"`
	}
	err := c.do(ctx, "group_create", f, &r)
	return r.Conv, err
}

// GroupJoin adds the caller to a group.
func (c *Conn) GroupJoin(ctx context.Context, group string) error {
	return c.do(ctx, "group_join", map[string]any{"group": group}, nil)
}

// GroupLeave removes the caller from a group.
func (c *Conn) GroupLeave(ctx context.Context, group string) error {
	return c.do(ctx, "group_leave", map[string]any{"group": group}, nil)
}

// GroupMembers lists the members of a group.
func (c *Conn) GroupMembers(ctx context.Context, group string) ([]string, error) {
	var r struct {
		Members []string `json:"members"`
	}
	err := c.do(ctx, "group_members", map[string]any{"group": group}, &r)
	return r.Members, err
}

// Presence returns the presence of users and subscribes this connection to
// their presence pushes.
func (c *Conn) Presence(ctx context.Context, users []string) (map[string]PresenceState, error) {
	var r struct {
		Presence map[string]PresenceState `json:"presence"`
	}
	err := c.do(ctx, "presence", map[string]any{"users": users}, &r)
	return r.Presence, err
}

// UserInfo returns a user's profile.
func (c *Conn) UserInfo(ctx context.Context, user string) (UserInfo, error) {
	var r UserInfo
	err := c.do(ctx, "user_info", map[string]any{"user": user}, &r)
	return r, err
}

// UserUpdate sets the caller's nickname.
func (c *Conn) UserUpdate(ctx context.Context, nickname string) error {
	return c.do(ctx, "user_update", map[string]any{"nickname": nickname}, nil)
}

// Ping checks that the gateway answers.
func (c *Conn) Ping(ctx context.Context) error {
	return c.do(ctx, "ping", nil, nil)
}

// StatusResult is the reply to status (an extension of the protocol):
// where this connection's requests go and, for a conversation, its shard
// and that shard's leader as the node answering sees it (CP).
type StatusResult struct {
	Mode    string `json:"mode"`
	Gateway string `json:"gateway"`
	Node    string `json:"node"`
	RedisOK bool   `json:"redis_ok"`
	Shards  int    `json:"shards"`
	Conv    string `json:"conv"`
	Shard   *int   `json:"shard"`
	Leader  string `json:"leader"`
	State   string `json:"state"`
	Term    uint64 `json:"term"`
}

// Status asks the gateway where this connection's requests go, and about
// conv when it is not "".
func (c *Conn) Status(ctx context.Context, conv string) (StatusResult, error) {
	f := map[string]any{}
	if conv != "" {
		f["conv"] = conv
	}
	var r StatusResult
	err := c.do(ctx, "status", f, &r)
	return r, err
}
