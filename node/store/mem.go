package store

import (
	"bytes"
	"errors"
	"io"
	"sync"

	"github.com/google/btree"

	"mpim/fsm"
)

// Mem keeps a shard's state in memory: one copy-on-write B-tree per
// bucket. It is the CP replicas' state, where the Raft log (fsynced) and
// its snapshots are the durable copy, as in etcd and Consul: a restarted
// replica restores the last snapshot and re-applies the log after it, so
// no write needs to touch a file. (AP keeps Store: there the state file
// is the durable copy.)
//
// Writers are serialized; a write transaction is applied in place and
// undone on error. View reads a lazily cloned, immutable copy of the trees
// as of the last committed write (bbolt's isolation: a reader sees the
// state as of its start), shared by every view until the next write. A
// reader that needs a new copy waits for the write in progress; a reader
// never holds a writer up.
type Mem struct {
	// mu guards the live trees and snap: a writer holds it for its whole
	// transaction (which serializes writers), a reader while it takes a
	// copy.
	mu   sync.Mutex
	live map[string]*btree.BTreeG[item]
	// snap is an immutable copy of live as of the last commit, or nil when
	// a write happened since the last reader took one.
	snap map[string]*btree.BTreeG[item]
}

type item struct {
	k string
	v []byte
}

func less(a, b item) bool { return a.k < b.k }

// degree 32 is google/btree's usual choice for in-memory trees: nodes of
// up to 63 items, few levels, cheap copies on write.
const degree = 32

// NewMem returns an empty state.
func NewMem() *Mem { return &Mem{live: emptyTrees()} }

func emptyTrees() map[string]*btree.BTreeG[item] {
	fl := btree.NewFreeListG[item](btree.DefaultFreeListSize)
	t := make(map[string]*btree.BTreeG[item], len(fsm.Buckets))
	for _, b := range fsm.Buckets {
		t[b] = btree.NewWithFreeListG(degree, less, fl)
	}
	return t
}

// View runs fn on the state as of the last committed write. fn may run
// while writers go on; the values it sees never change under it.
func (m *Mem) View(fn func(fsm.Tx) error) error {
	return fn(memTx{trees: m.readCopy()})
}

func (m *Mem) readCopy() map[string]*btree.BTreeG[item] {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.snap == nil {
		m.snap = make(map[string]*btree.BTreeG[item], len(m.live))
		for b, t := range m.live {
			m.snap[b] = t.Clone()
		}
	}
	return m.snap
}

// ViewLive runs fn on the live state, without taking a copy, holding the
// state meanwhile. It is for the one goroutine that writes (the AP
// engine's checks between its writes): a copy would make its next write
// copy every node it touches, and that goroutine's reads need no
// isolation from writes it does not make.
func (m *Mem) ViewLive(fn func(fsm.Tx) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return fn(memTx{trees: m.live})
}

// Update runs fn in a write transaction: its writes are visible to views
// once it returns nil, and undone when it returns an error.
func (m *Mem) Update(fn func(fsm.Tx) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.snap = nil
	tx := &memWriteTx{memTx: memTx{trees: m.live}}
	if err := fn(tx); err != nil {
		tx.rollback()
		return err
	}
	return nil
}

// MemSnapshot is a pinned copy of the state being streamed.
type MemSnapshot struct {
	trees map[string]*btree.BTreeG[item]
}

// BeginSnapshot pins the current state (O(1): the trees are shared and
// copied on write) for a snapshot stream.
func (m *Mem) BeginSnapshot() *MemSnapshot { return &MemSnapshot{trees: m.readCopy()} }

// Stream writes the pinned state as an fsm snapshot.
func (s *MemSnapshot) Stream(w io.Writer) error { return fsm.Snapshot(memTx{trees: s.trees}, w) }

// Restore replaces the whole state with a snapshot stream, atomically:
// on error the state is unchanged.
func (m *Mem) Restore(r io.Reader) error {
	fresh := emptyTrees()
	if err := fsm.Restore(&memWriteTx{memTx: memTx{trees: fresh}, noUndo: true}, r); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.live, m.snap = fresh, nil
	return nil
}

// memTx reads a set of trees. Values are never modified in place, so a
// slice Get returns stays valid after the transaction.
type memTx struct {
	trees map[string]*btree.BTreeG[item]
}

func (t memTx) Get(bucket string, key []byte) []byte {
	it, ok := t.trees[bucket].Get(item{k: string(key)})
	if !ok {
		return nil
	}
	return it.v
}

func (t memTx) Put(string, []byte, []byte) error { return errReadOnly }
func (t memTx) Delete(string, []byte) error      { return errReadOnly }

func (t memTx) Scan(bucket string, from, to []byte, reverse bool, fn func(k, v []byte) bool) error {
	tree := t.trees[bucket]
	lo := string(from)
	visit := func(it item) bool { return fn([]byte(it.k), it.v) }
	switch {
	case !reverse && to == nil:
		tree.AscendGreaterOrEqual(item{k: lo}, visit)
	case !reverse:
		if hi := string(to); lo < hi {
			tree.AscendRange(item{k: lo}, item{k: hi}, visit)
		}
	default:
		below := func(it item) bool {
			if it.k < lo {
				return false
			}
			return visit(it)
		}
		if to == nil {
			tree.Descend(below)
			return nil
		}
		hi := string(to)
		tree.DescendLessOrEqual(item{k: hi}, func(it item) bool {
			if it.k == hi {
				return true // [from, to): to itself is excluded
			}
			return below(it)
		})
	}
	return nil
}

// memWriteTx writes the live trees and remembers how to undo each write.
type memWriteTx struct {
	memTx
	undo   []undoRec
	noUndo bool
}

type undoRec struct {
	bucket string
	prev   item
	had    bool
}

func (t *memWriteTx) Put(bucket string, key, value []byte) error {
	v := bytes.Clone(value)
	if v == nil {
		v = []byte{} // nil reads as absent
	}
	prev, had := t.trees[bucket].ReplaceOrInsert(item{k: string(key), v: v})
	if !t.noUndo {
		if !had {
			prev = item{k: string(key)}
		}
		t.undo = append(t.undo, undoRec{bucket: bucket, prev: prev, had: had})
	}
	return nil
}

func (t *memWriteTx) Delete(bucket string, key []byte) error {
	prev, had := t.trees[bucket].Delete(item{k: string(key)})
	if had && !t.noUndo {
		t.undo = append(t.undo, undoRec{bucket: bucket, prev: prev, had: true})
	}
	return nil
}

func (t *memWriteTx) rollback() {
	for i := len(t.undo) - 1; i >= 0; i-- {
		u := t.undo[i]
		if u.had {
			t.trees[u.bucket].ReplaceOrInsert(u.prev)
		} else {
			t.trees[u.bucket].Delete(u.prev)
		}
	}
	t.undo = nil
}

var errReadOnly = errors.New("store: write in a read-only view")
