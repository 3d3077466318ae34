package window

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func hashOf(i uint64) []byte { return binary.LittleEndian.AppendUint64(nil, i) }

func TestHLLAccuracy(t *testing.T) {
	checkpoints := []uint64{10, 1000, 100_000, 1_000_000}
	for _, p := range []uint8{14, 10} {
		h := NewHLL(p)
		next := 0
		for i := uint64(1); i <= checkpoints[len(checkpoints)-1]; i++ {
			h.AddBytes(hashOf(i))
			if i != checkpoints[next] {
				continue
			}
			next++
			est := float64(h.Estimate())
			if rel := math.Abs(est-float64(i)) / float64(i); rel > 3*RelativeError(p) {
				t.Errorf("p=%d: estimate %v of %d distinct: error %.4f > 3×%.4f", p, est, i, rel, RelativeError(p))
			} else {
				t.Logf("p=%d n=%d estimate %v (error %.4f)", p, i, est, rel)
			}
		}
		// Adding them all again changes nothing.
		before, _ := h.MarshalBinary()
		for i := uint64(1); i <= 1000; i++ {
			h.AddBytes(hashOf(i))
		}
		if after, _ := h.MarshalBinary(); !bytes.Equal(before, after) {
			t.Errorf("p=%d: re-adding values changed the sketch", p)
		}
	}
	if NewHLL(0).Estimate() != 0 || (&HLL{}).Precision() != DefaultPrecision {
		t.Error("empty sketch")
	}
}

// registers returns the sketch's registers, whatever its representation.
func registers(h *HLL) []uint8 {
	if h.dense != nil {
		return slices.Clone(h.dense)
	}
	r := make([]uint8, h.m())
	for _, e := range h.sparse {
		r[e>>6] = uint8(e & 63)
	}
	return r
}

func TestHLLSparseDense(t *testing.T) {
	for _, p := range []uint8{4, 10, 14} {
		for _, n := range []uint64{0, 1, 3, 50, 200, 5000, 20000} {
			sparse, dense := NewHLL(p), NewHLL(p)
			dense.toDense()
			for i := range n {
				sparse.AddBytes(hashOf(i))
				dense.AddBytes(hashOf(i))
			}
			if wantSparse := n <= uint64(sparse.sparseMax())/2; wantSparse && sparse.dense != nil {
				t.Errorf("p=%d n=%d: dense", p, n)
			}
			if !slices.Equal(registers(sparse), registers(dense)) || sparse.Estimate() != dense.Estimate() {
				t.Errorf("p=%d n=%d: sparse and dense differ: %d vs %d", p, n, sparse.Estimate(), dense.Estimate())
			}
			// Merging either way gives the same registers, and the
			// canonical representation.
			other := NewHLL(p)
			for i := n / 2; i < n+n/2+1; i++ {
				other.AddBytes(hashOf(i + 1e9))
			}
			a, b := sparse.Clone(), dense.Clone()
			if err := a.Merge(other); err != nil {
				t.Fatal(err)
			}
			if err := b.Merge(other); err != nil {
				t.Fatal(err)
			}
			c := other.Clone()
			if err := c.Merge(dense); err != nil {
				t.Fatal(err)
			}
			d := other.Clone()
			if err := d.Merge(sparse); err != nil {
				t.Fatal(err)
			}
			ra := registers(a)
			for _, x := range []*HLL{b, c, d} {
				if !slices.Equal(ra, registers(x)) || a.Estimate() != x.Estimate() {
					t.Errorf("p=%d n=%d: merges differ", p, n)
				}
			}
			ma, _ := a.MarshalBinary()
			md, _ := d.MarshalBinary()
			if !bytes.Equal(ma, md) {
				t.Errorf("p=%d n=%d: merged sketches marshal differently", p, n)
			}
			// A dense sketch with few registers decodes sparse.
			mb, _ := b.MarshalBinary()
			var back HLL
			if err := back.UnmarshalBinary(mb); err != nil {
				t.Fatal(err)
			}
			if mback, _ := back.MarshalBinary(); !bytes.Equal(mback, ma) {
				t.Errorf("p=%d n=%d: decoded dense sketch is not canonical", p, n)
			}
		}
	}
}

func TestHLLMergeOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 9))
	for _, n := range []int{5, 300, 3000, 50000} {
		whole := NewHLL(12)
		vals := make([]uint64, n)
		for i := range vals {
			vals[i] = r.Uint64()
			whole.Add(vals[i])
		}
		want, _ := whole.MarshalBinary()
		for trial := range 5 {
			k := 1 + r.IntN(8)
			parts := make([]*HLL, k)
			for i := range parts {
				parts[i] = NewHLL(12)
			}
			for _, i := range r.Perm(n) {
				parts[r.IntN(k)].Add(vals[i])
			}
			// Merge in a random tree.
			for len(parts) > 1 {
				i, j := r.IntN(len(parts)), r.IntN(len(parts))
				if i == j {
					continue
				}
				if err := parts[i].Merge(parts[j]); err != nil {
					t.Fatal(err)
				}
				parts = slices.Delete(parts, j, j+1)
			}
			got, _ := parts[0].MarshalBinary()
			if !bytes.Equal(got, want) {
				t.Errorf("n=%d trial %d: sketch depends on the merge order", n, trial)
			}
		}
	}
	if err := NewHLL(10).Merge(NewHLL(11)); err == nil {
		t.Error("merged sketches of different precisions")
	}
}

func TestHLLMarshal(t *testing.T) {
	for _, n := range []int{0, 1, 100, 5000} {
		h := NewHLL(11)
		for i := range n {
			h.AddBytes(hashOf(uint64(i)))
		}
		b, err := h.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var g HLL
		if err := g.UnmarshalBinary(b); err != nil {
			t.Fatal(err)
		}
		if g.Estimate() != h.Estimate() || !slices.Equal(registers(&g), registers(h)) || g.Precision() != 11 {
			t.Errorf("n=%d: round trip differs", n)
		}
		for k := range b {
			if err := g.UnmarshalBinary(b[:k]); err == nil {
				t.Fatalf("n=%d: decoded a truncation to %d bytes", n, k)
			}
		}
	}
	bad := [][]byte{
		{2, 10, 0, 0},                // version
		{1, 3, 0, 0},                 // precision
		{1, 10, 2, 0},                // format
		{1, 10, 0, 2, 5, 1, 0, 1},    // indexes not ascending
		{1, 10, 0, 1, 0, 56},         // value too large for p=10
		{1, 10, 0, 1, 0x80, 0x08, 1}, // index 1024 out of range
		{1, 4, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 99}, // dense value
	}
	for i, b := range bad {
		var g HLL
		if err := g.UnmarshalBinary(b); err == nil {
			t.Errorf("bad sketch %d decoded", i)
		}
	}
}

func TestHLLZeroValueAndClone(t *testing.T) {
	var h HLL
	h.AddBytes([]byte("x"))
	c := h.Clone()
	c.AddBytes([]byte("y"))
	if h.Estimate() != 1 || c.Estimate() != 2 {
		t.Errorf("estimates %d, %d", h.Estimate(), c.Estimate())
	}
	defer func() {
		if recover() == nil {
			t.Error("NewHLL(3) did not panic")
		}
	}()
	NewHLL(3)
}
