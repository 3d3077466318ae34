package rest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/apache/iceberg-go"
	icecat "github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// requireError checks an error response: its status, the error model (a
// HEAD response has no body) and its type; it returns the model.
func requireError(t *testing.T, method string, rsp response, status int, typ string) errorModel {
	t.Helper()
	require.Equal(t, status, rsp.status, "%s", rsp)
	if method == http.MethodHead {
		require.Empty(t, rsp.body)
		return errorModel{}
	}
	require.Equal(t, "application/json", rsp.header.Get("Content-Type"))
	requireSchema(t, icebergErrorSchema, rsp.body)
	var e errorResponse
	require.NoError(t, json.Unmarshal(rsp.body, &e))
	require.Equal(t, typ, e.Error.Type, "%s", rsp)
	require.Equal(t, status, e.Error.Code)
	require.NotEmpty(t, e.Error.Message)
	return e.Error
}

// errorCase is a request and the error it must get.
type errorCase struct {
	method, path string
	status       int
	typ          string
	msg          string // a part of the message
}

func runErrorCases(t *testing.T, base string, cases []errorCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			rsp := do(t, c.method, base+c.path)
			e := requireError(t, c.method, rsp, c.status, c.typ)
			assert.Contains(t, e.Message, c.msg)
		})
	}
}

func TestBadRequests(t *testing.T) {
	f := newFixture(t)
	srv := f.serve(t, f.options())
	nsToken := encodeToken(kindNamespaces, "a")
	runErrorCases(t, srv.URL, []errorCase{
		{"GET", "/v1/namespaces?pageSize=0", 400, "BadRequestException", `invalid pageSize "0": want an integer from 1 to 1000`},
		{"GET", "/v1/namespaces?pageSize=-1", 400, "BadRequestException", "invalid pageSize"},
		{"GET", "/v1/namespaces?pageSize=ten", 400, "BadRequestException", "invalid pageSize"},
		{"GET", "/v1/namespaces?pageSize=1001", 400, "BadRequestException", "from 1 to 1000"},
		{"GET", "/v1/namespaces?pageSize=", 400, "BadRequestException", "invalid pageSize"},
		{"GET", "/v1/namespaces/a/tables?pageToken=1&pageSize=1.5", 400, "BadRequestException", "invalid pageSize"},
		{"GET", "/v1/namespaces?pageToken=!!!", 400, "BadRequestException", "pass the next-page-token of the previous response"},
		{"GET", "/v1/namespaces/a/tables?pageToken=bm90IGEgdG9rZW4", 400, "BadRequestException", "invalid pageToken"},
		{"GET", "/v1/namespaces/a/tables?pageToken=" + nsToken, 400, "BadRequestException", "of the same listing"},
		{"GET", "/v1/namespaces?parent=a%1F", 400, "BadRequestException", `invalid parent "a%1F"`},
		{"GET", "/v1/namespaces?parent=%1Fa", 400, "BadRequestException", "non-empty levels separated by the unit separator 0x1F (%1F in a URL)"},
		{"GET", "/v1/namespaces?parent=%zz", 400, "BadRequestException", "malformed query string"},
		{"GET", "/v1/namespaces/a%1F%1Fb", 400, "BadRequestException", `invalid namespace "a%1F%1Fb"`},
		{"HEAD", "/v1/namespaces/a%1F%1Fb", 400, "", ""},
		{"GET", "/v1/namespaces//tables", 400, "BadRequestException", `invalid namespace ""`},
		{"GET", "/v1/namespaces/", 400, "BadRequestException", `invalid namespace ""`},
		{"GET", "/v1/namespaces/a/tables/", 400, "BadRequestException", "invalid table name"},
		{"HEAD", "/v1/namespaces/a%1F/tables/t1", 400, "", ""},
		{"GET", "/v1/namespaces/a/tables/t1?snapshots=latest", 400, "BadRequestException", `invalid snapshots "latest": want "all"`},
	})
}

