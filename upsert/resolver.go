package upsert

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/apache/iceberg-go"
	iceio "github.com/apache/iceberg-go/io"
	"github.com/apache/iceberg-go/table"
	"github.com/apache/iceberg-go/table/dv"
	"github.com/google/uuid"

	"github.com/floelake/floe/commit"
	"github.com/floelake/floe/internal/failpoint"
	"github.com/floelake/floe/internal/fileio"
)

// The resolver: how a commit of a keyed table finds the rows it replaces.
//
// The table writer hands each commit's new data files to Resolve before it
// commits them. Resolve reads the key columns of the new files (and the
// _kafka_partition and _kafka_offset columns, which every keyed table has),
// orders the rows by Kafka partition and offset, and puts each row's key in
// the index: where the key had a row, that row (in an older file, or earlier
// in this commit) gets a position delete. The deletes go into one
// position-delete file per data file in v2 tables, or into the data file's
// deletion vector in v3 tables (merged with the vector it had, which the
// commit replaces). The commit then adds the new files and the deletes in
// one snapshot: every snapshot holds one row per key.
//
// The index is an in-memory copy of what one snapshot holds (snap). It is
// changed in place by Resolve, and is right only if the delta lands:
// Committed moves it to the new snapshot, Abandon drops it. Whenever the
// table's head is not the index's snapshot (the first commit after a
// start or a failover, a compaction or rollback in between, a commit whose
// outcome was lost), the index is rebuilt from the table: the key columns
// of every live data file, minus the rows its position deletes, deletion
// vectors and equality deletes remove. A rebuild that finds a key live
// twice (a table some other writer changed) keeps the row of the newest
// file and deletes the others with the next commit, as it does the rows
// equality deletes remove. The rebuild runs in the background; commits
// made meanwhile resolve by equality deletes (see equality.go).
//
// Rows of a key are ordered by Kafka offset within a partition. Keys are
// expected to stay in one Kafka partition (producers partition by key);
// rows of one key from several partitions are ordered by partition number,
// which is arbitrary.

// MetaPartition and MetaOffset are the columns that order a commit's rows.
const (
	MetaPartition = "_kafka_partition"
	MetaOffset    = "_kafka_offset"
)

// readBatch is the number of rows read from a file at a time.
const readBatch = 64 << 10

// Resolver keeps a keyed table's key index; see the essay above. It
// implements commit.RowDeltas and is used by the table writer's goroutine
// only.
type Resolver struct {
	keys []string
	// version is the version column, "" when Kafka order alone decides.
	version string
	// eqMode: no index, equality deletes only (EqualityDeletes).
	eqMode      bool
	rebuildWait time.Duration
	log         *slog.Logger
	mem         memory.Allocator

	// spillDir and spillBudget, when set (Spill), keep the index within
	// a memory budget, the rest in a file in spillDir.
	spillDir    string
	spillBudget int64
	// spillLogged is the index whose first spill was logged.
	spillLogged *Spilled

	ix    Store
	ready bool  // the index holds snapshot snap
	snap  int64 // 0: the table had no snapshot
	// files are the data files the index points into, for the spec and
	// partition of the deletes written for them.
	files map[uint32]iceberg.DataFile
	// dvs are the live deletion vectors by data file path (v3 tables).
	dvs map[string]iceberg.DataFile
	// repairs are rows a rebuild found duplicated, deleted with the next
	// commit (file id → positions).
	repairs map[uint32][]uint32
	// rebased are the deletion vectors Rebase wrote for a compaction's
	// files, by data file, for Rewritten.
	rebased map[string]iceberg.DataFile
	// rebasedRows is what the last Rebase deleted, for Rewritten's stats.
	rebasedRows int64
	// eqKnown are the equality-delete files whose rows the index has
	// applied; see Obsolete.
	eqKnown map[string]bool
	// job is the rebuild running in the background, if any; rebuildGate,
	// if set, holds every rebuild back until it is closed (tests).
	job         *rebuildJob
	rebuildGate <-chan struct{}
	// lastEq is what the last Resolve did when it resolved by equality
	// (nil when it used the index), for Committed.
	lastEq *journalEntry
	// obsolete are the files the last Obsolete returned, forgotten once
	// the writer reports their removal (Moved).
	obsolete []iceberg.DataFile

	// last is what the last Resolve changed besides the index, applied by
	// Committed.
	last struct {
		files                          map[uint32]iceberg.DataFile
		dvs                            map[string]iceberg.DataFile
		rows, replaced, deleted, stale int64
	}
	stats   Stats
	table   string
	metrics Metrics
	// published is stats as of the last change, for other goroutines.
	published struct {
		sync.Mutex
		s Stats
	}
}

// Metrics observes a resolver. Calls come from the table writer's
// goroutine.
type Metrics interface {
	// KeyedCommit is called for every commit the resolver's deltas landed
	// in: rows that went through the index, rows replaced (each got a
	// position delete), keys deleted that had a row.
	KeyedCommit(table string, rows, replaced, deleted int64)
	// EqualityCommit is called for every commit that deleted older rows
	// by an equality delete listing keys keys.
	EqualityCommit(table string, keys int64)
	// KeyIndex is called with the index's keys and bytes whenever a
	// commit, rebuild or compaction changed it; KeyIndexFile with the
	// keys and bytes of its file (Spill), at the same times.
	KeyIndex(table string, keys int, bytes int64)
	KeyIndexFile(table string, keys int, bytes int64)
	// KeyIndexRebuilt is called for every rebuild from the table.
	KeyIndexRebuilt(table string, keys int, took time.Duration)
}

// NopMetrics reports nothing.
type NopMetrics struct{}

func (NopMetrics) KeyedCommit(string, int64, int64, int64)    {}
func (NopMetrics) EqualityCommit(string, int64)               {}
func (NopMetrics) KeyIndex(string, int, int64)                {}
func (NopMetrics) KeyIndexFile(string, int, int64)            {}
func (NopMetrics) KeyIndexRebuilt(string, int, time.Duration) {}

