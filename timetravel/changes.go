package timetravel

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	iceio "github.com/apache/iceberg-go/io"
	"github.com/apache/iceberg-go/table"
)

// Changes: the rows added and deleted between two snapshots.
//
// # Definition
//
// The changes from snapshot From (exclusive) to snapshot To (inclusive) are,
// for each snapshot s on To's ancestry after From, oldest first, the
// changes of s. From must be an ancestor of To (or To itself: no changes);
// From 0 starts before the first snapshot, To 0 is the current snapshot.
// Snapshots whose operation is "replace" are skipped: a compaction, or the
// replacement of delete files by others, keeps the same rows by contract,
// and re-labelling rows is not a change.
//
// The changes of s are the difference between the live rows of s's parent
// and the live rows of s, a row being identified by (data file path,
// position). A row live in s and not in its parent is an "insert" by s; a
// row live in the parent and not in s a "delete" by s. The live rows of a
// snapshot are the rows of its live data files less:
//
//   - the positions its position-delete files name for them, from delete
//     files whose data sequence number is at least the data file's;
//   - the positions of a data file's deletion vector (format v3), which
//     replaces position-delete files for that data file, as in iceberg-go's
//     reader;
//   - the rows matched by its equality deletes with a strictly higher data
//     sequence number than the data file's, under an unpartitioned spec
//     (global) or the data file's spec and partition.
//
// This is a difference of states, not a reading of what s says it did:
// a snapshot whose manifests were copied from an older one (a rollback
// that commits the older rows anew) brings back files and delete files,
// and the rows it un-deletes are inserts, the rows it drops deletes. A
// snapshot whose parent was expired is compared with an empty table: all
// its rows are inserts (so From 0 on a table with expired history starts
// with the rows of its oldest snapshot).
//
// # Cost
//
// Only the data files s touches are read: files it adds or removes
// (manifests both snapshots list are not even opened), files named by
// position-delete files or deletion vectors it adds or removes, and, for
// equality deletes it adds or removes, the live data files they apply to
// (same partition or global, lower sequence number, key bounds that meet).
// Where equality deletes apply, a file's key columns are read first and
// its rows decided by key; the requested columns are read only of files
// in which a row changed, and only the changed rows are emitted. A delete
// file is read once, and kept while the snapshots compared still hold it.
//
// Equality deletes are what costs: one added by s (floe writes them
// global, on the key columns) makes Changes read the key columns of every
// older live data file whose key bounds meet its keys, and hold the keys
// of every equality-delete file that applies to one of them, as a reader
// of the snapshot pays for them on every scan. Position deletes and
// deletion vectors cost a bitmap per touched file. Memory is a bit per row
// of each touched file with changes, the delete files of the two
// snapshots compared, and their manifests' entries.
//
// # Output
//
// Every batch has _change ("insert" or "delete") and _snapshot_id (the
// snapshot that made the change) in front of the projected columns, in
// the schema of To: a row of a file written under an older schema has
// nulls for the columns added since. A deleted row has the values it had.
// Within a snapshot the deletes come first, then the inserts, so that an
// update reads as a delete and an insert.

// ChangesRequest asks for the changes between two snapshots.
type ChangesRequest struct {
	// From is exclusive (0: from before the first snapshot), To inclusive
	// (0: the current snapshot).
	From, To int64
	// Columns is the projection (empty: every column), in the schema of
	// To.
	Columns []string
	// Limit caps the rows returned (0: no cap of the request's own).
	Limit int64
}

// ChangesStats describes what Changes returned.
type ChangesStats struct {
	// Snapshots is the number of snapshots (other than replace snapshots)
	// whose changes were read.
	Snapshots int64
	// Inserts and Deletes are the rows returned of each kind.
	Inserts, Deletes int64
	// Truncated says that rows were left out; TruncatedBy says what cut
	// them: "limit" (the request's Limit), "max_rows" or "max_bytes" (the
	// node's Limits).
	Truncated   bool
	TruncatedBy string
	Elapsed     time.Duration
}

