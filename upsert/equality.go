package upsert

import (
	"context"
	"fmt"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/iceberg-go"
	iceio "github.com/apache/iceberg-go/io"
	"github.com/apache/iceberg-go/table"

	"github.com/floelake/floe/commit"
	"github.com/floelake/floe/internal/fileio"
	"github.com/floelake/floe/internal/schema"
)

// Equality deletes: what a commit does when the index cannot place its keys.
//
// An equality delete on the key columns deletes every row of its keys in
// data files with a lower data sequence number than its own, that is, in
// every earlier snapshot; the rows committed in the same snapshot stay.
// So a commit resolved without the index adds, beside its files, one
// equality-delete file that lists every key the commit touches: their
// older rows go, wherever they are. The rows a key has twice within the
// commit are still resolved by position, as with the index (a position
// delete applies to its own snapshot's files; a v3 commit leaves such rows
// out of a copy of its file), because an equality delete cannot tell two
// rows of one snapshot apart.
//
// The equality-delete files are written under an unpartitioned partition
// spec: they then apply to the data files of every partition, which is
// right when a key's older row sits in another partition than its new one.
// A partitioned keyed table is given such a spec (not its default) when
// its pipeline starts.
//
// A commit resolves by equality in two cases. With delete_mode: equality
// (EqualityDeletes) the resolver keeps no index at all: every commit does,
// and readers pay for comparing keys. Otherwise, while the index is being
// rebuilt from the table (after a start, a failover or a commit whose
// outcome was lost): the rebuild runs in the background, a commit waits
// for it at most RebuildWait, then goes on by equality. The background
// rebuild reads one snapshot; the resolver journals what lands after it
// (its own commits' keys, compactions, commits that move offsets only) and
// replays the journal on the rebuilt index before using it, so the index
// holds the head. When anything else moved the table (a head the journal
// does not lead to), the rebuild starts again from the new head.
//
// Readers should not pay for equality deletes for long. A rebuild applies
// the equality deletes it finds (a row whose key one of them lists is not
// live), and so does the journal's replay; the rows they delete are
// deleted again by position with the next commit, like the duplicates a
// rebuild finds. Once that commit has landed, the equality-delete files
// delete nothing that position deletes do not, and Obsolete hands them to
// the table writer, which removes them in a snapshot of their own.
//
// A table with a version column cannot resolve by equality: whether a row
// replaces its key's current row depends on that row's version, which only
// the index knows. Its commits wait for the rebuild.

// eqDir is where equality-delete files go, under the table's location.
const eqDir = "data/deletes"

// rebuildJob is a rebuild of the index running in the background, and the
// journal of what landed since the snapshot it reads.
type rebuildJob struct {
	snap   int64
	done   chan struct{}
	cancel context.CancelFunc
	// built holds the rebuilt index once done, unless err.
	built *Resolver
	err   error
	// journal is what landed on the table after snap, in order; at is the
	// snapshot it leads to.
	journal []journalEntry
	at      int64
}

// journalEntry is one snapshot that landed while a rebuild ran: a commit
// resolved by equality (ops), or a compaction (rewrite).
type journalEntry struct {
	base, snap int64
	// files are the data files the commit added; ops what became of its
	// keys, in order.
	files []iceberg.DataFile
	ops   []journalOp
	// eqFiles are the equality-delete files it added.
	eqFiles []iceberg.DataFile
	// rows, keys are its counts, for the stats.
	rows, keys int64
	rewrite    *rewriteEvent
}

// journalOp is what a commit did to a key: its row is now at position pos
// of files[file], or, with file < 0, it was deleted.
type journalOp struct {
	key  []byte
	file int
	pos  uint32
}

type rewriteEvent struct {
	after    *table.Table
	old, new []iceberg.DataFile
}

// Close stops a rebuild running in the background and closes the index
// (removing its file, if it spilled). The resolver is not used afterwards.
func (r *Resolver) Close() {
	r.stopRebuild()
	r.setIndex(nil)
}

// stopRebuild cancels the rebuild running in the background; what it
// built, if it finishes anyway, is closed.
func (r *Resolver) stopRebuild() {
	j := r.job
	if j == nil {
		return
	}
	r.job = nil
	j.cancel()
	go func() {
		<-j.done
		if j.built != nil {
			j.built.setIndex(nil)
		}
	}()
}

