package commit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/iceberg-go"
	icecat "github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"

	"github.com/floelake/floe/internal/failpoint"
	"github.com/floelake/floe/internal/fileio"
)

// The table writer: the one place a floe table is committed.
//
// Every change to a floe table goes through its TableWriter, in one order:
// the segments the ledger accepted, and the work that must sit between two
// commits of the same table (maintenance, key-index updates, rollback), which
// callers hand it with Do. It runs on the raft leader; a single node is a
// cluster of one member, so there is one path, tested once.
//
// One loop, one goroutine per table:
//
//  1. Start: load the table and bring the ledger in line with it (sync):
//     Reconcile when the table is at or ahead of the ledger, AdoptTable when
//     it is behind it (rolled back by another engine, or recreated) or cuts
//     through pending segments. Iceberg is the truth; the ledger follows.
//  2. Wait until a commit is due (Policy), serving Do tasks meanwhile.
//  3. Take every pending segment of the table, oldest first, and commit
//     them as one snapshot with the Committer (which owns retries and the
//     unknown-outcome protocol), then report CommitSegments to the ledger.
//  4. If the table moved under the ledger (an OffsetGapError), go back to
//     sync. If the ledger refuses the report, sync too: the table holds the
//     commit and sync makes the ledger agree. If the table is gone (renamed
//     or dropped in the catalog), sync creates it again (replaced).
//
// Why one loop and not a commit path per mode: everything that changes a
// table must be ordered with its commits. A compaction planned beside the
// commit loop loses the deletes committed meanwhile; a rollback beside it
// has its result overwritten by a commit that was already staged; a key
// index updated beside it points at rows of a snapshot that never landed.
// Ordering them in one goroutine makes each of those impossible by
// construction.

// Writer policies, named in one place. See WriterPolicy.
const (
	// MaxPendingSegments is where members hold back: while a table has this
	// many accepted, uncommitted segments (the leader cannot commit: the
	// catalog is down), members stop proposing, and so stop consuming,
	// instead of growing the ledger without bound. Kafka keeps the records.
	MaxPendingSegments = 1000
	// DueAtPendingSegments makes a commit due whatever the segments carry,
	// well before MaxPendingSegments.
	DueAtPendingSegments = 512
	// MinOffsetsOnlyEvery is the floor of WriterPolicy.OffsetsOnlyEvery.
	MinOffsetsOnlyEvery = 30 * time.Second
	// OffsetsOnlyIntervals is OffsetsOnlyEvery in commit intervals.
	OffsetsOnlyIntervals = 10
)

// WriterPolicy decides when a table writer commits and how it backs off.
type WriterPolicy struct {
	// MinGap is the least time between the starts of two commits of the
	// table (half the commit interval): segments from several members
	// arriving within one interval share a snapshot.
	MinGap time.Duration
	// OffsetsOnlyEvery is how often a table whose pending segments carry no
	// rows (a dead-letter table on clean input) commits a snapshot that only
	// moves its offsets. It bounds what a restart re-reads without filling
	// the table's history with empty snapshots.
	OffsetsOnlyEvery time.Duration
	// DueAt makes a commit due when this many segments are pending.
	DueAt int
	// MinBackoff and MaxBackoff bound the wait after a failed round.
	MinBackoff, MaxBackoff time.Duration
}

// DefaultWriterPolicy is the policy for a pipeline committing every
// interval.
func DefaultWriterPolicy(interval time.Duration) WriterPolicy {
	return WriterPolicy{
		MinGap:           interval / 2,
		OffsetsOnlyEvery: max(MinOffsetsOnlyEvery, OffsetsOnlyIntervals*interval),
		DueAt:            DueAtPendingSegments,
		MinBackoff:       100 * time.Millisecond,
		MaxBackoff:       10 * time.Second,
	}
}

// Due reports whether pend should be committed now, sinceLast after the
// previous commit. flushing makes every pending segment due (the host is
// shutting down). MinGap is applied by the writer on top.
func (p WriterPolicy) Due(pend []PendingSegment, sinceLast time.Duration, flushing bool) bool {
	if len(pend) == 0 {
		return false
	}
	return flushing || hasRows(pend) || sinceLast >= p.OffsetsOnlyEvery || len(pend) >= p.DueAt
}

