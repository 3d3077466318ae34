package commit

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"

	"github.com/apache/iceberg-go/table"
)

// Summary property keys floe writes on every snapshot it commits.
const (
	PropPipeline = "floe.pipeline"
	PropOffsets  = "floe.offsets"
	PropCommitID = "floe.commit-id"
	PropEpoch    = "floe.epoch"
	PropState    = "floe.state"
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

// TableOffsets returns the offsets of the newest snapshot in the main
// branch's ancestry that carries floe.offsets for pipeline (DESIGN §4 rule 1).
// found is false when no snapshot does: the pipeline starts from its
// configured start position.
func TableOffsets(tbl *table.Table, pipeline string) (off Offsets, snapshotID int64, found bool, err error) {
	meta := tbl.Metadata()
	snap := meta.CurrentSnapshot()
	for snap != nil {
		if snap.Summary != nil {
			props := snap.Summary.Properties
			if v, ok := props[PropOffsets]; ok && props[PropPipeline] == pipeline {
				off, err := ParseOffsets(v)
				if err != nil {
					return nil, 0, false, fmt.Errorf("snapshot %d: %w", snap.SnapshotID, err)
				}
				return off, snap.SnapshotID, true, nil
			}
		}
		if snap.ParentSnapshotID == nil {
			break
		}
		snap = meta.SnapshotByID(*snap.ParentSnapshotID)
	}
	return Offsets{}, 0, false, nil
}

// FindCommit returns the id of the snapshot whose summary carries commitID,
// searching every snapshot in the table's metadata.
func FindCommit(tbl *table.Table, commitID string) (int64, bool) {
	for _, s := range tbl.Metadata().Snapshots() {
		if s.Summary != nil && s.Summary.Properties[PropCommitID] == commitID {
			return s.SnapshotID, true
		}
	}
	return 0, false
}
