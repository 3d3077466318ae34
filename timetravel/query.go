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
	"github.com/apache/arrow-go/v18/arrow/compute/exprs"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	"github.com/apache/iceberg-go/table/substrait"

	"github.com/floelake/floe/timetravel/filter"
)

// QueryRequest is what a user asks of one query.
type QueryRequest struct {
	// AsOf picks the snapshot to read; the zero value reads the current
	// one.
	AsOf AsOf
	// Columns are the top-level columns to return, in this order; none
	// means all of them, in the schema's order. A name matches a column
	// of the same name, or else the one column whose name differs from it
	// only in case. An unknown, ambiguous or repeated column is an error
	// that Is ErrInvalid.
	Columns []string
	// Where is a row filter in the language of package filter; "" (or
	// only white space) selects every row. A filter that does not parse or
	// bind is an error that Is ErrInvalid; its text draws a caret under a
	// syntax error, and errors.As finds the *filter.Error in it.
	Where string
	// Limit is the most rows to return; 0 sets no limit of its own (the
	// node's Limits still apply). It must not be negative.
	Limit int64
}

// Limits are the node's bounds on one query, which the API fills from its
// configuration. A field of zero, or less, leaves its bound off.
type Limits struct {
	// MaxRows is the most rows a query returns.
	MaxRows int64
	// MaxBytes is the most bytes of Arrow data a query returns, counted
	// as the sizes of the Arrow buffers that hold the returned rows (for
	// each array: its validity bitmap when it has nulls, its values or
	// offsets, and the bytes its offsets span).
	MaxBytes int64
	// Timeout is the longest a query may run.
	Timeout time.Duration
}

// The values of QueryStats.TruncatedBy: which bound stopped the query.
const (
	TruncatedByLimit    = "limit"     // QueryRequest.Limit
	TruncatedByMaxRows  = "max_rows"  // Limits.MaxRows
	TruncatedByMaxBytes = "max_bytes" // Limits.MaxBytes
)

// QueryStats describe how a query went.
type QueryStats struct {
	// SnapshotID is the snapshot the query read; 0 when the table has
	// none.
	SnapshotID int64
	// Rows is how many rows the query passed to emit.
	Rows int64
	// Truncated reports that a row or byte bound stopped the query before
	// the scan was over, so more rows may match.
	Truncated bool
	// TruncatedBy names the bound that stopped it: TruncatedByLimit,
	// TruncatedByMaxRows or TruncatedByMaxBytes; "" when none did.
	TruncatedBy string
	// DataFiles is how many data files the scan planned to read, after
	// pruning by partition and column statistics.
	DataFiles int64
	// DeleteFiles is how many delete files (position deletes, equality
	// deletes, deletion vectors) apply to those data files.
	DeleteFiles int64
	// Elapsed is how long the query ran.
	Elapsed time.Duration
}

// errQueryTimeout is the cause of a query's context when Limits.Timeout
// ends it.
var errQueryTimeout = errors.New("timetravel: the query timed out")

// scanConcurrency is how many tasks a query reads at once, and
// scanBigTaskBytes the task size from which it reads one at a time: the
// two bound the memory one query holds (see run).
const (
	scanConcurrency  = 2
	scanBigTaskBytes = 32 << 20
)

func largestTask(tasks []table.FileScanTask) int64 {
	var n int64
	for _, t := range tasks {
		n = max(n, t.Length)
	}
	return n
}

