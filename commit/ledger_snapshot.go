package commit

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
)

// LedgerSnapshot is a point-in-time capture of a Ledger, for raft's
// FSMSnapshot: Persist writes it, Release is a no-op.
type LedgerSnapshot struct {
	st state
}

// Snapshot captures the state. It copies only the top-level maps (their
// values are never modified in place), so Apply can carry on while the
// capture is persisted.
func (l *Ledger) Snapshot() (*LedgerSnapshot, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return &LedgerSnapshot{st: state{
		lastIndex:  l.mu.lastIndex,
		members:    maps.Clone(l.mu.members),
		partitions: maps.Clone(l.mu.partitions),
		tables:     maps.Clone(l.mu.tables),
		segments:   maps.Clone(l.mu.segments),
	}}, nil
}

// ledgerImageVersion is the format Persist writes and Restore reads.
const ledgerImageVersion = 1

// ledgerImage is the persisted form: every collection a slice sorted by
// key, so equal states encode to equal bytes.
type ledgerImage struct {
	Version    int              `json:"version"`
	LastIndex  uint64           `json:"last_index"`
	Members    []Member         `json:"members"`
	Partitions []partitionImage `json:"partitions"`
	Tables     []tableImage     `json:"tables"`
	Segments   []segmentImage   `json:"segments"`
}

type partitionImage struct {
	PartitionKey
	Owner string `json:"owner,omitempty"`
	Epoch uint64 `json:"epoch"`
	Next  *int64 `json:"next,omitempty"`
}

type tableImage struct {
	Table      string  `json:"table"`
	Pipeline   string  `json:"pipeline"`
	Committed  Offsets `json:"committed"`
	End        Offsets `json:"end"`
	SnapshotID int64   `json:"snapshot_id"`
}

type segmentImage struct {
	ID       uint64         `json:"id"`
	Pipeline string         `json:"pipeline"`
	Owner    string         `json:"owner"`
	Epochs   Epochs         `json:"epochs"`
	Entries  []SegmentEntry `json:"entries"`
}

// Persist writes the captured state as versioned JSON.
func (s *LedgerSnapshot) Persist(w io.Writer) error {
	img := ledgerImage{Version: ledgerImageVersion, LastIndex: s.st.lastIndex,
		Members: []Member{}, Partitions: []partitionImage{}, Tables: []tableImage{}, Segments: []segmentImage{}}
	for _, id := range slices.Sorted(maps.Keys(s.st.members)) {
		img.Members = append(img.Members, s.st.members[id])
	}
	for _, k := range sortedKeys(s.st.partitions) {
		ps := s.st.partitions[k]
		pi := partitionImage{PartitionKey: k, Owner: ps.owner, Epoch: ps.epoch}
		if ps.hasNext {
			pi.Next = &ps.next
		}
		img.Partitions = append(img.Partitions, pi)
	}
	for _, name := range slices.Sorted(maps.Keys(s.st.tables)) {
		ts := s.st.tables[name]
		img.Tables = append(img.Tables, tableImage{Table: name, Pipeline: ts.pipeline, Committed: ts.committed, End: ts.end, SnapshotID: ts.snapshotID})
	}
	for _, id := range slices.Sorted(maps.Keys(s.st.segments)) {
		seg := s.st.segments[id]
		img.Segments = append(img.Segments, segmentImage{ID: id, Pipeline: seg.pipeline, Owner: seg.owner, Epochs: seg.epochs, Entries: seg.entries})
	}
	if err := json.NewEncoder(w).Encode(img); err != nil {
		return fmt.Errorf("commit: persist ledger: %w", err)
	}
	return nil
}

// Release is a no-op: the capture holds no resources.
func (s *LedgerSnapshot) Release() {}

// Restore replaces the ledger's state with one written by Persist. On error
// the ledger is unchanged.
func (l *Ledger) Restore(r io.Reader) error {
	var img ledgerImage
	if err := json.NewDecoder(r).Decode(&img); err != nil {
		return fmt.Errorf("%w: %v", ErrBadSnapshot, err)
	}
	st, err := img.state()
	if err != nil {
		return err
	}
	l.mu.Lock()
	l.mu.state = st
	l.notifyLocked()
	l.mu.Unlock()
	return nil
}

func (img *ledgerImage) state() (state, error) {
	bad := func(format string, args ...any) (state, error) {
		return state{}, fmt.Errorf("%w: "+format, append([]any{ErrBadSnapshot}, args...)...)
	}
	if img.Version != ledgerImageVersion {
		return bad("version %d, this build reads %d", img.Version, ledgerImageVersion)
	}
	st := newState()
	st.lastIndex = img.LastIndex
	for _, m := range img.Members {
		if m.ID == "" || st.members[m.ID].ID != "" {
			return bad("empty or repeated member %q", m.ID)
		}
		st.members[m.ID] = m
	}
	for _, pi := range img.Partitions {
		if _, dup := st.partitions[pi.PartitionKey]; dup || !validKey(pi.PartitionKey) {
			return bad("bad or repeated partition %v", pi.PartitionKey)
		}
		ps := partitionState{owner: pi.Owner, epoch: pi.Epoch}
		if pi.Next != nil {
			ps.next, ps.hasNext = *pi.Next, true
		}
		st.partitions[pi.PartitionKey] = ps
	}
	for _, ti := range img.Tables {
		if _, dup := st.tables[ti.Table]; dup || ti.Table == "" {
			return bad("empty or repeated table %q", ti.Table)
		}
		st.tables[ti.Table] = tableState{pipeline: ti.Pipeline, committed: ti.Committed.Clone(), end: ti.End.Clone(), snapshotID: ti.SnapshotID}
	}
	for _, si := range img.Segments {
		if _, dup := st.segments[si.ID]; dup || len(si.Entries) == 0 || si.ID > st.lastIndex {
			return bad("empty, repeated or future segment %d", si.ID)
		}
		entries := sortedEntries(si.Entries)
		for i, e := range entries {
			ts, ok := st.tables[e.Table]
			if !ok || (i > 0 && entries[i-1].Table == e.Table) {
				return bad("segment %d names unknown or repeated table %q", si.ID, e.Table)
			}
			ts.pending = append(ts.pending, si.ID)
			st.tables[e.Table] = ts
		}
		st.segments[si.ID] = &segment{id: si.ID, pipeline: si.Pipeline, owner: si.Owner, epochs: si.Epochs, entries: entries}
	}
	for name, ts := range st.tables {
		slices.Sort(ts.pending)
		st.tables[name] = ts
	}
	return st, nil
}
