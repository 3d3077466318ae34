package commit_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/stretchr/testify/require"

	"github.com/floelake/floe/commit"
	"github.com/floelake/floe/raftstore"
)

// TestLedgerReplicatedThroughLeaderChange runs the ledger as the FSM of three
// raft members: a node's segments are accepted, the leader dies, the new
// leader keeps fencing with the same state (a zombie's stale-epoch proposal
// is rejected, the new owner's contiguous one accepted), and every surviving
// replica holds byte-identical state.
func TestLedgerReplicatedThroughLeaderChange(t *testing.T) {
	ids := []string{"n1", "n2", "n3"}
	ledgers := map[string]*commit.Ledger{}
	nodes := map[string]*raftstore.Node{}
	var members []raftstore.Member
	var transports []*raft.InmemTransport
	for _, id := range ids {
		l := commit.NewLedger()
		n, addr, tr := raftstore.OpenInMemory(id, l)
		ledgers[id], nodes[id] = l, n
		transports = append(transports, tr)
		members = append(members, raftstore.Member{ID: id, Address: string(addr), Suffrage: raftstore.Voter})
	}
	raftstore.ConnectInMemory(transports...)
	require.NoError(t, nodes["n1"].Bootstrap(members...))
	defer func() {
		for _, n := range nodes {
			_ = n.Shutdown()
		}
	}()

	leader := func() *raftstore.Node {
		var found *raftstore.Node
		require.Eventually(t, func() bool {
			for _, n := range nodes {
				if n.IsLeader() {
					found = n
					return true
				}
			}
			return false
		}, 10*time.Second, 10*time.Millisecond)
		return found
	}
	apply := func(cmd []byte, err error) commit.ApplyResult {
		t.Helper()
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		res, err := leader().Apply(ctx, cmd)
		require.NoError(t, err)
		return res.(commit.ApplyResult)
	}

	now := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	for _, id := range ids {
		require.NoError(t, apply(commit.EncodeAddMember(commit.AddMember{ID: id, RaftAddr: id, At: now})).Err)
	}
	key := commit.PartitionKey{Pipeline: "p", Topic: "t", Partition: 0}
	res := apply(commit.EncodeAssign(commit.Assign{Owners: map[commit.PartitionKey]string{key: "n2"}}))
	require.NoError(t, res.Err)
	epoch1 := res.Epochs[key]

	seg := func(owner string, epoch uint64, from, to int64) ([]byte, error) {
		return commit.EncodeProposeSegment(commit.ProposeSegment{
			Pipeline: "p", Owner: owner, Epochs: commit.Epochs{"t": {0: epoch}},
			Tables: []commit.SegmentEntry{{Table: "db.t", From: commit.Offsets{"t": {0: from}}, To: commit.Offsets{"t": {0: to}}, Records: to - from}},
		})
	}
	require.NoError(t, apply(seg("n2", epoch1, 0, 100)).Err)

	// The leader dies; the partition moves from n2 to n3.
	old := leader()
	require.NoError(t, old.Shutdown())
	delete(nodes, old.ID())
	delete(ledgers, old.ID())
	res = apply(commit.EncodeAssign(commit.Assign{Owners: map[commit.PartitionKey]string{key: "n3"}}))
	require.NoError(t, res.Err)
	epoch2 := res.Epochs[key]
	require.Equal(t, epoch1+1, epoch2)

	// n2 is a zombie now: right offsets, stale epoch.
	var stale *commit.StaleEpochError
	require.ErrorAs(t, apply(seg("n2", epoch1, 100, 200)).Err, &stale)
	// n3 continues exactly where the accepted segment ended.
	require.NoError(t, apply(seg("n3", epoch2, 100, 200)).Err)
	var gap *commit.OffsetGapError
	require.ErrorAs(t, apply(seg("n3", epoch2, 250, 300)).Err, &gap)

	require.NoError(t, leader().Barrier(context.Background()))
	var images [][]byte
	require.Eventually(t, func() bool {
		images = images[:0]
		for _, l := range ledgers {
			snap, err := l.Snapshot()
			require.NoError(t, err)
			var buf bytes.Buffer
			require.NoError(t, snap.Persist(&buf))
			images = append(images, buf.Bytes())
		}
		return bytes.Equal(images[0], images[1])
	}, 10*time.Second, 20*time.Millisecond, "replicas converge to identical state")
	for _, l := range ledgers {
		require.Len(t, l.Pending("db.t"), 2)
		next, ok := l.NextExpected("p", "t", 0)
		require.True(t, ok)
		require.EqualValues(t, 200, next)
	}
}
