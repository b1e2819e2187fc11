// Package bench is `mpim bench`: an open-loop load generator speaking the
// client protocol over real WebSockets, with HDR-style latency histograms
// for send→ack and send→delivery, references (bare Raft, Redis PUBLISH, a
// Centrifugo server) measured in the same run, an idle-connection memory
// probe and a failover probe. It starts its own cluster with package lab,
// or loads a running one.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"mpim/agent"
	"mpim/lab"
)

// Sentinel errors of package bench.
var (
	// ErrConfig means a Config field is out of range.
	ErrConfig = errors.New("bench: invalid config")
	// ErrSetup means the cluster or the clients could not be set up.
	ErrSetup = errors.New("bench: setup failed")
)

// Config is one `mpim bench` run.
type Config struct {
	// Mode, Nodes, Gateways and Shards shape the cluster bench starts
	// (ignored with Targets).
	Mode     string
	Nodes    int
	Gateways int
	Shards   int
	// Targets are gateway WebSocket URLs of a running lab; empty starts a
	// cluster (gateway rate limits off).
	Targets []string
	// Conns is the number of client connections, each its own user.
	// Senders of them send; the others only receive.
	Conns   int
	Senders int
	// GroupSize 0 sends 1:1 (each sender to another connection's user);
	// otherwise users form groups of this size and senders send to their
	// group, which delivers to every other member.
	GroupSize int
	// Rate is the total sends per second, spread evenly over the senders
	// and scheduled open-loop. 0 runs closed-loop: each sender keeps one
	// send outstanding, like the references.
	Rate float64
	// FindPeak runs closed-loop first, then open-loop at half the peak it
	// measured (the targets' "p99 at half of peak").
	FindPeak bool
	// Warmup is run but not measured; Duration is measured.
	Warmup   time.Duration
	Duration time.Duration
	// MaxOutstanding bounds one open-loop sender's sends awaiting a reply.
	MaxOutstanding int
	// Procs spreads the clients over this many processes (children
	// running `mpim bench worker`); 1 keeps them in this process.
	Procs int
	// References to measure first: "raft", "redis", "centrifugo" (the
	// last needs a centrifugo binary next to Binary or on PATH).
	References []string
	// Idle connects and logs in Conns clients on the first gateway, sends
	// nothing, holds them for Duration and reports the gateway's RSS per
	// connection (own cluster only).
	Idle bool
	// Profile collects CPU and allocation profiles of every node and
	// gateway during the first phase (own cluster only).
	Profile bool
	// Trace, when above 0, has every node and gateway record spans
	// (--spans) and writes the first phase's Trace slowest sends, stage
	// by stage, to trace.md and trace.json (own cluster only).
	Trace int
	// Hosts starts the cluster on an inventory's hosts, through their
	// agents (nil: this machine). The bench's clients stay here.
	Hosts *agent.Inventory
	// Direct starts the cluster without the lab's fault layer: members
	// dial each other directly instead of through its proxies, which live
	// in this process and cost CPU on every hop (own cluster only; no
	// network faults, so not with Failover).
	Direct bool
	// Out is the folder for result.json, result.md, profiles and the
	// lab's data and logs.
	Out string
	// Binary is the mpim executable for lab members and load processes.
	Binary string
	// Command is the command line, recorded in the result.
	Command  string
	Progress io.Writer
	Logger   *slog.Logger
}

// DefaultConfig is `mpim bench` without flags: CP, 3 nodes and 3
// gateways, 64 clients sending 1:1 closed-loop for 10 s.
func DefaultConfig() Config {
	return Config{Mode: "cp", Nodes: 3, Gateways: 3, Shards: 4, Conns: 64, Senders: -1,
		Warmup: 2 * time.Second, Duration: 10 * time.Second, MaxOutstanding: 256, Procs: 1}
}

