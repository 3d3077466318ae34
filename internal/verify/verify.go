// Package verify is `floe verify`: the check that a windowed pipeline's
// table equals a batch recomputation over the same input ("Kappa equals
// Lambda"). It reads the pipeline's topics from where the pipeline started
// (the log start for start: earliest, else the offsets its first snapshot
// recorded) up to the offsets the table has committed, runs every record
// through the pipeline's own decoder and transform (so that a record the
// pipeline filtered out or dead-lettered is left out the same way), and
// computes every window of the events at once with window.Batch, a plain
// implementation of the window semantics that shares no state, no
// partials and no table with the streaming path. Then it compares the
// table, row by row: the same windows, each with the same end, event
// count and aggregates (float sums and averages within a relative 1e-9,
// since a sum's last bits depend on the order of its terms; approximate
// distinct counts exactly, since a HyperLogLog sketch of a set does not
// depend on the order it was built in, and besides that within its stated
// error of the exact count).
//
// It holds the events in memory and needs the topics to hold every record
// the pipeline consumed (retention or compaction that deleted some makes
// the batch differ).
package verify

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go/table"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floelake/floe/catalog"
	"github.com/floelake/floe/commit"
	"github.com/floelake/floe/ingest"
	"github.com/floelake/floe/ingest/decode"
	"github.com/floelake/floe/ingest/transform"
	"github.com/floelake/floe/ingest/transform/dedup"
	"github.com/floelake/floe/ingest/transform/window"
	"github.com/floelake/floe/internal/config"
)

// Options configure a verification.
type Options struct {
	Config   config.Config
	Pipeline string
	// MaxShown bounds the differences printed (all are counted).
	MaxShown int
}

// Result is what a verification found.
type Result struct {
	Records, Filtered, Duplicates, DeadLetters, Events int64
	Windows, TableRows                                 int
	// Missing are windows the table lacks, Extra rows the batch has no
	// window for, Different windows whose values differ.
	Missing, Extra, Different int
	// DistinctError is the largest relative error of an approximate
	// distinct count against the exact count (0 without one).
	DistinctError float64
	// DistinctBound is the error the sketches' precision states (three
	// standard errors).
	DistinctBound float64
}

// OK reports whether the table equals the batch.
func (r Result) OK() bool { return r.Missing == 0 && r.Extra == 0 && r.Different == 0 }

