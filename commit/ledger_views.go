package commit

import (
	"maps"
	"slices"
)

// TableView is what the ledger knows of one table.
type TableView struct {
	Table      string
	Pipeline   string
	SnapshotID int64
	// Committed are the offsets last known committed; End where the
	// accepted offsets end (Committed raised by every pending entry).
	Committed, End  Offsets
	PendingSegments int
	PendingRecords  int64
}

// Tables returns every table the ledger knows, sorted by name.
func (l *Ledger) Tables() []TableView {
	l.mu.RLock()
	defer l.mu.RUnlock()
	out := make([]TableView, 0, len(l.mu.tables))
	for _, name := range slices.Sorted(maps.Keys(l.mu.tables)) {
		ts := l.mu.tables[name]
		v := TableView{
			Table: name, Pipeline: ts.pipeline, SnapshotID: ts.snapshotID,
			Committed: ts.committed.Clone(), End: ts.end.Clone(), PendingSegments: len(ts.pending),
		}
		for _, id := range ts.pending {
			e, _ := l.mu.segments[id].entry(name)
			v.PendingRecords += e.Records
		}
		out = append(out, v)
	}
	return out
}

// TableEnd returns where table's accepted offsets end: a segment's entry
// for the table must start there.
func (l *Ledger) TableEnd(table string) Offsets {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.mu.tables[table].end.Clone()
}

// EndBelowNext returns the first partition, in topic and partition order,
// on which table's accepted offsets end below the partition's next expected
// offset, with the two offsets; ok is false when there is none. Both are
// read at one point of the log: read one after the other, a segment
// accepted in between moves the next expected offset past an end read
// before it, and the table seems to end below it.
func (l *Ledger) EndBelowNext(pipeline, table string) (topic string, partition int32, end, next int64, ok bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	ts := l.mu.tables[table]
	for _, k := range offsetKeys(ts.end) {
		e, _ := ts.end.Get(k.topic, k.partition)
		ps := l.mu.partitions[PartitionKey{pipeline, k.topic, k.partition}]
		if ps.hasNext && e < ps.next {
			return k.topic, k.partition, e, ps.next, true
		}
	}
	return "", 0, 0, 0, false
}

// LastIndex returns the index of the last entry applied.
func (l *Ledger) LastIndex() uint64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.mu.lastIndex
}

// Owned returns the partitions of pipeline owned by node, with their epochs.
func (l *Ledger) Owned(pipeline, node string) map[PartitionKey]uint64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	out := map[PartitionKey]uint64{}
	for k, ps := range l.mu.partitions {
		if k.Pipeline == pipeline && ps.owner == node {
			out[k] = ps.epoch
		}
	}
	return out
}

// IsMember reports whether id is a member of the cluster.
func (l *Ledger) IsMember(id string) bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	_, ok := l.mu.members[id]
	return ok
}
