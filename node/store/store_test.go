package store

import (
	"bytes"
	"fmt"
	"path/filepath"
	"testing"

	"mpim/fsm"
)

// TestBoltMatchesMem applies the same commands to bbolt and to the
// in-memory store and requires identical snapshots and query results: the
// adapter must not change what the state machine computes.
func TestBoltMatchesMem(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "s.db"), Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m, _ := fsm.New(fsm.Config{DedupWindow: 5})
	mem := fsm.NewMemKV()
	cmds := []fsm.Command{
		{Register: &fsm.Register{Name: "alice", PwHash: []byte("h"), Created: 1}},
		{Register: &fsm.Register{Name: "bob", PwHash: []byte("h"), Created: 2}},
	}
	for i := 0; i < 20; i++ {
		cmds = append(cmds, fsm.Command{Send: &fsm.Send{Conv: "d:1:2", FromUID: 1 + uint64(i%2), From: "x", To: 2 - uint64(i%2), Text: "hi", Cmid: fmt.Sprint(i % 7), ID: fmt.Sprint("m", i), Ts: int64(i)}})
	}
	for i, c := range cmds {
		if _, err := m.Apply(mem, uint64(i+1), []fsm.Command{c}); err != nil {
			t.Fatal(err)
		}
		if err := s.Update(func(tx fsm.Tx) error { _, err := m.Apply(tx, uint64(i+1), []fsm.Command{c}); return err }); err != nil {
			t.Fatal(err)
		}
	}
	var a, b bytes.Buffer
	if err := fsm.Snapshot(mem, &a); err != nil {
		t.Fatal(err)
	}
	if err := s.Snapshot(&b); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatalf("bbolt snapshot (%d bytes) differs from the in-memory one (%d bytes)", b.Len(), a.Len())
	}
	for _, q := range []struct {
		after, before uint64
		limit         int
	}{{0, 0, 3}, {2, 0, 4}, {0, 9, 3}, {3, 9, 100}, {0, 0, 100}} {
		want, wmore := fsm.Messages(mem, "d:1:2", q.after, q.before, q.limit)
		var got []fsm.Message
		var gmore bool
		s.View(func(tx fsm.Tx) error {
			got, gmore = fsm.Messages(tx, "d:1:2", q.after, q.before, q.limit)
			return nil
		})
		if fmt.Sprint(got) != fmt.Sprint(want) || gmore != wmore {
			t.Fatalf("Messages%+v: bbolt gave %d msgs more=%v, mem %d more=%v", q, len(got), gmore, len(want), wmore)
		}
	}
	// Restore into a fresh file reproduces the state byte for byte.
	s2, err := Open(filepath.Join(t.TempDir(), "s2.db"), Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if err := s2.Restore(bytes.NewReader(b.Bytes())); err != nil {
		t.Fatal(err)
	}
	var c bytes.Buffer
	s2.Snapshot(&c)
	if !bytes.Equal(b.Bytes(), c.Bytes()) {
		t.Fatal("restored state differs from the snapshot it came from")
	}
}

// TestReplaySkipsApplied reopens the file and replays the log: entries at
// or below the recorded index change nothing.
func TestReplaySkipsApplied(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	m, _ := fsm.New(fsm.DefaultConfig())
	send := []fsm.Command{{Send: &fsm.Send{Conv: "d:1:2", FromUID: 1, To: 2, Text: "x", Cmid: "c1", ID: "i1"}}}
	s, _ := Open(path, Options{})
	if err := s.Update(func(tx fsm.Tx) error { _, err := m.Apply(tx, 1, send); return err }); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, _ = Open(path, Options{})
	defer s.Close()
	err := s.Update(func(tx fsm.Tx) error { _, err := m.Apply(tx, 1, send); return err })
	if err != fsm.ErrApplied {
		t.Fatalf("replaying index 1 after restart: err = %v, want ErrApplied", err)
	}
	s.View(func(tx fsm.Tx) error {
		if n := fsm.MaxSeq(tx, "d:1:2"); n != 1 {
			t.Fatalf("after replay the conversation has max seq %d, want 1 (applied twice)", n)
		}
		return nil
	})
}
