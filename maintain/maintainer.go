package maintain

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/iceberg-go"
	iceio "github.com/apache/iceberg-go/io"
	"github.com/apache/iceberg-go/table"

	"github.com/floelake/floe/commit"
	"github.com/floelake/floe/ingest/transform/dedup"
)

// Writer is the table writer a Maintainer hands its commits to
// (commit.TableWriter).
type Writer interface {
	// Do runs f on the writer's goroutine between two commits.
	Do(ctx context.Context, f func(ctx context.Context, c *commit.Committer) error) error
	// Current returns the table as the writer last loaded or committed it
	// (nil before its first load).
	Current() *table.Table
	// PendingFiles returns the paths of the files named by accepted,
	// uncommitted segments of the table.
	PendingFiles() ([]string, error)
}

// Maintainer keeps one table healthy: it compacts, expires snapshots and
// removes orphan files on its schedule, and compacts on demand. The work
// that reads and writes files runs on its own goroutine; only the commits
// go through the table writer, so ingest commits wait for at most one
// maintenance commit, never for a plan.
type Maintainer struct {
	table   string
	cfg     Config
	w       Writer
	log     *slog.Logger
	metrics Metrics

	// mu serialises the table's maintenance: a scheduled run and one on
	// demand never plan on each other's files.
	mu sync.Mutex
	// health is the table's shape as of the last compaction check.
	health atomic.Pointer[Health]
	// sinceCheck counts the data files committed since the last
	// compaction check; kick wakes Run when it reaches a tier's worth.
	sinceCheck atomic.Int64
	kick       chan struct{}
}

// Health returns the table's shape as of the last compaction check, and
// false before the first.
func (m *Maintainer) Health() (Health, bool) {
	h := m.health.Load()
	if h == nil {
		return Health{}, false
	}
	return *h, true
}

// New returns a maintainer of table (namespace.table) committing through w.
func New(tableName string, w Writer, cfg Config, log *slog.Logger, m Metrics) *Maintainer {
	if log == nil {
		log = slog.Default()
	}
	if m == nil {
		m = NopMetrics{}
	}
	return &Maintainer{table: tableName, cfg: cfg, w: w, log: log.With("table", tableName), metrics: m, kick: make(chan struct{}, 1)}
}

// Properties are set on every table floe maintains: manifests are merged as
// commits go (so planning a scan reads a bounded number of them), and old
// metadata files are deleted as commits go, a bounded number kept.
func Properties() iceberg.Properties {
	return iceberg.Properties{
		table.ManifestMergeEnabledKey:             "true",
		table.ManifestMinMergeCountKey:            "50",
		table.MetadataDeleteAfterCommitEnabledKey: "true",
	}
}

// Run maintains the table on its schedule until ctx ends.
func (m *Maintainer) Run(ctx context.Context) {
	propsSet := false
	type job struct {
		on         bool
		every      time.Duration
		next, last time.Time
		run        func(context.Context) error
		name       string
	}
	now := time.Now()
	every := func(on bool, d time.Duration, name string, run func(context.Context) error) *job {
		return &job{on: on, every: d, next: now.Add(d), last: now, run: run, name: name}
	}
	jobs := []*job{
		// The compaction check comes first: commits move it forward.
		every(m.cfg.Compaction.Enabled, m.cfg.Compaction.Every.D(), "compaction", func(ctx context.Context) error {
			_, _, err := m.Check(ctx)
			return err
		}),
		every(m.cfg.Expiry.Enabled, m.cfg.Expiry.Every.D(), "expiry", m.Expire),
		every(m.cfg.Orphans.Enabled, m.cfg.Orphans.Every.D(), "orphans", func(ctx context.Context) error {
			_, err := m.RemoveOrphans(ctx)
			return err
		}),
	}
	for ctx.Err() == nil {
		var due *job
		for _, j := range jobs {
			if j.on && (due == nil || j.next.Before(due.next)) {
				due = j
			}
		}
		if due == nil {
			<-ctx.Done()
			return
		}
		t := time.NewTimer(time.Until(due.next))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-m.kick:
			// Enough files were committed for a tier to fill: check now,
			// but not more often than once per minCompactionGap.
			t.Stop()
			if c := jobs[0]; c.on {
				if soon := c.last.Add(minCompactionGap); soon.Before(c.next) {
					c.next = soon
				}
			}
			continue
		case <-t.C:
		}
		if due == jobs[0] {
			m.sinceCheck.Store(0)
		}
		if !propsSet {
			propsSet = m.ensureProperties(ctx)
		}
		if err := due.run(ctx); err != nil && ctx.Err() == nil {
			m.metrics.MaintenanceFailed(m.table, due.name)
			m.log.Warn("table maintenance failed; trying again at the next run", "task", due.name, "err", err)
		}
		due.last = time.Now()
		due.next = due.last.Add(due.every)
	}
}