// Stats counts what a resolver did, for metrics, logs and status.
type Stats struct {
	// Keys and IndexBytes are the index's size: all its keys, and the
	// memory it holds.
	Keys       int
	IndexBytes int64
	// FileKeys and FileBytes are the keys kept in the index's file and
	// its size (Spill); Spills counts the times the index moved keys
	// there, FileReads its lookups in the file, since the index was
	// built.
	FileKeys          int
	FileBytes         int64
	Spills, FileReads int64
	// Rows are the rows of committed files that went through the index;
	// Replaced those whose key had a row, which got a position delete;
	// Deleted the keys deleted (tombstones, delete events) that had a row.
	Rows, Replaced, Deleted int64
	// Stale are rows older (by the version column) than their key's
	// current row, deleted in the commit that added them.
	Stale int64
	// Rebuilds counts index rebuilds; RebuildTime is the last one's
	// duration. Remaps counts compactions followed without a rebuild;
	// Rebased those that carried deletes made while they ran over to
	// their files.
	Rebuilds, Remaps, Rebased int64
	RebuildTime               time.Duration
	// EqualityCommits counts the commits resolved by equality deletes
	// (no index, or while it was rebuilt); EqualityKeys the keys they
	// listed.
	EqualityCommits, EqualityKeys int64
}

var _ commit.RowDeltas = (*Resolver)(nil)

// NewResolver returns a resolver for a table keyed by the named columns.
func NewResolver(keys []string, log *slog.Logger, opts ...Option) (*Resolver, error) {
	if len(keys) == 0 {
		return nil, errors.New("upsert: a resolver needs key columns")
	}
	if log == nil {
		log = slog.Default()
	}
	r := &Resolver{keys: slices.Clone(keys), log: log, mem: memory.DefaultAllocator, metrics: NopMetrics{}, rebuildWait: DefaultRebuildWait}
	for _, o := range opts {
		o(r)
	}
	if r.eqMode && r.version != "" {
		return nil, errors.New("upsert: equality deletes cannot honour a version column (the current row's version is unknown without the index)")
	}
	return r, nil
}

// Option configures a Resolver.
type Option func(*Resolver)

// Version makes the named column decide which row of a key is the newest:
// the row with the highest version wins, the later Kafka offset among
// equal versions. A row older than the key's current row is deleted
// itself. The column must hold int, long, date or timestamp values; a null
// version is older than any other. A deletion whose file of deleted keys
// has the column with a value is ordered by it too: it is ignored if the
// key's row is newer, and otherwise leaves an entry with its version (see
// deletedPath) until the next rebuild. A deletion without a version
// applies in Kafka order, whatever the key's row.
func Version(column string) Option {
	return func(r *Resolver) { r.version = column }
}

// EqualityDeletes makes the resolver keep no index: every commit deletes
// the older rows of its keys with an equality delete on the key columns,
// which readers apply by comparing keys (delete_mode: equality). It cannot
// be combined with Version: without the index, the version of a key's
// current row is not known.
func EqualityDeletes() Option {
	return func(r *Resolver) { r.eqMode = true }
}

// RebuildWait is how long a commit waits for the index to be rebuilt from
// the table (after a start, a failover, a commit whose outcome was lost)
// before it deletes the older rows of its keys with an equality delete
// instead. The default is DefaultRebuildWait. A table with a version
// column always waits: deciding which row of a key is the newest needs
// the current row's version.
func RebuildWait(d time.Duration) Option {
	return func(r *Resolver) { r.rebuildWait = d }
}

// Spill keeps the index within about budget bytes of memory: beyond it,
// the keys of the oldest files move to a file in dir (see Spilled). A
// budget of 0 keeps every key in memory.
func Spill(dir string, budget int64) Option {
	return func(r *Resolver) { r.spillDir, r.spillBudget = dir, budget }
}

// DefaultRebuildWait is how long a commit waits for the index by default.
const DefaultRebuildWait = 2 * time.Second

// newIndex returns an empty index of the resolver's kind: in memory, or
// spilling beyond the memory budget.
func (r *Resolver) newIndex() (Store, error) {
	if r.spillBudget > 0 {
		return NewSpilled(r.spillDir, r.spillBudget, r.version != "")
	}
	return r.newMemIndex(), nil
}

// newMemIndex returns an empty in-memory index of the resolver's kind.
func (r *Resolver) newMemIndex() *Index {
	if r.version != "" {
		return NewVersioned()
	}
	return New()
}

// setIndex replaces the index, closing the one it replaces.
func (r *Resolver) setIndex(ix Store) {
	r.spillLogged = nil
	if r.ix != nil && r.ix != ix {
		if err := r.ix.Close(); err != nil {
			r.log.Warn("key index: closing the replaced index", "err", err)
		}
	}
	r.ix = ix
}

// put puts key's row at loc with version v.
func (r *Resolver) put(key []byte, loc Loc, v int64) (old Loc, oldV int64, had bool) {
	if r.version != "" {
		return r.ix.PutVersion(key, loc, v)
	}
	old, had = r.ix.Put(key, loc)
	return old, NoVersion, had
}

// deletedPath names no file: a key of a versioned index whose location is
// in it was deleted, and the entry keeps the deletion's version, so that
// a late row older than the deletion does not bring the key back. Such
// entries live until the index is rebuilt from the table, which does not
// know the versions of deletions.
const deletedPath = "floe:deleted-key"

// isDeleted reports whether loc is that of a deleted key's entry.
func (r *Resolver) isDeleted(loc Loc) bool {
	return r.version != "" && r.ix.FilePath(loc.File) == deletedPath
}

