package commit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/apache/iceberg-go"
	iceio "github.com/apache/iceberg-go/io"
	"github.com/apache/iceberg-go/table"
	"github.com/google/uuid"
)

// Rollback returns a table to one of its earlier snapshots, in one of two
// modes. Both run on the table writer's goroutine (TableWriter.Do), so no
// segment commits between reading the table and committing the rollback,
// and the writer's sync afterwards makes the ledger follow.
//
// Replay moves main back to the target snapshot S (S must be an ancestor of
// the current snapshot), with the pipeline's tag (TagName) moved to the
// snapshot whose offsets S's data holds. The table's offsets are then S's,
// behind the ledger's, so the writer's sync adopts them (AdoptTable): the
// pipeline's pending segments are dropped and its partitions are read again
// from S's offsets, through the transform as it is configured now. This is
// reprocessing: fix a transform, roll back, and the records since S are
// ingested again.
//
// Skip commits a new snapshot on top of the current one whose data is
// exactly S's (its manifest list lists S's manifests, so every data and
// delete file keeps its sequence numbers and deletes apply as they did in
// S) and whose floe properties are the current ones: the offsets, the
// transform state (windows, dedup) and the watermark stay where they are.
// The records since S are gone from the table and are not read again:
// this drops bad data. History is kept: the undone snapshots stay in the
// metadata (and can be rolled forward to by a replay rollback to the
// snapshot before the skip, or read by time travel) until expiry removes
// them.
//
// Why a new snapshot for Skip rather than moving main: main moved back to S
// would carry S's offsets, which is Replay. Why S's manifests rather than
// deleting the files added since S: compaction may have merged rows from
// before and after S into one file, and keyed tables delete rows by
// position; S's manifests are S's rows exactly, whatever happened since.

// RollbackMode is Replay or Skip.
type RollbackMode int

const (
	// RollbackReplay returns the table to S and reads the records since
	// S again.
	RollbackReplay RollbackMode = iota + 1
	// RollbackSkip returns the table to S's rows and keeps its offsets:
	// the records since S are dropped.
	RollbackSkip
)

func (m RollbackMode) String() string {
	switch m {
	case RollbackReplay:
		return "replay"
	case RollbackSkip:
		return "skip"
	}
	return "unknown"
}

// PropRollback is written on a Skip rollback's snapshot: "skip:<target id>".
const PropRollback = "floe.rollback"

// ErrNotReplayable means a replay rollback cannot say where to read from
// again: the target snapshot lacks offsets the table has now.
var ErrNotReplayable = errors.New("cannot replay from this snapshot")

// ReplayOffsets returns the offsets a replay rollback of tbl to its
// snapshot s reads pipeline's records again from: those of the newest
// snapshot at or before s that carries them. It fails with an error that
// Is ErrNotReplayable when they lack a partition tbl has now.
func ReplayOffsets(tbl *table.Table, s *table.Snapshot, pipeline string) (Offsets, error) {
	now, _, _, err := TableOffsets(tbl, pipeline)
	if err != nil {
		return nil, err
	}
	off, _, _, err := replayPoint(tbl, s, now, pipeline, slog.Default())
	return off, err
}

// replayPoint is ReplayOffsets, with the snapshot the offsets come from
// (which the pipeline's tag pins after the replay) and whether there is
// one.
func replayPoint(tbl *table.Table, s *table.Snapshot, now Offsets, pipeline string, log *slog.Logger) (Offsets, int64, bool, error) {
	back, tagged, found, err := tableOffsets(tableAt(tbl, s), pipeline, log)
	if err != nil {
		return nil, 0, false, err
	}
	if missing := Uncovered(now, back); missing != "" {
		return nil, 0, false, fmt.Errorf("%w: snapshot %d holds no offsets for %s, which the table has now: a replay could not say where to read %s from again; roll back to a later snapshot, or use skip",
			ErrNotReplayable, s.SnapshotID, missing, missing)
	}
	return back, tagged, found, nil
}

