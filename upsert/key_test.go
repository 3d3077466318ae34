package upsert

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/extensions"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/google/uuid"
)

// keyColSpec is a column of the test schema: its type and a generator that
// appends a random value from a small domain (so equal values are common)
// and returns the value's reference form. Reference forms are equal exactly
// when the values are.
type keyColSpec struct {
	name string
	typ  arrow.DataType
	gen  func(b array.Builder, r *rand.Rand) string
}

func pick[T any](r *rand.Rand, vs ...T) T { return vs[r.IntN(len(vs))] }

// testStrings include the string tag byte (0x06), so that a tag alone
// cannot separate values.
var testStrings = []string{"", "a", "b", "ab", "c", "bc", "abc", "\x00", "a\x00", "\x00a", "\x06", "a\x06", "\x06b", "é", strings.Repeat("z", 200)}

func keySpecs() []keyColSpec {
	ints := []int64{math.MinInt64, -256, -255, -2, -1, 0, 1, 2, 255, 256, math.MaxInt64}
	return []keyColSpec{
		{"i8", arrow.PrimitiveTypes.Int8, func(b array.Builder, r *rand.Rand) string {
			v := pick(r, int8(math.MinInt8), -1, 0, 1, math.MaxInt8)
			b.(*array.Int8Builder).Append(v)
			return fmt.Sprint(v)
		}},
		{"i16", arrow.PrimitiveTypes.Int16, func(b array.Builder, r *rand.Rand) string {
			v := pick(r, int16(math.MinInt16), -1, 0, 1, 300)
			b.(*array.Int16Builder).Append(v)
			return fmt.Sprint(v)
		}},
		{"i32", arrow.PrimitiveTypes.Int32, func(b array.Builder, r *rand.Rand) string {
			v := pick(r, int32(math.MinInt32), -70000, -1, 0, 1, math.MaxInt32)
			b.(*array.Int32Builder).Append(v)
			return fmt.Sprint(v)
		}},
		{"i64", arrow.PrimitiveTypes.Int64, func(b array.Builder, r *rand.Rand) string {
			v := pick(r, ints...)
			b.(*array.Int64Builder).Append(v)
			return fmt.Sprint(v)
		}},
		{"u8", arrow.PrimitiveTypes.Uint8, func(b array.Builder, r *rand.Rand) string {
			v := pick(r, uint8(0), 1, 255)
			b.(*array.Uint8Builder).Append(v)
			return fmt.Sprint(v)
		}},
		{"u16", arrow.PrimitiveTypes.Uint16, func(b array.Builder, r *rand.Rand) string {
			v := pick(r, uint16(0), 1, 65535)
			b.(*array.Uint16Builder).Append(v)
			return fmt.Sprint(v)
		}},
		{"u32", arrow.PrimitiveTypes.Uint32, func(b array.Builder, r *rand.Rand) string {
			v := pick(r, uint32(0), 1, math.MaxUint32)
			b.(*array.Uint32Builder).Append(v)
			return fmt.Sprint(v)
		}},
		{"u64", arrow.PrimitiveTypes.Uint64, func(b array.Builder, r *rand.Rand) string {
			v := pick(r, uint64(0), 1, math.MaxInt64, math.MaxInt64+1, math.MaxUint64)
			b.(*array.Uint64Builder).Append(v)
			return fmt.Sprint(v)
		}},
		{"bool", arrow.FixedWidthTypes.Boolean, func(b array.Builder, r *rand.Rand) string {
			v := r.IntN(2) == 0
			b.(*array.BooleanBuilder).Append(v)
			return fmt.Sprint(v)
		}},
		{"dec", &arrow.Decimal128Type{Precision: 38, Scale: 4}, func(b array.Builder, r *rand.Rand) string {
			v := pick(r, decimal128.New(0, 0), decimal128.FromI64(-1), decimal128.FromI64(1),
				decimal128.FromI64(-12345), decimal128.New(1, 0), decimal128.New(-1, 1),
				decimal128.New(math.MaxInt64, math.MaxUint64), decimal128.New(math.MinInt64, 0))
			b.(*array.Decimal128Builder).Append(v)
			return fmt.Sprint(v.HighBits(), v.LowBits())
		}},
		{"date", arrow.FixedWidthTypes.Date32, func(b array.Builder, r *rand.Rand) string {
			v := pick(r, arrow.Date32(-1), 0, 1, 19000, math.MinInt32, math.MaxInt32)
			b.(*array.Date32Builder).Append(v)
			return fmt.Sprint(v)
		}},
		{"time_ms", arrow.FixedWidthTypes.Time32ms, func(b array.Builder, r *rand.Rand) string {
			v := pick(r, arrow.Time32(0), 1, 86399999)
			b.(*array.Time32Builder).Append(v)
			return fmt.Sprint(v)
		}},
		{"time_us", arrow.FixedWidthTypes.Time64us, func(b array.Builder, r *rand.Rand) string {
			v := pick(r, arrow.Time64(0), 1, 86399999999)
			b.(*array.Time64Builder).Append(v)
			return fmt.Sprint(v)
		}},
		{"ts_us", &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, func(b array.Builder, r *rand.Rand) string {
			v := pick(r, arrow.Timestamp(-1), 0, 1, 1700000000000000, math.MinInt64)
			b.(*array.TimestampBuilder).Append(v)
			return fmt.Sprint(v)
		}},
		{"ts_ns", &arrow.TimestampType{Unit: arrow.Nanosecond}, func(b array.Builder, r *rand.Rand) string {
			v := pick(r, arrow.Timestamp(-1), 0, 1, math.MaxInt64)
			b.(*array.TimestampBuilder).Append(v)
			return fmt.Sprint(v)
		}},
		{"str", arrow.BinaryTypes.String, func(b array.Builder, r *rand.Rand) string {
			v := pick(r, testStrings...)
			b.(*array.StringBuilder).Append(v)
			return fmt.Sprintf("%q", v)
		}},
		{"str2", arrow.BinaryTypes.String, func(b array.Builder, r *rand.Rand) string {
			v := pick(r, testStrings...)
			b.(*array.StringBuilder).Append(v)
			return fmt.Sprintf("%q", v)
		}},
		{"lstr", arrow.BinaryTypes.LargeString, func(b array.Builder, r *rand.Rand) string {
			v := pick(r, testStrings...)
			b.(*array.LargeStringBuilder).Append(v)
			return fmt.Sprintf("%q", v)
		}},
		{"bin", arrow.BinaryTypes.Binary, func(b array.Builder, r *rand.Rand) string {
			v := pick(r, testStrings...)
			b.(*array.BinaryBuilder).Append([]byte(v))
			return fmt.Sprintf("%q", v)
		}},
		{"lbin", arrow.BinaryTypes.LargeBinary, func(b array.Builder, r *rand.Rand) string {
			v := pick(r, testStrings...)
			b.(*array.BinaryBuilder).Append([]byte(v))
			return fmt.Sprintf("%q", v)
		}},
		{"fixed3", &arrow.FixedSizeBinaryType{ByteWidth: 3}, func(b array.Builder, r *rand.Rand) string {
			v := pick(r, "abc", "ab\x00", "\x00\x00\x00", "bca")
			b.(*array.FixedSizeBinaryBuilder).Append([]byte(v))
			return fmt.Sprintf("%q", v)
		}},
		{"uuid", extensions.NewUUIDType(), func(b array.Builder, r *rand.Rand) string {
			v := pick(r, uuid.Nil, uuid.Max, uuid.MustParse("0190a0f6-8c2b-7b4e-9d41-3c6f0e2a5b7d"))
			b.(*extensions.UUIDBuilder).Append(v)
			return v.String()
		}},
	}
}

