package check

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"
)

// genConfig shapes a generated history.
type genConfig struct {
	ops, procs, convs int
	read, info, fail  float64 // shares of reads, info outcomes, fail outcomes
	retry             float64 // share of info sends retried with the same cmid
}

// genHistory simulates a linearizable chat server: each op takes effect at
// a random point inside its [Call, Return] and answers accordingly, so the
// history it returns is linearizable by construction. An info send takes
// effect at that point or never (half the time); a fail send never does.
// After an info send the process may retry the same cmid, which the server
// answers with the message's first seq when the original was applied.
func genHistory(seed uint64, c genConfig) []Op {
	r := rand.New(rand.NewPCG(seed, 0))
	base := time.Unix(1_700_000_000, 0)
	at := func(us int64) time.Time { return base.Add(time.Duration(us) * time.Microsecond) }

	type event struct {
		op      Op
		point   int64 // when it takes effect, µs
		applies bool  // for a send: whether it takes effect at all
	}
	clock := make([]int64, c.procs)
	retry := make([]string, c.procs) // cmid to retry next, per process
	retryConv := make([]string, c.procs)
	events := make([]event, 0, c.ops)
	for n := 0; n < c.ops; n++ {
		p := n % c.procs
		call := clock[p]
		point := call + 1 + r.Int64N(200)
		ret := point + 1 + r.Int64N(200)
		clock[p] = ret + r.Int64N(50)
		op := Op{Process: p, Conv: fmt.Sprintf("g:%d", r.IntN(c.convs)), Call: at(call), Return: at(ret), Status: StatusOK}
		e := event{point: point, applies: true}
		switch {
		case retry[p] != "":
			op.Kind, op.Cmid, op.Conv = KindSend, retry[p], retryConv[p]
			retry[p] = ""
		case r.Float64() < c.read:
			op.Kind = KindRead
		default:
			op.Kind, op.Cmid = KindSend, fmt.Sprintf("p%d-%d", p, n)
		}
		switch x := r.Float64(); {
		case x < c.info:
			op.Status, op.Return = StatusInfo, time.Time{}
			e.applies = r.IntN(2) == 0
			if op.Kind == KindSend && r.Float64() < c.retry {
				retry[p], retryConv[p] = op.Cmid, op.Conv
			}
		case x < c.info+c.fail:
			op.Status, e.applies = StatusFail, false
		}
		e.op = op
		events = append(events, e)
	}

	// Apply in effect order, answering each op from the state at its point.
	slices.SortStableFunc(events, func(a, b event) int { return cmp.Compare(a.point, b.point) })
	logs := make(map[string][]string)
	ops := make([]Op, 0, len(events))
	for _, e := range events {
		op, log := e.op, logs[e.op.Conv]
		switch {
		case op.Kind == KindRead && op.Status == StatusOK:
			op.Read = slices.Clone(log)
		case op.Kind == KindSend && e.applies:
			pos := slices.Index(log, op.Cmid)
			if pos < 0 {
				log = append(log, op.Cmid)
				pos = len(log) - 1
				logs[op.Conv] = log
			}
			if op.Status == StatusOK {
				op.Seq = uint64(pos + 1)
			}
		}
		ops = append(ops, op)
	}
	// Histories are recorded in invocation order.
	slices.SortStableFunc(ops, func(a, b Op) int { return a.Call.Compare(b.Call) })
	return ops
}
