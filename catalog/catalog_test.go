package catalog_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	"github.com/stretchr/testify/require"

	"github.com/floelake/floe/catalog"
)

var sch = iceberg.NewSchema(0,
	iceberg.NestedField{ID: 1, Name: "id", Type: iceberg.PrimitiveTypes.Int64, Required: true},
	iceberg.NestedField{ID: 2, Name: "ts", Type: iceberg.PrimitiveTypes.TimestampTz},
)

// postgresURI is the machine's PostgreSQL (trust auth, database test);
// FLOE_TEST_POSTGRES overrides it.
func postgresURI(t *testing.T) string {
	uri := os.Getenv("FLOE_TEST_POSTGRES")
	if uri == "" {
		uri = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	db, err := sql.Open("pgx", uri)
	require.NoError(t, err)
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("PostgreSQL at %s is required in CI: %v", uri, err)
		}
		t.Skipf("PostgreSQL not reachable at %s (%v); start it or set FLOE_TEST_POSTGRES", uri, err)
	}
	return uri
}

func TestCatalogs(t *testing.T) {
	cases := map[string]func(t *testing.T) catalog.Config{
		"sqlite": func(t *testing.T) catalog.Config {
			return catalog.Config{Type: "sql", Name: "floe", URI: "sqlite://" + filepath.Join(t.TempDir(), "c.db")}
		},
		"postgres": func(t *testing.T) catalog.Config {
			// A catalog name of its own keeps runs apart in a shared database.
			return catalog.Config{Type: "sql", Name: fmt.Sprintf("floe_test_%d", time.Now().UnixNano()), URI: postgresURI(t)}
		},
	}
	for name, mk := range cases {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			cfg := mk(t)
			cat, err := catalog.Open(ctx, cfg, catalog.StorageConfig{}, dir)
			require.NoError(t, err)
			defer cat.Close()
			require.Equal(t, "file://"+filepath.Join(dir, "warehouse"), cat.Warehouse)

			ident := table.Identifier{"ns", "events"}
			spec := iceberg.NewPartitionSpec(iceberg.PartitionField{SourceIDs: []int{2}, FieldID: 1000, Name: "ts_day", Transform: iceberg.DayTransform{}})
			tbl, created, err := catalog.EnsureTable(ctx, cat, ident, sch, spec, iceberg.Properties{"owner": "floe"})
			require.NoError(t, err)
			require.True(t, created)
			require.Equal(t, 2, tbl.Metadata().Version())
			require.Equal(t, "floe", tbl.Properties()["owner"])
			require.Equal(t, "zstd", tbl.Properties()["write.parquet.compression-codec"])
			spec2 := tbl.Spec()
			require.Equal(t, 1, spec2.NumFields())

			again, created, err := catalog.EnsureTable(ctx, cat, ident, sch, spec, nil)
			require.NoError(t, err)
			require.False(t, created)
			require.Equal(t, tbl.MetadataLocation(), again.MetadataLocation())

			// A second catalog handle (another process) sees it.
			cat2, err := catalog.Open(ctx, cfg, catalog.StorageConfig{}, dir)
			require.NoError(t, err)
			defer cat2.Close()
			loaded, err := cat2.LoadTable(ctx, ident)
			require.NoError(t, err)
			require.True(t, loaded.Schema().Equals(tbl.Schema()))

			_, _, err = catalog.EnsureTable(ctx, cat, table.Identifier{"ns", "missing"}, nil, *iceberg.UnpartitionedSpec, nil)
			require.ErrorContains(t, err, "no schema was given")

			// The format-version property picks the created table's
			// version, and identifier fields survive the fresh ids.
			for _, version := range []int{2, 3} {
				keyed := iceberg.NewSchemaWithIdentifiers(0, []int{1}, sch.Fields()...)
				vident := table.Identifier{"ns", fmt.Sprintf("keyed_v%d", version)}
				tbl, created, err := catalog.EnsureTable(ctx, cat, vident, keyed, *iceberg.UnpartitionedSpec,
					iceberg.Properties{"format-version": fmt.Sprint(version)})
				require.NoError(t, err)
				require.True(t, created)
				require.Equal(t, version, tbl.Metadata().Version())
				loaded, err := cat2.LoadTable(ctx, vident)
				require.NoError(t, err)
				require.Equal(t, version, loaded.Metadata().Version())
				require.Equal(t, []int{1}, loaded.Schema().IdentifierFieldIDs)
				_, isProp := loaded.Properties()["format-version"]
				require.False(t, isProp, "the version is the metadata's, not a property")
			}
		})
	}
}