// The first two columns of every batch Changes returns, and the values of
// the first.
const (
	changesKindColumn     = "_change"
	changesSnapshotColumn = "_snapshot_id"
	changesInsert         = "insert"
	changesDelete         = "delete"
)

// errChangesTimeout is the cause of the context of a call that ran out of
// lim.Timeout.
var errChangesTimeout = errors.New("timetravel: the changes call timed out")

// Changes calls emit with the changes req asks for (see the definition
// above): record batches whose first two columns are _change and
// _snapshot_id, then the requested columns (chosen as Query chooses them:
// top-level columns, in the order asked, all of them in the schema's order
// when none is). The columns are those of To's schema; with To 0 (the
// current snapshot) the table's current schema, as Query reads it.
//
// Bounds work as for Query: the output stops at req.Limit rows, at
// lim.MaxRows rows and at lim.MaxBytes bytes, the batch that reaches one
// cut so that the total is exact, and the stats say which bound truncated
// it (no error). Running longer than lim.Timeout ends the call with an
// error that Is ErrExhausted, after the batches already emitted.
//
// emit owns nothing it is given: a batch is released when emit returns,
// so emit must Retain a batch it keeps. emit is called at least once on
// success, with a batch of no rows when there are no changes, so that the
// caller learns the schema. An error from emit ends the call and is
// returned as it is.
//
// Unknown snapshots are errors that Is ErrNotFound; a From that is not an
// ancestor of To, or a bad column, ErrInvalid. The stats are valid with or
// without an error.
func Changes(ctx context.Context, tbl *table.Table, req ChangesRequest, lim Limits, emit func(arrow.RecordBatch) error) (stats ChangesStats, err error) {
	start := time.Now()
	defer func() { stats.Elapsed = time.Since(start) }()
	if tbl == nil {
		return stats, invalid("there is no table to read the changes of")
	}
	if req.From < 0 || req.To < 0 {
		return stats, invalid("snapshot ids are positive numbers (0 for none): from is %d, to is %d", req.From, req.To)
	}
	if req.Limit < 0 {
		return stats, invalid("the limit is %d; it must be a number of rows, or 0 for none", req.Limit)
	}
	meta := tbl.Metadata()
	name := strings.Join(tbl.Identifier(), ".")
	path, to, err := changesPath(meta, name, req.From, req.To)
	if err != nil {
		return stats, err
	}
	sch := meta.CurrentSchema()
	if req.To != 0 {
		sch = changesSchemaOf(meta, to)
	}
	cols, err := selectColumns(sch, req.Columns)
	if err != nil {
		return stats, err
	}

	if lim.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, lim.Timeout, errChangesTimeout)
		defer cancel()
		defer func() {
			if err != nil && errors.Is(context.Cause(ctx), errChangesTimeout) {
				err = &classed{class: ErrExhausted, err: context.DeadlineExceeded, msg: fmt.Sprintf(
					"the changes call ran longer than api.query_timeout (%s); ask for fewer snapshots (a later from, an earlier to) or fewer columns",
					lim.Timeout)}
			}
		}()
	}

	names := make([]string, len(cols))
	for i, f := range cols {
		names[i] = f.Name
	}
	opts := []table.ScanOption{table.WithSelectedFields(names...), table.WithCaseSensitive(true)}
	if req.To != 0 {
		opts = append(opts, table.WithSnapshotID(to.SnapshotID))
	}
	rows := tbl.Scan(opts...)
	defer rows.Close()
	// ReadTasks with no task reads nothing: it returns the Arrow schema of
	// the projection.
	asch, _, err := rows.ReadTasks(ctx, nil)
	if err != nil {
		return stats, fmt.Errorf("timetravel: the columns of %s: %w", name, err)
	}
	idx, err := columnIndices(asch, cols)
	if err != nil {
		return stats, err
	}
	fields := append([]arrow.Field{
		{Name: changesKindColumn, Type: arrow.BinaryTypes.String},
		{Name: changesSnapshotColumn, Type: arrow.PrimitiveTypes.Int64},
	}, projectSchema(asch, idx).Fields()...)
	fs, err := tbl.FS(ctx)
	if err != nil {
		return stats, fmt.Errorf("timetravel: file IO of %s: %w", name, err)
	}
	r := &changesRun{
		ctx: ctx, tbl: tbl, meta: meta, name: name, fs: fs, to: to,
		rows: rows, idx: idx, out: arrow.NewSchema(fields, nil), emit: emit, stats: &stats,
		mem:       memory.DefaultAllocator,
		rowCap:    -1,
		bytesCap:  -1,
		states:    map[int64]*changesState{},
		manifests: map[string][]changesEntry{},
		posFiles:  map[string]map[string][]int64{},
		dvs:       map[string]*changesPositions{},
		eqKeys:    map[string]map[string]map[string]struct{}{},
		schemas:   map[int64]*iceberg.Schema{},
		fileStats: map[string]*changesFileMeta{},
		keyScans:  map[string]*changesKeyScan{},
	}
	defer func() {
		for _, ks := range r.keyScans {
			ks.scan.Close()
		}
	}()
	if req.Limit > 0 {
		r.rowCap, r.rowsBy = req.Limit, TruncatedByLimit
	}
	if m := lim.MaxRows; m > 0 && (r.rowCap < 0 || m < r.rowCap) {
		r.rowCap, r.rowsBy = m, TruncatedByMaxRows
	}
	if lim.MaxBytes > 0 {
		r.bytesCap = lim.MaxBytes
	}
	for i := len(path) - 1; i >= 0 && !stats.Truncated; i-- {
		s := path[i]
		if s.Summary != nil && s.Summary.Operation == table.OpReplace {
			continue
		}
		stats.Snapshots++
		if err := r.snapshot(s); err != nil {
			return stats, err
		}
		r.forget(s.SnapshotID)
	}
	if err := ctx.Err(); err != nil {
		return stats, err
	}
	if !r.emitted {
		empty := array.NewRecordBatch(r.out, emptyColumns(r.out.Fields()), 0)
		defer empty.Release()
		r.emitted = true
		return stats, emit(empty)
	}
	return stats, nil
}

