package commit

import (
	"context"
	"errors"
	"fmt"
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
		if _, tagged, found, err := tableOffsets(tableAt(c.tbl, s), c.cfg.Pipeline, c.cfg.Logger); err != nil {
			return nil, err
		} else if found {
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
	t := table.New(c.tbl.Identifier(), meta, loc, c.tbl.FS, c.cat)
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
	if err := iceberg.WriteManifestList(version, out, id, &parent, &seq, firstRowID, manifests); err != nil {
		_ = out.Close()
		return nil, fmt.Errorf("commit: write %s: %w", loc, err)
	}
	if err := out.Close(); err != nil {
		return nil, fmt.Errorf("commit: write %s: %w", loc, err)
	}
	props := iceberg.Properties{
		PropPipeline: c.cfg.Pipeline,
		PropOffsets:  c.offsets.Encode(),
		PropCommitID: uuid.NewString(),
		PropEpoch:    strconv.FormatInt(c.cfg.Epoch, 10),
		PropRollback: fmt.Sprintf("skip:%d", s.SnapshotID),
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
	if head.Summary != nil {
		if wm, ok := head.Summary.Properties[PropWatermark]; ok {
			props[PropWatermark] = wm
		}
	}
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
		var zero int64
		snap.FirstRowID, snap.AddedRows = &firstRowID, &zero
	}
	return snap, nil
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
