package timetravel_test

import (
	"bytes"
	"encoding/json"
	"math"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/extensions"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/floelake/floe/timetravel"
)

// allTypesSchema has a column of every Iceberg primitive type, and a
// struct, a list and a map.
func allTypesSchema() *iceberg.Schema {
	f := func(id int, name string, t iceberg.Type) iceberg.NestedField {
		return iceberg.NestedField{ID: id, Name: name, Type: t}
	}
	return iceberg.NewSchema(0,
		f(1, "bool", iceberg.PrimitiveTypes.Bool),
		f(2, "int", iceberg.PrimitiveTypes.Int32),
		f(3, "long", iceberg.PrimitiveTypes.Int64),
		f(4, "float", iceberg.PrimitiveTypes.Float32),
		f(5, "double", iceberg.PrimitiveTypes.Float64),
		f(6, "dec", iceberg.DecimalTypeOf(9, 2)),
		f(7, "bigdec", iceberg.DecimalTypeOf(38, 4)),
		f(8, "date", iceberg.PrimitiveTypes.Date),
		f(9, "time", iceberg.PrimitiveTypes.Time),
		f(10, "ts", iceberg.PrimitiveTypes.Timestamp),
		f(11, "tz", iceberg.PrimitiveTypes.TimestampTz),
		f(12, "ts_ns", iceberg.PrimitiveTypes.TimestampNs),
		f(13, "tz_ns", iceberg.PrimitiveTypes.TimestampTzNs),
		f(14, "str", iceberg.PrimitiveTypes.String),
		f(15, "uuid", iceberg.PrimitiveTypes.UUID),
		f(16, "fixed", iceberg.FixedTypeOf(3)),
		f(17, "bin", iceberg.PrimitiveTypes.Binary),
		f(18, "st", &iceberg.StructType{FieldList: []iceberg.NestedField{
			f(21, "a", iceberg.PrimitiveTypes.Int32), f(22, "b", iceberg.PrimitiveTypes.String)}}),
		f(19, "list", &iceberg.ListType{ElementID: 23, Element: iceberg.PrimitiveTypes.Int64}),
		f(20, "map", &iceberg.MapType{KeyID: 24, KeyType: iceberg.PrimitiveTypes.String, ValueID: 25,
			ValueType: iceberg.PrimitiveTypes.Int32}),
	)
}

type mapEntry struct {
	k string
	v any // int32 or nil
}

// allTypesRows are the rows of allTypesRecord, in schema order; nil is
// null.
var allTypesRows = [][]any{
	{
		true, int32(7), int64(42), float32(1.5), 0.1, int64(1230), "12345678901234567890123456789012.3456",
		"2026-01-02", 3*time.Hour + 4*time.Minute + 5*time.Second + 500*time.Millisecond,
		"2026-01-02T03:04:05.123456Z", "2026-01-02T03:04:05Z", "2026-01-02T03:04:05.123456789Z", "2026-01-02T03:04:05.1Z",
		"plain", "f81d4fae-7dec-11d0-a765-00a0c91e6bf6", []byte{1, 2, 3}, []byte("hi"),
		[]any{int32(1), "x"}, []any{int64(1), int64(2)}, []mapEntry{{"a", int32(1)}, {"b", nil}},
	},
	{
		false, int32(math.MinInt32), int64(math.MinInt64), float32(math.NaN()), math.Inf(1), int64(-1), "-0.0001",
		"1969-12-31", time.Duration(0),
		"1969-12-31T23:59:59.999999Z", "1900-01-01T00:00:00Z", "1970-01-01T00:00:00Z", "2262-04-11T23:47:16.854775807Z",
		"q\"b\\s/\n\t\x01<&>\u2028é\xff", "00000000-0000-0000-0000-000000000000", []byte{0, 0, 0}, []byte{},
		[]any{nil, nil}, []any{nil, int64(math.MaxInt64)}, []mapEntry{},
	},
	{nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil, nil},
	{
		true, int32(math.MaxInt32), int64(math.MaxInt64), float32(0.1), math.Inf(-1), int64(5), "0",
		"2026-03-01", 23*time.Hour + 59*time.Minute + 59*time.Second + 999999*time.Microsecond,
		"2026-01-02T00:00:00Z", "2026-01-02T03:04:05.000001Z", "2026-01-02T00:00:00Z", "2026-01-02T00:00:00Z",
		"", "F81D4FAE-7DEC-11D0-A765-00A0C91E6BF6", nil, nil,
		nil, []any{}, nil,
	},
	{
		false, int32(0), int64(0), float32(1e-7), 1e21, int64(-123456), "-12345678901234567890123456789012.3456",
		nil, nil, nil, nil, nil, nil, nil, nil, nil, nil,
		[]any{nil, "only b"}, nil, nil,
	},
}

