package commit

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
)

// PartitionKey names one source partition of one pipeline.
type PartitionKey struct {
	Pipeline  string `json:"pipeline"`
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
}

func (k PartitionKey) String() string {
	return fmt.Sprintf("%s/%s/%d", k.Pipeline, k.Topic, k.Partition)
}

func comparePartitionKeys(a, b PartitionKey) int {
	return cmp.Or(strings.Compare(a.Pipeline, b.Pipeline), strings.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
}

// Epochs maps topic → partition → assignment epoch, in the shape of Offsets.
type Epochs map[string]map[int32]uint64

// Get returns the epoch for a topic-partition and whether it is present.
func (e Epochs) Get(topic string, partition int32) (uint64, bool) {
	v, ok := e[topic][partition]
	return v, ok
}

// Set records an epoch.
func (e Epochs) Set(topic string, partition int32, epoch uint64) {
	m := e[topic]
	if m == nil {
		m = map[int32]uint64{}
		e[topic] = m
	}
	m[partition] = epoch
}

func (e Epochs) clone() Epochs {
	c := make(Epochs, len(e))
	for t, ps := range e {
		c[t] = maps.Clone(ps)
	}
	return c
}

// Member is a node of the cluster as the ledger knows it.
type Member struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	APIAddr  string `json:"api_addr"`
	// LastHeartbeat and JoinedAt are stamped by the proposer, never read
	// from the clock inside Apply.
	LastHeartbeat time.Time `json:"last_heartbeat"`
	JoinedAt      time.Time `json:"joined_at"`
}

// Ownership is a partition's place in the assignment. Owner is empty when
// the partition is unassigned; Epoch counts its owner changes.
type Ownership struct {
	Owner string
	Epoch uint64
}

// SegmentEntry is the part of a segment that belongs to one table: the
// offsets it consumed for that table (From inclusive, To exclusive) and the
// files holding its rows, encoded by the caller.
type SegmentEntry struct {
	Table   string  `json:"table"`
	From    Offsets `json:"from"`
	To      Offsets `json:"to"`
	Records int64   `json:"records"`
	Files   []byte  `json:"files,omitempty"`
	// WatermarkMs is the newest Kafka timestamp among the entry's records,
	// in Unix milliseconds (0: none), for freshness metrics.
	WatermarkMs int64 `json:"watermark_ms,omitempty"`
	// Skipped are offsets the entry covers without records, because Kafka
	// no longer had them (commit.Segment.Skipped).
	Skipped Skipped `json:"skipped,omitempty"`
	// EventTimes are the newest event times per partition of a stateful
	// transform's records (Segment.EventTimes).
	EventTimes Offsets `json:"event_times,omitempty"`
}

// PendingSegment is one table's entry of an accepted, not yet committed
// segment.
type PendingSegment struct {
	// ID is the raft log index at which the segment was accepted: unique,
	// increasing, the same on every replica.
	ID       uint64
	Pipeline string
	Owner    string
	Epochs   Epochs
	SegmentEntry
}

// TableCommit is what the ledger knows a table has committed.
type TableCommit struct {
	Pipeline   string
	Offsets    Offsets
	SnapshotID int64
}

