package cluster

import (
	"errors"
	"fmt"
	"testing"

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
