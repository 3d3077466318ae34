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
	r := NewRowReader(fs, columns, mem)
	defer r.Close()
	return r.Row(ctx, path, pos)
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

// RowReader reads single rows of Parquet files by position, keeping the
// files it opened and the row groups it read until Close: rows near one
// another cost one read. It is used by one goroutine.
type RowReader struct {
	fs      iceio.IO
	columns []string
	mem     memory.Allocator
	files   map[string]*rowFile
}

type rowFile struct {
	pf     *file.Reader
	fr     *pqarrow.FileReader
	done   func()
	cols   []int
	starts []int64 // first row of each row group, and the row count last
	groups map[int][]arrow.RecordBatch
}

// NewRowReader reads the named columns of files through fs.
func NewRowReader(fs iceio.IO, columns []string, mem memory.Allocator) *RowReader {
	return &RowReader{fs: fs, columns: columns, mem: mem, files: map[string]*rowFile{}}
}

// Row returns row pos of the file at path as a one-row record the caller
// releases.
func (r *RowReader) Row(ctx context.Context, path string, pos int64) (arrow.RecordBatch, error) {
	f := r.files[path]
	if f == nil {
		pf, fr, done, err := openParquet(r.fs, path, 4096, r.mem)
		if err != nil {
			return nil, err
		}
		f = &rowFile{pf: pf, fr: fr, done: done, groups: map[int][]arrow.RecordBatch{}}
		md := pf.MetaData()
		for _, c := range r.columns {
			i := md.Schema.ColumnIndexByName(c)
			if i < 0 {
				done()
				return nil, fmt.Errorf("fileio: %s has no column %q", path, c)
			}
			f.cols = append(f.cols, i)
		}
		at := int64(0)
		for i := range md.NumRowGroups() {
			f.starts = append(f.starts, at)
			at += md.RowGroup(i).NumRows()
		}
		f.starts = append(f.starts, at)
		r.files[path] = f
	}
	rg := -1
	for i := 0; i+1 < len(f.starts); i++ {
		if pos >= f.starts[i] && pos < f.starts[i+1] {
			rg = i
			break
		}
	}
	if rg < 0 {
		return nil, fmt.Errorf("fileio: %s has no row %d (%d rows)", path, pos, f.starts[len(f.starts)-1])
	}
	recs, ok := f.groups[rg]
	if !ok {
		rr, err := f.fr.GetRecordReader(ctx, f.cols, []int{rg})
		if err != nil {
			return nil, fmt.Errorf("fileio: read %s: %w", path, err)
		}
		for rr.Next() {
			rec := rr.RecordBatch()
			rec.Retain()
			recs = append(recs, rec)
		}
		err = rr.Err()
		rr.Release()
		if err != nil {
			for _, rec := range recs {
				rec.Release()
			}
			return nil, fmt.Errorf("fileio: read %s: %w", path, err)
		}
		f.groups[rg] = recs
	}
	at := f.starts[rg]
	for _, rec := range recs {
		if n := rec.NumRows(); pos < at+n {
			return rec.NewSlice(pos-at, pos-at+1), nil
		}
		at += rec.NumRows()
	}
	return nil, fmt.Errorf("fileio: %s has no row %d", path, pos)
}

// Close releases what the reader keeps.
func (r *RowReader) Close() {
	for _, f := range r.files {
		for _, recs := range f.groups {
			for _, rec := range recs {
				rec.Release()
			}
		}
		f.done()
	}
	clear(r.files)
}
