// Package dedup drops the records of a Kafka partition whose key was seen
// within a horizon, exactly the same way however often the pipeline
// restarts, and keeps that state as files a table's commits reference.
//
// It is pure computation and encoding: no I/O, no Kafka, no table format.
//
// # The rule
//
// Each Kafka partition has a clock: the newest Kafka timestamp among its
// records so far (the timestamps are in the log, so the clock at any offset
// is the same on every replay). A record with key k, at a clock of c once
// its own timestamp is counted, is a duplicate when a record with key k
// was kept, earlier in the partition, at a clock of c - horizon or later.
// Otherwise it is kept, and k is remembered at c.
//
// The decision depends only on the partition's records before it, in log
// order: never on when the pipeline was restarted, how its work was split
// into commits, or which node consumed what. That is what makes it exactly
// once: the state at an offset is a function of the log up to it, and
// the commits carry that state (see Manifest).
//
// Keys seen on other partitions are not consulted: records that may
// duplicate each other must share a Kafka partition, as records with the
// same Kafka key do, and as a producer's retries do.
//
// # State as files
//
// A Partition remembers the keys it kept within the horizon. After each
// segment a worker takes the Delta of its partitions: the keys kept since
// the last one and each partition's clock. The table writer lists those
// files in a Manifest, merges small files into bigger ones (Compact), and
// leaves out files whose every key is past the horizon. Load rebuilds the
// partitions' state from the files of a manifest plus the deltas not yet
// in it: the union of their keys, each at its newest clock, minus those
// past the horizon of the newest clock.
package dedup

import (
	"encoding/binary"
	"math"

	"github.com/zeebo/xxh3"
)

// Key is a record's dedup key: a 128-bit hash of its key values. Two
// different keys share a hash with a probability of about n²/2¹²⁹ among n
// keys: never, in practice.
type Key [16]byte

// Hasher builds Keys from a record's key values, value by value, each
// tagged with its type, so that no two different value lists encode the
// same. It is used by one goroutine.
type Hasher struct{ buf []byte }

// Value tags.
const (
	tagNull byte = iota + 1
	tagBool
	tagInt
	tagUint
	tagDouble
	tagString
	tagBytes
	tagTimestamp
	tagDuration
)

// Reset starts a new key.
func (h *Hasher) Reset() { h.buf = h.buf[:0] }

// Null appends a null.
func (h *Hasher) Null() { h.buf = append(h.buf, tagNull) }

// Bool appends a boolean.
func (h *Hasher) Bool(b bool) {
	v := byte(0)
	if b {
		v = 1
	}
	h.buf = append(h.buf, tagBool, v)
}

// Int appends a signed integer.
func (h *Hasher) Int(v int64) { h.fixed(tagInt, uint64(v)) }

// Uint appends an unsigned integer.
func (h *Hasher) Uint(v uint64) { h.fixed(tagUint, v) }

// Double appends a float. All NaNs are one value, and so are 0 and -0.
func (h *Hasher) Double(v float64) {
	switch {
	case v != v:
		v = math.NaN()
	case v == 0:
		v = 0
	}
	h.fixed(tagDouble, math.Float64bits(v))
}

// String appends a string.
func (h *Hasher) String(s string) { h.bytes(tagString, s) }

// Bytes appends a byte string.
func (h *Hasher) Bytes(b []byte) { h.bytes(tagBytes, string(b)) }

// Timestamp appends an instant, in Unix nanoseconds.
func (h *Hasher) Timestamp(ns int64) { h.fixed(tagTimestamp, uint64(ns)) }

// Duration appends a duration, in nanoseconds.
func (h *Hasher) Duration(ns int64) { h.fixed(tagDuration, uint64(ns)) }

func (h *Hasher) fixed(tag byte, v uint64) {
	h.buf = append(h.buf, tag)
	h.buf = binary.LittleEndian.AppendUint64(h.buf, v)
}

func (h *Hasher) bytes(tag byte, s string) {
	h.buf = append(h.buf, tag)
	h.buf = binary.AppendUvarint(h.buf, uint64(len(s)))
	h.buf = append(h.buf, s...)
}

// Sum returns the key of the values appended since Reset.
func (h *Hasher) Sum() Key {
	u := xxh3.Hash128(h.buf)
	var k Key
	binary.LittleEndian.PutUint64(k[:8], u.Lo)
	binary.LittleEndian.PutUint64(k[8:], u.Hi)
	return k
}

// NoClock is the clock of a partition that has seen no record.
const NoClock = math.MinInt64

// Partition is the dedup state of one Kafka partition: its clock and the
// keys it kept within the horizon of it. It is used by one goroutine.
type Partition struct {
	id      string
	horizon int64
	clock   int64
	seen    map[Key]int64
	// added are the keys kept since the last Delta; touched says whether
	// a record was checked since (the clock may have moved).
	added   []Entry
	touched bool
	// swept is the number of keys after the last sweep.
	swept int
}

