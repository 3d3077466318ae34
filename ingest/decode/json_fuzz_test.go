package decode

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/extensions"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	"github.com/stretchr/testify/require"
)

// fuzzSchema has one optional column of every primitive type the decoder supports.
func fuzzSchema() *iceberg.Schema {
	return iceberg.NewSchema(0,
		iceberg.NestedField{ID: 1, Name: "b", Type: iceberg.PrimitiveTypes.Bool},
		iceberg.NestedField{ID: 2, Name: "i", Type: iceberg.PrimitiveTypes.Int32},
		iceberg.NestedField{ID: 3, Name: "l", Type: iceberg.PrimitiveTypes.Int64},
		iceberg.NestedField{ID: 4, Name: "f", Type: iceberg.PrimitiveTypes.Float32},
		iceberg.NestedField{ID: 5, Name: "d", Type: iceberg.PrimitiveTypes.Float64},
		iceberg.NestedField{ID: 6, Name: "dec", Type: iceberg.DecimalTypeOf(12, 3)},
		iceberg.NestedField{ID: 7, Name: "dt", Type: iceberg.PrimitiveTypes.Date},
		iceberg.NestedField{ID: 8, Name: "tm", Type: iceberg.PrimitiveTypes.Time},
		iceberg.NestedField{ID: 9, Name: "ts", Type: iceberg.PrimitiveTypes.Timestamp},
		iceberg.NestedField{ID: 10, Name: "tstz", Type: iceberg.PrimitiveTypes.TimestampTz},
		iceberg.NestedField{ID: 11, Name: "s", Type: iceberg.PrimitiveTypes.String},
		iceberg.NestedField{ID: 12, Name: "bin", Type: iceberg.PrimitiveTypes.Binary},
		iceberg.NestedField{ID: 13, Name: "fx", Type: iceberg.FixedTypeOf(4)},
		iceberg.NestedField{ID: 14, Name: "u", Type: iceberg.PrimitiveTypes.UUID},
	)
}

