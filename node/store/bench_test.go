package store

import (
	"encoding/binary"
	"fmt"
	"path/filepath"
	"testing"

	"mpim/fsm"
	"mpim/internal/convid"
)

// BenchmarkApplyBatch measures what a replica does per log entry: one
// transaction applying a batch of sends to 64 direct conversations through
// the fsm, recording the index — in memory (CP: the Raft log is the
// durable copy), in a bbolt file without fsync (CP before the in-memory
// state) and with it (AP). Reported per send, so batch sizes compare
// directly.
func BenchmarkApplyBatch(b *testing.B) {
	for _, state := range []string{"mem", "bolt", "bolt-fsync"} {
		for _, batch := range []int{1, 16, 256} {
			b.Run(fmt.Sprintf("state=%s/batch=%d", state, batch), func(b *testing.B) {
				var s interface {
					Update(func(fsm.Tx) error) error
				}
				if state == "mem" {
					s = NewMem()
				} else {
					st, err := Open(filepath.Join(b.TempDir(), "state.db"), Options{NoSync: state == "bolt"})
					if err != nil {
						b.Fatal(err)
					}
					defer st.Close()
					s = st
				}
				m, _ := fsm.New(fsm.DefaultConfig())
				var index uint64
				var users []fsm.Command
				for i := range 128 {
					users = append(users, fsm.Command{Register: &fsm.Register{Name: fmt.Sprintf("u%d", i), PwHash: []byte("h"), Created: 1}})
				}
				index++
				if err := s.Update(func(tx fsm.Tx) error { _, err := m.Apply(tx, index, users); return err }); err != nil {
					b.Fatal(err)
				}
				cmds := make([]fsm.Command, batch)
				n := 0
				b.ReportAllocs()
				for b.Loop() {
					for i := range cmds {
						n++
						a, c := n%64, 64+n%64
						cmds[i] = fsm.Command{Send: &fsm.Send{Conv: convid.DMKey(uint64(a+1), uint64(c+1)), FromUID: uint64(a + 1),
							From: fmt.Sprintf("u%d", a), To: uint64(c + 1), Text: "on my way, see you at 6", Cmid: fmt.Sprint("c", n),
							ID: fmt.Sprint("n1-", n), Ts: int64(n), Origin: "n1"}}
					}
					index++
					var rs []fsm.Result
					err := s.Update(func(tx fsm.Tx) error { var err error; rs, err = m.Apply(tx, index, cmds); return err })
					if err != nil || rs[batch-1].Err != nil {
						b.Fatalf("apply: %v %v", err, rs[batch-1].Err)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/send")
			})
		}
	}
}

// BenchmarkHistoryRead measures a local history read of the last 50
// messages of a conversation holding 10k.
func BenchmarkHistoryRead(b *testing.B) {
	s, err := Open(filepath.Join(b.TempDir(), "state.db"), Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	m, _ := fsm.New(fsm.DefaultConfig())
	index := uint64(1)
	reg := []fsm.Command{{Register: &fsm.Register{Name: "alice", PwHash: []byte("h"), Created: 1}},
		{Register: &fsm.Register{Name: "bob", PwHash: []byte("h"), Created: 1}}}
	if err := s.Update(func(tx fsm.Tx) error { _, err := m.Apply(tx, index, reg); return err }); err != nil {
		b.Fatal(err)
	}
	for k := range 40 {
		cmds := make([]fsm.Command, 250)
		for i := range cmds {
			n := k*250 + i
			cmds[i] = fsm.Command{Send: &fsm.Send{Conv: "d:1:2", FromUID: 1, From: "alice", To: 2, Text: "hello",
				Cmid: fmt.Sprint(n), ID: fmt.Sprint("m", n), Ts: int64(n)}}
		}
		index++
		if err := s.Update(func(tx fsm.Tx) error { _, err := m.Apply(tx, index, cmds); return err }); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		var got []fsm.Message
		s.View(func(tx fsm.Tx) error { got, _ = fsm.Messages(tx, "d:1:2", 0, 0, 50); return nil })
		if len(got) != 50 {
			b.Fatalf("read %d messages, want 50", len(got))
		}
	}
}

// BenchmarkMergeDivergent measures what an AP replica does when a
// partition heals: a group conversation holds 5000 messages written on its
// side, and a batch of the 5000 the other side wrote meanwhile arrives
// (one anti-entropy pull) — each sorting between two of the local ones by
// clock, so the whole tail is renumbered once in the batch. Reported per
// merged message; state file with fsync, as AP runs it.
func BenchmarkMergeDivergent(b *testing.B) {
	const side = 5000
	m, _ := fsm.New(fsm.DefaultConfig())
	send := func(n int, origin string) fsm.Command {
		var order [8]byte
		binary.BigEndian.PutUint64(order[:], uint64(n))
		id := fmt.Sprintf("%s-%d", origin, n)
		return fsm.Command{Send: &fsm.Send{Conv: "g:room", FromUID: 1, From: "u0", Text: "on my way, see you at 6",
			Cmid: id, ID: id, Ts: int64(n), Origin: origin, Order: append(order[:], origin...), OSeq: uint64(n/2 + 1)}}
	}
	for b.Loop() {
		b.StopTimer()
		s, err := Open(filepath.Join(b.TempDir(), "state.db"), Options{})
		if err != nil {
			b.Fatal(err)
		}
		setup := []fsm.Command{
			{Register: &fsm.Register{Name: "u0", PwHash: []byte("h"), UID: 1, Created: 1}},
			{GroupCreate: &fsm.GroupCreate{Group: "room", Creator: 1, Created: 1}},
		}
		var local, remote []fsm.Command
		for n := 0; n < 2*side; n += 2 {
			local = append(local, send(n, "n1"))
			remote = append(remote, send(n+1, "n2"))
		}
		index := uint64(0)
		apply := func(cmds []fsm.Command) {
			index++
			err := s.Update(func(tx fsm.Tx) error { _, err := m.Apply(tx, index, cmds); return err })
			if err != nil {
				b.Fatal(err)
			}
		}
		apply(setup)
		for i := 0; i < side; i += 500 {
			apply(local[i : i+500])
		}
		b.StartTimer()
		apply(remote)
		b.StopTimer()
		var max uint64
		s.View(func(tx fsm.Tx) error { max = fsm.MaxSeq(tx, "g:room"); return nil })
		if max != 2*side {
			b.Fatalf("merged conversation holds %d, want %d", max, 2*side)
		}
		s.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*side), "ns/merged")
}

// BenchmarkApplyAfterRead measures an AP replica's round: a batch of sends
// stamped with order keys (some arriving late, sorting before what is
// there), applied after a reader read the state between rounds, as a node
// serving reads does. reads=none reads nothing; reads=user looks a user up
// (every send looks up its recipient), which copies only the users' tree;
// reads=message reads a message back, so the next round's writes to the
// messages pay the B-trees' copy-on-write.
func BenchmarkApplyAfterRead(b *testing.B) {
	for _, reads := range []string{"none", "user", "message"} {
		b.Run("reads="+reads, func(b *testing.B) {
			s := NewMem()
			m, _ := fsm.New(fsm.DefaultConfig())
			var users []fsm.Command
			for i := range 128 {
				users = append(users, fsm.Command{Register: &fsm.Register{Name: fmt.Sprintf("u%d", i), PwHash: []byte("h"), Created: 1, UID: uint64(i + 1)}})
			}
			if err := s.Update(func(tx fsm.Tx) error { _, err := m.Apply(tx, 0, users); return err }); err != nil {
				b.Fatal(err)
			}
			const batch = 8
			cmds := make([]fsm.Command, batch)
			n := 0
			b.ReportAllocs()
			for b.Loop() {
				for i := range cmds {
					n++
					a, c := n%64, 64+n%64
					hlc := uint64(n) << 16
					if n%4 == 0 {
						hlc -= 3 << 16 // a late entry from another node
					}
					id := fmt.Sprint("n1-", n)
					cmds[i] = fsm.Command{Send: &fsm.Send{Conv: convid.DMKey(uint64(a+1), uint64(c+1)), FromUID: uint64(a + 1),
						From: fmt.Sprintf("u%d", a), To: uint64(c + 1), Text: "on my way, see you at 6", Cmid: fmt.Sprint("c", n),
						ID: id, Ts: int64(n), Origin: "n1", Order: binary.BigEndian.AppendUint64(nil, hlc), OSeq: uint64(n)}}
				}
				var rs []fsm.Result
				err := s.Update(func(tx fsm.Tx) error { var err error; rs, err = m.Apply(tx, 0, cmds); return err })
				if err != nil || rs[batch-1].Err != nil {
					b.Fatalf("apply: %v %v", err, rs[batch-1].Err)
				}
				switch reads {
				case "user":
					s.View(func(tx fsm.Tx) error { _, _ = fsm.UserByName(tx, "u7"); return nil })
				case "message":
					s.View(func(tx fsm.Tx) error { _, _ = fsm.MessageByID(tx, cmds[0].Send.ID); return nil })
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/send")
		})
	}
}
