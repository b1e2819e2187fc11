package fsm

import (
	"fmt"
	"math/rand/v2"
	"mpim/internal/convid"
	"slices"
	"testing"
)

// logGen generates a random but reproducible command log from a seed: users
// (some names and explicit uids collide), groups, joins and leaves, sends
// into groups and DMs by members and non-members, retries of earlier sends
// and acks and reads, some naming missing messages. It keeps a reference
// store so that most commands make sense given the state before them; the
// log it returns is fixed, so applying it anywhere must give the same state.
type logGen struct {
	t     testing.TB
	r     *rand.Rand
	ref   *harness
	names []string // registered, in order
	uids  map[string]uint64
	sent  []Send            // sends that stored a message, for retries
	convs map[string]uint64 // conversation -> max seq
	n     int               // unique id and cmid counter
}

func newLogGen(t testing.TB, seed uint64, cfg Config) *logGen {
	return &logGen{
		t:     t,
		r:     rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		ref:   newHarness(t, cfg),
		uids:  map[string]uint64{},
		convs: map[string]uint64{},
	}
}

// entries returns n log entries of one to four commands each.
func (g *logGen) entries(n int) [][]Command {
	g.t.Helper()
	log := make([][]Command, 0, n)
	for range n {
		e := make([]Command, 1+g.r.IntN(4))
		for i := range e {
			e[i] = g.command()
		}
		g.learn(e, g.ref.apply(e...))
		log = append(log, e)
	}
	return log
}

// learn updates the model from the reference store's results.
func (g *logGen) learn(e []Command, rs []Result) {
	for i, c := range e {
		r := rs[i]
		switch {
		case r.Err != nil:
		case c.Register != nil:
			g.names = append(g.names, c.Register.Name)
			g.uids[c.Register.Name] = r.UID
		case c.Send != nil && !r.Dup:
			g.sent = append(g.sent, *c.Send)
			g.convs[r.Conv] = r.Seq
		}
	}
}

func (g *logGen) user() (string, uint64) {
	if len(g.names) == 0 {
		return "nobody", 999
	}
	n := g.names[g.r.IntN(len(g.names))]
	return n, g.uids[n]
}

// memberOf mostly picks a member of conv (per the state before the entry),
// sometimes anyone, so that non-member refusals stay the exception.
func (g *logGen) memberOf(conv string) (string, uint64) {
	ms := Members(g.ref.kv, conv)
	if len(ms) == 0 || g.r.IntN(6) == 0 {
		return g.user()
	}
	u, _ := UserByUID(g.ref.kv, ms[g.r.IntN(len(ms))])
	return u.Name, u.UID
}

func (g *logGen) group() string { return fmt.Sprintf("grp%d", g.r.IntN(5)) }

func (g *logGen) conv() string {
	if len(g.convs) == 0 || g.r.IntN(8) == 0 {
		return convid.OfGroup(g.group())
	}
	// Map iteration order is random: pick from a sorted view.
	var all []string
	for c := range g.convs {
		all = append(all, c)
	}
	slices.Sort(all)
	return all[g.r.IntN(len(all))]
}

func (g *logGen) command() Command {
	g.n++
	switch p := g.r.IntN(100); {
	case p < 10 || len(g.names) < 2:
		var uid uint64
		if g.r.IntN(5) == 0 {
			uid = 1 + g.r.Uint64N(25)
		}
		return regUID(fmt.Sprintf("user%d", g.r.IntN(30)), uid)
	case p < 13:
		_, uid := g.user()
		return nick(uid, fmt.Sprintf("nick%d", g.n))
	case p < 19:
		_, creator := g.user()
		var members []uint64
		for range g.r.IntN(4) {
			_, m := g.user()
			members = append(members, m)
		}
		return mkGroup(g.group(), creator, members...)
	case p < 25:
		_, uid := g.user()
		return joinGroup(g.group(), uid)
	case p < 29:
		_, uid := g.user()
		return leaveGroup(g.group(), uid)
	case p < 62:
		s := Send{Text: fmt.Sprintf("text %d", g.n), Ts: int64(g.n),
			ID: fmt.Sprintf("m%d", g.n), Cmid: fmt.Sprintf("c%d", g.n), Origin: "gen"}
		if g.r.IntN(6) == 0 {
			s.Cmid = fmt.Sprintf("c%d", g.r.IntN(3)) // collides across senders and conversations
		}
		if g.r.IntN(4) == 0 {
			from, fromUID := g.user()
			_, toUID := g.user()
			s.Conv, s.From, s.FromUID, s.To = convid.DMKey(fromUID, toUID), from, fromUID, toUID
		} else {
			s.Conv = g.conv()
			s.From, s.FromUID = g.memberOf(s.Conv)
		}
		return Command{Send: &s}
	case p < 74 && len(g.sent) > 0:
		s := g.sent[g.r.IntN(len(g.sent))]
		if g.r.IntN(2) == 0 {
			s.ID = fmt.Sprintf("m%d", g.n) // the node gave the retry a fresh id
		}
		return Command{Send: &s}
	default:
		conv := g.conv()
		_, uid := g.memberOf(conv)
		c := &Cursor{UID: uid, Conv: conv, Seq: 1 + g.r.Uint64N(g.convs[conv]+2)}
		if g.r.IntN(4) == 0 && len(g.sent) > 0 {
			c.Seq, c.ID = 0, g.sent[g.r.IntN(len(g.sent))].ID
		}
		if g.r.IntN(2) == 0 {
			c.Device = fmt.Sprintf("dev%d", g.r.IntN(3))
			return Command{Ack: c}
		}
		return Command{Read: c}
	}
}

// applyLog applies log from index first on, failing on storage errors, and
// returns every result in order.
func applyLog(t testing.TB, m *Machine, tx Tx, first uint64, log [][]Command) []Result {
	t.Helper()
	var all []Result
	for i, e := range log {
		rs, err := m.Apply(tx, first+uint64(i), e)
		if err != nil {
			t.Fatalf("entry %d: %v", first+uint64(i), err)
		}
		all = append(all, rs...)
	}
	return all
}

// TestLogGenCoverage keeps the generator honest: a log must exercise
// successes and each refusal the tests rely on it for.
func TestLogGenCoverage(t *testing.T) {
	g := newLogGen(t, 1, Config{DedupWindow: 8})
	log := g.entries(400)
	rs := applyLog(t, g.ref.m, NewMemKV(), 1, log)
	counts := map[string]int{}
	for _, r := range rs {
		switch {
		case r.Err != nil:
			counts[r.Err.Error()]++
		case r.Dup:
			counts["dup"]++
		case r.Message != nil:
			counts["message"]++
		}
	}
	for _, want := range []string{"dup", "message", ErrNotMember.Error(), ErrNameTaken.Error(), ErrUIDTaken.Error(),
		ErrNoSuchGroup.Error(), ErrGroupExists.Error(), ErrNoSuchMessage.Error()} {
		if counts[want] == 0 {
			t.Errorf("generated log never produced %q; outcomes %v", want, counts)
		}
	}
	t.Logf("outcomes of %d commands: %v", len(rs), counts)
}
