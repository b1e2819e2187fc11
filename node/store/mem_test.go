package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"mpim/fsm"
	"mpim/internal/convid"
)

// TestMemMatchesReference drives Mem and the fsm's reference MemKV with the
// same random writes and compares every read, scans in both directions
// over random ranges included.
func TestMemMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	ref := fsm.NewMemKV()
	m := NewMem()
	buckets := []string{"msgs", "orders"}
	key := func() []byte { return []byte{byte('a' + rng.IntN(6)), byte(rng.IntN(4))} }
	for round := range 400 {
		ops := rng.IntN(8) + 1
		err := m.Update(func(tx fsm.Tx) error {
			for range ops {
				b, k := buckets[rng.IntN(2)], key()
				if rng.IntN(3) == 0 {
					ref.Delete(b, k)
					if err := tx.Delete(b, k); err != nil {
						return err
					}
					continue
				}
				v := []byte(fmt.Sprint(round))
				ref.Put(b, k, v)
				if err := tx.Put(b, k, v); err != nil {
					return err
				}
				v[0] = 'X' // the store must have copied it
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for range 4 {
			b := buckets[rng.IntN(2)]
			from, to := key(), key()
			if rng.IntN(4) == 0 {
				to = nil
			}
			if rng.IntN(4) == 0 {
				from = nil
			}
			reverse := rng.IntN(2) == 0
			limit := rng.IntN(5) + 1
			collect := func(tx fsm.Tx) string {
				var out []string
				tx.Scan(b, from, to, reverse, func(k, v []byte) bool {
					out = append(out, fmt.Sprintf("%q=%s", k, v))
					return len(out) < limit
				})
				return fmt.Sprint(out)
			}
			var got string
			m.View(func(tx fsm.Tx) error { got = collect(tx); return nil })
			if want := collect(ref); got != want {
				t.Fatalf("round %d: Scan(%s, %q, %q, reverse=%v, limit %d) = %s, want %s", round, b, from, to, reverse, limit, got, want)
			}
			k := key()
			m.View(func(tx fsm.Tx) error {
				if g, w := tx.Get(b, k), ref.Get(b, k); !bytes.Equal(g, w) || (g == nil) != (w == nil) {
					t.Fatalf("round %d: Get(%s, %q) = %q, want %q", round, b, k, g, w)
				}
				return nil
			})
		}
	}
}

// TestMemRollbackAndIsolation: a failed write transaction leaves nothing
// behind, a view sees the state as of its start while writes go on, and a
// view cannot write.
func TestMemRollbackAndIsolation(t *testing.T) {
	m := NewMem()
	put := func(k, v string) error {
		return m.Update(func(tx fsm.Tx) error { return tx.Put("users", []byte(k), []byte(v)) })
	}
	if err := put("a", "1"); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err := m.Update(func(tx fsm.Tx) error {
		tx.Put("users", []byte("a"), []byte("2")) // overwrite
		tx.Put("users", []byte("b"), []byte("2")) // insert
		tx.Delete("users", []byte("a"))           // delete after overwrite
		tx.Put("uids", []byte("c"), []byte("2"))  // another bucket
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update returned %v, want the callback's error", err)
	}
	var snap bytes.Buffer
	m.BeginSnapshot().Stream(&snap)
	want := NewMem()
	want.Update(func(tx fsm.Tx) error { return tx.Put("users", []byte("a"), []byte("1")) })
	var wantSnap bytes.Buffer
	want.BeginSnapshot().Stream(&wantSnap)
	if !bytes.Equal(snap.Bytes(), wantSnap.Bytes()) {
		t.Fatal("a failed transaction left writes behind")
	}

	err = m.View(func(tx fsm.Tx) error {
		if err := put("a", "3"); err != nil { // a writer does not wait for the reader
			return err
		}
		if v := tx.Get("users", []byte("a")); string(v) != "1" {
			t.Fatalf("a view saw a later write: a=%q, want 1", v)
		}
		if tx.Put("users", []byte("z"), []byte("1")) == nil {
			t.Fatal("a view accepted a write")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	m.View(func(tx fsm.Tx) error {
		if v := tx.Get("users", []byte("a")); string(v) != "3" {
			t.Fatalf("a new view missed a committed write: a=%q, want 3", v)
		}
		return nil
	})
}

// TestMemViewCopiesWhatItReads: a view copies only the buckets it reads, so
// a user lookup leaves the message trees uncopied (their next writes need
// not copy their paths); a bucket a view has not read yet is kept for it as
// of its start when a writer changes it, and restored-over state too.
func TestMemViewCopiesWhatItReads(t *testing.T) {
	m := NewMem()
	put := func(bucket, k, v string) {
		t.Helper()
		if err := m.Update(func(tx fsm.Tx) error { return tx.Put(bucket, []byte(k), []byte(v)) }); err != nil {
			t.Fatal(err)
		}
	}
	put("users", "alice", "1")
	put("msgs", "m1", "1")
	m.View(func(tx fsm.Tx) error { tx.Get("users", []byte("alice")); return nil })
	if got := slices.Sorted(maps.Keys(m.cur.trees)); !slices.Equal(got, []string{"users"}) {
		t.Fatalf("a view that read users copied %v", got)
	}
	if len(m.open) != 0 {
		t.Fatalf("%d read copies open after every view returned", len(m.open))
	}

	err := m.View(func(tx fsm.Tx) error {
		if v := tx.Get("users", []byte("alice")); string(v) != "1" {
			t.Fatalf("users alice = %q, want 1", v)
		}
		put("msgs", "m1", "2") // not read by this view yet
		put("msgs", "m2", "2")
		put("users", "alice", "2") // read already
		if v := tx.Get("msgs", []byte("m1")); string(v) != "1" {
			t.Fatalf("a view saw a later write to a bucket it read after it: m1=%q, want 1", v)
		}
		if v := tx.Get("msgs", []byte("m2")); v != nil {
			t.Fatalf("a view saw a later insert: m2=%q", v)
		}
		var n int
		tx.Scan("msgs", nil, nil, false, func(k, v []byte) bool { n++; return true })
		if n != 1 {
			t.Fatalf("a view scanned %d messages, want the 1 of its start", n)
		}
		if v := tx.Get("users", []byte("alice")); string(v) != "1" {
			t.Fatalf("users alice = %q after a later write, want 1", v)
		}
		var snap bytes.Buffer
		want := NewMem()
		want.Update(func(tx fsm.Tx) error { return tx.Put("uids", []byte("x"), []byte("9")) })
		want.BeginSnapshot().Stream(&snap)
		if err := m.Restore(&snap); err != nil {
			t.Fatal(err)
		}
		if v := tx.Get("uids", []byte("x")); v != nil {
			t.Fatalf("a view saw a restore made after its start: uids x=%q", v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	m.View(func(tx fsm.Tx) error {
		if v := tx.Get("uids", []byte("x")); string(v) != "9" {
			t.Fatalf("a new view missed the restored state: uids x=%q", v)
		}
		if v := tx.Get("msgs", []byte("m2")); v != nil {
			t.Fatalf("the restore kept m2=%q", v)
		}
		return nil
	})
}

// TestMemMatchesBolt applies the same chat commands — registrations, sends
// with duplicate cmids, out-of-order origin sequences, cursors — to the
// bbolt store and to Mem, and requires identical snapshots; a snapshot of
// Mem restored into a fresh Mem and into bbolt gives the same bytes again.
func TestMemMatchesBolt(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "s.db"), Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	mem := NewMem()
	m, _ := fsm.New(fsm.Config{DedupWindow: 5})
	var batches [][]fsm.Command
	batches = append(batches, []fsm.Command{
		{Register: &fsm.Register{Name: "alice", PwHash: []byte("h"), Created: 1}},
		{Register: &fsm.Register{Name: "bob", PwHash: []byte("h"), Created: 2}},
		{GroupCreate: &fsm.GroupCreate{Group: "g", Creator: 1, Members: []uint64{2}, Created: 3}},
	})
	for i := range 60 {
		var b []fsm.Command
		for j := range i%5 + 1 {
			n := i*5 + j
			b = append(b, fsm.Command{Send: &fsm.Send{Conv: convid.DMKey(1, 2), FromUID: 1 + uint64(n%2), From: "x", To: 2 - uint64(n%2),
				Text: "hi", Cmid: fmt.Sprint(n % 7), ID: fmt.Sprint("m", n), Ts: int64(n), Origin: fmt.Sprint("n", n%3+1), OSeq: uint64(100 - n)}})
		}
		if i%7 == 0 {
			b = append(b, fsm.Command{Ack: &fsm.Cursor{UID: 2, Device: "d", Conv: convid.DMKey(1, 2), Seq: uint64(i)}})
		}
		batches = append(batches, b)
	}
	for i, b := range batches {
		apply := func(tx fsm.Tx) error { _, err := m.Apply(tx, uint64(i+1), b); return err }
		if err := s.Update(apply); err != nil {
			t.Fatal(err)
		}
		if err := mem.Update(apply); err != nil {
			t.Fatal(err)
		}
	}
	var fromBolt, fromMem bytes.Buffer
	if err := s.Snapshot(&fromBolt); err != nil {
		t.Fatal(err)
	}
	if err := mem.BeginSnapshot().Stream(&fromMem); err != nil {
		t.Fatal(err)
	}
	if fromMem.Len() < 1000 || !bytes.Equal(fromBolt.Bytes(), fromMem.Bytes()) {
		t.Fatalf("Mem's snapshot (%d bytes) differs from bbolt's (%d bytes)", fromMem.Len(), fromBolt.Len())
	}
	restored := NewMem()
	restored.Update(func(tx fsm.Tx) error { return tx.Put("users", []byte("stale"), []byte("x")) })
	if err := restored.Restore(bytes.NewReader(fromMem.Bytes())); err != nil {
		t.Fatal(err)
	}
	var again bytes.Buffer
	restored.BeginSnapshot().Stream(&again)
	if !bytes.Equal(again.Bytes(), fromMem.Bytes()) {
		t.Fatal("a restored Mem's snapshot differs from the one it was restored from (stale state kept?)")
	}
	if err := restored.Restore(bytes.NewReader([]byte("not a snapshot"))); err == nil {
		t.Fatal("Restore accepted garbage")
	}
	again.Reset()
	restored.BeginSnapshot().Stream(&again)
	if !bytes.Equal(again.Bytes(), fromMem.Bytes()) {
		t.Fatal("a failed Restore changed the state")
	}
	var applied uint64
	restored.View(func(tx fsm.Tx) error { applied = fsm.Applied(tx); return nil })
	if applied != uint64(len(batches)) {
		t.Fatalf("restored applied index %d, want %d", applied, len(batches))
	}
}

// TestMemViewsUnderConcurrentWrites: while a writer commits a counter to
// two buckets in one transaction, every view sees both at the same value
// (one state, however late it reads the second bucket) and never a value
// older than one committed before the view began.
func TestMemViewsUnderConcurrentWrites(t *testing.T) {
	m := NewMem()
	var committed atomic.Uint64
	put := func(tx fsm.Tx, bucket string, v uint64) error {
		return tx.Put(bucket, []byte("k"), binary.BigEndian.AppendUint64(nil, v))
	}
	get := func(tx fsm.Tx, bucket string) uint64 {
		b := tx.Get(bucket, []byte("k"))
		if b == nil {
			return 0
		}
		return binary.BigEndian.Uint64(b)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for v := uint64(1); v <= 3000; v++ {
			err := m.Update(func(tx fsm.Tx) error {
				if err := put(tx, "users", v); err != nil {
					return err
				}
				return put(tx, "msgs", v)
			})
			if err != nil {
				t.Error(err)
				return
			}
			committed.Store(v)
		}
	}()
	var wg sync.WaitGroup
	for r := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				floor := committed.Load()
				m.View(func(tx fsm.Tx) error {
					first, second := "users", "msgs"
					if r%2 == 1 {
						first, second = second, first
					}
					a := get(tx, first)
					runtime.Gosched() // let the writer commit between the two reads
					b := get(tx, second)
					if a != b {
						t.Errorf("a view saw %s=%d and %s=%d: two states", first, a, second, b)
					}
					if a < floor {
						t.Errorf("a view begun after commit %d saw %d", floor, a)
					}
					return nil
				})
			}
		}()
	}
	wg.Wait()
}

// TestMemVersion: a bucket's version moves with every committed write that
// changed it and with a restore, and with nothing else; a view started
// after the version was read sees every write before it.
func TestMemVersion(t *testing.T) {
	m := NewMem()
	update := func(fn func(tx fsm.Tx) error) error { return m.Update(fn) }
	v := func() (uint64, uint64) { return m.Version("users"), m.Version("msgs") }
	check := func(step string, users, msgs uint64) {
		t.Helper()
		if u, g := v(); u != users || g != msgs {
			t.Fatalf("%s: versions users=%d msgs=%d, want %d and %d", step, u, g, users, msgs)
		}
	}
	check("empty", 0, 0)
	update(func(tx fsm.Tx) error { return tx.Put("users", []byte("a"), []byte("1")) })
	check("a write to users", 1, 0)
	update(func(tx fsm.Tx) error {
		tx.Put("users", []byte("b"), []byte("1"))
		return tx.Put("users", []byte("c"), []byte("1"))
	})
	check("two writes in one transaction", 2, 0)
	update(func(tx fsm.Tx) error { tx.Get("users", []byte("a")); return tx.Put("msgs", []byte("m"), []byte("1")) })
	check("a transaction that read users and wrote msgs", 2, 1)
	update(func(tx fsm.Tx) error { tx.Put("users", []byte("a"), []byte("2")); return errors.New("boom") })
	check("a rolled-back write", 2, 1)
	m.View(func(tx fsm.Tx) error { tx.Get("users", []byte("a")); return nil })
	check("a view", 2, 1)

	var snap bytes.Buffer
	m.BeginSnapshot().Stream(&snap)
	if err := m.Restore(&snap); err != nil {
		t.Fatal(err)
	}
	check("a restore", 3, 2)

	// A value read by a view started after Version returned v is the value
	// as of v while Version still returns v (what a cache relies on): two
	// such reads at one version agree.
	stop := make(chan struct{})
	done := make(chan error)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				close(done)
				return
			default:
			}
			update(func(tx fsm.Tx) error { return tx.Put("users", []byte("a"), []byte(fmt.Sprint(i))) })
		}
	}()
	seen := map[uint64]string{}
	for range 2000 {
		ver := m.Version("users")
		var a string
		m.View(func(tx fsm.Tx) error { a = string(tx.Get("users", []byte("a"))); return nil })
		if m.Version("users") != ver {
			continue // a cache would not keep this read
		}
		if prev, ok := seen[ver]; ok && prev != a {
			close(stop)
			<-done
			t.Fatalf("version %d read both a=%q and a=%q: a write was visible before its version moved", ver, prev, a)
		}
		seen[ver] = a
	}
	close(stop)
	<-done
}