// Ledger is the state machine raft replicates on every floe node (see
// package cluster). It is deterministic and knows nothing of raft: Apply takes the log
// index and the entry's bytes, Snapshot/Restore move the whole state.
//
// What it stores. The members of the cluster; for every source partition
// its owner, its epoch (the number of times its owner has changed, to or
// from unassigned included) and its next expected offset; the segments
// accepted but not yet committed, each split into one entry per table; and
// per table the offsets and snapshot last known committed.
//
// Invariants, each checked after every entry of a random log by
// TestLedgerProperty:
//
//  1. A partition's epoch grows by exactly one each time its owner changes
//     or AdoptTable moves its next expected offset, and never otherwise.
//     Every owner is a member: RemoveMember releases the member's
//     partitions.
//  2. Next expected offsets and committed offsets only grow, except
//     through AdoptTable (see ledger_adopt.go).
//  3. Per table and partition, the pending entries are contiguous and the
//     first starts at the committed offset; none ends past the partition's
//     next expected offset.
//  4. No offset is accepted twice and none is skipped: an accepted segment
//     starts at the next expected offset and each of its entries where its
//     table's accepted offsets ended.
//
// The fencing rules (docs/exactly-once.md, rule 6). A ProposeSegment is accepted only
// if, for every partition it covers,
//
//  1. its epoch is the partition's current epoch (StaleEpochError),
//  2. its owner is the partition's current owner (NotOwnerError),
//  3. it starts at the partition's next expected offset, when one is known,
//     and each table entry starts exactly where that table's accepted
//     offsets end, when known (OffsetGapError).
//
// Accepting moves the next expected offsets to the segment's end; a
// rejected command changes nothing, because every check runs before the
// first write. A segment's partitions share one end (the cut at which the
// node closed the segment) but a table entry may start later than the
// segment: after a recovery, one table of a fan-out can be ahead of
// another, and records before its offset are not routed to it. A table with
// no entry for a partition does not advance, so a segment carries an entry,
// files or not, for every table the partition feeds that is not already
// past the cut.
//
// Why both the epoch and the offset. The offset check alone cannot tell a
// zombie from the owner: when a partition moves, the new owner resumes at
// the next expected offset, which is exactly where the old owner's late
// proposal starts too. Both would pass, and which one's files the table
// gets would depend on arrival order. The owner check alone fails the same
// way when the partition comes back (A → B → A): A's previous incarnation
// has the right name. The epoch names the incarnation. Conversely the epoch
// alone cannot catch what one legitimate owner does wrong within its epoch:
// a proposal retried after its answer was lost would be accepted twice, a
// lost batch would leave a gap. The offset check turns the retry into an
// overlap (OffsetGapError with Got < Want; Want equal to the retry's end
// means the first attempt was accepted) and the loss into a gap.
//
// Leader change. Raft gives the new leader every accepted segment; what it
// may lack is the outcome of the old leader's last commit, which can have
// landed in Iceberg without its CommitSegments reaching the log. The new
// leader reads each table's summary and proposes Reconcile: pending entries
// the table's offsets already cover are dropped (re-committing them would
// duplicate rows), committed offsets are raised, never lowered, and each
// partition's next expected offset is raised to at least the lowest end
// over the pipeline's tables, which is where a restarted pipeline seeks.
// The new leader reconciles before its committers start. After a
// whole-cluster loss the ledger starts empty and Reconcile alone rebuilds
// it from the summaries: Iceberg is the source of truth. Offsets that are
// behind the ledger's (a rolled-back table) are ignored and reported in
// the result, never applied: moving offsets back is an operator's decision.
//
// Determinism. Apply reads only its state and the command: times travel in
// commands (stamped by the proposer), segment ids are log indexes, every
// map is walked in sorted order, and errors carry only command and state
// facts, so every replica returns the same result and two replicas fed the
// same log persist byte-identical snapshots.
//
// Snapshots. Stored values are never modified in place: an update replaces
// a map value, an Offsets or a segment with a new one. Snapshot therefore
// only copies the top-level maps, and Persist encodes them on raft's
// goroutine while Apply carries on. The persisted form is versioned JSON
// with every collection sorted by key; Restore refuses another version.
type Ledger struct {
	mu struct {
		sync.RWMutex
		state
		// changed is closed, and replaced, whenever the state changes.
		changed chan struct{}
	}
}

type partitionState struct {
	owner   string
	epoch   uint64
	next    int64
	hasNext bool
}

type tableState struct {
	pipeline  string
	committed Offsets
	// end is where the table's accepted offsets end: the committed offsets
	// raised by every pending entry's To.
	end        Offsets
	snapshotID int64
	// pending holds the ids of segments with an entry for this table,
	// ascending.
	pending []uint64
}

// segment is immutable once stored; removing an entry replaces it.
type segment struct {
	id       uint64
	pipeline string
	owner    string
	epochs   Epochs
	entries  []SegmentEntry // sorted by table
}

