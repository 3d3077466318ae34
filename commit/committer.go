package commit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	"github.com/google/uuid"

	"github.com/floelake/floe/internal/clock"
	"github.com/floelake/floe/internal/failpoint"
)

// Segment is a contiguous run of consumed offsets and the files holding the
// rows that belong to one table. From and To name only the partitions the
// segment consumed; From is inclusive, To exclusive.
type Segment struct {
	Files   []iceberg.DataFile
	From    Offsets
	To      Offsets
	Records int64
	// Watermark is the newest Kafka record timestamp covered (zero if none).
	Watermark time.Time
	// Skipped are offsets the segment covers without their records, because
	// Kafka no longer had them (on_data_loss: skip). The commit writes them
	// as PropSkipped.
	Skipped Skipped
	// EventTimes are, per partition, the newest event time (Unix
	// microseconds) of the records a stateful transform read (event-time
	// windows: the partitions' watermarks). Not offsets, but kept per
	// partition the same way.
	EventTimes Offsets
	// State, when set, is written as the commit's floe.state (the location
	// of the transform state's checkpoint); otherwise the commit carries
	// the table's floe.state forward.
	State string
	// Dedup, when set, is written as the commit's floe.dedup (the location
	// of the dedup state's manifest); otherwise the commit carries the
	// table's floe.dedup forward.
	Dedup string
}

// Span is the number of offsets s covers, over all its partitions.
func (s *Segment) Span() int64 {
	var n int64
	for t, ps := range s.From {
		for p, from := range ps {
			if to, ok := s.To.Get(t, p); ok && to > from {
				n += to - from
			}
		}
	}
	return n
}

// Append extends s by next, which must start where s ends.
func (s *Segment) Append(next Segment) error {
	for t, ps := range next.From {
		for p, from := range ps {
			if to, ok := s.To.Get(t, p); ok && to != from {
				return fmt.Errorf("commit: segments are not contiguous on %s/%d: %d then %d", t, p, to, from)
			}
			if _, ok := s.From.Get(t, p); !ok {
				s.From.Set(t, p, from)
			}
		}
	}
	s.To = s.To.Merge(next.To)
	for t, ps := range next.EventTimes {
		for p, ts := range ps {
			if old, ok := s.EventTimes.Get(t, p); !ok || ts > old {
				if s.EventTimes == nil {
					s.EventTimes = Offsets{}
				}
				s.EventTimes.Set(t, p, ts)
			}
		}
	}
	if next.State != "" {
		s.State = next.State
	}
	if next.Dedup != "" {
		s.Dedup = next.Dedup
	}
	s.Files = append(s.Files, next.Files...)
	s.Records += next.Records
	if next.Watermark.After(s.Watermark) {
		s.Watermark = next.Watermark
	}
	for t, ps := range next.Skipped {
		for p, rs := range ps {
			for _, r := range rs {
				if s.Skipped == nil {
					s.Skipped = Skipped{}
				}
				s.Skipped.Add(t, p, r[0], r[1])
			}
		}
	}
	return nil
}

// Empty reports whether the segment consumed nothing.
func (s *Segment) Empty() bool { return s.To.Len() == 0 }

// Config configures a Committer.
type Config struct {
	// Pipeline is written as floe.pipeline and selects whose offsets to read.
	Pipeline string
	// Table is the table identifier.
	Table table.Identifier
	// Epoch is written as floe.epoch (the committer's assignment epoch).
	Epoch int64
	// MinBackoff and MaxBackoff bound the exponential backoff between attempts.
	MinBackoff, MaxBackoff time.Duration
	// UnhealthyAfter is the number of consecutive failed attempts after
	// which Healthy reports false.
	UnhealthyAfter int
	Logger         *slog.Logger
	// Metrics observes the commits; nil reports nothing.
	Metrics Metrics
}