// TestPostgresJdbcLayout: the Postgres catalog uses the tables Java's
// JdbcCatalog reads, so Spark and Trino can share it.
func TestPostgresJdbcLayout(t *testing.T) {
	uri := postgresURI(t)
	ctx := context.Background()
	name := fmt.Sprintf("floe_layout_%d", time.Now().UnixNano())
	cat, err := catalog.Open(ctx, catalog.Config{Type: "sql", Name: name, URI: uri}, catalog.StorageConfig{}, t.TempDir())
	require.NoError(t, err)
	defer cat.Close()
	_, _, err = catalog.EnsureTable(ctx, cat, table.Identifier{"jdbc", "t"}, sch, *iceberg.UnpartitionedSpec, nil)
	require.NoError(t, err)

	db, err := sql.Open("pgx", uri)
	require.NoError(t, err)
	defer db.Close()
	var loc string
	require.NoError(t, db.QueryRowContext(ctx,
		`SELECT metadata_location FROM iceberg_tables WHERE catalog_name = $1 AND table_namespace = 'jdbc' AND table_name = 't'`,
		name).Scan(&loc))
	require.Contains(t, loc, ".metadata.json")
	var n int
	require.NoError(t, db.QueryRowContext(ctx,
		`SELECT count(*) FROM iceberg_namespace_properties WHERE catalog_name = $1 AND namespace = 'jdbc'`, name).Scan(&n))
	require.Positive(t, n)
}

func TestIOPropsPathStyle(t *testing.T) {
	p := catalog.IOProps(catalog.StorageConfig{S3: catalog.S3Config{Endpoint: "http://127.0.0.1:7070", Region: "us-east-1", PathStyle: true, AccessKeyID: "a", SecretAccessKey: "b"}})
	require.Equal(t, "false", p["s3.force-virtual-addressing"])
	require.Equal(t, "http://127.0.0.1:7070", p["s3.endpoint"])
	require.Equal(t, "a", p["s3.access-key-id"])
	aws := catalog.IOProps(catalog.StorageConfig{S3: catalog.S3Config{Region: "eu-west-1"}})
	require.Equal(t, "true", aws["s3.force-virtual-addressing"])
	require.NotContains(t, aws, "s3.access-key-id", "default credential chain")
}

func TestOpenErrors(t *testing.T) {
	_, err := catalog.Open(context.Background(), catalog.Config{Type: "sql", Name: "x", URI: "mysql://nope"}, catalog.StorageConfig{}, t.TempDir())
	require.ErrorContains(t, err, "want sqlite:///path or postgres://")
	_, err = catalog.Open(context.Background(), catalog.Config{Type: "hive", Name: "x"}, catalog.StorageConfig{}, t.TempDir())
	require.ErrorContains(t, err, "unknown type")
	// A server that does not answer can come back: the error says so, with
	// the credentials redacted.
	_, err = catalog.Open(context.Background(), catalog.Config{Type: "sql", Name: "x", URI: "postgres://floe:secret@127.0.0.1:1/test?sslmode=disable"}, catalog.StorageConfig{}, t.TempDir())
	var ue *catalog.UnreachableError
	require.ErrorAs(t, err, &ue)
	require.Equal(t, "postgres://***@127.0.0.1:1/test?sslmode=disable", ue.URI)
	require.NotContains(t, err.Error(), "secret")
}

func TestSQLitePath(t *testing.T) {
	for uri, want := range map[string]string{
		"sqlite:///abs/c.db":            "/abs/c.db",
		"sqlite:////abs/c.db":           "/abs/c.db", // SQLAlchemy's and PyIceberg's spelling
		"sqlite://rel/c.db":             "rel/c.db",
		"sqlite:rel/c.db":               "rel/c.db",
		"sqlite::memory:":               ":memory:",
		"sqlite:///dir with space/c.db": "/dir with space/c.db",
	} {
		require.Equal(t, want, catalog.SQLitePath(uri), uri)
	}
}

// Both spellings of an absolute path open the same catalog file.
func TestOpenSQLiteFourSlashes(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "c.db")
	three, err := catalog.Open(ctx, catalog.Config{Type: "sql", Name: "floe", URI: "sqlite://" + path}, catalog.StorageConfig{}, t.TempDir())
	require.NoError(t, err)
	require.True(t, three.Created)
	require.NoError(t, three.CreateNamespace(ctx, catalog.Ident("ns"), nil))
	require.NoError(t, three.Close())

	four, err := catalog.Open(ctx, catalog.Config{Type: "sql", Name: "floe", URI: "sqlite:///" + path}, catalog.StorageConfig{}, t.TempDir())
	require.NoError(t, err)
	defer four.Close()
	require.False(t, four.Created, "the file exists")
	ok, err := four.CheckNamespaceExists(ctx, catalog.Ident("ns"))
	require.NoError(t, err)
	require.True(t, ok)
}

// A catalog in a directory that does not exist is a typo far more often
// than a wish: Open refuses it and names the directory. Only the embedded
// catalog creates its directory.
func TestOpenSQLiteMissingDirectory(t *testing.T) {
	ctx := context.Background()
	missing := filepath.Join(t.TempDir(), "no-such-dir")
	_, err := catalog.Open(ctx, catalog.Config{Type: "sql", Name: "floe", URI: "sqlite://" + filepath.Join(missing, "c.db")}, catalog.StorageConfig{}, t.TempDir())
	require.ErrorContains(t, err, "directory "+missing+" does not exist")
	_, statErr := os.Stat(missing)
	require.ErrorIs(t, statErr, os.ErrNotExist, "nothing was created")

	dataDir := filepath.Join(t.TempDir(), "fresh")
	c, err := catalog.Open(ctx, catalog.DefaultConfig(), catalog.StorageConfig{}, dataDir)
	require.NoError(t, err)
	defer c.Close()
	require.True(t, c.Created)
	require.Equal(t, "sqlite://"+filepath.Join(dataDir, "catalog.db"), c.URI)
}
