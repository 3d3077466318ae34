package commit

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/apache/iceberg-go/table"
)

// Summary property keys floe writes on every snapshot it commits.
const (
	PropPipeline = "floe.pipeline"
	PropOffsets  = "floe.offsets"
	PropCommitID = "floe.commit-id"
	PropEpoch    = "floe.epoch"
	PropState    = "floe.state"
	PropDedup    = "floe.dedup"
	// PropEventTimes is a windowed pipeline's newest event time per
	// partition (Unix µs) over everything committed:
	// {"<topic>": {"<partition>": <µs>}}, merged forward by every floe
	// commit.
	PropEventTimes = "floe.event-times"
	// PropWatermark is the newest Kafka record timestamp (epoch millis) the
	// snapshot covers, for freshness measurement by readers.
	PropWatermark = "floe.watermark-ms"
	// PropSkipped lists the offsets the snapshot's offsets move past
	// without their records, because Kafka no longer had them when floe
	// got there (on_data_loss: skip): {"topic":{"partition":[[from,to],...]}},
	// from inclusive, to exclusive. Only the snapshot whose commit covers
	// them carries it; it is not copied forward.
	PropSkipped = "floe.skipped"
)

// Offsets maps topic → partition → the next offset to consume (one past the
// last record covered).
type Offsets map[string]map[int32]int64

// Get returns the offset for a topic-partition and whether it is present.
func (o Offsets) Get(topic string, partition int32) (int64, bool) {
	v, ok := o[topic][partition]
	return v, ok
}

// Set records an offset.
func (o Offsets) Set(topic string, partition int32, off int64) {
	m := o[topic]
	if m == nil {
		m = map[int32]int64{}
		o[topic] = m
	}
	m[partition] = off
}

// Clone returns a deep copy.
func (o Offsets) Clone() Offsets {
	c := make(Offsets, len(o))
	for t, ps := range o {
		m := make(map[int32]int64, len(ps))
		for p, v := range ps {
			m[p] = v
		}
		c[t] = m
	}
	return c
}

// Merge returns a copy of o with every offset of other laid over it.
func (o Offsets) Merge(other Offsets) Offsets {
	c := o.Clone()
	for t, ps := range other {
		for p, v := range ps {
			c.Set(t, p, v)
		}
	}
	return c
}

// Covers reports whether o is at or past every offset in other.
func (o Offsets) Covers(other Offsets) bool {
	for t, ps := range other {
		for p, v := range ps {
			if have, ok := o.Get(t, p); !ok || have < v {
				return false
			}
		}
	}
	return true
}

// Len is the number of topic-partitions.
func (o Offsets) Len() int {
	n := 0
	for _, ps := range o {
		n += len(ps)
	}
	return n
}

// Encode renders the floe.offsets JSON: {"topic":{"0":123}} with sorted keys,
// so equal maps encode to equal strings.
func (o Offsets) Encode() string {
	topics := make([]string, 0, len(o))
	for t := range o {
		topics = append(topics, t)
	}
	sort.Strings(topics)
	buf := []byte{'{'}
	for i, t := range topics {
		if i > 0 {
			buf = append(buf, ',')
		}
		tb, _ := json.Marshal(t)
		buf = append(buf, tb...)
		buf = append(buf, ':', '{')
		parts := make([]int32, 0, len(o[t]))
		for p := range o[t] {
			parts = append(parts, p)
		}
		sort.Slice(parts, func(a, b int) bool { return parts[a] < parts[b] })
		for j, p := range parts {
			if j > 0 {
				buf = append(buf, ',')
			}
			buf = append(buf, '"')
			buf = strconv.AppendInt(buf, int64(p), 10)
			buf = append(buf, '"', ':')
			buf = strconv.AppendInt(buf, o[t][p], 10)
		}
		buf = append(buf, '}')
	}
	buf = append(buf, '}')
	return string(buf)
}

