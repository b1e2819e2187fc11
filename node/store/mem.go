package store

import (
	"bytes"
	"errors"
	"io"
	"sync"
	"sync/atomic"

	"github.com/google/btree"

	"mpim/fsm"
)

// Mem keeps a shard's state in memory: one copy-on-write B-tree per
// bucket. It is the CP replicas' state, where the Raft log (fsynced) and
// its snapshots are the durable copy, as in Consul (go-memdb; etcd, by
// contrast, keeps its state in bbolt): a restarted replica restores the
// last snapshot and re-applies the log after it, so no write needs to
// touch a file. AP's replicas keep it too, with the
// replicator's log as the durable copy.
//
// Writers are serialized; a write transaction is applied in place and
// undone on error. A view reads the state as of its start (bbolt's
// isolation) from copies of the trees, taken bucket by bucket as the view
// first reads each: a clone is O(1), but it makes the next write to that
// tree copy the nodes on its path, so a view that reads only the users
// (every send looks its recipient up) must not make the following writes to
// the messages copy theirs. Views started between two writes share their
// copies. A writer about to change a bucket first gives every open view
// that has not read it yet its own copy, so views never see a later write.
// A reader waits for a write in progress only to take a copy; it never
// holds a writer up.
type Mem struct {
	// mu guards live, cur and open, and every readCopy's trees: a writer
	// holds it for its whole transaction (which serializes writers), a
	// reader while it takes a copy.
	mu   sync.Mutex
	live map[string]*btree.BTreeG[item]
	// cur is the read copy new views share: the state as of the last
	// commit, its trees filled in as views read them; nil after a write.
	cur *readCopy
	// open are the read copies views still hold.
	open map[*readCopy]struct{}
	// versions counts, per bucket, the commits and restores that changed
	// it (Version); written under mu, read without it.
	versions map[string]*atomic.Uint64
}

// readCopy is the state as of one commit, for the views that share it: a
// bucket is in trees once a view read it, or once a writer changed it
// while the view was open; until then the live tree still holds it.
type readCopy struct {
	trees map[string]*btree.BTreeG[item]
	refs  int
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
func NewMem() *Mem {
	versions := make(map[string]*atomic.Uint64, len(fsm.Buckets))
	for _, b := range fsm.Buckets {
		versions[b] = new(atomic.Uint64)
	}
	return &Mem{live: emptyTrees(), open: map[*readCopy]struct{}{}, versions: versions}
}

// Version counts the committed writes and restores that changed bucket.
// A value read from a view started after Version returned v is current
// for as long as Version still returns v: a cache of a bucket's values
// (the node's user lookups) checks it instead of taking a view. The
// count moves while the writer still holds the state, so a view started
// after the new count is read sees the write.
func (m *Mem) Version(bucket string) uint64 {
	if v := m.versions[bucket]; v != nil {
		return v.Load()
	}
	return 0
}

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
	rc := m.acquire()
	defer m.release(rc)
	return fn(memTx{tree: (&viewTrees{m: m, rc: rc}).tree})
}

func (m *Mem) acquire() *readCopy {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cur == nil {
		m.cur = &readCopy{trees: make(map[string]*btree.BTreeG[item], len(m.live))}
	}
	rc := m.cur
	if rc.refs++; rc.refs == 1 {
		m.open[rc] = struct{}{}
	}
	return rc
}

func (m *Mem) release(rc *readCopy) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if rc.refs--; rc.refs == 0 {
		delete(m.open, rc)
	}
}

// viewTrees hands one view the trees of its read copy, keeping those it
// already took so that it takes the lock once per bucket.
type viewTrees struct {
	m     *Mem
	rc    *readCopy
	taken map[string]*btree.BTreeG[item]
}

func (v *viewTrees) tree(bucket string) *btree.BTreeG[item] {
	if t, ok := v.taken[bucket]; ok {
		return t
	}
	v.m.mu.Lock()
	t, ok := v.rc.trees[bucket]
	if !ok {
		if live := v.m.live[bucket]; live != nil {
			t = live.Clone()
		}
		v.rc.trees[bucket] = t
	}
	v.m.mu.Unlock()
	if v.taken == nil {
		v.taken = make(map[string]*btree.BTreeG[item], 4)
	}
	v.taken[bucket] = t
	return t
}

// ViewLive runs fn on the live state, without taking a copy, holding the
// state meanwhile. It is for the one goroutine that writes (the AP
// engine's checks between its writes): a copy would make its next write
// copy every node it touches, and that goroutine's reads need no
// isolation from writes it does not make.
func (m *Mem) ViewLive(fn func(fsm.Tx) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return fn(liveTx(m.live))
}

