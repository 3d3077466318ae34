package window

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// memStore is a Store backed by a map, written like the table would be:
// Deletes removed, Upserts stored (their Accs encoded, as in the hidden
// state column). It checks what is written on the way.
type memStore struct {
	t     testing.TB
	spec  Spec
	aggs  Aggs
	rows  map[WindowKey]storedRow
	loads int
}

type storedRow struct {
	end, rev, events int64
	accs             []byte
}

func newMemStore(t testing.TB, spec Spec, aggs Aggs) *memStore {
	return &memStore{t: t, spec: spec, aggs: aggs, rows: make(map[WindowKey]storedRow)}
}

func (m *memStore) window(k WindowKey, r storedRow) Window {
	accs, err := m.aggs.DecodeAccs(r.accs)
	if err != nil {
		m.t.Fatalf("stored accumulators of %v: %v", k, err)
	}
	return Window{Group: k.Group, Start: k.Start, End: r.end, Revision: r.rev, Events: r.events, Accs: accs}
}

func (m *memStore) Load(group string, lo, hi int64) ([]Window, error) {
	m.loads++
	if m.spec.Kind != Session {
		if hi != m.spec.End(lo) {
			m.t.Errorf("Load(%q, %d, %d): hi is not lo's end", group, lo, hi)
		}
		k := WindowKey{group, lo}
		if r, ok := m.rows[k]; ok {
			return []Window{m.window(k, r)}, nil
		}
		return nil, nil
	}
	var out []Window
	for k, r := range m.rows {
		if k.Group == group && k.Start <= hi && r.end >= lo {
			out = append(out, m.window(k, r))
		}
	}
	slices.SortFunc(out, func(a, b Window) int { return cmpInt(a.Start, b.Start) })
	return out, nil
}

// write applies ch like the table writer would, checking it.
func (m *memStore) write(ch Changes) {
	m.t.Helper()
	seen := make(map[WindowKey]bool)
	for _, d := range ch.Deletes {
		if _, ok := m.rows[d]; !ok {
			m.t.Errorf("delete of %v, which was never written", d)
		}
		delete(m.rows, d)
		seen[d] = true
	}
	for i, u := range ch.Upserts {
		k := u.Key()
		if seen[k] {
			m.t.Errorf("%v upserted twice or both deleted and upserted", k)
		}
		seen[k] = true
		if i > 0 && cmpKey(ch.Upserts[i-1].Group, ch.Upserts[i-1].Start, u.Group, u.Start) >= 0 {
			m.t.Errorf("upserts out of order at %v", k)
		}
		old, ok := m.rows[k]
		switch {
		case m.spec.Kind != Session && ok && u.Revision != old.rev+1:
			m.t.Errorf("%v: revision %d after %d", k, u.Revision, old.rev)
		case ok && u.Revision <= old.rev:
			m.t.Errorf("%v: revision %d after %d", k, u.Revision, old.rev)
		case !ok && m.spec.Kind != Session && u.Revision != 1:
			m.t.Errorf("%v: first revision %d", k, u.Revision)
		case u.Revision < 1:
			m.t.Errorf("%v: revision %d", k, u.Revision)
		}
		m.rows[k] = storedRow{end: u.End, rev: u.Revision, events: u.Events, accs: m.aggs.AppendBinary(nil, u.Accs)}
	}
	if m.spec.Kind == Session {
		// Stored sessions of a group never overlap or touch.
		// of the groups written.
		groups := make(map[string]bool)
		for _, u := range ch.Upserts {
			groups[u.Group] = true
		}
		for g := range groups {
			var ks []WindowKey
			for k := range m.rows {
				if k.Group == g {
					ks = append(ks, k)
				}
			}
			slices.SortFunc(ks, func(a, b WindowKey) int { return cmpInt(a.Start, b.Start) })
			for i := 1; i < len(ks); i++ {
				if prev := m.rows[ks[i-1]]; ks[i].Start <= prev.end {
					m.t.Errorf("stored sessions %q [%d, %d) and [%d, ...) touch", g, ks[i-1].Start, prev.end, ks[i].Start)
				}
			}
		}
	}
}

func (m *memStore) all() []Window {
	var out []Window
	for k, r := range m.rows {
		out = append(out, m.window(k, r))
	}
	slices.SortFunc(out, func(a, b Window) int { return cmpKey(a.Group, a.Start, b.Group, b.Start) })
	return out
}

