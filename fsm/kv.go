package fsm

import (
	"bytes"
	"sort"
)

// Tx is the transactional key-value view the state machine reads and
// writes. The node backs it with a bbolt transaction (so that state and the
// applied index commit atomically); tests back it with MemKV. Keys and values
// passed to Put are not retained by the caller afterwards.
type Tx interface {
	// Get returns the value of key in bucket, or nil. The slice is valid
	// until the transaction ends.
	Get(bucket string, key []byte) []byte
	Put(bucket string, key, value []byte) error
	Delete(bucket string, key []byte) error
	// Scan calls fn for each key in [from, to) in key order (descending when
	// reverse); a nil to means "to the end of the bucket". It stops when fn
	// returns false.
	Scan(bucket string, from, to []byte, reverse bool, fn func(k, v []byte) bool) error
}

// MemKV is an in-memory Tx for tests and fuzzing. It is not safe for
// concurrent use.
type MemKV struct {
	buckets map[string]*memBucket
}

type memBucket struct {
	keys []string
	vals map[string][]byte
}

// NewMemKV returns an empty in-memory store.
func NewMemKV() *MemKV { return &MemKV{buckets: map[string]*memBucket{}} }

func (m *MemKV) bucket(name string) *memBucket {
	b := m.buckets[name]
	if b == nil {
		b = &memBucket{vals: map[string][]byte{}}
		m.buckets[name] = b
	}
	return b
}

// Get implements Tx.
func (m *MemKV) Get(bucket string, key []byte) []byte {
	b := m.buckets[bucket]
	if b == nil {
		return nil
	}
	return b.vals[string(key)]
}

// Put implements Tx.
func (m *MemKV) Put(bucket string, key, value []byte) error {
	b := m.bucket(bucket)
	k := string(key)
	if _, ok := b.vals[k]; !ok {
		i := sort.SearchStrings(b.keys, k)
		b.keys = append(b.keys, "")
		copy(b.keys[i+1:], b.keys[i:])
		b.keys[i] = k
	}
	b.vals[k] = append([]byte{}, value...) // never nil: nil means absent
	return nil
}

// Delete implements Tx.
func (m *MemKV) Delete(bucket string, key []byte) error {
	b := m.buckets[bucket]
	if b == nil {
		return nil
	}
	k := string(key)
	if _, ok := b.vals[k]; !ok {
		return nil
	}
	delete(b.vals, k)
	i := sort.SearchStrings(b.keys, k)
	b.keys = append(b.keys[:i], b.keys[i+1:]...)
	return nil
}

// Scan implements Tx.
func (m *MemKV) Scan(bucket string, from, to []byte, reverse bool, fn func(k, v []byte) bool) error {
	b := m.buckets[bucket]
	if b == nil {
		return nil
	}
	lo := sort.SearchStrings(b.keys, string(from))
	hi := len(b.keys)
	if to != nil {
		hi = sort.SearchStrings(b.keys, string(to))
	}
	keys := append([]string(nil), b.keys[lo:max(lo, hi)]...)
	if reverse {
		for i := len(keys) - 1; i >= 0; i-- {
			if !fn([]byte(keys[i]), b.vals[keys[i]]) {
				return nil
			}
		}
		return nil
	}
	for _, k := range keys {
		if !fn([]byte(k), b.vals[k]) {
			return nil
		}
	}
	return nil
}

// prefixEnd returns the smallest key greater than every key with prefix p.
func prefixEnd(p []byte) []byte {
	end := bytes.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}
