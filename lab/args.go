package lab

import (
	"strconv"
	"strings"
)

// NodeSpec is what a node member is started with. Args spells it as the
// command line of `mpim node`: the one place a launcher (the lab, and
// whatever starts members on other hosts) builds a node's arguments.
// cmd/mpim's tests parse Args with the real flag set, so the two cannot
// drift apart.
type NodeSpec struct {
	ID, Data, Listen, HTTP, Redis, Mode, Leaders string
	// TLSDir holds the cluster's mutual TLS credentials ("" for none).
	// The token secret and the Redis password are not arguments: they go
	// in the member's environment (Lab.memberEnv).
	TLSDir             string
	Shards, BcryptCost int
	// RaftListen is the node-to-node address; Peers every initial member
	// as id=address (the address this node dials to reach it).
	RaftListen string
	Peers      []string
	Unsafe     []string
	APRepair   bool
	Pprof      bool
}

// Args is the spec as `mpim node` arguments, the subcommand first.
func (s NodeSpec) Args() []string {
	args := []string{"node", "--id", s.ID, "--data", s.Data, "--listen", s.Listen, "--http", s.HTTP,
		"--redis", s.Redis, "--shards", strconv.Itoa(s.Shards),
		"--mode", s.Mode, "--bcrypt-cost", strconv.Itoa(s.BcryptCost),
		"--raft-listen", s.RaftListen, "--peers", strings.Join(s.Peers, ","), "--leaders", s.Leaders}
	if s.Pprof {
		args = append(args, "--pprof")
	}
	if s.TLSDir != "" {
		args = append(args, "--tls-dir", s.TLSDir)
	}
	if len(s.Unsafe) > 0 {
		args = append(args, "--unsafe", strings.Join(s.Unsafe, ","))
	}
	repair := "off"
	if s.APRepair {
		repair = "on"
	}
	return append(args, "--ap-repair", repair)
}

// GatewaySpec is what a gateway member is started with; Args spells it as
// the command line of `mpim gateway`.
type GatewaySpec struct {
	ID, Listen, Redis string
	// TLSDir: as NodeSpec's.
	TLSDir string
	// Nodes are the nodes' gRPC addresses in order of preference.
	Nodes []string
	// Origins are the allowed browser origins, comma-separated.
	Origins string
	Pprof   bool
}

// Args is the spec as `mpim gateway` arguments, the subcommand first.
func (s GatewaySpec) Args() []string {
	args := []string{"gateway", "--id", s.ID, "--listen", s.Listen, "--nodes", strings.Join(s.Nodes, ","),
		"--redis", s.Redis, "--origins", s.Origins}
	if s.Pprof {
		args = append(args, "--pprof")
	}
	if s.TLSDir != "" {
		args = append(args, "--tls-dir", s.TLSDir)
	}
	return args
}
