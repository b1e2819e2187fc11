package cp

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"mpim/fsm"
	"mpim/internal/convid"
)

// addrBook resolves server ids to the benchmark's mux addresses.
type addrBook map[raft.ServerID]raft.ServerAddress

func (a addrBook) ServerAddr(id raft.ServerID) (raft.ServerAddress, error) {
	if addr, ok := a[id]; ok {
		return addr, nil
	}
	return "", fmt.Errorf("unknown server %s", id)
}

// benchCluster opens one shard replicated on three replicas in this
// process — real muxes on loopback, raft-boltdb with fsync, the lab's
// timeouts — and returns the leader once it has committed in its term.
func benchCluster(b *testing.B) *Shard {
	b.Helper()
	ids := []string{"n1", "n2", "n3"}
	book := addrBook{}
	muxes := make([]*Mux, len(ids))
	for i, id := range ids {
		m, err := Listen("127.0.0.1:0", slog.New(slog.DiscardHandler), nil)
		if err != nil {
			b.Fatal(err)
		}
		muxes[i] = m
		book[raft.ServerID(id)] = raft.ServerAddress(m.Addr().String())
	}
	var shards []*Shard
	for i, id := range ids {
		cfg := DefaultConfig()
		cfg.ID, cfg.Dir, cfg.Voters = id, b.TempDir(), ids
		cfg.Logger = slog.New(slog.DiscardHandler)
		s, err := Open(cfg, muxes[i], book, nil)
		if err != nil {
			b.Fatal(err)
		}
		shards = append(shards, s)
	}
	b.Cleanup(func() {
		for _, s := range shards {
			s.Close()
		}
		for _, m := range muxes {
			m.Close()
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, s := range shards {
			if s.IsLeader() && s.readyTerm.Load() == s.r.CurrentTerm() {
				return s
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.Fatal("no leader within 10 s")
	return nil
}

// BenchmarkProposeSend measures the CP commit path below the node's RPCs:
// concurrent proposals of 1:1 sends to one shard, group-committed by the
// batcher into Raft entries (at most MaxInflight in flight), replicated to
// three replicas with fsync, applied to each replica's in-memory state. It
// reports sends per Raft entry: the batching that concurrency buys.
// Compare with mpim bench --reference raft (one entry per operation).
func BenchmarkProposeSend(b *testing.B) {
	for _, clients := range []int{1, 64, 256} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			leader := benchCluster(b)
			ctx := context.Background()
			var users []fsm.Command
			for i := range 128 {
				users = append(users, fsm.Command{Register: &fsm.Register{Name: fmt.Sprintf("u%d", i), PwHash: []byte("h"), Created: 1}})
			}
			for _, c := range users {
				if _, err := leader.Propose(ctx, c); err != nil {
					b.Fatal(err)
				}
			}
			var n atomic.Int64
			first := leader.Status().LastIndex
			b.SetParallelism(max(1, clients/runtime.GOMAXPROCS(0)))
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					k := n.Add(1)
					a, c := k%64, 64+k%64
					cmd := fsm.Command{Send: &fsm.Send{Conv: convid.DMKey(uint64(a+1), uint64(c+1)), FromUID: uint64(a + 1),
						From: fmt.Sprintf("u%d", a), To: uint64(c + 1), Text: "on my way, see you at 6",
						Cmid: fmt.Sprint("c", k), ID: fmt.Sprint("n1-", k), Ts: k, Origin: "n1"}}
					if r, err := leader.Propose(ctx, cmd); err != nil || r.Err != nil {
						b.Errorf("propose: %v %v", err, r.Err)
						return
					}
				}
			})
			b.StopTimer()
			if entries := leader.Status().LastIndex - first; entries > 0 {
				b.ReportMetric(float64(b.N)/float64(entries), "sends/entry")
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sends/s")
		})
	}
}
