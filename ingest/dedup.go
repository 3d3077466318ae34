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
	file   stateFile
}

// dedupPart is the partBuf key of the dedup state file: no table
// partition key is empty.
const dedupPart = "\x00dedup"

func newDedupOut(horizon int64, loaded map[string]*dedup.Partition, table fileio.TableInfo) (*dedupOut, error) {
	f, err := newStateFile(table, transform.DedupSchema, transform.DedupDir)
	if err != nil {
		return nil, err
	}
	return &dedupOut{horizon: horizon, loaded: loaded, parts: map[topicPartition]*dedup.Partition{}, file: f}, nil
}

// stateFile lays out the one-row files a stateful transform's workers
// hand to the table writer with each segment (window partials, kept dedup
// keys): one binary cell, under dir, with the table's current spec (whose
// id is what the segment's files are decoded with) and null partition
// values. They are never committed as data.
type stateFile struct {
	info   fileio.TableInfo
	values map[int]any
	dir    string
}

func newStateFile(table fileio.TableInfo, sch *iceberg.Schema, dir string) (stateFile, error) {
	asc, err := arrowSchema(sch)
	if err != nil {
		return stateFile{}, err
	}
	info := table
	info.Schema, info.ArrowSchema = sch, asc
	values := map[int]any{}
	for _, f := range info.Spec.Fields() {
		values[f.FieldID] = nil
	}
	return stateFile{info: info, values: values, dir: dir}, nil
}

// part returns a buffer holding blob as the file's one row.
func (f stateFile) part(mem memory.Allocator, blob []byte) *partBuf {
	pb := &partBuf{rb: array.NewRecordBuilder(mem, f.info.ArrowSchema),
		w: fileio.NewWriter(f.info, f.values, fileio.Options{Dir: f.dir})}
	pb.rb.Field(0).(*array.BinaryBuilder).Append(blob)
	pb.rows = 1
	return pb
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
	w.outs[w.main].parts[dedupPart] = d.file.part(w.mem, dedup.Encode(sections))
}

// runState rebuilds the state a stateful transform decides by at the
// partitions' start offsets: that of the main table's head (its floe.dedup
// manifest, its floe.event-times) plus that of the segments the ledger
// accepted after it (read, with the start offsets, before the table was
// loaded: a segment committed in between is in both, which changes
// nothing, as the state is a union and the clocks a maximum). It checks
// that the two meet: a table read from a catalog that lags the ledger
// fails the run, which is retried.
func (p *Pipeline) runState(ctx context.Context, tbl *table.Table, accepted []commit.SegmentEntry, start commit.Offsets) (map[string]*dedup.Partition, commit.Offsets, error) {
	_, dedups := p.prog.Dedups()
	if !dedups && !p.prog.Windowed() {
		return nil, nil, nil
	}
	if err := p.checkReach(tbl, accepted, start); err != nil {
		return nil, nil, err
	}
	var clocks commit.Offsets
	if p.prog.Windowed() {
		clocks = commit.TableEventTimes(tbl, p.opts.Pipeline.Name)
		for _, e := range accepted {
			clocks = clocks.MaxMerge(e.EventTimes)
		}
	}
	dd, err := p.loadDedup(ctx, tbl, accepted, start)
	return dd, clocks, err
}

// checkReach checks that the table's offsets and the accepted segments
// cover every partition up to its start offset, without a gap.
func (p *Pipeline) checkReach(tbl *table.Table, accepted []commit.SegmentEntry, start commit.Offsets) error {
	off, _, _, err := commit.TableOffsets(tbl, p.opts.Pipeline.Name)
	if err != nil {
		return err
	}
	return reaches(off, accepted, start)
}

// reaches checks that off (a table's offsets) and the accepted segments
// after it cover every partition of start up to its offset, without a gap.
func reaches(off commit.Offsets, accepted []commit.SegmentEntry, start commit.Offsets) error {
	for topic, ps := range start {
		for part, want := range ps {
			reach, ok := off.Get(topic, part)
			for _, e := range accepted {
				from, fok := e.From.Get(topic, part)
				to, tok := e.To.Get(topic, part)
				switch {
				case !fok || !tok || (ok && to <= reach):
				case !ok || from <= reach:
					reach, ok = to, true
				default:
					return fmt.Errorf("the table (at %d) and the segments accepted after it (from %d) do not meet on %s/%d; the catalog may lag the cluster, retrying",
						reach, from, topic, part)
				}
			}
			if ok && reach < want {
				return fmt.Errorf("the table and the segments accepted after it reach %d on %s/%d, the run starts at %d; the catalog may lag the cluster, retrying",
					reach, topic, part, want)
			}
		}
	}
	return nil
}

// loadDedup rebuilds the dedup state of the partitions a run starts at
// (see runState).
func (p *Pipeline) loadDedup(ctx context.Context, tbl *table.Table, accepted []commit.SegmentEntry, start commit.Offsets) (map[string]*dedup.Partition, error) {
	horizon, ok := p.prog.Dedups()
	if !ok {
		return nil, nil
	}
	fs, err := tbl.FS(ctx)
	if err != nil {
		return nil, err
	}
	ids := map[string]bool{}
	var idList []string
	for topic, ps := range start {
		for part := range ps {
			id := transform.PartitionID(topic, part)
			ids[id] = true
			idList = append(idList, id)
		}
	}
	man, err := transform.ReadDedupManifest(fs, commit.TableDedup(tbl, p.opts.Pipeline.Name), p.prog.DedupSignature(), p.log)
	if err != nil {
		return nil, err
	}
	var paths []string
	for _, f := range man.Files {
		for id := range f.Parts {
			if ids[id] {
				paths = append(paths, f.Path)
				break
			}
		}
	}
	loc := tbl.Location()
	for _, e := range accepted {
		if len(e.Files) == 0 {
			continue
		}
		files, err := fileio.DecodeDataFiles(e.Files, tbl.Spec(), tbl.Schema())
		if err != nil {
			return nil, fmt.Errorf("ingest: the files of an accepted segment: %w", err)
		}
		for _, f := range files {
			if transform.IsDedupFile(loc, f.FilePath()) {
				paths = append(paths, f.FilePath())
			}
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
		for _, s := range secs {
			if ids[s.ID] {
				sections = append(sections, s)
			}
		}
	}
	parts := dedup.Load(idList, horizon, man.Clocks, sections)
	keys := 0
	for _, pt := range parts {
		keys += pt.Len()
	}
	p.log.Info("loaded the dedup state", "partitions", len(parts), "keys", keys, "files", len(paths))
	return parts, nil
}
