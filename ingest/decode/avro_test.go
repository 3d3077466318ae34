package decode

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"math/big"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/extensions"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	"github.com/hamba/avro/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// --- helpers ---

// avroEncode writes v with the reference encoder.
func avroEncode(t testing.TB, schema string, v any) []byte {
	t.Helper()
	s, err := avro.Parse(schema)
	require.NoError(t, err)
	b, err := avro.Marshal(s, v)
	require.NoError(t, err)
	return b
}

func mustAvroSchema(t testing.TB, text string) *AvroSchema {
	t.Helper()
	s, err := ParseAvroSchema(text)
	require.NoError(t, err)
	return s
}

// avroDecoderFor compiles a decoder for the writer schema text into table (the writer's own
// Iceberg form when nil).
func avroDecoderFor(t testing.TB, writer string, table *iceberg.Schema) *AvroDecoder {
	t.Helper()
	ws := mustAvroSchema(t, writer)
	if table == nil {
		var err error
		table, err = ws.Iceberg()
		require.NoError(t, err)
	}
	d, err := NewAvroDecoder(table, ws)
	require.NoError(t, err)
	return d
}

// avroRows parses and appends every payload and returns the rows read back from Arrow.
func avroRows(t *testing.T, d *AvroDecoder, payloads ...[]byte) []map[string]any {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rb := array.NewRecordBuilder(mem, d.ArrowSchema())
	defer rb.Release()
	for _, p := range payloads {
		require.NoError(t, d.Parse(p, RecordMeta{}))
		d.Append(rb)
	}
	rec := rb.NewRecordBatch()
	defer rec.Release()
	return recordGo(t, rec)
}

func recordGo(t testing.TB, rec arrow.RecordBatch) []map[string]any {
	t.Helper()
	for i := range int(rec.NumCols()) {
		require.NoError(t, array.ValidateFull(rec.Column(i)))
	}
	rows := make([]map[string]any, rec.NumRows())
	for r := range rows {
		row := map[string]any{}
		for c := range int(rec.NumCols()) {
			row[rec.Schema().Field(c).Name] = arrowGo(rec.Column(c), r)
		}
		rows[r] = row
	}
	return rows
}

// arrowGo returns value i of arr as plain Go values to compare exactly: binary and fixed as
// "0x..." hex, decimals as their decimal text, UUIDs as text, structs as maps by field name,
// lists as []any, maps as map[string]any keyed by the key's text.
func arrowGo(arr arrow.Array, i int) any {
	if arr.IsNull(i) {
		return nil
	}
	switch a := arr.(type) {
	case *array.Boolean:
		return a.Value(i)
	case *array.Int32:
		return a.Value(i)
	case *array.Int64:
		return a.Value(i)
	case *array.Float32:
		return a.Value(i)
	case *array.Float64:
		return a.Value(i)
	case *array.Decimal128:
		return a.Value(i).ToString(a.DataType().(*arrow.Decimal128Type).Scale)
	case *array.Date32:
		return a.Value(i)
	case *array.Time64:
		return a.Value(i)
	case *array.Timestamp:
		return a.Value(i)
	case *array.String:
		return a.Value(i)
	case *array.Binary:
		return "0x" + hex.EncodeToString(a.Value(i))
	case *array.FixedSizeBinary:
		return "0x" + hex.EncodeToString(a.Value(i))
	case *extensions.UUIDArray:
		return a.Value(i).String()
	case *array.Struct:
		m := map[string]any{}
		st := a.DataType().(*arrow.StructType)
		for f := range a.NumField() {
			m[st.Field(f).Name] = arrowGo(a.Field(f), i)
		}
		return m
	case *array.Map:
		m := map[string]any{}
		start, end := a.ValueOffsets(i)
		for k := start; k < end; k++ {
			m[fmt.Sprint(arrowGo(a.Keys(), int(k)))] = arrowGo(a.Items(), int(k))
		}
		return m
	case *array.List:
		out := []any{}
		start, end := a.ValueOffsets(i)
		for k := start; k < end; k++ {
			out = append(out, arrowGo(a.ListValues(), int(k)))
		}
		return out
	case *array.Null:
		return nil
	}
	panic(fmt.Sprintf("arrowGo: %T", arr))
}

func ptr[T any](v T) *T { return &v }

// avroLong is the zig-zag varint encoding of v.
func avroLong(v int64) []byte {
	u := uint64(v<<1) ^ uint64(v>>63)
	var b []byte
	for u >= 0x80 {
		b = append(b, byte(u)|0x80)
		u >>= 7
	}
	return append(b, byte(u))
}

func decodeErr(t *testing.T, err error) *DecodeError {
	t.Helper()
	require.Error(t, err)
	var de *DecodeError
	require.True(t, errors.As(err, &de), "error is %T: %v", err, err)
	require.NotEmpty(t, de.Reason)
	return de
}

// --- every type ---

const avroAllSchema = `{"type":"record","name":"All","namespace":"t","fields":[
	{"name":"b","type":"boolean"},
	{"name":"i","type":"int"},
	{"name":"l","type":"long"},
	{"name":"f","type":"float"},
	{"name":"d","type":"double"},
	{"name":"s","type":"string"},
	{"name":"by","type":"bytes"},
	{"name":"ns","type":["null","string"]},
	{"name":"sn","type":["string","null"]},
	{"name":"e","type":{"type":"enum","name":"Color","symbols":["RED","GREEN"]}},
	{"name":"fx","type":{"type":"fixed","name":"F4","size":4}},
	{"name":"decb","type":{"type":"bytes","logicalType":"decimal","precision":10,"scale":2}},
	{"name":"decf","type":{"type":"fixed","name":"D8","size":8,"logicalType":"decimal","precision":18,"scale":3}},
	{"name":"dt","type":{"type":"int","logicalType":"date"}},
	{"name":"tms","type":{"type":"int","logicalType":"time-millis"}},
	{"name":"tus","type":{"type":"long","logicalType":"time-micros"}},
	{"name":"tsms","type":{"type":"long","logicalType":"timestamp-millis"}},
	{"name":"tsus","type":{"type":"long","logicalType":"timestamp-micros","adjust-to-utc":true}},
	{"name":"tsl","type":{"type":"long","logicalType":"timestamp-micros","adjust-to-utc":false}},
	{"name":"tslm","type":{"type":"long","logicalType":"timestamp-millis","adjust-to-utc":false}},
	{"name":"ltms","type":{"type":"long","logicalType":"local-timestamp-millis"}},
	{"name":"ltus","type":{"type":"long","logicalType":"local-timestamp-micros"}},
	{"name":"tsns","type":{"type":"long","logicalType":"timestamp-nanos"}},
	{"name":"uus","type":{"type":"string","logicalType":"uuid"}},
	{"name":"uuf","type":{"type":"fixed","name":"U16","size":16,"logicalType":"uuid"}},
	{"name":"rec","type":{"type":"record","name":"Inner","fields":[{"name":"x","type":"int"},{"name":"y","type":["null","string"]}]}},
	{"name":"arr","type":{"type":"array","items":"long"}},
	{"name":"arrn","type":{"type":"array","items":["null","string"]}},
	{"name":"m","type":{"type":"map","values":"int"}},
	{"name":"recs","type":{"type":"array","items":"Inner"}},
	{"name":"nrec","type":["null","t.Inner"]},
	{"name":"mm","type":["null",{"type":"map","values":{"type":"array","items":["null","double"]}}]}
]}`

type avroInner struct {
	X int32   `avro:"x"`
	Y *string `avro:"y"`
}

