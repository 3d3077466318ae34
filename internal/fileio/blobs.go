package fileio

import (
	"bytes"
	"context"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	iceio "github.com/apache/iceberg-go/io"
)

// ReadBinaryColumn reads every value of a Parquet file's binary column, in
// row order (a null is nil). It is for the small files floe writes for
// itself, such as a windowed pipeline's partial windows.
func ReadBinaryColumn(ctx context.Context, fs iceio.IO, path, column string, mem memory.Allocator) ([][]byte, error) {
	f, err := fs.Open(path)
	if err != nil {
		return nil, fmt.Errorf("fileio: open %s: %w", path, err)
	}
	defer f.Close()
	pf, err := file.NewParquetReader(f)
	if err != nil {
		return nil, fmt.Errorf("fileio: read %s: %w", path, err)
	}
	defer pf.Close()
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: 1024}, mem)
	if err != nil {
		return nil, fmt.Errorf("fileio: read %s: %w", path, err)
	}
	col := pf.MetaData().Schema.ColumnIndexByName(column)
	if col < 0 {
		return nil, fmt.Errorf("fileio: %s has no column %q", path, column)
	}
	rr, err := fr.GetRecordReader(ctx, []int{col}, nil)
	if err != nil {
		return nil, fmt.Errorf("fileio: read %s: %w", path, err)
	}
	defer rr.Release()
	var out [][]byte
	for rr.Next() {
		vals, ok := rr.RecordBatch().Column(0).(*array.Binary)
		if !ok {
			return nil, fmt.Errorf("fileio: %s: column %q is not binary", path, column)
		}
		for i := range vals.Len() {
			if vals.IsNull(i) {
				out = append(out, nil)
				continue
			}
			out = append(out, bytes.Clone(vals.Value(i)))
		}
	}
	if err := rr.Err(); err != nil {
		return nil, fmt.Errorf("fileio: read %s: %w", path, err)
	}
	return out, nil
}

// WriteBlob writes b to path through fs, whole.
func WriteBlob(fs iceio.WriteFileIO, path string, b []byte) error {
	if err := fs.WriteFile(path, b); err != nil {
		return fmt.Errorf("fileio: write %s: %w", path, err)
	}
	return nil
}
