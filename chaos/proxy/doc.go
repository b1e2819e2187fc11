// Package proxy is the lab's userspace fault layer: a TCP proxy on every
// link between two lab members, so that any single link can be cut, made
// one-way or slowed without root, netem or a network namespace.
//
// # Where the proxies sit
//
// The lab owns one [Net]. For every ordered pair (dialler, listener) of
// members that talk to each other — node→node, gateway→node, node→redis,
// gateway→redis — it calls [Net.Link], which listens on a free 127.0.0.1
// port and forwards each accepted connection to the listener's real
// address. The dialler is configured with the link's address instead of the
// peer's, so every byte between two members crosses exactly one proxy. A
// link is named by who dials (From) and who listens (To); faults are named by
// the direction bytes travel, so [Net.Hold](a, b) stops a→b bytes on the
// connections a dialled to b and on those b dialled to a alike. That is what
// makes `oneway A / B` mean "traffic from A to B", whichever side opened the
// connection. When a member restarts on a new port, [Link.SetTarget] points
// new connections at it.
//
// # A hold is not a reset
//
// A real partition is a blackhole: packets go nowhere, nobody is told, and
// each side only learns of the cut when its own timeout fires (a Raft
// election timeout, a gateway's request deadline, a Redis client's read
// timeout). A reset is something else: it is what a crashed or restarted
// peer looks like, and it tells the application at once. Toxiproxy models the
// two as different toxics for this reason: `timeout` ("stops all data from
// getting through"; with timeout 0 the connection is never closed) against
// `reset_peer` ("connection reset by peer"). A partition built from resets
// would teach the wrong lesson: clients would fail fast and retry elsewhere,
// and the interesting failure — the slow, silent one that timeouts must
// detect — would never happen.
//
// This package goes one step further than Toxiproxy's timeout toxic, which
// drops the bytes it swallows. Over a real cut link TCP keeps unacknowledged
// bytes and retransmits them, so after the cut heals the stream resumes with
// no hole. The proxy has already acknowledged what it read, so dropping it
// would create a hole no real network produces. A held direction therefore
// keeps every byte: first in the proxy's queue (at most 256 KiB per
// direction of a connection), then, once that is full, the proxy stops
// reading and TCP flow control pushes back on the sender, whose writes block
// exactly as over a congested or cut path. Nothing is ever dropped, reordered, closed or reset
// by a fault; on [Net.Release] (or [Net.Heal]) the held bytes flow in order
// on connections that both ends still hold open. A FIN or a reset read from
// one end is queued behind the data read before it, so a close never
// overtakes data and a held direction holds the close too.
//
// # How delay works
//
// Each proxied connection has two pumps, one per direction, each a reader
// goroutine and a writer goroutine joined by a FIFO queue. The reader stamps
// every chunk with the time it was read and a uniform random fraction u in
// [0,1). The writer delivers the head of the queue at
//
//	read time + delay + u·jitter
//
// computed with the delay and jitter in force at that moment, so a changed or
// cleared delay (or a new hold) applies at once to chunks already waiting.
// The writer only ever takes the head, so a chunk with a large jitter sample
// holds back the ones read after it: latency varies, order never does (TCP
// itself never reorders a stream). Chunks that are already due are written
// together with one writev.
//
// # How loss works
//
// A proxy cannot drop bytes it has read: it acknowledged them, and a real
// TCP stream never has a hole. [Net.SetLoss] emulates what a lost segment
// does to a TCP connection instead: the chunk is delivered one
// retransmission timeout (200 ms, Linux's minimum RTO) late, twice that
// again for each retransmission lost too (a chunk is lost k times in a row
// with probability p^k, at most 6), and it holds back every chunk behind it
// (head-of-line blocking). Applications see bursts of stalls, not missing
// bytes; the netns backend drops real packets instead.
//
// Lock order: Net.mu before Link.mu; pump.mu is never held with either.
package proxy
