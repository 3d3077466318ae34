package maintain

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/floelake/floe/internal/conf"
)

func d(x time.Duration) conf.Duration { return conf.Duration(x) }

// history is one snapshot per second for span, ending at now.
func history(now time.Time, span time.Duration) []Snap {
	var out []Snap
	for i := int64(0); i < int64(span/time.Second); i++ {
		ts := now.Add(-time.Duration(i) * time.Second).UnixMilli()
		out = append(out, Snap{ID: ts, TimestampMs: ts})
	}
	return out
}

func kept(snaps []Snap, expired []int64) map[int64]bool {
	gone := map[int64]bool{}
	for _, id := range expired {
		gone[id] = true
	}
	out := map[int64]bool{}
	for _, s := range snaps {
		if !gone[s.ID] {
			out[s.ID] = true
		}
	}
	return out
}

func TestDefaultTiersBoundTheHistory(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	tiers := DefaultConfig().Expiry.Keep
	// Two days of 1-second commits.
	snaps := history(now, 48*time.Hour)
	k := kept(snaps, SelectExpired(snaps, nil, now, tiers))
	// 600 of the last 10 minutes, then one per 10 minutes up to a day,
	// one per hour up to 7 days.
	require.InDelta(t, 600+144+24, len(k), 3)
	for _, s := range snaps {
		age := now.Sub(time.UnixMilli(s.TimestampMs))
		if age < 10*time.Minute {
			require.True(t, k[s.ID], "every snapshot of the last 10 minutes is kept")
		}
	}
}

func TestExpiryIsStableAsSnapshotsAge(t *testing.T) {
	// A snapshot removed once is never needed again: what a later run
	// keeps is a subset of what an earlier run kept (plus new snapshots).
	tiers := DefaultConfig().Expiry.Keep
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	snaps := history(now, 3*time.Hour)
	first := kept(snaps, SelectExpired(snaps, nil, now, tiers))
	var remaining []Snap
	for _, s := range snaps {
		if first[s.ID] {
			remaining = append(remaining, s)
		}
	}
	later := now.Add(2 * time.Hour)
	second := kept(remaining, SelectExpired(remaining, nil, later, tiers))
	// Each 10-minute bucket older than 10 minutes at the later time keeps
	// its newest snapshot, which the first run kept too.
	buckets := map[int64]bool{}
	for id := range second {
		require.True(t, first[id])
		buckets[id/(10*60*1000)] = true
	}
	require.Len(t, buckets, len(second), "one snapshot per 10-minute bucket")
}

func TestProtectedSnapshotsStay(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	tiers := []Tier{{Every: 0, For: d(time.Minute)}}
	snaps := history(now, time.Hour)
	old := snaps[len(snaps)-1]
	expired := SelectExpired(snaps, map[int64]bool{old.ID: true}, now, tiers)
	require.NotContains(t, expired, old.ID, "a tagged snapshot stays whatever its age")
	require.Len(t, expired, len(snaps)-60-1)
	for i := 1; i < len(expired); i++ {
		require.Less(t, expired[i-1], expired[i], "oldest first")
	}
}

func TestTiersValidate(t *testing.T) {
	c := DefaultConfig()
	require.NoError(t, c.Validate())
	c.Expiry.Keep = []Tier{{For: d(time.Hour)}, {Every: d(time.Minute), For: d(time.Minute)}}
	c.Compaction.FanIn = 1
	err := c.Validate()
	require.ErrorContains(t, err, "expiry.keep[1].for: must be longer than the previous tier's (1h0m0s), got 1m0s")
	require.ErrorContains(t, err, "compaction.fan_in: must be 2 to 64, got 1")
	c = DefaultConfig()
	c.Expiry.Keep = nil
	require.ErrorContains(t, c.Validate(), "expiry.keep: must list at least one tier")
	c = DefaultConfig()
	c.Compaction.DeleteFiles, c.Compaction.DeleteRatio = -1, 1.5
	err = c.Validate()
	require.ErrorContains(t, err, "compaction.delete_files: must not be negative (0: never), got -1")
	require.ErrorContains(t, err, "compaction.delete_ratio: must be between 0 (never) and 1, got 1.5")
}
