package rest

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// pathParams holds the values of a route's {placeholders}, percent-decoded.
type pathParams map[string]string

// serveFunc answers one operation. It writes the response itself and
// returns nil, or writes nothing and returns the error to answer with.
type serveFunc func(h *handler, w http.ResponseWriter, r *http.Request, p pathParams) error

// operation is one method of a route.
type operation struct {
	method string
	serve  serveFunc
	// served marks an operation this catalog performs, as opposed to one it
	// refuses; served operations are advertised in GET /v1/config.
	served bool
}

// route is a path of the protocol and the methods it defines.
type route struct {
	// segments of the path after /v1/ (and after the prefix, for prefixed
	// routes); "{name}" segments are placeholders.
	segments []string
	// prefixed routes are /v1/{prefix}/...; the others are /v1/... only.
	prefixed bool
	ops      []operation
}

// template is the route's path as the protocol writes it, the form used in
// the endpoints of GET /v1/config.
func (rt *route) template() string {
	if rt.prefixed {
		return "/v1/{prefix}/" + strings.Join(rt.segments, "/")
	}
	return "/v1/" + strings.Join(rt.segments, "/")
}

// op returns the route's operation for method.
func (rt *route) op(method string) (operation, bool) {
	for _, o := range rt.ops {
		if o.method == method {
			return o, true
		}
	}
	return operation{}, false
}

// allow lists the methods the protocol defines for the route, HEAD
// included wherever GET is, in a fixed order.
func (rt *route) allow() []string {
	var out []string
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodDelete} {
		_, ok := rt.op(m)
		if ok || (m == http.MethodHead && slices.ContainsFunc(rt.ops, func(o operation) bool { return o.method == http.MethodGet })) {
			out = append(out, m)
		}
	}
	return out
}

// match reports whether segs fits the route, and the placeholder values.
func (rt *route) match(segs []string) (pathParams, bool) {
	if len(segs) != len(rt.segments) {
		return nil, false
	}
	var p pathParams
	for i, want := range rt.segments {
		if name, ok := placeholder(want); ok {
			if p == nil {
				p = pathParams{}
			}
			p[name] = segs[i]
			continue
		}
		if segs[i] != want {
			return nil, false
		}
	}
	return p, true
}

// placeholder returns the name of a "{name}" segment.
func placeholder(seg string) (string, bool) {
	if strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") {
		return seg[1 : len(seg)-1], true
	}
	return "", false
}

// Messages of the operations the catalog refuses.
const (
	readOnly    = "%s is not supported: this catalog is read-only; floe's tables are written by floe, so change them through floe's pipelines"
	noViews     = "views are not supported: this catalog serves floe's tables only"
	noFunctions = "functions are not supported: this catalog serves floe's tables only"
	noPlanning  = "server-side scan planning is not supported: plan scans in the client (the table's metadata and files are readable directly)"
	noMetrics   = "metrics reports are not accepted by this catalog; disable metrics reporting in the client"
	noCreds     = "vended credentials are not supported: the storage properties are in the config of the loaded table and of GET /v1/config"
	noSigning   = "remote signing is not supported: the storage properties are in the config of the loaded table and of GET /v1/config"
)

// routes are all the paths the protocol defines.
var routes = buildRoutes()

