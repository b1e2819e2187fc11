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
	var netBackend string
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
			self, _ := os.Executable()
			failed := false
			var reports []*runner.Report
			for _, v := range runs {
				cfg := runner.Config{Scenario: sc, Mode: v.mode, APRepair: v.repair, Seed: seed, Binary: self, Net: netBackend,
					Out: out, Progress: os.Stderr, Logger: newLogger("chaos", sc.Name)}
				if len(runs) > 1 {
					cfg.Out = filepath.Join(out, cfg.ModeKey())
				}
				cfg.Command = rerun(args[0], v.mode, v.repair, seed, quick, netBackend)
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
	cmd.AddCommand(run, list)
	return cmd
}

// loadScenario reads a scenario file, or a built-in one by name.
func loadScenario(arg string) (*scenario.Scenario, error) {
	if strings.HasSuffix(arg, ".yaml") || strings.HasSuffix(arg, ".yml") || strings.Contains(arg, "/") {
		return scenario.Load(arg)
	}
	return scenario.Builtin(arg)
}

func rerun(sc, mode string, repair bool, seed uint64, quick bool, netBackend string) string {
	s := fmt.Sprintf("mpim chaos run %s --mode %s --seed %d", sc, mode, seed)
	if netBackend != "" && netBackend != lab.NetProxy {
		s += " --net " + netBackend
	}
	if mode == "ap" && !repair {
		s += " --ap-repair off"
	}
	if quick {
		s += " --quick"
	}
	return s
}
