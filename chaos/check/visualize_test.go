package check

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestVisualize(t *testing.T) {
	for _, name := range []string{"two-convs", "fail-dropped", "info-seen"} {
		t.Run(name, func(t *testing.T) {
			_, ops := loadTranscript(t, name)
			path := filepath.Join(t.TempDir(), name+".html")
			if err := Visualize(ops, checkTimeout, path); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			html := string(b)
			if !strings.Contains(html, "<html") {
				t.Errorf("%s: %d bytes, not an HTML page", path, len(b))
			}
			// Each conversation's verdict is annotated on the timeline.
			for _, conv := range newHistory(ops).convs {
				if !strings.Contains(html, conv+": ") {
					t.Errorf("%s: no verdict annotation for conversation %s", path, conv)
				}
			}
		})
	}
}

func TestVisualizeUnwritablePath(t *testing.T) {
	_, ops := loadTranscript(t, "sequential")
	path := filepath.Join(t.TempDir(), "missing", "x.html")
	if err := Visualize(ops, checkTimeout, path); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("Visualize to %s: error %v, want one naming the path", path, err)
	}
}
