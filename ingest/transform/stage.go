package transform

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"log/slog"
	"math"
	"slices"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	"github.com/google/uuid"

	"github.com/floelake/floe/commit"
	"github.com/floelake/floe/ingest/transform/window"
	"github.com/floelake/floe/internal/fileio"
)

// StateDir is where a window table's state checkpoints go, under the
// table's location.
const StateDir = "state"

// DefaultIdlePartition is how long a partition may deliver no event before
// the window watermark stops waiting for it, unless state.idle_partition
// says otherwise.
const DefaultIdlePartition = 5 * time.Minute

// Stage is the table writer's part of a windowed pipeline (a commit.Stage):
// at every commit it merges the partial windows the workers wrote for the
// segment into the windows' state, writes the rows of the windows that
// changed (and the keys of sessions merged away), and checkpoints the state
// to the object store; the commit references the checkpoint as floe.state,
// so the state always matches the committed offsets. Windows no longer in
// memory are read back from the table.
type Stage struct {
	p        *Program
	pipeline string
	log      *slog.Logger
	mem      memory.Allocator
	now      func() time.Time

	state *window.State
	// loaded is the checkpoint state matches: the floe.state of the
	// table's head it was loaded from, or the one the last Apply wrote
	// once that landed. pending is what the last Apply wrote, and
	// pendingStats what it did, kept until Committed.
	loaded, pending string
	pendingStats    window.Changes
	pendingRows     int64
	// store is what state reads windows back from: the table as of the
	// commit being applied.
	store tableStore

	// heard is when each partition last delivered an event, by the id
	// the state knows it by.
	heard map[string]time.Time

	stats   StageStats
	table   string
	metrics StageMetrics
	index   Locator
}

// StageStats are a Stage's running totals.
type StageStats struct {
	// Windows counts the window rows written, Reopened those of them late
	// data re-opened (the watermark had passed their end), Loaded the
	// windows read back from the table. (Events later than max_lateness
	// never reach the stage: the workers route them to the dead-letter
	// table, see Windower.Late.)
	Windows, Reopened, Loaded atomic.Int64
	// InMemory is the number of windows the state holds.
	InMemory atomic.Int64
	// ByIndex counts the windows read back through the key index (one
	// row of one file), of Loaded.
	ByIndex atomic.Int64
}

// StageMetrics observes a Stage (internal/metrics.Set implements it).
type StageMetrics interface {
	// WindowCommit is called for every Apply: window rows written, of
	// them re-opened ones, windows read back from the table, and the
	// windows in memory after it.
	WindowCommit(table string, rows, reopened, readBack, inMemory int64)
}

// Locator finds a key's current row through the table's key index
// (upsert.Resolver implements it): see UseIndex.
type Locator interface {
	// Locate finds the row of the key in row i of rec in base's head;
	// known is false when the index cannot tell.
	Locate(base *table.Table, rec arrow.RecordBatch, i int) (path string, pos int64, found, known bool, err error)
}

// UseIndex makes the stage read a tumbling or hopping window back through
// the table's key index: one row of one data file, instead of a scan.
// Sessions, and every window while the index cannot tell, are read back by
// a scan.
func (s *Stage) UseIndex(l Locator) { s.index = l }

// Observe makes the stage report to m under table's name.
func (s *Stage) Observe(table string, m StageMetrics) { s.table, s.metrics = table, m }

// NewStage makes the table writer's stage of a windowed program.
func (p *Program) NewStage(pipeline string, log *slog.Logger) (*Stage, error) {
	if p.window == nil {
		return nil, errors.New("transform: the program has no window")
	}
	s := &Stage{p: p, pipeline: pipeline, log: log, mem: memory.DefaultAllocator, now: time.Now, heard: map[string]time.Time{}}
	s.store.s = s
	return s, nil
}

// Stats returns the stage's running totals.
func (s *Stage) Stats() *StageStats { return &s.stats }

var _ commit.Stage = (*Stage)(nil)

