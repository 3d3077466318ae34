package window

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"
)

// streamOpts selects a variant of the streaming run.
type streamOpts struct {
	checkpointEvery int // restore from a checkpoint after every n-th Apply
	loseAt          int // replace the state with NewStateAfterLoss before segment n (0: never)
	retention       int64
	delay           int64
}

// runStream feeds events, in arrival order, through the worker and writer
// sides: it splits them into segments, each segment's events into one
// Partials per worker (events of partition p go to worker p%2) folded in a
// random order, marshals and unmarshals each Partials and applies them in
// segment order, writing every Changes to store and evicting after each
// Apply. It returns a digest of every Changes.
func runStream(t *testing.T, r *rand.Rand, spec Spec, aggs Aggs, events []Event, parts []int, store *memStore, o streamOpts) []byte {
	t.Helper()
	cfg := Config{Spec: spec, Aggs: aggs, Delay: o.delay, Retention: o.retention}
	st, err := NewState(cfg, store)
	if err != nil {
		t.Fatal(err)
	}
	var digest []byte
	applies, segment := 0, 0
	maxTs := map[int]int64{}
	for lo := 0; lo < len(events); segment++ {
		if o.loseAt > 0 && segment == o.loseAt {
			if st, err = NewStateAfterLoss(cfg, store); err != nil {
				t.Fatal(err)
			}
		}
		hi := min(len(events), lo+1+r.IntN(120))
		var byWorker [2][]int
		for i := lo; i < hi; i++ {
			byWorker[parts[i]%2] = append(byWorker[parts[i]%2], i)
			if ts, ok := maxTs[parts[i]]; !ok || events[i].Ts > ts {
				maxTs[parts[i]] = events[i].Ts
			}
		}
		for _, idx := range byWorker {
			if len(idx) == 0 {
				continue
			}
			r.Shuffle(len(idx), func(a, b int) { idx[a], idx[b] = idx[b], idx[a] })
			p := NewPartials(spec, aggs)
			for _, i := range idx {
				if err := p.Add(events[i].Group, events[i].Ts, events[i].Vals); err != nil {
					t.Fatal(err)
				}
			}
			b, err := p.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			if p, err = UnmarshalPartials(spec, aggs, b); err != nil {
				t.Fatal(err)
			}
			ch, err := st.Apply(p)
			if err != nil {
				t.Fatal(err)
			}
			store.write(ch)
			digest = appendChanges(digest, aggs, ch)
			applies++
			if o.checkpointEvery > 0 && applies%o.checkpointEvery == 0 {
				b, err := st.MarshalBinary()
				if err != nil {
					t.Fatal(err)
				}
				if st, err = RestoreState(cfg, store, b); err != nil {
					t.Fatal(err)
				}
				b2, _ := st.MarshalBinary()
				if !bytes.Equal(b, b2) {
					t.Fatal("checkpoint of a restored state differs")
				}
			}
		}
		for p, ts := range maxTs {
			st.Observe(fmt.Sprint("topic/", p), ts)
		}
		st.Evict()
		lo = hi
	}
	return digest
}

func appendChanges(b []byte, aggs Aggs, ch Changes) []byte {
	for _, u := range ch.Upserts {
		b = fmt.Appendf(b, "U %q %d %d %d %d ", u.Group, u.Start, u.End, u.Revision, u.Events)
		b = aggs.AppendBinary(b, u.Accs)
	}
	for _, d := range ch.Deletes {
		b = fmt.Appendf(b, "D %q %d ", d.Group, d.Start)
	}
	b = fmt.Appendf(b, "R%d L%d X%d\n", ch.Reopened, ch.Loaded, ch.Dropped)
	return b
}