type avroAll struct {
	B    bool                   `avro:"b"`
	I    int32                  `avro:"i"`
	L    int64                  `avro:"l"`
	F    float32                `avro:"f"`
	D    float64                `avro:"d"`
	S    string                 `avro:"s"`
	By   []byte                 `avro:"by"`
	NS   *string                `avro:"ns"`
	SN   *string                `avro:"sn"`
	E    string                 `avro:"e"`
	Fx   [4]byte                `avro:"fx"`
	DecB *big.Rat               `avro:"decb"`
	DecF *big.Rat               `avro:"decf"`
	Dt   time.Time              `avro:"dt"`
	Tms  time.Duration          `avro:"tms"`
	Tus  time.Duration          `avro:"tus"`
	Tsms time.Time              `avro:"tsms"`
	Tsus time.Time              `avro:"tsus"`
	Tsl  time.Time              `avro:"tsl"`
	Tslm time.Time              `avro:"tslm"`
	Ltms time.Time              `avro:"ltms"`
	Ltus time.Time              `avro:"ltus"`
	Tsns int64                  `avro:"tsns"` // the reference encoder has no timestamp-nanos
	Uus  string                 `avro:"uus"`
	Uuf  [16]byte               `avro:"uuf"`
	Rec  avroInner              `avro:"rec"`
	Arr  []int64                `avro:"arr"`
	Arrn []*string              `avro:"arrn"`
	M    map[string]int32       `avro:"m"`
	Recs []avroInner            `avro:"recs"`
	NRec *avroInner             `avro:"nrec"`
	MM   *map[string][]*float64 `avro:"mm"`
}

func avroAllIceberg() *iceberg.Schema {
	inner := func(x, y int) *iceberg.StructType {
		return &iceberg.StructType{FieldList: []iceberg.NestedField{
			{ID: x, Name: "x", Type: iceberg.PrimitiveTypes.Int32, Required: true},
			{ID: y, Name: "y", Type: iceberg.PrimitiveTypes.String},
		}}
	}
	p := iceberg.PrimitiveTypes
	return iceberg.NewSchema(0,
		iceberg.NestedField{ID: 1, Name: "b", Type: p.Bool, Required: true},
		iceberg.NestedField{ID: 2, Name: "i", Type: p.Int32, Required: true},
		iceberg.NestedField{ID: 3, Name: "l", Type: p.Int64, Required: true},
		iceberg.NestedField{ID: 4, Name: "f", Type: p.Float32, Required: true},
		iceberg.NestedField{ID: 5, Name: "d", Type: p.Float64, Required: true},
		iceberg.NestedField{ID: 6, Name: "s", Type: p.String, Required: true},
		iceberg.NestedField{ID: 7, Name: "by", Type: p.Binary, Required: true},
		iceberg.NestedField{ID: 8, Name: "ns", Type: p.String},
		iceberg.NestedField{ID: 9, Name: "sn", Type: p.String},
		iceberg.NestedField{ID: 10, Name: "e", Type: p.String, Required: true},
		iceberg.NestedField{ID: 11, Name: "fx", Type: iceberg.FixedTypeOf(4), Required: true},
		iceberg.NestedField{ID: 12, Name: "decb", Type: iceberg.DecimalTypeOf(10, 2), Required: true},
		iceberg.NestedField{ID: 13, Name: "decf", Type: iceberg.DecimalTypeOf(18, 3), Required: true},
		iceberg.NestedField{ID: 14, Name: "dt", Type: p.Date, Required: true},
		iceberg.NestedField{ID: 15, Name: "tms", Type: p.Time, Required: true},
		iceberg.NestedField{ID: 16, Name: "tus", Type: p.Time, Required: true},
		iceberg.NestedField{ID: 17, Name: "tsms", Type: p.TimestampTz, Required: true},
		iceberg.NestedField{ID: 18, Name: "tsus", Type: p.TimestampTz, Required: true},
		iceberg.NestedField{ID: 19, Name: "tsl", Type: p.Timestamp, Required: true},
		iceberg.NestedField{ID: 20, Name: "tslm", Type: p.Timestamp, Required: true},
		iceberg.NestedField{ID: 21, Name: "ltms", Type: p.Timestamp, Required: true},
		iceberg.NestedField{ID: 22, Name: "ltus", Type: p.Timestamp, Required: true},
		iceberg.NestedField{ID: 23, Name: "tsns", Type: p.TimestampTzNs, Required: true},
		iceberg.NestedField{ID: 24, Name: "uus", Type: p.UUID, Required: true},
		iceberg.NestedField{ID: 25, Name: "uuf", Type: p.UUID, Required: true},
		iceberg.NestedField{ID: 26, Name: "rec", Type: inner(33, 34), Required: true},
		iceberg.NestedField{ID: 27, Name: "arr", Type: &iceberg.ListType{ElementID: 35, Element: p.Int64, ElementRequired: true}, Required: true},
		iceberg.NestedField{ID: 28, Name: "arrn", Type: &iceberg.ListType{ElementID: 36, Element: p.String}, Required: true},
		iceberg.NestedField{ID: 29, Name: "m", Type: &iceberg.MapType{KeyID: 37, KeyType: p.String, ValueID: 38, ValueType: p.Int32, ValueRequired: true}, Required: true},
		iceberg.NestedField{ID: 30, Name: "recs", Type: &iceberg.ListType{ElementID: 39, Element: inner(40, 41), ElementRequired: true}, Required: true},
		iceberg.NestedField{ID: 31, Name: "nrec", Type: inner(42, 43)},
		iceberg.NestedField{ID: 32, Name: "mm", Type: &iceberg.MapType{KeyID: 44, KeyType: p.String, ValueID: 45,
			ValueType: &iceberg.ListType{ElementID: 46, Element: p.Float64}, ValueRequired: true}},
	)
}

func TestAvroIcebergAllTypes(t *testing.T) {
	got, err := mustAvroSchema(t, avroAllSchema).Iceberg()
	require.NoError(t, err)
	want := avroAllIceberg()
	assert.True(t, want.Equals(got), "got\n%s\nwant\n%s", got, want)
}

// avroAllRows are values of avroAllSchema at the edges of every type.
func avroAllRows() []avroAll {
	u := [16]byte{0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0xff}
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 123e6, time.UTC)
	t1 := time.Date(1969, 7, 20, 20, 17, 40, 1e3, time.UTC)
	return []avroAll{{
		B: true, I: math.MinInt32, L: math.MaxInt64, F: 1.5, D: -0.25, S: "héllo ✓", By: []byte{0, 1, 255},
		NS: ptr("x"), E: "GREEN", Fx: [4]byte{1, 2, 3, 4},
		DecB: big.NewRat(-1234, 100), DecF: new(big.Rat).SetFrac(big.NewInt(123456789012345678), big.NewInt(1000)),
		Dt: time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC), Tms: 10*time.Hour + 11*time.Minute + 12345*time.Millisecond,
		Tus: 24*time.Hour - time.Microsecond, Tsms: t0, Tsus: t1, Tsl: t0, Tslm: t1.Truncate(time.Millisecond),
		Ltms: t0, Ltus: t1, Tsns: -1, Uus: "123e4567-e89b-12d3-a456-426614174000", Uuf: u,
		Rec: avroInner{X: 7, Y: ptr("y")}, Arr: []int64{1, -1, 1 << 40}, Arrn: []*string{ptr("a"), nil},
		M: map[string]int32{"k1": 1, "k2": -2}, Recs: []avroInner{{X: 1}, {X: 2, Y: ptr("z")}},
		NRec: &avroInner{X: 3}, MM: &map[string][]*float64{"a": {ptr(1.25), nil}, "b": {}},
	}, {
		I: math.MaxInt32, L: math.MinInt64, F: float32(math.Inf(-1)), D: math.MaxFloat64, By: []byte{}, SN: ptr(""), E: "RED",
		DecB: new(big.Rat), DecF: big.NewRat(-1, 1000), Dt: time.Date(1969, 12, 31, 0, 0, 0, 0, time.UTC),
		Tsms: time.UnixMilli(0).UTC(), Tsus: time.UnixMicro(-1).UTC(), Tsl: time.UnixMicro(0).UTC(), Tslm: time.UnixMilli(-1).UTC(),
		Ltms: time.UnixMilli(1).UTC(), Ltus: time.UnixMicro(1).UTC(), Tsns: math.MaxInt64, Uus: "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF",
	}, {
		DecB: big.NewRat(9999999999, 100), DecF: new(big.Rat).SetFrac(big.NewInt(-999999999999999999), big.NewInt(1000)),
		E: "RED", Uus: "00000000-0000-0000-0000-000000000000", Tsms: time.UnixMilli(0).UTC(), Tsus: time.UnixMilli(0).UTC(),
		Tsl: time.UnixMilli(0).UTC(), Tslm: time.UnixMilli(0).UTC(), Ltms: time.UnixMilli(0).UTC(), Ltus: time.UnixMilli(0).UTC(),
		Dt: time.Unix(0, 0).UTC(), Arrn: []*string{nil},
	}}
}

