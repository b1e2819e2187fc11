package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"mpim/fsm"
	"mpim/internal/binenc"
	"mpim/internal/rpcerr"
	"mpim/internal/spans"
	pb "mpim/proto/mpimpb"
)

// A forwarded proposal carries one fsm.Command to the shard leader, as a
// log entry of one command (fsm.EncodeBatch), and its fsm.Result back in
// resultFormat; the result's domain error travels as the sentinel's text.
// Both sides still read the JSON an older node sends ('{').
const resultFormat = 0x01

// fsmErrors are the domain errors a result may carry.
var fsmErrors = []error{fsm.ErrNameTaken, fsm.ErrUIDTaken, fsm.ErrNoSuchUser, fsm.ErrNoSuchGroup,
	fsm.ErrGroupExists, fsm.ErrNotMember, fsm.ErrNoSuchMessage, fsm.ErrInvalid}

func encodeCommand(cmd fsm.Command) ([]byte, error) { return fsm.EncodeBatch([]fsm.Command{cmd}) }

func decodeCommand(b []byte) (fsm.Command, error) {
	var cmd fsm.Command
	if len(b) > 0 && b[0] == '{' {
		return cmd, json.Unmarshal(b, &cmd)
	}
	cmds, err := fsm.DecodeBatch(b)
	if err == nil && len(cmds) != 1 {
		err = fmt.Errorf("%d commands, want 1", len(cmds))
	}
	if err != nil {
		return cmd, err
	}
	return cmds[0], nil
}

// encodeResult writes the fields of r a forwarding node needs (every one
// but Renamed and Reordered, which only AP produces).
func encodeResult(r fsm.Result) ([]byte, error) {
	b := make([]byte, 0, 256)
	b = append(b, resultFormat)
	errText := ""
	if r.Err != nil {
		errText = r.Err.Error()
	}
	b = binenc.AppendString(b, errText)
	b = binenc.AppendUvarint(b, r.UID)
	b = binenc.AppendString(b, r.Conv)
	b = binenc.AppendBool(b, r.Dup)
	b = binenc.AppendUvarint(b, r.Seq)
	b = binenc.AppendString(b, r.ID)
	b = binenc.AppendUvarint(b, uint64(len(r.Members)))
	for _, m := range r.Members {
		b = binenc.AppendUvarint(b, m)
	}
	b = binenc.AppendBool(b, r.Message != nil)
	if m := r.Message; m != nil {
		b = binenc.AppendString(b, m.Conv)
		b = binenc.AppendUvarint(b, m.Seq)
		b = binenc.AppendString(b, m.ID)
		b = binenc.AppendString(b, m.From)
		b = binenc.AppendUvarint(b, m.FromUID)
		b = binenc.AppendString(b, m.Text)
		b = binenc.AppendString(b, m.Cmid)
		b = binenc.AppendVarint(b, m.Ts)
		b = binenc.AppendString(b, m.Origin)
		b = binenc.AppendBytes(b, m.Order)
		b = binenc.AppendUvarint(b, m.OSeq)
	}
	return b, nil
}

func decodeResult(b []byte) (fsm.Result, error) {
	if len(b) > 0 && b[0] == '{' {
		return decodeResultJSON(b)
	}
	if len(b) == 0 || b[0] != resultFormat {
		return fsm.Result{}, fmt.Errorf("%w: undecodable result from the leader (format byte %q)", ErrUnknown, b[:min(len(b), 1)])
	}
	rd := binenc.NewReader(b[1:])
	errText := rd.String()
	r := fsm.Result{UID: rd.Uvarint(), Conv: rd.String(), Dup: rd.Bool(), Seq: rd.Uvarint(), ID: rd.String()}
	if n := rd.Uvarint(); n > 0 && n <= uint64(rd.Len()) {
		r.Members = make([]uint64, n)
		for i := range r.Members {
			r.Members[i] = rd.Uvarint()
		}
	} else if n > 0 {
		return fsm.Result{}, fmt.Errorf("%w: undecodable result from the leader: %d members in %d bytes", ErrUnknown, n, rd.Len())
	}
	if rd.Bool() {
		r.Message = &fsm.Message{Conv: rd.String(), Seq: rd.Uvarint(), ID: rd.String(), From: rd.String(),
			FromUID: rd.Uvarint(), Text: rd.String(), Cmid: rd.String(), Ts: rd.Varint(), Origin: rd.String(),
			Order: rd.Bytes(), OSeq: rd.Uvarint()}
	}
	if rd.Err() != nil || rd.Len() != 0 {
		return fsm.Result{}, fmt.Errorf("%w: undecodable result from the leader (%v, %d bytes left)", ErrUnknown, rd.Err(), rd.Len())
	}
	r.Err = domainErr(errText)
	return r, nil
}

// wireResult is the JSON result an older node sends.
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

func decodeResultJSON(b []byte) (fsm.Result, error) {
	var w wireResult
	if err := json.Unmarshal(b, &w); err != nil {
		return fsm.Result{}, fmt.Errorf("%w: undecodable result from the leader: %v", ErrUnknown, err)
	}
	return fsm.Result{Err: domainErr(w.Err), UID: w.UID, Conv: w.Conv, Message: w.Message, Dup: w.Dup, Seq: w.Seq,
		ID: w.ID, Members: w.Members}, nil
}

// domainErr is the sentinel a result's error text names ("" is none).
func domainErr(text string) error {
	if text == "" {
		return nil
	}
	for _, e := range fsmErrors {
		if e.Error() == text {
			return e
		}
	}
	return errors.New(text)
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
	cmd, err := decodeCommand(req.Command)
	if err != nil {
		return nil, rpcerr.Error(rpcerr.BadRequest, "undecodable command: %v", err)
	}
	if cmd.Send != nil {
		var end func()
		ctx, end = s.n.cfg.Spans.Start(ctx, spans.Key(cmd.Send.From, cmd.Send.Cmid), "node: forwarded send on the shard's leader")
		defer end()
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
