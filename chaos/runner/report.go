package runner

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"mpim/chaos/check"
	"mpim/chaos/scenario"
	"mpim/client"
	"mpim/lab"
)

// Report is report.json: every key of shared/spec/lab.md, and more.
type Report map[string]any

// Verdict is "pass" or "fail".
func (r Report) Verdict() string { s, _ := r["verdict"].(string); return s }

// finish heals everything, waits for convergence, reads every client's
// final view, checks the history and writes the report.
// lostControl fails the run when the lab lost an agent (a lab spread
// over hosts): part of the cluster was out of its hands, so whatever the
// checks would say is not a verdict on the scenario.
func (r *runner) lostControl() error {
	if err := r.lab.Lost(); err != nil {
		return fmt.Errorf("%w: lost control of the cluster, so this run has no verdict: %v", ErrSetup, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.refused) > 0 {
		return fmt.Errorf("%w: the fault layer refused %s, so the scenario did not happen as written and this run has no verdict", ErrSetup, strings.Join(r.refused, "; "))
	}
	return nil
}

func (r *runner) finish(ctx context.Context) (*Report, error) {
	cfg := r.cfg
	if err := r.lostControl(); err != nil {
		return nil, err
	}
	healStart := time.Now()
	r.lab.ApplyString(ctx, "heal")
	for _, m := range r.lab.Members() {
		switch m.State {
		case lab.StateKilled, lab.StateExited:
			r.lab.Restart(ctx, m.Name)
		case lab.StatePaused:
			r.lab.Resume(m.Name)
		}
	}
	converged, finalConvergenceMS := r.waitConverged(ctx, healStart)
	cfg.progress("healed; replicas converged: %v after %d ms", converged, finalConvergenceMS)
	views, finals, finalFailed := r.finalViews(ctx)
	if err := r.lostControl(); err != nil {
		return nil, err
	}
	if finalFailed > 0 {
		cfg.progress("%d final reads never succeeded: those views are missing from the checks", finalFailed)
	}
	r.rec.mu.Lock()
	ops := append(r.rec.ops, finals...)
	shown, resyncs := r.rec.shown, r.rec.resyncs
	r.rec.mu.Unlock()
	r.mu.Lock()
	windows, events := r.windows, r.events
	heal, healConverged := r.heal, r.healConverged
	r.mu.Unlock()

	rep := Report{
		"scenario": cfg.Scenario.Name, "mode": cfg.Mode, "seed": cfg.Seed,
		"duration_s": cfg.Scenario.Duration.Seconds(), "command": cfg.Command, "ap_repair": nil,
	}
	if cfg.Mode == "ap" {
		rep["ap_repair"] = cfg.APRepair
	}
	counts := map[string]int{"ok": 0, "fail": 0, "info": 0}
	for _, op := range ops {
		counts[string(op.Status)]++
	}
	rep["ops"] = counts
	avail := check.AvailabilityOf(ops, windows, detection)
	rep["availability"] = avail
	lat := check.LatencyOf(ops)
	rep["latency_ms"] = lat
	sets := check.SetAnalysis(ops, views)
	rep["lost"], rep["duplicated"], rep["unexpected"] = sets.Lost, sets.Duplicated, sets.Unexpected
	rep["recovered"], rep["fail_applied"] = sets.Recovered, sets.FailApplied
	rep["reordered"], rep["resyncs"] = check.Reordered(shown), resyncs
	stale, staleLocal := check.StaleReads(ops)
	rep["stale_reads"], rep["stale_local_reads"] = stale, staleLocal
	divergent := check.Divergent(views)
	rep["divergent_conversations"] = divergent
	rep["converged"] = converged && divergent == 0
	// convergence_ms is timed from the heal of the scenario's own fault
	// (repair while the workload goes on); without one (a scenario that
	// never heals), from the harness's final heal, as is
	// convergence_after_final_heal_ms always.
	rep["convergence_after_final_heal_ms"] = finalConvergenceMS
	switch {
	case heal.IsZero():
		rep["convergence_ms"], rep["convergence_from"] = finalConvergenceMS, "final heal (the scenario heals no fault)"
	case healConverged.IsZero():
		rep["convergence_ms"], rep["convergence_from"] = nil, fmt.Sprintf("the scenario's faults ended at %.2fs; replicas not seen to agree before the next step or the end of the workload", heal.Sub(r.start).Seconds())
	default:
		rep["convergence_ms"], rep["convergence_from"] = healConverged.Sub(heal).Milliseconds(), fmt.Sprintf("the scenario's faults ended at %.2fs (its heal, restart or resume)", heal.Sub(r.start).Seconds())
	}
	rep["side_counts"] = check.SideCounts(ops, windows)
	rep["fault_measured_s"] = check.MeasuredFaultTime(windows, r.start.Add(cfg.Scenario.Duration), detection).Seconds()
	rep["linearizable"] = nil
	if cfg.Mode == "cp" {
		var lin []check.Op
		for _, op := range ops {
			if op.Kind == check.KindSend || op.ReadMode != "local" {
				lin = append(lin, op)
			}
		}
		v := check.Linearizable(lin, 30*time.Second)
		rep["linearizable"] = v.Linearizable
		check.Visualize(lin, 30*time.Second, filepath.Join(cfg.Out, "linearizability.html"))
	}
	// Views that could not be read are left out of lost / duplicated /
	// divergent (a refused read is not an empty view); how many is stated.
	rep["final_reads_failed"] = finalFailed
	rep["fault_windows"] = windows
	rep["events"] = events
	rep["lost_cmids"], rep["fail_applied_cmids"] = sets.LostCmids, sets.FailAppliedCmids
	// Expectations are checked against the report as JSON reads it.
	var asJSON map[string]any
	b, _ := json.Marshal(rep)
	json.Unmarshal(b, &asJSON)
	outcomes := scenario.Evaluate(cfg.Scenario.Expect[cfg.ModeKey()], asJSON)
	rep["expectations"] = outcomes
	rep["verdict"] = "pass"
	for _, o := range outcomes {
		if !o.OK {
			rep["verdict"] = "fail"
		}
	}
	if err := r.write(rep, ops); err != nil {
		return nil, err
	}
	return &rep, nil
}

// waitConverged waits (up to 10 s) until every node's replica holds the
// same messages in the same order.
func (r *runner) waitConverged(ctx context.Context, since time.Time) (bool, int64) {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if r.replicasAgree(ctx, time.Time{}) {
			return true, time.Since(since).Milliseconds()
		}
		time.Sleep(100 * time.Millisecond)
	}
	return false, time.Since(since).Milliseconds()
}

