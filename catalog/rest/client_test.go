package rest

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/apache/iceberg-go"
	icecat "github.com/apache/iceberg-go/catalog"
	icerest "github.com/apache/iceberg-go/catalog/rest"
	"github.com/apache/iceberg-go/table"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	floecat "github.com/floelake/floe/catalog"
)

// client opens iceberg-go's REST catalog on uri.
func client(t *testing.T, uri string, opts ...icerest.Option) *icerest.Catalog {
	t.Helper()
	cl, err := icerest.NewCatalog(context.Background(), "floe", uri, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = cl.Close() })
	return cl
}

func TestClientWalksNamespacesToTheLeaves(t *testing.T) {
	f := newFixture(t)
	srv, log := f.serveMounted(t, f.options())
	cl := client(t, srv.URL+"/iceberg", icerest.WithWarehouseLocation("floe"))
	ctx := context.Background()

	// Walk as ClickHouse does: list under every namespace found until the
	// listings come back empty. A server that ignored parent would make
	// this walk forever; the request budget stops it.
	var found []string
	queue := []table.Identifier{nil}
	for len(queue) > 0 {
		require.Less(t, len(log.all()), 50, "the namespace walk does not terminate")
		parent := queue[0]
		queue = queue[1:]
		kids, err := cl.ListNamespaces(ctx, parent)
		require.NoError(t, err, "list under %v", parent)
		for _, k := range kids {
			require.Len(t, k, len(parent)+1, "%v listed under %v is not a direct child", k, parent)
			require.True(t, slices.Equal(parent, k[:len(parent)]), "%v listed under %v", k, parent)
			found = append(found, strings.Join(k, "."))
			queue = append(queue, k)
		}
	}
	assert.Equal(t, []string{"a", "c", "d", "a.b", "d.e"}, found)

	_, err := cl.ListNamespaces(ctx, table.Identifier{"zz"})
	assert.ErrorIs(t, err, icecat.ErrNoSuchNamespace)
}

func TestClientNamespaces(t *testing.T) {
	f := newFixture(t)
	srv, _ := f.serveMounted(t, f.options())
	cl := client(t, srv.URL+"/iceberg")
	ctx := context.Background()

	props, err := cl.LoadNamespaceProperties(ctx, table.Identifier{"a"})
	require.NoError(t, err)
	want, err := f.cat.LoadNamespaceProperties(ctx, table.Identifier{"a"})
	require.NoError(t, err)
	assert.Equal(t, want, props)
	assert.Equal(t, "floe-test", props["owner"])

	for _, ns := range []table.Identifier{{"a", "b"}, {"c"}, {"d"}, {"d", "e"}} {
		props, err := cl.LoadNamespaceProperties(ctx, ns)
		require.NoError(t, err, "%v", ns)
		assert.NotNil(t, props, "%v", ns)
	}
	_, err = cl.LoadNamespaceProperties(ctx, table.Identifier{"a", "zz"})
	assert.ErrorIs(t, err, icecat.ErrNoSuchNamespace)

	exists := map[string]bool{"a": true, "a.b": true, "c": true, "d": true, "d.e": true, "zz": false, "a.zz": false, "d.e.x": false}
	for ns, want := range exists {
		got, err := cl.CheckNamespaceExists(ctx, floecat.Ident(ns))
		require.NoError(t, err, ns)
		assert.Equal(t, want, got, ns)
	}
}

func TestClientListsTables(t *testing.T) {
	f := newFixture(t)
	srv, _ := f.serveMounted(t, f.options())
	cl := client(t, srv.URL+"/iceberg")
	ctx := context.Background()

	list := func(ns string) ([]string, error) {
		var out []string
		for id, err := range cl.ListTables(ctx, floecat.Ident(ns)) {
			if err != nil {
				return nil, err
			}
			out = append(out, strings.Join(id, "."))
		}
		return out, nil
	}
	cases := map[string][]string{
		"a":   {"a.t1", "a.t2", "a.t3"},
		"a.b": {"a.b.events"},
		"c":   nil,
		"d":   nil,
		"d.e": {"d.e.x"},
	}
	for ns, want := range cases {
		got, err := list(ns)
		require.NoError(t, err, ns)
		assert.Equal(t, want, got, ns)
	}
	_, err := list("zz")
	assert.ErrorIs(t, err, icecat.ErrNoSuchNamespace)
}

