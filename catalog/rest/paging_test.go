package rest

import (
	"context"
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	floecat "github.com/floelake/floe/catalog"
)

// listPage is either listing response.
type listPage struct {
	Namespaces    [][]string        `json:"namespaces"`
	Identifiers   []tableIdentifier `json:"identifiers"`
	NextPageToken *string           `json:"next-page-token"`
}

// getPage fetches one page, checking it against schema.
func getPage(t *testing.T, u string, schema *jsonSchema) listPage {
	t.Helper()
	rsp := do(t, "GET", u)
	require.Equal(t, 200, rsp.status, "%s", rsp)
	requireSchema(t, schema, rsp.body)
	var p listPage
	require.NoError(t, json.Unmarshal(rsp.body, &p))
	return p
}

// walkPages follows next-page-tokens from an empty pageToken and returns
// the items of every page (tables by name, namespaces dotted).
func walkPages(t *testing.T, base string, size int, schema *jsonSchema) [][]string {
	t.Helper()
	var pages [][]string
	token := ""
	for range 20 {
		sep := "?"
		if strings.Contains(base, "?") {
			sep = "&"
		}
		p := getPage(t, base+sep+"pageSize="+strconv.Itoa(size)+"&pageToken="+url.QueryEscape(token), schema)
		var items []string
		for _, ns := range p.Namespaces {
			items = append(items, strings.Join(ns, "."))
		}
		for _, id := range p.Identifiers {
			items = append(items, id.Name)
		}
		require.LessOrEqual(t, len(items), size)
		pages = append(pages, items)
		if p.NextPageToken == nil {
			return pages
		}
		require.NotEmpty(t, *p.NextPageToken)
		token = *p.NextPageToken
	}
	t.Fatal("the pages do not end")
	return nil
}

func TestPaging(t *testing.T) {
	f := newFixture(t)
	srv := f.serve(t, f.options())
	cases := []struct {
		path   string
		size   int
		schema *jsonSchema
		want   [][]string
	}{
		{"/v1/namespaces/a/tables", 1, listTablesSchema, [][]string{{"t1"}, {"t2"}, {"t3"}}},
		{"/v1/namespaces/a/tables", 2, listTablesSchema, [][]string{{"t1", "t2"}, {"t3"}}},
		{"/v1/namespaces/a/tables", 3, listTablesSchema, [][]string{{"t1", "t2", "t3"}}},
		{"/v1/namespaces/a/tables", 1000, listTablesSchema, [][]string{{"t1", "t2", "t3"}}},
		{"/v1/namespaces/c/tables", 1, listTablesSchema, [][]string{nil}},
		{"/v1/namespaces", 2, listNamespacesSchema, [][]string{{"a", "c"}, {"d"}}},
		{"/v1/namespaces", 1, listNamespacesSchema, [][]string{{"a"}, {"c"}, {"d"}}},
		{"/v1/namespaces?parent=a", 1, listNamespacesSchema, [][]string{{"a.b"}}},
		{"/v1/namespaces?parent=a%1Fb", 1, listNamespacesSchema, [][]string{nil}},
	}
	for _, c := range cases {
		t.Run(c.path+" by "+strconv.Itoa(c.size), func(t *testing.T) {
			assert.Equal(t, c.want, walkPages(t, srv.URL+c.path, c.size, c.schema))
		})
	}
}

