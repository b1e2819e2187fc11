package wire

import (
	"encoding/json"
	"unicode/utf8"
)

// Request is a decoded, validated client request. Only the fields of its op
// are set; the others are zero. It does not alias the frame it came from.
type Request struct {
	// ID is the raw JSON of the envelope id (always a JSON string after
	// Decode); replies echo it verbatim.
	ID json.RawMessage
	Op string

	User     string // register, login, user_info
	Password string // register, login
	Device   string // login, resume; DefaultDevice when absent
	Token    string // resume
	Nickname string // user_update; may be empty, which clears it
	To       string // send to a user: exactly one of To and Group is set
	Group    string // send to a group; group_create, group_join, group_leave, group_members
	Text     string // send
	Cmid     string // send: client message id, the idempotency key
	Cursor   string // sync: opaque cursor of an earlier sync reply
	Conv     string // history, ack, read, typing
	Read     string // history: ReadLinearizable (the default) or ReadLocal

	// After is sync's map of conversation id to the last seq the client has;
	// conversations missing from it count as 0. At most one of Cursor and
	// After is set; neither means sync from the start.
	After map[string]uint64
	// Limit is the page size of sync and history, set to DefaultSyncLimit or
	// DefaultHistoryLimit by Decode when the request has none.
	Limit int
	// BeforeSeq and AfterSeq are history's before and after: only messages
	// with AfterSeq < seq < BeforeSeq; 0 means no bound.
	BeforeSeq, AfterSeq uint64

	// Seq and MsgID name the message of ack and read; exactly one is set.
	// The spec says "seq or id", and id is also the envelope's key, so a
	// client names the message by seq, by msg_id (an extension), or, when it
	// sends neither, by the envelope id: Decode then takes the id's string as
	// the message id (and the reply echoes it as usual).
	Seq   uint64
	MsgID string

	Members []string // group_create: initial members besides the creator
	Users   []string // presence: 1..MaxUsers names
}

// field numbers the keys Decode knows; fieldNames are their JSON keys.
type field int

const (
	fID field = iota
	fOp
	fUser
	fPassword
	fDevice
	fToken
	fNickname
	fTo
	fGroup
	fText
	fCmid
	fCursor
	fAfter
	fLimit
	fConv
	fBefore
	fRead
	fSeq
	fMsgID
	fMembers
	fUsers
	nFields
)

var fieldNames = [nFields]string{
	"id", "op", "user", "password", "device", "token", "nickname", "to", "group",
	"text", "cmid", "cursor", "after", "limit", "conv", "before", "read", "seq",
	"msg_id", "members", "users",
}

// lookupField maps a key to its field; keys match exactly, case included.
func lookupField(key []byte) (field, bool) {
	if len(key) < 2 {
		return 0, false
	}
	k := key[1 : len(key)-1]
	for _, c := range k {
		if c == '\\' { // an escaped key: rare, so decode it the slow way
			s, ok := unquote(key)
			if !ok {
				return 0, false
			}
			k = []byte(s)
			break
		}
	}
	switch string(k) {
	case "id":
		return fID, true
	case "op":
		return fOp, true
	case "user":
		return fUser, true
	case "password":
		return fPassword, true
	case "device":
		return fDevice, true
	case "token":
		return fToken, true
	case "nickname":
		return fNickname, true
	case "to":
		return fTo, true
	case "group":
		return fGroup, true
	case "text":
		return fText, true
	case "cmid":
		return fCmid, true
	case "cursor":
		return fCursor, true
	case "after":
		return fAfter, true
	case "limit":
		return fLimit, true
	case "conv":
		return fConv, true
	case "before":
		return fBefore, true
	case "read":
		return fRead, true
	case "seq":
		return fSeq, true
	case "msg_id":
		return fMsgID, true
	case "members":
		return fMembers, true
	case "users":
		return fUsers, true
	}
	return 0, false
}