func (s *segment) entry(table string) (SegmentEntry, bool) {
	i, ok := slices.BinarySearchFunc(s.entries, table, func(e SegmentEntry, t string) int { return strings.Compare(e.Table, t) })
	if !ok {
		return SegmentEntry{}, false
	}
	return s.entries[i], true
}

type state struct {
	lastIndex  uint64
	members    map[string]Member
	partitions map[PartitionKey]partitionState
	tables     map[string]tableState
	segments   map[uint64]*segment
}

func newState() state {
	return state{
		members:    map[string]Member{},
		partitions: map[PartitionKey]partitionState{},
		tables:     map[string]tableState{},
		segments:   map[uint64]*segment{},
	}
}

// NewLedger returns an empty ledger.
func NewLedger() *Ledger {
	l := &Ledger{}
	l.mu.state = newState()
	l.mu.changed = make(chan struct{})
	return l
}

// ApplyResult is what Apply returns for every entry. Err is nil when the
// command was applied, else the reason it changed nothing.
type ApplyResult struct {
	Type CommandType
	Err  error
	// SegmentID is the id of an accepted ProposeSegment.
	SegmentID uint64
	// Epochs holds, for Assign, the epoch of every partition named (bumped
	// where the owner changed) and, for RemoveMember, those of the
	// partitions released.
	Epochs map[PartitionKey]uint64
	// Dropped lists, for CommitSegments and Reconcile, the segments that
	// lost an entry because the table's offsets now cover it.
	Dropped []uint64
	// Conflicts lists, for Reconcile, pending segments a table's offsets
	// cover only in part: they stay pending, and committing them will fail
	// with an OffsetGapError an operator must look at.
	Conflicts []uint64
	// Behind lists, for Reconcile, reported offsets lower than the ledger's
	// (ignored: Reconcile never moves committed offsets backwards), and for
	// AdoptTable the offsets it moved backwards.
	Behind []OffsetRegressionError
	// Moved lists, for AdoptTable, the partitions whose next expected
	// offset changed (their epochs were bumped: owners restart there).
	Moved []PartitionKey
}

// Apply applies the log entry at index. It always returns an ApplyResult.
func (l *Ledger) Apply(index uint64, data []byte) any {
	l.mu.Lock()
	defer l.mu.Unlock()
	defer l.notifyLocked()
	return l.mu.apply(index, data)
}

func (l *Ledger) notifyLocked() {
	close(l.mu.changed)
	l.mu.changed = make(chan struct{})
}

// Changed returns a channel that is closed at the next change of the
// ledger (an applied entry or a restored snapshot).
func (l *Ledger) Changed() <-chan struct{} {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.mu.changed
}

func (s *state) apply(index uint64, data []byte) ApplyResult {
	if index <= s.lastIndex {
		return ApplyResult{Err: fmt.Errorf("%w: entry %d after %d", ErrStaleIndex, index, s.lastIndex)}
	}
	s.lastIndex = index
	var env envelope
	if err := json.Unmarshal(data, &env); err != nil {
		return ApplyResult{Err: fmt.Errorf("%w: %v", ErrBadCommand, err)}
	}
	var res ApplyResult
	switch env.Type {
	case CmdAddMember:
		var c AddMember
		res = decodeThen(env.Payload, &c, func() ApplyResult { return s.addMember(c) })
	case CmdRemoveMember:
		var c RemoveMember
		res = decodeThen(env.Payload, &c, func() ApplyResult { return s.removeMember(c) })
	case CmdHeartbeat:
		var c Heartbeat
		res = decodeThen(env.Payload, &c, func() ApplyResult { return s.heartbeat(c) })
	case CmdAssign:
		var c assignWire
		res = decodeThen(env.Payload, &c, func() ApplyResult { return s.assign(c) })
	case CmdProposeSegment:
		var c ProposeSegment
		res = decodeThen(env.Payload, &c, func() ApplyResult { return s.propose(index, c) })
	case CmdCommitSegments:
		var c CommitSegments
		res = decodeThen(env.Payload, &c, func() ApplyResult { return s.commitSegments(c) })
	case CmdReconcile:
		var c Reconcile
		res = decodeThen(env.Payload, &c, func() ApplyResult { return s.reconcile(c) })
	case CmdAdoptTable:
		var c AdoptTable
		res = decodeThen(env.Payload, &c, func() ApplyResult { return s.adoptTable(c) })
	default:
		res = ApplyResult{Err: fmt.Errorf("%w: unknown command type %q", ErrBadCommand, env.Type)}
	}
	res.Type = env.Type
	return res
}

