package ap

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"mpim/fsm"
	"mpim/internal/redisproc"
)

// errUnreachable is what a peer nobody can reach answers.
var errUnreachable = errors.New("peer unreachable")

// direct reaches other replicators in this process the way apPeers
// reaches other nodes: State counts as the caller's heartbeat, Pull is
// served the log's records as stored and decoded here. It records the
// pulls it makes.
type direct struct {
	mu    sync.Mutex
	nodes map[string]*Replicator
	pulls []string
}

func (d *direct) node(id string) *Replicator {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.nodes[id]
}

func (d *direct) State(_ context.Context, node string, mine Vector) (Vector, error) {
	p := d.node(node)
	if p == nil {
		return Vector{}, errUnreachable
	}
	p.Observe(mine)
	return p.State(), nil
}

func (d *direct) Pull(_ context.Context, node, origin string, after uint64, limit int) ([][]byte, error) {
	p := d.node(node)
	if p == nil {
		return nil, errUnreachable
	}
	d.mu.Lock()
	d.pulls = append(d.pulls, fmt.Sprintf("%s:%s>%d/%d", node, origin, after, limit))
	d.mu.Unlock()
	return p.Entries(origin, after, limit)
}

// checkApplied fails unless a applied exactly origin's entries 1..n, in
// order, each once.
func checkApplied(t *testing.T, who string, a *recorder, origin string, n int) {
	t.Helper()
	var next uint64 = 1
	for _, e := range a.applied() {
		if e.Origin != origin {
			continue
		}
		if e.OSeq != next {
			t.Fatalf("%s applied %s after %s/%d: each entry once, in origin order", who, name(e), origin, next-1)
		}
		next++
	}
	if next-1 != uint64(n) {
		t.Fatalf("%s applied %s's entries up to %d, want %d", who, origin, next-1, n)
	}
}

func submitMany(t *testing.T, r *Replicator, n int) {
	t.Helper()
	var wg sync.WaitGroup
	const writers = 25
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += writers {
				if _, err := r.Submit(testCtx(t), fsm.Command{Send: &fsm.Send{Conv: "g:lab", ID: fmt.Sprint("m", i)}}); err != nil {
					t.Errorf("submit %d: %v", i, err)
				}
			}
		}()
	}
	wg.Wait()
}

// TestAntiEntropy: a node that missed everything (it was down, or its
// Redis link was cut) gets it back by exchanging vectors with a peer and
// pulling, in chunks of pullChunk, with the next chunk on its way while
// one is applied — from the origin or from any peer that holds the
// entries. Pulled entries are applied as late, each once, in order.
func TestAntiEntropy(t *testing.T) {
	const n = 2*pullChunk + 500
	cfg1 := testConfig(t, "n1")
	cfg1.Nodes = []string{"n1", "n2", "n3"}
	peers := &direct{nodes: map[string]*Replicator{}}
	n1 := open(t, cfg1, &recorder{}, peers)
	submitMany(t, n1, n)

	// n2 reaches only n1 and runs one round, now; n3 reaches only n2 and
	// runs its rounds by itself, every 10 ms.
	cfg2 := testConfig(t, "n2")
	cfg2.Nodes = cfg1.Nodes
	to1 := &direct{nodes: map[string]*Replicator{"n1": n1}}
	a2 := &recorder{}
	n2 := open(t, cfg2, a2, to1)
	n2.syncWith("n1")
	n2.flush()
	checkApplied(t, "n2", a2, "n1", n)
	a2.mu.Lock()
	for i, late := range a2.late {
		if !late {
			t.Errorf("n2's batch %d of pulled entries was applied as live: its pushes would skip gateway streams", i)
		}
	}
	a2.mu.Unlock()
	to1.mu.Lock()
	pulls := fmt.Sprint(to1.pulls)
	to1.mu.Unlock()
	if want := fmt.Sprintf("[n1:n1>0/%d n1:n1>%d/%d n1:n1>%d/%d]", pullChunk, pullChunk, pullChunk, 2*pullChunk, pullChunk); pulls != want {
		t.Fatalf("n2's pulls %s, want %s: one exchange pulls everything, in chunks", pulls, want)
	}
	if st := n2.Stats(); st.Pulled != n || st.Applied != n {
		t.Fatalf("n2 counts %d pulled, %d applied; want %d each", st.Pulled, st.Applied, n)
	}

	cfg3 := testConfig(t, "n3")
	cfg3.Nodes, cfg3.AntiEntropy = cfg1.Nodes, 10*time.Millisecond
	a3 := &recorder{}
	n3 := open(t, cfg3, a3, &direct{nodes: map[string]*Replicator{"n2": n2}})
	eventually(t, "n3 pulled and applied n1's entries through n2", func() bool { return n3.Stats().Applied == n })
	checkApplied(t, "n3", a3, "n1", n)

	// An exchange counts as the caller's heartbeat (APState): n1 has heard
	// n2's clock, never n3's, so nothing n1 holds is stable yet.
	n1.mu.Lock()
	heard2, heard3 := n1.water["n2"], n1.water["n3"]
	n1.mu.Unlock()
	if heard2 == 0 || heard3 != 0 || n1.Stable() != 0 {
		t.Fatalf("n1 heard n2 up to %s and n3 up to %s, stable %s; want n2 heard through its exchanges, n3 never, stable 0",
			hlc(heard2), hlc(heard3), hlc(n1.Stable()))
	}
}