// changesPath returns the snapshots after from up to to, newest first, and
// to itself (nil for a table without snapshots).
func changesPath(meta table.Metadata, name string, from, toID int64) ([]*table.Snapshot, *table.Snapshot, error) {
	var to *table.Snapshot
	if toID == 0 {
		to = meta.CurrentSnapshot()
	} else if to = meta.SnapshotByID(toID); to == nil {
		return nil, nil, notFound("table %s has no snapshot %d (to): it never existed or was expired", name, toID)
	}
	if from != 0 && meta.SnapshotByID(from) == nil {
		return nil, nil, notFound("table %s has no snapshot %d (from): it never existed or was expired", name, from)
	}
	if to == nil {
		if from != 0 {
			return nil, nil, invalid("snapshot %d (from) is not an ancestor of the current snapshot of %s: the table has none", from, name)
		}
		return nil, nil, nil
	}
	var path []*table.Snapshot
	cur, cut := to, int64(0)
	for n := 0; ; n++ {
		if from != 0 && cur.SnapshotID == from {
			return path, to, nil
		}
		if n > len(meta.Snapshots()) {
			return nil, nil, fmt.Errorf("timetravel: the history of snapshot %d of %s has a cycle", to.SnapshotID, name)
		}
		path = append(path, cur)
		if cur.ParentSnapshotID == nil {
			break
		}
		next := meta.SnapshotByID(*cur.ParentSnapshotID)
		if next == nil {
			cut = *cur.ParentSnapshotID
			break
		}
		cur = next
	}
	if from == 0 {
		return path, to, nil
	}
	why := ""
	if cut != 0 {
		why = fmt.Sprintf(" (its history reaches back to snapshot %d only: the snapshots before were expired)", cur.SnapshotID)
	}
	return nil, nil, invalid("snapshot %d (from) is not an ancestor of snapshot %d (to)%s: changes follow one line of history; pick a from on the history of %d, or 0 for its beginning",
		from, to.SnapshotID, why, to.SnapshotID)
}

