package fsm

import (
	"bytes"
	"encoding/binary"
	"sort"
)

// batch is the state of one Apply call: the log index and position that
// give unordered messages their key, and the messages that sort before
// others already in their conversation, placed when the batch settles so
// that a batch of them renumbers each conversation's tail once.
type batch struct {
	index   uint64
	pos     uint32
	pending map[string]*Message // orderKey -> message not yet numbered
	dirty   map[string][]byte   // conv -> smallest pending order
}

// logOrder is the order key of a message that comes from a log: the log
// index and the command's position in its entry, so that later entries
// sort after earlier ones.
// Without a log (index 0) the key extends the conversation's last one.
func (b *batch) logOrder(tx Tx, conv string) []byte {
	if b.index == 0 {
		last := lastOrder(tx, conv)
		if last == nil {
			last = make([]byte, 12)
		}
		return append(last, 1)
	}
	var k [12]byte
	binary.BigEndian.PutUint64(k[:8], b.index)
	binary.BigEndian.PutUint32(k[8:], b.pos)
	return k[:]
}

// message finds a message by its order key, pending ones included.
func (b *batch) message(tx Tx, conv string, order []byte) (*Message, bool) {
	if m := b.pending[string(orderKey(conv, order))]; m != nil {
		return m, true
	}
	return messageByOrder(tx, conv, order)
}

func messageByOrder(tx Tx, conv string, order []byte) (*Message, bool) {
	r, ok := recordByOrder(tx, conv, order)
	if !ok {
		return nil, false
	}
	m, ok := r.Decode()
	if !ok {
		return nil, false
	}
	return &m, true
}

// recordByOrder is messageByOrder without the decoding.
func recordByOrder(tx Tx, conv string, order []byte) (MessageRecord, bool) {
	seq := getU64(tx.Get(bOrders, orderKey(conv, order)))
	if seq == 0 {
		return MessageRecord{}, false
	}
	k := msgKey(conv, seq)
	v := tx.Get(bMsgs, k)
	return MessageRecord{key: k, value: v}, v != nil
}

// lastOrder is the largest order key in conv, or nil.
func lastOrder(tx Tx, conv string) []byte {
	var last []byte
	p := convPrefix(conv)
	_ = tx.Scan(bOrders, p, prefixEnd(p), true, func(k, _ []byte) bool {
		last = append([]byte(nil), k[len(p):]...)
		return false
	})
	return last
}

// remove takes a message out of its conversation (it lost a dedup
// conflict): its indexes go now, the conversation's tail is renumbered
// when the batch settles.
func (m *Machine) remove(tx Tx, b *batch, msg *Message) error {
	ok := orderKey(msg.Conv, msg.Order)
	for _, del := range []struct {
		bucket string
		key    []byte
	}{{bOrders, ok}, {bMsgIDs, []byte(msg.ID)}, {bOrigins, originKey(msg.Conv, msg.Origin, msg.OSeq)}} {
		if err := tx.Delete(del.bucket, del.key); err != nil {
			return err
		}
	}
	delete(b.pending, string(ok))
	if msg.Seq != 0 {
		if err := tx.Delete(bMsgs, msgKey(msg.Conv, msg.Seq)); err != nil {
			return err
		}
	}
	if d := b.dirty[msg.Conv]; d == nil || bytes.Compare(msg.Order, d) < 0 {
		b.dirty[msg.Conv] = msg.Order
	}
	return nil
}

// settle numbers the pending messages: for each conversation it renumbers
// the tail from the first pending message, in order-key order, and fills in
// the seqs of the results.
func (m *Machine) settle(tx Tx, b *batch, out []Result) error {
	if len(b.dirty) == 0 {
		return nil
	}
	convs := make([]string, 0, len(b.dirty))
	for c := range b.dirty {
		convs = append(convs, c)
	}
	sort.Strings(convs)
	first := map[string]uint64{}
	for _, conv := range convs {
		from := b.dirty[conv]
		p := convPrefix(conv)
		// The seq of the message just before the first pending one.
		start := uint64(1)
		_ = tx.Scan(bOrders, p, orderKey(conv, from), true, func(_, v []byte) bool {
			start = getU64(v) + 1
			return false
		})
		// The tail from the first pending message, in order-key order: a
		// pending message, or the record of one already stored (moved as
		// it is: its seq is its key, not inside it).
		type place struct {
			orderKey []byte
			oldSeq   uint64
			record   []byte
			msg      *Message
		}
		var tail []place
		err := tx.Scan(bOrders, orderKey(conv, from), prefixEnd(p), false, func(k, v []byte) bool {
			if m := b.pending[string(k)]; m != nil {
				tail = append(tail, place{orderKey: bytes.Clone(k), msg: m})
				return true
			}
			seq := getU64(v)
			if rec := tx.Get(bMsgs, msgKey(conv, seq)); rec != nil {
				tail = append(tail, place{orderKey: bytes.Clone(k), oldSeq: seq, record: bytes.Clone(rec)})
			}
			return true
		})
		if err != nil {
			return err
		}
		for i, pl := range tail {
			seq := start + uint64(i)
			switch {
			case pl.msg != nil:
				pl.msg.Seq = seq
				err = putMessage(tx, pl.msg)
			case pl.oldSeq != seq:
				err = tx.Put(bMsgs, msgKey(conv, seq), pl.record)
			default:
				continue // already in place
			}
			if err == nil {
				err = tx.Put(bOrders, pl.orderKey, u64(seq))
			}
			if err != nil {
				return err
			}
		}
		var c Conv
		getJSON(tx, bConvs, []byte(conv), &c)
		// A removal shortens the conversation: drop the records past its
		// new end.
		newMax := start + uint64(len(tail)) - 1
		for seq := newMax + 1; seq <= c.MaxSeq; seq++ {
			if err := tx.Delete(bMsgs, msgKey(conv, seq)); err != nil {
				return err
			}
		}
		c.MaxSeq = newMax
		if err := putJSON(tx, bConvs, []byte(conv), c); err != nil {
			return err
		}
		first[conv] = start
	}
	for i := range out {
		r := &out[i]
		if r.Message == nil || r.Err != nil {
			continue
		}
		if start, ok := first[r.Conv]; ok {
			if r.Message.Seq == 0 || !r.Dup {
				r.Seq = r.Message.Seq
			}
			if !r.Dup && b.pending[string(orderKey(r.Conv, r.Message.Order))] == r.Message && r.Message.Seq >= start {
				r.Reordered = start
			}
		}
	}
	return nil
}