func (c *Config) fill() {
	if c.MinBackoff <= 0 {
		c.MinBackoff = 100 * time.Millisecond
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = 10 * time.Second
	}
	if c.UnhealthyAfter <= 0 {
		c.UnhealthyAfter = 3
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Metrics == nil {
		c.Metrics = NopMetrics{}
	}
}

// Result describes a settled commit.
type Result struct {
	// SnapshotID is the snapshot holding the segment (zero if it was
	// already covered by an earlier snapshot).
	SnapshotID int64
	// Attempts is the number of commit attempts made.
	Attempts int
	// AlreadyCommitted is true when the table's offsets already covered the
	// segment before this committer's own attempt could land it (a previous
	// process committed it).
	AlreadyCommitted bool
	Duration         time.Duration
}

// Committer commits segments of one table, exactly once. It is the only
// writer of the table's floe.offsets; it is not safe for concurrent use.
//
// The protocol:
//
//  1. A segment may be committed only on top of a snapshot whose offsets
//     end exactly where the segment starts. Anything else is an
//     OffsetGapError (fatal; the pipeline restarts from the table), except a
//     table that already covers the segment, which is a no-op: a previous
//     incarnation committed it. A partition with no start offset in the
//     segment is accepted only if the table has no offset for it either
//     (ErrMissingFrom otherwise): an offset the table has is never
//     overwritten, only extended.
//  2. Every attempt is one transaction that asserts the base snapshot
//     (AssertRefSnapshotID on main), carries a fresh floe.commit-id, copies
//     the full offsets map forward, and moves the pipeline's tag (TagName)
//     to the snapshot it creates, so that snapshot expiry keeps the last
//     snapshot carrying the pipeline's offsets.
//  3. After any failed attempt, whatever its class, the committer reloads the
//     table and looks for every commit id it has used for this segment in
//     main's ancestry before doing anything else. Found means the "failed"
//     attempt landed (an unknown outcome that was in fact a success). A
//     snapshot main no longer descends from does not count: its records are
//     not in the table. Not found, the base assertion guarantees that no
//     earlier attempt can land later: they all asserted a base that is no
//     longer current, or the current base, which the next attempt asserts
//     too, so at most one of them wins.
//  4. It then re-checks rule 1 against the reloaded offsets and retries the
//     same files on the new base, with capped exponential backoff, until the
//     context ends. Failures are counted and logged by class, never dropped.
//     A reload that finds the table gone, or another table under its name
//     (ErrTableReplaced), ends the commit: its offsets were the old table's.
//
// Start offsets (where a new pipeline begins reading a partition) follow the
// same steps through RecordStart, except that rule 1 becomes "fill only the
// partitions the table has no offset for", re-applied after every reload:
// two processes starting one pipeline at once must not lower one partition
// (duplicates) and raise another (loss) in each other's record.
//
// Why not let iceberg-go retry: its refresh-and-replay rewrites the base
// assertion and cannot know that a timed-out attempt may have landed, so it
// could commit the same files twice.
//
// Why the tag moves in the same transaction: iceberg-go's Transaction has no
// public way to stage a ref update next to a snapshot, but the commit goes
// through the table's CatalogIO, so the committer routes it through a thin
// wrapper (pinningCatalog) that appends the tag update to the same
// CommitTable request. A tag moved by a second commit would lag one commit
// behind after a crash between the two, and a reader would have to guess
// whether it did.
type Committer struct {
	cfg   Config
	cat   table.CatalogIO
	ident string

	tbl     *table.Table
	offsets Offsets
	// fs opens the table's file IO: the loaded table's (see reload). Every
	// table the committer makes gets this one, never the FS of the table it
	// was made from: t.FS is a method value holding a copy of t, so a table
	// made from the last one's FS keeps it, and through it every earlier
	// table and its metadata, alive.
	fs table.FSysF
	// rewrote, if set, hears of every rewrite this committer lands.
	rewrote func(ctx context.Context, after *table.Table, from int64, rw Rewrite)
	// rebase, if set, writes the deletes that carry rows deleted since a
	// rewrite's plan over to its new files (see Rewrite).
	rebase func(ctx context.Context, base *table.Table, rw Rewrite) ([]iceberg.DataFile, error)

	mu struct {
		sync.Mutex
		consecutiveFailures int
		lastErr             error
		lastSnapshot        int64
	}
}

// New loads the table and its committed offsets.
func New(ctx context.Context, cat table.CatalogIO, cfg Config) (*Committer, error) {
	cfg.fill()
	c := &Committer{cfg: cfg, cat: cat, ident: strings.Join(cfg.Table, ".")}
	if err := c.reload(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// Pipeline returns the pipeline whose offsets the committer writes.
func (c *Committer) Pipeline() string { return c.cfg.Pipeline }

// Offsets returns the offsets committed as of the last load or commit.
func (c *Committer) Offsets() Offsets { return c.offsets.Clone() }

// Table returns the table as of the last load or commit.
func (c *Committer) Table() *table.Table { return c.tbl }

// Healthy reports whether commits are succeeding, and the last error if not.
func (c *Committer) Healthy() (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.consecutiveFailures < c.cfg.UnhealthyAfter, c.mu.lastErr
}

// LastSnapshot returns the id of the last snapshot this committer saw.
func (c *Committer) LastSnapshot() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.lastSnapshot
}

func (c *Committer) reload(ctx context.Context) error {
	t, err := c.cat.LoadTable(ctx, c.cfg.Table)
	if err != nil {
		return fmt.Errorf("commit: load %s: %w", c.ident, err)
	}
	if c.tbl != nil && t.Metadata().TableUUID() != c.tbl.Metadata().TableUUID() {
		return fmt.Errorf("%w: %s is table %s, was %s", ErrTableReplaced, c.ident, t.Metadata().TableUUID(), c.tbl.Metadata().TableUUID())
	}
	// Route this table's commits through our CatalogIO, so wrappers (fault
	// injection, instrumentation) see them.
	fs := t.FS
	t = table.New(t.Identifier(), t.Metadata(), t.MetadataLocation(), fs, c.cat)
	off, _, _, err := tableOffsets(t, c.cfg.Pipeline, c.cfg.Logger)
	if err != nil {
		return err
	}
	c.tbl, c.fs, c.offsets = t, fs, off
	c.setSnapshot(t)
	return nil
}

func (c *Committer) setSnapshot(t *table.Table) {
	if s := t.CurrentSnapshot(); s != nil {
		c.mu.Lock()
		c.mu.lastSnapshot = s.SnapshotID
		c.mu.Unlock()
		c.cfg.Metrics.LastSnapshot(c.ident, s.SnapshotID)
	}
}

// check applies rule 1: covered (no-op), contiguous (commit) or a gap.
func (c *Committer) check(seg Segment) (covered bool, err error) {
	for t, ps := range seg.To {
		for p := range ps {
			if _, ok := seg.From.Get(t, p); ok {
				continue
			}
			if have, ok := c.offsets.Get(t, p); ok {
				return false, fmt.Errorf("%w: %s/%d on %s (the table's next offset is %d)", ErrMissingFrom, t, p, c.ident, have)
			}
		}
	}
	if c.offsets.Covers(seg.To) {
		return true, nil
	}
	for t, ps := range seg.From {
		for p, from := range ps {
			want, ok := c.offsets.Get(t, p)
			if !ok {
				// No committed offset yet: the pipeline started this
				// partition at its configured start position.
				continue
			}
			if want != from {
				return false, &OffsetGapError{Table: c.ident, Topic: t, Partition: p, Want: want, Got: from}
			}
		}
	}
	return false, nil
}

// Commit makes seg visible as one snapshot. It returns once the segment is
// committed (by this call or, found on reload, an earlier one), on a fatal
// error, or when ctx ends. A segment with no files but new offsets commits
// an empty snapshot that only moves the offsets.
func (c *Committer) Commit(ctx context.Context, seg Segment) (Result, error) {
	return c.settle(ctx, func() (Segment, bool, error) {
		covered, err := c.check(seg)
		return seg, covered, err
	}, c.addFiles)
}

// stageFunc stages one attempt's changes on tx, with the snapshot summary
// properties every floe commit carries.
type stageFunc func(ctx context.Context, tx *table.Transaction, seg Segment, props iceberg.Properties) error

// addFiles stages an append of seg's files (or an empty snapshot that only
// moves the offsets) on tx, a transaction on the committer's table.
func (c *Committer) addFiles(ctx context.Context, tx *table.Transaction, seg Segment, props iceberg.Properties) error {
	if len(seg.Files) == 0 {
		return tx.AddFiles(ctx, nil, props, false)
	}
	if c.tbl.Metadata().Version() >= 3 {
		// AddDataFiles wants every file of a v3 table to carry its
		// first_row_id; a row delta lets the manifest assign them, as the
		// spec has new files inherit them.
		return tx.NewRowDelta(props).AddRows(seg.Files...).Commit(ctx)
	}
	return tx.AddDataFiles(ctx, seg.Files, props, table.WithoutDuplicateCheck())
}

// RecordStart records offs as the start offsets of the partitions the table
// has no offset for, as one empty snapshot. Partitions the table already has
// are dropped, on the first attempt and again after every reload: whoever
// recorded a start first (another process starting the same pipeline) wins,
// and its offsets are never moved. When no partition is left, nothing is
// committed and the result says AlreadyCommitted. Unknown outcomes are
// resolved as for Commit. Offsets then returns the table's offsets, which
// are where the pipeline must start.
func (c *Committer) RecordStart(ctx context.Context, offs Offsets) (Result, error) {
	return c.settle(ctx, func() (Segment, bool, error) {
		missing := Offsets{}
		for t, ps := range offs {
			for p, o := range ps {
				if _, ok := c.offsets.Get(t, p); !ok {
					missing.Set(t, p, o)
				}
			}
		}
		return Segment{From: Offsets{}, To: missing}, missing.Len() == 0, nil
	}, c.addFiles)
}

// settle runs the protocol: next derives the segment to commit from the
// committer's current view of the table (done when there is nothing left to
// commit), and is called again after every reload.
func (c *Committer) settle(ctx context.Context, next func() (seg Segment, done bool, err error), stage stageFunc) (Result, error) {
	start := time.Now()
	res := Result{}
	// tried maps every commit id used to the segment its attempt carried.
	tried := map[string]Segment{}
	var ids []string
	backoff := c.cfg.MinBackoff
	for {
		seg, done, err := next()
		if err != nil {
			c.fail(ClassFatal, err)
			return res, err
		}
		if done {
			res.AlreadyCommitted = true
			if res.Attempts > 0 {
				res.Duration = time.Since(start)
				c.succeeded()
			}
			return res, nil
		}

		res.Attempts++
		id := uuid.NewString()
		ids = append(ids, id)
		tried[id] = seg
		tbl, err := c.attempt(ctx, seg, id, stage)
		if err == nil {
			c.committed(tbl, seg, start)
			res.SnapshotID = tbl.CurrentSnapshot().SnapshotID
			res.Duration = time.Since(start)
			return res, nil
		}
		if errors.Is(err, ErrRewriteStale) || errors.Is(err, ErrDeltaStale) {
			// Refused while staging: nothing was sent to the catalog.
			c.fail(ClassFatal, err)
			return res, err
		}
		class := Classify(err)
		c.fail(class, err)
		c.cfg.Logger.Warn("commit attempt failed", "table", c.ident, "class", class,
			"attempt", res.Attempts, "commit_id", id, "err", err)

		// Reload, then resolve: did any attempt land? Is there still
		// something to commit, and may it be?
		for {
			if err := clock.Sleep(ctx, backoff); err != nil {
				return res, fmt.Errorf("commit: %s: gave up after %d attempts: %w (last: %v)", c.ident, res.Attempts, err, c.lastErr())
			}
			backoff = min(backoff*2, c.cfg.MaxBackoff)
			if err := c.reload(ctx); err != nil {
				if Classify(err) == ClassFatal {
					// The table itself cannot be committed to (its
					// history lost the offsets); retrying cannot help.
					c.fail(ClassFatal, err)
					return res, err
				}
				c.fail(ClassReload, err)
				c.cfg.Logger.Warn("reload after failed commit failed", "table", c.ident, "err", err)
				continue
			}
			break
		}
		for _, prev := range ids {
			if snap, ok := FindCommit(c.tbl, prev); ok {
				c.cfg.Logger.Info("commit outcome resolved: it had landed", "table", c.ident, "commit_id", prev, "snapshot_id", snap)
				c.committed(c.tbl, tried[prev], start)
				res.SnapshotID, res.Duration = snap, time.Since(start)
				return res, nil
			}
		}
	}
}

func (c *Committer) attempt(ctx context.Context, seg Segment, commitID string, stage stageFunc) (*table.Table, error) {
	pin := &pinningCatalog{CatalogIO: c.cat, tag: TagName(c.cfg.Pipeline)}
	tx := c.bind(c.tbl, pin).NewTransaction()
	if err := tx.AssertRefSnapshotID(table.MainBranch); err != nil {
		return nil, err
	}
	props := iceberg.Properties{
		PropPipeline: c.cfg.Pipeline,
		PropOffsets:  c.offsets.Merge(seg.To).Encode(),
		PropCommitID: commitID,
		PropEpoch:    strconv.FormatInt(c.cfg.Epoch, 10),
	}
	if !seg.Watermark.IsZero() {
		props[PropWatermark] = strconv.FormatInt(seg.Watermark.UnixMilli(), 10)
	}
	if seg.Skipped.Len() > 0 {
		props[PropSkipped] = seg.Skipped.Encode()
	}
	if seg.State != "" {
		props[PropState] = seg.State
	} else if st := TableState(c.tbl, c.cfg.Pipeline); st != "" {
		props[PropState] = st
	}
	if et := TableEventTimes(c.tbl, c.cfg.Pipeline); len(et) > 0 || len(seg.EventTimes) > 0 {
		props[PropEventTimes] = et.MaxMerge(seg.EventTimes).Encode()
	}
	if seg.Dedup != "" {
		props[PropDedup] = seg.Dedup
	} else if d := TableDedup(c.tbl, c.cfg.Pipeline); d != "" {
		props[PropDedup] = d
	}
	if err := stage(ctx, tx, seg, props); err != nil {
		return nil, fmt.Errorf("commit: stage %s: %w", c.ident, err)
	}
	if err := pin.follow(tx, c.tbl); err != nil {
		return nil, fmt.Errorf("commit: stage %s: %w", c.ident, err)
	}
	if err := failpoint.Hit("commit/before-catalog"); err != nil {
		return nil, err
	}
	t, err := tx.Commit(ctx)
	if err != nil {
		return nil, err
	}
	if err := failpoint.Hit("commit/after-catalog"); err != nil {
		return nil, err
	}
	if t == nil || t.CurrentSnapshot() == nil {
		return nil, errors.New("commit: catalog returned no current snapshot")
	}
	return table.New(t.Identifier(), detach(t.Metadata()), t.MetadataLocation(), c.fs, c.cat), nil
}

// detach returns a copy of meta that shares no memory with the transaction
// that committed it. iceberg-go's snapshot producer points the new
// snapshot's SchemaID into the transaction's MetadataBuilder (and its
// ParentSnapshotID into the producer), and the catalog returns that
// snapshot as it is: the builder's base is the metadata the transaction
// started from, so each committed metadata would keep the one before it,
// and so every one since the last load, alive. A builder copies every
// snapshot deeply. The copy's last-updated time is the time of the copy
// (Build sets it; the catalog's metadata keeps its own). If the copy
// fails (it never should), meta itself is returned.
func detach(meta table.Metadata) table.Metadata {
	b, err := table.MetadataBuilderFromBase(meta, "")
	if err != nil {
		return meta
	}
	copied, err := b.Build()
	if err != nil {
		return meta
	}
	return copied
}

func (c *Committer) committed(t *table.Table, seg Segment, start time.Time) {
	off, _, _, err := tableOffsets(t, c.cfg.Pipeline, c.cfg.Logger)
	if err != nil || !off.Covers(seg.To) {
		// Cannot happen for a snapshot we just wrote; keep the local view
		// consistent anyway.
		off = c.offsets.Merge(seg.To)
	}
	c.tbl, c.offsets = t, off
	c.setSnapshot(t)
	c.succeeded()
	c.cfg.Metrics.SnapshotCommitted(c.ident, seg.Records, len(seg.Files), time.Since(start), seg.Watermark)
}

func (c *Committer) succeeded() {
	c.mu.Lock()
	c.mu.consecutiveFailures, c.mu.lastErr = 0, nil
	c.mu.Unlock()
}

func (c *Committer) fail(class string, err error) {
	c.cfg.Metrics.CommitFailed(c.ident, class)
	c.mu.Lock()
	c.mu.consecutiveFailures++
	c.mu.lastErr = fmt.Errorf("%s: %w", class, err)
	c.mu.Unlock()
}

func (c *Committer) lastErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.lastErr
}

// bind returns t with its commits routed through cat and its file IO
// opened by c.fs (see Committer.fs).
func (c *Committer) bind(t *table.Table, cat table.CatalogIO) *table.Table {
	return table.New(t.Identifier(), t.Metadata(), t.MetadataLocation(), c.fs, cat)
}

// pinningCatalog adds one update to the commit it carries: the tag set to
// the snapshot the transaction makes main's head (see rule 2).
type pinningCatalog struct {
	table.CatalogIO
	tag        string
	snapshotID int64
	staged     bool
}

// follow records the snapshot tx makes main's head; base is the table tx
// started from.
func (p *pinningCatalog) follow(tx *table.Transaction, base *table.Table) error {
	staged, err := tx.StagedTable()
	if err != nil {
		return err
	}
	head := staged.CurrentSnapshot()
	if head == nil || (base.CurrentSnapshot() != nil && head.SnapshotID == base.CurrentSnapshot().SnapshotID) {
		return errors.New("transaction staged no new snapshot to tag")
	}
	p.snapshotID, p.staged = head.SnapshotID, true
	return nil
}

func (p *pinningCatalog) CommitTable(ctx context.Context, ident table.Identifier, reqs []table.Requirement, upd []table.Update) (table.Metadata, string, error) {
	if p.staged {
		// The tag never expires by age (the longest max-ref-age there
		// is), whatever the table's history.expire.max-ref-age-ms says.
		upd = append(slices.Clip(upd), table.NewSetSnapshotRefUpdate(p.tag, p.snapshotID, table.TagRef, math.MaxInt64, 0, 0))
	}
	return p.CatalogIO.CommitTable(ctx, ident, reqs, upd)
}