// minCompactionGap is the least time between two compaction checks that
// commits trigger.
const minCompactionGap = time.Second

// Committed tells the maintainer that the table writer committed files
// data files. Once a tier's worth (fan_in) has been committed since the
// last check, the next check runs at once instead of at its schedule, so
// that a partition's small files never pile up between two scheduled
// checks. Safe to call from any goroutine; it never blocks.
func (m *Maintainer) Committed(files int) {
	if files <= 0 || !m.cfg.Compaction.Enabled {
		return
	}
	if m.sinceCheck.Add(int64(files)) >= int64(m.cfg.Compaction.FanIn) {
		select {
		case m.kick <- struct{}{}:
		default:
		}
	}
}

// ensureProperties sets the table properties maintenance relies on
// (Properties) where the table has no value of its own, and reports whether
// that is done.
func (m *Maintainer) ensureProperties(ctx context.Context) bool {
	err := m.w.Do(ctx, func(ctx context.Context, c *commit.Committer) error {
		props := Properties()
		for k := range props {
			if _, ok := c.Table().Properties()[k]; ok {
				delete(props, k)
			}
		}
		set, err := c.SetProperties(ctx, props)
		if set {
			m.log.Info("set the table properties maintenance relies on", "properties", props)
		}
		return err
	})
	if err != nil && ctx.Err() == nil {
		m.log.Warn("could not set the table properties maintenance relies on; trying again at the next run", "err", err)
	}
	return err == nil
}

// Progress reports a compaction as it goes.
type Progress struct {
	// Groups and Done count the groups planned and compacted so far.
	Groups int `json:"groups"`
	Done   int `json:"done"`
	// Bytes and BytesDone are their input sizes.
	Bytes     int64 `json:"bytes"`
	BytesDone int64 `json:"bytes_done"`
}

// Summary describes one compaction.
type Summary struct {
	// Snapshot is the rewrite's snapshot (0: nothing compacted).
	Snapshot int64 `json:"snapshot_id"`
	// FilesBefore/BytesBefore are the table's live data files before,
	// FilesAfter/BytesAfter after.
	FilesBefore int   `json:"files_before"`
	FilesAfter  int   `json:"files_after"`
	BytesBefore int64 `json:"bytes_before"`
	BytesAfter  int64 `json:"bytes_after"`
	// Rewritten and Written count the files replaced and written, BytesRead
	// and BytesOut their sizes.
	Rewritten int   `json:"files_rewritten"`
	Written   int   `json:"files_written"`
	BytesRead int64 `json:"bytes_rewritten"`
	BytesOut  int64 `json:"bytes_written"`
	// MaxFilesPerPartition is as of the plan.
	MaxFilesPerPartition int           `json:"max_files_per_partition"`
	Took                 time.Duration `json:"took_ns"`
	// Stale is true when the table changed under the plan and nothing was
	// committed: the next run plans again.
	Stale bool `json:"stale,omitempty"`
	// EqualityDeletesRemoved counts the equality-delete files the
	// compaction removed because they applied to no data file left.
	EqualityDeletesRemoved int `json:"equality_deletes_removed,omitempty"`
}

// Compact compacts every small file of the table now, whatever the
// thresholds, reporting progress as it goes (progress may be nil).
func (m *Maintainer) Compact(ctx context.Context, progress func(Progress)) (Summary, error) {
	return m.compact(ctx, true, progress)
}