func TestNotFound(t *testing.T) {
	f := newFixture(t)
	srv := f.serve(t, f.options())
	runErrorCases(t, srv.URL, []errorCase{
		{"GET", "/v1/namespaces/zz", 404, "NoSuchNamespaceException", "namespace zz does not exist"},
		{"GET", "/v1/namespaces/a%1Fzz", 404, "NoSuchNamespaceException", "namespace a.zz does not exist"},
		{"GET", "/v1/namespaces/a%2Fb", 404, "NoSuchNamespaceException", "namespace a/b does not exist"},
		{"HEAD", "/v1/namespaces/zz", 404, "", ""},
		{"GET", "/v1/namespaces?parent=zz", 404, "NoSuchNamespaceException", "namespace zz does not exist"},
		{"GET", "/v1/namespaces?parent=d%1Fe%1Fx", 404, "NoSuchNamespaceException", "d.e.x"},
		{"GET", "/v1/namespaces/zz/tables", 404, "NoSuchNamespaceException", "namespace zz does not exist"},
		{"GET", "/v1/namespaces/a/tables/zz", 404, "NoSuchTableException", "table a.zz does not exist"},
		{"GET", "/v1/namespaces/zz/tables/t1", 404, "NoSuchTableException", "table zz.t1 does not exist"},
		{"HEAD", "/v1/namespaces/a/tables/zz", 404, "", ""},
		{"GET", "/v1/config?warehouse=s3://bucket/wh", 404, "NoSuchWarehouseException", `set the client's warehouse to "floe" or leave it unset`},
		{"GET", "/", 404, "NotFoundException", "no route for GET /: this is an Iceberg REST catalog"},
		{"GET", "/v2/config", 404, "NotFoundException", "GET /v1/config lists the endpoints"},
		{"GET", "/v1", 404, "NotFoundException", "no route"},
		{"GET", "/v1/", 404, "NotFoundException", "no route"},
		{"GET", "/v1/nope", 404, "NotFoundException", "no route for GET /v1/nope"},
		{"GET", "/v1/config/x", 404, "NotFoundException", "no route"},
		{"GET", "/v1/wh1/namespaces", 404, "NotFoundException", "no route"},
		{"GET", "/v1/namespaces/a/tables/t1/nope", 404, "NotFoundException", "no route"},
		{"POST", "/v1/namespaces/a/tables/t1/plan/p1/x", 404, "NotFoundException", "no route"},
		{"HEAD", "/v1/nope", 404, "", ""},
	})
}

func TestMethodNotAllowed(t *testing.T) {
	f := newFixture(t)
	srv := f.serve(t, f.options())
	cases := []struct{ method, path, allow string }{
		{"PUT", "/v1/namespaces", "GET, HEAD, POST"},
		{"DELETE", "/v1/namespaces", "GET, HEAD, POST"},
		{"OPTIONS", "/v1/namespaces/a", "GET, HEAD, DELETE"},
		{"PUT", "/v1/namespaces/a/properties", "POST"},
		{"DELETE", "/v1/namespaces/a/tables", "GET, HEAD, POST"},
		{"PATCH", "/v1/namespaces/a/tables/t1", "GET, HEAD, POST, DELETE"},
		{"GET", "/v1/tables/rename", "POST"},
		{"GET", "/v1/transactions/commit", "POST"},
		{"POST", "/v1/config", "GET, HEAD"},
		{"GET", "/v1/oauth/tokens", "POST"},
		{"PUT", "/v1/namespaces/a/views/v", "GET, HEAD, POST, DELETE"},
	}
	for _, c := range cases {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			rsp := do(t, c.method, srv.URL+c.path)
			e := requireError(t, c.method, rsp, 405, "MethodNotAllowedException")
			assert.Equal(t, c.allow, rsp.header.Get("Allow"))
			assert.Contains(t, e.Message, fmt.Sprintf("method %s is not allowed on %s", c.method, c.path))
		})
	}
}

