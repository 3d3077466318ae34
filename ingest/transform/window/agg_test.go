package window

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

func i64(v int64) Value       { return Value{Int: v} }
func f64(v float64) Value     { return Value{Float: v} }
func str(v string) Value      { return Value{Bytes: []byte(v)} }
func null() Value             { return Value{Null: true} }
func one(a AggSpec) Aggs      { return Aggs{a} }
func vals(v ...Value) []Value { return v }

// fold adds each value as one event of a single-aggregate Aggs.
func fold(t *testing.T, a AggSpec, in ...Value) Value {
	t.Helper()
	aggs := one(a)
	accs := aggs.New()
	for _, v := range in {
		if err := aggs.Add(accs, vals(v)); err != nil {
			t.Fatal(err)
		}
	}
	return aggs.Result(accs, 0)
}

func TestParseFunc(t *testing.T) {
	for f := Count; f <= ApproxDistinct; f++ {
		got, err := ParseFunc(f.String())
		if err != nil || got != f {
			t.Errorf("ParseFunc(%q) = %v, %v", f, got, err)
		}
	}
	if got, err := ParseFunc("AVG"); err != nil || got != Avg {
		t.Errorf("ParseFunc(AVG) = %v, %v", got, err)
	}
	if _, err := ParseFunc("median"); err == nil || !strings.HasPrefix(err.Error(), "window: ") {
		t.Errorf("ParseFunc(median): %v", err)
	}
}

func TestAggSpecValidate(t *testing.T) {
	valid := []AggSpec{
		{Func: Count, Star: true},
		{Func: Count, In: KindBytes},
		{Func: Sum, In: KindInt},
		{Func: Avg, In: KindFloat},
		{Func: Min, In: KindBytes},
		{Func: ApproxDistinct, In: KindFloat, Precision: 4},
		{Func: ApproxDistinct, In: KindBytes},
	}
	for _, a := range valid {
		if err := a.Validate(); err != nil {
			t.Errorf("%v: %v", a, err)
		}
	}
	invalid := []AggSpec{
		{},
		{Func: 7, In: KindInt},
		{Func: Sum, Star: true},
		{Func: Sum, In: KindBytes},
		{Func: Avg, In: KindBytes},
		{Func: Min},
		{Func: Max, In: 4},
		{Func: ApproxDistinct, In: KindInt, Precision: 3},
		{Func: ApproxDistinct, In: KindInt, Precision: 19},
		{Func: Count, In: KindInt, Precision: 14},
	}
	for _, a := range invalid {
		if err := a.Validate(); err == nil || !strings.HasPrefix(err.Error(), "window: ") {
			t.Errorf("%+v: %v", a, err)
		}
	}
	kinds := map[AggSpec]ValueKind{
		{Func: Count, Star: true}:             KindInt,
		{Func: ApproxDistinct, In: KindBytes}: KindInt,
		{Func: Sum, In: KindFloat}:            KindFloat,
		{Func: Min, In: KindBytes}:            KindBytes,
		{Func: Avg, In: KindInt}:              KindFloat,
	}
	for a, k := range kinds {
		if a.ResultKind() != k {
			t.Errorf("%v.ResultKind() = %v, want %v", a, a.ResultKind(), k)
		}
	}
}

func TestCountSumAvg(t *testing.T) {
	in := []Value{i64(3), null(), i64(-5), i64(10)}
	if v := fold(t, AggSpec{Func: Count, Star: true}, in...); !sameValue(v, i64(4)) {
		t.Errorf("count(*) = %+v", v)
	}
	if v := fold(t, AggSpec{Func: Count, In: KindInt}, in...); !sameValue(v, i64(3)) {
		t.Errorf("count(x) = %+v", v)
	}
	if v := fold(t, AggSpec{Func: Count, In: KindInt}); !sameValue(v, i64(0)) {
		t.Errorf("count of nothing = %+v", v)
	}
	if v := fold(t, AggSpec{Func: Sum, In: KindInt}, in...); !sameValue(v, i64(8)) {
		t.Errorf("sum = %+v", v)
	}
	if v := fold(t, AggSpec{Func: Sum, In: KindInt}, null()); !v.Null {
		t.Errorf("sum of null = %+v", v)
	}
	if v := fold(t, AggSpec{Func: Sum, In: KindFloat}, f64(1.5), null(), f64(2)); !sameValue(v, f64(3.5)) {
		t.Errorf("float sum = %+v", v)
	}
	if v := fold(t, AggSpec{Func: Avg, In: KindInt}, in...); !sameValue(v, f64(8.0/3)) {
		t.Errorf("avg = %+v", v)
	}
	if v := fold(t, AggSpec{Func: Avg, In: KindFloat}, f64(1), f64(2), null()); !sameValue(v, f64(1.5)) {
		t.Errorf("float avg = %+v", v)
	}
	if v := fold(t, AggSpec{Func: Avg, In: KindFloat}, null()); !v.Null {
		t.Errorf("avg of null = %+v", v)
	}
	if v := fold(t, AggSpec{Func: Sum, In: KindFloat}, f64(math.Inf(1)), f64(math.Inf(-1)), f64(1)); !math.IsNaN(v.Float) || math.Float64bits(v.Float) != math.Float64bits(canonNaN) {
		t.Errorf("Inf-Inf = %+v", v)
	}
}

