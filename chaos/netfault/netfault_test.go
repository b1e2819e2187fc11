package netfault

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"mpim/chaos/fault"
	"mpim/chaos/proxy"
)

// fakeBackend records the directional faults in force, and can fail.
type fakeBackend struct {
	held     map[[2]string]bool
	delay    map[[2]string]time.Duration
	loss     map[[2]string]int
	failOn   string // a "from>to" whose Hold fails
	noDelay  string // a member whose links refuse delay (as netns without netem)
	failHeal bool
	batches  int
}

func newFake() *fakeBackend {
	return &fakeBackend{held: map[[2]string]bool{}, delay: map[[2]string]time.Duration{}, loss: map[[2]string]int{}}
}

func (f *fakeBackend) Hold(a, b string) error {
	if f.failOn == a+">"+b {
		return errors.New("rule refused")
	}
	f.held[[2]string{a, b}] = true
	return nil
}
func (f *fakeBackend) Release(a, b string) error { delete(f.held, [2]string{a, b}); return nil }
func (f *fakeBackend) SetDelay(a, b string, d, _ time.Duration) error {
	if f.noDelay != "" && (a == f.noDelay || b == f.noDelay) {
		return fmt.Errorf("%w: no netem here", ErrUnsupported)
	}
	f.delay[[2]string{a, b}] = d
	return nil
}
func (f *fakeBackend) SetLoss(a, b string, p int) error { f.loss[[2]string{a, b}] = p; return nil }
func (f *fakeBackend) Heal() error {
	if f.failHeal {
		return errors.New("a rule could not be removed")
	}
	*f = *newFake()
	return nil
}
func (f *fakeBackend) Faults() []proxy.DirFault {
	var out []proxy.DirFault
	for k := range f.held {
		out = append(out, proxy.DirFault{From: k[0], To: k[1], Held: true})
	}
	return out
}
func (f *fakeBackend) Close() error                { return nil }
func (f *fakeBackend) Batch(fn func() error) error { f.batches++; return fn() }

func (f *fakeBackend) heldPairs() []string {
	var out []string
	for k := range f.held {
		out = append(out, k[0]+">"+k[1])
	}
	slices.Sort(out)
	return out
}

var members = []string{"n1", "n2", "g1", "g2", "redis"}

func apply(t *testing.T, n *Network, spelled string) error {
	t.Helper()
	f, err := fault.Parse(spelled)
	if err != nil {
		t.Fatal(err)
	}
	if f, err = f.Complete(members); err != nil {
		t.Fatal(err)
	}
	listed, err := n.Apply(f, members)
	now := n.Faults()
	if f.Verb != fault.Heal && listed != (len(now) > 0 && now[len(now)-1] == f.String()) {
		t.Errorf("%s: Apply says listed=%v, yet the faults in force are %v", spelled, listed, now)
	}
	return err
}

// TestNetwork: a partition holds both directions of every cut pair in one
// batch and replaces the previous partition and oneways, keeping delays;
// oneway holds one direction; delay of one member touches each of its
// links; heal clears the backend and the list.
func TestNetwork(t *testing.T) {
	b := newFake()
	n := New(b)
	if err := apply(t, n, "oneway g1 / n1"); err != nil {
		t.Fatal(err)
	}
	if got := b.heldPairs(); !slices.Equal(got, []string{"g1>n1"}) {
		t.Fatalf("oneway g1 / n1 holds %v, want g1>n1 only", got)
	}
	if err := apply(t, n, "delay n1 ms=40"); err != nil {
		t.Fatal(err)
	}
	if err := apply(t, n, "loss g2 percent=10"); err != nil {
		t.Fatal(err)
	}
	batches := b.batches
	if len(b.delay) != 2*(len(members)-1) || b.delay[[2]string{"redis", "n1"}] != 40*time.Millisecond {
		t.Fatalf("delay n1 set %v, want both directions of n1's %d links", b.delay, len(members)-1)
	}
	if err := apply(t, n, "partition n1 g1 / n2 g2 redis"); err != nil {
		t.Fatal(err)
	}
	want := []string{}
	for _, a := range []string{"n1", "g1"} {
		for _, c := range []string{"n2", "g2", "redis"} {
			want = append(want, a+">"+c, c+">"+a)
		}
	}
	slices.Sort(want)
	if got := b.heldPairs(); !slices.Equal(got, want) {
		t.Fatalf("partition holds %v, want %v (and the oneway's g1>n1 released)", got, want)
	}
	if b.batches != batches+1 {
		t.Fatalf("the partition took %d batches, want one (the old cut never opens before the new one closes)", b.batches-batches)
	}
	if got := strings.Join(n.Faults(), "; "); got != "delay n1 ms=40; loss g2 percent=10; partition n1 g1 / n2 g2 redis" {
		t.Fatalf("faults in force: %q (a partition keeps delays and losses)", got)
	}
	if b.loss[[2]string{"g2", "n1"}] != 10 {
		t.Fatalf("the partition dropped g2's loss: %v", b.loss)
	}
	b.failHeal = true
	if err := apply(t, n, "heal"); err == nil || len(n.Faults()) != 3 {
		t.Fatalf("a failed heal: err %v, faults %v; want the error and the faults still listed", err, n.Faults())
	}
	b.failHeal = false
	if err := apply(t, n, "heal"); err != nil || len(b.held) != 0 || len(n.Faults()) != 0 {
		t.Fatalf("after heal: err %v, held %v, faults %v", err, b.heldPairs(), n.Faults())
	}
}

// TestNetworkPartlyFailed: a fault whose rule fails is reported and stays
// listed (some of it is in force); the None backend refuses every network
// fault with ErrUnsupported.
func TestNetworkPartlyFailed(t *testing.T) {
	b := newFake()
	b.failOn = "n2>n1"
	n := New(b)
	err := apply(t, n, "partition n1 / n2")
	if err == nil || !strings.Contains(err.Error(), "rule refused") {
		t.Fatalf("partition with a failing rule: %v", err)
	}
	if len(n.Faults()) != 1 {
		t.Fatalf("a partly applied partition is not listed: %v", n.Faults())
	}
	b = newFake()
	b.noDelay = "n2"
	n = New(b)
	if err := apply(t, n, "delay n2 ms=5"); !errors.Is(err, ErrUnsupported) || len(n.Faults()) != 0 {
		t.Fatalf("delay the backend refuses: %v, faults %v; want ErrUnsupported and nothing listed", err, n.Faults())
	}
	if err := apply(t, n, "delay g1 ms=5"); !errors.Is(err, ErrUnsupported) || len(n.Faults()) != 1 {
		t.Fatalf("delay refused on one of its links (g1-n2): %v, faults %v; want the error and the fault listed (the rest took effect)", err, n.Faults())
	}
	none := New(None())
	for _, s := range []string{"partition n1 / n2", "delay n1 ms=5", "loss n1 percent=5", "oneway n1 / n2"} {
		if err := apply(t, none, s); !errors.Is(err, ErrUnsupported) {
			t.Errorf("%s without a fault layer: %v, want ErrUnsupported", s, err)
		}
	}
	if err := apply(t, none, "heal"); err != nil {
		t.Errorf("heal without a fault layer: %v", err)
	}
}

func TestPairs(t *testing.T) {
	if got := fmt.Sprint(Pairs([]string{"n1", "g2"}, members)); got != "[[n1 g2]]" {
		t.Errorf("two members: %s", got)
	}
	if got := len(Pairs([]string{"g1"}, members)); got != len(members)-1 {
		t.Errorf("one member: %d links, want %d", got, len(members)-1)
	}
}