func decodeThen(payload json.RawMessage, v any, f func() ApplyResult) ApplyResult {
	if err := json.Unmarshal(payload, v); err != nil {
		return ApplyResult{Err: fmt.Errorf("%w: %v", ErrBadCommand, err)}
	}
	return f()
}

func failed(err error) ApplyResult { return ApplyResult{Err: err} }

func badCommand(format string, args ...any) ApplyResult {
	return failed(fmt.Errorf("%w: "+format, append([]any{ErrBadCommand}, args...)...))
}

// validTime reports whether t is set and encodes to JSON once in UTC (a
// time that does not would make every later Persist fail).
func validTime(t time.Time) bool {
	y := t.UTC().Year()
	return !t.IsZero() && y >= 1 && y <= 9999
}

func (s *state) addMember(c AddMember) ApplyResult {
	if c.ID == "" || c.RaftAddr == "" || !validTime(c.At) {
		return badCommand("add member needs an id, a raft address and a time")
	}
	at := c.At.UTC()
	m, ok := s.members[c.ID]
	if !ok {
		m = Member{ID: c.ID, JoinedAt: at}
	}
	m.RaftAddr, m.APIAddr = c.RaftAddr, c.APIAddr
	if at.After(m.LastHeartbeat) {
		m.LastHeartbeat = at
	}
	s.members[c.ID] = m
	return ApplyResult{}
}

func (s *state) removeMember(c RemoveMember) ApplyResult {
	if _, ok := s.members[c.ID]; !ok {
		return failed(fmt.Errorf("%w: %q", ErrUnknownMember, c.ID))
	}
	released := map[PartitionKey]uint64{}
	for _, k := range sortedKeys(s.partitions) {
		ps := s.partitions[k]
		if ps.owner == c.ID {
			ps.owner, ps.epoch = "", ps.epoch+1
			s.partitions[k] = ps
			released[k] = ps.epoch
		}
	}
	delete(s.members, c.ID)
	return ApplyResult{Epochs: released}
}

func (s *state) heartbeat(c Heartbeat) ApplyResult {
	if !validTime(c.At) {
		return badCommand("heartbeat needs a time")
	}
	m, ok := s.members[c.ID]
	if !ok {
		return failed(fmt.Errorf("%w: %q", ErrUnknownMember, c.ID))
	}
	if at := c.At.UTC(); at.After(m.LastHeartbeat) {
		m.LastHeartbeat = at
		s.members[c.ID] = m
	}
	return ApplyResult{}
}

func validKey(k PartitionKey) bool { return k.Pipeline != "" && k.Topic != "" && k.Partition >= 0 }

func (s *state) assign(c assignWire) ApplyResult {
	if len(c.Owners) == 0 {
		return badCommand("assign names no partition")
	}
	seen := map[PartitionKey]bool{}
	for _, o := range c.Owners {
		if !validKey(o.PartitionKey) {
			return badCommand("assign: bad partition %v", o.PartitionKey)
		}
		if seen[o.PartitionKey] {
			return badCommand("assign: partition %v named twice", o.PartitionKey)
		}
		seen[o.PartitionKey] = true
		if _, ok := s.members[o.Owner]; o.Owner != "" && !ok {
			return failed(fmt.Errorf("%w: %q cannot own %v", ErrUnknownMember, o.Owner, o.PartitionKey))
		}
	}
	epochs := make(map[PartitionKey]uint64, len(c.Owners))
	for _, o := range c.Owners {
		ps := s.partitions[o.PartitionKey]
		if ps.owner != o.Owner {
			ps.owner, ps.epoch = o.Owner, ps.epoch+1
			s.partitions[o.PartitionKey] = ps
		}
		epochs[o.PartitionKey] = ps.epoch
	}
	return ApplyResult{Epochs: epochs}
}

