package cp

import (
	"bytes"
	"sort"
	"sync/atomic"

	"mpim/fsm"
)

// The unsafe switch ack-before-commit answers proposals as soon as their
// entry is handed to Raft, with the result the state machine would give if
// the entry committed: the batch is applied to a speculative overlay on the
// leader's current state instead of waiting for a quorum. When the leader
// is cut off, those entries never commit and the acknowledged messages are
// lost — the anomaly Raft's commit rule prevents (Raft paper §5.3, §5.4.1),
// shown on purpose.
type speculation struct {
	over    *overlay
	pending atomic.Int64 // entries handed to Raft and not yet finished
}

// results applies cmds to the speculative state and returns what the
// clients are told. The overlay is dropped whenever nothing is pending, so
// that it never outlives the entries it anticipates.
func (sp *speculation) results(s *Shard, cmds []fsm.Command) ([]fsm.Result, error) {
	if sp.pending.Load() == 0 || sp.over == nil {
		sp.over = newOverlay()
	}
	var out []fsm.Result
	err := s.st.View(func(tx fsm.Tx) error {
		sp.over.base = tx
		defer func() { sp.over.base = nil }()
		var err error
		out, err = s.m.Apply(sp.over, 0, cmds)
		return err
	})
	return out, err
}

// overlay is a Tx whose writes stay in memory on top of a base Tx.
type overlay struct {
	base fsm.Tx
	puts map[string]map[string]*[]byte // bucket -> key -> value (nil pointer: deleted)
}

func newOverlay() *overlay { return &overlay{puts: map[string]map[string]*[]byte{}} }

func (o *overlay) Get(bucket string, key []byte) []byte {
	if v, ok := o.puts[bucket][string(key)]; ok {
		if v == nil {
			return nil
		}
		return *v
	}
	return o.base.Get(bucket, key)
}

func (o *overlay) set(bucket string, key []byte, v *[]byte) {
	if o.puts[bucket] == nil {
		o.puts[bucket] = map[string]*[]byte{}
	}
	o.puts[bucket][string(key)] = v
}

func (o *overlay) Put(bucket string, key, value []byte) error {
	v := append([]byte{}, value...)
	o.set(bucket, key, &v)
	return nil
}

func (o *overlay) Delete(bucket string, key []byte) error {
	o.set(bucket, key, nil)
	return nil
}

func (o *overlay) Scan(bucket string, from, to []byte, reverse bool, fn func(k, v []byte) bool) error {
	merged := map[string][]byte{}
	if err := o.base.Scan(bucket, from, to, false, func(k, v []byte) bool {
		merged[string(k)] = append([]byte{}, v...)
		return true
	}); err != nil {
		return err
	}
	for k, v := range o.puts[bucket] {
		kb := []byte(k)
		if bytes.Compare(kb, from) < 0 || (to != nil && bytes.Compare(kb, to) >= 0) {
			continue
		}
		if v == nil {
			delete(merged, k)
		} else {
			merged[k] = *v
		}
	}
	keys := make([]string, 0, len(merged))
	for k := range merged {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if reverse {
		for i, j := 0, len(keys)-1; i < j; i, j = i+1, j-1 {
			keys[i], keys[j] = keys[j], keys[i]
		}
	}
	for _, k := range keys {
		if !fn([]byte(k), merged[k]) {
			return nil
		}
	}
	return nil
}
