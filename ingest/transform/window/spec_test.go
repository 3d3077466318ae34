package window

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func TestStarts(t *testing.T) {
	cases := []struct {
		spec Spec
		ts   int64
		want []int64
	}{
		{Spec{Kind: Tumbling, Size: 10}, 0, []int64{0}},
		{Spec{Kind: Tumbling, Size: 10}, 9, []int64{0}},
		{Spec{Kind: Tumbling, Size: 10}, 10, []int64{10}},
		{Spec{Kind: Tumbling, Size: 10}, -1, []int64{-10}},
		{Spec{Kind: Tumbling, Size: 10}, -10, []int64{-10}},
		{Spec{Kind: Tumbling, Size: 10}, -11, []int64{-20}},
		{Spec{Kind: Hopping, Size: 10, Slide: 5}, 0, []int64{-5, 0}},
		{Spec{Kind: Hopping, Size: 10, Slide: 5}, 4, []int64{-5, 0}},
		{Spec{Kind: Hopping, Size: 10, Slide: 5}, 5, []int64{0, 5}},
		{Spec{Kind: Hopping, Size: 10, Slide: 5}, -1, []int64{-10, -5}},
		{Spec{Kind: Hopping, Size: 10, Slide: 10}, -1, []int64{-10}},
		// Size not a multiple of Slide: 3 or 4 windows.
		{Spec{Kind: Hopping, Size: 10, Slide: 3}, 0, []int64{-9, -6, -3, 0}},
		{Spec{Kind: Hopping, Size: 10, Slide: 3}, 1, []int64{-6, -3, 0}},
		{Spec{Kind: Hopping, Size: 10, Slide: 3}, -7, []int64{-15, -12, -9}},
		{Spec{Kind: Session, Gap: 5}, 3, nil},
		{Spec{Kind: Tumbling, Size: 10}, MinTime, []int64{MinTime - 6}},
		{Spec{Kind: Tumbling, Size: 10}, MaxTime, []int64{MaxTime - 3}},
	}
	for _, c := range cases {
		got := c.spec.Starts(nil, c.ts)
		if !slices.Equal(got, c.want) {
			t.Errorf("%+v.Starts(%d) = %v, want %v", c.spec, c.ts, got, c.want)
		}
	}
	// Exhaustively against the definition.
	for _, spec := range []Spec{{Kind: Tumbling, Size: 7}, {Kind: Hopping, Size: 7, Slide: 3}, {Kind: Hopping, Size: 9, Slide: 3}, {Kind: Hopping, Size: 5, Slide: 5}} {
		step := spec.step()
		for ts := int64(-40); ts <= 40; ts++ {
			var want []int64
			for s := int64(-60); s <= 60; s++ {
				if s%step == 0 && s <= ts && ts < spec.End(s) {
					want = append(want, s)
				}
			}
			if got := spec.Starts(nil, ts); !slices.Equal(got, want) {
				t.Errorf("%+v.Starts(%d) = %v, want %v", spec, ts, got, want)
			}
		}
	}
	if got := (Spec{Kind: Hopping, Size: 10, Slide: 5}).End(-5); got != 5 {
		t.Errorf("End(-5) = %d", got)
	}
	if got := (Spec{Kind: Session, Gap: 5}).End(-5); got != 0 {
		t.Errorf("session End(-5) = %d", got)
	}
}

