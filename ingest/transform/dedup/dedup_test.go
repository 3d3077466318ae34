package dedup

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// refPartition is the rule of the package doc written directly: the
// partition's clock and, per key, the clock it was last kept at. It never
// forgets a key.
type refPartition struct {
	clock int64
	kept  map[Key]int64
}

func newRef() *refPartition { return &refPartition{clock: NoClock, kept: map[Key]int64{}} }

// within reports whether a key kept at clock at counts at clock c with the
// horizon h, that is at >= c-h in exact arithmetic. It needs at <= c, which
// holds because a partition's clock never goes back; then c-at fits a
// uint64 whatever the values.
func within(at, c, h int64) bool {
	return at <= c && uint64(c)-uint64(at) <= uint64(h)
}

func (r *refPartition) check(k Key, ts, horizon int64) bool {
	r.clock = max(r.clock, ts)
	if at, ok := r.kept[k]; ok && within(at, r.clock, horizon) {
		return true
	}
	r.kept[k] = r.clock
	return false
}

// live returns the kept keys that still count at the current clock.
func (r *refPartition) live(horizon int64) map[Key]int64 {
	out := map[Key]int64{}
	for k, at := range r.kept {
		if within(at, r.clock, horizon) {
			out[k] = at
		}
	}
	return out
}

type record struct {
	part int
	key  Key
	ts   int64
}

func keyOf(i int) Key {
	var h Hasher
	h.Int(int64(i))
	return h.Sum()
}

// genStream returns n records over parts partitions and keys keys. Each
// partition's timestamps mostly move forward by up to step; some are a
// little behind the partition's newest, and some far behind it.
func genStream(r *rand.Rand, parts, keys, n int, step int64) []record {
	front := make([]int64, parts)
	for i := range front {
		front[i] = 1_000_000 + r.Int64N(1000)
	}
	out := make([]record, n)
	for i := range out {
		p := r.IntN(parts)
		var ts int64
		switch x := r.IntN(100); {
		case x < 80:
			front[p] += r.Int64N(step + 1)
			ts = front[p]
		case x < 95:
			ts = front[p] - r.Int64N(2*step+1)
		default:
			ts = front[p] - r.Int64N(100*step+1)
		}
		out[i] = record{part: p, key: keyOf(r.IntN(keys)), ts: ts}
	}
	return out
}

// reference returns the decision of the rule for every record of stream.
func reference(stream []record, parts int, horizon int64) []bool {
	refs := make([]*refPartition, parts)
	for i := range refs {
		refs[i] = newRef()
	}
	out := make([]bool, len(stream))
	for i, rec := range stream {
		out[i] = refs[rec.part].check(rec.key, rec.ts, horizon)
	}
	return out
}

func partIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("topic/%d", i)
	}
	return ids
}

// value is one key value for the Hasher tests.
type value struct {
	kind byte
	i    int64
	u    uint64
	f    float64
	s    string
	b    bool
}

func (v value) add(h *Hasher) {
	switch v.kind {
	case tagNull:
		h.Null()
	case tagBool:
		h.Bool(v.b)
	case tagInt:
		h.Int(v.i)
	case tagUint:
		h.Uint(v.u)
	case tagDouble:
		h.Double(v.f)
	case tagString:
		h.String(v.s)
	case tagBytes:
		h.Bytes([]byte(v.s))
	case tagTimestamp:
		h.Timestamp(v.i)
	case tagDuration:
		h.Duration(v.i)
	default:
		panic("bad kind")
	}
}

// canon names a value up to the equalities the Hasher promises (all NaNs
// are one value, and so are 0 and -0).
func (v value) canon() string {
	switch v.kind {
	case tagNull:
		return "null"
	case tagBool:
		return fmt.Sprint("bool:", v.b)
	case tagInt, tagTimestamp, tagDuration:
		return fmt.Sprintf("%d:%d", v.kind, v.i)
	case tagUint:
		return fmt.Sprint("uint:", v.u)
	case tagDouble:
		switch {
		case math.IsNaN(v.f):
			return "double:NaN"
		case v.f == 0:
			return "double:0"
		}
		return fmt.Sprintf("double:%b", v.f)
	case tagString:
		return fmt.Sprintf("string:%q", v.s)
	case tagBytes:
		return fmt.Sprintf("bytes:%q", v.s)
	}
	panic("bad kind")
}