// Locate finds the current row of the key in row i of rec (which has the
// key columns, by name, with the table's types) in base's head: the data
// file's path and the row's position. known is false when the index cannot
// tell (it is not ready, or not current with base's head, or the resolver
// keeps none): the caller must look in the table itself. When known,
// found says whether the key has a row. Call it on the table writer's
// goroutine, between commits (as Resolve).
func (r *Resolver) Locate(base *table.Table, rec arrow.RecordBatch, i int) (path string, pos int64, found, known bool, err error) {
	if r.eqMode || !r.ready || r.ix == nil || r.snap != commit.HeadID(base) {
		return "", 0, false, false, nil
	}
	enc, err := NewKeyEncoder(rec.Schema(), r.keys)
	if err != nil {
		return "", 0, false, false, err
	}
	key, err := enc.AppendKey(nil, rec, i)
	enc.Reset()
	if err != nil {
		return "", 0, false, false, err
	}
	loc, ok := r.ix.Get(key)
	if err := r.ix.Err(); err != nil {
		return "", 0, false, false, err
	}
	if !ok || r.isDeleted(loc) {
		return "", 0, false, true, nil
	}
	path = r.ix.FilePath(loc.File)
	if path == "" {
		return "", 0, false, false, nil
	}
	return path, int64(loc.Pos), true, true, nil
}

// deleteVersioned deletes a key by a deletion with a version: it deletes
// the key's row unless the row is newer, and leaves an entry with the
// deletion's version.
func (r *Resolver) deleteVersioned(rw row, deleted map[uint32][]uint32) {
	loc, cur, had := r.ix.GetVersion(rw.key)
	if had && cur > rw.version {
		// The key's row is newer than the deletion: the deletion is late.
		r.last.stale++
		return
	}
	if had && !r.isDeleted(loc) {
		deleted[loc.File] = append(deleted[loc.File], loc.Pos)
		r.last.deleted++
	}
	r.ix.PutVersion(rw.key, Loc{File: r.ix.FileID(deletedPath)}, rw.version)
}

// older reports whether a row of key with version v is older than the
// key's current row.
func (r *Resolver) older(key []byte, v int64) bool {
	if r.version == "" {
		return false
	}
	_, cur, had := r.ix.GetVersion(key)
	return had && cur > v
}

// Observe makes the resolver report to m under the table's name.
func (r *Resolver) Observe(table string, m Metrics) {
	r.table, r.metrics = table, m
}

// Stats returns what the resolver has done so far. Safe to call from any
// goroutine.
func (r *Resolver) Stats() Stats {
	r.published.Lock()
	defer r.published.Unlock()
	return r.published.s
}

// publish makes the index's size and the counts visible to Stats and the
// metrics.
func (r *Resolver) publish() {
	if r.ix != nil {
		r.stats.Keys, r.stats.IndexBytes = r.ix.Len(), r.ix.MemoryBytes()
	}
	if sp, ok := r.ix.(*Spilled); ok {
		st := sp.Stats()
		r.stats.FileKeys, r.stats.FileBytes, r.stats.Spills, r.stats.FileReads = st.DiskKeys, st.FileBytes, st.Spills, st.DiskReads
		if st.Spills > 0 && r.spillLogged != sp {
			r.spillLogged = sp
			r.log.Info("key index: outgrew its memory (key_index_memory); the keys of the oldest files moved to its file",
				"budget", r.spillBudget, "keys", r.stats.Keys, "keys_in_file", st.DiskKeys, "file_bytes", st.FileBytes)
		}
	}
	r.published.Lock()
	r.published.s = r.stats
	r.published.Unlock()
	r.metrics.KeyIndex(r.table, r.stats.Keys, r.stats.IndexBytes)
	if r.spillBudget > 0 {
		r.metrics.KeyIndexFile(r.table, r.stats.FileKeys, r.stats.FileBytes)
	}
}

// Committed implements commit.RowDeltas.
func (r *Resolver) Committed(id int64) {
	if e := r.lastEq; e != nil {
		r.lastEq = nil
		e.snap = id
		r.journal(*e)
		r.stats.Rows += e.rows
		r.stats.EqualityKeys += e.keys
		r.stats.EqualityCommits++
		r.metrics.KeyedCommit(r.table, e.rows, 0, 0)
		r.metrics.EqualityCommit(r.table, e.keys)
		r.clearLast()
		r.publish()
		return
	}
	if !r.ready {
		return
	}
	for k, f := range r.last.files {
		r.files[k] = f
	}
	for k, f := range r.last.dvs {
		r.dvs[k] = f
	}
	r.snap = id
	r.repairs = nil
	r.stats.Rows += r.last.rows
	r.stats.Replaced += r.last.replaced
	r.stats.Deleted += r.last.deleted
	r.stats.Stale += r.last.stale
	r.metrics.KeyedCommit(r.table, r.last.rows, r.last.replaced, r.last.deleted)
	r.clearLast()
	r.publish()
}

// Abandon implements commit.RowDeltas.
func (r *Resolver) Abandon() {
	r.ready = false
	r.lastEq = nil
	r.clearLast()
	r.publish()
}

// Moved implements commit.RowDeltas.
func (r *Resolver) Moved(from, to int64) {
	if r.ready && r.snap == from {
		r.snap = to
		for _, f := range r.obsolete {
			delete(r.eqKnown, f.FilePath())
		}
	}
	r.obsolete = nil
	r.journal(journalEntry{base: from, snap: to})
}

