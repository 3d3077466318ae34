package commit

import (
	"context"
	"errors"
	"fmt"
	iofs "io/fs"
	"maps"
	"slices"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
)

// Maintenance commits: a compaction's rewrite, snapshot expiry and the
// table properties maintenance relies on. They go through the same
// Committer as the segments, on the table writer's goroutine between two
// commits (TableWriter.Do), so that nothing else commits to the table while
// one is staged and no commit is built on a table they changed.
//
// A rewrite is a snapshot like any other floe commit: it carries
// floe.pipeline, the full floe.offsets, a fresh floe.commit-id and
// floe.epoch, and moves the pipeline's tag to itself. A reader of the
// offsets (TableOffsets, a restart, the ledger's sync) therefore finds them
// on main's head whatever maintenance did; an unknown outcome is resolved
// by the commit id as for segments (rule 3 of the Committer).
//
// The rewritten files keep the data sequence number of the snapshot the
// plan read (Rewrite.DataSeq), not the rewrite's own. An equality delete
// applies to data files with a strictly lower data sequence number, a
// position delete to those with a lower or equal one: the deletes
// committed before the plan were applied when the plan read the rows (and
// still do not apply to the new files, whose number is not lower than
// theirs), and a delete committed after the plan applies to the new files
// as it did to the old ones. With the rewrite's own number it would not,
// and the deleted rows would come back.
//
// Expiry removes snapshots, never the current one or one a branch or tag
// references (the pipeline's tag among them), so it never moves the
// offsets: main's head carries them.

// ErrRewriteStale means a rewrite no longer fits the table: a file it
// replaces is not live any more (another compaction, a rollback or another
// engine removed it), or deletes were committed since the plan read the
// table. Nothing was committed; the plan must be made again from the table
// as it is now.
var ErrRewriteStale = errors.New("commit: the rewrite was planned on files the table no longer holds as they were")

// Rewrite is a compaction to commit: Old replaced by New, which hold the
// same rows (deletes applied).
type Rewrite struct {
	// Old are the live data files the plan read; New the files written
	// from them.
	Old, New []iceberg.DataFile
	// RemoveDeletes are delete files that applied only to Old (position
	// deletes and deletion vectors of the rewritten files): the rows they
	// delete are gone from New.
	RemoveDeletes []iceberg.DataFile
	// BaseSnapshot is the snapshot the plan read, and DataSeq its
	// sequence number: the data sequence number of New.
	BaseSnapshot int64
	DataSeq      int64
}

// Rewrite commits rw as one replace snapshot carrying the table's offsets.
// It returns ErrRewriteStale (nothing committed) when rw no longer fits the
// table, before the first attempt or after a failed one. New may be empty:
// old files whose rows were all deleted are removed with their deletes.
func (c *Committer) Rewrite(ctx context.Context, rw Rewrite) (Result, error) {
	if len(rw.Old) == 0 {
		return Result{}, fmt.Errorf("commit: a rewrite of %s replaces no file", c.ident)
	}
	res, err := c.rewrite(ctx, rw)
	if err == nil && res.SnapshotID != 0 && c.rewrote != nil {
		if s := c.tbl.CurrentSnapshot(); s != nil && s.SnapshotID == res.SnapshotID && s.ParentSnapshotID != nil {
			c.rewrote(ctx, c.tbl, *s.ParentSnapshotID, rw)
		}
	}
	return res, err
}

