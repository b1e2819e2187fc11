package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"mpim/chaos/runner"
	"mpim/chaos/scenario"
	"mpim/lab"
)

// errExpectations is exit code 1 of `mpim chaos run`.
var errExpectations = errors.New("an expectation did not hold (see the report)")

func chaosCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "chaos", Short: "Run fault scenarios against a cluster, check the history, write reports"}
	var mode, apRepair, out string
	var seed uint64
	var quick bool
	var netBackend, hostsFile string
	run := &cobra.Command{
		Use:   "run SCENARIO",
		Short: "Start a cluster, run the scenario (a file or a built-in name), check, write the report",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sc, err := loadScenario(args[0])
			if err != nil {
				return usageError{err}
			}
			if quick {
				sc = sc.Quick()
			}
			repair, err := onOff("--ap-repair", apRepair)
			if err != nil {
				return err
			}
			type variant struct {
				mode   string
				repair bool
			}
			var runs []variant
			switch mode {
			case "cp":
				runs = []variant{{"cp", true}}
			case "ap":
				runs = []variant{{"ap", repair}}
			case "both":
				runs = []variant{{"cp", true}, {"ap", true}, {"ap", false}}
			default:
				return usageError{fmt.Errorf("--mode %q: use cp, ap or both", mode)}
			}
			if out == "" {
				out = filepath.Join(os.TempDir(), fmt.Sprintf("mpim-chaos-%s-%d", sc.Name, time.Now().Unix()))
			}
			inv, err := loadHosts(hostsFile)
			if err != nil {
				return usageError{err}
			}
			self, _ := os.Executable()
			failed := false
			var reports []*runner.Report
			for _, v := range runs {
				cfg := runner.Config{Scenario: sc, Mode: v.mode, APRepair: v.repair, Seed: seed, Binary: self, Net: netBackend,
					Hosts: inv, Out: out, Progress: os.Stderr, Logger: newLogger("chaos", sc.Name)}
				if len(runs) > 1 {
					cfg.Out = filepath.Join(out, cfg.ModeKey())
				}
				cfg.Command = rerun(args[0], v.mode, v.repair, seed, quick, netBackend, hostsFile)
				rep, err := runner.Run(cmd.Context(), cfg)
				if err != nil {
					return usageError{err}
				}
				fmt.Printf("%s %s: %s — %s\n", sc.Name, cfg.ModeKey(), rep.Verdict(), filepath.Join(cfg.Out, "report.md"))
				if rep.Verdict() != "pass" {
					failed = true
				}
				reports = append(reports, rep)
			}
			if len(reports) > 1 {
				if err := runner.WriteComparison(out, reports); err != nil {
					return usageError{err}
				}
				fmt.Printf("%s: side by side — %s\n", sc.Name, filepath.Join(out, "comparison.md"))
			}
			if failed {
				return errExpectations
			}
			return nil
		},
	}
	f := run.Flags()
	f.StringVar(&mode, "mode", "cp", "cp, ap, or both (cp, ap, and ap with repair off, on the same seed)")
	f.StringVar(&apRepair, "ap-repair", "on", "AP repair: on or off")
	f.Uint64Var(&seed, "seed", 1, "seed of the workload (same seed, same schedule and workload)")
	f.BoolVar(&quick, "quick", false, "compress the schedule (for CI)")
	f.StringVar(&netBackend, "net", lab.NetProxy, "fault layer: proxy or netns (a network namespace per member; needs root and nftables)")
	f.StringVar(&hostsFile, "hosts", "", "run the cluster on the hosts of this inventory, through their agents (docs/hosts.md)")
	f.StringVar(&out, "out", "", "output folder (default: a new folder under the temp dir)")
	list := &cobra.Command{
		Use:   "list",
		Short: "List the built-in scenarios",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			for _, s := range scenario.List() {
				fmt.Printf("%-28s %s\n", s.Name, s.Description)
			}
			return nil
		},
	}
	cmd.AddCommand(run, list, sweepCmd(), exportCmd())
	return cmd
}

