package commit_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	"github.com/stretchr/testify/require"

	"github.com/floelake/floe/catalog"
	"github.com/floelake/floe/commit"
	"github.com/floelake/floe/maintain"
)

// plan compacts every live data file of tbl into new files, as a
// compaction worker does, and returns the rewrite to commit.
func (f *fixture) plan(tbl *table.Table) commit.Rewrite {
	f.t.Helper()
	ctx := context.Background()
	snap := tbl.CurrentSnapshot()
	tasks, err := tbl.Scan().PlanFiles(ctx)
	require.NoError(f.t, err)
	res, err := table.ExecuteCompactionGroup(ctx, tbl, table.CompactionTaskGroup{Tasks: tasks})
	require.NoError(f.t, err)
	return commit.Rewrite{Old: res.OldDataFiles, New: res.NewDataFiles, BaseSnapshot: snap.SnapshotID, DataSeq: snap.SequenceNumber}
}

// entries returns the live data file entries of the table's current
// snapshot.
func (f *fixture) entries(tbl *table.Table) []iceberg.ManifestEntry {
	f.t.Helper()
	fs, err := tbl.FS(context.Background())
	require.NoError(f.t, err)
	mans, err := tbl.CurrentSnapshot().Manifests(fs)
	require.NoError(f.t, err)
	var out []iceberg.ManifestEntry
	for _, m := range mans {
		es, err := m.FetchEntries(fs, true)
		require.NoError(f.t, err)
		out = append(out, es...)
	}
	return out
}

func TestRewriteKeepsTheDataSequenceNumberAndTheOffsets(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	c := f.committer(f.cat)
	for i := int64(0); i < 3; i++ {
		_, err := c.Commit(ctx, f.segment(i*100, 100))
		require.NoError(t, err)
	}
	rw := f.plan(c.Table())
	require.Len(t, rw.Old, 3)
	// A segment committed while the plan runs: an append, so the plan
	// still fits.
	_, err := c.Commit(ctx, f.segment(300, 100))
	require.NoError(t, err)

	res, err := c.Rewrite(ctx, rw)
	require.NoError(t, err)
	require.Equal(t, 1, res.Attempts)
	f.requireExactly(400)

	tbl := f.load()
	head := tbl.CurrentSnapshot()
	require.Equal(t, res.SnapshotID, head.SnapshotID)
	require.Equal(t, table.OpReplace, head.Summary.Operation)
	require.Equal(t, "p", head.Summary.Properties[commit.PropPipeline], "the rewrite carries the pipeline")
	require.NotEmpty(t, head.Summary.Properties[commit.PropCommitID])
	require.Equal(t, head.SnapshotID, f.tagged(tbl), "the rewrite moves the pipeline's tag")
	require.Equal(t, "400", head.Summary.Properties["total-records"])

	newPaths := map[string]bool{}
	for _, nf := range rw.New {
		newPaths[nf.FilePath()] = true
	}
	seen := 0
	for _, e := range f.entries(tbl) {
		if newPaths[e.DataFile().FilePath()] {
			seen++
			// The rows keep the data sequence number of the snapshot the
			// plan read, so deletes committed after it still apply.
			require.Equal(t, rw.DataSeq, e.SequenceNum())
		}
	}
	require.Equal(t, len(rw.New), seen)
}

func TestRewriteOfAMovedTableIsStale(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	c := f.committer(f.cat)
	for i := int64(0); i < 2; i++ {
		_, err := c.Commit(ctx, f.segment(i*100, 100))
		require.NoError(t, err)
	}
	before := c.Table().CurrentSnapshot()
	_, err := c.Commit(ctx, f.segment(200, 100))
	require.NoError(t, err)
	rw := f.plan(c.Table())

	// Another engine rolls main back past the plan's snapshot.
	head := f.load().CurrentSnapshot().SnapshotID
	require.NoError(t, setMain(ctx, f.cat, f.ident, head, before.SnapshotID))
	c = f.committer(f.cat)
	_, err = c.Rewrite(ctx, rw)
	require.ErrorIs(t, err, commit.ErrRewriteStale)
	require.Equal(t, before.SnapshotID, f.load().CurrentSnapshot().SnapshotID, "nothing was committed")

	// A second rewrite of files a first one already replaced is stale too.
	c = f.committer(f.cat)
	_, err = c.Commit(ctx, f.segment(200, 100))
	require.NoError(t, err)
	rw = f.plan(c.Table())
	_, err = c.Rewrite(ctx, rw)
	require.NoError(t, err)
	_, err = c.Rewrite(ctx, rw)
	require.ErrorIs(t, err, commit.ErrRewriteStale)
	f.requireExactly(300)
}

func TestRewriteUnknownOutcomeLanded(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	fc := &faultyCatalog{inner: f.cat, faults: map[int]fault{}}
	c := f.committer(fc)
	for i := int64(0); i < 3; i++ {
		_, err := c.Commit(ctx, f.segment(i*100, 100))
		require.NoError(t, err)
	}
	rw := f.plan(c.Table())
	fc.faults[fc.callCount()+1] = errorAfter
	res, err := c.Rewrite(ctx, rw)
	require.NoError(t, err)
	require.Equal(t, 1, fc.firedCount(errorAfter))
	require.Equal(t, 1, res.Attempts, "found landed, not retried")
	f.requireExactly(300)
	require.Equal(t, table.OpReplace, f.load().CurrentSnapshot().Summary.Operation)
}

