package testutil

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go/table"

	"github.com/floelake/floe/catalog"
)

// PartitionOffsets scans tbl and returns the (partition, offset) of every
// row, read from its _kafka_partition and _kafka_offset columns; a row that
// is there twice fails the test.
func PartitionOffsets(t testing.TB, tbl *table.Table) map[[2]int64]bool {
	t.Helper()
	out := map[[2]int64]bool{}
	if tbl.CurrentSnapshot() == nil {
		return out
	}
	at, err := tbl.Scan().ToArrowTable(context.Background())
	if err != nil {
		t.Fatalf("scan %v: %v", tbl.Identifier(), err)
	}
	defer at.Release()
	pcs, ocs := at.Schema().FieldIndices("_kafka_partition"), at.Schema().FieldIndices("_kafka_offset")
	if len(pcs) != 1 || len(ocs) != 1 {
		t.Fatalf("%v has no _kafka_partition and _kafka_offset columns", tbl.Identifier())
	}
	parts, offs := at.Column(pcs[0]).Data().Chunks(), at.Column(ocs[0]).Data().Chunks()
	for i := range parts {
		for j := range parts[i].Len() {
			k := [2]int64{int64(parts[i].(*array.Int32).Value(j)), offs[i].(*array.Int64).Value(j)}
			if out[k] {
				t.Fatalf("%v: the row of partition %d offset %d is there twice", tbl.Identifier(), k[0], k[1])
			}
			out[k] = true
		}
	}
	return out
}

// SQLiteCatalog opens a SQL catalog named floe on a SQLite file in a
// directory of its own, with its warehouse beside it, closed when the test
// ends.
func SQLiteCatalog(t testing.TB) *catalog.Catalog {
	t.Helper()
	dir := t.TempDir()
	cat, err := catalog.Open(context.Background(), catalog.Config{Type: "sql", Name: "floe", URI: "sqlite://" + filepath.Join(dir, "c.db")},
		catalog.StorageConfig{}, dir)
	if err != nil {
		t.Fatalf("open the test catalog: %v", err)
	}
	t.Cleanup(func() { _ = cat.Close() })
	return cat
}