// buildBatch builds n rows of the given columns and returns the batch and
// each row's reference form.
func buildBatch(t testing.TB, specs []keyColSpec, n int, r *rand.Rand) (arrow.RecordBatch, []string) {
	fields := make([]arrow.Field, len(specs))
	for i, s := range specs {
		fields[i] = arrow.Field{Name: s.name, Type: s.typ, Nullable: true}
	}
	sc := arrow.NewSchema(fields, nil)
	b := array.NewRecordBuilder(memory.NewGoAllocator(), sc)
	defer b.Release()
	refs := make([]string, n)
	for row := range n {
		parts := make([]string, len(specs))
		for i, s := range specs {
			parts[i] = s.gen(b.Field(i), r)
		}
		refs[row] = strings.Join(parts, "|")
	}
	rec := b.NewRecordBatch()
	t.Cleanup(rec.Release)
	return rec, refs
}

// TestKeyInjective encodes random rows over random column subsets and checks
// that encodings are equal exactly when the reference forms are.
func TestKeyInjective(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	all := keySpecs()
	rounds := 300
	if testing.Short() {
		rounds = 30
	}
	for round := range rounds {
		ncols := 1 + r.IntN(4)
		perm := r.Perm(len(all))[:ncols]
		specs := make([]keyColSpec, ncols)
		names := make([]string, ncols)
		for i, p := range perm {
			specs[i] = all[p]
			names[i] = all[p].name
		}
		rec, refs := buildBatch(t, specs, 400, r)
		// A key may list the schema's columns in any order; use the reverse.
		keyNames := make([]string, ncols)
		keyRefs := make([]string, len(refs))
		for i := range names {
			keyNames[i] = names[ncols-1-i]
		}
		for row, ref := range refs {
			parts := strings.Split(ref, "|")
			for i, j := 0, len(parts)-1; i < j; i, j = i+1, j-1 {
				parts[i], parts[j] = parts[j], parts[i]
			}
			keyRefs[row] = strings.Join(parts, "|")
		}
		enc, err := NewKeyEncoder(rec.Schema(), keyNames)
		if err != nil {
			t.Fatal(err)
		}
		byKey := map[string]string{}
		byRef := map[string]string{}
		var buf []byte
		for row := range int(rec.NumRows()) {
			buf, err = enc.AppendKey(buf[:0], rec, row)
			if err != nil {
				t.Fatalf("round %d row %d: %v", round, row, err)
			}
			k, ref := string(buf), keyRefs[row]
			if prev, ok := byKey[k]; ok && prev != ref {
				t.Fatalf("columns %v: %s and %s encode the same: %x", keyNames, prev, ref, k)
			}
			if prev, ok := byRef[ref]; ok && prev != k {
				t.Fatalf("columns %v: %s encodes as %x and %x", keyNames, ref, prev, k)
			}
			byKey[k], byRef[ref] = ref, k
		}
		if round == 0 && len(byKey) < 2 {
			t.Fatal("degenerate round")
		}
	}
}