func sum(vs ...value) Key {
	var h Hasher
	for _, v := range vs {
		v.add(&h)
	}
	return h.Sum()
}

func vNull() value            { return value{kind: tagNull} }
func vBool(b bool) value      { return value{kind: tagBool, b: b} }
func vInt(i int64) value      { return value{kind: tagInt, i: i} }
func vUint(u uint64) value    { return value{kind: tagUint, u: u} }
func vDouble(f float64) value { return value{kind: tagDouble, f: f} }
func vString(s string) value  { return value{kind: tagString, s: s} }
func vBytes(s string) value   { return value{kind: tagBytes, s: s} }
func vTime(i int64) value     { return value{kind: tagTimestamp, i: i} }
func vDur(i int64) value      { return value{kind: tagDuration, i: i} }

func listString(vs []value) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = v.canon()
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// TestHasherDistinguishesValueLists proves that value lists which differ
// in their values, their types or the way the values are split give
// different keys.
func TestHasherDistinguishesValueLists(t *testing.T) {
	lists := [][]value{
		{},
		{vNull()},
		{vNull(), vNull()},
		{vString("")},
		{vBytes("")},
		{vString(""), vString("")},
		{vString("ab"), vString("c")},
		{vString("a"), vString("bc")},
		{vString("abc")},
		{vBytes("abc")},
		{vString("a"), vNull()},
		{vNull(), vString("a")},
		{vInt(1)},
		{vUint(1)},
		{vDouble(1)},
		{vTime(1)},
		{vDur(1)},
		{vBool(true)},
		{vBool(false)},
		{vInt(0)},
		{vUint(0)},
		{vDouble(0)},
		{vTime(0)},
		{vDur(0)},
		{vInt(-1)},
		{vUint(math.MaxUint64)},
		{vDouble(math.NaN())},
		{vDouble(math.Inf(1))},
		{vDouble(math.Inf(-1))},
		{vInt(1), vInt(2)},
		{vInt(2), vInt(1)},
		// A string whose bytes spell another list's encoding.
		{vString(string([]byte{tagInt, 1, 0, 0, 0, 0, 0, 0, 0}))},
		{vString("\x01"), vString("")},
		{vString(""), vString("\x01")},
	}
	seen := map[Key]int{}
	for i, l := range lists {
		k := sum(l...)
		if j, ok := seen[k]; ok {
			t.Fatalf("lists %s and %s give the same key %x", listString(lists[j]), listString(l), k)
		}
		seen[k] = i
	}
}

// TestHasherEqualValues proves that equal value lists give equal keys: on a
// fresh Hasher or a reset one, for every NaN, for 0 and -0, and for nil
// and empty byte strings.
func TestHasherEqualValues(t *testing.T) {
	negZero := math.Copysign(0, -1)
	inf := math.Inf(1)
	tests := []struct {
		name string
		a, b []value
	}{
		{"same string", []value{vString("x"), vInt(7)}, []value{vString("x"), vInt(7)}},
		{"0 and -0", []value{vDouble(0)}, []value{vDouble(negZero)}},
		{"NaN and negative quiet NaN", []value{vDouble(math.NaN())}, []value{vDouble(math.Float64frombits(0xfff8000000000000))}},
		{"NaN and payload NaN", []value{vDouble(math.NaN())}, []value{vDouble(math.Float64frombits(0x7ff0000000000001))}},
		{"NaN and Inf-Inf", []value{vDouble(math.NaN())}, []value{vDouble(inf - inf)}},
		{"NaN among others", []value{vInt(1), vDouble(math.Float64frombits(0x7ff8dead00000000)), vNull()}, []value{vInt(1), vDouble(math.NaN()), vNull()}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if ka, kb := sum(tc.a...), sum(tc.b...); ka != kb {
				t.Fatalf("%s gives %x, %s gives %x", listString(tc.a), ka, listString(tc.b), kb)
			}
		})
	}

	var h Hasher
	h.Bytes(nil)
	nilKey := h.Sum()
	if again := h.Sum(); again != nilKey {
		t.Fatalf("Sum twice without Reset: %x then %x", nilKey, again)
	}
	h.Reset()
	h.Bytes([]byte{})
	if k := h.Sum(); k != nilKey {
		t.Fatalf("Bytes(nil) gives %x, Bytes([]byte{}) gives %x", nilKey, k)
	}
	if neg := sum(vDouble(negZero)); neg == sum(vInt(0)) {
		t.Fatalf("Double(-0) and Int(0) share key %x", neg)
	}
}

