// Package store keeps a shard's chat state in a bbolt file: the fsm's Tx
// backed by bbolt transactions, so that a command's effects and the log
// index it came from commit together or not at all.
package store

import (
	"bytes"
	"fmt"
	"io"
	"time"

	bolt "go.etcd.io/bbolt"

	"mpim/fsm"
)

// Store is one shard's state file.
type Store struct {
	db *bolt.DB
}

// Options tune the file.
type Options struct {
	// NoSync skips fsync on commit. Only for tests and benchmarks that say
	// so: a machine crash can then lose acknowledged messages.
	NoSync bool
}

// Open opens (creating) the state file at path.
func Open(path string, opt Options) (*Store, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second, NoSync: opt.NoSync, NoFreelistSync: true})
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w (is another process using this data directory?)", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range fsm.Buckets {
			if _, err := tx.CreateBucketIfNotExists([]byte(b)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("store: init %s: %w", path, err)
	}
	return &Store{db: db}, nil
}

// Close closes the file.
func (s *Store) Close() error { return s.db.Close() }

// View runs fn in a read-only transaction.
func (s *Store) View(fn func(fsm.Tx) error) error {
	return s.db.View(func(tx *bolt.Tx) error { return fn(boltTx{tx}) })
}

// Update runs fn in a read-write transaction, committed (and fsynced) when
// fn returns nil.
func (s *Store) Update(fn func(fsm.Tx) error) error {
	return s.db.Update(func(tx *bolt.Tx) error { return fn(boltTx{tx}) })
}

// Snapshot writes the state as an fsm snapshot stream.
func (s *Store) Snapshot(w io.Writer) error {
	return s.View(func(tx fsm.Tx) error { return fsm.Snapshot(tx, w) })
}

// Restore replaces the whole state with a snapshot stream, atomically.
func (s *Store) Restore(r io.Reader) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		for _, b := range fsm.Buckets {
			if err := tx.DeleteBucket([]byte(b)); err != nil && err != bolt.ErrBucketNotFound {
				return err
			}
			if _, err := tx.CreateBucket([]byte(b)); err != nil {
				return err
			}
		}
		return fsm.Restore(boltTx{tx}, r)
	})
}

// boltTx adapts a bbolt transaction to fsm.Tx. Every bucket exists (Open
// creates them).
type boltTx struct{ tx *bolt.Tx }

func (t boltTx) Get(bucket string, key []byte) []byte {
	return t.tx.Bucket([]byte(bucket)).Get(key)
}

func (t boltTx) Put(bucket string, key, value []byte) error {
	if value == nil {
		value = []byte{}
	}
	return t.tx.Bucket([]byte(bucket)).Put(key, value)
}

func (t boltTx) Delete(bucket string, key []byte) error {
	return t.tx.Bucket([]byte(bucket)).Delete(key)
}

func (t boltTx) Scan(bucket string, from, to []byte, reverse bool, fn func(k, v []byte) bool) error {
	c := t.tx.Bucket([]byte(bucket)).Cursor()
	inRange := func(k []byte) bool {
		return k != nil && bytes.Compare(k, from) >= 0 && (to == nil || bytes.Compare(k, to) < 0)
	}
	if !reverse {
		for k, v := c.Seek(from); inRange(k); k, v = c.Next() {
			if !fn(k, v) {
				return nil
			}
		}
		return nil
	}
	var k, v []byte
	if to == nil {
		k, v = c.Last()
	} else if k, v = c.Seek(to); k == nil {
		k, v = c.Last()
	} else {
		k, v = c.Prev()
	}
	for ; inRange(k); k, v = c.Prev() {
		if !fn(k, v) {
			return nil
		}
	}
	return nil
}

// SnapshotTx is a read transaction held open to stream a snapshot while
// writes go on (bbolt readers see the state as of their start).
type SnapshotTx struct{ tx *bolt.Tx }

// BeginSnapshot pins the current state for a snapshot; Release it.
func (s *Store) BeginSnapshot() (*SnapshotTx, error) {
	tx, err := s.db.Begin(false)
	if err != nil {
		return nil, err
	}
	return &SnapshotTx{tx: tx}, nil
}

// Stream writes the pinned state as an fsm snapshot.
func (t *SnapshotTx) Stream(w io.Writer) error { return fsm.Snapshot(boltTx{t.tx}, w) }

// Release ends the read transaction.
func (t *SnapshotTx) Release() { t.tx.Rollback() }