func TestOverflow(t *testing.T) {
	for _, f := range []Func{Sum, Avg} {
		aggs := Aggs{{Func: Count, Star: true}, {Func: f, In: KindInt}}
		accs := aggs.New()
		if err := aggs.Add(accs, vals(Value{}, i64(math.MaxInt64))); err != nil {
			t.Fatal(err)
		}
		err := aggs.Add(accs, vals(Value{}, i64(1)))
		if !errors.Is(err, ErrOverflow) || !strings.Contains(err.Error(), f.String()+"(int)") {
			t.Errorf("%v: overflow error %v", f, err)
		}
		// Nothing changed, not even the count.
		if v := aggs.Result(accs, 0); !sameValue(v, i64(1)) {
			t.Errorf("%v: count after failed add %+v", f, v)
		}
		if err := aggs.Add(accs, vals(Value{}, i64(-1))); err != nil {
			t.Errorf("%v: %v", f, err)
		}
		src := aggs.New()
		_ = aggs.Add(src, vals(Value{}, i64(2)))
		if err := aggs.Merge(accs, src); !errors.Is(err, ErrOverflow) {
			t.Errorf("%v: merge overflow error %v", f, err)
		}
		if v := aggs.Result(accs, 0); !sameValue(v, i64(2)) {
			t.Errorf("%v: count after failed merge %+v", f, v)
		}
		neg := aggs.New()
		_ = aggs.Add(neg, vals(Value{}, i64(math.MinInt64)))
		if err := aggs.Add(neg, vals(Value{}, i64(-1))); !errors.Is(err, ErrOverflow) {
			t.Errorf("%v: negative overflow error %v", f, err)
		}
	}
}

func TestMinMax(t *testing.T) {
	mn, mx := AggSpec{Func: Min, In: KindInt}, AggSpec{Func: Max, In: KindInt}
	in := []Value{null(), i64(4), i64(-7), null(), i64(2)}
	if v := fold(t, mn, in...); !sameValue(v, i64(-7)) {
		t.Errorf("min = %+v", v)
	}
	if v := fold(t, mx, in...); !sameValue(v, i64(4)) {
		t.Errorf("max = %+v", v)
	}
	if v := fold(t, mx, null()); !v.Null {
		t.Errorf("max of null = %+v", v)
	}

	// Floats: -Inf < -0 < +0 < +Inf < NaN.
	fmn, fmx := AggSpec{Func: Min, In: KindFloat}, AggSpec{Func: Max, In: KindFloat}
	negZero := math.Copysign(0, -1)
	nan := math.Float64frombits(0x7ff8_0000_0000_0bad)
	for _, order := range [][]float64{{1, nan, 0, negZero}, {negZero, 0, nan, 1}, {nan, 0, 1, negZero}} {
		var in []Value
		for _, f := range order {
			in = append(in, f64(f))
		}
		if v := fold(t, fmx, in...); math.Float64bits(v.Float) != math.Float64bits(canonNaN) {
			t.Errorf("max %v = %v, want NaN", order, v.Float)
		}
		if v := fold(t, fmn, in...); math.Float64bits(v.Float) != math.Float64bits(negZero) {
			t.Errorf("min %v = %v, want -0", order, v.Float)
		}
		in = append(in, f64(math.Inf(-1)))
		if v := fold(t, fmn, in...); !math.IsInf(v.Float, -1) {
			t.Errorf("min with -Inf = %v", v.Float)
		}
	}
	if v := fold(t, fmx, f64(0), f64(negZero)); math.Signbit(v.Float) {
		t.Error("max(0, -0) = -0")
	}

	// Bytes: compared bytewise, and copied.
	bmn, bmx := AggSpec{Func: Min, In: KindBytes}, AggSpec{Func: Max, In: KindBytes}
	aggs := Aggs{bmn, bmx}
	accs := aggs.New()
	buf := []byte("m")
	for _, s := range []string{"m", "b", "", "zz", "z"} {
		buf = append(buf[:0], s...)
		if err := aggs.Add(accs, vals(Value{Bytes: buf}, Value{Bytes: buf})); err != nil {
			t.Fatal(err)
		}
	}
	buf = append(buf[:0], "!!"...)
	if v := aggs.Result(accs, 0); !bytes.Equal(v.Bytes, nil) || v.Null {
		t.Errorf("min = %q", v.Bytes)
	}
	if v := aggs.Result(accs, 1); string(v.Bytes) != "zz" {
		t.Errorf("max = %q", v.Bytes)
	}
	// Merge copies too.
	dst := aggs.New()
	if err := aggs.Merge(dst, accs); err != nil {
		t.Fatal(err)
	}
	accs[1].b[0] = 'a'
	if v := aggs.Result(dst, 1); string(v.Bytes) != "zz" {
		t.Errorf("merged max = %q", v.Bytes)
	}
}