// TestHasherRandomLists proves, over random value lists from small
// domains, that two lists give the same key exactly when they hold the
// same values, and that a reused Hasher gives the key a fresh one does.
func TestHasherRandomLists(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	doubles := []float64{0, math.Copysign(0, -1), 1, -1, 0.5, math.NaN(), math.Float64frombits(0x7ff0000000000001), math.Inf(1)}
	strs := []string{"", "a", "b", "ab", "ba", "aa", "\x00", "\x06"}
	randValue := func() value {
		switch tag := byte(1 + r.IntN(int(tagDuration))); tag {
		case tagNull:
			return vNull()
		case tagBool:
			return vBool(r.IntN(2) == 1)
		case tagInt, tagTimestamp, tagDuration:
			return value{kind: tag, i: r.Int64N(3) - 1}
		case tagUint:
			return vUint(r.Uint64N(3))
		case tagDouble:
			return vDouble(doubles[r.IntN(len(doubles))])
		default:
			return value{kind: tag, s: strs[r.IntN(len(strs))]}
		}
	}
	byCanon := map[string]Key{}
	byKey := map[Key]string{}
	var reused Hasher
	for range 20000 {
		vs := make([]value, r.IntN(4))
		for i := range vs {
			vs[i] = randValue()
		}
		c := listString(vs)
		k := sum(vs...)
		reused.Reset()
		for _, v := range vs {
			v.add(&reused)
		}
		if rk := reused.Sum(); rk != k {
			t.Fatalf("%s: reused Hasher gives %x, fresh one %x", c, rk, k)
		}
		if prev, ok := byCanon[c]; ok && prev != k {
			t.Fatalf("%s gives %x and %x", c, prev, k)
		}
		if prev, ok := byKey[k]; ok && prev != c {
			t.Fatalf("%s and %s share key %x", prev, c, k)
		}
		byCanon[c], byKey[k] = k, c
	}
	if len(byCanon) < 1000 {
		t.Fatalf("only %d distinct lists generated", len(byCanon))
	}
}

// TestCheckMatchesRule proves that Partition.Check decides every record of
// random streams as the rule of the package doc does, for several
// horizons including 0, with out-of-order and far-late timestamps, and
// that Clock follows the newest timestamp.
func TestCheckMatchesRule(t *testing.T) {
	tests := []struct {
		name     string
		parts    int
		keys     int
		n        int
		step     int64
		horizons []int64
	}{
		{"one partition few keys", 1, 5, 3000, 3, []int64{0, 1, 3, 10, 100}},
		{"several partitions", 4, 20, 5000, 5, []int64{0, 2, 10, 50, 1000}},
		{"equal timestamps", 3, 8, 3000, 1, []int64{0, 1, 2}},
		{"wide steps", 2, 50, 5000, 100, []int64{0, 99, 100, 101, 5000}},
		{"horizon beyond the span", 2, 10, 2000, 7, []int64{math.MaxInt64}},
	}
	for _, tc := range tests {
		for _, h := range tc.horizons {
			t.Run(fmt.Sprintf("%s/h=%d", tc.name, h), func(t *testing.T) {
				r := rand.New(rand.NewPCG(uint64(h), uint64(tc.n)))
				stream := genStream(r, tc.parts, tc.keys, tc.n, tc.step)
				want := reference(stream, tc.parts, h)
				parts := make([]*Partition, tc.parts)
				refs := make([]*refPartition, tc.parts)
				for i := range parts {
					parts[i] = NewPartition(fmt.Sprint(i), h)
					refs[i] = newRef()
					if c := parts[i].Clock(); c != NoClock {
						t.Fatalf("new partition has clock %d, want NoClock", c)
					}
				}
				dups := 0
				for i, rec := range stream {
					refs[rec.part].check(rec.key, rec.ts, h)
					if got := parts[rec.part].Check(rec.key, rec.ts); got != want[i] {
						t.Fatalf("record %d (partition %d, ts %d): duplicate=%v, rule says %v", i, rec.part, rec.ts, got, want[i])
					}
					if got, w := parts[rec.part].Clock(), refs[rec.part].clock; got != w {
						t.Fatalf("record %d: clock %d, want %d", i, got, w)
					}
					if want[i] {
						dups++
					}
				}
				if dups == 0 || dups == len(stream) {
					t.Fatalf("%d duplicates among %d records: the stream does not exercise both outcomes", dups, len(stream))
				}
			})
		}
	}
}

