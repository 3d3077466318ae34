package ingest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floelake/floe/commit"
	"github.com/floelake/floe/ingest/decode"
	"github.com/floelake/floe/ingest/transform"
	"github.com/floelake/floe/ingest/transform/dedup"
	"github.com/floelake/floe/internal/fileio"
)

type topicPartition struct {
	topic     string
	partition int32
}

// tpState tracks one Kafka partition's progress: where consumption was
// positioned, and each output's progress through it.
type tpState struct {
	// pos is the offset consumption was positioned at (-1: unknown).
	pos int64
	// outs holds the partition's progress per output, in Outputs order.
	outs []progress
}

// progress is one output's progress through one Kafka partition. floor is
// the next offset the output expects (-1: it has none yet and takes every
// record); segFrom/segTo is the range its open segment covers (segFrom -1:
// the open segment does not cover the partition).
type progress struct {
	floor   int64
	segFrom int64
	segTo   int64
	// skipped are the ranges [from, to) the output moved past without their
	// records (on_data_loss: skip), for its next segment that covers the
	// partition.
	skipped [][2]int64
}

// next is the offset the output takes next: records below it are its
// already (or, after a truncated log, were replaced), -1 if it takes
// everything.
func (ps *progress) next() int64 {
	if ps.segFrom >= 0 {
		return ps.segTo
	}
	return ps.floor
}

// takes reports whether the output takes the record at offset o.
func (ps *progress) takes(o int64) bool {
	n := ps.next()
	return n < 0 || o >= n
}

// cover extends the output's open segment over offset o, consumption having
// been positioned at pos.
func (ps *progress) cover(o, pos int64) {
	if ps.segFrom < 0 {
		// The segment starts at the output's floor when the consumer was
		// positioned at or before it: offsets between the floor and this
		// record are not in the log (control records, compaction).
		// Otherwise it starts at this record, and the committer rejects the
		// gap instead of hiding it.
		ps.segFrom = o
		if ps.floor >= 0 && pos >= 0 && pos <= ps.floor {
			ps.segFrom = ps.floor
		}
	}
	ps.segTo = o + 1
}

// workItem is a batch of one partition's records, a flush request, or a
// gap in a partition's log.
type workItem struct {
	tp      topicPartition
	records []*kgo.Record
	flush   chan<- flushResult
	gap     *logGap
}

// logGap says that the consumer of a partition now reads from resume,
// because Kafka no longer has what floe expected there (on_data_loss: skip).
// It is queued in the partition's order: the records after it come from
// resume.
type logGap struct {
	resume int64
	// truncated: the log was cut below what floe had read (an unclean leader
	// election), so the records now at offsets floe had taken are not the
	// ones it took. Otherwise retention deleted offsets floe had not read.
	truncated bool
	reason    error
}

// flushResult is a worker's share of a seal: per output, the writers
// holding its rows (to be closed off the worker's goroutine) and its offset
// ranges. Whoever holds a flushResult owns its writers: it closes or aborts
// every one.
type flushResult struct {
	// outs holds the share of each output, in Outputs order.
	outs    []outputFlush
	samples []time.Time
	err     error
}

// outputFlush is one output's part of a worker's share of a seal.
type outputFlush struct {
	writers []segmentWriter
	seg     commit.Segment
}

// segmentWriter is what a seal holds of a fileio.Writer.
type segmentWriter interface {
	// Close finishes the writer's files and returns them.
	Close(ctx context.Context) ([]iceberg.DataFile, error)
	// Abort discards the writer's unfinished file.
	Abort()
}

// partBuf accumulates the rows of one table partition until they are worth
// a Parquet write.
type partBuf struct {
	rb     *array.RecordBuilder
	rows   int
	w      *fileio.Writer
	values map[int]any
}

// route says which records an output takes, and so how it writes them.
// Every record goes to the outputs of its route that do not have it yet.
type route uint8

