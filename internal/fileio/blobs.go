package fileio

import (
	"bytes"
	"context"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
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
	pf, fr, done, err := openParquet(fs, path, 1024, mem)
	if err != nil {
		return nil, err
	}
	defer done()
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

// ReadRow reads row pos (counted from 0 over the file) of a Parquet file,
// the named columns only, as a one-row record the caller releases.
func ReadRow(ctx context.Context, fs iceio.IO, path string, pos int64, columns []string, mem memory.Allocator) (arrow.RecordBatch, error) {
	pf, fr, done, err := openParquet(fs, path, 4096, mem)
	if err != nil {
		return nil, err
	}
	defer done()
	md := pf.MetaData()
	rg, start := -1, int64(0)
	for i := range md.NumRowGroups() {
		n := md.RowGroup(i).NumRows()
		if pos < start+n {
			rg = i
			break
		}
		start += n
	}
	if pos < 0 || rg < 0 {
		return nil, fmt.Errorf("fileio: %s has no row %d (%d rows)", path, pos, md.NumRows)
	}
	var cols []int
	for _, c := range columns {
		i := md.Schema.ColumnIndexByName(c)
		if i < 0 {
			return nil, fmt.Errorf("fileio: %s has no column %q", path, c)
		}
		cols = append(cols, i)
	}
	rr, err := fr.GetRecordReader(ctx, cols, []int{rg})
	if err != nil {
		return nil, fmt.Errorf("fileio: read %s: %w", path, err)
	}
	defer rr.Release()
	at := start
	for rr.Next() {
		rec := rr.RecordBatch()
		if n := rec.NumRows(); pos < at+n {
			return rec.NewSlice(pos-at, pos-at+1), nil
		}
		at += rec.NumRows()
	}
	if err := rr.Err(); err != nil {
		return nil, fmt.Errorf("fileio: read %s: %w", path, err)
	}
	return nil, fmt.Errorf("fileio: %s has no row %d", path, pos)
}

// openParquet opens a Parquet file for Arrow reads of batch rows; done
// closes it.
func openParquet(fs iceio.IO, path string, batch int64, mem memory.Allocator) (*file.Reader, *pqarrow.FileReader, func(), error) {
	f, err := fs.Open(path)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("fileio: open %s: %w", path, err)
	}
	pf, err := file.NewParquetReader(f)
	if err != nil {
		f.Close()
		return nil, nil, nil, fmt.Errorf("fileio: read %s: %w", path, err)
	}
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: batch}, mem)
	if err != nil {
		pf.Close()
		f.Close()
		return nil, nil, nil, fmt.Errorf("fileio: read %s: %w", path, err)
	}
	return pf, fr, func() { pf.Close(); f.Close() }, nil
}
