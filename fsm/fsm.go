// Package fsm is the deterministic chat state machine that both consistency
// modes apply: users, groups, conversations, messages with a dense
// per-conversation seq, (sender, conversation, cmid) deduplication and
// delivery and read cursors.
//
// Like etcd-io/raft's core, it does no IO of its own: Apply is a pure
// function of the state held in a Tx and the commands given, with no clocks,
// no randomness and no dependence on the consistency mode. The applied log
// index is written in the same transaction as the state it produced (etcd's
// "consistent index"), so that replaying a log after a restart can never
// apply a command twice.
package fsm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mpim/internal/convid"
)

// DefaultDedupWindow is how many of a conversation's most recent messages
// remember their (sender, cmid): a retry of a send is recognised as long as
// fewer than this many messages were sent to its conversation after it.
const DefaultDedupWindow = 4096

// Config holds the machine's parameters; every replica must use the same.
type Config struct {
	// DedupWindow bounds the (sender, conv, cmid) dedup table per
	// conversation, in messages.
	DedupWindow uint64
}

// DefaultConfig returns the configuration the lab uses.
func DefaultConfig() Config { return Config{DedupWindow: DefaultDedupWindow} }

// Validate reports a configuration no machine can run with.
func (c Config) Validate() error {
	if c.DedupWindow < 1 {
		return fmt.Errorf("fsm: dedup window must be at least 1, got %d", c.DedupWindow)
	}
	return nil
}

// Machine applies commands. It holds no state of its own beyond its
// configuration; all state is in the Tx.
type Machine struct {
	cfg Config
}

// New returns a machine, or an error for an invalid configuration.
func New(cfg Config) (*Machine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Machine{cfg: cfg}, nil
}

// User is a registered account.
type User struct {
	UID      uint64 `json:"uid"`
	Name     string `json:"name"`
	PwHash   []byte `json:"pw_hash"`
	Nickname string `json:"nickname"`
	Created  int64  `json:"created"`
	// NickStamp is the stamp of the update that set Nickname (see
	// UserUpdate.Stamp).
	NickStamp []byte `json:"nick_stamp,omitempty"`
}

// Group is a named group; its conversation is g:<Name>.
type Group struct {
	Name    string `json:"name"`
	Creator uint64 `json:"creator"`
	Created int64  `json:"created"`
}

// Conv is a conversation's header.
type Conv struct {
	MaxSeq uint64 `json:"max_seq"`
}

// Message is one stored chat message.
type Message struct {
	Conv    string `json:"conv"`
	Seq     uint64 `json:"seq,omitempty"` // stored as the record's key, not inside it
	ID      string `json:"id"`
	From    string `json:"from"`
	FromUID uint64 `json:"from_uid"`
	Text    string `json:"text"`
	Cmid    string `json:"cmid"`
	Ts      int64  `json:"ts"`
	Origin  string `json:"origin"`
	Order   []byte `json:"order,omitempty"`
	OSeq    uint64 `json:"oseq,omitempty"`
}

// Apply applies the commands of the log entry at index in tx and records
// index as applied. It returns ErrApplied, changing nothing, when index is
// not above the applied index (a replay); an index of 0 is not recorded
// (for callers without a log). Other errors are storage failures: the
// caller must abort the transaction.
func (m *Machine) Apply(tx Tx, index uint64, cmds []Command) ([]Result, error) {
	if index != 0 {
		if index <= Applied(tx) {
			return nil, ErrApplied
		}
		if err := tx.Put(bMeta, keyApplied, u64(index)); err != nil {
			return nil, err
		}
	}
	b := &batch{index: index, pending: map[string]*Message{}, dirty: map[string][]byte{}}
	out := make([]Result, len(cmds))
	for i := range cmds {
		b.pos = uint32(i)
		r, err := m.apply(tx, b, &cmds[i])
		if err != nil {
			return nil, err
		}
		out[i] = r
	}
	if err := m.settle(tx, b, out); err != nil {
		return nil, err
	}
	return out, nil
}