// Apply implements commit.Stage.
func (s *Stage) Apply(ctx context.Context, base *table.Table, seg commit.Segment) (commit.Segment, error) {
	info, err := fileio.InfoFromTable(ctx, base)
	if err != nil {
		return seg, err
	}
	if s.state != nil && commit.TableState(base, s.pipeline) != s.loaded {
		// The table moved under the state (a rollback adopted, a table
		// replaced, a commit whose fate the state missed): its checkpoint
		// is the truth.
		s.log.Info("the table's window state checkpoint is not the one in memory; loading it",
			"table_checkpoint", commit.TableState(base, s.pipeline), "in_memory", s.loaded)
		s.state = nil
	}
	// The state reads windows back through the one store it was made
	// with: point it at this commit's base.
	s.store.ctx, s.store.base = ctx, base
	defer func() {
		s.store.ctx = nil
		if s.store.rows != nil {
			s.store.rows.Close()
			s.store.rows = nil
		}
	}()
	if s.state == nil {
		if s.state, err = s.load(ctx, base, &s.store); err != nil {
			return seg, err
		}
	}
	cfg := s.p.window.cfg
	parts := window.NewPartials(cfg.Spec, cfg.Aggs)
	for _, f := range seg.Files {
		blobs, err := fileio.ReadBinaryColumn(ctx, info.FS, f.FilePath(), PartialsSchema.Field(0).Name, s.mem)
		if err != nil {
			return seg, fmt.Errorf("transform: partial windows: %w", err)
		}
		for _, b := range blobs {
			p, err := window.UnmarshalPartials(cfg.Spec, cfg.Aggs, b)
			if err != nil {
				return seg, fmt.Errorf("transform: partial windows in %s: %w", f.FilePath(), err)
			}
			if err := parts.Merge(p); err != nil {
				return seg, fmt.Errorf("transform: partial windows in %s: %w", f.FilePath(), err)
			}
		}
	}
	ch, err := s.state.Apply(parts)
	if err != nil {
		return seg, fmt.Errorf("transform: windows: %w", err)
	}
	now := s.now()
	for t, ps := range seg.EventTimes {
		for p, ts := range ps {
			id := PartitionID(t, p)
			s.state.Observe(id, ts)
			s.heard[id] = now
		}
	}
	// A partition that has delivered nothing for state.idle_partition
	// stops holding the watermark back (windows would stay in memory
	// forever).
	idle := s.p.window.idle
	for _, id := range s.state.Partitions() {
		if at, ok := s.heard[id]; !ok {
			s.heard[id] = now // restored from a checkpoint: give it time
		} else if now.Sub(at) > idle {
			s.state.Forget(id)
			delete(s.heard, id)
			s.log.Info("a partition delivered no event for a while; the window watermark no longer waits for it", "partition", id, "idle", idle)
		}
	}
	out := seg
	out.Files = nil
	if len(ch.Upserts) > 0 {
		f, err := s.writeRows(ctx, info, ch.Upserts)
		if err != nil {
			return seg, err
		}
		out.Files = append(out.Files, f...)
	}
	if len(ch.Deletes) > 0 {
		f, err := s.writeDeletes(ctx, info, ch.Deletes)
		if err != nil {
			return seg, err
		}
		out.Files = append(out.Files, f...)
	}
	s.state.Evict()
	b, err := s.state.MarshalBinary()
	if err != nil {
		return seg, fmt.Errorf("transform: checkpoint the window state: %w", err)
	}
	out.State = fmt.Sprintf("%s/%s/%s-%s.bin", info.Location, StateDir, s.pipeline, uuid.NewString())
	if err := fileio.WriteBlob(info.FS, out.State, b); err != nil {
		return seg, err
	}
	out.Records = int64(len(ch.Upserts))
	s.pending, s.pendingStats, s.pendingRows = out.State, ch, int64(len(ch.Upserts))
	s.pendingStats.Upserts, s.pendingStats.Deletes = nil, nil
	return out, nil
}