// Rewritten implements commit.RowDeltas: the keys whose current rows were
// in the compacted files move to the files that replaced them (read from
// those files), so a compaction costs a read of its output's key columns,
// not a rebuild. A row of the output whose key has moved on since the
// compaction's plan (deleted by the compaction's own commit, see Rebase)
// is not its key's row.
func (r *Resolver) Rewritten(ctx context.Context, after *table.Table, from int64, old, new []iceberg.DataFile) {
	r.journal(journalEntry{base: from, snap: commit.HeadID(after), rewrite: &rewriteEvent{after: after, old: old, new: new}})
	if len(old) == 0 && len(new) == 0 {
		// Delete files replaced by others deleting the same rows
		// (maintenance merged them): no row moved.
		if r.ready && r.snap == from {
			r.snap = commit.HeadID(after)
		}
		return
	}
	if !r.ready || r.snap != from {
		return
	}
	r.ready = false
	fs, err := after.FS(ctx)
	if err != nil {
		r.log.Warn("key index: cannot follow a compaction; it is rebuilt before the next commit", "err", err)
		return
	}
	oldIDs := r.fileIDs(old)
	// A row of the output whose key has moved on is deleted: by the
	// deletes Rebase carried over, or else by an equality delete committed
	// after the compaction's plan, which the index deletes by position
	// with the next commit (repair).
	carried := r.rebased != nil || r.rebasedRows > 0
	for id := range oldIDs {
		delete(r.repairs, id)
	}
	for _, f := range new {
		id := r.ix.FileID(f.FilePath())
		err := readKeys(ctx, fs, f.FilePath(), r.keys, false, r.version, r.mem, func(pos int64, key []byte, _ int32, _, v int64) {
			here := Loc{File: id, Pos: uint32(pos)}
			if cur, ok := r.ix.Get(key); ok && oldIDs[cur.File] {
				r.put(key, here, v)
			} else if !carried {
				r.repair(here)
			}
		})
		if err != nil {
			r.log.Warn("key index: cannot follow a compaction; it is rebuilt before the next commit", "err", err)
			return
		}
		r.files[id] = f
		if dv, ok := r.rebased[f.FilePath()]; ok {
			r.dvs[f.FilePath()] = dv
		}
	}
	r.rebased = nil
	if r.rebasedRows > 0 {
		r.stats.Rebased++
		r.rebasedRows = 0
	}
	lost := 0
	for _, f := range old {
		id := r.ix.FileID(f.FilePath())
		lost += r.ix.DropFile(id)
		delete(r.files, id)
		delete(r.dvs, f.FilePath())
	}
	if lost > 0 {
		// A compaction that dropped current rows would have failed its
		// row count check; the index is rebuilt rather than trusted.
		r.log.Warn("key index: a compaction's output lacks rows the index had; it is rebuilt before the next commit", "keys", lost)
		return
	}
	if err := r.ix.Err(); err != nil {
		r.log.Warn("key index: cannot follow a compaction; it is rebuilt before the next commit", "err", err)
		return
	}
	if s := after.CurrentSnapshot(); s != nil {
		r.snap, r.ready = s.SnapshotID, true
		r.stats.Remaps++
		r.publish()
	}
}

// fileIDs returns the index ids of the files (interning them).
func (r *Resolver) fileIDs(files []iceberg.DataFile) map[uint32]bool {
	ids := make(map[uint32]bool, len(files))
	for _, f := range files {
		ids[r.ix.FileID(f.FilePath())] = true
	}
	return ids
}

// Rebase implements commit.RowDeltas: it writes position deletes (v2) or
// deletion vectors (v3) for the rows of new whose keys no longer have
// their current row in old: keys replaced or deleted by commits made
// while the compaction of old into new ran. The index must hold base's
// head.
func (r *Resolver) Rebase(ctx context.Context, base *table.Table, old, new []iceberg.DataFile) ([]iceberg.DataFile, error) {
	head := commit.HeadID(base)
	if !r.ready || r.snap != head {
		return nil, fmt.Errorf("upsert: the key index does not hold the table's head (%d)", head)
	}
	fs, err := base.FS(ctx)
	if err != nil {
		return nil, err
	}
	oldIDs := r.fileIDs(old)
	deleted := map[uint32][]uint32{}
	byID := map[uint32]iceberg.DataFile{}
	for _, f := range new {
		id := r.ix.FileID(f.FilePath())
		byID[id] = f
		err := readKeys(ctx, fs, f.FilePath(), r.keys, false, "", r.mem, func(pos int64, key []byte, _ int32, _, _ int64) {
			if cur, ok := r.ix.Get(key); !ok || !oldIDs[cur.File] {
				deleted[id] = append(deleted[id], uint32(pos))
			}
		})
		if err != nil {
			return nil, err
		}
	}
	if err := r.ix.Err(); err != nil {
		return nil, err
	}
	if len(deleted) == 0 {
		return nil, nil
	}
	// The output files have no deletion vectors yet.
	out, err := r.writeDeletes(ctx, base, fs, deleted, func(id uint32) (iceberg.DataFile, error) { return byID[id], nil }, nil)
	if err != nil {
		return nil, err
	}
	// Rewritten takes them as the vectors of the new files.
	r.rebased = out.dvs
	n := 0
	for _, ps := range deleted {
		n += len(ps)
	}
	r.log.Info("compaction carries the deletes made since its plan over to its files", "rows", n, "files", len(deleted))
	r.rebasedRows = int64(n)
	return out.deletes, nil
}

func (r *Resolver) clearLast() {
	r.last.files, r.last.dvs = nil, nil
	r.last.rows, r.last.replaced, r.last.deleted, r.last.stale = 0, 0, 0, 0
}

// row is one row of a commit's new files: a key's new row at loc, or (del)
// the deletion of a key.
type row struct {
	key       []byte
	partition int32
	offset    int64
	version   int64
	loc       Loc
	del       bool
}

// Resolve implements commit.RowDeltas.
func (r *Resolver) Resolve(ctx context.Context, base *table.Table, files []iceberg.DataFile) (commit.RowDelta, error) {
	head := commit.HeadID(base)
	r.clearLast()
	r.lastEq = nil
	if r.eqMode {
		return r.resolveByEquality(ctx, base, files)
	}
	if !r.ready || r.snap != head {
		if err := r.catchUp(ctx, base); err != nil {
			return commit.RowDelta{}, err
		}
		if !r.ready || r.snap != head {
			if r.version != "" {
				// Equality deletes cannot honour versions: the commit
				// waits for an index (catchUp logged why there is none).
				return commit.RowDelta{}, fmt.Errorf("upsert: the key index of a table with a version column is not ready")
			}
			return r.resolveByEquality(ctx, base, files)
		}
	}
	// Whatever happens next changes the index; only Committed keeps it.
	r.ready = false
	d, _, err := r.resolveRows(ctx, base, files)
	if err != nil {
		return commit.RowDelta{}, err
	}
	if err := r.ix.Err(); err != nil {
		return commit.RowDelta{}, err
	}
	r.ready = true
	return d, nil
}