// allTypesGolden is what WriteJSONRows writes for allTypesRows.
var allTypesGolden = strings.Join([]string{
	`{"bool":true,"int":7,"long":42,"float":1.5,"double":0.1,"dec":"12.30","bigdec":"12345678901234567890123456789012.3456",` +
		`"date":"2026-01-02","time":"03:04:05.5","ts":"2026-01-02T03:04:05.123456","tz":"2026-01-02T03:04:05Z",` +
		`"ts_ns":"2026-01-02T03:04:05.123456789","tz_ns":"2026-01-02T03:04:05.1Z","str":"plain",` +
		`"uuid":"f81d4fae-7dec-11d0-a765-00a0c91e6bf6","fixed":"AQID","bin":"aGk=","st":{"a":1,"b":"x"},"list":[1,2],` +
		`"map":[{"key":"a","value":1},{"key":"b","value":null}]}`,
	`{"bool":false,"int":-2147483648,"long":-9223372036854775808,"float":"NaN","double":"Infinity","dec":"-0.01",` +
		`"bigdec":"-0.0001","date":"1969-12-31","time":"00:00:00","ts":"1969-12-31T23:59:59.999999","tz":"1900-01-01T00:00:00Z",` +
		`"ts_ns":"1970-01-01T00:00:00","tz_ns":"2262-04-11T23:47:16.854775807Z","str":"q\"b\\s/\n\t\u0001<&>\u2028é\ufffd",` +
		`"uuid":"00000000-0000-0000-0000-000000000000","fixed":"AAAA","bin":"","st":{"a":null,"b":null},"list":[null,9223372036854775807],` +
		`"map":[]}`,
	`{"bool":null,"int":null,"long":null,"float":null,"double":null,"dec":null,"bigdec":null,"date":null,"time":null,` +
		`"ts":null,"tz":null,"ts_ns":null,"tz_ns":null,"str":null,"uuid":null,"fixed":null,"bin":null,"st":null,"list":null,"map":null}`,
	`{"bool":true,"int":2147483647,"long":9223372036854775807,"float":0.1,"double":"-Infinity","dec":"0.05","bigdec":"0.0000",` +
		`"date":"2026-03-01","time":"23:59:59.999999","ts":"2026-01-02T00:00:00","tz":"2026-01-02T03:04:05.000001Z",` +
		`"ts_ns":"2026-01-02T00:00:00","tz_ns":"2026-01-02T00:00:00Z","str":"","uuid":"f81d4fae-7dec-11d0-a765-00a0c91e6bf6",` +
		`"fixed":null,"bin":null,"st":null,"list":[],"map":null}`,
	`{"bool":false,"int":0,"long":0,"float":1e-7,"double":1e+21,"dec":"-1234.56","bigdec":"-12345678901234567890123456789012.3456",` +
		`"date":null,"time":null,"ts":null,"tz":null,"ts_ns":null,"tz_ns":null,"str":null,"uuid":null,"fixed":null,"bin":null,` +
		`"st":{"a":null,"b":"only b"},"list":null,"map":null}`,
}, "\n") + "\n"

// allTypesRecord builds allTypesRows with the Arrow schema a scan of
// allTypesSchema has.
func allTypesRecord(t *testing.T, mem memory.Allocator) arrow.RecordBatch {
	t.Helper()
	sc, err := table.SchemaToArrowSchema(allTypesSchema(), nil, false, false)
	require.NoError(t, err)
	b := array.NewRecordBuilder(mem, sc)
	defer b.Release()
	for _, row := range allTypesRows {
		for i, v := range row {
			appendAny(t, b.Field(i), v)
		}
	}
	return b.NewRecordBatch()
}

func parseInstant(t *testing.T, s string) time.Time {
	t.Helper()
	ts, err := time.Parse(time.RFC3339Nano, s)
	require.NoError(t, err)
	return ts
}