// changesSchemaOf returns the schema snapshot s was written with.
func changesSchemaOf(meta table.Metadata, s *table.Snapshot) *iceberg.Schema {
	if s != nil && s.SchemaID != nil {
		for _, sc := range meta.Schemas() {
			if sc.ID == *s.SchemaID {
				return sc
			}
		}
	}
	return meta.CurrentSchema()
}

// changesRun is one call of Changes.
type changesRun struct {
	ctx  context.Context
	tbl  *table.Table
	meta table.Metadata
	name string
	fs   iceio.IO
	to   *table.Snapshot
	// rows reads the requested columns of a data file, in the order of
	// its Arrow schema: idx picks them in the order asked. out is the
	// schema of the batches emitted.
	rows  *table.Scan
	idx   []int
	out   *arrow.Schema
	emit  func(arrow.RecordBatch) error
	stats *ChangesStats
	mem   memory.Allocator

	// The bounds, as in Query: rowCap rows (rowsBy says whose; < 0: none),
	// bytesCap bytes (< 0: none); bytes emitted so far; emitted says
	// emit was called; full that a bound was reached exactly (by fullBy),
	// so that any further row truncates.
	rowCap, bytesCap, bytes int64
	rowsBy, fullBy          string
	emitted, full           bool

	// Caches for the call: snapshot states by id; the live entries of a
	// manifest by path; by delete key, the positions of a position-delete
	// file by data file, deletion vectors, and the keys of an
	// equality-delete file by key reader; key readers by snapshot and
	// field ids; schemas by snapshot; the metadata of files by path (or
	// delete key). What the snapshot just done no longer holds is
	// dropped (forget).
	states    map[int64]*changesState
	manifests map[string][]changesEntry
	posFiles  map[string]map[string][]int64
	dvs       map[string]*changesPositions
	eqKeys    map[string]map[string]map[string]struct{}
	schemas   map[int64]*iceberg.Schema
	fileStats map[string]*changesFileMeta
	keyScans  map[string]*changesKeyScan
}

// changesFile is a data file whose live rows may differ between a
// snapshot's parent (p) and the snapshot (s): the entry on each side, nil
// where it is not live.
type changesFile struct {
	path string
	p, s *changesEntry
	// all: any row may have changed (the file was added or removed, or a
	// position delete naming it was). Otherwise only rows matching the
	// keys of changed equality deletes may have.
	all bool
	// del and ins are the rows deleted and inserted.
	del, ins changesSelection
}

// snapshot emits the changes of s.
func (r *changesRun) snapshot(s *table.Snapshot) error {
	var p *changesState
	if s.ParentSnapshotID != nil && r.meta.SnapshotByID(*s.ParentSnapshotID) != nil {
		var err error
		if p, err = r.state(*s.ParentSnapshotID); err != nil {
			return err
		}
	} else {
		p = &changesState{}
	}
	cur, err := r.state(s.SnapshotID)
	if err != nil {
		return err
	}
	files, err := r.touched(p, cur)
	if err != nil {
		return err
	}
	var dels, ins []*changesFile
	for _, f := range files {
		if err := r.decide(p, cur, f); err != nil {
			return err
		}
		if f.del.n > 0 {
			dels = append(dels, f)
		}
		if f.ins.n > 0 {
			ins = append(ins, f)
		}
	}
	for _, f := range dels {
		if err := r.emitFile(changesDelete, s.SnapshotID, f.p.df, &f.del); err != nil || r.stats.Truncated {
			return err
		}
	}
	for _, f := range ins {
		if err := r.emitFile(changesInsert, s.SnapshotID, f.s.df, &f.ins); err != nil || r.stats.Truncated {
			return err
		}
	}
	return nil
}

