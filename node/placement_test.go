package node

import (
	"fmt"
	"testing"
)

// TestPlacement: up to 5 nodes all vote in every shard; beyond, each shard
// has exactly 5 voters, the rest follow, and voters spread over the nodes.
func TestPlacement(t *testing.T) {
	three := []string{"n1", "n2", "n3"}
	if v, nv := placement(three, 2); fmt.Sprint(v) != fmt.Sprint(three) || nv != nil {
		t.Fatalf("3 nodes: voters %v nonvoters %v, want all voting", v, nv)
	}
	seven := []string{"n1", "n2", "n3", "n4", "n5", "n6", "n7"}
	votes := map[string]int{}
	for shard := 0; shard < 7; shard++ {
		v, nv := placement(seven, shard)
		if len(v) != ReplicationFactor || len(v)+len(nv) != 7 {
			t.Fatalf("shard %d: %d voters and %d nonvoters, want 5 and 2", shard, len(v), len(nv))
		}
		for _, m := range v {
			votes[m]++
		}
	}
	for _, m := range seven {
		if votes[m] != 5 {
			t.Fatalf("over 7 shards node %s votes in %d, want 5 (an even spread)", m, votes[m])
		}
	}
}