// frame holds the raw values of the known keys of one frame; nil is absent.
// A key given twice keeps its last value, as in encoding/json and JavaScript.
type frame [nFields][]byte

// scanFrame collects the raw values of known top-level keys and reports
// whether data was a JSON object to its end.
func scanFrame(data []byte, f *frame) bool {
	m := members{data: data}
	for m.next() {
		if k, ok := lookupField(m.key); ok {
			if isNull(m.val) {
				f[k] = nil
			} else {
				f[k] = m.val
			}
		}
	}
	return m.ok()
}

// checkID checks a raw envelope id: a JSON string of at most MaxID bytes
// between its quotes, in valid UTF-8, so a reply can echo it verbatim.
func checkID(raw []byte) *Error {
	if raw == nil {
		return Errorf(BadRequest, "missing id: every request needs a string id, which its reply echoes")
	}
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return Errorf(BadRequest, "id must be a JSON string: send e.g. \"id\": \"1\"")
	}
	if len(raw)-2 > MaxID {
		return Errorf(TooLarge, "id is %d bytes, over the limit of %d: use a shorter id", len(raw)-2, MaxID)
	}
	if !utf8.Valid(raw) || !checkJSON(raw) {
		return Errorf(BadRequest, "id is not a valid UTF-8 JSON string")
	}
	return nil
}

// envelopeID returns a copy of the raw id if a reply may echo it.
func envelopeID(raw []byte) (json.RawMessage, *Error) {
	if e := checkID(raw); e != nil {
		return nil, e
	}
	return json.RawMessage(append([]byte(nil), raw...)), nil
}

// Decode parses one text frame and validates it. On error it returns the
// *Error to send and the raw id to echo, nil when no acceptable id could be
// read. It never panics, whatever the input.
func Decode(data []byte) (*Request, json.RawMessage, *Error) {
	if len(data) > MaxFrame {
		return nil, nil, Errorf(TooLarge, "frame is %d bytes, over the limit of %d: send smaller requests", len(data), MaxFrame)
	}
	var d decoder
	f := &d.f
	if !checkJSON(data) {
		scanFrame(data, f) // best effort: the id may come before the damage
		id, _ := envelopeID(f[fID])
		return nil, id, Errorf(BadRequest, "frame is not valid JSON: send one JSON object per text frame")
	}
	if !scanFrame(data, f) {
		return nil, nil, Errorf(BadRequest, "frame is not a JSON object: send {\"id\": ..., \"op\": ..., ...}")
	}
	id, e := envelopeID(f[fID])
	if e != nil {
		return nil, nil, e
	}
	if !utf8.Valid(data) {
		return nil, id, invalidUTF8(f)
	}
	d.r = &Request{ID: id}
	d.decode()
	if d.err != nil {
		return nil, id, d.err
	}
	if e := (validator{utf8Checked: true}).validate(d.r); e != nil {
		return nil, id, e
	}
	return d.r, id, nil
}

// invalidUTF8 names the known field that holds invalid UTF-8, if one does.
func invalidUTF8(f *frame) *Error {
	for k, v := range f {
		if v != nil && !utf8.Valid(v) {
			return Errorf(BadRequest, "%s is not valid UTF-8: text frames must be UTF-8", fieldNames[k])
		}
	}
	return Errorf(BadRequest, "frame is not valid UTF-8: text frames must be UTF-8")
}

// decoder turns the raw values of one frame into a Request; the first error
// sticks and later calls do nothing.
type decoder struct {
	f   frame // by value: a pointer to it made escape analysis move it to the heap
	r   *Request
	err *Error
}

// fail records e unless an earlier error is already recorded.
func (d *decoder) fail(e *Error) {
	if d.err == nil {
		d.err = e
	}
}

// present reports whether the frame has field k with a non-null value.
func (d *decoder) present(k field) bool { return d.f[k] != nil }

// require records a missing-field error unless k is present.
func (d *decoder) require(k field) {
	if d.err == nil && d.f[k] == nil {
		d.fail(Errorf(BadRequest, "missing field %s: op %s needs it", fieldNames[k], d.r.Op))
	}
}

