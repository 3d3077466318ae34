package decode

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
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
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// decodeOne decodes {"v": value} with a decoder for one optional column "v" of type typ.
func decodeOne(t *testing.T, typ iceberg.Type, value string) (Cell, error) {
	t.Helper()
	d, err := NewJSONDecoder(iceberg.NewSchema(0, iceberg.NestedField{ID: 1, Name: "v", Type: typ}))
	require.NoError(t, err)
	if err := d.Parse([]byte(`{"v":`+value+`}`), RecordMeta{}); err != nil {
		return Cell{}, err
	}
	return d.Cell(0), nil
}

type cellCase struct {
	in      string // JSON text of the value
	want    Cell
	wantErr string // full Error() text
}

func runCellCases(t *testing.T, typ iceberg.Type, cases []cellCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			got, err := decodeOne(t, typ, tc.in)
			if tc.wantErr != "" {
				require.Error(t, err)
				var de *DecodeError
				require.True(t, errors.As(err, &de), "error is %T", err)
				assert.Equal(t, tc.wantErr, err.Error())
				return
			}
			require.NoError(t, err)
			assertCell(t, tc.want, got)
		})
	}
}

func assertCell(t *testing.T, want, got Cell) {
	t.Helper()
	assert.Equal(t, want.Null, got.Null, "Null")
	assert.Equal(t, want.Int, got.Int, "Int")
	assert.Equal(t, math.Float64bits(want.Float), math.Float64bits(got.Float), "Float: want %v got %v", want.Float, got.Float)
	assert.True(t, bytes.Equal(want.Bytes, got.Bytes), "Bytes: want %q got %q", want.Bytes, got.Bytes)
	assert.Equal(t, want.Dec, got.Dec, "Dec: want %s got %s", want.Dec.BigInt(), got.Dec.BigInt())
}

func errV(reason string) string { return `field "v": ` + reason }

func TestJSONDecoderBoolean(t *testing.T) {
	runCellCases(t, iceberg.PrimitiveTypes.Bool, []cellCase{
		{in: `true`, want: Cell{Int: 1}},
		{in: `false`, want: Cell{Int: 0}},
		{in: `null`, want: Cell{Null: true}},
		{in: `"true"`, wantErr: errV(`expected true or false, got "true"`)},
		{in: `1`, wantErr: errV(`expected true or false, got 1`)},
	})
}

func TestJSONDecoderInt(t *testing.T) {
	runCellCases(t, iceberg.PrimitiveTypes.Int32, []cellCase{
		{in: `0`, want: Cell{}},
		{in: `-0`, want: Cell{}},
		{in: `42`, want: Cell{Int: 42}},
		{in: `2147483647`, want: Cell{Int: math.MaxInt32}},
		{in: `-2147483648`, want: Cell{Int: math.MinInt32}},
		{in: `2147483648`, wantErr: errV(`integer 2147483648 is out of range for int`)},
		{in: `-2147483649`, wantErr: errV(`integer -2147483649 is out of range for int`)},
		{in: `99999999999999999999`, wantErr: errV(`integer 99999999999999999999 is out of range for int`)},
		{in: `1.0`, wantErr: errV(`expected an integer, got 1.0`)},
		{in: `1e3`, wantErr: errV(`expected an integer, got 1e3`)},
		{in: `"1"`, wantErr: errV(`expected an integer, got "1"`)},
		{in: `true`, wantErr: errV(`expected an integer, got true`)},
		{in: `{"a":1}`, wantErr: errV(`expected an integer, got {"a":1}`)},
	})
}

func TestJSONDecoderLong(t *testing.T) {
	runCellCases(t, iceberg.PrimitiveTypes.Int64, []cellCase{
		{in: `9223372036854775807`, want: Cell{Int: math.MaxInt64}},
		{in: `-9223372036854775808`, want: Cell{Int: math.MinInt64}},
		{in: `9007199254740993`, want: Cell{Int: 9007199254740993}}, // 2^53+1: not representable as float64
		{in: `9223372036854775808`, wantErr: errV(`integer 9223372036854775808 is out of range for long`)},
		{in: `-9223372036854775809`, wantErr: errV(`integer -9223372036854775809 is out of range for long`)},
		{in: `18446744073709551616`, wantErr: errV(`integer 18446744073709551616 is out of range for long`)},
		{in: `1.5`, wantErr: errV(`expected an integer, got 1.5`)},
		{in: `-1E+2`, wantErr: errV(`expected an integer, got -1E+2`)},
	})
}

func TestJSONDecoderFloat(t *testing.T) {
	runCellCases(t, iceberg.PrimitiveTypes.Float32, []cellCase{
		{in: `1.5`, want: Cell{Float: 1.5}},
		{in: `0.1`, want: Cell{Float: float64(float32(0.1))}},
		{in: `-0.0`, want: Cell{Float: math.Copysign(0, -1)}},
		{in: `7`, want: Cell{Float: 7}},
		{in: `3.4028234663852886e38`, want: Cell{Float: math.MaxFloat32}},
		{in: `1e39`, wantErr: errV(`number 1e39 is out of range for float`)},
		{in: `"1.5"`, wantErr: errV(`expected a number, got "1.5"`)},
	})
	runCellCases(t, iceberg.PrimitiveTypes.Float64, []cellCase{
		{in: `0.1`, want: Cell{Float: 0.1}},
		{in: `123`, want: Cell{Float: 123}},
		{in: `-2.5e-3`, want: Cell{Float: -0.0025}},
		{in: `1.7976931348623157e308`, want: Cell{Float: math.MaxFloat64}},
		{in: `5e-324`, want: Cell{Float: math.SmallestNonzeroFloat64}},
		{in: `1e309`, wantErr: errV(`number 1e309 is out of range for double`)},
		{in: `-1e309`, wantErr: errV(`number -1e309 is out of range for double`)},
		{in: `false`, wantErr: errV(`expected a number, got false`)},
	})
}

func decNum(t *testing.T, s string) decimal128.Num {
	t.Helper()
	n, err := decimal128.FromString(s, 38, 0)
	require.NoError(t, err)
	return n
}

