package commit

import (
	"encoding/json"
	"fmt"
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
