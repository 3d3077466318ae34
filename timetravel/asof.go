package timetravel

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/apache/iceberg-go/table"
)

// AsOf picks the snapshot of a table that a query reads. At most one
// field may be set; the zero value is the table's current snapshot.
type AsOf struct {
	// SnapshotID is a snapshot's id; 0 leaves it unset.
	SnapshotID int64
	// Time picks the snapshot that was current on the main branch at that
	// instant, from the table's snapshot log; the zero time leaves it
	// unset.
	Time time.Time
	// Tag is the name of a tag; "" leaves it unset.
	Tag string
	// Branch is the name of a branch, whose head is read; "" leaves it
	// unset.
	Branch string
}

// IsZero reports whether no field of at is set, that is whether it picks
// the current snapshot.
func (at AsOf) IsZero() bool {
	return at.SnapshotID == 0 && at.Time.IsZero() && at.Tag == "" && at.Branch == ""
}

// String describes at as a user would write it: "snapshot 123", "time
// 2026-01-02T03:04:05Z", "tag v1", "branch dev", or "the current
// snapshot".
func (at AsOf) String() string {
	set := at.set()
	if len(set) == 0 {
		return "the current snapshot"
	}
	return strings.Join(set, " and ")
}

// set lists the fields of at that are set, described.
func (at AsOf) set() []string {
	var set []string
	if at.SnapshotID != 0 {
		set = append(set, fmt.Sprintf("snapshot %d", at.SnapshotID))
	}
	if !at.Time.IsZero() {
		set = append(set, "time "+formatMillis(at.Time))
	}
	if at.Tag != "" {
		set = append(set, fmt.Sprintf("tag %q", at.Tag))
	}
	if at.Branch != "" {
		set = append(set, fmt.Sprintf("branch %q", at.Branch))
	}
	return set
}

// maxNamesListed is how many names (of tags, branches, snapshots) an
// error lists before it says how many more there are.
const maxNamesListed = 10

// Resolve returns the snapshot of meta that at picks.
//
// At most one field of at may be set; more is an error that Is
// ErrInvalid. A snapshot id, tag or branch the table does not have is an
// error that Is ErrNotFound and names some of those it has; so is a time
// before the table's first snapshot, and the error gives that snapshot's
// time. A tag asked for as a branch, or a branch as a tag, is an error
// that Is ErrInvalid and says which it is.
//
// Time picks the snapshot that the main branch pointed to at that
// instant: the newest entry of the snapshot log (the main branch's
// history) at or before it, to the millisecond. A table whose metadata
// has no snapshot log is read through the ancestry of its current
// snapshot instead.
//
// A table without snapshots has nothing to read: Resolve returns nil
// and no error for the zero AsOf, which a query answers with no rows,
// and an error that Is ErrNotFound for any other.
func Resolve(meta table.Metadata, at AsOf) (*table.Snapshot, error) {
	if set := at.set(); len(set) > 1 {
		return nil, invalid("read as of one of a snapshot id, a time, a tag or a branch, not several (got %s)",
			strings.Join(set, ", "))
	}
	if meta == nil {
		return nil, invalid("there is no table metadata to read")
	}
	if len(meta.Snapshots()) == 0 {
		if at.IsZero() {
			return nil, nil
		}
		return nil, notFound("the table has no snapshots yet, so there is no %s to read", at)
	}
	switch {
	case at.SnapshotID != 0:
		return snapshotByID(meta, at.SnapshotID)
	case !at.Time.IsZero():
		return snapshotAsOfTime(meta, at.Time)
	case at.Tag != "":
		return snapshotByRef(meta, at.Tag, table.TagRef)
	case at.Branch != "":
		return snapshotByRef(meta, at.Branch, table.BranchRef)
	}
	// The current snapshot; nil when the main branch has been removed,
	// which reads as an empty table.
	return meta.CurrentSnapshot(), nil
}

