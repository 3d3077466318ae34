package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/floelake/floe/commit"
)

func offs(topic string, kv ...int64) commit.Offsets {
	o := commit.Offsets{}
	for i := 0; i+1 < len(kv); i += 2 {
		o.Set(topic, int32(kv[i]), kv[i+1])
	}
	return o
}

// A retried proposal whose first attempt was accepted is answered with an
// overlap expecting exactly its end: that, and only that, means accepted.
func TestAcceptedEarlier(t *testing.T) {
	prop := commit.ProposeSegment{Tables: []commit.SegmentEntry{
		{Table: "t", From: offs("k", 0, 100, 1, 50), To: offs("k", 0, 200, 1, 80)},
		{Table: "t__dlq", From: offs("k", 0, 100), To: offs("k", 0, 200)},
	}}
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"overlap ending at the segment's end", &commit.OffsetGapError{Table: "t", Topic: "k", Partition: 0, Want: 200, Got: 100}, true},
		{"overlap on the second partition", &commit.OffsetGapError{Table: "t", Topic: "k", Partition: 1, Want: 80, Got: 50}, true},
		{"wrapped", fmt.Errorf("remote: %w", &commit.OffsetGapError{Topic: "k", Partition: 0, Want: 200, Got: 100}), true},
		{"someone else moved further", &commit.OffsetGapError{Topic: "k", Partition: 0, Want: 250, Got: 100}, false},
		{"a gap, not an overlap", &commit.OffsetGapError{Topic: "k", Partition: 0, Want: 90, Got: 100}, false},
		{"a partition the segment does not cover", &commit.OffsetGapError{Topic: "k", Partition: 7, Want: 200, Got: 100}, false},
		{"stale epoch", &commit.StaleEpochError{Topic: "k", Partition: 0, Have: 1, Want: 2}, false},
		{"other", errors.New("boom"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, acceptedEarlier(tc.err, prop))
		})
	}
}

func TestRejectionKind(t *testing.T) {
	require.Equal(t, "rejected_stale_epoch", rejectionKind(&commit.StaleEpochError{}))
	require.Equal(t, "rejected_not_owner", rejectionKind(fmt.Errorf("x: %w", &commit.NotOwnerError{})))
	require.Equal(t, "rejected_offset_gap", rejectionKind(&commit.OffsetGapError{}))
	require.Equal(t, "rejected_other", rejectionKind(commit.ErrUnknownMember))
}

// A member holds back its proposals while a table has
// commit.MaxPendingSegments uncommitted segments, and goes on as soon as the
// leader commits: woken by the ledger's change notification, not by the
// periodic recheck, which the test moves out of reach.
func TestAwaitRoom(t *testing.T) {
	defer func(d time.Duration) { roomRecheck = d }(roomRecheck)
	roomRecheck = time.Hour

	l := commit.NewLedger()
	var idx uint64
	apply := func(cmd []byte, err error) commit.ApplyResult {
		t.Helper()
		require.NoError(t, err)
		idx++
		res := l.Apply(idx, cmd).(commit.ApplyResult)
		require.NoError(t, res.Err)
		return res
	}
	key := commit.PartitionKey{Pipeline: "p", Topic: "k", Partition: 0}
	apply(commit.EncodeAddMember(commit.AddMember{ID: "n1", RaftAddr: "r", APIAddr: "a", At: time.Now()}))
	apply(commit.EncodeReconcile(commit.Reconcile{Tables: []commit.ReconciledTable{{Table: "t", Pipeline: "p", Offsets: offs("k", 0, 0)}}}))
	res := apply(commit.EncodeAssign(commit.Assign{Owners: map[commit.PartitionKey]string{key: "n1"}}))
	epochs := commit.Epochs{}
	epochs.Set("k", 0, res.Epochs[key])
	var ids []uint64
	for i := range int64(commit.MaxPendingSegments) {
		r := apply(commit.EncodeProposeSegment(commit.ProposeSegment{Pipeline: "p", Owner: "n1", Epochs: epochs,
			Tables: []commit.SegmentEntry{{Table: "t", From: offs("k", 0, i), To: offs("k", 0, i+1), Records: 1}}}))
		ids = append(ids, r.SegmentID)
	}
	n := &Node{ledger: l, log: slog.New(slog.DiscardHandler)}
	prop := commit.ProposeSegment{Tables: []commit.SegmentEntry{{Table: "t"}}}

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, n.awaitRoom(ctx, prop), context.DeadlineExceeded, "full: must wait")
	require.NoError(t, n.awaitRoom(context.Background(), commit.ProposeSegment{Tables: []commit.SegmentEntry{{Table: "other"}}}), "another table is not held back")

	// The waiter says it holds back once it has found the table full; from
	// then on only a change can let it go.
	holding := make(chan struct{}, 1)
	waiter := &Node{ledger: l, log: slog.New(signalHandler{msg: "holding back", ch: holding})}
	done := make(chan error, 1)
	go func() { done <- waiter.awaitRoom(context.Background(), prop) }()
	select {
	case <-holding:
	case err := <-done:
		t.Fatalf("returned (%v) while the table was full", err)
	case <-time.After(time.Minute):
		t.Fatal("the waiter never found the table full")
	}
	select {
	case err := <-done:
		t.Fatalf("returned (%v) while the table was full", err)
	default:
	}

	apply(commit.EncodeCommitSegments(commit.CommitSegments{Table: "t", SnapshotID: 1, Offsets: offs("k", 0, 10), Segments: ids[:10]}))
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatalf("still held back 30s after the leader committed (the recheck is every %v): the change was not notified", roomRecheck)
	}
}

// signalHandler is a slog.Handler that signals ch (without blocking) for
// every record at Warn or above whose message contains msg.
type signalHandler struct {
	msg string
	ch  chan<- struct{}
}

func (h signalHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h signalHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn && strings.Contains(r.Message, h.msg) {
		select {
		case h.ch <- struct{}{}:
		default:
		}
	}
	return nil
}

func (h signalHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h signalHandler) WithGroup(string) slog.Handler      { return h }
