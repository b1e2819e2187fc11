package lab

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// shapeLab is a lab with n nodes and n gateways and no processes: enough
// for the shape arithmetic.
func shapeLab(n int) *Lab {
	l := &Lab{cfg: Config{Nodes: n}, byName: map[string]*member{}}
	add := func(name string, kind Kind) {
		m := &member{info: MemberState{Name: name, Kind: kind}}
		l.members = append(l.members, m)
		l.byName[name] = m
	}
	add("redis", KindRedis)
	for i := 1; i <= n; i++ {
		add(fmt.Sprintf("n%d", i), KindNode)
	}
	for i := 1; i <= n; i++ {
		add(fmt.Sprintf("g%d", i), KindGateway)
	}
	return l
}

// reach lists, for each node, the nodes it can still talk to.
func reach(l *Lab, cuts [][2]string) map[string][]string {
	cut := map[[2]string]bool{}
	for _, c := range cuts {
		cut[c], cut[[2]string{c[1], c[0]}] = true, true
	}
	out := map[string][]string{}
	for _, a := range l.members {
		if a.info.Kind != KindNode {
			continue
		}
		for _, b := range l.members {
			if b.info.Kind == KindNode && !cut[[2]string{a.info.Name, b.info.Name}] {
				out[a.info.Name] = append(out[a.info.Name], b.info.Name)
			}
		}
	}
	return out
}

// TestMajoritiesRing: every node reaches a majority of the nodes, no two
// nodes reach the same set, and below 5 nodes the shape is refused.
func TestMajoritiesRing(t *testing.T) {
	for n := 5; n <= 9; n++ {
		l := shapeLab(n)
		groups, cuts, err := l.shape("majorities-ring")
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]string{}
		for node, sees := range reach(l, cuts) {
			if len(sees) < n/2+1 {
				t.Errorf("%d nodes: %s reaches %v, not a majority", n, node, sees)
			}
			key := strings.Join(sees, " ")
			if other, dup := seen[key]; dup {
				t.Errorf("%d nodes: %s and %s reach the same majority %v", n, node, other, sees)
			}
			seen[key] = node
		}
		if len(cuts) == 0 {
			t.Errorf("%d nodes: the ring cuts nothing", n)
		}
		if len(groups) != n || !slices.Contains(groups[0], "redis") || !slices.Contains(groups[0], "g1") {
			t.Errorf("%d nodes: sides %v, want one per node, g1 and redis with n1", n, groups)
		}
	}
	for _, n := range []int{3, 4} {
		if _, _, err := shapeLab(n).shape("majorities-ring"); err == nil || !strings.Contains(err.Error(), "at least 5 nodes") {
			t.Errorf("%d nodes: err %v, want a clear refusal naming 5 nodes", n, err)
		}
	}
}

// TestBridge: the halves do not reach each other, the bridge node reaches
// everyone, gateways follow their node and redis the first half.
func TestBridge(t *testing.T) {
	l := shapeLab(5)
	_, cuts, err := l.shape("bridge")
	if err != nil {
		t.Fatal(err)
	}
	r := reach(l, cuts)
	want := map[string]string{"n1": "n1 n2 n3", "n2": "n1 n2 n3", "n3": "n1 n2 n3 n4 n5", "n4": "n3 n4 n5", "n5": "n3 n4 n5"}
	for node, w := range want {
		if got := strings.Join(r[node], " "); got != w {
			t.Errorf("%s reaches %q, want %q", node, got, w)
		}
	}
	cut := map[[2]string]bool{}
	for _, c := range cuts {
		cut[c], cut[[2]string{c[1], c[0]}] = true, true
	}
	for _, c := range []struct {
		a, b string
		cut  bool
	}{{"g1", "n4", true}, {"g1", "n3", false}, {"g3", "n5", false}, {"g3", "n1", false}, {"redis", "n4", true}, {"redis", "n2", false}, {"g5", "redis", true}} {
		if cut[[2]string{c.a, c.b}] != c.cut {
			t.Errorf("%s-%s cut = %v, want %v", c.a, c.b, !c.cut, c.cut)
		}
	}
	if _, _, err := shapeLab(2).shape("bridge"); err == nil {
		t.Error("bridge with 2 nodes was accepted")
	}
}