// resolveRows puts the rows of files in the index and returns the delta
// that deletes the rows they replace, and the rows read (ordered).
func (r *Resolver) resolveRows(ctx context.Context, base *table.Table, files []iceberg.DataFile) (commit.RowDelta, []row, error) {
	head := commit.HeadID(base)
	fs, err := base.FS(ctx)
	if err != nil {
		return commit.RowDelta{}, nil, fmt.Errorf("upsert: file IO of %s: %w", base.Location(), err)
	}
	r.last.files = make(map[uint32]iceberg.DataFile, len(files))
	var rows []row
	var arena []byte
	d := commit.RowDelta{Base: head}
	for _, f := range files {
		// A file of deleted keys (equality-delete content, written by
		// ingest beside the data files) is read, never committed.
		del := f.ContentType() == iceberg.EntryContentEqDeletes
		var id uint32
		if del {
			if d.Rewritten == nil {
				d.Rewritten = map[string]iceberg.DataFile{}
			}
			d.Rewritten[f.FilePath()] = nil
		} else {
			id = r.ix.FileID(f.FilePath())
			r.last.files[id] = f
		}
		err := readKeys(ctx, fs, f.FilePath(), r.keys, true, r.version, r.mem, func(pos int64, key []byte, partition int32, offset, version int64) {
			start := len(arena)
			arena = append(arena, key...)
			rows = append(rows, row{key: arena[start:len(arena):len(arena)], partition: partition, offset: offset,
				version: version, loc: Loc{File: id, Pos: uint32(pos)}, del: del})
		})
		if err != nil {
			return commit.RowDelta{}, nil, err
		}
	}
	// The arena moved as it grew: point the rows at its final copy.
	for i, off := 0, 0; i < len(rows); i++ {
		n := len(rows[i].key)
		rows[i].key = arena[off : off+n : off+n]
		off += n
	}
	// Stable: rows without Kafka columns keep their order in the files.
	slices.SortStableFunc(rows, func(a, b row) int {
		return cmp.Or(cmp.Compare(a.partition, b.partition), cmp.Compare(a.offset, b.offset))
	})
	deleted := make(map[uint32][]uint32, len(r.repairs))
	for id, ps := range r.repairs {
		deleted[id] = append(deleted[id], ps...)
	}
	if sp, ok := r.ix.(*Spilled); ok {
		keys := make([][]byte, len(rows))
		for i := range rows {
			keys[i] = rows[i].key
		}
		sp.Prefetch(keys)
		defer sp.Prefetch(nil)
	}
	for _, rw := range rows {
		if rw.del {
			if r.version != "" && rw.version != NoVersion {
				r.deleteVersioned(rw, deleted)
				continue
			}
			if old, had := r.ix.Delete(rw.key); had && !r.isDeleted(old) {
				deleted[old.File] = append(deleted[old.File], old.Pos)
				r.last.deleted++
			}
			continue
		}
		r.last.rows++
		if r.older(rw.key, rw.version) {
			// Late: the key has a newer version already. The row is
			// deleted in the commit that adds it.
			deleted[rw.loc.File] = append(deleted[rw.loc.File], rw.loc.Pos)
			r.last.stale++
			continue
		}
		if old, _, had := r.put(rw.key, rw.loc, rw.version); had && !r.isDeleted(old) {
			deleted[old.File] = append(deleted[old.File], old.Pos)
			r.last.replaced++
		}
	}
	if base.Metadata().Version() >= 3 {
		// A deletion vector can only name a data file the table already
		// holds: the rows this commit's own files lose are left out of
		// copies of those files instead.
		fresh := map[uint32][]row{} // the rows of each such file
		for _, rw := range rows {
			if _, ok := r.last.files[rw.loc.File]; ok && !rw.del && len(deleted[rw.loc.File]) > 0 {
				fresh[rw.loc.File] = append(fresh[rw.loc.File], rw)
			}
		}
		for _, id := range sortedIDs(deleted) {
			if _, ok := r.last.files[id]; !ok {
				continue
			}
			if err := r.rewriteFresh(ctx, base, fs, id, deleted[id], fresh[id], &d); err != nil {
				return commit.RowDelta{}, nil, err
			}
			delete(deleted, id)
		}
	}
	if len(deleted) == 0 {
		return d, rows, nil
	}
	out, err := r.writeDeletes(ctx, base, fs, deleted, r.dataFile, r.dvs)
	if err != nil {
		return commit.RowDelta{}, nil, err
	}
	d.Deletes, d.Replaced, r.last.dvs = out.deletes, out.replaced, out.dvs
	return d, rows, nil
}

// rewriteFresh replaces the commit's file id by a copy without the rows
// at positions dropped, and moves the index entries of its other rows
// (rows are the file's) to the copy.
func (r *Resolver) rewriteFresh(ctx context.Context, base *table.Table, fs iceio.IO, id uint32, dropped []uint32, rows []row, d *commit.RowDelta) error {
	df := r.last.files[id]
	drop := sortedPositions(dropped)
	if d.Rewritten == nil {
		d.Rewritten = map[string]iceberg.DataFile{}
	}
	if int64(len(drop)) == df.Count() {
		// Every row of the file was replaced within the commit: it is
		// left out of it.
		r.ix.DropFile(id)
		delete(r.last.files, id)
		d.Rewritten[df.FilePath()] = nil
		return nil
	}
	info, err := fileio.InfoFromTable(ctx, base)
	if err != nil {
		return err
	}
	var w *fileio.Writer
	// The copy keeps the file's own Arrow schema (field ids included), so
	// its columns need no conversion.
	err = copyRows(ctx, fs, df.FilePath(), drop, r.mem, func(sch *arrow.Schema) func(arrow.RecordBatch) error {
		info.ArrowSchema = sch
		w = fileio.NewWriter(info, df.Partition(), fileio.Options{TargetFileSize: 1 << 62})
		return w.Write
	})
	if err != nil {
		if w != nil {
			w.Abort()
		}
		return err
	}
	out, err := w.Close(ctx)
	if err != nil {
		return fmt.Errorf("upsert: rewrite %s: %w", df.FilePath(), err)
	}
	if len(out) != 1 || out[0].Count() != df.Count()-int64(len(drop)) {
		return fmt.Errorf("upsert: rewrite of %s (%d rows, %d dropped) wrote %d files", df.FilePath(), df.Count(), len(drop), len(out))
	}
	nf := out[0]
	nid := r.ix.FileID(nf.FilePath())
	for _, rw := range rows {
		if cur, ok := r.ix.Get(rw.key); ok && cur == rw.loc {
			shift, _ := slices.BinarySearch(drop, int64(rw.loc.Pos))
			r.put(rw.key, Loc{File: nid, Pos: rw.loc.Pos - uint32(shift)}, rw.version)
		}
	}
	r.ix.DropFile(id)
	delete(r.last.files, id)
	r.last.files[nid] = nf
	d.Rewritten[df.FilePath()] = nf
	return nil
}

