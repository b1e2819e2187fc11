// Package dashboard holds the lab's teaching dashboard: plain HTML, CSS and
// JavaScript built into the binary (no CDN, no front-end toolchain), so
// that `mpim lab up` serves it offline. The lab (package lab) mounts
// Handler beside its HTTP API, which the pages call: the topology stream,
// the fault API in the vocabulary of `mpim fault`, the event stream and
// the scenario library. The chat panels speak the client wire protocol
// (docs/protocol.md) to the gateways themselves.
//
// Pages: index.html (the teacher's dashboard, docs/teaching.md) and
// student.html (one chat panel, for students' own browsers).
package dashboard

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"
)

//go:embed assets
var assets embed.FS

// Assets returns the embedded files: index.html, student.html and the
// scripts and styles they load, at the root.
func Assets() fs.FS {
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err) // the embed directive guarantees the directory
	}
	return sub
}

// pages maps the paths that serve a page to its file.
var pages = map[string]string{
	"/":          "index.html",
	"/dashboard": "index.html",
	"/student":   "student.html",
}

// Handler serves the pages at /, /dashboard and /student, and the other
// assets under /assets/. Anything else is 404.
func Handler() http.Handler {
	files := Assets()
	static := http.StripPrefix("/assets/", http.FileServerFS(files))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if name, ok := pages[r.URL.Path]; ok {
			b, err := fs.ReadFile(files, name)
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Header().Set("Cache-Control", "no-cache")
			_, _ = w.Write(b)
			return
		}
		if strings.HasPrefix(r.URL.Path, "/assets/") && r.URL.Path != "/assets/" {
			w.Header().Set("Cache-Control", "no-cache")
			static.ServeHTTP(w, r)
			return
		}
		http.NotFound(w, r)
	})
}
