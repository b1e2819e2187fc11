// Package runner is the chaos harness's experiment runner (`mpim chaos
// run`). It sits above the lab and uses the layers below it: the fault
// vocabulary, the checkers and the scenario files (chaos/fault,
// chaos/check, chaos/scenario). It starts a lab for a scenario,
// drives a workload of real WebSocket clients through it while the
// scenario's faults are applied, records a Jepsen-style history, heals,
// reads every replica and client, checks the history (package check) and
// writes a report that scripts and teachers read.
package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"mpim/agent"
	"mpim/chaos/check"
	"mpim/chaos/fault"
	"mpim/chaos/scenario"
	"mpim/client"
	"mpim/internal/convid"
	"mpim/lab"
)

// password of every workload user.
const password = "chaos-password"

// detection is how long after a fault starts the workload's clients are
// given to notice it before availability counts against the fault window
// (a documented detection window, as etcd's robustness tests do).
const detection = 2 * time.Second

// ErrSetup marks failures to set the run up (exit code 2).
var ErrSetup = errors.New("chaos: setup")

// Config is one run: a scenario in one mode.
type Config struct {
	Scenario *scenario.Scenario
	// Mode is "cp" or "ap"; APRepair applies to AP.
	Mode     string
	APRepair bool
	Seed     uint64
	// Out is the folder for report.json, report.md, history.jsonl.
	Out string
	// Binary is the mpim executable the lab starts (default: this one).
	Binary string
	// Command is how to rerun this exact run, stated in the report.
	Command string
	// Net is the lab's fault-layer backend (lab.NetProxy or lab.NetNS).
	Net string
	// Hosts spreads the lab over an inventory's hosts (nil: this machine).
	Hosts    *agent.Inventory
	Progress io.Writer
	Logger   *slog.Logger
}

// ModeKey is the key of the scenario's expectations for this run.
func (c Config) ModeKey() string {
	if c.Mode == "ap" && !c.APRepair {
		return "ap-norepair"
	}
	return c.Mode
}

func (c Config) progress(format string, args ...any) {
	if c.Progress != nil {
		fmt.Fprintf(c.Progress, "[%s %s] %s\n", c.Scenario.Name, c.ModeKey(), fmt.Sprintf(format, args...))
	}
}

// Run runs one scenario in one mode and writes its report. The report's
// verdict says whether every expectation held; an error means the run
// could not be made (setup).
func Run(ctx context.Context, cfg Config) (*Report, error) {
	sc := cfg.Scenario
	if err := os.MkdirAll(cfg.Out, 0o755); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSetup, err)
	}
	lc := lab.DefaultConfig()
	lc.Mode, lc.APRepair = cfg.Mode, cfg.APRepair
	lc.Nodes, lc.Gateways, lc.Shards = sc.Cluster.Nodes, sc.Cluster.Gateways, sc.Cluster.Shards
	lc.Data, lc.HTTP, lc.StateFile, lc.BcryptCost = filepath.Join(cfg.Out, "lab"), "127.0.0.1:0", "-", 4
	lc.Binary, lc.Logger = cfg.Binary, cfg.Logger
	if cfg.Net != "" {
		lc.Net = cfg.Net
	}
	lc.Hosts = cfg.Hosts
	if cfg.Mode == "cp" {
		lc.Unsafe = sc.Unsafe
	}
	lc.Args = func(member string, args []string) []string {
		if strings.HasPrefix(member, "g") {
			return append(args, "--rate-limit", "0", "--call-timeout", "3s")
		}
		return args
	}
	l, err := lab.New(lc)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSetup, err)
	}
	upCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
	err = l.Up(upCtx)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("%w: lab: %v", ErrSetup, err)
	}
	defer l.Close()
	cfg.progress("lab up: %d nodes, %d gateways (%s)", lc.Nodes, lc.Gateways, l.Dashboard())
	r := &runner{cfg: cfg, lab: l, rec: &recorder{}, rng: rand.New(rand.NewPCG(cfg.Seed, 1)), abort: make(chan struct{})}
	if err := r.setup(ctx); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSetup, err)
	}
	r.start = time.Now()
	r.execute(ctx)
	return r.finish(ctx)
}

