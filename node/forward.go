package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"mpim/fsm"
	"mpim/internal/rpcerr"
	pb "mpim/proto/mpimpb"
)

// A forwarded proposal carries one fsm.Command to the shard leader and its
// fsm.Result back, both JSON; the result's domain error travels as the
// sentinel's text.
type wireResult struct {
	Err     string       `json:"err,omitempty"`
	UID     uint64       `json:"uid,omitempty"`
	Conv    string       `json:"conv,omitempty"`
	Message *fsm.Message `json:"message,omitempty"`
	Dup     bool         `json:"dup,omitempty"`
	Seq     uint64       `json:"seq,omitempty"`
	ID      string       `json:"id,omitempty"`
	Members []uint64     `json:"members,omitempty"`
}

// fsmErrors are the domain errors a result may carry.
var fsmErrors = []error{fsm.ErrNameTaken, fsm.ErrUIDTaken, fsm.ErrNoSuchUser, fsm.ErrNoSuchGroup,
	fsm.ErrGroupExists, fsm.ErrNotMember, fsm.ErrNoSuchMessage, fsm.ErrInvalid}

func encodeCommand(cmd fsm.Command) ([]byte, error) { return json.Marshal(cmd) }

func encodeResult(r fsm.Result) ([]byte, error) {
	w := wireResult{UID: r.UID, Conv: r.Conv, Message: r.Message, Dup: r.Dup, Seq: r.Seq, ID: r.ID, Members: r.Members}
	if r.Err != nil {
		w.Err = r.Err.Error()
	}
	return json.Marshal(w)
}

func decodeResult(b []byte) (fsm.Result, error) {
	var w wireResult
	if err := json.Unmarshal(b, &w); err != nil {
		return fsm.Result{}, fmt.Errorf("%w: undecodable result from the leader: %v", ErrUnknown, err)
	}
	r := fsm.Result{UID: w.UID, Conv: w.Conv, Message: w.Message, Dup: w.Dup, Seq: w.Seq, ID: w.ID, Members: w.Members}
	if w.Err != "" {
		r.Err = errors.New(w.Err)
		for _, e := range fsmErrors {
			if e.Error() == w.Err {
				r.Err = e
			}
		}
	}
	return r, nil
}

// internalService answers other nodes: proposals forwarded to this
// leader, ReadIndex, and membership changes.
type internalService struct {
	pb.UnimplementedInternalServer
	n *Node
}

func (s *internalService) replica(shard uint32) (*cpReplica, error) {
	if int(shard) >= len(s.n.shards) {
		return nil, rpcerr.Error(rpcerr.BadRequest, "no shard %d (this node has %d)", shard, len(s.n.shards))
	}
	r, ok := s.n.shards[shard].(*cpReplica)
	if !ok {
		return nil, rpcerr.Error(rpcerr.BadRequest, "this node does not run the CP mode")
	}
	return r, nil
}

// Propose commits a command forwarded by another node. It never forwards
// again: a node that lost the lead answers unavailable (not applied).
func (s *internalService) Propose(ctx context.Context, req *pb.ProposeRequest) (*pb.ProposeReply, error) {
	r, err := s.replica(req.Shard)
	if err != nil {
		return nil, err
	}
	var cmd fsm.Command
	if err := json.Unmarshal(req.Command, &cmd); err != nil {
		return nil, rpcerr.Error(rpcerr.BadRequest, "undecodable command: %v", err)
	}
	res, err := r.s.Propose(ctx, cmd)
	if err != nil {
		return nil, commitError(err)
	}
	b, err := encodeResult(res)
	if err != nil {
		return nil, rpcerr.Error(rpcerr.Internal, "encode result: %v", err)
	}
	return &pb.ProposeReply{Result: b}, nil
}

func (s *internalService) ReadIndex(ctx context.Context, req *pb.ReadIndexRequest) (*pb.ReadIndexReply, error) {
	r, err := s.replica(req.Shard)
	if err != nil {
		return nil, err
	}
	idx, err := r.s.ReadIndex(ctx)
	if err != nil {
		return nil, rpcerr.Error(rpcerr.Unavailable, "%v", err)
	}
	return &pb.ReadIndexReply{Index: idx}, nil
}

// Join adds a server to every shard this node leads.
func (s *internalService) Join(ctx context.Context, req *pb.MemberRequest) (*pb.Empty, error) {
	return &pb.Empty{}, s.n.eachLed(func(r *cpReplica) error { return r.s.AddVoter(req.Id, req.Address) })
}

// Remove removes a server from every shard this node leads.
func (s *internalService) Remove(ctx context.Context, req *pb.MemberRequest) (*pb.Empty, error) {
	return &pb.Empty{}, s.n.eachLed(func(r *cpReplica) error { return r.s.RemoveServer(req.Id) })
}

func (n *Node) eachLed(fn func(*cpReplica) error) error {
	var errs []error
	for _, sh := range n.shards {
		if r, ok := sh.(*cpReplica); ok && r.s.IsLeader() {
			if err := fn(r); err != nil {
				errs = append(errs, fmt.Errorf("shard %d: %w", r.id, err))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return rpcerr.Error(rpcerr.Unavailable, "%v", err)
	}
	return nil
}

// changeMembership runs a Join or Remove on the leader of every shard.
func (n *Node) changeMembership(ctx context.Context, req *pb.MemberRequest, join bool) error {
	if n.cluster == nil {
		return rpcerr.Error(rpcerr.BadRequest, "membership changes need the CP mode")
	}
	done := map[string]bool{}
	for _, sh := range n.shards {
		r := sh.(*cpReplica)
		lead, err := r.leader(ctx)
		if err != nil {
			return rpcerr.Error(rpcerr.Unavailable, "%v", err)
		}
		if done[lead] {
			continue
		}
		done[lead] = true
		if lead == n.cfg.ID {
			if err := n.eachLed(func(r *cpReplica) error {
				if join {
					return r.s.AddVoter(req.Id, req.Address)
				}
				return r.s.RemoveServer(req.Id)
			}); err != nil {
				return err
			}
			continue
		}
		err = n.cluster.forward(ctx, lead, r.s, func(ctx context.Context, ic pb.InternalClient) error {
			if join {
				_, err := ic.Join(ctx, req)
				return err
			}
			_, err := ic.Remove(ctx, req)
			return err
		})
		if err != nil {
			return rpcerr.Error(rpcerr.Unavailable, "%v", err)
		}
	}
	return nil
}
