package ingest_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/floelake/floe/catalog"
	"github.com/floelake/floe/commit"
	"github.com/floelake/floe/ingest"
	"github.com/floelake/floe/internal/testutil"
)

// TestOnDataLoss: retention deletes records of partition 1 before floe read
// them. With on_data_loss: fail the pipeline stops with an error naming the
// partition and the offsets, and commits nothing past them; with skip it
// resumes at the first offset Kafka has, and the gap is counted and listed
// in the summary of the snapshot that covers it.
func TestOnDataLoss(t *testing.T) {
	h := newHarness(t, nil, ingest.KafkaConfig{})
	schema := []ingest.Column{{Name: "id", Type: "long", Required: true}}
	meta := []string{"partition", "offset"}
	for p := range int32(3) {
		h.produceTo(p, 5, nil)
	}
	h.run(ingest.PipelineConfig{Schema: schema, KafkaMetadata: meta}, 15)
	for p := range int32(3) {
		h.produceTo(p, 5, nil) // offsets 5..9
	}
	h.deleteBelow(1, 8) // 5, 6, 7 were never read

	t.Run("fail", func(t *testing.T) {
		r := h.startRunning(ingest.PipelineConfig{Schema: schema, KafkaMetadata: meta, OnDataLoss: "fail"})
		ce := r.unhealthy()
		r.stop()
		require.Equal(t, "offset_out_of_range", ce.Kind)
		for _, s := range []string{`topic "events" partition 1`, "offsets 5 to 7 are no longer in Kafka", "the log starts at 8", "on_data_loss: skip"} {
			require.Contains(t, ce.Error(), s)
		}
		for _, table := range []string{"ns.events", "ns.events__dlq"} {
			off := h.offsets(table)
			n, _ := off.Get("events", 1)
			require.EqualValues(t, 5, n, "%s: nothing committed past the loss", table)
		}
	})

	t.Run("skip", func(t *testing.T) {
		skipped := func() float64 {
			return h.metrics.Sum("floe_ingest_skipped_records_total", "topic", "events", "partition", "1")
		}
		before := skipped()
		h.run(ingest.PipelineConfig{Schema: schema, KafkaMetadata: meta, OnDataLoss: "skip"}, 5+5+2)
		require.EqualValues(t, 3, skipped()-before)
		for _, table := range []string{"ns.events", "ns.events__dlq"} {
			require.Equal(t, commit.Offsets{"events": {0: 10, 1: 10, 2: 10}}, h.offsets(table), table)
			require.Equal(t, []string{`{"events":{"1":[[5,8]]}}`}, h.skippedSummaries(table), table)
		}
		// Every record Kafka had is in the table once, and only those.
		want := map[[2]int64]bool{}
		for p := range int64(3) {
			for o := range int64(10) {
				if p != 1 || o < 5 || o >= 8 {
					want[[2]int64{p, o}] = true
				}
			}
		}
		require.Equal(t, want, h.partitionOffsets("ns.events"))
	})
}

func (h *harness) offsets(table string) commit.Offsets {
	h.t.Helper()
	tbl, err := h.cat.LoadTable(context.Background(), catalog.Ident(table))
	require.NoError(h.t, err)
	off, _, _, err := commit.TableOffsets(tbl, "events")
	require.NoError(h.t, err)
	return off
}

// skippedSummaries returns the floe.skipped of every snapshot that has one.
func (h *harness) skippedSummaries(table string) []string {
	h.t.Helper()
	tbl, err := h.cat.LoadTable(context.Background(), catalog.Ident(table))
	require.NoError(h.t, err)
	var out []string
	for _, s := range tbl.Metadata().Snapshots() {
		if v, ok := s.Summary.Properties[commit.PropSkipped]; ok {
			out = append(out, v)
		}
	}
	return out
}

// partitionOffsets returns the (partition, offset) of every row, failing on
// duplicates.
func (h *harness) partitionOffsets(table string) map[[2]int64]bool {
	h.t.Helper()
	tbl, err := h.cat.LoadTable(context.Background(), catalog.Ident(table))
	require.NoError(h.t, err)
	return testutil.PartitionOffsets(h.t, tbl)
}