type runner struct {
	cfg   Config
	lab   *lab.Lab
	rec   *recorder
	rng   *rand.Rand
	users []string
	convs map[string][]string          // user -> conversations
	peers map[string]map[string]string // user -> DM conv -> the other user
	start time.Time

	mu      sync.Mutex
	groups  [][]string // the partition in force (nil: none)
	windows []check.Window
	events  []string
	// heal is the scenario's last step that closed a fault window, and
	// healConverged when the replicas were first seen to agree after it
	// (zero: not seen before the next step or the end of the workload).
	heal, healConverged time.Time
	// refused are the steps the fault layer refused as a whole: the
	// scenario did not happen as written, so the run has no verdict.
	refused []string
	// abort is closed when the run can no longer have a verdict (a
	// refused step), so that it ends at once.
	abort     chan struct{}
	abortOnce sync.Once
	watchers  sync.WaitGroup
}

func (r *runner) gatewayURLs() []string {
	var out []string
	for _, m := range r.lab.Members() {
		if m.Kind == lab.KindGateway {
			out = append(out, m.WS)
		}
	}
	return out
}

// setup registers the users, their groups and DM pairs.
func (r *runner) setup(ctx context.Context) error {
	w := r.cfg.Scenario.Workload
	gws := r.gatewayURLs()
	c, err := client.Dial(ctx, gws[0], client.Options{})
	if err != nil {
		return err
	}
	defer c.Close()
	r.convs, r.peers = map[string][]string{}, map[string]map[string]string{}
	for i := 1; i <= w.Users; i++ {
		u := fmt.Sprintf("u%d", i)
		if _, err := retrying(ctx, func() error { _, err := c.Register(ctx, u, password); return err }); err != nil {
			return fmt.Errorf("register %s: %w", u, err)
		}
		r.users = append(r.users, u)
		r.peers[u] = map[string]string{}
	}
	// DM pairs u1-u2, u3-u4, ...; groups of every user.
	for i := 0; i+1 < len(r.users); i += 2 {
		a, b := r.users[i], r.users[i+1]
		conv := client.DMConv(a, b)
		r.convs[a], r.convs[b] = append(r.convs[a], conv), append(r.convs[b], conv)
		r.peers[a][conv], r.peers[b][conv] = b, a
	}
	if _, err := c.Login(ctx, r.users[0], password, "setup"); err != nil {
		return err
	}
	for g := 1; g <= w.Groups; g++ {
		name := fmt.Sprintf("grp%d", g)
		if _, err := retrying(ctx, func() error { _, err := c.GroupCreate(ctx, name, r.users[1:]); return err }); err != nil {
			return fmt.Errorf("create %s: %w", name, err)
		}
		for _, u := range r.users {
			r.convs[u] = append(r.convs[u], convid.OfGroup(name))
		}
	}
	return nil
}

