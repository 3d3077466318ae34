package commit

import (
	"fmt"
	"maps"
	"slices"
)

// AdoptTable makes the ledger follow a table that no longer agrees with
// it: the table writer proposes it when a table's offsets are behind the
// ledger's (another engine rolled the table back, or a dead-letter table
// was recreated), or when they cut through pending segments (another
// writer committed part of what the ledger holds). Iceberg is the truth:
// the ledger takes the table's offsets as they are, even where that moves
// them backwards.
type AdoptTable struct {
	Table      string  `json:"table"`
	Pipeline   string  `json:"pipeline"`
	SnapshotID int64   `json:"snapshot_id"`
	Offsets    Offsets `json:"offsets"`
}

// adoptTable applies AdoptTable. What it does, and why each step:
//
//  1. The table's committed offsets become exactly the reported ones
//     (partitions the table does not name keep the ledger's value: the
//     table has no opinion on them). Offsets moved backwards are listed in
//     the result's Behind.
//  2. Every pending segment of the pipeline is dropped, for every table it
//     feeds, and each table's accepted end falls back to its committed
//     offsets. A pending entry of the adopted table no longer starts where
//     the table ends, so it can never be committed; entries of the other
//     tables could be, but dropping them keeps invariant 3 (no pending
//     entry ends past the next expected offset) and costs only a re-read.
//     The dropped segments' files become orphans; their records are
//     consumed again.
//  3. Every partition of the pipeline moves its next expected offset to the
//     lowest committed offset over the pipeline's tables, which is where a
//     restarted pipeline would seek. Where that changes it, the epoch grows
//     by one with the owner unchanged: the owner's run ends (its
//     in-flight proposals are now stale) and restarts from the new offset,
//     routing records to each table only past that table's own offset.
//
// Adoption is rare (an operator's action on the table) and re-reading is
// cheap next to a wedged pipeline, so it favours simplicity over saving a
// re-read.
func (s *state) adoptTable(c AdoptTable) ApplyResult {
	if c.Table == "" || c.Pipeline == "" || !validOffsets(c.Offsets) {
		return badCommand("adopt_table needs a table, a pipeline and valid offsets")
	}
	ts, ok := s.tables[c.Table]
	if ok && ts.pipeline != c.Pipeline {
		return failed(fmt.Errorf("%w: table %q is fed by %q, not %q", ErrPipelineMismatch, c.Table, ts.pipeline, c.Pipeline))
	}
	if !ok {
		ts = tableState{pipeline: c.Pipeline, committed: Offsets{}, end: Offsets{}}
	}
	var res ApplyResult
	committed := ts.committed.Clone()
	for _, k := range offsetKeys(c.Offsets) {
		got, _ := c.Offsets.Get(k.topic, k.partition)
		if have, ok := committed.Get(k.topic, k.partition); ok && got < have {
			res.Behind = append(res.Behind, OffsetRegressionError{Table: c.Table, Topic: k.topic, Partition: k.partition, Have: have, Got: got})
		}
		committed.Set(k.topic, k.partition, got)
	}
	ts.committed, ts.snapshotID = committed, c.SnapshotID
	s.tables[c.Table] = ts

	for _, id := range slices.Sorted(maps.Keys(s.segments)) {
		if s.segments[id].pipeline == c.Pipeline {
			res.Dropped = append(res.Dropped, id)
			delete(s.segments, id)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(s.tables)) {
		if t := s.tables[name]; t.pipeline == c.Pipeline {
			t.pending, t.end = nil, t.committed.Clone()
			s.tables[name] = t
		}
	}
	lowest := s.lowestEnds(map[string]bool{c.Pipeline: true})
	for _, pk := range sortedKeys(lowest) {
		ps := s.partitions[pk]
		if ps.hasNext && ps.next == lowest[pk] {
			continue
		}
		if ps.hasNext {
			ps.epoch++
			res.Moved = append(res.Moved, pk)
		}
		ps.next, ps.hasNext = lowest[pk], true
		s.partitions[pk] = ps
	}
	return res
}
