package fsm

import (
	"mpim/internal/convid"
	"strconv"
)

// Conflicts between writes that no single log ordered (the AP mode: the
// same name registered, or the same group created, on both sides of a
// partition) are resolved here, deterministically, so that every replica
// ends in the same state whatever order it applied them in.
//
// Users: the registration with the smaller (Created, UID) keeps the name;
// the other account keeps its uid, password and memberships under
// AltName(name, uid), and the old name remembers it (Renamed), so that a
// login with the old name and that account's password can be told the new
// name. Groups: both creations merge — the group keeps the record with the
// smaller (Created, Creator) and the union of the members.

// Rename records an account moved to a new name by a conflict.
type Rename struct {
	UID  uint64 `json:"uid"`
	From string `json:"from"`
	To   string `json:"to"`
}

// AltName is the name a conflicting account with uid moves to: a valid
// user name (at most 32 bytes) made unique by the uid.
func AltName(name string, uid uint64) string {
	suffix := "-" + strconv.FormatUint(uid, 36)
	if len(name)+len(suffix) > 32 {
		name = name[:32-len(suffix)]
	}
	return name + suffix
}

func renamedKey(name string, uid uint64) []byte { return join([]byte(name), sep, u64(uid)) }

// Renamed lists the accounts moved away from name by conflicts.
func Renamed(tx Tx, name string) []Rename {
	var out []Rename
	p := convPrefix(name)
	_ = tx.Scan(bRenamed, p, prefixEnd(p), false, func(k, v []byte) bool {
		out = append(out, Rename{UID: getU64(k[len(p):]), From: name, To: string(v)})
		return true
	})
	return out
}

// resolveRegister settles a registration of a name another uid holds.
func (m *Machine) resolveRegister(tx Tx, r *Register, existing User) (Result, error) {
	newWins := r.Created < existing.Created || (r.Created == existing.Created && r.UID < existing.UID)
	loser := existing
	if !newWins {
		loser = User{UID: r.UID, Name: r.Name, PwHash: r.PwHash, Created: r.Created}
	}
	alt := AltName(r.Name, loser.UID)
	if newWins {
		// Move the existing account away, then store the new one.
		moved := existing
		moved.Name = alt
		if err := putJSON(tx, bUsers, []byte(alt), moved); err != nil {
			return Result{}, err
		}
		if err := tx.Put(bUIDs, u64(existing.UID), []byte(alt)); err != nil {
			return Result{}, err
		}
		if err := m.storeUser(tx, User{UID: r.UID, Name: r.Name, PwHash: r.PwHash, Created: r.Created}); err != nil {
			return Result{}, err
		}
	} else if err := m.storeUser(tx, User{UID: r.UID, Name: alt, PwHash: r.PwHash, Created: r.Created}); err != nil {
		return Result{}, err
	}
	if err := tx.Put(bRenamed, renamedKey(r.Name, loser.UID), []byte(alt)); err != nil {
		return Result{}, err
	}
	return Result{UID: r.UID, Renamed: &Rename{UID: loser.UID, From: r.Name, To: alt}}, nil
}

// mergeGroup settles a creation of a group that exists.
func (m *Machine) mergeGroup(tx Tx, r *GroupCreate, existing Group) (Result, error) {
	conv := convid.OfGroup(r.Group)
	if r.Created < existing.Created || (r.Created == existing.Created && r.Creator < existing.Creator) {
		if err := putJSON(tx, bGroups, []byte(r.Group), Group{Name: r.Group, Creator: r.Creator, Created: r.Created}); err != nil {
			return Result{}, err
		}
	}
	for _, uid := range append([]uint64{r.Creator}, r.Members...) {
		if err := m.addMember(tx, conv, uid); err != nil {
			return Result{}, err
		}
	}
	return Result{Conv: conv, Members: Members(tx, conv)}, nil
}