// Uncovered names the first partition of now that back has no offset
// for, "" when back covers every one.
func Uncovered(now, back Offsets) string {
	for _, k := range offsetKeys(now) {
		if _, ok := back.Get(k.topic, k.partition); !ok {
			return fmt.Sprintf("%s/%d", k.topic, k.partition)
		}
	}
	return ""
}

// ErrNotAncestor means the rollback target is not in the current
// snapshot's history.
var ErrNotAncestor = errors.New("not an ancestor of the current snapshot")

// Ancestors returns the current snapshot of tbl and its ancestors still in
// the metadata, newest first.
func Ancestors(tbl *table.Table) []*table.Snapshot {
	meta := tbl.Metadata()
	var out []*table.Snapshot
	for s := meta.CurrentSnapshot(); s != nil; {
		out = append(out, s)
		if s.ParentSnapshotID == nil {
			break
		}
		s = meta.SnapshotByID(*s.ParentSnapshotID)
	}
	return out
}

// Rollback rolls the committer's table back to snapshot target in mode,
// and returns the table after it. It must run on the table writer's
// goroutine (TableWriter.Do): see the essay above.
func (c *Committer) Rollback(ctx context.Context, target int64, mode RollbackMode) (*table.Table, error) {
	if err := c.reload(ctx); err != nil {
		return nil, err
	}
	head := c.tbl.CurrentSnapshot()
	if head == nil {
		return nil, fmt.Errorf("commit: %s has no snapshot to roll back", c.ident)
	}
	if head.SnapshotID == target {
		return nil, fmt.Errorf("commit: snapshot %d is already current", target)
	}
	var s *table.Snapshot
	for _, a := range Ancestors(c.tbl) {
		if a.SnapshotID == target {
			s = a
		}
	}
	if s == nil {
		return nil, fmt.Errorf("commit: snapshot %d: %w %d", target, ErrNotAncestor, head.SnapshotID)
	}
	var (
		reqs = []table.Requirement{table.AssertRefSnapshotID(table.MainBranch, &head.SnapshotID)}
		upd  []table.Update
		tag  = TagName(c.cfg.Pipeline)
	)
	switch mode {
	case RollbackReplay:
		upd = append(upd, table.NewSetSnapshotRefUpdate(table.MainBranch, s.SnapshotID, table.BranchRef, 0, 0, 0))
		// The tag pins the newest snapshot at or before S that carries the
		// pipeline's offsets: what S's data holds.
		_, tagged, found, err := replayPoint(c.tbl, s, c.offsets, c.cfg.Pipeline, c.cfg.Logger)
		if err != nil {
			return nil, err
		}
		if found {
			upd = append(upd, table.NewSetSnapshotRefUpdate(tag, tagged, table.TagRef, math.MaxInt64, 0, 0))
		} else {
			upd = append(upd, table.NewRemoveSnapshotRefUpdate(tag))
		}
	case RollbackSkip:
		snap, err := c.skipSnapshot(ctx, head, s)
		if err != nil {
			return nil, err
		}
		upd = append(upd, table.NewAddSnapshotUpdate(snap),
			table.NewSetSnapshotRefUpdate(table.MainBranch, snap.SnapshotID, table.BranchRef, 0, 0, 0),
			table.NewSetSnapshotRefUpdate(tag, snap.SnapshotID, table.TagRef, math.MaxInt64, 0, 0))
	default:
		return nil, fmt.Errorf("commit: unknown rollback mode %d", mode)
	}
	if !hasRef(c.tbl.Metadata(), tag) && mode == RollbackReplay {
		// Removing a tag that is not there fails the commit; it was
		// never set (a table floe has not committed to).
		upd = dropRemoveRef(upd, tag)
	}
	meta, loc, err := c.cat.CommitTable(ctx, c.tbl.Identifier(), reqs, upd)
	if err != nil {
		return nil, fmt.Errorf("commit: roll %s back to %d (%s): %w", c.ident, target, mode, err)
	}
	t := table.New(c.tbl.Identifier(), meta, loc, c.fs, c.cat)
	if err := c.reload(ctx); err != nil {
		return t, err
	}
	c.cfg.Logger.Warn("rolled the table back", "mode", mode.String(), "from", head.SnapshotID, "to", target,
		"current", HeadID(c.tbl), "offsets", c.offsets.Encode())
	return c.tbl, nil
}