// tp is a topic-partition within one pipeline.
type tp struct {
	topic     string
	partition int32
}

func compareTP(a, b tp) int {
	return cmp.Or(strings.Compare(a.topic, b.topic), cmp.Compare(a.partition, b.partition))
}

func offsetKeys(o Offsets) []tp {
	var out []tp
	for t, ps := range o {
		for p := range ps {
			out = append(out, tp{t, p})
		}
	}
	slices.SortFunc(out, compareTP)
	return out
}

func validOffsets(o Offsets) bool {
	for t, ps := range o {
		for p, v := range ps {
			if t == "" || p < 0 || v < 0 {
				return false
			}
		}
	}
	return true
}

func sortedEntries(es []SegmentEntry) []SegmentEntry {
	return slices.SortedFunc(slices.Values(es), func(a, b SegmentEntry) int { return strings.Compare(a.Table, b.Table) })
}

// cut is a segment's range on one partition: the lowest start over its
// table entries, and the end they share.
type cut struct {
	from, to int64
	table    string // the first table, by name, starting at from: for error reports
}

func (c ProposeSegment) validate() (map[tp]cut, ApplyResult, bool) {
	if c.Pipeline == "" || c.Owner == "" || len(c.Tables) == 0 {
		return nil, badCommand("segment needs a pipeline, an owner and a table"), false
	}
	cuts := map[tp]cut{}
	seen := map[string]bool{}
	for _, e := range sortedEntries(c.Tables) {
		if e.Table == "" || seen[e.Table] {
			return nil, badCommand("segment: empty or repeated table %q", e.Table), false
		}
		seen[e.Table] = true
		if e.Records < 0 || !validOffsets(e.From) || !validOffsets(e.To) || e.From.Len() != e.To.Len() || e.To.Len() == 0 {
			return nil, badCommand("segment: bad offsets or record count for table %q", e.Table), false
		}
		for _, k := range offsetKeys(e.From) {
			from, _ := e.From.Get(k.topic, k.partition)
			to, ok := e.To.Get(k.topic, k.partition)
			if !ok || from >= to {
				return nil, badCommand("segment: table %q has no range on %s/%d", e.Table, k.topic, k.partition), false
			}
			cu, ok := cuts[k]
			switch {
			case !ok:
				cu = cut{from: from, to: to, table: e.Table}
			case cu.to != to:
				return nil, badCommand("segment: tables end %s/%d at %d and %d", k.topic, k.partition, cu.to, to), false
			case from < cu.from:
				cu.from, cu.table = from, e.Table
			}
			cuts[k] = cu
		}
	}
	n := 0
	for t, ps := range c.Epochs {
		for p := range ps {
			if _, ok := cuts[tp{t, p}]; !ok {
				return nil, badCommand("segment: epoch for %s/%d, which it does not cover", t, p), false
			}
			n++
		}
	}
	if n != len(cuts) {
		return nil, badCommand("segment: %d partitions covered, %d epochs", len(cuts), n), false
	}
	return cuts, ApplyResult{}, true
}

