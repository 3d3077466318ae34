package window

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/cespare/xxhash/v2"
)

// Func is an aggregate function.
type Func uint8

const (
	Count          Func = iota + 1 // count(x): non-null values; count(*): events
	Sum                            // sum of non-null values
	Min                            // smallest non-null value
	Max                            // largest non-null value
	Avg                            // mean of non-null values, as a float
	ApproxDistinct                 // approx_count_distinct: HyperLogLog estimate of distinct non-null values
)

var funcNames = [...]string{
	Count:          "count",
	Sum:            "sum",
	Min:            "min",
	Max:            "max",
	Avg:            "avg",
	ApproxDistinct: "approx_count_distinct",
}

// ParseFunc returns the function named name: count, sum, min, max, avg or
// approx_count_distinct (case-insensitive).
func ParseFunc(name string) (Func, error) {
	l := strings.ToLower(name)
	for f, n := range funcNames {
		if f != 0 && n == l {
			return Func(f), nil
		}
	}
	return 0, fmt.Errorf("window: unknown aggregate function %q (want count, sum, min, max, avg or approx_count_distinct)", name)
}

// String returns the function's name as ParseFunc accepts it.
func (f Func) String() string {
	if f >= Count && f <= ApproxDistinct {
		return funcNames[f]
	}
	return fmt.Sprintf("Func(%d)", uint8(f))
}

// ValueKind is the kind of an aggregate's input or result values.
type ValueKind uint8

const (
	KindInt   ValueKind = iota + 1 // int64
	KindFloat                      // float64
	KindBytes                      // strings and binary, compared bytewise
)

// String returns "int", "float" or "bytes".
func (k ValueKind) String() string {
	switch k {
	case KindInt:
		return "int"
	case KindFloat:
		return "float"
	case KindBytes:
		return "bytes"
	}
	return fmt.Sprintf("ValueKind(%d)", uint8(k))
}

// Value is one input or result value. The field its kind selects holds it
// unless Null. As an input, Bytes need only be valid during the call; as a
// result, Bytes aliases the accumulator and is valid until it changes.
type Value struct {
	Null  bool
	Int   int64
	Float float64
	Bytes []byte
}

// AggSpec is one aggregate of a window.
type AggSpec struct {
	Func Func
	// In is the kind of the input values; ignored for count(*).
	In ValueKind
	// Star makes a Count count events (count(*)) instead of non-null values.
	Star bool
	// Precision is the HyperLogLog precision of an ApproxDistinct, in
	// [MinPrecision, MaxPrecision]; 0 means DefaultPrecision.
	Precision uint8
}

// String returns the aggregate as in SQL, e.g. "sum(int)" or "count(*)".
func (a AggSpec) String() string {
	if a.Star {
		return a.Func.String() + "(*)"
	}
	return a.Func.String() + "(" + a.In.String() + ")"
}

// Validate reports whether the aggregate is usable: sum and avg need int or
// float input, min, max, count and approx_count_distinct take any kind, only
// count may be count(*), and only approx_count_distinct has a precision.
func (a AggSpec) Validate() error {
	if a.Func < Count || a.Func > ApproxDistinct {
		return fmt.Errorf("window: unknown aggregate function %d", uint8(a.Func))
	}
	if a.Star {
		if a.Func != Count {
			return fmt.Errorf("window: %s(*): only count takes *", a.Func)
		}
	} else if a.In < KindInt || a.In > KindBytes {
		return fmt.Errorf("window: %s: unknown input kind %d", a.Func, uint8(a.In))
	}
	if (a.Func == Sum || a.Func == Avg) && a.In == KindBytes {
		return fmt.Errorf("window: %s: input must be int or float, not bytes", a)
	}
	if a.Func == ApproxDistinct {
		if a.Precision != 0 && (a.Precision < MinPrecision || a.Precision > MaxPrecision) {
			return fmt.Errorf("window: %s: precision %d out of range [%d, %d]", a, a.Precision, MinPrecision, MaxPrecision)
		}
	} else if a.Precision != 0 {
		return fmt.Errorf("window: %s: only approx_count_distinct has a precision", a)
	}
	return nil
}

// ResultKind returns the kind of the aggregate's result: int for count and
// approx_count_distinct, float for avg, the input kind otherwise.
func (a AggSpec) ResultKind() ValueKind {
	switch a.Func {
	case Count, ApproxDistinct:
		return KindInt
	case Avg:
		return KindFloat
	}
	return a.In
}