// Applied returns the last log index applied in tx's state.
func Applied(tx Tx) uint64 { return getU64(tx.Get(bMeta, keyApplied)) }

func (m *Machine) apply(tx Tx, b *batch, c *Command) (Result, error) {
	switch {
	case c.Register != nil:
		return m.register(tx, c.Register)
	case c.UserUpdate != nil:
		return m.userUpdate(tx, c.UserUpdate)
	case c.GroupCreate != nil:
		return m.groupCreate(tx, c.GroupCreate)
	case c.GroupJoin != nil:
		return m.groupJoin(tx, c.GroupJoin)
	case c.GroupLeave != nil:
		return m.groupLeave(tx, c.GroupLeave)
	case c.Send != nil:
		return m.send(tx, b, c.Send)
	case c.Ack != nil:
		return m.cursor(tx, c.Ack, true)
	case c.Read != nil:
		return m.cursor(tx, c.Read, false)
	}
	return Result{Err: ErrInvalid}, nil
}

func putJSON(tx Tx, bucket string, key []byte, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return tx.Put(bucket, key, b)
}

// putMessage stores msg under its conversation and seq. The seq is the
// record's key and is not written inside it, so that renumbering a
// conversation's tail (settle) moves records without decoding them.
func putMessage(tx Tx, msg *Message) error {
	rec := *msg
	rec.Seq = 0
	return putJSON(tx, bMsgs, msgKey(msg.Conv, msg.Seq), &rec)
}

// getMessage reads the message at seq in conv.
func getMessage(tx Tx, conv string, seq uint64) (Message, bool) {
	k := msgKey(conv, seq)
	var m Message
	return m, decodeMessage(k, tx.Get(bMsgs, k), &m)
}

// decodeMessage decodes the record v stored at key k (conv 0x00 seq).
func decodeMessage(k, v []byte, m *Message) bool {
	if v == nil || len(k) < 8 || json.Unmarshal(v, m) != nil {
		return false
	}
	m.Seq = getU64(k[len(k)-8:])
	return true
}

func getJSON(tx Tx, bucket string, key []byte, v any) bool {
	b := tx.Get(bucket, key)
	if b == nil {
		return false
	}
	return json.Unmarshal(b, v) == nil
}

func (m *Machine) register(tx Tx, r *Register) (Result, error) {
	if r.Name == "" || len(r.PwHash) == 0 {
		return Result{Err: ErrInvalid}, nil
	}
	var existing User
	if getJSON(tx, bUsers, []byte(r.Name), &existing) {
		switch {
		case r.UID != 0 && existing.UID == r.UID:
			return Result{UID: r.UID}, nil // the same registration again
		case r.UID != 0 && tx.Get(bUIDs, u64(r.UID)) == nil:
			return m.resolveRegister(tx, r, existing)
		}
		return Result{Err: ErrNameTaken}, nil
	}
	uid := r.UID
	next := max(getU64(tx.Get(bMeta, keyNextUID)), 1)
	if uid == 0 {
		uid = next
	} else if tx.Get(bUIDs, u64(uid)) != nil {
		return Result{Err: ErrUIDTaken}, nil
	}
	// The counter only grows, so a uid is never handed out twice.
	if err := tx.Put(bMeta, keyNextUID, u64(max(next, uid+1))); err != nil {
		return Result{}, err
	}
	if err := m.storeUser(tx, User{UID: uid, Name: r.Name, PwHash: r.PwHash, Created: r.Created}); err != nil {
		return Result{}, err
	}
	return Result{UID: uid}, nil
}

// storeUser writes a user and its uid index, advancing the uid counter.
func (m *Machine) storeUser(tx Tx, u User) error {
	next := max(getU64(tx.Get(bMeta, keyNextUID)), 1)
	if err := tx.Put(bMeta, keyNextUID, u64(max(next, u.UID+1))); err != nil {
		return err
	}
	if err := putJSON(tx, bUsers, []byte(u.Name), u); err != nil {
		return err
	}
	return tx.Put(bUIDs, u64(u.UID), []byte(u.Name))
}