func (s *state) propose(index uint64, c ProposeSegment) ApplyResult {
	cuts, res, ok := c.validate()
	if !ok {
		return res
	}
	keys := slices.SortedFunc(maps.Keys(cuts), compareTP)
	for _, k := range keys {
		pk := PartitionKey{c.Pipeline, k.topic, k.partition}
		ps := s.partitions[pk]
		epoch, _ := c.Epochs.Get(k.topic, k.partition)
		if epoch != ps.epoch {
			return failed(&StaleEpochError{Pipeline: c.Pipeline, Topic: k.topic, Partition: k.partition, Have: epoch, Want: ps.epoch})
		}
		if ps.owner != c.Owner {
			return failed(&NotOwnerError{Pipeline: c.Pipeline, Topic: k.topic, Partition: k.partition, Owner: ps.owner, Proposer: c.Owner})
		}
		if cu := cuts[k]; ps.hasNext && cu.from != ps.next {
			return failed(&OffsetGapError{Table: cu.table, Topic: k.topic, Partition: k.partition, Want: ps.next, Got: cu.from})
		}
	}
	entries := sortedEntries(c.Tables)
	for _, e := range entries {
		ts, ok := s.tables[e.Table]
		if ok && ts.pipeline != c.Pipeline {
			return failed(fmt.Errorf("%w: table %q is fed by %q, not %q", ErrPipelineMismatch, e.Table, ts.pipeline, c.Pipeline))
		}
		for _, k := range offsetKeys(e.From) {
			from, _ := e.From.Get(k.topic, k.partition)
			if end, ok := ts.end.Get(k.topic, k.partition); ok && end != from {
				return failed(&OffsetGapError{Table: e.Table, Topic: k.topic, Partition: k.partition, Want: end, Got: from})
			}
		}
	}

	for _, k := range keys {
		pk := PartitionKey{c.Pipeline, k.topic, k.partition}
		ps := s.partitions[pk]
		ps.next, ps.hasNext = cuts[k].to, true
		s.partitions[pk] = ps
	}
	for _, e := range entries {
		ts, ok := s.tables[e.Table]
		if !ok {
			ts = tableState{pipeline: c.Pipeline, committed: Offsets{}}
		}
		ts.end = ts.end.Merge(e.To)
		ts.pending = append(slices.Clip(ts.pending), index)
		s.tables[e.Table] = ts
	}
	s.segments[index] = &segment{id: index, pipeline: c.Pipeline, owner: c.Owner, epochs: c.Epochs, entries: entries}
	return ApplyResult{SegmentID: index}
}

// raise returns a copy of a with every offset of b that is higher laid over
// it.
func raise(a, b Offsets) Offsets {
	c := a.Clone()
	for t, ps := range b {
		for p, v := range ps {
			if have, ok := c.Get(t, p); !ok || v > have {
				c.Set(t, p, v)
			}
		}
	}
	return c
}

// claims reports whether committed reaches into the entry's range on some
// partition.
func claims(committed Offsets, e SegmentEntry) bool {
	for t, ps := range e.From {
		for p, from := range ps {
			if c, ok := committed.Get(t, p); ok && c > from {
				return true
			}
		}
	}
	return false
}

func (s *state) commitSegments(c CommitSegments) ApplyResult {
	if c.Table == "" || len(c.Segments) == 0 || !validOffsets(c.Offsets) {
		return badCommand("commit report needs a table, segments and valid offsets")
	}
	ids := slices.Sorted(slices.Values(c.Segments))
	if len(slices.Compact(slices.Clone(ids))) != len(ids) {
		return badCommand("commit report names a segment twice")
	}
	ts := s.tables[c.Table]
	for _, id := range ids {
		seg := s.segments[id]
		if seg == nil {
			return failed(fmt.Errorf("%w: %d", ErrUnknownSegment, id))
		}
		if _, ok := seg.entry(c.Table); !ok {
			return failed(fmt.Errorf("%w: %d has no entry for table %q", ErrUnknownSegment, id, c.Table))
		}
	}
	for _, k := range offsetKeys(c.Offsets) {
		got, _ := c.Offsets.Get(k.topic, k.partition)
		if have, ok := ts.committed.Get(k.topic, k.partition); ok && got < have {
			return failed(&OffsetRegressionError{Table: c.Table, Topic: k.topic, Partition: k.partition, Have: have, Got: got})
		}
	}
	committed := ts.committed.Merge(c.Offsets)
	for _, id := range ids {
		if e, _ := s.segments[id].entry(c.Table); !committed.Covers(e.To) {
			return failed(fmt.Errorf("%w: segment %d of %q ends at %s, committed offsets are %s",
				ErrNotCovered, id, c.Table, e.To.Encode(), committed.Encode()))
		}
	}
	var drop []uint64
	for _, id := range ts.pending {
		e, _ := s.segments[id].entry(c.Table)
		switch {
		case committed.Covers(e.To):
			drop = append(drop, id)
		case claims(committed, e):
			return failed(fmt.Errorf("%w: segment %d of %q spans %s to %s, committed offsets are %s",
				ErrPartialCommit, id, c.Table, e.From.Encode(), e.To.Encode(), committed.Encode()))
		}
	}
	ts.committed, ts.snapshotID = committed, c.SnapshotID
	ts.end = raise(ts.end, committed)
	s.tables[c.Table] = s.dropEntries(c.Table, ts, drop)
	return ApplyResult{Dropped: drop}
}

