package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/apache/iceberg-go"
	icecat "github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/catalog/rest"
	sqlcat "github.com/apache/iceberg-go/catalog/sql"
	iceio "github.com/apache/iceberg-go/io"
	_ "github.com/apache/iceberg-go/io/gocloud/s3" // registers s3:// IO
	"github.com/apache/iceberg-go/table"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	"github.com/uptrace/bun/driver/sqliteshim"
)

// Catalog is an opened Iceberg catalog plus the properties its tables'
// file IO needs.
type Catalog struct {
	icecat.Catalog
	// IOProps are the object-store properties (s3.*) for data files.
	IOProps iceberg.Properties
	// Warehouse is the root location of tables floe creates.
	Warehouse string
	// URI says where the catalog is (credentials redacted), for logs.
	URI string
	// Created reports a SQLite catalog file that Open created.
	Created bool
	closeFn func() error
}

// Close releases the catalog's connections.
func (c *Catalog) Close() error {
	if c.closeFn != nil {
		return c.closeFn()
	}
	return nil
}

// IOProps turns the storage section into iceberg-go io properties.
func IOProps(st StorageConfig) iceberg.Properties {
	p := iceberg.Properties{}
	s3 := st.S3
	if s3.Endpoint != "" {
		p[iceio.S3EndpointURL] = s3.Endpoint
	}
	if s3.Region != "" {
		p[iceio.S3Region] = s3.Region
	}
	if s3.AccessKeyID != "" {
		p[iceio.S3AccessKeyID] = s3.AccessKeyID
		p[iceio.S3SecretAccessKey] = s3.SecretAccessKey
	}
	if s3.SessionToken != "" {
		p[iceio.S3SessionToken] = s3.SessionToken
	}
	// Path-style addressing is what S3-compatible servers expect; virtual
	// hosts only where asked for on AWS itself.
	p[iceio.S3ForceVirtualAddressing] = strconv.FormatBool(!s3.PathStyle && s3.Endpoint == "")
	return p
}

// Open opens the catalog described by cfg. dataDir is the node's data
// directory; the default embedded catalog and warehouse live under it.
func Open(ctx context.Context, cfg Config, st StorageConfig, dataDir string) (*Catalog, error) {
	ioProps := IOProps(st)
	warehouse := cfg.Warehouse
	if warehouse == "" {
		abs, err := filepath.Abs(filepath.Join(dataDir, "warehouse"))
		if err != nil {
			return nil, err
		}
		warehouse = "file://" + abs
	}
	if local, ok := LocalPath(warehouse); ok {
		if err := os.MkdirAll(local, 0o755); err != nil {
			return nil, fmt.Errorf("catalog: warehouse %s: %w", warehouse, err)
		}
	}
	props := iceberg.Properties{"warehouse": warehouse}
	for k, v := range ioProps {
		props[k] = v
	}
	for k, v := range cfg.Properties {
		props[k] = v
	}

	switch cfg.Type {
	case "sql":
		uri, embedded := cfg.URI, cfg.URI == ""
		if embedded {
			uri = "sqlite://" + filepath.Join(dataDir, "catalog.db")
		}
		db, dialect, created, err := openSQL(uri, embedded)
		if err != nil {
			return nil, err
		}
		props["init_catalog_tables"] = "true"
		cat, err := sqlcat.NewCatalog(cfg.Name, db, dialect, props)
		if err != nil {
			_ = db.Close()
			if dialect == sqlcat.Postgres {
				// The first statement is the first connection: a server that
				// is down, restarting or refusing us can come back.
				return nil, &UnreachableError{URI: redact(uri), Err: err}
			}
			return nil, fmt.Errorf("catalog: open sql catalog %s: %w", redact(uri), err)
		}
		return &Catalog{Catalog: cat, IOProps: ioProps, Warehouse: warehouse, URI: redact(uri), Created: created, closeFn: db.Close}, nil
	case "rest":
		opts := []rest.Option{rest.WithWarehouseLocation(warehouse), rest.WithAdditionalProps(props)}
		if cfg.Token != "" {
			opts = append(opts, rest.WithOAuthToken(cfg.Token))
		}
		if cfg.Credential != "" {
			opts = append(opts, rest.WithCredential(cfg.Credential))
		}
		cat, err := rest.NewCatalog(ctx, cfg.Name, cfg.URI, opts...)
		if err != nil {
			// Fetching the catalog's configuration is the first request.
			return nil, &UnreachableError{URI: cfg.URI, Err: err}
		}
		return &Catalog{Catalog: cat, IOProps: ioProps, Warehouse: warehouse, URI: cfg.URI}, nil
	default:
		return nil, fmt.Errorf("catalog: unknown type %q (want sql or rest)", cfg.Type)
	}
}