// TestStreamEqualsBatch is the package's main property: whatever the split
// into segments and partials, the order within them, the lateness of
// events, evictions, checkpoints or a lost checkpoint, the rows written
// equal the batch computation over all events.
func TestStreamEqualsBatch(t *testing.T) {
	variants := []struct {
		name string
		o    streamOpts
	}{
		{"evict", streamOpts{retention: 0, delay: 50}},
		{"retain", streamOpts{retention: 400, delay: 0}},
		{"checkpoint", streamOpts{retention: 50, delay: 20, checkpointEvery: 3}},
		{"lost", streamOpts{retention: 100, delay: 0, loseAt: 7}},
	}
	for _, spec := range testSpecs {
		for _, v := range variants {
			for seed := uint64(1); seed <= 4; seed++ {
				t.Run(fmt.Sprintf("%s/%s/%d", spec.Kind, v.name, seed), func(t *testing.T) {
					t.Parallel()
					r := rand.New(rand.NewPCG(seed, uint64(spec.Kind)))
					events, parts := genEvents(r, 1000)
					want, err := Batch(spec, testAggs, events)
					if err != nil {
						t.Fatal(err)
					}
					store := newMemStore(t, spec, testAggs)
					runStream(t, r, spec, testAggs, events, parts, store, v.o)
					sameWindows(t, testAggs, store.all(), want)
					if v.o.retention == 0 && store.loads == 0 {
						t.Error("no window was ever loaded back")
					}
				})
			}
		}
	}
}

// TestCheckpointReplay checks that a state restored from a checkpoint
// produces the same Changes as the original given the same Applies.
func TestCheckpointReplay(t *testing.T) {
	for _, spec := range testSpecs {
		for seed := uint64(1); seed <= 3; seed++ {
			t.Run(fmt.Sprintf("%s/%d", spec.Kind, seed), func(t *testing.T) {
				r := rand.New(rand.NewPCG(seed, 99))
				events, parts := genEvents(r, 800)
				o := streamOpts{retention: 30, delay: 10}
				plain := runStream(t, rand.New(rand.NewPCG(seed, 7)), spec, testAggs, events, parts, newMemStore(t, spec, testAggs), o)
				o.checkpointEvery = 2
				restored := runStream(t, rand.New(rand.NewPCG(seed, 7)), spec, testAggs, events, parts, newMemStore(t, spec, testAggs), o)
				if !bytes.Equal(plain, restored) {
					t.Error("changes differ after restoring checkpoints")
				}
			})
		}
	}
}