func TestJSONDecoderDecimal(t *testing.T) {
	runCellCases(t, iceberg.DecimalTypeOf(10, 2), []cellCase{
		{in: `12.34`, want: Cell{Dec: decimal128.FromI64(1234)}},
		{in: `"12.34"`, want: Cell{Dec: decimal128.FromI64(1234)}},
		{in: `12.3`, want: Cell{Dec: decimal128.FromI64(1230)}},
		{in: `12`, want: Cell{Dec: decimal128.FromI64(1200)}},
		{in: `"-0.05"`, want: Cell{Dec: decimal128.FromI64(-5)}},
		{in: `-0`, want: Cell{}},
		{in: `"+7"`, want: Cell{Dec: decimal128.FromI64(700)}},
		{in: `"007.50"`, want: Cell{Dec: decimal128.FromI64(750)}},
		{in: `1.230`, want: Cell{Dec: decimal128.FromI64(123)}}, // trailing zeros lose nothing
		{in: `1e2`, want: Cell{Dec: decimal128.FromI64(10000)}},
		{in: `1.5E-1`, want: Cell{Dec: decimal128.FromI64(15)}},
		{in: `"99999999.99"`, want: Cell{Dec: decimal128.FromI64(9999999999)}},
		{in: `-99999999.99`, want: Cell{Dec: decimal128.FromI64(-9999999999)}},
		{in: `123456789`, wantErr: errV(`value 123456789 does not fit decimal(10, 2): more than 8 digits before the decimal point`)},
		{in: `"100000000.00"`, wantErr: errV(`value "100000000.00" does not fit decimal(10, 2): more than 8 digits before the decimal point`)},
		{in: `1.234`, wantErr: errV(`value 1.234 does not fit decimal(10, 2): more than 2 digits after the decimal point`)},
		{in: `"0.001"`, wantErr: errV(`value "0.001" does not fit decimal(10, 2): more than 2 digits after the decimal point`)},
		{in: `1e-3`, wantErr: errV(`value 1e-3 does not fit decimal(10, 2): more than 2 digits after the decimal point`)},
		{in: `1e999999999`, wantErr: errV(`value 1e999999999 does not fit decimal(10, 2): more than 8 digits before the decimal point`)},
		{in: `"abc"`, wantErr: errV(`expected a decimal number (a JSON number or a numeric string), got "abc"`)},
		{in: `""`, wantErr: errV(`expected a decimal number (a JSON number or a numeric string), got ""`)},
		{in: `"1.2.3"`, wantErr: errV(`expected a decimal number (a JSON number or a numeric string), got "1.2.3"`)},
		{in: `" 1"`, wantErr: errV(`expected a decimal number (a JSON number or a numeric string), got " 1"`)},
		{in: `"1e"`, wantErr: errV(`expected a decimal number (a JSON number or a numeric string), got "1e"`)},
		{in: `true`, wantErr: errV(`expected a decimal number (a JSON number or a numeric string), got true`)},
	})
	max38 := strings.Repeat("9", 38)
	runCellCases(t, iceberg.DecimalTypeOf(38, 0), []cellCase{
		{in: max38, want: Cell{Dec: decNum(t, max38)}},
		{in: `"-` + max38 + `"`, want: Cell{Dec: decNum(t, "-"+max38)}},
		{in: `18446744073709551616`, want: Cell{Dec: decNum(t, "18446744073709551616")}}, // 2^64
		{in: `-18446744073709551615`, want: Cell{Dec: decNum(t, "-18446744073709551615")}},
		{in: "1" + strings.Repeat("0", 38), wantErr: errV(`value 1` + strings.Repeat("0", 38) + ` does not fit decimal(38, 0): more than 38 digits before the decimal point`)},
	})
	runCellCases(t, iceberg.DecimalTypeOf(38, 10), []cellCase{
		{in: `"1234567890123456789012345678.0123456789"`, want: Cell{Dec: decNum(t, "12345678901234567890123456780123456789")}},
		{in: `0.0000000001`, want: Cell{Dec: decimal128.FromI64(1)}},
	})
	runCellCases(t, iceberg.DecimalTypeOf(5, 5), []cellCase{
		{in: `0.12345`, want: Cell{Dec: decimal128.FromI64(12345)}},
		{in: `1`, wantErr: errV(`value 1 does not fit decimal(5, 5): more than 0 digits before the decimal point`)},
	})
}

func epochDays(y int, m time.Month, d int) int64 {
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400
}

func TestJSONDecoderDate(t *testing.T) {
	const want = `expected a date as "YYYY-MM-DD" or a number of days since 1970-01-01`
	runCellCases(t, iceberg.PrimitiveTypes.Date, []cellCase{
		{in: `"1970-01-01"`, want: Cell{}},
		{in: `"2026-11-22"`, want: Cell{Int: epochDays(2026, 11, 22)}},
		{in: `"2024-02-29"`, want: Cell{Int: epochDays(2024, 2, 29)}},
		{in: `"2000-02-29"`, want: Cell{Int: epochDays(2000, 2, 29)}},
		{in: `"1969-12-31"`, want: Cell{Int: -1}},
		{in: `"0000-01-01"`, want: Cell{Int: -719528}},
		{in: `"9999-12-31"`, want: Cell{Int: 2932896}},
		{in: `20000`, want: Cell{Int: 20000}},
		{in: `-1`, want: Cell{Int: -1}},
		{in: `"2023-02-29"`, wantErr: errV(want + `, got "2023-02-29"`)},
		{in: `"1900-02-29"`, wantErr: errV(want + `, got "1900-02-29"`)},
		{in: `"2026-13-01"`, wantErr: errV(want + `, got "2026-13-01"`)},
		{in: `"2026-04-31"`, wantErr: errV(want + `, got "2026-04-31"`)},
		{in: `"2026-1-01"`, wantErr: errV(want + `, got "2026-1-01"`)},
		{in: `"2026-11-22T00:00:00Z"`, wantErr: errV(want + `, got "2026-11-22T00:00:00Z"`)},
		{in: `1.5`, wantErr: errV(want + `, got 1.5`)},
		{in: `2147483648`, wantErr: errV(`day number 2147483648 is out of range for date`)},
	})
}

func TestJSONDecoderTime(t *testing.T) {
	const want = `expected a time of day as "HH:MM:SS[.ffffff]"`
	runCellCases(t, iceberg.PrimitiveTypes.Time, []cellCase{
		{in: `"00:00:00"`, want: Cell{}},
		{in: `"10:00:00"`, want: Cell{Int: 36000e6}},
		{in: `"23:59:59.999999"`, want: Cell{Int: 86399999999}},
		{in: `"00:00:00.1"`, want: Cell{Int: 100000}},
		{in: `"10:00:00.123456789"`, want: Cell{Int: 36000123456}},
		{in: `"24:00:00"`, wantErr: errV(want + `, got "24:00:00"`)},
		{in: `"10:60:00"`, wantErr: errV(want + `, got "10:60:00"`)},
		{in: `"10:00"`, wantErr: errV(want + `, got "10:00"`)},
		{in: `"10:00:00."`, wantErr: errV(want + `, got "10:00:00."`)},
		{in: `"10:00:00.1234567890"`, wantErr: errV(want + `, got "10:00:00.1234567890"`)},
		{in: `"10:00:00Z"`, wantErr: errV(want + `, got "10:00:00Z"`)},
		{in: `36000`, wantErr: errV(want + `, got 36000`)},
	})
}

func epochMicros(y int, mo time.Month, d, h, mi, s, ns int, loc *time.Location) int64 {
	return time.Date(y, mo, d, h, mi, s, ns, loc).UnixMicro()
}

