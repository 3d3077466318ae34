package window

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"

	"github.com/cespare/xxhash/v2"
)

// Precision bounds of a HyperLogLog sketch.
const (
	MinPrecision     = 4
	MaxPrecision     = 18
	DefaultPrecision = 14
)

// RelativeError returns the standard error of a HyperLogLog estimate with
// precision p, relative to the true cardinality: 1.04/√(2^p).
func RelativeError(p uint8) float64 { return 1.04 / math.Sqrt(float64(uint64(1)<<p)) }

// HLL is a HyperLogLog sketch of 2^p registers over 64-bit hashes.
//
// A register holds the maximum, over the hashes whose top p bits select it,
// of the position of the first 1 bit in the remaining 64-p bits (1-based;
// 64-p+1 when they are all zero). Merging takes the maximum register by
// register, so the registers depend only on the set of hashes added, never
// on the order or grouping of adds and merges.
//
// While few registers are set the sketch is sparse: a sorted list of the
// set registers (4 bytes each) instead of 2^p bytes. It turns dense once
// more than 2^p/4 registers are set. The representation is a function of
// the registers alone (sparse exactly when at most 2^p/4 are set), so equal
// sketches marshal to identical bytes, and the estimate never depends on
// the representation.
//
// The zero HLL is an empty sketch of precision DefaultPrecision.
type HLL struct {
	p      uint8    // 0 means DefaultPrecision
	sparse []uint32 // index<<6 | value, sorted by index; used while dense == nil
	dense  []uint8  // one register per byte once dense
}

// NewHLL returns an empty sketch of precision p, which must be 0 (for
// DefaultPrecision) or in [MinPrecision, MaxPrecision]; NewHLL panics
// otherwise (AggSpec.Validate checks the precision of an aggregate).
func NewHLL(p uint8) *HLL {
	if p != 0 && (p < MinPrecision || p > MaxPrecision) {
		panic(fmt.Sprintf("window: HyperLogLog precision %d out of range [%d, %d]", p, MinPrecision, MaxPrecision))
	}
	return &HLL{p: p}
}

// Precision returns the sketch's precision p.
func (h *HLL) Precision() uint8 {
	if h.p == 0 {
		return DefaultPrecision
	}
	return h.p
}

func (h *HLL) m() int { return 1 << h.Precision() }

// sparseMax is the most registers a sparse sketch holds.
func (h *HLL) sparseMax() int { return h.m() / 4 }

// Add adds a 64-bit hash to the sketch. Hashes must be uniformly
// distributed; AddBytes hashes bytes with xxhash64.
func (h *HLL) Add(hash uint64) {
	p := h.Precision()
	idx := uint32(hash >> (64 - p))
	w := hash << p
	// The first 1 bit among the 64-p low bits of hash; 64-p+1 if none.
	v := uint8(64-p) + 1
	if w != 0 {
		v = uint8(bits.LeadingZeros64(w)) + 1
	}
	h.set(idx, v)
}

// AddBytes adds xxhash64(b) (seed 0) to the sketch.
func (h *HLL) AddBytes(b []byte) { h.Add(xxhash.Sum64(b)) }

// set raises register idx to v.
func (h *HLL) set(idx uint32, v uint8) {
	if h.dense != nil {
		if h.dense[idx] < v {
			h.dense[idx] = v
		}
		return
	}
	i, found := slices.BinarySearchFunc(h.sparse, idx, func(e, idx uint32) int {
		return int(e>>6) - int(idx)
	})
	if found {
		if uint8(h.sparse[i]&63) < v {
			h.sparse[i] = idx<<6 | uint32(v)
		}
		return
	}
	if len(h.sparse) >= h.sparseMax() {
		h.toDense()
		h.dense[idx] = v
		return
	}
	h.sparse = slices.Insert(h.sparse, i, idx<<6|uint32(v))
}

func (h *HLL) toDense() {
	d := make([]uint8, h.m())
	for _, e := range h.sparse {
		d[e>>6] = uint8(e & 63)
	}
	h.dense = d
	h.sparse = nil
}

