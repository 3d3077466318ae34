package ingest

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floelake/floe/commit"
	"github.com/floelake/floe/ingest/registry"
	"github.com/floelake/floe/internal/fileio"
)

// WriteOffline runs the decode → route → Parquet path of a pipeline on
// in-memory record values, with no Kafka and no commit: the benchmark's
// measure of what the node could do if consuming and committing were free.
// values are cycled through until total records were written, spread over
// the given number of workers as partitions would be. It returns the number
// of data files written.
func WriteOffline(ctx context.Context, main, dlq fileio.TableInfo, values [][]byte, total, workers int) (int, error) {
	return writeOffline(ctx, &Pipeline{fileOpts: fileio.Options{TargetFileSize: 128 << 20}}, main, dlq, values, total, workers)
}

// WriteOfflineFormat is WriteOffline for the record format of cfg, of which
// it takes Name, Format, Registry and SchemaEvolution: avro and protobuf
// values in the schema registry's wire format are decoded as a pipeline's
// workers decode them, with their writer schemas fetched from cfg.Registry.
// A writer schema that needs the table's schema to change (schema_evolution:
// add) is an error: there is no table to change.
func WriteOfflineFormat(ctx context.Context, cfg PipelineConfig, main, dlq fileio.TableInfo, values [][]byte, total, workers int) (int, error) {
	p := &Pipeline{
		opts: Options{Pipeline: PipelineConfig{
			Name: cfg.Name, Format: cfg.Format, Registry: cfg.Registry, SchemaEvolution: cfg.SchemaEvolution,
		}},
		fileOpts: fileio.Options{TargetFileSize: 128 << 20},
	}
	if cfg.RegistryFormat() {
		cl, err := registry.New(cfg.Registry)
		if err != nil {
			return 0, err
		}
		p.schemas = newWriterSchemas(cfg.Format, cl)
	}
	return writeOffline(ctx, p, main, dlq, values, total, workers)
}

func writeOffline(ctx context.Context, p *Pipeline, main, dlq fileio.TableInfo, values [][]byte, total, workers int) (int, error) {
	outs := []outputSpec{
		{Output: Output{Role: RoleMain, Table: "offline"}, info: main, floors: commit.Offsets{}},
		{Output: Output{Role: RoleDeadLetter, Table: "offline_dead_letters"}, info: dlq, floors: commit.Offsets{}},
	}
	ws := make([]*worker, workers)
	for i := range ws {
		w, err := newWorker(p, outs, runStart{})
		if err != nil {
			return 0, err
		}
		ws[i] = w
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for _, w := range ws {
		go w.run(wctx)
	}
	const batch = 1000
	now := time.Now()
	offsets := make([]int64, workers)
	for sent := 0; sent < total; {
		for i, w := range ws {
			n := min(batch, total-sent)
			if n <= 0 {
				break
			}
			recs := make([]*kgo.Record, n)
			for j := range recs {
				recs[j] = &kgo.Record{Value: values[(sent+j)%len(values)], Offset: offsets[i], Timestamp: now}
				offsets[i]++
			}
			sent += n
			select {
			case w.in <- workItem{tp: topicPartition{"offline", int32(i)}, records: recs}:
			case <-ctx.Done():
				return 0, ctx.Err()
			}
		}
	}
	s := sealAll(ws)
	files, err := closeWriters(ctx, s)
	n := 0
	for _, f := range files {
		n += len(f)
	}
	return n, err
}
