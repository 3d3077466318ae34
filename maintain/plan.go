package maintain

import (
	"cmp"
	"math"
	"slices"
)

// File is what the planner knows of a live data file.
type File struct {
	Path      string
	Partition string // an opaque key: files of one partition (and spec) share it
	Size      int64
	Records   int64
	// Deletes is the number of delete files that apply to it, PosDeletes
	// those of them that are position-delete files or deletion vectors;
	// Deleted the rows its position deletes and deletion vectors remove
	// (-1 when unknown: a delete may name other files, or equality
	// deletes apply).
	Deletes    int
	PosDeletes int
	Deleted    int64
	// Seq is the file's data sequence number: the order it was committed
	// in (rows of an event stream arrive roughly in time order).
	Seq int64
}

// Group is a set of files of one partition to compact into one or more
// files of at most the target size.
type Group struct {
	Partition string
	Files     []File
	Bytes     int64
}

// PlanOptions are the thresholds of one plan.
type PlanOptions struct {
	Target        int64
	FanIn         int
	MaxSmallFiles int
	// MaxSmallBytes: a partition whose small files (those no tier takes)
	// hold at least this many bytes has them packed (0: no limit).
	MaxSmallBytes int64
	MaxBytes      int64
	// All compacts every small file of every partition (on demand),
	// ignoring tiers and thresholds.
	All bool
	// DeleteFiles and DeleteRatio make a file that many position-delete
	// files (or deletion vectors) apply to, or whose deletes remove that
	// share of its rows, be rewritten without them, whatever its size (0:
	// never). Burdened files take at most half of MaxBytes (at least one
	// of them), so that small files are compacted too.
	DeleteFiles int
	DeleteRatio float64
}

// Burdened reports whether enough deletes apply to f that readers are
// better served by a copy without them (DeleteFiles, DeleteRatio).
func (o PlanOptions) Burdened(f File) bool {
	// Equality deletes do not count: one applies to every older file of
	// its partition, so counting them would rewrite whole tables again
	// and again; compaction folds them into the small files it rewrites.
	if o.DeleteFiles > 0 && f.PosDeletes >= o.DeleteFiles {
		return true
	}
	return o.DeleteRatio > 0 && f.Deleted > 0 && f.Records > 0 && float64(f.Deleted) >= o.DeleteRatio*float64(f.Records)
}

// planOptions are the scheduled runs' options, or, with all, those of a
// compaction on demand: every small file, however many bytes (the caller
// asked for it and watches its progress).
func (c CompactionConfig) planOptions(all bool) PlanOptions {
	o := PlanOptions{
		Target: int64(c.TargetFileSize), FanIn: c.FanIn, MaxSmallFiles: c.MaxSmallFiles, MaxSmallBytes: int64(c.MaxSmallBytes),
		MaxBytes: int64(c.MaxBytesPerRun), All: all, DeleteFiles: c.DeleteFiles, DeleteRatio: c.DeleteRatio,
	}
	if all {
		o.MaxBytes = math.MaxInt64
	}
	return o
}

// Small reports whether a file is below three quarters of the target size,
// the size above which a file is never rewritten.
func (o PlanOptions) Small(f File) bool { return f.Size < o.Target*3/4 }

// Tier is a small file's size tier: 0 for files within a factor FanIn
// of the target, 1 for the next factor down, and so on. Compacting FanIn
// files of tier k yields about one file of tier k-1.
func (o PlanOptions) Tier(size int64) int {
	if size <= 0 {
		size = 1
	}
	t := math.Floor(math.Log(float64(o.Target)/float64(size)) / math.Log(float64(o.FanIn)))
	return max(0, int(t))
}

