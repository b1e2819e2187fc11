package fsm

import "encoding/binary"

// Buckets of the state. Every key layout is listed here, so that a reader
// can see the whole schema at once.
const (
	bMeta      = "meta"      // "applied" -> u64 log index; "next_uid" -> u64
	bUsers     = "users"     // name -> User
	bUIDs      = "uids"      // uid -> name
	bGroups    = "groups"    // name -> Group
	bConvs     = "convs"     // conv -> Conv
	bMembers   = "members"   // conv 0x00 uid -> present
	bUserConvs = "userconvs" // uid conv -> present
	bMsgs      = "msgs"      // conv 0x00 seq -> Message
	bOrders    = "orders"    // conv 0x00 order -> seq (order: the message's sort key)
	bMsgIDs    = "msgids"    // id -> conv 0x00 order
	bOrigins   = "origins"   // conv 0x00 origin 0x00 oseq -> order (messages with an origin sequence)
	bDedup     = "dedup"     // uid conv 0x00 cmid -> order
	bDelivered = "delivered" // uid device 0x00 conv -> seq
	bReadCur   = "readcur"   // uid conv -> seq
	bRenamed   = "renamed"   // old name 0x00 uid -> new name (conflict renames)
	bMemberAt  = "memberat"  // conv 0x00 uid -> stamp of the last stamped join or leave (last writer wins)
)

// UsersBucket holds the user records UserByName reads: a cache of them
// is current while this bucket is unchanged.
const UsersBucket = bUsers

// Buckets lists every bucket in a fixed order (snapshots walk it).
var Buckets = []string{bMeta, bUsers, bUIDs, bGroups, bConvs, bMembers, bUserConvs, bMsgs, bOrders, bMsgIDs, bOrigins, bDedup, bDelivered, bReadCur, bRenamed, bMemberAt}

var (
	keyApplied = []byte("applied")
	keyNextUID = []byte("next_uid")
)

func u64(v uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	return b[:]
}

func getU64(b []byte) uint64 {
	if len(b) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

func join(parts ...[]byte) []byte {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	out := make([]byte, 0, n)
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

var sep = []byte{0}

// present is the value of a set entry (members, userconvs). It is not
// empty because Tx.Get answers nil for a missing key, and an empty value
// can read back as nil too (bbolt does within the writing transaction,
// etcd-io/bbolt#726), which would make the entry look absent.
var present = []byte{1}

func convPrefix(conv string) []byte             { return join([]byte(conv), sep) }
func msgKey(conv string, seq uint64) []byte     { return join([]byte(conv), sep, u64(seq)) }
func orderKey(conv string, order []byte) []byte { return join([]byte(conv), sep, order) }
func originKey(conv, origin string, oseq uint64) []byte {
	return join([]byte(conv), sep, []byte(origin), sep, u64(oseq))
}
func memberKey(conv string, uid uint64) []byte   { return join([]byte(conv), sep, u64(uid)) }
func userConvKey(uid uint64, conv string) []byte { return join(u64(uid), []byte(conv)) }
func dedupKey(uid uint64, conv, cmid string) []byte {
	return join(u64(uid), []byte(conv), sep, []byte(cmid))
}
func deliveredKey(uid uint64, device, conv string) []byte {
	return join(u64(uid), []byte(device), sep, []byte(conv))
}
func readKey(uid uint64, conv string) []byte { return join(u64(uid), []byte(conv)) }