func hasRows(pend []PendingSegment) bool {
	for _, s := range pend {
		if s.Records > 0 || len(s.Files) > 0 {
			return true
		}
	}
	return false
}

// WriterEnv is what a TableWriter needs from the runtime hosting it.
type WriterEnv interface {
	// Apply applies a ledger command through raft on this node (the
	// leader). The error is raft's (not the leader, outcome unknown); the
	// ledger's refusal is the result's Err.
	Apply(ctx context.Context, cmd []byte) (ApplyResult, error)
	// Flushing reports whether the host is shutting down, which makes
	// every pending segment due at once.
	Flushing() bool
}

// WriterCommit describes one commit a TableWriter made, for observers.
type WriterCommit struct {
	Table    string
	Pipeline string
	Result   Result
	Records  int64
	// Offsets is the number of Kafka offsets the commit covers: its
	// records, those a transform filtered out or the dead-letter table
	// took, and offsets without a record.
	Offsets int64
	Files   int
	// Segments are the ledger ids of the committed segments.
	Segments []uint64
	// Committer is the writer's committer, as of the commit.
	Committer *Committer
}

// WriterConfig configures a TableWriter.
type WriterConfig struct {
	// Table is the table's name in the ledger ("namespace.table").
	Table    string
	Pipeline string
	// Epoch is written as floe.epoch: the raft term of the leader.
	Epoch   int64
	Policy  WriterPolicy
	Catalog table.CatalogIO
	Ledger  *Ledger
	Env     WriterEnv
	Logger  *slog.Logger
	// Metrics observes the writer and its commits; nil reports nothing.
	Metrics Metrics
	// OnCommit, if set, observes every commit, on the writer's goroutine.
	OnCommit func(WriterCommit)
	// Deltas, set for a keyed table, resolves the deletes each commit adds
	// besides its files (see RowDeltas).
	Deltas RowDeltas
	// Stage, set for the table of a stateful transform (event-time
	// windows, dedup), turns each commit's segment into the files it
	// commits, before Deltas (if any) resolves their deletes (see Stage).
	Stage Stage
}

// TableWriter owns one table's commits; see the essay above.
type TableWriter struct {
	cfg   WriterConfig
	c     *Committer
	tasks chan task
	last  time.Time
	// cur is the table as the writer last loaded or committed it, for
	// readers on other goroutines (Current).
	cur atomic.Pointer[table.Table]

	mu struct {
		sync.Mutex
		failures int
		lastErr  error
	}
}

// unhealthyAfter is the number of consecutive failed rounds after which
// Healthy reports the writer unhealthy.
const unhealthyAfter = 3

// Healthy returns nil while the writer's commits succeed, else the last
// error once unhealthyAfter rounds in a row failed.
func (w *TableWriter) Healthy() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.mu.failures >= unhealthyAfter {
		return w.mu.lastErr
	}
	return nil
}

func (w *TableWriter) noteRound(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err == nil {
		w.mu.failures, w.mu.lastErr = 0, nil
		return
	}
	w.mu.failures++
	w.mu.lastErr = err
}

type task struct {
	f    func(ctx context.Context, c *Committer) error
	done chan error
}

