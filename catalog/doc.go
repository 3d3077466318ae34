// Package catalog opens the Iceberg catalog floe commits to and creates the
// tables it writes.
//
// Catalogs: the SQL catalog on SQLite (embedded default, <data_dir>/catalog.db)
// or Postgres, both in the table layout of Java's JdbcCatalog
// (iceberg_tables, iceberg_namespace_properties) so Spark and Trino can share
// them; and the REST catalog. Storage: local paths or file:// and s3:// (any
// S3-compatible store, path-style addressing for custom endpoints).
//
// Tables floe creates are format v2 with zstd Parquet, old metadata files
// pruned after commits, and iceberg-go's own commit retries off: floe's
// committer owns retries (see package commit).
//
// On disk, a table lives at <warehouse>/<namespace>.db/<table>/ with data/
// (Parquet files, Hive-style partition directories) and metadata/
// (metadata.json versions, manifest lists, manifests). Every file is
// immutable once written.
package catalog