// emitFile emits the rows sel selects of data file df (at least one), as
// changes of kind by snap.
func (r *changesRun) emitFile(kind string, snap int64, df iceberg.DataFile, sel *changesSelection) error {
	if r.full {
		// A bound was reached exactly, and here are more rows.
		r.stats.Truncated, r.stats.TruncatedBy = true, r.fullBy
		return nil
	}
	_, recs, err := r.rows.ReadTasks(r.ctx, []table.FileScanTask{{File: df}})
	if err != nil {
		return fmt.Errorf("timetravel: read %s: %w", df.FilePath(), err)
	}
	var pos int64
	for rec, err := range recs {
		if err != nil {
			return fmt.Errorf("timetravel: read %s: %w", df.FilePath(), err)
		}
		n := rec.NumRows()
		picked, err := sel.filter(r.ctx, rec, pos)
		rec.Release()
		if err != nil {
			return fmt.Errorf("timetravel: select the rows of %s: %w", df.FilePath(), err)
		}
		pos += n
		if picked == nil {
			continue
		}
		err = r.send(kind, snap, picked)
		picked.Release()
		if err != nil || r.stats.Truncated {
			return err
		}
	}
	if pos != df.Count() {
		return fmt.Errorf("timetravel: read %d rows of %s, whose manifest entry says %d", pos, df.FilePath(), df.Count())
	}
	return nil
}

// send emits the rows of rec (the scan's columns) as changes of kind by
// snap, within the bounds.
func (r *changesRun) send(kind string, snap int64, rec arrow.RecordBatch) error {
	if err := r.ctx.Err(); err != nil {
		return err
	}
	n := rec.NumRows()
	if n == 0 {
		return nil
	}
	if r.full {
		r.stats.Truncated, r.stats.TruncatedBy = true, r.fullBy
		return nil
	}
	cols := make([]arrow.Array, 0, r.out.NumFields())
	kinds := changesRepeatString(r.mem, kind, int(n))
	defer kinds.Release()
	snaps := changesRepeatInt64(r.mem, snap, int(n))
	defer snaps.Release()
	cols = append(cols, kinds, snaps)
	for _, j := range r.idx {
		cols = append(cols, rec.Column(j))
	}
	out := array.NewRecordBatch(r.out, cols, n)
	defer out.Release()

	// Cut at the row bound, then at the byte bound.
	sent := r.stats.Inserts + r.stats.Deletes
	take, by := n, ""
	if r.rowCap >= 0 && sent+take > r.rowCap {
		take, by = r.rowCap-sent, r.rowsBy
	}
	size := recordBytes(out, take)
	if r.bytesCap >= 0 && r.bytes+size > r.bytesCap {
		take = fitBytes(out, take, r.bytesCap-r.bytes)
		size, by = recordBytes(out, take), TruncatedByMaxBytes
	}
	if take > 0 {
		part := out
		if take < n {
			part = out.NewSlice(0, take)
			defer part.Release()
		}
		r.emitted = true
		if err := r.emit(part); err != nil {
			return err
		}
		if kind == changesInsert {
			r.stats.Inserts += take
		} else {
			r.stats.Deletes += take
		}
		r.bytes += size
	}
	if by != "" {
		r.stats.Truncated, r.stats.TruncatedBy = true, by
		return nil
	}
	// A bound reached exactly: the next row, if there is one, truncates.
	switch {
	case r.rowCap >= 0 && sent+take == r.rowCap:
		r.full, r.fullBy = true, r.rowsBy
	case r.bytesCap >= 0 && r.bytes == r.bytesCap:
		r.full, r.fullBy = true, TruncatedByMaxBytes
	}
	return nil
}