// refusedRoutes are the routes the protocol defines that the catalog
// refuses, and a part of each one's message.
var refusedRoutes = []struct{ method, path, msg string }{
	{"POST", "/v1/namespaces", "creating a namespace is not supported: this catalog is read-only; floe's tables are written by floe"},
	{"DELETE", "/v1/namespaces/a", "dropping a namespace is not supported: this catalog is read-only"},
	{"POST", "/v1/namespaces/a/properties", "updating namespace properties is not supported: this catalog is read-only"},
	{"POST", "/v1/namespaces/a/tables", "creating a table is not supported: this catalog is read-only"},
	{"POST", "/v1/namespaces/a/tables/t1", "committing to a table is not supported: this catalog is read-only"},
	{"DELETE", "/v1/namespaces/a/tables/t1", "dropping a table is not supported: this catalog is read-only"},
	{"POST", "/v1/namespaces/a/register", "registering a table is not supported: this catalog is read-only"},
	{"POST", "/v1/namespaces/a/tables/t1/unregister", "unregistering a table is not supported: this catalog is read-only"},
	{"POST", "/v1/tables/rename", "renaming a table is not supported: this catalog is read-only"},
	{"POST", "/v1/transactions/commit", "committing a transaction is not supported: this catalog is read-only"},
	{"POST", "/v1/namespaces/a/tables/t1/metrics", "metrics reports are not accepted"},
	{"GET", "/v1/namespaces/a/tables/t1/credentials", "vended credentials are not supported"},
	{"POST", "/v1/namespaces/a/tables/t1/sign", "remote signing is not supported"},
	{"POST", "/v1/namespaces/a/tables/t1/plan", "server-side scan planning is not supported"},
	{"GET", "/v1/namespaces/a/tables/t1/plan/p1", "server-side scan planning is not supported"},
	{"DELETE", "/v1/namespaces/a/tables/t1/plan/p1", "server-side scan planning is not supported"},
	{"POST", "/v1/namespaces/a/tables/t1/tasks", "server-side scan planning is not supported"},
	{"GET", "/v1/namespaces/a/views", "views are not supported"},
	{"POST", "/v1/namespaces/a/views", "creating a view is not supported: this catalog is read-only"},
	{"GET", "/v1/namespaces/a/views/v", "views are not supported"},
	{"HEAD", "/v1/namespaces/a/views/v", ""},
	{"POST", "/v1/namespaces/a/views/v", "replacing a view is not supported: this catalog is read-only"},
	{"DELETE", "/v1/namespaces/a/views/v", "dropping a view is not supported: this catalog is read-only"},
	{"POST", "/v1/views/rename", "renaming a view is not supported: this catalog is read-only"},
	{"POST", "/v1/namespaces/a/register-view", "registering a view is not supported: this catalog is read-only"},
	{"GET", "/v1/namespaces/a/functions", "functions are not supported"},
	{"GET", "/v1/namespaces/a/functions/f", "functions are not supported"},
}

func TestRefusedRoutes(t *testing.T) {
	f := newFixture(t)
	for _, prefix := range []string{"", "wh1"} {
		opts := f.options()
		opts.Prefix = prefix
		srv := f.serve(t, opts)
		for _, c := range refusedRoutes {
			path := c.path
			if prefix != "" {
				path = "/v1/" + prefix + strings.TrimPrefix(path, "/v1")
			}
			t.Run(c.method+" "+path, func(t *testing.T) {
				rsp := do(t, c.method, srv.URL+path)
				e := requireError(t, c.method, rsp, 406, "UnsupportedOperationException")
				assert.Contains(t, e.Message, c.msg)
			})
		}
	}
	// Nothing changed.
	ctx := context.Background()
	idents, err := collect(f.cat.ListTables(ctx, table.Identifier{"a"}))
	require.NoError(t, err)
	assert.Len(t, idents, 3)
	ok, err := f.cat.CheckNamespaceExists(ctx, table.Identifier{"a"})
	require.NoError(t, err)
	assert.True(t, ok)
}

func TestOAuthTokensIssuesNone(t *testing.T) {
	f := newFixture(t)
	srv := f.serve(t, f.options())
	rsp := do(t, "POST", srv.URL+"/v1/oauth/tokens", "Content-Type: application/x-www-form-urlencoded")
	require.Equal(t, 400, rsp.status, "%s", rsp)
	assert.Equal(t, "application/json", rsp.header.Get("Content-Type"))
	requireSchema(t, oauthErrorSchema, rsp.body)
	var e oauthError
	require.NoError(t, json.Unmarshal(rsp.body, &e))
	assert.Equal(t, "unsupported_grant_type", e.Error)
	assert.Contains(t, e.Description, "this catalog does not issue OAuth tokens")
}