// Check is one scheduled compaction check: it compacts what the size tiers
// and the delete thresholds call for (not every file, as Compact does),
// then merges the position-delete files of the data files that
// merge_deletes or more apply to. It returns the compaction's summary and
// the number of data files whose deletes were merged. A failed compaction
// does not hold the merge back.
func (m *Maintainer) Check(ctx context.Context) (Summary, int, error) {
	sum, cerr := m.compact(ctx, false, nil)
	merged, merr := m.MergeDeletes(ctx)
	return sum, merged, errors.Join(cerr, merr)
}

func (m *Maintainer) compact(ctx context.Context, all bool, progress func(Progress)) (Summary, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	start := time.Now()
	tbl := m.w.Current()
	if tbl == nil {
		return Summary{}, errors.New("maintain: the table writer has not loaded the table yet")
	}
	snap := tbl.CurrentSnapshot()
	if snap == nil {
		return Summary{}, nil
	}
	tasks, err := tbl.Scan(table.WithSnapshotID(snap.SnapshotID)).PlanFiles(ctx)
	if err != nil {
		return Summary{}, fmt.Errorf("maintain: plan %s: %w", m.table, err)
	}
	files, tasksOf := describe(tasks)
	before := measure(files)
	h := m.measureHealth(ctx, tbl, before)
	m.health.Store(&h)
	m.metrics.TableHealth(m.table, h.DataFiles, h.DataBytes, h.Partitions, h.MaxFilesPerPartition, h.Snapshots, h.MetadataBytes)
	sum := Summary{FilesBefore: before.files, BytesBefore: before.bytes, FilesAfter: before.files, BytesAfter: before.bytes, MaxFilesPerPartition: before.maxPerPartition}
	groups := Plan(files, m.cfg.Compaction.planOptions(all))
	if len(groups) == 0 {
		return sum, nil
	}
	pr := Progress{Groups: len(groups)}
	for _, g := range groups {
		pr.Bytes += g.Bytes
	}
	if progress != nil {
		progress(pr)
	}
	var rw commit.Rewrite
	rw.BaseSnapshot, rw.DataSeq = snap.SnapshotID, snap.SequenceNumber
	withDeletes := false
	// deleted is the number of rows the deletes of the rewritten files
	// remove, exact while every delete names its data file.
	deleted, exact := int64(0), true
	cleanup := func() {
		if err := removeFiles(ctx, tbl, rw.New); err != nil {
			m.log.Warn("could not remove the files of a compaction that did not commit; orphan cleanup will", "err", err)
		}
	}
	for _, g := range groups {
		tg := table.CompactionTaskGroup{PartitionKey: g.Partition, TotalSizeBytes: g.Bytes}
		// Rows are rewritten in commit order, not in the order the files
		// were packed (largest first): an event stream's files each hold
		// a stretch of time, and kept in order the new row groups hold
		// narrow time ranges that a time filter can skip.
		for _, f := range slices.SortedStableFunc(slices.Values(g.Files), func(a, b File) int {
			return cmp.Or(cmp.Compare(a.Seq, b.Seq), strings.Compare(a.Path, b.Path))
		}) {
			// Every task of the file: a large file is planned as
			// several byte ranges, and a group given only one would
			// rewrite part of the file and remove all of it.
			tg.Tasks = append(tg.Tasks, tasksOf[f.Path]...)
			withDeletes = withDeletes || f.Deletes > 0
			if n, ok := deletedRows(tasksOf[f.Path][0]); ok {
				deleted += n
			} else {
				exact = false
			}
		}
		res, err := table.ExecuteCompactionGroup(ctx, tbl, tg, compactionOptions(int64(m.cfg.Compaction.TargetFileSize))...)
		rw.New = append(rw.New, res.NewDataFiles...)
		if err != nil {
			cleanup()
			return sum, fmt.Errorf("maintain: compact %s: %w", m.table, err)
		}
		rw.Old = append(rw.Old, res.OldDataFiles...)
		rw.RemoveDeletes = append(rw.RemoveDeletes, res.SafePosDeletes...)
		rw.RemoveDeletes = append(rw.RemoveDeletes, res.SafeDeletionVectors...)
		sum.Rewritten += len(g.Files)
		sum.Written += len(res.NewDataFiles)
		sum.BytesRead += res.BytesBefore
		sum.BytesOut += res.BytesAfter
		pr.Done++
		pr.BytesDone += g.Bytes
		if progress != nil {
			progress(pr)
		}
	}
	// A file planned as several tasks is listed once per task.
	rw.Old = uniqueFiles(rw.Old)
	rw.RemoveDeletes = uniqueFiles(rw.RemoveDeletes)
	done, err := equalityDeletesDone(ctx, tbl, snap, tasks, rw)
	if err != nil {
		cleanup()
		return sum, fmt.Errorf("maintain: compact %s: %w", m.table, err)
	}
	rw.RemoveDeletes = append(rw.RemoveDeletes, done...)
	sum.EqualityDeletesRemoved = len(done)
	if !exact {
		deleted = -1
	}
	if err := sameRows(rw, withDeletes, deleted); err != nil {
		cleanup()
		return sum, fmt.Errorf("maintain: compact %s: %w", m.table, err)
	}
	var res commit.Result
	err = m.w.Do(ctx, func(ctx context.Context, c *commit.Committer) error {
		var err error
		res, err = c.Rewrite(ctx, rw)
		return err
	})
	switch {
	case errors.Is(err, commit.ErrRewriteStale):
		cleanup()
		sum.Stale = true
		m.log.Info("the table changed under a compaction plan; planning again at the next run", "err", err)
		return sum, nil
	case err != nil:
		// The outcome may be unknown (the context ended mid-commit): the
		// new files stay for orphan cleanup to judge.
		return sum, fmt.Errorf("maintain: commit the compaction of %s: %w", m.table, err)
	}
	sum.Snapshot = res.SnapshotID
	sum.FilesAfter = before.files - sum.Rewritten + sum.Written
	sum.BytesAfter = before.bytes - sum.BytesRead + sum.BytesOut
	sum.Took = time.Since(start)
	m.metrics.Compacted(m.table, sum.Rewritten, sum.Written, sum.BytesRead, sum.Took)
	m.log.Info("compacted", "snapshot_id", res.SnapshotID, "groups", len(groups), "files_rewritten", sum.Rewritten,
		"files_written", sum.Written, "bytes_rewritten", sum.BytesRead, "files_before", sum.FilesBefore,
		"files_after", sum.FilesAfter, "took_ms", sum.Took.Milliseconds())
	return sum, nil
}

