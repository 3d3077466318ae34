package commit_test

import (
	"context"
	"testing"
	"time"

	"github.com/apache/iceberg-go/table"
	"github.com/stretchr/testify/require"

	"github.com/floelake/floe/commit"
)

func TestOffsetsEncodeIsCanonical(t *testing.T) {
	o := commit.Offsets{"b": {10: 5, 2: 7}, "a": {0: 1}}
	require.Equal(t, `{"a":{"0":1},"b":{"2":7,"10":5}}`, o.Encode())
	back, err := commit.ParseOffsets(o.Encode())
	require.NoError(t, err)
	require.Equal(t, o, back)
	require.Equal(t, "{}", commit.Offsets{}.Encode())
}

func TestParseOffsetsRejectsGarbage(t *testing.T) {
	for _, s := range []string{``, `[]`, `{"t":{"x":1}}`, `{"t":{"-1":1}}`, `{"t":{"0":-5}}`, `{"t":{"0":"1"}}`} {
		_, err := commit.ParseOffsets(s)
		require.ErrorIs(t, err, commit.ErrBadOffsets, "input %q", s)
	}
}

func TestOffsetsCoversAndMerge(t *testing.T) {
	a := commit.Offsets{"t": {0: 10, 1: 5}}
	require.True(t, a.Covers(commit.Offsets{"t": {0: 10}}))
	require.False(t, a.Covers(commit.Offsets{"t": {0: 11}}))
	require.False(t, a.Covers(commit.Offsets{"u": {0: 1}}))
	m := a.Merge(commit.Offsets{"t": {1: 9}, "u": {0: 1}})
	require.Equal(t, commit.Offsets{"t": {0: 10, 1: 9}, "u": {0: 1}}, m)
	require.Equal(t, commit.Offsets{"t": {0: 10, 1: 5}}, a, "merge does not modify its receiver")
	require.Equal(t, 3, m.Len())
}

// TestTableOffsetsWalksAncestry: a snapshot written by someone else (no
// floe.offsets) on top of floe's does not hide floe's offsets, and another
// pipeline's offsets are not taken for ours.
func TestTableOffsetsWalksAncestry(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	_, err := f.committer(f.cat).Commit(ctx, f.segment(0, 5))
	require.NoError(t, err)

	tbl, err := f.cat.LoadTable(ctx, f.ident)
	require.NoError(t, err)
	tx := tbl.NewTransaction()
	require.NoError(t, tx.AddDataFiles(ctx, f.segment(100, 1).Files, map[string]string{commit.PropPipeline: "other", commit.PropOffsets: `{"x":{"0":9}}`}))
	tbl, err = tx.Commit(ctx)
	require.NoError(t, err)
	tx = tbl.NewTransaction()
	require.NoError(t, tx.AddDataFiles(ctx, f.segment(200, 1).Files, nil))
	tbl, err = tx.Commit(ctx)
	require.NoError(t, err)

	off, snap, found, err := commit.TableOffsets(tbl, "p")
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, commit.Offsets{"tp": {0: 5}}, off)
	require.NotEqual(t, tbl.CurrentSnapshot().SnapshotID, snap)

	_, _, found, err = commit.TableOffsets(tbl, "nobody")
	require.NoError(t, err)
	require.False(t, found)
}

// expireAllButHead expires every snapshot except main's head and those a tag
// references, as Spark's expire_snapshots(retain_last => 1) does.
func (f *fixture) expireAllButHead() {
	f.t.Helper()
	tbl := f.load()
	// Expiry keeps snapshots as young as the clock's current millisecond:
	// let it pass the newest.
	var newest int64
	for _, s := range tbl.Metadata().Snapshots() {
		newest = max(newest, s.TimestampMs)
	}
	for time.Now().UnixMilli() <= newest {
		time.Sleep(time.Millisecond)
	}
	tx := tbl.NewTransaction()
	require.NoError(f.t, tx.ExpireSnapshots(table.WithRetainLast(1), table.WithOlderThan(0)))
	_, err := tx.Commit(context.Background())
	require.NoError(f.t, err)
}

func (f *fixture) deleteTag() {
	f.t.Helper()
	_, _, err := f.cat.CommitTable(context.Background(), f.ident, nil,
		[]table.Update{table.NewRemoveSnapshotRefUpdate(commit.TagName("p"))})
	require.NoError(f.t, err)
	require.Zero(f.t, f.tagged(f.load()))
}