// buildRoutes lists every operation of the protocol: those served and those
// refused, with the message each refusal carries.
func buildRoutes() []*route {
	get := func(f serveFunc) operation { return operation{method: http.MethodGet, serve: f, served: true} }
	head := func(f serveFunc) operation { return operation{method: http.MethodHead, serve: f, served: true} }
	refuse := func(method, format string, args ...any) operation {
		msg := fmt.Sprintf(format, args...)
		return operation{method: method, serve: func(*handler, http.ResponseWriter, *http.Request, pathParams) error {
			return unsupported(msg)
		}}
	}
	p := func(path string, ops ...operation) *route {
		return &route{segments: strings.Split(path, "/"), prefixed: true, ops: ops}
	}
	const (
		GET, HEAD, POST, DELETE = http.MethodGet, http.MethodHead, http.MethodPost, http.MethodDelete
		ns                      = "namespaces/{namespace}"
		tbl                     = ns + "/tables/{table}"
		view                    = ns + "/views/{view}"
	)
	return []*route{
		{segments: []string{"config"}, ops: []operation{get((*handler).getConfig)}},
		{segments: []string{"oauth", "tokens"}, ops: []operation{{method: POST, serve: (*handler).oauthTokens}}},

		p("namespaces", get((*handler).listNamespaces), refuse(POST, readOnly, "creating a namespace")),
		p(ns, get((*handler).loadNamespace), head((*handler).namespaceExists), refuse(DELETE, readOnly, "dropping a namespace")),
		p(ns+"/properties", refuse(POST, readOnly, "updating namespace properties")),
		p(ns+"/tables", get((*handler).listTables), refuse(POST, readOnly, "creating a table")),
		p(tbl, get((*handler).loadTable), head((*handler).tableExists),
			refuse(POST, readOnly, "committing to a table"), refuse(DELETE, readOnly, "dropping a table")),
		p(ns+"/register", refuse(POST, readOnly, "registering a table")),
		p(tbl+"/unregister", refuse(POST, readOnly, "unregistering a table")),
		p("tables/rename", refuse(POST, readOnly, "renaming a table")),
		p("transactions/commit", refuse(POST, readOnly, "committing a transaction")),
		p(tbl+"/metrics", refuse(POST, noMetrics)),
		p(tbl+"/credentials", refuse(GET, noCreds)),
		p(tbl+"/sign", refuse(POST, noSigning)),
		p(tbl+"/plan", refuse(POST, noPlanning)),
		p(tbl+"/plan/{plan-id}", refuse(GET, noPlanning), refuse(DELETE, noPlanning)),
		p(tbl+"/tasks", refuse(POST, noPlanning)),

		p(ns+"/views", refuse(GET, noViews), refuse(POST, readOnly, "creating a view")),
		p(view, refuse(GET, noViews), refuse(HEAD, noViews),
			refuse(POST, readOnly, "replacing a view"), refuse(DELETE, readOnly, "dropping a view")),
		p("views/rename", refuse(POST, readOnly, "renaming a view")),
		p(ns+"/register-view", refuse(POST, readOnly, "registering a view")),

		p(ns+"/functions", refuse(GET, noFunctions)),
		p(ns+"/functions/{function}", refuse(GET, noFunctions)),
	}
}

// endpoints returns the operations the handler serves, in the form of the
// "endpoints" of GET /v1/config: "<METHOD> /v1/{prefix}/<path>".
func endpoints() []string {
	var out []string
	for _, rt := range routes {
		if !rt.prefixed {
			continue
		}
		for _, o := range rt.ops {
			if o.served {
				out = append(out, o.method+" "+rt.template())
			}
		}
	}
	return out
}

// match finds the route of the request's path. Relative to the handler's
// root the path is /v1/ followed, for prefixed routes, by the prefix (when
// one is configured) or directly by the route. Where a path reads both
// ways, the prefixed reading wins.
func (h *handler) match(r *http.Request) (*route, pathParams, error) {
	segs, err := splitPath(r.URL.EscapedPath())
	if err != nil {
		return nil, nil, err
	}
	if len(segs) < 2 || segs[0] != "v1" {
		return nil, nil, unknownPath(r)
	}
	rest := segs[1:]
	if len(h.prefix) > 0 && len(rest) > len(h.prefix) && slices.Equal(rest[:len(h.prefix)], h.prefix) {
		if rt, p, ok := find(rest[len(h.prefix):], true); ok {
			return rt, p, nil
		}
	}
	if rt, p, ok := find(rest, false); ok {
		return rt, p, nil
	}
	if rt, p, ok := find(rest, true); ok {
		return rt, p, nil
	}
	return nil, nil, unknownPath(r)
}

// find returns the route, prefixed or not, that segs matches.
func find(segs []string, prefixed bool) (*route, pathParams, bool) {
	for _, rt := range routes {
		if rt.prefixed != prefixed {
			continue
		}
		if p, ok := rt.match(segs); ok {
			return rt, p, true
		}
	}
	return nil, nil, false
}

// splitPath splits an escaped path into its percent-decoded segments, so
// that an encoded "/" (%2F) stays inside its segment.
func splitPath(escaped string) ([]string, error) {
	segs := strings.Split(strings.TrimPrefix(escaped, "/"), "/")
	for i, s := range segs {
		dec, err := url.PathUnescape(s)
		if err != nil {
			return nil, badRequest("malformed path segment %q: %v; percent-encode it", s, err)
		}
		segs[i] = dec
	}
	return segs, nil
}

// unknownPath is the 404 of a path the protocol does not define.
func unknownPath(r *http.Request) error {
	return &apiError{
		status: http.StatusNotFound,
		typ:    "NotFoundException",
		msg: fmt.Sprintf("no route for %s %s: this is an Iceberg REST catalog; its routes start at /v1/ (GET /v1/config lists the endpoints it serves)",
			r.Method, r.URL.EscapedPath()),
	}
}