// Query reads tbl as of req.AsOf and calls emit with each record batch of
// the result: the requested columns in the requested order, named as in
// the schema, holding the rows that match req.Where, with the table's
// deletes applied (position deletes, deletion vectors and equality
// deletes). Rows come in no particular order.
//
// Time travel reads the schema of the snapshot it reads: a query as of a
// snapshot id, a time or a tag sees the columns that snapshot was written
// with, bound and named as they were then. A query of the current
// snapshot or of a branch head uses the table's current schema, as
// Iceberg does, so a column added since the last commit is there (and
// null).
//
// The result stops at req.Limit rows, at lim.MaxRows rows and at
// lim.MaxBytes bytes, whichever comes first; the batch that reaches a
// bound is cut so that the total is exact, and the stats say that the
// result was truncated and by which bound. That is not an error. Running
// longer than lim.Timeout is: it ends the query with an error that Is
// ErrExhausted (and context.DeadlineExceeded), after the batches already
// emitted.
//
// emit owns nothing it is given: Query releases each batch when emit
// returns, so emit must Retain a batch it keeps. emit is called at least
// once on success, with a batch of no rows when nothing matches, so the
// caller always learns the result's schema. An error from emit stops the
// query and is returned as it is. Canceling ctx stops the query (at the
// next batch at the latest) and returns the context's error.
//
// Errors in the request (see QueryRequest and Resolve) wrap ErrInvalid or
// ErrNotFound and are returned before anything is emitted. The stats
// are valid with or without an error.
func Query(ctx context.Context, tbl *table.Table, req QueryRequest, lim Limits,
	emit func(arrow.RecordBatch) error,
) (stats QueryStats, err error) {
	start := time.Now()
	defer func() { stats.Elapsed = time.Since(start) }()

	if tbl == nil {
		return stats, invalid("there is no table to query")
	}
	if req.Limit < 0 {
		return stats, invalid("the limit is %d; it must be a number of rows, or 0 for none", req.Limit)
	}
	meta := tbl.Metadata()
	snap, err := Resolve(meta, req.AsOf)
	if err != nil {
		return stats, err
	}
	sch, err := querySchema(meta, snap, req.AsOf)
	if err != nil {
		return stats, err
	}
	cols, err := selectColumns(sch, req.Columns)
	if err != nil {
		return stats, err
	}
	where, err := bindWhere(req.Where, sch)
	if err != nil {
		return stats, err
	}

	if lim.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, lim.Timeout, errQueryTimeout)
		defer cancel()
	}
	q := &query{
		ctx:   ctx,
		emit:  emit,
		stats: &stats,
		lim:   lim,
		req:   req,
	}
	q.setBounds()
	if snap == nil {
		// A table without snapshots: no rows, but the schema.
		err = q.emitEmpty(tbl, sch, cols)
		return stats, q.mapErr(err)
	}
	stats.SnapshotID = snap.SnapshotID
	err = q.run(tbl, snap, sch, cols, where)
	return stats, q.mapErr(err)
}

// querySchema returns the schema a query of snap reads: the snapshot's
// own for time travel, the table's current one for the current snapshot
// and for branch heads (as iceberg-go scans them).
func querySchema(meta table.Metadata, snap *table.Snapshot, at AsOf) (*iceberg.Schema, error) {
	if snap == nil || at.IsZero() || at.Branch != "" || snap.SchemaID == nil {
		return meta.CurrentSchema(), nil
	}
	for _, s := range meta.Schemas() {
		if s.ID == *snap.SchemaID {
			return s, nil
		}
	}
	return nil, fmt.Errorf("timetravel: snapshot %d was written with schema %d, which the table metadata does not have",
		snap.SnapshotID, *snap.SchemaID)
}

// selectColumns resolves the requested column names against the
// schema's top-level fields; none selects them all.
func selectColumns(sch *iceberg.Schema, names []string) ([]iceberg.NestedField, error) {
	fields := sch.Fields()
	if len(names) == 0 {
		return fields, nil
	}
	out := make([]iceberg.NestedField, 0, len(names))
	seen := make(map[int]string, len(names))
	for _, name := range names {
		f, err := findColumn(sch, fields, name)
		if err != nil {
			return nil, err
		}
		if prev, dup := seen[f.ID]; dup {
			if prev == name {
				return nil, invalid("column %q is asked for twice; name each column once", name)
			}
			return nil, invalid("columns %q and %q are both column %q; name each column once", prev, name, f.Name)
		}
		seen[f.ID] = name
		out = append(out, f)
	}
	return out, nil
}

