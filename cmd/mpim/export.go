package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"mpim/chaos/export"
)

// exportCmd writes a scenario's faults as another fault injector's
// resources: today Chaos Mesh's.
func exportCmd() *cobra.Command {
	cfg := export.DefaultConfig()
	var to, out string
	cmd := &cobra.Command{
		Use:   "export --to chaos-mesh SCENARIO [-o FILE]",
		Short: "Write a scenario's faults as a Chaos Mesh Workflow against the pods of deploy/k8s",
		Long: `Write the scenario's faults (a file or a built-in name) as one Chaos Mesh
Workflow (chaos-mesh.org/v1alpha1): NetworkChaos partition, delay, loss and
netem, PodChaos pod-failure for kill ... restart, each waiting (Suspend)
until its time and lasting until the fault is healed. Selectors match the
pods of deploy/k8s: node nI is pod mpim-node-(I-1), redis the pod labelled
app.kubernetes.io/component=redis. The header of the output says what is
injected when and where the export differs from a lab run.

Refused, with the reason: pause and resume (Chaos Mesh cannot freeze a
process and let it go on), a fault on one gateway (the gateways are one
Deployment), and a fault naming leader unless --leader pins it (which node
leads is known only while the cluster runs). docs/chaos.md says more.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if to != "chaos-mesh" {
				return usageError{fmt.Errorf("--to %q: the one target is chaos-mesh", to)}
			}
			sc, err := loadScenario(args[0])
			if err != nil {
				return usageError{err}
			}
			e, err := export.ChaosMesh(sc, cfg)
			if err != nil {
				return usageError{err}
			}
			command := "mpim chaos export --to chaos-mesh " + args[0]
			if cfg.Leader != "" {
				command += " --leader " + cfg.Leader
			}
			if cfg.Namespace != export.DefaultConfig().Namespace {
				command += " --namespace " + cfg.Namespace
			}
			b, err := e.YAML(command)
			if err != nil {
				return err
			}
			if out == "" || out == "-" {
				_, err = cmd.OutOrStdout().Write(b)
				return err
			}
			if err := os.WriteFile(out, b, 0o644); err != nil {
				return usageError{fmt.Errorf("-o: %w", err)}
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "%s: %d injections in %s (kubectl apply -f %s)\n", sc.Name, len(e.Schedule), out, out)
			if len(e.Notes) > 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "notes:\n  - %s\n", strings.Join(e.Notes, "\n  - "))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&to, "to", "chaos-mesh", "the fault injector to write for (chaos-mesh)")
	f.StringVarP(&out, "output", "o", "", "file to write (default: standard output)")
	f.StringVar(&cfg.Namespace, "namespace", cfg.Namespace, "namespace of the lab's pods and of the Workflow")
	f.StringVar(&cfg.Leader, "leader", "", "node that faults naming leader hit (e.g. n1); which node leads is known only while the cluster runs")
	return cmd
}