// replicasAgree reports whether every node's replica holds the same
// messages in the same order, per conversation (count and digest); with
// a non-zero before, the messages stamped before it (a conversation with
// none of them is left out: it may not have reached every replica yet).
func (r *runner) replicasAgree(ctx context.Context, before time.Time) bool {
	reps := r.lab.ReplicasBefore(ctx, before)
	var ref string
	for i, name := range sortedKeys(reps) {
		rp := reps[name]
		if rp.Error != "" {
			return false
		}
		if !before.IsZero() {
			maps.DeleteFunc(rp.Convs, func(_ string, c lab.ConvReplica) bool { return c.Count == 0 })
		}
		key := fmt.Sprint(rp.Convs)
		if i == 0 {
			ref = key
		} else if key != ref {
			return false
		}
	}
	return true
}

// convergencePoll is how often the replicas are compared after the
// scenario's heal.
const convergencePoll = 50 * time.Millisecond

// watchConvergence polls the replicas after the scenario's heal at heal,
// while the workload goes on, until they agree on every message written
// before the heal, or until (the next fault step, or the end of the
// workload). Messages written after the heal are left out of the
// comparison, so the workload going on does not hide agreement: what is
// timed is repair, the cut sides getting what the other wrote.
func (r *runner) watchConvergence(ctx context.Context, heal, until time.Time) {
	for time.Now().Before(until) && ctx.Err() == nil {
		if r.replicasAgree(ctx, heal) {
			r.mu.Lock()
			if r.heal.Equal(heal) {
				r.healConverged = time.Now()
			}
			r.mu.Unlock()
			return
		}
		time.Sleep(convergencePoll)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// finalViews logs every user in afresh and reads each of its
// conversations: its final view, and (as history ops) final reads.
func (r *runner) finalViews(ctx context.Context) ([]check.FinalView, []check.Op, int) {
	gws := r.gatewayURLs()
	var views []check.FinalView
	var ops []check.Op
	failed := 0
	proc := r.rec.newProcess()
	deadline := time.Now().Add(finalReadsFor)
	for i, u := range r.users {
		// Right after heal a shard may still be electing or moving its
		// leader: every step is retried (on the next gateway too) until
		// finalReadsFor has passed, so that a refused read is never taken
		// for an empty view.
		var c *client.Conn
		for try := 0; c == nil && time.Now().Before(deadline); try++ {
			conn, err := client.Dial(ctx, gws[(i+try)%len(gws)], client.Options{})
			if err == nil {
				if _, err = conn.Login(ctx, u, password, "final"); err == nil {
					c = conn
					break
				}
				conn.Close()
			}
			time.Sleep(finalRetry)
		}
		if c == nil {
			failed += len(r.convs[u])
			continue
		}
		for _, conv := range r.convs[u] {
			var h client.HistoryResult
			var ok bool
			for !ok && time.Now().Before(deadline) {
				op := check.Op{Process: proc, Kind: check.KindRead, Conv: conv, ReadMode: "linearizable", Call: time.Now()}
				if r.cfg.Mode == "ap" {
					op.ReadMode = "local"
				}
				var err error
				h, err = readConversation(ctx, c, conv, op.ReadMode)
				op.Return, op.Status = time.Now(), Outcome(err)
				if err != nil {
					op.Status, op.Error = check.StatusFail, err.Error()
					time.Sleep(finalRetry)
				} else {
					ok = true
					for _, m := range h.Messages {
						op.Read = append(op.Read, m.Cmid)
					}
				}
				ops = append(ops, op)
			}
			if !ok {
				failed++
				continue
			}
			v := check.FinalView{Client: u, Conv: conv}
			for _, m := range h.Messages {
				v.IDs, v.Cmids, v.Senders = append(v.IDs, m.ID), append(v.Cmids, m.Cmid), append(v.Senders, m.From)
			}
			views = append(views, v)
		}
		c.Close()
	}
	return views, ops, failed
}

// The final reads are retried every finalRetry for up to finalReadsFor
// in all.
const (
	finalReadsFor = 30 * time.Second
	finalRetry    = 200 * time.Millisecond
)

// write saves report.json, report.md, report.html and history.jsonl.
func (r *runner) write(rep Report, ops []check.Op) error {
	out := r.cfg.Out
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, "report.json"), b, 0o644); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(out, "history.jsonl"))
	if err != nil {
		return err
	}
	enc := json.NewEncoder(f)
	for _, op := range ops {
		enc.Encode(op)
	}
	f.Close()
	if err := os.WriteFile(filepath.Join(out, "report.html"), []byte(reportHTML(rep, ops, r.start)), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(out, "report.md"), []byte(markdown(rep)), 0o644)
}

