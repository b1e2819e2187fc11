package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"sync"
	"time"

	"mpim/internal/convid"
	"mpim/lab"
	"mpim/node"
)

// collectProfiles takes a CPU profile of every node and gateway for the
// measured window (at most 10 s) starting at from, then an allocation
// profile, into cfg.Out/profiles. It returns the files written.
func collectProfiles(ctx context.Context, cfg Config, l *lab.Lab, from time.Time, window time.Duration) []string {
	dir := filepath.Join(cfg.Out, "profiles")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil
	}
	sleepCtx(ctx, time.Until(from))
	secs := int(min(window, 10*time.Second) / time.Second)
	var mu sync.Mutex
	var files []string
	get := func(url, path string, timeout time.Duration) {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			cfg.progress("profile %s: %v", url, err)
			return
		}
		defer resp.Body.Close()
		f, err := os.Create(path)
		if err != nil {
			return
		}
		defer f.Close()
		if _, err := io.Copy(f, resp.Body); err == nil && resp.StatusCode == http.StatusOK {
			mu.Lock()
			files = append(files, path)
			mu.Unlock()
		}
	}
	// This process too: it holds the load generator and the lab's fault
	// layer (a userspace TCP proxy on every link between members).
	self := filepath.Join(dir, "bench.cpu.pprof")
	if f, err := os.Create(self); err == nil {
		if pprof.StartCPUProfile(f) == nil {
			time.AfterFunc(time.Duration(secs)*time.Second, func() {
				pprof.StopCPUProfile()
				f.Close()
			})
			files = append(files, self)
		} else {
			f.Close()
		}
	}
	var wg sync.WaitGroup
	for _, m := range l.Members() {
		if m.Kind == lab.KindRedis || m.HTTP == "" {
			continue
		}
		wg.Go(func() {
			get(fmt.Sprintf("%sdebug/pprof/profile?seconds=%d", m.HTTP, secs), filepath.Join(dir, m.Name+".cpu.pprof"), time.Duration(secs+10)*time.Second)
			get(m.HTTP+"debug/pprof/allocs", filepath.Join(dir, m.Name+".allocs.pprof"), 10*time.Second)
		})
	}
	wg.Wait()
	slices.Sort(files)
	return files
}

// heapProfile saves one member's in-use heap profile.
func heapProfile(ctx context.Context, cfg Config, l *lab.Lab, member string) []string {
	m, err := l.Member(member)
	if err != nil {
		return nil
	}
	dir := filepath.Join(cfg.Out, "profiles")
	if os.MkdirAll(dir, 0o755) != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var files []string
	// The profile, and its text form, which ends with the runtime's
	// memory statistics (stacks, heap in use, heap released).
	for _, v := range []struct{ query, file string }{{"", ".heap.pprof"}, {"?debug=1", ".heap.txt"}} {
		path := filepath.Join(dir, member+v.file)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, m.HTTP+"debug/pprof/heap"+v.query, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			continue
		}
		f, err := os.Create(path)
		if err == nil {
			if _, err := io.Copy(f, resp.Body); err == nil {
				files = append(files, path)
			}
			f.Close()
		}
		resp.Body.Close()
	}
	return files
}

// heapGC makes a member collect garbage (the heap profile with gc=1).
func heapGC(ctx context.Context, l *lab.Lab, member string) {
	m, err := l.Member(member)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, m.HTTP+"debug/pprof/heap?gc=1", nil)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

// FailoverRes is the failover probe: from isolating the CP leader to the
// first write to shard 0 acknowledged on the majority.
type FailoverRes struct {
	RunsMS   []float64 `json:"runs_ms"`
	MedianMS float64   `json:"median_ms"`
	MinMS    float64   `json:"min_ms"`
	MaxMS    float64   `json:"max_ms"`
}