// Run verifies the pipeline and prints what it finds to out.
func Run(ctx context.Context, o Options, out io.Writer) (Result, error) {
	var res Result
	var pc *ingest.PipelineConfig
	for i := range o.Config.Pipelines {
		if o.Config.Pipelines[i].Name == o.Pipeline {
			pc = &o.Config.Pipelines[i]
		}
	}
	if pc == nil {
		var names []string
		for _, p := range o.Config.Pipelines {
			names = append(names, p.Name)
		}
		return res, fmt.Errorf("verify: no pipeline %q (the configuration has %s)", o.Pipeline, strings.Join(names, ", "))
	}
	if !pc.Windowed() {
		return res, fmt.Errorf("verify: pipeline %q has no window (transform.window): floe verify checks windowed pipelines against a batch recomputation", o.Pipeline)
	}
	prog, err := pc.CompileTransform()
	if err != nil {
		return res, err
	}
	cat, err := catalog.Open(ctx, o.Config.Catalog, o.Config.Storage, o.Config.Node.DataDir)
	if err != nil {
		return res, err
	}
	defer cat.Close()
	tbl, err := cat.LoadTable(ctx, catalog.Ident(pc.Table))
	if err != nil {
		return res, fmt.Errorf("verify: load %s: %w", pc.Table, err)
	}
	offsets, _, found, err := commit.TableOffsets(tbl, pc.Name)
	if err != nil {
		return res, err
	}
	if !found {
		return res, fmt.Errorf("verify: %s has no committed offsets of pipeline %s yet", pc.Table, pc.Name)
	}
	fmt.Fprintf(out, "floe verify %s: table %s, snapshot %d, committed offsets %s\n", pc.Name, pc.Table, tbl.CurrentSnapshot().SnapshotID, offsets.Encode())

	starts, cut := startOffsets(tbl, *pc)
	if cut {
		fmt.Fprintf(out, "note: the table's history was expired; reading from the offsets of its oldest snapshot left, %s\n", starts.Encode())
	}
	if skipped := tbl.CurrentSnapshot().Summary.Properties[commit.PropSkipped]; skipped != "" {
		fmt.Fprintf(out, "note: the pipeline skipped offsets Kafka no longer had (floe.skipped %s); verify reads what the topics hold\n", skipped)
	}
	events, err := readEvents(ctx, o.Config.Kafka, *pc, prog, starts, offsets, &res)
	if err != nil {
		return res, err
	}
	wc := prog.WindowConfig()
	batch, err := window.Batch(wc.Spec, wc.Aggs, events)
	if err != nil {
		return res, fmt.Errorf("verify: the batch computation: %w", err)
	}
	res.Windows = len(batch)
	exact := exactDistincts(wc, events, batch)
	fmt.Fprintf(out, "read %d records: %d events, %d filtered out, %d duplicates, %d dead letters; the batch computation has %d windows\n",
		res.Records, res.Events, res.Filtered, res.Duplicates, res.DeadLetters, res.Windows)

	rows, err := readTable(ctx, tbl, prog)
	if err != nil {
		return res, err
	}
	res.TableRows = len(rows)
	shown := 0
	show := func(format string, args ...any) {
		if shown < cmp.Or(o.MaxShown, 20) {
			fmt.Fprintf(out, "  "+format+"\n", args...)
		}
		shown++
	}
	seen := map[window.WindowKey]bool{}
	names := prog.AggregateColumns()
	for i, w := range batch {
		k := window.WindowKey{Group: w.Group, Start: w.Start}
		seen[k] = true
		r, ok := rows[k]
		if !ok {
			res.Missing++
			show("missing: window %s", describe(prog, w.Group, w.Start))
			continue
		}
		var diffs []string
		if r.end != w.End {
			diffs = append(diffs, fmt.Sprintf("window_end %s, batch %s", micros(r.end), micros(w.End)))
		}
		if r.events != w.Events {
			diffs = append(diffs, fmt.Sprintf("events %d, batch %d", r.events, w.Events))
		}
		for a := range wc.Aggs {
			want := wc.Aggs.Result(w.Accs, a)
			if !same(wc.Aggs[a], r.aggs[a], want) {
				diffs = append(diffs, fmt.Sprintf("%s %s, batch %s", names[a], show1(r.aggs[a]), show1(want)))
			}
			if wc.Aggs[a].Func == window.ApproxDistinct && !want.Null {
				// The sketch's stated error is for large counts; a small one
				// is exact but for hash collisions, which one of a handful
				// of values makes a large relative error.
				if n := exact[i][a]; n >= minDistinctForError {
					res.DistinctError = max(res.DistinctError, math.Abs(float64(want.Int)-float64(n))/float64(n))
					res.DistinctBound = max(res.DistinctBound, 3*window.RelativeError(precision(wc.Aggs[a])))
				}
			}
		}
		if len(diffs) > 0 {
			res.Different++
			show("different: window %s: %s", describe(prog, w.Group, w.Start), strings.Join(diffs, "; "))
		}
	}
	var extra []window.WindowKey
	for k := range rows {
		if !seen[k] {
			extra = append(extra, k)
		}
	}
	sort.Slice(extra, func(i, j int) bool {
		return extra[i].Group < extra[j].Group || (extra[i].Group == extra[j].Group && extra[i].Start < extra[j].Start)
	})
	for _, k := range extra {
		res.Extra++
		show("extra: the table has window %s, the batch has not", describe(prog, k.Group, k.Start))
	}
	if shown > cmp.Or(o.MaxShown, 20) {
		fmt.Fprintf(out, "  (%d more differences not shown)\n", shown-cmp.Or(o.MaxShown, 20))
	}
	fmt.Fprintf(out, "table: %d rows; %d windows missing, %d extra, %d different\n", res.TableRows, res.Missing, res.Extra, res.Different)
	if res.DistinctBound > 0 {
		fmt.Fprintf(out, "approximate distinct counts of %d or more values: largest error %.2f%% of the exact count (three standard errors of the sketches: %.2f%%)\n",
			minDistinctForError, 100*res.DistinctError, 100*res.DistinctBound)
	}
	if res.OK() {
		fmt.Fprintln(out, "OK: the table equals the batch recomputation")
	} else {
		fmt.Fprintln(out, "FAILED: the table differs from the batch recomputation")
	}
	return res, nil
}