func dropRemoveRef(upd []table.Update, ref string) []table.Update {
	out := upd[:0:0]
	for _, u := range upd {
		if u.Action() == table.UpdateRemoveSnapshotRef {
			continue
		}
		out = append(out, u)
	}
	return out
}

func hasRef(meta table.Metadata, name string) bool {
	for n := range meta.Refs() {
		if n == name {
			return true
		}
	}
	return false
}

// tableAt returns tbl as if s were its current snapshot (for reading the
// offsets S's data holds).
func tableAt(tbl *table.Table, s *table.Snapshot) *table.Table {
	b, err := table.MetadataBuilderFromBase(tbl.Metadata(), tbl.MetadataLocation())
	if err != nil {
		return tbl
	}
	if err := b.SetSnapshotRef(table.MainBranch, s.SnapshotID, table.BranchRef); err != nil {
		return tbl
	}
	meta, err := b.Build()
	if err != nil {
		return tbl
	}
	return table.New(tbl.Identifier(), meta, tbl.MetadataLocation(), tbl.FS, nil)
}

// skipSnapshot writes the manifest list of a new snapshot on top of head
// that lists s's manifests, and returns the snapshot, with head's floe
// properties and s's totals.
func (c *Committer) skipSnapshot(ctx context.Context, head, s *table.Snapshot) (*table.Snapshot, error) {
	meta := c.tbl.Metadata()
	fs, err := c.tbl.FS(ctx)
	if err != nil {
		return nil, err
	}
	wfs, ok := fs.(iceio.WriteFileIO)
	if !ok {
		return nil, fmt.Errorf("commit: the file IO of %s cannot write", c.ident)
	}
	manifests, err := s.Manifests(fs)
	if err != nil {
		return nil, fmt.Errorf("commit: manifests of snapshot %d: %w", s.SnapshotID, err)
	}
	id := newSnapshotID(meta)
	parent := head.SnapshotID
	version := meta.Version()
	var seq int64
	if version >= 2 {
		seq = meta.LastSequenceNumber() + 1
	}
	firstRowID := meta.NextRowID()
	loc := path.Join(metadataDir(c.tbl), fmt.Sprintf("snap-%d-0-%s.avro", id, uuid.NewString()))
	out, err := wfs.Create(loc)
	if err != nil {
		return nil, fmt.Errorf("commit: write %s: %w", loc, err)
	}
	addedRows, err := writeManifestList(version, out, id, parent, seq, firstRowID, manifests)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("commit: write %s: %w", loc, err)
	}
	props := c.carriedProps(head, c.offsets)
	props[PropRollback] = fmt.Sprintf("skip:%d", s.SnapshotID)
	if s.Summary != nil && head.Summary != nil {
		// What the skip removed (or brought back), for readers of the
		// summary.
		before, _ := strconv.ParseInt(head.Summary.Properties["total-records"], 10, 64)
		after, _ := strconv.ParseInt(s.Summary.Properties["total-records"], 10, 64)
		if before > after {
			props["deleted-records"] = strconv.FormatInt(before-after, 10)
		} else if after > before {
			props["added-records"] = strconv.FormatInt(after-before, 10)
		}
	}
	if s.Summary != nil {
		for _, k := range []string{"total-records", "total-files-size", "total-data-files", "total-delete-files",
			"total-position-deletes", "total-equality-deletes"} {
			if v, ok := s.Summary.Properties[k]; ok {
				props[k] = v
			}
		}
	}
	schemaID := meta.CurrentSchema().ID
	snap := &table.Snapshot{
		SnapshotID:       id,
		ParentSnapshotID: &parent,
		SequenceNumber:   seq,
		TimestampMs:      max(time.Now().UnixMilli(), head.TimestampMs),
		ManifestList:     loc,
		Summary:          &table.Summary{Operation: table.OpOverwrite, Properties: props},
		SchemaID:         &schemaID,
	}
	if version >= 3 {
		snap.FirstRowID, snap.AddedRows = &firstRowID, &addedRows
	}
	return snap, nil
}