// copyRows reads the Parquet file at path and passes its rows, but those
// at the sorted positions drop, to the writer open returns for the file's
// Arrow schema.
func copyRows(ctx context.Context, fs iceio.IO, path string, drop []int64, mem memory.Allocator, open func(*arrow.Schema) func(arrow.RecordBatch) error) error {
	_, fr, closeFile, err := openParquet(fs, path, mem)
	if err != nil {
		return err
	}
	defer closeFile()
	rr, err := fr.GetRecordReader(ctx, nil, nil)
	if err != nil {
		return fmt.Errorf("upsert: read %s: %w", path, err)
	}
	defer rr.Release()
	write := open(rr.Schema())
	var pos int64
	var keep *array.BooleanBuilder
	for rr.Next() {
		rec := rr.RecordBatch()
		n := rec.NumRows()
		if len(drop) == 0 || drop[0] >= pos+n {
			if err := write(rec); err != nil {
				return fmt.Errorf("upsert: rewrite %s: %w", path, err)
			}
			pos += n
			continue
		}
		// One filtered batch per batch read: its dropped rows cleared.
		if keep == nil {
			keep = array.NewBooleanBuilder(mem)
			defer keep.Release()
		}
		keep.Reserve(int(n))
		for i := int64(0); i < n; i++ {
			dropped := len(drop) > 0 && drop[0] == pos+i
			if dropped {
				drop = drop[1:]
			}
			keep.UnsafeAppend(!dropped)
		}
		mask := keep.NewBooleanArray()
		out, err := compute.FilterRecordBatch(ctx, rec, mask, compute.DefaultFilterOptions())
		mask.Release()
		if err != nil {
			return fmt.Errorf("upsert: rewrite %s: %w", path, err)
		}
		err = write(out)
		out.Release()
		if err != nil {
			return fmt.Errorf("upsert: rewrite %s: %w", path, err)
		}
		pos += n
	}
	return rr.Err()
}

// dataFile returns the data file the index knows by id.
func (r *Resolver) dataFile(id uint32) (iceberg.DataFile, error) {
	if f, ok := r.last.files[id]; ok {
		return f, nil
	}
	if f, ok := r.files[id]; ok {
		return f, nil
	}
	return nil, fmt.Errorf("upsert: no data file for index id %d (%s)", id, r.ix.FilePath(id))
}

// sortedPositions returns ps sorted, without duplicates, as int64s.
func sortedPositions(ps []uint32) []int64 {
	slices.Sort(ps)
	ps = slices.Compact(ps)
	out := make([]int64, len(ps))
	for i, p := range ps {
		out[i] = int64(p)
	}
	return out
}

// written is what writeDeletes wrote.
type written struct {
	// deletes are the delete files; replaced the deletion vectors they
	// supersede.
	deletes, replaced []iceberg.DataFile
	// dvs are the new deletion vectors by data file path (v3).
	dvs map[string]iceberg.DataFile
}

// writeDeletes writes the deletes of the rows at deleted (data file id →
// positions): position-delete files in v2 tables, deletion vectors in v3
// ones, merged with each file's vector in prior, which they replace.
// fileOf resolves an id to its data file.
func (r *Resolver) writeDeletes(ctx context.Context, base *table.Table, fs iceio.IO, deleted map[uint32][]uint32,
	fileOf func(uint32) (iceberg.DataFile, error), prior map[string]iceberg.DataFile,
) (written, error) {
	wfs, ok := fs.(iceio.WriteFileIO)
	if !ok {
		return written{}, fmt.Errorf("upsert: file IO of %s is read-only", base.Location())
	}
	meta := base.Metadata()
	specOf := func(id int32) *iceberg.PartitionSpec { return meta.PartitionSpecByID(int(id)) }
	var out written
	if meta.Version() < 3 {
		batch := uuid.NewString()
		for n, id := range sortedIDs(deleted) {
			df, err := fileOf(id)
			if err != nil {
				return written{}, err
			}
			spec := specOf(df.SpecID())
			if spec == nil {
				return written{}, fmt.Errorf("upsert: data file %s has unknown partition spec %d", df.FilePath(), df.SpecID())
			}
			dir := strings.TrimSuffix(base.Location(), "/") + "/data"
			if !spec.IsUnpartitioned() {
				dir += "/" + fileio.PartitionPath(*spec, base.Schema(), df.Partition())
			}
			path := fmt.Sprintf("%s/%s-deletes-%05d.parquet", dir, batch, n)
			f, err := fileio.WritePositionDeletes(wfs, path, df, *spec, sortedPositions(deleted[id]), r.mem)
			if err != nil {
				return written{}, err
			}
			out.deletes = append(out.deletes, f)
		}
		return out, nil
	}
	w := dv.NewDVWriter(wfs, specOf)
	for _, id := range sortedIDs(deleted) {
		df, err := fileOf(id)
		if err != nil {
			return written{}, err
		}
		path := df.FilePath()
		if old, ok := prior[path]; ok {
			bm, err := dv.ReadDV(fs, old)
			if err != nil {
				return written{}, fmt.Errorf("upsert: read the deletion vector of %s: %w", path, err)
			}
			w.Load(path, bm, df.SpecID(), df.Partition())
			out.replaced = append(out.replaced, old)
		}
		if err := w.Add(path, sortedPositions(deleted[id]), df.SpecID(), df.Partition()); err != nil {
			return written{}, err
		}
	}
	loc := fmt.Sprintf("%s/data/%s-dv.puffin", strings.TrimSuffix(base.Location(), "/"), uuid.NewString())
	dvs, err := w.Flush(ctx, loc)
	if err != nil {
		return written{}, fmt.Errorf("upsert: write deletion vectors %s: %w", loc, err)
	}
	out.deletes = dvs
	out.dvs = make(map[string]iceberg.DataFile, len(dvs))
	for _, f := range dvs {
		if ref := f.ReferencedDataFile(); ref != nil {
			out.dvs[*ref] = f
		}
	}
	return out, nil
}