// Validate reports the first field out of range, naming the flag.
func (c Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(format, args...))
	}
	switch {
	case c.Mode != "cp" && c.Mode != "ap":
		return bad("mode %q: use --mode cp or --mode ap", c.Mode)
	case c.Conns < 1:
		return bad("--conns %d: use at least 1", c.Conns)
	case c.Senders > c.Conns:
		return bad("--senders %d is more than --conns %d", c.Senders, c.Conns)
	case c.Senders == 0 && !c.Idle:
		return bad("--senders 0: nothing would be sent; use --idle to hold idle connections")
	case c.GroupSize == 1 || c.GroupSize < 0 || c.GroupSize > 257:
		return bad("--group-size %d: use 0 (1:1) or 2..257 (a creator and up to 256 members)", c.GroupSize)
	case c.GroupSize > c.Conns:
		return bad("--group-size %d is more than --conns %d", c.GroupSize, c.Conns)
	case c.GroupSize == 0 && c.Conns < 2 && !c.Idle:
		return bad("1:1 sends need --conns of at least 2")
	case c.Rate < 0 || c.Duration <= 0 || c.Warmup < 0:
		return bad("--rate must be ≥ 0 and --duration positive")
	case c.Procs < 1 || c.Procs > c.Conns:
		return bad("--procs %d: use between 1 and --conns", c.Procs)
	case c.MaxOutstanding < 1:
		return bad("--max-outstanding must be at least 1")
	case c.FindPeak && c.Rate > 0:
		return bad("--find-peak finds the rate itself (closed loop, then half the peak); drop --rate")
	case (c.Idle || c.Profile || c.Direct || c.Trace > 0) && len(c.Targets) > 0:
		return bad("--idle, --profile, --trace and --direct need the cluster bench starts itself (no --target)")
	case c.Hosts != nil && len(c.Targets) > 0:
		return bad("--hosts starts a cluster on the hosts; --target names a running one: pick one")
	case c.Hosts != nil && c.Idle:
		return bad("--idle reads the gateway's memory from /proc on this machine; across hosts the gateway is elsewhere")
	case c.Trace < 0 || c.Trace > 1000:
		return bad("--trace %d: trace 1 to 1000 of the slowest sends, or 0 for none", c.Trace)
	}
	for _, r := range c.References {
		if r != "raft" && r != "redis" && r != "centrifugo" {
			return bad("--reference %q: use raft, redis or centrifugo", r)
		}
	}
	return nil
}

func (c Config) senders() int {
	if c.Senders < 0 || c.Idle {
		if c.Idle {
			return 0
		}
		return c.Conns
	}
	return c.Senders
}

func (c Config) progress(format string, args ...any) {
	if c.Progress != nil {
		fmt.Fprintf(c.Progress, "bench: "+format+"\n", args...)
	}
}

// password is every benchmark user's password.
const password = "bench-password"