// Skipped maps topic → partition → offset ranges [from, to), in the order
// they were skipped, that floe moved past without reading their records: retention had
// deleted them, or an unclean leader election had replaced them, before floe
// got there. A segment carries the ranges it skipped so that the snapshot
// committing it says so (PropSkipped).
type Skipped map[string]map[int32][][2]int64

// Add records [from, to) for a topic-partition, merging it with the last
// range when they touch. Empty ranges are ignored.
func (s Skipped) Add(topic string, partition int32, from, to int64) {
	if to <= from {
		return
	}
	ps := s[topic]
	if ps == nil {
		ps = map[int32][][2]int64{}
		s[topic] = ps
	}
	rs := ps[partition]
	if n := len(rs); n > 0 && from <= rs[n-1][1] && to >= rs[n-1][0] {
		rs[n-1] = [2]int64{min(from, rs[n-1][0]), max(to, rs[n-1][1])}
		return
	}
	ps[partition] = append(rs, [2]int64{from, to})
}

// Clone returns a deep copy (nil for nil).
func (s Skipped) Clone() Skipped {
	if s == nil {
		return nil
	}
	c := make(Skipped, len(s))
	for t, ps := range s {
		m := make(map[int32][][2]int64, len(ps))
		for p, rs := range ps {
			m[p] = slices.Clone(rs)
		}
		c[t] = m
	}
	return c
}

// Len is the number of ranges.
func (s Skipped) Len() int {
	n := 0
	for _, ps := range s {
		for _, rs := range ps {
			n += len(rs)
		}
	}
	return n
}

// Records is the number of offsets the ranges span.
func (s Skipped) Records() int64 {
	var n int64
	for _, ps := range s {
		for _, rs := range ps {
			for _, r := range rs {
				n += r[1] - r[0]
			}
		}
	}
	return n
}

// Encode renders the floe.skipped JSON with sorted keys, so equal values
// encode to equal strings.
func (s Skipped) Encode() string {
	b, _ := json.Marshal(map[string]map[int32][][2]int64(s)) // map keys are sorted
	return string(b)
}

// ParseOffsets decodes a floe.offsets value.
func ParseOffsets(s string) (Offsets, error) {
	var raw map[string]map[string]int64
	if err := json.Unmarshal([]byte(s), &raw); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadOffsets, err)
	}
	o := make(Offsets, len(raw))
	for t, ps := range raw {
		for ps, v := range ps {
			p, err := strconv.ParseInt(ps, 10, 32)
			if err != nil || p < 0 {
				return nil, fmt.Errorf("%w: partition %q of topic %q is not a partition number", ErrBadOffsets, ps, t)
			}
			if v < 0 {
				return nil, fmt.Errorf("%w: negative offset %d for %s/%d", ErrBadOffsets, v, t, p)
			}
			o.Set(t, int32(p), v)
		}
	}
	return o, nil
}

// TagName is the tag that pins the last snapshot a pipeline committed to a
// table: every floe commit moves it to the snapshot it creates, so snapshot
// expiry (which keeps every snapshot a tag references) cannot remove the
// pipeline's last offsets.
func TagName(pipeline string) string { return "floe-" + pipeline }