func TestJSONDecoderTimestamp(t *testing.T) {
	const want = `expected an RFC 3339 timestamp or epoch milliseconds`
	plus2 := time.FixedZone("", 2*3600)
	cases := []cellCase{
		{in: `"2026-11-22T10:00:00Z"`, want: Cell{Int: epochMicros(2026, 11, 22, 10, 0, 0, 0, time.UTC)}},
		{in: `"2026-11-22T10:00:00.123Z"`, want: Cell{Int: epochMicros(2026, 11, 22, 10, 0, 0, 123e6, time.UTC)}},
		{in: `"2026-11-22T10:00:00.123456+02:00"`, want: Cell{Int: epochMicros(2026, 11, 22, 8, 0, 0, 123456e3, time.UTC)}},
		{in: `"2026-11-22T10:00:00-05:30"`, want: Cell{Int: epochMicros(2026, 11, 22, 15, 30, 0, 0, time.UTC)}},
		{in: `"2026-11-22 10:00:00.1Z"`, want: Cell{Int: epochMicros(2026, 11, 22, 10, 0, 0, 1e8, time.UTC)}},
		{in: `"2026-11-22t10:00:00z"`, want: Cell{Int: epochMicros(2026, 11, 22, 10, 0, 0, 0, time.UTC)}},
		{in: `"2026-11-22T10:00:00.123456789Z"`, want: Cell{Int: epochMicros(2026, 11, 22, 10, 0, 0, 123456e3, time.UTC)}},
		{in: `"2026-11-22T10:00:00"`, want: Cell{Int: epochMicros(2026, 11, 22, 10, 0, 0, 0, time.UTC)}},
		{in: `"2026-11-22T00:30:00+01:00"`, want: Cell{Int: epochMicros(2026, 11, 21, 23, 30, 0, 0, time.UTC)}},
		{in: `"2024-02-29T12:00:00Z"`, want: Cell{Int: epochMicros(2024, 2, 29, 12, 0, 0, 0, time.UTC)}},
		{in: `"1969-12-31T23:59:59.9999999Z"`, want: Cell{Int: -1}},
		{in: `"0000-01-01T00:00:00Z"`, want: Cell{Int: epochMicros(0, 1, 1, 0, 0, 0, 0, time.UTC)}},
		{in: `"9999-12-31T23:59:59.999999Z"`, want: Cell{Int: epochMicros(9999, 12, 31, 23, 59, 59, 999999e3, time.UTC)}},
		// Shapes only the time.Parse fallback knows.
		{in: `"2026-11-22T10:00:00+0200"`, want: Cell{Int: epochMicros(2026, 11, 22, 10, 0, 0, 0, plus2)}},
		{in: `"2026-11-22T10:00:00.5+0200"`, want: Cell{Int: epochMicros(2026, 11, 22, 10, 0, 0, 5e8, plus2)}},
		{in: `"2026-11-22T10:00:00+02"`, want: Cell{Int: epochMicros(2026, 11, 22, 10, 0, 0, 0, plus2)}},
		{in: `"2026-11-22T10:00:00,25Z"`, want: Cell{Int: epochMicros(2026, 11, 22, 10, 0, 0, 25e7, time.UTC)}},
		{in: `"2026-11-22T10:00:00.1234567891Z"`, want: Cell{Int: epochMicros(2026, 11, 22, 10, 0, 0, 123456e3, time.UTC)}},
		// Epoch milliseconds.
		{in: `1795340400123`, want: Cell{Int: 1795340400123000}},
		{in: `0`, want: Cell{}},
		{in: `-1`, want: Cell{Int: -1000}},
		{in: `"yesterday"`, wantErr: errV(want + `, got "yesterday"`)},
		{in: `""`, wantErr: errV(want + `, got ""`)},
		{in: `"2026-11-22"`, wantErr: errV(want + `, got "2026-11-22"`)},
		{in: `"2026-02-30T10:00:00Z"`, wantErr: errV(want + `, got "2026-02-30T10:00:00Z"`)},
		{in: `"2026-11-22T10:00:60Z"`, wantErr: errV(want + `, got "2026-11-22T10:00:60Z"`)},
		{in: `"2026-11-22T24:00:00Z"`, wantErr: errV(want + `, got "2026-11-22T24:00:00Z"`)},
		{in: `"2026-11-22T10:00:00+24:00"`, wantErr: errV(want + `, got "2026-11-22T10:00:00+24:00"`)},
		{in: `"2026-11-22T10:00:00.Z"`, wantErr: errV(want + `, got "2026-11-22T10:00:00.Z"`)},
		{in: `"2026-11-22T10:00:00Zjunk"`, wantErr: errV(want + `, got "2026-11-22T10:00:00Zjunk"`)},
		{in: `"12026-11-22T10:00:00Z"`, wantErr: errV(want + `, got "12026-11-22T10:00:00Z"`)},
		{in: `1.5`, wantErr: errV(want + `, got 1.5`)},
		{in: `1e3`, wantErr: errV(want + `, got 1e3`)},
		{in: `true`, wantErr: errV(want + `, got true`)},
	}
	t.Run("timestamptz", func(t *testing.T) {
		runCellCases(t, iceberg.PrimitiveTypes.TimestampTz, append(cases,
			cellCase{in: `9223372036854775807`, wantErr: errV(`epoch milliseconds 9223372036854775807 are out of range for timestamptz`)},
			cellCase{in: `92233720368547759`, wantErr: errV(`epoch milliseconds 92233720368547759 are out of range for timestamptz`)},
		))
	})
	t.Run("timestamp", func(t *testing.T) {
		runCellCases(t, iceberg.PrimitiveTypes.Timestamp, append(cases,
			cellCase{in: `-9223372036854775808`, wantErr: errV(`epoch milliseconds -9223372036854775808 are out of range for timestamp`)},
		))
	})
	t.Run("timestamptz_ns", func(t *testing.T) {
		runCellCases(t, iceberg.PrimitiveTypes.TimestampTzNs, []cellCase{
			{in: `"2026-11-22T10:00:00.123456789Z"`, want: Cell{Int: time.Date(2026, 11, 22, 10, 0, 0, 123456789, time.UTC).UnixNano()}},
			{in: `"1677-09-21T00:12:43.145224192Z"`, want: Cell{Int: time.Date(1677, 9, 21, 0, 12, 43, 145224192, time.UTC).UnixNano()}},
			{in: `"2262-04-11T23:47:16.854775807Z"`, want: Cell{Int: math.MaxInt64}},
			{in: `1000`, want: Cell{Int: 1e9}},
			{in: `"2262-04-11T23:47:16.854775808Z"`, wantErr: errV(`timestamp "2262-04-11T23:47:16.854775808Z" is out of range for timestamptz_ns`)},
			{in: `"1500-01-01T00:00:00Z"`, wantErr: errV(`timestamp "1500-01-01T00:00:00Z" is out of range for timestamptz_ns`)},
			{in: `9223372036855`, wantErr: errV(`epoch milliseconds 9223372036855 are out of range for timestamptz_ns`)},
		})
	})
}

func TestJSONDecoderString(t *testing.T) {
	runCellCases(t, iceberg.PrimitiveTypes.String, []cellCase{
		{in: `"hello"`, want: Cell{Bytes: []byte("hello")}},
		{in: `""`, want: Cell{Bytes: []byte{}}},
		{in: `"héllo 日本"`, want: Cell{Bytes: []byte("héllo 日本")}},
		{in: `"a\"b\\c\/d\b\f\n\r\t"`, want: Cell{Bytes: []byte("a\"b\\c/d\b\f\n\r\t")}},
		{in: `"\u00e9\u65e5\ud83d\ude00\u0000"`, want: Cell{Bytes: []byte("é日😀\x00")}},
		{in: `"long string that goes past the eight byte blocks of the scanner"`, want: Cell{Bytes: []byte("long string that goes past the eight byte blocks of the scanner")}},
		{in: "\"\xff\xfe\"", wantErr: errV(`string is not valid UTF-8`)},
		{in: "\"ok \xc3\x28\"", wantErr: errV(`string is not valid UTF-8`)},
		{in: `12`, wantErr: errV(`expected a string, got 12`)},
		{in: `["a"]`, wantErr: errV(`expected a string, got ["a"]`)},
		{in: `{"k":"` + strings.Repeat("x", 100) + `"}`, wantErr: errV(`expected a string, got {"k":"` + strings.Repeat("x", 55) + `...`)},
	})
}

