package fsm

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math"
	"sort"
)

// UserByName returns the user called name.
func UserByName(tx Tx, name string) (User, bool) {
	var u User
	ok := getJSON(tx, bUsers, []byte(name), &u)
	return u, ok
}

// UserByUID returns the user with that uid.
func UserByUID(tx Tx, uid uint64) (User, bool) {
	name := tx.Get(bUIDs, u64(uid))
	if name == nil {
		return User{}, false
	}
	return UserByName(tx, string(name))
}

// GroupByName returns the group called name.
func GroupByName(tx Tx, name string) (Group, bool) {
	var g Group
	ok := getJSON(tx, bGroups, []byte(name), &g)
	return g, ok
}

// IsMember reports whether uid is a member of conv.
func IsMember(tx Tx, conv string, uid uint64) bool {
	return tx.Get(bMembers, memberKey(conv, uid)) != nil
}

// Members returns conv's member uids in ascending order.
func Members(tx Tx, conv string) []uint64 {
	var out []uint64
	p := convPrefix(conv)
	_ = tx.Scan(bMembers, p, prefixEnd(p), false, func(k, _ []byte) bool {
		out = append(out, getU64(k[len(p):]))
		return true
	})
	return out
}

// MaxSeq returns the seq of conv's last message (0 when empty or unknown).
func MaxSeq(tx Tx, conv string) uint64 {
	var c Conv
	getJSON(tx, bConvs, []byte(conv), &c)
	return c.MaxSeq
}

// ConvExists reports whether conv has been created.
func ConvExists(tx Tx, conv string) bool { return tx.Get(bConvs, []byte(conv)) != nil }

// UserConvs returns the conversations uid is a member of, in byte order.
func UserConvs(tx Tx, uid uint64) []string {
	var out []string
	p := u64(uid)
	_ = tx.Scan(bUserConvs, p, prefixEnd(p), false, func(k, _ []byte) bool {
		out = append(out, string(k[len(p):]))
		return true
	})
	return out
}

// CountUserConvs counts the conversations uid is a member of on this
// replica, stopping at limit.
func CountUserConvs(tx Tx, uid uint64, limit int) int {
	n := 0
	p := u64(uid)
	_ = tx.Scan(bUserConvs, p, prefixEnd(p), false, func(_, _ []byte) bool {
		n++
		return n < limit
	})
	return n
}

// Messages returns up to limit messages of conv in seq order. With before
// > 0 they are the last ones with seq < before; otherwise the first ones
// with seq > after when after > 0, else the conversation's last ones. more
// reports whether further messages exist in the direction read.
func Messages(tx Tx, conv string, after, before uint64, limit int) (msgs []Message, more bool) {
	if limit <= 0 || after == math.MaxUint64 {
		return nil, false // nothing comes after the largest seq (after+1 would wrap to the start)
	}
	p := convPrefix(conv)
	from, to, reverse := msgKey(conv, after+1), prefixEnd(p), false
	if before > 0 {
		from, to, reverse = msgKey(conv, after+1), msgKey(conv, before), true
	} else if after == 0 {
		from, reverse = msgKey(conv, 1), true
	}
	_ = tx.Scan(bMsgs, from, to, reverse, func(k, v []byte) bool {
		if len(msgs) == limit {
			more = true
			return false
		}
		var m Message
		if decodeMessage(k, v, &m) {
			msgs = append(msgs, m)
		}
		return true
	})
	if reverse {
		for i, j := 0, len(msgs)-1; i < j; i, j = i+1, j-1 {
			msgs[i], msgs[j] = msgs[j], msgs[i]
		}
	}
	return msgs, more
}

// MessageRecord is a message as stored, read now and decoded later: a
// reader that holds the live state's lock (store.Mem.ViewLive) reads the
// bytes under it and decodes them after. It stays valid after the read
// only on a store that never changes a value in place (store.Mem).
type MessageRecord struct{ key, value []byte }

// MessageRecordByID is MessageByID without the decoding (a message
// renumbered in the meantime is read under its new seq).
func MessageRecordByID(tx Tx, id string) (MessageRecord, bool) {
	k := tx.Get(bMsgIDs, []byte(id))
	i := bytes.IndexByte(k, 0)
	if i < 0 {
		return MessageRecord{}, false
	}
	return recordByOrder(tx, string(k[:i]), k[i+1:])
}

// Decode is the message the record holds; the zero record holds none.
func (r MessageRecord) Decode() (Message, bool) {
	var m Message
	return m, decodeMessage(r.key, r.value, &m)
}

// MessageByID returns the message with that id.
func MessageByID(tx Tx, id string) (Message, bool) {
	r, ok := MessageRecordByID(tx, id)
	if !ok {
		return Message{}, false
	}
	return r.Decode()
}

// Delivered returns the delivery cursor of uid's device in conv.
func Delivered(tx Tx, uid uint64, device, conv string) uint64 {
	return getU64(tx.Get(bDelivered, deliveredKey(uid, device, conv)))
}

// ReadCursor returns uid's read cursor in conv.
func ReadCursor(tx Tx, uid uint64, conv string) uint64 {
	return getU64(tx.Get(bReadCur, readKey(uid, conv)))
}

// Digest summarises conv on this replica: its message count and a hash of
// its message ids in seq order. Replicas holding the same messages in the
// same order have equal digests.
func Digest(tx Tx, conv string) (count uint64, digest string) {
	return digestOf(tx, conv, recordID)
}