// writeManifestList writes the manifest list of a new snapshot listing
// manifests, and returns the row ids it assigned (format v3): S's data
// manifests carry their first row ids, except those written before the
// table was upgraded to v3, which get new ones here, and the snapshot must
// count them so that the table's next row id moves past them.
func writeManifestList(version int, out io.Writer, id, parent, seq, firstRowID int64, manifests []iceberg.ManifestFile) (int64, error) {
	if version < 3 {
		return 0, iceberg.WriteManifestList(version, out, id, &parent, &seq, firstRowID, manifests)
	}
	w, err := iceberg.NewManifestListWriterV3(out, id, seq, firstRowID, &parent)
	if err != nil {
		return 0, err
	}
	if err := w.AddManifests(manifests); err != nil {
		_ = w.Close()
		return 0, err
	}
	if err := w.Close(); err != nil {
		return 0, err
	}
	var added int64
	if next := w.NextRowID(); next != nil {
		added = *next - firstRowID
	}
	return added, nil
}

// TrimDeadLetters makes the committer's table (a dead-letter table: it
// has the columns topic, partition and offset of the records it holds)
// hold only the records below to, and moves its offsets back to to, in one
// snapshot: what a replay rollback of its pipeline's table to offsets to
// needs, so that every record read again lands in exactly one of the two
// tables, whatever the transform decides this time. Partitions where the
// table is already at or below to are left alone; it is a no-op (nil, nil)
// when there are none.
func (c *Committer) TrimDeadLetters(ctx context.Context, to Offsets) (*table.Table, error) {
	if err := c.reload(ctx); err != nil {
		return nil, err
	}
	offs := c.offsets.Clone()
	var cond iceberg.BooleanExpression
	for _, k := range offsetKeys(to) {
		want, _ := to.Get(k.topic, k.partition)
		have, ok := offs.Get(k.topic, k.partition)
		if ok && have <= want {
			continue
		}
		offs.Set(k.topic, k.partition, want)
		p := iceberg.NewAnd(iceberg.EqualTo(iceberg.Reference("topic"), k.topic),
			iceberg.EqualTo(iceberg.Reference("partition"), k.partition),
			iceberg.GreaterThanEqual(iceberg.Reference("offset"), want))
		if cond == nil {
			cond = p
		} else {
			cond = iceberg.NewOr(cond, p)
		}
	}
	if cond == nil {
		return nil, nil
	}
	head := c.tbl.CurrentSnapshot()
	props := c.carriedProps(head, offs)
	props[PropRollback] = "trim:" + to.Encode()
	pin := &pinningCatalog{CatalogIO: c.cat, tag: TagName(c.cfg.Pipeline)}
	tx := c.bind(c.tbl, pin).NewTransaction()
	if err := tx.AssertRefSnapshotID(table.MainBranch); err != nil {
		return nil, err
	}
	if head != nil {
		if err := tx.Delete(ctx, cond, props); err != nil {
			return nil, fmt.Errorf("commit: trim %s to %s: %w", c.ident, to.Encode(), err)
		}
	}
	if staged, err := tx.StagedTable(); err != nil {
		return nil, err
	} else if staged.CurrentSnapshot() == nil || (head != nil && staged.CurrentSnapshot().SnapshotID == head.SnapshotID) {
		// No row to delete: an empty snapshot moves the offsets.
		if err := tx.AddFiles(ctx, nil, props, false); err != nil {
			return nil, fmt.Errorf("commit: trim %s to %s: %w", c.ident, to.Encode(), err)
		}
	}
	if err := pin.follow(tx, c.tbl); err != nil {
		return nil, err
	}
	if _, err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("commit: trim %s to %s: %w", c.ident, to.Encode(), err)
	}
	if err := c.reload(ctx); err != nil {
		return nil, err
	}
	c.cfg.Logger.Warn("trimmed the dead-letter table for a replay of its pipeline", "to", to.Encode(), "current", HeadID(c.tbl))
	return c.tbl, nil
}

