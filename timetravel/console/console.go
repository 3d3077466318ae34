// Package console is floe's web console: static HTML, CSS and JavaScript
// (no build step, nothing loaded from the network) that browse a node's
// tables, snapshots and time-travel queries through the HTTP/JSON API
// under /api/v1. The node mounts it at /console/:
//
//	mux.Handle("/console/", http.StripPrefix("/console", console.Handler()))
//
// The pages find the API at ../api/v1/ relative to themselves, so the
// console must be mounted one level below the API's root (as above). The
// files hold no secret and need no token; the API calls they make send
// the token the user enters (kept in the browser's localStorage).
package console

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed static
var static embed.FS

// contentTypes are the types of the files the console ships; a file with
// another extension is not served (the unit test checks every file has
// one).
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".mjs":  "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
	".png":  "image/png",
	".ico":  "image/x-icon",
	".json": "application/json",
	".txt":  "text/plain; charset=utf-8",
}

// csp allows the console's own files and API calls to its own origin,
// nothing else: no inline script, no third-party host.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

type file struct {
	name  string
	ctype string
	etag  string
	body  []byte
}

// files are the embedded files by their path below static/ ("app.js").
var files = func() map[string]*file {
	out := map[string]*file{}
	err := fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		ctype, ok := contentTypes[path.Ext(p)]
		if !ok {
			return nil
		}
		body, err := static.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		name := strings.TrimPrefix(p, "static/")
		out[name] = &file{name: name, ctype: ctype, etag: `"` + hex.EncodeToString(sum[:12]) + `"`, body: body}
		return nil
	})
	if err != nil {
		panic("console: reading the embedded files: " + err.Error())
	}
	return out
}()

// Handler serves the console's files: index.html at "/" (and
// "/index.html"), the other files at their names. Mount it under a prefix
// with http.StripPrefix. Every answer is revalidated (Cache-Control:
// no-cache, with an ETag), so a node upgrade is seen at the next load
// while an unchanged file costs a 304.
func Handler() http.Handler {
	return http.HandlerFunc(serve)
}

func serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	name := strings.TrimPrefix(r.URL.Path, "/")
	if name == "" {
		name = "index.html"
	}
	f, ok := files[name]
	if !ok {
		http.Error(w, "404 page not found: the console has no "+path.Clean("/"+name), http.StatusNotFound)
		return
	}
	h := w.Header()
	h.Set("Content-Type", f.ctype)
	h.Set("ETag", f.etag)
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	if f.ctype == contentTypes[".html"] {
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Frame-Options", "DENY")
	}
	http.ServeContent(w, r, f.name, time.Time{}, bytes.NewReader(f.body))
}