// TableOffsets returns the offsets of the newest snapshot in the main
// branch's ancestry that carries floe.offsets for pipeline. found is false
// when no snapshot does and the ancestry is whole (a new table, or one floe
// never wrote for this pipeline): the pipeline starts from its configured
// start position.
//
// When the walk reaches a snapshot whose parent is no longer in the metadata
// (another engine expired it) before finding floe offsets, the table cannot
// say where the pipeline stopped, and the configured start would duplicate
// or lose records. The pipeline's tag (TagName) then stands in: it references
// the last snapshot the pipeline committed, T, which expiry keeps.
//
// Resuming from T's offsets is right exactly when the current data descends
// from T. Every record below T's offsets was committed at or before T; only
// this pipeline commits its records, and each of its commits moves the tag,
// so nothing after T holds records past them. What other engines did since
// (a rewrite_data_files keeps the rows; their own appends and deletes are the
// table's business, as they are without a cut) does not change where the
// pipeline stopped. It is wrong when main was moved back past T (a rollback
// or a restore by another engine): the data then lacks T's records, and
// resuming from T's offsets would lose them.
//
// Descent cannot be proven across the cut, but it can be disproven. T is not
// in what remains of main's history (the walk would have stopped at it), so
// if it were an ancestor of the current snapshot it would be an ancestor of
// the missing parent, hence older than the oldest snapshot that remains, X:
// a lower sequence number (format v1 tables have none; there, a timestamp no
// later than X's). A tag at or past X means main was moved off the pipeline's
// last commit, and TableOffsets refuses. What it cannot see is a rollback to
// before T followed by more commits and an expiry that removed the point
// where main left T's line. An operator who rolls a table back past floe's
// last commit with another engine deletes the tag as well: until the history
// is cut, floe finds the offsets of the snapshot rolled back to by the walk
// (and its next commit tags again); after a cut, it refuses and says how to
// resume.
//
// Where the tag is missing, carries no offsets for the pipeline, or fails the
// check, TableOffsets returns an AncestryCutError (errors.Is ErrAncestryCut).
func TableOffsets(tbl *table.Table, pipeline string) (off Offsets, snapshotID int64, found bool, err error) {
	return tableOffsets(tbl, pipeline, slog.Default())
}

func tableOffsets(tbl *table.Table, pipeline string, log *slog.Logger) (Offsets, int64, bool, error) {
	meta := tbl.Metadata()
	snap := meta.CurrentSnapshot()
	for snap != nil {
		if off, ok, err := snapshotOffsets(snap, pipeline); ok || err != nil {
			return off, snap.SnapshotID, ok, err
		}
		if snap.ParentSnapshotID == nil {
			break
		}
		parent := meta.SnapshotByID(*snap.ParentSnapshotID)
		if parent == nil {
			return offsetsFromTag(tbl, pipeline, snap, log)
		}
		snap = parent
	}
	return Offsets{}, 0, false, nil
}

// offsetsFromTag reads the pipeline's offsets from its tag when main's
// history is cut at oldest (see TableOffsets).
func offsetsFromTag(tbl *table.Table, pipeline string, oldest *table.Snapshot, log *slog.Logger) (Offsets, int64, bool, error) {
	meta := tbl.Metadata()
	tag := TagName(pipeline)
	cut := &AncestryCutError{
		Table: strings.Join(tbl.Identifier(), "."), Pipeline: pipeline,
		SnapshotID: oldest.SnapshotID, MissingParent: *oldest.ParentSnapshotID,
	}
	var tagged *table.Snapshot
	for name, ref := range meta.Refs() {
		if name == tag && ref.SnapshotRefType == table.TagRef {
			tagged = meta.SnapshotByID(ref.SnapshotID)
		}
	}
	if tagged == nil {
		cut.Reason = fmt.Sprintf("there is no tag %q pinning the pipeline's last commit", tag)
		return nil, 0, false, cut
	}
	off, ok, err := snapshotOffsets(tagged, pipeline)
	if err != nil {
		return nil, 0, false, err
	}
	if !ok {
		cut.Reason = fmt.Sprintf("tag %q references snapshot %d, which carries no %s for the pipeline", tag, tagged.SnapshotID, PropOffsets)
		return nil, 0, false, cut
	}
	if !olderThan(tagged, oldest) {
		cut.Reason = fmt.Sprintf("tag %q references snapshot %d, which is not older than snapshot %d: main was moved off the pipeline's last commit (a rollback or restore), so the current data may not hold the records that commit covered",
			tag, tagged.SnapshotID, oldest.SnapshotID)
		return nil, 0, false, cut
	}
	log.Warn("snapshot history cut before the pipeline's last commit; resuming from the offsets its tag pins",
		"table", cut.Table, "pipeline", pipeline, "tag", tag, "snapshot_id", tagged.SnapshotID,
		"oldest_snapshot_id", oldest.SnapshotID, "missing_parent_id", cut.MissingParent)
	return off, tagged.SnapshotID, true, nil
}