func TestAvroRoundTripAllTypes(t *testing.T) {
	rows := avroAllRows()
	t0, t1 := rows[0].Tsms, rows[0].Tsus
	d := avroDecoderFor(t, avroAllSchema, nil)
	var payloads [][]byte
	for _, r := range rows {
		payloads = append(payloads, avroEncode(t, avroAllSchema, r))
	}
	got := avroRows(t, d, payloads...)

	ts := func(tm time.Time) arrow.Timestamp { return arrow.Timestamp(tm.UnixMicro()) }
	want := []map[string]any{{
		"b": true, "i": int32(math.MinInt32), "l": int64(math.MaxInt64), "f": float32(1.5), "d": -0.25, "s": "héllo ✓",
		"by": "0x0001ff", "ns": "x", "sn": nil, "e": "GREEN", "fx": "0x01020304", "decb": "-12.34",
		"decf": "123456789012345.678", "dt": arrow.Date32(20779), "tms": arrow.Time64(36672345000),
		"tus": arrow.Time64(86399999999), "tsms": ts(t0), "tsus": ts(t1), "tsl": ts(t0), "tslm": ts(t1) - 1,
		"ltms": ts(t0), "ltus": ts(t1), "tsns": arrow.Timestamp(-1), "uus": "123e4567-e89b-12d3-a456-426614174000",
		"uuf": "deadbeef-0102-0304-0506-0708090a0bff",
		"rec": map[string]any{"x": int32(7), "y": "y"}, "arr": []any{int64(1), int64(-1), int64(1 << 40)},
		"arrn": []any{"a", nil}, "m": map[string]any{"k1": int32(1), "k2": int32(-2)},
		"recs": []any{map[string]any{"x": int32(1), "y": nil}, map[string]any{"x": int32(2), "y": "z"}},
		"nrec": map[string]any{"x": int32(3), "y": nil},
		"mm":   map[string]any{"a": []any{1.25, nil}, "b": []any{}},
	}, {
		"b": false, "i": int32(math.MaxInt32), "l": int64(math.MinInt64), "f": float32(math.Inf(-1)), "d": math.MaxFloat64,
		"s": "", "by": "0x", "ns": nil, "sn": "", "e": "RED", "fx": "0x00000000", "decb": "0.00", "decf": "-0.001",
		"dt": arrow.Date32(-1), "tms": arrow.Time64(0), "tus": arrow.Time64(0), "tsms": arrow.Timestamp(0),
		"tsus": arrow.Timestamp(-1), "tsl": arrow.Timestamp(0), "tslm": arrow.Timestamp(-1000), "ltms": arrow.Timestamp(1000),
		"ltus": arrow.Timestamp(1), "tsns": arrow.Timestamp(math.MaxInt64), "uus": "ffffffff-ffff-ffff-ffff-ffffffffffff",
		"uuf": "00000000-0000-0000-0000-000000000000", "rec": map[string]any{"x": int32(0), "y": nil},
		"arr": []any{}, "arrn": []any{}, "m": map[string]any{}, "recs": []any{}, "nrec": nil, "mm": nil,
	}, {
		"b": false, "i": int32(0), "l": int64(0), "f": float32(0), "d": 0.0, "s": "", "by": "0x", "ns": nil, "sn": nil,
		"e": "RED", "fx": "0x00000000", "decb": "99999999.99", "decf": "-999999999999999.999", "dt": arrow.Date32(0),
		"tms": arrow.Time64(0), "tus": arrow.Time64(0), "tsms": arrow.Timestamp(0), "tsus": arrow.Timestamp(0),
		"tsl": arrow.Timestamp(0), "tslm": arrow.Timestamp(0), "ltms": arrow.Timestamp(0), "ltus": arrow.Timestamp(0),
		"tsns": arrow.Timestamp(0), "uus": "00000000-0000-0000-0000-000000000000", "uuf": "00000000-0000-0000-0000-000000000000",
		"rec": map[string]any{"x": int32(0), "y": nil}, "arr": []any{}, "arrn": []any{nil}, "m": map[string]any{},
		"recs": []any{}, "nrec": nil, "mm": nil,
	}}
	require.Len(t, got, len(want))
	for i := range want {
		assert.Equal(t, want[i], got[i], "row %d", i)
	}

	// Cells: top-level values, and for lists and maps their entry counts.
	require.NoError(t, d.Parse(payloads[0], RecordMeta{}))
	col := func(name string) Cell {
		idx := d.ArrowSchema().FieldIndices(name)
		require.Len(t, idx, 1)
		return d.Cell(idx[0])
	}
	assert.Equal(t, int64(math.MinInt32), col("i").Int)
	assert.Equal(t, "héllo ✓", string(col("s").Bytes))
	assert.Equal(t, int64(3), col("arr").Int)
	assert.Equal(t, int64(2), col("m").Int)
	assert.True(t, col("sn").Null)
	assert.Equal(t, int64(t0.UnixMicro()), col("tsms").Int)
	assert.Equal(t, "-1234", col("decb").Dec.BigInt().String())
}

func TestAvroFloatSpecials(t *testing.T) {
	const schema = `{"type":"record","name":"R","fields":[{"name":"f","type":"float"},{"name":"d","type":"double"}]}`
	d := avroDecoderFor(t, schema, nil)
	for _, v := range []float64{math.NaN(), math.Inf(1), math.Copysign(0, -1), math.SmallestNonzeroFloat64} {
		p := avroEncode(t, schema, map[string]any{"f": float32(v), "d": v})
		require.NoError(t, d.Parse(p, RecordMeta{}))
		assert.Equal(t, math.Float32bits(float32(v)), math.Float32bits(float32(d.Cell(0).Float)))
		assert.Equal(t, math.Float64bits(v), math.Float64bits(d.Cell(1).Float))
	}
}

// --- the Iceberg mapping ---