// TestCheckExtremeTimestamps proves that the rule holds at the ends of the
// int64 range, where c-horizon would overflow.
func TestCheckExtremeTimestamps(t *testing.T) {
	k, j := keyOf(1), keyOf(2)
	type step struct {
		key  Key
		ts   int64
		want bool
	}
	tests := []struct {
		name    string
		horizon int64
		steps   []step
	}{
		{"min timestamp", 5, []step{{k, math.MinInt64, false}, {k, math.MinInt64, true}, {k, math.MinInt64 + 5, true}, {k, math.MinInt64 + 6, false}}},
		{"min timestamp horizon 0", 0, []step{{k, math.MinInt64, false}, {k, math.MinInt64, true}, {k, math.MinInt64 + 1, false}}},
		{"max horizon", math.MaxInt64, []step{{k, math.MinInt64, false}, {k, -1, true}, {j, 0, false}, {k, 0, false}, {j, math.MaxInt64, true}}},
		{"max timestamp", 10, []step{{k, math.MaxInt64 - 10, false}, {k, math.MaxInt64, true}, {j, math.MaxInt64, false}, {j, 0, true}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := NewPartition("p", tc.horizon)
			ref := newRef()
			for i, s := range tc.steps {
				if w := ref.check(s.key, s.ts, tc.horizon); w != s.want {
					t.Fatalf("step %d: the test's expectation %v disagrees with the rule %v", i, s.want, w)
				}
				if got := p.Check(s.key, s.ts); got != s.want {
					t.Fatalf("step %d (ts %d): duplicate=%v, want %v", i, s.ts, got, s.want)
				}
			}
		})
	}
}

// TestSweepChangesNoDecision proves, on a partition that keeps far more
// than 10000 distinct keys so that it sweeps many times, that the sweeps
// forget keys past the horizon and change no decision, and never forget a
// key still within it.
func TestSweepChangesNoDecision(t *testing.T) {
	const horizon = 500
	r := rand.New(rand.NewPCG(7, 7))
	p := NewPartition("p", horizon)
	ref := newRef()
	var recent []int
	next, ts := 0, int64(0)
	sweeps, dups, rekept := 0, 0, 0
	for i := range 60000 {
		var id int
		switch x := r.IntN(100); {
		case x < 25 && len(recent) > 0:
			id = recent[len(recent)-1-r.IntN(min(len(recent), 300))]
		case x < 35 && next > 0:
			id = r.IntN(next) // mostly past the horizon
		default:
			id = next
			next++
		}
		recent = append(recent, id)
		if r.IntN(10) == 0 {
			ts += 1 + r.Int64N(3)
		}
		rts := ts
		if r.IntN(20) == 0 {
			rts = ts - r.Int64N(2*horizon)
		}
		k := keyOf(id)
		before := p.Len()
		want := ref.check(k, rts, horizon)
		if got := p.Check(k, rts); got != want {
			t.Fatalf("record %d (key #%d, ts %d): duplicate=%v, rule says %v", i, id, rts, got, want)
		}
		if p.Len() < before {
			sweeps++
		}
		if want {
			dups++
		} else if id < next-1 {
			rekept++
		}
	}
	if next <= 10000 {
		t.Fatalf("only %d distinct keys", next)
	}
	if sweeps < 2 || dups == 0 || rekept == 0 {
		t.Fatalf("sweeps=%d duplicates=%d keys kept again=%d: the stream does not exercise sweeping", sweeps, dups, rekept)
	}
	live := ref.live(horizon)
	for k, at := range live {
		if got, ok := p.seen[k]; !ok || got != at {
			t.Fatalf("key %x live at %d: partition holds %d (held=%v)", k, at, got, ok)
		}
	}
	if p.Len() >= len(ref.kept) {
		t.Fatalf("partition holds %d keys, as many as were ever kept (%d): nothing was swept", p.Len(), len(ref.kept))
	}
}