func TestJSONDecoderBinary(t *testing.T) {
	const want = `expected a base64 string`
	runCellCases(t, iceberg.PrimitiveTypes.Binary, []cellCase{
		{in: `"AQID"`, want: Cell{Bytes: []byte{1, 2, 3}}},
		{in: `"AQI="`, want: Cell{Bytes: []byte{1, 2}}},
		{in: `""`, want: Cell{Bytes: []byte{}}},
		{in: `"AQI"`, wantErr: errV(want + `, got "AQI"`)},
		{in: `"AQJ="`, wantErr: errV(want + `, got "AQJ="`)}, // non-zero padding bits
		{in: `"AQ-_"`, wantErr: errV(want + `, got "AQ-_"`)}, // URL alphabet
		{in: `5`, wantErr: errV(want + `, got 5`)},
	})
	runCellCases(t, iceberg.FixedTypeOf(3), []cellCase{
		{in: `"AQID"`, want: Cell{Bytes: []byte{1, 2, 3}}},
		{in: `"AQI="`, wantErr: errV(`base64 value decodes to 2 bytes, fixed[3] needs exactly 3`)},
		{in: `"AQIDBA=="`, wantErr: errV(`base64 value decodes to 4 bytes, fixed[3] needs exactly 3`)},
		{in: `"%%%%"`, wantErr: errV(want + `, got "%%%%"`)},
	})
}

func TestJSONDecoderUUID(t *testing.T) {
	const want = `expected a UUID as "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"`
	u := []byte{0x12, 0x3e, 0x45, 0x67, 0xe8, 0x9b, 0x12, 0xd3, 0xa4, 0x56, 0x42, 0x66, 0x14, 0x17, 0x40, 0x00}
	runCellCases(t, iceberg.PrimitiveTypes.UUID, []cellCase{
		{in: `"123e4567-e89b-12d3-a456-426614174000"`, want: Cell{Bytes: u}},
		{in: `"123E4567-E89B-12D3-A456-426614174000"`, want: Cell{Bytes: u}},
		{in: `"123e4567e89b12d3a456426614174000"`, wantErr: errV(want + `, got "123e4567e89b12d3a456426614174000"`)},
		{in: `"123e4567-e89b-12d3-a456-42661417400g"`, wantErr: errV(want + `, got "123e4567-e89b-12d3-a456-42661417400g"`)},
		{in: `"{123e4567-e89b-12d3-a456-426614174000}"`, wantErr: errV(want + `, got "{123e4567-e89b-12d3-a456-426614174000}"`)},
		{in: `1`, wantErr: errV(want + `, got 1`)},
	})
}

func TestJSONDecoderUnknownType(t *testing.T) {
	runCellCases(t, iceberg.PrimitiveTypes.Unknown, []cellCase{
		{in: `null`, want: Cell{Null: true}},
		{in: `1`, wantErr: errV(`expected null (the field's type is unknown), got 1`)},
	})
}

func TestJSONDecoderMissingAndNull(t *testing.T) {
	d, err := NewJSONDecoder(iceberg.NewSchema(0,
		iceberg.NestedField{ID: 1, Name: "req", Type: iceberg.PrimitiveTypes.Int64, Required: true},
		iceberg.NestedField{ID: 2, Name: "opt", Type: iceberg.PrimitiveTypes.String},
	))
	require.NoError(t, err)

	require.NoError(t, d.Parse([]byte(`{"req":1,"extra":{"ignored":[1,2,{"x":null}]},"opt":null}`), RecordMeta{}))
	assert.Equal(t, Cell{Int: 1}, d.Cell(0))
	assert.Equal(t, Cell{Null: true}, d.Cell(1))

	require.NoError(t, d.Parse([]byte(`{"req":2}`), RecordMeta{}))
	assert.True(t, d.Cell(1).Null)

	for _, rec := range []string{`{}`, `{"opt":"x"}`} {
		err := d.Parse([]byte(rec), RecordMeta{})
		require.Error(t, err, rec)
		assert.Equal(t, `field "req": required field is missing`, err.Error())
		assert.Equal(t, &DecodeError{Field: "req", Reason: "required field is missing"}, err)
	}
	// A null is not a missing field: the message says which it was.
	err = d.Parse([]byte(`{"req":null}`), RecordMeta{})
	assert.Equal(t, &DecodeError{Field: "req", Reason: "required field is null"}, err)
}

func TestJSONDecoderRecordErrors(t *testing.T) {
	d, err := NewJSONDecoder(iceberg.NewSchema(0, iceberg.NestedField{ID: 1, Name: "v", Type: iceberg.PrimitiveTypes.Int64}))
	require.NoError(t, err)
	deep := strings.Repeat("[", 300) + strings.Repeat("]", 300)
	cases := []struct{ in, want string }{
		{`x`, `record is not a JSON object: invalid character 'x' looking for beginning of value (offset 0)`},
		{``, `record is not a JSON object: unexpected end of JSON input (offset 0)`},
		{`   `, `record is not a JSON object: unexpected end of JSON input (offset 3)`},
		{`{"v":1`, `record is not a JSON object: unexpected end of JSON input (offset 6)`},
		{`{"v":1}}`, `record is not a JSON object: invalid character '}' after top-level value (offset 7)`},
		{`{"v":1} {}`, `record is not a JSON object: invalid character '{' after top-level value (offset 8)`},
		{`{"v":01}`, `record is not a JSON object: invalid character '1' after object key:value pair (offset 6)`},
		{`{"v":NaN}`, `record is not a JSON object: invalid character 'N' looking for beginning of value (offset 5)`},
		{`{"v":nan}`, `record is not a JSON object: invalid character 'a' in literal null (expecting 'u') (offset 6)`},
		{`{"v":-}`, `record is not a JSON object: invalid character '}' in numeric literal (offset 6)`},
		{`{"v":1.}`, `record is not a JSON object: invalid character '}' after decimal point in numeric literal (offset 7)`},
		{`{"v":1e}`, `record is not a JSON object: invalid character '}' in exponent of numeric literal (offset 7)`},
		{`{"v":+1}`, `record is not a JSON object: invalid character '+' looking for beginning of value (offset 5)`},
		{`{"v":1,}`, `record is not a JSON object: invalid character '}' looking for beginning of object key string (offset 7)`},
		{`{v:1}`, `record is not a JSON object: invalid character 'v' looking for beginning of object key string (offset 1)`},
		{`{"v" 1}`, `record is not a JSON object: invalid character '1' after object key (offset 5)`},
		{`{"v":[1,]}`, `record is not a JSON object: invalid character ']' looking for beginning of value (offset 8)`},
		{`{"v":[1 2]}`, `record is not a JSON object: invalid character '2' after array element (offset 8)`},
		{`{"v":tru}`, `record is not a JSON object: invalid character '}' in literal true (expecting 'e') (offset 8)`},
		{"{\"v\":\"a\tb\"}", `record is not a JSON object: invalid character '\t' in string literal (offset 7)`},
		{`{"v":"\x"}`, `record is not a JSON object: invalid character 'x' in string escape code (offset 7)`},
		{`{"v":"\u12g4"}`, `record is not a JSON object: invalid character 'g' in \u hexadecimal character escape (offset 10)`},
		{`{'v':1}`, `record is not a JSON object: invalid character '\'' looking for beginning of object key string (offset 1)`},
		{"\xef\xbb\xbf{}", `record is not a JSON object: invalid character 'ï' looking for beginning of value (offset 0)`},
		{`{"v":"\ud800"}`, `record is not a JSON object: unpaired UTF-16 surrogate in \u escape in string literal (offset 6)`},
		{`{"v":"\udc00\ud800"}`, `record is not a JSON object: unpaired UTF-16 surrogate in \u escape in string literal (offset 6)`},
		{`{"x":"\ud83d\u0041"}`, `record is not a JSON object: unpaired UTF-16 surrogate in \u escape in string literal (offset 6)`},
		{`{"x":"\ud83dA"}`, `record is not a JSON object: unpaired UTF-16 surrogate in \u escape in string literal (offset 6)`},
		{deep, `record is not a JSON object: nesting deeper than 256 levels (offset 256)`},
		{`[1,2]`, `record is not a JSON object: got [1,2]`},
		{`"x"`, `record is not a JSON object: got "x"`},
		{`null`, `record is not a JSON object: got null`},
		{` 12 `, `record is not a JSON object: got 12`},
		{`{"v":1,"v":2}`, `field "v": duplicate key in JSON object`},
		{`{"v":"1"}`, `field "v": expected an integer, got "1"`},
	}
	for _, tc := range cases {
		err := d.Parse([]byte(tc.in), RecordMeta{})
		require.Error(t, err, tc.in)
		var de *DecodeError
		require.True(t, errors.As(err, &de))
		assert.Equal(t, tc.want, err.Error(), "input %q", tc.in)
	}
	// Whitespace anywhere JSON allows it.
	require.NoError(t, d.Parse([]byte(" \t\r\n{ \"v\" :\n 7 , \"w\" : [ ] }\n"), RecordMeta{}))
	assert.Equal(t, int64(7), d.Cell(0).Int)
}

