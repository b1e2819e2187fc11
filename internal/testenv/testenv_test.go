package testenv

import (
	"errors"
	"fmt"
	"testing"
)

// recorder is a testing.TB that records how Need stopped it.
type recorder struct {
	testing.TB
	how string
}

func (r *recorder) Helper()                        {}
func (r *recorder) Skipf(format string, a ...any)  { r.how = "skip: " + fmt.Sprintf(format, a...) }
func (r *recorder) Fatalf(format string, a ...any) { r.how = "fail: " + fmt.Sprintf(format, a...) }

func TestNeed(t *testing.T) {
	missing := errors.New("no such thing")
	for _, tc := range []struct {
		env     string
		missing error
		want    string
	}{
		{"", nil, ""},
		{"1", nil, ""},
		{"", missing, "skip"},
		{"0", missing, "skip"},
		{"1", missing, "fail"},
	} {
		t.Setenv("MPIM_REQUIRE_NETNS", tc.env)
		r := &recorder{TB: t}
		Need(r, NetNS, tc.missing)
		if got := r.how; (tc.want == "" && got != "") || (tc.want != "" && (len(got) < 4 || got[:4] != tc.want)) {
			t.Errorf("MPIM_REQUIRE_NETNS=%q, missing %v: %q, want %s", tc.env, tc.missing, got, tc.want)
		}
	}
}
