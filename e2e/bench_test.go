package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestBench runs `mpim bench` briefly, open loop at a low rate against its
// own small cluster with the clients in two load processes, and checks that
// the result is well formed: sends acknowledged, pushes delivered, and
// every latency summary ordered. It asserts no timing: the machine is
// shared.
func TestBench(t *testing.T) {
	out := t.TempDir()
	cmd := exec.Command(mpimBin, "bench", "--nodes", "1", "--gateways", "2", "--shards", "2",
		"--conns", "6", "--rate", "60", "--warmup", "1s", "--duration", "3s", "--procs", "2", "--trace", "3", "--out", out)
	output, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("mpim bench: %v\n%s", err, tail(string(output), 30))
	}
	raw, err := os.ReadFile(filepath.Join(out, "result.json"))
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		Host struct {
			FDLimit   uint64 `json:"fd_limit"`
			LoadStart string `json:"loadavg_start"`
		} `json:"host"`
		Load struct {
			Procs int `json:"procs"`
		} `json:"load"`
		Phases []struct {
			Loop               string             `json:"loop"`
			Sent               uint64             `json:"sent"`
			OK                 uint64             `json:"ok"`
			Errors             map[string]uint64  `json:"errors"`
			DuplicatePushes    uint64             `json:"duplicate_pushes"`
			Deliveries         uint64             `json:"deliveries"`
			ExpectedDeliveries uint64             `json:"expected_deliveries"`
			Ack                map[string]float64 `json:"ack_ms"`
			Delivery           map[string]float64 `json:"delivery_ms"`
		} `json:"phases"`
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		t.Fatalf("result.json: %v\n%s", err, raw)
	}
	if len(res.Phases) != 1 || res.Load.Procs != 2 || res.Host.FDLimit == 0 || res.Host.LoadStart == "" {
		t.Fatalf("result.json: want one phase from 2 load processes with the host's fd limit and load: %s", raw)
	}
	ph := res.Phases[0]
	// No fault, a low rate: every send is acknowledged, and 1:1 every
	// acknowledged send is delivered once (at most one delivery per send
	// made: a send answered timeout may still have been delivered).
	if ph.Loop != "open" || ph.Sent == 0 || ph.OK != ph.Sent || len(ph.Errors) != 0 {
		t.Fatalf("phase: loop %q, sent %d, ok %d, errors %v: want an open loop with every send acknowledged", ph.Loop, ph.Sent, ph.OK, ph.Errors)
	}
	if ph.ExpectedDeliveries != ph.OK || ph.Deliveries < ph.ExpectedDeliveries || ph.Deliveries > ph.Sent || ph.DuplicatePushes != 0 {
		t.Fatalf("phase: sent %d, ok %d, deliveries %d (%d expected from the acks), duplicate pushes %d: want every acknowledged send delivered once",
			ph.Sent, ph.OK, ph.Deliveries, ph.ExpectedDeliveries, ph.DuplicatePushes)
	}
	for name, s := range map[string]map[string]float64{"ack_ms": ph.Ack, "delivery_ms": ph.Delivery} {
		order := []string{"min", "p50", "p90", "p99", "p999", "max"}
		for i := 1; i < len(order); i++ {
			if s[order[i-1]] > s[order[i]] || s[order[i]] <= 0 {
				t.Fatalf("%s: %s %v then %s %v: percentiles must be positive and ordered (%v)", name, order[i-1], s[order[i-1]], order[i], s[order[i]], s)
			}
		}
		if uint64(s["count"]) == 0 {
			t.Fatalf("%s: empty histogram", name)
		}
	}
	if _, err := os.Stat(filepath.Join(out, "result.md")); err != nil {
		t.Fatal(err)
	}
	// --trace 3: the three slowest sends (from both load processes), each
	// with the spans the gateway and the node recorded for it.
	raw, err = os.ReadFile(filepath.Join(out, "trace.json"))
	if err != nil {
		t.Fatal(err)
	}
	var traced []struct {
		Key   string  `json:"key"`
		AckMS float64 `json:"ack_ms"`
		Spans []struct {
			Proc, Name string
		} `json:"spans"`
	}
	if err := json.Unmarshal(raw, &traced); err != nil || len(traced) != 3 {
		t.Fatalf("trace.json: %v, %d sends traced, want 3: %s", err, len(traced), raw)
	}
	for i, tr := range traced {
		if i > 0 && tr.AckMS > traced[i-1].AckMS {
			t.Errorf("trace.json is not slowest first: %v ms after %v ms", tr.AckMS, traced[i-1].AckMS)
		}
		procs := map[string]bool{}
		for _, s := range tr.Spans {
			procs[s.Proc[:1]] = true
		}
		if !procs["g"] || !procs["n"] {
			t.Errorf("send %s traced with spans from %v, want a gateway's and a node's: %s", tr.Key, procs, raw)
		}
	}
}