// Compaction runs beside ingestion on the same CPUs and memory, so it reads
// one file at a time in batches of compactionBatchRows rows, buffers few of
// them, and closes row groups at compactionRowGroupRows rows: a group of any
// size is rewritten in bounded memory. Measured on four 12 MB files of 2M
// rows each: a peak of 185 MiB of heap in use, against 1,094 MiB with
// iceberg-go's defaults (a reader per CPU, 64 buffered batches of the
// table's read batch size), in the same time.
const (
	compactionBatchRows    = 16 << 10
	compactionBuffered     = 2
	compactionRowGroupRows = 256 << 10
)

func compactionOptions(target int64) []table.CompactionGroupOption {
	return []table.CompactionGroupOption{
		table.WithCompactionTargetFileSize(target),
		table.WithCompactionScanConcurrency(1),
		table.WithCompactionArrowBatchSize(compactionBatchRows),
		table.WithCompactionRecordBatchBufferSize(compactionBuffered),
		table.WithCompactionParquetRowGroupLimit(compactionRowGroupRows),
	}
}

// sameRows checks a rewrite before it is committed: the new files hold as
// many rows as the old ones less the deleted rows, when that number is
// known (deleted >= 0); otherwise, with deletes, no more than the old ones.
// A rewrite that fails it would lose or invent rows; it is never committed.
func sameRows(rw commit.Rewrite, withDeletes bool, deleted int64) error {
	var before, after int64
	for _, f := range rw.Old {
		before += f.Count()
	}
	for _, f := range rw.New {
		after += f.Count()
	}
	switch {
	case !withDeletes && after != before:
		return fmt.Errorf("the rewrite would replace %d rows with %d; not committed", before, after)
	case withDeletes && deleted >= 0 && after != before-deleted:
		return fmt.Errorf("the rewrite would replace %d rows, %d of them deleted, with %d; not committed", before, deleted, after)
	case after > before:
		return fmt.Errorf("the rewrite would replace %d rows with %d; not committed", before, after)
	}
	return nil
}