// sameWindows reports the differences between two sorted window lists,
// comparing accumulators by their (deterministic) encoding.
func sameWindows(t testing.TB, aggs Aggs, got, want []Window) {
	t.Helper()
	n := 0
	for i := 0; i < max(len(got), len(want)); i++ {
		var g, w *Window
		if i < len(got) {
			g = &got[i]
		}
		if i < len(want) {
			w = &want[i]
		}
		switch {
		case g == nil:
			t.Errorf("missing window %q [%d, %d)", w.Group, w.Start, w.End)
		case w == nil:
			t.Errorf("extra window %q [%d, %d)", g.Group, g.Start, g.End)
		case g.Group != w.Group || g.Start != w.Start || g.End != w.End || g.Events != w.Events:
			t.Errorf("window %d: got %q [%d, %d) %d events, want %q [%d, %d) %d events", i, g.Group, g.Start, g.End, g.Events, w.Group, w.Start, w.End, w.Events)
		case !bytes.Equal(aggs.AppendBinary(nil, g.Accs), aggs.AppendBinary(nil, w.Accs)):
			t.Errorf("window %q [%d, %d): got %s, want %s", g.Group, g.Start, g.End, results(aggs, g.Accs), results(aggs, w.Accs))
		default:
			continue
		}
		if n++; n > 10 {
			t.Fatalf("too many differences (%d windows, want %d)", len(got), len(want))
		}
	}
}

func results(aggs Aggs, accs Accs) string {
	var b bytes.Buffer
	for i := range aggs {
		v := aggs.Result(accs, i)
		switch {
		case v.Null:
			fmt.Fprintf(&b, " %s=null", aggs[i])
		case aggs[i].ResultKind() == KindInt:
			fmt.Fprintf(&b, " %s=%d", aggs[i], v.Int)
		case aggs[i].ResultKind() == KindFloat:
			fmt.Fprintf(&b, " %s=%v", aggs[i], v.Float)
		default:
			fmt.Fprintf(&b, " %s=%q", aggs[i], v.Bytes)
		}
	}
	return b.String()
}

// testAggs covers every function and input kind.
var testAggs = Aggs{
	{Func: Count, Star: true},
	{Func: Count, In: KindInt},
	{Func: Sum, In: KindInt},
	{Func: Sum, In: KindFloat},
	{Func: Min, In: KindInt},
	{Func: Max, In: KindInt},
	{Func: Min, In: KindFloat},
	{Func: Max, In: KindFloat},
	{Func: Min, In: KindBytes},
	{Func: Max, In: KindBytes},
	{Func: Avg, In: KindInt},
	{Func: Avg, In: KindFloat},
	{Func: ApproxDistinct, In: KindBytes, Precision: 6},
	{Func: ApproxDistinct, In: KindInt},
	{Func: ApproxDistinct, In: KindFloat, Precision: 4},
}

// randVals returns random inputs for testAggs. Floats are integer-valued
// (so float sums are exact in any order), with the odd NaN, ±0 and ±Inf.
func randVals(r *rand.Rand) []Value {
	i := Value{Int: r.Int64N(2001) - 1000, Null: r.IntN(10) == 0}
	f := Value{Float: float64(r.IntN(201) - 100), Null: r.IntN(10) == 0}
	switch r.IntN(40) {
	case 0:
		f.Float = math.NaN()
	case 1:
		f.Float = math.Copysign(0, -1)
	case 2:
		f.Float = math.Inf(1 - 2*r.IntN(2))
	}
	b := Value{Bytes: []byte("abcd"[:r.IntN(4)]), Null: r.IntN(10) == 0}
	if r.IntN(2) == 0 {
		b.Bytes = []byte(fmt.Sprint(r.IntN(300)))
	}
	return []Value{{}, i, i, f, i, i, f, f, b, b, i, f, b, i, f}
}

var testSpecs = []Spec{
	{Kind: Tumbling, Size: 100},
	{Kind: Hopping, Size: 100, Slide: 30},
	{Kind: Session, Gap: 50},
}

// genEvents returns n events in arrival order: times mostly increasing, out
// of order by up to 300, a few very late; and each event's partition.
func genEvents(r *rand.Rand, n int) ([]Event, []int) {
	groups := []string{"", "a", "b", "c", "d"}
	events := make([]Event, n)
	parts := make([]int, n)
	t := int64(r.IntN(2000)) - 1000 // negative times too
	for i := range events {
		t += int64(r.IntN(25))
		ts := t - int64(r.IntN(300))
		if r.IntN(50) == 0 {
			ts = t - int64(r.IntN(20000)) // very late
		}
		events[i] = Event{Group: groups[r.IntN(len(groups))], Ts: ts, Vals: randVals(r)}
		parts[i] = r.IntN(3)
	}
	return events, parts
}