const (
	// routeDecoded: the rows of records the decoder parsed, in the table's
	// schema and partitions.
	routeDecoded route = iota
	// routeRejected: records the decoder rejected, as dead-letter rows.
	routeRejected
)

// routeOf is the route of an output's role.
func routeOf(role string) (route, error) {
	switch role {
	case RoleMain:
		return routeDecoded, nil
	case RoleDeadLetter:
		return routeRejected, nil
	}
	return 0, fmt.Errorf("ingest: unknown output role %q", role)
}

// outputSpec is an output as a run writes it: what it is, its table's
// layout, and per partition the offset from which it takes records (its
// floors).
type outputSpec struct {
	Output
	info   fileio.TableInfo
	floors commit.Offsets
}

// outputSpecs pairs outputs with their tables' layouts and floors, all in
// Outputs order.
func outputSpecs(outs []Output, infos []fileio.TableInfo, floors []commit.Offsets) []outputSpec {
	specs := make([]outputSpec, len(outs))
	for i, o := range outs {
		specs[i] = outputSpec{Output: o, info: infos[i], floors: floors[i]}
	}
	return specs
}

// output is one output as a worker writes it: the table partitions of its
// open segment, and the rows and newest Kafka timestamp that segment holds.
type output struct {
	outputSpec
	route route
	parts map[string]*partBuf
	// part computes a decoded row's table partition (routeDecoded).
	part *partitioner
	// dl lays out a dead-letter row (routeRejected).
	dl *deadLetterRow
	// del is where a keyed table's deleted keys are written (routeDecoded
	// of a keyed pipeline; see changes.go).
	del  *deletedKeys
	rows int64
	wm   time.Time
}

// deletedKeys is the layout of a keyed table's files of deleted keys.
type deletedKeys struct {
	info   fileio.TableInfo
	values map[int]any
	opts   fileio.Options
}

// deletedPart is the partBuf key of the deleted keys: no table partition
// key is empty.
const deletedPart = "\x00deleted"

// newDeletedKeys lays out the files of deleted keys of a table with info.
// They carry the table's partition spec with null values (they are never
// committed as they are) and are equality-delete files on the key columns.
func newDeletedKeys(info fileio.TableInfo, keys []string, version string, opts fileio.Options) (*deletedKeys, *decode.JSONDecoder, error) {
	ksch, ids, err := keySchema(info.Schema, keys, version)
	if err != nil {
		return nil, nil, err
	}
	dec, err := decode.NewJSONDecoder(ksch)
	if err != nil {
		return nil, nil, err
	}
	asc, err := table.SchemaToArrowSchema(ksch, nil, true, false)
	if err != nil {
		return nil, nil, err
	}
	info.Schema, info.ArrowSchema = ksch, asc
	values := map[int]any{}
	for _, f := range info.Spec.Fields() {
		values[f.FieldID] = nil
	}
	opts.Content, opts.EqualityFieldIDs, opts.Dir = iceberg.EntryContentEqDeletes, ids, "data/deleted-keys"
	return &deletedKeys{info: info, values: values, opts: opts}, dec, nil
}

func (out *output) note(ts time.Time) {
	out.rows++
	if ts.After(out.wm) {
		out.wm = ts
	}
}