// toSparseIfSmall turns a dense sketch with few registers set sparse, which
// keeps the representation canonical.
func (h *HLL) toSparseIfSmall() {
	if h.dense == nil {
		return
	}
	n := 0
	for _, v := range h.dense {
		if v != 0 {
			n++
		}
	}
	if n > h.sparseMax() {
		return
	}
	s := make([]uint32, 0, n)
	for i, v := range h.dense {
		if v != 0 {
			s = append(s, uint32(i)<<6|uint32(v))
		}
	}
	h.sparse = s
	h.dense = nil
}

// Merge folds o into h: afterwards h is the sketch of the union of both
// sets. It returns an error if the precisions differ.
func (h *HLL) Merge(o *HLL) error {
	if h.Precision() != o.Precision() {
		return fmt.Errorf("window: cannot merge HyperLogLog sketches of precision %d and %d", h.Precision(), o.Precision())
	}
	switch {
	case o.dense != nil:
		if h.dense == nil {
			h.toDense()
		}
		for i, v := range o.dense {
			if h.dense[i] < v {
				h.dense[i] = v
			}
		}
	case h.dense != nil:
		for _, e := range o.sparse {
			h.set(e>>6, uint8(e&63))
		}
	default:
		h.sparse = mergeSparse(h.sparse, o.sparse)
		if len(h.sparse) > h.sparseMax() {
			h.toDense()
		}
	}
	return nil
}

// mergeSparse merges two sorted sparse lists, keeping the larger value of
// an index present in both. The result may reuse a's storage only when b
// is empty.
func mergeSparse(a, b []uint32) []uint32 {
	if len(b) == 0 {
		return a
	}
	out := make([]uint32, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		ia, ib := a[i]>>6, b[j]>>6
		switch {
		case ia < ib:
			out = append(out, a[i])
			i++
		case ia > ib:
			out = append(out, b[j])
			j++
		default:
			out = append(out, max(a[i], b[j]))
			i++
			j++
		}
	}
	out = append(out, a[i:]...)
	return append(out, b[j:]...)
}

// Clone returns a copy of h that shares no memory with it.
func (h *HLL) Clone() *HLL {
	c := &HLL{p: h.p}
	if h.dense != nil {
		c.dense = slices.Clone(h.dense)
	} else if len(h.sparse) > 0 {
		c.sparse = slices.Clone(h.sparse)
	}
	return c
}

// Estimate returns the estimated number of distinct hashes added.
//
// It is Ertl's improved raw estimator ("New cardinality estimation
// algorithms for HyperLogLog sketches", 2017), which needs no bias tables or
// range corrections and behaves like linear counting at small
// cardinalities. It depends only on the histogram of register values, and
// every floating-point operation is rounded explicitly (no fused
// multiply-add), so a sketch gives the same estimate on every platform.
func (h *HLL) Estimate() uint64 {
	p := h.Precision()
	q := 64 - int(p)
	m := h.m()
	var hist [66]int // hist[v]: registers of value v, v in [0, q+1]
	if h.dense != nil {
		for _, v := range h.dense {
			hist[v]++
		}
	} else {
		hist[0] = m - len(h.sparse)
		for _, e := range h.sparse {
			hist[e&63]++
		}
	}
	if hist[0] == m {
		return 0
	}
	fm := float64(m)
	z := float64(fm * hllTau(float64(fm-float64(hist[q+1]))/fm))
	for k := q; k >= 1; k-- {
		z = float64(0.5 * float64(z+float64(hist[k])))
	}
	z = float64(z + float64(fm*hllSigma(float64(hist[0])/fm)))
	alphaInf := 1 / (2 * math.Ln2)
	e := float64(float64(alphaInf*fm) * fm / z)
	return uint64(math.Round(e))
}

// hllSigma is σ(x) = x + Σ_{k≥1} x^(2^k)·2^(k-1) of Ertl's estimator.
func hllSigma(x float64) float64 {
	if x == 1 {
		return math.Inf(1)
	}
	y, z := 1.0, x
	for {
		x = float64(x * x)
		prev := z
		z = float64(z + float64(x*y))
		y += y
		if z == prev {
			return z
		}
	}
}