// norm returns the spec with the fields that do not matter zeroed and the
// default precision filled in, so that equivalent specs compare equal.
func (a AggSpec) norm() AggSpec {
	if a.Star {
		a.In = 0
	}
	if a.Func == ApproxDistinct && a.Precision == 0 {
		a.Precision = DefaultPrecision
	}
	return a
}

// tag identifies the function and input kind in encodings.
func (a AggSpec) tag() byte {
	a = a.norm()
	t := byte(a.Func)<<3 | byte(a.In)<<1
	if a.Star {
		t |= 1
	}
	return t
}

// ErrOverflow is wrapped by the errors of an integer sum (of sum or avg)
// that leaves the int64 range.
var ErrOverflow = errors.New("window: integer overflow")

// Acc is the accumulator of one aggregate in one window. Its zero value is
// the accumulator of no input.
type Acc struct {
	n      int64   // count: the count; otherwise the number of non-null inputs
	i      int64   // int sum, min or max
	f      float64 // float sum, min or max
	b      []byte  // bytes min or max, owned
	sketch *HLL    // approx_count_distinct, nil until the first input
}

// Accs holds the accumulators of one window, one per AggSpec of its Aggs.
type Accs []Acc

// Aggs is the list of aggregates of a window, in output order.
type Aggs []AggSpec

// Validate validates every aggregate.
func (a Aggs) Validate() error {
	for i, s := range a {
		if err := s.Validate(); err != nil {
			return fmt.Errorf("%w (aggregate %d)", err, i)
		}
	}
	return nil
}

func (a Aggs) equal(b Aggs) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].norm() != b[i].norm() {
			return false
		}
	}
	return true
}

// New returns the accumulators of a window without input.
func (a Aggs) New() Accs { return make(Accs, len(a)) }

// canonNaN is the one NaN accumulators keep and hash, so that results and
// encodings do not depend on which NaN payload an operation produced.
var canonNaN = math.Float64frombits(0x7ff8_0000_0000_0000)

func canonFloat(f float64) float64 {
	if f != f {
		return canonNaN
	}
	return f
}

// cmpFloat orders floats totally: -Inf < … < -0 < +0 < … < +Inf < NaN, all
// NaNs equal whatever their sign and payload (as Java's Double.compare does).
func cmpFloat(a, b float64) int {
	an, bn := a != a, b != b
	switch {
	case an && bn:
		return 0
	case an:
		return 1
	case bn:
		return -1
	case a < b:
		return -1
	case a > b:
		return 1
	}
	sa, sb := math.Signbit(a), math.Signbit(b)
	switch {
	case sa == sb:
		return 0
	case sa:
		return -1
	}
	return 1
}

func addOverflows(a, b int64) bool {
	s := a + b
	return (s > a) != (b > 0)
}

func (a Aggs) overflow(i int) error {
	return fmt.Errorf("%w in aggregate %d, %s", ErrOverflow, i, a[i])
}

func (a Aggs) check(accs Accs, n int, what string) error {
	if len(accs) != len(a) {
		return fmt.Errorf("window: %d accumulators for %d aggregates", len(accs), len(a))
	}
	if n != len(a) {
		return fmt.Errorf("window: %d %s for %d aggregates", n, what, len(a))
	}
	return nil
}

// intSum reports whether aggregate s keeps an exact int64 sum.
func intSum(s AggSpec) bool { return (s.Func == Sum || s.Func == Avg) && s.In == KindInt }

// Add folds one event into accs: vals[i] is the input of aggregate i
// (ignored for count(*)); len(vals) must be len(a). Add changes nothing
// when it returns an error, such as an error wrapping ErrOverflow.
func (a Aggs) Add(accs Accs, vals []Value) error {
	if err := a.check(accs, len(vals), "values"); err != nil {
		return err
	}
	if err := a.checkAdd(accs, vals); err != nil {
		return err
	}
	a.add(accs, vals)
	return nil
}

// checkAdd returns the error Add would return for lengths that match.
func (a Aggs) checkAdd(accs Accs, vals []Value) error {
	for i, s := range a {
		if intSum(s) && !vals[i].Null && accs[i].n > 0 && addOverflows(accs[i].i, vals[i].Int) {
			return a.overflow(i)
		}
	}
	return nil
}

