package wire

import (
	"mpim/internal/convid"
	"unicode/utf8"
)

// Validate checks the fields of an already-parsed request for its op: names,
// conversation ids, lengths and the choices between fields. Decode calls it
// after filling defaults, so a request built by hand must carry them too (a
// Limit of 0 or an empty Device is rejected). Fields of other ops are ignored.
func Validate(r *Request) *Error {
	return validator{}.validate(r)
}

// validator holds what the caller already knows about a request.
type validator struct {
	// utf8Checked is set by Decode, which checked the UTF-8 of the whole
	// frame in one pass, so the strings need no second look.
	utf8Checked bool
}

// validate is Validate, skipping the UTF-8 checks Decode already made.
func (v validator) validate(r *Request) *Error {
	if r == nil {
		return Errorf(BadRequest, "no request")
	}
	if r.ID != nil {
		if e := checkID(r.ID); e != nil {
			return e
		}
	}
	switch r.Op {
	case OpRegister:
		return first(
			name("user", r.User),
			v.length("password", r.Password, MinPassword, MaxPassword))
	case OpLogin:
		return first(
			name("user", r.User),
			v.length("password", r.Password, 1, MaxPassword),
			device(r.Device))
	case OpResume:
		return first(
			v.length("token", r.Token, 1, MaxToken),
			device(r.Device))
	case OpUserInfo:
		return name("user", r.User)
	case OpUserUpdate:
		return v.length("nickname", r.Nickname, 0, MaxNickname)
	case OpSend:
		var e *Error
		switch {
		case r.To != "" && r.Group != "":
			e = Errorf(BadRequest, "send takes to or group, not both: a message goes to one conversation")
		case r.To == "" && r.Group == "":
			e = Errorf(BadRequest, "send needs to (a user) or group: name where the message goes")
		case r.To != "":
			e = name("to", r.To)
		default:
			e = name("group", r.Group)
		}
		return first(e,
			v.length("text", r.Text, 1, MaxText),
			v.length("cmid", r.Cmid, 1, MaxCmid))
	case OpSync:
		if r.Cursor != "" && r.After != nil {
			return Errorf(BadRequest, "sync takes cursor or after, not both: pass the cursor of the last sync reply")
		}
		for conv := range r.After {
			if !validConv(conv) {
				return Errorf(BadRequest, "after has a key %s that is not a conversation id: use dm:<a>:<b> with a < b, or g:<group>", clip(conv))
			}
		}
		return first(
			v.length("cursor", r.Cursor, 0, MaxCursor),
			limit(r.Limit, MaxSyncLimit))
	case OpHistory:
		var e *Error
		switch {
		case r.Read != ReadLinearizable && r.Read != ReadLocal:
			e = Errorf(BadRequest, "read is %s: use \"linearizable\" (the default) or \"local\"", clip(r.Read))
		case r.BeforeSeq != 0 && r.AfterSeq >= r.BeforeSeq:
			e = Errorf(BadRequest, "after (%d) must be less than before (%d): no message lies between", r.AfterSeq, r.BeforeSeq)
		}
		return first(conv(r.Conv), e, limit(r.Limit, MaxHistoryLimit))
	case OpAck, OpRead:
		var e *Error
		switch {
		case r.Seq != 0 && r.MsgID != "":
			e = Errorf(BadRequest, "%s takes seq or msg_id, not both", r.Op)
		case r.Seq == 0 && r.MsgID == "":
			e = Errorf(BadRequest, "%s needs seq (at least 1), msg_id, or the message id as the request id", r.Op)
		case r.MsgID != "":
			e = v.length("msg_id", r.MsgID, 1, MaxMsgID)
		}
		return first(conv(r.Conv), e)
	case OpTyping:
		return conv(r.Conv)
	case OpStatus:
		if r.Conv == "" {
			return nil
		}
		return conv(r.Conv)
	case OpGroupCreate:
		return first(name("group", r.Group), nameList("members", r.Members, 0, MaxMembers))
	case OpGroupJoin, OpGroupLeave, OpGroupMembers:
		return name("group", r.Group)
	case OpPresence:
		return nameList("users", r.Users, 1, MaxUsers)
	case OpPing:
		return nil
	}
	return unknownOp(r.Op)
}

// first returns the first non-nil error.
func first(errs ...*Error) *Error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// unknownOp is the error for an op that protocol version 1 does not have.
func unknownOp(op string) *Error {
	return Errorf(BadRequest, "unknown op %s: see the op table of the protocol (e.g. send, sync, history, ping)", clip(op))
}

// name checks a user or group name in field.
func name(field, s string) *Error {
	if s == "" {
		return Errorf(BadRequest, "%s is empty: name a user or group (1..32 of a-z 0-9 _ . -)", field)
	}
	if !convid.ValidName(s) {
		return Errorf(BadRequest, "%s %s is not a valid name: use 1..32 of a-z 0-9 _ . -", field, clip(s))
	}
	return nil
}

// nameList checks a list of min..max user names in field.
func nameList(field string, names []string, min, max int) *Error {
	if len(names) > max {
		return Errorf(TooLarge, "%s has %d names, over the limit of %d: split the request", field, len(names), max)
	}
	if len(names) < min {
		return Errorf(BadRequest, "%s is empty: name at least %d user", field, min)
	}
	for i, s := range names {
		if !convid.ValidName(s) {
			return Errorf(BadRequest, "%s[%d] %s is not a valid name: use 1..32 of a-z 0-9 _ . -", field, i, clip(s))
		}
	}
	return nil
}

// device checks a device name.
func device(s string) *Error {
	if !validDevice(s) {
		return Errorf(BadRequest, "device %s is not a valid device name: use 1..64 of A-Z a-z 0-9 _ . : - or leave it out", clip(s))
	}
	return nil
}

// conv checks a conversation id.
func conv(s string) *Error {
	if s == "" {
		return Errorf(BadRequest, "conv is empty: use dm:<a>:<b> with a < b, or g:<group>")
	}
	if !validConv(s) {
		return Errorf(BadRequest, "conv %s is not a conversation id: use dm:<a>:<b> with a < b, or g:<group>", clip(s))
	}
	return nil
}

// length checks that s is valid UTF-8 of min..max bytes. Lengths count bytes,
// not characters, as the spec says.
func (v validator) length(field, s string, min, max int) *Error {
	switch {
	case len(s) > max:
		return Errorf(TooLarge, "%s is %d bytes, over the limit of %d bytes of UTF-8: shorten it", field, len(s), max)
	case len(s) < min && min == 1:
		return Errorf(BadRequest, "%s is empty: it needs 1..%d bytes", field, max)
	case len(s) < min:
		return Errorf(BadRequest, "%s is %d bytes, under the minimum of %d: lengthen it", field, len(s), min)
	case !v.utf8Checked && !utf8.ValidString(s):
		return Errorf(BadRequest, "%s is not valid UTF-8", field)
	}
	return nil
}

// limit checks a page size against its maximum.
func limit(n, max int) *Error {
	if n < 1 {
		return Errorf(BadRequest, "limit is %d: it must be between 1 and %d, or left out for the default", n, max)
	}
	if n > max {
		return limitError(uint64(n), max)
	}
	return nil
}

// limitError is the too_large error for a page size n over max.
func limitError(n uint64, max int) *Error {
	return Errorf(TooLarge, "limit is %d, over the maximum of %d: page with before/cursor instead", n, max)
}
