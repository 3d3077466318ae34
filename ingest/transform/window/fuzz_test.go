package window

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// FuzzDecode feeds arbitrary bytes to every decoder: none may panic, and
// whatever decodes must re-encode to bytes that decode to the same
// encoding again.
func FuzzWindowDecode(f *testing.F) {
	r := rand.New(rand.NewPCG(1, 1))
	events, _ := genEvents(r, 60)
	accs := testAggs.New()
	for _, e := range events[:20] {
		_ = testAggs.Add(accs, e.Vals)
	}
	f.Add(testAggs.AppendBinary(nil, accs))
	f.Add(testAggs.AppendBinary(nil, testAggs.New()))
	for _, spec := range testSpecs {
		p := NewPartials(spec, testAggs)
		st, _ := NewState(Config{Spec: spec, Aggs: testAggs}, failStore{})
		for _, e := range events {
			_ = p.Add(e.Group, e.Ts, e.Vals)
		}
		b, _ := p.MarshalBinary()
		f.Add(b)
		_, _ = st.Apply(p)
		st.Observe("p", 100)
		b, _ = st.MarshalBinary()
		f.Add(b)
	}
	h := NewHLL(4)
	h.AddBytes([]byte("a"))
	b, _ := h.MarshalBinary()
	f.Add(b)
	for i := range 100 {
		h.AddBytes([]byte{byte(i)})
	}
	b, _ = h.MarshalBinary()
	f.Add(b)

	f.Fuzz(func(t *testing.T, b []byte) {
		if a, err := testAggs.DecodeAccs(b); err == nil {
			enc := testAggs.AppendBinary(nil, a)
			a2, err := testAggs.DecodeAccs(enc)
			if err != nil {
				t.Fatalf("re-encoded accumulators do not decode: %v", err)
			}
			if !bytes.Equal(enc, testAggs.AppendBinary(nil, a2)) {
				t.Fatal("accumulator encoding is not stable")
			}
			for i := range testAggs {
				testAggs.Result(a, i)
			}
		}
		var h HLL
		if err := h.UnmarshalBinary(b); err == nil {
			enc, _ := h.MarshalBinary()
			var h2 HLL
			if err := h2.UnmarshalBinary(enc); err != nil {
				t.Fatalf("re-encoded sketch does not decode: %v", err)
			}
			if enc2, _ := h2.MarshalBinary(); !bytes.Equal(enc, enc2) || h.Estimate() != h2.Estimate() {
				t.Fatal("sketch encoding is not stable")
			}
		}
		// The checksum would stop most mutations early: also decode the
		// input with its last 4 bytes replaced by the right checksum.
		fixed := b
		if len(b) >= 4 {
			fixed = appendCRC(bytes.Clone(b[:len(b)-4]))
		}
		for _, spec := range testSpecs {
			fuzzStructures(t, spec, b)
			fuzzStructures(t, spec, fixed)
		}
	})
}

func fuzzStructures(t *testing.T, spec Spec, b []byte) {
	if p, err := UnmarshalPartials(spec, testAggs, b); err == nil {
		enc, err := p.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := UnmarshalPartials(spec, testAggs, enc); err != nil {
			t.Fatalf("re-encoded partials do not decode: %v", err)
		}
		st, _ := NewState(Config{Spec: spec, Aggs: testAggs}, failStore{})
		_, _ = st.Apply(p)
	}
	cfg := Config{Spec: spec, Aggs: testAggs}
	if st, err := RestoreState(cfg, failStore{}, b); err == nil {
		enc, err := st.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := RestoreState(cfg, failStore{}, enc); err != nil {
			t.Fatalf("re-encoded checkpoint does not decode: %v", err)
		}
		st.Observe("x", 1<<40)
		st.Evict()
	}
}
