package window

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestPartialsMerge: partials folded into one by Merge, in any split and
// order, hold the windows one Partials of all the events holds (what a
// table writer relies on when it folds a segment's partials of several
// workers before applying them).
func TestPartialsMerge(t *testing.T) {
	for _, spec := range testSpecs {
		for seed := uint64(1); seed <= 5; seed++ {
			t.Run(fmt.Sprintf("%s/%d", spec.Kind, seed), func(t *testing.T) {
				r := rand.New(rand.NewPCG(seed, 99))
				events, _ := genEvents(r, 500)
				all := NewPartials(spec, testAggs)
				for _, e := range events {
					if err := all.Add(e.Group, e.Ts, e.Vals); err != nil {
						t.Fatal(err)
					}
				}
				k := 2 + r.IntN(5)
				parts := make([]*Partials, k)
				for i := range parts {
					parts[i] = NewPartials(spec, testAggs)
				}
				for _, i := range r.Perm(len(events)) {
					e := events[i]
					if err := parts[r.IntN(k)].Add(e.Group, e.Ts, e.Vals); err != nil {
						t.Fatal(err)
					}
				}
				merged := NewPartials(spec, testAggs)
				for _, i := range r.Perm(k) {
					if err := merged.Merge(parts[i]); err != nil {
						t.Fatal(err)
					}
				}
				var got, want []Window
				merged.Windows(func(w *Window) bool { got = append(got, *w); return true })
				all.Windows(func(w *Window) bool { want = append(want, *w); return true })
				if merged.Len() != len(got) {
					t.Fatalf("Len %d, %d windows", merged.Len(), len(got))
				}
				sameWindows(t, testAggs, got, want)
			})
		}
	}
	if err := NewPartials(testSpecs[0], testAggs).Merge(NewPartials(testSpecs[1], testAggs)); err == nil {
		t.Fatal("merged partials of another spec")
	}
}