func TestAvroIcebergIDs(t *testing.T) {
	t.Run("explicit", func(t *testing.T) {
		// As Iceberg writes Avro.
		s := mustAvroSchema(t, `{"type":"record","name":"r","fields":[
			{"name":"a","type":"long","field-id":8},
			{"name":"l","type":["null",{"type":"array","items":"int","element-id":9}],"default":null,"field-id":3},
			{"name":"m","type":{"type":"map","values":"string","key-id":10,"value-id":11},"field-id":4},
			{"name":"km","type":{"type":"array","logicalType":"map","items":{"type":"record","name":"k12_v13","fields":[
				{"name":"key","type":"int","field-id":12},{"name":"value","type":["null","string"],"field-id":13}]}},"field-id":5}]}`)
		got, err := s.Iceberg()
		require.NoError(t, err)
		want := iceberg.NewSchema(0,
			iceberg.NestedField{ID: 8, Name: "a", Type: iceberg.PrimitiveTypes.Int64, Required: true},
			iceberg.NestedField{ID: 3, Name: "l", Type: &iceberg.ListType{ElementID: 9, Element: iceberg.PrimitiveTypes.Int32, ElementRequired: true}},
			iceberg.NestedField{ID: 4, Name: "m", Required: true, Type: &iceberg.MapType{KeyID: 10, KeyType: iceberg.PrimitiveTypes.String,
				ValueID: 11, ValueType: iceberg.PrimitiveTypes.String, ValueRequired: true}},
			iceberg.NestedField{ID: 5, Name: "km", Required: true, Type: &iceberg.MapType{KeyID: 12, KeyType: iceberg.PrimitiveTypes.Int32,
				ValueID: 13, ValueType: iceberg.PrimitiveTypes.String}},
		)
		assert.True(t, want.Equals(got), "got\n%s\nwant\n%s", got, want)
	})
	t.Run("mixed", func(t *testing.T) {
		// Missing ids are numbered after the largest present one, fields of a struct first.
		s := mustAvroSchema(t, `{"type":"record","name":"r","fields":[
			{"name":"a","type":"long"},
			{"name":"s","type":{"type":"record","name":"S","fields":[{"name":"x","type":"int"},{"name":"y","type":"int","field-id":20}]}},
			{"name":"c","type":"string","field-id":7}]}`)
		got, err := s.Iceberg()
		require.NoError(t, err)
		want := iceberg.NewSchema(0,
			iceberg.NestedField{ID: 21, Name: "a", Type: iceberg.PrimitiveTypes.Int64, Required: true},
			iceberg.NestedField{ID: 22, Name: "s", Required: true, Type: &iceberg.StructType{FieldList: []iceberg.NestedField{
				{ID: 23, Name: "x", Type: iceberg.PrimitiveTypes.Int32, Required: true},
				{ID: 20, Name: "y", Type: iceberg.PrimitiveTypes.Int32, Required: true},
			}}},
			iceberg.NestedField{ID: 7, Name: "c", Type: iceberg.PrimitiveTypes.String, Required: true},
		)
		assert.True(t, want.Equals(got), "got\n%s\nwant\n%s", got, want)
	})
	t.Run("duplicate", func(t *testing.T) {
		_, err := mustAvroSchema(t, `{"type":"record","name":"r","fields":[
			{"name":"a","type":"long","field-id":1},{"name":"b","type":"long","field-id":1}]}`).Iceberg()
		require.ErrorContains(t, err, `field "b": id 1 is used twice`)
	})
}

func TestAvroIcebergDocsAndDefaults(t *testing.T) {
	s := mustAvroSchema(t, `{"type":"record","name":"r","fields":[
		{"name":"a","type":"long","doc":"the a","default":42},
		{"name":"b","type":["null","string"],"default":null},
		{"name":"c","type":["string","null"],"default":"x"},
		{"name":"dt","type":{"type":"int","logicalType":"date"},"default":20779},
		{"name":"ts","type":{"type":"long","logicalType":"timestamp-millis"},"default":1500},
		{"name":"lts","type":{"type":"long","logicalType":"local-timestamp-micros"},"default":1},
		{"name":"tm","type":{"type":"int","logicalType":"time-millis"},"default":3723004},
		{"name":"dec","type":{"type":"bytes","logicalType":"decimal","precision":5,"scale":2},"default":"\u00ff\u0018"},
		{"name":"by","type":"bytes","default":"\u0001\u00ff"},
		{"name":"e","type":{"type":"enum","name":"E","symbols":["A","B"]},"default":"B"},
		{"name":"f","type":"float","default":1.5},
		{"name":"ok","type":"boolean","default":true},
		{"name":"arr","type":{"type":"array","items":"int"},"default":[1]},
		{"name":"bad","type":"int","default":"nope"}]}`)
	got, err := s.Iceberg()
	require.NoError(t, err)
	fields := got.Fields()
	defaults := map[string]any{}
	for _, f := range fields {
		assert.Equal(t, f.InitialDefault, f.WriteDefault, f.Name)
		defaults[f.Name] = f.InitialDefault
	}
	assert.Equal(t, "the a", fields[0].Doc)
	assert.Equal(t, map[string]any{
		"a": int64(42), "b": nil, "c": "x", "dt": "2026-11-22", "ts": "1970-01-01T00:00:01.500000+00:00",
		"lts": "1970-01-01T00:00:00.000001", "tm": "01:02:03.004000", "dec": "-2.32", "by": []byte{1, 0xff},
		"e": "B", "f": float32(1.5), "ok": true, "arr": nil, "bad": nil,
	}, defaults)
}

func TestAvroIcebergErrors(t *testing.T) {
	for _, tc := range []struct{ schema, err string }{
		{`{"type":"record","name":"r","fields":[{"name":"u","type":["null","string","int"]}]}`,
			`field "u" has type [null, string, int]: unions other than of null and one type are not supported`},
		{`{"type":"record","name":"r","fields":[{"name":"s","type":{"type":"record","name":"S","fields":[{"name":"u","type":["string","long"]}]}}]}`,
			`field "s.u" has type [string, long]`},
		{`{"type":"record","name":"Node","fields":[{"name":"next","type":["null","Node"]}]}`,
			`field "next": record Node is recursive`},
		{`{"type":"record","name":"r","fields":[{"name":"d","type":{"type":"bytes","logicalType":"decimal","precision":39}}]}`,
			`field "d" has type bytes (decimal(39,0)): Iceberg decimals have at most 38 digits`},
		{`"string"`, `the schema is a string, not a record`},
	} {
		_, err := mustAvroSchema(t, tc.schema).Iceberg()
		require.ErrorContains(t, err, tc.err, tc.schema)
	}
}

func TestParseAvroSchemaErrors(t *testing.T) {
	for _, tc := range []struct{ schema, err string }{
		{`{`, `not valid JSON`},
		{`{"type":"record","name":"r","fields":[{"name":"a","type":"Nope"}]}`, `field "a": unknown type "Nope"`},
		{`{"type":"record","name":"r","fields":[{"name":"a","type":"int"},{"name":"a","type":"int"}]}`, `duplicate field "a"`},
		{`{"type":"record","name":"r","fields":[{"name":"a","type":["int","int"]}]}`, `union has two branches of type int`},
		{`{"type":"record","name":"r","fields":[{"name":"a","type":"int","field-id":"x"}]}`, `"field-id" must be a non-negative integer`},
		{`{"type":"record","name":"r","fields":[{"name":"a","type":{"type":"long","logicalType":"timestamp-micros","adjust-to-utc":"yes"}}]}`, `"adjust-to-utc" must be true or false`},
		{`{"type":"record","name":"r","fields":[{"name":"a","type":"r"}]}`, `record r contains itself`},
		{`{"type":"enum","name":"e","symbols":["A","A"]}`, `duplicate symbol "A"`},
		{`{"type":"record","name":"r","fields":[{"name":"1a","type":"int"}]}`, `invalid field name "1a"`},
	} {
		_, err := ParseAvroSchema(tc.schema)
		require.ErrorContains(t, err, tc.err, tc.schema)
	}
	// Invalid and unknown logical types are ignored, as the Avro spec asks.
	s := mustAvroSchema(t, `{"type":"record","name":"r","fields":[
		{"name":"a","type":{"type":"fixed","name":"F","size":2,"logicalType":"decimal","precision":9}},
		{"name":"b","type":{"type":"string","logicalType":"iso-datetime"}},
		{"name":"c","type":{"type":"long","logicalType":"date"}},
		{"name":"d","type":{"type":"fixed","name":"G","size":8,"logicalType":"uuid"}}]}`)
	got, err := s.Iceberg()
	require.NoError(t, err)
	assert.Equal(t, "fixed[2]", got.Fields()[0].Type.String())
	assert.Equal(t, "string", got.Fields()[1].Type.String())
	assert.Equal(t, "long", got.Fields()[2].Type.String())
	assert.Equal(t, "fixed[8]", got.Fields()[3].Type.String())
}