// markdown is report.md: the verdict, the numbers, the expectations.
func markdown(rep Report) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# %v — %v", rep["scenario"], rep["mode"])
	if rep["ap_repair"] == false {
		b.WriteString(" (repair off)")
	}
	fmt.Fprintf(&b, ": %v\n\n%s\n\nRerun: `%v`\n\n", rep["verdict"], sentence(rep), rep["command"])
	if note := shortFaultNote(rep); note != "" {
		fmt.Fprintf(&b, "%s\n\n", note)
	}
	b.WriteString("| figure | value |\n|---|---|\n")
	for _, r := range numbers(rep) {
		fmt.Fprintf(&b, "| %s | %s |\n", r.label, r.value)
	}
	b.WriteString("\nreport.json holds every value at full precision; docs/chaos.md defines each.\n")
	b.WriteString("\n## Expectations\n\n| key | want | got | ok |\n|---|---|---|---|\n")
	if outs, ok := rep["expectations"].([]scenario.Outcome); ok {
		for _, o := range outs {
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", o.Key, show(o.Want), show(o.Got), show(o.OK))
		}
	}
	b.WriteString("\n## Faults\n\n")
	if evs, ok := rep["events"].([]string); ok {
		for _, e := range evs {
			fmt.Fprintf(&b, "- %s\n", e)
		}
	}
	return b.String()
}

// minMeasuredFault is the fault time past detection below which a report
// warns that its shares during faults rest on little.
const minMeasuredFault = 3.0

// shortFaultNote warns when the run measured little fault time (a quick
// schedule leaves a few seconds of a cut past the detection period).
func shortFaultNote(rep Report) string {
	f, ok := rep["fault_measured_s"].(float64)
	w, _ := rep["fault_windows"].([]check.Window)
	if !ok || len(w) == 0 || f >= minMeasuredFault {
		return ""
	}
	return fmt.Sprintf("Note: this run measured only %s s of faults past the %s s detection period (a --quick schedule compresses them): the shares during faults rest on few attempts; run without --quick for firmer figures.", num(f), num(detection.Seconds()))
}
