package e2e

import (
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mpim/client"
	"mpim/internal/spans"
)

// otelSpan is the part of the OpenTelemetry stdout exporter's span record
// the test reads.
type otelSpan struct {
	Name        string
	SpanContext struct{ TraceID, SpanID string }
	Parent      struct{ TraceID, SpanID string }
	Attributes  []struct {
		Key   string
		Value struct{ Value any }
	}
}

func (s otelSpan) attr(key string) string {
	for _, a := range s.Attributes {
		if a.Key == key {
			v, _ := a.Value.Value.(string)
			return v
		}
	}
	return ""
}

// TestTraceAcrossProcesses: with --trace-file on every member, one CP send
// through a gateway whose node does not lead the conversation's shard is
// one OpenTelemetry trace across three processes — the gateway's span, the
// entry node's (its parent came in the gRPC metadata), the leader's
// forwarded proposal, and the leader's batcher and commit stages under it.
func TestTraceAcrossProcesses(t *testing.T) {
	dir := t.TempDir()
	c := startLab(t, labOpts{nodes: 3, gateways: 3, memberArgs: func(m string) []string {
		if m == "redis" {
			return nil
		}
		return []string{"--trace-file", filepath.Join(dir, m+".jsonl")}
	}})
	c.register("g1", "alice")
	c.register("g1", "bob")
	lead := c.colocatedLeader()
	entry := map[string]string{"n1": "n2", "n2": "n3", "n3": "n1"}[lead]
	gw := "g" + strings.TrimPrefix(entry, "n")
	alice := c.login(gw, "alice", "d")
	if _, err := alice.Send(ctxFor(t, 10*time.Second), client.SendArgs{To: "bob", Text: "traced", Cmid: "traced-1"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil { // members flush their exporters as they stop
		t.Fatal(err)
	}
	key := spans.Key("alice", "traced-1")
	byID := map[string]otelSpan{}
	var mine []otelSpan
	for _, m := range []string{gw, "n1", "n2", "n3"} {
		f, err := os.Open(filepath.Join(dir, m+".jsonl"))
		if err != nil {
			t.Fatalf("%s wrote no trace file: %v", m, err)
		}
		dec := json.NewDecoder(f)
		for {
			var s otelSpan
			if err := dec.Decode(&s); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s's trace file: %v", m, err)
			}
			byID[s.SpanContext.SpanID] = s
			if s.attr("mpim.send") == key {
				mine = append(mine, s)
			}
		}
		f.Close()
	}
	// find is the span of member named name, or starting with name
	// without its final "*".
	find := func(member, name string) otelSpan {
		t.Helper()
		prefix, isPrefix := strings.CutSuffix(name, "*")
		for _, s := range mine {
			if s.attr("mpim.member") == member && (s.Name == name || isPrefix && strings.HasPrefix(s.Name, prefix)) {
				return s
			}
		}
		t.Fatalf("no span %q of %s for the send; spans of the send: %d", name, member, len(mine))
		return otelSpan{}
	}
	root := find(gw, "gateway: send")
	onEntry := find(entry, "node: send")
	onLeader := find(lead, "node: forwarded send on the shard's leader")
	commit := find(lead, "cp: Raft commit and apply*")
	for _, s := range mine {
		if strings.Contains(s.Name, "push") {
			continue // the fan-out after the reply is a trace of its own, found by mpim.send
		}
		if s.SpanContext.TraceID != root.SpanContext.TraceID {
			t.Errorf("span %q of %s is in trace %s, not the send's %s", s.Name, s.attr("mpim.member"), s.SpanContext.TraceID, root.SpanContext.TraceID)
		}
	}
	if onEntry.Parent.SpanID != root.SpanContext.SpanID {
		t.Errorf("%s's send span's parent is %s, want the gateway's span %s (carried in gRPC metadata)", entry, onEntry.Parent.SpanID, root.SpanContext.SpanID)
	}
	// The leader's span descends from the entry node's send span.
	ancestor := onLeader.Parent.SpanID
	for ancestor != "" && ancestor != onEntry.SpanContext.SpanID {
		ancestor = byID[ancestor].Parent.SpanID
	}
	if ancestor == "" {
		t.Errorf("the leader %s's forwarded span does not descend from %s's send span", lead, entry)
	}
	if commit.Parent.SpanID != onLeader.SpanContext.SpanID {
		t.Errorf("the leader's commit stage's parent is %s, want its forwarded-send span %s", commit.Parent.SpanID, onLeader.SpanContext.SpanID)
	}
}
