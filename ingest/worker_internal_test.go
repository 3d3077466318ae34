package ingest

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floelake/floe/commit"
	"github.com/floelake/floe/internal/config"
	"github.com/floelake/floe/internal/metrics"
)

func records(from, to int64) []*kgo.Record {
	var out []*kgo.Record
	for o := from; o < to; o++ {
		out = append(out, &kgo.Record{Offset: o, Value: []byte(fmt.Sprintf(`{"id": %d}`, o)), Timestamp: time.UnixMilli(o)})
	}
	return out
}

// skippedCount reads floe_ingest_skipped_records_total for a partition.
func skippedCount(t *testing.T, topic string, partition int32) float64 {
	t.Helper()
	mfs, err := metrics.Registry.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != "floe_ingest_skipped_records_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["topic"] == topic && labels["partition"] == strconv.Itoa(int(partition)) {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
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
			w, err := newWorker(p, outputSpecs(pr.outs, pr.infos, floors), map[topicPartition]int64{tp: 10})
			require.NoError(t, err)
			require.NoError(t, w.process(tp, records(10, 15)))
			before := skippedCount(t, "events", 0)
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
			require.Equal(t, tc.skipCount, skippedCount(t, "events", 0)-before)

			// The next segment starts where this one ended and skips nothing.
			require.NoError(t, w.process(tp, records(tc.wantTo, tc.wantTo+1)))
			next := w.flush()
			defer abortSeal(seal{results: []flushResult{next}})
			require.Equal(t, commit.Offsets{"events": {0: tc.wantTo}}, next.outs[main].seg.From)
			require.Empty(t, next.outs[main].seg.Skipped)
		})
	}
}

// TestOnLogGapDataLoss: data loss the client detected stops the pipeline
// under on_data_loss: fail, and is handed to the partition's worker, in
// order, under skip.
func TestOnLogGapDataLoss(t *testing.T) {
	tp := topicPartition{"events", 2}
	loss := &kgo.ErrDataLoss{Topic: "events", Partition: 2, ConsumedTo: 15, ResetTo: 12}
	for _, policy := range []string{config.OnDataLossFail, config.OnDataLossSkip} {
		t.Run(policy, func(t *testing.T) {
			p := &Pipeline{opts: Options{Pipeline: config.Pipeline{Name: "events", OnDataLoss: policy}}, log: slog.Default()}
			w := &worker{in: make(chan workItem, 1)}
			fs := newFetchState(map[topicPartition]int64{tp: 15})
			err := p.onLogGap(context.Background(), nil, nil, tp, loss, fs, []*worker{w})
			if policy == config.OnDataLossFail {
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
