package node

import (
	"sync"

	"mpim/fsm"
)

// usersCache remembers values read from the meta shard's users (a record
// by name, a name by uid) for as long as its users bucket has not changed
// since (the bucket's version, store.Mem.Version): every commit that
// registers, renames or updates an account moves it. Every send looks its
// recipient up, and every message's wire id names a DM's two users: without
// the cache each is a view of the meta shard, which waits while the shard
// applies a batch (an AP engine round, a Raft batch: 25 ms of a slow send
// under load in the trace of docs/benchmarks.md), and a JSON decode.
type usersCache[K comparable, V any] struct {
	mu      sync.RWMutex
	version uint64
	values  map[K]V
}

// maxCached bounds a cache; past it, it starts again empty.
const maxCached = 1 << 16

// get returns key's value on sh's replica, read by read on a view of it
// unless the cache holds it as of the bucket's current version. What
// read does not find is not cached (lookupUser catches up on a miss). A
// value returned is shared: callers only read it.
func (c *usersCache[K, V]) get(sh replica, key K, read func(fsm.Tx) (V, bool)) (V, bool) {
	v := sh.version(fsm.UsersBucket)
	c.mu.RLock()
	val, ok := c.values[key]
	ok = ok && c.version == v
	c.mu.RUnlock()
	if ok {
		return val, true
	}
	sh.view(func(tx fsm.Tx) error { val, ok = read(tx); return nil })
	if !ok {
		return val, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	// Values of one version only: a read that saw a newer version starts
	// the cache again; one that saw an older one is not kept.
	if v > c.version || c.values == nil || (v == c.version && len(c.values) >= maxCached) {
		c.version, c.values = v, make(map[K]V)
	}
	if v == c.version {
		c.values[key] = val
	}
	return val, true
}