// findColumn finds the top-level field name names: the field of exactly
// that name, or else the one whose name differs only in case.
func findColumn(sch *iceberg.Schema, fields []iceberg.NestedField, name string) (iceberg.NestedField, error) {
	var folded []iceberg.NestedField
	found := -1
	for i, f := range fields {
		if f.Name == name {
			found = i
			break
		}
		if strings.EqualFold(f.Name, name) {
			folded = append(folded, f)
		}
	}
	var f iceberg.NestedField
	switch {
	case found >= 0:
		f = fields[found]
	case len(folded) == 1:
		f = folded[0]
	case len(folded) > 1:
		return f, invalid("the column name %q matches %s; write the one you mean exactly", name, quoteFields(folded, " and "))
	default:
		return f, invalid("no column %q (the columns are %s)", name, quoteFields(fields, ", "))
	}
	// iceberg-go selects columns by dotted path: make sure the name leads
	// back to this top-level field and not to a nested one.
	if g, ok := sch.FindFieldByName(f.Name); !ok || g.ID != f.ID {
		return f, invalid("column %q cannot be selected: a nested field has the same dotted name", f.Name)
	}
	return f, nil
}

// quoteFields lists the fields' names, quoted, the first 50 of them.
func quoteFields(fs []iceberg.NestedField, sep string) string {
	const maxListed = 50
	if len(fs) == 0 {
		return "none"
	}
	names := make([]string, 0, min(len(fs), maxListed))
	for _, f := range fs[:min(len(fs), maxListed)] {
		names = append(names, fmt.Sprintf("%q", f.Name))
	}
	s := strings.Join(names, sep)
	if len(fs) > maxListed {
		s += fmt.Sprintf(" and %d more", len(fs)-maxListed)
	}
	return s
}

// bindWhere parses and binds a filter; nil for none.
func bindWhere(src string, sch *iceberg.Schema) (iceberg.BooleanExpression, error) {
	if strings.TrimSpace(src) == "" {
		return nil, nil
	}
	e, err := filter.Parse(src)
	if err != nil {
		var ferr *filter.Error
		if errors.As(err, &ferr) {
			return nil, &classed{class: ErrInvalid, msg: "--where: " + ferr.Error() + "\n" + ferr.Caret(src), err: err}
		}
		return nil, &classed{class: ErrInvalid, msg: "--where: " + err.Error(), err: err}
	}
	expr, err := filter.Bind(e, sch)
	if err != nil {
		return nil, &classed{class: ErrInvalid, msg: "--where: " + err.Error(), err: err}
	}
	return expr, nil
}

// query is the state of one running query.
type query struct {
	ctx   context.Context
	emit  func(arrow.RecordBatch) error
	stats *QueryStats
	lim   Limits
	req   QueryRequest

	rowCap   int64  // the most rows to return; < 0 for no bound
	rowsBy   string // the bound rowCap comes from
	bytesCap int64  // the most bytes to return; < 0 for no bound
	bytes    int64  // bytes returned so far
	emitted  bool   // emit has been called
	full     bool   // a bound has been reached exactly
	fullBy   string // which
}

// setBounds works out the row and byte bounds.
func (q *query) setBounds() {
	q.rowCap, q.bytesCap = -1, -1
	if q.req.Limit > 0 {
		q.rowCap, q.rowsBy = q.req.Limit, TruncatedByLimit
	}
	if m := q.lim.MaxRows; m > 0 && (q.rowCap < 0 || m < q.rowCap) {
		q.rowCap, q.rowsBy = m, TruncatedByMaxRows
	}
	if q.lim.MaxBytes > 0 {
		q.bytesCap = q.lim.MaxBytes
	}
}

// mapErr turns the end of the query's context by Limits.Timeout into the
// error that says so.
func (q *query) mapErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(context.Cause(q.ctx), errQueryTimeout) {
		return &classed{
			class: ErrExhausted,
			msg: fmt.Sprintf("the query ran longer than api.query_timeout (%s); narrow it with --where or --limit",
				q.lim.Timeout),
			err: context.DeadlineExceeded,
		}
	}
	return err
}