func TestConfig(t *testing.T) {
	f := newFixture(t)
	srv := f.serve(t, f.options())
	want := map[string]any{
		"defaults":  testTableConfig,
		"overrides": map[string]string{},
		"endpoints": []string{
			"GET /v1/{prefix}/namespaces",
			"GET /v1/{prefix}/namespaces/{namespace}",
			"HEAD /v1/{prefix}/namespaces/{namespace}",
			"GET /v1/{prefix}/namespaces/{namespace}/tables",
			"GET /v1/{prefix}/namespaces/{namespace}/tables/{table}",
			"HEAD /v1/{prefix}/namespaces/{namespace}/tables/{table}",
		},
	}
	wantJSON, err := json.Marshal(want)
	require.NoError(t, err)
	for _, path := range []string{"/v1/config", "/v1/config?warehouse=floe", "/v1/config?warehouse="} {
		rsp := do(t, "GET", srv.URL+path)
		require.Equal(t, 200, rsp.status, "%s", rsp)
		assert.Equal(t, "application/json", rsp.header.Get("Content-Type"))
		requireSchema(t, catalogConfigSchema, rsp.body)
		assert.JSONEq(t, string(wantJSON), string(rsp.body))
	}

	opts := f.options()
	opts.Warehouse, opts.Prefix, opts.TableConfig = "lake", "/wh1/", nil
	srv = f.serve(t, opts)
	rsp := do(t, "GET", srv.URL+"/v1/config?warehouse=lake")
	require.Equal(t, 200, rsp.status, "%s", rsp)
	requireSchema(t, catalogConfigSchema, rsp.body)
	var cfg catalogConfig
	require.NoError(t, json.Unmarshal(rsp.body, &cfg))
	assert.Equal(t, map[string]string{"prefix": "wh1"}, cfg.Overrides)
	assert.Equal(t, map[string]string{}, cfg.Defaults)
	e := requireError(t, "GET", do(t, "GET", srv.URL+"/v1/config?warehouse=floe"), 404, "NoSuchWarehouseException")
	assert.Contains(t, e.Message, `warehouse "floe" is not served here: this catalog serves the warehouse "lake"`)
}

// TestEndpointsAreExactlyTheServedRoutes checks that every advertised
// endpoint answers, and every other route the protocol defines is
// refused.
func TestEndpointsAreExactlyTheServedRoutes(t *testing.T) {
	f := newFixture(t)
	for _, prefix := range []string{"", "wh1"} {
		opts := f.options()
		opts.Prefix = prefix
		srv := f.serve(t, opts)
		var cfg catalogConfig
		require.NoError(t, json.Unmarshal(do(t, "GET", srv.URL+"/v1/config").body, &cfg))
		advertised := map[string]bool{}
		for _, ep := range cfg.Endpoints {
			advertised[ep] = true
			method, tmpl, ok := strings.Cut(ep, " ")
			require.True(t, ok, ep)
			path := strings.NewReplacer("{prefix}/", prefixPath(prefix), "{namespace}", "a", "{table}", "t1").Replace(tmpl)
			rsp := do(t, method, srv.URL+path)
			assert.Contains(t, []int{200, 204}, rsp.status, "%s %s: %s", method, path, rsp)
		}
		for _, c := range refusedRoutes {
			tmpl := strings.NewReplacer("/v1/", "/v1/{prefix}/", "/a/", "/{namespace}/", "/t1", "/{table}", "/v/", "/{view}/").Replace(c.path + "/")
			assert.False(t, advertised[c.method+" "+strings.TrimSuffix(tmpl, "/")], "%s %s is refused but advertised", c.method, tmpl)
		}
	}
}

func prefixPath(prefix string) string {
	if prefix == "" {
		return ""
	}
	return prefix + "/"
}

