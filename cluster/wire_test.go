package cluster

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/floelake/floe/commit"
	clusterv1 "github.com/floelake/floe/proto/floe/cluster/v1"
)

// throughBytes marshals m and unmarshals it into a new message, as the wire
// does.
func throughBytes[M proto.Message](t *testing.T, m M) M {
	t.Helper()
	b, err := proto.Marshal(m)
	require.NoError(t, err)
	out := m.ProtoReflect().New().Interface().(M)
	require.NoError(t, proto.Unmarshal(b, out))
	return out
}

func ledgerErrorRoundTrip(t *testing.T, err error) error {
	t.Helper()
	le := ledgerErrorToWire(err)
	if le == nil {
		return nil
	}
	return ledgerErrorFromWire(throughBytes(t, le))
}

func TestWireLedgerTypedErrors(t *testing.T) {
	for _, err := range []error{
		&commit.StaleEpochError{Pipeline: "orders", Topic: "t", Partition: 3, Have: 4, Want: 7},
		&commit.NotOwnerError{Pipeline: "orders", Topic: "t", Partition: 3, Owner: "n1", Proposer: "n2"},
		&commit.NotOwnerError{Pipeline: "orders", Topic: "t", Partition: 0, Proposer: "n2"},
		&commit.OffsetGapError{Table: "db.t", Topic: "t", Partition: 1, Want: 10, Got: 15},
		&commit.OffsetGapError{Table: "db.t", Topic: "t", Partition: 1, Want: 10, Got: 5},
		&commit.OffsetRegressionError{Table: "db.t", Topic: "t", Partition: 2, Have: 100, Got: 90},
	} {
		t.Run(fmt.Sprintf("%T", err), func(t *testing.T) {
			// The same pointer type with the same fields and text.
			require.Equal(t, err, ledgerErrorRoundTrip(t, err))
		})
	}
}

func TestWireLedgerTypedErrorWrapped(t *testing.T) {
	stale := &commit.StaleEpochError{Pipeline: "p", Topic: "t", Partition: 1, Have: 1, Want: 2}
	err := fmt.Errorf("propose: %w", stale)
	got := ledgerErrorRoundTrip(t, err)
	require.EqualError(t, got, err.Error())
	var back *commit.StaleEpochError
	require.ErrorAs(t, got, &back)
	require.Equal(t, stale, back)

	gap := &commit.OffsetGapError{Table: "db.t", Topic: "t", Partition: 1, Want: 3, Got: 4}
	got = ledgerErrorRoundTrip(t, fmt.Errorf("commit: %w", gap))
	var backGap *commit.OffsetGapError
	require.ErrorAs(t, got, &backGap)
	require.Equal(t, gap, backGap)
}

func TestWireLedgerSentinels(t *testing.T) {
	sentinels := []error{
		commit.ErrBadCommand, commit.ErrStaleIndex, commit.ErrUnknownMember, commit.ErrUnknownSegment,
		commit.ErrNotCovered, commit.ErrPartialCommit, commit.ErrPipelineMismatch, commit.ErrBadSnapshot,
		commit.ErrBadOffsets, commit.ErrClosed,
	}
	require.Len(t, sentinels, len(ledgerSentinels), "every sentinel the wire knows is tested")
	for _, s := range sentinels {
		t.Run(s.Error(), func(t *testing.T) {
			// As the ledger builds them: equal, not only alike.
			err := fmt.Errorf("%w: %q", s, "n9")
			got := ledgerErrorRoundTrip(t, err)
			require.Equal(t, err, got)
			require.ErrorIs(t, got, s)

			// The bare sentinel comes back as itself.
			require.Same(t, s, ledgerErrorRoundTrip(t, s))

			// Another shape keeps its text and its sentinel.
			err = fmt.Errorf("apply entry 7: %w", s)
			got = ledgerErrorRoundTrip(t, err)
			require.EqualError(t, got, err.Error())
			require.ErrorIs(t, got, s)
			for _, other := range sentinels {
				if other != s {
					require.NotErrorIs(t, got, other)
				}
			}
		})
	}
}

func TestWireLedgerOtherErrors(t *testing.T) {
	require.NoError(t, ledgerErrorRoundTrip(t, nil))
	require.Nil(t, ledgerErrorFromWire(nil))

	err := errors.New("something else")
	got := ledgerErrorRoundTrip(t, err)
	require.EqualError(t, got, "something else")
	for _, s := range ledgerSentinels {
		require.NotErrorIs(t, got, s.err)
	}

	// A sentinel a newer peer knows and this build does not: the text.
	got = ledgerErrorFromWire(&clusterv1.LedgerError{Message: "commit: new", Kind: &clusterv1.LedgerError_Sentinel{Sentinel: 99}})
	require.EqualError(t, got, "commit: new")
}