// TestKeyStringBoundaries is the classic concatenation ambiguity.
func TestKeyStringBoundaries(t *testing.T) {
	sc := arrow.NewSchema([]arrow.Field{{Name: "a", Type: arrow.BinaryTypes.String}, {Name: "b", Type: arrow.BinaryTypes.String}}, nil)
	b := array.NewRecordBuilder(memory.NewGoAllocator(), sc)
	defer b.Release()
	rows := [][2]string{{"ab", "c"}, {"a", "bc"}, {"abc", ""}, {"", "abc"}, {"", ""}, {"a\x06", "b"}, {"a", "\x06b"}}
	for _, r := range rows {
		b.Field(0).(*array.StringBuilder).Append(r[0])
		b.Field(1).(*array.StringBuilder).Append(r[1])
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	enc, err := NewKeyEncoder(sc, []string{"a", "b"})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for i := range rows {
		k, err := enc.AppendKey(nil, rec, i)
		if err != nil {
			t.Fatal(err)
		}
		if j, ok := seen[string(k)]; ok {
			t.Fatalf("%q and %q encode the same", rows[j], rows[i])
		}
		seen[string(k)] = i
	}
}

// single encodes one value of one column.
func single(t *testing.T, typ arrow.DataType, appendVal func(array.Builder)) []byte {
	t.Helper()
	sc := arrow.NewSchema([]arrow.Field{{Name: "k", Type: typ}}, nil)
	b := array.NewRecordBuilder(memory.NewGoAllocator(), sc)
	defer b.Release()
	appendVal(b.Field(0))
	rec := b.NewRecordBatch()
	defer rec.Release()
	enc, err := NewKeyEncoder(sc, []string{"k"})
	if err != nil {
		t.Fatal(err)
	}
	k, err := enc.AppendKey(nil, rec, 0)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestKeyCanonicalAcrossWidths: a value encodes the same whatever integer
// width or string flavor carries it, as Iceberg type promotion requires.
func TestKeyCanonicalAcrossWidths(t *testing.T) {
	for _, v := range []int64{-128, -1, 0, 1, 127} {
		want := single(t, arrow.PrimitiveTypes.Int64, func(b array.Builder) { b.(*array.Int64Builder).Append(v) })
		for name, k := range map[string][]byte{
			"int8":  single(t, arrow.PrimitiveTypes.Int8, func(b array.Builder) { b.(*array.Int8Builder).Append(int8(v)) }),
			"int16": single(t, arrow.PrimitiveTypes.Int16, func(b array.Builder) { b.(*array.Int16Builder).Append(int16(v)) }),
			"int32": single(t, arrow.PrimitiveTypes.Int32, func(b array.Builder) { b.(*array.Int32Builder).Append(int32(v)) }),
		} {
			if !bytes.Equal(k, want) {
				t.Errorf("%d as %s encodes %x, as int64 %x", v, name, k, want)
			}
		}
		if v >= 0 {
			k := single(t, arrow.PrimitiveTypes.Uint64, func(b array.Builder) { b.(*array.Uint64Builder).Append(uint64(v)) })
			if !bytes.Equal(k, want) {
				t.Errorf("%d as uint64 encodes %x, as int64 %x", v, k, want)
			}
		}
	}
	big := single(t, arrow.PrimitiveTypes.Uint64, func(b array.Builder) { b.(*array.Uint64Builder).Append(math.MaxUint64) })
	minus1 := single(t, arrow.PrimitiveTypes.Int64, func(b array.Builder) { b.(*array.Int64Builder).Append(-1) })
	if bytes.Equal(big, minus1) {
		t.Error("MaxUint64 encodes as -1")
	}
	s := single(t, arrow.BinaryTypes.String, func(b array.Builder) { b.(*array.StringBuilder).Append("x") })
	ls := single(t, arrow.BinaryTypes.LargeString, func(b array.Builder) { b.(*array.LargeStringBuilder).Append("x") })
	bin := single(t, arrow.BinaryTypes.Binary, func(b array.Builder) { b.(*array.BinaryBuilder).Append([]byte("x")) })
	if !bytes.Equal(s, ls) || bytes.Equal(s, bin) {
		t.Errorf("string %x, large string %x, binary %x", s, ls, bin)
	}
}

// TestKeyOrder: single-column fixed-width numeric keys order bytewise like
// their values.
func TestKeyOrder(t *testing.T) {
	ints := []int64{math.MinInt64, -1 << 40, -256, -1, 0, 1, 255, 1 << 40, math.MaxInt64}
	var prev []byte
	for _, v := range ints {
		k := single(t, arrow.PrimitiveTypes.Int64, func(b array.Builder) { b.(*array.Int64Builder).Append(v) })
		if prev != nil && bytes.Compare(prev, k) >= 0 {
			t.Errorf("int64 %d does not sort after its predecessor", v)
		}
		prev = k
	}
	decs := []decimal128.Num{decimal128.New(math.MinInt64, 0), decimal128.New(-1, 0), decimal128.FromI64(-1), decimal128.FromI64(0), decimal128.FromI64(1), decimal128.New(1, 0), decimal128.New(math.MaxInt64, math.MaxUint64)}
	prev = nil
	typ := &arrow.Decimal128Type{Precision: 38, Scale: 2}
	for _, v := range decs {
		k := single(t, typ, func(b array.Builder) { b.(*array.Decimal128Builder).Append(v) })
		if prev != nil && bytes.Compare(prev, k) >= 0 {
			t.Errorf("decimal %v does not sort after its predecessor", v)
		}
		prev = k
	}
}

func TestKeyNullsRejected(t *testing.T) {
	sc := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "name", Type: arrow.BinaryTypes.String, Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(memory.NewGoAllocator(), sc)
	defer b.Release()
	ids, names := b.Field(0).(*array.Int64Builder), b.Field(1).(*array.StringBuilder)
	ids.Append(1)
	names.Append("")
	ids.AppendNull()
	names.Append("x")
	ids.Append(3)
	names.AppendNull()
	for i := range 20 {
		ids.Append(int64(i))
		names.Append("")
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	enc, err := NewKeyEncoder(sc, []string{"id", "name"})
	if err != nil {
		t.Fatal(err)
	}
	dst := []byte("prefix")
	if k, err := enc.AppendKey(dst, rec, 0); err != nil || len(k) <= len(dst) {
		t.Fatalf("row 0 (empty string, not null): %x, %v", k, err)
	}
	for _, row := range []int{1, 2} {
		k, err := enc.AppendKey(dst, rec, row)
		if err == nil || !strings.Contains(err.Error(), "null") {
			t.Errorf("row %d: err %v", row, err)
		}
		if string(k) != "prefix" {
			t.Errorf("row %d: dst changed to %q", row, k)
		}
	}
	// A slice starting at a null row: the bitmap offset is honored.
	sl := rec.NewSlice(1, 10)
	defer sl.Release()
	if _, err := enc.AppendKey(nil, sl, 0); err == nil {
		t.Error("null in sliced batch accepted")
	}
	if _, err := enc.AppendKey(nil, sl, 2); err != nil {
		t.Errorf("sliced row 2: %v", err)
	}
}

// TestKeySlices: rows of a sliced batch encode like the same rows unsliced.
func TestKeySlices(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	specs := keySpecs()
	rec, _ := buildBatch(t, specs, 100, r)
	var names []string
	for _, s := range specs {
		names = append(names, s.name)
	}
	enc, err := NewKeyEncoder(rec.Schema(), names)
	if err != nil {
		t.Fatal(err)
	}
	sl := rec.NewSlice(37, 90)
	defer sl.Release()
	for i := range int(sl.NumRows()) {
		a, err := enc.AppendKey(nil, sl, i)
		if err != nil {
			t.Fatal(err)
		}
		b, err := enc.AppendKey(nil, rec, 37+i)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Fatalf("sliced row %d: %x, unsliced %x", i, a, b)
		}
	}
}

func TestKeyEncoderErrors(t *testing.T) {
	sc := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "f", Type: arrow.PrimitiveTypes.Float64},
		{Name: "l", Type: arrow.ListOf(arrow.PrimitiveTypes.Int64)},
		{Name: "dup", Type: arrow.PrimitiveTypes.Int64},
		{Name: "dup", Type: arrow.PrimitiveTypes.Int64},
		{Name: "s", Type: arrow.BinaryTypes.String},
	}, nil)
	for _, cols := range [][]string{nil, {"nope"}, {"f"}, {"l"}, {"dup"}, {"id", "id"}} {
		if _, err := NewKeyEncoder(sc, cols); err == nil {
			t.Errorf("NewKeyEncoder(%q) accepted", cols)
		}
	}
	enc, err := NewKeyEncoder(sc, []string{"id"})
	if err != nil {
		t.Fatal(err)
	}
	if got := enc.Columns(); len(got) != 1 || got[0] != "id" {
		t.Errorf("Columns = %q", got)
	}
	// A batch whose id column has another type.
	other := arrow.NewSchema([]arrow.Field{{Name: "id", Type: arrow.PrimitiveTypes.Int32}}, nil)
	b := array.NewRecordBuilder(memory.NewGoAllocator(), other)
	defer b.Release()
	b.Field(0).(*array.Int32Builder).Append(1)
	rec := b.NewRecordBatch()
	defer rec.Release()
	if _, err := enc.AppendKey(nil, rec, 0); err == nil {
		t.Error("batch with a different key type accepted")
	}
	enc32, err := NewKeyEncoder(other, []string{"id"})
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range []int{-1, 1} {
		if _, err := enc32.AppendKey(nil, rec, row); err == nil {
			t.Errorf("row %d accepted", row)
		}
	}
	// Too long.
	ssc := arrow.NewSchema([]arrow.Field{{Name: "s", Type: arrow.BinaryTypes.String}}, nil)
	sb := array.NewRecordBuilder(memory.NewGoAllocator(), ssc)
	defer sb.Release()
	sb.Field(0).(*array.StringBuilder).Append(strings.Repeat("x", MaxKeyLen))
	sb.Field(0).(*array.StringBuilder).Append(strings.Repeat("x", MaxKeyLen-4))
	srec := sb.NewRecordBatch()
	defer srec.Release()
	senc, err := NewKeyEncoder(ssc, []string{"s"})
	if err != nil {
		t.Fatal(err)
	}
	if k, err := senc.AppendKey([]byte("p"), srec, 0); !errors.Is(err, ErrKeyTooLong) || string(k) != "p" {
		t.Errorf("long key: %v", err)
	}
	if k, err := senc.AppendKey(nil, srec, 1); err != nil || len(k) != MaxKeyLen {
		t.Errorf("key of MaxKeyLen: %d bytes, %v", len(k), err)
	}
}

