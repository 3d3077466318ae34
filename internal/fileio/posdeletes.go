package fileio

import (
	"context"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/apache/iceberg-go"
	iceio "github.com/apache/iceberg-go/io"
	"github.com/apache/iceberg-go/table"
)

// Position-delete files: the Parquet files of (file_path, pos) rows by
// which a format-v2 table deletes rows of its data files, written scoped
// to one data file (equal bounds on file_path, which tells readers so).

// positionDeleteArrow is the Arrow schema of a position-delete file, with
// the field ids the Iceberg spec reserves for it.
var positionDeleteArrow = arrow.NewSchema([]arrow.Field{
	{Name: "file_path", Type: arrow.BinaryTypes.String, Metadata: arrow.NewMetadata([]string{"PARQUET:field_id"}, []string{"2147483546"})},
	{Name: "pos", Type: arrow.PrimitiveTypes.Int64, Metadata: arrow.NewMetadata([]string{"PARQUET:field_id"}, []string{"2147483545"})},
}, nil)

// WritePositionDeletes writes positions (ascending) of the data file
// target as a position-delete file at path, in target's partition of spec,
// with full bounds on file_path so that it applies to target alone.
func WritePositionDeletes(wfs iceio.WriteFileIO, path string, target iceberg.DataFile, spec iceberg.PartitionSpec, positions []int64, mem memory.Allocator) (iceberg.DataFile, error) {
	b := array.NewRecordBuilder(mem, positionDeleteArrow)
	defer b.Release()
	paths := b.Field(0).(*array.StringBuilder)
	poss := b.Field(1).(*array.Int64Builder)
	for range positions {
		paths.Append(target.FilePath())
	}
	poss.AppendValues(positions, nil)
	rec := b.NewRecordBatch()
	defer rec.Release()

	out, err := wfs.Create(path)
	if err != nil {
		return nil, fmt.Errorf("fileio: create %s: %w", path, err)
	}
	cw := &countingWriter{w: out}
	props := parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Zstd), parquet.WithStats(true),
		parquet.WithDictionaryFor("file_path", true), parquet.WithCreatedBy("floe"))
	fw, err := pqarrow.NewFileWriter(positionDeleteArrow, cw, props, pqarrow.NewArrowWriterProperties())
	if err != nil {
		_ = out.Close()
		return nil, fmt.Errorf("fileio: position deletes %s: %w", path, err)
	}
	if err := fw.Write(rec); err != nil {
		_ = fw.Close()
		return nil, fmt.Errorf("fileio: write %s: %w", path, err)
	}
	if err := fw.Close(); err != nil {
		return nil, fmt.Errorf("fileio: close %s: %w", path, err)
	}
	meta, err := fw.FileMetadata()
	if err != nil {
		return nil, fmt.Errorf("fileio: metadata of %s: %w", path, err)
	}
	return table.DataFileFromMetadata(table.DataFileArgs{
		Schema:          iceberg.PositionalDeleteSchema,
		Spec:            spec,
		Format:          iceberg.ParquetFile,
		Metadata:        meta,
		FilePath:        path,
		FileSize:        cw.n,
		Content:         iceberg.EntryContentPosDeletes,
		PartitionValues: target.Partition(),
		// Full bounds on file_path: lower = upper = the data file, which
		// tells readers the file holds deletes for that file alone.
		Properties:    iceberg.Properties{"write.metadata.metrics.default": "full"},
		FormatVersion: 2,
	})
}

// ReadPositionDeletes reads a position-delete file: positions by data file.
func ReadPositionDeletes(ctx context.Context, fs iceio.IO, path string, mem memory.Allocator) (map[string][]int64, error) {
	pf, fr, done, err := openParquet(fs, path, 64<<10, mem)
	if err != nil {
		return nil, err
	}
	defer done()
	sch := pf.MetaData().Schema
	pathCol, posCol := sch.ColumnIndexByName("file_path"), sch.ColumnIndexByName("pos")
	if pathCol < 0 || posCol < 0 {
		return nil, fmt.Errorf("fileio: %s is not a position-delete file (no file_path and pos columns)", path)
	}
	rr, err := fr.GetRecordReader(ctx, []int{pathCol, posCol}, nil)
	if err != nil {
		return nil, fmt.Errorf("fileio: read %s: %w", path, err)
	}
	defer rr.Release()
	out := map[string][]int64{}
	for rr.Next() {
		rec := rr.RecordBatch()
		paths, ok1 := rec.Column(0).(*array.String)
		poss, ok2 := rec.Column(1).(*array.Int64)
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("fileio: %s: file_path and pos must be string and long", path)
		}
		for i := 0; i < int(rec.NumRows()); i++ {
			p := paths.Value(i)
			out[p] = append(out[p], poss.Value(i))
		}
	}
	if err := rr.Err(); err != nil {
		return nil, fmt.Errorf("fileio: read %s: %w", path, err)
	}
	return out, nil
}
