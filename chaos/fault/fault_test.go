package fault

import (
	"errors"
	"reflect"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want Fault
		err  bool
	}{
		{in: "partition n1 g1 / n2 n3 g2 g3 redis", want: Fault{Verb: Partition, Groups: [][]string{{"n1", "g1"}, {"n2", "n3", "g2", "g3", "redis"}}}},
		{in: "partition n1/n2/n3", want: Fault{Verb: Partition, Groups: [][]string{{"n1"}, {"n2"}, {"n3"}}}},
		{in: "partition n1 /", want: Fault{Verb: Partition, Groups: [][]string{{"n1"}, {}}}},
		{in: "partition halves", want: Fault{Verb: Partition, Shape: "halves"}},
		{in: "partition isolate:leader", want: Fault{Verb: Partition, Shape: "isolate:leader"}},
		{in: "partition isolate:n2", want: Fault{Verb: Partition, Shape: "isolate:n2"}},
		{in: "oneway n1 / n2 n3", want: Fault{Verb: Oneway, Groups: [][]string{{"n1"}, {"n2", "n3"}}}},
		{in: "delay n1 n2 ms=40 jitter=20", want: Fault{Verb: Delay, Members: []string{"n1", "n2"}, MS: 40, Jitter: 20}},
		{in: "delay n3 ms=10", want: Fault{Verb: Delay, Members: []string{"n3"}, MS: 10}},
		{in: "loss n3 percent=20", want: Fault{Verb: Loss, Members: []string{"n3"}, Percent: 20}},
		{in: "kill leader", want: Fault{Verb: Kill, Members: []string{"leader"}}},
		{in: "restart n2", want: Fault{Verb: Restart, Members: []string{"n2"}}},
		{in: "pause g1", want: Fault{Verb: Pause, Members: []string{"g1"}}},
		{in: "resume g1", want: Fault{Verb: Resume, Members: []string{"g1"}}},
		{in: "  heal  ", want: Fault{Verb: Heal}},
		{in: "", err: true},
		{in: "explode n1", err: true},
		{in: "partition n1", err: true},
		{in: "partition sideways", err: true},
		{in: "partition / n1", err: true},
		{in: "partition n1 / n1", err: true},
		{in: "oneway n1 / n2 / n3", err: true},
		{in: "oneway n1", err: true},
		{in: "delay n1 n2 n3 ms=5", err: true},
		{in: "delay n1", err: true},
		{in: "delay n1 ms=x", err: true},
		{in: "delay n1 ms=-3", err: true},
		{in: "delay n1 percent=3", err: true},
		{in: "loss n1 percent=101", err: true},
		{in: "kill", err: true},
		{in: "kill n1 n2", err: true},
		{in: "heal now", err: true},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in)
		if tt.err {
			if err == nil || !errors.Is(err, ErrSyntax) {
				t.Errorf("Parse(%q) = %+v, %v; want a syntax error", tt.in, got, err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			continue
		}
		again, err := Parse(got.String())
		if err != nil || !reflect.DeepEqual(again, got) {
			t.Errorf("Parse(%q).String() = %q does not parse back: %+v, %v", tt.in, got.String(), again, err)
		}
	}
}

func TestComplete(t *testing.T) {
	members := []string{"n1", "n2", "n3", "g1", "g2", "g3", "redis"}
	f, _ := Parse("partition n1 g1 / n2")
	got, err := f.Complete(members)
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{{"n1", "g1"}, {"n2", "n3", "g2", "g3", "redis"}}
	if !reflect.DeepEqual(got.Groups, want) {
		t.Fatalf("members not named must join the last group: got %v, want %v", got.Groups, want)
	}
	if !reflect.DeepEqual(f.Groups, [][]string{{"n1", "g1"}, {"n2"}}) {
		t.Fatalf("Complete changed its receiver: %v", f.Groups)
	}
	for _, s := range []string{"partition n9 / n1", "kill g7", "delay n1 x9 ms=3"} {
		f, err := Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Complete(members); err == nil {
			t.Errorf("%q: Complete accepted a member the lab does not have", s)
		}
	}
	f, _ = Parse("partition n1 n2 n3 g1 g2 g3 redis /")
	if _, err := f.Complete(members); err == nil {
		t.Error("a partition whose last group ends up empty was accepted")
	}
	f, _ = Parse("kill leader")
	if _, err := f.Complete(members); err != nil {
		t.Errorf("kill leader: %v", err)
	}
}