// NewWriter returns a writer; Run does the work.
func NewWriter(cfg WriterConfig) (*TableWriter, error) {
	switch {
	case cfg.Table == "" || cfg.Pipeline == "":
		return nil, errors.New("commit: writer needs a table and a pipeline")
	case cfg.Catalog == nil || cfg.Ledger == nil || cfg.Env == nil:
		return nil, errors.New("commit: writer needs a catalog, a ledger and an environment")
	case cfg.Policy.MinBackoff <= 0 || cfg.Policy.MaxBackoff < cfg.Policy.MinBackoff || cfg.Policy.DueAt <= 0:
		return nil, fmt.Errorf("commit: writer policy %+v: backoffs must be positive and ordered, DueAt positive", cfg.Policy)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cfg.Logger = cfg.Logger.With("table", cfg.Table)
	if cfg.Metrics == nil {
		cfg.Metrics = NopMetrics{}
	}
	return &TableWriter{cfg: cfg, tasks: make(chan task)}, nil
}

// Do runs f on the writer's goroutine between two commits, with the
// writer's committer, and returns its error. f may commit to the table
// through the committer (it must keep floe.offsets, as every Committer
// commit does); the writer reloads the table and syncs the ledger after f,
// so whatever f did is what the next commit builds on. Do waits until the
// writer runs; it returns ctx's error if ctx ends first.
func (w *TableWriter) Do(ctx context.Context, f func(ctx context.Context, c *Committer) error) error {
	t := task{f: f, done: make(chan error, 1)}
	select {
	case w.tasks <- t:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-t.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Current returns the table as the writer last loaded or committed it, nil
// before its first load. Safe to call from any goroutine; the table is
// read-only.
func (w *TableWriter) Current() *table.Table { return w.cur.Load() }

// PendingFiles returns the paths of the data files named by the table's
// accepted, uncommitted segments: files that are in no snapshot yet but
// will be. A segment that is no longer pending is in Current: the writer
// publishes a commit's table before it reports the commit to the ledger.
func (w *TableWriter) PendingFiles() ([]string, error) {
	t := w.cur.Load()
	if t == nil {
		return nil, errors.New("commit: the table writer has not loaded its table yet")
	}
	var out []string
	for _, ps := range w.cfg.Ledger.Pending(w.cfg.Table) {
		if len(ps.Files) == 0 {
			continue
		}
		files, err := fileio.DecodeDataFiles(ps.Files, t.Spec(), t.Schema())
		if err != nil {
			return nil, fmt.Errorf("commit: segment %d: %w", ps.ID, err)
		}
		for _, f := range files {
			out = append(out, f.FilePath())
		}
	}
	return out, nil
}

// Run commits the table until ctx ends. It returns only then: every failure
// is retried with backoff, counted and logged.
func (w *TableWriter) Run(ctx context.Context) {
	defer w.cfg.Metrics.WriterStopped(w.cfg.Table)
	backoff := w.cfg.Policy.MinBackoff
	fail := func(what string, err error) bool {
		if ctx.Err() != nil {
			return false
		}
		w.noteRound(err)
		w.cfg.Logger.Error(what+" failed; retrying", "err", err, "backoff", backoff)
		if w.wait(ctx, backoff) != nil {
			return false
		}
		backoff = min(backoff*2, w.cfg.Policy.MaxBackoff)
		return true
	}
	for ctx.Err() == nil {
		if err := w.sync(ctx); err != nil {
			if !fail("loading the table and syncing the ledger", err) {
				return
			}
			continue
		}
		backoff = w.cfg.Policy.MinBackoff
		break
	}
	w.last = time.Now()
	for ctx.Err() == nil {
		changed := w.cfg.Ledger.Changed()
		pend := w.cfg.Ledger.Pending(w.cfg.Table)
		w.cfg.Metrics.PendingSegments(w.cfg.Table, len(pend))
		flushing := w.cfg.Env.Flushing()
		if w.cfg.Policy.Due(pend, time.Since(w.last), flushing) {
			if gap := w.cfg.Policy.MinGap - time.Since(w.last); gap > 0 && !flushing {
				// Shutdown makes the gap moot: wait in steps that notice it.
				if w.wait(ctx, min(gap, flushCheckEvery)) != nil {
					return
				}
				continue
			}
			// The gap runs from one commit's start to the next's, the
			// cadence the pipelines seal at: timed from a commit's end, a
			// slow commit would hold the next seal back by its duration.
			started := time.Now()
			if err := w.commitPending(ctx, pend); err != nil {
				if !fail("commit", err) {
					return
				}
				continue
			}
			backoff = w.cfg.Policy.MinBackoff
			w.noteRound(nil)
			w.last = started
			w.cur.Store(w.c.Table())
			continue
		}
		select {
		case <-ctx.Done():
			return
		case t := <-w.tasks:
			w.runTask(ctx, t)
		case <-changed:
		case <-time.After(time.Second):
		}
	}
}

// flushCheckEvery bounds how long a writer waiting out MinGap takes to
// notice that its host is shutting down.
const flushCheckEvery = 100 * time.Millisecond

// wait sleeps for d, serving Do tasks meanwhile.
func (w *TableWriter) wait(ctx context.Context, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
			return nil
		case t := <-w.tasks:
			w.runTask(ctx, t)
		}
	}
}

func (w *TableWriter) runTask(ctx context.Context, t task) {
	if w.c == nil {
		t.done <- errors.New("commit: the table writer has not loaded its table yet")
		return
	}
	err := t.f(ctx, w.c)
	// Whatever the task did to the table, the next commit builds on the
	// table as it is now, and the ledger agrees with it.
	if serr := w.sync(ctx); serr != nil && err == nil {
		err = fmt.Errorf("commit: after the task: %w", serr)
	}
	w.cur.Store(w.c.Table())
	t.done <- err
}

// sync reloads the table and brings the ledger in line with it: Reconcile
// when the table is at or ahead of the ledger everywhere; AdoptTable when it
// is behind on some partition, or cuts through a pending segment. A table
// that is gone, or lacks offsets the ledger has, was replaced: see replaced.
func (w *TableWriter) sync(ctx context.Context) error {
	cfg := Config{
		Pipeline: w.cfg.Pipeline, Table: table.Identifier(strings.Split(w.cfg.Table, ".")), Epoch: w.cfg.Epoch,
		Logger: w.cfg.Logger, Metrics: w.cfg.Metrics,
	}
	c, err := New(ctx, w.cfg.Catalog, cfg)
	if errors.Is(err, icecat.ErrNoSuchTable) && w.c != nil {
		if err := w.create(ctx, w.c.Table()); err != nil {
			return err
		}
		c, err = New(ctx, w.cfg.Catalog, cfg)
	}
	if err != nil {
		return err
	}
	prev := w.c
	w.c = c
	if w.cfg.Deltas != nil {
		c.UseRowDeltas(w.cfg.Deltas)
	}
	w.cur.Store(c.Table())
	// Only a table this writer saw change identity was replaced: a table
	// that lacks offsets the ledger has but is the one the writer knew was
	// rolled back, and what the rollback removed is read again (adopt).
	if prev != nil && prev.Table().Metadata().TableUUID() != c.Table().Metadata().TableUUID() {
		if err := w.replaced(ctx); err != nil {
			return err
		}
	}
	have := c.Offsets()
	if lc, ok := w.cfg.Ledger.Committed(w.cfg.Table); ok {
		for t, ps := range lc.Offsets {
			for p, v := range ps {
				if got, ok := have.Get(t, p); ok && got < v {
					return w.adopt(ctx, fmt.Sprintf("the table's offsets are behind the ledger's on %s/%d (%d < %d): it was rolled back or recreated", t, p, got, v))
				}
			}
		}
	}
	cmd, err := EncodeReconcile(Reconcile{Tables: []ReconciledTable{{
		Table: w.cfg.Table, Pipeline: w.cfg.Pipeline, SnapshotID: c.LastSnapshot(), Offsets: have,
	}}})
	if err != nil {
		return err
	}
	res, err := w.apply(ctx, cmd)
	if err != nil {
		return fmt.Errorf("commit: reconcile %s: %w", w.cfg.Table, err)
	}
	if len(res.Dropped) > 0 {
		w.cfg.Logger.Info("reconciled the ledger with the table: dropped segments it already holds", "segments", res.Dropped)
	}
	if len(res.Conflicts) > 0 || len(res.Behind) > 0 {
		return w.adopt(ctx, fmt.Sprintf("the table's offsets cut through pending segments %v (another writer committed part of them)", res.Conflicts))
	}
	// Reconcile only raises where partitions are read from. A table that
	// ends below that (the other table of the pipeline was reconciled
	// first, after a crash between the two tables' commits) could never
	// take another segment: every one would start past its end.
	if t, p, e, next, ok := w.cfg.Ledger.EndBelowNext(w.cfg.Pipeline, w.cfg.Table); ok {
		return w.adopt(ctx, fmt.Sprintf("the table ends at %d on %s/%d, below where the partition is read from (%d)", e, t, p, next))
	}
	return nil
}

// A table can be replaced under a running writer: an operator renames or
// drops it (the dead-letter table, typically), and it is created again
// under its name, by create below or by the pipeline's next check of its
// tables. The new table has no offsets, or only those a pipeline recorded
// as its start. Where the ledger has committed offsets for a partition that
// the table lacks, floe got that far with the old table, and the segments
// accepted since start there: replaced records those offsets as the new
// table's start, and the pending segments are committed to it as usual.
// Every record is then in exactly one of the two tables. (A start recorded
// first by the pipeline's check, the other table's offsets as on a
// restart, stands: the records between the two ends are then in neither
// table, or in both.)
//
// Without a ledger that remembers the old table (a single node starting,
// or a cluster whose raft state is gone) nothing is known of it, and the
// pipeline starts the new table at the other table's offsets. sync applies
// replaced only to a table whose UUID changed under the writer: a table that
// lacks offsets but is the one the writer knew was rolled back, not
// replaced.

// create creates the table again, empty, with the schema, partition spec
// and properties of tmpl (the table as the writer last loaded it), when the
// catalog can create tables; a table created meanwhile by someone else is
// as good.
func (w *TableWriter) create(ctx context.Context, tmpl *table.Table) error {
	cat, ok := w.cfg.Catalog.(tableCreator)
	if !ok {
		return fmt.Errorf("commit: %s is gone and this catalog cannot create it", w.cfg.Table)
	}
	spec := tmpl.Spec()
	_, err := cat.CreateTable(ctx, table.Identifier(strings.Split(w.cfg.Table, ".")), tmpl.Schema(),
		icecat.WithPartitionSpec(&spec), icecat.WithProperties(tmpl.Properties()))
	switch {
	case errors.Is(err, icecat.ErrTableAlreadyExists):
		w.cfg.Logger.Warn("the table was gone from the catalog (renamed or dropped) and is back")
	case err != nil:
		return fmt.Errorf("commit: create %s again: %w", w.cfg.Table, err)
	default:
		w.cfg.Logger.Warn("the table is gone from the catalog (renamed or dropped): created it again, empty, with the same schema, partition spec and properties")
	}
	return nil
}

// tableCreator is the part of an Iceberg catalog that creates tables.
type tableCreator interface {
	CreateTable(ctx context.Context, ident table.Identifier, sc *iceberg.Schema, opts ...icecat.CreateTableOpt) (*table.Table, error)
}

// replaced records, as the start of a table that lacks offsets the ledger
// has committed for it, the ledger's offsets (see create).
func (w *TableWriter) replaced(ctx context.Context) error {
	lc, ok := w.cfg.Ledger.Committed(w.cfg.Table)
	if !ok {
		return nil
	}
	have := w.c.Offsets()
	missing := Offsets{}
	for t, ps := range lc.Offsets {
		for p, v := range ps {
			if _, ok := have.Get(t, p); !ok {
				missing.Set(t, p, v)
			}
		}
	}
	if missing.Len() == 0 {
		return nil
	}
	if _, err := w.c.RecordStart(ctx, missing); err != nil {
		return fmt.Errorf("commit: record the start of the replaced table %s: %w", w.cfg.Table, err)
	}
	w.cfg.Logger.Warn("the table lacks offsets the ledger committed to it: it was replaced; it starts where the ledger has the old one end",
		"start", missing.Encode(), "offsets", w.c.Offsets().Encode())
	return nil
}

// adopt makes the ledger take the table's offsets as they are.
func (w *TableWriter) adopt(ctx context.Context, why string) error {
	have := w.c.Offsets()
	cmd, err := EncodeAdoptTable(AdoptTable{Table: w.cfg.Table, Pipeline: w.cfg.Pipeline, SnapshotID: w.c.LastSnapshot(), Offsets: have})
	if err != nil {
		return err
	}
	res, err := w.apply(ctx, cmd)
	if err != nil {
		return fmt.Errorf("commit: adopt the offsets of %s: %w", w.cfg.Table, err)
	}
	moved := make([]string, 0, len(res.Behind))
	for _, b := range res.Behind {
		moved = append(moved, fmt.Sprintf("%s/%d %d→%d", b.Topic, b.Partition, b.Have, b.Got))
	}
	w.cfg.Logger.Warn("adopted the table's offsets: the ledger follows the table, and what lies above them is consumed again",
		"reason", why, "snapshot_id", w.c.LastSnapshot(), "offsets", have.Encode(), "moved_back", moved,
		"dropped_segments", len(res.Dropped), "partitions_restarted", len(res.Moved))
	w.cfg.Metrics.TableAdopted(w.cfg.Table)
	return nil
}

// apply applies cmd and returns the ledger's refusal as the error.
func (w *TableWriter) apply(ctx context.Context, cmd []byte) (ApplyResult, error) {
	res, err := w.cfg.Env.Apply(ctx, cmd)
	if err == nil {
		err = res.Err
	}
	return res, err
}

// commitPending commits pend as one snapshot and reports it to the ledger.
func (w *TableWriter) commitPending(ctx context.Context, pend []PendingSegment) error {
	tbl := w.c.Table()
	seg, ids, err := joinPending(pend, tbl.Spec(), tbl.Schema())
	if err != nil {
		return fmt.Errorf("commit: %s: %w", w.cfg.Table, err)
	}
	var res Result
	if w.cfg.Deltas != nil {
		res, err = w.commitKeyed(ctx, seg)
	} else {
		res, err = w.commitAppend(ctx, seg)
	}
	var gap *OffsetGapError
	if errors.As(err, &gap) {
		w.cfg.Logger.Warn("the table moved under the ledger; reloading and syncing", "err", err)
		return w.sync(ctx)
	}
	if errors.Is(err, icecat.ErrNoSuchTable) || errors.Is(err, ErrTableReplaced) {
		w.cfg.Logger.Warn("the table is gone from the catalog or replaced; syncing", "err", err)
		return w.sync(ctx)
	}
	if err != nil {
		return err
	}
	// Published before the ledger hears of the commit: whoever no longer
	// finds the segment pending in the ledger finds its files in Current
	// (orphan cleanup relies on it).
	w.cur.Store(w.c.Table())
	if err := failpoint.Hit("writer/before-report"); err != nil {
		// The table holds the commit, the ledger does not know: the next
		// round finds the segments covered and reports them.
		return err
	}
	cmd, err := EncodeCommitSegments(CommitSegments{Table: w.cfg.Table, SnapshotID: res.SnapshotID, Offsets: w.c.Offsets(), Segments: ids})
	if err != nil {
		return err
	}
	ar, err := w.cfg.Env.Apply(ctx, cmd)
	if err != nil {
		// Not the leader any more, or the outcome is unknown: the next
		// leader syncs from the table, which holds the commit.
		return err
	}
	if ar.Err != nil {
		w.cfg.Logger.Error("the ledger refused a commit report; syncing it with the table", "err", ar.Err)
		return w.sync(ctx)
	}
	w.cfg.Logger.Debug("committed", "snapshot_id", res.SnapshotID, "segments", len(ids),
		"records", seg.Records, "files", len(seg.Files), "attempts", res.Attempts, "commit_ms", res.Duration.Milliseconds())
	if w.cfg.OnCommit != nil {
		w.cfg.OnCommit(WriterCommit{
			Table: w.cfg.Table, Pipeline: w.cfg.Pipeline, Result: res, Records: seg.Records, Offsets: seg.Span(),
			Files: len(seg.Files), Segments: ids, Committer: w.c,
		})
	}
	if w.cfg.Deltas != nil {
		w.removeObsoleteDeletes(ctx)
	}
	return nil
}

// commitAppend commits seg to an append table, through the stage if the
// writer has one.
func (w *TableWriter) commitAppend(ctx context.Context, seg Segment) (Result, error) {
	if w.cfg.Stage == nil {
		return w.c.Commit(ctx, seg)
	}
	staged, err := w.cfg.Stage.Apply(ctx, w.c.Table(), seg)
	if err != nil {
		w.cfg.Stage.Abandon()
		return Result{}, fmt.Errorf("commit: %s: %w", w.cfg.Table, err)
	}
	res, err := w.c.Commit(ctx, staged)
	if err != nil || res.SnapshotID == 0 {
		w.cfg.Stage.Abandon()
	} else {
		w.cfg.Stage.Committed(res.SnapshotID)
	}
	return res, err
}

// commitKeyed commits seg with the deletes that keep one row per key, and
// tells the key index what became of them. A delta resolved against a
// snapshot that is no longer the head (another engine committed meanwhile)
// is resolved again on the next round.
func (w *TableWriter) commitKeyed(ctx context.Context, seg Segment) (Result, error) {
	base := HeadID(w.c.Table())
	d := RowDelta{Base: base}
	if w.cfg.Stage != nil {
		staged, err := w.cfg.Stage.Apply(ctx, w.c.Table(), seg)
		if err != nil {
			w.cfg.Stage.Abandon()
			return Result{}, fmt.Errorf("commit: %s: %w", w.cfg.Table, err)
		}
		seg = staged
	}
	if len(seg.Files) > 0 {
		var err error
		if d, err = w.cfg.Deltas.Resolve(ctx, w.c.Table(), seg.Files); err != nil {
			w.cfg.Deltas.Abandon()
			if w.cfg.Stage != nil {
				// What the stage applied did not land: the next round
				// applies the segment again, to the state of the table.
				w.cfg.Stage.Abandon()
			}
			return Result{}, fmt.Errorf("commit: resolve the deletes of %s: %w", w.cfg.Table, err)
		}
	}
	res, err := w.c.CommitDelta(ctx, seg, d)
	if w.cfg.Stage != nil {
		if err != nil || res.SnapshotID == 0 {
			w.cfg.Stage.Abandon()
		} else {
			w.cfg.Stage.Committed(res.SnapshotID)
		}
	}
	switch {
	case err != nil || res.SnapshotID == 0:
		// Failed, or the segment was committed before (by a previous
		// leader): the index does not hold what the table holds.
		w.cfg.Deltas.Abandon()
	case len(seg.Files) == 0:
		w.cfg.Deltas.Moved(base, res.SnapshotID)
	default:
		w.cfg.Deltas.Committed(res.SnapshotID)
	}
	// ErrDeltaStale fails the round: the committer holds the table as it
	// is now, and the next round resolves against it.
	return res, err
}

// removeObsoleteDeletes removes the delete files the key index says are
// obsolete, after a commit has landed and been reported. A failure is
// logged: the files stay until the index offers them again.
func (w *TableWriter) removeObsoleteDeletes(ctx context.Context) {
	base := HeadID(w.c.Table())
	files, err := w.cfg.Deltas.Obsolete(ctx, w.c.Table())
	if err != nil || len(files) == 0 {
		if err != nil {
			w.cfg.Logger.Warn("could not list obsolete delete files", "err", err)
		}
		return
	}
	res, err := w.c.RemoveDeletes(ctx, base, files)
	if err != nil || res.SnapshotID == 0 {
		// Nothing to undo: if the removal landed after all, the head is
		// not the index's snapshot and the next commit catches up.
		w.cfg.Logger.Warn("could not remove obsolete delete files; they are offered again after the next commit", "files", len(files), "err", err)
		return
	}
	w.cur.Store(w.c.Table())
	w.cfg.Deltas.Moved(base, res.SnapshotID)
	w.cfg.Logger.Info("removed equality deletes the key index turned into position deletes", "files", len(files), "snapshot_id", res.SnapshotID)
}

// joinPending joins pending segments into one, decoding their files.
func joinPending(pend []PendingSegment, spec iceberg.PartitionSpec, sch *iceberg.Schema) (Segment, []uint64, error) {
	seg := Segment{From: Offsets{}, To: Offsets{}}
	ids := make([]uint64, 0, len(pend))
	var watermark int64
	for _, ps := range pend {
		var files []iceberg.DataFile
		if len(ps.Files) > 0 {
			var err error
			if files, err = fileio.DecodeDataFiles(ps.Files, spec, sch); err != nil {
				return seg, nil, fmt.Errorf("segment %d: %w", ps.ID, err)
			}
		}
		if err := seg.Append(Segment{From: ps.From, To: ps.To, Records: ps.Records, Files: files, Skipped: ps.Skipped, EventTimes: ps.EventTimes}); err != nil {
			return seg, nil, fmt.Errorf("segment %d: %w", ps.ID, err)
		}
		watermark = max(watermark, ps.WatermarkMs)
		ids = append(ids, ps.ID)
	}
	if watermark > 0 {
		seg.Watermark = time.UnixMilli(watermark)
	}
	return seg, ids, nil
}
