// Package fileio writes Arrow record batches as Iceberg data files: Parquet
// with Iceberg field ids, rolled at a target size, with the per-column
// statistics Iceberg scan planning needs, through iceberg-go's file IO
// (local disk or S3).
//
// Layout: <table location>/data/<partition path>/<writer id>-<seq>.parquet.
// The writer id is a fresh UUID per Writer, so names never collide across
// restarts or nodes, and a file is immutable once closed. Files are
// invisible until a snapshot references them; files of a crashed writer are
// orphans for maintenance to remove.
//
// Encoding is chosen per column: dictionary encoding only where the first
// rows of a file show repetition. Dictionary building on near-unique columns
// (ids, timestamps, amounts) costs more CPU than anything else in the write
// path and then falls back to plain encoding anyway.
package fileio

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/apache/iceberg-go"
	iceio "github.com/apache/iceberg-go/io"
	"github.com/apache/iceberg-go/table"
	"github.com/google/uuid"

	"github.com/floelake/floe/internal/failpoint"
)

// Options tune the files.
type Options struct {
	// TargetFileSize rolls to a new file once the current one reaches it.
	TargetFileSize int64
	// RowGroupBytes closes a row group once its encoded size reaches it.
	RowGroupBytes int64
	// ZstdLevel is the zstd compression level (1 is fastest).
	ZstdLevel int
	// Content is what the files hold: data (the zero value) or, for files
	// of deleted keys, equality deletes on EqualityFieldIDs.
	Content          iceberg.ManifestEntryContent
	EqualityFieldIDs []int
	// Dir, if set, is the directory under the table's location the files
	// go to, instead of data/ and the partition's path.
	Dir string
}

func (o *Options) fill() {
	if o.TargetFileSize <= 0 {
		o.TargetFileSize = 128 << 20
	}
	if o.RowGroupBytes <= 0 {
		o.RowGroupBytes = 16 << 20
	}
	if o.RowGroupBytes > o.TargetFileSize {
		o.RowGroupBytes = o.TargetFileSize
	}
	if o.ZstdLevel == 0 {
		o.ZstdLevel = 1
	}
}

// TableInfo is what a writer needs to know about its table.
type TableInfo struct {
	// FS is the file IO data files are written through.
	FS            iceio.WriteFileIO
	Location      string
	Schema        *iceberg.Schema
	ArrowSchema   *arrow.Schema
	Spec          iceberg.PartitionSpec
	Properties    iceberg.Properties
	FormatVersion int
	SortOrderID   int
}

// InfoFromTable extracts a TableInfo from a loaded table.
func InfoFromTable(ctx context.Context, t *table.Table) (TableInfo, error) {
	asc, err := table.SchemaToArrowSchema(t.Schema(), nil, true, false)
	if err != nil {
		return TableInfo{}, fmt.Errorf("fileio: arrow schema: %w", err)
	}
	fs, err := t.FS(ctx)
	if err != nil {
		return TableInfo{}, fmt.Errorf("fileio: file IO for %s: %w", t.Location(), err)
	}
	wfs, ok := fs.(iceio.WriteFileIO)
	if !ok {
		return TableInfo{}, fmt.Errorf("fileio: file IO for %s is read-only", t.Location())
	}
	return TableInfo{
		FS:            wfs,
		Location:      strings.TrimSuffix(t.Location(), "/"),
		Schema:        t.Schema(),
		ArrowSchema:   asc,
		Spec:          t.Spec(),
		Properties:    t.Properties(),
		FormatVersion: t.Metadata().Version(),
		SortOrderID:   t.SortOrder().OrderID(),
	}, nil
}

// PartitionPath renders partition values (spec field id → value) as the
// Hive-style directory Iceberg writers use: ts_day=2026-11-22/country=DE.
func PartitionPath(spec iceberg.PartitionSpec, sch *iceberg.Schema, values map[int]any) string {
	var sb strings.Builder
	i := 0
	for _, f := range spec.Fields() {
		if i > 0 {
			sb.WriteByte('/')
		}
		i++
		sb.WriteString(url.QueryEscape(f.Name))
		sb.WriteByte('=')
		v := values[f.FieldID]
		src, _ := sch.FindFieldByID(f.SourceID())
		rt := f.Transform.ResultType(src.Type)
		sb.WriteString(url.QueryEscape(f.Transform.ToHumanStrType(rt, v)))
	}
	return sb.String()
}