// Entry is a kept key and the partition's clock when it was kept.
type Entry struct {
	Key Key
	At  int64
}

// NewPartition makes the empty state of partition id, with a horizon in
// the unit of the clock (floe uses microseconds).
func NewPartition(id string, horizon int64) *Partition {
	return &Partition{id: id, horizon: horizon, clock: NoClock, seen: map[Key]int64{}}
}

// ID returns the partition's id.
func (p *Partition) ID() string { return p.id }

// Clock returns the partition's clock (NoClock before any record).
func (p *Partition) Clock() int64 { return p.clock }

// Len returns the number of keys held, including some past the horizon
// not swept yet.
func (p *Partition) Len() int { return len(p.seen) }

// cutoff is the oldest clock a kept key may have to still count.
func cutoff(clock, horizon int64) int64 {
	if clock < math.MinInt64+horizon {
		return math.MinInt64
	}
	return clock - horizon
}

// Check decides on the record with key k and Kafka timestamp ts:
// duplicate, or kept (and then remembered).
func (p *Partition) Check(k Key, ts int64) (duplicate bool) {
	p.clock = max(p.clock, ts)
	p.touched = true
	if at, ok := p.seen[k]; ok && at >= cutoff(p.clock, p.horizon) {
		return true
	}
	p.seen[k] = p.clock
	p.added = append(p.added, Entry{Key: k, At: p.clock})
	if len(p.seen) >= 2*p.swept+4096 {
		p.sweep()
	}
	return false
}

// sweep forgets the keys past the horizon. Check ignores them anyway: a
// sweep changes no decision, only memory.
func (p *Partition) sweep() {
	c := cutoff(p.clock, p.horizon)
	for k, at := range p.seen {
		if at < c {
			delete(p.seen, k)
		}
	}
	p.swept = len(p.seen)
}

// Section is one partition's part of a state file: its clock when the
// file was written and the keys the file holds for it.
type Section struct {
	ID    string
	Clock int64
	Keys  []Entry
}

// Delta returns the partitions' keys kept since their last Delta, with
// their clocks: one section per partition that checked a record since (an
// empty one if it kept nothing: its clock may have moved). It returns nil
// when no partition did.
func Delta(parts []*Partition) []Section {
	var out []Section
	for _, p := range parts {
		if !p.touched {
			continue
		}
		out = append(out, Section{ID: p.id, Clock: p.clock, Keys: p.added})
		p.added, p.touched = nil, false
	}
	return out
}

// Load rebuilds the state of partition ids from clocks (a manifest's) and
// the sections of every file that holds them (the manifest's files and the
// deltas after it, in any order; a section of another partition is
// skipped): each partition's clock is the newest of all, and it holds each
// key at its newest clock, unless that is past the horizon. A partition
// with nothing starts empty.
func Load(ids []string, horizon int64, clocks map[string]int64, sections []Section) map[string]*Partition {
	out := make(map[string]*Partition, len(ids))
	for _, id := range ids {
		p := NewPartition(id, horizon)
		if c, ok := clocks[id]; ok {
			p.clock = c
		}
		out[id] = p
	}
	for _, s := range sections {
		p := out[s.ID]
		if p == nil {
			continue
		}
		p.clock = max(p.clock, s.Clock)
		for _, e := range s.Keys {
			if at, ok := p.seen[e.Key]; !ok || e.At > at {
				p.seen[e.Key] = e.At
			}
		}
	}
	for _, p := range out {
		p.sweep()
	}
	return out
}

// Merge joins sections into one per partition, in the order of first
// appearance: each key at its newest clock, and the keys past the horizon
// of clocks[id] (the partition's clock as the caller knows it; the
// sections' own newest if it knows none) left out.
func Merge(horizon int64, sections []Section, clocks map[string]int64) []Section {
	type acc struct {
		clock int64
		keys  map[Key]int64
	}
	var order []string
	byID := map[string]*acc{}
	for _, s := range sections {
		a := byID[s.ID]
		if a == nil {
			a = &acc{clock: NoClock, keys: map[Key]int64{}}
			byID[s.ID] = a
			order = append(order, s.ID)
		}
		a.clock = max(a.clock, s.Clock)
		for _, e := range s.Keys {
			if at, ok := a.keys[e.Key]; !ok || e.At > at {
				a.keys[e.Key] = e.At
			}
		}
	}
	out := make([]Section, 0, len(order))
	for _, id := range order {
		a := byID[id]
		clock := a.clock
		if c, ok := clocks[id]; ok {
			clock = max(clock, c)
		}
		c := cutoff(clock, horizon)
		s := Section{ID: id, Clock: a.clock, Keys: make([]Entry, 0, len(a.keys))}
		for k, at := range a.keys {
			if at >= c {
				s.Keys = append(s.Keys, Entry{Key: k, At: at})
			}
		}
		sortEntries(s.Keys)
		out = append(out, s)
	}
	return out
}