// emitEmpty emits a batch of no rows with the columns' Arrow schema.
func (q *query) emitEmpty(tbl *table.Table, sch *iceberg.Schema, cols []iceberg.NestedField) error {
	names := make([]string, len(cols))
	for i, f := range cols {
		names[i] = f.Name
	}
	proj, err := sch.Select(true, names...)
	if err != nil {
		return fmt.Errorf("timetravel: select columns: %w", err)
	}
	asch, err := table.SchemaToArrowSchemaWithOptions(proj, table.ArrowSchemaOptions{TableProperties: tbl.Properties()})
	if err != nil {
		return fmt.Errorf("timetravel: the Arrow schema of the columns: %w", err)
	}
	idx, err := columnIndices(asch, cols)
	if err != nil {
		return err
	}
	fields := make([]arrow.Field, len(idx))
	for i, j := range idx {
		fields[i] = asch.Field(j)
	}
	rec := array.NewRecordBatch(arrow.NewSchema(fields, nil), emptyColumns(fields), 0)
	defer rec.Release()
	q.emitted = true
	return q.emit(rec)
}

func emptyColumns(fields []arrow.Field) []arrow.Array {
	cols := make([]arrow.Array, len(fields))
	for i, f := range fields {
		cols[i] = array.MakeArrayOfNull(memory.DefaultAllocator, f.Type, 0)
	}
	return cols
}

// columnIndices finds each column in an Arrow schema by name.
func columnIndices(asch *arrow.Schema, cols []iceberg.NestedField) ([]int, error) {
	idx := make([]int, len(cols))
	for i, f := range cols {
		is := asch.FieldIndices(f.Name)
		if len(is) != 1 {
			return nil, fmt.Errorf("timetravel: the scan's Arrow schema has %d columns named %q", len(is), f.Name)
		}
		idx[i] = is[0]
	}
	return idx, nil
}

