package fileio_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	"github.com/stretchr/testify/require"

	"github.com/floelake/floe/catalog"
	"github.com/floelake/floe/internal/config"
	"github.com/floelake/floe/internal/fileio"
	"github.com/floelake/floe/internal/schema"
)

// TestDataFileCodecRoundTrip writes real files into a table partitioned by
// day(ts) and identity(country), encodes and decodes them, checks every
// manifest field survives, commits the decoded files and checks that scan
// planning prunes on the decoded partition values and bounds.
func TestDataFileCodecRoundTrip(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cat, err := catalog.Open(ctx, config.Catalog{Type: "sql", Name: "t", URI: "sqlite://" + filepath.Join(dir, "c.db")}, config.Storage{}, dir)
	require.NoError(t, err)
	defer cat.Close()
	sch, err := schema.Build([]schema.Column{{Name: "id", Type: "long", Required: true}, {Name: "ts", Type: "timestamptz"}, {Name: "country", Type: "string"}}, nil)
	require.NoError(t, err)
	spec, err := schema.Partition([]string{"day(ts)", "country"}, sch)
	require.NoError(t, err)
	tbl, _, err := catalog.EnsureTable(ctx, cat, table.Identifier{"db", "t"}, sch, spec, nil)
	require.NoError(t, err)
	info, err := fileio.InfoFromTable(ctx, tbl)
	require.NoError(t, err)

	day0 := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	var written []iceberg.DataFile
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	for d := 0; d < 3; d++ {
		for _, country := range []string{"DE", "FR"} {
			b := array.NewRecordBuilder(mem, info.ArrowSchema)
			for i := 0; i < 10; i++ {
				b.Field(0).(*array.Int64Builder).Append(int64(d*100 + i))
				b.Field(1).(*array.TimestampBuilder).Append(arrow.Timestamp(day0.AddDate(0, 0, d).Add(time.Duration(i) * time.Minute).UnixMicro()))
				b.Field(2).(*array.StringBuilder).Append(country)
			}
			rec := b.NewRecordBatch()
			days := int32(day0.AddDate(0, 0, d).Unix() / 86400)
			w := fileio.NewWriter(info, map[int]any{1000: iceberg.Date(days), 1001: country}, fileio.Options{})
			require.NoError(t, w.Write(rec))
			files, err := w.Close(ctx)
			require.NoError(t, err)
			written = append(written, files...)
			rec.Release()
			b.Release()
		}
	}

	blob, err := fileio.EncodeDataFiles(written)
	require.NoError(t, err)
	decoded, err := fileio.DecodeDataFiles(blob, tbl.Spec(), tbl.Schema())
	require.NoError(t, err)
	require.Len(t, decoded, len(written))
	for i, want := range written {
		got := decoded[i]
		require.Equal(t, want.FilePath(), got.FilePath())
		require.Equal(t, want.Count(), got.Count())
		require.Equal(t, want.FileSizeBytes(), got.FileSizeBytes())
		require.Equal(t, want.FileFormat(), got.FileFormat())
		require.Equal(t, want.ContentType(), got.ContentType())
		require.Equal(t, want.Partition(), got.Partition())
		require.Equal(t, want.ColumnSizes(), got.ColumnSizes())
		require.Equal(t, want.ValueCounts(), got.ValueCounts())
		require.Equal(t, want.NullValueCounts(), got.NullValueCounts())
		require.Equal(t, want.LowerBoundValues(), got.LowerBoundValues())
		require.Equal(t, want.UpperBoundValues(), got.UpperBoundValues())
		require.Equal(t, want.SplitOffsets(), got.SplitOffsets())
		require.Equal(t, want.SpecID(), got.SpecID())
	}

	tx := tbl.NewTransaction()
	require.NoError(t, tx.AddDataFiles(ctx, decoded, nil))
	tbl, err = tx.Commit(ctx)
	require.NoError(t, err)

	// Prune on the day partition and the country partition.
	filter := iceberg.NewAnd(
		iceberg.GreaterThanEqual(iceberg.Reference("ts"), day0.AddDate(0, 0, 1).Truncate(24*time.Hour).UnixMicro()),
		iceberg.EqualTo(iceberg.Reference("country"), "DE"))
	scan := tbl.Scan(table.WithRowFilter(filter))
	tasks, err := scan.PlanFiles(ctx)
	require.NoError(t, err)
	require.Len(t, tasks, 2, "two days of DE files after pruning")
	at, err := scan.ToArrowTable(ctx)
	require.NoError(t, err)
	defer at.Release()
	require.EqualValues(t, 20, at.NumRows())
}

func TestDecodeRejectsOtherSpec(t *testing.T) {
	sch, err := schema.Build([]schema.Column{{Name: "ts", Type: "timestamptz"}}, nil)
	require.NoError(t, err)
	b, err := iceberg.NewDataFileBuilder(*iceberg.UnpartitionedSpec, iceberg.EntryContentData, "s3://b/f.parquet", iceberg.ParquetFile, nil, nil, nil, 1, 10)
	require.NoError(t, err)
	blob, err := fileio.EncodeDataFiles([]iceberg.DataFile{b.Build()})
	require.NoError(t, err)
	other := iceberg.NewPartitionSpecID(7)
	_, err = fileio.DecodeDataFiles(blob, other, sch)
	require.ErrorContains(t, err, "written with partition spec 0, decoding with 7")
	_, err = fileio.DecodeDataFiles([]byte("{"), *iceberg.UnpartitionedSpec, sch)
	require.ErrorContains(t, err, "decode data files")
}
