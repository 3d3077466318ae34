package fileio_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/floelake/floe/catalog"
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
	cat, err := catalog.Open(ctx, catalog.Config{Type: "sql", Name: "t", URI: "sqlite://" + filepath.Join(dir, "c.db")}, catalog.StorageConfig{}, dir)
	require.NoError(t, err)
	defer cat.Close()
	sch, err := schema.Build([]schema.Column{{Name: "id", Type: "long", Required: true}, {Name: "ts", Type: "timestamptz"}, {Name: "country", Type: "string"}}, nil, nil)
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
	sch, err := schema.Build([]schema.Column{{Name: "ts", Type: "timestamptz"}}, nil, nil)
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

// roundTripColumns has one column of every primitive type a partition
// transform accepts, with a sample value each. Negative and pre-epoch
// values exercise the signed encodings and the time transforms' floors.
var roundTripColumns = []struct {
	typ iceberg.Type
	val iceberg.Literal
}{
	{iceberg.PrimitiveTypes.Bool, iceberg.NewLiteral(true)},
	{iceberg.PrimitiveTypes.Int32, iceberg.NewLiteral(int32(-123457))},
	{iceberg.PrimitiveTypes.Int64, iceberg.NewLiteral(int64(-9_876_543_210))},
	{iceberg.PrimitiveTypes.Float32, iceberg.NewLiteral(float32(-1.5))},
	{iceberg.PrimitiveTypes.Float64, iceberg.NewLiteral(2.25)},
	{iceberg.DecimalTypeOf(9, 2), iceberg.NewLiteral(iceberg.Decimal{Val: decimal128.FromI64(-1_234_567), Scale: 2})},
	{iceberg.DecimalTypeOf(38, 10), iceberg.NewLiteral(iceberg.Decimal{Val: decimal128.New(0x0123_4567, 0x89ab_cdef_0123_4567), Scale: 10})},
	{iceberg.PrimitiveTypes.Date, iceberg.NewLiteral(iceberg.Date(-1000))},
	{iceberg.PrimitiveTypes.Time, iceberg.NewLiteral(iceberg.Time(13*3600_000_000 + 5))},
	{iceberg.PrimitiveTypes.Timestamp, iceberg.NewLiteral(iceberg.Timestamp(-1))},
	{iceberg.PrimitiveTypes.TimestampTz, iceberg.NewLiteral(iceberg.Timestamp(1_764_000_000_123_456))},
	{iceberg.PrimitiveTypes.TimestampNs, iceberg.NewLiteral(iceberg.TimestampNano(-1_000_000_000_001))},
	{iceberg.PrimitiveTypes.TimestampTzNs, iceberg.NewLiteral(iceberg.TimestampNano(1_764_000_000_123_456_789))},
	{iceberg.PrimitiveTypes.String, iceberg.NewLiteral("héllo wörld")},
	{iceberg.PrimitiveTypes.UUID, iceberg.NewLiteral(uuid.MustParse("f79c3e09-677c-4b6f-9a16-4a1e06b3b4ab"))},
	{iceberg.PrimitiveTypes.Binary, iceberg.NewLiteral([]byte{0, 1, 2, 0xff})},
	{iceberg.FixedTypeOf(16), iceberg.FixedLiteral([]byte("0123456789abcdef"))},
}

var roundTripTransforms = []iceberg.Transform{
	iceberg.IdentityTransform{},
	iceberg.YearTransform{},
	iceberg.MonthTransform{},
	iceberg.DayTransform{},
	iceberg.HourTransform{},
	iceberg.BucketTransform{NumBuckets: 16},
	iceberg.TruncateTransform{Width: 3},
	iceberg.VoidTransform{},
}

// roundTripSchema has column i+1 of type roundTripColumns[i].
func roundTripSchema() *iceberg.Schema {
	fields := make([]iceberg.NestedField, len(roundTripColumns))
	for i, c := range roundTripColumns {
		fields[i] = iceberg.NestedField{ID: i + 1, Name: fmt.Sprintf("c%d", i+1), Type: c.typ}
	}
	return iceberg.NewSchema(0, fields...)
}

