package commit_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/floelake/floe/commit"
)

// A table rolled back behind the ledger: the ledger takes its offsets, drops
// every pending segment of the pipeline, and restarts the owners of the
// partitions that moved (epoch + 1, same owner) at the lowest offset over
// the pipeline's tables.
func TestLedgerAdoptTableBehind(t *testing.T) {
	h := commitFixture(t)
	h.ok(commit.EncodeCommitSegments(commit.CommitSegments{Table: "A", SnapshotID: 7, Offsets: commit.Offsets{"t": {0: 20, 1: 5}}, Segments: []uint64{4, 5}}))
	h.ok(commit.EncodeCommitSegments(commit.CommitSegments{Table: "B", SnapshotID: 8, Offsets: commit.Offsets{"t": {0: 10}}, Segments: []uint64{4}}))
	require.Equal(t, []uint64{6}, pendingIDs(h.l, "A"))
	before := h.l.Owned("p", "a")

	// A is rolled back to t/0 = 10, t/1 = 0.
	res := h.ok(commit.EncodeAdoptTable(commit.AdoptTable{Table: "A", Pipeline: "p", SnapshotID: 3, Offsets: commit.Offsets{"t": {0: 10, 1: 0}}}))
	require.Equal(t, []commit.OffsetRegressionError{
		{Table: "A", Topic: "t", Partition: 0, Have: 20, Got: 10},
		{Table: "A", Topic: "t", Partition: 1, Have: 5, Got: 0},
	}, res.Behind)
	require.Equal(t, []uint64{6}, res.Dropped)
	require.Empty(t, h.l.Pending("A"))
	c, _ := h.l.Committed("A")
	require.Equal(t, commit.TableCommit{Pipeline: "p", Offsets: commit.Offsets{"t": {0: 10, 1: 0}}, SnapshotID: 3}, c)
	require.Equal(t, commit.Offsets{"t": {0: 10, 1: 0}}, h.l.TableEnd("A"))
	require.Equal(t, commit.Offsets{"t": {0: 10}}, h.l.TableEnd("B"))

	// Both partitions restart where the lowest table ends, same owner,
	// next epoch: the owner's in-flight proposals are now stale.
	for part, want := range map[int32]int64{0: 10, 1: 0} {
		next, ok := h.l.NextExpected("p", "t", part)
		require.True(t, ok)
		require.Equal(t, want, next, "partition %d", part)
	}
	after := h.l.Owned("p", "a")
	for k, e := range before {
		require.Equal(t, e+1, after[k], "%s", k)
	}
	require.ElementsMatch(t, []commit.PartitionKey{pk("p", "t", 0), pk("p", "t", 1)}, res.Moved)
	stale := h.apply(commit.EncodeProposeSegment(proposal("p", "a", before[pk("p", "t", 0)], entry("A", rng{"t", 0, 30, 40}))))
	requireLedgerErr(t, &commit.StaleEpochError{Pipeline: "p", Topic: "t", Partition: 0, Have: 1, Want: 2}, stale.Err)

	// The owner resumes at the new epoch from the table's offsets; B takes
	// records only past its own offset.
	h.ok(commit.EncodeProposeSegment(proposal("p", "a", after[pk("p", "t", 0)],
		entry("A", rng{"t", 0, 10, 25}), entry("B", rng{"t", 0, 10, 25}))))
	require.Len(t, h.l.Pending("A"), 1)
}

// Adopting offsets the ledger already has changes nothing but the snapshot.
func TestLedgerAdoptTableNoop(t *testing.T) {
	h := newHarness(t)
	h.member("a")
	h.assign(map[commit.PartitionKey]string{pk("p", "t", 0): "a"})
	h.ok(commit.EncodeReconcile(commit.Reconcile{Tables: []commit.ReconciledTable{{Table: "A", Pipeline: "p", SnapshotID: 1, Offsets: commit.Offsets{"t": {0: 5}}}}}))
	epochs := h.l.Owned("p", "a")
	res := h.ok(commit.EncodeAdoptTable(commit.AdoptTable{Table: "A", Pipeline: "p", SnapshotID: 2, Offsets: commit.Offsets{"t": {0: 5}}}))
	require.Empty(t, res.Behind)
	require.Empty(t, res.Moved)
	require.Equal(t, epochs, h.l.Owned("p", "a"))
	c, _ := h.l.Committed("A")
	require.Equal(t, int64(2), c.SnapshotID)
}

func TestLedgerAdoptTableRejections(t *testing.T) {
	h := commitFixture(t)
	before := h.state()
	requireLedgerErr(t, commit.ErrBadCommand, h.apply(commit.EncodeAdoptTable(commit.AdoptTable{Pipeline: "p", Offsets: commit.Offsets{}})).Err)
	requireLedgerErr(t, commit.ErrPipelineMismatch, h.apply(commit.EncodeAdoptTable(commit.AdoptTable{Table: "A", Pipeline: "q", Offsets: commit.Offsets{}})).Err)
	require.Equal(t, before, h.state())
}
