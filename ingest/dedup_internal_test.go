package ingest

import (
	"strings"
	"testing"

	"github.com/floelake/floe/commit"
)

// TestReaches: a run's state is rebuilt from a table and the segments
// accepted after it only when they meet the start offsets without a gap.
func TestReaches(t *testing.T) {
	offs := func(kv ...int64) commit.Offsets {
		o := commit.Offsets{}
		for i := 0; i < len(kv); i += 2 {
			o.Set("t", int32(kv[i]), kv[i+1])
		}
		return o
	}
	seg := func(p int32, from, to int64) commit.SegmentEntry {
		return commit.SegmentEntry{From: offs(int64(p), from), To: offs(int64(p), to)}
	}
	for _, tc := range []struct {
		name     string
		table    commit.Offsets
		accepted []commit.SegmentEntry
		start    commit.Offsets
		gap      string
	}{
		{"the table alone", offs(0, 10, 1, 5), nil, offs(0, 10, 1, 5), ""},
		{"the table and its pending segments", offs(0, 10), []commit.SegmentEntry{seg(0, 10, 20), seg(0, 20, 25)}, offs(0, 25), ""},
		{"a segment committed since the ledger was read", offs(0, 20), []commit.SegmentEntry{seg(0, 10, 20), seg(0, 20, 25)}, offs(0, 25), ""},
		{"a partition the table has not reached", offs(), []commit.SegmentEntry{seg(0, 3, 8)}, offs(0, 8), ""},
		{"a partition with nothing yet", offs(), nil, offs(0, 7), ""},
		{"a table ahead of the start (another table behind)", offs(0, 30), nil, offs(0, 25), ""},
		{"a table that lags the ledger", offs(0, 5), []commit.SegmentEntry{seg(0, 10, 20)}, offs(0, 20), "do not meet on t/0"},
		{"a segment missing at the end", offs(0, 10), []commit.SegmentEntry{seg(0, 10, 20)}, offs(0, 25), "reach 20 on t/0, the run starts at 25"},
		{"another partition's gap", offs(0, 10, 1, 3), []commit.SegmentEntry{seg(0, 10, 12)}, offs(0, 12, 1, 9), "t/1"},
	} {
		err := reaches(tc.table, tc.accepted, tc.start)
		switch {
		case tc.gap == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.gap != "" && (err == nil || !strings.Contains(err.Error(), tc.gap)):
			t.Errorf("%s: error %v, want one saying %q", tc.name, err, tc.gap)
		}
	}
}
