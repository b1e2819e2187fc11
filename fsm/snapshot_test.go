package fsm

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// TestDeterminism applies the same generated log to two fresh stores: every
// result and the snapshot bytes must be identical, as two replicas applying
// the same committed log must agree (Raft §5.3, the state machine safety
// property, only holds if Apply is deterministic).
func TestDeterminism(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3, 42, 1234} {
		t.Run(fmt.Sprintf("seed %d", seed), func(t *testing.T) {
			cfg := Config{DedupWindow: 5}
			g := newLogGen(t, seed, cfg)
			log := g.entries(300)
			m, _ := New(cfg)
			a, b := NewMemKV(), NewMemKV()
			ra := applyLog(t, m, a, 1, log)
			rb := applyLog(t, m, b, 1, log)
			if !reflect.DeepEqual(ra, rb) {
				for i := range ra {
					if !reflect.DeepEqual(ra[i], rb[i]) {
						t.Fatalf("command %d: results differ between replicas: %+v vs %+v", i, ra[i], rb[i])
					}
				}
			}
			sa := snapshotBytes(t, a)
			requireSameState(t, "two replicas, same log", sa, snapshotBytes(t, b))
			requireSameState(t, "replica vs generator's reference", sa, g.ref.snapshot())
			if Applied(a) != uint64(len(log)) {
				t.Fatalf("applied index %d after %d entries", Applied(a), len(log))
			}
			checkInvariants(t, a)
		})
	}
}

// checkInvariants verifies what must hold in any reachable state: every
// conversation's seqs are dense from 1 to MaxSeq, message ids resolve, and
// members agree with the userconvs index.
func checkInvariants(t *testing.T, tx Tx) {
	t.Helper()
	for _, conv := range Convs(tx) {
		checkDense(t, tx, conv, MaxSeq(tx, conv))
		msgs, _ := Messages(tx, conv, 0, 0, 1<<20)
		// Ids come from the caller; one reused after the dedup window
		// resolves to its latest message, so only check it resolves.
		for _, m := range msgs {
			if got, ok := MessageByID(tx, m.ID); !ok || got.ID != m.ID {
				t.Fatalf("conversation %s: id %s of seq %d resolves to %+v (found %v)", conv, m.ID, m.Seq, got, ok)
			}
		}
		for _, uid := range Members(tx, conv) {
			if !slices.Contains(UserConvs(tx, uid), conv) {
				t.Fatalf("conversation %s: member %d lacks it in UserConvs", conv, uid)
			}
		}
	}
}

// TestSnapshotRestore checks Snapshot -> Restore -> Snapshot is the
// identity on bytes, and that the restored replica then behaves exactly
// like the original when the log continues (a follower installing a
// snapshot, Raft §7, must be indistinguishable from one that replayed).
func TestSnapshotRestore(t *testing.T) {
	for _, seed := range []uint64{7, 8, 9} {
		t.Run(fmt.Sprintf("seed %d", seed), func(t *testing.T) {
			cfg := Config{DedupWindow: 4}
			g := newLogGen(t, seed, cfg)
			log := g.entries(300)
			m, _ := New(cfg)
			orig := NewMemKV()
			applyLog(t, m, orig, 1, log[:150])
			snap := snapshotBytes(t, orig)

			restored := NewMemKV()
			if err := Restore(restored, bytes.NewReader(snap)); err != nil {
				t.Fatalf("Restore: %v", err)
			}
			requireSameState(t, "snapshot of the restored state", snap, snapshotBytes(t, restored))
			if Applied(restored) != 150 {
				t.Fatalf("restored applied index %d, want 150", Applied(restored))
			}
			for _, conv := range Convs(orig) {
				n1, d1 := Digest(orig, conv)
				n2, d2 := Digest(restored, conv)
				if n1 != n2 || d1 != d2 || !slices.Equal(Members(orig, conv), Members(restored, conv)) {
					t.Fatalf("conversation %s: restored digest (%d, %s) members %v, original (%d, %s) members %v",
						conv, n2, d2, Members(restored, conv), n1, d1, Members(orig, conv))
				}
			}

			ro := applyLog(t, m, orig, 151, log[150:])
			rr := applyLog(t, m, restored, 151, log[150:])
			for i := range ro {
				if !reflect.DeepEqual(ro[i], rr[i]) {
					t.Fatalf("command %d after restore: result %+v, original replica got %+v", i, rr[i], ro[i])
				}
			}
			requireSameState(t, "original vs restored after the same continuation", snapshotBytes(t, orig), snapshotBytes(t, restored))
		})
	}
}

