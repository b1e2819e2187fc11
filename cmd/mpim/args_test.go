package main

import (
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"mpim/lab"
)

// TestLabArgsParse: the command lines the lab builds for its members
// (lab.NodeSpec, lab.GatewaySpec) parse with the real flag sets of
// `mpim node` and `mpim gateway`, each flag to the value the lab meant,
// so the lab's argument builder and the flag tables cannot drift apart.
func TestLabArgsParse(t *testing.T) {
	node := lab.NodeSpec{ID: "n2", Data: "/tmp/d", Listen: "127.0.0.1:1", HTTP: "127.0.0.1:2", Redis: "127.0.0.1:3",
		Secret: "0123456789abcdef", Mode: "ap", Leaders: "spread", Shards: 3, BcryptCost: 5, RaftListen: "127.0.0.1:4",
		Peers: []string{"n1=127.0.0.1:5", "n2=127.0.0.1:4"}, Unsafe: []string{"ack-before-commit"}, APRepair: false, Pprof: true}
	gw := lab.GatewaySpec{ID: "g1", Listen: "127.0.0.1:6", Redis: "127.0.0.1:3", Secret: "0123456789abcdef",
		Nodes: []string{"127.0.0.1:1", "127.0.0.1:7"}, Origins: "http://127.0.0.1:8", Pprof: true}
	for _, tc := range []struct {
		cmd  *cobra.Command
		args []string
	}{{nodeCmd(), node.Args()}, {gatewayCmd(), gw.Args()}} {
		if tc.args[0] != tc.cmd.Name() {
			t.Fatalf("args %v start with %q, want the subcommand %q", tc.args, tc.args[0], tc.cmd.Name())
		}
		flags := tc.args[1:]
		if err := tc.cmd.ParseFlags(flags); err != nil {
			t.Fatalf("%s %v: %v", tc.cmd.Name(), flags, err)
		}
		for i := 0; i < len(flags); i++ {
			name := strings.TrimPrefix(flags[i], "--")
			f := tc.cmd.Flags().Lookup(name)
			if f == nil {
				t.Fatalf("%s has no flag --%s", tc.cmd.Name(), name)
			}
			want := "true"
			if f.Value.Type() != "bool" {
				i++
				want = flags[i]
			}
			if got := f.Value.String(); got != want {
				t.Errorf("%s --%s parsed as %q, the lab meant %q", tc.cmd.Name(), name, got, want)
			}
		}
	}
}
