package ingest

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floelake/floe/commit"
	"github.com/floelake/floe/ingest/transform"
	"github.com/floelake/floe/ingest/transform/window"
	"github.com/floelake/floe/internal/conf"
	"github.com/floelake/floe/internal/metrics"
)

func records(from, to int64) []*kgo.Record {
	var out []*kgo.Record
	for o := from; o < to; o++ {
		out = append(out, &kgo.Record{Offset: o, Value: []byte(fmt.Sprintf(`{"id": %d}`, o)), Timestamp: time.UnixMilli(o)})
	}
	return out
}

// roleIndex is the position of the output of role in outs.
func roleIndex(t *testing.T, outs []Output, role string) int {
	t.Helper()
	for i, o := range outs {
		if o.Role == role {
			return i
		}
	}
	t.Fatalf("no %s output", role)
	return -1
}

// TestWorkerSkipsLogGaps: a worker told that a partition's log resumes
// elsewhere keeps each output's offsets contiguous and lists what it skipped
// in the segment that covers the partition.
func TestWorkerSkipsLogGaps(t *testing.T) {
	e := newEnv(t)
	p := e.pipeline(time.Second)
	m := metrics.New()
	p.opts.Metrics = m
	skippedCount := func() float64 { return m.Sum("floe_ingest_skipped_records_total", "topic", "events", "partition", "0") }
	pr, err := p.prepare(context.Background(), context.Background())
	require.NoError(t, err)
	pr.adm.Close()
	tp := topicPartition{"events", 0}

	for _, tc := range []struct {
		name      string
		gap       logGap
		after     []*kgo.Record
		wantTo    int64
		records   int64
		skipped   [][2]int64
		skipCount float64
	}{
		// Retention deleted 15..19 before floe read them: the segment
		// covers them with no records.
		{"retention", logGap{resume: 20}, records(20, 22), 22, 5 + 2, [][2]int64{{15, 20}}, 5},
		// The log was cut back to 12 after floe read up to 15: what Kafka
		// now has at 12..14 is not what floe took there, and is dropped.
		{"truncated", logGap{resume: 12, truncated: true}, records(12, 17), 17, 5 + 2, [][2]int64{{12, 15}}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			floors := []commit.Offsets{{"events": {0: 10}}, {"events": {0: 10}}}
			w, err := newWorker(p, outputSpecs(pr.outs, pr.infos, floors), runStart{pos: map[topicPartition]int64{tp: 10}})
			require.NoError(t, err)
			require.NoError(t, w.process(tp, records(10, 15)))
			before := skippedCount()
			w.skip(tp, tc.gap)
			require.NoError(t, w.process(tp, tc.after))
			res := w.flush()
			require.NoError(t, res.err)
			defer abortSeal(seal{results: []flushResult{res}})
			main := roleIndex(t, pr.outs, RoleMain)
			require.Len(t, res.outs, 2)
			for _, o := range res.outs {
				seg := o.seg
				require.Equal(t, commit.Offsets{"events": {0: 10}}, seg.From)
				require.Equal(t, commit.Offsets{"events": {0: tc.wantTo}}, seg.To)
				require.Equal(t, commit.Skipped{"events": {0: tc.skipped}}, seg.Skipped)
			}
			require.Equal(t, tc.records, res.outs[main].seg.Records)
			require.Equal(t, tc.skipCount, skippedCount()-before)

			// The next segment starts where this one ended and skips nothing.
			require.NoError(t, w.process(tp, records(tc.wantTo, tc.wantTo+1)))
			next := w.flush()
			defer abortSeal(seal{results: []flushResult{next}})
			require.Equal(t, commit.Offsets{"events": {0: tc.wantTo}}, next.outs[main].seg.From)
			require.Empty(t, next.outs[main].seg.Skipped)
		})
	}
}

// buffered returns the int64 column col of the rows an output holds in its
// partition buffers (not yet written to a file).
func buffered(t *testing.T, out *output, col string) []int64 {
	t.Helper()
	var got []int64
	for _, pb := range out.parts {
		idx := pb.rb.Schema().FieldIndices(col)
		require.Len(t, idx, 1, "column %s", col)
		b := pb.rb.Field(idx[0]).(*array.Int64Builder)
		for i := range b.Len() {
			got = append(got, b.Value(i))
		}
	}
	slices.Sort(got)
	return got
}

// mixed returns records at offsets [from, to); those at the offsets in bad
// do not decode.
func mixed(from, to int64, bad ...int64) []*kgo.Record {
	recs := records(from, to)
	for _, r := range recs {
		if slices.Contains(bad, r.Offset) {
			r.Value = []byte("not json")
		}
	}
	return recs
}