func TestSpecValidate(t *testing.T) {
	valid := []Spec{
		{Kind: Tumbling, Size: 1},
		{Kind: Hopping, Size: 10, Slide: 3},
		{Kind: Hopping, Size: 10, Slide: 10},
		{Kind: Hopping, Size: 100_000, Slide: 10},
		{Kind: Session, Gap: MaxDuration},
	}
	for _, s := range valid {
		if err := s.Validate(); err != nil {
			t.Errorf("%+v: %v", s, err)
		}
	}
	invalid := []struct {
		spec Spec
		msg  string
	}{
		{Spec{}, "window.kind: missing"},
		{Spec{Kind: 9, Size: 1}, "window.kind: unknown kind 9"},
		{Spec{Kind: Tumbling}, "window.size: must be positive, got 0"},
		{Spec{Kind: Tumbling, Size: -5}, "window.size: must be positive, got -5"},
		{Spec{Kind: Tumbling, Size: MaxDuration + 1}, "window.size: 2305843009213693953 is larger than the maximum"},
		{Spec{Kind: Tumbling, Size: 10, Slide: 10}, "window.slide: not used by tumbling windows"},
		{Spec{Kind: Tumbling, Size: 10, Gap: 10}, "window.gap: not used by tumbling windows"},
		{Spec{Kind: Hopping, Size: 10}, "window.slide: must be positive, got 0"},
		{Spec{Kind: Hopping, Size: 10, Slide: 11}, "window.slide: 11 is larger than window.size 10"},
		{Spec{Kind: Hopping, Size: 100_001, Slide: 10}, "window.slide: 10 puts every event in 10001 windows"},
		{Spec{Kind: Session}, "window.gap: must be positive, got 0"},
		{Spec{Kind: Session, Gap: 3, Size: 10}, "window.size: not used by session windows"},
	}
	for _, c := range invalid {
		err := c.spec.Validate()
		if err == nil || !strings.HasPrefix(err.Error(), c.msg) {
			t.Errorf("%+v: got %v, want %q", c.spec, err, c.msg)
		}
	}
}

func TestTimeRange(t *testing.T) {
	p := NewPartials(Spec{Kind: Tumbling, Size: 10}, Aggs{{Func: Count, Star: true}})
	for _, ts := range []int64{MinTime - 1, MaxTime + 1} {
		if err := p.Add("", ts, []Value{{}}); err == nil {
			t.Errorf("Add at %d accepted", ts)
		}
	}
	for _, ts := range []int64{MinTime, MaxTime} {
		if err := p.Add("", ts, []Value{{}}); err != nil {
			t.Errorf("Add at %d: %v", ts, err)
		}
	}
	if err := NewPartials(Spec{Kind: Tumbling}, nil).Add("", 0, nil); err == nil {
		t.Error("Add with an invalid spec accepted")
	}
	if _, err := Batch(Spec{Kind: Session, Gap: 1}, nil, []Event{{Ts: MaxTime + 1}}); err == nil {
		t.Error("Batch accepted a time out of range")
	}
}

// TestLastEndAndTooLate: LastEnd is the latest end among the windows
// Starts gives (a session's own end for sessions), and TooLate drops an
// event exactly when that end is at or before clock-delay-maxLateness.
func TestLastEndAndTooLate(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	specs := []Spec{
		{Kind: Tumbling, Size: 60e6},
		{Kind: Hopping, Size: 60e6, Slide: 15e6},
		{Kind: Hopping, Size: 50e6, Slide: 20e6},
		{Kind: Session, Gap: 30e6},
	}
	for _, s := range specs {
		for range 2000 {
			ts := rng.Int64N(4e12) - 2e12
			want := ts + s.Gap
			if s.Kind != Session {
				want = math.MinInt64
				for _, st := range s.Starts(nil, ts) {
					want = max(want, s.End(st))
				}
			}
			if got := s.LastEnd(ts); got != want {
				t.Fatalf("%v: LastEnd(%d) = %d, want %d", s, ts, got, want)
			}
			delay, lateness := rng.Int64N(10e6), 1+rng.Int64N(100e6)
			clock := want + delay + lateness + rng.Int64N(3) - 1 // around the boundary
			if got, wantLate := s.TooLate(ts, clock, delay, lateness), want <= clock-delay-lateness; got != wantLate {
				t.Fatalf("%v: TooLate(%d, clock %d, delay %d, lateness %d) = %v", s, ts, clock, delay, lateness, got)
			}
			if s.TooLate(ts, math.MaxInt64, delay, 0) {
				t.Fatalf("max lateness 0 dropped an event")
			}
		}
	}
	if (Spec{Kind: Tumbling, Size: 60e6}).TooLate(0, math.MinInt64+5, 10, 10) {
		t.Fatalf("a clock near the minimum made an event late")
	}
}