// deletedRows returns how many rows of t's data file its deletes remove,
// and whether that is known: each deletion vector and each position-delete
// file that names the data file alone counts its rows; an equality delete,
// or a position-delete file that may span several data files, makes the
// number unknown.
func deletedRows(t table.FileScanTask) (int64, bool) {
	if len(t.EqualityDeleteFiles) > 0 {
		return 0, false
	}
	var n int64
	for _, d := range append(slices.Clip(t.DeletionVectorFiles), t.DeleteFiles...) {
		if ref, ok := commit.DeletedFile(d); !ok || ref != t.File.FilePath() {
			return 0, false
		}
		n += d.Count()
	}
	return n, true
}

// equalityDeletesDone returns the equality-delete files of snap that apply
// to no data file once rw has replaced its old files: an equality delete
// applies to the data files with a lower data sequence number than its
// own, and the files rw writes keep the plan's (snap's), which is not
// lower than that of any delete snap holds.
func equalityDeletesDone(ctx context.Context, tbl *table.Table, snap *table.Snapshot, tasks []table.FileScanTask, rw commit.Rewrite) ([]iceberg.DataFile, error) {
	old := make(map[string]bool, len(rw.Old))
	for _, f := range rw.Old {
		old[f.FilePath()] = true
	}
	// The lowest data sequence number among the data files that stay.
	lowest := rw.DataSeq
	for _, t := range tasks {
		if old[t.File.FilePath()] {
			continue
		}
		if t.DataSequenceNumber == nil {
			return nil, nil
		}
		lowest = min(lowest, *t.DataSequenceNumber)
	}
	eq, err := commit.EqualityDeletes(ctx, tbl, snap)
	if err != nil {
		return nil, err
	}
	var done []iceberg.DataFile
	for _, e := range eq {
		if e.SequenceNum() <= lowest {
			done = append(done, e.DataFile())
		}
	}
	return done, nil
}

// describe turns scan tasks into planner files, one per data file, and
// returns the tasks of each file by path: a file larger than the table's
// read.split.target-size is planned as several tasks, one per range of row
// groups.
func describe(tasks []table.FileScanTask) ([]File, map[string][]table.FileScanTask) {
	files := make([]File, 0, len(tasks))
	tasksOf := make(map[string][]table.FileScanTask, len(tasks))
	for _, t := range tasks {
		p := t.File.FilePath()
		if _, seen := tasksOf[p]; !seen {
			deleted, ok := deletedRows(t)
			if !ok {
				deleted = -1
			}
			files = append(files, File{
				Path: p, Partition: partitionKey(t.File), Size: t.File.FileSizeBytes(),
				Records: t.File.Count(), Deletes: len(t.DeleteFiles) + len(t.DeletionVectorFiles) + len(t.EqualityDeleteFiles),
				PosDeletes: len(t.DeleteFiles) + len(t.DeletionVectorFiles), Deleted: deleted,
			})
			if t.DataSequenceNumber != nil {
				files[len(files)-1].Seq = *t.DataSequenceNumber
			}
		}
		tasksOf[p] = append(tasksOf[p], t)
	}
	return files, tasksOf
}

// partitionKey names a file's partition: its spec and values.
func partitionKey(f iceberg.DataFile) string {
	part := f.Partition()
	keys := slices.Sorted(maps.Keys(part))
	var b strings.Builder
	fmt.Fprintf(&b, "%d", f.SpecID())
	for _, k := range keys {
		fmt.Fprintf(&b, "/%d=%v", k, part[k])
	}
	return b.String()
}

type shape struct {
	files, partitions, maxPerPartition int
	bytes                              int64
}

func measure(files []File) shape {
	per := map[string]int{}
	var s shape
	for _, f := range files {
		per[f.Partition]++
		s.files++
		s.bytes += f.Size
	}
	s.partitions = len(per)
	for _, n := range per {
		s.maxPerPartition = max(s.maxPerPartition, n)
	}
	return s
}

