package rest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"

	icecat "github.com/apache/iceberg-go/catalog"
)

// DefaultWarehouse is the warehouse name served when Options.Warehouse is
// empty.
const DefaultWarehouse = "floe"

// DefaultMaxPageSize is the largest page served when Options.MaxPageSize is
// not positive.
const DefaultMaxPageSize = 1000

// Options configures a Handler.
type Options struct {
	// Warehouse is the name clients pass as ?warehouse= to GET /v1/config
	// (DefaultWarehouse when empty). A request for any other warehouse is
	// answered 404 NoSuchWarehouseException; a request without one is served.
	Warehouse string
	// Prefix is the optional {prefix} path segment (or segments, separated
	// by "/"), sent to clients in the "prefix" override of GET /v1/config.
	// When set, routes are served both under /v1/<Prefix>/ and directly
	// under /v1/; when empty, only under /v1/.
	Prefix string
	// TableConfig holds the storage properties (s3.endpoint,
	// s3.access-key-id, s3.secret-access-key, s3.path-style-access,
	// s3.region, ...) clients need to read table files. They are returned
	// as the defaults of GET /v1/config and as the config of every loaded
	// table. Everything in it is visible to every client that can reach the
	// handler.
	TableConfig map[string]string
	// Logger receives failures of the underlying catalog (slog.Default()
	// when nil). Their details are logged, never sent to clients.
	Logger *slog.Logger
	// MaxPageSize is the largest pageSize a client may ask for
	// (DefaultMaxPageSize when not positive), and the page size of a paged
	// listing that names none.
	MaxPageSize int
}

// withDefaults fills in the defaults and copies what the caller could
// change later.
func (o Options) withDefaults() Options {
	if o.Warehouse == "" {
		o.Warehouse = DefaultWarehouse
	}
	if o.MaxPageSize <= 0 {
		o.MaxPageSize = DefaultMaxPageSize
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	o.Prefix = strings.Trim(o.Prefix, "/")
	o.TableConfig = maps.Clone(o.TableConfig)
	if o.TableConfig == nil {
		o.TableConfig = map[string]string{}
	}
	return o
}

// handler serves the read-only REST catalog.
type handler struct {
	cat       icecat.Catalog
	opts      Options
	log       *slog.Logger
	prefix    []string // Options.Prefix split into path segments
	configID  string   // digest of TableConfig, part of every table ETag
	endpoints []string // the endpoints of GET /v1/config
}

// NewHandler returns an http.Handler serving cat read-only over the Iceberg
// REST catalog protocol. Its routes start at /v1/ relative to where it is
// mounted: mount it with http.StripPrefix to serve it under a path.
func NewHandler(cat icecat.Catalog, opts Options) http.Handler {
	opts = opts.withDefaults()
	var prefix []string
	for seg := range strings.SplitSeq(opts.Prefix, "/") {
		if seg != "" {
			prefix = append(prefix, seg)
		}
	}
	return &handler{
		cat:       cat,
		opts:      opts,
		log:       opts.Logger,
		prefix:    prefix,
		configID:  digestConfig(opts.TableConfig),
		endpoints: endpoints(),
	}
}

// digestConfig hashes a property map in key order.
func digestConfig(cfg map[string]string) string {
	h := sha256.New()
	for _, k := range slices.Sorted(maps.Keys(cfg)) {
		fmt.Fprintf(h, "%q=%q\n", k, cfg[k])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// ServeHTTP routes a request and writes its response or its error.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	tw := &trackingWriter{ResponseWriter: w}
	defer h.recoverPanic(tw, r)

	rt, params, err := h.match(r)
	if err == nil {
		err = h.dispatch(tw, r, rt, params)
	}
	if err != nil {
		h.writeError(tw, r, err)
	}
}

// dispatch runs the operation of rt for the request's method, or answers
// 405. HEAD is served by the GET operation where the protocol defines no
// HEAD of its own; net/http drops the body.
func (h *handler) dispatch(w http.ResponseWriter, r *http.Request, rt *route, params pathParams) error {
	o, ok := rt.op(r.Method)
	if !ok && r.Method == http.MethodHead {
		o, ok = rt.op(http.MethodGet)
	}
	if !ok {
		allow := rt.allow()
		w.Header().Set("Allow", strings.Join(allow, ", "))
		return &apiError{
			status: http.StatusMethodNotAllowed,
			typ:    "MethodNotAllowedException",
			msg: fmt.Sprintf("method %s is not allowed on %s: the protocol defines %s there",
				r.Method, r.URL.EscapedPath(), strings.Join(allow, ", ")),
		}
	}
	return o.serve(h, w, r, params)
}

// recoverPanic turns a panic below the handler (in the catalog, say) into
// a 500 with the error model instead of a dropped connection.
func (h *handler) recoverPanic(w *trackingWriter, r *http.Request) {
	v := recover()
	if v == nil {
		return
	}
	if v == http.ErrAbortHandler {
		panic(v)
	}
	h.log.Error("iceberg rest catalog: panic while serving a request",
		"method", r.Method, "path", r.URL.EscapedPath(), "panic", fmt.Sprint(v))
	if !w.wroteHeader {
		h.writeError(w, r, errors.New("panic"))
	}
}

// trackingWriter records whether the response has started.
type trackingWriter struct {
	http.ResponseWriter
	wroteHeader bool
}

// WriteHeader records that the response has started.
func (t *trackingWriter) WriteHeader(code int) {
	t.wroteHeader = true
	t.ResponseWriter.WriteHeader(code)
}

// Write records that the response has started.
func (t *trackingWriter) Write(b []byte) (int, error) {
	t.wroteHeader = true
	return t.ResponseWriter.Write(b)
}

// Unwrap gives http.ResponseController the underlying writer.
func (t *trackingWriter) Unwrap() http.ResponseWriter { return t.ResponseWriter }

// query parses the request's query string strictly: a malformed one is a
// 400 rather than silently losing parameters.
func query(r *http.Request) (url.Values, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, badRequest("malformed query string %q: %v; percent-encode the parameter values", r.URL.RawQuery, err)
	}
	return q, nil
}

// clientGone reports an error caused by the client abandoning its request.
func clientGone(r *http.Request, err error) bool {
	return r.Context().Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded))
}
