package node

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"mpim/fsm"
	"mpim/internal/rpcerr"
	"mpim/node/ap"
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
	return s.n.digests(0), nil
}

func (n *Node) status() *pb.NodeStatus {
	st := &pb.NodeStatus{Id: n.cfg.ID, Mode: n.cfg.Mode, RedisOk: n.rdb != nil && !n.fanout.degraded.Load()}
	for _, s := range n.shards {
		st.Shards = append(st.Shards, s.status())
	}
	return st
}

// digests summarises every conversation of this node's replica (only the
// messages stamped before before, in Unix milliseconds, when it is not 0).
func (n *Node) digests(before int64) *pb.DigestsReply {
	out := &pb.DigestsReply{}
	for _, s := range n.shards {
		first := len(out.Convs)
		s.view(func(tx fsm.Tx) error {
			for _, conv := range fsm.Convs(tx) {
				count, digest := fsm.Digest(tx, conv)
				if before != 0 {
					count, digest = fsm.DigestBefore(tx, conv, before)
				}
				out.Convs = append(out.Convs, &pb.ConvDigest{Conv: conv, Count: count, Digest: digest})
			}
			return nil
		})
		// Wire ids after the read: naming looks users up in a read of its
		// own, and bbolt reads must not nest.
		for _, d := range out.Convs[first:] {
			d.Conv = n.wireConv(d.Conv)
		}
	}
	return out
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// statusJSON is GET /admin/status: the Admin service's status plus, in AP
// mode, the replication state the lab's dashboard shows (outbox, lag,
// tentative messages), which the gRPC reply does not carry.
type statusJSON struct {
	*pb.NodeStatus
	AP *ap.Status `json:"ap,omitempty"`
}

func (n *Node) serveStatus(w http.ResponseWriter, _ *http.Request) {
	out := statusJSON{NodeStatus: n.status()}
	if n.ap != nil {
		st := n.ap.Status()
		out.AP = &st
	}
	writeJSON(w, out)
}

// serveDigests is GET /admin/digests[?before=UNIX_MS].
func (n *Node) serveDigests(w http.ResponseWriter, r *http.Request) {
	var before int64
	if v := r.URL.Query().Get("before"); v != "" {
		var err error
		if before, err = strconv.ParseInt(v, 10, 64); err != nil || before <= 0 {
			http.Error(w, "before: a time in Unix milliseconds, e.g. before=1765000000000", http.StatusBadRequest)
			return
		}
	}
	writeJSON(w, n.digests(before))
}

func (s *adminService) Join(ctx context.Context, req *pb.MemberRequest) (*pb.Empty, error) {
	if req.Id == "" || req.Address == "" {
		return nil, rpcerr.Error(rpcerr.BadRequest, "join needs the node's id and node-to-node address")
	}
	return &pb.Empty{}, s.n.changeMembership(ctx, req, true)
}

func (s *adminService) Remove(ctx context.Context, req *pb.MemberRequest) (*pb.Empty, error) {
	if req.Id == "" {
		return nil, rpcerr.Error(rpcerr.BadRequest, "remove needs the node's id")
	}
	return &pb.Empty{}, s.n.changeMembership(ctx, req, false)
}

func (s *adminService) HoldApplies(ctx context.Context, req *pb.HoldRequest) (*pb.Empty, error) {
	if !s.n.cfg.TestHooks {
		return nil, rpcerr.Error(rpcerr.Forbidden, "hold applies is a test hook; start the node with --test-hooks")
	}
	if int(req.Shard) >= len(s.n.shards) {
		return nil, rpcerr.Error(rpcerr.BadRequest, "no shard %d", req.Shard)
	}
	r, ok := s.n.shards[req.Shard].(*cpReplica)
	if !ok {
		return nil, rpcerr.Error(rpcerr.BadRequest, "hold applies needs the CP mode")
	}
	r.s.Hold(req.Hold)
	return &pb.Empty{}, nil
}

func (s *adminService) Snapshot(ctx context.Context, _ *pb.Empty) (*pb.Empty, error) {
	for _, sh := range s.n.shards {
		if r, ok := sh.(*cpReplica); ok {
			if err := r.s.Snapshot(); err != nil && !strings.Contains(err.Error(), "nothing new") {
				return nil, rpcerr.Error(rpcerr.Internal, "snapshot of shard %d: %v", r.id, err)
			}
		}
	}
	return &pb.Empty{}, nil
}
