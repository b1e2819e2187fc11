package fsm

import (
	"errors"
	"reflect"
	"testing"
)

// TestApplyIndex covers the consistent-index rule: an entry at or below
// the applied index is a replay and changes nothing at all.
func TestApplyIndex(t *testing.T) {
	type step struct {
		index       uint64
		cmd         Command
		wantErr     error  // from Apply itself
		wantApplied uint64 // Applied() afterwards
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{"increasing", []step{
			{1, reg("alice"), nil, 1},
			{2, reg("bob"), nil, 2},
		}},
		{"gaps are fine", []step{
			{5, reg("alice"), nil, 5},
			{9, reg("bob"), nil, 9},
		}},
		{"replay of the last index", []step{
			{1, reg("alice"), nil, 1},
			{1, reg("bob"), ErrApplied, 1},
		}},
		{"replay of an older index", []step{
			{3, reg("alice"), nil, 3},
			{4, reg("bob"), nil, 4},
			{2, reg("carol"), ErrApplied, 4},
		}},
		{"index 0 applies without recording", []step{
			{0, reg("alice"), nil, 0},
			{3, reg("bob"), nil, 3},
			{0, reg("carol"), nil, 3},
			{3, reg("dave"), ErrApplied, 3},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, DefaultConfig())
			if got := Applied(h.kv); got != 0 {
				t.Fatalf("fresh store: applied %d, want 0", got)
			}
			for i, s := range tc.steps {
				before := h.snapshot()
				rs, err := h.m.Apply(h.kv, s.index, []Command{s.cmd})
				if !errors.Is(err, s.wantErr) {
					t.Fatalf("step %d: Apply(index %d) error %v, want %v", i, s.index, err, s.wantErr)
				}
				if got := Applied(h.kv); got != s.wantApplied {
					t.Fatalf("step %d: applied index %d after entry %d, want %d", i, got, s.index, s.wantApplied)
				}
				if s.wantErr != nil {
					if rs != nil {
						t.Fatalf("step %d: replayed entry %d returned results %+v", i, s.index, rs)
					}
					requireSameState(t, "replayed entry", before, h.snapshot())
					if _, ok := UserByName(h.kv, s.cmd.Register.Name); ok {
						t.Fatalf("step %d: replayed entry %d registered %s", i, s.index, s.cmd.Register.Name)
					}
					continue
				}
				if rs[0].Err != nil {
					t.Fatalf("step %d: %s: %v", i, describe(s.cmd), rs[0].Err)
				}
			}
		})
	}
}

// TestApplyReplayLog replays a whole log over its own result, as a node
// restarting from a state that already holds part of the log would: the
// state must be unchanged.
func TestApplyReplayLog(t *testing.T) {
	log := [][]Command{
		{reg("alice"), reg("bob")},
		{mkGroup("team", 1, 2)},
		{send("g:team", 1, "c1"), send("g:team", 2, "c1")},
		{ack(2, "phone", "g:team", 2), read(2, "g:team", 1)},
	}
	m, _ := New(DefaultConfig())
	kv := NewMemKV()
	for i, e := range log {
		if _, err := m.Apply(kv, uint64(i+1), e); err != nil {
			t.Fatalf("entry %d: %v", i+1, err)
		}
	}
	want := snapshotBytes(t, kv)
	for i, e := range log {
		if _, err := m.Apply(kv, uint64(i+1), e); !errors.Is(err, ErrApplied) {
			t.Fatalf("replay of entry %d: error %v, want ErrApplied", i+1, err)
		}
	}
	requireSameState(t, "replayed log", want, snapshotBytes(t, kv))
	if got := MaxSeq(kv, "g:team"); got != 2 {
		t.Fatalf("conversation g:team: max seq %d after replay, want 2", got)
	}
}

func TestApplyBatch(t *testing.T) {
	h := newHarness(t, DefaultConfig())
	rs := h.apply(
		reg("alice"),
		reg("alice"), // refused, but the entry goes on
		Command{},    // no field set
		reg("bob"),
	)
	wantErrs := []error{nil, ErrNameTaken, ErrInvalid, nil}
	for i, r := range rs {
		if !errors.Is(r.Err, wantErrs[i]) {
			t.Fatalf("command %d of the entry: error %v, want %v", i, r.Err, wantErrs[i])
		}
	}
	if rs[3].UID != 2 {
		t.Fatalf("register after refused commands: uid %d, want 2", rs[3].UID)
	}
	if rs := h.apply(); len(rs) != 0 || Applied(h.kv) != 2 {
		t.Fatalf("empty entry: %d results, applied %d; want 0 results and the index recorded", len(rs), Applied(h.kv))
	}
}

// failingTx fails every Put after the first ok ones, to simulate a storage
// failure in the middle of an entry.
type failingTx struct {
	*MemKV
	ok int
}

var errDisk = errors.New("disk on fire")

func (f *failingTx) Put(bucket string, key, value []byte) error {
	if f.ok == 0 {
		return errDisk
	}
	f.ok--
	return f.MemKV.Put(bucket, key, value)
}

