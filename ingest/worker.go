package ingest

import (
	"context"
	"fmt"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floelake/floe/commit"
	"github.com/floelake/floe/ingest/decode"
	"github.com/floelake/floe/internal/fileio"
)

// Table slots: every pipeline writes a main table and a dead-letter table.
const (
	tMain = 0
	tDLQ  = 1
)

type topicPartition struct {
	topic     string
	partition int32
}

// tpState tracks one Kafka partition's progress for both tables. floor is
// the next offset a table expects (-1: the table has none yet and takes
// every record); segFrom/segTo is the range the open segment covers.
type tpState struct {
	floor   [2]int64
	segFrom [2]int64
	segTo   [2]int64
	// pos is the offset consumption was positioned at (-1: unknown).
	pos int64
	// skipped are the ranges [from, to) a table moved past without their
	// records (on_data_loss: skip), for the next segment that covers the
	// partition.
	skipped [2][][2]int64
}

// next is the offset table t takes next: records below it are its already
// (or, after a truncated log, were replaced), -1 if it takes everything.
func (st *tpState) next(t int) int64 {
	if st.segFrom[t] >= 0 {
		return st.segTo[t]
	}
	return st.floor[t]
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

// flushResult is a worker's share of a seal: the writers holding its rows
// (to be closed off the worker's goroutine) and its offset ranges. Whoever
// holds a flushResult owns its writers: it closes or aborts every one.
type flushResult struct {
	writers [2][]segmentWriter
	seg     [2]commit.Segment
	samples []time.Time
	err     error
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

type tableOut struct {
	info  fileio.TableInfo
	parts map[string]*partBuf
	part  *partitioner
}

// worker owns a disjoint set of Kafka partitions: it decodes their records,
// routes each row to its table and partition, and writes Parquet files. It
// never blocks on the catalog: a flush hands its open writers to the
// pipeline, which closes and commits them while the worker goes on.
type worker struct {
	p      *Pipeline
	in     chan workItem
	dec    *decode.JSONDecoder
	dl     *deadLetterRow
	tables [2]*tableOut
	tps    map[topicPartition]*tpState
	floors [2]commit.Offsets
	// pos is where consumption of each partition was positioned; a table's
	// first segment may claim to start at its floor only if pos <= floor.
	pos map[topicPartition]int64
	mem memory.Allocator

	// samples are the Kafka timestamps of every sampleEvery-th record in the
	// open segment, for commit-latency (freshness) measurement.
	samples []time.Time
	n       int64
	// rows and newest Kafka timestamp per table in the open segment.
	rows [2]int64
	wm   [2]time.Time
	err  error
}

const sampleEvery = 64

func newWorker(p *Pipeline, infos [2]fileio.TableInfo, floors [2]commit.Offsets, pos map[topicPartition]int64) (*worker, error) {
	dec, err := decode.NewJSONDecoder(infos[tMain].Schema)
	if err != nil {
		return nil, err
	}
	dl, err := newDeadLetterRow(infos[tDLQ].ArrowSchema)
	if err != nil {
		return nil, err
	}
	w := &worker{
		p: p, in: make(chan workItem, workerQueue), dec: dec, dl: dl,
		tps: map[topicPartition]*tpState{}, floors: floors, pos: pos, mem: memory.DefaultAllocator,
	}
	for i, info := range infos {
		part, err := newPartitioner(info.Spec, info.Schema)
		if err != nil {
			return nil, err
		}
		w.tables[i] = &tableOut{info: info, parts: map[string]*partBuf{}, part: part}
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
		st = &tpState{segFrom: [2]int64{-1, -1}, pos: -1}
		if p, ok := w.pos[tp]; ok {
			st.pos = p
		}
		for t := range 2 {
			st.floor[t] = -1
			if off, ok := w.floors[t].Get(tp.topic, tp.partition); ok {
				st.floor[t] = off
			}
		}
		w.tps[tp] = st
	}
	return st
}

func (w *worker) process(tp topicPartition, recs []*kgo.Record) error {
	st := w.state(tp)
	now := time.Now()
	var good, bad, bytes int64
	for _, r := range recs {
		o := r.Offset
		nextMain, nextDLQ := st.next(tMain), st.next(tDLQ)
		want := [2]bool{nextMain < 0 || o >= nextMain, nextDLQ < 0 || o >= nextDLQ}
		if !want[tMain] && !want[tDLQ] {
			continue // taken by both tables already
		}
		bytes += int64(len(r.Value) + len(r.Key))
		meta := decode.RecordMeta{Topic: tp.topic, Partition: tp.partition, Offset: o, Timestamp: r.Timestamp, Key: r.Key}
		if err := w.dec.Parse(r.Value, meta); err == nil {
			if want[tMain] {
				if err := w.appendMain(); err != nil {
					return err
				}
				w.note(tMain, r.Timestamp)
				good++
			}
		} else if want[tDLQ] {
			if err := w.appendDLQ(meta, r.Value, err.Error(), now); err != nil {
				return err
			}
			w.note(tDLQ, r.Timestamp)
			bad++
		}
		for t := range 2 {
			if want[t] {
				if st.segFrom[t] < 0 {
					// The segment starts at the table's floor when the
					// consumer was positioned at or before it: offsets
					// between the floor and this record are not in the
					// log (control records, compaction). Otherwise it
					// starts at this record, and the committer rejects
					// the gap instead of hiding it.
					st.segFrom[t] = o
					if st.floor[t] >= 0 && st.pos >= 0 && st.pos <= st.floor[t] {
						st.segFrom[t] = st.floor[t]
					}
				}
				st.segTo[t] = o + 1
			}
		}
		w.n++
		if w.n%sampleEvery == 0 {
			w.samples = append(w.samples, r.Timestamp)
		}
	}
	w.p.stats.recordsIn.Add(good + bad)
	w.p.stats.deadLetters.Add(bad)
	w.p.stats.bytesIn.Add(bytes)
	w.p.metrics().RecordsConsumed(w.p.opts.Pipeline.Name, good+bad, bad, bytes)
	return nil
}

// skip moves a partition past offsets Kafka no longer has, per table, and
// records what each table skipped so its next segment says so:
//
//   - retention deleted [next, resume) before floe read it: the table's
//     segment covers those offsets with no records, so its offsets stay
//     contiguous;
//   - the log was truncated to resume below the table's next offset: the
//     records Kafka now has at [resume, next) are not the ones the table
//     took there, and cannot be taken (their offsets are taken): they are
//     dropped as they arrive (process takes nothing below next).
//
// The skipped offsets are counted in floe_ingest_skipped_records_total and
// logged at error level.
func (w *worker) skip(tp topicPartition, g logGap) {
	st := w.state(tp)
	lo, hi := int64(-1), int64(-1)
	for t := range 2 {
		next := st.next(t)
		var from, to int64
		switch {
		case next < 0:
			continue // the table takes whatever comes
		case !g.truncated && next < g.resume:
			from, to = next, g.resume
			if st.segFrom[t] < 0 {
				st.segFrom[t] = next
			}
			st.segTo[t] = g.resume
		case g.truncated && next > g.resume:
			from, to = g.resume, next
		default:
			continue
		}
		st.skipped[t] = append(st.skipped[t], [2]int64{from, to})
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

func (w *worker) note(t int, ts time.Time) {
	w.rows[t]++
	if ts.After(w.wm[t]) {
		w.wm[t] = ts
	}
}

const batchRows = 16384

func (w *worker) buf(t int, key []byte, values func() map[int]any) *partBuf {
	out := w.tables[t]
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

func (w *worker) appendMain() error {
	part := w.tables[tMain].part
	pb := w.buf(tMain, part.keyOf(w.dec), func() map[int]any { return part.values(w.dec) })
	w.dec.Append(pb.rb)
	pb.rows++
	if pb.rows >= batchRows {
		return w.writeBatch(pb)
	}
	return nil
}

func (w *worker) appendDLQ(m decode.RecordMeta, value []byte, reason string, now time.Time) error {
	pb := w.buf(tDLQ, nil, func() map[int]any { return nil })
	w.dl.append(pb.rb, m, value, reason, now)
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
// writer, and reports the offset range each table's rows cover. A worker
// that failed hands its writers over with its error (for the pipeline to
// abort) and stays failed: its later segments could not be contiguous.
func (w *worker) flush() flushResult {
	res := flushResult{}
	for _, out := range w.tables {
		for _, pb := range out.parts {
			if w.err != nil {
				break
			}
			w.err = w.writeBatch(pb)
		}
	}
	for t, out := range w.tables {
		for key, pb := range out.parts {
			res.writers[t] = append(res.writers[t], pb.w)
			pb.rb.Release()
			delete(out.parts, key)
		}
	}
	if w.err != nil {
		res.err = w.err
		return res
	}
	for t := range w.tables {
		res.seg[t] = commit.Segment{From: commit.Offsets{}, To: commit.Offsets{}, Records: w.rows[t], Watermark: w.wm[t]}
		w.rows[t], w.wm[t] = 0, time.Time{}
	}
	for tp, st := range w.tps {
		for t := range 2 {
			if st.segFrom[t] < 0 {
				continue
			}
			res.seg[t].From.Set(tp.topic, tp.partition, st.segFrom[t])
			res.seg[t].To.Set(tp.topic, tp.partition, st.segTo[t])
			st.floor[t], st.segFrom[t] = st.segTo[t], -1
			for _, r := range st.skipped[t] {
				if res.seg[t].Skipped == nil {
					res.seg[t].Skipped = commit.Skipped{}
				}
				res.seg[t].Skipped.Add(tp.topic, tp.partition, r[0], r[1])
			}
			st.skipped[t] = nil
		}
	}
	res.samples, w.samples = w.samples, nil
	return res
}

func (w *worker) abort() {
	for _, out := range w.tables {
		for key, pb := range out.parts {
			pb.w.Abort()
			pb.rb.Release()
			delete(out.parts, key)
		}
	}
}
