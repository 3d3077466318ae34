package fileio_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/apache/iceberg-go"
	iceio "github.com/apache/iceberg-go/io"
	"github.com/apache/iceberg-go/table"
	"github.com/stretchr/testify/require"

	"github.com/floelake/floe/internal/fileio"
)

// TestReadRowAndBinaryColumn: ReadRow finds a row by its position across
// row groups and batches; ReadBinaryColumn reads a binary column whole.
func TestReadRowAndBinaryColumn(t *testing.T) {
	sch := iceberg.NewSchema(0,
		iceberg.NestedField{ID: 1, Name: "id", Type: iceberg.PrimitiveTypes.Int64, Required: true},
		iceberg.NestedField{ID: 2, Name: "blob", Type: iceberg.PrimitiveTypes.Binary},
	)
	asc, err := table.SchemaToArrowSchema(sch, nil, true, false)
	require.NoError(t, err)
	rb := array.NewRecordBuilder(memory.DefaultAllocator, asc)
	defer rb.Release()
	const n = 20_000
	for i := range n {
		rb.Field(0).(*array.Int64Builder).Append(int64(i))
		if i%7 == 0 {
			rb.Field(1).AppendNull()
		} else {
			rb.Field(1).(*array.BinaryBuilder).Append([]byte(fmt.Sprintf("b%d", i)))
		}
	}
	rec := rb.NewRecordBatch()
	defer rec.Release()
	// Row groups of 3,000 rows, so that rows are found across them.
	path := filepath.Join(t.TempDir(), "rows.parquet")
	f, err := os.Create(path)
	require.NoError(t, err)
	tbl := array.NewTableFromRecords(asc, []arrow.RecordBatch{rec})
	defer tbl.Release()
	// WriteTable closes f.
	require.NoError(t, pqarrow.WriteTable(tbl, f, 3000, parquet.NewWriterProperties(), pqarrow.DefaultWriterProps()))
	pf, err := file.OpenParquetFile(path, false)
	require.NoError(t, err)
	require.Greater(t, pf.NumRowGroups(), 2, "the rows should span several row groups")
	require.NoError(t, pf.Close())
	for _, pos := range []int64{0, 1, 999, 1000, 4095, 4096, 12345, n - 1} {
		rec, err := fileio.ReadRow(context.Background(), iceio.LocalFS{}, path, pos, []string{"blob", "id"}, memory.DefaultAllocator)
		require.NoError(t, err)
		require.EqualValues(t, 1, rec.NumRows())
		require.EqualValues(t, pos, rec.Column(1).(*array.Int64).Value(0))
		if blob := rec.Column(0); pos%7 == 0 {
			require.True(t, blob.IsNull(0), "row %d", pos)
		} else {
			require.Equal(t, fmt.Sprintf("b%d", pos), string(blob.(*array.Binary).Value(0)), "row %d", pos)
		}
		rec.Release()
	}
	// One reader, many rows, in any order, within and across row groups.
	rr := fileio.NewRowReader(iceio.LocalFS{}, []string{"id"}, memory.DefaultAllocator)
	for _, pos := range []int64{19_999, 5, 6, 12_000, 7, 19_998} {
		rec, err := rr.Row(context.Background(), path, pos)
		require.NoError(t, err)
		require.EqualValues(t, pos, rec.Column(0).(*array.Int64).Value(0))
		rec.Release()
	}
	rr.Close()
	_, err = fileio.ReadRow(context.Background(), iceio.LocalFS{}, path, n, []string{"id"}, memory.DefaultAllocator)
	require.ErrorContains(t, err, "has no row")
	_, err = fileio.ReadRow(context.Background(), iceio.LocalFS{}, path, 0, []string{"nope"}, memory.DefaultAllocator)
	require.ErrorContains(t, err, `no column "nope"`)

	blobs, err := fileio.ReadBinaryColumn(context.Background(), iceio.LocalFS{}, path, "blob", memory.DefaultAllocator)
	require.NoError(t, err)
	require.Len(t, blobs, n)
	require.Nil(t, blobs[7])
	require.Equal(t, "b12345", string(blobs[12345]))
}
