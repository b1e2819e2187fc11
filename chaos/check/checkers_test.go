package check

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// none is an empty cmid list as the checkers report it.
var none = []string{}

func TestSetAnalysisTranscripts(t *testing.T) {
	tests := []struct {
		name string
		want Sets
	}{
		{"clean-run", Sets{}},
		{"sets-lost", Sets{Lost: 1, LostCmids: []string{"b"}}},
		{"sets-duplicated-in-view", Sets{Duplicated: 1, DuplicatedCmids: []string{"b"}}},
		{"sets-duplicated-ids", Sets{Duplicated: 1, DuplicatedCmids: []string{"b"}}},
		{"sets-unexpected", Sets{Unexpected: 2, UnexpectedCmids: []string{"y", "z"}}},
		{"sets-recovered", Sets{Recovered: 2, RecoveredCmids: []string{"b", "e"}}},
		{"sets-fail-applied", Sets{FailApplied: 1, FailAppliedCmids: []string{"b"}}},
		{"sets-never-read", Sets{NeverRead: 1, NeverReadCmids: []string{"d"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := loadRun(t, tt.name)
			want := withEmptyLists(tt.want)
			got := SetAnalysis(r.ops, r.views)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s\nSetAnalysis = %+v\n         want %+v\n"+
					"invariant: every acknowledged message in every member's final view, once, under one id; nothing unsent; nothing refused applied",
					r.about, got, want)
			}
		})
	}
}

// withEmptyLists gives s's nil cmid lists the empty value SetAnalysis reports.
func withEmptyLists(s Sets) Sets {
	for _, l := range []*[]string{&s.LostCmids, &s.DuplicatedCmids, &s.UnexpectedCmids, &s.RecoveredCmids, &s.FailAppliedCmids, &s.NeverReadCmids} {
		if *l == nil {
			*l = none
		}
	}
	return s
}

// TestSetAnalysisRaggedView: a view whose parallel slices disagree in length
// is a harness bug, and must be reported through the counts, not a panic.
func TestSetAnalysisRaggedView(t *testing.T) {
	ops := []Op{{Kind: KindSend, Conv: "g:team", Cmid: "a", Status: StatusOK, Call: ms(0), Return: ms(1)}}
	views := []FinalView{{Client: "alice", Conv: "g:team", IDs: []string{"m1", "m2"}, Cmids: []string{"a"}}}
	got := SetAnalysis(ops, views)
	if got.Lost != 0 || got.Unexpected != 1 {
		t.Errorf("view with 2 ids and 1 cmid: lost %d, unexpected %d (%q); want 0 lost, the cmid-less message unexpected",
			got.Lost, got.Unexpected, got.UnexpectedCmids)
	}
}

func TestDivergentTranscripts(t *testing.T) {
	tests := []struct {
		name string
		want int
	}{
		{"clean-run", 0},
		{"divergent", 1},
		{"sets-lost", 1},               // bob lacks a message alice has
		{"sets-duplicated-in-view", 1}, // alice shows one message twice
		{"sets-duplicated-ids", 0},     // both show the same duplicate
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := loadRun(t, tt.name)
			if got := Divergent(r.views); got != tt.want {
				t.Errorf("%s\nDivergent = %d conversations, want %d; invariant: after heal every member of a conversation shows the same ids in the same order",
					r.about, got, tt.want)
			}
		})
	}
}

func TestAvailabilityTranscripts(t *testing.T) {
	tests := []struct {
		name string
		want Availability
	}{
		{"clean-run", Availability{Overall: 1, DuringFaults: 1, OutsideFaults: 1, BySide: map[string]float64{"g1,g2,n1,n2,redis": 1},
			Samples:            Samples{Overall: 4, DuringFaults: 2, OutsideFaults: 2, BySide: map[string]int{"g1,g2,n1,n2,redis": 2}},
			CompletedAfterHeal: AfterHeal{BySide: map[string]int{}}}},
		{"availability-partition", Availability{Overall: 0.7, DuringFaults: 0.5, OutsideFaults: 1,
			BySide:             map[string]float64{"g1,n1": 0, "g2,g3,n2,n3,redis": 1},
			Samples:            Samples{Overall: 10, DuringFaults: 4, OutsideFaults: 5, BySide: map[string]int{"g1,n1": 3, "g2,g3,n2,n3,redis": 2}},
			CompletedAfterHeal: AfterHeal{BySide: map[string]int{}}}},
		// Sends invoked in the partition and answered after its heal count
		// as completed after heal, not as available on their side.
		{"availability-after-heal", Availability{Overall: 7.0 / 16, DuringFaults: 3.0 / 12, OutsideFaults: 1,
			BySide:             map[string]float64{"g3,n3": 0, "g1,g2,n1,n2,redis": 1},
			Samples:            Samples{Overall: 16, DuringFaults: 12, OutsideFaults: 0, BySide: map[string]int{"g3,n3": 13, "g1,g2,n1,n2,redis": 3}},
			CompletedAfterHeal: AfterHeal{DuringFaults: 4, BySide: map[string]int{"g3,n3": 4}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := loadRun(t, tt.name)
			if got := AvailabilityOf(r.ops, r.faults, r.detection); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("%s\nAvailabilityOf = %+v, want %+v; availability is the share of write attempts in each bucket acknowledged while they counted",
					r.about, got, tt.want)
			}
		})
	}
}