// minDistinctForError is the smallest exact distinct count whose sketch
// error verify reports.
const minDistinctForError = 1000

func precision(a window.AggSpec) uint8 {
	if a.Precision == 0 {
		return 14
	}
	return a.Precision
}

// readEvents reads every record of the pipeline's topics from starts (the
// log start where it has none) below offsets, and runs it through the
// pipeline's decoder and transform.
func readEvents(ctx context.Context, kc ingest.KafkaConfig, pc ingest.PipelineConfig, prog *transform.Program,
	starts, offsets commit.Offsets, res *Result,
) ([]window.Event, error) {
	in, err := pc.DeclaredSchema()
	if err != nil {
		return nil, err
	}
	// Avro and protobuf records decode into the declared schema through
	// the schema registry, into the row the transform reads.
	dec, rows, err := ingest.NewRowDecoder(pc, in)
	if err != nil {
		return nil, err
	}
	outSchema, err := prog.OutputSchema(nil)
	if err != nil {
		return nil, err
	}
	run, err := prog.NewRunner(rows, outSchema)
	if err != nil {
		return nil, err
	}
	win := prog.NewWindower(run)
	parts := map[string]map[int32]kgo.Offset{}
	left := map[string]map[int32]int64{}
	for topic, ps := range offsets {
		for p, next := range ps {
			from := kgo.NewOffset().AtStart()
			if o, ok := starts.Get(topic, p); ok {
				if o >= next {
					continue
				}
				from = kgo.NewOffset().At(o)
			}
			if next <= 0 {
				continue
			}
			if parts[topic] == nil {
				parts[topic], left[topic] = map[int32]kgo.Offset{}, map[int32]int64{}
			}
			parts[topic][p] = from
			left[topic][p] = next
		}
	}
	if len(parts) == 0 {
		return nil, nil
	}
	opts, err := ingest.ClientOpts(kc)
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(append(opts, kgo.ConsumePartitions(parts), kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxBytes(int32(min(int64(kc.FetchMaxBytes), math.MaxInt32))))...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	pending := 0
	for _, ps := range left {
		pending += len(ps)
	}
	done := func(topic string, p int32) {
		if _, ok := left[topic][p]; ok {
			delete(left[topic], p)
			pending--
		}
	}
	var events []window.Event
	dd := newDedupRef(prog)
	var readErr error
	read := func(r *kgo.Record) {
		if readErr != nil {
			return
		}
		res.Records++
		meta := decode.RecordMeta{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Timestamp: r.Timestamp, Key: r.Key}
		var de *decode.DecodeError
		if err := dec.Parse(r.Value, meta); errors.As(err, &de) {
			res.DeadLetters++
		} else if err != nil {
			// The registry cannot be used: the pipeline would pause or
			// stop on this record, not make it a dead letter.
			readErr = fmt.Errorf("verify: %s/%d at offset %d: %w", r.Topic, r.Partition, r.Offset, err)
		} else if keep, err := run.Keep(); err != nil {
			res.DeadLetters++
		} else if !keep {
			res.Filtered++
		} else if err := run.Compute(); err != nil {
			res.DeadLetters++
		} else if _, err := win.Prepare(r.Topic, r.Partition); err != nil {
			res.DeadLetters++ // max_lateness included
		} else if dup, err := dd.duplicate(run, r); err != nil {
			res.DeadLetters++
		} else if dup {
			res.Duplicates++
		} else {
			ev := win.Event(r.Topic, r.Partition)
			events = append(events, ev)
			res.Events++
		}
	}
	lastProgress := time.Now()
	for pending > 0 {
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		fs := cl.PollFetches(pctx)
		cancel()
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				ferr = fmt.Errorf("verify: read %s/%d: %w", t, p, err)
			}
		})
		if ferr != nil {
			return nil, ferr
		}
		progress := false
		fs.EachPartition(func(fp kgo.FetchTopicPartition) {
			end, ok := left[fp.Topic][fp.Partition]
			if !ok || fp.Err != nil {
				return
			}
			for _, r := range fp.Records {
				if r.Offset >= end {
					done(fp.Topic, fp.Partition)
					break
				}
				progress = true
				read(r)
				if r.Offset+1 >= end {
					done(fp.Topic, fp.Partition)
					break
				}
			}
			if len(fp.Records) == 0 && fp.HighWatermark >= end {
				// Nothing left below end to read: the offsets between the
				// last record and end hold no record (transaction markers,
				// aborted or compacted-away records).
				done(fp.Topic, fp.Partition)
				progress = true
			}
		})
		if readErr != nil {
			return nil, readErr
		}
		if progress {
			lastProgress = time.Now()
		} else if time.Since(lastProgress) > time.Minute {
			var missing []string
			for t, ps := range left {
				for p, end := range ps {
					missing = append(missing, fmt.Sprintf("%s/%d (up to offset %d)", t, p, end))
				}
			}
			slices.Sort(missing)
			return nil, fmt.Errorf("verify: no records for a minute from %s: the topics no longer hold every committed record?",
				strings.Join(missing, ", "))
		}
	}
	return events, nil
}