// TestJSONScannerMatchesEncodingJSON checks that the scanner accepts exactly what encoding/json
// accepts (apart from its documented extra strictness) and words its errors the same way.
func TestJSONScannerMatchesEncodingJSON(t *testing.T) {
	inputs := []string{
		`{}`, `[]`, `{"a":[1,2.5,-3e+7,0,true,false,null,"s"]}`, `{"a":{"b":{"c":[[]]}}}`, ` {"a" : 1 } `,
		`{`, `}`, `[`, `{"a"`, `{"a":`, `{"a":1,`, `{"a":"b`, `{"a":"\`, `{"a":"\u12`, `{"a":tr`, `-`, `1.`, `1e`, `1e+`,
		`{"a":1]`, `[1}`, `{"a"::1}`, `{,}`, `[,]`, `[1,,2]`, `{"a":1 "b":2}`, `01`, `-01`, `1.e3`, `.5`, `1e3.5`,
		`"\u00zz"`, `"\q"`, "\"\x01\"", `nul`, `falsy`, `truth`, `[1]x`, `{"a":Infinity}`, `{"a":-Infinity}`,
		"{\"a\":\"\xff\"}", `{"\ud83d\ude00":1}`, `123abc`, `"abc`, `[-]`, `[--1]`, `[1e-]`, `{"a":0x10}`,
	}
	var s jsonScanner
	for _, in := range inputs {
		checkScannerAgainstEncodingJSON(t, &s, []byte(in))
	}
}

func checkScannerAgainstEncodingJSON(t *testing.T, s *jsonScanner, in []byte) {
	t.Helper()
	ours := s.check(in)
	var raw json.RawMessage
	theirs := json.Unmarshal(in, &raw)
	if ours == nil {
		require.NoError(t, theirs, "scanner accepted %q", in)
		return
	}
	if theirs == nil {
		// The only inputs we refuse beyond encoding/json.
		require.True(t, strings.Contains(ours.Reason, "unpaired UTF-16 surrogate") || strings.Contains(ours.Reason, "nesting deeper"),
			"scanner refused valid JSON %q: %v", in, ours)
		return
	}
	if strings.Contains(ours.Reason, "nesting deeper") {
		return // we stop at the depth limit; encoding/json finds whatever comes later
	}
	var se *json.SyntaxError
	require.True(t, errors.As(theirs, &se), "%q: %v", in, theirs)
	msg := se.Error()
	off := se.Offset - 1
	if msg == "unexpected end of JSON input" ||
		strings.HasPrefix(msg, "invalid character ' '") && se.Offset == int64(len(in)) && in[len(in)-1] != ' ' {
		// encoding/json reports truncated numbers, literals and escapes as an invalid space
		// after the end; "unexpected end" says the same thing more plainly.
		msg, off = "unexpected end of JSON input", int64(len(in))
	}
	assert.Equal(t, fmt.Sprintf("record is not a JSON object: %s (offset %d)", msg, off), ours.Reason, "input %q", in)
}

// nestedSchema covers struct, list, map and their required/optional variants.
func nestedSchema() *iceberg.Schema {
	return iceberg.NewSchema(0,
		iceberg.NestedField{ID: 1, Name: "shipping", Type: &iceberg.StructType{FieldList: []iceberg.NestedField{
			{ID: 10, Name: "country", Type: iceberg.PrimitiveTypes.String},
			{ID: 11, Name: "city", Type: iceberg.PrimitiveTypes.String, Required: true},
		}}},
		iceberg.NestedField{ID: 2, Name: "items", Type: &iceberg.ListType{ElementID: 12, ElementRequired: true,
			Element: &iceberg.StructType{FieldList: []iceberg.NestedField{
				{ID: 13, Name: "sku", Type: iceberg.PrimitiveTypes.String},
				{ID: 14, Name: "qty", Type: iceberg.PrimitiveTypes.Int32, Required: true},
			}}}},
		iceberg.NestedField{ID: 3, Name: "attrs", Type: &iceberg.MapType{KeyID: 15, KeyType: iceberg.PrimitiveTypes.String,
			ValueID: 16, ValueType: iceberg.PrimitiveTypes.Int64, ValueRequired: true}},
		iceberg.NestedField{ID: 4, Name: "m", Type: &iceberg.ListType{ElementID: 17,
			Element: &iceberg.ListType{ElementID: 18, Element: iceberg.PrimitiveTypes.Int32}}},
		iceberg.NestedField{ID: 5, Name: "tags", Type: &iceberg.MapType{KeyID: 19, KeyType: iceberg.PrimitiveTypes.String,
			ValueID: 20, ValueType: &iceberg.ListType{ElementID: 21, Element: iceberg.PrimitiveTypes.UUID}}},
	)
}

func TestJSONDecoderNestedErrors(t *testing.T) {
	d, err := NewJSONDecoder(nestedSchema())
	require.NoError(t, err)
	cases := []struct{ in, want string }{
		{`{"shipping":{"country":"DE"}}`, `field "shipping.city": required field is missing`},
		{`{"shipping":{"city":null}}`, `field "shipping.city": required field is null`},
		{`{"shipping":{"city":"B","city":"C"}}`, `field "shipping.city": duplicate key in JSON object`},
		{`{"shipping":[1]}`, `field "shipping": expected a JSON object, got [1]`},
		{`{"shipping":{"city":5}}`, `field "shipping.city": expected a string, got 5`},
		{`{"items":[{"qty":1},{"qty":"x"}]}`, `field "items[1].qty": expected an integer, got "x"`},
		{`{"items":[{"qty":1},null]}`, `field "items[1]": required list element is null`},
		{`{"items":[{"sku":"a"}]}`, `field "items[0].qty": required field is missing`},
		{`{"items":{}}`, `field "items": expected a JSON array, got {}`},
		{`{"attrs":{"a":1,"b":"x"}}`, `field "attrs.b": expected an integer, got "x"`},
		{`{"attrs":{"a":1,"b":null}}`, `field "attrs.b": required map value is null`},
		{`{"attrs":{"a":1,"a":2}}`, `field "attrs": duplicate key "a"`},
		{`{"attrs":[]}`, `field "attrs": expected a JSON object, got []`},
		{"{\"attrs\":{\"\xff\":1}}", `field "attrs": map key "\xff" is not valid UTF-8`},
		{`{"m":[[1],[2,"x"]]}`, `field "m[1][1]": expected an integer, got "x"`},
		{`{"m":[[1],[2,3000000000]]}`, `field "m[1][1]": integer 3000000000 is out of range for int`},
		{`{"tags":{"t":["not-a-uuid"]}}`, `field "tags.t[0]": expected a UUID as "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", got "not-a-uuid"`},
	}
	for _, tc := range cases {
		err := d.Parse([]byte(tc.in), RecordMeta{})
		require.Error(t, err, tc.in)
		assert.Equal(t, tc.want, err.Error(), "input %s", tc.in)
	}
	// A map with many keys takes the sorting path of the duplicate check.
	var sb strings.Builder
	sb.WriteString(`{"attrs":{`)
	for i := range 40 {
		fmt.Fprintf(&sb, `"k%d":%d,`, i, i)
	}
	sb.WriteString(`"k17":0}}`)
	err = d.Parse([]byte(sb.String()), RecordMeta{})
	require.Error(t, err)
	assert.Equal(t, `field "attrs": duplicate key "k17"`, err.Error())
}

// recordJSON renders rec one JSON object per row (keys sorted, as RecordToJSON does).
func recordJSON(t *testing.T, rec arrow.RecordBatch) []string {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, array.RecordToJSON(rec, &buf))
	return strings.Split(strings.TrimSpace(buf.String()), "\n")
}

