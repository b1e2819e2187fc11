package fsm

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
)

// harness applies commands to one MemKV, one log entry per call, and keeps
// the next log index so tests read as a sequence of commands.
type harness struct {
	t     testing.TB
	m     *Machine
	kv    *MemKV
	index uint64
}

func newHarness(t testing.TB, cfg Config) *harness {
	t.Helper()
	m, err := New(cfg)
	if err != nil {
		t.Fatalf("New(%+v): %v", cfg, err)
	}
	return &harness{t: t, m: m, kv: NewMemKV()}
}

// apply applies cmds as the next log entry; a storage error fails the test,
// since MemKV never fails.
func (h *harness) apply(cmds ...Command) []Result {
	h.t.Helper()
	h.index++
	rs, err := h.m.Apply(h.kv, h.index, cmds)
	if err != nil {
		h.t.Fatalf("Apply(index %d): storage error %v; MemKV never fails", h.index, err)
	}
	if len(rs) != len(cmds) {
		h.t.Fatalf("Apply(index %d): %d results for %d commands", h.index, len(rs), len(cmds))
	}
	return rs
}

// do applies one command and returns its result.
func (h *harness) do(c Command) Result {
	h.t.Helper()
	return h.apply(c)[0]
}

// ok applies one command that must succeed.
func (h *harness) ok(c Command) Result {
	h.t.Helper()
	r := h.do(c)
	if r.Err != nil {
		h.t.Fatalf("%s: unexpected error %v", describe(c), r.Err)
	}
	return r
}

// fails applies one command that must be refused with want.
func (h *harness) fails(c Command, want error) {
	h.t.Helper()
	if r := h.do(c); !errors.Is(r.Err, want) {
		h.t.Fatalf("%s: got error %v, want %v", describe(c), r.Err, want)
	}
}

// users registers names in order; they get uids 1, 2, 3...
func (h *harness) users(names ...string) {
	h.t.Helper()
	for i, n := range names {
		if r := h.ok(reg(n)); r.UID != uint64(i+1) {
			h.t.Fatalf("register %s: uid %d, want %d on a fresh machine", n, r.UID, i+1)
		}
	}
}

func (h *harness) snapshot() []byte {
	h.t.Helper()
	return snapshotBytes(h.t, h.kv)
}

func snapshotBytes(t testing.TB, tx Tx) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Snapshot(tx, &buf); err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	return buf.Bytes()
}

// requireSameState fails when two snapshots differ, naming the first
// differing byte so that a failure points somewhere.
func requireSameState(t testing.TB, what string, a, b []byte) {
	t.Helper()
	if bytes.Equal(a, b) {
		return
	}
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	t.Fatalf("%s: snapshots differ (%d vs %d bytes, first difference at byte %d); the state machine must be deterministic",
		what, len(a), len(b), i)
}

func describe(c Command) string {
	k := c.kind()
	if k == "" {
		k = "empty"
	}
	switch {
	case c.Register != nil:
		return fmt.Sprintf("%s %+v", k, *c.Register)
	case c.UserUpdate != nil:
		return fmt.Sprintf("%s %+v", k, *c.UserUpdate)
	case c.GroupCreate != nil:
		return fmt.Sprintf("%s %+v", k, *c.GroupCreate)
	case c.GroupJoin != nil:
		return fmt.Sprintf("%s %+v", k, *c.GroupJoin)
	case c.GroupLeave != nil:
		return fmt.Sprintf("%s %+v", k, *c.GroupLeave)
	case c.Send != nil:
		return fmt.Sprintf("%s %+v", k, *c.Send)
	case c.Ack != nil:
		return fmt.Sprintf("%s %+v", k, *c.Ack)
	case c.Read != nil:
		return fmt.Sprintf("%s %+v", k, *c.Read)
	}
	return k
}

// Command builders, so that tables stay one line per case.

func reg(name string) Command { return regUID(name, 0) }

func regUID(name string, uid uint64) Command {
	return Command{Register: &Register{Name: name, PwHash: []byte("hash-" + name), UID: uid, Created: 100}}
}

func nick(uid uint64, nickname string) Command {
	return Command{UserUpdate: &UserUpdate{UID: uid, Nickname: nickname}}
}

func mkGroup(group string, creator uint64, members ...uint64) Command {
	return Command{GroupCreate: &GroupCreate{Group: group, Creator: creator, Members: members, Created: 200}}
}

func joinGroup(group string, uid uint64) Command {
	return Command{GroupJoin: &GroupMember{Group: group, UID: uid}}
}

func leaveGroup(group string, uid uint64) Command {
	return Command{GroupLeave: &GroupMember{Group: group, UID: uid}}
}

// send builds a group or existing-DM message; id is derived from the
// sender and cmid unless the test cares.
func send(conv string, from uint64, cmid string) Command {
	return sendTo(conv, from, 0, cmid)
}

// sendTo builds a message that may open the DM conv with to.
func sendTo(conv string, from, to uint64, cmid string) Command {
	return Command{Send: &Send{Conv: conv, FromUID: from, From: fmt.Sprintf("u%d", from), To: to,
		Text: "text " + cmid, Cmid: cmid, ID: fmt.Sprintf("id-%d-%s-%s", from, conv, cmid), Ts: 300, Origin: "test"}}
}

func ack(uid uint64, device, conv string, seq uint64) Command {
	return Command{Ack: &Cursor{UID: uid, Device: device, Conv: conv, Seq: seq}}
}

func ackID(uid uint64, device, conv, id string) Command {
	return Command{Ack: &Cursor{UID: uid, Device: device, Conv: conv, ID: id}}
}

func read(uid uint64, conv string, seq uint64) Command {
	return Command{Read: &Cursor{UID: uid, Conv: conv, Seq: seq}}
}

func readID(uid uint64, conv, id string) Command {
	return Command{Read: &Cursor{UID: uid, Conv: conv, ID: id}}
}
