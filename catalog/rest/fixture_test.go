package rest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	"github.com/stretchr/testify/require"

	floecat "github.com/floelake/floe/catalog"
	"github.com/floelake/floe/internal/testutil"
)

var testSchema = iceberg.NewSchema(0,
	iceberg.NestedField{ID: 1, Name: "id", Type: iceberg.PrimitiveTypes.Int64, Required: true},
	iceberg.NestedField{ID: 2, Name: "name", Type: iceberg.PrimitiveTypes.String},
)

// testTableConfig stands for the storage properties a node exposes.
var testTableConfig = map[string]string{
	"s3.endpoint":          "http://127.0.0.1:9000",
	"s3.access-key-id":     "floe-reader",
	"s3.secret-access-key": "reader-secret",
	"s3.path-style-access": "true",
	"s3.region":            "us-east-1",
}

// row is one row of the test tables.
type row struct {
	id   int64
	name string
}

// fixture is a SQL catalog holding
//
//	a        (properties owner and comment)   tables t1, t2, t3
//	a.b                                       table events, two snapshots
//	c        (no tables)
//	d.e      (d exists only as its ancestor)  table x
type fixture struct {
	cat  *floecat.Catalog
	rows []row // the rows of a.b.events
	logs *lockedBuffer
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{cat: testutil.SQLiteCatalog(t), logs: &lockedBuffer{}}
	require.NoError(t, f.cat.CreateNamespace(ctx, table.Identifier{"a"},
		iceberg.Properties{"owner": "floe-test", "comment": `<&> "quoted"`}))
	require.NoError(t, f.cat.CreateNamespace(ctx, table.Identifier{"a", "b"}, nil))
	require.NoError(t, f.cat.CreateNamespace(ctx, table.Identifier{"c"}, nil))
	for _, name := range []string{"a.t2", "a.t3", "a.t1", "d.e.x"} {
		f.createTable(t, name)
	}
	events := f.createTable(t, "a.b.events")
	first := []row{{1, "one"}, {2, "two"}, {3, ""}}
	second := []row{{4, "four"}, {5, "five"}}
	events = appendRows(t, events, first)
	appendRows(t, events, second)
	f.rows = append(first, second...)
	return f
}

// createTable creates the table with a dotted name, and its namespace.
func (f *fixture) createTable(t *testing.T, name string) *table.Table {
	t.Helper()
	tbl, created, err := floecat.EnsureTable(context.Background(), f.cat, floecat.Ident(name), testSchema,
		*iceberg.UnpartitionedSpec, nil)
	require.NoError(t, err)
	require.True(t, created, name)
	return tbl
}

// load loads a table from the SQL catalog.
func (f *fixture) load(t *testing.T, name string) *table.Table {
	t.Helper()
	tbl, err := f.cat.LoadTable(context.Background(), floecat.Ident(name))
	require.NoError(t, err)
	return tbl
}

// options are the handler options of the tests: the test table config and
// a logger into f.logs.
func (f *fixture) options() Options {
	return Options{TableConfig: testTableConfig, Logger: slogTo(f.logs)}
}

// slogTo is a logger writing text to w.
func slogTo(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }

// serve serves the handler at the server's root.
func (f *fixture) serve(t *testing.T, opts Options) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(NewHandler(f.cat, opts))
	t.Cleanup(srv.Close)
	return srv
}

// serveMounted serves the handler under /iceberg/ of a ServeMux, as a node
// mounts it, and records the escaped paths it is asked for.
func (f *fixture) serveMounted(t *testing.T, opts Options) (*httptest.Server, *requestLog) {
	t.Helper()
	log := &requestLog{}
	h := NewHandler(f.cat, opts)
	mux := http.NewServeMux()
	mux.Handle("/iceberg/", http.StripPrefix("/iceberg", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log.add(r.Method + " " + r.URL.EscapedPath())
		h.ServeHTTP(w, r)
	})))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, log
}

// appendRows appends rows to tbl and returns the table after the commit.
func appendRows(t *testing.T, tbl *table.Table, rows []row) *table.Table {
	t.Helper()
	sc, err := table.SchemaToArrowSchema(tbl.Schema(), nil, false, false)
	require.NoError(t, err)
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer b.Release()
	for _, r := range rows {
		b.Field(0).(*array.Int64Builder).Append(r.id)
		b.Field(1).(*array.StringBuilder).Append(r.name)
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	at := array.NewTableFromRecords(sc, []arrow.RecordBatch{rec})
	defer at.Release()
	tbl, err = tbl.AppendTable(context.Background(), at, int64(len(rows)), nil)
	require.NoError(t, err)
	return tbl
}

// scanRows reads every row of tbl, sorted by id.
func scanRows(t *testing.T, tbl *table.Table) []row {
	t.Helper()
	at, err := tbl.Scan().ToArrowTable(context.Background())
	require.NoError(t, err)
	defer at.Release()
	var out []row
	ids, names := at.Column(0).Data().Chunks(), at.Column(1).Data().Chunks()
	for i := range ids {
		for j := range ids[i].Len() {
			out = append(out, row{ids[i].(*array.Int64).Value(j), names[i].(*array.String).Value(j)})
		}
	}
	slices.SortFunc(out, func(a, b row) int { return int(a.id - b.id) })
	return out
}

// lockedBuffer is a log destination shared by server goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// requestLog records requests.
type requestLog struct {
	mu   sync.Mutex
	reqs []string
}

func (l *requestLog) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reqs = append(l.reqs, s)
}

func (l *requestLog) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.reqs)
}

// response is a raw HTTP response, its body read.
type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends a request and reads its response. header holds "Name: value"
// lines.
func do(t *testing.T, method, url string, header ...string) response {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	require.NoError(t, err)
	for _, h := range header {
		k, v, ok := strings.Cut(h, ":")
		require.True(t, ok, h)
		req.Header.Set(k, strings.TrimSpace(v))
	}
	rsp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer rsp.Body.Close()
	body, err := io.ReadAll(rsp.Body)
	require.NoError(t, err)
	return response{status: rsp.StatusCode, header: rsp.Header, body: body}
}

// String shows a response in a failure message.
func (r response) String() string {
	return fmt.Sprintf("%d %s", r.status, r.body)
}