// str decodes a string field; absent is "".
func (d *decoder) str(k field) string {
	v := d.f[k]
	if d.err != nil || v == nil {
		return ""
	}
	if v[0] != '"' {
		d.fail(Errorf(BadRequest, "%s must be a JSON string", fieldNames[k]))
		return ""
	}
	s, ok := unquote(v)
	if !ok {
		d.fail(Errorf(BadRequest, "%s has an invalid escape or an unpaired UTF-16 surrogate", fieldNames[k]))
	}
	return s
}

// uint decodes a non-negative integer field; absent is 0.
func (d *decoder) uint(k field) uint64 {
	v := d.f[k]
	if d.err != nil || v == nil {
		return 0
	}
	n, res := parseUint(v)
	switch res {
	case uintNotInteger:
		d.fail(Errorf(BadRequest, "%s must be a non-negative integer, written without fraction or exponent", fieldNames[k]))
	case uintOverflow:
		d.fail(Errorf(BadRequest, "%s is out of range: the largest is 18446744073709551615", fieldNames[k]))
	}
	return n
}

// positive decodes an integer field that must be at least 1 when present.
func (d *decoder) positive(k field) uint64 {
	n := d.uint(k)
	if d.err == nil && d.present(k) && n == 0 {
		d.fail(Errorf(BadRequest, "%s must be at least 1: seqs start at 1", fieldNames[k]))
	}
	return n
}

// limit decodes the limit field, or returns def when it is absent.
func (d *decoder) limit(def, max int) int {
	if !d.present(fLimit) {
		return def
	}
	n := d.uint(fLimit)
	if d.err != nil {
		return 0
	}
	if n > uint64(max) {
		d.fail(limitError(n, max))
		return 0
	}
	return int(n)
}

// names decodes an array of strings of at most max elements; an empty array
// is nil.
func (d *decoder) names(k field, max int) []string {
	v := d.f[k]
	if d.err != nil || v == nil {
		return nil
	}
	if v[0] != '[' {
		d.fail(Errorf(BadRequest, "%s must be a JSON array of names", fieldNames[k]))
		return nil
	}
	var out []string
	e := elements{data: v}
	for e.next() {
		if len(out) == max {
			d.fail(Errorf(TooLarge, "%s has more than %d names: split the request", fieldNames[k], max))
			return nil
		}
		s, ok := "", e.val[0] == '"'
		if ok {
			s, ok = unquote(e.val)
		}
		if !ok {
			d.fail(Errorf(BadRequest, "%s[%d] must be a JSON string", fieldNames[k], len(out)))
			return nil
		}
		out = append(out, s)
	}
	return out
}

// seqMap decodes sync's after: an object of conversation id to seq.
func (d *decoder) seqMap(k field) map[string]uint64 {
	v := d.f[k]
	if d.err != nil || v == nil {
		return nil
	}
	if v[0] != '{' {
		d.fail(Errorf(BadRequest, "%s must be a JSON object of conversation id to seq", fieldNames[k]))
		return nil
	}
	out := make(map[string]uint64)
	m := members{data: v}
	for m.next() {
		conv, ok := unquote(m.key)
		if !ok {
			d.fail(Errorf(BadRequest, "%s has a key with an invalid escape", fieldNames[k]))
			return nil
		}
		n, res := parseUint(m.val)
		if res != uintOK {
			d.fail(Errorf(BadRequest, "%s[%s] must be a non-negative integer seq", fieldNames[k], clip(conv)))
			return nil
		}
		out[conv] = n
	}
	return out
}

