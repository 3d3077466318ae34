package maintain

import (
	"fmt"
	"time"

	"github.com/floelake/floe/internal/conf"
)

// Config is the maintenance section: what the table writers do to keep
// every table floe writes healthy. The defaults need no tuning for
// 1-second commits.
type Config struct {
	Compaction CompactionConfig `yaml:"compaction"`
	Expiry     ExpiryConfig     `yaml:"expiry"`
	Orphans    OrphansConfig    `yaml:"orphans"`
}

// CompactionConfig plans and runs compaction (see plan.go).
type CompactionConfig struct {
	Enabled bool `yaml:"enabled"`
	// Every is how often a table's files are looked at and, where a
	// tier is full, compacted. Commits also trigger a check, at most once a
	// second, as soon as fan_in data files were committed since the last.
	Every conf.Duration `yaml:"every"`
	// TargetFileSize is the size compaction writes files up to. Files of at
	// least three quarters of it are never rewritten.
	TargetFileSize conf.ByteSize `yaml:"target_file_size"`
	// FanIn is how many small files of one size tier are compacted into
	// one file of the next tier: every byte is rewritten about
	// log_FanIn(target / first size) times.
	FanIn int `yaml:"fan_in"`
	// MaxSmallFiles bounds the small files a partition keeps: above it,
	// its smallest files are compacted whatever their tiers.
	MaxSmallFiles int `yaml:"max_small_files"`
	// MaxSmallBytes bounds the bytes a partition keeps in small files its
	// tiers have not taken: at or above it, they are packed into files of
	// the target size whatever their tiers (0: no limit).
	MaxSmallBytes conf.ByteSize `yaml:"max_small_bytes"`
	// MaxBytesPerRun bounds what one run rewrites, so a run stays short
	// and a large backlog is worked off over several.
	MaxBytesPerRun conf.ByteSize `yaml:"max_bytes_per_run"`
	// DeleteFiles: a data file that at least this many delete files apply
	// to is rewritten without them, whatever its size (0: never). The
	// updates of a keyed format-v2 table add a position-delete file to
	// every data file they touch.
	DeleteFiles int `yaml:"delete_files"`
	// DeleteRatio: a data file whose deletes remove at least this share of
	// its rows is rewritten without them, whatever its size (0: never).
	DeleteRatio float64 `yaml:"delete_ratio"`
	// MergeDeletes: the position-delete files of a data file that at
	// least this many apply to are merged into one (merge.go), without
	// rewriting the data file (0: never).
	MergeDeletes int `yaml:"merge_deletes"`
}

// ExpiryConfig thins the table's snapshots in tiers.
type ExpiryConfig struct {
	Enabled bool          `yaml:"enabled"`
	Every   conf.Duration `yaml:"every"`
	// Keep lists the tiers, youngest first: snapshots younger than a
	// tier's For (and not younger than the previous tier's) are kept one
	// per Every (0: all of them). Snapshots older than the last tier are
	// removed. The current snapshot and every snapshot a branch or tag
	// references are always kept.
	Keep []Tier `yaml:"keep"`
}

// Tier keeps one snapshot per Every among those younger than For.
type Tier struct {
	Every conf.Duration `yaml:"every"`
	For   conf.Duration `yaml:"for"`
}

// OrphansConfig removes files no snapshot references.
type OrphansConfig struct {
	Enabled bool          `yaml:"enabled"`
	Every   conf.Duration `yaml:"every"`
	// Grace is the age below which a file is never removed: it may belong
	// to a commit in flight.
	Grace conf.Duration `yaml:"grace"`
}