func TestClientLoadsAndScansTables(t *testing.T) {
	f := newFixture(t)
	srv, _ := f.serveMounted(t, f.options())
	cl := client(t, srv.URL+"/iceberg", icerest.WithWarehouseLocation("floe"))
	ctx := context.Background()

	for _, name := range []string{"a.b.events", "a.t1", "d.e.x"} {
		t.Run(name, func(t *testing.T) {
			want := f.load(t, name)
			got, err := cl.LoadTable(ctx, floecat.Ident(name))
			require.NoError(t, err)
			assert.Equal(t, want.MetadataLocation(), got.MetadataLocation())
			assert.Equal(t, want.Metadata().TableUUID(), got.Metadata().TableUUID())
			assert.True(t, want.Schema().Equals(got.Schema()))
			assert.Equal(t, len(want.Metadata().Snapshots()), len(got.Metadata().Snapshots()))
			assert.Equal(t, want.Metadata().CurrentSnapshot(), got.Metadata().CurrentSnapshot())
			if want.CurrentSnapshot() != nil {
				assert.Equal(t, scanRows(t, want), scanRows(t, got))
			}
		})
	}
	got, err := cl.LoadTable(ctx, floecat.Ident("a.b.events"))
	require.NoError(t, err)
	assert.Equal(t, f.rows, scanRows(t, got))
	assert.Len(t, got.Metadata().Snapshots(), 2)

	for name, want := range map[string]bool{"a.t1": true, "a.b.events": true, "a.zz": false, "zz.t1": false} {
		ok, err := cl.CheckTableExists(ctx, floecat.Ident(name))
		require.NoError(t, err, name)
		assert.Equal(t, want, ok, name)
	}
	_, err = cl.LoadTable(ctx, floecat.Ident("a.zz"))
	assert.ErrorIs(t, err, icecat.ErrNoSuchTable)
	_, err = cl.LoadTable(ctx, floecat.Ident("zz.t1"))
	assert.ErrorIs(t, err, icecat.ErrNoSuchTable)
}

func TestClientReferencedSnapshotsOnly(t *testing.T) {
	f := newFixture(t)
	srv, log := f.serveMounted(t, f.options())
	cl := client(t, srv.URL+"/iceberg", icerest.WithAdditionalProps(iceberg.Properties{"snapshot-loading-mode": "refs"}))

	want := f.load(t, "a.b.events")
	got, err := cl.LoadTable(context.Background(), floecat.Ident("a.b.events"))
	require.NoError(t, err)
	require.Len(t, want.Metadata().Snapshots(), 2)
	require.Len(t, got.Metadata().Snapshots(), 1, "only the snapshot main references")
	assert.Equal(t, want.CurrentSnapshot().SnapshotID, got.CurrentSnapshot().SnapshotID)
	assert.Equal(t, want.MetadataLocation(), got.MetadataLocation())
	assert.Equal(t, f.rows, scanRows(t, got))
	assert.Contains(t, log.all(), "GET /v1/namespaces/a%1Fb/tables/events")
}

func TestClientCannotWrite(t *testing.T) {
	f := newFixture(t)
	srv, log := f.serveMounted(t, f.options())
	cl := client(t, srv.URL+"/iceberg")
	ctx := context.Background()

	writes := map[string]func() error{
		"create namespace": func() error { return cl.CreateNamespace(ctx, table.Identifier{"new"}, nil) },
		"drop namespace":   func() error { return cl.DropNamespace(ctx, table.Identifier{"c"}) },
		"update properties": func() error {
			_, err := cl.UpdateNamespaceProperties(ctx, table.Identifier{"a"}, nil, iceberg.Properties{"k": "v"})
			return err
		},
		"create table": func() error {
			_, err := cl.CreateTable(ctx, table.Identifier{"a", "new"}, testSchema)
			return err
		},
		"drop table": func() error { return cl.DropTable(ctx, table.Identifier{"a", "t1"}) },
		"rename table": func() error {
			_, err := cl.RenameTable(ctx, table.Identifier{"a", "t1"}, table.Identifier{"a", "t9"})
			return err
		},
	}
	for name, write := range writes {
		err := write()
		require.Error(t, err, name)
		assert.True(t, errors.Is(err, icerest.ErrEndpointNotSupported), "%s: %v", name, err)
	}
	for _, r := range log.all() {
		assert.True(t, strings.HasPrefix(r, "GET "), "a write reached the server: %s", r)
	}
	idents, err := collect(f.cat.ListTables(ctx, table.Identifier{"a"}))
	require.NoError(t, err)
	assert.Len(t, idents, 3)
}

func TestClientWithPrefix(t *testing.T) {
	f := newFixture(t)
	opts := f.options()
	opts.Prefix = "wh1"
	srv, log := f.serveMounted(t, opts)
	cl := client(t, srv.URL+"/iceberg")
	ctx := context.Background()

	kids, err := cl.ListNamespaces(ctx, table.Identifier{"a"})
	require.NoError(t, err)
	assert.Equal(t, []table.Identifier{{"a", "b"}}, kids)
	tbl, err := cl.LoadTable(ctx, floecat.Ident("a.b.events"))
	require.NoError(t, err)
	assert.Equal(t, f.rows, scanRows(t, tbl))

	reqs := log.all()
	assert.Equal(t, "GET /v1/config", reqs[0])
	for _, r := range reqs[1:] {
		assert.True(t, strings.HasPrefix(r, "GET /v1/wh1/namespaces"), "not under the prefix: %s", r)
	}
	// Clients that ignore the prefix override are served too.
	rsp := do(t, "GET", srv.URL+"/iceberg/v1/namespaces?parent=a")
	assert.Equal(t, 200, rsp.status, rsp)
	assert.JSONEq(t, `{"namespaces": [["a", "b"]], "next-page-token": null}`, string(rsp.body))
}

func TestClientRejectsAnotherWarehouse(t *testing.T) {
	f := newFixture(t)
	srv, _ := f.serveMounted(t, f.options())
	_, err := icerest.NewCatalog(context.Background(), "floe", srv.URL+"/iceberg", icerest.WithWarehouseLocation("s3://bucket/wh"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), `this catalog serves the warehouse "floe"`)
	assert.Contains(t, err.Error(), "NoSuchWarehouseException")
}