func TestPagingDefaultsAndUnpaged(t *testing.T) {
	f := newFixture(t)
	opts := f.options()
	opts.MaxPageSize = 2
	srv := f.serve(t, opts)

	// Without pageToken the whole listing is one response, whatever the
	// pageSize.
	p := getPage(t, srv.URL+"/v1/namespaces/a/tables?pageSize=1", listTablesSchema)
	assert.Len(t, p.Identifiers, 3)
	assert.Nil(t, p.NextPageToken)
	p = getPage(t, srv.URL+"/v1/namespaces/a/tables", listTablesSchema)
	assert.Len(t, p.Identifiers, 3)
	assert.Nil(t, p.NextPageToken)

	// An empty pageToken pages by MaxPageSize.
	assert.Equal(t, [][]string{{"t1", "t2"}, {"t3"}}, walkPages(t, srv.URL+"/v1/namespaces/a/tables", 2, listTablesSchema))
	p = getPage(t, srv.URL+"/v1/namespaces/a/tables?pageToken=", listTablesSchema)
	assert.Len(t, p.Identifiers, 2)
	require.NotNil(t, p.NextPageToken)

	e := requireError(t, "GET", do(t, "GET", srv.URL+"/v1/namespaces?pageToken=&pageSize=3"), 400, "BadRequestException")
	assert.Contains(t, e.Message, "want an integer from 1 to 2")
}

// TestPagingAcrossChanges checks that tables created or dropped between
// pages make no page repeat or skip the others.
func TestPagingAcrossChanges(t *testing.T) {
	f := newFixture(t)
	srv := f.serve(t, f.options())
	base := srv.URL + "/v1/namespaces/a/tables?pageSize=1&pageToken="

	p := getPage(t, base, listTablesSchema)
	require.Equal(t, "t1", p.Identifiers[0].Name)
	f.createTable(t, "a.t0")  // before the cursor: not in this walk
	f.createTable(t, "a.t25") // after it: served in order
	require.NoError(t, f.cat.DropTable(context.Background(), floecat.Ident("a.t2")))

	names := []string{"t1"}
	for p.NextPageToken != nil {
		p = getPage(t, base+url.QueryEscape(*p.NextPageToken), listTablesSchema)
		for _, id := range p.Identifiers {
			names = append(names, id.Name)
		}
	}
	assert.Equal(t, []string{"t1", "t25", "t3"}, names)
}

func TestPageTokens(t *testing.T) {
	for _, key := range []string{"a", "t1", "a\x1fb", "ünïcode", "with/slash and space"} {
		for _, kind := range []byte{kindNamespaces, kindTables} {
			tok := encodeToken(kind, key)
			assert.Equal(t, url.QueryEscape(tok), tok, "a token needs no escaping")
			got, ok := decodeToken(tok, kind)
			assert.True(t, ok)
			assert.Equal(t, key, got)
			other := kindTables
			if kind == kindTables {
				other = kindNamespaces
			}
			_, ok = decodeToken(tok, other)
			assert.False(t, ok, "a token of one listing is refused by the other")
		}
	}
	for _, bad := range []string{"", "!", "MQ", "MW4", encodeToken('x', "a"), "Mm5h"} {
		_, ok := decodeToken(bad, kindNamespaces)
		assert.False(t, ok, bad)
	}
}

func TestPaginate(t *testing.T) {
	items := []string{"a", "b", "c", "d", "e"}
	id := func(s string) string { return s }
	got, next := paginate(items, id, page{}, kindTables)
	assert.Equal(t, items, got)
	assert.Nil(t, next)

	got, next = paginate(items, id, page{paged: true, size: 2}, kindTables)
	assert.Equal(t, []string{"a", "b"}, got)
	require.NotNil(t, next)
	after, _ := decodeToken(*next, kindTables)
	assert.Equal(t, "b", after)

	got, next = paginate(items, id, page{paged: true, size: 2, after: "d"}, kindTables)
	assert.Equal(t, []string{"e"}, got)
	assert.Nil(t, next)

	got, next = paginate(items, id, page{paged: true, size: 3, after: "b"}, kindTables)
	assert.Equal(t, []string{"c", "d", "e"}, got, "an exactly full last page has no next token")
	assert.Nil(t, next)

	got, next = paginate(items, id, page{paged: true, size: 2, after: "zz"}, kindTables)
	assert.Empty(t, got)
	assert.Nil(t, next)
}
