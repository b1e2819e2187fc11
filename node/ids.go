package node

import (
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"sync/atomic"
)

// idGen makes message ids that are unique across nodes and restarts: the
// node id, a random epoch drawn at start, and a counter.
type idGen struct {
	prefix string
	n      atomic.Uint64
}

func newIDGen(node string) *idGen {
	var b [4]byte
	rand.Read(b[:])
	return &idGen{prefix: node + "-" + hex.EncodeToString(b[:]) + "-"}
}

func (g *idGen) next() string { return g.prefix + strconv.FormatUint(g.n.Add(1), 36) }
