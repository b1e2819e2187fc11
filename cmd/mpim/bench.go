package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"mpim/bench"
)

func benchCmd() *cobra.Command {
	cfg := bench.DefaultConfig()
	var targets, hostsFile string
	var refs []string
	var failover int
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Load a cluster with real WebSocket clients and report throughput and latency against bare Raft, Redis and Centrifugo",
		Long: `Start a cluster (or load a running one with --target) and measure it with
real WebSocket clients: send→ack and send→delivery latency histograms,
throughput, and the references --reference raft (a bare hashicorp/raft
cluster, one Apply per operation), --reference redis (raw PUBLISH) and
--reference centrifugo (a Centrifugo v6 server with the Redis engine and
history on, 200 B publications client to client, each awaited until
delivered; needs bin/centrifugo from make peers, or centrifugo on PATH),
measured in the same run at the same concurrency, before the cluster
starts. --rate 0 runs each sender closed-loop; --rate R schedules R
sends/s open-loop, with latency counted from each send's scheduled time.
Writes result.json and result.md to --out. See docs/benchmarks.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.Targets = splitList(targets)
			var err error
			if cfg.Hosts, err = loadHosts(hostsFile); err != nil {
				return usageError{err}
			}
			for _, r := range refs {
				cfg.References = append(cfg.References, splitList(r)...)
			}
			cfg.Command = "mpim " + strings.Join(os.Args[1:], " ")
			cfg.Progress = os.Stderr
			if os.Getenv("MPIM_LOG") != "" {
				cfg.Logger = newLogger("bench", "bench")
			}
			if cfg.Binary == "" {
				cfg.Binary, _ = os.Executable()
			}
			if cfg.Out == "" {
				cfg.Out = filepath.Join(os.TempDir(), fmt.Sprintf("mpim-bench-%d", time.Now().Unix()))
			}
			var res *bench.Result
			if failover > 0 {
				if cfg.Direct {
					return usageError{fmt.Errorf("--failover partitions the leader: it needs the fault layer, drop --direct")}
				}
				if len(cfg.Targets) > 0 {
					return usageError{fmt.Errorf("--failover starts and partitions its own cluster ten times: drop --target")}
				}
				res, err = bench.Failover(cmd.Context(), cfg, failover)
			} else {
				if err := cfg.Validate(); err != nil {
					return usageError{err}
				}
				res, err = bench.Run(cmd.Context(), cfg)
			}
			if err != nil {
				return err
			}
			fmt.Print(res.Markdown())
			fmt.Printf("\nresult: %s\n", filepath.Join(cfg.Out, "result.json"))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Mode, "mode", cfg.Mode, "consistency mode of the cluster bench starts: cp or ap")
	f.IntVar(&cfg.Nodes, "nodes", cfg.Nodes, "nodes of the cluster bench starts")
	f.IntVar(&cfg.Gateways, "gateways", cfg.Gateways, "gateways of the cluster bench starts")
	f.IntVar(&cfg.Shards, "shards", cfg.Shards, "shards of the cluster bench starts")
	f.StringVar(&hostsFile, "hosts", "", "start the cluster on the hosts of this inventory, through their agents (docs/hosts.md); the clients stay on this machine")
	f.StringVar(&targets, "target", "", "gateway URLs of a running lab (ws://HOST:PORT/ws, comma-separated) instead of starting one")
	f.IntVar(&cfg.Conns, "conns", cfg.Conns, "client connections, one user each")
	f.IntVar(&cfg.Senders, "senders", cfg.Senders, "how many of the connections send (default: all)")
	f.IntVar(&cfg.GroupSize, "group-size", cfg.GroupSize, "0: 1:1 sends; N: users in groups of N, sends to the group")
	f.Float64Var(&cfg.Rate, "rate", cfg.Rate, "total sends per second, open loop; 0: closed loop (each sender waits for its reply)")
	f.BoolVar(&cfg.FindPeak, "find-peak", cfg.FindPeak, "run closed loop to find the peak, then open loop at half of it")
	f.DurationVar(&cfg.Warmup, "warmup", cfg.Warmup, "unmeasured load before each phase")
	f.DurationVar(&cfg.Duration, "duration", cfg.Duration, "measured length of each phase")
	f.IntVar(&cfg.MaxOutstanding, "max-outstanding", cfg.MaxOutstanding, "open loop: sends one sender may have waiting before it skips (and counts) the next")
	f.IntVar(&cfg.Procs, "procs", cfg.Procs, "spread the clients over this many processes (descriptor limits, CPU)")
	f.StringSliceVar(&refs, "reference", nil, "references to measure first: raft, redis, centrifugo (repeat the flag or separate by commas)")
	f.BoolVar(&cfg.Idle, "idle", cfg.Idle, "connect and log in --conns idle clients on gateway g1, hold them --duration, report its RSS per connection")
	f.BoolVar(&cfg.Direct, "direct", cfg.Direct, "start the cluster without the lab's fault layer (members dial each other directly, no proxies; no network faults)")
	f.BoolVar(&cfg.Profile, "profile", cfg.Profile, "collect CPU and allocation profiles of every node and gateway during the first phase")
	f.IntVar(&cfg.Trace, "trace", 0, "write the first phase's N slowest sends, stage by stage through gateway, node, log and apply, to trace.md (members record spans)")
	f.IntVar(&failover, "failover", 0, "instead of load: isolate the CP leader this many times and time the first acknowledged write to shard 0 on the majority")
	f.StringVar(&cfg.Out, "out", "", "folder for result.json, result.md, profiles and the lab's logs (default: a new folder under the temp dir)")
	cmd.AddCommand(benchWorkerCmd())
	return cmd
}

// benchWorkerCmd is one load process of `mpim bench --procs N`: it reads
// its plan and phases as JSON on stdin and writes progress and results on
// stdout.
func benchWorkerCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "worker",
		Short:  "One load process of mpim bench --procs (reads JSON on stdin)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return bench.Worker(cmd.Context(), os.Stdin, os.Stdout)
		},
	}
}