// --- evolution ---

func TestAvroEvolutionCompatible(t *testing.T) {
	// The writer has fields the table lacks (some of types Iceberg cannot hold), lacks
	// some the table has, and has types the table promotes.
	const writer = `{"type":"record","name":"W","fields":[
		{"name":"id","type":"long"},
		{"name":"junk","type":{"type":"record","name":"J","fields":[
			{"name":"u","type":["string","int",{"type":"map","values":"bytes"}]},
			{"name":"tree","type":{"type":"record","name":"T","fields":[{"name":"kids","type":{"type":"array","items":"T"}}]}},
			{"name":"fx","type":{"type":"fixed","name":"F3","size":3}}]}},
		{"name":"small","type":"int"},
		{"name":"ratio","type":["null","float"]},
		{"name":"amt","type":{"type":"bytes","logicalType":"decimal","precision":5,"scale":2}},
		{"name":"famt","type":{"type":"fixed","name":"F4","size":4,"logicalType":"decimal","precision":9,"scale":1}},
		{"name":"raw","type":{"type":"fixed","name":"R2","size":2}},
		{"name":"color","type":{"type":"enum","name":"C","symbols":["RED","GREEN"]}},
		{"name":"nested","type":{"type":"record","name":"N","fields":[
			{"name":"a","type":"int"},{"name":"gone","type":"string"},{"name":"b","type":"string"}]}},
		{"name":"tail","type":{"type":"array","items":"string"}}]}`
	table := iceberg.NewSchema(0,
		iceberg.NestedField{ID: 1, Name: "id", Type: iceberg.PrimitiveTypes.Int64, Required: true},
		iceberg.NestedField{ID: 2, Name: "small", Type: iceberg.PrimitiveTypes.Int64},
		iceberg.NestedField{ID: 3, Name: "added", Type: iceberg.PrimitiveTypes.String},
		iceberg.NestedField{ID: 4, Name: "ratio", Type: iceberg.PrimitiveTypes.Float64},
		iceberg.NestedField{ID: 5, Name: "amt", Type: iceberg.DecimalTypeOf(12, 2)},
		iceberg.NestedField{ID: 6, Name: "famt", Type: iceberg.DecimalTypeOf(38, 1)},
		iceberg.NestedField{ID: 7, Name: "raw", Type: iceberg.PrimitiveTypes.Binary},
		iceberg.NestedField{ID: 8, Name: "color", Type: iceberg.PrimitiveTypes.String},
		iceberg.NestedField{ID: 9, Name: "nested", Type: &iceberg.StructType{FieldList: []iceberg.NestedField{
			{ID: 10, Name: "a", Type: iceberg.PrimitiveTypes.Int32},
			{ID: 11, Name: "new", Type: &iceberg.ListType{ElementID: 13, Element: iceberg.PrimitiveTypes.Int32}},
			{ID: 12, Name: "b", Type: iceberg.PrimitiveTypes.String},
		}}},
		iceberg.NestedField{ID: 14, Name: "tail", Type: &iceberg.ListType{ElementID: 15, Element: iceberg.PrimitiveTypes.String}},
	)
	d := avroDecoderFor(t, writer, table)
	tree := map[string]any{"kids": []any{map[string]any{"kids": []any{}}, map[string]any{"kids": []any{map[string]any{"kids": []any{}}}}}}
	p1 := avroEncode(t, writer, map[string]any{
		"id": int64(1), "junk": map[string]any{"u": map[string]any{"map": map[string]any{"k": []byte("v")}}, "tree": tree, "fx": [3]byte{1, 2, 3}},
		"small": -5, "ratio": float32(0.1), "amt": big.NewRat(-99999, 100), "famt": big.NewRat(-12345678, 10),
		"raw": [2]byte{0xab, 0xcd}, "color": "GREEN",
		"nested": map[string]any{"a": 1, "gone": "zzz", "b": "bee"}, "tail": []any{"t1", "t2"},
	})
	p2 := avroEncode(t, writer, map[string]any{
		"id": int64(2), "junk": map[string]any{"u": map[string]any{"int": 7}, "tree": map[string]any{"kids": []any{}}, "fx": [3]byte{}},
		"small": math.MaxInt32, "ratio": nil, "amt": big.NewRat(0, 1), "famt": big.NewRat(0, 1),
		"raw": [2]byte{}, "color": "RED", "nested": map[string]any{"a": 0, "gone": "", "b": ""}, "tail": []any{},
	})
	got := avroRows(t, d, p1, p2)
	assert.Equal(t, []map[string]any{{
		"id": int64(1), "small": int64(-5), "added": nil, "ratio": float64(float32(0.1)), "amt": "-999.99", "famt": "-1234567.8",
		"raw": "0xabcd", "color": "GREEN", "nested": map[string]any{"a": int32(1), "new": nil, "b": "bee"}, "tail": []any{"t1", "t2"},
	}, {
		"id": int64(2), "small": int64(math.MaxInt32), "added": nil, "ratio": nil, "amt": "0.00", "famt": "0.0",
		"raw": "0x0000", "color": "RED", "nested": map[string]any{"a": int32(0), "new": nil, "b": ""}, "tail": []any{},
	}}, got)
}

func TestAvroEvolutionReordered(t *testing.T) {
	// Writer fields in another order than the table's, at the top level and nested.
	const writer = `{"type":"record","name":"W","fields":[
		{"name":"z","type":"string"},
		{"name":"rec","type":{"type":"record","name":"R","fields":[
			{"name":"a","type":"int"},{"name":"skip","type":{"type":"array","items":"string"}},
			{"name":"l","type":{"type":"array","items":"long"}},{"name":"c","type":["null","string"]}]}},
		{"name":"a","type":"int"}]}`
	table := iceberg.NewSchema(0,
		iceberg.NestedField{ID: 1, Name: "a", Type: iceberg.PrimitiveTypes.Int32, Required: true},
		iceberg.NestedField{ID: 2, Name: "recs", Type: iceberg.PrimitiveTypes.String},
		iceberg.NestedField{ID: 3, Name: "rec", Type: &iceberg.StructType{FieldList: []iceberg.NestedField{
			{ID: 4, Name: "c", Type: iceberg.PrimitiveTypes.String},
			{ID: 5, Name: "l", Type: &iceberg.ListType{ElementID: 8, Element: iceberg.PrimitiveTypes.Int64, ElementRequired: true}},
			{ID: 6, Name: "missing", Type: iceberg.PrimitiveTypes.Int32},
			{ID: 7, Name: "a", Type: iceberg.PrimitiveTypes.Int64, Required: true},
		}}, Required: true},
		iceberg.NestedField{ID: 9, Name: "z", Type: iceberg.PrimitiveTypes.String},
	)
	d := avroDecoderFor(t, writer, table)
	p := avroEncode(t, writer, map[string]any{"z": "zed", "a": 3,
		"rec": map[string]any{"a": 5, "skip": []any{"x", "y"}, "l": []any{int64(1), int64(2)}, "c": "cee"}})
	got := avroRows(t, d, p, p)
	want := map[string]any{"a": int32(3), "recs": nil, "z": "zed",
		"rec": map[string]any{"c": "cee", "l": []any{int64(1), int64(2)}, "missing": nil, "a": int64(5)}}
	assert.Equal(t, []map[string]any{want, want}, got)
}

