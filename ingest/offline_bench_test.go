package ingest_test

import (
	"context"
	"testing"

	"github.com/apache/iceberg-go/table"

	iceio "github.com/apache/iceberg-go/io"
	"github.com/floelake/floe/catalog"
	"github.com/floelake/floe/ingest"
	"github.com/floelake/floe/internal/fileio"
	"github.com/floelake/floe/internal/gen"
	"github.com/floelake/floe/internal/schema"
)

// BenchmarkWriteOffline measures the decode → route → Parquet path the
// pipeline runs, per record, on GOMAXPROCS workers.
func BenchmarkWriteOffline(b *testing.B) {
	g, err := gen.New(gen.Clicks, gen.Config{Seed: 1, MalformedRate: -1})
	if err != nil {
		b.Fatal(err)
	}
	values := make([][]byte, 50_000)
	for i := range values {
		v, _, _ := g.Next(nil)
		values[i] = v
	}
	info := func(dir string, sch2 string) fileio.TableInfo {
		sch := gen.Schema(gen.Clicks)
		var parts []string
		if sch2 == "dlq" {
			sch = ingest.DeadLetterSchema()
		} else {
			parts = []string{"day(ts)"}
		}
		spec, err := schema.Partition(parts, sch)
		if err != nil {
			b.Fatal(err)
		}
		asc, err := table.SchemaToArrowSchema(sch, nil, true, false)
		if err != nil {
			b.Fatal(err)
		}
		return fileio.TableInfo{FS: iceio.LocalFS{}, Location: dir, Schema: sch, ArrowSchema: asc, Spec: spec,
			Properties: catalog.DefaultTableProperties(), FormatVersion: 2}
	}
	dir := b.TempDir()
	b.ResetTimer()
	if _, err := ingest.WriteOffline(context.Background(), info(dir+"/m", "main"), info(dir+"/d", "dlq"), values, b.N, 2); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