func snapshotByID(meta table.Metadata, id int64) (*table.Snapshot, error) {
	if s := meta.SnapshotByID(id); s != nil {
		return s, nil
	}
	snaps := slices.Clone(meta.Snapshots())
	slices.SortFunc(snaps, func(a, b table.Snapshot) int {
		if c := cmp.Compare(b.TimestampMs, a.TimestampMs); c != 0 {
			return c
		}
		return cmp.Compare(b.SequenceNumber, a.SequenceNumber)
	})
	ids := make([]string, 0, min(len(snaps), maxNamesListed))
	for i, s := range snaps {
		if i == maxNamesListed {
			break
		}
		ids = append(ids, fmt.Sprint(s.SnapshotID))
	}
	more := ""
	if len(snaps) > maxNamesListed {
		more = fmt.Sprintf(" and %d older", len(snaps)-maxNamesListed)
	}
	return nil, notFound("the table has no snapshot %d (its snapshots, newest first, are %s%s)",
		id, strings.Join(ids, ", "), more)
}

// snapshotAsOfTime returns the snapshot the main branch pointed to at t.
func snapshotAsOfTime(meta table.Metadata, t time.Time) (*table.Snapshot, error) {
	log := slices.Collect(meta.SnapshotLogs())
	if len(log) == 0 {
		log = ancestryLog(meta)
	}
	if len(log) == 0 {
		return nil, notFound("the table's main branch has no history, so there is no snapshot as of %s", formatMillis(t))
	}
	ms := t.UnixMilli()
	var (
		best, first table.SnapshotLogEntry
		found       bool
	)
	// The log is in commit order, but clocks may have skewed between
	// writers: take the newest entry at or before t, wherever it is.
	for i, e := range log {
		if i == 0 || e.TimestampMs < first.TimestampMs {
			first = e
		}
		if e.TimestampMs <= ms && (!found || e.TimestampMs >= best.TimestampMs) {
			best, found = e, true
		}
	}
	if !found {
		return nil, notFound("there is no snapshot as of %s: the table's first snapshot, %d, was committed at %s",
			formatMillis(t), first.SnapshotID, formatMillis(time.UnixMilli(first.TimestampMs)))
	}
	s := meta.SnapshotByID(best.SnapshotID)
	if s == nil {
		return nil, notFound("the snapshot current at %s, %d, has expired and can no longer be read",
			formatMillis(t), best.SnapshotID)
	}
	return s, nil
}

// ancestryLog builds a snapshot log from the current snapshot's
// ancestors, oldest first, for metadata that has no log.
func ancestryLog(meta table.Metadata) []table.SnapshotLogEntry {
	var log []table.SnapshotLogEntry
	seen := map[int64]bool{}
	for s := meta.CurrentSnapshot(); s != nil && !seen[s.SnapshotID]; {
		seen[s.SnapshotID] = true
		log = append(log, table.SnapshotLogEntry{SnapshotID: s.SnapshotID, TimestampMs: s.TimestampMs})
		if s.ParentSnapshotID == nil {
			break
		}
		s = meta.SnapshotByID(*s.ParentSnapshotID)
	}
	slices.Reverse(log)
	return log
}

// snapshotByRef returns the snapshot of the tag or branch name, which
// must be of type want.
func snapshotByRef(meta table.Metadata, name string, want table.RefType) (*table.Snapshot, error) {
	var names []string
	for n, ref := range meta.Refs() {
		if n == name {
			if ref.SnapshotRefType != want {
				return nil, invalid("%q is a %s, not a %s; read it as a %s", name, ref.SnapshotRefType, want, ref.SnapshotRefType)
			}
			s := meta.SnapshotByID(ref.SnapshotID)
			if s == nil {
				return nil, notFound("the %s %q points to snapshot %d, which the table does not have", want, name, ref.SnapshotID)
			}
			return s, nil
		}
		if ref.SnapshotRefType == want {
			names = append(names, n)
		}
	}
	plural := string(want) + "s"
	if want == table.BranchRef {
		plural = "branches"
	}
	if len(names) == 0 {
		return nil, notFound("the table has no %s %q (it has no %s)", want, name, plural)
	}
	slices.Sort(names)
	listed := names[:min(len(names), maxNamesListed)]
	quoted := make([]string, len(listed))
	for i, n := range listed {
		quoted[i] = fmt.Sprintf("%q", n)
	}
	more := ""
	if len(names) > len(listed) {
		more = fmt.Sprintf(" and %d more", len(names)-len(listed))
	}
	return nil, notFound("the table has no %s %q (its %s are %s%s)", want, name, plural, strings.Join(quoted, ", "), more)
}

// formatMillis writes t in UTC in RFC 3339 with milliseconds, the
// precision of snapshot times.
func formatMillis(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000Z07:00")
}