// worker owns a disjoint set of Kafka partitions: it decodes their records,
// routes each to the outputs that take it and each row to its table
// partition, and writes Parquet files. It never blocks on the catalog: a
// flush hands its open writers to the pipeline, which closes and commits
// them while the worker goes on.
type worker struct {
	p  *Pipeline
	in chan workItem
	// dec decodes records into rows of the main output's schema (of the
	// declared schema, for a transform).
	dec decode.Decoder
	// changes and keyDec read a keyed pipeline's records: rows and
	// deleted keys.
	changes *changeReader
	keyDec  *decode.JSONDecoder
	// transcode rewrites Avro change events as JSON for the change reader
	// (mode: cdc, format: avro); nil otherwise.
	transcode *avroTranscoder
	// tr runs the pipeline's transform on the decoder's rows (nil: the
	// decoder's rows are the table's).
	tr *transform.Runner
	// win folds a windowed pipeline's rows into the open segment's
	// partial windows; the main output then writes them at the flush.
	win *windowOut
	// dd drops a deduplicating pipeline's duplicates, and writes the keys
	// its segments kept.
	dd *dedupOut
	// outs holds the worker's outputs, in Outputs order; main is the
	// index of the main output (the decoded route).
	outs []output
	main int
	tps  map[topicPartition]*tpState
	// pos is where consumption of each partition was positioned; an
	// output's first segment may claim to start at its floor only if pos <=
	// floor.
	pos map[topicPartition]int64
	mem memory.Allocator

	// samples are the Kafka timestamps of every sampleEvery-th record in the
	// open segment, for commit-latency (freshness) measurement.
	samples []time.Time
	n       int64
	err     error
	// late counts the records of the batch being processed that were
	// later than max_lateness.
	late int64
}

const sampleEvery = 64

// newWorker makes a worker writing to outs, which holds exactly one main
// output: its table's schema is what records decode into.
// runStart is what a run's workers start from besides their outputs.
type runStart struct {
	// pos is where consumption of each partition is positioned.
	pos map[topicPartition]int64
	// dedup is the dedup state by partition id (a pipeline that drops
	// duplicates); clocks the newest event times per partition (a windowed
	// pipeline, for max_lateness).
	dedup  map[string]*dedup.Partition
	clocks commit.Offsets
}

func newWorker(p *Pipeline, outs []outputSpec, rs runStart) (*worker, error) {
	pos, dd, clocks := rs.pos, rs.dedup, rs.clocks
	w := &worker{
		p: p, in: make(chan workItem, workerQueue), outs: make([]output, len(outs)),
		tps: map[topicPartition]*tpState{}, pos: pos, mem: memory.DefaultAllocator,
	}
	for i, spec := range outs {
		r, err := routeOf(spec.Role)
		if err != nil {
			return nil, err
		}
		out := output{outputSpec: spec, route: r, parts: map[string]*partBuf{}}
		switch r {
		case routeDecoded:
			if w.dec != nil {
				return nil, fmt.Errorf("ingest: more than one main output (%s)", spec.Table)
			}
			w.main = i
			var opts []decode.DecoderOption
			if cfg := p.opts.Pipeline; cfg.InferConflicts == InferConflictsString && len(cfg.Schema) == 0 {
				opts = append(opts, decode.StringsTakeAnyJSON())
			}
			in := spec.info.Schema
			if p.prog != nil {
				// Records decode into the declared schema; the transform
				// makes the table's rows of them.
				if in, err = p.opts.Pipeline.DeclaredSchema(); err != nil {
					return nil, err
				}
			}
			// rows is the decoder's row a transform reads.
			var rows *decode.JSONDecoder
			if cfg := p.opts.Pipeline; cfg.RegistryFormat() && cfg.Mode != ModeCDC {
				fixed := FixedColumns(p.opts.Pipeline, spec.info.Schema, &spec.info.Spec)
				rd, err := newRegistryDecoder(p, spec.Table, in, fixed, spec.info.FormatVersion, p.prog != nil)
				if err != nil {
					return nil, err
				}
				w.dec, rows = rd, rd.rows
			} else {
				if rows, err = decode.NewJSONDecoder(in, opts...); err != nil {
					return nil, err
				}
				w.dec = rows
				if cfg := p.opts.Pipeline; cfg.RegistryFormat() {
					w.transcode = newAvroTranscoder(p, &evolutionPlan{pipeline: cfg.Name, table: spec.Table, schema: spec.info.Schema,
						fixed: FixedColumns(cfg, spec.info.Schema, &spec.info.Spec), version: spec.info.FormatVersion})
				}
			}
			if p.prog != nil && rows == nil {
				return nil, &configError{fmt.Errorf("pipelines[%s]: format %s has no transform", p.opts.Pipeline.Name, p.opts.Pipeline.Format)}
			}
			switch {
			case p.prog != nil && p.prog.Windowed():
				out, err := p.prog.OutputSchema(nil)
				if err != nil {
					return nil, err
				}
				if w.tr, err = p.prog.NewRunner(rows, out); err != nil {
					return nil, err
				}
				if w.win, err = newWindowOut(p.prog.NewWindower(w.tr), spec.info); err != nil {
					return nil, err
				}
				w.win.w.SetClocks(clocks)
			case p.prog != nil:
				if w.tr, err = p.prog.NewRunner(rows, spec.info.Schema); err != nil {
					return nil, &configError{fmt.Errorf("pipelines[%s]: table %s: %w", p.opts.Pipeline.Name, spec.Table, err)}
				}
			}
			if horizon, ok := p.prog.Dedups(); ok {
				if w.dd, err = newDedupOut(horizon, dd, spec.info); err != nil {
					return nil, err
				}
			}
			if out.part, err = newPartitioner(spec.info.Spec, spec.info.Schema); err != nil {
				return nil, err
			}
			if cfg := p.opts.Pipeline; cfg.Keyed() {
				if out.del, w.keyDec, err = newDeletedKeys(spec.info, cfg.Key, cfg.VersionColumn, p.fileOpts); err != nil {
					return nil, err
				}
				w.changes = newChangeReader(cfg)
				switch cfg.Format {
				case FormatAvro:
					w.changes.framed = newAvroTranscoder(p, nil).json
				case FormatProtobuf:
					w.changes.framed = newProtoKeys(p).json
				}
			}
		case routeRejected:
			if out.dl, err = newDeadLetterRow(spec.info.ArrowSchema); err != nil {
				return nil, err
			}
		}
		w.outs[i] = out
	}
	if w.dec == nil {
		return nil, fmt.Errorf("ingest: no main output")
	}
	return w, nil
}