func appendAny(t *testing.T, fb array.Builder, v any) {
	t.Helper()
	if v == nil {
		fb.AppendNull()
		return
	}
	switch fb := fb.(type) {
	case *array.BooleanBuilder:
		fb.Append(v.(bool))
	case *array.Int32Builder:
		fb.Append(v.(int32))
	case *array.Int64Builder:
		fb.Append(v.(int64))
	case *array.Float32Builder:
		fb.Append(v.(float32))
	case *array.Float64Builder:
		fb.Append(v.(float64))
	case *array.Decimal128Builder:
		switch v := v.(type) {
		case int64:
			fb.Append(decimal128.FromI64(v))
		case string:
			r, ok := new(big.Rat).SetString(v)
			require.True(t, ok)
			n := new(big.Int).Quo(new(big.Int).Mul(r.Num(), big.NewInt(10000)), r.Denom())
			fb.Append(decimal128.FromBigInt(n))
		}
	case *array.Date32Builder:
		d, err := time.Parse(time.DateOnly, v.(string))
		require.NoError(t, err)
		fb.Append(arrow.Date32FromTime(d))
	case *array.Time64Builder:
		fb.Append(arrow.Time64(v.(time.Duration).Microseconds()))
	case *array.TimestampBuilder:
		ts := parseInstant(t, v.(string))
		if fb.Type().(*arrow.TimestampType).Unit == arrow.Nanosecond {
			fb.Append(arrow.Timestamp(ts.UnixNano()))
		} else {
			fb.Append(arrow.Timestamp(ts.UnixMicro()))
		}
	case *array.StringBuilder:
		fb.Append(v.(string))
	case *extensions.UUIDBuilder:
		fb.Append(uuid.MustParse(v.(string)))
	case *array.FixedSizeBinaryBuilder:
		fb.Append(v.([]byte))
	case *array.BinaryBuilder:
		fb.Append(v.([]byte))
	case *array.StructBuilder:
		fb.Append(true)
		for i, fv := range v.([]any) {
			appendAny(t, fb.FieldBuilder(i), fv)
		}
	case *array.ListBuilder:
		fb.Append(true)
		for _, e := range v.([]any) {
			appendAny(t, fb.ValueBuilder(), e)
		}
	case *array.MapBuilder:
		fb.Append(true)
		for _, e := range v.([]mapEntry) {
			fb.KeyBuilder().(*array.StringBuilder).Append(e.k)
			appendAny(t, fb.ItemBuilder(), e.v)
		}
	default:
		t.Fatalf("no way to append to a %T", fb)
	}
}

func TestWriteJSONRowsGolden(t *testing.T) {
	rec := allTypesRecord(t, memory.DefaultAllocator)
	defer rec.Release()
	// The decimal(9, 2) of row 3 is 0.05, of row 4 -1234.56.
	var buf bytes.Buffer
	require.NoError(t, timetravel.WriteJSONRows(&buf, rec))
	got := strings.Split(buf.String(), "\n")
	want := strings.Split(allTypesGolden, "\n")
	require.Equal(t, len(want), len(got))
	for i := range want {
		require.Equal(t, want[i], got[i], "row %d", i)
		if want[i] != "" {
			require.True(t, json.Valid([]byte(got[i])), "row %d", i)
		}
	}

	// A slice writes the same rows, its offsets into lists, maps,
	// structs and strings followed.
	part := rec.NewSlice(1, 4)
	defer part.Release()
	buf.Reset()
	require.NoError(t, timetravel.WriteJSONRows(&buf, part))
	require.Equal(t, strings.Join(want[1:4], "\n")+"\n", buf.String())
}