func TestJSONDecoderAppendNested(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)

	d, err := NewJSONDecoder(nestedSchema())
	require.NoError(t, err)
	rb := array.NewRecordBuilder(mem, d.ArrowSchema())
	defer rb.Release()

	records := []string{
		`{"shipping":{"country":"DE","city":"Berlin"},"items":[{"sku":"a","qty":1},{"qty":2}],"attrs":{"x":1,"y":2},"m":[[1,null],[],null],"tags":{"t":["123e4567-e89b-12d3-a456-426614174000",null]}}`,
		`{"shipping":null,"items":[],"attrs":{},"m":null}`,
		`{}`,
	}
	for _, r := range records {
		require.NoError(t, d.Parse([]byte(r), RecordMeta{}), r)
		d.Append(rb)
	}
	rec := rb.NewRecordBatch()
	defer rec.Release()
	require.NoError(t, array.ValidateFull(rec.Column(0)))
	for i := range int(rec.NumCols()) {
		require.NoError(t, array.ValidateFull(rec.Column(i)))
		require.Equal(t, len(records), rec.Column(i).Len())
	}
	assert.Equal(t, []string{
		`{"attrs":[{"key":"x","value":1},{"key":"y","value":2}],"items":[{"qty":1,"sku":"a"},{"qty":2,"sku":null}],"m":[[1,null],[],null],"shipping":{"city":"Berlin","country":"DE"},"tags":[{"key":"t","value":["123e4567-e89b-12d3-a456-426614174000",null]}]}`,
		`{"attrs":[],"items":[],"m":null,"shipping":null,"tags":null}`,
		`{"attrs":null,"items":null,"m":null,"shipping":null,"tags":null}`,
	}, recordJSON(t, rec))

	// Cells of nested columns carry null-ness and, for lists and maps, the entry count.
	require.NoError(t, d.Parse([]byte(records[0]), RecordMeta{}))
	assert.Equal(t, Cell{}, d.Cell(0))
	assert.Equal(t, Cell{Int: 2}, d.Cell(1))
	assert.Equal(t, Cell{Int: 2}, d.Cell(2))
	assert.Equal(t, Cell{Int: 3}, d.Cell(3))
}

func TestJSONDecoderAppendPrimitives(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)

	d, err := NewJSONDecoder(fuzzSchema())
	require.NoError(t, err)
	rb := array.NewRecordBuilder(mem, d.ArrowSchema())
	defer rb.Release()
	require.NoError(t, d.Parse([]byte(`{"b":true,"i":-7,"l":9007199254740993,"f":1.5,"d":-0.25,"dec":"-12.34","dt":"2026-11-22",
		"tm":"10:11:12.000013","ts":"2026-11-22T10:00:00.5+01:00","tstz":1795340400123,"s":"ok","bin":"AQID","fx":"AQIDBA==",
		"u":"123e4567-e89b-12d3-a456-426614174000"}`), RecordMeta{}))
	d.Append(rb)
	require.NoError(t, d.Parse([]byte(`{}`), RecordMeta{}))
	d.Append(rb)
	rec := rb.NewRecordBatch()
	defer rec.Release()

	col := func(name string) arrow.Array {
		idx := rec.Schema().FieldIndices(name)
		require.Len(t, idx, 1, name)
		return rec.Column(idx[0])
	}
	assert.Equal(t, true, col("b").(*array.Boolean).Value(0))
	assert.Equal(t, int32(-7), col("i").(*array.Int32).Value(0))
	assert.Equal(t, int64(9007199254740993), col("l").(*array.Int64).Value(0))
	assert.Equal(t, float32(1.5), col("f").(*array.Float32).Value(0))
	assert.Equal(t, -0.25, col("d").(*array.Float64).Value(0))
	assert.Equal(t, decimal128.FromI64(-12340), col("dec").(*array.Decimal128).Value(0))
	assert.Equal(t, arrow.Date32(epochDays(2026, 11, 22)), col("dt").(*array.Date32).Value(0))
	assert.Equal(t, arrow.Time64(36672000013), col("tm").(*array.Time64).Value(0))
	assert.Equal(t, arrow.Timestamp(epochMicros(2026, 11, 22, 9, 0, 0, 5e8, time.UTC)), col("ts").(*array.Timestamp).Value(0))
	assert.Equal(t, arrow.Timestamp(1795340400123000), col("tstz").(*array.Timestamp).Value(0))
	assert.Equal(t, "ok", col("s").(*array.String).Value(0))
	assert.Equal(t, []byte{1, 2, 3}, col("bin").(*array.Binary).Value(0))
	assert.Equal(t, []byte{1, 2, 3, 4}, col("fx").(*array.FixedSizeBinary).Value(0))
	assert.Equal(t, "123e4567-e89b-12d3-a456-426614174000", col("u").(*extensions.UUIDArray).Value(0).String())
	for i := range int(rec.NumCols()) {
		require.NoError(t, array.ValidateFull(rec.Column(i)))
		assert.True(t, rec.Column(i).IsNull(1), rec.Schema().Field(i).Name)
	}
}