// decode fills d.r from the fields its op uses and checks their JSON types
// and presence. Value rules (lengths, names) are Validate's.
func (d *decoder) decode() {
	r := d.r
	if !d.present(fOp) {
		d.fail(Errorf(BadRequest, "missing op: every request needs an op such as \"ping\""))
		return
	}
	r.Op = internOp(d.f[fOp])
	if r.Op == "" {
		r.Op = d.str(fOp)
	}
	if d.err != nil {
		return
	}
	switch r.Op {
	case OpRegister, OpLogin:
		d.require(fUser)
		d.require(fPassword)
		r.User = d.str(fUser)
		r.Password = d.str(fPassword)
		if r.Op == OpLogin {
			r.Device = d.device()
		}
	case OpResume:
		d.require(fToken)
		r.Token = d.str(fToken)
		r.Device = d.device()
	case OpUserInfo:
		d.require(fUser)
		r.User = d.str(fUser)
	case OpUserUpdate:
		d.require(fNickname)
		r.Nickname = d.str(fNickname)
	case OpSend:
		if !d.present(fTo) && !d.present(fGroup) {
			d.fail(Errorf(BadRequest, "missing field to or group: send needs a user in to or a group in group"))
		}
		d.require(fText)
		d.require(fCmid)
		r.To = d.str(fTo)
		r.Group = d.str(fGroup)
		r.Text = d.str(fText)
		r.Cmid = d.str(fCmid)
	case OpSync:
		r.Cursor = d.str(fCursor)
		r.After = d.seqMap(fAfter)
		if len(r.After) == 0 {
			r.After = nil
		}
		r.Limit = d.limit(DefaultSyncLimit, MaxSyncLimit)
	case OpHistory:
		d.require(fConv)
		r.Conv = d.str(fConv)
		r.BeforeSeq = d.positive(fBefore)
		r.AfterSeq = d.uint(fAfter)
		r.Limit = d.limit(DefaultHistoryLimit, MaxHistoryLimit)
		r.Read = ReadLinearizable
		if d.present(fRead) {
			r.Read = d.str(fRead)
		}
	case OpAck, OpRead:
		d.require(fConv)
		r.Conv = d.str(fConv)
		switch {
		case d.present(fSeq) && d.present(fMsgID):
			d.fail(Errorf(BadRequest, "%s takes seq or msg_id, not both", r.Op))
		case d.present(fSeq):
			r.Seq = d.positive(fSeq)
		case d.present(fMsgID):
			r.MsgID = d.str(fMsgID)
		default:
			r.MsgID = d.str(fID) // the spec's "seq or id": see Request.MsgID
		}
	case OpTyping:
		d.require(fConv)
		r.Conv = d.str(fConv)
	case OpGroupCreate:
		d.require(fGroup)
		r.Group = d.str(fGroup)
		r.Members = d.names(fMembers, MaxMembers)
	case OpGroupJoin, OpGroupLeave, OpGroupMembers:
		d.require(fGroup)
		r.Group = d.str(fGroup)
	case OpPresence:
		d.require(fUsers)
		r.Users = d.names(fUsers, MaxUsers)
	case OpPing:
	case OpStatus:
		if d.present(fConv) {
			r.Conv = d.str(fConv)
		}
	default:
		d.fail(unknownOp(r.Op))
	}
}

// device decodes the optional device field, defaulting to DefaultDevice.
func (d *decoder) device() string {
	if !d.present(fDevice) {
		return DefaultDevice
	}
	return d.str(fDevice)
}

// ops lists every op, so internOp can return the constant instead of
// allocating a copy of the op in every request.
var ops = [...]string{
	OpRegister, OpLogin, OpResume, OpUserInfo, OpUserUpdate, OpSend, OpSync, OpHistory, OpAck, OpRead,
	OpTyping, OpGroupCreate, OpGroupJoin, OpGroupLeave, OpGroupMembers, OpPresence, OpPing, OpStatus,
}

// internOp returns the known op that the raw JSON string tok spells without
// escapes, or "".
func internOp(tok []byte) string {
	if len(tok) < 2 || tok[0] != '"' {
		return ""
	}
	name := tok[1 : len(tok)-1]
	for _, op := range ops {
		if string(name) == op {
			return op
		}
	}
	return ""
}
