package commit_test

import (
	"context"
	"testing"

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
