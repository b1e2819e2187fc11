package ap

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"

	"mpim/fsm"
)

// Entry is one write as the AP mode replicates it: the command with every
// value its origin chose (ids, the message's order key, the user's uid),
// numbered densely per origin, with the origin's vector when it was made
// (its causal dependencies).
type Entry struct {
	Origin string            `json:"origin"`
	OSeq   uint64            `json:"oseq"`
	HLC    uint64            `json:"hlc"`
	Deps   map[string]uint64 `json:"deps,omitempty"`
	Cmd    fsm.Command       `json:"cmd"`
}

var (
	bLog = []byte("log") // origin 0x00 oseq -> Entry
	bVec = []byte("vec") // origin -> highest oseq applied in order
)

// log is a node's copy of every entry it holds, and its vector. It is the
// anti-entropy's source and survives restarts.
type log struct {
	db *bolt.DB
}

func openLog(dir string) (*log, error) {
	db, err := bolt.Open(filepath.Join(dir, "ap.db"), 0o600, &bolt.Options{Timeout: 2 * time.Second, NoFreelistSync: true})
	if err != nil {
		return nil, fmt.Errorf("ap: open log: %w", err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bLog, bVec} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	return &log{db: db}, nil
}

func entryKey(origin string, oseq uint64) []byte {
	k := append([]byte(origin), 0)
	return binary.BigEndian.AppendUint64(k, oseq)
}

// put stores entries and raises the vector to what is now held in order.
func (l *log) put(entries []Entry, vec map[string]uint64) error {
	return l.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bLog)
		for _, e := range entries {
			v, err := json.Marshal(e)
			if err != nil {
				return err
			}
			if err := b.Put(entryKey(e.Origin, e.OSeq), v); err != nil {
				return err
			}
		}
		vb := tx.Bucket(bVec)
		for o, n := range vec {
			if err := vb.Put([]byte(o), binary.BigEndian.AppendUint64(nil, n)); err != nil {
				return err
			}
		}
		return nil
	})
}

// vector reads the stored vector.
func (l *log) vector() (map[string]uint64, error) {
	out := map[string]uint64{}
	err := l.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bVec).ForEach(func(k, v []byte) error {
			out[string(k)] = binary.BigEndian.Uint64(v)
			return nil
		})
	})
	return out, err
}

// after returns up to limit entries of origin with oseq > after.
func (l *log) after(origin string, after uint64, limit int) ([]Entry, error) {
	raw, err := l.afterRaw(origin, after, limit)
	if err != nil {
		return nil, err
	}
	out := make([]Entry, len(raw))
	for i, b := range raw {
		if err := json.Unmarshal(b, &out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// afterRaw is after as the stored records (JSON entries), which a pull
// serves as they are.
func (l *log) afterRaw(origin string, after uint64, limit int) ([][]byte, error) {
	var out [][]byte
	err := l.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bLog).Cursor()
		prefix := append([]byte(origin), 0)
		for k, v := c.Seek(entryKey(origin, after+1)); k != nil && len(out) < limit; k, v = c.Next() {
			if len(k) != len(prefix)+8 || string(k[:len(prefix)]) != string(prefix) {
				break
			}
			out = append(out, bytes.Clone(v))
		}
		return nil
	})
	return out, err
}

func (l *log) close() error { return l.db.Close() }