func (m *Machine) userUpdate(tx Tx, r *UserUpdate) (Result, error) {
	name := tx.Get(bUIDs, u64(r.UID))
	if name == nil {
		return Result{Err: ErrNoSuchUser}, nil
	}
	var u User
	if !getJSON(tx, bUsers, name, &u) {
		return Result{Err: ErrNoSuchUser}, nil
	}
	if !newer(r.Stamp, u.NickStamp) {
		return Result{UID: u.UID}, nil // an older concurrent update: the later one stands
	}
	u.Nickname, u.NickStamp = r.Nickname, r.Stamp
	return Result{UID: u.UID}, putJSON(tx, bUsers, name, u)
}

func (m *Machine) addMember(tx Tx, conv string, uid uint64) error {
	if err := tx.Put(bMembers, memberKey(conv, uid), present); err != nil {
		return err
	}
	return tx.Put(bUserConvs, userConvKey(uid, conv), present)
}

func (m *Machine) groupCreate(tx Tx, r *GroupCreate) (Result, error) {
	if r.Group == "" || r.Creator == 0 {
		return Result{Err: ErrInvalid}, nil
	}
	var existing Group
	if getJSON(tx, bGroups, []byte(r.Group), &existing) {
		if r.Merge {
			return m.mergeGroup(tx, r, existing)
		}
		return Result{Err: ErrGroupExists}, nil
	}
	conv := convid.OfGroup(r.Group)
	g := Group{Name: r.Group, Creator: r.Creator, Created: r.Created}
	if err := putJSON(tx, bGroups, []byte(r.Group), g); err != nil {
		return Result{}, err
	}
	if err := putJSON(tx, bConvs, []byte(conv), Conv{}); err != nil {
		return Result{}, err
	}
	for _, uid := range append([]uint64{r.Creator}, r.Members...) {
		if err := m.addMember(tx, conv, uid); err != nil {
			return Result{}, err
		}
	}
	return Result{Conv: conv, Members: Members(tx, conv)}, nil
}

func (m *Machine) groupJoin(tx Tx, r *GroupMember) (Result, error) {
	if tx.Get(bGroups, []byte(r.Group)) == nil {
		return Result{Err: ErrNoSuchGroup}, nil
	}
	conv := convid.OfGroup(r.Group)
	if apply, err := stampMember(tx, conv, r); !apply || err != nil {
		return Result{Conv: conv, Members: Members(tx, conv)}, err
	}
	if err := m.addMember(tx, conv, r.UID); err != nil {
		return Result{}, err
	}
	return Result{Conv: conv, Members: Members(tx, conv)}, nil
}

// newer reports whether a change stamped stamp overrides one stamped last:
// an unstamped change (log order) always does.
func newer(stamp, last []byte) bool {
	return len(stamp) == 0 || bytes.Compare(stamp, last) > 0
}

// stampMember decides a stamped join or leave: it applies only if newer
// than the last one for that member, and then records its stamp.
func stampMember(tx Tx, conv string, r *GroupMember) (bool, error) {
	if len(r.Stamp) == 0 {
		return true, nil
	}
	key := memberKey(conv, r.UID)
	if !newer(r.Stamp, tx.Get(bMemberAt, key)) {
		return false, nil
	}
	return true, tx.Put(bMemberAt, key, r.Stamp)
}

func (m *Machine) groupLeave(tx Tx, r *GroupMember) (Result, error) {
	if tx.Get(bGroups, []byte(r.Group)) == nil {
		return Result{Err: ErrNoSuchGroup}, nil
	}
	conv := convid.OfGroup(r.Group)
	if len(r.Stamp) == 0 && !IsMember(tx, conv, r.UID) {
		return Result{Err: ErrNotMember}, nil
	}
	// A stamped leave may arrive before the join it overrides (they were
	// concurrent): it still records its stamp, so that join loses.
	if apply, err := stampMember(tx, conv, r); !apply || err != nil || !IsMember(tx, conv, r.UID) {
		return Result{Conv: conv, Members: Members(tx, conv)}, err
	}
	if err := tx.Delete(bMembers, memberKey(conv, r.UID)); err != nil {
		return Result{}, err
	}
	if err := tx.Delete(bUserConvs, userConvKey(r.UID, conv)); err != nil {
		return Result{}, err
	}
	return Result{Conv: conv, Members: Members(tx, conv)}, nil
}

