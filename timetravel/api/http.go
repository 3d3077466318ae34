package api

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	floev1 "github.com/floelake/floe/proto/floe/v1"
	"github.com/floelake/floe/timetravel"
)

// The HTTP/JSON API, under /api/v1 (see docs/api.md):
//
//   - every call but Query and Changes through grpc-gateway (the mappings
//     in proto/floe/v1/floe_http.yaml), JSON bodies with the .proto's
//     field names, 64-bit integers as strings (protobuf's JSON mapping);
//   - GET or POST /api/v1/tables/{table}/query and .../changes: rows as
//     JSON lines (application/x-ndjson), one object per row with plain
//     JSON numbers, then one last line {"@stats": {...}}; an error after
//     the first row ends the stream with {"@error": {...}} instead.
//
// Errors are {"code": <gRPC code>, "status": "NOT_FOUND", "message": "..."}
// with the HTTP status httpStatus gives.

// maxRequestBody bounds a request body.
const maxRequestBody = 1 << 20

type httpAPI struct {
	s  *Service
	gw *runtime.ServeMux
}

func newHTTPAPI(s *Service, gw *runtime.ServeMux) *httpAPI {
	return &httpAPI{s: s, gw: gw}
}

// HTTPHandler serves the API's HTTP/JSON form; mount it at /api/v1/.
func (s *Service) HTTPHandler() http.Handler { return s.http }

func (h *httpAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxRequestBody)
	if table, what, ok := rowsRoute(r.URL.Path); ok {
		if r.Method != http.MethodGet && r.Method != http.MethodPost {
			w.Header().Set("Allow", "GET, POST")
			writeError(w, status.Error(codes.Unimplemented, r.Method+" is not allowed here: use GET or POST"))
			return
		}
		h.rows(w, r, table, what)
		return
	}
	h.gw.ServeHTTP(w, r)
}

// rowsRoute matches /api/v1/tables/{table}/query and .../changes.
func rowsRoute(path string) (table, what string, ok bool) {
	rest, ok := strings.CutPrefix(path, "/api/v1/tables/")
	if !ok {
		return "", "", false
	}
	i := strings.LastIndexByte(rest, '/')
	if i <= 0 {
		return "", "", false
	}
	table, what = rest[:i], rest[i+1:]
	if what != "query" && what != "changes" || strings.Contains(table, "/") {
		return "", "", false
	}
	return table, what, true
}

func (h *httpAPI) rows(w http.ResponseWriter, r *http.Request, table, what string) {
	method := floev1.TableService_Query_FullMethodName
	if what == "changes" {
		method = floev1.TableService_Changes_FullMethodName
	}
	if err := h.s.auth.Check(r.Header.Get("Authorization"), method); err != nil {
		writeError(w, err)
		return
	}
	// A client that stops reading cannot hold the query slot past the
	// query timeout.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(h.s.cfg.QueryTimeout.D() + sendGrace))
	out := &rowWriter{w: w}
	defer out.flush()
	var err error
	var stats proto.Message
	switch what {
	case "query":
		req := &floev1.QueryRequest{}
		if err = decodeRowsRequest(r, req, queryParams); err == nil {
			req.Table = table
			var st timetravel.QueryStats
			st, err = h.s.server.RunQuery(r.Context(), req, out.batch)
			stats = queryStats(st)
		}
	case "changes":
		req := &floev1.ChangesRequest{}
		if err = decodeRowsRequest(r, req, changesParams); err == nil {
			req.Table = table
			var st timetravel.ChangesStats
			st, err = h.s.server.RunChanges(r.Context(), req, out.batch)
			stats = changesStats(st)
		}
	}
	if err != nil {
		out.fail(toStatus(err))
		return
	}
	out.end(stats)
}

// decodeRowsRequest fills req from a POST's JSON body or a GET's query
// parameters.
func decodeRowsRequest(r *http.Request, req proto.Message, params func(url map[string][]string, req proto.Message) error) error {
	if r.Method == http.MethodPost {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return invalidf("reading the request body: %v", err)
		}
		if len(body) == 0 {
			return nil
		}
		if err := protojson.Unmarshal(body, req); err != nil {
			return invalidf("the request body is not a valid request: %v", err)
		}
		return nil
	}
	return params(r.URL.Query(), req)
}

func one(q map[string][]string, key string) string {
	if v := q[key]; len(v) > 0 {
		return v[len(v)-1]
	}
	return ""
}

func intParam(q map[string][]string, key string) (int64, error) {
	v := one(q, key)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, invalidf("%s must be an integer, got %q", key, v)
	}
	return n, nil
}

func columnsParam(q map[string][]string) []string {
	var out []string
	for _, v := range q["columns"] {
		for _, c := range strings.Split(v, ",") {
			if c = strings.TrimSpace(c); c != "" {
				out = append(out, c)
			}
		}
	}
	return out
}

