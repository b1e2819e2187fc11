package check

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
)

// Status is how an operation completed, in Jepsen's vocabulary.
type Status string

// The three ways an operation completes.
const (
	// StatusOK means the operation took effect and its answer is known.
	StatusOK Status = "ok"
	// StatusFail means the operation definitely did not take effect.
	StatusFail Status = "fail"
	// StatusInfo means the outcome is unknown: the operation may or may not
	// have taken effect, possibly long after the client gave up on it.
	StatusInfo Status = "info"
)

// The kinds of operation on a conversation.
const (
	KindSend = "send"
	KindRead = "read"
)

// Op is one client operation of a history.
type Op struct {
	// Process is the client process; one outstanding op per process.
	Process int `json:"process"`
	// Kind is KindSend or KindRead; other kinds are ignored by this checker.
	Kind string `json:"kind"`
	// Conv is the conversation.
	Conv string `json:"conv"`
	// Cmid is, for a send, the message's client message id.
	Cmid string `json:"cmid,omitempty"`
	// Call is when the operation was invoked.
	Call time.Time `json:"call"`
	// Return is when the operation completed. It is ignored for info
	// operations, which are treated as completing at the end of time.
	Return time.Time `json:"return,omitzero"`
	// Status is how the operation completed. Anything other than ok or
	// fail is treated as info, the one reading that cannot invent a
	// violation.
	Status Status `json:"status"`
	// Seq is, for an ok send, the seq the server answered (for a retry
	// answered as a duplicate, the message's first seq).
	Seq uint64 `json:"seq,omitempty"`
	// Read is, for an ok read, the conversation's cmids in seq order, as
	// returned by a linearizable read of the whole conversation.
	Read []string `json:"read,omitempty"`
	// Gateway is the gateway the client sent the operation through.
	Gateway string `json:"gateway,omitempty"`
	// Node is the node that served the operation, when the answer says so.
	Node string `json:"node,omitempty"`
	// ReadMode is, for a read, ReadLinearizable or ReadLocal.
	ReadMode string `json:"read_mode,omitempty"`
	// MsgID is, for an ok send, the message id the server answered.
	MsgID string `json:"msg_id,omitempty"`
	// Side is the partition side the client was on when it invoked the
	// operation, named by its members sorted and joined by "," (e.g.
	// "g1,n1"), as the report's availability.by_side names sides.
	Side string `json:"side,omitempty"`
	// Error is, for an op that is not ok, the error the client saw.
	Error string `json:"error,omitempty"`
}

// The read modes of a read op.
const (
	// ReadLinearizable is a read that must reflect every write acknowledged
	// before it began.
	ReadLinearizable = "linearizable"
	// ReadLocal is a read served from whatever replica answered, which may
	// be stale in either mode.
	ReadLocal = "local"
)

// codeLen is the width of an interned cmid in a state string.
const codeLen = 4

// newCode returns the interned code of the i-th distinct cmid.
func newCode(i int) string {
	return string(binary.BigEndian.AppendUint32(nil, uint32(i)))
}

// input is a porcupine operation's input: what the client asked.
type input struct {
	kind string
	conv string
	cmid string // interned code, codeLen bytes; empty for reads
}

// output is a porcupine operation's output: what the client was told.
type output struct {
	status Status
	seq    uint64
	read   string // interned codes of the cmids read
}

// history is a history converted for porcupine: times made relative,
// cmids interned, ops that cannot change or observe the state set aside.
type history struct {
	ops     []porcupine.Operation // ops to check, every conversation
	dropped []droppedOp           // fail ops, and reads that are not ok
	convs   []string              // every conversation sent to or read, sorted
	names   []string              // interned code -> cmid
	end     int64                 // where info ops return: after everything else
}

// droppedOp is an op left out of the check, kept to annotate visualizations.
type droppedOp struct {
	op        Op
	call, ret int64
}