func (w *worker) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			w.abort()
			return
		case it := <-w.in:
			if it.flush != nil {
				it.flush <- w.flush()
				continue
			}
			if w.err != nil {
				continue
			}
			if it.gap != nil {
				w.skip(it.tp, *it.gap)
				continue
			}
			w.err = w.process(it.tp, it.records)
		}
	}
}

func (w *worker) state(tp topicPartition) *tpState {
	st := w.tps[tp]
	if st == nil {
		st = &tpState{pos: -1, outs: make([]progress, len(w.outs))}
		if p, ok := w.pos[tp]; ok {
			st.pos = p
		}
		for i := range w.outs {
			ps := &st.outs[i]
			ps.floor, ps.segFrom = -1, -1
			if off, ok := w.outs[i].floors.Get(tp.topic, tp.partition); ok {
				ps.floor = off
			}
		}
		w.tps[tp] = st
	}
	return st
}

// process routes a batch of one partition's records: each record goes to
// every output of its route (decoded or rejected) that does not have it yet,
// and every output that does not have it yet covers its offset, whether it
// takes a row of it or not.
func (w *worker) process(tp topicPartition, recs []*kgo.Record) error {
	st := w.state(tp)
	prog := st.outs[:len(w.outs)]
	now := time.Now()
	var good, bad, filtered, dups, bytes int64
	for _, r := range recs {
		o := r.Offset
		wanted := false
		for i := range prog {
			if prog[i].takes(o) {
				wanted = true
				break
			}
		}
		if !wanted {
			continue // taken by every output already
		}
		bytes += int64(len(r.Value) + len(r.Key))
		meta := decode.RecordMeta{Topic: tp.topic, Partition: tp.partition, Offset: o, Timestamp: r.Timestamp, Key: r.Key}
		// A windowed pipeline folds a row into the main output's windows
		// only where that output takes the record: another output (the
		// dead-letter table) may read records the main table has.
		kind, perr := w.parse(r, meta, prog[w.main].takes(o))
		if re := (*runEnding)(nil); errors.As(perr, &re) {
			// Nothing of this run can be committed any more: the records
			// are read again by the next run.
			return re.err
		}
		got := routeDecoded
		if perr != nil {
			got = routeRejected
		}
		took := false
		for i := range prog {
			ps := &prog[i]
			if !ps.takes(o) {
				continue
			}
			if out := &w.outs[i]; out.route == got {
				if err := w.write(out, &meta, r.Value, perr, kind, now); err != nil {
					return err
				}
				if !kind.dropped() || got != routeDecoded {
					out.note(r.Timestamp)
				}
				took = true
			}
			ps.cover(o, st.pos)
		}
		if took {
			switch {
			case perr != nil:
				bad++
			case kind == changeFiltered:
				filtered++
			case kind == changeDuplicate:
				dups++
			default:
				good++
			}
		}
		w.n++
		if w.n%sampleEvery == 0 {
			w.samples = append(w.samples, r.Timestamp)
		}
	}
	w.p.stats.recordsIn.Add(good + bad + filtered + dups)
	w.p.stats.deadLetters.Add(bad)
	w.p.stats.filtered.Add(filtered)
	w.p.stats.duplicates.Add(dups)
	w.p.stats.bytesIn.Add(bytes)
	w.p.metrics().RecordsConsumed(w.p.opts.Pipeline.Name, good+bad+filtered+dups, bad, filtered, dups, bytes)
	if w.late > 0 {
		w.p.metrics().LateEvents(w.p.opts.Pipeline.Table, w.late)
		w.late = 0
	}
	return nil
}