func TestJSONDecoderFailedParseAppendsNothing(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)

	d, err := NewJSONDecoder(orderSchema())
	require.NoError(t, err)
	rb := array.NewRecordBuilder(mem, d.ArrowSchema())
	defer rb.Release()
	lens := func() []int {
		out := make([]int, len(rb.Fields()))
		for i, f := range rb.Fields() {
			out[i] = f.Len()
		}
		return out
	}

	good := []byte(`{"order_id":"o-1","items":[{"sku":"A","qty":1,"price":"9.99"}],"shipping":{"city":"Lyon"},"total":9.99,"order_date":"2026-11-22","paid":true}`)
	require.NoError(t, d.Parse(good, RecordMeta{}))
	d.Append(rb)
	before := lens()

	// Fails deep inside the list, after the first item and the order id were converted.
	bad := []byte(`{"order_id":"o-2","items":[{"sku":"B","qty":1,"price":"1.00"},{"sku":"C","qty":1,"price":"1.005"}],"paid":false}`)
	err = d.Parse(bad, RecordMeta{})
	require.EqualError(t, err, `field "items[1].price": value "1.005" does not fit decimal(10, 2): more than 2 digits after the decimal point`)
	assert.Equal(t, before, lens(), "a failed Parse appended something")
	// The last good row is untouched.
	assert.Equal(t, "o-1", string(d.Cell(0).Bytes))
	assert.Equal(t, int64(1), d.Cell(2).Int)

	good2 := []byte(`{"order_id":"o-3","items":[{"sku":"D","qty":3,"price":0.5},{"sku":"E","qty":4,"price":2}],"total":"8.50","paid":false}`)
	require.NoError(t, d.Parse(good2, RecordMeta{}))
	d.Append(rb)

	rec := rb.NewRecordBatch()
	defer rec.Release()
	for i := range int(rec.NumCols()) {
		require.NoError(t, array.ValidateFull(rec.Column(i)))
		require.Equal(t, 2, rec.Column(i).Len())
	}
	assert.Equal(t, []string{
		`{"customer_id":null,"items":[{"price":"9.99","qty":1,"sku":"A"}],"order_date":"2026-11-22","order_id":"o-1","paid":true,"shipping":{"city":"Lyon","country":null},"total":"9.99"}`,
		`{"customer_id":null,"items":[{"price":"0.5","qty":3,"sku":"D"},{"price":"2","qty":4,"sku":"E"}],"order_date":null,"order_id":"o-3","paid":false,"shipping":null,"total":"8.5"}`,
	}, recordJSON(t, rec))
}

func TestJSONDecoderCellBeforeParsePanics(t *testing.T) {
	d, err := NewJSONDecoder(clickSchema())
	require.NoError(t, err)
	assert.Panics(t, func() { d.Cell(0) })
	require.Error(t, d.Parse([]byte(`{}`), RecordMeta{}))
	assert.Panics(t, func() { d.Cell(0) }, "no row has been parsed successfully yet")
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rb := array.NewRecordBuilder(mem, d.ArrowSchema())
	defer rb.Release()
	assert.Panics(t, func() { d.Append(rb) })
}

func TestJSONDecoderMetaColumns(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)

	d, err := NewJSONDecoder(iceberg.NewSchema(0,
		iceberg.NestedField{ID: 1, Name: "id", Type: iceberg.PrimitiveTypes.Int64},
		iceberg.NestedField{ID: 2, Name: "_kafka_topic", Type: iceberg.PrimitiveTypes.String},
		iceberg.NestedField{ID: 3, Name: "_kafka_partition", Type: iceberg.PrimitiveTypes.Int32},
		iceberg.NestedField{ID: 4, Name: "_kafka_offset", Type: iceberg.PrimitiveTypes.Int64},
		iceberg.NestedField{ID: 5, Name: "_kafka_timestamp", Type: iceberg.PrimitiveTypes.TimestampTz},
		iceberg.NestedField{ID: 6, Name: "_kafka_key", Type: iceberg.PrimitiveTypes.Binary},
	))
	require.NoError(t, err)
	ts := time.Date(2026, 11, 22, 10, 0, 0, 123456789, time.UTC)

	// JSON fields with the reserved names are ignored, whatever their type.
	key := []byte("user-42")
	require.NoError(t, d.Parse([]byte(`{"id":1,"_kafka_topic":"forged","_kafka_offset":"x","_kafka_key":5}`),
		RecordMeta{Topic: "clicks", Partition: 7, Offset: 123456789012, Timestamp: ts, Key: key}))
	key[0] = 'X' // the caller may reuse its buffers
	assert.Equal(t, Cell{Int: 1}, d.Cell(0))
	assert.Equal(t, "clicks", string(d.Cell(1).Bytes))
	assert.Equal(t, int64(7), d.Cell(2).Int)
	assert.Equal(t, int64(123456789012), d.Cell(3).Int)
	assert.Equal(t, ts.UnixMicro(), d.Cell(4).Int)
	assert.Equal(t, "user-42", string(d.Cell(5).Bytes))

	rb := array.NewRecordBuilder(mem, d.ArrowSchema())
	defer rb.Release()
	d.Append(rb)
	// No key and no timestamp are nulls; an empty key is not.
	require.NoError(t, d.Parse([]byte(`{"id":2}`), RecordMeta{Topic: "clicks"}))
	assert.True(t, d.Cell(4).Null)
	assert.True(t, d.Cell(5).Null)
	d.Append(rb)
	require.NoError(t, d.Parse([]byte(`{"id":3}`), RecordMeta{Topic: "clicks", Key: []byte{}}))
	assert.False(t, d.Cell(5).Null)
	d.Append(rb)

	rec := rb.NewRecordBatch()
	defer rec.Release()
	assert.Equal(t, []string{
		`{"_kafka_key":"dXNlci00Mg==","_kafka_offset":123456789012,"_kafka_partition":7,"_kafka_timestamp":"2026-11-22T10:00:00.123456Z","_kafka_topic":"clicks","id":1}`,
		`{"_kafka_key":null,"_kafka_offset":0,"_kafka_partition":0,"_kafka_timestamp":null,"_kafka_topic":"clicks","id":2}`,
		`{"_kafka_key":"","_kafka_offset":0,"_kafka_partition":0,"_kafka_timestamp":null,"_kafka_topic":"clicks","id":3}`,
	}, recordJSON(t, rec))

	// Required metadata columns refuse records without the metadata.
	d, err = NewJSONDecoder(iceberg.NewSchema(0,
		iceberg.NestedField{ID: 1, Name: "_kafka_key", Type: iceberg.PrimitiveTypes.Binary, Required: true},
		iceberg.NestedField{ID: 2, Name: "_kafka_timestamp", Type: iceberg.PrimitiveTypes.TimestampTz, Required: true},
	))
	require.NoError(t, err)
	assert.EqualError(t, d.Parse([]byte(`{}`), RecordMeta{Timestamp: ts}),
		`field "_kafka_key": required field is missing (the Kafka record has no key)`)
	assert.EqualError(t, d.Parse([]byte(`{}`), RecordMeta{Key: key}),
		`field "_kafka_timestamp": required field is missing (the Kafka record has no timestamp)`)
}