func TestSnapshotEmpty(t *testing.T) {
	kv := NewMemKV()
	snap := snapshotBytes(t, kv)
	if want := append(bytes.Clone(snapshotMagic), 0); !bytes.Equal(snap, want) {
		t.Fatalf("empty store snapshot %q, want the header and the end tag %q", snap, want)
	}
	restored := NewMemKV()
	if err := Restore(restored, bytes.NewReader(snap)); err != nil {
		t.Fatalf("Restore(empty snapshot): %v", err)
	}
	requireSameState(t, "empty round trip", snap, snapshotBytes(t, restored))
}

// smallSnapshot is a complete but small state: every bucket has entries.
func smallSnapshot(t *testing.T) []byte {
	t.Helper()
	h := newHarness(t, Config{DedupWindow: 2})
	h.users("alice", "bob")
	h.ok(nick(1, "Al"))
	h.ok(mkGroup("team", 1, 2))
	h.ok(send("g:team", 1, "c1"))
	h.ok(sendTo("d:1:2", 2, 1, "c1"))
	h.ok(ack(1, "phone", "d:1:2", 1))
	h.ok(read(2, "g:team", 1))
	return h.snapshot()
}

func TestRestoreRejects(t *testing.T) {
	good := smallSnapshot(t)
	body := good[len(snapshotMagic):]
	cases := []struct {
		name    string
		stream  []byte
		wantErr string
	}{
		{"empty", nil, "bad header"},
		{"short header", snapshotMagic[:4], "bad header"},
		{"wrong magic", append([]byte("MPIMSNAX\x01"), body...), "bad header"},
		{"wrong version", append([]byte("MPIMSNAP\x02"), body...), "bad header"},
		{"not a snapshot", []byte(strings.Repeat("garbage ", 8)), "bad header"},
		{"header only", snapshotMagic, "truncated"},
		{"missing end tag", good[:len(good)-1], "truncated"},
		{"unknown bucket tag", append(bytes.Clone(snapshotMagic), byte(len(Buckets)+1), 1, 'k', 1, 'v', 0), "unknown bucket"},
		{"record too large", append(bytes.Clone(snapshotMagic), 1, 0xff, 0xff, 0xff, 0xff, 0x0f), "record of"},
		{"bad varint", append(bytes.Clone(snapshotMagic), 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01), "restore"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := Restore(NewMemKV(), bytes.NewReader(tc.stream))
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Restore(%q): error %v, want one mentioning %q", tc.stream, err, tc.wantErr)
			}
		})
	}
}

// TestRestoreTruncated cuts a valid snapshot at every length: each cut must
// be reported as an error, never accepted as a smaller state and never a
// panic (a node whose snapshot transfer was interrupted must notice).
func TestRestoreTruncated(t *testing.T) {
	good := smallSnapshot(t)
	for n := range len(good) {
		func() {
			defer func() {
				if p := recover(); p != nil {
					t.Fatalf("Restore of the first %d of %d bytes panicked: %v", n, len(good), p)
				}
			}()
			if err := Restore(NewMemKV(), bytes.NewReader(good[:n])); err == nil {
				t.Fatalf("Restore accepted the first %d of %d bytes of a snapshot", n, len(good))
			}
		}()
	}
	if err := Restore(NewMemKV(), bytes.NewReader(good)); err != nil {
		t.Fatalf("Restore of the whole snapshot: %v", err)
	}
}

// TestRestoreCorrupted flips bytes of a valid snapshot: Restore may accept
// or refuse the result, but must not panic.
func TestRestoreCorrupted(t *testing.T) {
	good := smallSnapshot(t)
	for i := range good {
		for _, x := range []byte{0x01, 0x80, 0xff} {
			bad := bytes.Clone(good)
			bad[i] ^= x
			func() {
				defer func() {
					if p := recover(); p != nil {
						t.Fatalf("Restore with byte %d xor %#x panicked: %v", i, x, p)
					}
				}()
				_ = Restore(NewMemKV(), bytes.NewReader(bad))
			}()
		}
	}
}

type failingWriter struct{ left int }

func (w *failingWriter) Write(p []byte) (int, error) {
	if len(p) > w.left {
		n := w.left
		w.left = 0
		return n, errDisk
	}
	w.left -= len(p)
	return len(p), nil
}

func TestSnapshotWriteError(t *testing.T) {
	h := newHarness(t, DefaultConfig())
	h.users("alice", "bob")
	h.ok(mkGroup("team", 1, 2))
	for i := range 200 { // larger than bufio's buffer
		h.ok(send("g:team", 1, fmt.Sprintf("c%d", i)))
	}
	size := len(h.snapshot())
	for _, at := range []int{0, 5, 4096, size / 2, size - 1} {
		if err := Snapshot(h.kv, &failingWriter{left: at}); !errors.Is(err, errDisk) {
			t.Errorf("writer failing after %d of %d bytes: Snapshot error %v, want the write error", at, size, err)
		}
	}
}