// add is Add without checks.
func (a Aggs) add(accs Accs, vals []Value) {
	for i, s := range a {
		s.add(&accs[i], &vals[i])
	}
}

func (s AggSpec) add(acc *Acc, v *Value) {
	if s.Star {
		acc.n++
		return
	}
	if v.Null {
		return
	}
	first := acc.n == 0
	acc.n++
	if s.Func == ApproxDistinct {
		if acc.sketch == nil {
			acc.sketch = NewHLL(s.norm().Precision)
		}
		acc.sketch.Add(hashValue(s.In, v))
		return
	}
	s.combine(acc, v.Int, canonFloat(v.Float), v.Bytes, first)
}

// combine folds a number or bytes (an input's, or another accumulator's
// sum, minimum or maximum) into acc's sum, minimum or maximum; first says
// acc held none yet. f must be canonical (canonFloat).
func (s AggSpec) combine(acc *Acc, i int64, f float64, b []byte, first bool) {
	switch s.Func {
	case Sum, Avg:
		if s.In == KindInt {
			acc.i += i
		} else if first {
			acc.f = f
		} else {
			acc.f = canonFloat(acc.f + f)
		}
	case Min, Max:
		want := -1
		if s.Func == Max {
			want = 1
		}
		switch s.In {
		case KindInt:
			if first || cmpInt(i, acc.i) == want {
				acc.i = i
			}
		case KindFloat:
			if first || cmpFloat(f, acc.f) == want {
				acc.f = f
			}
		case KindBytes:
			if first || bytes.Compare(b, acc.b) == want {
				acc.b = append(acc.b[:0], b...)
			}
		}
	}
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// hashValue is the xxhash64 of the value's bytes: the 8 little-endian bytes
// of an int, of the IEEE bits of a float (with -0 as +0 and one NaN), or the
// bytes themselves.
func hashValue(k ValueKind, v *Value) uint64 {
	var buf [8]byte
	switch k {
	case KindInt:
		binary.LittleEndian.PutUint64(buf[:], uint64(v.Int))
	case KindFloat:
		f := canonFloat(v.Float)
		if f == 0 {
			f = 0 // -0 becomes +0
		}
		binary.LittleEndian.PutUint64(buf[:], math.Float64bits(f))
	default:
		return xxhash.Sum64(v.Bytes)
	}
	return xxhash.Sum64(buf[:])
}

// Merge folds src into dst, as if dst had been given src's input too. src
// is not changed and dst shares no memory with it afterwards. Merge changes
// nothing when it returns an error.
func (a Aggs) Merge(dst, src Accs) error {
	if err := a.check(dst, len(src), "source accumulators"); err != nil {
		return err
	}
	for i, s := range a {
		if intSum(s) && dst[i].n > 0 && src[i].n > 0 && addOverflows(dst[i].i, src[i].i) {
			return a.overflow(i)
		}
		if s.Func == ApproxDistinct && dst[i].sketch != nil && src[i].sketch != nil &&
			dst[i].sketch.Precision() != src[i].sketch.Precision() {
			return fmt.Errorf("window: aggregate %d, %s: sketches of precision %d and %d", i, s,
				dst[i].sketch.Precision(), src[i].sketch.Precision())
		}
	}
	for i, s := range a {
		s.merge(&dst[i], &src[i])
	}
	return nil
}

func (s AggSpec) merge(dst, src *Acc) {
	if src.n == 0 {
		return
	}
	first := dst.n == 0
	dst.n += src.n
	if s.Star || s.Func == Count {
		return
	}
	if s.Func != ApproxDistinct {
		s.combine(dst, src.i, src.f, src.b, first)
		return
	}
	switch {
	case src.sketch == nil:
	case dst.sketch == nil:
		dst.sketch = src.sketch.Clone()
	default:
		_ = dst.sketch.Merge(src.sketch) // precisions checked by Merge
	}
}

// clone returns a deep copy of accs.
func (a Aggs) clone(accs Accs) Accs {
	c := a.New()
	_ = a.Merge(c, accs) // merging into empty accumulators cannot fail
	return c
}

// Result returns the value of aggregate i: the count for count (never
// null), the estimate for approx_count_distinct (0 without input), and for
// sum, min, max and avg the value, or Null without non-null input. A bytes
// result aliases the accumulator.
func (a Aggs) Result(accs Accs, i int) Value {
	s, acc := a[i], &accs[i]
	switch s.Func {
	case Count:
		return Value{Int: acc.n}
	case ApproxDistinct:
		if acc.sketch == nil {
			return Value{}
		}
		return Value{Int: int64(acc.sketch.Estimate())}
	}
	if acc.n == 0 {
		return Value{Null: true}
	}
	switch s.Func {
	case Avg:
		if s.In == KindInt {
			return Value{Float: float64(acc.i) / float64(acc.n)}
		}
		return Value{Float: canonFloat(acc.f / float64(acc.n))}
	case Sum, Min, Max:
		switch s.In {
		case KindInt:
			return Value{Int: acc.i}
		case KindFloat:
			return Value{Float: acc.f}
		case KindBytes:
			return Value{Bytes: acc.b}
		}
	}
	return Value{Null: true}
}

const accsVersion = 1

// AppendBinary appends the encoding of accs to dst and returns the extended
// slice. The encoding is deterministic (equal accumulators give equal
// bytes): a version byte, the number of accumulators (uvarint), then per
// accumulator a tag byte naming its function and input kind, its count
// (uvarint) and, if the count is not 0, its value: a zigzag varint for an
// int, 8 little-endian bytes for a float, a uvarint length and the bytes,
// or the HyperLogLog sketch as HLL.MarshalBinary encodes it.
func (a Aggs) AppendBinary(dst []byte, accs Accs) []byte {
	dst = append(dst, accsVersion)
	dst = binary.AppendUvarint(dst, uint64(len(accs)))
	for i := range accs {
		s, acc := a[i], &accs[i]
		dst = append(dst, s.tag())
		dst = binary.AppendUvarint(dst, uint64(acc.n))
		if acc.n == 0 || s.Func == Count {
			continue
		}
		if s.Func == ApproxDistinct {
			h := acc.sketch
			if h == nil {
				h = NewHLL(s.norm().Precision)
			}
			dst = h.appendBinary(dst)
			continue
		}
		switch s.In {
		case KindInt:
			dst = binary.AppendVarint(dst, acc.i)
		case KindFloat:
			dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(acc.f))
		case KindBytes:
			dst = appendLenBytes(dst, acc.b)
		}
	}
	return dst
}