func (f *failingTx) Delete(bucket string, key []byte) error {
	if f.ok == 0 {
		return errDisk
	}
	f.ok--
	return f.MemKV.Delete(bucket, key)
}

// TestApplyStorageError checks a failing Tx surfaces as Apply's error, not
// as a domain error in a Result, wherever in the entry it happens.
func TestApplyStorageError(t *testing.T) {
	entry := []Command{
		reg("alice"), reg("bob"), nick(1, "Al"),
		mkGroup("team", 1), joinGroup("team", 2), leaveGroup("team", 2),
		send("g:team", 1, "c1"), sendTo("d:1:2", 1, 2, "c1"),
		ack(1, "phone", "g:team", 1), read(1, "g:team", 1),
	}
	// Count the writes the entry needs, then fail at each of them.
	counter := &failingTx{MemKV: NewMemKV(), ok: 1 << 30}
	m, _ := New(Config{DedupWindow: 1})
	if _, err := m.Apply(counter, 1, entry); err != nil {
		t.Fatalf("entry without faults: %v", err)
	}
	writes := 1<<30 - counter.ok
	for n := range writes {
		tx := &failingTx{MemKV: NewMemKV(), ok: n}
		rs, err := m.Apply(tx, 1, entry)
		if !errors.Is(err, errDisk) {
			t.Fatalf("write %d of %d fails: Apply error %v, want the storage error", n, writes, err)
		}
		if rs != nil {
			t.Fatalf("write %d fails: Apply still returned results", n)
		}
	}
}

func TestEncodeBatch(t *testing.T) {
	cmds := []Command{
		reg("alice"), regUID("bob", 7), nick(1, "Al"),
		mkGroup("team", 1, 2, 3), joinGroup("team", 4), leaveGroup("team", 4),
		sendTo("d:1:7", 1, 7, "c1"),
		ack(1, "phone", "g:team", 3), ackID(1, "", "g:team", "m1"), read(1, "g:team", 2),
	}
	b, err := EncodeBatch(cmds)
	if err != nil {
		t.Fatalf("EncodeBatch: %v", err)
	}
	got, err := DecodeBatch(b)
	if err != nil {
		t.Fatalf("DecodeBatch: %v", err)
	}
	if !reflect.DeepEqual(got, cmds) {
		t.Fatalf("DecodeBatch(EncodeBatch(cmds)) = %+v, want %+v", got, cmds)
	}
	for i, c := range got {
		if c.kind() == "" {
			t.Fatalf("command %d lost its kind in the round trip", i)
		}
	}
	for _, bad := range []string{"", "{", "[{]", `{"register":{}}`} {
		if _, err := DecodeBatch([]byte(bad)); err == nil {
			t.Errorf("DecodeBatch(%q) accepted a malformed entry", bad)
		}
	}
}

// bboltTx behaves like a bbolt write transaction does for values Put as
// nil: until commit they read back as nil, indistinguishable from a missing
// key (bbolt keeps the caller's nil in its in-memory node; see
// etcd-io/bbolt#726).
type bboltTx struct {
	*MemKV
	nilVals map[string]bool
}

func newBboltTx() *bboltTx { return &bboltTx{MemKV: NewMemKV(), nilVals: map[string]bool{}} }

func (b *bboltTx) Put(bucket string, key, value []byte) error {
	b.nilVals[bucket+"\x00"+string(key)] = value == nil
	return b.MemKV.Put(bucket, key, value)
}

func (b *bboltTx) Delete(bucket string, key []byte) error {
	delete(b.nilVals, bucket+"\x00"+string(key))
	return b.MemKV.Delete(bucket, key)
}

func (b *bboltTx) Get(bucket string, key []byte) []byte {
	if b.nilVals[bucket+"\x00"+string(key)] {
		return nil
	}
	return b.MemKV.Get(bucket, key)
}

// TestApplyTxNilValues checks the machine never relies on a Tx telling an
// empty value from a missing key: membership written earlier in the same
// transaction must be visible, on bbolt as on MemKV.
func TestApplyTxNilValues(t *testing.T) {
	m, _ := New(Config{DedupWindow: 5})
	entry := []Command{
		reg("alice"), reg("bob"),
		mkGroup("team", 1, 2), send("g:team", 2, "c1"),
		sendTo("d:1:2", 1, 2, "c1"), send("d:1:2", 2, "c1"),
		leaveGroup("team", 2), ack(1, "phone", "g:team", 1),
	}
	rs, err := m.Apply(newBboltTx(), 1, entry)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	for i, r := range rs {
		if r.Err != nil {
			t.Fatalf("%s in one transaction: %v; a set entry written with an empty value reads as absent", describe(entry[i]), r.Err)
		}
	}
	// A whole generated log gives the same results on both stores.
	g := newLogGen(t, 5, Config{DedupWindow: 5})
	log := g.entries(200)
	want := applyLog(t, m, NewMemKV(), 1, log)
	got := applyLog(t, m, newBboltTx(), 1, log)
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Fatalf("command %d: %+v on a bbolt-like Tx, %+v on MemKV", i, got[i], want[i])
		}
	}
}