// startOffsets are where the pipeline started reading its topics: the
// floe.offsets of the oldest snapshot of the table's history carrying the
// pipeline's (the one that recorded them, unless expiry removed it), or
// nil (each partition's log start) for a pipeline that starts at
// earliest. The second result says whether the history may be cut.
func startOffsets(tbl *table.Table, pc ingest.PipelineConfig) (commit.Offsets, bool) {
	if pc.Start == "" || pc.Start == "earliest" {
		return nil, false
	}
	meta := tbl.Metadata()
	var oldest commit.Offsets
	cut := false
	for snap := meta.CurrentSnapshot(); snap != nil; {
		if snap.Summary != nil && snap.Summary.Properties[commit.PropPipeline] == pc.Name {
			if off, err := commit.ParseOffsets(snap.Summary.Properties[commit.PropOffsets]); err == nil {
				oldest = off
			}
		}
		if snap.ParentSnapshotID == nil {
			break
		}
		parent := meta.SnapshotByID(*snap.ParentSnapshotID)
		if parent == nil {
			cut = true
			break
		}
		snap = parent
	}
	return oldest, cut
}

// tableRow is one window row of the table.
type tableRow struct {
	end, events int64
	aggs        []window.Value
}

// readTable reads the window table's rows by window.
func readTable(ctx context.Context, tbl *table.Table, prog *transform.Program) (map[window.WindowKey]tableRow, error) {
	rows := map[window.WindowKey]tableRow{}
	if tbl.CurrentSnapshot() == nil {
		return rows, nil
	}
	_, recs, err := tbl.Scan().ToArrowRecords(ctx)
	if err != nil {
		return nil, fmt.Errorf("verify: read %s: %w", tbl.Identifier(), err)
	}
	groupNames, aggNames := prog.GroupColumns(), prog.AggregateColumns()
	var key []byte
	for rec, err := range recs {
		if err != nil {
			return nil, fmt.Errorf("verify: read %s: %w", tbl.Identifier(), err)
		}
		col := func(name string) (arrow.Array, error) {
			i := rec.Schema().FieldIndices(name)
			if len(i) == 0 {
				return nil, fmt.Errorf("verify: the table has no column %q", name)
			}
			return rec.Column(i[0]), nil
		}
		var groups, aggs []arrow.Array
		for _, n := range groupNames {
			c, err := col(n)
			if err != nil {
				return nil, err
			}
			groups = append(groups, c)
		}
		for _, n := range aggNames {
			c, err := col(n)
			if err != nil {
				return nil, err
			}
			aggs = append(aggs, c)
		}
		sc, err := col(transform.ColWindowStart)
		if err != nil {
			return nil, err
		}
		ec, err := col(transform.ColWindowEnd)
		if err != nil {
			return nil, err
		}
		nc, err := col(transform.ColEvents)
		if err != nil {
			return nil, err
		}
		starts, ok1 := sc.(*array.Timestamp)
		ends, ok2 := ec.(*array.Timestamp)
		counts, ok3 := nc.(*array.Int64)
		if !ok1 || !ok2 || !ok3 {
			return nil, errors.New("verify: the table's window_start, window_end and events columns are not a window table's")
		}
		for i := range int(rec.NumRows()) {
			if key, err = prog.GroupKey(key[:0], groups, i); err != nil {
				return nil, err
			}
			k := window.WindowKey{Group: string(key), Start: int64(starts.Value(i))}
			if _, dup := rows[k]; dup {
				return nil, fmt.Errorf("verify: the table has two rows of window %s", describe(prog, k.Group, k.Start))
			}
			r := tableRow{end: int64(ends.Value(i)), events: counts.Value(i)}
			for _, a := range aggs {
				r.aggs = append(r.aggs, valueOf(a, i))
			}
			rows[k] = r
		}
		rec.Release()
	}
	return rows, nil
}