// Update runs fn in a write transaction: its writes are visible to views
// once it returns nil, and undone when it returns an error.
func (m *Mem) Update(fn func(fsm.Tx) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	tx := &memWriteTx{memTx: liveTx(m.live), touch: m.preserve}
	err := fn(tx)
	if err != nil {
		tx.rollback()
	}
	if tx.touched != nil {
		m.cur = nil // the next views need the state after this write
		if err == nil {
			for b := range tx.touched {
				m.versions[b].Add(1)
			}
		}
	}
	return err
}

// preserve is called (under mu) before a writer first changes bucket: every
// open view that has not read it yet gets its copy as it stands.
func (m *Mem) preserve(bucket string) {
	for rc := range m.open {
		if _, ok := rc.trees[bucket]; !ok {
			rc.trees[bucket] = m.live[bucket].Clone()
		}
	}
}

func liveTx(trees map[string]*btree.BTreeG[item]) memTx {
	return memTx{tree: func(b string) *btree.BTreeG[item] { return trees[b] }}
}

// MemSnapshot is a pinned copy of the state being streamed.
type MemSnapshot struct {
	trees map[string]*btree.BTreeG[item]
}

// BeginSnapshot pins the current state (O(1) a bucket: the trees are
// shared and copied on write) for a snapshot stream.
func (m *Mem) BeginSnapshot() *MemSnapshot {
	m.mu.Lock()
	defer m.mu.Unlock()
	trees := make(map[string]*btree.BTreeG[item], len(m.live))
	for b, t := range m.live {
		trees[b] = t.Clone()
	}
	return &MemSnapshot{trees: trees}
}

// Stream writes the pinned state as an fsm snapshot.
func (s *MemSnapshot) Stream(w io.Writer) error { return fsm.Snapshot(liveTx(s.trees), w) }

// Restore replaces the whole state with a snapshot stream, atomically:
// on error the state is unchanged.
func (m *Mem) Restore(r io.Reader) error {
	fresh := emptyTrees()
	if err := fsm.Restore(&memWriteTx{memTx: liveTx(fresh), noUndo: true}, r); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	// Open views keep what they read; what they have not read yet is the
	// old state, which only they hold now.
	for b := range m.live {
		m.preserve(b)
	}
	m.live, m.cur = fresh, nil
	for _, v := range m.versions {
		v.Add(1)
	}
	return nil
}

// memTx reads a set of trees. Values are never modified in place, so a
// slice Get returns stays valid after the transaction.
type memTx struct {
	tree func(bucket string) *btree.BTreeG[item]
}

func (t memTx) Get(bucket string, key []byte) []byte {
	it, ok := t.tree(bucket).Get(item{k: string(key)})
	if !ok {
		return nil
	}
	return it.v
}

func (t memTx) Put(string, []byte, []byte) error { return errReadOnly }
func (t memTx) Delete(string, []byte) error      { return errReadOnly }

func (t memTx) Scan(bucket string, from, to []byte, reverse bool, fn func(k, v []byte) bool) error {
	tree := t.tree(bucket)
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
	// touch, when set, is called before the first change to each bucket.
	touch   func(bucket string)
	touched map[string]bool
}

// writable returns bucket's live tree, telling touch the first time.
func (t *memWriteTx) writable(bucket string) *btree.BTreeG[item] {
	if !t.touched[bucket] {
		if t.touched == nil {
			t.touched = make(map[string]bool, 8)
		}
		t.touched[bucket] = true
		if t.touch != nil {
			t.touch(bucket)
		}
	}
	return t.tree(bucket)
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
	prev, had := t.writable(bucket).ReplaceOrInsert(item{k: string(key), v: v})
	if !t.noUndo {
		if !had {
			prev = item{k: string(key)}
		}
		t.undo = append(t.undo, undoRec{bucket: bucket, prev: prev, had: had})
	}
	return nil
}

func (t *memWriteTx) Delete(bucket string, key []byte) error {
	prev, had := t.writable(bucket).Delete(item{k: string(key)})
	if had && !t.noUndo {
		t.undo = append(t.undo, undoRec{bucket: bucket, prev: prev, had: true})
	}
	return nil
}

func (t *memWriteTx) rollback() {
	for i := len(t.undo) - 1; i >= 0; i-- {
		u := t.undo[i]
		if u.had {
			t.tree(u.bucket).ReplaceOrInsert(u.prev)
		} else {
			t.tree(u.bucket).Delete(u.prev)
		}
	}
	t.undo = nil
}

var errReadOnly = errors.New("store: write in a read-only view")
