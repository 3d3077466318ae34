package commit_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	"github.com/stretchr/testify/require"

	"github.com/floelake/floe/commit"
)

// rollbackRig commits four segments of ten rows, [0, 40), one snapshot
// each, and returns the writer, the ids of the snapshots in order and a
// stop function.
func rollbackRig(t *testing.T) (*writerRig, *commit.TableWriter, []int64, context.Context) {
	r := newWriterRig(t)
	w := r.writer(r.cat, 1, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	var snaps []int64
	for i := int64(0); i < 4; i++ {
		require.NoError(t, r.propose(i*10, 10).Err)
		r.waitCommitted((i + 1) * 10)
		tbl, err := r.cat.LoadTable(ctx, r.ident)
		require.NoError(t, err)
		snaps = append(snaps, tbl.CurrentSnapshot().SnapshotID)
	}
	return r, w, snaps, ctx
}

// Replay: main goes back to the snapshot holding [0, 20), the ledger
// adopts its offsets, and the owner, fenced, reads [20, 40) again: the
// table ends with every row once.
func TestRollbackReplay(t *testing.T) {
	r, w, snaps, ctx := rollbackRig(t)
	require.NoError(t, w.Do(ctx, func(ctx context.Context, c *commit.Committer) error {
		tbl, err := c.Rollback(ctx, snaps[1], commit.RollbackReplay)
		if err == nil {
			require.Equal(t, snaps[1], tbl.CurrentSnapshot().SnapshotID)
		}
		return err
	}))
	ids, _, last := r.idsOf(r.ident)
	require.Equal(t, rangeIDs(0, 20), ids)
	require.Equal(t, commit.Offsets{"tp": {0: 20}}, last)
	next, _ := r.env.l.NextExpected("p", "tp", 0)
	require.EqualValues(t, 20, next, "the partition is read again from the snapshot's offsets")
	tbl, err := r.cat.LoadTable(ctx, r.ident)
	require.NoError(t, err)
	require.Equal(t, snaps[1], tagged(tbl), "the pipeline's tag follows main")

	var se *commit.StaleEpochError
	require.ErrorAs(t, r.propose(40, 10).Err, &se, "the owner's old epoch is fenced")
	r.epoch = r.env.l.Owned("p", "a")[rigPartition]
	require.NoError(t, r.propose(20, 30).Err)
	r.waitCommitted(50)
	r.requireExactly(50)
}

// Skip: a new snapshot holds the rows of the snapshot of [0, 20) with the
// current offsets, 40; the ledger keeps reading from 40, and [20, 40) is
// never read again.
func TestRollbackSkip(t *testing.T) {
	r, w, snaps, ctx := rollbackRig(t)
	var after int64
	require.NoError(t, w.Do(ctx, func(ctx context.Context, c *commit.Committer) error {
		tbl, err := c.Rollback(ctx, snaps[1], commit.RollbackSkip)
		if err == nil {
			after = tbl.CurrentSnapshot().SnapshotID
		}
		return err
	}))
	tbl, err := r.cat.LoadTable(ctx, r.ident)
	require.NoError(t, err)
	head := tbl.CurrentSnapshot()
	require.Equal(t, after, head.SnapshotID)
	require.Equal(t, snaps[3], *head.ParentSnapshotID, "history is kept: the skip sits on top")
	require.Equal(t, "skip:"+strconv.FormatInt(snaps[1], 10), head.Summary.Properties[commit.PropRollback])
	require.Equal(t, after, tagged(tbl))
	require.Equal(t, "20", head.Summary.Properties["total-records"], "the totals are the target's")
	require.Equal(t, "20", head.Summary.Properties["deleted-records"])
	ids, _, last := r.idsOf(r.ident)
	require.Equal(t, rangeIDs(0, 20), ids)
	require.Equal(t, commit.Offsets{"tp": {0: 40}}, last)
	next, _ := r.env.l.NextExpected("p", "tp", 0)
	require.EqualValues(t, 40, next, "the skipped records are not read again")

	// The owner goes on from 40, in its epoch.
	require.NoError(t, r.propose(40, 10).Err)
	r.waitCommitted(50)
	ids, _, _ = r.idsOf(r.ident)
	want := rangeIDs(0, 20)
	for id := range rangeIDs(40, 50) {
		want[id] = 1
	}
	require.Equal(t, want, ids)

	// A skip can itself be undone by a replay rollback to the snapshot
	// before it, which brings the skipped rows back.
	require.NoError(t, w.Do(ctx, func(ctx context.Context, c *commit.Committer) error {
		_, err := c.Rollback(ctx, snaps[3], commit.RollbackReplay)
		return err
	}))
	ids, _, _ = r.idsOf(r.ident)
	require.Equal(t, rangeIDs(0, 40), ids)
}

func TestRollbackRefusals(t *testing.T) {
	_, w, snaps, ctx := rollbackRig(t)
	err := w.Do(ctx, func(ctx context.Context, c *commit.Committer) error {
		_, err := c.Rollback(ctx, 12345, commit.RollbackReplay)
		return err
	})
	require.ErrorIs(t, err, commit.ErrNotAncestor)
	err = w.Do(ctx, func(ctx context.Context, c *commit.Committer) error {
		_, err := c.Rollback(ctx, snaps[3], commit.RollbackSkip)
		return err
	})
	require.ErrorContains(t, err, "already current")
}

func tagged(tbl *table.Table) int64 {
	for name, ref := range tbl.Metadata().Refs() {
		if name == commit.TagName("p") {
			return ref.SnapshotID
		}
	}
	return 0
}

// Tags past their max-ref-age are found (floe's own never), and removing
// one commits.
func TestAgedTags(t *testing.T) {
	_, w, snaps, ctx := rollbackRig(t)
	require.NoError(t, w.Do(ctx, func(ctx context.Context, c *commit.Committer) error {
		require.NoError(t, c.SetTag(ctx, "old", snaps[0], 1))
		require.NoError(t, c.SetTag(ctx, "keep", snaps[0], 0))
		require.NoError(t, c.SetTag(ctx, "young", snaps[3], int64(time.Hour/time.Millisecond)))
		require.Error(t, c.SetTag(ctx, "old", snaps[1], 0), "a tag name is taken once")
		meta := c.Table().Metadata()
		require.Equal(t, []string{"old"}, commit.AgedTags(meta, time.Now().Add(time.Second)))
		require.NoError(t, c.RemoveTag(ctx, "old"))
		require.Empty(t, commit.AgedTags(c.Table().Metadata(), time.Now().Add(time.Second)))
		return nil
	}))
}

// A replay to a snapshot without the pipeline's offsets (another engine's)
// is refused: the ledger could not say where to read the partition from
// again, and its records would be lost.
func TestRollbackReplayNeedsTheTargetsOffsets(t *testing.T) {
	r := newWriterRig(t)
	s0 := r.foreign(1000)
	w := r.writer(r.cat, 1, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	defer func() { cancel(); <-done }()
	for i := int64(0); i < 2; i++ {
		require.NoError(t, r.propose(i*10, 10).Err)
		r.waitCommitted((i + 1) * 10)
	}
	err := w.Do(ctx, func(ctx context.Context, c *commit.Committer) error {
		_, err := c.Rollback(ctx, s0, commit.RollbackReplay)
		return err
	})
	require.ErrorIs(t, err, commit.ErrNotReplayable)
	require.ErrorContains(t, err, "tp/0")
	ids, _, last := r.idsOf(r.ident)
	want := rangeIDs(0, 20)
	want[1000] = 1 // the other engine's row
	require.Equal(t, want, ids, "nothing changed")
	require.Equal(t, commit.Offsets{"tp": {0: 20}}, last)
}

// A compaction planned before a skip rollback does not commit on top of
// it: the skip's manifests are not its parent's, so the plan is stale.
func TestRewritePlannedBeforeASkipIsStale(t *testing.T) {
	r, w, snaps, ctx := rollbackRig(t)
	tbl := r.load()
	fs, err := tbl.FS(ctx)
	require.NoError(t, err)
	mans, err := tbl.Metadata().SnapshotByID(snaps[0]).Manifests(fs)
	require.NoError(t, err)
	var old iceberg.DataFile
	for _, m := range mans {
		es, err := m.FetchEntries(fs, true)
		require.NoError(t, err)
		for _, e := range es {
			old = e.DataFile()
		}
	}
	head := tbl.CurrentSnapshot()
	rw := commit.Rewrite{Old: []iceberg.DataFile{old}, New: r.segment(0, 5).Files, BaseSnapshot: head.SnapshotID, DataSeq: head.SequenceNumber}
	require.NoError(t, w.Do(ctx, func(ctx context.Context, c *commit.Committer) error {
		_, err := c.Rollback(ctx, snaps[1], commit.RollbackSkip)
		return err
	}))
	err = w.Do(ctx, func(ctx context.Context, c *commit.Committer) error {
		_, err := c.Rewrite(ctx, rw)
		return err
	})
	require.ErrorIs(t, err, commit.ErrRewriteStale)
	ids, _, _ := r.idsOf(r.ident)
	require.Equal(t, rangeIDs(0, 20), ids)
}