func changesRepeatString(mem memory.Allocator, v string, n int) arrow.Array {
	b := array.NewStringBuilder(mem)
	defer b.Release()
	b.Reserve(n)
	b.ReserveData(n * len(v))
	for range n {
		b.Append(v)
	}
	return b.NewArray()
}

func changesRepeatInt64(mem memory.Allocator, v int64, n int) arrow.Array {
	b := array.NewInt64Builder(mem)
	defer b.Release()
	b.Reserve(n)
	for range n {
		b.UnsafeAppend(v)
	}
	return b.NewArray()
}

// changesSelection is a set of row positions of one data file.
type changesSelection struct {
	all  bool     // every row
	bits []uint64 // otherwise, a bit per position
	n    int64    // rows selected
}

func (s *changesSelection) add(pos int64) {
	w := int(pos >> 6)
	if w >= len(s.bits) {
		s.bits = append(s.bits, make([]uint64, w+1-len(s.bits))...)
	}
	if s.bits[w]&(1<<(pos&63)) == 0 {
		s.bits[w] |= 1 << (pos & 63)
		s.n++
	}
}

func (s *changesSelection) has(pos int64) bool {
	if s.all {
		return true
	}
	w := int(pos >> 6)
	return w < len(s.bits) && s.bits[w]&(1<<(pos&63)) != 0
}

// filter returns the rows of rec (positions from pos on) that s selects,
// or nil for none.
func (s *changesSelection) filter(ctx context.Context, rec arrow.RecordBatch, pos int64) (arrow.RecordBatch, error) {
	n := rec.NumRows()
	if s.all {
		rec.Retain()
		return rec, nil
	}
	var k int64
	for i := range n {
		if s.has(pos + i) {
			k++
		}
	}
	switch k {
	case 0:
		return nil, nil
	case n:
		rec.Retain()
		return rec, nil
	}
	b := array.NewBooleanBuilder(memory.DefaultAllocator)
	defer b.Release()
	b.Reserve(int(n))
	for i := range n {
		b.UnsafeAppend(s.has(pos + i))
	}
	mask := b.NewArray()
	defer mask.Release()
	return compute.FilterRecordBatch(ctx, rec, mask, compute.DefaultFilterOptions())
}

// decide fills f.del and f.ins.
func (r *changesRun) decide(p, s *changesState, f *changesFile) error {
	var delP, delS *changesPositions
	var eqP, eqS []changesEntry
	var err error
	if f.p != nil {
		if delP, err = r.posDeleted(p, f.p); err != nil {
			return err
		}
		eqP = r.eqFor(p, f.p)
	}
	if f.s != nil {
		if delS, err = r.posDeleted(s, f.s); err != nil {
			return err
		}
		eqS = r.eqFor(s, f.s)
	}
	if len(eqP) == 0 && len(eqS) == 0 {
		// Positions alone.
		switch {
		case f.p == nil:
			f.ins = changesComplement(delS, f.s.df.Count())
		case f.s == nil:
			f.del = changesComplement(delP, f.p.df.Count())
		default:
			f.del = changesMinus(delS, delP)
			f.ins = changesMinus(delP, delS)
		}
		return nil
	}
	// Equality deletes apply: read the key columns, and decide row by
	// row. Unless every row may have changed, only rows matching a
	// changed equality delete are considered.
	var changed []changesEntry
	if !f.all {
		for _, e := range eqS {
			if _, ok := p.deletes[e.key]; !ok {
				changed = append(changed, e)
			}
		}
		for _, e := range eqP {
			if _, ok := s.deletes[e.key]; !ok {
				changed = append(changed, e)
			}
		}
	}
	df := f.s
	if df == nil {
		df = f.p
	}
	ids := map[int]bool{}
	for _, list := range [][]changesEntry{eqP, eqS} {
		for _, e := range list {
			for _, id := range e.df.EqualityFieldIDs() {
				ids[id] = true
			}
		}
	}
	ks, err := r.keyScan(ids, p.snap, s.snap)
	if err != nil {
		return err
	}
	slots := map[string]int{}
	setsP, err := r.eqSets(eqP, p.snap, s.snap, slots)
	if err != nil {
		return err
	}
	setsS, err := r.eqSets(eqS, p.snap, s.snap, slots)
	if err != nil {
		return err
	}
	setsC, err := r.eqSets(changed, p.snap, s.snap, slots)
	if err != nil {
		return err
	}
	m := newChangesMatcher(len(slots))
	return ks.read(r.ctx, df.df, func(pos int64, row changesRow) {
		m.reset()
		if !f.all && !m.match(setsC, row) {
			return
		}
		liveP := f.p != nil && !delP.has(pos) && !m.match(setsP, row)
		liveS := f.s != nil && !delS.has(pos) && !m.match(setsS, row)
		switch {
		case liveP && !liveS:
			f.del.add(pos)
		case liveS && !liveP:
			f.ins.add(pos)
		}
	})
}

