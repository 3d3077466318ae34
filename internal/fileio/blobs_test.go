package fileio_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
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
	info := fileio.TableInfo{FS: iceio.LocalFS{}, Location: t.TempDir(), Schema: sch, ArrowSchema: asc, Spec: *iceberg.UnpartitionedSpec, FormatVersion: 2}
	// Small row groups: the 20,000 rows span several.
	w := fileio.NewWriter(info, nil, fileio.Options{RowGroupBytes: 16 << 10})
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
		if rb.Field(0).Len() == 1000 {
			rec := rb.NewRecordBatch()
			require.NoError(t, w.Write(rec))
			rec.Release()
		}
	}
	files, err := w.Close(context.Background())
	require.NoError(t, err)
	require.Len(t, files, 1)
	path := files[0].FilePath()
	for _, pos := range []int64{0, 1, 999, 1000, 4095, 4096, 12345, n - 1} {
		rec, err := fileio.ReadRow(context.Background(), iceio.LocalFS{}, path, pos, []string{"blob", "id"}, memory.DefaultAllocator)
		require.NoError(t, err)
		require.EqualValues(t, 1, rec.NumRows())
		require.EqualValues(t, pos, rec.Column(1).(*array.Int64).Value(0))
		rec.Release()
	}
	// One reader, many rows: each row group is read once.
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