// openSQL opens a SQL catalog's database. created reports a SQLite file
// that did not exist before. Only the embedded catalog (in the data
// directory) may create its directory: a catalog path in a directory that
// does not exist is far more often a typo than a wish, and a new, empty
// catalog would start every pipeline again from its start offsets in a
// catalog nobody reads.
func openSQL(uri string, embedded bool) (_ *sql.DB, _ sqlcat.SupportedDialect, created bool, _ error) {
	switch {
	case strings.HasPrefix(uri, "sqlite:"):
		path := SQLitePath(uri)
		dsn := ":memory:"
		if path != ":memory:" {
			dir := filepath.Dir(path)
			if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
				if !embedded {
					return nil, "", false, fmt.Errorf("catalog: uri %s: directory %s does not exist; create it, or correct catalog.uri (a new catalog starts every pipeline from its start offsets)", uri, dir)
				}
				if err := os.MkdirAll(dir, 0o755); err != nil {
					return nil, "", false, fmt.Errorf("catalog: %w", err)
				}
			}
			if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
				created = true
			}
			// WAL and a busy timeout let readers (floe's own API, a user's
			// DuckDB) share the file with the committer.
			dsn = "file:" + sqliteEscape(path) + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)"
		}
		db, err := sql.Open(sqliteshim.ShimName, dsn)
		if err != nil {
			return nil, "", false, fmt.Errorf("catalog: open sqlite %s: %w", path, err)
		}
		if path == ":memory:" {
			db.SetMaxOpenConns(1)
		}
		return db, sqlcat.SQLite, created, nil
	case strings.HasPrefix(uri, "postgres://"), strings.HasPrefix(uri, "postgresql://"):
		db, err := sql.Open("pgx", uri)
		if err != nil {
			return nil, "", false, fmt.Errorf("catalog: open postgres %s: %w", redact(uri), err)
		}
		return db, sqlcat.Postgres, false, nil
	default:
		return nil, "", false, fmt.Errorf("catalog: uri %q: want sqlite:///path or postgres://", uri)
	}
}

// SQLitePath returns the file a sqlite: URI names (or ":memory:"). An
// absolute path may be written with three slashes (sqlite:///abs/c.db) or
// with four, as SQLAlchemy and PyIceberg write it (sqlite:////abs/c.db);
// both name /abs/c.db. sqlite:rel/c.db and sqlite://rel/c.db name a path
// relative to the working directory.
func SQLitePath(uri string) string {
	rest := strings.TrimPrefix(strings.TrimPrefix(uri, "sqlite:"), "//")
	if strings.HasPrefix(rest, "/") {
		rest = "/" + strings.TrimLeft(rest, "/")
	}
	return rest
}

// sqliteEscape makes a path safe inside a SQLite file: URI, where ? and #
// end the path and % starts an escape.
func sqliteEscape(path string) string {
	return strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
}

func redact(uri string) string {
	if i := strings.Index(uri, "@"); i >= 0 {
		if j := strings.Index(uri, "://"); j >= 0 && j < i {
			return uri[:j+3] + "***" + uri[i:]
		}
	}
	return uri
}

// LocalPath returns the file-system path of a local location (a bare path
// or file://), and false for remote locations.
func LocalPath(loc string) (string, bool) {
	if strings.HasPrefix(loc, "file://") {
		return strings.TrimPrefix(loc, "file://"), true
	}
	if strings.Contains(loc, "://") {
		return "", false
	}
	return loc, true
}

// Ident splits "a.b.table" into an identifier.
func Ident(name string) table.Identifier { return strings.Split(name, ".") }

// DefaultTableProperties are set on every table floe creates.
func DefaultTableProperties() iceberg.Properties {
	return iceberg.Properties{
		"format-version":                             "2",
		"write.format.default":                       "parquet",
		"write.parquet.compression-codec":            "zstd",
		"write.metadata.delete-after-commit.enabled": "true",
		"write.metadata.previous-versions-max":       "50",
		"commit.retry.num-retries":                   "0",
	}
}

// EnsureTable loads a table, creating it (and its namespace) with the given
// schema, spec and properties when it does not exist. created reports which.
// props are laid over DefaultTableProperties: a format-version among them
// picks the created table's format version (the catalog records it in the
// metadata, not as a property), and the schema's identifier fields become
// the table's.
func EnsureTable(ctx context.Context, cat icecat.Catalog, ident table.Identifier, sch *iceberg.Schema,
	spec iceberg.PartitionSpec, props iceberg.Properties,
) (tbl *table.Table, created bool, err error) {
	tbl, err = cat.LoadTable(ctx, ident)
	if err == nil {
		return tbl, false, nil
	}
	if !errors.Is(err, icecat.ErrNoSuchTable) {
		return nil, false, fmt.Errorf("catalog: load %s: %w", strings.Join(ident, "."), err)
	}
	if sch == nil {
		return nil, false, fmt.Errorf("catalog: table %s does not exist and no schema was given", strings.Join(ident, "."))
	}
	ns := icecat.NamespaceFromIdent(ident)
	if err := cat.CreateNamespace(ctx, ns, nil); err != nil && !errors.Is(err, icecat.ErrNamespaceAlreadyExists) {
		return nil, false, fmt.Errorf("catalog: create namespace %s: %w", strings.Join(ns, "."), err)
	}
	all := DefaultTableProperties()
	for k, v := range props {
		all[k] = v
	}
	tbl, err = cat.CreateTable(ctx, ident, sch, icecat.WithPartitionSpec(&spec), icecat.WithProperties(all))
	if errors.Is(err, icecat.ErrTableAlreadyExists) {
		// Lost a race with another creator: theirs is as good as ours.
		tbl, err = cat.LoadTable(ctx, ident)
		return tbl, false, err
	}
	if err != nil {
		return nil, false, fmt.Errorf("catalog: create %s: %w", strings.Join(ident, "."), err)
	}
	return tbl, true, nil
}