// skip moves a partition past offsets Kafka no longer has, per output, and
// records what each output skipped so its next segment says so:
//
//   - retention deleted [next, resume) before floe read it: the output's
//     segment covers those offsets with no records, so its offsets stay
//     contiguous;
//   - the log was truncated to resume below the output's next offset: the
//     records Kafka now has at [resume, next) are not the ones the output
//     took there, and cannot be taken (their offsets are taken): they are
//     dropped as they arrive (process takes nothing below next).
//
// The skipped offsets are counted in floe_ingest_skipped_records_total and
// logged at error level.
func (w *worker) skip(tp topicPartition, g logGap) {
	st := w.state(tp)
	lo, hi := int64(-1), int64(-1)
	for i := range st.outs {
		ps := &st.outs[i]
		next := ps.next()
		var from, to int64
		switch {
		case next < 0:
			continue // the output takes whatever comes
		case !g.truncated && next < g.resume:
			from, to = next, g.resume
			if ps.segFrom < 0 {
				ps.segFrom = next
			}
			ps.segTo = g.resume
		case g.truncated && next > g.resume:
			from, to = g.resume, next
		default:
			continue
		}
		ps.skipped = append(ps.skipped, [2]int64{from, to})
		if lo < 0 || from < lo {
			lo = from
		}
		hi = max(hi, to)
	}
	st.pos = g.resume
	if lo < 0 {
		return
	}
	w.p.metrics().OffsetsSkipped(tp.topic, tp.partition, hi-lo)
	what := "deleted by retention before they were committed"
	if g.truncated {
		what = "replaced after an unclean leader election truncated the log"
	}
	w.p.log.Error("skipping offsets Kafka no longer has (on_data_loss: skip); the commit covering them lists them as floe.skipped",
		"topic", tp.topic, "partition", tp.partition, "from", lo, "to", hi, "records", what, "resume", g.resume, "err", g.reason)
}

const batchRows = 16384

func (w *worker) buf(out *output, key []byte, values func() map[int]any) *partBuf {
	pb := out.parts[string(key)]
	if pb == nil {
		vals := values()
		pb = &partBuf{
			rb:     array.NewRecordBuilder(w.mem, out.info.ArrowSchema),
			w:      fileio.NewWriter(out.info, vals, w.p.fileOpts),
			values: vals,
		}
		out.parts[string(key)] = pb
	}
	return pb
}

