package node

import (
	"context"
	"encoding/json"
	"net/http"

	"mpim/fsm"
	pb "mpim/proto/mpimpb"
)

// adminService is the lab's view of this replica: status and a digest per
// conversation, which consistency tests compare across replicas.
type adminService struct {
	pb.UnimplementedAdminServer
	n *Node
}

func (s *adminService) Status(context.Context, *pb.Empty) (*pb.NodeStatus, error) {
	return s.n.status(), nil
}

func (s *adminService) Digests(context.Context, *pb.Empty) (*pb.DigestsReply, error) {
	return s.n.digests(), nil
}

func (n *Node) status() *pb.NodeStatus {
	st := &pb.NodeStatus{Id: n.cfg.ID, Mode: n.cfg.Mode, RedisOk: n.rdb != nil && !n.fanout.degraded.Load()}
	for _, s := range n.shards {
		st.Shards = append(st.Shards, &pb.ShardStatus{Shard: uint32(s.id), AppliedIndex: s.applied.Load()})
	}
	return st
}

func (n *Node) digests() *pb.DigestsReply {
	out := &pb.DigestsReply{}
	for _, s := range n.shards {
		s.view(func(tx fsm.Tx) error {
			for _, conv := range fsm.Convs(tx) {
				count, digest := fsm.Digest(tx, conv)
				out.Convs = append(out.Convs, &pb.ConvDigest{Conv: conv, Count: count, Digest: digest})
			}
			return nil
		})
	}
	return out
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

func (n *Node) serveStatus(w http.ResponseWriter, _ *http.Request)  { writeJSON(w, n.status()) }
func (n *Node) serveDigests(w http.ResponseWriter, _ *http.Request) { writeJSON(w, n.digests()) }