// sweepCmd runs scenarios over several seeds and writes the verdict matrix
// with each figure's spread (min / median / max).
func sweepCmd() *cobra.Command {
	var mode, out, netBackend, hostsFile string
	var seeds int
	var first uint64
	var quick, all bool
	cmd := &cobra.Command{
		Use:   "sweep [SCENARIO...] [--all]",
		Short: "Run scenarios on several seeds (and modes); write the verdict matrix and each figure's spread",
		Long: `Run each scenario (built-in names or files; --all for the whole library)
in each mode on seeds first..first+seeds-1, one run after another, each
with its own report, then write OUT/sweep.json, sweep.md and sweep.html: per
scenario and mode, how many runs passed, and every figure's min / median /
max over the seeds. Scenarios with unsafe switches run in CP only. Exit 0
when every run passed, 1 when one did not, 2 on a usage or setup error.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			var scs []*scenario.Scenario
			if all {
				scs = scenario.List()
			}
			for _, a := range args {
				sc, err := loadScenario(a)
				if err != nil {
					return usageError{err}
				}
				scs = append(scs, sc)
			}
			if len(scs) == 0 {
				return usageError{fmt.Errorf("name scenarios, or --all for the library")}
			}
			if seeds < 1 {
				return usageError{fmt.Errorf("--seeds must be at least 1")}
			}
			var modes [][2]any // mode, repair
			switch mode {
			case "cp":
				modes = [][2]any{{"cp", true}}
			case "ap":
				modes = [][2]any{{"ap", true}}
			case "both":
				modes = [][2]any{{"cp", true}, {"ap", true}, {"ap", false}}
			default:
				return usageError{fmt.Errorf("--mode %q: use cp, ap or both", mode)}
			}
			if out == "" {
				out = filepath.Join(os.TempDir(), fmt.Sprintf("mpim-sweep-%d", time.Now().Unix()))
			}
			inv, err := loadHosts(hostsFile)
			if err != nil {
				return usageError{err}
			}
			self, _ := os.Executable()
			var runs []runner.SweepRun
			for _, sc := range scs {
				if quick {
					sc = sc.Quick()
				}
				for _, m := range modes {
					v, repair := m[0].(string), m[1].(bool)
					if len(sc.Unsafe) > 0 && v != "cp" {
						continue // the unsafe switches are CP's
					}
					for s := first; s < first+uint64(seeds); s++ {
						cfg := runner.Config{Scenario: sc, Mode: v, APRepair: repair, Seed: s, Binary: self, Net: netBackend,
							Hosts: inv, Progress: os.Stderr, Logger: newLogger("chaos", sc.Name)}
						cfg.Out = filepath.Join(out, sc.Name, cfg.ModeKey(), fmt.Sprintf("seed-%d", s))
						cfg.Command = rerun(sc.Name, v, repair, s, quick, netBackend, hostsFile)
						run := runner.SweepRun{Scenario: sc.Name, Mode: cfg.ModeKey(), Seed: s, Dir: cfg.Out}
						rep, err := runner.Run(cmd.Context(), cfg)
						if err != nil {
							run.Verdict, run.Err = "error", err.Error()
						} else {
							run.Verdict, run.Report = rep.Verdict(), rep
						}
						fmt.Printf("%s %s seed %d: %s\n", sc.Name, cfg.ModeKey(), s, run.Verdict)
						runs = append(runs, run)
						if cmd.Context().Err() != nil {
							return cmd.Context().Err()
						}
					}
				}
			}
			command := "mpim chaos sweep " + strings.Join(os.Args[3:], " ")
			sweep := runner.Summarize(command, runs)
			if err := runner.WriteSweep(out, sweep); err != nil {
				return usageError{err}
			}
			fmt.Printf("sweep: %s\n", filepath.Join(out, "sweep.md"))
			failed := false
			for _, r := range runs {
				if r.Err != "" {
					return usageError{fmt.Errorf("%s %s seed %d: %s", r.Scenario, r.Mode, r.Seed, r.Err)}
				}
				failed = failed || r.Verdict != "pass"
			}
			if failed {
				return errExpectations
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&all, "all", false, "every scenario of the built-in library")
	f.IntVar(&seeds, "seeds", 5, "how many seeds")
	f.Uint64Var(&first, "first-seed", 1, "the first seed")
	f.StringVar(&mode, "mode", "cp", "cp, ap, or both (cp, ap, and ap with repair off)")
	f.BoolVar(&quick, "quick", false, "compress each schedule (for CI)")
	f.StringVar(&netBackend, "net", lab.NetProxy, "fault layer: proxy or netns")
	f.StringVar(&hostsFile, "hosts", "", "run every cluster on the hosts of this inventory (docs/hosts.md)")
	f.StringVar(&out, "out", "", "output folder (default: a new folder under the temp dir)")
	return cmd
}

// loadScenario reads a scenario file, or a built-in one by name.
func loadScenario(arg string) (*scenario.Scenario, error) {
	if strings.HasSuffix(arg, ".yaml") || strings.HasSuffix(arg, ".yml") || strings.Contains(arg, "/") {
		return scenario.Load(arg)
	}
	return scenario.Builtin(arg)
}

func rerun(sc, mode string, repair bool, seed uint64, quick bool, netBackend, hostsFile string) string {
	s := fmt.Sprintf("mpim chaos run %s --mode %s --seed %d", sc, mode, seed)
	if netBackend != "" && netBackend != lab.NetProxy {
		s += " --net " + netBackend
	}
	if hostsFile != "" {
		s += " --hosts " + hostsFile
	}
	if mode == "ap" && !repair {
		s += " --ap-repair off"
	}
	if quick {
		s += " --quick"
	}
	return s
}
