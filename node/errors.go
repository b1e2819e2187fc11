package node

import (
	"errors"

	"mpim/fsm"
	"mpim/internal/rpcerr"
	"mpim/node/outcome"
)

// commitError turns a failed commit into the protocol's answer: refused
// before the log means unavailable (guaranteed not applied), anything later
// means timeout (unknown; a retry with the same cmid is safe).
func commitError(err error) error {
	if errors.Is(err, outcome.ErrNotApplied) {
		return rpcerr.Error(rpcerr.Unavailable, "%v; the write was not applied, try again", err)
	}
	return rpcerr.Error(rpcerr.Timeout, "%v; the write may or may not have been applied, retry with the same cmid", err)
}

// domainError turns an fsm refusal into the protocol's error.
func domainError(err error, what string) error {
	switch {
	case errors.Is(err, fsm.ErrNameTaken):
		return rpcerr.Error(rpcerr.Conflict, "the name %q is taken; choose another", what)
	case errors.Is(err, fsm.ErrGroupExists):
		return rpcerr.Error(rpcerr.Conflict, "the group %q exists; join it or choose another name", what)
	case errors.Is(err, fsm.ErrNoSuchUser):
		return rpcerr.Error(rpcerr.NotFound, "no user %q", what)
	case errors.Is(err, fsm.ErrNoSuchGroup):
		return rpcerr.Error(rpcerr.NotFound, "no group %q", what)
	case errors.Is(err, fsm.ErrNotMember):
		return rpcerr.Error(rpcerr.Forbidden, "you are not a member of %s", what)
	case errors.Is(err, fsm.ErrNoSuchMessage):
		return rpcerr.Error(rpcerr.NotFound, "no such message in %s", what)
	case errors.Is(err, fsm.ErrUIDTaken):
		return rpcerr.Error(rpcerr.Conflict, "uid taken registering %q", what)
	}
	return rpcerr.Error(rpcerr.Internal, "unexpected state machine answer %v for %s; please report this", err, what)
}
