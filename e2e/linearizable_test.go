package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"mpim/chaos/check"
	"mpim/chaos/runner"
	"mpim/client"
)

// TestCPLinearizable drives concurrent clients — sends and linearizable
// reads on three group conversations, through all three gateways — across
// a partition that cuts the leader off, and checks every conversation's
// history with porcupine. The safe cluster must pass; each unsafe switch
// must be caught, so that the checker is shown to find real bugs.
func TestCPLinearizable(t *testing.T) {
	for _, tc := range []struct {
		unsafe []string
		want   bool
	}{
		{nil, true},
		{[]string{"ack-before-commit"}, false},
		{[]string{"local-linearizable"}, false},
	} {
		name := "safe"
		if tc.unsafe != nil {
			name = tc.unsafe[0]
		}
		t.Run(name, func(t *testing.T) {
			c := startLab(t, labOpts{nodes: 3, gateways: 3, unsafe: tc.unsafe,
				gatewayArgs: []string{"--rate-limit", "0", "--call-timeout", "2s"}})
			ops, cut, heal := runWorkload(t, c)
			v := check.Linearizable(ops, 30*time.Second)
			// A history in which every op failed is trivially
			// linearizable: the check means something only with ops that
			// succeeded, and some of them while the leader was cut off.
			sends, reads, okSends, okReads := 0, 0, 0, 0
			for _, op := range ops {
				inside := op.Status == check.StatusOK && !op.Call.Before(cut) && !op.Return.After(heal)
				if op.Kind == check.KindSend {
					sends++
					if inside {
						okSends++
					}
				} else {
					reads++
					if inside {
						okReads++
					}
				}
			}
			t.Logf("%d sends, %d reads (%d and %d ok inside the partition): linearizable=%v bad=%v", sends, reads, okSends, okReads, v.Linearizable, v.Bad)
			if okSends < 10 || okReads < 5 {
				t.Fatalf("only %d sends and %d reads succeeded inside the partition window: want at least 10 and 5 for the check to mean something", okSends, okReads)
			}
			if v.Linearizable != tc.want {
				path := filepath.Join(os.TempDir(), fmt.Sprintf("mpim-%s-%s.html", t.Name()[len("TestCPLinearizable/"):], time.Now().Format("150405")))
				check.Visualize(ops, 30*time.Second, path)
				t.Fatalf("linearizable = %v, want %v (per conversation: %v); porcupine's view: %s", v.Linearizable, tc.want, v.Convs, path)
			}
		})
	}
}

// runWorkload runs six client processes (two per gateway) for about five
// seconds with the leader cut off in the middle, then heals and reads
// every conversation once more through each gateway. It returns the
// history and when the partition began and was healed.
func runWorkload(t *testing.T, c *cluster) (ops []check.Op, cut, heal time.Time) {
	t.Helper()
	users := []string{"u1", "u2", "u3", "u4", "u5", "u6"}
	for _, u := range users {
		c.register("g1", u)
	}
	owner := c.login("g1", "u1", "setup")
	rooms := []string{"r1", "r2", "r3"}
	for _, r := range rooms {
		// With ack-before-commit a registration is acknowledged before it
		// commits, so the setup may briefly not find a user: retry.
		eventually(t, 10*time.Second, "create room "+r, func() bool {
			_, err := owner.GroupCreate(ctxFor(t, 10*time.Second), r, users[1:])
			if err != nil && client.ErrorCode(err) != "not_found" {
				t.Fatalf("create room %s: %v", r, err)
			}
			return err == nil
		})
	}
	var mu sync.Mutex
	record := func(op check.Op) {
		mu.Lock()
		ops = append(ops, op)
		mu.Unlock()
	}
	var nextProc int
	newProc := func() int {
		mu.Lock()
		defer mu.Unlock()
		nextProc++
		return nextProc
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i, u := range users {
		gw := fmt.Sprintf("g%d", i%3+1)
		conn := c.login(gw, u, "w")
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(i), 7))
			proc := newProc()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				case <-time.After(time.Duration(20+rng.IntN(30)) * time.Millisecond):
				}
				room := rooms[rng.IntN(len(rooms))]
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				op := check.Op{Process: proc, Conv: "g:" + room, Call: time.Now()}
				if rng.IntN(10) < 6 {
					op.Kind, op.Cmid = check.KindSend, fmt.Sprintf("%s-%d", u, n)
					r, err := conn.Send(ctx, client.SendArgs{Group: room, Text: op.Cmid, Cmid: op.Cmid})
					op.Return = time.Now()
					op.Status, op.Seq = runner.Outcome(err), r.Seq
				} else {
					op.Kind = check.KindRead
					h, err := conn.History(ctx, client.HistoryArgs{Conv: op.Conv, Limit: 1000})
					op.Return = time.Now()
					op.Status = runner.Outcome(err)
					if err != nil && op.Status == check.StatusInfo {
						op.Status = check.StatusFail // a read has no effect
					}
					for _, m := range h.Messages {
						op.Read = append(op.Read, m.Cmid)
					}
				}
				cancel()
				record(op)
				if op.Status == check.StatusInfo {
					proc = newProc() // Jepsen: a process whose op is unknown is retired
				}
			}
		}()
	}
	time.Sleep(1500 * time.Millisecond)
	leader := c.colocatedLeader()
	// A client on the leader's side, logged in beforehand, sends a burst
	// the moment the leader is cut off: the window in which a leader that
	// has not yet noticed may answer (and an unsafe one acknowledges).
	burst := c.login("g"+strings.TrimPrefix(leader, "n"), users[0], "burst")
	cut = time.Now()
	c.apply("partition isolate:" + leader)
	var bw sync.WaitGroup
	for b := 0; b < 8; b++ {
		bw.Add(1)
		go func() {
			defer bw.Done()
			proc := newProc()
			cmid := fmt.Sprintf("burst-%d", b)
			op := check.Op{Process: proc, Kind: check.KindSend, Conv: "g:" + rooms[b%len(rooms)], Cmid: cmid, Call: time.Now()}
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			r, err := burst.Send(ctx, client.SendArgs{Group: rooms[b%len(rooms)], Text: cmid, Cmid: cmid})
			cancel()
			op.Return, op.Status, op.Seq = time.Now(), runner.Outcome(err), r.Seq
			record(op)
		}()
	}
	bw.Wait()
	time.Sleep(3 * time.Second)
	c.apply("heal")
	heal = time.Now()
	time.Sleep(1500 * time.Millisecond)
	close(stop)
	wg.Wait()
	// Final reads, once everything has healed, through every gateway: each
	// retried until it succeeds (a read has no effect, so a failed attempt
	// is simply not part of the history).
	for g := 1; g <= 3; g++ {
		conn := c.login(fmt.Sprintf("g%d", g), "u1", fmt.Sprint("final", g))
		proc := newProc()
		for _, r := range rooms {
			eventually(t, 15*time.Second, fmt.Sprintf("a final read of %s through g%d", r, g), func() bool {
				op := check.Op{Process: proc, Kind: check.KindRead, Conv: "g:" + r, Call: time.Now()}
				h, err := conn.History(ctxFor(t, 10*time.Second), client.HistoryArgs{Conv: op.Conv, Limit: 1000})
				op.Return, op.Status = time.Now(), runner.Outcome(err)
				if err != nil {
					t.Logf("final read of %s through g%d: %v (retrying)", r, g, err)
					return false
				}
				for _, m := range h.Messages {
					op.Read = append(op.Read, m.Cmid)
				}
				record(op)
				return true
			})
		}
	}
	return ops, cut, heal
}