// dropEntries removes table's entries of the segments in drop and returns
// ts with its pending list updated.
func (s *state) dropEntries(table string, ts tableState, drop []uint64) tableState {
	if len(drop) == 0 {
		return ts
	}
	for _, id := range drop {
		old := s.segments[id]
		entries := slices.DeleteFunc(slices.Clone(old.entries), func(e SegmentEntry) bool { return e.Table == table })
		if len(entries) == 0 {
			delete(s.segments, id)
			continue
		}
		seg := *old
		seg.entries = entries
		s.segments[id] = &seg
	}
	ts.pending = slices.DeleteFunc(slices.Clone(ts.pending), func(id uint64) bool {
		_, found := slices.BinarySearch(drop, id)
		return found
	})
	return ts
}

func (s *state) reconcile(c Reconcile) ApplyResult {
	if len(c.Tables) == 0 {
		return badCommand("reconcile names no table")
	}
	seen := map[string]bool{}
	for _, r := range c.Tables {
		if r.Table == "" || r.Pipeline == "" || seen[r.Table] || !validOffsets(r.Offsets) {
			return badCommand("reconcile: empty, repeated or invalid table %q", r.Table)
		}
		seen[r.Table] = true
		if ts, ok := s.tables[r.Table]; ok && ts.pipeline != r.Pipeline {
			return failed(fmt.Errorf("%w: table %q is fed by %q, not %q", ErrPipelineMismatch, r.Table, ts.pipeline, r.Pipeline))
		}
	}
	reports := slices.SortedFunc(slices.Values(c.Tables), func(a, b ReconciledTable) int { return strings.Compare(a.Table, b.Table) })
	var res ApplyResult
	pipelines := map[string]bool{}
	for _, r := range reports {
		pipelines[r.Pipeline] = true
		ts, ok := s.tables[r.Table]
		if !ok {
			ts = tableState{pipeline: r.Pipeline, committed: Offsets{}, end: Offsets{}}
		}
		for _, k := range offsetKeys(r.Offsets) {
			got, _ := r.Offsets.Get(k.topic, k.partition)
			if have, ok := ts.committed.Get(k.topic, k.partition); ok && got < have {
				res.Behind = append(res.Behind, OffsetRegressionError{Table: r.Table, Topic: k.topic, Partition: k.partition, Have: have, Got: got})
			}
		}
		if r.Offsets.Covers(ts.committed) {
			ts.snapshotID = r.SnapshotID
		}
		ts.committed = raise(ts.committed, r.Offsets)
		ts.end = raise(ts.end, ts.committed)
		var drop []uint64
		for _, id := range ts.pending {
			e, _ := s.segments[id].entry(r.Table)
			switch {
			case ts.committed.Covers(e.To):
				drop = append(drop, id)
			case claims(ts.committed, e):
				res.Conflicts = append(res.Conflicts, id)
			}
		}
		s.tables[r.Table] = s.dropEntries(r.Table, ts, drop)
		res.Dropped = append(res.Dropped, drop...)
	}
	slices.Sort(res.Dropped)
	res.Dropped = slices.Compact(res.Dropped)
	slices.Sort(res.Conflicts)
	res.Conflicts = slices.Compact(res.Conflicts)

	// A restarted pipeline seeks each partition to the lowest end over
	// the tables it feeds; the next expected offset must be at least there.
	lowest := s.lowestEnds(pipelines)
	for _, pk := range sortedKeys(lowest) {
		ps := s.partitions[pk]
		if !ps.hasNext || lowest[pk] > ps.next {
			ps.next, ps.hasNext = lowest[pk], true
			s.partitions[pk] = ps
		}
	}
	return res
}

