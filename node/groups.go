package node

import (
	"context"
	"time"

	"mpim/fsm"
	"mpim/internal/convid"
	"mpim/internal/rpcerr"
	pb "mpim/proto/mpimpb"
)

// groupService creates groups and changes their membership. A group lives
// in the shard of its conversation, so that checking a sender's membership
// and appending the message happen in one shard.
type groupService struct {
	pb.UnimplementedGroupsServer
	n *Node
}

func (s *groupService) Create(ctx context.Context, req *pb.GroupRequest) (*pb.GroupReply, error) {
	c := req.Caller
	if err := caller(c); err != nil {
		return nil, err
	}
	lim := s.n.cfg.Limits
	if lim.MaxGroupMembers > 0 && len(req.Members) > lim.MaxGroupMembers {
		return nil, rpcerr.Error(rpcerr.TooLarge, "a group is created with at most %d members; add the others with their own group_join", lim.MaxGroupMembers)
	}
	if err := s.n.roomForConv(c.Uid, ""); err != nil {
		return nil, err
	}
	if !s.n.created.allow(c.Uid, lim.GroupsPerMinute, time.Now()) {
		return nil, rpcerr.Error(rpcerr.RateLimited, "at most %d groups a minute per user; wait a little", lim.GroupsPerMinute)
	}
	var members []uint64
	for _, name := range req.Members {
		u, ok := s.n.lookupUser(ctx, name)
		if !ok {
			return nil, rpcerr.Error(rpcerr.NotFound, "no user %q to add to the group", name)
		}
		if s.n.roomForConv(u.UID, name) != nil {
			// Someone already in as many conversations as a user may be
			// is not added (they can still join it themselves later).
			continue
		}
		members = append(members, u.UID)
	}
	conv := convid.OfGroup(req.Group)
	if s.n.ap != nil {
		// A group this replica knows is refused before it is logged (the
		// merge rule is for creations on two sides of a partition).
		var exists bool
		s.n.convShard(conv).view(func(tx fsm.Tx) error { _, exists = fsm.GroupByName(tx, req.Group); return nil })
		if exists {
			return nil, domainError(fsm.ErrGroupExists, req.Group)
		}
	}
	res, err := s.n.convShard(conv).propose(ctx, fsm.Command{GroupCreate: &fsm.GroupCreate{
		Group: req.Group, Creator: c.Uid, Members: members, Created: time.Now().UnixMilli()}})
	if err != nil {
		return nil, commitError(err)
	}
	if res.Err != nil {
		return nil, domainError(res.Err, req.Group)
	}
	return &pb.GroupReply{Conv: res.Conv}, nil
}

func (s *groupService) membership(ctx context.Context, req *pb.GroupRequest, join bool) (*pb.GroupReply, error) {
	c := req.Caller
	if err := caller(c); err != nil {
		return nil, err
	}
	conv := convid.OfGroup(req.Group)
	m := &fsm.GroupMember{Group: req.Group, UID: c.Uid}
	cmd := fsm.Command{GroupLeave: m}
	if join {
		cmd = fsm.Command{GroupJoin: m}
		if err := s.n.roomForConv(c.Uid, ""); err != nil {
			return nil, err
		}
	}
	res, err := s.n.convShard(conv).propose(ctx, cmd)
	if err != nil {
		return nil, commitError(err)
	}
	if res.Err != nil {
		return nil, domainError(res.Err, req.Group)
	}
	return &pb.GroupReply{Conv: res.Conv}, nil
}

func (s *groupService) Join(ctx context.Context, req *pb.GroupRequest) (*pb.GroupReply, error) {
	return s.membership(ctx, req, true)
}

func (s *groupService) Leave(ctx context.Context, req *pb.GroupRequest) (*pb.GroupReply, error) {
	return s.membership(ctx, req, false)
}

// Members lists a group's members by name; only members may list them.
func (s *groupService) Members(ctx context.Context, req *pb.GroupRequest) (*pb.GroupReply, error) {
	c := req.Caller
	if err := caller(c); err != nil {
		return nil, err
	}
	conv := convid.OfGroup(req.Group)
	_, uids, err := s.n.authorize(ctx, c, conv)
	if err != nil {
		return nil, err
	}
	out := &pb.GroupReply{Conv: conv}
	s.n.metaShard().view(func(tx fsm.Tx) error {
		for _, uid := range uids {
			if u, ok := fsm.UserByUID(tx, uid); ok {
				out.Members = append(out.Members, u.Name)
			}
		}
		return nil
	})
	return out, nil
}