func TestAvroEvolutionRefused(t *testing.T) {
	p := iceberg.PrimitiveTypes
	col := func(name string, typ iceberg.Type, required bool) *iceberg.Schema {
		return iceberg.NewSchema(0, iceberg.NestedField{ID: 1, Name: name, Type: typ, Required: required})
	}
	w := func(typ string) string {
		return `{"type":"record","name":"W","fields":[{"name":"v","type":` + typ + `}]}`
	}
	for _, tc := range []struct {
		writer string
		table  *iceberg.Schema
		err    string
	}{
		{w(`"long"`), col("v", p.Int32, false), `field "v": the writer's type long cannot be read as the table's int`},
		{w(`"double"`), col("v", p.Float32, false), `the writer's type double cannot be read as the table's float`},
		{w(`"string"`), col("v", p.Int64, false), `the writer's type string cannot be read as the table's long`},
		{w(`"bytes"`), col("v", p.String, false), `the writer's type bytes cannot be read as the table's string`},
		{w(`"string"`), col("v", p.Binary, false), `the writer's type string cannot be read as the table's binary`},
		{w(`{"type":"int","logicalType":"date"}`), col("v", p.Int32, false), `the writer's type int (date) cannot be read as the table's int`},
		{w(`{"type":"long","logicalType":"timestamp-micros"}`), col("v", p.Timestamp, false), `cannot be read as the table's timestamp`},
		{w(`{"type":"long","logicalType":"local-timestamp-micros"}`), col("v", p.TimestampTz, false), `cannot be read as the table's timestamptz`},
		{w(`{"type":"long","logicalType":"timestamp-micros"}`), col("v", p.TimestampTzNs, false), `cannot be read as the table's timestamptz_ns`},
		{w(`{"type":"bytes","logicalType":"decimal","precision":10,"scale":2}`), col("v", iceberg.DecimalTypeOf(9, 2), false), `field "v": the writer's decimal(10,2) cannot be read as the table's decimal(9, 2)`},
		{w(`{"type":"bytes","logicalType":"decimal","precision":10,"scale":2}`), col("v", iceberg.DecimalTypeOf(12, 3), false), `the scale must stay`},
		{w(`{"type":"fixed","name":"F","size":3}`), col("v", iceberg.FixedTypeOf(4), false), `cannot be read as the table's fixed[4]`},
		{w(`{"type":"string","logicalType":"uuid"}`), col("v", p.String, false), `the writer's type string (uuid) cannot be read as the table's string`},
		{w(`["null","string","int"]`), col("v", p.String, false), `field "v": the writer's type [null, string, int] is a union that cannot be read`},
		{w(`"null"`), col("v", p.String, true), `field "v": the column is required, but the writer's type is null`},
		{w(`"int"`), col("other", p.Int32, true), `field "other": the column is required, but the writer schema has no such field`},
		{w(`{"type":"record","name":"R","fields":[{"name":"a","type":"int"}]}`),
			col("v", &iceberg.StructType{FieldList: []iceberg.NestedField{{ID: 2, Name: "b", Type: p.Int32, Required: true}}}, false),
			`field "v.b": the field is required, but the writer's record R has no such field`},
		{w(`{"type":"array","items":"long"}`), col("v", &iceberg.ListType{ElementID: 2, Element: p.Int32}, false), `field "v[]": the writer's type long`},
		{w(`{"type":"map","values":"long"}`), col("v", &iceberg.MapType{KeyID: 2, KeyType: p.String, ValueID: 3, ValueType: p.Int32}, false), `field "v.value": the writer's type long`},
		{w(`"int"`), col("v", p.Unknown, false), `cannot be read as the table's unknown`},
		{w(`{"type":"array","items":"long"}`), col("v", &iceberg.MapType{KeyID: 2, KeyType: p.String, ValueID: 3, ValueType: p.Int64}, false), `cannot be read as the table's map<string, long>`},
		{`"string"`, col("v", p.String, false), `the writer schema is a string, not a record`},
	} {
		_, err := NewAvroDecoder(tc.table, mustAvroSchema(t, tc.writer))
		require.Error(t, err, tc.writer)
		assert.Contains(t, err.Error(), tc.err, tc.writer)
		var de *DecodeError
		assert.True(t, errors.As(err, &de), "%T", err)
	}
}

func TestAvroOptionalIntoRequired(t *testing.T) {
	// A nullable writer field may fill a required column; a record where it is null is refused.
	const writer = `{"type":"record","name":"W","fields":[{"name":"v","type":["null","long"]},
		{"name":"l","type":{"type":"array","items":["null","int"]}}]}`
	table := iceberg.NewSchema(0,
		iceberg.NestedField{ID: 1, Name: "v", Type: iceberg.PrimitiveTypes.Int64, Required: true},
		iceberg.NestedField{ID: 2, Name: "l", Type: &iceberg.ListType{ElementID: 3, Element: iceberg.PrimitiveTypes.Int64, ElementRequired: true}},
	)
	d := avroDecoderFor(t, writer, table)
	got := avroRows(t, d, avroEncode(t, writer, map[string]any{"v": int64(4), "l": []any{1, 2}}))
	assert.Equal(t, []map[string]any{{"v": int64(4), "l": []any{int64(1), int64(2)}}}, got)
	err := d.Parse(avroEncode(t, writer, map[string]any{"v": nil, "l": []any{}}), RecordMeta{})
	assert.Equal(t, `field "v": required field is null`, decodeErr(t, err).Error())
	err = d.Parse(avroEncode(t, writer, map[string]any{"v": int64(1), "l": []any{1, nil}}), RecordMeta{})
	assert.Equal(t, `field "l[1]": required list element is null`, decodeErr(t, err).Error())
}

func TestAvroArrayMapLogicalType(t *testing.T) {
	// Iceberg writes maps as arrays of key/value records; with string keys they decode as maps.
	const writer = `{"type":"record","name":"W","fields":[{"name":"m","type":{"type":"array","logicalType":"map",
		"items":{"type":"record","name":"KV","fields":[{"name":"key","type":"string"},{"name":"value","type":["null","long"]}]}}}]}`
	d := avroDecoderFor(t, writer, nil)
	ice, err := mustAvroSchema(t, writer).Iceberg()
	require.NoError(t, err)
	assert.Equal(t, "map<string, long>", ice.Fields()[0].Type.String())
	p := avroEncode(t, writer, map[string]any{"m": []any{map[string]any{"key": "a", "value": int64(1)}, map[string]any{"key": "b", "value": nil}}})
	assert.Equal(t, []map[string]any{{"m": map[string]any{"a": int64(1), "b": nil}}}, avroRows(t, d, p))
	dup := avroEncode(t, writer, map[string]any{"m": []any{map[string]any{"key": "a", "value": int64(1)}, map[string]any{"key": "a", "value": nil}}})
	assert.Equal(t, `field "m": duplicate key "a"`, decodeErr(t, d.Parse(dup, RecordMeta{})).Error())
}

