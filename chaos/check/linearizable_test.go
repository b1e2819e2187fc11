package check

import (
	"maps"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// checkTimeout is generous: every hand-written history decides in microseconds.
const checkTimeout = 10 * time.Second

func TestLinearizableTranscripts(t *testing.T) {
	tests := []struct {
		name string
		want any      // the report's value
		bad  []string // conversations reported not linearizable
	}{
		{name: "sequential", want: true},
		{name: "concurrent-sends-ab", want: true},
		{name: "concurrent-sends-ba", want: true},
		{name: "stale-read", want: false, bad: []string{"g:team"}},
		{name: "lost-write", want: false, bad: []string{"g:team"}},
		{name: "duplicate-in-read", want: false, bad: []string{"g:team"}},
		{name: "wrong-seq", want: false, bad: []string{"g:team"}},
		{name: "info-seen", want: true},
		{name: "info-never-seen", want: true},
		{name: "info-applied-late", want: true},
		{name: "info-seen-then-missing", want: false, bad: []string{"g:team"}},
		{name: "retry-dup", want: true},
		{name: "fail-dropped", want: true},
		{name: "fail-applied", want: false, bad: []string{"g:team"}},
		{name: "two-convs", want: false, bad: []string{"g:bad"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			about, ops := loadTranscript(t, tt.name)
			v := Linearizable(ops, checkTimeout)
			if v.Linearizable != tt.want {
				t.Errorf("%s\nlinearizable = %v, want %v (convs %v)", about, v.Linearizable, tt.want, v.Convs)
			}
			if want := append([]string{}, tt.bad...); !slices.Equal(v.Bad, want) {
				t.Errorf("%s\nbad conversations = %q, want %q", about, v.Bad, want)
			}
			for conv, res := range v.Convs {
				if want := ConvOK; slices.Contains(tt.bad, conv) != (res != want) {
					t.Errorf("conversation %s: result %q, yet bad list %q", conv, res, v.Bad)
				}
			}
			if t.Failed() {
				visualizeFailure(t, tt.name, ops)
			}
		})
	}
}

// visualizeFailure writes the timeline of a failed test's history to a file
// that outlives the test, as 6.5840's labs do, and logs where it is.
func visualizeFailure(t *testing.T, name string, ops []Op) {
	t.Helper()
	f, err := os.CreateTemp("", "check-"+name+"-*.html")
	if err != nil {
		t.Logf("no timeline: %v", err)
		return
	}
	f.Close()
	if err := Visualize(ops, checkTimeout, f.Name()); err != nil {
		t.Logf("no timeline: %v", err)
		return
	}
	t.Logf("timeline of the history: %s", f.Name())
}

func TestLinearizableChecksConversationsSeparately(t *testing.T) {
	_, ops := loadTranscript(t, "two-convs")
	v := Linearizable(ops, checkTimeout)
	want := map[string]string{"g:good": ConvOK, "g:bad": ConvIllegal}
	if !maps.Equal(v.Convs, want) {
		t.Errorf("per-conversation results = %v, want %v", v.Convs, want)
	}
}

func TestLinearizableEmpty(t *testing.T) {
	v := Linearizable(nil, checkTimeout)
	if v.Linearizable != true || len(v.Convs) != 0 || len(v.Bad) != 0 {
		t.Errorf("empty history: verdict %+v, want linearizable with no conversations", v)
	}
}

// TestLinearizableGenerated checks a history of a simulated linearizable
// server (concurrent processes, info and fail outcomes, retries), then the
// same history with one read made stale.
func TestLinearizableGenerated(t *testing.T) {
	cfg := genConfig{ops: 2000, procs: 12, convs: 4, read: 0.3, info: 0.03, fail: 0.03, retry: 0.5}
	ops := genHistory(1, cfg)
	if v := Linearizable(ops, time.Minute); v.Linearizable != true {
		t.Fatalf("generated linearizable history: verdict %v, bad %q", v.Linearizable, v.Bad)
	}

	// Make the last ok read that saw at least two messages miss its newest
	// one whose send had completed before the read began.
	for i := len(ops) - 1; i >= 0; i-- {
		r := ops[i]
		if r.Kind != KindRead || r.Status != StatusOK || len(r.Read) < 2 {
			continue
		}
		last := r.Read[len(r.Read)-1]
		done := slices.ContainsFunc(ops, func(s Op) bool {
			return s.Kind == KindSend && s.Conv == r.Conv && s.Cmid == last && s.Status == StatusOK && s.Return.Before(r.Call)
		})
		if !done {
			continue
		}
		ops[i].Read = r.Read[:len(r.Read)-1]
		v := Linearizable(ops, time.Minute)
		if v.Linearizable != false || !slices.Equal(v.Bad, []string{r.Conv}) {
			t.Errorf("conversation %s: a read missing %s, acknowledged before it began, gave verdict %v, bad %q",
				r.Conv, last, v.Linearizable, v.Bad)
		}
		return
	}
	t.Fatal("generated history has no read to make stale")
}

// TestLinearizableTimeout: a deadline that passes before checking ends
// yields "unknown", never a guess.
func TestLinearizableTimeout(t *testing.T) {
	ops := genHistory(2, genConfig{ops: 4000, procs: 16, convs: 4, read: 0.3, info: 0.05, fail: 0.02})
	v := Linearizable(ops, time.Nanosecond)
	if v.Linearizable != ConvUnknown {
		t.Errorf("1ns timeout: linearizable = %v, want %q", v.Linearizable, ConvUnknown)
	}
	if len(v.Bad) != 0 {
		t.Errorf("1ns timeout: bad = %q, want none: running out of time is no evidence", v.Bad)
	}
	for conv, res := range v.Convs {
		if res != ConvUnknown {
			t.Errorf("1ns timeout: conversation %s is %q, want %q", conv, res, ConvUnknown)
		}
	}

	// Porcupine itself, handed a 1ns timeout on one large conversation,
	// gives up rather than answer.
	h := newHistory(ops)
	part := partitionByConv(h.ops)[0]
	if res := porcupine.CheckOperationsTimeout(h.model(), part, time.Nanosecond); res == porcupine.Illegal {
		t.Errorf("porcupine with a 1ns timeout on a linearizable history: %s", res)
	} else {
		t.Logf("porcupine with a 1ns timeout on %d ops: %s", len(part), res)
	}
}

func TestVerdictOf(t *testing.T) {
	tests := []struct {
		name    string
		results map[string]porcupine.CheckResult
		want    Verdict
	}{
		{"all ok", map[string]porcupine.CheckResult{"a": porcupine.Ok, "b": porcupine.Ok},
			Verdict{true, map[string]string{"a": ConvOK, "b": ConvOK}, []string{}}},
		{"one unknown", map[string]porcupine.CheckResult{"a": porcupine.Ok, "b": porcupine.Unknown},
			Verdict{"unknown", map[string]string{"a": ConvOK, "b": ConvUnknown}, []string{}}},
		{"illegal beats unknown", map[string]porcupine.CheckResult{"a": porcupine.Illegal, "b": porcupine.Unknown, "c": porcupine.Illegal},
			Verdict{false, map[string]string{"a": ConvIllegal, "b": ConvUnknown, "c": ConvIllegal}, []string{"a", "c"}}},
		{"none", map[string]porcupine.CheckResult{}, Verdict{true, map[string]string{}, []string{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := verdictOf(tt.results); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("verdictOf(%v) = %+v, want %+v", tt.results, got, tt.want)
			}
		})
	}
}

// TestStep pins the sequential specification, one transition at a time.
func TestStep(t *testing.T) {
	h := newHistory(nil)
	code := func(cmids ...string) string {
		var b []byte
		for _, c := range cmids {
			b = append(b, codeOf(h, c)...)
		}
		return string(b)
	}
	send := func(cmid string) input { return input{kind: KindSend, cmid: code(cmid)} }
	read := input{kind: KindRead}
	tests := []struct {
		name  string
		state string
		in    input
		out   output
		want  []any
	}{
		{"send appends at next seq", code("a"), send("b"), output{status: StatusOK, seq: 2}, []any{code("a", "b")}},
		{"send with a gap", code("a"), send("b"), output{status: StatusOK, seq: 3}, nil},
		{"dup answers first seq", code("a", "b"), send("a"), output{status: StatusOK, seq: 1}, []any{code("a", "b")}},
		{"dup with a new seq", code("a", "b"), send("a"), output{status: StatusOK, seq: 3}, nil},
		{"info may or may not apply", code("a"), send("b"), output{status: StatusInfo}, []any{code("a"), code("a", "b")}},
		{"info of a present cmid", code("a"), send("a"), output{status: StatusInfo}, []any{code("a")}},
		{"read sees the state", code("a", "b"), read, output{status: StatusOK, read: code("a", "b")}, []any{code("a", "b")}},
		{"read misses one", code("a", "b"), read, output{status: StatusOK, read: code("a")}, nil},
		{"read out of order", code("a", "b"), read, output{status: StatusOK, read: code("b", "a")}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := step(tt.state, tt.in, tt.out); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("step(%s, %s) = %q, want %q", h.describeCmids(tt.state), h.describeOp(tt.in, tt.out), got, tt.want)
			}
		})
	}
}

// codeOf interns cmid into h's table the way newHistory does.
func codeOf(h *history, cmid string) string {
	for i, n := range h.names {
		if n == cmid {
			return newCode(i)
		}
	}
	h.names = append(h.names, cmid)
	return newCode(len(h.names) - 1)
}

func TestDescribeCmidsElidesLongConversations(t *testing.T) {
	h := newHistory(nil)
	var codes string
	for _, c := range strings.Fields("a b c d e f g h i j k l m n o") {
		codes += codeOf(h, c)
	}
	want := "[a b c …3 more… g h i j k l m n o]"
	if got := h.describeCmids(codes); got != want {
		t.Errorf("describeCmids = %q, want %q", got, want)
	}
	if got, want := h.describeCmids(codes[:3*codeLen]), "[a b c]"; got != want {
		t.Errorf("describeCmids = %q, want %q", got, want)
	}
}