// Run measures the references, starts (or targets) the cluster, sets up
// the users and runs the load, then writes result.json and result.md to
// cfg.Out.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Out, 0o755); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSetup, err)
	}
	res := &Result{Command: cfg.Command, Started: time.Now(), Host: newHost()}
	res.Cluster = ClusterInfo{Mode: cfg.Mode, Nodes: cfg.Nodes, Gateways: cfg.Gateways, Shards: cfg.Shards, Targets: cfg.Targets, Direct: cfg.Direct}
	if cfg.Hosts != nil {
		for _, h := range cfg.Hosts.Hosts {
			res.Cluster.Hosts = append(res.Cluster.Hosts, h.Name)
		}
	}
	res.Load = LoadInfo{Conns: cfg.Conns, Senders: cfg.senders(), GroupSize: cfg.GroupSize, Procs: cfg.Procs,
		Warmup: cfg.Warmup.Seconds(), Duration: cfg.Duration.Seconds()}
	defer func() { res.Host.LoadEnd = loadAvg() }()

	// References first, while no cluster runs: they must not share the
	// cores with it. A missing centrifugo binary fails before any of them.
	var centrifugo string
	if slices.Contains(cfg.References, "centrifugo") {
		var err error
		if centrifugo, err = CentrifugoBinary(cfg.Binary); err != nil {
			return nil, fmt.Errorf("%w: reference centrifugo: %w", ErrSetup, err)
		}
	}
	for _, kind := range cfg.References {
		clients := max(cfg.senders(), 1)
		cfg.progress("reference %s: %d clients for %v", kind, clients, cfg.Warmup+cfg.Duration)
		dir := filepath.Join(cfg.Out, "reference-"+kind)
		var ref *Reference
		var err error
		switch kind {
		case "raft":
			ref, err = RaftReference(ctx, dir, clients, cfg.Warmup, cfg.Duration)
		case "redis":
			ref, err = RedisReference(ctx, dir, clients, cfg.Warmup, cfg.Duration)
		case "centrifugo":
			ref, err = CentrifugoReference(ctx, centrifugo, dir, clients, cfg.Warmup, cfg.Duration)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: reference %s: %v", ErrSetup, kind, err)
		}
		os.RemoveAll(dir)
		cfg.progress("reference %s: %.0f ops/s, p50 %.2f ms, p99 %.2f ms, %d errors", kind, ref.OpsPerS, ref.Latency.P50, ref.Latency.P99, ref.Errors)
		res.References = append(res.References, ref)
	}

	var l *lab.Lab
	targets := cfg.Targets
	if len(targets) == 0 {
		var err error
		if l, err = startLab(ctx, cfg); err != nil {
			return nil, err
		}
		defer l.Close()
		for _, m := range l.Members() {
			if m.Kind == lab.KindGateway {
				targets = append(targets, m.WS)
			}
		}
		res.Cluster.Targets = targets
		res.Cluster.Own = true
	}
	if cfg.Idle {
		targets = targets[:1]
	}
	plan := planUsers(cfg, targets)
	cfg.progress("registering %d users", len(plan))
	if err := setupUsers(ctx, cfg, plan, targets); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSetup, err)
	}
	var gwPID int
	var rssBefore uint64
	if cfg.Idle && l != nil {
		m, _ := l.Member("g1")
		gwPID = m.PID
		rssBefore = rssKiB(gwPID)
	}
	cfg.progress("connecting %d clients in %d process(es)", len(plan), cfg.Procs)
	procs, err := startProcs(ctx, cfg, plan)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSetup, err)
	}
	defer func() {
		for _, p := range procs {
			p.close()
		}
	}()

	if cfg.Idle {
		res.Idle = holdIdle(ctx, cfg, l, gwPID, rssBefore)
		if cfg.Profile {
			res.Profiles = heapProfile(ctx, cfg, l, "g1")
		}
		return res, res.write(cfg.Out)
	}

	senders := cfg.senders()
	var phases []Phase
	if cfg.FindPeak || cfg.Rate == 0 {
		phases = append(phases, Phase{ID: 1, Warmup: cfg.Warmup, Duration: cfg.Duration, Rate: 0})
	}
	if cfg.Rate > 0 {
		phases = append(phases, Phase{ID: len(phases) + 1, Warmup: cfg.Warmup, Duration: cfg.Duration, Rate: cfg.Rate / float64(senders)})
	}
	for i := 0; i < len(phases); i++ {
		ph := phases[i]
		ph.MaxOutstanding, ph.Drain = cfg.MaxOutstanding, 5*time.Second
		if i == 0 {
			ph.Slowest = cfg.Trace
		}
		ph.Start = time.Now().Add(500 * time.Millisecond)
		var profiles []string
		var profWG sync.WaitGroup
		if cfg.Profile && i == 0 && l != nil {
			profWG.Go(func() { profiles = collectProfiles(ctx, cfg, l, ph.Start.Add(ph.Warmup), ph.Duration) })
		}
		pr, err := runPhase(ctx, cfg, procs, ph)
		profWG.Wait()
		res.Profiles = append(res.Profiles, profiles...)
		if err != nil {
			return nil, err
		}
		pr.OfferedRate = ph.Rate * float64(senders)
		pr.Name = "closed loop"
		if ph.Rate > 0 {
			pr.Name = fmt.Sprintf("open loop at %.0f sends/s", pr.OfferedRate)
		}
		res.Phases = append(res.Phases, pr)
		if i == 0 && cfg.Trace > 0 && l != nil {
			path, err := traceSlowest(ctx, l, pr.Slowest, cfg.Out)
			if err != nil {
				return nil, fmt.Errorf("%w: trace: %v", ErrSetup, err)
			}
			res.Trace = path
			cfg.progress("the %d slowest sends, stage by stage: %s", len(pr.Slowest), path)
		}
		if cfg.FindPeak && i == 0 && pr.OpsPerS > 0 && cfg.Rate == 0 {
			half := pr.OpsPerS / 2
			phases = append(phases, Phase{ID: 2, Warmup: cfg.Warmup, Duration: cfg.Duration, Rate: half / float64(senders)})
			cfg.progress("peak %.0f sends/s; now open loop at half of it, %.0f sends/s", pr.OpsPerS, half)
		}
	}
	res.ratios()
	return res, res.write(cfg.Out)
}