// retrying retries an operation that may meet a cluster still settling.
func retrying(ctx context.Context, fn func() error) (int, error) {
	var err error
	for i := 0; i < 50; i++ {
		if err = fn(); err == nil || client.ErrorCode(err) == "conflict" {
			return i, nil
		}
		select {
		case <-ctx.Done():
			return i, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return 50, err
}

// sideOf names the partition side the member gw URL's gateway is on.
func (r *runner) sideOf(gwURL string) string {
	name := ""
	for _, m := range r.lab.Members() {
		if m.WS == gwURL {
			name = m.Name
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, g := range r.groups {
		if slices.Contains(g, name) {
			s := slices.Clone(g)
			sort.Strings(s)
			return strings.Join(s, ",")
		}
	}
	return check.NoPartition
}

// execute runs the workload for the scenario's duration while a goroutine
// applies its faults on schedule.
func (r *runner) execute(ctx context.Context) {
	sc := r.cfg.Scenario
	gws := r.gatewayURLs()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	interval := time.Duration(float64(len(r.users)) / max(sc.Workload.Rate, 1) * float64(time.Second))
	for i, u := range r.users {
		order := append(slices.Clone(gws[i%len(gws):]), gws[:i%len(gws)]...)
		w := &worker{user: u, gateways: order, convs: r.convs[u], peers: r.peers[u], rec: r.rec,
			rng: rand.New(rand.NewPCG(r.cfg.Seed, uint64(i+2))), interval: interval, reads: sc.Workload.Reads,
			sideOf: r.sideOf, mode: r.cfg.Mode}
		if err := w.connect(ctx); err != nil {
			r.cfg.progress("worker %s: %v", u, err)
		}
		wg.Add(1)
		go func() { defer wg.Done(); w.run(ctx, stop) }()
	}
	done := make(chan struct{})
	go func() { r.schedule(ctx, stop); close(done) }()
	end := time.After(sc.Duration)
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for running := true; running; {
		select {
		case <-end:
			running = false
		case <-r.abort:
			r.cfg.progress("stopping: this run can have no verdict")
			running = false
		case <-tick.C:
			if r.lab.Lost() != nil {
				r.cfg.progress("stopping: %v", r.lab.Lost())
				running = false
			}
			r.rec.mu.Lock()
			n := len(r.rec.ops)
			r.rec.mu.Unlock()
			r.cfg.progress("%v / %v: %d operations", time.Since(r.start).Round(time.Second), sc.Duration, n)
		}
	}
	close(stop)
	wg.Wait()
	<-done
}

// schedule applies each fault step at its time and keeps the fault
// windows: a window opens with the first fault and closes when a step
// leaves no fault in force.
func (r *runner) schedule(ctx context.Context, stop <-chan struct{}) {
	down := map[string]bool{} // killed or paused members
	network := false
	var open time.Time
	for i, st := range r.cfg.Scenario.Faults {
		select {
		case <-stop:
			r.watchers.Wait()
			return
		case <-time.After(time.Until(r.start.Add(st.At))):
		}
		f, err := r.lab.Apply(ctx, st.Fault)
		now := time.Now()
		r.mu.Lock()
		r.events = append(r.events, fmt.Sprintf("%6.2fs %s", now.Sub(r.start).Seconds(), f))
		if err != nil {
			r.events = append(r.events, fmt.Sprintf("%6.2fs   error: %v", now.Sub(r.start).Seconds(), err))
			if errors.Is(err, lab.ErrUnsupported) {
				r.refused = append(r.refused, fmt.Sprintf("%q: %v", st.Fault, err))
				r.abortOnce.Do(func() { close(r.abort) })
			}
		}
		switch f.Verb {
		case fault.Heal:
			network, r.groups = false, nil
		case fault.Partition:
			network, r.groups = true, f.Groups
		case fault.Oneway, fault.Delay, fault.Loss:
			network = true
		case fault.Kill, fault.Pause:
			down[f.Members[0]] = true
		case fault.Restart, fault.Resume:
			delete(down, f.Members[0])
		}
		active := network || len(down) > 0
		switch {
		case active && open.IsZero():
			open = now
		case !active && !open.IsZero():
			r.windows = append(r.windows, check.Window{Start: open, End: now})
			open = time.Time{}
			r.heal, r.healConverged = now, time.Time{}
			next := r.start.Add(r.cfg.Scenario.Duration)
			if i+1 < len(r.cfg.Scenario.Faults) {
				next = r.start.Add(r.cfg.Scenario.Faults[i+1].At)
			}
			r.watchers.Add(1)
			go func() { defer r.watchers.Done(); r.watchConvergence(ctx, now, next) }()
		}
		r.mu.Unlock()
		r.cfg.progress("%s", f)
	}
	<-stop
	r.watchers.Wait()
	r.mu.Lock()
	if !open.IsZero() {
		r.windows = append(r.windows, check.Window{Start: open, End: time.Now()})
	}
	r.mu.Unlock()
}
