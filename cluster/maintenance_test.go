package cluster_test

import (
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	icebergio "github.com/apache/iceberg-go/io"
	"github.com/apache/iceberg-go/table"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/floelake/floe/catalog"
	"github.com/floelake/floe/internal/conf"
	"github.com/floelake/floe/internal/testutil"
	"github.com/floelake/floe/maintain"
)

// Maintenance inside the table writer, on a cluster of one: compaction,
// expiry and orphan cleanup run as fast as they can while records stream
// in, and the tables keep every record exactly once, through a restart.

func aggressiveMaintenance(grace time.Duration) *maintain.Config {
	c := maintain.DefaultConfig()
	c.Compaction.Every = conf.Duration(150 * time.Millisecond)
	c.Compaction.TargetFileSize = 1 << 20
	c.Compaction.FanIn = 2
	c.Compaction.MaxSmallFiles = 4
	c.Compaction.MaxBytesPerRun = 1 << 20
	c.Expiry.Every = conf.Duration(200 * time.Millisecond)
	c.Expiry.Keep = []maintain.Tier{{For: conf.Duration(300 * time.Millisecond)}}
	c.Orphans.Every = conf.Duration(250 * time.Millisecond)
	c.Orphans.Grace = conf.Duration(grace)
	return &c
}

// liveFiles returns the table's live data files.
func liveFiles(t *testing.T, tbl *table.Table) []string {
	t.Helper()
	if tbl.CurrentSnapshot() == nil {
		return nil
	}
	tasks, err := tbl.Scan().PlanFiles(context.Background())
	require.NoError(t, err)
	var out []string
	for _, task := range tasks {
		out = append(out, task.File.FilePath())
	}
	return out
}

// want is the (partition, offset) of every record sent that decodes: every
// third one does not.
func (r *leaderRig) want() map[[2]int64]bool {
	want := map[[2]int64]bool{}
	counts := map[int64]int64{}
	for i := range r.sent {
		p := int64(i % 3)
		if i%3 != 2 {
			want[[2]int64{p, counts[p]}] = true
		}
		counts[p]++
	}
	return want
}

func TestMaintenanceKeepsEveryRecordOnce(t *testing.T) {
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, topic))
	require.NoError(t, err)
	t.Cleanup(kc.Close)
	cat := testutil.SQLiteCatalog(t)
	r := startLeaderRig(t, kc, cat, func(c *catalog.Catalog) *catalog.Catalog { return c }, aggressiveMaintenance(2*time.Second))

	r.produce(perRound)
	r.waitCommitted()
	m, err := waitMaintainer(r, mainTable)
	require.NoError(t, err)
	compacted := 0
	for range 11 {
		r.produce(perRound)
		r.waitCommitted()
		require.Equal(t, r.want(), r.rows(mainTable), "after a round of records")
		sum, err := m.Compact(context.Background(), nil)
		require.NoError(t, err)
		if sum.Snapshot != 0 {
			compacted++
			require.Less(t, sum.FilesAfter, sum.FilesBefore)
		}
		require.Equal(t, r.want(), r.rows(mainTable), "after a compaction")
	}
	require.Positive(t, compacted, "no compaction committed")

	tbl, err := cat.LoadTable(context.Background(), catalog.Ident(mainTable))
	require.NoError(t, err)
	// 12 rounds of 3 partitions each would be 36 files and more without
	// compaction; the table is unpartitioned, and on-demand compaction
	// packs every small file into one.
	require.LessOrEqual(t, len(liveFiles(t, tbl)), 4, "live data files")
	require.Less(t, len(tbl.Metadata().Snapshots()), 40, "snapshots retained")
	// The pipeline's offsets are on main's head.
	head := tbl.CurrentSnapshot()
	require.Equal(t, topic, head.Summary.Properties["floe.pipeline"])
	require.NotEmpty(t, head.Summary.Properties["floe.offsets"])
	require.NoError(t, r.stop())

	// A restart finds the offsets on the compacted, expired table:
	// nothing is read again, nothing is lost.
	r2 := startLeaderRig(t, kc, cat, func(c *catalog.Catalog) *catalog.Catalog { return c }, aggressiveMaintenance(2*time.Second))
	r2.sent = r.sent
	r2.produce(perRound)
	r2.waitCommitted()
	require.NoError(t, r2.stop())
	require.Equal(t, r2.want(), r2.rows(mainTable))
}

