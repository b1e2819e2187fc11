package node

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/crypto/bcrypt"

	"mpim/fsm"
	"mpim/internal/rpcerr"
	"mpim/internal/token"
	pb "mpim/proto/mpimpb"
)

// userService registers users, checks passwords and issues tokens, and
// serves profiles through the Redis cache (cache-aside).
type userService struct {
	pb.UnimplementedUsersServer
	n *Node
}

func (s *userService) Register(ctx context.Context, req *pb.RegisterRequest) (*pb.RegisterReply, error) {
	if req.User == "" || req.Password == "" {
		return nil, rpcerr.Error(rpcerr.BadRequest, "register needs user and password")
	}
	// In AP mode a name this replica knows is refused here, before it is
	// logged: the state machine's conflict rule is for registrations made
	// concurrently on two sides, not for a name known to be taken.
	if s.n.ap != nil {
		if _, ok := s.n.lookupUser(ctx, req.User); ok {
			return nil, rpcerr.Error(rpcerr.Conflict, "the name %q is taken; choose another", req.User)
		}
	}
	// Hashing happens here, outside the state machine: bcrypt salts are
	// random and the fsm must stay deterministic.
	hash, err := bcrypt.GenerateFromPassword(bcryptInput(req.Password), s.n.cfg.BcryptCost)
	if err != nil {
		return nil, rpcerr.Error(rpcerr.BadRequest, "cannot hash that password: %v", err)
	}
	res, err := s.n.metaShard().propose(ctx, fsm.Command{Register: &fsm.Register{
		Name: req.User, PwHash: hash, Created: time.Now().UnixMilli()}})
	if err != nil {
		return nil, commitError(err)
	}
	if res.Err != nil {
		return nil, domainError(res.Err, req.User)
	}
	return &pb.RegisterReply{Uid: res.UID}, nil
}

func (s *userService) Login(ctx context.Context, req *pb.LoginRequest) (*pb.LoginReply, error) {
	u, ok := s.n.lookupUser(ctx, req.User)
	// One answer for "no such user" and "wrong password": a login must not
	// tell which names exist.
	if !ok {
		// As long as a wrong password takes: the time must not tell
		// which names exist either.
		_ = bcrypt.CompareHashAndPassword(s.n.dummyHash(), bcryptInput(req.Password))
	}
	if !ok || bcrypt.CompareHashAndPassword(u.PwHash, bcryptInput(req.Password)) != nil {
		if moved := s.n.renamedAccount(req.User, req.Password); moved != "" {
			return nil, rpcerr.Error(rpcerr.Conflict, "after a partition the name %q went to another account; yours is now %q: log in as %s", req.User, moved, moved)
		}
		return nil, rpcerr.Error(rpcerr.Unauthorized, "wrong user name or password")
	}
	tok := token.Sign(s.n.cfg.Secret, token.Claims{UID: u.UID, User: u.Name,
		Exp: time.Now().Add(s.n.cfg.TokenTTL).UnixMilli()})
	return &pb.LoginReply{Uid: u.UID, Token: tok, Mode: s.n.cfg.Mode, Node: s.n.cfg.ID, User: u.Name}, nil
}

// renamedAccount is the new name of an account that lost name to a
// conflict and whose password this is ("" if none).
func (n *Node) renamedAccount(name, password string) string {
	var moved string
	n.metaShard().view(func(tx fsm.Tx) error {
		for _, r := range fsm.Renamed(tx, name) {
			if u, ok := fsm.UserByUID(tx, r.UID); ok && bcrypt.CompareHashAndPassword(u.PwHash, bcryptInput(password)) == nil {
				moved = u.Name
			}
		}
		return nil
	})
	return moved
}

func cacheKey(user string) string { return "mpim:user:" + user }

// Info reads a profile: the cache, then the store, then fills the cache.
func (s *userService) Info(ctx context.Context, req *pb.UserInfoRequest) (*pb.UserInfoReply, error) {
	rdb := s.n.rdb
	useCache := rdb != nil && !s.n.fanout.degraded.Load()
	if useCache {
		b, err := rdb.Get(ctx, cacheKey(req.User)).Bytes()
		switch {
		case err == nil:
			var out pb.UserInfoReply
			if json.Unmarshal(b, &out) == nil {
				s.n.metrics.cacheHits.Inc()
				out.Cached = true
				return &out, nil
			}
		case err != redis.Nil:
			s.n.fanout.setDegraded(true)
			useCache = false
		}
		s.n.metrics.cacheMisses.Inc()
	}
	u, ok := s.n.lookupUser(ctx, req.User)
	if !ok {
		return nil, rpcerr.Error(rpcerr.NotFound, "no user %q", req.User)
	}
	out := &pb.UserInfoReply{User: u.Name, Uid: u.UID, Nickname: u.Nickname, Created: u.Created}
	if useCache {
		if b, err := json.Marshal(out); err == nil {
			rdb.Set(ctx, cacheKey(req.User), b, s.n.cfg.CacheTTL)
		}
	}
	return out, nil
}

// Update commits the new profile, then invalidates the cache entry (the
// cache-aside order: store first, then delete, so a reader refills it from
// the new state).
func (s *userService) Update(ctx context.Context, req *pb.UserUpdateRequest) (*pb.Empty, error) {
	c := req.Caller
	res, err := s.n.metaShard().propose(ctx, fsm.Command{UserUpdate: &fsm.UserUpdate{UID: c.GetUid(), Nickname: req.Nickname}})
	if err != nil {
		return nil, commitError(err)
	}
	if res.Err != nil {
		return nil, domainError(res.Err, c.GetUser())
	}
	if s.n.rdb != nil {
		if err := s.n.rdb.Del(ctx, cacheKey(c.GetUser())).Err(); err != nil {
			// The entry expires within CacheTTL: that is the staleness bound
			// while Redis is unreachable.
			s.n.fanout.setDegraded(true)
			s.n.log.Warn("cache invalidation failed; entry expires by TTL", "user", c.GetUser(), "err", err)
		}
	}
	return &pb.Empty{}, nil
}

// bcryptInput is what bcrypt is given for a password. bcrypt reads at
// most 72 bytes and refuses more, while the protocol allows 128: a longer
// password is hashed with SHA-256 first (its base64, 44 bytes), so every
// byte of it counts. Passwords of up to 72 bytes go in as they are, as
// they always did.
func bcryptInput(password string) []byte {
	if len(password) <= 72 {
		return []byte(password)
	}
	sum := sha256.Sum256([]byte(password))
	return []byte(base64.StdEncoding.EncodeToString(sum[:]))
}

// dummyHash is a hash at the node's cost that no password matches, made
// once, for logins of names that do not exist.
func (n *Node) dummyHash() []byte {
	n.dummyOnce.Do(func() {
		n.dummy, _ = bcrypt.GenerateFromPassword([]byte("no account has this password: "+n.cfg.ID), n.cfg.BcryptCost)
	})
	return n.dummy
}