// valueOf reads row i of an aggregate column as a window.Value.
func valueOf(a arrow.Array, i int) window.Value {
	if a.IsNull(i) {
		return window.Value{Null: true}
	}
	switch a := a.(type) {
	case *array.Int64:
		return window.Value{Int: a.Value(i)}
	case *array.Int32:
		return window.Value{Int: int64(a.Value(i))}
	case *array.Boolean:
		if a.Value(i) {
			return window.Value{Int: 1}
		}
		return window.Value{}
	case *array.Date32:
		return window.Value{Int: int64(a.Value(i))}
	case *array.Time64:
		return window.Value{Int: int64(a.Value(i))}
	case *array.Timestamp:
		return window.Value{Int: int64(a.Value(i))}
	case *array.Float64:
		return window.Value{Float: a.Value(i)}
	case *array.Float32:
		return window.Value{Float: float64(a.Value(i))}
	case *array.String:
		return window.Value{Bytes: []byte(a.Value(i))}
	case *array.Binary:
		return window.Value{Bytes: a.Value(i)}
	case *array.FixedSizeBinary:
		return window.Value{Bytes: a.Value(i)}
	}
	return window.Value{Null: true}
}

// same compares a table's aggregate with the batch's: exactly, but for the
// float sums and averages, within a relative 1e-9.
func same(spec window.AggSpec, got, want window.Value) bool {
	if got.Null || want.Null {
		return got.Null == want.Null
	}
	if spec.ResultKind() == window.KindFloat {
		if got.Float == want.Float || (math.IsNaN(got.Float) && math.IsNaN(want.Float)) {
			return true
		}
		return math.Abs(got.Float-want.Float) <= 1e-9*math.Max(math.Abs(got.Float), math.Abs(want.Float))
	}
	return got.Int == want.Int && string(got.Bytes) == string(want.Bytes)
}

func show1(v window.Value) string {
	switch {
	case v.Null:
		return "null"
	case v.Bytes != nil:
		return fmt.Sprintf("%q", v.Bytes)
	case v.Float != 0:
		return fmt.Sprint(v.Float)
	}
	return fmt.Sprint(v.Int)
}

func micros(us int64) string { return time.UnixMicro(us).UTC().Format(time.RFC3339Nano) }

// describe names a window by its group values and start.
func describe(prog *transform.Program, group string, start int64) string {
	return fmt.Sprintf("%s=%s %s=%s", strings.Join(prog.GroupColumns(), ","), prog.DescribeGroup(group), transform.ColWindowStart, micros(start))
}

