package ingest_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/floelake/floe/commit"
	"github.com/floelake/floe/ingest"
	"github.com/floelake/floe/internal/conf"
)

// failListOnce makes the broker answer the first ListOffsets request that
// asks for partition part at timestamp ts (-2: the log start) with
// OFFSET_NOT_AVAILABLE for that partition (what a broker answers while a new
// leader's high watermark catches up; the client hands it to the caller), and with want for every other
// partition of the request. Later requests reach the broker. It returns
// whether it fired.
func (h *harness) failListOnce(part int32, ts int64, want map[int32]int64) *atomic.Bool {
	var fired atomic.Bool
	h.cluster.ControlKey(int16(kmsg.ListOffsets), func(req kmsg.Request) (kmsg.Response, error, bool) {
		r := req.(*kmsg.ListOffsetsRequest)
		match := false
		for _, rt := range r.Topics {
			for _, rp := range rt.Partitions {
				match = match || (rt.Topic == "events" && rp.Partition == part && rp.Timestamp == ts)
			}
		}
		if !match {
			h.cluster.KeepControl()
			return nil, nil, false
		}
		fired.Store(true)
		h.cluster.DropControl() // KeepControl above sticks to the control
		resp := r.ResponseKind().(*kmsg.ListOffsetsResponse)
		for _, rt := range r.Topics {
			st := kmsg.NewListOffsetsResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewListOffsetsResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.Timestamp = -1
				if rp.Partition == part {
					sp.ErrorCode = kerr.OffsetNotAvailable.Code
					sp.Offset = -1
				} else {
					sp.Offset = want[rp.Partition]
				}
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
	return &fired
}

func (h *harness) admin() *kadm.Client {
	h.t.Helper()
	opts, err := ingest.ClientOpts(h.kafka)
	require.NoError(h.t, err)
	cl, err := kgo.NewClient(append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
	require.NoError(h.t, err)
	h.t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

func (h *harness) produceTo(part int32, n int, ts func(i int) time.Time) {
	h.t.Helper()
	var recs []*kgo.Record
	for i := range n {
		r := &kgo.Record{Topic: "events", Partition: part, Value: []byte(fmt.Sprintf(`{"id": %d}`, i))}
		if ts != nil {
			r.Timestamp = ts(i)
		}
		recs = append(recs, r)
	}
	h.produceRecords(recs...)
}

// produceRecords produces records to the partitions they name, in order.
func (h *harness) produceRecords(recs ...*kgo.Record) {
	h.t.Helper()
	opts, err := ingest.ClientOpts(h.kafka)
	require.NoError(h.t, err)
	cl, err := kgo.NewClient(append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
	require.NoError(h.t, err)
	defer cl.Close()
	for _, r := range recs {
		require.NoError(h.t, cl.ProduceSync(context.Background(), r).FirstErr())
	}
}

func (h *harness) deleteBelow(part int32, offset int64) {
	h.t.Helper()
	offs := kadm.Offsets{}
	offs.Add(kadm.Offset{Topic: "events", Partition: part, At: offset, LeaderEpoch: -1})
	resp, err := h.admin().DeleteRecords(context.Background(), offs)
	require.NoError(h.t, err)
	require.NoError(h.t, resp.Error())
}

func (h *harness) prepare(start string) ingest.Prepared {
	h.t.Helper()
	pl, err := ingest.New(ingest.Options{Pipeline: ingest.PipelineConfig{Name: "events", Table: "ns.events", Topics: []string{"events"},
		Format: "json", Start: start, CommitInterval: conf.Duration(time.Second), TargetFileSize: 128 << 20,
		Schema: []ingest.Column{{Name: "id", Type: "long"}}}, Kafka: h.kafka, Catalog: h.cat})
	require.NoError(h.t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	pr, err := pl.Prepare(ctx)
	require.NoError(h.t, err)
	return pr
}

// TestStartOffsetLookupsAreRetried: a start-offset lookup that fails for one
// partition (the broker answers that partition with an error, once) is
// retried until it succeeds, and every partition starts exactly where the
// configured start puts it, in both tables.
func TestStartOffsetLookupsAreRetried(t *testing.T) {
	base := time.UnixMilli(1_800_000_000_000)
	// Partition p's first record at or after base+1s, and its first offset
	// after deleting below p+1, are both offset p+1.
	want := map[int32]int64{0: 1, 1: 2, 2: 3}
	for _, tc := range []struct {
		name, start string
		ts          int64
	}{
		{"earliest", "earliest", -2},
		{"time", base.Add(time.Second).UTC().Format(time.RFC3339), base.Add(time.Second).UnixMilli()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil, ingest.KafkaConfig{})
			for p := range int32(3) {
				h.produceTo(p, 6, func(i int) time.Time { return base.Add(time.Duration(i-int(p)) * time.Second) })
				if tc.start == "earliest" {
					h.deleteBelow(p, int64(p)+1)
				}
			}
			fired := h.failListOnce(1, tc.ts, want)
			pr := h.prepare(tc.start)
			require.True(t, fired.Load(), "the lookup failed once")
			exp := commit.Offsets{"events": want}
			require.Equal(t, exp, pr.Committers[0].Offsets())
			require.Equal(t, exp, pr.Committers[1].Offsets())
		})
	}

	t.Run("new partitions", func(t *testing.T) {
		h := newHarness(t, nil, ingest.KafkaConfig{})
		for p := range int32(3) {
			h.produceTo(p, 1, nil)
		}
		pr := h.prepare("latest")
		first := commit.Offsets{"events": {0: 1, 1: 1, 2: 1}}
		require.Equal(t, first, pr.Committers[0].Offsets())

		_, err := h.admin().CreatePartitions(context.Background(), 2, "events")
		require.NoError(t, err)
		h.produceTo(3, 3, nil)
		h.produceTo(4, 3, nil)
		h.deleteBelow(4, 2)
		// New partitions start at their first offset whatever the start.
		fired := h.failListOnce(4, -2, map[int32]int64{0: 0, 1: 0, 2: 0, 3: 0})
		pr = h.prepare("latest")
		require.True(t, fired.Load(), "the lookup failed once")
		exp := commit.Offsets{"events": {0: 1, 1: 1, 2: 1, 3: 0, 4: 2}}
		require.Equal(t, exp, pr.Committers[0].Offsets())
		require.Equal(t, exp, pr.Committers[1].Offsets())
	})
}