// TestWorkerWritesEachRecordOnceToItsOutputs: each output takes a
// partition's records from its own floor. A record is written once, to
// the outputs of its route (a record that decodes to the main output, one
// that does not to every dead-letter output) that do not have it yet, never
// again when it is consumed a second time, and each output's segment
// covers the offsets from its floor whether it took a row there or not.
func TestWorkerWritesEachRecordOnceToItsOutputs(t *testing.T) {
	e := newEnv(t)
	p := e.pipeline(time.Second)
	pr, err := p.prepare(context.Background(), context.Background())
	require.NoError(t, err)
	pr.adm.Close()
	tp := topicPartition{"events", 0}
	mainOut := pr.outs[roleIndex(t, pr.outs, RoleMain)]
	dlOut := pr.outs[roleIndex(t, pr.outs, RoleDeadLetter)]
	mainInfo := pr.infos[roleIndex(t, pr.outs, RoleMain)]
	dlInfo := pr.infos[roleIndex(t, pr.outs, RoleDeadLetter)]
	// A second dead-letter output (a table of its own, floors of its own)
	// shows that nothing is tied to two outputs.
	dl2 := Output{Role: RoleDeadLetter, Table: "ns.events_dlq2"}

	type want struct {
		offsets  []int64 // the rows written, by offset
		from, to int64   // the segment's range
	}
	bad := []int64{11, 14, 17}
	for _, tc := range []struct {
		name    string
		outs    []Output
		floors  []int64 // per output; -1: none (takes everything)
		records int64   // counted as consumed
		dead    int64   // counted as dead letters
		want    []want
	}{
		{"main ahead", []Output{mainOut, dlOut}, []int64{15, 10}, 4 + 3, 3,
			[]want{{[]int64{15, 16, 18, 19}, 15, 20}, {[]int64{11, 14, 17}, 10, 20}}},
		{"dead letters ahead", []Output{mainOut, dlOut}, []int64{10, 16}, 7 + 1, 1,
			[]want{{[]int64{10, 12, 13, 15, 16, 18, 19}, 10, 20}, {[]int64{17}, 16, 20}}},
		{"one without offsets", []Output{mainOut, dlOut}, []int64{13, -1}, 5 + 3, 3,
			[]want{{[]int64{13, 15, 16, 18, 19}, 13, 20}, {[]int64{11, 14, 17}, 10, 20}}},
		{"three outputs", []Output{mainOut, dlOut, dl2}, []int64{12, 15, 10}, 6 + 3, 3,
			[]want{{[]int64{12, 13, 15, 16, 18, 19}, 12, 20}, {[]int64{17}, 15, 20}, {[]int64{11, 14, 17}, 10, 20}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			specs := make([]outputSpec, len(tc.outs))
			for i, o := range tc.outs {
				specs[i] = outputSpec{Output: o, info: mainInfo, floors: commit.Offsets{}}
				if o.Role == RoleDeadLetter {
					specs[i].info = dlInfo
				}
				if tc.floors[i] >= 0 {
					specs[i].floors.Set(tp.topic, tp.partition, tc.floors[i])
				}
			}
			// Consumption starts at the lowest floor, as seekPlan seeks.
			w, err := newWorker(p, specs, runStart{pos: map[topicPartition]int64{tp: 10}})
			require.NoError(t, err)
			defer w.abort()
			recordsIn, deadLetters := p.stats.recordsIn.Load(), p.stats.deadLetters.Load()
			require.NoError(t, w.process(tp, mixed(10, 15, bad...)))
			require.NoError(t, w.process(tp, mixed(15, 20, bad...)))
			// Consumed again (a fetch retried from an earlier position):
			// every output has these offsets already.
			require.NoError(t, w.process(tp, mixed(10, 20, bad...)))
			require.Equal(t, tc.records, p.stats.recordsIn.Load()-recordsIn)
			require.Equal(t, tc.dead, p.stats.deadLetters.Load()-deadLetters)
			for i := range w.outs {
				col := "id"
				if w.outs[i].Role == RoleDeadLetter {
					col = "offset"
				}
				require.Equal(t, tc.want[i].offsets, buffered(t, &w.outs[i], col), "output %d (%s) rows", i, w.outs[i].Table)
			}

			res := w.flush()
			require.NoError(t, res.err)
			defer abortSeal(seal{results: []flushResult{res}})
			require.Len(t, res.outs, len(tc.outs))
			for i, o := range res.outs {
				require.Equal(t, commit.Offsets{"events": {0: tc.want[i].from}}, o.seg.From, "output %d from", i)
				require.Equal(t, commit.Offsets{"events": {0: tc.want[i].to}}, o.seg.To, "output %d to", i)
				require.EqualValues(t, len(tc.want[i].offsets), o.seg.Records, "output %d records", i)
				require.Len(t, o.writers, 1, "output %d writers", i)
			}

			// The next segment of every output starts where this one ended,
			// and takes a record only for the outputs of its route.
			require.NoError(t, w.process(tp, mixed(20, 22, 21)))
			next := w.flush()
			require.NoError(t, next.err)
			defer abortSeal(seal{results: []flushResult{next}})
			for i, o := range next.outs {
				require.Equal(t, commit.Offsets{"events": {0: 20}}, o.seg.From, "output %d from", i)
				require.Equal(t, commit.Offsets{"events": {0: 22}}, o.seg.To, "output %d to", i)
				require.EqualValues(t, 1, o.seg.Records, "output %d records", i)
			}
		})
	}
}

