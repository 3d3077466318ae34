package cluster_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floelake/floe/catalog"
	"github.com/floelake/floe/commit"
	"github.com/floelake/floe/ingest"
	"github.com/floelake/floe/ingest/transform"
	"github.com/floelake/floe/ingest/transform/dedup"
	"github.com/floelake/floe/internal/conf"
	"github.com/floelake/floe/internal/testutil"
)

// TestMaintenanceKeepsDedupState: compaction, snapshot expiry and orphan
// cleanup (with no grace period) run beside a pipeline that drops
// duplicates; cleanup removes state files no snapshot's manifest lists any
// more (merged away) and manifests of expired snapshots, and keeps every
// file the retained manifests list: after a restart, the copy of every key
// produced so far is still dropped.
func TestMaintenanceKeepsDedupState(t *testing.T) {
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, topic))
	require.NoError(t, err)
	t.Cleanup(kc.Close)
	cat := testutil.SQLiteCatalog(t)
	pc := rigPipeline()
	pc.Schema = []ingest.Column{{Name: "id", Type: "long", Required: true}, {Name: "v", Type: "string"}}
	pc.Transform = &transform.Config{Dedup: &transform.DedupConfig{Key: []string{"id"}, Horizon: conf.Duration(time.Hour)}}
	maint := aggressiveMaintenance(0)
	// Grace 0 would remove the files of segments not yet proposed; the
	// orphan pass runs on demand, once everything is committed.
	maint.Orphans.Enabled = false
	same := func(c *catalog.Catalog) *catalog.Catalog { return c }

	// Each id goes to partition id%3, so its copies meet it there.
	ends := map[int32]int64{}
	produce := func(r *leaderRig, ids ...int) {
		t.Helper()
		opts, err := ingest.ClientOpts(r.kafka)
		require.NoError(t, err)
		cl, err := kgo.NewClient(append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
		require.NoError(t, err)
		defer cl.Close()
		for _, id := range ids {
			p := int32(id % 3)
			rec := &kgo.Record{Topic: topic, Partition: p, Value: []byte(fmt.Sprintf(`{"id":%d,"v":"x"}`, id))}
			require.NoError(t, cl.ProduceSync(context.Background(), rec).FirstErr())
			ends[p]++
		}
	}
	wait := func(r *leaderRig) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for !r.tableReaches(mainTable, ends) {
			if time.Now().After(deadline) {
				t.Fatalf("the table did not reach %v: at %v (healthy: %v)", ends, r.offsets(mainTable), r.node.Pipelines()[0].Healthy())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	rows := func() int64 {
		tbl, err := cat.LoadTable(context.Background(), catalog.Ident(mainTable))
		require.NoError(t, err)
		at, err := tbl.Scan().ToArrowTable(context.Background())
		require.NoError(t, err)
		defer at.Release()
		return at.NumRows()
	}

	r := startLeaderRigWith(t, kc, cat, same, maint, pc)
	const rounds = 20
	for round := range rounds {
		var ids []int
		for i := range 6 {
			ids = append(ids, round*4+i) // two of the last round's
		}
		produce(r, ids...)
		wait(r)
	}
	distinct := int64(rounds*4 + 2)
	require.Equal(t, distinct, rows(), "one row per id")
	m, err := waitMaintainer(r, mainTable)
	require.NoError(t, err)
	require.NoError(t, m.Expire(context.Background()))
	time.Sleep(400 * time.Millisecond) // the expiry tier is 300ms
	require.NoError(t, m.Expire(context.Background()))
	tbl, err := cat.LoadTable(context.Background(), catalog.Ident(mainTable))
	require.NoError(t, err)
	stateFiles := func() int {
		dir, ok := catalog.LocalPath(tbl.Location() + "/" + dedup.Dir)
		require.True(t, ok, "the test's warehouse is local")
		entries, err := os.ReadDir(dir)
		require.NoError(t, err)
		return len(entries)
	}
	before := stateFiles()
	res, err := m.RemoveOrphans(context.Background())
	require.NoError(t, err)
	require.Positive(t, res.Files, "no orphan removed")
	require.Less(t, stateFiles(), before, "no merged-away state file removed")

	fs, err := tbl.FS(context.Background())
	require.NoError(t, err)
	require.NotEmpty(t, commit.TableDedup(tbl, topic), "the head carries no floe.dedup")
	for _, s := range tbl.Metadata().Snapshots() {
		loc := s.Summary.Properties[commit.PropDedup]
		if loc == "" {
			continue // from before the first records
		}
		f, err := fs.Open(loc)
		require.NoError(t, err, "the manifest of snapshot %d", s.SnapshotID)
		b, err := io.ReadAll(f)
		require.NoError(t, err)
		require.NoError(t, f.Close())
		man, err := dedup.ParseManifest(b)
		require.NoError(t, err)
		for _, p := range man.Paths() {
			g, err := fs.Open(p)
			require.NoError(t, err, "a state file the manifest of snapshot %d lists", s.SnapshotID)
			require.NoError(t, g.Close())
		}
	}
	require.NoError(t, r.stop())

	// A restart loads the state from what cleanup left: a copy of every
	// id is dropped, a new id kept.
	r2 := startLeaderRigWith(t, kc, cat, same, maint, pc)
	var all []int
	for id := range int(distinct) {
		all = append(all, id)
	}
	produce(r2, append(all, 1000, 1001)...)
	wait(r2)
	require.NoError(t, r2.stop())
	require.Equal(t, distinct+2, rows(), "copies written after the restart")
}