// Failover starts a CP cluster with colocated leaders and, runs times:
// cuts the leader off (`partition isolate:leader`), sends to a direct
// conversation of shard 0 through a gateway on the majority until a send
// is acknowledged, records the time, heals, and waits for the leaders to
// settle again.
func Failover(ctx context.Context, cfg Config, runs int) (*Result, error) {
	cfg.Mode = "cp"
	if err := os.MkdirAll(cfg.Out, 0o755); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSetup, err)
	}
	res := &Result{Command: cfg.Command, Started: time.Now(), Host: newHost(),
		Cluster: ClusterInfo{Mode: "cp", Nodes: cfg.Nodes, Gateways: cfg.Gateways, Shards: cfg.Shards, Own: true}}
	l, err := startLab(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer l.Close()
	// Two users whose direct conversation lives in shard 0: the state keys
	// it by the pair's uids, so register candidates for b until one fits.
	run := strconv.FormatInt(time.Now().UnixNano()/1e6%(36*36*36*36*36), 36)
	a, b := "f"+run+"-a", ""
	var gws []string
	for _, m := range l.Members() {
		if m.Kind == lab.KindGateway {
			gws = append(gws, m.WS)
		}
	}
	var prog progress
	setup, err := dial(ctx, gws[0], "setup", &prog)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSetup, err)
	}
	register := func(user string) (uint64, error) {
		f, err := setup.call(ctx, "register", map[string]any{"user": user, "password": password})
		if err == nil && f.Error != nil {
			err = fmt.Errorf("register %s: %s: %s", user, f.Error.Code, f.Error.Message)
		}
		var reply struct {
			UID uint64 `json:"uid"`
		}
		if err == nil {
			err = json.Unmarshal(f.raw, &reply)
		}
		return reply.UID, err
	}
	uidA, err := register(a)
	for k := 0; err == nil && b == "" && k < 64; k++ {
		cand := fmt.Sprintf("f%s-b%d", run, k)
		var uid uint64
		if uid, err = register(cand); err == nil && node.ShardOf(convid.DMKey(uidA, uid), cfg.Shards) == 0 {
			b = cand
		}
	}
	setup.close()
	if err == nil && b == "" {
		err = errors.New("no direct conversation in shard 0 after 64 users")
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSetup, err)
	}
	conns := make([]*conn, len(gws))
	for i, gw := range gws {
		if conns[i], err = dial(ctx, gw, a, &prog); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrSetup, err)
		}
		defer conns[i].close()
		if _, err := conns[i].call(ctx, "login", map[string]any{"user": a, "password": password, "device": "g" + strconv.Itoa(i+1)}); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrSetup, err)
		}
	}
	n := 0
	send := func(c *conn, timeout time.Duration) error {
		n++
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		_, err := c.call(ctx, "send", map[string]any{"to": b, "text": "failover probe", "cmid": "f" + strconv.Itoa(n)})
		return err
	}
	f := &FailoverRes{}
	for i := range runs {
		leader, err := settledLeader(ctx, l, cfg.Nodes)
		if err != nil {
			return nil, fmt.Errorf("run %d: %w", i+1, err)
		}
		// A gateway whose first node is not the leader stays on the majority.
		li, _ := strconv.Atoi(leader[1:])
		c := conns[li%len(conns)]
		for range 3 {
			if err := send(c, 5*time.Second); err != nil {
				return nil, fmt.Errorf("run %d: write before the fault: %w", i+1, err)
			}
		}
		if _, err := l.ApplyString(ctx, "partition isolate:leader"); err != nil {
			return nil, err
		}
		cut := time.Now()
		var took time.Duration
		for took == 0 {
			if time.Since(cut) > 30*time.Second {
				return nil, fmt.Errorf("run %d: no write acknowledged on the majority within 30 s of isolating %s", i+1, leader)
			}
			start := time.Now()
			if send(c, 5*time.Second) == nil {
				took = time.Since(cut)
			} else if time.Since(start) < 10*time.Millisecond {
				sleepCtx(ctx, 10*time.Millisecond)
			}
		}
		if _, err := l.ApplyString(ctx, "heal"); err != nil {
			return nil, err
		}
		ms := float64(took.Microseconds()) / 1000
		f.RunsMS = append(f.RunsMS, ms)
		cfg.progress("failover run %d/%d: leader %s isolated, first acknowledged write on the majority after %.0f ms", i+1, runs, leader, ms)
	}
	sorted := slices.Clone(f.RunsMS)
	slices.Sort(sorted)
	f.MinMS, f.MaxMS = sorted[0], sorted[len(sorted)-1]
	if m := len(sorted); m%2 == 1 {
		f.MedianMS = sorted[m/2]
	} else {
		f.MedianMS = (sorted[m/2-1] + sorted[m/2]) / 2
	}
	res.Failover = f
	return res, res.write(cfg.Out)
}

// settledLeader waits (up to 30 s) until one node leads every shard, every
// replica agrees and has applied what it committed, and returns it.
func settledLeader(ctx context.Context, l *lab.Lab, nodes int) (string, error) {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		shards := l.Shards(ctx)
		leader, ok := "", len(shards) == nodes
		for name, ns := range shards {
			if ns.Error != "" || len(ns.Shards) == 0 {
				ok = false
				break
			}
			for _, s := range ns.Shards {
				if leader == "" {
					leader = s.Leader
				}
				if s.Leader != leader || s.Leader == "" || s.AppliedIndex < s.CommitIndex {
					ok = false
				}
				if s.State == "Leader" && name != leader {
					ok = false
				}
			}
		}
		if ok && leader != "" {
			return leader, nil
		}
		sleepCtx(ctx, 100*time.Millisecond)
	}
	return "", fmt.Errorf("bench: the shards' leaders did not settle on one node within 30 s")
}
