package maintain

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

const mib = 1 << 20

func opts() PlanOptions {
	return PlanOptions{Target: 512 * mib, FanIn: 4, MaxSmallFiles: 16, MaxBytes: 2 << 30}
}

func files(part string, sizes ...int64) []File {
	out := make([]File, len(sizes))
	for i, s := range sizes {
		out[i] = File{Path: fmt.Sprintf("%s/f%03d", part, i), Partition: part, Size: s}
	}
	return out
}

func paths(g Group) []string {
	out := make([]string, len(g.Files))
	for i, f := range g.Files {
		out[i] = f.Path
	}
	return out
}

func TestTiers(t *testing.T) {
	o := opts()
	require.Equal(t, 0, o.Tier(200*mib), "within a factor FanIn of the target")
	require.Equal(t, 1, o.Tier(100*mib))
	require.Equal(t, 2, o.Tier(20*mib))
	require.Equal(t, 4, o.Tier(mib))
	require.Equal(t, 0, o.Tier(600*mib), "larger than the target")
	require.True(t, o.Small(File{Size: 383 * mib}))
	require.False(t, o.Small(File{Size: 384 * mib}), "three quarters of the target is done")
}

func TestPlanWaitsForAFullTier(t *testing.T) {
	o := opts()
	require.Empty(t, Plan(files("p", mib, mib, mib), o), "three files of one tier: not yet")
	got := Plan(files("p", mib, mib, mib, mib), o)
	require.Len(t, got, 1)
	require.Len(t, got[0].Files, 4)
	require.Equal(t, int64(4*mib), got[0].Bytes)
}

func TestPlanKeepsTiersApart(t *testing.T) {
	o := opts()
	// Four 1MiB files and three 20MiB ones: only the small tier is full,
	// and the big files are not rewritten with it.
	fs := append(files("p", mib, mib, mib, mib), files("q", 20*mib, 20*mib, 20*mib)...)
	for i := range fs[4:] {
		fs[4+i].Partition = "p"
	}
	got := Plan(fs, o)
	require.Len(t, got, 1)
	for _, f := range got[0].Files {
		require.Equal(t, int64(mib), f.Size)
	}
}

func TestPlanNeverMixesPartitions(t *testing.T) {
	o := opts()
	fs := append(files("a", mib, mib), files("b", mib, mib)...)
	require.Empty(t, Plan(fs, o), "two per partition is below the fan-in")
	o.All = true
	got := Plan(fs, o)
	require.Len(t, got, 2)
	for _, g := range got {
		for _, f := range g.Files {
			require.Equal(t, g.Partition, f.Partition)
		}
	}
}

func TestPlanBoundsSmallFiles(t *testing.T) {
	o := opts()
	o.FanIn = 64 // no tier fills
	var sizes []int64
	for i := range 20 {
		sizes = append(sizes, int64(i+1)*mib/8)
	}
	got := Plan(files("p", sizes...), o)
	require.Len(t, got, 1)
	// 20 small files where at most 16 may stay: the 13 smallest are
	// packed into one, leaving 8 (half of 16).
	require.Len(t, got[0].Files, 20-o.MaxSmallFiles/2+1)
	for _, f := range got[0].Files {
		require.LessOrEqual(t, f.Size, int64(13)*mib/8, "the smallest files go first")
	}
}

func TestPlanLeavesLargeFiles(t *testing.T) {
	o := opts()
	o.All = true
	require.Empty(t, Plan(files("p", 400*mib, 450*mib, 500*mib), o))
	got := Plan(files("p", 400*mib, 10*mib, 10*mib), o)
	require.Len(t, got, 1)
	require.Equal(t, []string{"p/f002", "p/f001"}, paths(got[0]))
}

func TestPackHonoursTheTarget(t *testing.T) {
	o := opts()
	o.All = true
	o.Target = 10 * mib
	got := Plan(files("p", 4*mib, 4*mib, 4*mib, 4*mib, mib), o)
	for _, g := range got {
		require.LessOrEqual(t, g.Bytes, o.Target)
		require.GreaterOrEqual(t, len(g.Files), 2)
	}
	n := 0
	for _, g := range got {
		n += len(g.Files)
	}
	require.Equal(t, 5, n)
}

func TestPlanStopsAtMaxBytes(t *testing.T) {
	o := opts()
	o.MaxBytes = 5 * mib
	fs := append(files("a", mib, mib, mib, mib), files("b", mib, mib, mib, mib)...)
	for i := 4; i < 8; i++ {
		fs[i].Path = fmt.Sprintf("b/f%d", i)
	}
	require.Len(t, Plan(fs, o), 1, "the second group would pass MaxBytes")
	o.MaxBytes = mib
	require.Len(t, Plan(fs, o), 1, "the first group always goes, or a large one would never")
}

