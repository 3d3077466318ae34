package fileio_test

import (
	"context"
	"errors"
	"io"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	iceio "github.com/apache/iceberg-go/io"
	"github.com/apache/iceberg-go/table"
	"github.com/stretchr/testify/require"

	"github.com/floelake/floe/internal/fileio"
)

// failingFS is a local file system whose files fail to write once failAt
// bytes were written to them.
type failingFS struct {
	iceio.LocalFS
	failAt int
}

func (f failingFS) Create(name string) (iceio.FileWriter, error) {
	w, err := f.LocalFS.Create(name)
	if err != nil {
		return nil, err
	}
	return &failingFile{FileWriter: w, left: f.failAt}, nil
}

type failingFile struct {
	iceio.FileWriter
	left int
}

var errDisk = errors.New("injected: no space left on device")

func (f *failingFile) Write(p []byte) (int, error) {
	if len(p) > f.left {
		return 0, errDisk
	}
	f.left -= len(p)
	return f.FileWriter.Write(p)
}

func (f *failingFile) ReadFrom(r io.Reader) (int64, error) { return io.Copy(struct{ io.Writer }{f}, r) }

func info(t *testing.T, fs iceio.WriteFileIO) fileio.TableInfo {
	t.Helper()
	sch := iceberg.NewSchema(0, iceberg.NestedField{ID: 1, Name: "id", Type: iceberg.PrimitiveTypes.Int64, Required: true})
	asc, err := table.SchemaToArrowSchema(sch, nil, true, false)
	require.NoError(t, err)
	return fileio.TableInfo{FS: fs, Location: t.TempDir(), Schema: sch, ArrowSchema: asc, Spec: *iceberg.UnpartitionedSpec, FormatVersion: 2}
}

func batch(t *testing.T, sc *arrow.Schema, n int) arrow.RecordBatch {
	t.Helper()
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer b.Release()
	for i := range n {
		switch fb := b.Field(0).(type) {
		case *array.Int64Builder:
			fb.Append(int64(i))
		case *array.StringBuilder:
			fb.Append("x")
		}
	}
	return b.NewRecordBatch()
}

// TestWriterInvalidFile: rows that cannot make a valid file are
// ErrInvalidFile (retrying fails the same way); a store that fails is not.
func TestWriterInvalidFile(t *testing.T) {
	inf := info(t, iceio.LocalFS{})
	w := fileio.NewWriter(inf, nil, fileio.Options{})
	good := batch(t, inf.ArrowSchema, 10)
	defer good.Release()
	require.NoError(t, w.Write(good))
	wrong := batch(t, arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.BinaryTypes.String}}, nil), 10)
	defer wrong.Release()
	err := w.Write(wrong)
	require.ErrorIs(t, err, fileio.ErrInvalidFile)
	w.Abort()

	inf = info(t, failingFS{failAt: 16})
	w = fileio.NewWriter(inf, nil, fileio.Options{})
	require.NoError(t, w.Write(good))
	_, err = w.Close(context.Background())
	require.ErrorIs(t, err, errDisk)
	require.NotErrorIs(t, err, fileio.ErrInvalidFile)
}