// Plan chooses what to compact, per partition, from the live data files.
//
// Compaction is size-tiered: small files are grouped by tier, and a tier
// holding FanIn files is compacted into one file of the next tier. Under a
// steady stream of same-sized commits a byte is rewritten about once per
// tier it climbs (log_FanIn(target / commit size) times, 4 to 6 for 1-second
// commits), against once per commit for a plan that rewrites a growing file
// with every new small one. A partition holds at most FanIn-1 files per
// tier; should it still hold more than MaxSmallFiles small files (a backlog,
// very uneven sizes), its smallest are compacted together until it holds
// half of that; should they hold MaxSmallBytes or more, they are packed
// into target-size files. Files of at least three quarters of the target are never
// rewritten. Groups are at most the target size, so a group yields one file.
//
// A file burdened by deletes (Burdened: many delete files, or a large
// share of its rows deleted) is rewritten on its own whatever its size,
// before anything else: the deletes of a keyed table's updates land on
// files of every size, and a file that is never rewritten would make
// every reader apply them forever.
//
// Groups are returned burdened files first, then smallest tier first (the
// tiny files, cheap to compact and the ones that hurt readers most), up to
// MaxBytes in all.
func Plan(files []File, o PlanOptions) []Group {
	byPart := map[string][]File{}
	var parts []string
	var burdened []Group
	for _, f := range files {
		if o.Burdened(f) {
			burdened = append(burdened, Group{Partition: f.Partition, Files: []File{f}, Bytes: f.Size})
			continue
		}
		if !o.Small(f) {
			continue
		}
		if _, ok := byPart[f.Partition]; !ok {
			parts = append(parts, f.Partition)
		}
		byPart[f.Partition] = append(byPart[f.Partition], f)
	}
	slices.Sort(parts)
	type ranked struct {
		g    Group
		tier int
	}
	var all []ranked
	for _, p := range parts {
		small := byPart[p]
		slices.SortFunc(small, func(a, b File) int { return cmp.Or(cmp.Compare(a.Size, b.Size), cmp.Compare(a.Path, b.Path)) })
		if o.All {
			for _, g := range pack(p, small, o.Target) {
				all = append(all, ranked{g, math.MaxInt})
			}
			continue
		}
		taken := map[string]bool{}
		tiers := map[int][]File{}
		for _, f := range small {
			t := o.Tier(f.Size)
			tiers[t] = append(tiers[t], f)
		}
		for t, fs := range tiers {
			for len(fs) >= o.FanIn {
				g := fs[:o.FanIn]
				fs = fs[o.FanIn:]
				for _, gg := range pack(p, g, o.Target) {
					for _, f := range gg.Files {
						taken[f.Path] = true
					}
					all = append(all, ranked{gg, t})
				}
			}
		}
		var rest []File
		for _, f := range small {
			if !taken[f.Path] {
				rest = append(rest, f)
			}
		}
		var restBytes int64
		for _, f := range rest {
			restBytes += f.Size
		}
		switch {
		case len(rest) > o.MaxSmallFiles:
			n := len(rest) - o.MaxSmallFiles/2 + 1
			for _, g := range pack(p, rest[:n], o.Target) {
				all = append(all, ranked{g, math.MaxInt})
			}
		case o.MaxSmallBytes > 0 && restBytes >= o.MaxSmallBytes:
			// Enough bytes in small files for target-size files:
			// pack them, whatever their tiers.
			for _, g := range pack(p, rest, o.Target) {
				all = append(all, ranked{g, math.MaxInt})
			}
		}
	}
	// Burdened files (the most deleted rows first), then the smallest
	// files (highest tier).
	slices.SortStableFunc(burdened, func(a, b Group) int {
		return cmp.Or(cmp.Compare(b.Files[0].Deleted, a.Files[0].Deleted), cmp.Compare(a.Files[0].Path, b.Files[0].Path))
	})
	slices.SortStableFunc(all, func(a, b ranked) int { return cmp.Compare(b.tier, a.tier) })
	var out []Group
	var bytes int64
	for _, g := range burdened {
		if len(out) > 0 && bytes+g.Bytes > o.MaxBytes/2 {
			break
		}
		out = append(out, g)
		bytes += g.Bytes
	}
	for _, r := range all {
		if len(out) > 0 && bytes+r.g.Bytes > o.MaxBytes {
			break
		}
		out = append(out, r.g)
		bytes += r.g.Bytes
	}
	return out
}

// pack splits files (sorted by size) into groups of at most target bytes,
// first fit from the largest; a group of one file is dropped (rewriting it
// alone gains nothing).
func pack(part string, files []File, target int64) []Group {
	var groups []Group
	for i := len(files) - 1; i >= 0; i-- {
		f := files[i]
		placed := false
		for gi := range groups {
			if groups[gi].Bytes+f.Size <= target {
				groups[gi].Files = append(groups[gi].Files, f)
				groups[gi].Bytes += f.Size
				placed = true
				break
			}
		}
		if !placed {
			groups = append(groups, Group{Partition: part, Files: []File{f}, Bytes: f.Size})
		}
	}
	return slices.DeleteFunc(groups, func(g Group) bool { return len(g.Files) < 2 })
}
