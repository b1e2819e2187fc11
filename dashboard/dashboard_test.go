package dashboard

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

// TestPages: each page is served as HTML, and every script and style a
// page loads is an embedded asset (the lab works offline: no CDN).
func TestPages(t *testing.T) {
	h := Handler()
	ref := regexp.MustCompile(`(?:src|href)="([^"]+)"`)
	for path, marker := range map[string]string{"/": `id="topology"`, "/dashboard": `id="topology"`, "/student": `id="student"`} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		body := rec.Body.String()
		if rec.Code != 200 || rec.Header().Get("Content-Type") != "text/html; charset=utf-8" || !strings.Contains(body, marker) {
			t.Fatalf("GET %s: %d %q, want the page holding %s", path, rec.Code, rec.Header().Get("Content-Type"), marker)
		}
		for _, m := range ref.FindAllStringSubmatch(body, -1) {
			u := m[1]
			if !strings.HasPrefix(u, "/assets/") {
				t.Errorf("%s loads %s: every asset must be embedded under /assets/", path, u)
				continue
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", u, nil))
			if rec.Code != 200 || rec.Body.Len() == 0 {
				t.Errorf("%s loads %s: %d", path, u, rec.Code)
			}
		}
	}
	for _, path := range []string{"/assets/", "/assets/none.js", "/nothing", "/api/status"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if rec.Code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, rec.Code)
		}
	}
}

// TestNoRemoteURLs: no asset names a remote host, so the dashboard works
// without a network.
func TestNoRemoteURLs(t *testing.T) {
	remote := regexp.MustCompile(`(?i)(?:src|href)\s*=\s*["']?(?:https?:)?//|@import\s+url|fetch\(\s*["']https?://`)
	err := fs.WalkDir(Assets(), ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		f, _ := Assets().Open(path)
		b, _ := io.ReadAll(f)
		f.Close()
		if loc := remote.FindIndex(b); loc != nil {
			t.Errorf("%s loads a remote resource: %q", path, b[loc[0]:min(len(b), loc[1]+40)])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