// A steady stream of equal files: the partition's file count stays bounded
// and each byte is rewritten about once per tier.
func TestPlanUnderASteadyStream(t *testing.T) {
	o := opts()
	var live []File
	next := 0
	add := func(size int64) {
		live = append(live, File{Path: fmt.Sprintf("f%05d", next), Partition: "p", Size: size})
		next++
	}
	var written, rewritten int64
	maxLive := 0
	for range 2000 {
		add(256 << 10) // one 256KiB file per commit
		written += 256 << 10
		for _, g := range Plan(live, o) {
			in := map[string]bool{}
			for _, f := range g.Files {
				in[f.Path] = true
			}
			var kept []File
			for _, f := range live {
				if !in[f.Path] {
					kept = append(kept, f)
				}
			}
			live = kept
			add(g.Bytes)
			rewritten += g.Bytes
		}
		maxLive = max(maxLive, len(live))
	}
	require.LessOrEqual(t, maxLive, 24, "live files in the partition")
	amp := float64(rewritten) / float64(written)
	t.Logf("max live files %d, bytes rewritten per byte written %.1f", maxLive, amp)
	require.Less(t, amp, 6.0)
}

func TestPlanPacksWhenSmallFilesHoldEnoughBytes(t *testing.T) {
	o := opts()
	o.MaxSmallBytes = 256 * mib
	// Three files of each of three tiers: no tier is full, 9 files is
	// below MaxSmallFiles, but they hold 3*(100+25+6) = 393 MiB.
	fs := files("p", 100*mib, 100*mib, 100*mib, 25*mib, 25*mib, 25*mib, 6*mib, 6*mib, 6*mib)
	got := Plan(fs, o)
	require.NotEmpty(t, got, "the bytes threshold packs them")
	n := 0
	for _, g := range got {
		require.LessOrEqual(t, g.Bytes, o.Target)
		n += len(g.Files)
	}
	require.Equal(t, 9, n)
	o.MaxSmallBytes = 0
	require.Empty(t, Plan(fs, o), "no limit: nothing to do until a tier fills")
	o.MaxSmallBytes = 400 * mib
	require.Empty(t, Plan(fs, o), "below the threshold")
}

// TestPlanRewritesFilesBurdenedByDeletes: a file with many position-delete
// files or a large share of deleted rows is rewritten alone, whatever its
// size, before the tiers, within half the run's bytes; equality deletes do
// not count; with both thresholds at 0 nothing is.
func TestPlanRewritesFilesBurdenedByDeletes(t *testing.T) {
	o := opts()
	o.DeleteFiles, o.DeleteRatio = 8, 0.3
	big := File{Path: "p/big", Partition: "p", Size: 500 * mib, Records: 1000, Deletes: 8, PosDeletes: 8, Deleted: 40}
	deleted := File{Path: "p/deleted", Partition: "p", Size: 450 * mib, Records: 1000, Deletes: 1, PosDeletes: 1, Deleted: 300}
	calm := File{Path: "p/calm", Partition: "p", Size: 450 * mib, Records: 1000, Deletes: 7, PosDeletes: 7, Deleted: 299}
	equality := File{Path: "p/equality", Partition: "p", Size: 450 * mib, Records: 1000, Deletes: 40, Deleted: -1}
	fs := append([]File{big, deleted, calm, equality}, files("p", mib, mib, mib, mib)...)
	groups := Plan(fs, o)
	require.GreaterOrEqual(t, len(groups), 3)
	require.Equal(t, []string{"p/deleted"}, paths(groups[0]), "the most deleted rows first")
	require.Equal(t, []string{"p/big"}, paths(groups[1]))
	for _, g := range groups[2:] {
		require.NotContains(t, paths(g), "p/calm")
		require.NotContains(t, paths(g), "p/equality", "equality deletes do not make a file burdened")
		require.NotContains(t, paths(g), "p/big")
	}
	require.Len(t, groups[2].Files, 4, "the small tier is compacted after them")

	o.DeleteFiles, o.DeleteRatio = 0, 0
	for _, g := range Plan(fs, o) {
		require.NotContains(t, paths(g), "p/big")
		require.NotContains(t, paths(g), "p/deleted")
	}
	// Burdened files take half the run's bytes at most (at least one of
	// them); the small files still get the rest.
	o.DeleteFiles, o.DeleteRatio, o.MaxBytes = 8, 0.3, 600*mib
	groups = Plan(fs, o)
	require.Len(t, groups, 2)
	require.Equal(t, []string{"p/deleted"}, paths(groups[0]))
	require.Len(t, groups[1].Files, 4)
}