// startLab starts the cluster: the lab's processes with rate limits off.
func startLab(ctx context.Context, cfg Config) (*lab.Lab, error) {
	lc := lab.DefaultConfig()
	lc.Mode, lc.Nodes, lc.Gateways, lc.Shards = cfg.Mode, cfg.Nodes, cfg.Gateways, cfg.Shards
	lc.Data, lc.HTTP, lc.StateFile, lc.BcryptCost = filepath.Join(cfg.Out, "lab"), "127.0.0.1:0", "-", 4
	lc.Binary, lc.Logger = cfg.Binary, cfg.Logger
	lc.NoFaultLayer = cfg.Direct
	lc.Hosts = cfg.Hosts
	lc.Args = func(member string, args []string) []string {
		if cfg.Trace > 0 && (strings.HasPrefix(member, "g") || strings.HasPrefix(member, "n")) {
			args = append(args, "--spans", strconv.Itoa(spanRing))
		}
		if strings.HasPrefix(member, "g") {
			// The load comes from one address and wants every limit off.
			return append(args, "--rate-limit", "0", "--max-conns", "0", "--max-conns-per-ip", "0", "--typing-interval", "0s")
		}
		return args
	}
	l, err := lab.New(lc)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	layer := "through the lab's fault layer"
	if cfg.Direct {
		layer = "without the fault layer"
	}
	cfg.progress("starting a %s cluster: %d nodes, %d gateways, %d shards, %s (data and logs in %s)", cfg.Mode, cfg.Nodes, cfg.Gateways, cfg.Shards, layer, lc.Data)
	upCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := l.Up(upCtx); err != nil {
		return nil, fmt.Errorf("%w: lab: %v", ErrSetup, err)
	}
	return l, nil
}

// planUsers names the users, places them on gateways round-robin and
// decides who sends to whom.
func planUsers(cfg Config, targets []string) []userPlan {
	run := strconv.FormatInt(time.Now().UnixNano()/1e6%(36*36*36*36*36), 36)
	senders := cfg.senders()
	plan := make([]userPlan, cfg.Conns)
	for i := range plan {
		plan[i] = userPlan{User: fmt.Sprintf("b%s-%d", run, i), Gateway: targets[i%len(targets)],
			Send: senders > 0 && (i*senders)%cfg.Conns < senders}
	}
	for i := range plan {
		if cfg.GroupSize > 0 {
			plan[i].Group = fmt.Sprintf("b%s-g%d", run, i/cfg.GroupSize)
		} else {
			// Half the clients away: with several gateways, mostly another one.
			plan[i].To = plan[(i+cfg.Conns/2)%cfg.Conns].User
		}
	}
	if cfg.GroupSize > 0 {
		// A trailing partial group joins the previous one.
		full := cfg.Conns / cfg.GroupSize
		for i := full * cfg.GroupSize; i < cfg.Conns; i++ {
			plan[i].Group = plan[(full-1)*cfg.GroupSize].Group
		}
	}
	return plan
}

// setupConnFor is how long a setup connection registers users before the
// next one takes over, below the gateway's login timeout (10 s).
const setupConnFor = 5 * time.Second