func TestNamespaceRoutes(t *testing.T) {
	f := newFixture(t)
	srv := f.serve(t, f.options())
	cases := []struct {
		path   string
		schema *jsonSchema
		want   string
	}{
		{"/v1/namespaces", listNamespacesSchema, `{"namespaces": [["a"], ["c"], ["d"]], "next-page-token": null}`},
		{"/v1/namespaces?parent=", listNamespacesSchema, `{"namespaces": [["a"], ["c"], ["d"]], "next-page-token": null}`},
		{"/v1/namespaces?parent=a", listNamespacesSchema, `{"namespaces": [["a", "b"]], "next-page-token": null}`},
		{"/v1/namespaces?parent=a%1Fb", listNamespacesSchema, `{"namespaces": [], "next-page-token": null}`},
		{"/v1/namespaces?parent=c", listNamespacesSchema, `{"namespaces": [], "next-page-token": null}`},
		{"/v1/namespaces?parent=d", listNamespacesSchema, `{"namespaces": [["d", "e"]], "next-page-token": null}`},
		{"/v1/namespaces?parent=d%1Fe", listNamespacesSchema, `{"namespaces": [], "next-page-token": null}`},
		{"/v1/namespaces/a", getNamespaceSchema, `{"namespace": ["a"], "properties": {"owner": "floe-test", "comment": "<&> \"quoted\""}}`},
		{"/v1/namespaces/a%1Fb", getNamespaceSchema, `{"namespace": ["a", "b"], "properties": {}}`},
		{"/v1/namespaces/a.b", getNamespaceSchema, `{"namespace": ["a", "b"], "properties": {}}`},
		{"/v1/namespaces/d", getNamespaceSchema, `{"namespace": ["d"], "properties": {}}`},
		{"/v1/namespaces/a/tables", listTablesSchema, `{"identifiers": [
			{"namespace": ["a"], "name": "t1"}, {"namespace": ["a"], "name": "t2"}, {"namespace": ["a"], "name": "t3"}],
			"next-page-token": null}`},
		{"/v1/namespaces/a%1Fb/tables", listTablesSchema, `{"identifiers": [{"namespace": ["a", "b"], "name": "events"}], "next-page-token": null}`},
		{"/v1/namespaces/a.b/tables", listTablesSchema, `{"identifiers": [{"namespace": ["a", "b"], "name": "events"}], "next-page-token": null}`},
		{"/v1/namespaces/c/tables", listTablesSchema, `{"identifiers": [], "next-page-token": null}`},
		{"/v1/namespaces/d/tables", listTablesSchema, `{"identifiers": [], "next-page-token": null}`},
		{"/v1/namespaces/d%1Fe/tables", listTablesSchema, `{"identifiers": [{"namespace": ["d", "e"], "name": "x"}], "next-page-token": null}`},
	}
	for _, c := range cases {
		t.Run(c.path, func(t *testing.T) {
			rsp := do(t, "GET", srv.URL+c.path)
			require.Equal(t, 200, rsp.status, "%s", rsp)
			assert.Equal(t, "application/json", rsp.header.Get("Content-Type"))
			requireSchema(t, c.schema, rsp.body)
			assert.JSONEq(t, c.want, string(rsp.body))
		})
	}
	// HTML characters are not escaped.
	assert.Contains(t, string(do(t, "GET", srv.URL+"/v1/namespaces/a").body), `<&>`)
}

func TestHeadHasNoBody(t *testing.T) {
	f := newFixture(t)
	srv := f.serve(t, f.options())
	cases := map[string]int{
		"/v1/namespaces/a":                   204,
		"/v1/namespaces/a%1Fb":               204,
		"/v1/namespaces/a.b":                 204,
		"/v1/namespaces/d":                   204,
		"/v1/namespaces/zz":                  404,
		"/v1/namespaces/a%1Fb/tables/events": 204,
		"/v1/namespaces/a.b/tables/events":   204,
		"/v1/namespaces/a/tables/zz":         404,
		"/v1/namespaces/zz/tables/t1":        404,
		"/v1/config":                         200,
		"/v1/namespaces":                     200,
		"/v1/namespaces/a/tables":            200,
	}
	for path, status := range cases {
		rsp := do(t, "HEAD", srv.URL+path)
		assert.Equal(t, status, rsp.status, path)
		assert.Empty(t, rsp.body, path)
	}
}