// Writer writes rolling Parquet files holding the rows of one partition of
// one table. It is used by one goroutine.
type Writer struct {
	info    TableInfo
	opts    Options
	values  map[int]any
	dir     string
	id      string
	seq     int
	cur     *openFile
	written []iceberg.DataFile
	// dict is the per-column dictionary decision, made on the first batch.
	dict map[string]bool
}

type openFile struct {
	path string
	out  iceio.FileWriter
	cw   *countingWriter
	fw   *pqarrow.FileWriter
}

// NewWriter starts a writer for the partition with the given values.
func NewWriter(info TableInfo, values map[int]any, opts Options) *Writer {
	opts.fill()
	dir := info.Location + "/data"
	switch {
	case opts.Dir != "":
		dir = info.Location + "/" + opts.Dir
	case !info.Spec.IsUnpartitioned():
		dir += "/" + PartitionPath(info.Spec, info.Schema, values)
	}
	return &Writer{info: info, opts: opts, values: values, dir: dir, id: uuid.NewString()}
}

// Write appends a batch, opening or rolling files as needed.
func (w *Writer) Write(rec arrow.RecordBatch) error {
	if rec.NumRows() == 0 {
		return nil
	}
	if w.cur == nil {
		if err := w.open(rec); err != nil {
			return err
		}
	}
	if err := w.cur.fw.WriteBuffered(rec); err != nil {
		return fmt.Errorf("fileio: write %s: %w", w.cur.path, invalid(w.cur.cw, err))
	}
	if err := failpoint.Hit("fileio/after-write"); err != nil {
		return err
	}
	if w.cur.fw.RowGroupTotalCompressedBytes() >= w.opts.RowGroupBytes {
		w.cur.fw.NewBufferedRowGroup()
	}
	if w.cur.cw.n+w.cur.fw.RowGroupTotalCompressedBytes() >= w.opts.TargetFileSize {
		return w.roll()
	}
	return nil
}

// Close finishes the open file and returns every file written since the
// previous Close. The writer can be written to again afterwards.
func (w *Writer) Close(ctx context.Context) ([]iceberg.DataFile, error) {
	if err := w.roll(); err != nil {
		return nil, err
	}
	files := w.written
	w.written = nil
	return files, nil
}

// Abort closes the open file without recording it; its object becomes an
// orphan.
func (w *Writer) Abort() {
	if w.cur != nil {
		_ = w.cur.fw.Close()
		w.cur = nil
	}
	w.written = nil
}

func (w *Writer) open(first arrow.RecordBatch) error {
	if w.dict == nil {
		w.dict = chooseDictionary(first)
	}
	w.seq++
	path := fmt.Sprintf("%s/%s-%05d.parquet", w.dir, w.id, w.seq)
	out, err := w.info.FS.Create(path)
	if err != nil {
		return fmt.Errorf("fileio: create %s: %w", path, err)
	}
	props := []parquet.WriterProperty{
		parquet.WithCompression(compress.Codecs.Zstd),
		parquet.WithCompressionLevel(w.opts.ZstdLevel),
		parquet.WithStats(true),
		parquet.WithMaxRowGroupLength(1 << 30),
		parquet.WithDataPageSize(1 << 20),
		parquet.WithCreatedBy("floe"),
	}
	for col, on := range w.dict {
		props = append(props, parquet.WithDictionaryFor(col, on))
	}
	cw := &countingWriter{w: out}
	fw, err := pqarrow.NewFileWriter(w.info.ArrowSchema, cw, parquet.NewWriterProperties(props...),
		pqarrow.NewArrowWriterProperties())
	if err != nil {
		_ = out.Close()
		return fmt.Errorf("fileio: open parquet writer %s: %w", path, invalid(cw, err))
	}
	w.cur = &openFile{path: path, out: out, cw: cw, fw: fw}
	return nil
}

