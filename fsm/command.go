package fsm

import "errors"

// Command is one change to chat state. Exactly one field is set. Every
// value a command needs that is not a pure function of state — time, ids,
// password hashes — comes in with it, so that every replica applying the
// same commands reaches the same state.
type Command struct {
	Register    *Register    `json:"register,omitempty"`
	UserUpdate  *UserUpdate  `json:"user_update,omitempty"`
	GroupCreate *GroupCreate `json:"group_create,omitempty"`
	GroupJoin   *GroupMember `json:"group_join,omitempty"`
	GroupLeave  *GroupMember `json:"group_leave,omitempty"`
	Send        *Send        `json:"send,omitempty"`
	Ack         *Cursor      `json:"ack,omitempty"`
	Read        *Cursor      `json:"read,omitempty"`
}

// Register creates a user. UID 0 lets the machine assign the next one; a
// mode that assigns globally unique uids itself passes them in.
type Register struct {
	Name    string `json:"name"`
	PwHash  []byte `json:"pw_hash"`
	UID     uint64 `json:"uid,omitempty"`
	Created int64  `json:"created"`
}

// UserUpdate changes a user's profile.
type UserUpdate struct {
	UID      uint64 `json:"uid"`
	Nickname string `json:"nickname"`
	// Stamp orders concurrent updates (last writer wins); see GroupMember.
	Stamp []byte `json:"stamp,omitempty"`
}

// GroupCreate creates a group whose conversation is g:<Group>; the creator
// and Members become its members.
type GroupCreate struct {
	Group   string   `json:"group"`
	Creator uint64   `json:"creator"`
	Members []uint64 `json:"members,omitempty"`
	Created int64    `json:"created"`
	// Merge: a group of that name that exists is merged with this one
	// (see mergeGroup) instead of refused — for creations no single log
	// ordered.
	Merge bool `json:"merge,omitempty"`
}

// GroupMember adds or removes one member of a group.
type GroupMember struct {
	Group string `json:"group"`
	UID   uint64 `json:"uid"`
	// Stamp, when set, makes membership a last-writer-wins register per
	// (group, user): a join or leave takes effect only if its stamp sorts
	// after the last one applied (bytewise), so replicas that apply
	// concurrent joins and leaves in different orders end alike. Empty
	// means log order (CP): it always applies. AP passes its order key
	// (hybrid logical clock, origin, entry).
	Stamp []byte `json:"stamp,omitempty"`
}

// Send appends a message to a conversation. For a DM, To is the other
// user's uid (the node resolved the name); the conversation is created by
// its first message.
type Send struct {
	Conv    string `json:"conv"`
	FromUID uint64 `json:"from_uid"`
	From    string `json:"from"`
	To      uint64 `json:"to,omitempty"`
	Text    string `json:"text"`
	Cmid    string `json:"cmid"`
	ID      string `json:"id"`
	Ts      int64  `json:"ts"`
	Origin  string `json:"origin"`
	// Order is the message's place in its conversation: messages are
	// ordered by it, bytewise, and a message's seq is its rank. Empty means
	// "after everything applied before", which is what a log gives (the
	// machine then uses the log index). A mode without a single log passes
	// a key of its own (e.g. hybrid logical clock, origin, id), so that
	// replicas holding the same messages agree on their order whatever
	// order they applied them in.
	Order []byte `json:"order,omitempty"`
	// OSeq numbers the messages of one origin, densely from 1 (0: none);
	// exact per-origin sync cursors use it.
	OSeq uint64 `json:"oseq,omitempty"`
}

// Cursor moves a delivery (per device) or read (per user) cursor forward to
// the message named by Seq, or by ID when Seq is 0.
type Cursor struct {
	UID    uint64 `json:"uid"`
	Device string `json:"device,omitempty"`
	Conv   string `json:"conv"`
	Seq    uint64 `json:"seq,omitempty"`
	ID     string `json:"id,omitempty"`
}

// Result is what applying one command produced. Err is a domain error (one
// of this package's sentinels); storage failures are returned by Apply.
type Result struct {
	Err     error
	UID     uint64
	Conv    string
	Message *Message
	// Dup says the command changed nothing: a message seen before, or a
	// cursor that was already there or past it.
	Dup bool
	Seq uint64
	ID  string
	// Members are the conversation's member uids after the command, for
	// fan-out.
	Members []uint64
	// Renamed reports an account a registration conflict moved.
	Renamed *Rename
	// Reordered, when not 0, is the first seq whose message changed: the
	// command's message sorted before messages already there, which moved
	// one place on (clients that were shown them need a resync).
	Reordered uint64
}

// Errors a command can be refused with. They are deterministic: every
// replica refuses the same command the same way.
var (
	// ErrNameTaken: a user with that name exists.
	ErrNameTaken = errors.New("fsm: name taken")
	// ErrUIDTaken: a register command carried a uid already in use.
	ErrUIDTaken = errors.New("fsm: uid taken")
	// ErrNoSuchUser: no user with that uid or name.
	ErrNoSuchUser = errors.New("fsm: no such user")
	// ErrNoSuchGroup: no group with that name.
	ErrNoSuchGroup = errors.New("fsm: no such group")
	// ErrGroupExists: a group with that name exists.
	ErrGroupExists = errors.New("fsm: group exists")
	// ErrNotMember: the user is not a member of the conversation.
	ErrNotMember = errors.New("fsm: not a member")
	// ErrNoSuchMessage: a cursor names a message the conversation lacks.
	ErrNoSuchMessage = errors.New("fsm: no such message")
	// ErrInvalid: the command is malformed (a bug in the caller).
	ErrInvalid = errors.New("fsm: invalid command")
	// ErrApplied: the log index was applied before; nothing was changed.
	ErrApplied = errors.New("fsm: index already applied")
)

func (c *Command) kind() string {
	switch {
	case c.Register != nil:
		return "register"
	case c.UserUpdate != nil:
		return "user_update"
	case c.GroupCreate != nil:
		return "group_create"
	case c.GroupJoin != nil:
		return "group_join"
	case c.GroupLeave != nil:
		return "group_leave"
	case c.Send != nil:
		return "send"
	case c.Ack != nil:
		return "ack"
	case c.Read != nil:
		return "read"
	}
	return ""
}
