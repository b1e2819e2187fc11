package hostnet

import (
	"errors"
	"strings"
	"testing"
)

// threeHosts is the default placement on hosts a, b, c: nI and gI on the
// I-th host, redis on c; gateways dial every node's gRPC port and Redis,
// nodes dial each other's Raft port and Redis.
func threeHosts() Topology {
	t := Topology{
		Host: map[string]string{"n1": "a", "g1": "a", "n2": "b", "g2": "b", "n3": "c", "g3": "c", "redis": "c"},
		Addr: map[string]string{"a": "10.0.0.1", "b": "10.0.0.2", "c": "10.0.0.3"},
	}
	nodes := []string{"n1", "n2", "n3"}
	for i, n := range nodes {
		for j, m := range nodes {
			if i != j {
				t.Dials = append(t.Dials, Dial{n, m, 7101 + j})
			}
		}
		t.Dials = append(t.Dials, Dial{n, "redis", 16379})
	}
	for _, g := range []string{"g1", "g2", "g3"} {
		for j, m := range nodes {
			t.Dials = append(t.Dials, Dial{g, m, 7201 + j})
		}
		t.Dials = append(t.Dials, Dial{g, "redis", 16379})
	}
	return t
}

// cut holds both directions between every member of side and every
// member outside it.
func cut(t Topology, side ...string) map[Dir]Fault {
	in := map[string]bool{}
	for _, m := range side {
		in[m] = true
	}
	f := map[Dir]Fault{}
	for a := range t.Host {
		for b := range t.Host {
			if a != b && in[a] != in[b] {
				f[Dir{a, b}] = Fault{Held: true}
			}
		}
	}
	return f
}

func TestCompileIsolatedHost(t *testing.T) {
	topo := threeHosts()
	rules, err := topo.Compile(cut(topo, "n1", "g1"))
	if err != nil {
		t.Fatal(err)
	}
	if len(rules["a"]) == 0 || len(rules["b"]) == 0 || len(rules["c"]) == 0 {
		t.Fatalf("every host needs rules to cut a off: %v", rules)
	}
	for h, rs := range rules {
		for _, r := range rs {
			if r.Loss != 100 {
				t.Errorf("host %s: rule %+v is not a drop", h, r)
			}
			if h == "a" && r.Src == "10.0.0.1" {
				t.Errorf("host a drops its own packets (%+v): n1 and g1 stay together", r)
			}
			if h != "a" && r.Src != "10.0.0.1" {
				t.Errorf("host %s drops packets of a host on its side: %+v", h, r)
			}
		}
	}
	// The host holding redis with n3: isolating n3 and g3 cuts them from
	// redis on their own host, which only they dial from there.
	rules, err = topo.Compile(cut(topo, "n3", "g3"))
	if err != nil {
		t.Fatalf("isolating n3 and g3 from redis on their host: %v", err)
	}
	found := false
	for _, r := range rules["c"] {
		if r.Src == "10.0.0.3" && r.DPort == 16379 {
			found = true
		}
	}
	if !found {
		t.Errorf("host c has no rule dropping its own members' packets to redis: %v", rules["c"])
	}
	if got := Render(rules["c"]); !strings.Contains(got, "ip saddr 10.0.0.3 tcp dport 16379 drop") {
		t.Errorf("rendered table lacks the redis rule:\n%s", got)
	}
}

func TestCompileRefusesWhatAddressesCannotSeparate(t *testing.T) {
	topo := threeHosts()
	// g1 alone: its packets to redis look like n1's (same host, same port).
	_, err := topo.Compile(cut(topo, "g1"))
	if !errors.Is(err, ErrUnsupported) {
		t.Fatalf("isolating g1 from its host-mate's redis: err %v, want ErrUnsupported", err)
	}
	for _, want := range []string{"g1→redis", "n1→redis", "place them on different hosts"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	// With g1 on a host of its own it works.
	topo.Host["g1"] = "d"
	topo.Addr["d"] = "10.0.0.4"
	if _, err := topo.Compile(cut(topo, "g1")); err != nil {
		t.Fatalf("g1 on its own host: %v", err)
	}
}

func TestNetUndoesARefusedBatch(t *testing.T) {
	topo := threeHosts()
	pushed := map[string][]Rule{}
	n := New(topo, func(h string, rs []Rule) error { pushed[h] = rs; return nil })
	if err := n.Batch(func() error {
		for d := range cut(topo, "n1", "g1") {
			n.Hold(d.From, d.To)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	before := len(n.Faults())
	err := n.Batch(func() error {
		for d := range cut(topo, "g2") {
			n.Hold(d.From, d.To)
		}
		return nil
	})
	if !errors.Is(err, ErrUnsupported) {
		t.Fatalf("err %v, want ErrUnsupported", err)
	}
	if got := len(n.Faults()); got != before {
		t.Errorf("a refused batch left %d directional faults, want the %d before it", got, before)
	}
	if err := n.Heal(); err != nil {
		t.Fatal(err)
	}
	for h, rs := range pushed {
		if len(rs) != 0 {
			t.Errorf("host %s keeps %d rules after heal", h, len(rs))
		}
	}
}

func TestRuleValidate(t *testing.T) {
	bad := []Rule{{Src: "x", DPort: 1, Loss: 100}, {Src: "10.0.0.1", Loss: 100}, {Src: "10.0.0.1", DPort: 1, SPort: 2, Loss: 100},
		{Src: "10.0.0.1", DPort: 1, Loss: 0}, {Src: "10.0.0.1; drop", DPort: 1, Loss: 100}}
	for _, r := range bad {
		if r.Validate() == nil {
			t.Errorf("%+v validated", r)
		}
	}
	if err := (Rule{Src: "10.0.0.1", SPort: 7101, Loss: 20}).Validate(); err != nil {
		t.Error(err)
	}
}