func TestNewJSONDecoderErrors(t *testing.T) {
	cases := []struct {
		field iceberg.NestedField
		want  string
	}{
		{iceberg.NestedField{ID: 1, Name: "_kafka_offset", Type: iceberg.PrimitiveTypes.Int32},
			`ingest: column "_kafka_offset" is filled from Kafka metadata and must have type long, not int`},
		{iceberg.NestedField{ID: 1, Name: "_kafka_timestamp", Type: iceberg.PrimitiveTypes.Timestamp},
			`ingest: column "_kafka_timestamp" is filled from Kafka metadata and must have type timestamptz, not timestamp`},
		{iceberg.NestedField{ID: 1, Name: "_kafka_key", Type: iceberg.PrimitiveTypes.String},
			`ingest: column "_kafka_key" is filled from Kafka metadata and must have type binary, not string`},
		{iceberg.NestedField{ID: 1, Name: "v", Type: iceberg.VariantType{}},
			`ingest: field "v" has type variant, which the JSON decoder does not support`},
		{iceberg.NestedField{ID: 1, Name: "s", Type: &iceberg.StructType{FieldList: []iceberg.NestedField{
			{ID: 2, Name: "inner", Type: &iceberg.ListType{ElementID: 3, Element: iceberg.VariantType{}}}}}},
			`ingest: field "s.inner[]" has type variant, which the JSON decoder does not support`},
		{iceberg.NestedField{ID: 1, Name: "m", Type: &iceberg.MapType{KeyID: 2, KeyType: iceberg.PrimitiveTypes.Int32,
			ValueID: 3, ValueType: iceberg.PrimitiveTypes.String}},
			`ingest: field "m" has type map<int, string>: only maps with string keys can be decoded from JSON objects`},
	}
	for _, tc := range cases {
		_, err := NewJSONDecoder(iceberg.NewSchema(0, tc.field))
		assert.EqualError(t, err, tc.want)
	}
	_, err := NewJSONDecoder(nil)
	assert.Error(t, err)
	// A nested field named like a metadata column is an ordinary field.
	d, err := NewJSONDecoder(iceberg.NewSchema(0, iceberg.NestedField{ID: 1, Name: "s", Type: &iceberg.StructType{
		FieldList: []iceberg.NestedField{{ID: 2, Name: "_kafka_offset", Type: iceberg.PrimitiveTypes.String}}}}))
	require.NoError(t, err)
	require.NoError(t, d.Parse([]byte(`{"s":{"_kafka_offset":"from json"}}`), RecordMeta{Offset: 5}))
}

func TestJSONDecoderArrowSchema(t *testing.T) {
	d, err := NewJSONDecoder(orderSchema())
	require.NoError(t, err)
	s := d.ArrowSchema()
	require.Equal(t, 7, s.NumFields())
	id, ok := s.Field(0).Metadata.GetValue("PARQUET:field_id")
	assert.True(t, ok)
	assert.Equal(t, "1", id)
	assert.False(t, s.Field(0).Nullable)
	assert.True(t, s.Field(1).Nullable)
	assert.Equal(t, arrow.LIST, s.Field(2).Type.ID(), "no large types")
}

// The caller routes rows to per-partition builders; the typed-builder cache must follow.
func TestJSONDecoderManyBuilders(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)

	d, err := NewJSONDecoder(clickSchema())
	require.NoError(t, err)
	const nb = maxCachedBuilders + 5
	rbs := make([]*array.RecordBuilder, nb)
	for i := range rbs {
		rbs[i] = array.NewRecordBuilder(mem, d.ArrowSchema())
		defer rbs[i].Release()
	}
	recs := clickRecords(200)
	for i, r := range recs {
		require.NoError(t, d.Parse(r, RecordMeta{}))
		// Mostly a few hot builders, sometimes all of them.
		k := i % 3
		if i%7 == 0 {
			k = i % nb
		}
		d.Append(rbs[k])
		assert.Equal(t, string(d.Cell(0).Bytes), rbs[k].Field(0).(*array.StringBuilder).Value(rbs[k].Field(0).Len()-1))
	}
	total := 0
	for _, rb := range rbs {
		rec := rb.NewRecordBatch()
		for i := range int(rec.NumCols()) {
			require.NoError(t, array.ValidateFull(rec.Column(i)))
			require.Equal(t, int(rec.NumRows()), rec.Column(i).Len())
		}
		total += int(rec.NumRows())
		rec.Release()
	}
	assert.Equal(t, len(recs), total)

	// A builder for another schema is a programming error.
	other := array.NewRecordBuilder(mem, arrow.NewSchema([]arrow.Field{{Name: "x", Type: arrow.PrimitiveTypes.Int64}}, nil))
	defer other.Release()
	assert.Panics(t, func() { d.Append(other) })
}

func TestJSONDecoderBenchRecordsDecode(t *testing.T) {
	for _, tc := range []struct {
		schema *iceberg.Schema
		recs   [][]byte
	}{{clickSchema(), clickRecords(50)}, {orderSchema(), orderRecords(50)}} {
		d, err := NewJSONDecoder(tc.schema)
		require.NoError(t, err)
		for _, r := range tc.recs {
			require.NoError(t, d.Parse(r, RecordMeta{}), string(r))
		}
	}
	d, err := NewJSONDecoder(clickSchema())
	require.NoError(t, err)
	r := clickRecords(2)[1]
	require.NoError(t, d.Parse(r, RecordMeta{}))
	assert.Equal(t, epochMicros(2026, 11, 22, 10, 0, 0, 137e6, time.UTC), d.Cell(3).Int)
}

func TestDaysFromCivil(t *testing.T) {
	first := time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC).Unix() / 86400
	last := time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC).Unix() / 86400
	for day := first; day <= last; day++ {
		y, m, d := time.Unix(day*86400, 0).UTC().Date()
		if got := daysFromCivil(y, int(m), d); got != day {
			t.Fatalf("daysFromCivil(%d, %d, %d) = %d, want %d", y, m, d, got, day)
		}
	}
}

// TestParseTimestampMatchesTime compares the hand-rolled parser with time.Parse on random instants
// in every shape it handles itself.
func TestParseTimestampMatchesTime(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	layouts := []string{
		"2006-01-02T15:04:05Z07:00", "2006-01-02T15:04:05.000Z07:00", "2006-01-02T15:04:05.999999999Z07:00",
		"2006-01-02 15:04:05.000000Z07:00", "2006-01-02T15:04:05.0Z07:00",
	}
	lo := time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	hi := time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC).Unix()
	for range 20000 {
		tm := time.Unix(lo+rng.Int64N(hi-lo), rng.Int64N(1e9)).In(time.FixedZone("", (rng.IntN(47)-23)*1800))
		s := tm.Format(layouts[rng.IntN(len(layouts))])
		want, err := time.Parse(time.RFC3339Nano, strings.Replace(s, " ", "T", 1))
		require.NoError(t, err, s)
		sec, nsec, zoned, ok := parseTimestampFast([]byte(s))
		require.True(t, ok, s)
		require.True(t, zoned, s)
		require.Equal(t, want.Unix(), sec, s)
		require.Equal(t, int64(want.Nanosecond()), nsec, s)
	}
}