// Committed implements commit.Stage: the state is the one the landed
// checkpoint holds. The partials files stay for orphan cleanup: until the
// ledger hears of the commit, its segments are pending and name them.
func (s *Stage) Committed(int64) {
	s.loaded = s.pending
	ch := s.pendingStats
	s.stats.Windows.Add(s.pendingRows)
	s.stats.Reopened.Add(int64(ch.Reopened))
	s.stats.Loaded.Add(int64(ch.Loaded))
	if s.state != nil {
		s.stats.InMemory.Store(int64(s.state.Len()))
	}
	if s.metrics != nil {
		s.metrics.WindowCommit(s.table, s.pendingRows, int64(ch.Reopened), int64(ch.Loaded), s.stats.InMemory.Load())
	}
	if ch.Reopened > 0 || ch.Loaded > 0 {
		s.log.Debug("late data re-opened windows", "reopened", ch.Reopened, "read_back", ch.Loaded)
	}
	s.pending, s.pendingStats, s.pendingRows = "", window.Changes{}, 0
}

// Abandon implements commit.Stage: the state may hold what did not land, so
// it is dropped and loaded again from the table's checkpoint.
func (s *Stage) Abandon() {
	s.state = nil
	s.pending, s.pendingStats, s.pendingRows = "", window.Changes{}, 0
}

