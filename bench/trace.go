package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"mpim/lab"
)

// SlowSend is one acknowledged send: its spans' key (sender/cmid), when it
// was scheduled and when its ack arrived (Unix nanoseconds).
type SlowSend struct {
	Key   string `json:"key"`
	Sched int64  `json:"sched_ns"`
	Acked int64  `json:"acked_ns"`
}

func (s SlowSend) latency() time.Duration { return time.Duration(s.Acked - s.Sched) }

// slowest keeps the slowest sends, slowest first.
type slowest []SlowSend

// add keeps s if it is among the keep slowest.
func (l slowest) add(s SlowSend, keep int) slowest {
	if len(l) == keep && s.latency() <= l[len(l)-1].latency() {
		return l
	}
	i, _ := slices.BinarySearchFunc(l, s, func(a, b SlowSend) int { return int(b.latency() - a.latency()) })
	l = slices.Insert(l, i, s)
	if len(l) > keep {
		l = l[:keep]
	}
	return l
}

// spanRing is how many spans each member keeps with --trace.
const spanRing = 200_000

// span is one member's span of a traced send, as /debug/spans serves it.
type span struct {
	Key   string `json:"key"`
	Proc  string `json:"proc"`
	Name  string `json:"name"`
	Start int64  `json:"start_ns"`
	End   int64  `json:"end_ns"`
}

// TracedSend is one of the slowest sends with every member's spans of it.
type TracedSend struct {
	SlowSend
	AckMS float64 `json:"ack_ms"`
	Spans []span  `json:"spans"`
}

// traceSlowest reads, from every member of l, the spans of the sends in
// slow, and writes them to trace.json and trace.md in out, each span as
// offsets from the send's scheduled time.
func traceSlowest(ctx context.Context, l *lab.Lab, slow []SlowSend, out string) (string, error) {
	q := url.Values{}
	for _, s := range slow {
		q.Add("key", s.Key)
	}
	byKey := map[string][]span{}
	client := &http.Client{Timeout: 5 * time.Second}
	for _, m := range l.Members() {
		if m.HTTP == "" || (m.Kind != lab.KindNode && m.Kind != lab.KindGateway) {
			continue
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(m.HTTP, "/")+"/debug/spans?"+q.Encode(), nil)
		resp, err := client.Do(req)
		if err != nil {
			return "", fmt.Errorf("bench: spans of %s: %w", m.Name, err)
		}
		var got []span
		err = json.NewDecoder(resp.Body).Decode(&got)
		resp.Body.Close()
		if err != nil {
			return "", fmt.Errorf("bench: spans of %s: %w", m.Name, err)
		}
		for _, s := range got {
			byKey[s.Key] = append(byKey[s.Key], s)
		}
	}
	var traced []TracedSend
	for _, s := range slow {
		sp := byKey[s.Key]
		slices.SortStableFunc(sp, func(a, b span) int { return int(a.Start - b.Start) })
		traced = append(traced, TracedSend{SlowSend: s, AckMS: ms(s.latency()), Spans: sp})
	}
	b, err := json.MarshalIndent(traced, "", "  ")
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(out, "trace.json"), b, 0o644); err != nil {
		return "", err
	}
	md := traceMarkdown(traced)
	path := filepath.Join(out, "trace.md")
	return path, os.WriteFile(path, []byte(md), 0o644)
}

// traceMarkdown lays each traced send out as a table of its spans, each
// as start and end offsets from the send's scheduled time.
func traceMarkdown(traced []TracedSend) string {
	var b strings.Builder
	b.WriteString("# The slowest sends, stage by stage\n\n")
	b.WriteString("Each table is one acknowledged send of the first phase, slowest first: every span the gateway and the node recorded for it (`--spans`), as milliseconds from the moment the load generator scheduled it (the members share this machine's clock). A gap between one span's end and the next one's start is time no stage accounts for: the network, a run queue, the client.\n\n")
	for _, t := range traced {
		fmt.Fprintf(&b, "## %s: acknowledged after %.2f ms\n\n", t.Key, t.AckMS)
		if len(t.Spans) == 0 {
			b.WriteString("(no spans: the members' rings had moved past it)\n\n")
			continue
		}
		b.WriteString("| from ms | to ms | took ms | where | stage |\n|---|---|---|---|---|\n")
		for _, s := range t.Spans {
			from, to := float64(s.Start-t.Sched)/1e6, float64(s.End-t.Sched)/1e6
			fmt.Fprintf(&b, "| %.2f | %.2f | %.2f | %s | %s |\n", from, to, to-from, s.Proc, s.Name)
		}
		fmt.Fprintf(&b, "| | %.2f | | client | ack read by the load generator |\n\n", t.AckMS)
	}
	return b.String()
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