// TestDelta proves that Delta returns, per partition that checked a record
// since the last Delta, its clock and exactly the keys kept since, an empty
// section for a partition that kept nothing, and nil when no partition
// checked anything.
func TestDelta(t *testing.T) {
	a, b, c := NewPartition("a", 10), NewPartition("b", 10), NewPartition("c", 10)
	parts := []*Partition{a, b, c}
	if d := Delta(parts); d != nil {
		t.Fatalf("Delta of untouched partitions: %+v, want nil", d)
	}
	k1, k2 := keyOf(1), keyOf(2)
	a.Check(k1, 100)
	a.Check(k2, 105)
	a.Check(k1, 103) // duplicate, clock stays 105
	b.Check(k1, 50)
	d := Delta(parts)
	want := []Section{
		{ID: "a", Clock: 105, Keys: []Entry{{k1, 100}, {k2, 105}}},
		{ID: "b", Clock: 50, Keys: []Entry{{k1, 50}}},
	}
	if !sectionsEqual(d, want) {
		t.Fatalf("first Delta %+v, want %+v", d, want)
	}
	if d := Delta(parts); d != nil {
		t.Fatalf("Delta right after Delta: %+v, want nil", d)
	}
	a.Check(k2, 112) // duplicate, moves the clock
	c.Check(k2, 1)
	d = Delta(parts)
	want = []Section{
		{ID: "a", Clock: 112},
		{ID: "c", Clock: 1, Keys: []Entry{{k2, 1}}},
	}
	if !sectionsEqual(d, want) {
		t.Fatalf("second Delta %+v, want %+v", d, want)
	}
	// Keys returned by a Delta are not changed by later checks.
	a.Check(keyOf(3), 113)
	if len(d[0].Keys) != 0 {
		t.Fatalf("returned section changed after a later Check: %+v", d[0])
	}
}