func TestAvroMetaColumns(t *testing.T) {
	const writer = `{"type":"record","name":"W","fields":[{"name":"_kafka_offset","type":"string"},{"name":"v","type":"int"}]}`
	table := iceberg.NewSchema(0,
		iceberg.NestedField{ID: 1, Name: "_kafka_topic", Type: iceberg.PrimitiveTypes.String, Required: true},
		iceberg.NestedField{ID: 2, Name: "_kafka_partition", Type: iceberg.PrimitiveTypes.Int32, Required: true},
		iceberg.NestedField{ID: 3, Name: "_kafka_offset", Type: iceberg.PrimitiveTypes.Int64, Required: true},
		iceberg.NestedField{ID: 4, Name: "_kafka_timestamp", Type: iceberg.PrimitiveTypes.TimestampTz},
		iceberg.NestedField{ID: 5, Name: "_kafka_key", Type: iceberg.PrimitiveTypes.Binary},
		iceberg.NestedField{ID: 6, Name: "v", Type: iceberg.PrimitiveTypes.Int32},
	)
	d := avroDecoderFor(t, writer, table)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rb := array.NewRecordBuilder(mem, d.ArrowSchema())
	defer rb.Release()
	ts := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
	p := avroEncode(t, writer, map[string]any{"_kafka_offset": "not this", "v": 9})
	require.NoError(t, d.Parse(p, RecordMeta{Topic: "clicks", Partition: 3, Offset: 77, Timestamp: ts, Key: []byte("k")}))
	d.Append(rb)
	require.NoError(t, d.Parse(p, RecordMeta{Topic: "clicks"}))
	d.Append(rb)
	rec := rb.NewRecordBatch()
	defer rec.Release()
	assert.Equal(t, []map[string]any{
		{"_kafka_topic": "clicks", "_kafka_partition": int32(3), "_kafka_offset": int64(77), "_kafka_timestamp": arrow.Timestamp(ts.UnixMicro()), "_kafka_key": "0x6b", "v": int32(9)},
		{"_kafka_topic": "clicks", "_kafka_partition": int32(0), "_kafka_offset": int64(0), "_kafka_timestamp": nil, "_kafka_key": nil, "v": int32(9)},
	}, recordGo(t, rec))
}

// --- malformed payloads ---

func TestAvroTruncatedAtEveryByte(t *testing.T) {
	d := avroDecoderFor(t, avroAllSchema, nil)
	full := avroEncode(t, avroAllSchema, avroAll{
		S: "abc", By: []byte{1}, NS: ptr("n"), E: "GREEN", DecB: big.NewRat(5, 1), DecF: big.NewRat(-5, 1),
		Uus: "123e4567-e89b-12d3-a456-426614174000", Rec: avroInner{X: 1, Y: ptr("y")}, Arr: []int64{300},
		Arrn: []*string{ptr("a"), nil}, M: map[string]int32{"k": 1}, Recs: []avroInner{{X: 2}}, NRec: &avroInner{X: 3},
		MM: &map[string][]*float64{"a": {ptr(1.0)}}, Tsms: time.UnixMilli(5), Tsus: time.UnixMilli(5), Tsl: time.UnixMilli(5),
		Tslm: time.UnixMilli(5), Ltms: time.UnixMilli(5), Ltus: time.UnixMilli(5), Dt: time.Unix(0, 0),
	})
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rb := array.NewRecordBuilder(mem, d.ArrowSchema())
	defer rb.Release()
	require.NoError(t, d.Parse(full, RecordMeta{}))
	for n := 0; n < len(full); n++ {
		de := decodeErr(t, d.Parse(full[:n], RecordMeta{}))
		assert.NotEmpty(t, de.Field, "cut at %d: %v", n, de)
	}
	de := decodeErr(t, d.Parse(append(full[:len(full):len(full)], 0), RecordMeta{}))
	assert.Equal(t, "1 bytes left over after the record: the payload does not match its writer schema", de.Error())
	// The failures left the last good row.
	d.Append(rb)
	rec := rb.NewRecordBatch()
	defer rec.Release()
	rows := recordGo(t, rec)
	assert.Equal(t, "abc", rows[0]["s"])
	assert.Equal(t, []any{int64(300)}, rows[0]["arr"])
}

func TestAvroMalformed(t *testing.T) {
	const writer = `{"type":"record","name":"W","fields":[
		{"name":"u","type":["null","string"]},
		{"name":"b","type":"boolean"},
		{"name":"e","type":{"type":"enum","name":"E","symbols":["A","B"]}},
		{"name":"i","type":"int"},
		{"name":"m","type":{"type":"map","values":"int"}},
		{"name":"a","type":{"type":"array","items":"long"}},
		{"name":"dec","type":{"type":"bytes","logicalType":"decimal","precision":4,"scale":2}},
		{"name":"tm","type":{"type":"int","logicalType":"time-millis"}},
		{"name":"uu","type":{"type":"string","logicalType":"uuid"}},
		{"name":"n","type":"null"}]}`
	d := avroDecoderFor(t, writer, nil)
	// A valid record, field by field, so that each case replaces one part.
	valid := [][]byte{
		{2, 4, 'h', 'i'},  // u: branch 1, "hi"
		{1},               // b
		{2},               // e: B
		{0x80, 0x01},      // i: 64
		{2, 2, 'k', 2, 0}, // m: one entry k=1, end
		{2, 4, 0},         // a: [2], end
		{2, 0x04},         // dec: 0.04
		{0},               // tm
		append([]byte{72}, "123e4567-e89b-12d3-a456-426614174000"...),
	}
	payload := func(replace int, with []byte) []byte {
		var p []byte
		for i, part := range valid {
			if i == replace {
				part = with
			}
			p = append(p, part...)
		}
		return p
	}
	require.NoError(t, d.Parse(payload(-1, nil), RecordMeta{}))
	got := avroRows(t, d, payload(-1, nil))
	assert.Equal(t, map[string]any{"u": "hi", "b": true, "e": "B", "i": int32(64), "m": map[string]any{"k": int32(1)},
		"a": []any{int64(2)}, "dec": "0.04", "tm": arrow.Time64(0), "uu": "123e4567-e89b-12d3-a456-426614174000", "n": nil}, got[0])

	for _, tc := range []struct {
		part int
		with []byte
		err  string
	}{
		{0, []byte{4}, `field "u": union branch 2 does not exist: the writer's union has 2`},
		{0, []byte{1}, `field "u": union branch -1 does not exist: the writer's union has 2`},
		{0, []byte{2, 4, 0xff, 'i'}, `field "u": string is not valid UTF-8`},
		{0, []byte{2, 3, 'h'}, `field "u": negative length -2`},
		{0, []byte{2, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0}, `field "u": malformed long: the varint has more than 64 bits`},
		{1, []byte{2}, `field "b": boolean byte is 0x02, not 0 or 1`},
		{2, []byte{4}, `field "e": enum index 2 does not exist: the writer's enum has 2 symbols`},
		{2, []byte{1}, `field "e": enum index -1 does not exist: the writer's enum has 2 symbols`},
		{3, []byte{0x80, 0x80, 0x80, 0x80, 0x10}, `field "i": malformed int: the varint has more than 32 bits`},
		{4, []byte{4, 2, 'k', 2, 2, 'k', 4, 0}, `field "m": duplicate key "k"`},
		{4, []byte{2, 2, 0xc3, 2, 0}, `field "m": map key "\xc3" is not valid UTF-8`},
		{4, []byte{1, 6, 2, 'k', 2, 0}, ``}, // a block of -1 items in 3 bytes: valid
		{4, []byte{1, 4, 2, 'k', 2, 0}, `field "m": block size 2 does not match its items' 3 bytes`},
		{5, []byte{0xfe, 0xff, 0xff, 0xff, 0x0f, 0}, `field "a": a block of 2147483647 items runs past the end of the record (truncated payload)`},
		{6, []byte{4, 0x27, 0x10}, `field "dec": decimal value does not fit decimal(4, 2)`},
		{6, []byte{0}, `field "dec": decimal has no bytes`},
		{7, avroLong(86400000), `field "tm": 86400000 milliseconds is not a time of day`},
		{8, []byte{6, 'a', 'b', 'c'}, `field "uu": expected a UUID as "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", got "abc"`},
	} {
		err := d.Parse(payload(tc.part, tc.with), RecordMeta{})
		if tc.err == "" {
			require.NoError(t, err, "%x", tc.with)
			continue
		}
		assert.Equal(t, tc.err, decodeErr(t, err).Error(), "%x", tc.with)
	}
}