// TestPartialsMergeOrder checks that partial sessions built from any split
// and order of a group's events merge into the batch sessions.
func TestPartialsMergeOrder(t *testing.T) {
	spec := Spec{Kind: Session, Gap: 10}
	aggs := Aggs{{Func: Count, Star: true}, {Func: Sum, In: KindInt}}
	for seed := uint64(0); seed < 200; seed++ {
		r := rand.New(rand.NewPCG(seed, 3))
		n := 1 + r.IntN(60)
		events := make([]Event, n)
		for i := range events {
			events[i] = Event{Group: "ab"[r.IntN(2):][:1], Ts: int64(r.IntN(300)), Vals: []Value{{}, {Int: int64(r.IntN(10))}}}
		}
		want, err := Batch(spec, aggs, events)
		if err != nil {
			t.Fatal(err)
		}
		// One Partials with everything, in a random order.
		all := NewPartials(spec, aggs)
		for _, i := range r.Perm(n) {
			if err := all.Add(events[i].Group, events[i].Ts, events[i].Vals); err != nil {
				t.Fatal(err)
			}
		}
		var got []Window
		all.Windows(func(w *Window) bool { got = append(got, *w); return true })
		sameWindows(t, aggs, got, want)
		if all.Len() != len(want) {
			t.Errorf("seed %d: Len %d, want %d", seed, all.Len(), len(want))
		}
		// Random segments applied in a random order.
		st, err := NewState(Config{Spec: spec, Aggs: aggs}, newMemStore(t, spec, aggs))
		if err != nil {
			t.Fatal(err)
		}
		perm := r.Perm(n)
		for lo := 0; lo < n; {
			hi := min(n, lo+1+r.IntN(8))
			p := NewPartials(spec, aggs)
			for _, i := range perm[lo:hi] {
				if err := p.Add(events[i].Group, events[i].Ts, events[i].Vals); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := st.Apply(p); err != nil {
				t.Fatal(err)
			}
			lo = hi
		}
		got = got[:0]
		for _, e := range st.entries() {
			got = append(got, e.w)
		}
		sameWindows(t, aggs, got, want)
	}
}

func TestPartialsMarshalDeterministic(t *testing.T) {
	for _, spec := range testSpecs {
		r := rand.New(rand.NewPCG(5, 5))
		events, _ := genEvents(r, 300)
		var encs [][]byte
		for k := 0; k < 3; k++ {
			p := NewPartials(spec, testAggs)
			for _, i := range r.Perm(len(events)) {
				if err := p.Add(events[i].Group, events[i].Ts, events[i].Vals); err != nil {
					t.Fatal(err)
				}
			}
			b, err := p.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			q, err := UnmarshalPartials(spec, testAggs, b)
			if err != nil {
				t.Fatal(err)
			}
			b2, _ := q.MarshalBinary()
			if !bytes.Equal(b, b2) || q.Len() != p.Len() {
				t.Errorf("%s: round trip changes the partials", spec.Kind)
			}
			encs = append(encs, b)
		}
		if !bytes.Equal(encs[0], encs[1]) || !bytes.Equal(encs[0], encs[2]) {
			t.Errorf("%s: the encoding depends on the order of events", spec.Kind)
		}
		// Another spec or other aggregates are refused.
		other := spec
		if other.Kind == Session {
			other.Gap++
		} else {
			other.Size++
		}
		if _, err := UnmarshalPartials(other, testAggs, encs[0]); err == nil {
			t.Errorf("%s: decoded with another spec", spec.Kind)
		}
		if _, err := UnmarshalPartials(spec, testAggs[1:], encs[0]); err == nil {
			t.Errorf("%s: decoded with other aggregates", spec.Kind)
		}
		// Every truncation and a flipped bit are refused.
		for n := 0; n < len(encs[0]); n += 1 + n/50 {
			if _, err := UnmarshalPartials(spec, testAggs, encs[0][:n]); err == nil {
				t.Fatalf("%s: decoded a truncation to %d bytes", spec.Kind, n)
			}
		}
		bad := bytes.Clone(encs[0])
		bad[len(bad)/2] ^= 4
		if _, err := UnmarshalPartials(spec, testAggs, bad); err == nil {
			t.Errorf("%s: decoded a corrupt encoding", spec.Kind)
		}
	}
}

// TestPartialsValidation checks that structurally invalid partials with a
// valid checksum are refused.
func TestPartialsValidation(t *testing.T) {
	spec := Spec{Kind: Session, Gap: 10}
	aggs := Aggs{{Func: Count, Star: true}}
	enc := func(ws ...Window) []byte {
		b := appendHeader(nil, partialsMagic, spec, aggs)
		b = binary.AppendUvarint(b, uint64(len(ws)))
		var prev *Window
		for i := range ws {
			b = appendWindow(b, spec, aggs, &ws[i], prev)
			prev = &ws[i]
		}
		return appendCRC(b)
	}
	accs := aggs.New()
	accs[0].n = 1
	ok := Window{Group: "g", Start: 0, End: 10, Events: 1, Accs: accs}
	if _, err := UnmarshalPartials(spec, aggs, enc(ok)); err != nil {
		t.Fatalf("valid partials refused: %v", err)
	}
	cases := map[string][]Window{
		"touching":     {ok, {Group: "g", Start: 10, End: 20, Events: 1, Accs: accs}},
		"out of order": {{Group: "g", Start: 30, End: 40, Events: 1, Accs: accs}, ok},
		"short":        {{Group: "g", Start: 0, End: 5, Events: 1, Accs: accs}},
		"no events":    {{Group: "g", Start: 0, End: 10, Accs: accs}},
		"revision":     {{Group: "g", Start: 0, End: 10, Events: 1, Revision: 1, Accs: accs}},
		"late":         {{Group: "g", Start: MaxTime + 1, End: MaxTime + 11, Events: 1, Accs: accs}},
	}
	for name, ws := range cases {
		if _, err := UnmarshalPartials(spec, aggs, enc(ws...)); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
	tspec := Spec{Kind: Hopping, Size: 10, Slide: 4}
	b := appendHeader(nil, partialsMagic, tspec, aggs)
	b = binary.AppendUvarint(b, 1)
	b = appendWindow(b, tspec, aggs, &Window{Group: "g", Start: 6, End: 16, Events: 1, Accs: accs}, nil)
	if _, err := UnmarshalPartials(tspec, aggs, appendCRC(b)); err == nil {
		t.Error("decoded an unaligned hopping window")
	}
}