// exactDistincts counts, per batch window and approximate distinct
// aggregate, the exact number of distinct values.
func exactDistincts(wc window.Config, events []window.Event, batch []window.Window) [][]int {
	var approx []int
	for a, s := range wc.Aggs {
		if s.Func == window.ApproxDistinct {
			approx = append(approx, a)
		}
	}
	out := make([][]int, len(batch))
	if len(approx) == 0 {
		return out
	}
	index := map[window.WindowKey]int{}
	byGroup := map[string][]int{}
	for i, w := range batch {
		index[window.WindowKey{Group: w.Group, Start: w.Start}] = i
		byGroup[w.Group] = append(byGroup[w.Group], i)
	}
	sets := make([][]map[string]bool, len(batch))
	add := func(i int, ev window.Event) {
		if sets[i] == nil {
			sets[i] = make([]map[string]bool, len(wc.Aggs))
		}
		for _, a := range approx {
			v := ev.Vals[a]
			if v.Null {
				continue
			}
			if sets[i][a] == nil {
				sets[i][a] = map[string]bool{}
			}
			sets[i][a][distinctKey(wc.Aggs[a], v)] = true
		}
	}
	var starts []int64
	for _, ev := range events {
		if wc.Spec.Kind == window.Session {
			ws := byGroup[ev.Group]
			j := sort.Search(len(ws), func(k int) bool { return batch[ws[k]].End > ev.Ts })
			if j < len(ws) && batch[ws[j]].Start <= ev.Ts {
				add(ws[j], ev)
			}
			continue
		}
		starts = wc.Spec.Starts(starts[:0], ev.Ts)
		for _, st := range starts {
			if i, ok := index[window.WindowKey{Group: ev.Group, Start: st}]; ok {
				add(i, ev)
			}
		}
	}
	for i := range out {
		out[i] = make([]int, len(wc.Aggs))
		for _, a := range approx {
			if sets[i] != nil {
				out[i][a] = len(sets[i][a])
			}
		}
	}
	return out
}

// distinctKey is what makes two values one for a distinct count: their
// bytes, or the bits of their number (-0 as 0, every NaN as one).
func distinctKey(s window.AggSpec, v window.Value) string {
	switch s.In {
	case window.KindBytes:
		return string(v.Bytes)
	case window.KindFloat:
		f := v.Float
		if f == 0 {
			f = 0
		}
		if math.IsNaN(f) {
			return "NaN"
		}
		return fmt.Sprint(math.Float64bits(f))
	}
	return fmt.Sprint(v.Int)
}

// dedupRef is the dedup rule as the batch computation applies it: per
// Kafka partition, a clock (the newest Kafka timestamp so far) and the
// clock at which each key was last kept; a record is a duplicate when its
// key was kept at a clock within the horizon of the clock now. It shares
// only the key's hash with the streaming path.
type dedupRef struct {
	horizon int64
	on      bool
	parts   map[string]*refPart
}

type refPart struct {
	clock int64
	kept  map[dedup.Key]int64
}

func newDedupRef(prog *transform.Program) *dedupRef {
	h, ok := prog.Dedups()
	return &dedupRef{horizon: h, on: ok, parts: map[string]*refPart{}}
}

func (d *dedupRef) duplicate(run *transform.Runner, r *kgo.Record) (bool, error) {
	if !d.on {
		return false, nil
	}
	k, err := run.DedupKey()
	if err != nil {
		return false, err
	}
	id := transform.PartitionID(r.Topic, r.Partition)
	p := d.parts[id]
	if p == nil {
		p = &refPart{clock: math.MinInt64, kept: map[dedup.Key]int64{}}
		d.parts[id] = p
	}
	p.clock = max(p.clock, r.Timestamp.UnixMicro())
	if at, ok := p.kept[k]; ok && p.clock-at <= d.horizon {
		return true, nil
	}
	p.kept[k] = p.clock
	return false, nil
}
