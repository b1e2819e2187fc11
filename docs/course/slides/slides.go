// Package slides embeds the course's slide decks (en.html, zh.html:
// self-contained pages, no network) so that the lab serves them at
// /slides/. The files are the decks themselves: open them from the
// repository in any browser, too.
package slides

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed en.html zh.html
var decks embed.FS

// index is /slides/ itself.
const index = `<!doctype html><html><head><meta charset="utf-8"><title>mpim slides</title></head>
<body style="font:20px system-ui;margin:40px"><h1>mpim: the course's slides</h1>
<p><a href="en.html">English</a> · <a href="zh.html">中文</a></p>
<p>Keys: → or space, ←, Home, End. Self-contained: they work offline.</p></body></html>`

// Handler serves the decks under prefix (e.g. "/slides/").
func Handler(prefix string) http.Handler {
	sub, _ := fs.Sub(decks, ".")
	files := http.StripPrefix(prefix, http.FileServer(http.FS(sub)))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == prefix {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = w.Write([]byte(index))
			return
		}
		files.ServeHTTP(w, r)
	})
}
