package ingest

import (
	"context"
	"errors"
	"fmt"
	iofs "io/fs"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"

	"github.com/floelake/floe/commit"
	"github.com/floelake/floe/ingest/decode"
	"github.com/floelake/floe/ingest/transform"
	"github.com/floelake/floe/ingest/transform/dedup"
	"github.com/floelake/floe/internal/fileio"
)

// dedupOut is a worker's part of a pipeline that drops duplicates: the
// dedup state of the partitions it reads, and, at every flush, the keys
// they kept in the segment as one state file of the main output (read by
// the table writer's transform.DedupStage, which lists it in the table's
// floe.dedup manifest).
type dedupOut struct {
	horizon int64
	// loaded is the run's state as it started, shared by the run's
	// workers and only read: each takes its partitions out of it.
	loaded map[string]*dedup.Partition
	parts  map[topicPartition]*dedup.Partition
	info   fileio.TableInfo
}

// dedupPart is the partBuf key of the dedup state file: no table
// partition key is empty.
const dedupPart = "\x00dedup"

func newDedupOut(horizon int64, loaded map[string]*dedup.Partition, table fileio.TableInfo) (*dedupOut, error) {
	asc, err := arrowSchema(transform.DedupSchema)
	if err != nil {
		return nil, err
	}
	info := table
	info.Schema, info.ArrowSchema, info.Spec = transform.DedupSchema, asc, *iceberg.UnpartitionedSpec
	return &dedupOut{horizon: horizon, loaded: loaded, parts: map[topicPartition]*dedup.Partition{}, info: info}, nil
}

// check computes the record's key and decides whether it is a duplicate.
func (d *dedupOut) check(tr *transform.Runner, meta *decode.RecordMeta) (bool, error) {
	k, err := tr.DedupKey()
	if err != nil {
		return false, err
	}
	tp := topicPartition{meta.Topic, meta.Partition}
	p := d.parts[tp]
	if p == nil {
		id := transform.PartitionID(tp.topic, tp.partition)
		if p = d.loaded[id]; p == nil {
			p = dedup.NewPartition(id, d.horizon)
		}
		d.parts[tp] = p
	}
	return p.Check(k, meta.Timestamp.UnixMicro()), nil
}

// flush hands the keys the segment kept, and its partitions' clocks, to
// the main output as a file.
func (d *dedupOut) flush(w *worker) {
	parts := make([]*dedup.Partition, 0, len(d.parts))
	for _, p := range d.parts {
		parts = append(parts, p)
	}
	sections := dedup.Delta(parts)
	if sections == nil {
		return
	}
	out := &w.outs[w.main]
	pb := &partBuf{rb: array.NewRecordBuilder(w.mem, d.info.ArrowSchema),
		w: fileio.NewWriter(d.info, nil, fileio.Options{Dir: transform.DedupDir})}
	pb.rb.Field(0).(*array.BinaryBuilder).Append(dedup.Encode(sections))
	pb.rows = 1
	out.parts[dedupPart] = pb
}

// loadDedup rebuilds the dedup state of the partitions a run starts at:
// that of the main table's head (its floe.dedup manifest), plus the dedup
// files of the segments accepted after it (accepted: their encoded files,
// as the ledger holds them; a run starts where the accepted offsets end).
// Whatever the head holds beyond the accepted segments' start is covered
// twice, which changes nothing: the state is a union.
func (p *Pipeline) loadDedup(ctx context.Context, tbl *table.Table, accepted [][]byte, start commit.Offsets) (map[string]*dedup.Partition, error) {
	horizon, ok := p.prog.Dedups()
	if !ok {
		return nil, nil
	}
	fs, err := tbl.FS(ctx)
	if err != nil {
		return nil, err
	}
	man, err := transform.ReadDedupManifest(fs, commit.TableDedup(tbl, p.opts.Pipeline.Name), p.log)
	if err != nil {
		return nil, err
	}
	paths := man.Paths()
	for _, b := range accepted {
		files, err := fileio.DecodeDataFiles(b, tbl.Spec(), tbl.Schema())
		if err != nil {
			return nil, fmt.Errorf("ingest: the files of an accepted segment: %w", err)
		}
		for _, f := range files {
			if transform.IsDedupFile(f.FilePath()) {
				paths = append(paths, f.FilePath())
			}
		}
	}
	var ids []string
	for topic, ps := range start {
		for part := range ps {
			ids = append(ids, transform.PartitionID(topic, part))
		}
	}
	var sections []dedup.Section
	for _, path := range paths {
		secs, err := transform.ReadDedupFile(ctx, fs, path, memory.DefaultAllocator)
		if errors.Is(err, iofs.ErrNotExist) {
			p.log.Error("a dedup state file is gone; its keys are forgotten, so duplicates of them may pass once", "file", path)
			continue
		}
		if err != nil {
			return nil, err
		}
		sections = append(sections, secs...)
	}
	parts := dedup.Load(ids, horizon, man.Clocks, sections)
	keys := 0
	for _, pt := range parts {
		keys += pt.Len()
	}
	p.log.Info("loaded the dedup state", "partitions", len(parts), "keys", keys, "files", len(paths))
	return parts, nil
}
