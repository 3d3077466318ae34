package commit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	"github.com/google/uuid"

	"github.com/floelake/floe/internal/failpoint"
	"github.com/floelake/floe/internal/metrics"
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
// The protocol (DESIGN §4):
//
//  1. A segment may be committed only on top of a snapshot whose offsets
//     end exactly where the segment starts. Anything else is an
//     OffsetGapError (fatal; the pipeline restarts from the table), except a
//     table that already covers the segment, which is a no-op: a previous
//     incarnation committed it.
//  2. Every attempt is one transaction that asserts the base snapshot
//     (AssertRefSnapshotID on main), carries a fresh floe.commit-id, and
//     copies the full offsets map forward.
//  3. After any failed attempt, whatever its class, the committer reloads the
//     table and looks for every commit id it has used for this segment
//     before doing anything else. Found means the "failed" attempt landed
//     (an unknown outcome that was in fact a success). Not found, the base
//     assertion guarantees that no earlier attempt can land later: they all
//     asserted a base that is no longer current, or the current base, which
//     the next attempt asserts too, so at most one of them wins.
//  4. It then re-checks rule 1 against the reloaded offsets and retries the
//     same files on the new base, with capped exponential backoff, until the
//     context ends. Failures are counted and logged by class, never dropped.
//
// Why not let iceberg-go retry: its refresh-and-replay rewrites the base
// assertion and cannot know that a timed-out attempt may have landed, so it
// could commit the same files twice.
type Committer struct {
	cfg   Config
	cat   table.CatalogIO
	ident string

	tbl     *table.Table
	offsets Offsets

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
	// Route this table's commits through our CatalogIO, so wrappers (fault
	// injection, instrumentation) see them.
	t = table.New(t.Identifier(), t.Metadata(), t.MetadataLocation(), t.FS, c.cat)
	off, _, _, err := TableOffsets(t, c.cfg.Pipeline)
	if err != nil {
		return err
	}
	c.tbl, c.offsets = t, off
	c.setSnapshot(t)
	return nil
}

func (c *Committer) setSnapshot(t *table.Table) {
	if s := t.CurrentSnapshot(); s != nil {
		c.mu.Lock()
		c.mu.lastSnapshot = s.SnapshotID
		c.mu.Unlock()
		metrics.LastSnapshot.WithLabelValues(c.ident).Set(float64(s.SnapshotID))
	}
}

// check applies rule 1: covered (no-op), contiguous (commit) or a gap.
func (c *Committer) check(seg Segment) (covered bool, err error) {
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
	start := time.Now()
	res := Result{}
	covered, err := c.check(seg)
	if err != nil {
		c.fail(ClassFatal, err)
		return res, err
	}
	if covered {
		res.AlreadyCommitted = true
		return res, nil
	}

	var ids []string
	backoff := c.cfg.MinBackoff
	for {
		res.Attempts++
		id := uuid.NewString()
		ids = append(ids, id)
		tbl, err := c.attempt(ctx, seg, id)
		if err == nil {
			c.committed(tbl, seg, start)
			res.SnapshotID = tbl.CurrentSnapshot().SnapshotID
			res.Duration = time.Since(start)
			return res, nil
		}
		class := Classify(err)
		c.fail(class, err)
		c.cfg.Logger.Warn("commit attempt failed", "table", c.ident, "class", class,
			"attempt", res.Attempts, "commit_id", id, "err", err)

		// Reload, then resolve: did any attempt land? Is the segment
		// still contiguous with the table?
		for {
			if err := sleep(ctx, backoff); err != nil {
				return res, fmt.Errorf("commit: %s: gave up after %d attempts: %w (last: %v)", c.ident, res.Attempts, err, c.lastErr())
			}
			backoff = min(backoff*2, c.cfg.MaxBackoff)
			if err := c.reload(ctx); err != nil {
				c.fail(ClassReload, err)
				c.cfg.Logger.Warn("reload after failed commit failed", "table", c.ident, "err", err)
				continue
			}
			break
		}
		for _, prev := range ids {
			if snap, ok := FindCommit(c.tbl, prev); ok {
				c.cfg.Logger.Info("commit outcome resolved: it had landed", "table", c.ident, "commit_id", prev, "snapshot_id", snap)
				c.committed(c.tbl, seg, start)
				res.SnapshotID, res.Duration = snap, time.Since(start)
				return res, nil
			}
		}
		covered, err := c.check(seg)
		if err != nil {
			c.fail(ClassFatal, err)
			return res, err
		}
		if covered {
			res.AlreadyCommitted, res.Duration = true, time.Since(start)
			c.succeeded()
			return res, nil
		}
	}
}

func (c *Committer) attempt(ctx context.Context, seg Segment, commitID string) (*table.Table, error) {
	tx := c.tbl.NewTransaction()
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
	var err error
	if len(seg.Files) == 0 {
		err = tx.AddFiles(ctx, nil, props, false)
	} else {
		err = tx.AddDataFiles(ctx, seg.Files, props, table.WithoutDuplicateCheck())
	}
	if err != nil {
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
	return table.New(t.Identifier(), t.Metadata(), t.MetadataLocation(), t.FS, c.cat), nil
}

func (c *Committer) committed(t *table.Table, seg Segment, start time.Time) {
	off, _, _, err := TableOffsets(t, c.cfg.Pipeline)
	if err != nil || !off.Covers(seg.To) {
		// Cannot happen for a snapshot we just wrote; keep the local view
		// consistent anyway.
		off = c.offsets.Merge(seg.To)
	}
	c.tbl, c.offsets = t, off
	c.setSnapshot(t)
	c.succeeded()
	metrics.Commits.WithLabelValues(c.ident).Inc()
	metrics.RecordsCommitted.WithLabelValues(c.ident).Add(float64(seg.Records))
	metrics.FilesCommitted.WithLabelValues(c.ident).Add(float64(len(seg.Files)))
	metrics.CommitDuration.WithLabelValues(c.ident).Observe(time.Since(start).Seconds())
	if !seg.Watermark.IsZero() {
		metrics.Freshness.WithLabelValues(c.ident).Set(time.Since(seg.Watermark).Seconds())
	}
}

func (c *Committer) succeeded() {
	c.mu.Lock()
	c.mu.consecutiveFailures, c.mu.lastErr = 0, nil
	c.mu.Unlock()
}

func (c *Committer) fail(class string, err error) {
	metrics.CommitFailures.WithLabelValues(c.ident, class).Inc()
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

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
