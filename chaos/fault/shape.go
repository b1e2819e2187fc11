package fault

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Topology is what a partition shape is drawn on: the members and, for
// each gateway, the node it talks to first.
type Topology struct {
	// Nodes are the node members in name order (n1, n2, ...); Members
	// every member (nodes, gateways, redis).
	Nodes, Members []string
	// FirstNode names, for each gateway, the node it talks to first.
	FirstNode map[string]string
}

// Shape turns a partition shape into groups: shapes cut the nodes; each
// gateway stays with its first node; redis joins the side with the most
// nodes (tie: the side holding the lowest-numbered node). Shapes whose
// sides overlap (majorities-ring, bridge) also return the pairs they cut.
// isolate:leader must be resolved to a member by the caller.
func (t Topology) Shape(s string) ([][]string, [][2]string, error) {
	nodes := t.Nodes
	var sides [][]string
	switch {
	case s == "halves":
		if len(nodes) < 2 {
			return nil, nil, fmt.Errorf("partition halves needs at least 2 nodes, the lab has %d", len(nodes))
		}
		small := len(nodes) / 2
		sides = [][]string{slices.Clone(nodes[:small]), slices.Clone(nodes[small:])}
	case strings.HasPrefix(s, "isolate:"):
		target := strings.TrimPrefix(s, "isolate:")
		if !slices.Contains(t.Members, target) {
			return nil, nil, fmt.Errorf("isolate:%s: no such member", target)
		}
		var rest []string
		for _, m := range t.Members {
			if m != target {
				rest = append(rest, m)
			}
		}
		if !slices.Contains(nodes, target) {
			// Isolating a gateway or redis cuts just that member off.
			return [][]string{{target}, rest}, nil, nil
		}
		var others []string
		for _, n := range nodes {
			if n != target {
				others = append(others, n)
			}
		}
		sides = [][]string{{target}, others}
	case s == "majorities-ring":
		return t.majoritiesRing()
	case s == "bridge":
		return t.bridge()
	default:
		return nil, nil, fmt.Errorf("unknown partition shape %q (shapes: %s)", s, strings.Join(Shapes, ", "))
	}
	return t.placeOthers(sides), nil, nil
}

// majoritiesRing places the nodes on a ring in name order; each node
// reaches the nodes within reach of it, which is a majority, and no two
// nodes reach the same majority. Jepsen's nemesis of that name: every node
// can form a quorum, yet no two agree on which. A gateway reaches what its
// first node reaches; redis what n1 reaches (the side holding the
// lowest-numbered node, all sides being the same size).
func (t Topology) majoritiesRing() ([][]string, [][2]string, error) {
	nodes := t.Nodes
	n := len(nodes)
	if n < 5 {
		return nil, nil, fmt.Errorf("partition majorities-ring needs at least 5 nodes (with %d, some two nodes would see the same majority); this lab has %d", n, n)
	}
	majority := n/2 + 1
	reach := majority / 2 // = ceil((majority-1)/2): how far a node reaches on each side
	views := map[string]map[string]bool{}
	for i, a := range nodes {
		views[a] = map[string]bool{}
		for j, b := range nodes {
			d := (i - j + n) % n
			if min(d, n-d) <= reach {
				views[a][b] = true
			}
		}
	}
	return t.cutViews(views, nodes[0])
}

// bridge splits the nodes in two halves around one bridge node (the middle
// one in name order) that reaches both; the halves do not reach each
// other. Gateways follow their first node; redis joins the first half
// (the sides tie on nodes once the bridge is counted in both; the first
// holds the lowest-numbered node).
func (t Topology) bridge() ([][]string, [][2]string, error) {
	nodes := t.Nodes
	if len(nodes) < 3 {
		return nil, nil, fmt.Errorf("partition bridge needs at least 3 nodes (two halves and a bridge); this lab has %d", len(nodes))
	}
	mid := len(nodes) / 2
	b := nodes[mid]
	left, right := slices.Clone(nodes[:mid]), slices.Clone(nodes[mid+1:])
	views := map[string]map[string]bool{}
	for _, half := range [][]string{left, right} {
		for _, a := range half {
			views[a] = map[string]bool{b: true}
			for _, c := range half {
				views[a][c] = true
			}
		}
	}
	views[b] = map[string]bool{}
	for _, c := range nodes {
		views[b][c] = true
	}
	return t.cutViews(views, left[0])
}

// cutViews turns what each node reaches into the pairs to cut. A gateway
// reaches what its first node reaches; redis reaches what node redisWith
// reaches. The groups returned name the sides for reports: one per node,
// holding it, its gateways, and redis on redisWith's side.
func (t Topology) cutViews(views map[string]map[string]bool, redisWith string) ([][]string, [][2]string, error) {
	anchor := map[string]string{} // member -> the node whose view it has
	groups := make([][]string, len(t.Nodes))
	for i, n := range t.Nodes {
		anchor[n] = n
		groups[i] = []string{n}
	}
	for _, g := range t.gateways() {
		first := t.FirstNode[g]
		anchor[g] = first
		i := slices.Index(t.Nodes, first)
		groups[i] = append(groups[i], g)
	}
	anchor["redis"] = redisWith
	i := slices.Index(t.Nodes, redisWith)
	groups[i] = append(groups[i], "redis")
	reaches := func(a, b string) bool { return views[anchor[a]][anchor[b]] }
	var cuts [][2]string
	for i, a := range t.Members {
		for _, b := range t.Members[i+1:] {
			if !reaches(a, b) || !reaches(b, a) {
				cuts = append(cuts, [2]string{a, b})
			}
		}
	}
	return groups, cuts, nil
}

// gateways lists the gateway members in member order.
func (t Topology) gateways() []string {
	var out []string
	for _, m := range t.Members {
		if _, ok := t.FirstNode[m]; ok {
			out = append(out, m)
		}
	}
	return out
}

// placeOthers adds gateways to their first node's side and redis to the
// side with the most nodes (tie: the one with the lowest-numbered node).
func (t Topology) placeOthers(sides [][]string) [][]string {
	sideOf := map[string]int{}
	for i, s := range sides {
		for _, n := range s {
			sideOf[n] = i
		}
	}
	for _, g := range t.gateways() {
		i := sideOf[t.FirstNode[g]]
		sides[i] = append(sides[i], g)
	}
	best := 0
	for i := range sides {
		if nodesIn(sides[i]) > nodesIn(sides[best]) ||
			(nodesIn(sides[i]) == nodesIn(sides[best]) && lowestNode(sides[i]) < lowestNode(sides[best])) {
			best = i
		}
	}
	sides[best] = append(sides[best], "redis")
	return sides
}

func nodesIn(side []string) int {
	n := 0
	for _, m := range side {
		if strings.HasPrefix(m, "n") {
			n++
		}
	}
	return n
}

func lowestNode(side []string) int {
	low := 1 << 30
	for _, m := range side {
		if i, err := strconv.Atoi(strings.TrimPrefix(m, "n")); err == nil && strings.HasPrefix(m, "n") && i < low {
			low = i
		}
	}
	return low
}