// DigestBefore is Digest over the messages of conv stamped (Message.Ts)
// before ts, in Unix milliseconds. Replicas that hold the same messages
// written before a moment agree on it while newer writes still arrive:
// the chaos harness times convergence after a heal with it, the workload
// going on.
func DigestBefore(tx Tx, conv string, ts int64) (count uint64, digest string) {
	return digestOf(tx, conv, func(v []byte) ([]byte, bool) {
		var m struct {
			ID string `json:"id"`
			Ts int64  `json:"ts"`
		}
		if json.Unmarshal(v, &m) != nil || m.Ts >= ts {
			return nil, false
		}
		return []byte(m.ID), true
	})
}

// digestOf hashes, in seq order, the ids that id reads from conv's
// message records (a record it refuses is left out).
func digestOf(tx Tx, conv string, id func([]byte) ([]byte, bool)) (count uint64, digest string) {
	h := sha256.New()
	p := convPrefix(conv)
	_ = tx.Scan(bMsgs, p, prefixEnd(p), false, func(_, v []byte) bool {
		if id, ok := id(v); ok {
			count++
			h.Write(id)
			h.Write(sep)
		}
		return true
	})
	return count, hex.EncodeToString(h.Sum(nil)[:16])
}

// recordID is the id of a stored message record without decoding all of
// it (digests of every conversation are polled while replicas converge).
// The record is a JSON Message: its first field, conv, is a string, inside
// which every quote is escaped, so the first `"id":"` is the id's key. An
// id with an escape in it is decoded properly.
func recordID(v []byte) ([]byte, bool) {
	const key = `"id":"`
	if i := bytes.Index(v, []byte(key)); i >= 0 {
		rest := v[i+len(key):]
		if j := bytes.IndexByte(rest, '"'); j >= 0 && bytes.IndexByte(rest[:j], '\\') < 0 {
			return rest[:j], true
		}
	}
	var m struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(v, &m) != nil {
		return nil, false
	}
	return []byte(m.ID), true
}

// Convs returns every conversation id on this replica in byte order.
func Convs(tx Tx) []string {
	var out []string
	_ = tx.Scan(bConvs, nil, nil, false, func(k, _ []byte) bool {
		out = append(out, string(k))
		return true
	})
	return out
}

// MessagesAfter returns up to limit messages of conv with seq > after, in
// seq order, and whether more follow.
func MessagesAfter(tx Tx, conv string, after uint64, limit int) (msgs []Message, more bool) {
	if after == math.MaxUint64 {
		return nil, false
	}
	if limit <= 0 {
		return nil, MaxSeq(tx, conv) > after
	}
	p := convPrefix(conv)
	_ = tx.Scan(bMsgs, msgKey(conv, after+1), prefixEnd(p), false, func(k, v []byte) bool {
		if len(msgs) == limit {
			more = true
			return false
		}
		var m Message
		if decodeMessage(k, v, &m) {
			msgs = append(msgs, m)
		}
		return true
	})
	return msgs, more
}

// MessagesSinceOrigins returns up to limit messages of conv, in order,
// that come after the per-origin positions in after (origin -> the last
// origin sequence the reader has): an exact cursor where positions move
// (AP). more reports whether further messages remain.
//
// The work is bounded by limit, not by the conversation's length: each
// origin's entries are read from its position on (an origin writes in
// oseq order, which is its order-key order), at most limit+1 of each, and
// merged by order key.
func MessagesSinceOrigins(tx Tx, conv string, after map[string]uint64, limit int) (msgs []Message, more bool) {
	if limit <= 0 {
		return nil, false
	}
	var orders [][]byte
	for _, origin := range convOrigins(tx, conv) {
		from := originKey(conv, origin, after[origin]+1)
		if after[origin] == math.MaxUint64 {
			continue
		}
		end := prefixEnd(join([]byte(conv), sep, []byte(origin), sep))
		n := 0
		_ = tx.Scan(bOrigins, from, end, false, func(_, v []byte) bool {
			orders = append(orders, append([]byte(nil), v...))
			n++
			return n <= limit
		})
	}
	sort.Slice(orders, func(i, j int) bool { return bytes.Compare(orders[i], orders[j]) < 0 })
	if len(orders) > limit {
		orders, more = orders[:limit], true
	}
	for _, o := range orders {
		if m, ok := messageByOrder(tx, conv, o); ok {
			msgs = append(msgs, *m)
		}
	}
	return msgs, more
}

// convOrigins lists the origins of conv's messages, reading one key per
// origin (a skip scan over the origins index), not one per message.
func convOrigins(tx Tx, conv string) []string {
	p := convPrefix(conv)
	var out []string
	from := p
	for {
		var origin []byte
		_ = tx.Scan(bOrigins, from, prefixEnd(p), false, func(k, _ []byte) bool {
			rest := k[len(p):]
			if i := bytes.IndexByte(rest, 0); i >= 0 {
				origin = append([]byte(nil), rest[:i]...)
			}
			return false
		})
		if origin == nil {
			return out
		}
		out = append(out, string(origin))
		from = prefixEnd(join([]byte(conv), sep, origin, sep))
	}
}

// OriginPositions is, for the messages of conv up to seq, the last origin
// sequence of each origin: the per-origin cursor equivalent to "I have
// everything up to seq" on this replica.
func OriginPositions(tx Tx, conv string, seq uint64) map[string]uint64 {
	out := map[string]uint64{}
	if seq == 0 {
		return out
	}
	p := convPrefix(conv)
	_ = tx.Scan(bMsgs, p, msgKey(conv, seq+1), false, func(_, v []byte) bool {
		var m Message
		if json.Unmarshal(v, &m) == nil && m.OSeq > out[m.Origin] {
			out[m.Origin] = m.OSeq
		}
		return true
	})
	return out
}
