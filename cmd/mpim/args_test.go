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
		TLSDir: "/tmp/creds", Mode: "ap", Leaders: "spread", Shards: 3, BcryptCost: 5, RaftListen: "127.0.0.1:4",
		Peers: []string{"n1=127.0.0.1:5", "n2=127.0.0.1:4"}, Unsafe: []string{"ack-before-commit"}, APRepair: false, Pprof: true}
	gw := lab.GatewaySpec{ID: "g1", Listen: "127.0.0.1:6", Redis: "127.0.0.1:3", TLSDir: "/tmp/creds",
		Nodes: []string{"127.0.0.1:1", "127.0.0.1:7"}, Origins: "http://127.0.0.1:8", Pprof: true}
	// What each flag must carry: every field of the specs, by flag.
	wantNode := map[string]string{"id": node.ID, "data": node.Data, "listen": node.Listen, "http": node.HTTP,
		"redis": node.Redis, "tls-dir": node.TLSDir, "mode": node.Mode, "leaders": node.Leaders, "shards": "3",
		"bcrypt-cost": "5", "raft-listen": node.RaftListen, "peers": strings.Join(node.Peers, ","),
		"unsafe": "ack-before-commit", "ap-repair": "off", "pprof": "true"}
	wantGateway := map[string]string{"id": gw.ID, "listen": gw.Listen, "redis": gw.Redis, "tls-dir": gw.TLSDir,
		"nodes": strings.Join(gw.Nodes, ","), "origins": gw.Origins, "pprof": "true"}
	for _, tc := range []struct {
		cmd  *cobra.Command
		args []string
		want map[string]string
	}{{nodeCmd(), node.Args(), wantNode}, {gatewayCmd(), gw.Args(), wantGateway}} {
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
			if got := f.Value.String(); got != want || tc.want[name] != want {
				t.Errorf("%s --%s parsed as %q from %q; the spec's field is %q", tc.cmd.Name(), name, got, want, tc.want[name])
			}
			delete(tc.want, name)
		}
		if len(tc.want) > 0 {
			t.Errorf("%s: the spec's fields %v reach no flag", tc.cmd.Name(), tc.want)
		}
	}
}
