package maintain

import (
	"cmp"
	"slices"
	"time"

	"github.com/apache/iceberg-go/table"
)

// Snap is what expiry needs to know of a snapshot.
type Snap struct {
	ID          int64
	TimestampMs int64
}

// SelectExpired returns the ids of the snapshots tiers do not keep at now,
// oldest first. A snapshot of age a falls in the first tier whose For is
// longer than a; that tier keeps it when its Every is 0, or when it is the
// newest snapshot of its Every-long bucket (buckets are aligned to the Unix
// epoch, so a snapshot kept as the newest of its 10 minutes is also the
// newest of its hour when 10 minutes divide an hour, and thinning is stable
// from one run to the next). Snapshots older than the last tier go.
// protected snapshots (the current one, those a branch or tag references)
// are always kept, and do not count as a bucket's newest: a tag does not
// make its bucket's own newest snapshot go.
//
// Keeping the newest of a bucket rather than the oldest means that a query
// as of a moment whose snapshot was removed is answered by the nearest kept
// snapshot before that moment, which held the table's state at the end of
// the previous bucket.
func SelectExpired(snaps []Snap, protected map[int64]bool, now time.Time, tiers []Tier) []int64 {
	nowMs := now.UnixMilli()
	type bucket struct {
		tier int
		n    int64
	}
	newest := map[bucket]Snap{}
	tierOf := func(s Snap) (int, bool) {
		age := time.Duration(nowMs-s.TimestampMs) * time.Millisecond
		for i, t := range tiers {
			if age < t.For.D() {
				return i, true
			}
		}
		return 0, false
	}
	for _, s := range snaps {
		if protected[s.ID] {
			continue
		}
		i, ok := tierOf(s)
		if !ok || tiers[i].Every <= 0 {
			continue
		}
		b := bucket{i, s.TimestampMs / tiers[i].Every.D().Milliseconds()}
		if cur, ok := newest[b]; !ok || s.TimestampMs > cur.TimestampMs || (s.TimestampMs == cur.TimestampMs && s.ID > cur.ID) {
			newest[b] = s
		}
	}
	var out []Snap
	for _, s := range snaps {
		if protected[s.ID] {
			continue
		}
		i, ok := tierOf(s)
		switch {
		case !ok:
			out = append(out, s)
		case tiers[i].Every <= 0:
		default:
			b := bucket{i, s.TimestampMs / tiers[i].Every.D().Milliseconds()}
			if newest[b].ID != s.ID {
				out = append(out, s)
			}
		}
	}
	slices.SortFunc(out, func(a, b Snap) int {
		return cmp.Or(cmp.Compare(a.TimestampMs, b.TimestampMs), cmp.Compare(a.ID, b.ID))
	})
	ids := make([]int64, len(out))
	for i, s := range out {
		ids[i] = s.ID
	}
	return ids
}

// Snaps lists the table's snapshots for SelectExpired.
func Snaps(meta table.Metadata) []Snap {
	all := meta.Snapshots()
	out := make([]Snap, len(all))
	for i, s := range all {
		out[i] = Snap{ID: s.SnapshotID, TimestampMs: s.TimestampMs}
	}
	return out
}

// SnapshotAsOf returns the snapshot that was current at tsMs, or the
// nearest kept snapshot before it when expiry removed that one; nil when
// the table had no snapshot yet at tsMs (or keeps none from before it).
//
// The table's snapshot log says exactly which snapshot was current when,
// but only back to the newest snapshot expiry removed: removing snapshots
// truncates the log there (Iceberg's metadata builders drop every entry
// before a removed one). Before that point the kept snapshots' own
// timestamps stand in: the newest one committed at or before tsMs held the
// table's state at its commit, the nearest state before tsMs that the
// table still has.
func SnapshotAsOf(meta table.Metadata, tsMs int64) *table.Snapshot {
	var log []table.SnapshotLogEntry
	for e := range meta.SnapshotLogs() {
		log = append(log, e)
	}
	if len(log) > 0 && log[0].TimestampMs <= tsMs {
		var id int64
		for _, e := range log {
			if e.TimestampMs > tsMs {
				break
			}
			id = e.SnapshotID
		}
		return meta.SnapshotByID(id)
	}
	var best *table.Snapshot
	for _, s := range meta.Snapshots() {
		if s.TimestampMs <= tsMs && (best == nil || s.TimestampMs > best.TimestampMs) {
			s := s
			best = &s
		}
	}
	return best
}