func sortedIDs(m map[uint32][]uint32) []uint32 {
	ids := make([]uint32, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// NoVersion is the version of a row without one: the row of a table
// without a version column, or a null version. Any versioned row is newer.
const NoVersion = math.MinInt64

// openParquet opens the Parquet file at path for reading as Arrow; close
// releases it.
func openParquet(fs iceio.IO, path string, mem memory.Allocator) (pf *file.Reader, fr *pqarrow.FileReader, close func(), err error) {
	f, err := fs.Open(path)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("upsert: open %s: %w", path, err)
	}
	pf, err = file.NewParquetReader(f)
	if err != nil {
		f.Close()
		return nil, nil, nil, fmt.Errorf("upsert: read %s: %w", path, err)
	}
	fr, err = pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: readBatch}, mem)
	if err != nil {
		pf.Close()
		f.Close()
		return nil, nil, nil, fmt.Errorf("upsert: read %s: %w", path, err)
	}
	return pf, fr, func() { pf.Close(); f.Close() }, nil
}

// readKeys calls fn for every row of the Parquet file at path with the
// row's position and encoded key; when withOrder is set, its Kafka
// partition and offset (-1 and the position when the file lacks them);
// and the value of the version column, if one is named (NoVersion when
// the file lacks it or the value is null). key is valid only during the
// call.
func readKeys(ctx context.Context, fs iceio.IO, path string, keys []string, withOrder bool, version string, mem memory.Allocator,
	fn func(pos int64, key []byte, partition int32, offset, version int64),
) error {
	pf, fr, closeFile, err := openParquet(fs, path, mem)
	if err != nil {
		return err
	}
	defer closeFile()
	sch := pf.MetaData().Schema
	var cols []int
	for _, k := range keys {
		i := sch.ColumnIndexByName(k)
		if i < 0 {
			return fmt.Errorf("upsert: %s has no key column %q", path, k)
		}
		cols = append(cols, i)
	}
	pi, oi := -1, -1
	if withOrder {
		pi, oi = sch.ColumnIndexByName(MetaPartition), sch.ColumnIndexByName(MetaOffset)
		if pi >= 0 && oi >= 0 {
			cols = append(cols, pi, oi)
		}
	}
	vi := -1
	if version != "" {
		if vi = sch.ColumnIndexByName(version); vi >= 0 {
			cols = append(cols, vi)
		}
	}
	rr, err := fr.GetRecordReader(ctx, cols, nil)
	if err != nil {
		return fmt.Errorf("upsert: read %s: %w", path, err)
	}
	defer rr.Release()
	enc, err := NewKeyEncoder(rr.Schema(), keys)
	if err != nil {
		return fmt.Errorf("upsert: %s: %w", path, err)
	}
	var pcol, ocol, vcol int = -1, -1, -1
	if pi >= 0 && oi >= 0 {
		pcol, ocol = rr.Schema().FieldIndices(MetaPartition)[0], rr.Schema().FieldIndices(MetaOffset)[0]
	}
	if vi >= 0 {
		vcol = rr.Schema().FieldIndices(version)[0]
	}
	var pos int64
	var key []byte
	for rr.Next() {
		rec := rr.RecordBatch()
		var parts *array.Int32
		var offs *array.Int64
		if pcol >= 0 {
			parts, _ = rec.Column(pcol).(*array.Int32)
			offs, _ = rec.Column(ocol).(*array.Int64)
		}
		versionOf := func(int) int64 { return NoVersion }
		if vcol >= 0 {
			if versionOf, err = versions(rec.Column(vcol)); err != nil {
				return fmt.Errorf("upsert: %s: version column %s: %w", path, version, err)
			}
		}
		for i := 0; i < int(rec.NumRows()); i++ {
			key, err = enc.AppendKey(key[:0], rec, i)
			if err != nil {
				return fmt.Errorf("upsert: %s row %d: %w", path, pos, err)
			}
			p, o := int32(-1), pos
			if parts != nil && offs != nil && parts.IsValid(i) && offs.IsValid(i) {
				p, o = parts.Value(i), offs.Value(i)
			}
			fn(pos, key, p, o, versionOf(i))
			pos++
		}
	}
	enc.Reset()
	if err := rr.Err(); err != nil {
		return fmt.Errorf("upsert: read %s: %w", path, err)
	}
	return nil
}

// versions returns the reader of a version column's values as int64s.
func versions(col arrow.Array) (func(int) int64, error) {
	valid := func(i int) bool { return col.IsValid(i) }
	switch a := col.(type) {
	case *array.Int64:
		return func(i int) int64 { return or(valid(i), a.Value(i)) }, nil
	case *array.Int32:
		return func(i int) int64 { return or(valid(i), int64(a.Value(i))) }, nil
	case *array.Date32:
		return func(i int) int64 { return or(valid(i), int64(a.Value(i))) }, nil
	case *array.Timestamp:
		return func(i int) int64 { return or(valid(i), int64(a.Value(i))) }, nil
	}
	return nil, fmt.Errorf("type %s cannot order versions (int, long, date or timestamp)", col.DataType())
}

func or(valid bool, v int64) int64 {
	if !valid {
		return NoVersion
	}
	return v
}

// liveFile is a data file of the snapshot being rebuilt, with what deletes
// its rows.
type liveFile struct {
	df      iceberg.DataFile
	seq     int64
	deletes []iceberg.DataFile // position-delete files
	dv      iceberg.DataFile
	eq      []iceberg.DataFile // equality deletes that apply to it
}

