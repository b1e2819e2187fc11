// Command mpim is the one binary of the lab: nodes, gateways, the lab
// supervisor, the fault CLI, the chaos harness and the terminal client.
// It holds flags and wiring only; the work lives in the packages.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	root := &cobra.Command{
		Use:           "mpim",
		Short:         "An instant-messaging system whose consistency mode is a switch: run, break and measure CAP",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(nodeCmd(), gatewayCmd(), labCmd(), clientCmd(), faultCmd(), chaosCmd(), benchCmd(), agentCmd())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "mpim:", err)
		os.Exit(exitCode(err))
	}
}

// usageError marks errors caused by how the command was called (exit 2).
type usageError struct{ error }

func exitCode(err error) int {
	if _, ok := err.(usageError); ok {
		return 2
	}
	return 1 // includes errExpectations: `mpim chaos run` found a broken expectation
}