// roundTripFiles returns two files of spec, whose first field is the
// transform under test and whose second is identity on the long column:
// a data file with every statistic and optional field set, the first
// partition value set and the second null, and a position-delete file
// with the first partition value null and the second set, empty
// statistics maps and only the delete-file fields.
func roundTripFiles(t *testing.T, spec iceberg.PartitionSpec, value any) []iceberg.DataFile {
	t.Helper()
	sizes, values, nulls := map[int]int64{}, map[int]int64{}, map[int]int64{}
	lower, upper := map[int][]byte{}, map[int][]byte{}
	for i, c := range roundTripColumns {
		id := i + 1
		sizes[id], values[id], nulls[id] = int64(100+id), 50, int64(id%3)
		b, err := c.val.MarshalBinary()
		require.NoError(t, err)
		lower[id], upper[id] = b, append(slices.Clone(b), 0x7f)
	}
	lower[1], upper[1] = []byte{0}, []byte{1} // booleans have one byte

	data, err := iceberg.NewDataFileBuilder(spec, iceberg.EntryContentData, "s3://b/t/data/a.parquet", iceberg.ParquetFile,
		map[int]any{1000: value, 1001: nil}, nil, nil, 50, 4096)
	require.NoError(t, err)
	data.ColumnSizes(sizes).ValueCounts(values).NullValueCounts(nulls).
		NaNValueCounts(map[int]int64{4: 1, 5: 0}).LowerBoundValues(lower).UpperBoundValues(upper).
		SplitOffsets([]int64{4, 2048}).SortOrderID(1).KeyMetadata([]byte("key")).FirstRowID(7)

	dv, err := iceberg.NewDataFileBuilder(spec, iceberg.EntryContentPosDeletes, "s3://b/t/data/a-dv.puffin", iceberg.PuffinFile,
		map[int]any{1000: nil, 1001: int64(-7)}, nil, nil, 3, 512)
	require.NoError(t, err)
	dv.ColumnSizes(map[int]int64{}).ValueCounts(map[int]int64{}).NullValueCounts(map[int]int64{}).
		NaNValueCounts(map[int]int64{}).LowerBoundValues(map[int][]byte{}).UpperBoundValues(map[int][]byte{}).
		SplitOffsets([]int64{}).ReferencedDataFile("s3://b/t/data/a.parquet").ContentOffset(4).ContentSizeInBytes(40)

	return []iceberg.DataFile{data.Build(), dv.Build()}
}

// requireSameDataFile compares every field of the DataFile interface.
// require.Equal tells nil maps and slices from empty ones, and Go types
// apart (int32 from iceberg.Date, []byte from string).
func requireSameDataFile(t *testing.T, want, got iceberg.DataFile) {
	t.Helper()
	require.Equal(t, want.ContentType(), got.ContentType(), "content")
	require.Equal(t, want.FilePath(), got.FilePath(), "path")
	require.Equal(t, want.FileFormat(), got.FileFormat(), "format")
	require.Equal(t, want.Partition(), got.Partition(), "partition")
	require.Equal(t, want.Count(), got.Count(), "record count")
	require.Equal(t, want.FileSizeBytes(), got.FileSizeBytes(), "file size")
	require.Equal(t, want.ColumnSizes(), got.ColumnSizes(), "column sizes")
	require.Equal(t, want.ValueCounts(), got.ValueCounts(), "value counts")
	require.Equal(t, want.NullValueCounts(), got.NullValueCounts(), "null counts")
	require.Equal(t, want.NaNValueCounts(), got.NaNValueCounts(), "NaN counts")
	require.Equal(t, want.DistinctValueCounts(), got.DistinctValueCounts(), "distinct counts")
	require.Equal(t, want.LowerBoundValues(), got.LowerBoundValues(), "lower bounds")
	require.Equal(t, want.UpperBoundValues(), got.UpperBoundValues(), "upper bounds")
	require.Equal(t, want.KeyMetadata(), got.KeyMetadata(), "key metadata")
	require.Equal(t, want.SplitOffsets(), got.SplitOffsets(), "split offsets")
	require.Equal(t, want.EqualityFieldIDs(), got.EqualityFieldIDs(), "equality ids")
	require.Equal(t, want.SortOrderID(), got.SortOrderID(), "sort order id")
	require.Equal(t, want.SpecID(), got.SpecID(), "spec id")
	require.Equal(t, want.FirstRowID(), got.FirstRowID(), "first row id")
	require.Equal(t, want.ReferencedDataFile(), got.ReferencedDataFile(), "referenced data file")
	require.Equal(t, want.ContentOffset(), got.ContentOffset(), "content offset")
	require.Equal(t, want.ContentSizeInBytes(), got.ContentSizeInBytes(), "content size")
}