// run scans snap, filters, projects and emits.
//
// iceberg-go v0.7.0 has two faults that make a scan with a row filter skip
// rows that match it (package filter's documentation describes them), so
// the filter goes to iceberg-go only where they cannot bite, and run
// applies it to every batch itself as well:
//
//   - Planning (manifest, partition and file-statistics pruning) uses the
//     filter less its predicates on columns that are the source of a
//     string or binary partition field whose summary, in some manifest of
//     the snapshot, has no lower bound: an empty value (or only nulls)
//     there makes iceberg-go's manifest filter skip the manifest.
//   - Reading a data file prunes its Parquet row groups by the filter only
//     when the file's statistics show that no filtered column is partly
//     null (none null, or all null): a row group in which a column has as
//     many nulls as values looks all null to iceberg-go. Other files are
//     read whole (the task's residual is AlwaysTrue).
//   - Every batch read is then filtered by the whole filter, with the same
//     Arrow compute evaluation iceberg-go uses, so the result is exactly the
//     matching rows whichever way each file was read.
func (q *query) run(tbl *table.Table, snap *table.Snapshot, sch *iceberg.Schema,
	cols []iceberg.NestedField, where iceberg.BooleanExpression,
) error {
	ctx := q.ctx
	// Read the requested columns and those the filter needs.
	selected := make([]string, 0, len(cols))
	inSelected := map[int]bool{}
	for _, f := range cols {
		selected = append(selected, f.Name)
		inSelected[f.ID] = true
	}
	var filterIDs []int
	if where != nil {
		bound, err := iceberg.BindExpr(sch, where, true)
		if err != nil {
			return invalid("--where: %v", err)
		}
		if bound.Equals(iceberg.AlwaysTrue{}) {
			where = nil
		} else if filterIDs, err = iceberg.ExtractFieldIDs(bound); err != nil {
			return fmt.Errorf("timetravel: the filter's columns: %w", err)
		}
		for _, id := range filterIDs {
			if !inSelected[id] {
				name, _ := sch.FindColumnName(id)
				selected = append(selected, name)
				inSelected[id] = true
			}
		}
	}

	opts := []table.ScanOption{table.WithSelectedFields(selected...), table.WithCaseSensitive(true),
		table.WithMaxConcurrency(scanConcurrency)}
	switch {
	case q.req.AsOf.IsZero():
		// The current snapshot, which snap is.
	case q.req.AsOf.Branch != "":
		// Below, with UseRef, so that the scan keeps the current schema.
	default:
		opts = append(opts, table.WithSnapshotID(snap.SnapshotID))
	}
	if where != nil {
		planFilter, err := planningFilter(ctx, tbl, snap, sch, where)
		if err != nil {
			return err
		}
		opts = append(opts, table.WithRowFilter(planFilter))
	}
	newScan := func(extra ...table.ScanOption) (*table.Scan, error) {
		scan := tbl.Scan(append(slices.Clip(opts), extra...)...)
		if b := q.req.AsOf.Branch; b != "" {
			onRef, err := scan.UseRef(b)
			_ = scan.Close()
			if err != nil {
				return nil, fmt.Errorf("timetravel: scan branch %q: %w", b, err)
			}
			scan = onRef
		}
		return scan, nil
	}
	scan, err := newScan()
	if err != nil {
		return err
	}
	defer scan.Close()

	tasks, err := scan.PlanFiles(ctx)
	if err != nil {
		return fmt.Errorf("timetravel: plan the scan of snapshot %d: %w", snap.SnapshotID, err)
	}
	q.countFiles(tasks)
	if where != nil {
		promoted := promotedColumns(tbl.Metadata(), sch)
		for i := range tasks {
			if rowGroupsPrunable(tasks[i].File, filterIDs) && !slices.ContainsFunc(filterIDs, func(id int) bool { return promoted[id] }) {
				tasks[i].Residual = where
			} else {
				tasks[i].Residual = iceberg.AlwaysTrue{}
			}
		}
	}

	proj, err := scan.Projection()
	if err != nil {
		return fmt.Errorf("timetravel: the scan's projection: %w", err)
	}
	// Projection returns a schema whose lazy indexes are not set up (in
	// iceberg-go v0.7.0 binding IS NULL on a required column of it
	// panics); make a whole one.
	proj = iceberg.NewSchemaWithIdentifiers(proj.ID, proj.IdentifierFieldIDs, proj.Fields()...)
	var keep func(arrow.RecordBatch) (arrow.RecordBatch, error)
	if where != nil {
		if keep, err = recordFilter(ctx, proj, where); err != nil {
			return err
		}
	}

	// Memory. iceberg-go reads tasks concurrently but returns their
	// batches in task order, holding each task read ahead whole: with two
	// readers, a compacted file's 128 MiB splits took a full scan to
	// 1.6 GiB. Tasks that large are read one at a time (as fast: one
	// large split keeps a reader busy).
	reader := scan
	if largestTask(tasks) > scanBigTaskBytes {
		if reader, err = newScan(table.WithMaxConcurrency(1)); err != nil {
			return err
		}
		defer reader.Close()
	}
	asch, records, err := reader.ReadTasks(ctx, tasks)
	if err != nil {
		return fmt.Errorf("timetravel: read snapshot %d: %w", snap.SnapshotID, err)
	}
	idx, err := columnIndices(asch, cols)
	if err != nil {
		return err
	}
	outSchema := projectSchema(asch, idx)
	stopped := false
	for rec, err := range records {
		if err != nil {
			if cerr := ctx.Err(); cerr != nil {
				return cerr
			}
			return fmt.Errorf("timetravel: read snapshot %d: %w", snap.SnapshotID, err)
		}
		if stopped, err = q.batch(rec, keep, idx); err != nil {
			return err
		}
		if stopped {
			break
		}
	}
	if !stopped {
		// The scan may end early, without an error, when ctx is done.
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return q.finish(outSchema)
}

// finish emits an empty batch when nothing has been emitted, so that the
// caller learns the schema.
func (q *query) finish(outSchema *arrow.Schema) error {
	if q.emitted {
		return nil
	}
	fields := outSchema.Fields()
	rec := array.NewRecordBatch(outSchema, emptyColumns(fields), 0)
	defer rec.Release()
	q.emitted = true
	return q.emit(rec)
}

// batch handles one batch from the scan, which it releases: it filters,
// projects, cuts at the bounds and emits it. stop reports that the query
// is over.
func (q *query) batch(rec arrow.RecordBatch, keep func(arrow.RecordBatch) (arrow.RecordBatch, error), idx []int) (stop bool, err error) {
	if err := q.ctx.Err(); err != nil {
		rec.Release()
		return true, err
	}
	if rec.NumRows() == 0 {
		rec.Release()
		return false, nil
	}
	if q.full {
		// A bound was reached at the end of the last batch, and the scan
		// has more rows (which may or may not match): the result is
		// truncated.
		rec.Release()
		q.stats.Truncated, q.stats.TruncatedBy = true, q.fullBy
		return true, nil
	}
	if keep != nil {
		if rec, err = keep(rec); err != nil {
			return true, err
		}
	}
	out := projectRecord(rec, idx)
	rec.Release()
	defer out.Release()
	n := out.NumRows()
	if n == 0 {
		return false, nil
	}

	// Cut at the row bound, then at the byte bound.
	take, by := n, ""
	if q.rowCap >= 0 && q.stats.Rows+take > q.rowCap {
		take, by = q.rowCap-q.stats.Rows, q.rowsBy
	}
	size := recordBytes(out, take)
	if q.bytesCap >= 0 && q.bytes+size > q.bytesCap {
		take = fitBytes(out, take, q.bytesCap-q.bytes)
		size, by = recordBytes(out, take), TruncatedByMaxBytes
	}
	if take > 0 {
		part := out
		if take < n {
			part = out.NewSlice(0, take)
			defer part.Release()
		}
		q.emitted = true
		if err := q.emit(part); err != nil {
			return true, err
		}
		q.stats.Rows += take
		q.bytes += size
	}
	if by != "" {
		q.stats.Truncated, q.stats.TruncatedBy = true, by
		return true, nil
	}
	// A bound reached exactly: the next batch, if there is one, says
	// whether the result is truncated.
	switch {
	case q.rowCap >= 0 && q.stats.Rows == q.rowCap:
		q.full, q.fullBy = true, q.rowsBy
	case q.bytesCap >= 0 && q.bytes == q.bytesCap:
		q.full, q.fullBy = true, TruncatedByMaxBytes
	}
	return false, q.ctx.Err()
}

// countFiles fills the stats' counts of data and delete files.
func (q *query) countFiles(tasks []table.FileScanTask) {
	data := map[string]bool{}
	deletes := map[string]bool{}
	for _, t := range tasks {
		data[t.File.FilePath()] = true
		for _, group := range [][]iceberg.DataFile{t.DeleteFiles, t.EqualityDeleteFiles, t.DeletionVectorFiles} {
			for _, d := range group {
				key := d.FilePath()
				if off := d.ContentOffset(); off != nil {
					key = fmt.Sprintf("%s@%d", key, *off)
				}
				deletes[key] = true
			}
		}
	}
	q.stats.DataFiles, q.stats.DeleteFiles = int64(len(data)), int64(len(deletes))
}

func projectSchema(asch *arrow.Schema, idx []int) *arrow.Schema {
	fields := make([]arrow.Field, len(idx))
	for i, j := range idx {
		fields[i] = asch.Field(j)
	}
	return arrow.NewSchema(fields, nil)
}

// projectRecord returns the columns idx of rec, in that order, as a new
// batch (the caller releases both).
func projectRecord(rec arrow.RecordBatch, idx []int) arrow.RecordBatch {
	cols := make([]arrow.Array, len(idx))
	for i, j := range idx {
		cols[i] = rec.Column(j)
	}
	return array.NewRecordBatch(projectSchema(rec.Schema(), idx), cols, rec.NumRows())
}

// planningFilter returns where less its predicates on the columns that
// iceberg-go's manifest filter mishandles in snap (see query.run): each
// becomes AlwaysTrue, after NOTs are pushed down to the predicates, so
// the result selects every row where selects, and more.
func planningFilter(ctx context.Context, tbl *table.Table, snap *table.Snapshot, sch *iceberg.Schema, where iceberg.BooleanExpression) (iceberg.BooleanExpression, error) {
	risky, err := emptyBoundSources(ctx, tbl, snap, sch)
	if err != nil {
		return nil, err
	}
	for id := range promotedColumns(tbl.Metadata(), sch) {
		if risky == nil {
			risky = map[int]bool{}
		}
		risky[id] = true
	}
	if len(risky) == 0 {
		return where, nil
	}
	nnf, err := iceberg.RewriteNotExpr(where)
	if err != nil {
		return nil, fmt.Errorf("timetravel: rewrite the filter: %w", err)
	}
	return iceberg.VisitExpr[iceberg.BooleanExpression](nnf, &dropPredicates{sch: sch, ids: risky})
}

// promotedColumns returns the ids of the columns of sch whose type is
// wider than in an earlier schema of the table (int to long, float to
// double, a wider decimal: schema evolution). Files written before the
// promotion keep bounds of the narrower type, which iceberg-go v0.7.0's
// metrics evaluator reads as the wider one and fails the whole scan on
// (an int's 4 bytes taken for a long's 8); predicates on these columns
// are left to the filter every batch goes through.
func promotedColumns(meta table.Metadata, sch *iceberg.Schema) map[int]bool {
	var out map[int]bool
	for _, old := range meta.Schemas() {
		for _, f := range old.Fields() {
			collectPromoted(sch, f, &out)
		}
	}
	return out
}

// collectPromoted adds to out the fields of f (f included, nested ones
// too) whose type in sch differs from theirs.
func collectPromoted(sch *iceberg.Schema, f iceberg.NestedField, out *map[int]bool) {
	if cur, ok := sch.FindFieldByID(f.ID); ok {
		if _, nested := f.Type.(iceberg.NestedType); !nested && !cur.Type.Equals(f.Type) {
			if *out == nil {
				*out = map[int]bool{}
			}
			(*out)[f.ID] = true
		}
	}
	if nt, ok := f.Type.(iceberg.NestedType); ok {
		for _, c := range nt.Fields() {
			collectPromoted(sch, c, out)
		}
	}
}

// emptyBoundSources returns the ids of the columns that are the source
// of a string or binary partition field whose summary has no lower bound
// in some manifest of snap: an empty string (or bytes) among its values,
// or only nulls. iceberg-go's manifest filter takes a missing lower bound
// for "no values", and skips the manifest for a predicate on the column.
func emptyBoundSources(ctx context.Context, tbl *table.Table, snap *table.Snapshot, sch *iceberg.Schema) (map[int]bool, error) {
	meta := tbl.Metadata()
	// Only spec fields of string or binary results are at risk; look at
	// the manifests only when there is one.
	atRisk := false
	for _, spec := range meta.PartitionSpecs() {
		for _, f := range spec.Fields() {
			if emptyableResult(sch, f) {
				atRisk = true
			}
		}
	}
	if !atRisk {
		return nil, nil
	}
	fs, err := tbl.FS(ctx)
	if err != nil {
		return nil, fmt.Errorf("timetravel: open the table's file system: %w", err)
	}
	manifests, err := snap.Manifests(fs)
	if err != nil {
		return nil, fmt.Errorf("timetravel: read the manifest list of snapshot %d: %w", snap.SnapshotID, err)
	}
	risky := map[int]bool{}
	for _, m := range manifests {
		spec := meta.PartitionSpecByID(int(m.PartitionSpecID()))
		if spec == nil {
			continue
		}
		summaries := m.Partitions()
		for i, f := range spec.Fields() {
			if i < len(summaries) && emptyableResult(sch, f) {
				if lb := summaries[i].LowerBound; lb == nil || len(*lb) == 0 {
					for _, id := range f.SourceIDs {
						risky[id] = true
					}
				}
			}
		}
	}
	return risky, nil
}

// emptyableResult reports whether a partition field's values are strings
// or bytes, which can be empty.
func emptyableResult(sch *iceberg.Schema, f iceberg.PartitionField) bool {
	for _, id := range f.SourceIDs {
		src, ok := sch.FindFieldByID(id)
		if !ok {
			continue
		}
		switch f.Transform.ResultType(src.Type).(type) {
		case iceberg.StringType, iceberg.BinaryType:
			return true
		}
	}
	return false
}

// dropPredicates replaces each predicate on one of the columns ids with
// AlwaysTrue in an expression without NOT.
type dropPredicates struct {
	sch *iceberg.Schema
	ids map[int]bool
}

func (*dropPredicates) VisitTrue() iceberg.BooleanExpression  { return iceberg.AlwaysTrue{} }
func (*dropPredicates) VisitFalse() iceberg.BooleanExpression { return iceberg.AlwaysFalse{} }

// VisitNot cannot happen after RewriteNotExpr; keeping the NOT would make
// AlwaysTrue below it narrow the filter, so drop the whole of it.
func (*dropPredicates) VisitNot(iceberg.BooleanExpression) iceberg.BooleanExpression {
	return iceberg.AlwaysTrue{}
}

func (*dropPredicates) VisitAnd(l, r iceberg.BooleanExpression) iceberg.BooleanExpression {
	return iceberg.NewAnd(l, r)
}

func (*dropPredicates) VisitOr(l, r iceberg.BooleanExpression) iceberg.BooleanExpression {
	return iceberg.NewOr(l, r)
}

func (d *dropPredicates) VisitUnbound(p iceberg.UnboundPredicate) iceberg.BooleanExpression {
	term, err := p.Term().Bind(d.sch, true)
	if err != nil || d.ids[term.Ref().Field().ID] {
		return iceberg.AlwaysTrue{}
	}
	return p
}

func (d *dropPredicates) VisitBound(p iceberg.BoundPredicate) iceberg.BooleanExpression {
	if d.ids[p.Ref().Field().ID] {
		return iceberg.AlwaysTrue{}
	}
	return p
}

// rowGroupsPrunable reports whether iceberg-go may prune the Parquet row
// groups of a data file by a filter on the columns ids: whether the
// file's statistics show that each of them is either never null or always
// null, so that no row group can have as many nulls as values. See
// query.run.
func rowGroupsPrunable(f iceberg.DataFile, ids []int) bool {
	if f.FileFormat() != iceberg.ParquetFile {
		return true
	}
	nulls, values := f.NullValueCounts(), f.ValueCounts()
	for _, id := range ids {
		n, ok := nulls[id]
		if !ok {
			return false
		}
		if n == 0 {
			continue
		}
		if v, ok := values[id]; !ok || n != v {
			return false
		}
	}
	return true
}

// recordFilter returns a function that keeps the rows of a batch with
// the columns of proj for which where is true, evaluated by Arrow compute
// as iceberg-go evaluates a scan's row filter. It releases its input.
func recordFilter(ctx context.Context, proj *iceberg.Schema, where iceberg.BooleanExpression) (func(arrow.RecordBatch) (arrow.RecordBatch, error), error) {
	bound, err := iceberg.BindExpr(proj, where, true)
	if err != nil {
		return nil, fmt.Errorf("timetravel: bind the filter to the scanned columns: %w", err)
	}
	if bound.Equals(iceberg.AlwaysTrue{}) {
		return nil, nil
	}
	if bound.Equals(iceberg.AlwaysFalse{}) {
		return func(rec arrow.RecordBatch) (arrow.RecordBatch, error) {
			defer rec.Release()
			return rec.NewSlice(0, 0), nil
		}, nil
	}
	reg, sexpr, err := substrait.ConvertExpr(proj, bound, true)
	if err != nil {
		return nil, fmt.Errorf("timetravel: compile the filter %s: %w", bound, err)
	}
	ectx := exprs.WithExtensionIDSet(ctx, exprs.NewExtensionSetDefault(*reg))
	return func(rec arrow.RecordBatch) (arrow.RecordBatch, error) {
		defer rec.Release()
		in := compute.NewDatumWithoutOwning(rec)
		mask, err := exprs.ExecuteScalarExpression(ectx, rec.Schema(), sexpr, in)
		if err != nil {
			return nil, fmt.Errorf("timetravel: evaluate the filter: %w", err)
		}
		defer mask.Release()
		out, err := compute.Filter(ectx, in, mask, *compute.DefaultFilterOptions())
		if err != nil {
			return nil, fmt.Errorf("timetravel: apply the filter: %w", err)
		}
		return out.(*compute.RecordDatum).Value, nil
	}, nil
}