// DefaultConfig keeps a table healthy under 1-second commits: small files
// compacted within seconds, every snapshot of the last 10 minutes, one per
// 10 minutes for a day, one per hour for 7 days and one per day for 90 days
// (about a thousand at most), and orphans older than a day removed hourly.
func DefaultConfig() Config {
	return Config{
		Compaction: CompactionConfig{
			Enabled:        true,
			Every:          conf.Duration(10 * time.Second),
			TargetFileSize: 512 << 20,
			FanIn:          4,
			MaxSmallFiles:  16,
			MaxSmallBytes:  512 << 20,
			MaxBytesPerRun: 2 << 30,
			DeleteFiles:    32,
			DeleteRatio:    0.3,
			MergeDeletes:   4,
		},
		Expiry: ExpiryConfig{
			Enabled: true,
			Every:   conf.Duration(time.Minute),
			Keep: []Tier{
				{Every: 0, For: conf.Duration(10 * time.Minute)},
				{Every: conf.Duration(10 * time.Minute), For: conf.Duration(24 * time.Hour)},
				{Every: conf.Duration(time.Hour), For: conf.Duration(7 * 24 * time.Hour)},
				{Every: conf.Duration(24 * time.Hour), For: conf.Duration(90 * 24 * time.Hour)},
			},
		},
		Orphans: OrphansConfig{
			Enabled: true,
			Every:   conf.Duration(time.Hour),
			Grace:   conf.Duration(24 * time.Hour),
		},
	}
}

// Validate reports every bad field, named relative to the section.
func (c Config) Validate() error {
	var p conf.Problems
	cc := c.Compaction
	if cc.Every.D() < 100*time.Millisecond {
		p.Addf("compaction.every", "must be at least 100ms, got %s", cc.Every)
	}
	if cc.TargetFileSize < 1<<20 {
		p.Addf("compaction.target_file_size", "must be at least 1MiB, got %d", cc.TargetFileSize)
	}
	if cc.FanIn < 2 || cc.FanIn > 64 {
		p.Addf("compaction.fan_in", "must be 2 to 64, got %d", cc.FanIn)
	}
	if cc.MaxSmallFiles < 2 {
		p.Addf("compaction.max_small_files", "must be at least 2, got %d", cc.MaxSmallFiles)
	}
	if cc.MaxSmallBytes < 0 {
		p.Addf("compaction.max_small_bytes", "must not be negative (0: no limit), got %d", cc.MaxSmallBytes)
	}
	if cc.DeleteFiles < 0 {
		p.Addf("compaction.delete_files", "must not be negative (0: never), got %d", cc.DeleteFiles)
	}
	if cc.MergeDeletes < 0 || cc.MergeDeletes == 1 {
		p.Addf("compaction.merge_deletes", "must be 0 (never) or at least 2, got %d", cc.MergeDeletes)
	}
	if cc.DeleteRatio < 0 || cc.DeleteRatio > 1 {
		p.Addf("compaction.delete_ratio", "must be between 0 (never) and 1, got %g", cc.DeleteRatio)
	}
	if cc.MaxBytesPerRun < cc.TargetFileSize {
		p.Addf("compaction.max_bytes_per_run", "must be at least target_file_size (%d), got %d", cc.TargetFileSize, cc.MaxBytesPerRun)
	}
	if c.Expiry.Every.D() < 100*time.Millisecond {
		p.Addf("expiry.every", "must be at least 100ms, got %s", c.Expiry.Every)
	}
	if err := checkTiers(c.Expiry.Keep); err != nil {
		p.Nest("expiry", err)
	}
	if c.Orphans.Every.D() < 100*time.Millisecond {
		p.Addf("orphans.every", "must be at least 100ms, got %s", c.Orphans.Every)
	}
	if c.Orphans.Grace.D() < 0 {
		p.Addf("orphans.grace", "must not be negative, got %s", c.Orphans.Grace)
	}
	return p.Err()
}

func checkTiers(tiers []Tier) error {
	var p conf.Problems
	if len(tiers) == 0 {
		p.Addf("keep", "must list at least one tier (such as {every: 0s, for: 10m}: every snapshot of the last 10 minutes)")
	}
	var prev time.Duration
	for i, t := range tiers {
		f := fmt.Sprintf("keep[%d]", i)
		if t.Every.D() < 0 {
			p.Addf(f+".every", "must not be negative, got %s", t.Every)
		}
		if t.For.D() <= prev {
			p.Addf(f+".for", "must be longer than the previous tier's (%s), got %s: tiers go from the youngest snapshots to the oldest", prev, t.For)
		}
		if t.For.D() > prev {
			prev = t.For.D()
		}
	}
	return p.Err()
}