// newHistory converts ops. Times become nanoseconds since the earliest call
// (time.Time.Sub, so monotonic readings are used when both times have them).
func newHistory(ops []Op) *history {
	h := &history{}
	codes := make(map[string]string)
	intern := func(cmid string) string {
		if c, ok := codes[cmid]; ok {
			return c
		}
		c := newCode(len(h.names))
		codes[cmid] = c
		h.names = append(h.names, cmid)
		return c
	}

	var t0 time.Time
	for i, op := range ops {
		if i == 0 || op.Call.Before(t0) {
			t0 = op.Call
		}
	}
	rel := func(t time.Time) int64 { return int64(t.Sub(t0)) }

	convs := make(map[string]bool)
	var infos []int // indexes into h.ops of info sends, to get their end
	for _, op := range ops {
		if op.Kind != KindSend && op.Kind != KindRead {
			continue
		}
		convs[op.Conv] = true
		status := op.Status
		if status != StatusOK && status != StatusFail {
			status = StatusInfo
		}
		call, ret := rel(op.Call), rel(op.Return)
		if status == StatusInfo {
			ret = call
		}
		ret = max(ret, call) // a clock that stepped back must not reorder call and return
		h.end = max(h.end, ret)
		if status == StatusFail || (op.Kind == KindRead && status != StatusOK) {
			h.dropped = append(h.dropped, droppedOp{op: op, call: call, ret: ret})
			continue
		}
		in := input{kind: op.Kind, conv: op.Conv}
		out := output{status: status, seq: op.Seq}
		if op.Kind == KindSend {
			in.cmid = intern(op.Cmid)
		} else {
			buf := make([]byte, 0, len(op.Read)*codeLen)
			for _, cmid := range op.Read {
				buf = append(buf, intern(cmid)...)
			}
			out.read = string(buf)
		}
		if status == StatusInfo {
			infos = append(infos, len(h.ops))
		}
		h.ops = append(h.ops, porcupine.Operation{
			ClientId: op.Process, Input: in, Call: call, Output: out, Return: ret,
		})
	}
	// An info op may take effect at any time after its call: give it a
	// return after every other op's, so it stays concurrent with all of them.
	h.end += int64(time.Hour)
	for _, i := range infos {
		h.ops[i].Return = h.end
	}
	for c := range convs {
		h.convs = append(h.convs, c)
	}
	slices.Sort(h.convs)
	return h
}

// partitionByConv splits a history into one part per conversation, in
// sorted conversation order.
func partitionByConv(ops []porcupine.Operation) [][]porcupine.Operation {
	idx := make(map[string]int)
	var convs []string
	for _, op := range ops {
		c := op.Input.(input).conv
		if _, ok := idx[c]; !ok {
			idx[c] = 0
			convs = append(convs, c)
		}
	}
	slices.Sort(convs)
	for i, c := range convs {
		idx[c] = i
	}
	parts := make([][]porcupine.Operation, len(convs))
	for _, op := range ops {
		i := idx[op.Input.(input).conv]
		parts[i] = append(parts[i], op)
	}
	return parts
}

// position returns the 1-based position of the interned cmid in state, or
// 0 when the state does not hold it.
func position(state, cmid string) int {
	for i := 0; i+codeLen <= len(state); i += codeLen {
		if state[i:i+codeLen] == cmid {
			return i/codeLen + 1
		}
	}
	return 0
}

// step is the conversation's sequential specification (see the package
// documentation): the states the conversation can move to from state when
// the operation in is answered out, none when that answer is impossible.
func step(state, in, out any) []any {
	s, op, res := state.(string), in.(input), out.(output)
	switch op.kind {
	case KindSend:
		pos := position(s, op.cmid)
		if res.status == StatusInfo {
			if pos == 0 {
				return []any{s, s + op.cmid}
			}
			return []any{s}
		}
		if pos == 0 && res.seq == uint64(len(s)/codeLen)+1 {
			return []any{s + op.cmid}
		}
		if pos > 0 && res.seq == uint64(pos) {
			return []any{s}
		}
	case KindRead:
		if s == res.read {
			return []any{s}
		}
	}
	return nil
}

// model returns the porcupine model of one conversation. The history's
// intern table is used only to describe operations and states.
func (h *history) model() porcupine.Model {
	nm := porcupine.NondeterministicModel{
		Init:              func() []any { return []any{""} },
		Step:              step,
		DescribeOperation: h.describeOp,
		DescribeState:     func(state any) string { return h.describeCmids(state.(string)) },
	}
	return nm.ToModel()
}

// cmid returns the cmid an interned code stands for.
func (h *history) cmid(code string) string {
	return h.names[binary.BigEndian.Uint32([]byte(code))]
}

// maxShown is how many cmids a description shows before it elides.
const maxShown = 12

// describeCmids renders a string of interned codes as "[a b c]". A long
// conversation shows its length, its first cmids and its last ones, which is
// where a stale or lost message shows.
func (h *history) describeCmids(codes string) string {
	n := len(codes) / codeLen
	at := func(i int) string { return h.cmid(codes[i*codeLen : (i+1)*codeLen]) }
	var b strings.Builder
	b.WriteByte('[')
	for i := 0; i < n; i++ {
		if n > maxShown && i == 3 {
			fmt.Fprintf(&b, " …%d more…", n-maxShown)
			i = n - (maxShown - 3)
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(at(i))
	}
	b.WriteByte(']')
	return b.String()
}

// describeOp renders an operation for the visualization, e.g.
// "g:team send c7 → seq 3" or "g:team read → [c1 c7]".
func (h *history) describeOp(in, out any) string {
	op, res := in.(input), out.(output)
	if op.kind == KindSend {
		if res.status == StatusInfo {
			return fmt.Sprintf("%s send %s → info (maybe applied)", op.conv, h.cmid(op.cmid))
		}
		return fmt.Sprintf("%s send %s → seq %d", op.conv, h.cmid(op.cmid), res.seq)
	}
	return fmt.Sprintf("%s read → %s", op.conv, h.describeCmids(res.read))
}