// Precheck reports the domain error applying c to the state in tx would
// give, for the commands whose refusal depends on state another replica
// may hold differently (a send into a group this replica does not know
// yet, by a user who is not a member here). A mode that logs a command
// before applying it (AP) refuses those first, so that no replica applies
// what its origin refused. It reads only.
func Precheck(tx Tx, c Command) error {
	switch {
	case c.Send != nil:
		s := c.Send
		exists := tx.Get(bConvs, []byte(s.Conv)) != nil
		switch {
		case convid.IsGroup(s.Conv) && !exists:
			return ErrNoSuchGroup
		case convid.IsDMKey(s.Conv) && !exists:
			return nil
		case !IsMember(tx, s.Conv, s.FromUID):
			return ErrNotMember
		}
	case c.GroupJoin != nil:
		if tx.Get(bGroups, []byte(c.GroupJoin.Group)) == nil {
			return ErrNoSuchGroup
		}
	case c.GroupLeave != nil:
		if tx.Get(bGroups, []byte(c.GroupLeave.Group)) == nil {
			return ErrNoSuchGroup
		}
		if !IsMember(tx, convid.OfGroup(c.GroupLeave.Group), c.GroupLeave.UID) {
			return ErrNotMember
		}
	}
	return nil
}

func (m *Machine) send(tx Tx, b *batch, s *Send) (Result, error) {
	if s.Conv == "" || s.FromUID == 0 || s.ID == "" || s.Cmid == "" {
		return Result{Err: ErrInvalid}, nil
	}
	var conv Conv
	exists := getJSON(tx, bConvs, []byte(s.Conv), &conv)
	switch {
	case convid.IsGroup(s.Conv):
		if !exists {
			return Result{Err: ErrNoSuchGroup}, nil
		}
		if !IsMember(tx, s.Conv, s.FromUID) {
			return Result{Err: ErrNotMember}, nil
		}
	case convid.IsDMKey(s.Conv):
		if !exists {
			if s.To == 0 || s.Conv != convid.DMKey(s.FromUID, s.To) {
				return Result{Err: ErrInvalid}, nil
			}
			for _, uid := range []uint64{s.FromUID, s.To} {
				if err := m.addMember(tx, s.Conv, uid); err != nil {
					return Result{}, err
				}
			}
		} else if !IsMember(tx, s.Conv, s.FromUID) {
			return Result{Err: ErrNotMember}, nil
		}
	default:
		return Result{Err: ErrInvalid}, nil
	}
	if k := tx.Get(bMsgIDs, []byte(s.ID)); k != nil {
		// The same message again (a replica receiving it twice).
		if prev, ok := b.message(tx, s.Conv, k[len(s.Conv)+1:]); ok {
			return Result{Conv: s.Conv, Message: prev, Dup: true, Seq: prev.Seq, ID: prev.ID, Members: Members(tx, s.Conv)}, nil
		}
	}
	dk := dedupKey(s.FromUID, s.Conv, s.Cmid)
	if order := tx.Get(bDedup, dk); order != nil {
		if prev, ok := b.message(tx, s.Conv, order); ok {
			// Two messages for one (sender, conv, cmid), accepted by two
			// nodes that could not see each other (a retry through another
			// node): the one with the smaller order key stays, on every
			// replica, whichever arrived first.
			if len(s.Order) == 0 || bytes.Compare(prev.Order, s.Order) <= 0 {
				return Result{Conv: s.Conv, Message: prev, Dup: true, Seq: prev.Seq, ID: prev.ID, Members: Members(tx, s.Conv)}, nil
			}
			if err := m.remove(tx, b, prev); err != nil {
				return Result{}, err
			}
		}
	}
	order := s.Order
	if len(order) == 0 {
		order = b.logOrder(tx, s.Conv)
	}
	msg := &Message{Conv: s.Conv, ID: s.ID, From: s.From, FromUID: s.FromUID,
		Text: s.Text, Cmid: s.Cmid, Ts: s.Ts, Origin: s.Origin, Order: order, OSeq: s.OSeq}
	if err := tx.Put(bMsgIDs, []byte(msg.ID), orderKey(s.Conv, order)); err != nil {
		return Result{}, err
	}
	if err := tx.Put(bDedup, dk, order); err != nil {
		return Result{}, err
	}
	if s.OSeq != 0 {
		if err := tx.Put(bOrigins, originKey(s.Conv, s.Origin, s.OSeq), order); err != nil {
			return Result{}, err
		}
	}
	res := Result{Conv: s.Conv, Message: msg, ID: msg.ID, Members: Members(tx, s.Conv)}
	if last := lastOrder(tx, s.Conv); last != nil && bytes.Compare(order, last) <= 0 || b.dirty[s.Conv] != nil {
		// It sorts before messages already there: place it when the batch
		// settles, renumbering the conversation's tail once.
		if err := tx.Put(bOrders, orderKey(s.Conv, order), u64(0)); err != nil {
			return Result{}, err
		}
		b.pending[string(orderKey(s.Conv, order))] = msg
		if d := b.dirty[s.Conv]; d == nil || bytes.Compare(order, d) < 0 {
			b.dirty[s.Conv] = order
		}
		return res, nil
	}
	conv.MaxSeq++
	msg.Seq = conv.MaxSeq
	res.Seq = msg.Seq
	if err := putJSON(tx, bConvs, []byte(s.Conv), conv); err != nil {
		return Result{}, err
	}
	if err := putMessage(tx, msg); err != nil {
		return Result{}, err
	}
	if err := tx.Put(bOrders, orderKey(s.Conv, order), u64(msg.Seq)); err != nil {
		return Result{}, err
	}
	if err := m.forgetDedup(tx, s.Conv, msg.Seq); err != nil {
		return Result{}, err
	}
	return res, nil
}