func (c *Committer) rewrite(ctx context.Context, rw Rewrite) (Result, error) {
	// conflicts are the deletes committed since the plan that name files
	// it rewrote: with a rebase hook (a keyed table), the rewrite carries
	// them over to its new files instead of being stale.
	var conflicts []iceberg.DataFile
	return c.settle(ctx, func() (Segment, bool, error) {
		var err error
		if conflicts, err = rewriteFits(ctx, c.tbl, rw, c.rebase != nil); err != nil {
			return Segment{}, false, err
		}
		return Segment{From: Offsets{}, To: Offsets{}}, false, nil
	}, func(ctx context.Context, tx *table.Transaction, _ Segment, props iceberg.Properties) error {
		r := tx.NewRewrite(props).DataSequenceNumber(rw.DataSeq)
		for _, f := range rw.Old {
			r.DeleteFile(f)
		}
		for _, f := range rw.New {
			r.AddDataFile(f)
		}
		// A deletion vector committed since the plan replaced the one its
		// data file had then: the plan's is gone already.
		replaced := map[string]bool{}
		for _, f := range conflicts {
			if ref, ok := DeletedFile(f); ok && f.FileFormat() == iceberg.PuffinFile {
				replaced[ref] = true
			}
		}
		for _, f := range rw.RemoveDeletes {
			if ref, ok := DeletedFile(f); ok && f.FileFormat() == iceberg.PuffinFile && replaced[ref] {
				continue
			}
			r.DeleteFile(f)
		}
		if len(conflicts) > 0 {
			carried, err := c.rebase(ctx, c.tbl, rw)
			if err != nil {
				return fmt.Errorf("%w: carrying the deletes made since the plan over to its files: %w", ErrRewriteStale, err)
			}
			// The deletes made meanwhile name files this rewrite
			// removes; their rows are deleted in the new files instead,
			// at the sequence number of the deletes they replace.
			for _, f := range liveDeletes(conflicts) {
				r.DeleteFile(f)
			}
			for _, f := range carried {
				r.AddDeleteFile(f)
			}
		}
		if err := r.Commit(ctx); err != nil {
			// Staged nothing: the table refuses this rewrite as it is.
			return fmt.Errorf("%w: %w", ErrRewriteStale, err)
		}
		return nil
	})
}

// rewriteFits checks that main still holds rw.Old as the plan read them:
// the plan's snapshot is in main's ancestry, and every snapshot since only
// appended data files (floe's own segment commits), added position
// deletes that name other data files than rw.Old (a keyed table's commits:
// they do not touch the rows the rewrite moves), or added equality deletes
// (which apply to the new files as to the old, through the data sequence
// number the new files keep). So nothing the plan read was removed and no
// delete applies to it that does not apply to the new files. Anything else
// (a rollback, another compaction or removal of files, a position delete
// that may name any file) makes the rewrite stale: a plan is made again,
// never forced. A keyed commit that replaced a rewritten file's deletion
// vector is a conflict like its other deletes (rewrite then skips the
// vector the plan read). Position deletes of rewritten files are conflicts:
// with rebase they are returned, to be carried over to the new files.
func rewriteFits(ctx context.Context, tbl *table.Table, rw Rewrite, rebase bool) (conflicts []iceberg.DataFile, err error) {
	meta := tbl.Metadata()
	var old map[string]bool
	for s := meta.CurrentSnapshot(); s != nil; {
		if s.SnapshotID == rw.BaseSnapshot {
			return conflicts, nil
		}
		op := "unknown"
		if s.Summary != nil {
			op = string(s.Summary.Operation)
		}
		stale := func(why string) error {
			return fmt.Errorf("%w: snapshot %d (%s) was committed after the plan's snapshot %d%s", ErrRewriteStale, s.SnapshotID, op, rw.BaseSnapshot, why)
		}
		switch {
		case s.Summary == nil:
			return nil, stale("")
		case s.Summary.Properties[PropRollback] != "":
			// A rollback's manifests are not its parent's plus its own.
			return nil, stale(": a rollback")
		case s.Summary.Operation == table.OpAppend && s.Summary.Properties["added-delete-files"] == "":
		case (s.Summary.Operation == table.OpOverwrite || s.Summary.Operation == table.OpDelete) &&
			s.Summary.Properties["deleted-data-files"] == "":
			if old == nil {
				old = make(map[string]bool, len(rw.Old))
				for _, f := range rw.Old {
					old[f.FilePath()] = true
				}
			}
			hit, err := deletesOf(ctx, tbl, s, old)
			if err != nil || (len(hit) > 0 && !rebase) {
				why := "its deletes name files the rewrite replaces"
				if err != nil {
					why = err.Error()
				}
				return nil, stale(": " + why)
			}
			conflicts = append(conflicts, hit...)
		default:
			return nil, stale("")
		}
		if s.ParentSnapshotID == nil {
			break
		}
		s = meta.SnapshotByID(*s.ParentSnapshotID)
	}
	return nil, fmt.Errorf("%w: the plan's snapshot %d is no longer in main's history", ErrRewriteStale, rw.BaseSnapshot)
}

