package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Result is what one `mpim bench` run measured: result.json, and
// result.md for people.
type Result struct {
	Command    string        `json:"command"`
	Started    time.Time     `json:"started"`
	Host       Host          `json:"host"`
	Cluster    ClusterInfo   `json:"cluster"`
	Load       LoadInfo      `json:"load"`
	References []*Reference  `json:"references,omitempty"`
	Phases     []PhaseResult `json:"phases,omitempty"`
	Idle       *IdleResult   `json:"idle,omitempty"`
	Failover   *FailoverRes  `json:"failover,omitempty"`
	Profiles   []string      `json:"profiles,omitempty"`
	// Trace is the trace.md of the slowest sends (--trace).
	Trace  string      `json:"trace,omitempty"`
	Ratios []RatioLine `json:"ratios,omitempty"`
	Notes  []string    `json:"notes,omitempty"`
}

// ClusterInfo is the cluster under load.
type ClusterInfo struct {
	Mode     string   `json:"mode"`
	Nodes    int      `json:"nodes"`
	Gateways int      `json:"gateways"`
	Shards   int      `json:"shards"`
	Targets  []string `json:"targets"`
	// Own is true when bench started the cluster itself; Direct when it
	// did so without the lab's fault layer (no proxies between members).
	Own    bool `json:"own"`
	Direct bool `json:"direct,omitempty"`
	// Hosts names the inventory's hosts the cluster ran on (--hosts;
	// empty: this machine, with the clients).
	Hosts []string `json:"hosts,omitempty"`
}

// LoadInfo is the shape of the load.
type LoadInfo struct {
	Conns     int     `json:"conns"`
	Senders   int     `json:"senders"`
	GroupSize int     `json:"group_size"`
	Procs     int     `json:"procs"`
	Warmup    float64 `json:"warmup_s"`
	Duration  float64 `json:"duration_s"`
}

// PhaseResult is one measured phase. Latencies are in milliseconds, from
// the send's scheduled time (open loop) or its start (closed loop).
type PhaseResult struct {
	Phase int    `json:"phase"`
	Name  string `json:"name"`
	// Loop is "closed" (each sender waits for its reply) or "open".
	Loop string `json:"loop"`
	// OfferedRate is the open loop's total sends per second.
	OfferedRate float64 `json:"offered_rate,omitempty"`
	Duration    float64 `json:"duration_s"`
	// Sent, OK, Skipped and Errors count the sends scheduled inside the
	// measured window: sent, acknowledged ok, not sent because the sender
	// had MaxOutstanding waiting, and error replies by code ("lost": the
	// connection ended first).
	Sent    uint64            `json:"sent"`
	OK      uint64            `json:"ok"`
	Skipped uint64            `json:"skipped"`
	Errors  map[string]uint64 `json:"errors"`
	// OpsPerS is acknowledged sends per second.
	OpsPerS float64 `json:"ops_per_s"`
	// Deliveries counts message pushes of those sends that recipients
	// received; ExpectedDeliveries is OK × recipients per send. Sends
	// answered "timeout" (outcome unknown) may have been applied and
	// delivered too, so Deliveries can exceed ExpectedDeliveries by up to
	// their number × recipients.
	Deliveries         uint64  `json:"deliveries"`
	ExpectedDeliveries uint64  `json:"expected_deliveries"`
	DeliveriesPerS     float64 `json:"deliveries_per_s"`
	// DuplicatePushes counts pushes of a message id the client already
	// had (clients deduplicate by id; not counted as deliveries).
	DuplicatePushes uint64     `json:"duplicate_pushes"`
	Ack             Summary    `json:"ack_ms"`
	Delivery        Summary    `json:"delivery_ms"`
	AckHist         *Histogram `json:"-"`
	// Slowest are the slowest acknowledged sends (with --trace).
	Slowest []SlowSend `json:"-"`
}

// IdleResult is the idle-connection probe.
type IdleResult struct {
	Conns               int     `json:"conns"`
	GatewayRSSBeforeKiB uint64  `json:"gateway_rss_before_kib"`
	GatewayRSSAfterKiB  uint64  `json:"gateway_rss_after_kib"`
	PerConnKiB          float64 `json:"per_conn_kib"`
	// After two forced garbage collections in the gateway.
	GatewayRSSAfterGCKiB uint64  `json:"gateway_rss_after_gc_kib"`
	PerConnAfterGCKiB    float64 `json:"per_conn_after_gc_kib"`
}

// RatioLine states one result as a ratio to its reference.
type RatioLine struct {
	What      string  `json:"what"`
	Value     float64 `json:"value"`
	Reference string  `json:"reference"`
	RefValue  float64 `json:"reference_value"`
	Ratio     float64 `json:"ratio"`
}

// ratios relates every phase's throughput to every reference measured:
// CP sends to bare Raft, AP sends to Redis PUBLISH and to Centrifugo (the
// issue's "AP ≥ 0.6× Centrifugo"); all of them when several were measured.
func (r *Result) ratios() {
	for _, ph := range r.Phases {
		for _, ref := range r.References {
			if ref.OpsPerS == 0 {
				continue
			}
			r.Ratios = append(r.Ratios, RatioLine{What: fmt.Sprintf("phase %d (%s) sends/s", ph.Phase, ph.Name),
				Value: ph.OpsPerS, Reference: ref.Kind, RefValue: round1(ref.OpsPerS), Ratio: round3(ph.OpsPerS / ref.OpsPerS)})
		}
	}
}

func round3(v float64) float64 { return float64(int64(v*1000+0.5)) / 1000 }