// carriedProps are the floe properties of a commit that changes no
// pipeline state: offs as the offsets, and the transform state and
// watermark of head carried forward.
func (c *Committer) carriedProps(head *table.Snapshot, offs Offsets) iceberg.Properties {
	props := iceberg.Properties{
		PropPipeline: c.cfg.Pipeline,
		PropOffsets:  offs.Encode(),
		PropCommitID: uuid.NewString(),
		PropEpoch:    strconv.FormatInt(c.cfg.Epoch, 10),
	}
	if st := TableState(c.tbl, c.cfg.Pipeline); st != "" {
		props[PropState] = st
	}
	if d := TableDedup(c.tbl, c.cfg.Pipeline); d != "" {
		props[PropDedup] = d
	}
	if et := TableEventTimes(c.tbl, c.cfg.Pipeline); len(et) > 0 {
		props[PropEventTimes] = et.Encode()
	}
	if head != nil && head.Summary != nil {
		if wm, ok := head.Summary.Properties[PropWatermark]; ok {
			props[PropWatermark] = wm
		}
	}
	return props
}

// metadataDir is where tbl's metadata files go.
func metadataDir(tbl *table.Table) string {
	if d := tbl.Properties()["write.metadata.path"]; d != "" {
		return d
	}
	return tbl.Location() + "/metadata"
}

// newSnapshotID returns a positive snapshot id not in meta.
func newSnapshotID(meta table.Metadata) int64 {
	for {
		id := rand.Int64N(math.MaxInt64-1) + 1
		if meta.SnapshotByID(id) == nil {
			return id
		}
	}
}

// SetTag names snapshot id tag on the committer's table; maxRefAgeMs > 0
// lets expiry remove the tag once it is that old. It fails when the name
// is taken (the commit asserts it is free).
func (c *Committer) SetTag(ctx context.Context, name string, id, maxRefAgeMs int64) error {
	age := int64(math.MaxInt64)
	if maxRefAgeMs > 0 {
		age = maxRefAgeMs
	}
	reqs := []table.Requirement{table.AssertRefSnapshotID(name, nil)}
	upd := []table.Update{table.NewSetSnapshotRefUpdate(name, id, table.TagRef, age, 0, 0)}
	if _, _, err := c.cat.CommitTable(ctx, c.tbl.Identifier(), reqs, upd); err != nil {
		return fmt.Errorf("commit: tag %d of %s as %q: %w", id, c.ident, name, err)
	}
	return c.reload(ctx)
}

// RemoveTag removes a tag of the committer's table.
func (c *Committer) RemoveTag(ctx context.Context, name string) error {
	if _, _, err := c.cat.CommitTable(ctx, c.tbl.Identifier(), nil, []table.Update{table.NewRemoveSnapshotRefUpdate(name)}); err != nil {
		return fmt.Errorf("commit: remove tag %q of %s: %w", name, c.ident, err)
	}
	return c.reload(ctx)
}

// AgedTags returns the tags of meta (not floe's own, TagName's) whose
// max-ref-age has passed: the tagged snapshot is older than it, as the
// Iceberg spec defines a ref's age.
func AgedTags(meta table.Metadata, now time.Time) []string {
	var out []string
	for name, ref := range meta.Refs() {
		if ref.SnapshotRefType != table.TagRef || ref.MaxRefAgeMs == nil || *ref.MaxRefAgeMs <= 0 ||
			*ref.MaxRefAgeMs >= math.MaxInt64/2 || strings.HasPrefix(name, "floe-") {
			continue
		}
		s := meta.SnapshotByID(ref.SnapshotID)
		if s != nil && now.UnixMilli()-s.TimestampMs > *ref.MaxRefAgeMs {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}