// deletesOf returns the position-delete files snapshot s added that name
// a data file in old. It fails for one that may apply to several data
// files.
func deletesOf(ctx context.Context, tbl *table.Table, s *table.Snapshot, old map[string]bool) ([]iceberg.DataFile, error) {
	fs, err := tbl.FS(ctx)
	if err != nil {
		return nil, err
	}
	mans, err := s.Manifests(fs)
	if err != nil {
		return nil, err
	}
	var hit []iceberg.DataFile
	for _, m := range mans {
		if m.ManifestContent() != iceberg.ManifestContentDeletes || m.SnapshotID() != s.SnapshotID {
			continue
		}
		entries, err := m.FetchEntries(fs, true)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			if e.Status() != iceberg.EntryStatusADDED || e.DataFile().ContentType() == iceberg.EntryContentEqDeletes {
				continue
			}
			ref, ok := DeletedFile(e.DataFile())
			if !ok {
				return nil, fmt.Errorf("delete file %s may apply to any data file", e.DataFile().FilePath())
			}
			if old[ref] {
				hit = append(hit, e.DataFile())
			}
		}
	}
	return hit, nil
}

// EqualityDeletes returns the live equality-delete entries of snapshot s
// of tbl, with their sequence numbers.
func EqualityDeletes(ctx context.Context, tbl *table.Table, s *table.Snapshot) ([]iceberg.ManifestEntry, error) {
	all, err := liveDeleteEntries(ctx, tbl, s)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(all, func(e iceberg.ManifestEntry) bool {
		return e.DataFile().ContentType() != iceberg.EntryContentEqDeletes
	}), nil
}

// liveDeleteEntries returns the live delete entries (position and
// equality) of snapshot s of tbl.
func liveDeleteEntries(ctx context.Context, tbl *table.Table, s *table.Snapshot) ([]iceberg.ManifestEntry, error) {
	if s == nil {
		return nil, nil
	}
	fs, err := tbl.FS(ctx)
	if err != nil {
		return nil, err
	}
	mans, err := s.Manifests(fs)
	if err != nil {
		return nil, fmt.Errorf("commit: manifests of snapshot %d: %w", s.SnapshotID, err)
	}
	var out []iceberg.ManifestEntry
	for _, m := range mans {
		if m.ManifestContent() != iceberg.ManifestContentDeletes {
			continue
		}
		entries, err := m.FetchEntries(fs, true)
		if err != nil {
			return nil, fmt.Errorf("commit: read manifest %s: %w", m.FilePath(), err)
		}
		out = append(out, entries...)
	}
	return out, nil
}

// liveDeletes returns the delete entries of fs (newest snapshot first)
// that are still live: every position-delete file, and of the deletion
// vectors only the newest per data file (each replaced the one before).
func liveDeletes(fs []iceberg.DataFile) []iceberg.DataFile {
	seen := map[string]bool{}
	var out []iceberg.DataFile
	for _, f := range fs {
		if f.FileFormat() == iceberg.PuffinFile {
			ref, _ := DeletedFile(f)
			if seen[ref] {
				continue
			}
			seen[ref] = true
		}
		out = append(out, f)
	}
	return out
}

// filePathField is the field id of a position-delete file's file_path.
const filePathField = 2147483546

// DeletedFile returns the one data file a position-delete file or deletion
// vector names: its referenced data file, or equal bounds on file_path.
// ok is false for a delete file that may apply to several data files.
func DeletedFile(d iceberg.DataFile) (path string, ok bool) {
	if d.ContentType() != iceberg.EntryContentPosDeletes {
		return "", false
	}
	if ref := d.ReferencedDataFile(); ref != nil && *ref != "" {
		return *ref, true
	}
	lo, hi := d.LowerBoundValues()[filePathField], d.UpperBoundValues()[filePathField]
	if lo == nil || string(lo) != string(hi) {
		return "", false
	}
	return string(lo), true
}

// Expired is what ExpireSnapshots removed: Before is the table as it was,
// After as it is now. Their difference names the files only the removed
// snapshots referenced (see DeleteExpiredFiles).
type Expired struct {
	IDs           []int64
	Before, After *table.Table
}