// load reads the state the table's floe.state references. A table with
// rows but no checkpoint (lost, or written before) gets a state that reads
// every window it needs back from the table.
func (s *Stage) load(ctx context.Context, base *table.Table, store *tableStore) (*window.State, error) {
	cfg := s.p.window.cfg
	loc := commit.TableState(base, s.pipeline)
	s.loaded = loc
	if loc == "" {
		if snap := base.CurrentSnapshot(); snap != nil && snap.Summary != nil && snap.Summary.Properties["total-records"] != "0" &&
			snap.Summary.Properties["total-records"] != "" {
			s.log.Warn("the window table has rows but no state checkpoint (floe.state); windows are read back from the table as they are needed")
			return s.afterLoss(ctx, base, store)
		}
		return window.NewState(cfg, store)
	}
	fs, err := base.FS(ctx)
	if err != nil {
		return nil, err
	}
	f, err := fs.Open(loc)
	if errors.Is(err, iofs.ErrNotExist) {
		s.log.Warn("the window state checkpoint the table names is gone; windows are read back from the table as they are needed", "checkpoint", loc)
		return s.afterLoss(ctx, base, store)
	}
	if err != nil {
		return nil, fmt.Errorf("transform: open the window state %s: %w", loc, err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("transform: read the window state %s: %w", loc, err)
	}
	st, err := window.RestoreState(cfg, store, b)
	if err != nil {
		return nil, fmt.Errorf("transform: the window state %s: %w", loc, err)
	}
	s.log.Info("loaded the window state", "checkpoint", loc, "windows", st.Len())
	return st, nil
}

// writeRows writes the rows of the windows ws.
func (s *Stage) writeRows(ctx context.Context, info fileio.TableInfo, ws []window.Window) ([]iceberg.DataFile, error) {
	w := s.p.window
	rb := array.NewRecordBuilder(s.mem, info.ArrowSchema)
	defer rb.Release()
	col := func(name string) array.Builder {
		i := info.ArrowSchema.FieldIndices(name)
		if len(i) == 0 {
			return nil
		}
		return rb.Field(i[0])
	}
	var groupTypes []iceberg.Type
	var groups []array.Builder
	for _, j := range w.group {
		groupTypes = append(groupTypes, s.p.outs[j].field.Type)
		groups = append(groups, col(s.p.outs[j].field.Name))
	}
	var aggCols []array.Builder
	for _, a := range w.aggs {
		aggCols = append(aggCols, col(a.Name))
	}
	fixed := []array.Builder{col(ColWindowStart), col(ColWindowEnd), col(ColEvents), col(ColRevision), col(ColUpdatedAt), col(ColState)}
	if slices.Contains(groups, nil) || slices.Contains(aggCols, nil) || slices.Contains(fixed, nil) {
		return nil, fmt.Errorf("transform: the window table lacks a column of the window's (the table's columns are %s)", info.Schema)
	}
	now := arrow.Timestamp(s.now().UnixMicro())
	var blob []byte
	for i := range ws {
		win := &ws[i]
		if err := decodeGroup([]byte(win.Group), groupTypes, groups); err != nil {
			return nil, err
		}
		fixed[0].(*array.TimestampBuilder).Append(arrow.Timestamp(win.Start))
		fixed[1].(*array.TimestampBuilder).Append(arrow.Timestamp(win.End))
		for k := range w.aggs {
			appendResult(aggCols[k], w.cfg.Aggs.Result(win.Accs, k))
		}
		fixed[2].(*array.Int64Builder).Append(win.Events)
		fixed[3].(*array.Int64Builder).Append(win.Revision)
		fixed[4].(*array.TimestampBuilder).Append(now)
		blob = w.cfg.Aggs.AppendBinary(blob[:0], win.Accs)
		fixed[5].(*array.BinaryBuilder).Append(blob)
	}
	rec := rb.NewRecordBatch()
	defer rec.Release()
	fw := fileio.NewWriter(info, nil, fileio.Options{})
	if err := fw.Write(rec); err != nil {
		fw.Abort()
		return nil, fmt.Errorf("transform: write the window rows: %w", err)
	}
	files, err := fw.Close(ctx)
	if err != nil {
		return nil, fmt.Errorf("transform: write the window rows: %w", err)
	}
	return files, nil
}

// appendResult appends an aggregate's value to its column's builder.
func appendResult(b array.Builder, v window.Value) {
	if v.Null {
		b.AppendNull()
		return
	}
	switch b := b.(type) {
	case *array.Int64Builder:
		b.Append(v.Int)
	case *array.Int32Builder:
		b.Append(int32(v.Int))
	case *array.BooleanBuilder:
		b.Append(v.Int != 0)
	case *array.Date32Builder:
		b.Append(arrow.Date32(v.Int))
	case *array.Time64Builder:
		b.Append(arrow.Time64(v.Int))
	case *array.TimestampBuilder:
		b.Append(arrow.Timestamp(v.Int))
	case *array.Float64Builder:
		b.Append(v.Float)
	case *array.Float32Builder:
		b.Append(float32(v.Float))
	case *array.StringBuilder:
		b.BinaryBuilder.Append(v.Bytes)
	case *array.BinaryBuilder:
		b.Append(v.Bytes)
	case *array.FixedSizeBinaryBuilder:
		b.Append(v.Bytes)
	default:
		if eb, ok := b.(interface{ StorageBuilder() array.Builder }); ok {
			appendResult(eb.StorageBuilder(), v)
			return
		}
		b.AppendNull()
	}
}

// writeDeletes writes the keys of sessions merged away as a file of deleted
// keys (equality-delete content on the key columns; the key index turns it
// into position deletes).
func (s *Stage) writeDeletes(ctx context.Context, info fileio.TableInfo, keys []window.WindowKey) ([]iceberg.DataFile, error) {
	ksch, ids, rec, err := s.keyRecord(info.Schema, keys)
	if err != nil {
		return nil, err
	}
	defer rec.Release()
	kinfo := info
	kinfo.Schema, kinfo.ArrowSchema, kinfo.Spec = ksch, rec.Schema(), *iceberg.UnpartitionedSpec
	fw := fileio.NewWriter(kinfo, nil, fileio.Options{Content: iceberg.EntryContentEqDeletes, EqualityFieldIDs: ids, Dir: "data/deleted-keys"})
	if err := fw.Write(rec); err != nil {
		fw.Abort()
		return nil, fmt.Errorf("transform: write the merged sessions' keys: %w", err)
	}
	return fw.Close(ctx)
}

// keyRecord makes the rows of the window table's key columns (with sch's
// field ids) of keys: the group columns decoded from each key's group, and
// window_start. It also returns the key schema and its field ids.
func (s *Stage) keyRecord(sch *iceberg.Schema, keys []window.WindowKey) (*iceberg.Schema, []int, arrow.RecordBatch, error) {
	var fields []iceberg.NestedField
	var ids []int
	for _, name := range s.p.WindowKey() {
		f, ok := sch.FindFieldByName(name)
		if !ok {
			return nil, nil, nil, fmt.Errorf("transform: the window table has no key column %q", name)
		}
		fields = append(fields, f)
		ids = append(ids, f.ID)
	}
	ksch := iceberg.NewSchema(0, fields...)
	asc, err := table.SchemaToArrowSchema(ksch, nil, true, false)
	if err != nil {
		return nil, nil, nil, err
	}
	rb := array.NewRecordBuilder(s.mem, asc)
	defer rb.Release()
	w := s.p.window
	types := make([]iceberg.Type, len(w.group))
	groups := make([]array.Builder, len(w.group))
	for i, j := range w.group {
		types[i], groups[i] = s.p.outs[j].field.Type, rb.Field(i)
	}
	starts := rb.Field(len(w.group)).(*array.TimestampBuilder)
	for _, k := range keys {
		if err := decodeGroup([]byte(k.Group), types, groups); err != nil {
			return nil, nil, nil, err
		}
		starts.Append(arrow.Timestamp(k.Start))
	}
	return ksch, ids, rb.NewRecordBatch(), nil
}

// tableStore reads windows back from the table: the rows of a group and
// window, their accumulators in the state column. Its table and context
// are those of the Apply in progress.
type tableStore struct {
	ctx  context.Context
	s    *Stage
	base *table.Table
	// rows reads rows through the key index; it keeps the files and row
	// groups it read until the Apply ends.
	rows *fileio.RowReader
}

func (t *tableStore) Load(group string, lo, hi int64) ([]window.Window, error) {
	if t.ctx == nil {
		return nil, errors.New("transform: a window was read back outside a commit")
	}
	w := t.s.p.window
	if t.s.index != nil && w.cfg.Spec.Kind != window.Session {
		ws, known, err := t.byIndex(group, lo)
		if err != nil || known {
			return ws, err
		}
	}
	var preds []iceberg.BooleanExpression
	key := []byte(group)
	for _, j := range w.group {
		f := t.s.p.outs[j].field
		ref := iceberg.Reference(f.Name)
		switch f.Type.(type) {
		case iceberg.StringType, iceberg.BinaryType:
			n, k := binary.Uvarint(key)
			if k <= 0 || uint64(len(key)-k) < n {
				return nil, errors.New("transform: corrupt group key")
			}
			v := key[k : k+int(n)]
			key = key[k+int(n):]
			if _, ok := f.Type.(iceberg.StringType); ok {
				preds = append(preds, iceberg.EqualTo(ref, string(v)))
			} else {
				preds = append(preds, iceberg.EqualTo(ref, slices.Clone(v)))
			}
		default:
			if len(key) < 8 {
				return nil, errors.New("transform: corrupt group key")
			}
			v := int64(binary.BigEndian.Uint64(key))
			key = key[8:]
			switch f.Type.(type) {
			case iceberg.BooleanType:
				preds = append(preds, iceberg.EqualTo(ref, v != 0))
			case iceberg.Int32Type:
				preds = append(preds, iceberg.EqualTo(ref, int32(v)))
			case iceberg.Int64Type:
				preds = append(preds, iceberg.EqualTo(ref, v))
			case iceberg.DateType:
				preds = append(preds, iceberg.EqualTo(ref, iceberg.Date(v)))
			default:
				preds = append(preds, iceberg.EqualTo(ref, iceberg.Timestamp(v)))
			}
		}
	}
	start, end := iceberg.Reference(ColWindowStart), iceberg.Reference(ColWindowEnd)
	if w.cfg.Spec.Kind == window.Session {
		preds = append(preds, iceberg.LessThanEqual(start, iceberg.Timestamp(hi)), iceberg.GreaterThanEqual(end, iceberg.Timestamp(lo)))
	} else {
		preds = append(preds, iceberg.EqualTo(start, iceberg.Timestamp(lo)))
	}
	filter := preds[0]
	if len(preds) > 1 {
		filter = iceberg.NewAnd(preds[0], preds[1], preds[2:]...)
	}
	if t.base.CurrentSnapshot() == nil {
		return nil, nil
	}
	_, recs, err := t.base.Scan(table.WithRowFilter(filter),
		table.WithSelectedFields(ColWindowStart, ColWindowEnd, ColEvents, ColRevision, ColState)).ToArrowRecords(t.ctx)
	if err != nil {
		return nil, fmt.Errorf("transform: read windows back from the table: %w", err)
	}
	var out []window.Window
	for rec, err := range recs {
		if err != nil {
			return nil, fmt.Errorf("transform: read windows back from the table: %w", err)
		}
		ws, err := windowsOf(rec, group, w.cfg.Aggs)
		rec.Release()
		if err != nil {
			return nil, err
		}
		out = append(out, ws...)
	}
	return out, nil
}

// windowsOf reads the windows of rec, rows of a window table's start, end,
// events, revision and state columns.
func windowsOf(rec arrow.RecordBatch, group string, aggs window.Aggs) ([]window.Window, error) {
	col := func(name string) arrow.Array {
		i := rec.Schema().FieldIndices(name)
		if len(i) == 0 {
			return nil
		}
		return rec.Column(i[0])
	}
	starts, ok1 := col(ColWindowStart).(*array.Timestamp)
	ends, ok2 := col(ColWindowEnd).(*array.Timestamp)
	events, ok3 := col(ColEvents).(*array.Int64)
	revs, ok4 := col(ColRevision).(*array.Int64)
	states, ok5 := col(ColState).(*array.Binary)
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 {
		return nil, fmt.Errorf("transform: the window table's columns are not a window table's (%s)", rec.Schema())
	}
	var out []window.Window
	for i := range int(rec.NumRows()) {
		accs, err := aggs.DecodeAccs(states.Value(i))
		if err != nil {
			return nil, fmt.Errorf("transform: a window row's %s: %w", ColState, err)
		}
		out = append(out, window.Window{Group: group, Start: int64(starts.Value(i)), End: int64(ends.Value(i)),
			Accs: accs, Revision: revs.Value(i), Events: events.Value(i)})
	}
	return out, nil
}

// byIndex reads the window of group starting at start back through the key
// index: known is false when the index cannot tell.
func (t *tableStore) byIndex(group string, start int64) ([]window.Window, bool, error) {
	s := t.s
	_, _, rec, err := s.keyRecord(t.base.Schema(), []window.WindowKey{{Group: group, Start: start}})
	if err != nil {
		return nil, false, err
	}
	defer rec.Release()
	path, pos, found, known, err := s.index.Locate(t.base, rec, 0)
	if err != nil || !known || !found {
		return nil, known, err
	}
	if t.rows == nil {
		fs, err := t.base.FS(t.ctx)
		if err != nil {
			return nil, false, err
		}
		t.rows = fileio.NewRowReader(fs, []string{ColWindowStart, ColWindowEnd, ColEvents, ColRevision, ColState}, s.mem)
	}
	row, err := t.rows.Row(t.ctx, path, pos)
	if err != nil {
		return nil, false, fmt.Errorf("transform: read a window back: %w", err)
	}
	defer row.Release()
	ws, err := windowsOf(row, group, s.p.window.cfg.Aggs)
	if err != nil {
		return nil, false, err
	}
	if len(ws) != 1 || ws[0].Start != start {
		return nil, false, fmt.Errorf("transform: the key index placed window %s at %s row %d, which holds another", s.p.DescribeGroup(group), path, pos)
	}
	s.stats.ByIndex.Add(1)
	return ws, true, nil
}

// afterLoss makes the state of a table whose checkpoint is lost: every
// window that may be in the table (ending at or before the largest
// window_end its files' statistics give) is looked up before it is
// changed.
func (s *Stage) afterLoss(ctx context.Context, base *table.Table, store *tableStore) (*window.State, error) {
	cfg := s.p.window.cfg
	horizon := int64(math.MaxInt64)
	if f, ok := base.Schema().FindFieldByName(ColWindowEnd); ok {
		if tasks, err := base.Scan().PlanFiles(ctx); err == nil {
			horizon = math.MinInt64
			for _, t := range tasks {
				b, ok := t.File.UpperBoundValues()[f.ID]
				if !ok || len(b) != 8 {
					horizon = math.MaxInt64
					break
				}
				horizon = max(horizon, int64(binary.LittleEndian.Uint64(b)))
			}
		}
	}
	return window.NewStateWithHorizon(cfg, store, horizon)
}