// TestLoad proves the rebuild Load's doc states: each partition's clock is
// the newest of the clocks and its sections, it holds each key at its
// newest clock unless past the horizon, sections of other partitions are
// skipped, and a partition with nothing starts empty.
func TestLoad(t *testing.T) {
	k1, k2, k3, k4 := keyOf(1), keyOf(2), keyOf(3), keyOf(4)
	clocks := map[string]int64{"a": 100, "b": 40, "zz": 9999}
	sections := []Section{
		{ID: "a", Clock: 90, Keys: []Entry{{k1, 80}, {k2, 95}}},
		{ID: "b", Clock: 60, Keys: []Entry{{k1, 55}}},
		{ID: "zz", Clock: 5000, Keys: []Entry{{k4, 5000}}},
		{ID: "a", Clock: 120, Keys: []Entry{{k1, 115}, {k3, 109}}},
		{ID: "a", Clock: 70, Keys: []Entry{{k2, 70}, {k4, 109}}},
	}
	got := Load([]string{"a", "b", "c"}, 10, clocks, sections)
	if len(got) != 3 {
		t.Fatalf("Load returned %d partitions, want 3", len(got))
	}
	tests := []struct {
		id    string
		clock int64
		keys  map[Key]int64
	}{
		// a: clock 120, cutoff 110: k1 at 115 stays, k2 at 95 and k3,k4 at 109 are past.
		{"a", 120, map[Key]int64{k1: 115}},
		// b: clock 60 (section newer than manifest), cutoff 50.
		{"b", 60, map[Key]int64{k1: 55}},
		{"c", NoClock, map[Key]int64{}},
	}
	for _, tc := range tests {
		p := got[tc.id]
		if p == nil || p.ID() != tc.id {
			t.Fatalf("partition %q missing or misnamed: %+v", tc.id, p)
		}
		if p.Clock() != tc.clock {
			t.Fatalf("partition %q clock %d, want %d", tc.id, p.Clock(), tc.clock)
		}
		if p.Len() != len(tc.keys) {
			t.Fatalf("partition %q holds %d keys %v, want %v", tc.id, p.Len(), p.seen, tc.keys)
		}
		for k, at := range tc.keys {
			if p.seen[k] != at {
				t.Fatalf("partition %q holds key %x at %d, want %d", tc.id, k, p.seen[k], at)
			}
		}
	}
	// The rebuilt partition decides as one that saw the records.
	a := got["a"]
	if !a.Check(k1, 121) {
		t.Fatalf("key kept at 115 is not a duplicate at clock 121 with horizon 10")
	}
	if a.Check(k2, 121) {
		t.Fatalf("key last kept at 95 is a duplicate at clock 121 with horizon 10")
	}
	if d := Delta([]*Partition{got["a"], got["b"], got["c"]}); len(d) != 1 || d[0].ID != "a" || len(d[0].Keys) != 1 || d[0].Keys[0] != (Entry{k2, 121}) {
		t.Fatalf("Delta after Load holds %+v, want only a's key kept since", d)
	}
}

// TestMerge proves that Merge joins sections into one per partition in the
// order of first appearance, keeps each key at its newest clock, and leaves
// out keys past the horizon of the caller's clock, or of the sections' own
// newest clock when the caller knows none or an older one.
func TestMerge(t *testing.T) {
	k1, k2, k3, k4 := keyOf(1), keyOf(2), keyOf(3), keyOf(4)
	sections := []Section{
		{ID: "b", Clock: 50, Keys: []Entry{{k1, 41}, {k2, 30}, {k4, 40}}},
		{ID: "a", Clock: 20, Keys: []Entry{{k1, 10}}},
		{ID: "b", Clock: 45, Keys: []Entry{{k2, 44}, {k3, 39}}},
		{ID: "c", Clock: 300},
		{ID: "a", Clock: 25, Keys: []Entry{{k1, 25}, {k2, 5}, {k3, 20}, {k4, 19}}},
		{ID: "d", Clock: 100, Keys: []Entry{{k1, 95}}},
	}
	clocks := map[string]int64{"a": 30, "b": 10, "d": 200}
	got := Merge(10, sections, clocks)
	want := []Section{
		// b: own newest 50 beats the caller's 10: cutoff 40.
		{ID: "b", Clock: 50, Keys: []Entry{{k1, 41}, {k2, 44}, {k4, 40}}},
		// a: caller's 30: cutoff 20.
		{ID: "a", Clock: 25, Keys: []Entry{{k1, 25}, {k3, 20}}},
		{ID: "c", Clock: 300},
		// d: caller's 200: everything past.
		{ID: "d", Clock: 100},
	}
	if !sectionsEqualUnordered(got, want) {
		t.Fatalf("Merge = %+v, want %+v", got, want)
	}
	if got := Merge(10, nil, nil); len(got) != 0 {
		t.Fatalf("Merge of nothing = %+v", got)
	}
}

// sectionsEqual compares sections, entries in order; nil and empty key
// lists are equal.
func sectionsEqual(a, b []Section) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].ID != b[i].ID || a[i].Clock != b[i].Clock || !slices.Equal(a[i].Keys, b[i].Keys) {
			return false
		}
	}
	return true
}

// sectionsEqualUnordered compares sections in order, and each one's
// entries as sets.
func sectionsEqualUnordered(a, b []Section) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].ID != b[i].ID || a[i].Clock != b[i].Clock || len(a[i].Keys) != len(b[i].Keys) {
			return false
		}
		m := map[Entry]bool{}
		for _, e := range a[i].Keys {
			m[e] = true
		}
		for _, e := range b[i].Keys {
			if !m[e] {
				return false
			}
		}
	}
	return true
}