func TestLoadTable(t *testing.T) {
	f := newFixture(t)
	srv := f.serve(t, f.options())
	want := f.load(t, "a.b.events")
	url := srv.URL + "/v1/namespaces/a%1Fb/tables/events"

	rsp := do(t, "GET", url)
	require.Equal(t, 200, rsp.status, "%s", rsp)
	assert.Equal(t, "application/json", rsp.header.Get("Content-Type"))
	requireSchema(t, loadTableSchema, rsp.body)
	var got struct {
		MetadataLocation string            `json:"metadata-location"`
		Metadata         json.RawMessage   `json:"metadata"`
		Config           map[string]string `json:"config"`
	}
	require.NoError(t, json.Unmarshal(rsp.body, &got))
	assert.Equal(t, want.MetadataLocation(), got.MetadataLocation)
	assert.Equal(t, testTableConfig, got.Config)
	meta, err := table.ParseMetadataBytes(got.Metadata)
	require.NoError(t, err)
	assert.True(t, want.Metadata().Equals(meta), "the served metadata differs from the catalog's")
	wantJSON, err := json.Marshal(want.Metadata())
	require.NoError(t, err)
	assert.JSONEq(t, string(wantJSON), string(got.Metadata))

	etag := rsp.header.Get("ETag")
	require.NotEmpty(t, etag)
	assert.Equal(t, etag, do(t, "GET", url+"?snapshots=all").header.Get("ETag"))
	assert.Equal(t, etag, do(t, "GET", srv.URL+"/v1/namespaces/a.b/tables/events").header.Get("ETag"))
	for _, inm := range []string{etag, "W/" + etag, "*", `"other", ` + etag} {
		rsp := do(t, "GET", url, "If-None-Match: "+inm)
		assert.Equal(t, 304, rsp.status, inm)
		assert.Empty(t, rsp.body)
		assert.Equal(t, etag, rsp.header.Get("ETag"))
	}
	assert.Equal(t, 200, do(t, "GET", url, `If-None-Match: "other"`).status)

	refs := do(t, "GET", url+"?snapshots=refs")
	require.Equal(t, 200, refs.status, "%s", refs)
	requireSchema(t, loadTableSchema, refs.body)
	assert.NotEqual(t, etag, refs.header.Get("ETag"))
	require.NoError(t, json.Unmarshal(refs.body, &got))
	meta, err = table.ParseMetadataBytes(got.Metadata)
	require.NoError(t, err)
	require.Len(t, meta.Snapshots(), 1)
	assert.Equal(t, want.CurrentSnapshot().SnapshotID, meta.CurrentSnapshot().SnapshotID)
	assert.Equal(t, slices.Collect(want.Metadata().SnapshotLogs()), slices.Collect(meta.SnapshotLogs()), "the snapshot log is left as it is")

	// A commit changes the ETag; so does another table config.
	appendRows(t, want, []row{{6, "six"}})
	assert.Equal(t, 200, do(t, "GET", url, "If-None-Match: "+etag).status)
	after := do(t, "GET", url).header.Get("ETag")
	assert.NotEqual(t, etag, after)
	other := f.serve(t, Options{TableConfig: map[string]string{"s3.region": "eu-west-1"}})
	assert.NotEqual(t, after, do(t, "GET", other.URL+"/v1/namespaces/a%1Fb/tables/events").header.Get("ETag"))
}

func TestLoadTableWithoutSnapshots(t *testing.T) {
	f := newFixture(t)
	srv := f.serve(t, Options{})
	for _, q := range []string{"", "?snapshots=refs"} {
		rsp := do(t, "GET", srv.URL+"/v1/namespaces/a/tables/t1"+q)
		require.Equal(t, 200, rsp.status, "%s", rsp)
		requireSchema(t, loadTableSchema, rsp.body)
		var got loadTableResult
		require.NoError(t, json.Unmarshal(rsp.body, &got))
		assert.Equal(t, map[string]string{}, got.Config)
		meta, err := table.ParseMetadataBytes(got.Metadata)
		require.NoError(t, err)
		assert.Empty(t, meta.Snapshots())
	}
}

// brokenCatalog fails, or panics, in every read.
type brokenCatalog struct {
	icecat.Catalog
	err    error
	panics bool
}

func (b brokenCatalog) fail() error {
	if b.panics {
		panic("secret detail")
	}
	return b.err
}

func (b brokenCatalog) ListNamespaces(context.Context, table.Identifier) ([]table.Identifier, error) {
	return nil, b.fail()
}

func (b brokenCatalog) LoadNamespaceProperties(context.Context, table.Identifier) (iceberg.Properties, error) {
	return nil, b.fail()
}

func (b brokenCatalog) ListTables(context.Context, table.Identifier) iter.Seq2[table.Identifier, error] {
	return func(yield func(table.Identifier, error) bool) { yield(nil, b.fail()) }
}

func (b brokenCatalog) LoadTable(context.Context, table.Identifier) (*table.Table, error) {
	return nil, b.fail()
}