func TestAvailabilityEdges(t *testing.T) {
	send := func(call int64, s Status) Op {
		return Op{Kind: KindSend, Conv: "g:team", Call: ms(call), Return: ms(call + 1), Status: s}
	}
	none := AfterHeal{BySide: map[string]int{}}
	samples := func(all, during, outside int) Samples {
		return Samples{Overall: all, DuringFaults: during, OutsideFaults: outside, BySide: map[string]int{}}
	}
	tests := []struct {
		name      string
		ops       []Op
		faults    []Window
		detection time.Duration
		want      Availability
	}{
		{"no attempts: nothing refused", nil, nil, 0,
			Availability{Overall: 1, DuringFaults: 1, OutsideFaults: 1, BySide: map[string]float64{}, Samples: samples(0, 0, 0), CompletedAfterHeal: none}},
		{"open window lasts to the end", []Op{send(0, StatusOK), send(5000, StatusFail)}, []Window{{Start: ms(1000)}}, 0,
			Availability{Overall: 0.5, DuringFaults: 0, OutsideFaults: 1, BySide: map[string]float64{}, Samples: samples(2, 1, 1), CompletedAfterHeal: none}},
		{"detection of a later window excludes, even inside an earlier one",
			[]Op{send(1500, StatusFail), send(2050, StatusFail), send(2500, StatusOK)},
			[]Window{{Start: ms(1000), End: ms(3000)}, {Start: ms(2000), End: ms(2600)}}, 100 * time.Millisecond,
			Availability{Overall: 1.0 / 3, DuringFaults: 0.5, OutsideFaults: 1, BySide: map[string]float64{}, Samples: samples(3, 2, 0), CompletedAfterHeal: none}},
		{"zero detection counts the window's first instant as during",
			[]Op{send(1000, StatusInfo)}, []Window{{Start: ms(1000), End: ms(2000)}}, 0,
			Availability{Overall: 0, DuringFaults: 0, OutsideFaults: 1, BySide: map[string]float64{}, Samples: samples(1, 1, 0), CompletedAfterHeal: none}},
		{"an ok at the heal's instant still counts as during",
			[]Op{{Kind: KindSend, Call: ms(1500), Return: ms(2000), Status: StatusOK}}, []Window{{Start: ms(1000), End: ms(2000)}}, 0,
			Availability{Overall: 1, DuringFaults: 1, OutsideFaults: 1, BySide: map[string]float64{}, Samples: samples(1, 1, 0), CompletedAfterHeal: none}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := AvailabilityOf(tt.ops, tt.faults, tt.detection); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("AvailabilityOf = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestLatencyTranscripts(t *testing.T) {
	tests := []struct {
		name string
		want Latency
	}{
		{"clean-run", Latency{P50: 10, P99: 50, Max: 50}},
		{"latency", Latency{P50: 5, P99: 10, Max: 10}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := loadRun(t, tt.name)
			if got := LatencyOf(r.ops); got != tt.want {
				t.Errorf("%s\nLatencyOf = %+v, want %+v (nearest-rank, ok ops only)", r.about, got, tt.want)
			}
		})
	}
	if got := LatencyOf(nil); got != (Latency{}) {
		t.Errorf("LatencyOf(no ops) = %+v, want zeros", got)
	}
}

func TestStaleReadsTranscripts(t *testing.T) {
	tests := []struct {
		name              string
		stale, staleLocal int
	}{
		{"clean-run", 0, 0},
		{"stale-reads", 1, 1},
		{"stale-read", 1, 0}, // no read mode recorded: judged as linearizable
		{"sequential", 0, 0},
		{"info-applied-late", 0, 0}, // an info send is never acknowledged
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := loadRun(t, tt.name)
			stale, staleLocal := StaleReads(r.ops)
			if stale != tt.stale || staleLocal != tt.staleLocal {
				t.Errorf("%s\nStaleReads = (%d linearizable, %d local), want (%d, %d); invariant: a read sees every message acknowledged before it began",
					r.about, stale, staleLocal, tt.stale, tt.staleLocal)
			}
		})
	}
}

func TestReorderedTranscripts(t *testing.T) {
	tests := []struct {
		name string
		want int
	}{
		{"clean-run", 0},
		{"reordered", 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := loadRun(t, tt.name)
			if got := Reordered(r.shown); got != tt.want {
				t.Errorf("%s\nReordered = %d, want %d; invariant: a client is never shown a message at a seq at or before one it has already shown",
					r.about, got, tt.want)
			}
		})
	}
}

// TestOpJSON pins the history line format: the fields the chaos harness
// added are omitted when empty, and the linearizability fields keep their
// names.
func TestOpJSON(t *testing.T) {
	op := Op{Process: 3, Kind: KindRead, Conv: "g:team", Call: ms(0), Return: ms(5), Status: StatusOK,
		Read: []string{"a"}, Gateway: "g1", Node: "n2", ReadMode: ReadLocal, Side: "g1,n1"}
	b, err := json.Marshal(op)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"process":3,"kind":"read","conv":"g:team","call":"2025-01-01T00:00:00Z","return":"2025-01-01T00:00:00.005Z",` +
		`"status":"ok","read":["a"],"gateway":"g1","node":"n2","read_mode":"local","side":"g1,n1"}`
	if string(b) != want {
		t.Errorf("Op JSON:\n got %s\nwant %s", b, want)
	}
	var back Op
	if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back, op) {
		t.Errorf("Op JSON round trip: %+v (%v), want %+v", back, err, op)
	}
}

// TestSideCounts: the recorded isolate-leader history, per side.
func TestSideCounts(t *testing.T) {
	r := loadRun(t, "availability-after-heal")
	got := SideCounts(r.ops, r.faults)
	want := map[string]SideCount{
		"g3,n3":             {Sends: 13, Refused: 8, Unknown: 1, AckedLater: 4},
		"g1,g2,n1,n2,redis": {Sends: 3, AckedWhile: 3},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("SideCounts = %+v, want %+v", got, want)
	}
}
