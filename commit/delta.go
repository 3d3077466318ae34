package commit

import (
	"context"
	"errors"
	"fmt"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
)

// Keyed tables keep one row per key. The rows of a commit replace the rows
// their keys had, so a commit of a keyed table adds, besides its data files,
// the delete files that remove the replaced rows (position deletes: one file
// per data file in v2 tables, deletion vectors in v3). Which rows those are
// is the business of whoever keeps the table's key index (package upsert);
// the writer asks it, through RowDeltas, for each commit's deletes, and
// commits data and deletes as one snapshot (CommitDelta). A RowDelta is
// resolved against one snapshot of the table (Base): committed on top of
// any other it could delete the wrong rows, so CommitDelta refuses it
// (ErrDeltaStale) and the writer resolves again.

// ErrDeltaStale means a row delta was resolved against a snapshot that is
// no longer main's head. Nothing was committed.
var ErrDeltaStale = errors.New("commit: the row delta was resolved against another snapshot than main's head")

// RowDelta is what a keyed table's commit adds besides its data files.
type RowDelta struct {
	// Base is the snapshot the delta was resolved against (0: the table had
	// none).
	Base int64
	// Deletes are position-delete files or deletion vectors.
	Deletes []iceberg.DataFile
	// Replaced are deletion vectors that Deletes supersede (a v3 data file
	// has at most one live deletion vector).
	Replaced []iceberg.DataFile
	// Rewritten maps a file of the commit's segment to the file committed
	// in its place: a copy without the rows a later row of the same commit
	// replaced, where those rows cannot be deleted by position in the same
	// snapshot; nil when no row of the file is left.
	Rewritten map[string]iceberg.DataFile
}

// Empty reports whether the delta changes nothing but add the segment's
// files: no deletes, no file left out or replaced by a copy.
func (d RowDelta) Empty() bool {
	return len(d.Deletes) == 0 && len(d.Replaced) == 0 && len(d.Rewritten) == 0
}

// files returns the files to commit for seg: its own, with the rewritten
// ones replaced.
func (d RowDelta) files(seg Segment) []iceberg.DataFile {
	if len(d.Rewritten) == 0 {
		return seg.Files
	}
	out := make([]iceberg.DataFile, 0, len(seg.Files))
	for _, f := range seg.Files {
		if r, ok := d.Rewritten[f.FilePath()]; ok {
			if r != nil {
				out = append(out, r)
			}
			continue
		}
		out = append(out, f)
	}
	return out
}

// RowDeltas resolves the deletes of a keyed table's commits. The table
// writer calls it on its own goroutine, in commit order.
type RowDeltas interface {
	// Resolve returns the delta that makes the rows of files, in order,
	// the current rows of their keys in base.
	Resolve(ctx context.Context, base *table.Table, files []iceberg.DataFile) (RowDelta, error)
	// Committed says that the last delta Resolve returned landed as
	// snapshot id.
	Committed(id int64)
	// Abandon says that the last delta Resolve returned did not land (or
	// its fate is not known).
	Abandon()
	// Moved says that the table moved from snapshot from to snapshot to
	// without a change to its rows (a commit that only moved offsets).
	Moved(from, to int64)
	// Rewritten says that a compaction moved the table from snapshot from
	// to after's head, replacing old data files by new ones that hold
	// their live rows.
	Rewritten(ctx context.Context, after *table.Table, from int64, old, new []iceberg.DataFile)
	// Rebase writes the deletes that a compaction of old into new, planned
	// before base's head, must add so that new holds no row that base has
	// deleted or replaced since: the compaction then commits with them
	// instead of being planned again. It fails when it cannot tell.
	Rebase(ctx context.Context, base *table.Table, old, new []iceberg.DataFile) ([]iceberg.DataFile, error)
	// Obsolete returns delete files of base's head that delete no row
	// other deletes of the head do not (equality deletes the index has
	// turned into position deletes). The writer removes them in a
	// snapshot of their own and reports it by Moved.
	Obsolete(ctx context.Context, base *table.Table) ([]iceberg.DataFile, error)
}

