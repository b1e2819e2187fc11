package main

import (
	"fmt"
	"net"

	"github.com/spf13/cobra"

	"mpim/agent"
	"mpim/internal/clustertls"
)

func agentCmd() *cobra.Command {
	var cfg agent.Config
	var listen string
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run the members placed on this host for a lab on the control machine (mpim lab up --hosts)",
		Long: `The lab's hand on one host (docs/hosts.md): it runs the members the lab
places here as its children (start, kill, stop, restart on the same data,
pause, resume), loads the host's fault rules into an nftables table on the
input hook, and reports its members' state and logs. It answers only
callers presenting a certificate of the cluster's authority (--tls-dir,
made by "mpim agent init"), and runs only this binary and redis-server.
It prints "agent NAME ADDR" once it listens.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.Logger = newLogger("agent", cfg.Name)
			s, err := agent.NewServer(cfg)
			if err != nil {
				return usageError{err}
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				s.Close()
				return fmt.Errorf("agent: listen on %s: %w", listen, err)
			}
			info := s.Info()
			fmt.Fprintf(cmd.OutOrStdout(), "agent %s %s (nftables %v, netem %v, redis-server %v)\n", cfg.Name, ln.Addr(), info.Nftables, info.Netem, info.Redis)
			return s.Serve(cmd.Context(), ln)
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", ":7400", "address to listen on (HTTPS with mutual TLS)")
	f.StringVar(&cfg.Name, "name", "", "this host's name in the inventory (reported)")
	f.StringVar(&cfg.Data, "data", "/var/lib/mpim", "directory for the members' data and logs")
	f.StringVar(&cfg.TLSDir, "tls-dir", "/etc/mpim/credentials", "the cluster's credentials (ca.pem, member.pem, member-key.pem)")
	f.BoolVar(&cfg.NoMembers, "no-members", false, "apply faults only, run no members (a sidecar in a pod)")
	cmd.AddCommand(&cobra.Command{
		Use:   "init DIR",
		Short: "Make a cluster's credentials (an authority and a member certificate) in DIR, to copy to every host",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := clustertls.Generate(args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "credentials in %s: copy ca.pem, member.pem and member-key.pem to every host's --tls-dir and name the directory in hosts.yaml (credentials:); ca-key.pem stays here\n", args[0])
			return nil
		},
	})
	return cmd
}

// loadHosts reads a --hosts inventory ("" means none).
func loadHosts(path string) (*agent.Inventory, error) {
	if path == "" {
		return nil, nil
	}
	return agent.LoadInventory(path)
}