func TestApproxDistinctValues(t *testing.T) {
	negZero := math.Copysign(0, -1)
	a := AggSpec{Func: ApproxDistinct, In: KindFloat}
	if v := fold(t, a, f64(0), f64(negZero), f64(math.NaN()), f64(math.Float64frombits(0xfff0_0000_0000_0001)), null()); !sameValue(v, i64(2)) {
		t.Errorf("distinct of 0, -0, NaN, NaN = %+v", v)
	}
	if v := fold(t, a); !sameValue(v, i64(0)) {
		t.Errorf("distinct of nothing = %+v", v)
	}
	var in []Value
	for i := range 100 {
		in = append(in, i64(int64(i%50)), null())
	}
	if v := fold(t, AggSpec{Func: ApproxDistinct, In: KindInt}, in...); !sameValue(v, i64(50)) {
		t.Errorf("distinct of 50 ints = %+v", v)
	}
	// Ints hash their 8 little-endian bytes.
	h := NewHLL(0)
	h.AddBytes([]byte{1, 0, 0, 0, 0, 0, 0, 0})
	aggs := one(AggSpec{Func: ApproxDistinct, In: KindInt})
	accs := aggs.New()
	_ = aggs.Add(accs, vals(i64(1)))
	hb, _ := h.MarshalBinary()
	ab, _ := accs[0].sketch.MarshalBinary()
	if !bytes.Equal(hb, ab) {
		t.Error("int hashing differs from AddBytes of its little-endian bytes")
	}
}

func TestAggsMergeEqualsAdd(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	all := testAggs.New()
	parts := []Accs{testAggs.New(), testAggs.New(), testAggs.New()}
	for range 3000 {
		v := randVals(r)
		if err := testAggs.Add(all, v); err != nil {
			t.Fatal(err)
		}
		if err := testAggs.Add(parts[r.IntN(3)], v); err != nil {
			t.Fatal(err)
		}
	}
	merged := testAggs.New()
	for _, i := range []int{2, 0, 1} {
		if err := testAggs.Merge(merged, parts[i]); err != nil {
			t.Fatal(err)
		}
	}
	if a, b := testAggs.AppendBinary(nil, all), testAggs.AppendBinary(nil, merged); !bytes.Equal(a, b) {
		t.Errorf("merged %s\nwant %s", results(testAggs, merged), results(testAggs, all))
	}
	if err := testAggs.Merge(merged, testAggs[1:].New()); err == nil {
		t.Error("merge of mismatched accumulators accepted")
	}
	if err := testAggs.Add(merged, nil); err == nil {
		t.Error("add without values accepted")
	}
}

func TestAccsEncoding(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{0, 1, 5, 200} {
		accs := testAggs.New()
		for range n {
			_ = testAggs.Add(accs, randVals(r))
		}
		b := testAggs.AppendBinary([]byte("prefix"), accs)[6:]
		got, err := testAggs.DecodeAccs(b)
		if err != nil {
			t.Fatal(err)
		}
		if b2 := testAggs.AppendBinary(nil, got); !bytes.Equal(b, b2) {
			t.Errorf("%d events: round trip differs", n)
		}
		for i := range testAggs {
			if g, w := testAggs.Result(got, i), testAggs.Result(accs, i); !sameValue(g, w) {
				t.Errorf("%v: %+v, want %+v", testAggs[i], g, w)
			}
		}
		for k := range b {
			if _, err := testAggs.DecodeAccs(b[:k]); err == nil {
				t.Fatalf("decoded a truncation to %d of %d bytes", k, len(b))
			}
		}
		if _, err := testAggs.DecodeAccs(append(b, 0)); err == nil {
			t.Error("decoded trailing bytes")
		}
		if _, err := testAggs[1:].DecodeAccs(b); err == nil {
			t.Error("decoded with fewer aggregates")
		}
		other := append(Aggs(nil), testAggs...)
		other[2].Func = Avg
		if _, err := other.DecodeAccs(b); err == nil {
			t.Error("decoded for another aggregate")
		}
		other = append(Aggs(nil), testAggs...)
		other[12].Precision = 7
		if n > 0 {
			if _, err := other.DecodeAccs(b); err == nil {
				t.Error("decoded for another precision")
			}
		}
	}
}

func sameValue(a, b Value) bool {
	return a.Null == b.Null && a.Int == b.Int && math.Float64bits(a.Float) == math.Float64bits(b.Float) && bytes.Equal(a.Bytes, b.Bytes)
}
