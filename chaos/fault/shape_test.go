package fault

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// shapeTopology is n nodes and n gateways, gI talking first to nI, and
// redis, in the lab's member order.
func shapeTopology(n int) Topology {
	t := Topology{FirstNode: map[string]string{}}
	for i := 1; i <= n; i++ {
		t.Nodes = append(t.Nodes, fmt.Sprintf("n%d", i))
	}
	t.Members = append(t.Members, t.Nodes...)
	for i := 1; i <= n; i++ {
		g := fmt.Sprintf("g%d", i)
		t.Members = append(t.Members, g)
		t.FirstNode[g] = fmt.Sprintf("n%d", i)
	}
	t.Members = append(t.Members, "redis")
	return t
}

// reach lists, for each node, the nodes it can still talk to.
func reach(t Topology, cuts [][2]string) map[string][]string {
	cut := map[[2]string]bool{}
	for _, c := range cuts {
		cut[c], cut[[2]string{c[1], c[0]}] = true, true
	}
	out := map[string][]string{}
	for _, a := range t.Nodes {
		for _, b := range t.Nodes {
			if !cut[[2]string{a, b}] {
				out[a] = append(out[a], b)
			}
		}
	}
	return out
}

// TestMajoritiesRing: every node reaches a majority of the nodes, no two
// nodes reach the same set, and below 5 nodes the shape is refused.
func TestMajoritiesRing(t *testing.T) {
	for n := 5; n <= 9; n++ {
		l := shapeTopology(n)
		groups, cuts, err := l.Shape("majorities-ring")
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
		if _, _, err := shapeTopology(n).Shape("majorities-ring"); err == nil || !strings.Contains(err.Error(), "at least 5 nodes") {
			t.Errorf("%d nodes: err %v, want a clear refusal naming 5 nodes", n, err)
		}
	}
}

// TestBridge: the halves do not reach each other, the bridge node reaches
// everyone, gateways follow their node and redis the first half.
func TestBridge(t *testing.T) {
	l := shapeTopology(5)
	_, cuts, err := l.Shape("bridge")
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
	if _, _, err := shapeTopology(2).Shape("bridge"); err == nil {
		t.Error("bridge with 2 nodes was accepted")
	}
}

// TestShapeSides: halves puts the smaller half first; isolate of a node
// keeps its gateway with it and redis with the majority; isolate of a
// gateway or redis cuts just that member off; an unknown member or shape
// is refused.
func TestShapeSides(t *testing.T) {
	topo := shapeTopology(3)
	for _, tc := range []struct{ shape, want string }{
		{"halves", "[[n1 g1] [n2 n3 g2 g3 redis]]"},
		{"isolate:n2", "[[n2 g2] [n1 n3 g1 g3 redis]]"},
		{"isolate:g3", "[[g3] [n1 n2 n3 g1 g2 redis]]"},
		{"isolate:redis", "[[redis] [n1 n2 n3 g1 g2 g3]]"},
	} {
		groups, cuts, err := topo.Shape(tc.shape)
		if err != nil || fmt.Sprint(groups) != tc.want || cuts != nil {
			t.Errorf("%s: %v %v %v, want %s", tc.shape, groups, cuts, err, tc.want)
		}
	}
	for _, bad := range []string{"isolate:n9", "triangle"} {
		if _, _, err := topo.Shape(bad); err == nil {
			t.Errorf("%s was accepted", bad)
		}
	}
}