// waitMaintainer waits for the leader's maintainer of name.
func waitMaintainer(r *leaderRig, name string) (*maintain.Maintainer, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		m, err := r.node.Maintainer(name)
		if err == nil || time.Now().After(deadline) {
			return m, err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// holdCatalog refuses the main table's commits while held.
type holdCatalog struct {
	*catalog.Catalog
	held atomic.Bool
}

func (h *holdCatalog) CommitTable(ctx context.Context, ident table.Identifier, reqs []table.Requirement, upd []table.Update) (table.Metadata, string, error) {
	if h.held.Load() && catalogName(ident) == mainTable {
		return nil, "", errCatalogHeld
	}
	return h.Catalog.CommitTable(ctx, ident, reqs, upd)
}

var errCatalogHeld = &os.PathError{Op: "commit", Path: mainTable, Err: os.ErrDeadlineExceeded}

// Orphan cleanup removes what a killed writer left, and never the files of
// segments the ledger accepted and the catalog has not committed yet, however
// old they are.
func TestOrphanCleanupKeepsPendingFiles(t *testing.T) {
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, topic))
	require.NoError(t, err)
	t.Cleanup(kc.Close)
	cat := testutil.SQLiteCatalog(t)
	hc := &holdCatalog{Catalog: cat}
	// Longer than a file waits between its write and its segment's
	// acceptance on a loaded machine: the one case the grace period is for.
	const grace = time.Second
	maint := aggressiveMaintenance(grace)
	// Only orphan cleanup runs: it goes through no table writer, so it
	// runs while the writer retries the refused commits.
	maint.Compaction.Enabled = false
	maint.Expiry.Enabled = false
	maint.Orphans.Every = conf.Duration(100 * time.Millisecond)
	r := startLeaderRig(t, kc, cat, func(c *catalog.Catalog) *catalog.Catalog {
		w := *c
		w.Catalog = hc
		return &w
	}, maint)
	r.produce(perRound)
	r.waitCommitted()

	// A file a killed writer left behind: in the table's data directory,
	// in no snapshot and no segment.
	tbl, err := cat.LoadTable(context.Background(), catalog.Ident(mainTable))
	require.NoError(t, err)
	dir, ok := catalog.LocalPath(tbl.Location())
	require.True(t, ok)
	stray := filepath.Join(dir, "data", "00000-0-killed-writer.parquet")
	require.NoError(t, os.MkdirAll(filepath.Dir(stray), 0o755))
	require.NoError(t, os.WriteFile(stray, []byte("PAR1 partial"), 0o644))
	old := time.Now().Add(-time.Hour)
	require.NoError(t, os.Chtimes(stray, old, old))
	require.Eventually(t, func() bool {
		_, err := os.Stat(stray)
		return os.IsNotExist(err)
	}, 10*time.Second, 50*time.Millisecond, "the killed writer's file is still there")

	// Segments accepted while the catalog refuses the main table: their
	// files grow older than the grace period while orphan cleanup runs.
	hc.held.Store(true)
	r.produce(perRound)
	time.Sleep(4 * grace)
	hc.held.Store(false)
	r.waitCommitted()
	require.NoError(t, r.stop())
	require.Equal(t, r.want(), r.rows(mainTable))
}