// write stores result.json and result.md in dir.
func (r *Result) write(dir string) error {
	r.Host.LoadEnd = loadAvg()
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "result.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "result.md"), []byte(r.Markdown()), 0o644)
}

// Markdown renders the result for people; every throughput is stated as a
// ratio to its reference.
func (r *Result) Markdown() string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p("# mpim bench")
	p("")
	p("`%s`", r.Command)
	p("")
	p("- started %s; %d CPUs; load average %s at start, %s at end; RLIMIT_NOFILE %d; %s",
		r.Started.Format(time.RFC3339), r.Host.CPUs, r.Host.LoadStart, r.Host.LoadEnd, r.Host.FDLimit, r.Host.Go)
	c := r.Cluster
	if c.Own {
		layer := "every link between members through the lab's fault-layer proxies"
		switch {
		case len(c.Hosts) > 0 && c.Direct:
			layer = "on hosts " + strings.Join(c.Hosts, ", ") + " through their agents, no fault rules; the clients on this machine"
		case len(c.Hosts) > 0:
			layer = "on hosts " + strings.Join(c.Hosts, ", ") + " through their agents, faults as nftables rules; the clients on this machine"
		case c.Direct:
			layer = "members connected directly (no fault layer)"
		}
		p("- cluster: %s mode, %d nodes, %d gateways, %d shards, started by bench (gateway rate limits off; %s)", c.Mode, c.Nodes, c.Gateways, c.Shards, layer)
	} else if len(c.Targets) > 0 {
		p("- cluster: a running lab at %s (its mode is the lab's own; --mode %s was not checked against it)", strings.Join(c.Targets, " "), c.Mode)
	}
	kind := "1:1"
	if r.Load.GroupSize > 0 {
		kind = fmt.Sprintf("groups of %d", r.Load.GroupSize)
	}
	if r.Load.Conns > 0 {
		p("- load: %d connections, %d senders, %s, %d load process(es), %.0f s warm-up + %.0f s measured per phase",
			r.Load.Conns, r.Load.Senders, kind, r.Load.Procs, r.Load.Warmup, r.Load.Duration)
	}
	if len(r.References) > 0 {
		p("")
		p("## References (same run, before the cluster started)")
		p("")
		p("| reference | clients | ops/s | p50 ms | p99 ms | errors | what |")
		p("|---|---|---|---|---|---|---|")
		for _, ref := range r.References {
			p("| %s | %d | %.0f | %.2f | %.2f | %d | %s |", ref.Kind, ref.Clients, ref.OpsPerS, ref.Latency.P50, ref.Latency.P99, ref.Errors, ref.What)
		}
	}
	if len(r.Phases) > 0 {
		p("")
		p("## Phases")
		p("")
		p("| phase | sends/s ok | ratio to reference | ack p50 / p99 / p99.9 / max ms | deliveries/s | delivered / expected | delivery p50 / p99 ms | errors | skipped | duplicate pushes |")
		p("|---|---|---|---|---|---|---|---|---|---|")
		for _, ph := range r.Phases {
			var ratios []string
			for _, rl := range r.Ratios {
				if strings.HasPrefix(rl.What, fmt.Sprintf("phase %d ", ph.Phase)) {
					ratios = append(ratios, fmt.Sprintf("%.2f× %s", rl.Ratio, rl.Reference))
				}
			}
			if len(ratios) == 0 {
				ratios = []string{"(no reference measured)"}
			}
			var errs []string
			for _, k := range sortedKeys(ph.Errors) {
				errs = append(errs, fmt.Sprintf("%s %d", k, ph.Errors[k]))
			}
			p("| %d %s | %.0f | %s | %.2f / %.2f / %.2f / %.2f | %.0f | %d / %d | %.2f / %.2f | %s | %d | %d |",
				ph.Phase, ph.Name, ph.OpsPerS, strings.Join(ratios, ", "), ph.Ack.P50, ph.Ack.P99, ph.Ack.P999, ph.Ack.Max,
				ph.DeliveriesPerS, ph.Deliveries, ph.ExpectedDeliveries, ph.Delivery.P50, ph.Delivery.P99, strings.Join(errs, ", "), ph.Skipped, ph.DuplicatePushes)
		}
	}
	if r.Idle != nil {
		p("")
		p("## Idle connections")
		p("")
		p("%d logged-in idle WebSocket connections on gateway g1: RSS %d KiB before, %d KiB after: **%.2f KiB per connection**.",
			r.Idle.Conns, r.Idle.GatewayRSSBeforeKiB, r.Idle.GatewayRSSAfterKiB, r.Idle.PerConnKiB)
		p("After two garbage collections in the gateway (the steady state its periodic forced GC reaches): RSS %d KiB, **%.2f KiB per connection**.",
			r.Idle.GatewayRSSAfterGCKiB, r.Idle.PerConnAfterGCKiB)
	}
	if f := r.Failover; f != nil {
		p("")
		p("## Failover")
		p("")
		p("From `partition isolate:leader` to the first acknowledged write to shard 0 on the majority, %d runs: "+
			"median **%.0f ms**, min %.0f ms, max %.0f ms. Runs (ms): %v.", len(f.RunsMS), f.MedianMS, f.MinMS, f.MaxMS, f.RunsMS)
	}
	if len(r.Profiles) > 0 {
		p("")
		p("## Profiles")
		p("")
		for _, pr := range r.Profiles {
			p("- `%s`", pr)
		}
	}
	if r.Trace != "" {
		p("")
		p("The slowest sends of the first phase, stage by stage: `%s`.", r.Trace)
	}
	for _, n := range r.Notes {
		p("")
		p("%s", n)
	}
	return b.String()
}