func TestWriteJSONRowsStringsAndFloats(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var strs []string
	for range 2000 {
		b := make([]byte, r.IntN(12))
		for i := range b {
			switch r.IntN(4) {
			case 0:
				b[i] = byte(r.IntN(0x20))
			case 1:
				b[i] = byte(0x80 + r.IntN(0x80))
			default:
				b[i] = byte(0x20 + r.IntN(0x60))
			}
		}
		strs = append(strs, string(b))
	}
	strs = append(strs, "\u2028\u2029", "日本語", "\x7f", "a\"b", `\`, "\U0001F600", "\xed\xa0\x80")
	var floats []float64
	for range 2000 {
		floats = append(floats, math.Float64frombits(r.Uint64()))
	}
	floats = append(floats, 0, math.Copysign(0, -1), 1e20, 1e21, 1e-6, 1e-7, 123456789, 5e-324, math.MaxFloat64,
		float64(float32(0.1)), 100, 1.5e300)

	sc := arrow.NewSchema([]arrow.Field{
		{Name: "s", Type: arrow.BinaryTypes.String},
		{Name: "d", Type: arrow.PrimitiveTypes.Float64},
		{Name: "f", Type: arrow.PrimitiveTypes.Float32},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer b.Release()
	n := max(len(strs), len(floats))
	var want bytes.Buffer
	enc := json.NewEncoder(&want)
	enc.SetEscapeHTML(false)
	for i := range n {
		s, d := strs[i%len(strs)], floats[i%len(floats)]
		if math.IsNaN(d) || math.IsInf(d, 0) {
			d = float64(i)
		}
		f := float32(d)
		if math.IsInf(float64(f), 0) {
			f = float32(i)
		}
		b.Field(0).(*array.StringBuilder).Append(s)
		b.Field(1).(*array.Float64Builder).Append(d)
		b.Field(2).(*array.Float32Builder).Append(f)
		require.NoError(t, enc.Encode(struct {
			S string  `json:"s"`
			D float64 `json:"d"`
			F float32 `json:"f"`
		}{s, d, f}))
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	var got bytes.Buffer
	require.NoError(t, timetravel.WriteJSONRows(&got, rec))
	wantLines, gotLines := strings.Split(want.String(), "\n"), strings.Split(got.String(), "\n")
	require.Equal(t, len(wantLines), len(gotLines))
	for i := range wantLines {
		require.Equal(t, wantLines[i], gotLines[i], "row %d", i)
	}
}

func TestWriteJSONRowsUnsupported(t *testing.T) {
	dt := arrow.SparseUnionOf([]arrow.Field{{Name: "a", Type: arrow.PrimitiveTypes.Int32}}, []arrow.UnionTypeCode{0})
	sc := arrow.NewSchema([]arrow.Field{{Name: "u", Type: dt, Nullable: true}}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer b.Release()
	rec := b.NewRecordBatch()
	defer rec.Release()
	var buf bytes.Buffer
	require.ErrorContains(t, timetravel.WriteJSONRows(&buf, rec), `column "u": cannot write a value of type sparse_union`)
	require.Zero(t, buf.Len())
}

func TestIPCRoundTrip(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	rec := allTypesRecord(t, mem)
	defer rec.Release()

	for _, in := range []arrow.RecordBatch{rec, rec.NewSlice(1, 3), rec.NewSlice(0, 0)} {
		data, err := timetravel.IPCBatch(in)
		require.NoError(t, err)
		recs, err := timetravel.ReadIPCBatch(data, mem)
		require.NoError(t, err)
		require.Len(t, recs, 1)
		require.True(t, in.Schema().Equal(recs[0].Schema()), "schema %s\nread back as %s", in.Schema(), recs[0].Schema())
		require.True(t, array.RecordApproxEqual(in, recs[0], array.WithNaNsEqual(true), array.WithAbsTolerance(0)),
			"batch read back differs")

		var a, b bytes.Buffer
		require.NoError(t, timetravel.WriteJSONRows(&a, in))
		require.NoError(t, timetravel.WriteJSONRows(&b, recs[0]))
		require.Equal(t, a.String(), b.String())
		recs[0].Release()
		if in != rec {
			in.Release()
		}
	}

	_, err := timetravel.ReadIPCBatch([]byte("not arrow"), mem)
	require.Error(t, err)
}

// BenchmarkWriteJSONRows writes a simple schema (long, string, double,
// timestamptz); ns/op is per row.
func BenchmarkWriteJSONRows(b *testing.B) {
	const rows = 1 << 16
	sc := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.PrimitiveTypes.Int64},
		{Name: "name", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "amount", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "at", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, Nullable: true},
	}, nil)
	bl := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer bl.Release()
	for i := range rows {
		bl.Field(0).(*array.Int64Builder).Append(int64(i) * 7919)
		bl.Field(1).(*array.StringBuilder).Append("customer-" + strings.Repeat("x", i%13))
		if i%10 == 0 {
			bl.Field(2).AppendNull()
		} else {
			bl.Field(2).(*array.Float64Builder).Append(float64(i) / 100)
		}
		bl.Field(3).(*array.TimestampBuilder).Append(arrow.Timestamp(1767323045000000 + int64(i)*1000003))
	}
	rec := bl.NewRecordBatch()
	defer rec.Release()
	b.ResetTimer()
	for b.Loop() {
		if err := timetravel.WriteJSONRows(discard{}, rec); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*rows), "ns/row")
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