// pipeline is a table writer and its workers as the package doc describes
// them: partitions checking records, deltas accepted after each segment,
// a manifest committing some of them, compaction and expiry.
type pipeline struct {
	t       *testing.T
	r       *rand.Rand
	ids     []string
	horizon int64
	parts   []*Partition
	m       *Manifest
	files   map[string][]byte // path -> encoded file, for the manifest's files
	pending []pendingDelta    // accepted, not yet in the manifest
	seq     int

	compactions, expired, maxLevel, restarts, crashes int
}

type pendingDelta struct {
	path string
	b    []byte
}

func (p *pipeline) decode(b []byte) []Section {
	p.t.Helper()
	s, err := Decode(b)
	if err != nil {
		p.t.Fatalf("Decode of a file Encode wrote: %v", err)
	}
	return s
}

// accept takes the Delta of the partitions, writes it, and reads it back.
func (p *pipeline) accept() {
	secs := Delta(p.parts)
	b := Encode(secs)
	if back := p.decode(b); !sectionsEqual(back, secs) {
		p.t.Fatalf("delta %+v decodes to %+v", secs, back)
	}
	p.seq++
	p.pending = append(p.pending, pendingDelta{path: fmt.Sprintf("delta-%d", p.seq), b: b})
}

// commit lists the oldest n pending deltas in the manifest, expires, and
// compacts while there is something to compact.
func (p *pipeline) commit(n int) {
	for _, d := range p.pending[:n] {
		p.m.Add(d.path, 0, p.decode(d.b))
		p.files[d.path] = d.b
	}
	p.pending = p.pending[n:]
	listed := map[string]bool{}
	for _, f := range p.m.Files {
		listed[f.Path] = true
	}
	for path := range p.files {
		if !listed[path] {
			delete(p.files, path) // a delta without keys is not listed
		}
	}
	for _, path := range p.m.Expire(p.horizon) {
		if _, ok := p.files[path]; !ok {
			p.t.Fatalf("Expire returned %q, not a listed file", path)
		}
		delete(p.files, path)
		p.expired++
	}
	for range 1000 {
		files, level := p.m.Compaction()
		if files == nil {
			return
		}
		var secs []Section
		var old []string
		for _, f := range files {
			b, ok := p.files[f.Path]
			if !ok {
				p.t.Fatalf("Compaction returned %q, not a listed file", f.Path)
			}
			secs = append(secs, p.decode(b)...)
			old = append(old, f.Path)
		}
		merged := Merge(p.horizon, secs, p.m.Clocks)
		b := Encode(merged)
		p.seq++
		path := fmt.Sprintf("L%d-%d", level, p.seq)
		p.m.Replace(old, path, level, p.decode(b))
		for _, o := range old {
			delete(p.files, o)
		}
		if slices.Contains(p.m.Paths(), path) {
			p.files[path] = b
		}
		p.compactions++
		p.maxLevel = max(p.maxLevel, level)
	}
	p.t.Fatalf("Compaction still returns files after 1000 rounds")
}

// restart rebuilds the partitions from the manifest (as read back from
// its JSON) and the pending deltas, in random order.
func (p *pipeline) restart() {
	b, err := p.m.Marshal()
	if err != nil {
		p.t.Fatalf("Marshal: %v", err)
	}
	if p.m, err = ParseManifest(b); err != nil {
		p.t.Fatalf("ParseManifest of Marshal: %v", err)
	}
	var secs []Section
	for _, f := range p.m.Files {
		fb, ok := p.files[f.Path]
		if !ok {
			p.t.Fatalf("manifest lists %q, which was not written", f.Path)
		}
		secs = append(secs, p.decode(fb)...)
	}
	for _, d := range p.pending {
		secs = append(secs, p.decode(d.b)...)
	}
	p.r.Shuffle(len(secs), func(i, j int) { secs[i], secs[j] = secs[j], secs[i] })
	loaded := Load(p.ids, p.horizon, p.m.Clocks, secs)
	for i, id := range p.ids {
		p.parts[i] = loaded[id]
	}
}

