package console

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"path"
	"regexp"
	"strings"
	"testing"
)

// server mounts the console as the node does.
func server(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("/console/", http.StripPrefix("/console", Handler()))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func do(t *testing.T, method, url string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func TestServesIndexAndAssets(t *testing.T) {
	srv := server(t)
	for _, c := range []struct {
		path, ctype, contains string
	}{
		{"/console/", "text/html; charset=utf-8", "<title>floe console</title>"},
		{"/console/index.html", "text/html; charset=utf-8", "<title>floe console</title>"},
		{"/console/app.js", "text/javascript; charset=utf-8", "import * as api from"},
		{"/console/api.js", "text/javascript; charset=utf-8", "export async function query"},
		{"/console/util.js", "text/javascript; charset=utf-8", "export function h("},
		{"/console/style.css", "text/css; charset=utf-8", ":root"},
		{"/console/favicon.svg", "image/svg+xml", "<svg"},
	} {
		resp, body := do(t, "GET", srv.URL+c.path, nil)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %d", c.path, resp.StatusCode)
			continue
		}
		if got := resp.Header.Get("Content-Type"); got != c.ctype {
			t.Errorf("GET %s: Content-Type %q, want %q", c.path, got, c.ctype)
		}
		if got := resp.Header.Get("Cache-Control"); got != "no-cache" {
			t.Errorf("GET %s: Cache-Control %q, want no-cache", c.path, got)
		}
		if resp.Header.Get("ETag") == "" {
			t.Errorf("GET %s: no ETag", c.path)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: no X-Content-Type-Options: nosniff", c.path)
		}
		if !strings.Contains(body, c.contains) {
			t.Errorf("GET %s: the body does not contain %q", c.path, c.contains)
		}
	}
	resp, _ := do(t, "GET", srv.URL+"/console/", nil)
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "connect-src 'self'") {
		t.Errorf("index.html's Content-Security-Policy is %q", csp)
	}
}

func TestMissingIs404(t *testing.T) {
	srv := server(t)
	for _, p := range []string{"/console/nope.js", "/console/static/app.js", "/console/../go.mod", "/console/app.js/", "/console/x/index.html"} {
		resp, _ := do(t, "GET", srv.URL+p, nil)
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, resp.StatusCode)
		}
	}
}

func TestMethodsAndRevalidation(t *testing.T) {
	srv := server(t)
	resp, body := do(t, "HEAD", srv.URL+"/console/app.js", nil)
	if resp.StatusCode != http.StatusOK || body != "" || resp.Header.Get("Content-Type") != "text/javascript; charset=utf-8" {
		t.Errorf("HEAD app.js: %d, %q, body %q", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	resp, _ = do(t, "POST", srv.URL+"/console/app.js", nil)
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST app.js: %d, Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
	resp, _ = do(t, "GET", srv.URL+"/console/style.css", nil)
	etag := resp.Header.Get("ETag")
	resp, body = do(t, "GET", srv.URL+"/console/style.css", map[string]string{"If-None-Match": etag})
	if resp.StatusCode != http.StatusNotModified || body != "" {
		t.Errorf("GET style.css with its ETag: %d, want 304", resp.StatusCode)
	}
}

// TestEveryFileIsServed: a file added to static/ with a type the handler
// does not know would silently 404.
func TestEveryFileIsServed(t *testing.T) {
	err := fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if _, ok := contentTypes[path.Ext(p)]; !ok {
			t.Errorf("%s: no content type for %q in contentTypes", p, path.Ext(p))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestNothingFromTheNetwork: the pages load only their own files, with
// relative URLs (so the console works under any prefix), and every file
// they name exists.
func TestNothingFromTheNetwork(t *testing.T) {
	refs := regexp.MustCompile(`(?:src|href)="([^"#]+)"|from "(\./[^"]+)"|@import\s+(?:url\()?["']?([^"')]+)`)
	for name, f := range files {
		// The SVG namespace is a name, not a place anything is loaded from.
		body := strings.ReplaceAll(string(f.body), "http://www.w3.org/2000/svg", "")
		for _, bad := range []string{"http://", "https://", "//fonts.", "@import"} {
			if strings.Contains(body, bad) {
				t.Errorf("%s refers to %q: the console must not load anything from the network", name, bad)
			}
		}
		for _, m := range refs.FindAllStringSubmatch(body, -1) {
			ref := m[1] + m[2] + m[3]
			if strings.HasPrefix(ref, "/") {
				t.Errorf("%s refers to %q: use relative URLs", name, ref)
				continue
			}
			if _, ok := files[strings.TrimPrefix(ref, "./")]; !ok {
				t.Errorf("%s refers to %q, which the console does not have", name, ref)
			}
		}
	}
	if !strings.Contains(string(files["index.html"].body), `src="app.js"`) {
		t.Error("index.html does not load app.js")
	}
}
