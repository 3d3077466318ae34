package ingest_test

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floelake/floe/catalog"
	"github.com/floelake/floe/commit"
	"github.com/floelake/floe/ingest"
	"github.com/floelake/floe/ingest/transform"
	"github.com/floelake/floe/ingest/transform/dedup"
	"github.com/floelake/floe/internal/conf"
)

// dedupModel is the dedup rule applied to records in each partition's log
// order: the rows a table must end up with.
type dedupModel struct {
	horizon time.Duration
	clock   map[int32]time.Time
	kept    map[int32]map[string]time.Time
}

func (m *dedupModel) keep(part int32, key string, ts time.Time) bool {
	if ts.After(m.clock[part]) {
		m.clock[part] = ts
	}
	c := m.clock[part]
	if at, ok := m.kept[part][key]; ok && c.Sub(at) <= m.horizon {
		return false
	}
	if m.kept[part] == nil {
		m.kept[part] = map[string]time.Time{}
	}
	m.kept[part][key] = c
	return true
}

// TestPipelineDedup: a pipeline that drops duplicates keeps one row per
// key and partition within the horizon, across restarts (each run starts
// from the state the table's floe.dedup manifest names, and what it drops
// is counted); a key seen again after the horizon, or on another
// partition, is kept; a null key is a key; the manifest's files are merged
// as commits accumulate, and orphan-free: every file it lists exists.
func TestPipelineDedup(t *testing.T) {
	h := newHarness(t, nil, ingest.KafkaConfig{})
	p := ingest.PipelineConfig{
		Schema: []ingest.Column{
			{Name: "id", Type: "long"},
			{Name: "v", Type: "string"},
		},
		KafkaMetadata:  []string{"partition", "offset"},
		CommitInterval: conf.Duration(100 * time.Millisecond),
		Transform: &transform.Config{
			Dedup: &transform.DedupConfig{Key: []string{"id"}, Horizon: conf.Duration(time.Hour)},
		},
	}
	model := &dedupModel{horizon: time.Hour, clock: map[int32]time.Time{}, kept: map[int32]map[string]time.Time{}}
	base := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	var wantRows, wantDups int64
	const runs = 10
	for run := range runs {
		var recs []*kgo.Record
		var runDups int64
		for i := range 12 {
			part := int32(i % 3)
			// Keys repeat within a run, across runs, and across
			// partitions. Time moves 5 minutes per run for 8 runs (the
			// state files pile up and are merged), then 2 hours per run
			// (every key is past the horizon).
			id := run*4 + i // new keys, and two of the last run's
			if i >= 6 {
				id = i % 3 // the same few keys in every run
			}
			key := fmt.Sprint(id)
			val := fmt.Sprintf(`{"id":%d,"v":"r%d-%d"}`, id, run, i)
			if i == 11 {
				key, val = "null", fmt.Sprintf(`{"v":"r%d-%d"}`, run, i)
			}
			step := time.Duration(run) * 5 * time.Minute
			if run >= 8 {
				step = 40*time.Minute + time.Duration(run-7)*2*time.Hour
			}
			ts := base.Add(step + time.Duration(i)*time.Second)
			if i == 7 {
				ts = ts.Add(-3 * time.Hour) // far behind: the clock does not go back
			}
			if model.keep(part, key, ts) {
				wantRows++
			} else {
				runDups++
			}
			recs = append(recs, &kgo.Record{Topic: "events", Partition: part, Timestamp: ts, Value: []byte(val)})
		}
		h.produceRecords(recs...)
		wantDups += runDups
		pl := h.runUntilOffsets(p, int64((run+1)*12))
		require.EqualValues(t, runDups, pl.Stats().Duplicates, "run %d: duplicates dropped", run)
		require.Equal(t, wantRows, h.rows("ns.events"), "run %d: rows", run)
	}
	require.Greater(t, wantDups, int64(10), "the test data has too few duplicates to prove anything")
	require.EqualValues(t, wantDups, h.metrics.Sum("floe_ingest_duplicate_records_total", "pipeline", "events"))
	require.Positive(t, h.metrics.Sum("floe_dedup_state_merges_total", "table", "ns.events"))
	rows := tableRows(t, h, "ns.events")
	seen := map[string]int{}
	for _, r := range rows {
		seen[fmt.Sprint(r["_kafka_partition"], "/", r["v"])]++
	}
	for k, n := range seen {
		require.Equal(t, 1, n, "row %s written %d times", k, n)
	}

	tbl, err := h.cat.LoadTable(context.Background(), catalog.Ident("ns.events"))
	require.NoError(t, err)
	loc := commit.TableDedup(tbl, "events")
	require.NotEmpty(t, loc, "the head carries no floe.dedup")
	fs, err := tbl.FS(context.Background())
	require.NoError(t, err)
	readManifest := func(loc string) *dedup.Manifest {
		f, err := fs.Open(loc)
		require.NoError(t, err)
		defer f.Close()
		b, err := io.ReadAll(f)
		require.NoError(t, err)
		man, err := dedup.ParseManifest(b)
		require.NoError(t, err)
		return man
	}
	man := readManifest(loc)
	for _, mf := range man.Files {
		r, err := fs.Open(mf.Path)
		require.NoError(t, err, "a file the manifest lists")
		require.NoError(t, r.Close())
		require.True(t, strings.Contains(mf.Path, "/"+transform.DedupDir+"/"), "state file outside %s: %s", transform.DedupDir, mf.Path)
		for id, part := range mf.Parts {
			require.GreaterOrEqual(t, part.Newest, man.Clocks[id]-time.Hour.Microseconds(), "a file past the horizon is still listed: %+v", mf)
		}
	}
	// Some commit merged files (FanIn level-0 files at least were
	// written); the merged file may have expired since.
	merged := false
	for _, s := range tbl.Metadata().Snapshots() {
		if d := s.Summary.Properties[commit.PropDedup]; d != "" && !merged {
			for _, mf := range readManifest(d).Files {
				merged = merged || mf.Level > 0
			}
		}
	}
	require.True(t, merged, "after %d runs no manifest lists a merged file", runs)
	require.Len(t, man.Clocks, 3, "a clock per partition")
}

// runUntilOffsets runs a pipeline until the main table's offsets cover
// want records in all (duplicates leave no row to count), then stops it.
func (h *harness) runUntilOffsets(p ingest.PipelineConfig, want int64) *ingest.Pipeline {
	h.t.Helper()
	pl, stop := h.start(p, 0)
	deadline := time.Now().Add(60 * time.Second)
	for {
		var n int64
		if tbl, err := h.cat.LoadTable(context.Background(), catalog.Ident("ns.events")); err == nil && tbl.CurrentSnapshot() != nil {
			offs, _, _, _ := commit.TableOffsets(tbl, "events")
			for _, ps := range offs {
				for _, o := range ps {
					n += o
				}
			}
		}
		if n >= want {
			break
		}
		if time.Now().After(deadline) {
			_ = stop()
			h.t.Fatalf("timed out at %d of %d offsets: stats %+v, health %v", n, want, pl.Stats(), pl.Healthy())
		}
		time.Sleep(20 * time.Millisecond)
	}
	require.NoError(h.t, stop())
	return pl
}
