package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"mpim/client"
	"mpim/lab"
)

// scrape reads member's /metrics and sums the samples of name whose
// labels contain every one of labels (e.g. `outcome="not_applied"`).
func (c *cluster) scrape(member, name string, labels ...string) float64 {
	c.t.Helper()
	resp, err := http.Get(c.member(member).HTTP + "metrics")
	if err != nil {
		c.t.Fatalf("scrape %s: %v", member, err)
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, name)
		if !ok || (rest != "" && rest[0] != '{' && rest[0] != ' ') {
			continue
		}
		all := true
		for _, l := range labels {
			all = all && strings.Contains(rest, l)
		}
		if !all {
			continue
		}
		f := strings.Fields(rest[strings.LastIndex(rest, "}")+1:])
		if len(f) > 0 {
			v, _ := strconv.ParseFloat(f[0], 64)
			sum += v
		}
	}
	return sum
}

// TestMetricsDuringPartition: the metrics alone tell the story of a
// partition. CP, the leader cut off: the new leader's commit-latency
// histogram fills, its replica counts a leadership gained, and the cut-off
// node counts the sends it refused (not_applied). AP, a node cut off: its
// replication lag behind the other side rises while the cut lasts and
// falls after heal.
func TestMetricsDuringPartition(t *testing.T) {
	served := map[string]bool{} // every metric family a member served
	t.Run("cp", func(t *testing.T) {
		c := startLab(t, labOpts{nodes: 3, gateways: 3, gatewayArgs: []string{"--call-timeout", "1500ms"}})
		for _, u := range []string{"alice", "bob"} {
			c.register("g1", u)
		}
		old := c.colocatedLeader()
		num := strings.TrimPrefix(old, "n")
		other := map[string]string{"1": "2", "2": "3", "3": "1"}[num]
		cut, kept := c.login("g"+num, "alice", "cut"), c.login("g"+other, "bob", "kept")
		ctx := ctxFor(t, 60*time.Second)
		c.apply("partition isolate:" + old)
		var lead string
		eventually(t, 20*time.Second, "a new leader of every shard on the majority", func() bool {
			lead = ""
			led := 0
			for name, ns := range c.Shards(context.Background()) {
				for _, s := range ns.Shards {
					if name != old && s.State == "Leader" {
						if lead != "" && lead != name {
							return false
						}
						lead, led = name, led+1
					}
				}
			}
			return led == 4
		})
		commitsBefore := c.scrape(lead, "mpim_cp_commit_duration_seconds_count")
		for i := range 10 {
			if _, err := kept.Send(ctx, client.SendArgs{To: "alice", Text: "majority", Cmid: fmt.Sprint("m", i)}); err != nil {
				t.Fatalf("a send on the majority: %v", err)
			}
		}
		for i := range 3 {
			_, _ = cut.Send(ctx, client.SendArgs{To: "bob", Text: "minority", Cmid: fmt.Sprint("c", i)})
		}
		if got := c.scrape(lead, "mpim_cp_commit_duration_seconds_count"); got < commitsBefore+1 {
			t.Errorf("%s, the new leader, has %v commit-latency samples (before the sends %v)", lead, got, commitsBefore)
		}
		if got := c.scrape(lead, "mpim_cp_leadership_changes_total", `change="gained"`); got < 1 {
			t.Errorf("%s, the new leader, counts %v leaderships gained", lead, got)
		}
		eventually(t, 10*time.Second, old+" counts the sends it refused", func() bool {
			return c.scrape(old, "mpim_node_op_duration_seconds_count", `op="Send"`, `outcome="not_applied"`)+
				c.scrape(old, "mpim_node_op_duration_seconds_count", `op="Send"`, `outcome="unknown"`) >= 1
		})
		if got := c.scrape(lead, "mpim_raft_state_candidate") + c.scrape(lead, "mpim_raft_state_leader"); got < 1 {
			t.Errorf("hashicorp/raft's own metrics: %s shows no election (raft_state_candidate + leader = %v)", lead, got)
		}
		// `mpim lab top` reads the same story.
		top := lab.ReadTop(ctx, c.Members())
		if n := top.Nodes[old]; !n.Up || n.NotApplied+n.Unknown < 1 || n.LeadsShard0 {
			t.Errorf("lab top's view of the cut-off %s: %+v, want refusals and no lead", old, n)
		}
		if n := top.Nodes[lead]; !n.LeadsShard0 || n.Commits < 1 {
			t.Errorf("lab top's view of the new leader %s: %+v", lead, n)
		}
		if line := lab.TopLine(lab.TopSample{}, top, top.At); !strings.Contains(line, "leader "+lead) {
			t.Errorf("lab top's line %q does not name %s as the leader", line, lead)
		}
		c.apply("heal")
		c.checkPrometheusConfig()
		for _, m := range []string{"n1", "n2", "n3", "g1", "g2", "g3"} {
			maps.Copy(served, c.families(m))
		}
	})
	t.Run("ap", func(t *testing.T) {
		c := startLab(t, labOpts{mode: "ap", nodes: 3, gateways: 3})
		a1, _, _ := apSetup(t, c)
		lag := func() float64 { return c.scrape("n1", "mpim_ap_replication_lag_seconds", `peer="n2"`) }
		eventually(t, 10*time.Second, "n1's lag behind n2 is known and small before the cut", func() bool {
			v := lag()
			return v > 0 && v < 1
		})
		c.apply("partition n1 g1 / n2 n3 g2 g3 redis")
		eventually(t, 20*time.Second, "n1's lag behind n2 rises past 2 s during the cut", func() bool { return lag() > 2 })
		sendAll(t, a1, "cut", 3)
		c.apply("heal")
		eventually(t, 20*time.Second, "n1's lag behind n2 falls under 1 s after heal", func() bool { return lag() < 1 })
		for _, m := range []string{"n1", "n2", "n3", "g1"} {
			maps.Copy(served, c.families(m))
		}
	})
	// Every series the Grafana dashboard draws is one the members serve.
	b, err := os.ReadFile("../deploy/grafana/mpim.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("deploy/grafana/mpim.json: %v", err)
	}
	names := regexp.MustCompile(`\bmpim_[a-zA-Z0-9_]+`)
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			for _, n := range names.FindAllString(tg.Expr, -1) {
				family := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(n, "_bucket"), "_count"), "_sum")
				if !served[family] {
					t.Errorf("panel %q draws %s, which no member serves", p.Title, n)
				}
			}
		}
	}
}

