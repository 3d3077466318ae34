package maintain_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	"github.com/stretchr/testify/require"

	"github.com/floelake/floe/catalog"
	"github.com/floelake/floe/commit"
	"github.com/floelake/floe/internal/fileio"
	"github.com/floelake/floe/internal/testutil"
	"github.com/floelake/floe/maintain"
)

var schema = iceberg.NewSchema(0,
	iceberg.NestedField{ID: 1, Name: "id", Type: iceberg.PrimitiveTypes.Int64, Required: true},
	iceberg.NestedField{ID: 2, Name: "v", Type: iceberg.PrimitiveTypes.String},
)

// A file larger than the table's read.split.target-size is planned as
// several tasks; compacting it must read every one of them, or the
// rewrite would keep part of its rows and remove the whole file.
func TestCompactionReadsEverySplitOfAFile(t *testing.T) {
	ctx := context.Background()
	cat := testutil.SQLiteCatalog(t)
	ident := table.Identifier{"db", "t"}
	// Split at every row group.
	tbl, _, err := catalog.EnsureTable(ctx, cat, ident, schema, *iceberg.UnpartitionedSpec,
		iceberg.Properties{table.ReadSplitTargetSizeKey: "1"})
	require.NoError(t, err)
	info, err := fileio.InfoFromTable(ctx, tbl)
	require.NoError(t, err)
	c, err := commit.New(ctx, cat, commit.Config{Pipeline: "p", Table: ident})
	require.NoError(t, err)

	const files, rows = 3, 100000
	for i := range int64(files) {
		w := fileio.NewWriter(info, nil, fileio.Options{RowGroupBytes: 16 << 10})
		b := array.NewRecordBuilder(memory.NewGoAllocator(), info.ArrowSchema)
		for r := range int64(rows) {
			b.Field(0).(*array.Int64Builder).Append(i*rows + r)
			b.Field(1).(*array.StringBuilder).Append(fmt.Sprintf("row %d of file %d, padded to make row groups fill", r, i))
			if (r+1)%10000 == 0 {
				rec := b.NewRecordBatch()
				require.NoError(t, w.Write(rec))
				rec.Release()
			}
		}
		b.Release()
		fs, err := w.Close(ctx)
		require.NoError(t, err)
		require.Len(t, fs, 1)
		require.Greater(t, len(fs[0].SplitOffsets()), 2, "the file has several row groups")
		_, err = c.Commit(ctx, commit.Segment{Files: fs, From: commit.Offsets{"tp": {0: i * rows}}, To: commit.Offsets{"tp": {0: (i + 1) * rows}}, Records: rows})
		require.NoError(t, err)
	}
	tasks, err := c.Table().Scan().PlanFiles(ctx)
	require.NoError(t, err)
	require.Greater(t, len(tasks), files, "the files are planned as several tasks each")

	m := maintain.New("db.t", testutil.Direct{C: c}, maintain.DefaultConfig(), nil, nil)
	sum, err := m.Compact(ctx, nil)
	require.NoError(t, err)
	require.NotZero(t, sum.Snapshot)
	require.Equal(t, files, sum.FilesBefore)
	require.Equal(t, files, sum.Rewritten)
	require.Equal(t, 1, sum.FilesAfter)

	got, err := cat.LoadTable(ctx, ident)
	require.NoError(t, err)
	at, err := got.Scan().ToArrowTable(ctx)
	require.NoError(t, err)
	defer at.Release()
	require.EqualValues(t, files*rows, at.NumRows(), "every row of every split survives")
	seen := map[int64]bool{}
	for _, ch := range at.Column(0).Data().Chunks() {
		for _, v := range ch.(*array.Int64).Int64Values() {
			require.False(t, seen[v], "id %d twice", v)
			seen[v] = true
		}
	}
}

// Compaction writes rows in commit order whatever order it packs the
// files in (largest first): files committed in time order make row groups
// of narrow time ranges, which filters skip.
func TestCompactionKeepsCommitOrder(t *testing.T) {
	ctx := context.Background()
	cat := testutil.SQLiteCatalog(t)
	ident := table.Identifier{"db", "t"}
	tbl, _, err := catalog.EnsureTable(ctx, cat, ident, schema, *iceberg.UnpartitionedSpec, nil)
	require.NoError(t, err)
	info, err := fileio.InfoFromTable(ctx, tbl)
	require.NoError(t, err)
	c, err := commit.New(ctx, cat, commit.Config{Pipeline: "p", Table: ident})
	require.NoError(t, err)
	// Each commit's file is larger than the one before: packing largest
	// first visits them newest first.
	next := int64(0)
	for i := range int64(5) {
		rows := (i + 1) * 1000
		w := fileio.NewWriter(info, nil, fileio.Options{})
		b := array.NewRecordBuilder(memory.NewGoAllocator(), info.ArrowSchema)
		for range rows {
			b.Field(0).(*array.Int64Builder).Append(next)
			b.Field(1).(*array.StringBuilder).Append(fmt.Sprintf("row %d", next))
			next++
		}
		rec := b.NewRecordBatch()
		require.NoError(t, w.Write(rec))
		rec.Release()
		b.Release()
		fs, err := w.Close(ctx)
		require.NoError(t, err)
		_, err = c.Commit(ctx, commit.Segment{Files: fs, From: commit.Offsets{"tp": {0: next - rows}}, To: commit.Offsets{"tp": {0: next}}, Records: rows})
		require.NoError(t, err)
	}
	m := maintain.New("db.t", testutil.Direct{C: c}, maintain.DefaultConfig(), nil, nil)
	sum, err := m.Compact(ctx, nil)
	require.NoError(t, err)
	require.Equal(t, 1, sum.FilesAfter)
	got, err := cat.LoadTable(ctx, ident)
	require.NoError(t, err)
	at, err := got.Scan().ToArrowTable(ctx)
	require.NoError(t, err)
	defer at.Release()
	var ids []int64
	for _, ch := range at.Column(0).Data().Chunks() {
		ids = append(ids, ch.(*array.Int64).Int64Values()...)
	}
	require.Len(t, ids, int(next))
	require.True(t, slices.IsSorted(ids), "rows in commit order")
}
