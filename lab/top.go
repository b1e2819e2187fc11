package lab

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// TopSample is what `mpim lab top` reads from every member's /metrics at
// one moment: counters, summed over their series, and which node leads
// shard 0. Differences of two samples are what happened in between.
type TopSample struct {
	At time.Time
	// Nodes, by name: leads shard 0 (as that node sees itself), entries
	// committed as leader, sends refused not_applied and unknown.
	Nodes map[string]NodeCounts
	// Gateways, by name: sends answered, and answered ok.
	Gateways map[string]GatewayCounts
}

// NodeCounts are one node's counters in a TopSample.
type NodeCounts struct {
	Up                           bool
	LeadsShard0                  bool
	Commits, NotApplied, Unknown float64
	ReplicationLagMax            float64 // AP: seconds, the largest over peers
}

// GatewayCounts are one gateway's counters in a TopSample.
type GatewayCounts struct {
	Up        bool
	Sends, OK float64
}

// ReadTop samples the members of the lab whose members are listed (their
// HTTP /metrics), concurrently.
func ReadTop(ctx context.Context, members []MemberState) TopSample {
	s := TopSample{At: time.Now(), Nodes: map[string]NodeCounts{}, Gateways: map[string]GatewayCounts{}}
	type got struct {
		m   MemberState
		fam map[string]*dto.MetricFamily
	}
	ch := make(chan got)
	n := 0
	for _, m := range members {
		if (m.Kind != KindNode && m.Kind != KindGateway) || m.HTTP == "" {
			continue
		}
		n++
		go func() { ch <- got{m, scrapeFamilies(ctx, m.HTTP+"metrics")} }()
	}
	for range n {
		g := <-ch
		f := g.fam
		switch g.m.Kind {
		case KindNode:
			s.Nodes[g.m.Name] = NodeCounts{Up: f != nil,
				LeadsShard0:       sum(f, "mpim_shard_is_leader", map[string]string{"shard": "0"}) == 1,
				Commits:           count(f, "mpim_cp_commit_duration_seconds", nil),
				NotApplied:        count(f, "mpim_node_op_duration_seconds", map[string]string{"op": "Send", "outcome": "not_applied"}),
				Unknown:           count(f, "mpim_node_op_duration_seconds", map[string]string{"op": "Send", "outcome": "unknown"}),
				ReplicationLagMax: maxOf(f, "mpim_ap_replication_lag_seconds")}
		case KindGateway:
			s.Gateways[g.m.Name] = GatewayCounts{Up: f != nil,
				Sends: count(f, "mpim_gateway_request_duration_seconds", map[string]string{"op": "send"}),
				OK:    count(f, "mpim_gateway_request_duration_seconds", map[string]string{"op": "send", "outcome": "ok"})}
		}
	}
	return s
}

// TopLine is one line of `mpim lab top`: what happened between prev and
// cur, per node and gateway.
func TopLine(prev, cur TopSample, start time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%6.1fs", cur.At.Sub(start).Seconds())
	var leaders []string
	for _, name := range sortedNames(cur.Nodes) {
		if cur.Nodes[name].LeadsShard0 {
			leaders = append(leaders, name)
		}
	}
	fmt.Fprintf(&b, "  leader %-5s", strings.Join(append(leaders, "-")[:max(1, len(leaders))], ","))
	for _, name := range sortedNames(cur.Nodes) {
		c, p := cur.Nodes[name], prev.Nodes[name]
		if !c.Up {
			fmt.Fprintf(&b, " | %s down", name)
			continue
		}
		fmt.Fprintf(&b, " | %s commits %3.0f refused %3.0f unknown %2.0f", name, c.Commits-p.Commits, c.NotApplied-p.NotApplied, c.Unknown-p.Unknown)
		if c.ReplicationLagMax > 0 {
			fmt.Fprintf(&b, " lag %.1fs", c.ReplicationLagMax)
		}
	}
	b.WriteString(" ||")
	for _, name := range sortedNames(cur.Gateways) {
		c, p := cur.Gateways[name], prev.Gateways[name]
		if !c.Up {
			fmt.Fprintf(&b, " %s down", name)
			continue
		}
		fmt.Fprintf(&b, " %s ok %.0f/%.0f", name, c.OK-p.OK, c.Sends-p.Sends)
	}
	return b.String()
}

// TopHeader explains TopLine's columns.
const TopHeader = "every interval, from the members' /metrics alone: which node leads shard 0; per node, log entries it committed as leader, sends it refused (not applied) and sends whose outcome is unknown, AP replication lag; per gateway, sends answered ok / answered"

func sortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func scrapeFamilies(ctx context.Context, url string) map[string]*dto.MetricFamily {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fam, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil
	}
	return fam
}

// matches reports whether m carries every label of want.
func matches(m *dto.Metric, want map[string]string) bool {
	for k, v := range want {
		found := false
		for _, l := range m.GetLabel() {
			if l.GetName() == k && l.GetValue() == v {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// sum adds a gauge's or counter's matching series.
func sum(f map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	var t float64
	for _, m := range f[name].GetMetric() {
		if matches(m, want) {
			t += m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	return t
}

// count adds a histogram's matching sample counts.
func count(f map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	var t float64
	for _, m := range f[name].GetMetric() {
		if matches(m, want) {
			t += float64(m.GetHistogram().GetSampleCount())
		}
	}
	return t
}

// maxOf is a gauge's largest series.
func maxOf(f map[string]*dto.MetricFamily, name string) float64 {
	var t float64
	for _, m := range f[name].GetMetric() {
		t = max(t, m.GetGauge().GetValue())
	}
	return t
}
