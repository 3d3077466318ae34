package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// BenchmarkScanLayout measures what the layout of a keyed table's data
// files costs a reader, apart from any delete: the same 400k click rows
// read as one file and as 20 files of 20k rows (the file of a first commit
// against those of 20 upsert commits), each written three ways:
//
//   - floe: as the fileio writer writes them (data pages v1, 1 MiB pages,
//     zstd level 1, dictionary encoding chosen per column, one row group);
//   - floe-nodict: the same without any dictionary;
//   - v2-pages: data pages v2, every column dictionary-encoded, zstd at its
//     default level, row groups of 256k rows (other Iceberg writers'
//     defaults).
//
// The reader is arrow-go's pqarrow with the read properties iceberg-go's
// scan uses (batches of 128k rows, columns decoded in parallel). Compare
// "1 file" and "20 files" within one layout: the difference is what each
// file costs the reader to open, set up and buffer. docs/keyed-tables.md
// gives figures.
func BenchmarkScanLayout(b *testing.B) {
	const files, rows = 20, 20000
	ctx := context.Background()
	dir := b.TempDir()
	kt, err := openKeyedTable(ctx, dir, 2, "position")
	if err != nil {
		b.Fatal(err)
	}
	defer kt.close()
	big, err := kt.writeFile(ctx, newKeyStream(1, 0, 0, 8), files*rows)
	if err != nil {
		b.Fatal(err)
	}
	s := newKeyStream(1, 0, 0, 8) // the same rows again, in small files
	var small []string
	for range files {
		f, err := kt.writeFile(ctx, s, rows)
		if err != nil {
			b.Fatal(err)
		}
		small = append(small, localFile(f.FilePath()))
	}
	layouts := []struct {
		name  string
		props []parquet.WriterProperty // nil: the files as written
	}{
		{"floe", nil},
		{"floe-nodict", []parquet.WriterProperty{parquet.WithMaxRowGroupLength(1 << 30), parquet.WithDataPageSize(1 << 20),
			parquet.WithCompression(compress.Codecs.Zstd), parquet.WithCompressionLevel(1), parquet.WithStats(true),
			parquet.WithDictionaryDefault(false)}},
		{"v2-pages", []parquet.WriterProperty{parquet.WithMaxRowGroupLength(256 << 10), parquet.WithDataPageSize(1 << 20),
			parquet.WithDataPageVersion(parquet.DataPageV2), parquet.WithDictionaryPageSizeLimit(2 << 20),
			parquet.WithCompression(compress.Codecs.Zstd), parquet.WithStats(true)}},
	}
	for _, l := range layouts {
		one, many := []string{localFile(big.FilePath())}, small
		if l.props != nil {
			d := filepath.Join(dir, l.name)
			if err := os.MkdirAll(d, 0o755); err != nil {
				b.Fatal(err)
			}
			one = []string{rewriteParquet(b, one[0], filepath.Join(d, "one.parquet"), l.props)}
			many = nil
			for i, p := range small {
				many = append(many, rewriteParquet(b, p, filepath.Join(d, fmt.Sprintf("%02d.parquet", i)), l.props))
			}
		}
		for _, set := range []struct {
			name  string
			paths []string
		}{{"1 file", one}, {fmt.Sprintf("%d files", files), many}} {
			b.Run(l.name+"/"+set.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					n, err := readParquetFiles(ctx, set.paths)
					if err != nil {
						b.Fatal(err)
					}
					if n != files*rows {
						b.Fatalf("read %d rows, want %d", n, files*rows)
					}
				}
				b.ReportMetric(float64(files*rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
			})
		}
	}
}

func localFile(p string) string { return strings.TrimPrefix(p, "file://") }

// rewriteParquet writes the rows of the Parquet file src to dst with the
// writer properties props and returns dst.
func rewriteParquet(b *testing.B, src, dst string, props []parquet.WriterProperty) string {
	b.Helper()
	f, err := os.Open(src)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	rdr, err := file.NewParquetReader(f)
	if err != nil {
		b.Fatal(err)
	}
	fr, err := pqarrow.NewFileReader(rdr, pqarrow.ArrowReadProperties{BatchSize: 64 << 10}, memory.DefaultAllocator)
	if err != nil {
		b.Fatal(err)
	}
	tbl, err := fr.ReadTable(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	defer tbl.Release()
	out, err := os.Create(dst)
	if err != nil {
		b.Fatal(err)
	}
	// WriteTable closes out.
	if err := pqarrow.WriteTable(tbl, out, 64<<10, parquet.NewWriterProperties(props...), pqarrow.DefaultWriterProps()); err != nil {
		b.Fatal(err)
	}
	return dst
}

// readParquetFiles reads every column of every row of the files, in order,
// as iceberg-go's scan reads a data file, and returns the rows read.
func readParquetFiles(ctx context.Context, paths []string) (int64, error) {
	var rows int64
	for _, p := range paths {
		n, err := readParquetFile(ctx, p)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", p, err)
		}
		rows += n
	}
	return rows, nil
}

func readParquetFile(ctx context.Context, path string) (int64, error) {
	rdr, err := file.OpenParquetFile(path, false)
	if err != nil {
		return 0, err
	}
	defer rdr.Close()
	fr, err := pqarrow.NewFileReader(rdr, pqarrow.ArrowReadProperties{BatchSize: 1 << 17, Parallel: true}, memory.DefaultAllocator)
	if err != nil {
		return 0, err
	}
	rr, err := fr.GetRecordReader(ctx, nil, nil)
	if err != nil {
		return 0, err
	}
	defer rr.Release()
	var rows int64
	for rr.Next() {
		rows += rr.RecordBatch().NumRows()
	}
	if err := rr.Err(); err != nil && !errors.Is(err, io.EOF) {
		return 0, err
	}
	return rows, nil
}