// testRedisClient is a client of srv with the node's Redis settings.
func testRedisClient(t *testing.T, srv *redisproc.Server) *redis.Client {
	t.Helper()
	d := 250 * time.Millisecond
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), DialTimeout: d, ReadTimeout: d, WriteTimeout: d,
		MaxRetries: -1, PoolTimeout: d})
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// TestRedisReplication runs two replicators over a private redis-server:
// a write reaches the other node through pub/sub, and n1's heartbeats make
// it stable there. A write made while Redis is down is answered at once;
// with repair on it waits in the outbox and is published again once Redis
// is back, and n2 gets it (through the outbox, or through anti-entropy
// when n2 had not subscribed again yet: pub/sub keeps nothing for a
// subscriber that is not there). With repair off it is dropped.
func TestRedisReplication(t *testing.T) {
	for _, repair := range []bool{true, false} {
		t.Run(fmt.Sprintf("repair=%v", repair), func(t *testing.T) {
			srv := redisproc.ForTest(t)
			n2peers := &direct{nodes: map[string]*Replicator{}} // unreachable for now
			openOn := func(id string, peers Peers) (*Replicator, *recorder) {
				cfg := testConfig(t, id)
				// Anti-entropy runs too (it fills what pub/sub gave to no
				// one), against peers that answer once connected below.
				cfg.Repair, cfg.Heartbeat, cfg.AntiEntropy = repair, 50*time.Millisecond, 100*time.Millisecond
				a := &recorder{}
				r, err := Open(cfg, testRedisClient(t, srv), a.apply, peers)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { r.Close() })
				return r, a
			}
			n1, _ := openOn("n1", &direct{})
			n2, a2 := openOn("n2", n2peers)
			// Subscriptions are made in the background: write until n2
			// hears one (pub/sub delivers nothing to a subscriber not yet
			// there, and no peer answers n2's anti-entropy yet).
			sent := 0
			eventually(t, "n2 heard n1 through Redis", func() bool {
				if n2.Stats().Received > 0 {
					return true
				}
				if _, err := n1.Submit(testCtx(t), fsm.Command{Send: &fsm.Send{Conv: "g:lab", ID: fmt.Sprint("m", sent)}}); err != nil {
					t.Fatal(err)
				}
				sent++
				time.Sleep(20 * time.Millisecond)
				return false
			})
			if repair {
				// What n1 published before n2 had subscribed is a gap that
				// holds n2's later entries pending (causal order): let n2's
				// anti-entropy reach n1 to fill it.
				n2peers.mu.Lock()
				n2peers.nodes["n1"] = n1
				n2peers.mu.Unlock()
			}
			eventually(t, "n2 applied n1's writes", func() bool { return len(a2.applied()) > 0 })
			first := a2.applied()[0]
			eventually(t, "n1's write became stable on n2 (n1's heartbeats)", func() bool { return n2.Stable() >= first.HLC })

			if err := srv.Kill(); err != nil {
				t.Fatal(err)
			}
			published := n1.Stats().Published
			res, err := n1.Submit(testCtx(t), fsm.Command{Send: &fsm.Send{Conv: "g:lab", ID: "while-down"}})
			if err != nil || res.ID == "" {
				t.Fatalf("a write while Redis is down: %v; a node never waits for Redis to answer", err)
			}
			downSeq := n1.State().Vector["n1"]
			if !repair {
				eventually(t, "n1's publish failed", func() bool { return n1.Stats().PublishFailed > 0 })
				if st := n1.Stats(); st.Outbox != 0 {
					t.Fatalf("repair off: %d entries in the outbox, want none", st.Outbox)
				}
				return
			}
			eventually(t, "the failed publish is in n1's outbox", func() bool { return n1.Stats().Outbox > 0 })
			if err := srv.Restart(testCtx(t)); err != nil {
				t.Fatal(err)
			}
			eventually(t, "n1's outbox was published again", func() bool {
				st := n1.Stats()
				return st.Outbox == 0 && st.Published > published
			})
			eventually(t, "n2 got the write made while Redis was down", func() bool {
				return n2.Stats().Applied >= downSeq
			})
			checkApplied(t, "n2", a2, "n1", int(downSeq))
		})
	}
}