func TestExpireKeepsTheOffsetsAndDeletesWhatOnlyExpiredSnapshotsHeld(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	c := f.committer(f.cat)
	for i := int64(0); i < 4; i++ {
		_, err := c.Commit(ctx, f.segment(i*100, 100))
		require.NoError(t, err)
	}
	rw := f.plan(c.Table())
	_, err := c.Rewrite(ctx, rw)
	require.NoError(t, err)

	tbl := c.Table()
	var all []int64
	for _, s := range tbl.Metadata().Snapshots() {
		all = append(all, s.SnapshotID)
	}
	firstList := tbl.Metadata().Snapshots()[0].ManifestList
	exp, err := c.ExpireSnapshots(ctx, all)
	require.NoError(t, err)
	require.Len(t, exp.IDs, len(all)-1, "all but the current (and tagged) snapshot")
	require.NoError(t, commit.DeleteExpiredFiles(ctx, exp))

	tbl = f.load()
	require.Len(t, tbl.Metadata().Snapshots(), 1)
	require.Equal(t, tbl.CurrentSnapshot().SnapshotID, f.tagged(tbl))
	f.requireExactly(400)
	path, _ := catalog.LocalPath(firstList)
	_, err = os.Stat(path)
	require.ErrorIs(t, err, os.ErrNotExist, "the expired snapshot's manifest list is gone")
	for _, old := range rw.Old {
		path, _ := catalog.LocalPath(old.FilePath())
		_, err := os.Stat(path)
		require.ErrorIs(t, err, os.ErrNotExist, "a data file only expired snapshots referenced is gone")
	}
	for _, nf := range rw.New {
		path, _ := catalog.LocalPath(nf.FilePath())
		_, err := os.Stat(path)
		require.NoError(t, err, "a live data file stays")
	}

	// A restart reads the offsets from the one snapshot left.
	c2 := f.committer(f.cat)
	require.Equal(t, commit.Offsets{"tp": {0: 400}}, c2.Offsets())
	_, err = c2.Commit(ctx, f.segment(400, 10))
	require.NoError(t, err)
	f.requireExactly(410)
}

// Time travel to a moment whose snapshot expiry removed finds the nearest
// kept snapshot before it, although removing snapshots truncates the
// table's snapshot log.
func TestSnapshotAsOfAfterThinning(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	c := f.committer(f.cat)
	var snaps []table.Snapshot
	for i := int64(0); i < 5; i++ {
		if i > 0 {
			time.Sleep(5 * time.Millisecond)
		}
		_, err := c.Commit(ctx, f.segment(i*10, 10))
		require.NoError(t, err)
		snaps = append(snaps, *c.Table().CurrentSnapshot())
	}
	_, err := c.ExpireSnapshots(ctx, []int64{snaps[1].SnapshotID, snaps[3].SnapshotID})
	require.NoError(t, err)
	meta := f.load().Metadata()
	n := 0
	for range meta.SnapshotLogs() {
		n++
	}
	require.Equal(t, 1, n, "the log keeps only what follows the newest removed snapshot")

	at := func(ts int64) int64 {
		s := maintain.SnapshotAsOf(meta, ts)
		if s == nil {
			return 0
		}
		return s.SnapshotID
	}
	require.Equal(t, snaps[4].SnapshotID, at(snaps[4].TimestampMs), "from the log")
	require.Equal(t, snaps[2].SnapshotID, at(snaps[3].TimestampMs), "expired: the kept one before")
	require.Equal(t, snaps[2].SnapshotID, at(snaps[2].TimestampMs+1))
	require.Equal(t, snaps[0].SnapshotID, at(snaps[1].TimestampMs))
	require.Zero(t, at(snaps[0].TimestampMs-1), "before the first snapshot")
}

// With the properties maintenance sets, appends merge manifests: planning
// a scan of the table reads a bounded number of them however many commits
// it took, and old metadata files are deleted as commits go.
func TestMaintainedTableBoundsManifestsAndMetadata(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	c := f.committer(f.cat)
	set, err := c.SetProperties(ctx, maintain.Properties())
	require.NoError(t, err)
	require.True(t, set)
	set, err = c.SetProperties(ctx, maintain.Properties())
	require.NoError(t, err)
	require.False(t, set, "already set: nothing committed")
	const commits = 130
	for i := int64(0); i < commits; i++ {
		seg := f.segment(i, 1)
		if i%3 == 2 {
			// Offsets-only commits, as a dead-letter table makes.
			seg.Files, seg.Records = nil, 0
		}
		_, err := c.Commit(ctx, seg)
		require.NoError(t, err)
	}
	tbl := f.load()
	fs, err := tbl.FS(ctx)
	require.NoError(t, err)
	mans, err := tbl.CurrentSnapshot().Manifests(fs)
	require.NoError(t, err)
	require.LessOrEqual(t, len(mans), 51, "manifests of the current snapshot after %d commits", commits)

	n := 0
	for range tbl.Metadata().PreviousFiles() {
		n++
	}
	require.LessOrEqual(t, n, 50, "metadata log")
	dir, _ := catalog.LocalPath(tbl.Location() + "/metadata")
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	jsons := 0
	for _, e := range entries {
		if filepath.Ext(e.Name()) == ".json" {
			jsons++
		}
	}
	require.LessOrEqual(t, jsons, 51, "metadata files on disk")
}