// ExpireSnapshots removes the snapshots ids from the table's metadata in one
// catalog commit that asserts main's head and the table's identity. The
// current snapshot and every snapshot a branch or tag references are never
// removed (they are dropped from ids). It deletes no file: see
// DeleteExpiredFiles, which may run off the writer's goroutine.
func (c *Committer) ExpireSnapshots(ctx context.Context, ids []int64) (Expired, error) {
	meta := c.tbl.Metadata()
	keep := ProtectedSnapshots(meta)
	var drop []int64
	for _, id := range ids {
		if !keep[id] && meta.SnapshotByID(id) != nil {
			drop = append(drop, id)
		}
	}
	slices.Sort(drop)
	drop = slices.Compact(drop)
	if len(drop) == 0 {
		return Expired{Before: c.tbl, After: c.tbl}, nil
	}
	var head *int64
	if cur := meta.CurrentSnapshot(); cur != nil {
		head = &cur.SnapshotID
	}
	before := c.tbl
	reqs := []table.Requirement{table.AssertTableUUID(meta.TableUUID()), table.AssertRefSnapshotID(table.MainBranch, head)}
	newMeta, loc, err := c.cat.CommitTable(ctx, c.cfg.Table, reqs, []table.Update{table.NewRemoveSnapshotsUpdate(drop, false)})
	if err != nil {
		// Whatever the outcome, the table is reloaded: expiry is
		// idempotent, and the next round removes what is left.
		c.fail(Classify(err), err)
		if rerr := c.reload(ctx); rerr != nil {
			return Expired{}, errors.Join(fmt.Errorf("commit: expire snapshots of %s: %w", c.ident, err), rerr)
		}
		return Expired{}, fmt.Errorf("commit: expire snapshots of %s: %w", c.ident, err)
	}
	after := table.New(before.Identifier(), newMeta, loc, c.fs, c.cat)
	c.tbl = after
	c.setSnapshot(after)
	c.succeeded()
	return Expired{IDs: drop, Before: before, After: after}, nil
}

// ProtectedSnapshots returns the snapshots expiry never removes: the
// current one and every one a branch or tag references (the pipeline's tag
// among them).
func ProtectedSnapshots(meta table.Metadata) map[int64]bool {
	keep := map[int64]bool{}
	for _, ref := range meta.Refs() {
		keep[ref.SnapshotID] = true
	}
	if cur := meta.CurrentSnapshot(); cur != nil {
		keep[cur.SnapshotID] = true
	}
	return keep
}

