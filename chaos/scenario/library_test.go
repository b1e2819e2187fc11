package scenario

import (
	"errors"
	"io/fs"
	"slices"
	"strings"
	"testing"
	"time"

	"mpim/scenarios"
)

// TestLibrary checks every embedded scenario: it parses, its name is its
// file's, it is described and captioned for the guided mode, it carries
// expectations, and its quick run lasts at most 15 s.
func TestLibrary(t *testing.T) {
	files, err := fs.Glob(scenarios.FS, "*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no embedded scenarios (%v)", err)
	}
	list := List()
	if len(list) != len(files) {
		t.Fatalf("List returned %d scenarios for %d files", len(list), len(files))
	}
	if !slices.IsSortedFunc(list, func(a, b *Scenario) int { return strings.Compare(a.Name, b.Name) }) {
		t.Errorf("List is not sorted by name")
	}
	for _, s := range list {
		t.Run(s.Name, func(t *testing.T) {
			if s.File != s.Name+".yaml" {
				t.Errorf("scenario %q comes from %s; name and file must match", s.Name, s.File)
			}
			if s.Description == "" || len(s.Faults) == 0 {
				t.Errorf("scenario %s has no description or no faults", s.Name)
			}
			for _, st := range s.Faults {
				if st.Caption == "" || st.Observe == "" {
					t.Errorf("%s:%d: step %q needs a caption and an observe text", s.File, st.Line, st.Do)
				}
			}
			modes := Modes
			if len(s.Unsafe) > 0 {
				modes = []string{ModeCP}
				if len(s.Expect[ModeAP])+len(s.Expect[ModeAPNoRepair]) > 0 {
					t.Errorf("unsafe scenario %s has AP expectations; its switches act in CP only", s.Name)
				}
			}
			for _, m := range modes {
				if len(s.Expect[m]) == 0 {
					t.Errorf("scenario %s has no %s expectations", s.Name, m)
				}
			}
			q := s.Quick()
			if q.Duration > 15*time.Second {
				t.Errorf("quick run of %s lasts %v, want at most 15s", s.Name, q.Duration)
			}
			b, err := Builtin(s.Name + ".yaml")
			if err != nil || b.Name != s.Name {
				t.Errorf("Builtin(%q): %v", s.Name+".yaml", err)
			}
		})
	}
}

// TestBuiltinMissing checks the error for a name the library lacks.
func TestBuiltinMissing(t *testing.T) {
	_, err := Builtin("no-such-scenario")
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "isolate-leader") {
		t.Errorf("error %v: want ErrNotFound listing the built-in names", err)
	}
}