// forgetDedup drops the dedup entry of the message that just left the
// window, keeping the table at DedupWindow entries per conversation.
func (m *Machine) forgetDedup(tx Tx, conv string, seq uint64) error {
	if seq <= m.cfg.DedupWindow {
		return nil
	}
	old, ok := getMessage(tx, conv, seq-m.cfg.DedupWindow)
	if !ok {
		return nil
	}
	return tx.Delete(bDedup, dedupKey(old.FromUID, conv, old.Cmid))
}

func (m *Machine) cursor(tx Tx, c *Cursor, delivered bool) (Result, error) {
	if !IsMember(tx, c.Conv, c.UID) {
		return Result{Err: ErrNotMember}, nil
	}
	var msg Message
	switch {
	case c.Seq != 0:
		var ok bool
		if msg, ok = getMessage(tx, c.Conv, c.Seq); !ok {
			return Result{Err: ErrNoSuchMessage}, nil
		}
	case c.ID != "":
		m, ok := MessageByID(tx, c.ID)
		if !ok || m.Conv != c.Conv {
			return Result{Err: ErrNoSuchMessage}, nil
		}
		msg = m
	default:
		return Result{Err: ErrInvalid}, nil
	}
	bucket, key := bReadCur, readKey(c.UID, c.Conv)
	if delivered {
		bucket, key = bDelivered, deliveredKey(c.UID, c.Device, c.Conv)
	}
	// Cursors only move forward: a late or repeated receipt changes nothing.
	moved := getU64(tx.Get(bucket, key)) < msg.Seq
	if moved {
		if err := tx.Put(bucket, key, u64(msg.Seq)); err != nil {
			return Result{}, err
		}
	}
	return Result{Conv: c.Conv, Seq: msg.Seq, ID: msg.ID, Members: Members(tx, c.Conv), Dup: !moved}, nil
}