// TestDataFileCodecEveryTransform round-trips data files partitioned by
// every transform over every source type it accepts, with the partition
// value iceberg-go's transform computes from a sample value, a null
// partition value, and every statistic, and compares the decoded files with
// the originals field by field. The decoded files must also encode as
// manifest entries wherever the originals do.
func TestDataFileCodecEveryTransform(t *testing.T) {
	sch := roundTripSchema()
	cases := 0
	for _, tr := range roundTripTransforms {
		for i, c := range roundTripColumns {
			if !tr.CanTransform(c.typ) {
				continue
			}
			cases++
			t.Run(fmt.Sprintf("%s(%s)", tr, c.typ), func(t *testing.T) {
				spec := iceberg.NewPartitionSpecID(3,
					iceberg.PartitionField{SourceIDs: []int{i + 1}, FieldID: 1000, Name: "p", Transform: tr},
					iceberg.PartitionField{SourceIDs: []int{3}, FieldID: 1001, Name: "q", Transform: iceberg.IdentityTransform{}},
				)
				var value any
				if out := tr.Apply(iceberg.Optional[iceberg.Literal]{Valid: true, Val: c.val}); out.Valid {
					value = out.Val.Any()
				} else if _, void := tr.(iceberg.VoidTransform); !void {
					t.Fatalf("%s gives no value for %v", tr, c.val)
				}
				files := roundTripFiles(t, spec, value)
				blob, err := fileio.EncodeDataFiles(files)
				require.NoError(t, err)
				decoded, err := fileio.DecodeDataFiles(blob, spec, sch)
				require.NoError(t, err)
				require.Len(t, decoded, len(files))
				for j, want := range files {
					requireSameDataFile(t, want, decoded[j])
					m, ok := want.(iceberg.AvroEntryMarshaler)
					require.True(t, ok)
					if _, err := m.MarshalAvroEntry(spec, sch, 3); err != nil {
						t.Logf("iceberg-go cannot write the original of file %d into a manifest: %v", j, err)
						continue
					}
					_, err = decoded[j].(iceberg.AvroEntryMarshaler).MarshalAvroEntry(spec, sch, 3)
					require.NoError(t, err, "the decoded file %d as a manifest entry", j)
				}
			})
		}
	}
	// identity 17, year/month/day 5 each, hour 4, bucket 14, truncate 6, void 17.
	require.Equal(t, 73, cases, "transform and source type pairs")

	// Unpartitioned: no partition values at all.
	files := roundTripFiles(t, *iceberg.UnpartitionedSpec, nil)
	for _, f := range files {
		b, err := iceberg.NewDataFileBuilder(*iceberg.UnpartitionedSpec, f.ContentType(), f.FilePath(), f.FileFormat(), nil, nil, nil, f.Count(), f.FileSizeBytes())
		require.NoError(t, err)
		blob, err := fileio.EncodeDataFiles([]iceberg.DataFile{b.Build()})
		require.NoError(t, err)
		decoded, err := fileio.DecodeDataFiles(blob, *iceberg.UnpartitionedSpec, sch)
		require.NoError(t, err)
		requireSameDataFile(t, b.Build(), decoded[0])
	}
}