// TestNewWorkerNeedsOneMainOutput: records decode into the main output's
// schema, so a worker is made with exactly one.
func TestNewWorkerNeedsOneMainOutput(t *testing.T) {
	e := newEnv(t)
	p := e.pipeline(time.Second)
	pr, err := p.prepare(context.Background(), context.Background())
	require.NoError(t, err)
	pr.adm.Close()
	specs := outputSpecs(pr.outs, pr.infos, []commit.Offsets{{}, {}})
	main := specs[roleIndex(t, pr.outs, RoleMain)]
	dl := specs[roleIndex(t, pr.outs, RoleDeadLetter)]
	for name, outs := range map[string][]outputSpec{
		"none":    {dl},
		"two":     {main, dl, main},
		"unknown": {main, {Output: Output{Role: "window", Table: "ns.w"}, info: main.info}},
	} {
		_, err := newWorker(p, outs, runStart{})
		require.Error(t, err, name)
	}
}

// TestOnLogGapDataLoss: data loss the client detected stops the pipeline
// under on_data_loss: fail, and is handed to the partition's worker, in
// order, under skip.
func TestOnLogGapDataLoss(t *testing.T) {
	tp := topicPartition{"events", 2}
	loss := &kgo.ErrDataLoss{Topic: "events", Partition: 2, ConsumedTo: 15, ResetTo: 12}
	for _, policy := range []string{OnDataLossFail, OnDataLossSkip} {
		t.Run(policy, func(t *testing.T) {
			p := &Pipeline{opts: Options{Pipeline: PipelineConfig{Name: "events", OnDataLoss: policy}}, log: slog.Default()}
			w := &worker{in: make(chan workItem, 1)}
			fs := newFetchState(map[topicPartition]int64{tp: 15})
			err := p.onLogGap(context.Background(), nil, nil, tp, loss, fs, []*worker{w})
			if policy == OnDataLossFail {
				var ce *ConsumerError
				require.ErrorAs(t, err, &ce)
				require.Equal(t, kindDataLoss, ce.Kind)
				require.Contains(t, ce.Error(), `topic "events" partition 2: Kafka lost records floe had read: the log was cut back from offset 15 to 12`)
				require.Empty(t, w.in)
				return
			}
			require.NoError(t, err)
			it := <-w.in
			require.Equal(t, tp, it.tp)
			require.Equal(t, logGap{resume: 12, truncated: true, reason: loss}, *it.gap)
			require.EqualValues(t, 12, fs.pos[tp])
		})
	}
}

// TestWindowerFoldsOnlyWhatTheMainTableTakes: when the dead-letter table
// is behind the main table (its offsets commit less often), the records
// between them are read again for it; a windowed pipeline must not fold
// them into the main table's windows a second time.
func TestWindowerFoldsOnlyWhatTheMainTableTakes(t *testing.T) {
	e := newEnv(t)
	p := e.pipelineWith(time.Second, func(c *PipelineConfig) {
		c.Schema = append(c.Schema, Column{Name: "ts", Type: "timestamptz", Required: true})
		c.Transform = &transform.Config{Window: &transform.WindowConfig{Time: "ts", Size: conf.Duration(time.Hour),
			Aggregates: []transform.Aggregate{{Name: "n", Fn: "count"}}}}
	})
	pr, err := p.prepare(context.Background(), context.Background())
	require.NoError(t, err)
	pr.adm.Close()
	tp := topicPartition{"events", 0}
	main, dl := roleIndex(t, pr.outs, RoleMain), roleIndex(t, pr.outs, RoleDeadLetter)
	floors := make([]commit.Offsets, len(pr.outs))
	floors[main], floors[dl] = commit.Offsets{"events": {0: 10}}, commit.Offsets{"events": {0: 0}}
	w, err := newWorker(p, outputSpecs(pr.outs, pr.infos, floors), runStart{pos: map[topicPartition]int64{tp: 0}})
	require.NoError(t, err)
	defer w.abort()
	var recs []*kgo.Record
	for o := range int64(20) {
		recs = append(recs, &kgo.Record{Offset: o, Value: []byte(fmt.Sprintf(`{"id":%d,"ts":"2026-01-01T00:00:%02dZ"}`, o, o))})
	}
	require.NoError(t, w.process(tp, recs))
	blob, times, err := w.win.w.Flush()
	require.NoError(t, err)
	parts, err := window.UnmarshalPartials(p.prog.WindowConfig().Spec, p.prog.WindowConfig().Aggs, blob)
	require.NoError(t, err)
	var events int64
	parts.Windows(func(win *window.Window) bool { events += win.Events; return true })
	require.EqualValues(t, 10, events, "records below the main table's floor were folded")
	ts, ok := times.Get("events", 0)
	require.True(t, ok, "no event time for the partition")
	require.Equal(t, time.Date(2026, 1, 1, 0, 0, 19, 0, time.UTC).UnixMicro(), ts)
}