// catchUp tries to make the index hold base's head: it adopts a rebuild
// that has finished, or starts one from the head and waits for it at most
// the rebuild wait (for good with a version column). It returns with the
// index not ready when the rebuild is still running.
func (r *Resolver) catchUp(ctx context.Context, base *table.Table) error {
	head := commit.HeadID(base)
	if head == 0 {
		r.stopRebuild()
		if err := r.reset(); err != nil {
			return err
		}
		r.ready = true
		return nil
	}
	if r.job != nil && r.job.at != head {
		r.log.Info("key index: the table moved under the rebuild; rebuilding from its head", "rebuilding", r.job.snap, "head", head)
		r.stopRebuild()
	}
	if r.job == nil {
		r.startRebuild(base)
	}
	j := r.job
	switch {
	case r.version != "":
		select {
		case <-j.done:
		case <-ctx.Done():
			return ctx.Err()
		}
	case r.rebuildWait > 0:
		t := time.NewTimer(r.rebuildWait)
		defer t.Stop()
		select {
		case <-j.done:
		case <-t.C:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	default:
		select {
		case <-j.done:
		default:
			return nil
		}
	}
	r.job = nil
	if j.err != nil {
		if r.version != "" {
			return j.err
		}
		r.log.Warn("key index: the rebuild failed; commits delete by equality until one succeeds", "err", j.err)
		return nil
	}
	r.adopt(ctx, j)
	return nil
}

// reset empties the index.
func (r *Resolver) reset() error {
	ix, err := r.newIndex()
	if err != nil {
		return err
	}
	r.setIndex(ix)
	r.files = map[uint32]iceberg.DataFile{}
	r.dvs = map[string]iceberg.DataFile{}
	r.repairs, r.eqKnown, r.rebased = nil, nil, nil
	r.ready, r.snap = false, 0
	return nil
}

// startRebuild starts rebuilding the index from base's head in the
// background.
func (r *Resolver) startRebuild(base *table.Table) {
	ctx, cancel := context.WithCancel(context.Background())
	head := commit.HeadID(base)
	j := &rebuildJob{snap: head, at: head, done: make(chan struct{}), cancel: cancel}
	b := &Resolver{keys: r.keys, version: r.version, log: r.log, mem: r.mem, metrics: NopMetrics{},
		spillDir: r.spillDir, spillBudget: r.spillBudget}
	r.job = j
	r.ready = false
	gate := r.rebuildGate
	go func() {
		defer close(j.done)
		defer cancel()
		if gate != nil {
			select {
			case <-gate:
			case <-ctx.Done():
				j.err = ctx.Err()
				return
			}
		}
		if err := b.rebuild(ctx, base); err != nil {
			b.setIndex(nil)
			j.err = err
			return
		}
		j.built = b
	}()
}

// adopt makes the index the one j rebuilt, brought to the head by j's
// journal.
func (r *Resolver) adopt(ctx context.Context, j *rebuildJob) {
	b := j.built
	r.setIndex(b.ix)
	b.ix = nil
	r.files, r.dvs, r.repairs, r.eqKnown = b.files, b.dvs, b.repairs, b.eqKnown
	r.rebased, r.rebasedRows = nil, 0
	if r.eqKnown == nil {
		r.eqKnown = map[string]bool{}
	}
	r.stats.Rebuilds++
	r.stats.RebuildTime = b.stats.RebuildTime
	r.metrics.KeyIndexRebuilt(r.table, r.ix.Len(), r.stats.RebuildTime)
	r.ready, r.snap = true, j.snap
	for _, e := range j.journal {
		if e.rewrite != nil {
			r.Rewritten(ctx, e.rewrite.after, r.snap, e.rewrite.old, e.rewrite.new)
			if !r.ready {
				// Logged by Rewritten; the next commit rebuilds.
				return
			}
			continue
		}
		for _, op := range e.ops {
			if cur, had := r.ix.Get(op.key); had && !r.isDeleted(cur) {
				// Deleted by the commit's equality delete.
				r.repair(cur)
			}
			if op.file < 0 {
				r.ix.Delete(op.key)
				continue
			}
			f := e.files[op.file]
			id := r.ix.FileID(f.FilePath())
			r.files[id] = f
			r.ix.Put(op.key, Loc{File: id, Pos: op.pos})
		}
		for _, f := range e.eqFiles {
			r.eqKnown[f.FilePath()] = true
		}
		r.snap = e.snap
	}
	r.snap = j.at
	if err := r.ix.Err(); err != nil {
		r.ready = false
		r.log.Warn("key index: the rebuilt index failed; it is rebuilt again", "err", err)
		return
	}
	repairs := 0
	for _, ps := range r.repairs {
		repairs += len(ps)
	}
	r.log.Info("key index ready", "snapshot_id", r.snap, "rebuilt_at", j.snap, "journal", len(j.journal),
		"keys", r.ix.Len(), "rows_to_delete_by_position", repairs, "equality_delete_files", len(r.eqKnown))
	r.publish()
}

// journal notes that e landed as snapshot id, for the running rebuild.
func (r *Resolver) journal(e journalEntry) {
	j := r.job
	if j == nil || j.at != e.base {
		return
	}
	j.journal = append(j.journal, e)
	j.at = e.snap
}

// resolveByEquality resolves a commit without the index: see the essay
// above.
func (r *Resolver) resolveByEquality(ctx context.Context, base *table.Table, files []iceberg.DataFile) (commit.RowDelta, error) {
	head := commit.HeadID(base)
	// The commit's rows are resolved among themselves by a scratch index;
	// the resolver's own (stale, or being rebuilt) is put back after.
	ix, files0, dvs, repairs, ready, snap := r.ix, r.files, r.dvs, r.repairs, r.ready, r.snap
	defer func() { r.ix, r.files, r.dvs, r.repairs, r.ready, r.snap = ix, files0, dvs, repairs, ready, snap }()
	r.ix, r.files, r.dvs, r.repairs = r.newMemIndex(), map[uint32]iceberg.DataFile{}, map[string]iceberg.DataFile{}, nil
	d, rows, err := r.resolveRows(ctx, base, files)
	if err != nil {
		return commit.RowDelta{}, err
	}
	e := journalEntry{base: head}
	fileIdx := map[uint32]int{}
	seen := make(map[string]bool, len(rows))
	// What became of each key, for the journal of a running rebuild.
	for i := len(rows) - 1; r.job != nil && i >= 0; i-- {
		k := rows[i].key
		if seen[string(k)] {
			continue
		}
		seen[string(k)] = true
		op := journalOp{key: k, file: -1}
		if loc, ok := r.ix.Get(k); ok {
			n, ok := fileIdx[loc.File]
			if !ok {
				n = len(e.files)
				fileIdx[loc.File] = n
				e.files = append(e.files, r.last.files[loc.File])
			}
			op.file, op.pos = n, loc.Pos
		}
		e.ops = append(e.ops, op)
	}
	// Last row first above: the order among keys does not matter, only
	// that each key has one op.
	e.rows = r.last.rows
	if head != 0 && len(rows) > 0 {
		fs, err := base.FS(ctx)
		if err != nil {
			return commit.RowDelta{}, fmt.Errorf("upsert: file IO of %s: %w", base.Location(), err)
		}
		eq, err := r.writeEqualityDeletes(ctx, base, fs, files)
		if err != nil {
			return commit.RowDelta{}, err
		}
		d.Deletes = append(d.Deletes, eq)
		e.eqFiles, e.keys = []iceberg.DataFile{eq}, eq.Count()
	}
	r.lastEq = &e
	return d, nil
}

// writeEqualityDeletes writes one equality-delete file on the key columns
// holding the keys of every row of files (data files and files of deleted
// keys), under the table's unpartitioned spec.
func (r *Resolver) writeEqualityDeletes(ctx context.Context, base *table.Table, fs iceio.IO, files []iceberg.DataFile) (iceberg.DataFile, error) {
	meta := base.Metadata()
	spec, ok := schema.UnpartitionedSpec(meta)
	if !ok {
		return nil, fmt.Errorf("upsert: table %s has no unpartitioned partition spec to write equality deletes under "+
			"(floe adds one to a keyed table when its pipeline starts)", base.Location())
	}
	ksch, err := meta.CurrentSchema().Select(true, r.keys...)
	if err != nil {
		return nil, fmt.Errorf("upsert: key columns: %w", err)
	}
	ids := make([]int, 0, len(r.keys))
	for _, k := range r.keys {
		f, ok := ksch.FindFieldByName(k)
		if !ok {
			return nil, fmt.Errorf("upsert: the table has no key column %q", k)
		}
		ids = append(ids, f.ID)
	}
	info, err := fileio.InfoFromTable(ctx, base)
	if err != nil {
		return nil, err
	}
	asc, err := table.SchemaToArrowSchema(ksch, nil, true, false)
	if err != nil {
		return nil, fmt.Errorf("upsert: key columns: %w", err)
	}
	info.Schema, info.ArrowSchema, info.Spec = ksch, asc, spec
	w := fileio.NewWriter(info, map[int]any{}, fileio.Options{
		TargetFileSize: 1 << 62, Content: iceberg.EntryContentEqDeletes, EqualityFieldIDs: ids, Dir: eqDir,
	})
	for _, f := range files {
		if err := r.copyKeys(ctx, fs, f.FilePath(), asc, w.Write); err != nil {
			w.Abort()
			return nil, err
		}
	}
	out, err := w.Close(ctx)
	if err != nil {
		return nil, fmt.Errorf("upsert: write equality deletes: %w", err)
	}
	if len(out) != 1 {
		return nil, fmt.Errorf("upsert: equality deletes written as %d files", len(out))
	}
	return out[0], nil
}

// copyKeys reads the key columns of the Parquet file at path and passes
// them to write as batches of schema asc.
func (r *Resolver) copyKeys(ctx context.Context, fs iceio.IO, path string, asc *arrow.Schema, write func(arrow.RecordBatch) error) error {
	pf, fr, closeFile, err := openParquet(fs, path, r.mem)
	if err != nil {
		return err
	}
	defer closeFile()
	sch := pf.MetaData().Schema
	cols := make([]int, len(r.keys))
	for i, k := range r.keys {
		if cols[i] = sch.ColumnIndexByName(k); cols[i] < 0 {
			return fmt.Errorf("upsert: %s has no key column %q", path, k)
		}
	}
	rr, err := fr.GetRecordReader(ctx, cols, nil)
	if err != nil {
		return fmt.Errorf("upsert: read %s: %w", path, err)
	}
	defer rr.Release()
	for rr.Next() {
		rec := rr.RecordBatch()
		arrs := make([]arrow.Array, len(r.keys))
		for i, k := range r.keys {
			col := rec.Column(rec.Schema().FieldIndices(k)[0])
			want := asc.Field(i).Type
			if arrow.TypeEqual(col.DataType(), want) {
				col.Retain()
			} else if col, err = compute.CastArray(ctx, col, compute.SafeCastOptions(want)); err != nil {
				return fmt.Errorf("upsert: %s: key column %s: %w", path, k, err)
			}
			arrs[i] = col
		}
		out := array.NewRecordBatch(asc, arrs, rec.NumRows())
		for _, a := range arrs {
			a.Release()
		}
		err := write(out)
		out.Release()
		if err != nil {
			return fmt.Errorf("upsert: write equality deletes: %w", err)
		}
	}
	return rr.Err()
}

// Obsolete implements commit.RowDeltas: once the rows the table's
// equality deletes delete are deleted by position too (the index applied
// them, and the commit carrying its repairs landed), the equality-delete
// files are obsolete. The writer removes them and reports it by Moved,
// which makes the resolver forget them; if it could not, they are offered
// again after the next commit.
func (r *Resolver) Obsolete(ctx context.Context, base *table.Table) ([]iceberg.DataFile, error) {
	if r.eqMode || !r.ready || r.snap != commit.HeadID(base) || len(r.repairs) > 0 || len(r.eqKnown) == 0 {
		return nil, nil
	}
	live, err := commit.EqualityDeletes(ctx, base, base.CurrentSnapshot())
	if err != nil {
		return nil, err
	}
	var out []iceberg.DataFile
	for _, e := range live {
		if r.eqKnown[e.DataFile().FilePath()] {
			out = append(out, e.DataFile())
		}
	}
	if len(out) == 0 {
		r.eqKnown = nil
	}
	r.obsolete = out
	return out, nil
}