// TestTableOffsetsAncestryCut: another engine commits on top of floe and
// expires everything but its own head. The tag keeps floe's last commit;
// without it, floe refuses rather than restart from the configured start.
func TestTableOffsetsAncestryCut(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	c := f.committer(f.cat)
	for i := int64(0); i < 3; i++ {
		_, err := c.Commit(ctx, f.segment(i*10, 10))
		require.NoError(t, err)
	}
	last := c.LastSnapshot()
	require.Equal(t, last, f.tagged(f.load()))

	// One foreign snapshot, then expiry: the tag keeps its parent, floe's
	// last commit, so the history is not even cut.
	f.foreign(1_000_000)
	f.expireAllButHead()
	tbl := f.load()
	require.Len(t, tbl.Metadata().Snapshots(), 2, "main's head and the tagged snapshot")
	off, snap, found, err := commit.TableOffsets(tbl, "p")
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, commit.Offsets{"tp": {0: 30}}, off)
	require.Equal(t, last, snap)

	// Two more, then expiry: main's history now ends at a snapshot whose
	// parent is gone. The tag's offsets stand in.
	f.foreign(1_000_001)
	head := f.foreign(1_000_002)
	f.expireAllButHead()
	tbl = f.load()
	require.Len(t, tbl.Metadata().Snapshots(), 2)
	cutParent := *tbl.CurrentSnapshot().ParentSnapshotID
	require.Nil(t, tbl.Metadata().SnapshotByID(cutParent), "the history is cut")
	off, snap, found, err = commit.TableOffsets(tbl, "p")
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, commit.Offsets{"tp": {0: 30}}, off)
	require.Equal(t, last, snap)

	// Without the tag, floe refuses, and says where the history ends.
	f.deleteTag()
	_, _, found, err = commit.TableOffsets(f.load(), "p")
	require.False(t, found)
	require.ErrorIs(t, err, commit.ErrAncestryCut)
	var cut *commit.AncestryCutError
	require.ErrorAs(t, err, &cut)
	require.Equal(t, commit.AncestryCutError{
		Table: "db.t", Pipeline: "p", SnapshotID: head, MissingParent: cutParent, Reason: cut.Reason,
	}, *cut)
	require.Contains(t, err.Error(), commit.TagName("p"))
	require.Contains(t, err.Error(), "floe.offsets")
	require.Equal(t, commit.ClassFatal, commit.Classify(err))
	_, err = commit.New(ctx, f.cat, commit.Config{Pipeline: "p", Table: f.ident})
	require.ErrorIs(t, err, commit.ErrAncestryCut, "a committer does not start either")

	// A pipeline that never wrote to the table cannot tell either.
	_, _, _, err = commit.TableOffsets(f.load(), "nobody")
	require.ErrorIs(t, err, commit.ErrAncestryCut)
}

// TestTableOffsetsResumeFromTag: a committer started on a cut history
// resumes from the tag, and its next commit moves the tag and restores a
// history that carries the offsets.
func TestTableOffsetsResumeFromTag(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	_, err := f.committer(f.cat).Commit(ctx, f.segment(0, 10))
	require.NoError(t, err)
	f.foreign(1_000_000)
	f.foreign(1_000_001)
	f.expireAllButHead()

	c := f.committer(f.cat)
	require.Equal(t, commit.Offsets{"tp": {0: 10}}, c.Offsets())
	res, err := c.Commit(ctx, f.segment(10, 10))
	require.NoError(t, err)
	tbl := f.load()
	require.Equal(t, res.SnapshotID, f.tagged(tbl))
	off, snap, found, err := commit.TableOffsets(tbl, "p")
	require.NoError(t, err)
	require.True(t, found)
	require.Equal(t, res.SnapshotID, snap)
	require.Equal(t, commit.Offsets{"tp": {0: 20}}, off)
}

// TestTableOffsetsRefusesTagPastTheCut: main was moved back past floe's last
// commit, then the history was cut. The tag's snapshot is newer than the
// oldest snapshot left on main, so it cannot be an ancestor: its records may
// not be in the table, and floe refuses rather than skip them.
func TestTableOffsetsRefusesTagPastTheCut(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	_, err := f.committer(f.cat).Commit(ctx, f.segment(0, 10))
	require.NoError(t, err)
	f.foreign(1_000_000)
	back := f.foreign(1_000_001)
	c := f.committer(f.cat)
	res, err := c.Commit(ctx, f.segment(10, 10))
	require.NoError(t, err)
	require.NoError(t, setMain(ctx, f.cat, f.ident, res.SnapshotID, back))
	f.expireAllButHead()

	tbl := f.load()
	require.Equal(t, res.SnapshotID, f.tagged(tbl), "the tag still references floe's last commit")
	_, _, found, err := commit.TableOffsets(tbl, "p")
	require.False(t, found)
	var cut *commit.AncestryCutError
	require.ErrorAs(t, err, &cut)
	require.Equal(t, back, cut.SnapshotID)
	require.Contains(t, cut.Reason, "rollback")
}

// TestFindCommitOnlyOnMainAncestry: a commit id in a snapshot main no
// longer descends from (rolled back) is not found; one on main is.
func TestFindCommitOnlyOnMainAncestry(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	c := f.committer(f.cat)
	var snaps []int64
	var ids []string
	for i := int64(0); i < 2; i++ {
		res, err := c.Commit(ctx, f.segment(i*10, 10))
		require.NoError(t, err)
		snaps = append(snaps, res.SnapshotID)
		ids = append(ids, f.load().CurrentSnapshot().Summary.Properties[commit.PropCommitID])
	}
	snap, ok := commit.FindCommit(f.load(), ids[1])
	require.True(t, ok)
	require.Equal(t, snaps[1], snap)

	require.NoError(t, setMain(ctx, f.cat, f.ident, snaps[1], snaps[0]))
	tbl := f.load()
	require.NotNil(t, tbl.Metadata().SnapshotByID(snaps[1]), "still in the metadata")
	_, ok = commit.FindCommit(tbl, ids[1])
	require.False(t, ok, "rolled back: not on main")
	snap, ok = commit.FindCommit(tbl, ids[0])
	require.True(t, ok)
	require.Equal(t, snaps[0], snap)
}