// parse decodes a record into the decoder's row, or into the key
// decoder's row for a keyed pipeline's deletion.
func (w *worker) parse(r *kgo.Record, meta decode.RecordMeta, fold bool) (changeKind, error) {
	if w.changes == nil {
		return w.transform(changeRow, w.dec.Parse(r.Value, meta), &meta, fold)
	}
	value := r.Value
	if w.transcode != nil && value != nil {
		var err error
		if value, err = w.transcode.json(value); err != nil {
			return changeRow, err
		}
	}
	kind, obj, err := w.changes.read(r.Key, value)
	switch {
	case errors.As(err, new(*runEnding)):
		return kind, err
	case err != nil:
		return kind, &decode.DecodeError{Reason: err.Error()}
	case kind == changeDelete:
		return kind, w.keyDec.Parse(obj, meta)
	default:
		return w.transform(kind, w.dec.Parse(obj, meta), &meta, fold)
	}
}

// transform runs the pipeline's transform, if it has one, on a row the
// decoder parsed without error: the row is filtered out, or dropped as a
// duplicate, or its output computed, or the record is a dead letter with
// the reason. fold says that the main output takes the record: only then
// is it checked against (and added to) the dedup state, and a windowed
// pipeline's row folded into the open segment's windows (otherwise only
// checked).
func (w *worker) transform(kind changeKind, err error, meta *decode.RecordMeta, fold bool) (changeKind, error) {
	if err != nil || w.tr == nil {
		return kind, err
	}
	keep, err := w.tr.Keep()
	if err == nil && !keep {
		return changeFiltered, nil
	}
	if err == nil {
		err = w.tr.Compute()
	}
	if err == nil && w.win != nil && fold {
		var late bool
		if late, err = w.win.w.Prepare(meta.Topic, meta.Partition); late {
			w.late++
		}
	}
	// After the columns and the window's checks (max_lateness included): a
	// record that is a dead letter is not remembered.
	if err == nil && w.dd != nil && fold {
		var dup bool
		if dup, err = w.dd.check(w.tr, meta); err == nil && dup {
			return changeDuplicate, nil
		}
	}
	switch {
	case err == nil && w.win != nil && fold:
		err = w.win.w.Fold(meta.Topic, meta.Partition)
	case err == nil && w.win != nil:
		err = w.win.w.Check()
	}
	return kind, err
}

// write appends a record's row to an output of its route: the decoder's
// row (parsed last) for a decoded output, or the deleted key for a keyed
// one's deletion; the raw record with perr's message for a rejected one.
func (w *worker) write(out *output, m *decode.RecordMeta, value []byte, perr error, kind changeKind, now time.Time) error {
	var pb *partBuf
	switch {
	case out.route == routeDecoded && kind == changeDelete:
		d := out.del
		pb = out.parts[deletedPart]
		if pb == nil {
			pb = &partBuf{rb: array.NewRecordBuilder(w.mem, d.info.ArrowSchema), w: fileio.NewWriter(d.info, d.values, d.opts), values: d.values}
			out.parts[deletedPart] = pb
		}
		w.keyDec.Append(pb.rb)
	case out.route == routeDecoded && (kind.dropped() || w.win != nil):
		// Nothing to write (the windower folded a windowed pipeline's
		// row already).
		return nil
	case out.route == routeDecoded && w.tr != nil:
		part := out.part
		pb = w.buf(out, part.keyOf(w.tr), func() map[int]any { return part.values(w.tr) })
		w.tr.Append(pb.rb)
	case out.route == routeDecoded:
		part := out.part
		pb = w.buf(out, part.keyOf(w.dec), func() map[int]any { return part.values(w.dec) })
		w.dec.Append(pb.rb)
	case out.route == routeRejected:
		pb = w.buf(out, nil, func() map[int]any { return nil })
		out.dl.append(pb.rb, *m, value, perr.Error(), now)
	}
	pb.rows++
	if pb.rows >= batchRows {
		return w.writeBatch(pb)
	}
	return nil
}