func (m *Maintainer) measureHealth(ctx context.Context, tbl *table.Table, s shape) Health {
	h := Health{
		DataFiles: s.files, DataBytes: s.bytes, Partitions: s.partitions, MaxFilesPerPartition: s.maxPerPartition,
		Snapshots: len(tbl.Metadata().Snapshots()),
	}
	if fs, err := tbl.FS(ctx); err == nil {
		if f, err := fs.Open(tbl.MetadataLocation()); err == nil {
			if st, err := f.Stat(); err == nil {
				h.MetadataBytes = st.Size()
			}
			f.Close()
		}
	}
	return h
}

func uniqueFiles(fs []iceberg.DataFile) []iceberg.DataFile {
	// A Puffin file holds the deletion vectors of several data files, each
	// its own entry: a file is identified by its path, where its content
	// starts, and the data file it names.
	type id struct {
		path, ref string
		offset    int64
	}
	seen := map[id]bool{}
	return slices.DeleteFunc(fs, func(f iceberg.DataFile) bool {
		k := id{path: f.FilePath()}
		if r := f.ReferencedDataFile(); r != nil {
			k.ref = *r
		}
		if o := f.ContentOffset(); o != nil {
			k.offset = *o
		}
		if seen[k] {
			return true
		}
		seen[k] = true
		return false
	})
}