func (w *Writer) roll() error {
	f := w.cur
	if f == nil {
		return nil
	}
	w.cur = nil
	// pqarrow closes the sink it was given; countingWriter forwards Close.
	if err := f.fw.Close(); err != nil {
		return fmt.Errorf("fileio: close %s: %w", f.path, invalid(f.cw, err))
	}
	meta, err := f.fw.FileMetadata()
	if err != nil {
		return fmt.Errorf("fileio: metadata of %s: %w", f.path, invalid(nil, err))
	}
	df, err := table.DataFileFromMetadata(table.DataFileArgs{
		Schema:           w.info.Schema,
		Spec:             w.info.Spec,
		Format:           iceberg.ParquetFile,
		Metadata:         meta,
		FilePath:         f.path,
		FileSize:         f.cw.n,
		Content:          w.opts.Content,
		EqualityFieldIDs: w.opts.EqualityFieldIDs,
		PartitionValues:  w.values,
		SortOrderID:      w.info.SortOrderID,
		Properties:       w.info.Properties,
		FormatVersion:    w.info.FormatVersion,
	})
	if err != nil {
		return fmt.Errorf("fileio: data file %s: %w", f.path, invalid(nil, err))
	}
	w.written = append(w.written, df)
	return failpoint.Hit("fileio/after-close")
}

// countingWriter counts the bytes written to a file and remembers whether
// the store failed, which tells an invalid file from a storage error.
type countingWriter struct {
	w   iceio.FileWriter
	n   int64
	err error
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	if err != nil && c.err == nil {
		c.err = err
	}
	return n, err
}

func (c *countingWriter) Close() error {
	err := c.w.Close()
	if err != nil && c.err == nil {
		c.err = err
	}
	return err
}

// invalid marks err as ErrInvalidFile unless the file's store failed (cw is
// nil where no store was involved): a storage error may pass, rows that
// cannot be encoded fail the same way every time.
func invalid(cw *countingWriter, err error) error {
	if cw != nil && cw.err != nil {
		return err
	}
	return fmt.Errorf("%w: %w", ErrInvalidFile, err)
}

var _ io.WriteCloser = (*countingWriter)(nil)

// chooseDictionary decides dictionary encoding per top-level primitive
// column from the repetition in (a sample of) the first batch.
func chooseDictionary(rec arrow.RecordBatch) map[string]bool {
	const sample = 4096
	n := int(min(rec.NumRows(), sample))
	out := make(map[string]bool, rec.NumCols())
	for i, col := range rec.Columns() {
		name := rec.Schema().Field(i).Name
		distinct, ok := countDistinct(col, n)
		if !ok {
			continue // nested or unusual: keep the library default
		}
		nonNull := n - nullsIn(col, n)
		if nonNull == 0 {
			out[name] = true
			continue
		}
		limit := 0.5
		if _, isString := col.(*array.String); !isString {
			if _, isBinary := col.(*array.Binary); !isBinary {
				// Fixed-width values gain less from dictionaries.
				limit = 0.1
			}
		}
		out[name] = float64(distinct) <= limit*float64(nonNull)
	}
	return out
}

func nullsIn(a arrow.Array, n int) int {
	c := 0
	for i := 0; i < n; i++ {
		if a.IsNull(i) {
			c++
		}
	}
	return c
}

func countDistinct(a arrow.Array, n int) (int, bool) {
	switch c := a.(type) {
	case *array.String:
		return distinct(n, func(i int) string { return c.Value(i) }, c), true
	case *array.Binary:
		return distinct(n, func(i int) string { return string(c.Value(i)) }, c), true
	case *array.Int32:
		return distinct(n, c.Value, c), true
	case *array.Int64:
		return distinct(n, c.Value, c), true
	case *array.Float32:
		return distinct(n, c.Value, c), true
	case *array.Float64:
		return distinct(n, c.Value, c), true
	case *array.Date32:
		return distinct(n, c.Value, c), true
	case *array.Timestamp:
		return distinct(n, c.Value, c), true
	case *array.Time64:
		return distinct(n, c.Value, c), true
	case *array.Decimal128:
		return distinct(n, c.Value, c), true
	case *array.Boolean:
		return 2, true
	default:
		return 0, false
	}
}

func distinct[T comparable](n int, v func(int) T, a arrow.Array) int {
	seen := make(map[T]struct{}, 256)
	for i := 0; i < n; i++ {
		if !a.IsNull(i) {
			seen[v(i)] = struct{}{}
		}
	}
	return len(seen)
}