// setupUsers registers every user, then creates every group with its
// members.
func setupUsers(ctx context.Context, cfg Config, plan []userPlan, targets []string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	var prog progress
	parallel := min(setupParallel, len(plan))
	errs := make([]error, parallel)
	var wg sync.WaitGroup
	for w := range parallel {
		wg.Go(func() {
			var c *conn
			var opened time.Time
			defer func() {
				if c != nil {
					c.close()
				}
			}()
			for i := w; i < len(plan); i += parallel {
				// A gateway closes a connection that has not logged in
				// within its login timeout (10 s): registering thousands
				// of users takes longer, so each connection registers for
				// setupConnFor and the next one goes on.
				if c == nil || time.Since(opened) > setupConnFor {
					if c != nil {
						c.close()
					}
					var err error
					if c, err = dial(ctx, targets[w%len(targets)], "setup", &prog); err != nil {
						c, errs[w] = nil, err
						return
					}
					opened = time.Now()
				}
				// Names are unique to this run: a conflict is an earlier
				// attempt of ours that timed out but was applied.
				if f, err := c.callRetry(ctx, "register", map[string]any{"user": plan[i].User, "password": password}); err != nil && !isCode(f, "conflict") {
					errs[w] = err
					return
				}
			}
		})
	}
	wg.Wait()
	if err := firstErr(errs); err != nil {
		return err
	}
	groups := map[string][]string{}
	var names []string
	for _, u := range plan {
		if u.Group != "" {
			if _, ok := groups[u.Group]; !ok {
				names = append(names, u.Group)
			}
			groups[u.Group] = append(groups[u.Group], u.User)
		}
	}
	if len(names) > 0 {
		cfg.progress("creating %d groups of %d", len(names), cfg.GroupSize)
	}
	errs = make([]error, len(names))
	sem := make(chan struct{}, setupParallel)
	for gi, g := range names {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			members := groups[g]
			c, err := dial(ctx, targets[gi%len(targets)], members[0], &prog)
			if err != nil {
				errs[gi] = err
				return
			}
			defer c.close()
			if _, err = c.callRetry(ctx, "login", map[string]any{"user": members[0], "password": password, "device": "setup"}); err == nil {
				var f inFrame
				if f, err = c.callRetry(ctx, "group_create", map[string]any{"group": g, "members": members[1:]}); isCode(f, "conflict") {
					err = nil
				}
			}
			errs[gi] = err
		})
	}
	wg.Wait()
	return firstErr(errs)
}

// startProcs splits the plan over cfg.Procs load processes and connects
// every client.
func startProcs(ctx context.Context, cfg Config, plan []userPlan) ([]loadProc, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	procs := make([]loadProc, cfg.Procs)
	errs := make([]error, cfg.Procs)
	var wg sync.WaitGroup
	for i := range cfg.Procs {
		lo, hi := i*len(plan)/cfg.Procs, (i+1)*len(plan)/cfg.Procs
		wp := workerPlan{Users: plan[lo:hi], Password: password, Device: "bench"}
		wg.Go(func() {
			if cfg.Procs == 1 {
				p, err := startLocal(ctx, wp)
				if err == nil {
					procs[i] = p
				}
				errs[i] = err
				return
			}
			p, err := startChild(ctx, cfg.Binary, wp)
			if err == nil {
				procs[i] = p
			}
			errs[i] = err
		})
	}
	wg.Wait()
	if err := firstErr(errs); err != nil {
		for _, p := range procs {
			if p != nil {
				p.close()
			}
		}
		return nil, err
	}
	return procs, nil
}

// runPhase runs one phase on every load process, printing a progress
// line every second, and merges what they measured.
func runPhase(ctx context.Context, cfg Config, procs []loadProc, ph Phase) (PhaseResult, error) {
	loop := "closed loop"
	if ph.Rate > 0 {
		loop = fmt.Sprintf("open loop, %.0f sends/s", ph.Rate*float64(cfg.senders()))
	}
	cfg.progress("phase %d: %s, %v warm-up + %v measured", ph.ID, loop, ph.Warmup, ph.Duration)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { printProgress(cfg, procs, ph, stop) })
	stats := make([]*phaseStats, len(procs))
	errs := make([]error, len(procs))
	var pwg sync.WaitGroup
	for i, p := range procs {
		pwg.Go(func() { stats[i], errs[i] = p.runPhase(ctx, ph) })
	}
	pwg.Wait()
	close(stop)
	wg.Wait()
	if err := firstErr(errs); err != nil {
		return PhaseResult{}, err
	}
	total := newPhaseStats(ph.ID)
	total.keepSlowest = ph.Slowest
	for _, s := range stats {
		total.merge(s)
	}
	pr := phaseResult(cfg, ph, total)
	pr.Slowest = total.Slowest
	return pr, nil
}