// hllTau is τ(x) = (1 - x - Σ_{k≥1} (1-x^(2^-k))²·2^-k)/3 of Ertl's estimator.
func hllTau(x float64) float64 {
	if x == 0 || x == 1 {
		return 0
	}
	y, z := 1.0, 1-x
	for {
		x = math.Sqrt(x)
		prev := z
		y *= 0.5
		d := float64(1 - x)
		z = float64(z - float64(float64(d*d)*y))
		if z == prev {
			return z / 3
		}
	}
}

const hllVersion = 1

// MarshalBinary encodes the sketch: a version byte, p, then either 0 and the
// sparse registers (uvarint count, then per register the uvarint gap from
// the previous index and the value byte) or 1 and the 2^p register bytes.
func (h *HLL) MarshalBinary() ([]byte, error) {
	return h.appendBinary(nil), nil
}

func (h *HLL) appendBinary(dst []byte) []byte {
	dst = append(dst, hllVersion, h.Precision())
	if h.dense != nil {
		dst = append(dst, 1)
		return append(dst, h.dense...)
	}
	dst = append(dst, 0)
	dst = binary.AppendUvarint(dst, uint64(len(h.sparse)))
	prev := uint32(0)
	for _, e := range h.sparse {
		dst = binary.AppendUvarint(dst, uint64(e>>6-prev))
		dst = append(dst, uint8(e&63))
		prev = e >> 6
	}
	return dst
}

// UnmarshalBinary decodes a sketch encoded by MarshalBinary, replacing h.
func (h *HLL) UnmarshalBinary(b []byte) error {
	r := reader{b: b}
	d, err := decodeHLL(&r)
	if err != nil {
		return err
	}
	if len(r.b) != 0 {
		return errors.New("window: HyperLogLog sketch: trailing bytes")
	}
	*h = *d
	return nil
}

func decodeHLL(r *reader) (*HLL, error) {
	fail := func(format string, args ...any) (*HLL, error) {
		return nil, fmt.Errorf("window: HyperLogLog sketch: "+format, args...)
	}
	if v := r.byte(); r.err == nil && v != hllVersion {
		return fail("unknown version %d", v)
	}
	p := r.byte()
	format := r.byte()
	if r.err != nil {
		return fail("truncated")
	}
	if p < MinPrecision || p > MaxPrecision {
		return fail("precision %d out of range [%d, %d]", p, MinPrecision, MaxPrecision)
	}
	h := &HLL{p: p}
	maxV := uint8(64-p) + 1
	m := uint64(1) << p
	switch format {
	case 0:
		n := r.uvarint()
		if r.err != nil {
			return fail("truncated")
		}
		if n > m || n > uint64(len(r.b))/2 {
			return fail("%d sparse registers do not fit", n)
		}
		if n == 0 {
			return h, nil
		}
		h.sparse = make([]uint32, 0, n)
		idx := uint64(0)
		for i := uint64(0); i < n; i++ {
			gap := r.uvarint()
			v := r.byte()
			if r.err != nil {
				return fail("truncated")
			}
			if i > 0 && gap == 0 {
				return fail("sparse registers not in ascending order")
			}
			if gap >= m || idx+gap >= m {
				return fail("register index out of range")
			}
			idx += gap
			if v == 0 || v > maxV {
				return fail("register value %d out of range [1, %d]", v, maxV)
			}
			h.sparse = append(h.sparse, uint32(idx)<<6|uint32(v))
		}
		if len(h.sparse) > h.sparseMax() {
			h.toDense()
		}
	case 1:
		regs := r.bytes(int(m))
		if r.err != nil {
			return fail("truncated")
		}
		for _, v := range regs {
			if v > maxV {
				return fail("register value %d out of range [0, %d]", v, maxV)
			}
		}
		h.dense = slices.Clone(regs)
		h.toSparseIfSmall()
	default:
		return fail("unknown format %d", format)
	}
	return h, nil
}
