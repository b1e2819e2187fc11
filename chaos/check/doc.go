// Package check holds the checkers that turn a chaos run's history into the
// verdicts of its report (shared/spec/lab.md), each a pure function of what
// the harness recorded:
//
//   - [Linearizable]: the per-conversation linearizability check behind the
//     report's `linearizable` key, described below.
//   - [SetAnalysis]: acknowledged sends against every conversation member's
//     [FinalView] (Jepsen's set-full and total-queue checks): `lost`,
//     `duplicated`, `unexpected`, `recovered`, `fail_applied`.
//   - [Divergent]: conversations whose members' final views differ, the
//     view half of `converged`.
//   - [StaleReads]: reads missing a message acknowledged before they began,
//     `stale_reads` and `stale_local_reads`.
//   - [Reordered]: messages a client was shown behind a later one, from the
//     [Shown] stream (Jepsen's kafka checker's nonmonotonic offsets).
//   - [AvailabilityOf] and [LatencyOf]: Maelstrom's ok fraction, bucketed by
//     fault [Window] and partition side, and ok-op latency percentiles.
//
// # History
//
// A history is a list of [Op], in Jepsen's vocabulary: each client operation
// is invoked and then completes as ok, fail (definitely not applied) or info
// (unknown: the client timed out or lost its connection, so the operation
// may or may not have taken effect, now or at any later time). Each process
// has at most one operation outstanding.
//
// # The model
//
// A conversation is an append-only log, and messages are named by their
// cmid, which the client chooses before it sends. The sequential
// specification that [Linearizable] checks each conversation against
// (Herlihy and Wing's linearizability, checked with porcupine, Athalye's Go
// port of Jepsen's Knossos algorithm) is:
//
//   - State: the sequence of cmids committed to the conversation, in seq
//     order. It is encoded as a string (each cmid interned to a fixed-width
//     4-byte code) so that two states are equal exactly when they are ==,
//     which is what porcupine's memoisation compares, and so that a state
//     stays a few bytes per message however long the cmids are.
//   - send ok, cmid not yet in the state: legal iff the answered Seq is
//     len(state)+1; the cmid is appended.
//   - send ok, cmid already in the state (a retry the server answered as a
//     duplicate): legal iff Seq is the cmid's existing position; the state is
//     unchanged.
//   - send info: nondeterministic (porcupine's NondeterministicModel): either
//     it was not applied and the state is unchanged, or it was applied and
//     the cmid is appended unless already present. Following Jepsen and
//     etcd's robustness tests, an info operation never returns: its Return
//     is moved past every other operation's, so it may take effect at any
//     point after its invocation.
//   - send fail: definitely not applied, so it is dropped before checking, as
//     Knossos does. A fail send that was applied anyway then surfaces here as
//     a read holding a cmid nobody sent, which is illegal; counting such
//     sends is the fail_applied checker's job.
//   - read ok: legal iff Read equals the state exactly. Reads are of the
//     whole conversation, so a stale read (missing a send that completed
//     before the read began), a lost write, a duplicated cmid and a message
//     at the wrong position are all illegal.
//   - read fail and read info: dropped; a read has no effect on the state.
//
// Cmids must be unique within a conversation across all senders: the server
// deduplicates by (sender, conversation, cmid), but this model names a
// message by its cmid alone, so the workload makes cmids globally unique.
//
// # Partitions and cost
//
// Conversations are independent objects, and linearizability is local
// (Herlihy and Wing, section 3.2): a history is linearizable iff each
// object's sub-history is. The checker therefore splits the history per
// conversation (porcupine's Model.Partition) and checks each part alone,
// which keeps the search exponential only in the concurrency within one
// conversation, not in the whole run. It also gives a verdict per
// conversation, so a report can name the conversations that went wrong.
//
// Info sends are the expensive part: between two reads of a conversation,
// k info sends leave up to 2^k candidate states (each applied or not) that
// only a later read or an ok send's Seq prunes. Linearizability checking is
// NP-complete in general (Gibbons and Korach), so [Linearizable] takes a
// timeout and answers "unknown" rather than run forever.
package check