// TestExactlyOnceAcrossRestarts proves the package's central promise: a
// pipeline that processes a stream in segments, writes deltas, commits
// them to a manifest at random points, compacts and expires its files,
// crashes (losing the segment in flight) and restarts (rebuilding with
// Load from the manifest and the deltas accepted after it), decides every
// record, replays included, as one partition that never restarted does.
// After each rebuild every partition's clock is the uninterrupted one and
// it holds exactly the keys still within the horizon, at their clocks.
func TestExactlyOnceAcrossRestarts(t *testing.T) {
	const nparts = 4
	total := pipeline{}
	for _, c := range []struct {
		h    int64
		keys int
	}{{0, 40}, {3, 40}, {40, 40}, {400, 40}, {1 << 40, 5000}} {
		h := c.h
		for seed := uint64(1); seed <= 6; seed++ {
			t.Run(fmt.Sprintf("h=%d/seed=%d", h, seed), func(t *testing.T) {
				r := rand.New(rand.NewPCG(seed, uint64(h)))
				stream := genStream(r, nparts, c.keys, 3000, 4)
				want := reference(stream, nparts, h)
				p := &pipeline{t: t, r: r, ids: partIDs(nparts), horizon: h, m: NewManifest(), files: map[string][]byte{}}
				p.parts = make([]*Partition, nparts)
				for i, id := range p.ids {
					p.parts[i] = NewPartition(id, h)
				}
				// shadow follows the accepted records with the rule.
				shadow := make([]*refPartition, nparts)
				for i := range shadow {
					shadow[i] = newRef()
				}
				verify := func(pos int) {
					for i, part := range p.parts {
						s := shadow[i]
						if part.Clock() != s.clock {
							t.Fatalf("after rebuild at record %d: partition %s clock %d, want %d", pos, p.ids[i], part.Clock(), s.clock)
						}
						live := s.live(h)
						if part.Len() > len(live) {
							t.Fatalf("after rebuild at record %d: partition %s holds %d keys, only %d within the horizon", pos, p.ids[i], part.Len(), len(live))
						}
						for k, at := range live {
							if got, ok := part.seen[k]; !ok || got != at {
								t.Fatalf("after rebuild at record %d: partition %s holds key %x at %d (held=%v), want %d", pos, p.ids[i], k, got, ok, at)
							}
						}
					}
				}
				pos := 0
				for pos < len(stream) {
					end := min(pos+1+r.IntN(40), len(stream))
					for i := pos; i < end; i++ {
						rec := stream[i]
						if got := p.parts[rec.part].Check(rec.key, rec.ts); got != want[i] {
							t.Fatalf("record %d (partition %d, ts %d): duplicate=%v, uninterrupted run says %v (restarts %d, crashes %d)", i, rec.part, rec.ts, got, want[i], p.restarts, p.crashes)
						}
					}
					if r.IntN(12) == 0 {
						// Crash before the segment is accepted: replay it.
						p.crashes++
						p.restart()
						verify(pos)
						continue
					}
					p.accept()
					for i := pos; i < end; i++ {
						shadow[stream[i].part].check(stream[i].key, stream[i].ts, h)
					}
					pos = end
					if len(p.pending) > 0 && r.IntN(3) == 0 {
						p.commit(1 + r.IntN(len(p.pending)))
					}
					if r.IntN(10) == 0 {
						p.restarts++
						p.restart()
						verify(pos)
					}
				}
				total.compactions += p.compactions
				total.expired += p.expired
				total.maxLevel = max(total.maxLevel, p.maxLevel)
				total.restarts += p.restarts
				total.crashes += p.crashes
			})
		}
	}
	if total.compactions == 0 || total.maxLevel < 2 || total.expired == 0 || total.restarts == 0 || total.crashes == 0 {
		t.Fatalf("compactions=%d max level=%d expired=%d restarts=%d crashes=%d: the runs do not exercise every step",
			total.compactions, total.maxLevel, total.expired, total.restarts, total.crashes)
	}
}