// Stage is a stateful transform's part of a table writer: event-time
// windows, whose workers write partial aggregates and whose table holds
// the merged ones; dedup, whose workers write the keys they kept and whose
// commits reference them. The writer calls it on its own goroutine, in commit
// order, with each commit's segment before anything else; what it returns
// is what the commit commits (its files then go through RowDeltas). State
// that Apply changes is the stage's to keep until Committed, and to drop on
// Abandon (reloading it from the table's floe.state).
type Stage interface {
	// Apply returns the segment to commit for seg, resolved against base:
	// the same offsets, the stage's files in place of seg's, and the
	// location of the stage's state checkpoint as State.
	Apply(ctx context.Context, base *table.Table, seg Segment) (Segment, error)
	// Committed says that the segment Apply returned last landed as
	// snapshot id.
	Committed(id int64)
	// Abandon says that it did not land, or that its fate is not known.
	Abandon()
}

// Stages chains stages: Apply runs each on the segment the one before
// returned, and Committed and Abandon reach every one.
type Stages []Stage

var _ Stage = Stages(nil)

// Apply implements Stage.
func (ss Stages) Apply(ctx context.Context, base *table.Table, seg Segment) (Segment, error) {
	for _, s := range ss {
		var err error
		if seg, err = s.Apply(ctx, base, seg); err != nil {
			return seg, err
		}
	}
	return seg, nil
}

// Committed implements Stage.
func (ss Stages) Committed(id int64) {
	for _, s := range ss {
		s.Committed(id)
	}
}

// Abandon implements Stage.
func (ss Stages) Abandon() {
	for _, s := range ss {
		s.Abandon()
	}
}

// UseRowDeltas makes the committer's rewrites those of a keyed table: a
// rewrite planned before deletes of its files were committed carries them
// over (d.Rebase) instead of being stale, and d hears of every rewrite
// that lands (d.Rewritten).
func (c *Committer) UseRowDeltas(d RowDeltas) {
	c.rewrote = func(ctx context.Context, after *table.Table, from int64, rw Rewrite) {
		d.Rewritten(ctx, after, from, rw.Old, rw.New)
	}
	c.rebase = func(ctx context.Context, base *table.Table, rw Rewrite) ([]iceberg.DataFile, error) {
		return d.Rebase(ctx, base, rw.Old, rw.New)
	}
}

// CommitDelta commits seg's files and d's deletes as one snapshot, as
// Commit does seg alone. It returns ErrDeltaStale, committing nothing, when
// main's head is not d.Base, before the first attempt or after a reload.
func (c *Committer) CommitDelta(ctx context.Context, seg Segment, d RowDelta) (Result, error) {
	return c.settle(ctx, func() (Segment, bool, error) {
		covered, err := c.check(seg)
		return seg, covered, err
	}, func(ctx context.Context, tx *table.Transaction, seg Segment, props iceberg.Properties) error {
		if head := HeadID(c.tbl); head != d.Base {
			return fmt.Errorf("%w: resolved against %d, head is %d", ErrDeltaStale, d.Base, head)
		}
		seg.Files = d.files(seg)
		if len(d.Deletes) == 0 && len(d.Replaced) == 0 {
			return c.addFiles(ctx, tx, seg, props)
		}
		rd := tx.NewRowDelta(props)
		rd.AddRows(seg.Files...)
		rd.AddDeletes(d.Deletes...)
		if len(d.Replaced) > 0 {
			rd.RemoveDeletes(d.Replaced...)
		}
		return rd.Commit(ctx)
	})
}

// RemoveDeletes removes delete files that no longer delete anything
// other deletes do not (RowDeltas.Obsolete) in one replace snapshot that
// carries the table's offsets and changes no row. It returns
// ErrDeltaStale, committing nothing, when main's head is not base.
func (c *Committer) RemoveDeletes(ctx context.Context, base int64, files []iceberg.DataFile) (Result, error) {
	if len(files) == 0 {
		return Result{}, errors.New("commit: no delete files to remove")
	}
	return c.settle(ctx, func() (Segment, bool, error) {
		return Segment{From: Offsets{}, To: Offsets{}}, false, nil
	}, func(ctx context.Context, tx *table.Transaction, _ Segment, props iceberg.Properties) error {
		if head := HeadID(c.tbl); head != base {
			return fmt.Errorf("%w: planned on %d, head is %d", ErrDeltaStale, base, head)
		}
		r := tx.NewRewrite(props)
		for _, f := range files {
			r.DeleteFile(f)
		}
		return r.Commit(ctx)
	})
}

// HeadID is the id of t's current snapshot, 0 if it has none.
func HeadID(t *table.Table) int64 {
	if s := t.CurrentSnapshot(); s != nil {
		return s.SnapshotID
	}
	return 0
}