// lowestEnds returns, for every partition of the given pipelines, the
// lowest end over the tables they feed: where a restarted pipeline seeks.
func (s *state) lowestEnds(pipelines map[string]bool) map[PartitionKey]int64 {
	lowest := map[PartitionKey]int64{}
	for _, name := range slices.Sorted(maps.Keys(s.tables)) {
		ts := s.tables[name]
		if !pipelines[ts.pipeline] {
			continue
		}
		for _, k := range offsetKeys(ts.end) {
			pk := PartitionKey{ts.pipeline, k.topic, k.partition}
			end, _ := ts.end.Get(k.topic, k.partition)
			if low, ok := lowest[pk]; !ok || end < low {
				lowest[pk] = end
			}
		}
	}
	return lowest
}

func sortedKeys[V any](m map[PartitionKey]V) []PartitionKey {
	return slices.SortedFunc(maps.Keys(m), comparePartitionKeys)
}

// Members returns the cluster's members, sorted by id.
func (l *Ledger) Members() []Member {
	l.mu.RLock()
	defer l.mu.RUnlock()
	out := make([]Member, 0, len(l.mu.members))
	for _, id := range slices.Sorted(maps.Keys(l.mu.members)) {
		out = append(out, l.mu.members[id])
	}
	return out
}

// Assignment returns every partition of pipeline the ledger knows, with its
// owner (empty if unassigned) and epoch.
func (l *Ledger) Assignment(pipeline string) map[PartitionKey]Ownership {
	l.mu.RLock()
	defer l.mu.RUnlock()
	out := map[PartitionKey]Ownership{}
	for k, ps := range l.mu.partitions {
		if k.Pipeline == pipeline {
			out[k] = Ownership{Owner: ps.owner, Epoch: ps.epoch}
		}
	}
	return out
}

// NextExpected returns the offset the next segment of a partition must
// start at, and whether one is known.
func (l *Ledger) NextExpected(pipeline, topic string, partition int32) (int64, bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	ps := l.mu.partitions[PartitionKey{pipeline, topic, partition}]
	return ps.next, ps.hasNext
}

// Pending returns table's entries of the accepted, uncommitted segments, in
// acceptance order. The result is a copy.
func (l *Ledger) Pending(table string) []PendingSegment {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.pendingLocked(table)
}

// NextAndPending returns, read at one point of the log, the next expected
// offset of every partition of pipeline that has one and table's pending
// entries (as Pending): what a run of a stateful transform starts from.
func (l *Ledger) NextAndPending(pipeline, table string) (map[PartitionKey]int64, []PendingSegment) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	next := map[PartitionKey]int64{}
	for k, ps := range l.mu.partitions {
		if k.Pipeline == pipeline && ps.hasNext {
			next[k] = ps.next
		}
	}
	return next, l.pendingLocked(table)
}

func (l *Ledger) pendingLocked(table string) []PendingSegment {
	ts := l.mu.tables[table]
	out := make([]PendingSegment, 0, len(ts.pending))
	for _, id := range ts.pending {
		seg := l.mu.segments[id]
		e, _ := seg.entry(table)
		e.From, e.To, e.Files, e.Skipped = e.From.Clone(), e.To.Clone(), slices.Clone(e.Files), e.Skipped.Clone()
		out = append(out, PendingSegment{ID: id, Pipeline: seg.pipeline, Owner: seg.owner, Epochs: seg.epochs.clone(), SegmentEntry: e})
	}
	return out
}

// Committed returns what the ledger knows table has committed, and whether
// it knows the table at all.
func (l *Ledger) Committed(table string) (TableCommit, bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	ts, ok := l.mu.tables[table]
	if !ok {
		return TableCommit{}, false
	}
	return TableCommit{Pipeline: ts.pipeline, Offsets: ts.committed.Clone(), SnapshotID: ts.snapshotID}, true
}