func TestWireApplyResult(t *testing.T) {
	for name, res := range map[string]commit.ApplyResult{
		"empty": {},
		"assign": {
			Type: commit.CmdAssign,
			Epochs: map[commit.PartitionKey]uint64{
				{Pipeline: "b", Topic: "t", Partition: 0}: 3,
				{Pipeline: "a", Topic: "t", Partition: 1}: 2,
				{Pipeline: "a", Topic: "t", Partition: 0}: 1,
			},
		},
		"propose": {Type: commit.CmdProposeSegment, SegmentID: 42},
		"rejected": {
			Type: commit.CmdProposeSegment,
			Err:  &commit.NotOwnerError{Pipeline: "p", Topic: "t", Partition: 1, Owner: "n1", Proposer: "n2"},
		},
		"reconcile": {
			Type:      commit.CmdReconcile,
			Dropped:   []uint64{3, 5},
			Conflicts: []uint64{9},
			Behind: []commit.OffsetRegressionError{
				{Table: "db.a", Topic: "t", Partition: 0, Have: 10, Got: 4},
				{Table: "db.b", Topic: "t", Partition: 2, Have: 7, Got: 1},
			},
		},
		"bad command": {Err: fmt.Errorf("%w: unknown command type %q", commit.ErrBadCommand, "x")},
	} {
		t.Run(name, func(t *testing.T) {
			require.Equal(t, res, applyResultFromWire(throughBytes(t, applyResultToWire(res))))
		})
	}

	// Epochs go out sorted: the encoding is deterministic.
	w := applyResultToWire(commit.ApplyResult{Epochs: map[commit.PartitionKey]uint64{
		{Pipeline: "b", Topic: "t", Partition: 0}:  3,
		{Pipeline: "a", Topic: "u", Partition: 0}:  2,
		{Pipeline: "a", Topic: "t", Partition: 10}: 1,
		{Pipeline: "a", Topic: "t", Partition: 2}:  1,
	}})
	var keys []string
	for _, e := range w.GetEpochs() {
		keys = append(keys, fmt.Sprintf("%s/%s/%d", e.GetPipeline(), e.GetTopic(), e.GetPartition()))
	}
	require.Equal(t, []string{"a/t/2", "a/t/10", "a/u/0", "b/t/0"}, keys)
}

func TestWireStatusAndJoin(t *testing.T) {
	s := fullStatus()
	require.Equal(t, s, statusFromWire(throughBytes(t, statusToWire(s))))
	require.Equal(t, Status{}, statusFromWire(throughBytes(t, statusToWire(Status{}))))

	// A time in another zone comes back as the same instant, in UTC.
	at := time.Date(2026, 5, 1, 14, 0, 0, 5, time.FixedZone("x", 2*3600))
	back := statusFromWire(throughBytes(t, statusToWire(Status{Members: []MemberStatus{{LastHeartbeat: at}}})))
	require.True(t, at.Equal(back.Members[0].LastHeartbeat))
	require.Equal(t, time.UTC, back.Members[0].LastHeartbeat.Location())

	req := JoinRequest{NodeID: "n3", RaftAddr: "10.0.0.3:7946", APIAddr: "10.0.0.3:7947"}
	require.Equal(t, req, joinRequestFromWire(throughBytes(t, joinRequestToWire(req))))
}

// fullStatus sets every field of Status, with times in UTC.
func fullStatus() Status {
	return Status{
		NodeID:        "n1",
		LeaderID:      "n2",
		LeaderAPIAddr: "10.0.0.2:7947",
		Term:          7,
		AppliedIndex:  1234,
		Members: []MemberStatus{
			{ID: "n1", RaftAddr: "10.0.0.1:7946", APIAddr: "10.0.0.1:7947", Suffrage: "voter", LastHeartbeat: time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC), Alive: true, Partitions: 3},
			{ID: "n2", RaftAddr: "10.0.0.2:7946", APIAddr: "10.0.0.2:7947", Suffrage: "nonvoter", LastHeartbeat: time.Date(2026, 3, 1, 11, 59, 58, 0, time.UTC), Partitions: 1},
			// Known to the ledger only, never heard from.
			{ID: "n3", RaftAddr: "10.0.0.3:7946"},
		},
		Partitions: []PartitionStatus{
			{Pipeline: "orders", Topic: "t", Partition: 0, Owner: "n1", Epoch: 4, NextExpected: 100, Committed: 90, End: 120, Lag: 30},
			{Pipeline: "orders", Topic: "t", Partition: 1, Epoch: 2, NextExpected: -1, Committed: -1, End: -1, Lag: -1},
		},
		Tables: []TableStatus{
			{Table: "db.orders", Pipeline: "orders", SnapshotID: 8812345678901234567, PendingSegments: 2, PendingRecords: 5000},
			{Table: "db.orders_audit", Pipeline: "orders", SnapshotID: -1},
		},
	}
}