// olderThan reports whether a could be an ancestor of b: a lower sequence
// number (format v2 on), or, where neither has one (format v1), an earlier
// or equal timestamp.
func olderThan(a, b *table.Snapshot) bool {
	if a.SequenceNumber > 0 || b.SequenceNumber > 0 {
		return a.SequenceNumber < b.SequenceNumber
	}
	return a.TimestampMs <= b.TimestampMs
}

// TableState returns the floe.state (the transform state's checkpoint) that
// goes with the pipeline's offsets in the table: that of the newest
// snapshot of main's ancestry carrying the pipeline's floe.offsets, empty
// when it has none. Every floe commit carries it forward, maintenance
// included, so it is the head's unless another engine committed since.
func TableState(tbl *table.Table, pipeline string) string {
	return tableProp(tbl, pipeline, PropState)
}

// TableDedup returns the floe.dedup (the manifest of the dedup state) that
// goes with the pipeline's offsets in the table, as TableState does
// floe.state.
func TableDedup(tbl *table.Table, pipeline string) string {
	return tableProp(tbl, pipeline, PropDedup)
}

// TableEventTimes returns the floe.event-times that go with the
// pipeline's offsets in the table (nil when it has none, or they do not
// parse).
func TableEventTimes(tbl *table.Table, pipeline string) Offsets {
	s := tableProp(tbl, pipeline, PropEventTimes)
	if s == "" {
		return nil
	}
	et, err := ParseOffsets(s)
	if err != nil {
		return nil
	}
	return et
}

// MaxMerge returns a copy of o with every value of other that is greater
// (or that o lacks) laid over it.
func (o Offsets) MaxMerge(other Offsets) Offsets {
	c := o.Clone()
	for t, ps := range other {
		for p, v := range ps {
			if old, ok := c.Get(t, p); !ok || v > old {
				c.Set(t, p, v)
			}
		}
	}
	return c
}

// tableProp returns prop of the newest snapshot of main's ancestry that
// carries the pipeline's floe.offsets.
func tableProp(tbl *table.Table, pipeline, prop string) string {
	meta := tbl.Metadata()
	for snap := meta.CurrentSnapshot(); snap != nil; {
		if snap.Summary != nil && snap.Summary.Properties[PropPipeline] == pipeline {
			if _, ok := snap.Summary.Properties[PropOffsets]; ok {
				return snap.Summary.Properties[prop]
			}
		}
		if snap.ParentSnapshotID == nil {
			break
		}
		snap = meta.SnapshotByID(*snap.ParentSnapshotID)
	}
	return ""
}

// snapshotOffsets returns the floe.offsets of snap if it carries them for
// pipeline.
func snapshotOffsets(snap *table.Snapshot, pipeline string) (Offsets, bool, error) {
	if snap.Summary == nil {
		return nil, false, nil
	}
	props := snap.Summary.Properties
	v, ok := props[PropOffsets]
	if !ok || props[PropPipeline] != pipeline {
		return nil, false, nil
	}
	off, err := ParseOffsets(v)
	if err != nil {
		return nil, false, fmt.Errorf("snapshot %d: %w", snap.SnapshotID, err)
	}
	return off, true, nil
}

// FindCommit returns the id of the snapshot whose summary carries commitID,
// searching the main branch's ancestry only. A snapshot main no longer
// descends from (rolled back, or committed to a side branch) does not count:
// its records are not in the table, so the attempt must be treated as not
// landed and retried.
func FindCommit(tbl *table.Table, commitID string) (int64, bool) {
	meta := tbl.Metadata()
	for s := meta.CurrentSnapshot(); s != nil; {
		if s.Summary != nil && s.Summary.Properties[PropCommitID] == commitID {
			return s.SnapshotID, true
		}
		if s.ParentSnapshotID == nil {
			break
		}
		s = meta.SnapshotByID(*s.ParentSnapshotID)
	}
	return 0, false
}