func TestCatalogFailures(t *testing.T) {
	paths := []string{
		"/v1/namespaces",
		"/v1/namespaces?parent=a",
		"/v1/namespaces/a",
		"/v1/namespaces/a/tables",
		"/v1/namespaces/a/tables/t1",
	}
	for name, cat := range map[string]brokenCatalog{
		"error": {err: errors.New("database is locked: secret detail")},
		"panic": {panics: true},
	} {
		t.Run(name, func(t *testing.T) {
			logs := &lockedBuffer{}
			srv := httptest.NewServer(NewHandler(cat, Options{Logger: slogTo(logs)}))
			defer srv.Close()
			for _, path := range paths {
				for _, method := range []string{"GET", "HEAD"} {
					rsp := do(t, method, srv.URL+path)
					e := requireError(t, method, rsp, 500, "InternalServerError")
					if method == "GET" {
						assert.NotContains(t, string(rsp.body), "secret")
						assert.Contains(t, e.Message, "the floe node's log has the details")
					}
				}
			}
			assert.Contains(t, logs.String(), "secret detail")
		})
	}
}

func TestCatalogNotFoundErrorsAreMapped(t *testing.T) {
	cat := brokenCatalog{err: fmt.Errorf("lookup: %w", icecat.ErrNoSuchNamespace)}
	srv := httptest.NewServer(NewHandler(cat, Options{Logger: slogTo(&lockedBuffer{})}))
	defer srv.Close()
	runErrorCases(t, srv.URL, []errorCase{
		{"GET", "/v1/namespaces/a%1Fb", 404, "NoSuchNamespaceException", "the namespace does not exist"},
		{"GET", "/v1/namespaces/a/tables/t1", 404, "NoSuchTableException", "table a.t1 does not exist"},
	})

	w := httptest.NewRecorder()
	h := NewHandler(cat, Options{}).(*handler)
	h.writeError(w, httptest.NewRequest("GET", "/v1/x", nil), fmt.Errorf("load: %w", icecat.ErrNoSuchTable))
	assert.Equal(t, 404, w.Code)
	assert.JSONEq(t, `{"error": {"message": "the table does not exist", "type": "NoSuchTableException", "code": 404}}`, w.Body.String())
}

func TestDefaults(t *testing.T) {
	h := NewHandler(nil, Options{Prefix: "/a/b/", TableConfig: map[string]string{"k": "v"}}).(*handler)
	assert.Equal(t, "floe", h.opts.Warehouse)
	assert.Equal(t, 1000, h.opts.MaxPageSize)
	assert.NotNil(t, h.log)
	assert.Equal(t, "a/b", h.opts.Prefix)
	assert.Equal(t, []string{"a", "b"}, h.prefix)

	// The handler keeps its own copy of the table config.
	cfg := map[string]string{"k": "v"}
	h = NewHandler(nil, Options{TableConfig: cfg}).(*handler)
	cfg["k"] = "changed"
	assert.Equal(t, "v", h.opts.TableConfig["k"])
}

func TestMultiSegmentPrefix(t *testing.T) {
	f := newFixture(t)
	opts := f.options()
	opts.Prefix = "wh/one"
	srv := f.serve(t, opts)
	for _, path := range []string{"/v1/wh/one/namespaces/a/tables/t1", "/v1/namespaces/a/tables/t1"} {
		assert.Equal(t, 200, do(t, "GET", srv.URL+path).status, path)
	}
	requireError(t, "GET", do(t, "GET", srv.URL+"/v1/wh/namespaces"), 404, "NotFoundException")

	// A prefix that is also a route's first segment: the prefixed reading
	// wins where both apply.
	opts.Prefix = "namespaces"
	srv = f.serve(t, opts)
	rsp := do(t, "GET", srv.URL+"/v1/namespaces/namespaces")
	require.Equal(t, 200, rsp.status, "%s", rsp)
	requireSchema(t, listNamespacesSchema, rsp.body)
	assert.Equal(t, 200, do(t, "GET", srv.URL+"/v1/namespaces").status)
	assert.Equal(t, 200, do(t, "GET", srv.URL+"/v1/namespaces/a").status)
	assert.Equal(t, 200, do(t, "GET", srv.URL+"/v1/namespaces/namespaces/a/tables").status)
}

func TestMountedPaths(t *testing.T) {
	f := newFixture(t)
	srv, _ := f.serveMounted(t, f.options())
	for _, path := range []string{"/iceberg/v1/config", "/iceberg/v1/namespaces/a%1Fb/tables/events", "/iceberg/v1/namespaces?parent=a%1Fb"} {
		rsp := do(t, "GET", srv.URL+path)
		assert.Equal(t, 200, rsp.status, "%s: %s", path, rsp)
	}
	requireError(t, "GET", do(t, "GET", srv.URL+"/iceberg/v1/nope"), 404, "NotFoundException")
}