// TestKeyNoAllocs: encoding a row of a bound batch allocates nothing.
func TestKeyNoAllocs(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 9))
	specs := keySpecs()
	rec, _ := buildBatch(t, specs, 64, r)
	var names []string
	for _, s := range specs {
		names = append(names, s.name)
	}
	enc, err := NewKeyEncoder(rec.Schema(), names)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 0, 4096)
	row := 0
	allocs := testing.AllocsPerRun(1000, func() {
		buf, err = enc.AppendKey(buf[:0], rec, row%64)
		row++
	})
	if err != nil {
		t.Fatal(err)
	}
	if allocs != 0 {
		t.Errorf("AppendKey allocates %.1f times per row", allocs)
	}
}

func BenchmarkAppendKey(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	for _, cols := range [][]string{{"i64"}, {"str", "i32"}, {"uuid", "ts_us", "dec"}} {
		b.Run(strings.Join(cols, "+"), func(b *testing.B) {
			var specs []keyColSpec
			for _, s := range keySpecs() {
				for _, c := range cols {
					if s.name == c {
						specs = append(specs, s)
					}
				}
			}
			rec, _ := buildBatch(b, specs, 1024, r)
			enc, err := NewKeyEncoder(rec.Schema(), cols)
			if err != nil {
				b.Fatal(err)
			}
			buf := make([]byte, 0, 512)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if buf, err = enc.AppendKey(buf[:0], rec, i&1023); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