// DecodeAccs decodes accumulators encoded by AppendBinary for the same
// aggregates. It returns an error, never panics, on input that is corrupt,
// truncated, has trailing bytes or was encoded for other aggregates.
func (a Aggs) DecodeAccs(b []byte) (Accs, error) {
	r := reader{b: b}
	accs, err := a.decodeAccs(&r)
	if err != nil {
		return nil, err
	}
	if len(r.b) != 0 {
		return nil, errors.New("window: accumulators: trailing bytes")
	}
	return accs, nil
}

func (a Aggs) decodeAccs(r *reader) (Accs, error) {
	fail := func(format string, args ...any) (Accs, error) {
		return nil, fmt.Errorf("window: accumulators: "+format, args...)
	}
	if v := r.byte(); r.err == nil && v != accsVersion {
		return fail("unknown version %d", v)
	}
	n := r.uvarint()
	if r.err != nil {
		return fail("truncated")
	}
	if n != uint64(len(a)) {
		return fail("%d accumulators for %d aggregates", n, len(a))
	}
	accs := a.New()
	for i := range accs {
		s, acc := a[i], &accs[i]
		tag := r.byte()
		acc.n = r.count()
		if r.err != nil {
			return fail("truncated")
		}
		if tag != s.tag() {
			return fail("accumulator %d was encoded for another aggregate than %s", i, s)
		}
		if acc.n == 0 || s.Func == Count {
			continue
		}
		if s.Func == ApproxDistinct {
			h, err := decodeHLL(r)
			if err != nil {
				return nil, fmt.Errorf("%w (accumulator %d)", err, i)
			}
			if h.Precision() != s.norm().Precision {
				return fail("accumulator %d has a sketch of precision %d, want %d", i, h.Precision(), s.norm().Precision)
			}
			acc.sketch = h
			continue
		}
		switch s.In {
		case KindInt:
			acc.i = r.varint()
		case KindFloat:
			acc.f = canonFloat(math.Float64frombits(r.u64()))
		case KindBytes:
			acc.b = bytes.Clone(r.lenBytes())
			if acc.b == nil {
				acc.b = []byte{}
			}
		}
		if r.err != nil {
			return fail("truncated")
		}
	}
	return accs, nil
}