func queryParams(q map[string][]string, m proto.Message) error {
	req := m.(*floev1.QueryRequest)
	req.Columns = columnsParam(q)
	req.Where = one(q, "where")
	var err error
	if req.Limit, err = intParam(q, "limit"); err != nil {
		return err
	}
	set := 0
	if v := one(q, "snapshot_id"); v != "" {
		id, err := intParam(q, "snapshot_id")
		if err != nil {
			return err
		}
		req.AsOf, set = &floev1.AsOf{Point: &floev1.AsOf_SnapshotId{SnapshotId: id}}, set+1
	}
	if v := one(q, "timestamp"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return invalidf("timestamp must be RFC 3339 (2026-01-02T15:04:05Z), got %q", v)
		}
		req.AsOf, set = &floev1.AsOf{Point: &floev1.AsOf_Timestamp{Timestamp: timestamppb.New(t)}}, set+1
	}
	if v := one(q, "tag"); v != "" {
		req.AsOf, set = &floev1.AsOf{Point: &floev1.AsOf_Tag{Tag: v}}, set+1
	}
	if v := one(q, "branch"); v != "" {
		req.AsOf, set = &floev1.AsOf{Point: &floev1.AsOf_Branch{Branch: v}}, set+1
	}
	if set > 1 {
		return invalidf("give at most one of snapshot_id, timestamp, tag and branch")
	}
	return nil
}

func changesParams(q map[string][]string, m proto.Message) error {
	req := m.(*floev1.ChangesRequest)
	req.Columns = columnsParam(q)
	var err error
	if req.FromSnapshotId, err = intParam(q, "from_snapshot_id"); err != nil {
		return err
	}
	if req.ToSnapshotId, err = intParam(q, "to_snapshot_id"); err != nil {
		return err
	}
	req.Limit, err = intParam(q, "limit")
	return err
}

// rowWriter writes JSON lines, buffered, flushing as it goes.
type rowWriter struct {
	w       http.ResponseWriter
	bw      *bufio.Writer
	started bool
}

func (o *rowWriter) start() {
	if o.started {
		return
	}
	o.started = true
	o.w.Header().Set("Content-Type", "application/x-ndjson")
	o.w.Header().Set("X-Content-Type-Options", "nosniff")
	o.w.WriteHeader(http.StatusOK)
	o.bw = bufio.NewWriterSize(o.w, 64<<10)
}

func (o *rowWriter) batch(b timetravel.Batch) error {
	o.start()
	if err := timetravel.WriteJSONRows(o.bw, b); err != nil {
		return err
	}
	if o.bw.Buffered() > 32<<10 {
		return o.flushErr()
	}
	return nil
}

func (o *rowWriter) flushErr() error {
	if o.bw == nil {
		return nil
	}
	if err := o.bw.Flush(); err != nil {
		return err
	}
	if f, ok := o.w.(http.Flusher); ok {
		f.Flush()
	}
	return nil
}

func (o *rowWriter) flush() { _ = o.flushErr() }

func (o *rowWriter) end(stats proto.Message) {
	o.start()
	b, _ := protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}.Marshal(stats)
	fmt.Fprintf(o.bw, "{\"@stats\":%s}\n", b)
}

// fail reports err: as the response when no row was written, else as the
// last line.
func (o *rowWriter) fail(err error) {
	if !o.started {
		writeError(o.w, err)
		return
	}
	st := status.Convert(err)
	b, _ := json.Marshal(errorBody(st))
	fmt.Fprintf(o.bw, "{\"@error\":%s}\n", b)
}

type errBody struct {
	Code    int    `json:"code"`
	Status  string `json:"status"`
	Message string `json:"message"`
}

func errorBody(st *status.Status) errBody {
	return errBody{Code: int(st.Code()), Status: codeName(st.Code()), Message: st.Message()}
}

// codeName is the code's canonical name (NOT_FOUND).
func codeName(c codes.Code) string {
	var b strings.Builder
	for i, r := range c.String() {
		if i > 0 && r >= 'A' && r <= 'Z' {
			b.WriteByte('_')
		}
		b.WriteRune(r)
	}
	return strings.ToUpper(b.String())
}

func writeError(w http.ResponseWriter, err error) {
	st := status.Convert(toStatus(err))
	w.Header().Set("Content-Type", "application/json")
	if st.Code() == codes.Unauthenticated {
		w.Header().Set("WWW-Authenticate", `Bearer realm="floe"`)
	}
	w.WriteHeader(httpStatus(st.Code()))
	_ = json.NewEncoder(w).Encode(errorBody(st))
}

// gatewayError is grpc-gateway's error handler: the same body and status
// as writeError.
func gatewayError(_ context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, _ *http.Request, err error) {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		err = status.Errorf(codes.InvalidArgument, "the request body is larger than %d bytes", mbe.Limit)
	}
	// The gateway's own decoding errors (the server's messages never
	// read like these).
	if st, ok := status.FromError(err); ok && st.Code() == codes.InvalidArgument && isDecodeError(st.Message()) {
		err = status.Errorf(codes.InvalidArgument, "the request body is not valid JSON for this call: %s", st.Message())
	}
	writeError(w, err)
}

// MethodRESTCatalog is the name the REST catalog's routes are authorized
// under: the read scope.
const MethodRESTCatalog = "/floe.v1.RESTCatalog/Get"

// Authorize checks r's bearer token for method (a full gRPC method name,
// or MethodRESTCatalog), for routes served beside the API.
func (s *Service) Authorize(r *http.Request, method string) error {
	return s.auth.Check(r.Header.Get("Authorization"), method)
}

// WriteError writes err as the API writes errors.
func (s *Service) WriteError(w http.ResponseWriter, err error) { writeError(w, err) }

func isDecodeError(msg string) bool {
	for _, s := range []string{"proto:", "invalid character", "unexpected EOF", "cannot unmarshal", "unexpected end of JSON"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}