func TestAvroBlockSizeLie(t *testing.T) {
	const writer = `{"type":"record","name":"W","fields":[{"name":"a","type":{"type":"array","items":"long"}}]}`
	d := avroDecoderFor(t, writer, nil)
	// -2 items announced as 1 byte, holding two one-byte longs: the size is wrong.
	err := d.Parse([]byte{3, 2, 2, 4, 0}, RecordMeta{})
	assert.Equal(t, `field "a": block size 1 does not match its items' 2 bytes`, decodeErr(t, err).Error())
	require.NoError(t, d.Parse([]byte{3, 4, 2, 4, 0}, RecordMeta{}))
	assert.Equal(t, int64(2), d.Cell(0).Int)
}

func TestAvroEmptyItemsBounded(t *testing.T) {
	const writer = `{"type":"record","name":"W","fields":[{"name":"a","type":{"type":"array","items":"null"}}]}`
	d := avroDecoderFor(t, writer, nil)
	// 2^40 nulls take no bytes; they are refused instead of looping.
	err := d.Parse([]byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x40, 0}, RecordMeta{})
	assert.Contains(t, decodeErr(t, err).Reason, "empty items")
	require.NoError(t, d.Parse([]byte{6, 0}, RecordMeta{}))
	assert.Equal(t, int64(3), d.Cell(0).Int)
}

func TestAvroSkipRecursive(t *testing.T) {
	// A recursive writer field the table does not have is skipped, however deep (to a bound).
	const writer = `{"type":"record","name":"W","fields":[{"name":"n","type":{"type":"record","name":"L","fields":[{"name":"next","type":["null","L"]}]}},{"name":"v","type":"int"}]}`
	table := iceberg.NewSchema(0, iceberg.NestedField{ID: 1, Name: "v", Type: iceberg.PrimitiveTypes.Int32})
	d := avroDecoderFor(t, writer, table)
	deep := func(n int) []byte {
		p := make([]byte, 0, n+2)
		for range n {
			p = append(p, 2)
		}
		return append(p, 0, 8)
	}
	require.NoError(t, d.Parse(deep(100), RecordMeta{}))
	assert.Equal(t, int64(4), d.Cell(0).Int)
	err := d.Parse(deep(10000), RecordMeta{})
	assert.Contains(t, decodeErr(t, err).Reason, "nested more than")
}

func TestAvroCellBeforeParsePanics(t *testing.T) {
	d := avroDecoderFor(t, `{"type":"record","name":"W","fields":[{"name":"v","type":"int"}]}`, nil)
	assert.Panics(t, func() { d.Cell(0) })
	assert.Panics(t, func() {
		rb := array.NewRecordBuilder(memory.NewGoAllocator(), d.ArrowSchema())
		defer rb.Release()
		d.Append(rb)
	})
}

func TestAvroManyRowsMatchHamba(t *testing.T) {
	// The benchmark's records decode to what the reference encoder was given.
	recs := clickAvroRecords(t, 64)
	d := avroDecoderFor(t, clickAvroSchema, clickSchema())
	rows := avroRows(t, d, recs...)
	jd, err := NewJSONDecoder(clickSchema())
	require.NoError(t, err)
	mem := memory.NewGoAllocator()
	rb := array.NewRecordBuilder(mem, jd.ArrowSchema())
	defer rb.Release()
	for _, r := range clickRecords(64) {
		require.NoError(t, jd.Parse(r, RecordMeta{}))
		jd.Append(rb)
	}
	rec := rb.NewRecordBatch()
	defer rec.Release()
	// The same logical records as the JSON benchmark's.
	assert.Equal(t, recordGo(t, rec), rows)
}

func TestAvroUnknownAndUnsupportedTable(t *testing.T) {
	// Avro null is Iceberg's unknown: always null.
	const writer = `{"type":"record","name":"W","fields":[{"name":"n","type":"null"},{"name":"v","type":"int"}]}`
	ice, err := mustAvroSchema(t, writer).Iceberg()
	require.NoError(t, err)
	assert.Equal(t, "unknown", ice.Fields()[0].Type.String())
	assert.False(t, ice.Fields()[0].Required)
	d := avroDecoderFor(t, writer, nil)
	assert.Equal(t, []map[string]any{{"n": nil, "v": int32(-1)}}, avroRows(t, d, []byte{1}))
	// A null writer field fills any optional column with nulls.
	d = avroDecoderFor(t, writer, iceberg.NewSchema(0, iceberg.NestedField{ID: 1, Name: "n", Type: iceberg.PrimitiveTypes.String}))
	assert.Equal(t, []map[string]any{{"n": nil}}, avroRows(t, d, []byte{1}))

	_, err = NewAvroDecoder(iceberg.NewSchema(0, iceberg.NestedField{ID: 1, Name: "m", Type: &iceberg.MapType{
		KeyID: 2, KeyType: iceberg.PrimitiveTypes.Int32, ValueID: 3, ValueType: iceberg.PrimitiveTypes.Int32}}), mustAvroSchema(t, writer))
	assert.ErrorContains(t, err, `field "m" has type map<int, int>: the Avro decoder only fills maps with string keys`)
}

// TestAvroSchemaRecord: Record returns a field's record type (through a
// union with null, and through a reference to a record named earlier) as a
// schema of its own, and refuses what is not a record.
func TestAvroSchemaRecord(t *testing.T) {
	s, err := ParseAvroSchema(`{"type":"record","name":"Envelope","fields":[
		{"name":"before","type":["null",{"type":"record","name":"Value","fields":[{"name":"id","type":"string"},{"name":"n","type":["null","long"]}]}]},
		{"name":"after","type":["null","Value"]},
		{"name":"source","type":{"type":"record","name":"Source","fields":[{"name":"lsn","type":"long"}]}},
		{"name":"op","type":"string"}]}`)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"before", "after"} {
		r, ok := s.Record(name)
		if !ok {
			t.Fatalf("%s: no record", name)
		}
		ice, err := r.Iceberg()
		if err != nil {
			t.Fatal(err)
		}
		want := iceberg.NewSchema(0,
			iceberg.NestedField{ID: 1, Name: "id", Type: iceberg.PrimitiveTypes.String, Required: true},
			iceberg.NestedField{ID: 2, Name: "n", Type: iceberg.PrimitiveTypes.Int64})
		if !ice.Equals(want) {
			t.Fatalf("%s: %s, want %s", name, ice, want)
		}
	}
	if r, ok := s.Record("source"); !ok || r.root.name == "" {
		t.Fatalf("source: %v %v", r, ok)
	}
	for _, name := range []string{"op", "missing"} {
		if _, ok := s.Record(name); ok {
			t.Fatalf("%s: a record", name)
		}
	}
	prim, err := ParseAvroSchema(`"string"`)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := prim.Record("x"); ok {
		t.Fatal("a string schema has a record field")
	}
}
