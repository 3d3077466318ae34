package window

import (
	"cmp"
	"fmt"
	"slices"
)

// Event is one input event of Batch.
type Event struct {
	Group string
	Ts    int64
	Vals  []Value
}

// Batch computes the final windows of all events at once, as a batch job
// would, without Partials or State: it is the reference the incremental
// path must equal. Sessions are the connected components of the union of
// the events' [Ts, Ts+Gap) intervals per group, intervals that touch
// included. It returns the windows ordered by group then start, with
// Revision 0.
func Batch(spec Spec, aggs Aggs, events []Event) ([]Window, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	if err := aggs.Validate(); err != nil {
		return nil, err
	}
	for i := range events {
		if err := checkTime(events[i].Ts); err != nil {
			return nil, err
		}
		if len(events[i].Vals) != len(aggs) {
			return nil, fmt.Errorf("window: event %d has %d values for %d aggregates", i, len(events[i].Vals), len(aggs))
		}
	}
	var out []Window
	if spec.Kind == Session {
		sorted := make([]*Event, len(events))
		for i := range events {
			sorted[i] = &events[i]
		}
		slices.SortStableFunc(sorted, func(a, b *Event) int {
			if c := cmp.Compare(a.Group, b.Group); c != 0 {
				return c
			}
			return cmp.Compare(a.Ts, b.Ts)
		})
		var cur *Window
		for _, e := range sorted {
			// Sorted by start, the next interval joins the current
			// component iff it starts at or before the component's end.
			if cur == nil || e.Group != cur.Group || e.Ts > cur.End {
				out = append(out, Window{Group: e.Group, Start: e.Ts, End: e.Ts + spec.Gap, Accs: aggs.New()})
				cur = &out[len(out)-1]
			}
			if err := aggs.Add(cur.Accs, e.Vals); err != nil {
				return nil, err
			}
			cur.End = max(cur.End, e.Ts+spec.Gap)
			cur.Events++
		}
		return out, nil
	}
	byKey := make(map[WindowKey]int)
	var starts []int64
	for i := range events {
		e := &events[i]
		starts = spec.Starts(starts[:0], e.Ts)
		for _, start := range starts {
			k := WindowKey{e.Group, start}
			n, ok := byKey[k]
			if !ok {
				n = len(out)
				byKey[k] = n
				out = append(out, Window{Group: e.Group, Start: start, End: spec.End(start), Accs: aggs.New()})
			}
			if err := aggs.Add(out[n].Accs, e.Vals); err != nil {
				return nil, err
			}
			out[n].Events++
		}
	}
	slices.SortFunc(out, func(a, b Window) int { return cmpKey(a.Group, a.Start, b.Group, b.Start) })
	return out, nil
}
