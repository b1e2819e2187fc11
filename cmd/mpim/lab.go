package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"

	"mpim/internal/redisproc"
	"mpim/lab"
)

func labCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "lab",
		Short: "Run a whole local cluster to break and measure",
	}
	cmd.AddCommand(labUpCmd(), labMiniredisCmd(), labPrometheusCmd(), labTopCmd())
	return cmd
}

func labUpCmd() *cobra.Command {
	cfg := lab.DefaultConfig()
	var apRepair, unsafe, hostsFile string
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Start nodes, gateways and Redis as separate processes, print every address, run until interrupted",
		Long: `Start a local cluster: Redis, nodes n1..nN and gateways g1..gM, each a
separate process of this binary on fixed loopback ports, plus the lab HTTP
API (docs/lab-api.md). Every address is printed once the cluster is ready,
ending with the "dashboard http://HOST:PORT/" line. Ctrl-C stops everything
the lab started.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.Unsafe = splitList(unsafe)
			var err error
			if cfg.Hosts, err = loadHosts(hostsFile); err != nil {
				return usageError{err}
			}
			if cfg.APRepair, err = onOff("--ap-repair", apRepair); err != nil {
				return err
			}
			cfg.Logger = newLogger("lab", "lab")
			l, err := lab.New(cfg)
			if err != nil {
				return usageError{err}
			}
			ctx := cmd.Context()
			out := cmd.OutOrStdout()
			if err := l.Up(ctx); err != nil {
				if ctx.Err() != nil {
					return fmt.Errorf("lab interrupted while starting (logs in %s)", l.Data())
				}
				return err
			}
			for _, line := range l.Banner() {
				fmt.Fprintln(out, line)
			}
			<-ctx.Done()
			fmt.Fprintln(cmd.ErrOrStderr(), "lab: stopping every member")
			return l.Close()
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Mode, "mode", cfg.Mode, "consistency mode: cp or ap (passed to every node)")
	f.IntVar(&cfg.Nodes, "nodes", cfg.Nodes, "number of nodes n1..nN")
	f.IntVar(&cfg.Gateways, "gateways", cfg.Gateways, "number of gateways g1..gM (gI talks first to nI)")
	f.IntVar(&cfg.Shards, "shards", cfg.Shards, "number of state shards")
	f.StringVar(&cfg.Leaders, "leaders", cfg.Leaders, "colocate (every shard led by one node) or spread")
	f.StringVar(&apRepair, "ap-repair", "on", "AP anti-entropy repair: on or off")
	f.StringVar(&unsafe, "unsafe", "", "CP unsafe teaching switches: ack-before-commit, local-linearizable (comma-separated)")
	f.StringVar(&cfg.Redis, "redis", cfg.Redis, "auto (redis-server if installed, else embedded miniredis), embedded, or HOST:PORT of an external Redis")
	f.StringVar(&cfg.Net, "net", cfg.Net, "fault layer: proxy (a TCP proxy on every link, no privileges) or netns (a network namespace per member, nftables faults; needs root)")
	f.StringVar(&hostsFile, "hosts", "", "run the cluster on the hosts of this inventory (hosts.yaml), through their agents (docs/hosts.md)")
	f.StringVar(&cfg.Data, "data", cfg.Data, "directory for node data and logs (default: a new temporary directory)")
	f.StringVar(&cfg.HTTP, "http", cfg.HTTP, "address of the lab HTTP API and dashboard (the default falls back to a free port when busy)")
	f.DurationVar(&cfg.ReadyTimeout, "ready-timeout", cfg.ReadyTimeout, "how long a member may take to become ready")
	return cmd
}

// labMiniredisCmd runs the embedded Redis as its own process, so that the
// lab can kill, pause and restart it like any other member.
func labMiniredisCmd() *cobra.Command {
	var listen string
	cmd := &cobra.Command{
		Use:    "miniredis",
		Short:  "Run an embedded miniredis in the foreground (used by lab up when no redis-server is installed)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := redisproc.EmbeddedAt(listen, os.Getenv("MPIM_REDIS_PASSWORD"))
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "redis %s embedded miniredis\n", s.URL())
			<-cmd.Context().Done()
			return s.Stop()
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:0", "listen address")
	return cmd
}

// labPrometheusCmd prints a running lab's Prometheus scrape configuration.
func labPrometheusCmd() *cobra.Command {
	var labURL string
	cmd := &cobra.Command{
		Use:   "prometheus",
		Short: "Print a Prometheus scrape configuration for a running lab's nodes and gateways",
		Long: `Print a Prometheus configuration that scrapes every node and gateway of a
running lab (docs/observability.md). Save it and run
prometheus --config.file=FILE; import deploy/grafana/mpim.json into Grafana.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			u, err := findLab(labURL)
			if err != nil {
				return usageError{err}
			}
			resp, err := http.Get(u + "api/prometheus")
			if err != nil {
				return fmt.Errorf("reach the lab at %s: %w", u, err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("lab answered %s", resp.Status)
			}
			_, err = io.Copy(cmd.OutOrStdout(), resp.Body)
			return err
		},
	}
	cmd.Flags().StringVar(&labURL, "lab", "", "the lab's dashboard URL (default $MPIM_LAB, else the most recent lab)")
	return cmd
}

// labTopCmd prints, every interval, what a running lab's members' metrics
// say happened: the leader, commits, refusals, replication lag, sends ok.
func labTopCmd() *cobra.Command {
	var labURL string
	var interval, duration time.Duration
	cmd := &cobra.Command{
		Use:   "top",
		Short: "Follow a running lab through its members' /metrics: leader, commits, refusals, sends ok per gateway",
		Long: lab.TopHeader + `.
Runs for --duration (Ctrl-C stops it sooner). docs/observability.md reads a partition with it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			u, err := findLab(labURL)
			if err != nil {
				return usageError{err}
			}
			if interval <= 0 {
				return usageError{fmt.Errorf("--interval must be positive")}
			}
			members := func() ([]lab.MemberState, error) {
				resp, err := http.Get(u + "api/members")
				if err != nil {
					return nil, fmt.Errorf("reach the lab at %s: %w", u, err)
				}
				defer resp.Body.Close()
				var ms []lab.MemberState
				return ms, json.NewDecoder(resp.Body).Decode(&ms)
			}
			ctx := cmd.Context()
			ms, err := members()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintln(out, "#", lab.TopHeader)
			start := time.Now()
			prev := lab.ReadTop(ctx, ms)
			t := time.NewTicker(interval)
			defer t.Stop()
			for time.Since(start) < duration {
				select {
				case <-ctx.Done():
					return nil
				case <-t.C:
				}
				if fresh, err := members(); err == nil {
					ms = fresh // a restarted member keeps its address; a mode switch keeps them all
				}
				cur := lab.ReadTop(ctx, ms)
				fmt.Fprintln(out, lab.TopLine(prev, cur, start))
				prev = cur
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&labURL, "lab", "", "the lab's dashboard URL (default $MPIM_LAB, else the most recent lab)")
	cmd.Flags().DurationVar(&interval, "interval", time.Second, "time between two lines")
	cmd.Flags().DurationVar(&duration, "duration", 10*time.Minute, "stop after this long")
	return cmd
}
