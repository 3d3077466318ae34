package maintain

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	iceio "github.com/apache/iceberg-go/io"
	"github.com/apache/iceberg-go/table"
	"github.com/google/uuid"

	"github.com/floelake/floe/commit"
	"github.com/floelake/floe/internal/fileio"
)

// Merging position deletes.
//
// A keyed format-v2 table deletes the rows its updates replace with
// position-delete files, one per data file each commit touches (v3 tables
// keep one deletion vector per data file instead, merged by the writer).
// A reader opens every delete file that applies to a data file it reads, so
// after a hundred commits a data file may bring a hundred small files with
// it. Once merge_deletes of them apply to one data file, maintenance
// writes one position-delete file with all their positions and swaps it for
// them in a replace snapshot that changes no row: readers then open one.
// Only file-scoped position-delete files (those naming the one data file)
// are merged. The data file itself is rewritten only when its deletes pass
// delete_files or delete_ratio (plan.go).

// mergeBatch bounds the data files one merge commits at once.
const mergeBatch = 256

// MergeDeletes merges the position-delete files of every data file that
// merge_deletes or more apply to, and returns how many data files it
// did so for.
func (m *Maintainer) MergeDeletes(ctx context.Context) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.mergeDeletes(ctx)
}

type mergeJob struct {
	data    iceberg.DataFile
	deletes []iceberg.DataFile
}

func (m *Maintainer) mergeDeletes(ctx context.Context) (int, error) {
	least := m.cfg.Compaction.MergeDeletes
	if least < 2 {
		return 0, nil
	}
	start := time.Now()
	tbl := m.w.Current()
	if tbl == nil || tbl.CurrentSnapshot() == nil || tbl.Metadata().Version() >= 3 {
		return 0, nil
	}
	snap := tbl.CurrentSnapshot()
	if n, err := strconv.Atoi(summaryProp(snap, "total-delete-files")); err == nil && n < least {
		// Too few delete files in all for any data file to have least:
		// no need to plan the table (this runs after every check).
		return 0, nil
	}
	tasks, err := tbl.Scan(table.WithSnapshotID(snap.SnapshotID)).PlanFiles(ctx)
	if err != nil {
		return 0, fmt.Errorf("maintain: plan %s: %w", m.table, err)
	}
	var jobs []mergeJob
	seen := map[string]bool{}
	for _, t := range tasks {
		p := t.File.FilePath()
		if seen[p] {
			continue
		}
		seen[p] = true
		var own []iceberg.DataFile
		for _, d := range t.DeleteFiles {
			if ref, ok := commit.DeletedFile(d); ok && ref == p && d.FileFormat() == iceberg.ParquetFile {
				own = append(own, d)
			}
		}
		if len(own) >= least {
			jobs = append(jobs, mergeJob{data: t.File, deletes: own})
		}
	}
	if len(jobs) == 0 {
		return 0, nil
	}
	// The data files with the most delete files first.
	slices.SortStableFunc(jobs, func(a, b mergeJob) int { return len(b.deletes) - len(a.deletes) })
	jobs = jobs[:min(len(jobs), mergeBatch)]
	fs, err := tbl.FS(ctx)
	if err != nil {
		return 0, err
	}
	wfs, ok := fs.(iceio.WriteFileIO)
	if !ok {
		return 0, fmt.Errorf("maintain: file IO of %s is read-only", tbl.Location())
	}
	var remove, add []iceberg.DataFile
	cleanup := func() {
		if err := removeFiles(ctx, tbl, add); err != nil {
			m.log.Warn("could not remove merged delete files that were not committed; orphan cleanup will", "err", err)
		}
	}
	merged := 0
	for _, j := range jobs {
		f, err := mergeOne(ctx, tbl, fs, wfs, j)
		if err != nil {
			cleanup()
			return 0, fmt.Errorf("maintain: merge the deletes of %s: %w", j.data.FilePath(), err)
		}
		remove = append(remove, j.deletes...)
		add = append(add, f)
		merged += len(j.deletes)
	}
	var res commit.Result
	err = m.w.Do(ctx, func(ctx context.Context, c *commit.Committer) error {
		var err error
		res, err = c.ReplaceDeletes(ctx, remove, add)
		return err
	})
	switch {
	case errors.Is(err, commit.ErrRewriteStale):
		cleanup()
		m.log.Info("the table changed under a merge of position deletes; trying again at the next run", "err", err)
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("maintain: commit the merged deletes of %s: %w", m.table, err)
	}
	m.log.Info("merged position deletes", "snapshot_id", res.SnapshotID, "data_files", len(jobs),
		"delete_files_before", merged, "delete_files_after", len(add), "took_ms", time.Since(start).Milliseconds())
	return len(jobs), nil
}

// mergeOne writes one position-delete file holding every position j's
// delete files delete, beside its data file.
func mergeOne(ctx context.Context, tbl *table.Table, fs iceio.IO, wfs iceio.WriteFileIO, j mergeJob) (iceberg.DataFile, error) {
	var positions []int64
	for _, d := range j.deletes {
		byData, err := fileio.ReadPositionDeletes(ctx, fs, d.FilePath(), memory.DefaultAllocator)
		if err != nil {
			return nil, err
		}
		positions = append(positions, byData[j.data.FilePath()]...)
	}
	slices.Sort(positions)
	positions = slices.Compact(positions)
	spec := tbl.Metadata().PartitionSpecByID(int(j.data.SpecID()))
	if spec == nil {
		return nil, fmt.Errorf("data file %s has unknown partition spec %d", j.data.FilePath(), j.data.SpecID())
	}
	dir := j.data.FilePath()[:strings.LastIndex(j.data.FilePath(), "/")+1]
	return fileio.WritePositionDeletes(wfs, dir+uuid.NewString()+"-merged-deletes.parquet", j.data, *spec, positions, memory.DefaultAllocator)
}

// summaryProp is a property of s's summary, "" without one.
func summaryProp(s *table.Snapshot, key string) string {
	if s.Summary == nil {
		return ""
	}
	return s.Summary.Properties[key]
}