func printProgress(cfg Config, procs []loadProc, ph Phase, stop chan struct{}) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var last Counts
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			var c Counts
			for _, p := range procs {
				pc := p.counts()
				c.Sent += pc.Sent
				c.Acked += pc.Acked
				c.Delivered += pc.Delivered
				c.Errors += pc.Errors
			}
			stage := "measuring"
			switch {
			case now.Before(ph.Start.Add(ph.Warmup)):
				stage = "warm-up"
			case now.After(ph.Start.Add(ph.Warmup + ph.Duration)):
				stage = "draining"
			}
			cfg.progress("phase %d %-9s sent %7d/s  acked %7d/s  delivered %8d/s  errors %d",
				ph.ID, stage, c.Sent-last.Sent, c.Acked-last.Acked, c.Delivered-last.Delivered, c.Errors)
			last = c
		}
	}
}

// phaseResult turns merged stats into the reported numbers.
func phaseResult(cfg Config, ph Phase, st *phaseStats) PhaseResult {
	d := ph.Duration.Seconds()
	perSend := uint64(1)
	if cfg.GroupSize > 0 {
		perSend = uint64(cfg.GroupSize - 1)
	}
	pr := PhaseResult{Phase: ph.ID, Loop: "closed", Duration: d, Sent: st.Sent, OK: st.OK, Skipped: st.Skipped,
		Errors: cloneErrors(st.Errors), OpsPerS: round1(float64(st.OK) / d), Deliveries: st.Deliveries,
		ExpectedDeliveries: st.OK * perSend, DuplicatePushes: st.Dupes, DeliveriesPerS: round1(float64(st.Deliveries) / d),
		Ack: st.Ack.Summary(), Delivery: st.Delivery.Summary(), AckHist: st.Ack}
	if ph.Rate > 0 {
		pr.Loop = "open"
	}
	return pr
}

func round1(v float64) float64 { return math.Round(v*10) / 10 }

// holdIdle keeps the idle clients connected for cfg.Duration and measures
// the gateway's RSS.
func holdIdle(ctx context.Context, cfg Config, l *lab.Lab, pid int, before uint64) *IdleResult {
	cfg.progress("holding %d idle connections for %v", cfg.Conns, cfg.Duration)
	sleepCtx(ctx, cfg.Duration)
	after := rssKiB(pid)
	r := &IdleResult{Conns: cfg.Conns, GatewayRSSBeforeKiB: before, GatewayRSSAfterKiB: after}
	perConn := func(rss uint64) float64 {
		if rss <= before {
			return 0
		}
		return math.Round(float64(rss-before)/float64(cfg.Conns)*100) / 100
	}
	r.PerConnKiB = perConn(after)
	cfg.progress("gateway g1 RSS %d KiB before, %d KiB with %d connections: %.2f KiB each", before, after, cfg.Conns, r.PerConnKiB)
	// A long-running gateway collects at least every two minutes (the
	// runtime's forced GC), which also shrinks the stacks that logins grew;
	// two collections now (the heap profile's gc=1) show that steady state.
	if l != nil {
		for range 2 {
			heapGC(ctx, l, "g1")
		}
		sleepCtx(ctx, 2*time.Second)
		r.GatewayRSSAfterGCKiB = rssKiB(pid)
		r.PerConnAfterGCKiB = perConn(r.GatewayRSSAfterGCKiB)
		cfg.progress("after two garbage collections: %d KiB, %.2f KiB each", r.GatewayRSSAfterGCKiB, r.PerConnAfterGCKiB)
	}
	return r
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