// rebuild makes the index hold base's current snapshot.
func (r *Resolver) rebuild(ctx context.Context, base *table.Table) error {
	start := time.Now()
	ix, err := r.newIndex()
	if err != nil {
		return err
	}
	r.setIndex(ix)
	r.files = map[uint32]iceberg.DataFile{}
	r.dvs = map[string]iceberg.DataFile{}
	r.repairs, r.eqKnown = nil, map[string]bool{}
	r.ready, r.snap = false, 0
	r.clearLast()
	snap := base.CurrentSnapshot()
	if snap == nil {
		r.ready = true
		return nil
	}
	if err := failpoint.Hit("upsert/rebuild"); err != nil {
		return err
	}
	tasks, err := base.Scan(table.WithSnapshotID(snap.SnapshotID)).PlanFiles(ctx)
	if err != nil {
		return fmt.Errorf("upsert: plan the files of snapshot %d: %w", snap.SnapshotID, err)
	}
	// A file larger than the split size comes as several tasks: one entry
	// per file, with the union of its deletes.
	byPath := map[string]*liveFile{}
	var live []*liveFile
	for _, t := range tasks {
		lf := byPath[t.File.FilePath()]
		if lf == nil {
			lf = &liveFile{df: t.File}
			if t.DataSequenceNumber != nil {
				lf.seq = *t.DataSequenceNumber
			}
			byPath[t.File.FilePath()] = lf
			live = append(live, lf)
		}
		for _, d := range t.DeleteFiles {
			if !slices.ContainsFunc(lf.deletes, func(x iceberg.DataFile) bool { return x.FilePath() == d.FilePath() }) {
				lf.deletes = append(lf.deletes, d)
			}
		}
		if len(t.DeletionVectorFiles) > 0 {
			lf.dv = t.DeletionVectorFiles[0]
		}
		for _, d := range t.EqualityDeleteFiles {
			if !slices.ContainsFunc(lf.eq, func(x iceberg.DataFile) bool { return x.FilePath() == d.FilePath() }) {
				lf.eq = append(lf.eq, d)
			}
		}
	}
	// Oldest first: a key found live twice keeps its newest row.
	slices.SortStableFunc(live, func(a, b *liveFile) int {
		return cmp.Or(cmp.Compare(a.seq, b.seq), strings.Compare(a.df.FilePath(), b.df.FilePath()))
	})
	fs, err := base.FS(ctx)
	if err != nil {
		return fmt.Errorf("upsert: file IO of %s: %w", base.Location(), err)
	}
	posDeletes := map[string]map[string][]int64{} // delete file → data file → positions
	eqKeys := map[string]map[string]struct{}{}    // equality-delete file → its keys
	var dupes, eqDeleted int
	for _, lf := range live {
		path := lf.df.FilePath()
		gone := map[int64]bool{}
		for _, d := range lf.deletes {
			byData, ok := posDeletes[d.FilePath()]
			if !ok {
				if byData, err = fileio.ReadPositionDeletes(ctx, fs, d.FilePath(), r.mem); err != nil {
					return err
				}
				posDeletes[d.FilePath()] = byData
			}
			for _, p := range byData[path] {
				gone[p] = true
			}
		}
		var bm *dv.RoaringPositionBitmap
		if lf.dv != nil {
			if bm, err = dv.ReadDV(fs, lf.dv); err != nil {
				return fmt.Errorf("upsert: read the deletion vector of %s: %w", path, err)
			}
			r.dvs[path] = lf.dv
		}
		var eqSets []map[string]struct{}
		for _, d := range lf.eq {
			set, ok := eqKeys[d.FilePath()]
			if !ok {
				set = map[string]struct{}{}
				err := readKeys(ctx, fs, d.FilePath(), r.keys, false, "", r.mem, func(_ int64, key []byte, _ int32, _, _ int64) {
					set[string(key)] = struct{}{}
				})
				if err != nil {
					return err
				}
				eqKeys[d.FilePath()] = set
			}
			eqSets = append(eqSets, set)
		}
		id := r.ix.FileID(path)
		r.files[id] = lf.df
		err := readKeys(ctx, fs, path, r.keys, false, r.version, r.mem, func(pos int64, key []byte, _ int32, _, v int64) {
			if gone[pos] || (bm != nil && bm.Contains(uint64(pos))) {
				return
			}
			here := Loc{File: id, Pos: uint32(pos)}
			for _, set := range eqSets {
				if _, ok := set[string(key)]; ok {
					// Deleted by an equality delete: deleted again by
					// position with the next commit.
					r.repair(here)
					eqDeleted++
					return
				}
			}
			if r.older(key, v) {
				// Live twice, and this row is the older one.
				r.repair(here)
				dupes++
				return
			}
			if old, _, had := r.put(key, here, v); had {
				r.repair(old)
				dupes++
			}
		})
		if err != nil {
			return err
		}
	}
	if err := r.ix.Err(); err != nil {
		return err
	}
	r.ready, r.snap = true, snap.SnapshotID
	r.stats.Rebuilds++
	r.stats.RebuildTime = time.Since(start)
	r.metrics.KeyIndexRebuilt(r.table, r.ix.Len(), r.stats.RebuildTime)
	r.publish()
	args := []any{"snapshot_id", snap.SnapshotID, "files", len(live), "keys", r.ix.Len(),
		"index_bytes", r.ix.MemoryBytes(), "took", r.stats.RebuildTime.Round(time.Millisecond)}
	if dupes > 0 {
		r.log.Warn("key index rebuilt: keys with more than one live row; the older rows are deleted with the next commit", append(args, "duplicates", dupes)...)
	} else {
		r.log.Info("key index rebuilt from the table", args...)
	}
	eqLive, err := commit.EqualityDeletes(ctx, base, snap)
	if err != nil {
		return err
	}
	for _, e := range eqLive {
		r.eqKnown[e.DataFile().FilePath()] = true
	}
	if len(eqLive) > 0 {
		r.log.Info("the table has equality deletes; the rows they delete are deleted by position with the next commit, then the equality deletes are removed",
			"equality_delete_files", len(eqLive), "rows", eqDeleted)
	}
	return nil
}

// repair deletes the row at loc with the next commit.
func (r *Resolver) repair(loc Loc) {
	if r.repairs == nil {
		r.repairs = map[uint32][]uint32{}
	}
	r.repairs[loc.File] = append(r.repairs[loc.File], loc.Pos)
}