// FuzzJSONDecoder feeds arbitrary bytes to a decoder for every primitive type (fuzzSchema) and to
// one for nested types (nestedSchema). Invariants checked for every input:
//
//  1. Parse never panics, and every error it returns is a *DecodeError with a reason.
//  2. The JSON scanner accepts exactly what encoding/json accepts, except for the documented
//     extra strictness (unpaired UTF-16 surrogates, nesting deeper than 256), and words its
//     syntax errors the same way.
//  3. A failed Parse appends nothing and leaves the last good row (its Cells) as it was.
//  4. After a successful Parse, Append adds exactly one value to every column builder, and the
//     built arrays are valid.
//  5. For the primitive schema, the appended row, read back from Arrow and re-encoded as JSON,
//     parses again to the same Cells: nothing was lost between Parse, Append and the types.
func FuzzJSONDecoder(f *testing.F) {
	seeds := []string{
		`{"b":true,"i":-7,"l":9223372036854775807,"f":1.5,"d":-0.25,"dec":"-123456789.123","dt":"2026-11-22","tm":"10:11:12.000013","ts":"2026-11-22T10:00:00.5+01:00","tstz":1795340400123,"s":"héllo\n\u00e9\ud83d\ude00","bin":"AQID","fx":"AQIDBA==","u":"123e4567-e89b-12d3-a456-426614174000"}`,
		`{"b":false,"i":2147483647,"l":-9223372036854775808,"f":3.4028234663852886e38,"d":5e-324,"dec":0.001,"dt":-719528,"tm":"23:59:59.999999","ts":"0000-01-01T00:00:00Z","tstz":"9999-12-31T23:59:59.999999Z","s":"","bin":"","fx":"/////w==","u":"FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF"}`,
		`{"b":null,"i":null,"l":null,"f":null,"d":null,"dec":null,"dt":null,"tm":null,"ts":null,"tstz":null,"s":null,"bin":null,"fx":null,"u":null}`,
		`{}`,
		`{"extra":{"deep":[1,{"x":[null,true]}]},"i":1}`,
		`{"ts":"2026-11-22 10:00:00.123456789z","tstz":"2026-11-22T10:00:00+0200"}`,
		`{"ts":"2026-11-22T10:00:00,5-03","dt":"2024-02-29","tm":"00:00:00.1"}`,
		`{"ts":-62135596800000,"tstz":253402300799999}`,
		`{"dec":"1e5","d":1E+300,"f":-0.0,"l":-0}`,
		`{"dec":1.2345}`, `{"dec":"123456789012"}`, `{"i":1.0}`, `{"i":2147483648}`, `{"l":1e3}`, `{"f":1e39}`,
		`{"dt":"2023-02-29"}`, `{"tm":"24:00:00"}`, `{"ts":"yesterday"}`, `{"tstz":9223372036854775807}`,
		`{"s":"\ud800"}`, "{\"s\":\"\xff\"}", `{"bin":"AQJ="}`, `{"fx":"AQI="}`, `{"u":"123e4567e89b12d3a456426614174000"}`,
		`{"b":1}`, `{"b":true,"b":false}`, `[1,2]`, `"x"`, `null`, ``, `{`, `{"a":1}}`, `{"a":01}`, `{"a":NaN}`,
		`{"a":"\u12g4"}`, `{"a":tru}`, `{"a":f `, `{"a":tr`, `{"a":1e`, `x`, strings.Repeat("[", 260) + strings.Repeat("]", 260),
		`{"shipping":{"country":"DE","city":"Berlin"},"items":[{"sku":"a","qty":1},{"qty":2}],"attrs":{"x":1,"y":2},"m":[[1,null],[],null],"tags":{"t":["123e4567-e89b-12d3-a456-426614174000",null]}}`,
		`{"shipping":{"country":"DE"},"items":[null],"attrs":{"a":1,"a":2},"m":[[1],[2,"x"]]}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}

	flat, err := NewJSONDecoder(fuzzSchema())
	require.NoError(f, err)
	check, err := NewJSONDecoder(fuzzSchema())
	require.NoError(f, err)
	nested, err := NewJSONDecoder(nestedSchema())
	require.NoError(f, err)
	var scan jsonScanner

	f.Fuzz(func(t *testing.T, data []byte) {
		checkScannerAgainstEncodingJSON(t, &scan, data)

		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		defer mem.AssertSize(t, 0)

		fuzzParseAppend(t, mem, nested, data, nil)
		var row []byte
		if fuzzParseAppend(t, mem, flat, data, func(rec arrow.RecordBatch) { row = encodeRow(t, rec, 0) }) {
			want := snapshotCells(flat)
			require.NoError(t, check.Parse(row, RecordMeta{}), "re-encoded row %s of %s", row, data)
			for i := range want {
				if !sameCell(want[i], check.Cell(i)) {
					t.Fatalf("column %d: %+v after re-encoding as %s, was %+v from %s", i, check.Cell(i), row, want[i], data)
				}
			}
		}
	})
}

// fuzzParseAppend parses data with d and checks invariants 1, 3 and 4. It reports whether Parse
// succeeded; inspect, if given, sees the one-row record.
func fuzzParseAppend(t *testing.T, mem memory.Allocator, d *JSONDecoder, data []byte, inspect func(arrow.RecordBatch)) bool {
	t.Helper()
	rb := array.NewRecordBuilder(mem, d.ArrowSchema())
	defer rb.Release()
	hadRow := d.last >= 0
	var before []Cell
	if hadRow {
		before = snapshotCells(d)
	}
	err := d.Parse(data, RecordMeta{})
	if err != nil {
		var de *DecodeError
		if !errors.As(err, &de) || de.Reason == "" {
			t.Fatalf("Parse(%q) returned %T %v, want a *DecodeError with a reason", data, err, err)
		}
		for i, f := range rb.Fields() {
			if f.Len() != 0 {
				t.Fatalf("column %d has %d values after a failed Parse", i, f.Len())
			}
		}
		if hadRow {
			for i := range before {
				if !sameCell(before[i], d.Cell(i)) {
					t.Fatalf("failed Parse(%q) changed column %d of the last good row", data, i)
				}
			}
		}
		return false
	}
	d.Append(rb)
	for i, f := range rb.Fields() {
		if f.Len() != 1 {
			t.Fatalf("column %d has %d values after one Append of %q", i, f.Len(), data)
		}
	}
	rec := rb.NewRecordBatch()
	defer rec.Release()
	for i := range int(rec.NumCols()) {
		if err := array.ValidateFull(rec.Column(i)); err != nil {
			t.Fatalf("column %d invalid after Append of %q: %v", i, data, err)
		}
	}
	if inspect != nil {
		inspect(rec)
	}
	return true
}

func snapshotCells(d *JSONDecoder) []Cell {
	out := make([]Cell, len(d.root.children))
	for i := range out {
		c := d.Cell(i)
		if c.Bytes != nil {
			c.Bytes = bytes.Clone(c.Bytes)
		}
		out[i] = c
	}
	return out
}

func sameCell(a, b Cell) bool {
	return a.Null == b.Null && a.Int == b.Int && math.Float64bits(a.Float) == math.Float64bits(b.Float) &&
		bytes.Equal(a.Bytes, b.Bytes) && a.Dec == b.Dec
}

// encodeRow renders row i of rec as a JSON record the decoder accepts, choosing the string forms
// (dates, timestamps) where they can express the value and numbers elsewhere.
func encodeRow(t *testing.T, rec arrow.RecordBatch, i int) []byte {
	t.Helper()
	var b bytes.Buffer
	b.WriteByte('{')
	for c := range int(rec.NumCols()) {
		if c > 0 {
			b.WriteByte(',')
		}
		name, _ := json.Marshal(rec.Schema().Field(c).Name)
		b.Write(name)
		b.WriteByte(':')
		col := rec.Column(c)
		if col.IsNull(i) {
			b.WriteString("null")
			continue
		}
		switch a := col.(type) {
		case *array.Boolean:
			b.WriteString(strconv.FormatBool(a.Value(i)))
		case *array.Int32:
			b.WriteString(strconv.FormatInt(int64(a.Value(i)), 10))
		case *array.Int64:
			b.WriteString(strconv.FormatInt(a.Value(i), 10))
		case *array.Float32:
			b.WriteString(strconv.FormatFloat(float64(a.Value(i)), 'g', -1, 32))
		case *array.Float64:
			b.WriteString(strconv.FormatFloat(a.Value(i), 'g', -1, 64))
		case *array.Decimal128:
			fmt.Fprintf(&b, "%q", a.Value(i).ToString(a.DataType().(*arrow.Decimal128Type).Scale))
		case *array.Date32:
			day := int64(a.Value(i))
			if tm := time.Unix(day*86400, 0).UTC(); tm.Year() >= 0 && tm.Year() <= 9999 {
				fmt.Fprintf(&b, "%q", tm.Format("2006-01-02"))
			} else {
				b.WriteString(strconv.FormatInt(day, 10))
			}
		case *array.Time64:
			us := int64(a.Value(i))
			fmt.Fprintf(&b, `"%02d:%02d:%02d.%06d"`, us/3600e6, us/60e6%60, us/1e6%60, us%1e6)
		case *array.Timestamp:
			us := int64(a.Value(i))
			if tm := time.UnixMicro(us).UTC(); tm.Year() >= 0 && tm.Year() <= 9999 {
				fmt.Fprintf(&b, "%q", tm.Format("2006-01-02T15:04:05.000000Z07:00"))
			} else {
				require.Zero(t, us%1000, "an out-of-range timestamp can only come from epoch milliseconds")
				b.WriteString(strconv.FormatInt(us/1000, 10))
			}
		case *array.String:
			s, _ := json.Marshal(a.Value(i))
			b.Write(s)
		case *array.Binary:
			fmt.Fprintf(&b, "%q", base64.StdEncoding.EncodeToString(a.Value(i)))
		case *array.FixedSizeBinary:
			fmt.Fprintf(&b, "%q", base64.StdEncoding.EncodeToString(a.Value(i)))
		case *extensions.UUIDArray:
			u := a.Value(i)
			fmt.Fprintf(&b, `"%s-%s-%s-%s-%s"`, hex.EncodeToString(u[0:4]), hex.EncodeToString(u[4:6]),
				hex.EncodeToString(u[6:8]), hex.EncodeToString(u[8:10]), hex.EncodeToString(u[10:16]))
		default:
			t.Fatalf("encodeRow: no encoding for %T", col)
		}
	}
	b.WriteByte('}')
	return b.Bytes()
}