// DeleteExpiredFiles deletes the manifest lists, manifests and data files
// that only the snapshots e removed referenced, and the metadata files that
// fell out of the table's metadata log with the commit (the catalog commit
// ExpireSnapshots makes does not go through iceberg-go's own commit, which
// does that for the others when write.metadata.delete-after-commit.enabled
// is set). Files that cannot be deleted are left to orphan cleanup.
func DeleteExpiredFiles(ctx context.Context, e Expired) error {
	if len(e.IDs) == 0 {
		return nil
	}
	var errs []error
	// PostCommit also removes the data files an expired snapshot lists as
	// deleted (a compaction replaced them): an earlier expiry removed most
	// of those already, and a file that is gone is what was wanted.
	if err := dropNotExist(table.NewRemoveSnapshotsUpdate(e.IDs, true).PostCommit(ctx, e.Before, e.After)); err != nil {
		errs = append(errs, err)
	}
	if err := DeleteDroppedMetadata(ctx, e.Before, e.After); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// DeleteDroppedMetadata deletes the metadata files in before's metadata log
// (and before's own file) that after no longer lists, when the table says
// so (write.metadata.delete-after-commit.enabled).
func DeleteDroppedMetadata(ctx context.Context, before, after *table.Table) error {
	if !after.Properties().GetBool(table.MetadataDeleteAfterCommitEnabledKey, table.MetadataDeleteAfterCommitEnabledDefault) {
		return nil
	}
	kept := map[string]bool{after.MetadataLocation(): true}
	for e := range after.Metadata().PreviousFiles() {
		kept[e.MetadataFile] = true
	}
	var old []string
	for e := range before.Metadata().PreviousFiles() {
		old = append(old, e.MetadataFile)
	}
	old = append(old, before.MetadataLocation())
	fs, err := after.FS(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, f := range old {
		if f != "" && !kept[f] {
			if err := fs.Remove(f); err != nil && !isNotExist(err) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// SetProperties sets props on the table where it lacks them or has other
// values, in one catalog commit; it commits nothing when the table has them
// all. Used to turn on what maintenance relies on (manifest merging,
// metadata deletion) on tables created before it or by another engine.
func (c *Committer) SetProperties(ctx context.Context, props iceberg.Properties) (bool, error) {
	have := c.tbl.Properties()
	want := iceberg.Properties{}
	for k, v := range props {
		if have[k] != v {
			want[k] = v
		}
	}
	if len(want) == 0 {
		return false, nil
	}
	tx := c.tbl.NewTransaction()
	if err := tx.SetProperties(maps.Clone(want)); err != nil {
		return false, err
	}
	t, err := tx.Commit(ctx)
	if err != nil {
		if rerr := c.reload(ctx); rerr != nil {
			return false, errors.Join(err, rerr)
		}
		return false, fmt.Errorf("commit: set properties of %s: %w", c.ident, err)
	}
	c.tbl = c.bind(t, c.cat)
	return true, nil
}

func isNotExist(err error) bool { return errors.Is(err, iofs.ErrNotExist) }

// dropNotExist returns err without its "file does not exist" parts (nil if
// nothing else is left).
func dropNotExist(err error) error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var keep []error
		for _, e := range j.Unwrap() {
			if e = dropNotExist(e); e != nil {
				keep = append(keep, e)
			}
		}
		return errors.Join(keep...)
	}
	if isNotExist(err) {
		return nil
	}
	return err
}

// ReplaceDeletes replaces delete files by others that delete the same rows
// (the position-delete files of one data file merged into one), in one
// replace snapshot that carries the table's offsets and changes no row.
// It returns ErrRewriteStale, committing nothing, when a file of remove is
// no longer live (a compaction rewrote its data file meanwhile). A keyed
// table's RowDeltas hear of it as a rewrite of no data file.
func (c *Committer) ReplaceDeletes(ctx context.Context, remove, add []iceberg.DataFile) (Result, error) {
	if len(remove) == 0 || len(add) == 0 {
		return Result{}, fmt.Errorf("commit: a replacement of delete files of %s removes %d files and adds %d: both must be non-empty", c.ident, len(remove), len(add))
	}
	res, err := c.settle(ctx, func() (Segment, bool, error) {
		live, err := liveDeleteFiles(ctx, c.tbl)
		if err != nil {
			return Segment{}, false, err
		}
		for _, f := range remove {
			if !live[f.FilePath()] {
				return Segment{}, false, fmt.Errorf("%w: delete file %s is no longer live", ErrRewriteStale, f.FilePath())
			}
		}
		return Segment{From: Offsets{}, To: Offsets{}}, false, nil
	}, func(ctx context.Context, tx *table.Transaction, _ Segment, props iceberg.Properties) error {
		r := tx.NewRewrite(props)
		for _, f := range remove {
			r.DeleteFile(f)
		}
		for _, f := range add {
			r.AddDeleteFile(f)
		}
		if err := r.Commit(ctx); err != nil {
			return fmt.Errorf("%w: %w", ErrRewriteStale, err)
		}
		return nil
	})
	if err == nil && res.SnapshotID != 0 && c.rewrote != nil {
		if s := c.tbl.CurrentSnapshot(); s != nil && s.SnapshotID == res.SnapshotID && s.ParentSnapshotID != nil {
			c.rewrote(ctx, c.tbl, *s.ParentSnapshotID, Rewrite{})
		}
	}
	return res, err
}

// liveDeleteFiles returns the paths of the delete files main's head holds.
func liveDeleteFiles(ctx context.Context, tbl *table.Table) (map[string]bool, error) {
	entries, err := liveDeleteEntries(ctx, tbl, tbl.CurrentSnapshot())
	if err != nil {
		return nil, err
	}
	live := make(map[string]bool, len(entries))
	for _, e := range entries {
		live[e.DataFile().FilePath()] = true
	}
	return live, nil
}