// Compaction, expiry and orphan cleanup on an S3 warehouse: listing by
// prefix must not stray into the dead-letter table (ns.events__dlq sits
// beside ns.events), and the files the table references must all stay.
func TestMaintenanceOnS3(t *testing.T) {
	srv := testutil.StartS3(t)
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, topic))
	require.NoError(t, err)
	t.Cleanup(kc.Close)
	dir := t.TempDir()
	cat, err := catalog.Open(context.Background(),
		catalog.Config{Type: "sql", Name: "floe", URI: "sqlite://" + filepath.Join(dir, "c.db"), Warehouse: srv.Warehouse("wh")},
		catalog.StorageConfig{S3: catalog.S3Config{Endpoint: srv.Endpoint, Region: srv.Region, AccessKeyID: srv.AccessKey, SecretAccessKey: srv.SecretKey, PathStyle: true}}, dir)
	require.NoError(t, err)
	t.Cleanup(func() { _ = cat.Close() })
	maint := aggressiveMaintenance(0)
	// Grace 0 would remove the files of segments not yet proposed; the
	// orphan pass here runs only on demand, after everything is committed.
	maint.Orphans.Enabled = false
	r := startLeaderRig(t, kc, cat, func(c *catalog.Catalog) *catalog.Catalog { return c }, maint)
	r.produce(perRound)
	r.waitCommitted()
	m, err := waitMaintainer(r, mainTable)
	require.NoError(t, err)
	dlq, err := waitMaintainer(r, mainTable+"__dlq")
	require.NoError(t, err)
	for range 4 {
		r.produce(perRound)
		r.waitCommitted()
	}
	// Compacted on S3: by this call, or already by the background
	// maintenance (which compacts every few commits), and a call whose
	// plan a commit overtook (Stale) is tried again.
	compacted := func() bool {
		tbl, err := cat.LoadTable(context.Background(), catalog.Ident(mainTable))
		require.NoError(t, err)
		for _, s := range tbl.Metadata().Snapshots() {
			if s.Summary != nil && s.Summary.Operation == table.OpReplace {
				return true
			}
		}
		return false
	}
	for i := 0; i < 5; i++ {
		sum, err := m.Compact(context.Background(), nil)
		require.NoError(t, err)
		if sum.Snapshot != 0 || (!sum.Stale && compacted()) {
			break
		}
	}
	require.True(t, compacted(), "compacted on S3")
	require.NoError(t, m.Expire(context.Background()))
	time.Sleep(400 * time.Millisecond) // the expiry tier is 300ms
	require.NoError(t, m.Expire(context.Background()))
	// A stray object in each table's location.
	stray := func(name string) (string, func() bool) {
		tbl, err := cat.LoadTable(context.Background(), catalog.Ident(name))
		require.NoError(t, err)
		fs, err := tbl.FS(context.Background())
		require.NoError(t, err)
		p := tbl.Location() + "/data/stray.parquet"
		require.NoError(t, fs.(icebergio.WriteFileIO).WriteFile(p, []byte("PAR1 partial")))
		return p, func() bool {
			f, err := fs.Open(p)
			if err != nil {
				return false
			}
			_ = f.Close()
			return true
		}
	}
	_, mainThere := stray(mainTable)
	_, dlqThere := stray(mainTable + "__dlq")
	time.Sleep(50 * time.Millisecond)
	res, err := m.RemoveOrphans(context.Background())
	require.NoError(t, err)
	require.Equal(t, 1, res.Files, "the stray object of the main table")
	require.False(t, mainThere())
	require.True(t, dlqThere(), "the main table's cleanup left the dead-letter table alone")
	res, err = dlq.RemoveOrphans(context.Background())
	require.NoError(t, err)
	require.Equal(t, 1, res.Files)
	require.False(t, dlqThere())
	require.NoError(t, r.stop())
	require.Equal(t, r.want(), r.rows(mainTable))
	// The dead-letter table still reads: nothing of it was taken for an
	// orphan of the main table.
	tbl, err := cat.LoadTable(context.Background(), catalog.Ident(mainTable+"__dlq"))
	require.NoError(t, err)
	_, err = tbl.Scan().ToArrowTable(context.Background())
	require.NoError(t, err)
}
