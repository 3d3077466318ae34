package window

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
)

var countSum = Aggs{{Func: Count, Star: true}, {Func: Sum, In: KindInt}}

// partials returns partials of events given as group, time and value.
func partials(t *testing.T, spec Spec, events ...any) *Partials {
	t.Helper()
	p := NewPartials(spec, countSum)
	for i := 0; i < len(events); i += 3 {
		if err := p.Add(events[i].(string), int64(events[i+1].(int)), []Value{{}, {Int: int64(events[i+2].(int))}}); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// row is a window in short: group, start, end, revision, count, sum.
type row struct {
	g                  string
	start, end, rev, n int64
	sum                int64
}

func rows(ws []Window) []row {
	var out []row
	for _, w := range ws {
		out = append(out, row{w.Group, w.Start, w.End, w.Revision, countSum.Result(w.Accs, 0).Int, countSum.Result(w.Accs, 1).Int})
	}
	return out
}

func apply(t *testing.T, st *State, store *memStore, p *Partials) Changes {
	t.Helper()
	ch, err := st.Apply(p)
	if err != nil {
		t.Fatal(err)
	}
	store.write(ch)
	return ch
}

func TestRevisionsAndReopened(t *testing.T) {
	spec := Spec{Kind: Tumbling, Size: 10}
	store := newMemStore(t, spec, countSum)
	st, err := NewState(Config{Spec: spec, Aggs: countSum, Delay: 5}, store)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := st.Watermark(); ok {
		t.Error("watermark before any partition reported")
	}
	ch := apply(t, st, store, partials(t, spec, "g", 1, 1, "g", 2, 2, "h", 15, 3))
	want := []row{{"g", 0, 10, 1, 2, 3}, {"h", 10, 20, 1, 1, 3}}
	if got := rows(ch.Upserts); !slices.Equal(got, want) || ch.Reopened != 0 {
		t.Errorf("first apply: %v reopened %d, want %v", got, ch.Reopened, want)
	}

	st.Observe("t/0", 30)
	st.Observe("t/1", 18)
	st.Observe("t/0", 12) // never goes back
	if wm, ok := st.Watermark(); !ok || wm != 13 {
		t.Errorf("watermark %d %v, want 13", wm, ok)
	}
	// A late event re-opens [0, 10) (End 10 <= 13); [10, 20) is updated
	// but not complete; [20, 30) is new.
	ch = apply(t, st, store, partials(t, spec, "g", 3, 10, "g", 4, 10, "h", 11, 1, "h", 25, 1))
	want = []row{{"g", 0, 10, 2, 4, 23}, {"h", 10, 20, 2, 2, 4}, {"h", 20, 30, 1, 1, 1}}
	if got := rows(ch.Upserts); !slices.Equal(got, want) || ch.Reopened != 1 {
		t.Errorf("late apply: %v reopened %d, want %v reopened 1", got, ch.Reopened, want)
	}

	st.Observe("t/1", 40)
	if n := st.Evict(); n != 2 || st.Len() != 1 || st.Horizon() != 20 {
		t.Errorf("evicted %d, %d left, horizon %d; want 2, 1, 20", n, st.Len(), st.Horizon())
	}
	// A window evicted is loaded back; one never written is not looked up
	// when after the horizon, looked up (and not found) when before it.
	ch = apply(t, st, store, partials(t, spec, "g", 5, 100, "h", 26, 1, "g", 12, 1))
	want = []row{{"g", 0, 10, 3, 5, 123}, {"g", 10, 20, 1, 1, 1}, {"h", 20, 30, 2, 2, 2}}
	if got := rows(ch.Upserts); !slices.Equal(got, want) || ch.Reopened != 1 || ch.Loaded != 1 || store.loads != 2 {
		t.Errorf("apply after evict: %v reopened %d loaded %d loads %d", rows(ch.Upserts), ch.Reopened, ch.Loaded, store.loads)
	}
}

func TestSessionBridge(t *testing.T) {
	spec := Spec{Kind: Session, Gap: 10}
	for _, evict := range []bool{false, true} {
		store := newMemStore(t, spec, countSum)
		st, err := NewState(Config{Spec: spec, Aggs: countSum}, store)
		if err != nil {
			t.Fatal(err)
		}
		ch := apply(t, st, store, partials(t, spec, "g", 0, 1, "g", 20, 2, "g", 23, 3, "h", 5, 4))
		want := []row{{"g", 0, 10, 1, 1, 1}, {"g", 20, 33, 1, 2, 5}, {"h", 5, 15, 1, 1, 4}}
		if got := rows(ch.Upserts); !slices.Equal(got, want) {
			t.Errorf("first apply: %v, want %v", got, want)
		}
		if evict {
			st.Observe("p", 100)
			if n := st.Evict(); n != 3 {
				t.Errorf("evicted %d", n)
			}
		}
		// 10 touches [0, 10) at its end and [20, 33) at its start (the
		// event's interval is [10, 20)): all three merge.
		ch = apply(t, st, store, partials(t, spec, "g", 10, 10))
		want = []row{{"g", 0, 33, 2, 4, 16}}
		if got := rows(ch.Upserts); !slices.Equal(got, want) || !slices.Equal(ch.Deletes, []WindowKey{{"g", 20}}) {
			t.Errorf("evict %v: bridge: %v deletes %v, want %v", evict, got, ch.Deletes, want)
		}
		if evict && (ch.Loaded != 2 || ch.Reopened != 1) {
			t.Errorf("loaded %d reopened %d", ch.Loaded, ch.Reopened)
		}
		// An earlier event touching [0, 33) gives the merged session a
		// new key: the old row is deleted.
		ch = apply(t, st, store, partials(t, spec, "g", -10, 100))
		want = []row{{"g", -10, 33, 3, 5, 116}}
		if got := rows(ch.Upserts); !slices.Equal(got, want) || !slices.Equal(ch.Deletes, []WindowKey{{"g", 0}}) {
			t.Errorf("evict %v: extend left: %v deletes %v, want %v", evict, got, ch.Deletes, want)
		}
		if n := len(store.rows); n != 2 {
			t.Errorf("%d rows stored", n)
		}
	}
}

// TestSessionMergeWithinApply checks a session that gets a new key in an
// Apply and absorbs another session later in the same Apply: only stored
// keys are deleted, the session is upserted once, and its revision is the
// largest merged one plus one.
func TestSessionMergeWithinApply(t *testing.T) {
	spec := Spec{Kind: Session, Gap: 10}
	store := newMemStore(t, spec, countSum)
	st, _ := NewState(Config{Spec: spec, Aggs: countSum}, store)
	apply(t, st, store, partials(t, spec, "g", 100, 1))
	apply(t, st, store, partials(t, spec, "g", 101, 1))
	ch := apply(t, st, store, partials(t, spec, "g", 150, 1))
	if got := rows(ch.Upserts); !slices.Equal(got, []row{{"g", 150, 160, 1, 1, 1}}) {
		t.Errorf("%v", got)
	}
	// Partial sessions [85, 100) and [101, 150): the first merges with
	// [100, 111) into a session keyed 85, which the second then bridges
	// with [150, 160).
	ch = apply(t, st, store, partials(t, spec, "g", 85, 1, "g", 90, 1,
		"g", 101, 1, "g", 110, 1, "g", 120, 1, "g", 130, 1, "g", 140, 1))
	want := []row{{"g", 85, 160, 3, 10, 10}}
	if got := rows(ch.Upserts); !slices.Equal(got, want) {
		t.Errorf("%v, want %v", got, want)
	}
	if !slices.Equal(ch.Deletes, []WindowKey{{"g", 100}, {"g", 150}}) {
		t.Errorf("deletes %v", ch.Deletes)
	}
	if st.Len() != 1 || len(store.rows) != 1 {
		t.Errorf("%d windows in memory, %d stored", st.Len(), len(store.rows))
	}
}

func TestMaxLateness(t *testing.T) {
	spec := Spec{Kind: Tumbling, Size: 10}
	store := newMemStore(t, spec, countSum)
	st, _ := NewState(Config{Spec: spec, Aggs: countSum, MaxLateness: 20}, store)
	// No watermark yet: nothing is dropped.
	if ch := apply(t, st, store, partials(t, spec, "g", 1, 1)); ch.Dropped != 0 {
		t.Errorf("dropped %d", ch.Dropped)
	}
	st.Observe("p", 50) // drop windows ending at or before 30
	ch := apply(t, st, store, partials(t, spec, "g", 5, 1, "g", 6, 1, "g", 29, 1, "g", 31, 1))
	want := []row{{"g", 30, 40, 1, 1, 1}}
	if got := rows(ch.Upserts); !slices.Equal(got, want) || ch.Dropped != 3 {
		t.Errorf("%v dropped %d, want %v dropped 3", got, ch.Dropped, want)
	}

	sspec := Spec{Kind: Session, Gap: 10}
	sstore := newMemStore(t, sspec, countSum)
	sst, _ := NewState(Config{Spec: sspec, Aggs: countSum, MaxLateness: 20, Delay: 10}, sstore)
	sst.Observe("p", 60) // watermark 50: drop sessions ending at or before 30
	ch = apply(t, sst, sstore, partials(t, sspec, "g", 5, 1, "g", 12, 1, "g", 20, 1, "h", 21, 1))
	want = []row{{"h", 21, 31, 1, 1, 1}}
	if got := rows(ch.Upserts); !slices.Equal(got, want) || ch.Dropped != 3 {
		t.Errorf("sessions: %v dropped %d, want %v dropped 3", got, ch.Dropped, want)
	}
}

func TestAfterLoss(t *testing.T) {
	spec := Spec{Kind: Tumbling, Size: 10}
	store := newMemStore(t, spec, countSum)
	st, _ := NewState(Config{Spec: spec, Aggs: countSum}, store)
	apply(t, st, store, partials(t, spec, "g", 1, 1, "g", 11, 1))
	lost, err := NewStateAfterLoss(Config{Spec: spec, Aggs: countSum}, store)
	if err != nil {
		t.Fatal(err)
	}
	ch := apply(t, lost, store, partials(t, spec, "g", 2, 1, "g", 21, 1))
	want := []row{{"g", 0, 10, 2, 2, 2}, {"g", 20, 30, 1, 1, 1}}
	if got := rows(ch.Upserts); !slices.Equal(got, want) || ch.Loaded != 1 || store.loads != 2 {
		t.Errorf("%v loaded %d loads %d", got, ch.Loaded, store.loads)
	}
}

type failStore struct{}

func (failStore) Load(string, int64, int64) ([]Window, error) { return nil, errors.New("boom") }

type badStore struct{ w Window }

func (s badStore) Load(string, int64, int64) ([]Window, error) { return []Window{s.w}, nil }

func TestStateErrors(t *testing.T) {
	spec := Spec{Kind: Tumbling, Size: 10}
	cfg := Config{Spec: spec, Aggs: countSum}
	for _, bad := range []Config{
		{Spec: Spec{Kind: Tumbling}, Aggs: countSum},
		{Spec: spec, Aggs: Aggs{{Func: Sum, In: KindBytes}}},
		{Spec: spec, Aggs: countSum, Delay: -1},
		{Spec: spec, Aggs: countSum, Retention: -1},
		{Spec: spec, Aggs: countSum, MaxLateness: -1},
	} {
		if _, err := NewState(bad, failStore{}); err == nil || !strings.HasPrefix(err.Error(), "window") {
			t.Errorf("%+v: %v", bad, err)
		}
	}
	if _, err := NewState(cfg, nil); err == nil {
		t.Error("nil store accepted")
	}
	st, _ := NewStateAfterLoss(cfg, failStore{})
	if _, err := st.Apply(partials(t, Spec{Kind: Tumbling, Size: 20}, "g", 1, 1)); err == nil {
		t.Error("partials of another spec applied")
	}
	if _, err := st.Apply(partials(t, spec, "g", 1, 1)); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Errorf("store error: %v", err)
	}
	if _, err := st.Apply(NewPartials(spec, countSum)); err == nil {
		t.Error("apply after a failed apply succeeded")
	}
	if _, err := st.MarshalBinary(); err == nil {
		t.Error("checkpoint after a failed apply succeeded")
	}

	// Windows the store returns are checked.
	accs := countSum.New()
	for _, w := range []Window{
		{Group: "g", Start: 0, End: 11, Accs: accs},
		{Group: "g", Start: 0, End: 10, Accs: accs[:1]},
		{Group: "g", Start: 0, End: 10, Accs: accs, Revision: -1},
	} {
		st, _ := NewStateAfterLoss(cfg, badStore{w})
		if _, err := st.Apply(partials(t, spec, "g", 1, 1)); err == nil {
			t.Errorf("store window %+v accepted", w)
		}
	}
	// ... and those of another group or start ignored.
	st, _ = NewStateAfterLoss(cfg, badStore{Window{Group: "h", Start: 0, End: 10, Accs: accs}})
	if ch, err := st.Apply(partials(t, spec, "g", 1, 1)); err != nil || ch.Loaded != 0 {
		t.Errorf("%v loaded %d", err, ch.Loaded)
	}

	// An overflow is an error.
	st, _ = NewState(cfg, failStore{})
	if _, err := st.Apply(partials(t, spec, "g", 1, math.MaxInt)); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Apply(partials(t, spec, "g", 1, 1)); !errors.Is(err, ErrOverflow) {
		t.Errorf("overflow: %v", err)
	}
}

func TestCheckpointContents(t *testing.T) {
	spec := Spec{Kind: Session, Gap: 10}
	store := newMemStore(t, spec, countSum)
	cfg := Config{Spec: spec, Aggs: countSum, Retention: 5}
	st, _ := NewState(cfg, store)
	apply(t, st, store, partials(t, spec, "g", 1, 1, "g", 50, 1, "h", 7, 2))
	st.Observe("t/1", 40)
	st.Observe("t/0", 45)
	st.Evict()
	b, err := st.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	rs, err := RestoreState(cfg, store, b)
	if err != nil {
		t.Fatal(err)
	}
	if rs.Len() != st.Len() || rs.Horizon() != st.Horizon() || rs.Horizon() != 17 {
		t.Errorf("restored %d windows horizon %d, want %d, %d", rs.Len(), rs.Horizon(), st.Len(), st.Horizon())
	}
	if wm, _ := rs.Watermark(); wm != 40 {
		t.Errorf("restored watermark %d", wm)
	}
	// Other delays are fine, another spec or aggregates are not.
	cfg.Delay = 100
	if _, err := RestoreState(cfg, store, b); err != nil {
		t.Error(err)
	}
	if _, err := RestoreState(Config{Spec: Spec{Kind: Session, Gap: 11}, Aggs: countSum}, store, b); err == nil {
		t.Error("restored with another spec")
	}
	if _, err := RestoreState(Config{Spec: spec, Aggs: countSum[:1]}, store, b); err == nil {
		t.Error("restored with other aggregates")
	}
	for n := range b {
		if _, err := RestoreState(cfg, store, b[:n]); err == nil {
			t.Fatalf("restored a truncation to %d bytes", n)
		}
	}
}

// TestPartialsAddAtomic checks that an Add that fails changes nothing.
func TestPartialsAddAtomic(t *testing.T) {
	snapshot := func(p *Partials) []byte {
		b, err := p.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// Hopping: the event's second window overflows, the first must not
	// change.
	spec := Spec{Kind: Hopping, Size: 10, Slide: 5}
	p := partials(t, spec, "g", 12, math.MaxInt, "g", 3, 1)
	before := snapshot(p)
	if err := p.Add("g", 8, []Value{{}, {Int: 1}}); !errors.Is(err, ErrOverflow) {
		t.Fatalf("got %v", err)
	}
	if !slices.Equal(before, snapshot(p)) || p.Len() != 4 {
		t.Error("failed Add changed the partials")
	}
	// Sessions: an event bridging two sessions whose sums overflow.
	sspec := Spec{Kind: Session, Gap: 10}
	p = partials(t, sspec, "g", 0, math.MaxInt, "g", 20, 1)
	before = snapshot(p)
	if err := p.Add("g", 10, []Value{{}, {Int: 0}}); !errors.Is(err, ErrOverflow) {
		t.Fatalf("got %v", err)
	}
	if !slices.Equal(before, snapshot(p)) || p.Len() != 2 {
		t.Error("failed Add changed the partials")
	}
	if err := p.Add("g", 10, []Value{{}}); err == nil {
		t.Error("Add with too few values accepted")
	}
	p.Reset()
	if p.Len() != 0 || len(snapshot(p)) != len(snapshot(NewPartials(sspec, countSum))) {
		t.Error("Reset left windows")
	}
}

// TestForgetLetsTheWatermarkMoveOn: a partition that stopped reporting
// holds the watermark back until it is forgotten, and rejoins with its next
// report.
func TestForgetLetsTheWatermarkMoveOn(t *testing.T) {
	s, err := NewState(Config{Spec: Spec{Kind: Tumbling, Size: 10}, Aggs: Aggs{{Func: Count, Star: true}}}, newMemStore(t, Spec{Kind: Tumbling, Size: 10}, Aggs{{Func: Count, Star: true}}))
	if err != nil {
		t.Fatal(err)
	}
	s.Observe("a", 100)
	s.Observe("b", 1000)
	if wm, _ := s.Watermark(); wm != 100 {
		t.Fatalf("watermark %d, want 100", wm)
	}
	s.Forget("a")
	if wm, _ := s.Watermark(); wm != 1000 {
		t.Fatalf("watermark %d after forgetting a, want 1000", wm)
	}
	if got := s.Partitions(); len(got) != 1 || got[0] != "b" {
		t.Fatalf("partitions %v", got)
	}
	s.Observe("a", 500)
	if wm, _ := s.Watermark(); wm != 500 {
		t.Fatalf("watermark %d after a reported again, want 500", wm)
	}
}