func (w *worker) writeBatch(pb *partBuf) error {
	if pb.rows == 0 {
		return nil
	}
	rec := pb.rb.NewRecordBatch()
	defer rec.Release()
	pb.rows = 0
	if err := pb.w.Write(rec); err != nil {
		return fmt.Errorf("ingest: %w", err)
	}
	return nil
}

// flush seals the open segment: it writes buffered rows, hands over every
// writer, and reports the offset range each output's rows cover. A worker
// that failed hands its writers over with its error (for the pipeline to
// abort) and stays failed: its later segments could not be contiguous.
func (w *worker) flush() flushResult {
	res := flushResult{outs: make([]outputFlush, len(w.outs))}
	var eventTimes commit.Offsets
	if w.win != nil && w.err == nil {
		eventTimes, w.err = w.win.flush(w)
	}
	if w.dd != nil && w.err == nil {
		w.dd.flush(w)
	}
	for i := range w.outs {
		for _, pb := range w.outs[i].parts {
			if w.err != nil {
				break
			}
			w.err = w.writeBatch(pb)
		}
	}
	for i := range w.outs {
		out := &w.outs[i]
		for key, pb := range out.parts {
			res.outs[i].writers = append(res.outs[i].writers, pb.w)
			pb.rb.Release()
			delete(out.parts, key)
		}
	}
	if w.err != nil {
		res.err = w.err
		return res
	}
	for i := range w.outs {
		out := &w.outs[i]
		res.outs[i].seg = commit.Segment{From: commit.Offsets{}, To: commit.Offsets{}, Records: out.rows, Watermark: out.wm}
		if out.route == routeDecoded && len(eventTimes) > 0 {
			res.outs[i].seg.EventTimes = eventTimes
		}
		out.rows, out.wm = 0, time.Time{}
	}
	for tp, st := range w.tps {
		for i := range st.outs {
			ps, seg := &st.outs[i], &res.outs[i].seg
			if ps.segFrom < 0 {
				continue
			}
			seg.From.Set(tp.topic, tp.partition, ps.segFrom)
			seg.To.Set(tp.topic, tp.partition, ps.segTo)
			ps.floor, ps.segFrom = ps.segTo, -1
			for _, r := range ps.skipped {
				if seg.Skipped == nil {
					seg.Skipped = commit.Skipped{}
				}
				seg.Skipped.Add(tp.topic, tp.partition, r[0], r[1])
			}
			ps.skipped = nil
		}
	}
	res.samples, w.samples = w.samples, nil
	return res
}

func (w *worker) abort() {
	for i := range w.outs {
		out := &w.outs[i]
		for key, pb := range out.parts {
			pb.w.Abort()
			pb.rb.Release()
			delete(out.parts, key)
		}
	}
}

// windowOut writes a windowed pipeline's partial windows: at every flush,
// one file of one row, the encoded partials of the segment (read by the
// table writer's transform.Stage, never committed).
type windowOut struct {
	w    *transform.Windower
	file stateFile
}

// windowPart is the partBuf key of the partials file: no table partition
// key is empty.
const windowPart = "\x00windows"

func newWindowOut(wr *transform.Windower, table fileio.TableInfo) (*windowOut, error) {
	f, err := newStateFile(table, transform.PartialsSchema, transform.PartialsDir)
	if err != nil {
		return nil, err
	}
	return &windowOut{w: wr, file: f}, nil
}

// flush hands the segment's partials to the main output as a file, and
// returns the newest event time of each partition.
func (o *windowOut) flush(w *worker) (commit.Offsets, error) {
	blob, times, err := o.w.Flush()
	if err != nil || blob == nil {
		return times, err
	}
	w.outs[w.main].parts[windowPart] = o.file.part(w.mem, blob)
	return times, nil
}

func arrowSchema(sch *iceberg.Schema) (*arrow.Schema, error) {
	return table.SchemaToArrowSchema(sch, nil, true, false)
}