// families lists the metric families member serves (its # TYPE lines).
func (c *cluster) families(member string) map[string]bool {
	c.t.Helper()
	resp, err := http.Get(c.member(member).HTTP + "metrics")
	if err != nil {
		c.t.Fatalf("scrape %s: %v", member, err)
	}
	defer resp.Body.Close()
	out := map[string]bool{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) >= 3 && f[0] == "#" && f[1] == "TYPE" {
			out[f[2]] = true
		}
	}
	return out
}

// checkPrometheusConfig: the lab's scrape configuration names every node
// and gateway by its /metrics address, labelled with the member's name.
func (c *cluster) checkPrometheusConfig() {
	c.t.Helper()
	resp, err := http.Get(c.Dashboard() + "api/prometheus")
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	var conf struct {
		ScrapeConfigs []struct {
			StaticConfigs []struct {
				Targets []string
				Labels  map[string]string
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.NewDecoder(resp.Body).Decode(&conf); err != nil {
		c.t.Fatalf("the lab's Prometheus configuration is not YAML: %v", err)
	}
	got := map[string]string{}
	for _, sc := range conf.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			for _, tg := range st.Targets {
				got[st.Labels["member"]] = tg
			}
		}
	}
	for _, m := range c.Members() {
		if m.Kind == "redis" {
			continue
		}
		if want := strings.TrimSuffix(strings.TrimPrefix(m.HTTP, "http://"), "/"); got[m.Name] != want {
			c.t.Errorf("the Prometheus configuration scrapes %s at %q, want %q", m.Name, got[m.Name], want)
		}
	}
}