// changesComplement selects the rows of a file of n rows that del does not
// hold.
func changesComplement(del *changesPositions, n int64) changesSelection {
	if del.empty() {
		return changesSelection{all: true, n: n}
	}
	var s changesSelection
	for pos := range n {
		if !del.has(pos) {
			s.add(pos)
		}
	}
	return s
}

// changesMinus selects the positions a holds and b does not.
func changesMinus(a, b *changesPositions) changesSelection {
	var s changesSelection
	a.each(func(pos int64) {
		if !b.has(pos) {
			s.add(pos)
		}
	})
	return s
}

// touched returns the data files whose rows may differ between p and s, in
// a stable order.
func (r *changesRun) touched(p, s *changesState) ([]*changesFile, error) {
	files := map[string]*changesFile{}
	removed, added, err := r.dataDiff(p, s)
	if err != nil {
		return nil, err
	}
	for path, e := range removed {
		files[path] = &changesFile{path: path, p: &e, all: true}
	}
	for path, e := range added {
		files[path] = &changesFile{path: path, s: &e, all: true}
	}
	var changedDeletes []changesEntry
	for k, e := range s.deletes {
		if _, ok := p.deletes[k]; !ok {
			changedDeletes = append(changedDeletes, e)
		}
	}
	for k, e := range p.deletes {
		if _, ok := s.deletes[k]; !ok {
			changedDeletes = append(changedDeletes, e)
		}
	}
	if len(changedDeletes) == 0 {
		return changesSorted(files), nil
	}
	pData, err := r.dataOf(p)
	if err != nil {
		return nil, err
	}
	sData, err := r.dataOf(s)
	if err != nil {
		return nil, err
	}
	// touch marks a file live in both snapshots.
	touch := func(path string, all bool) {
		if f, ok := files[path]; ok {
			f.all = f.all || all
			return
		}
		pe, inP := pData[path]
		se, inS := sData[path]
		if !inP || !inS {
			return
		}
		files[path] = &changesFile{path: path, p: &pe, s: &se, all: all}
	}
	var eqChanged []changesEntry
	for _, d := range changedDeletes {
		switch d.df.ContentType() {
		case iceberg.EntryContentEqDeletes:
			eqChanged = append(eqChanged, d)
		default:
			refs, err := r.namedFiles(d)
			if err != nil {
				return nil, err
			}
			for _, ref := range refs {
				touch(ref, true)
			}
		}
	}
	for _, d := range eqChanged {
		for path, e := range sData {
			if _, ok := pData[path]; !ok || !r.eqApplies(d, e) {
				continue
			}
			if f, ok := files[path]; ok && f.all {
				continue
			}
			touch(path, false)
		}
	}
	return changesSorted(files), nil
}

func changesSorted(files map[string]*changesFile) []*changesFile {
	out := make([]*changesFile, 0, len(files))
	for _, f := range files {
		out = append(out, f)
	}
	slices.SortFunc(out, func(a, b *changesFile) int { return strings.Compare(a.path, b.path) })
	return out
}