func removeFiles(ctx context.Context, tbl *table.Table, files []iceberg.DataFile) error {
	if len(files) == 0 {
		return nil
	}
	fs, err := tbl.FS(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, f := range files {
		if err := fs.Remove(f.FilePath()); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Expire removes the snapshots the tiers do not keep, then the files only
// they referenced.
func (m *Maintainer) Expire(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	start := time.Now()
	var exp commit.Expired
	err := m.w.Do(ctx, func(ctx context.Context, c *commit.Committer) error {
		// Tags past their max-ref-age go first: they protect their
		// snapshots no longer.
		for _, name := range commit.AgedTags(c.Table().Metadata(), time.Now()) {
			if err := c.RemoveTag(ctx, name); err != nil {
				return err
			}
			m.log.Info("removed a tag past its max-ref-age", "tag", name)
		}
		meta := c.Table().Metadata()
		ids := SelectExpired(Snaps(meta), commit.ProtectedSnapshots(meta), time.Now(), m.cfg.Expiry.Keep)
		if len(ids) == 0 {
			return nil
		}
		var err error
		exp, err = c.ExpireSnapshots(ctx, ids)
		return err
	})
	if err != nil {
		return fmt.Errorf("maintain: expire snapshots of %s: %w", m.table, err)
	}
	if len(exp.IDs) == 0 {
		return nil
	}
	// Off the writer's goroutine: reading the retained snapshots'
	// manifest lists takes a while on a long history.
	if err := commit.DeleteExpiredFiles(ctx, exp); err != nil {
		m.log.Warn("could not delete every file of the expired snapshots; orphan cleanup will", "err", err)
	}
	took := time.Since(start)
	m.metrics.Expired(m.table, len(exp.IDs), took)
	m.log.Info("expired snapshots", "removed", len(exp.IDs), "retained", len(exp.After.Metadata().Snapshots()), "took_ms", took.Milliseconds())
	return nil
}

// OrphanResult describes one orphan cleanup.
type OrphanResult struct {
	Files int
	Bytes int64
	// KeptPending counts orphans kept because an accepted, uncommitted
	// segment names them.
	KeptPending int
}

// RemoveOrphans deletes the files under the table's location that no
// snapshot or metadata file references and that are older than the grace
// period, except those named by accepted, uncommitted segments (they are
// committed next), the transform state checkpoints a snapshot's floe.state
// names, and the dedup state manifests a snapshot's floe.dedup names with
// the files they list.
func (m *Maintainer) RemoveOrphans(ctx context.Context) (OrphanResult, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out OrphanResult
	// The pending files are read before the table and again after the
	// plan. A segment pending at the first read is in the table or in the
	// second read (committed in between: the writer publishes a commit's
	// table before the ledger drops the segment); one accepted after the
	// plan names files the plan may hold, which the second read catches.
	// Only a file written more than the grace period before its segment
	// was accepted could slip through: the grace period is chosen to make
	// that impossible.
	keep := map[string]bool{}
	pending := func() error {
		ps, err := m.w.PendingFiles()
		for _, p := range ps {
			keep[bare(p)] = true
		}
		return err
	}
	if err := pending(); err != nil {
		return out, err
	}
	tbl := m.w.Current()
	if tbl == nil {
		return out, errors.New("maintain: the table writer has not loaded the table yet")
	}
	// A transform state's checkpoint is referenced by the floe.state of
	// the snapshots that go with it, not by the table's metadata: it
	// stays as long as one of them does.
	// Likewise a dedup state's manifest (floe.dedup), and the state files
	// it lists.
	states := map[string]bool{}
	var manifests []string
	for _, s := range tbl.Metadata().Snapshots() {
		if s.Summary == nil {
			continue
		}
		if st := s.Summary.Properties[commit.PropState]; st != "" {
			states[bare(st)] = true
		}
		if d := s.Summary.Properties[commit.PropDedup]; d != "" && !states[bare(d)] {
			states[bare(d)] = true
			manifests = append(manifests, d)
		}
	}
	// The location is walked as a directory; the check below, with the
	// trailing slash, keeps any listing that strays into a sibling table
	// whose name extends this one's (t and t__dlq) from removing its files.
	root := strings.TrimSuffix(tbl.Location(), "/")
	loc := root + "/"
	plan, err := tbl.PlanOrphanFiles(ctx, table.WithLocation(root), table.WithFilesOlderThan(m.cfg.Orphans.Grace.D()))
	if err != nil {
		return out, fmt.Errorf("maintain: find orphan files of %s: %w", m.table, err)
	}
	if err := pending(); err != nil {
		return out, err
	}
	fs, err := tbl.FS(ctx)
	if err != nil {
		return out, err
	}
	// The dedup state files the manifests list, read only when a dedup
	// state file is a candidate. When a manifest cannot be read, which
	// files it lists is unknown: every dedup state file stays this round.
	dedupDir := bare(loc) + dedup.Dir + "/"
	keepDedup := false
	for _, f := range plan.OrphanFiles() {
		if strings.HasPrefix(bare(f.Path), dedupDir) {
			for _, man := range manifests {
				paths, err := dedupFiles(fs, man)
				if err != nil {
					m.log.Warn("a dedup state manifest cannot be read; orphan cleanup keeps every dedup state file this round", "manifest", man, "err", err)
					keepDedup = true
					break
				}
				for _, p := range paths {
					states[bare(p)] = true
				}
			}
			break
		}
	}
	var errs []error
	for _, f := range plan.OrphanFiles() {
		switch {
		case keep[bare(f.Path)]:
			out.KeptPending++
		case states[bare(f.Path)]:
		case keepDedup && strings.HasPrefix(bare(f.Path), dedupDir):
		case !strings.HasPrefix(bare(f.Path), bare(loc)):
			// Not under the table's location (a listing by prefix that
			// strayed): never ours to remove.
		default:
			if err := fs.Remove(f.Path); err != nil {
				errs = append(errs, err)
				continue
			}
			out.Files++
			out.Bytes += f.SizeBytes
		}
	}
	m.metrics.OrphansRemoved(m.table, out.Files, out.Bytes)
	if out.Files > 0 || out.KeptPending > 0 {
		m.log.Info("removed orphan files", "files", out.Files, "bytes", out.Bytes, "kept_pending", out.KeptPending)
	}
	return out, errors.Join(errs...)
}

// dedupFiles returns the files the dedup state manifest at loc lists
// (none if it is gone).
func dedupFiles(fs iceio.IO, loc string) ([]string, error) {
	f, err := fs.Open(loc)
	if errors.Is(err, iofs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, err
	}
	man, err := dedup.ParseManifest(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", loc, err)
	}
	return man.Paths(), nil
}

// bare drops the scheme of a local location: iceberg-go names local files
// by their paths in some places and by file:// URLs in others.
func bare(loc string) string { return strings.TrimPrefix(loc, "file://") }
