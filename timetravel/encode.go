package timetravel

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// jsonFlushSize is how many bytes WriteJSONRows gathers before it writes.
const jsonFlushSize = 64 << 10

// WriteJSONRows writes each row of rec to w as a JSON object on a line of
// its own, {"column": value, ...}, with the columns in the schema's order.
//
// Values are written as follows; a null of any type is null:
//
//	boolean              true, false
//	int, long            a number, exactly (never through a float64)
//	float, double        a number, in the shortest form that reads back as
//	                     the same value; NaN and the infinities as the
//	                     strings "NaN", "Infinity" and "-Infinity"
//	decimal(P, S)        a string with S digits after the point: "12.30"
//	string               a string, escaped as encoding/json escapes it (but
//	                     without escaping <, > and &); invalid UTF-8 becomes
//	                     U+FFFD
//	uuid                 a string in the canonical form,
//	                     "f81d4fae-7dec-11d0-a765-00a0c91e6bf6"
//	date                 "2006-01-02"
//	time                 "15:04:05.999999" (fraction digits only as needed)
//	timestamp            "2006-01-02T15:04:05.999999", without a zone
//	timestamptz          "2006-01-02T15:04:05.999999Z", in UTC
//	timestamp(tz)_ns     as timestamp(tz), with up to 9 fraction digits
//	binary, fixed        a string of the bytes in standard base64
//	struct               an object of its fields
//	list                 an array
//	map                  an array of {"key": key, "value": value} objects
//
// A type outside these (a union, say) is an error, reported before
// anything is written.
func WriteJSONRows(w io.Writer, rec arrow.RecordBatch) error {
	if rec == nil {
		return nil
	}
	sch := rec.Schema()
	n := int(rec.NumCols())
	encs := make([]jsonEncoder, n)
	keys := make([][]byte, n)
	for i := range n {
		f := sch.Field(i)
		enc, err := newJSONEncoder(rec.Column(i))
		if err != nil {
			return fmt.Errorf("timetravel: column %q: %w", f.Name, err)
		}
		encs[i] = enc
		key := []byte{','}
		if i == 0 {
			key = key[:0]
		}
		key = appendJSONString(key, f.Name)
		keys[i] = append(key, ':')
	}
	buf := make([]byte, 0, jsonFlushSize+jsonFlushSize/4)
	for row := range int(rec.NumRows()) {
		buf = append(buf, '{')
		for i, enc := range encs {
			buf = append(buf, keys[i]...)
			buf = enc(buf, row)
		}
		buf = append(buf, '}', '\n')
		if len(buf) >= jsonFlushSize {
			if _, err := w.Write(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
	}
	if len(buf) > 0 {
		if _, err := w.Write(buf); err != nil {
			return err
		}
	}
	return nil
}

// jsonEncoder appends the JSON of value i of an array to buf.
type jsonEncoder func(buf []byte, i int) []byte

// newJSONEncoder returns the encoder of a's values, nulls included.
func newJSONEncoder(a arrow.Array) (jsonEncoder, error) {
	enc, err := newValueEncoder(a)
	if err != nil || a.NullN() == 0 || a.DataType().ID() == arrow.NULL {
		return enc, err
	}
	return func(buf []byte, i int) []byte {
		if a.IsNull(i) {
			return append(buf, "null"...)
		}
		return enc(buf, i)
	}, nil
}

// newValueEncoder returns the encoder of a's values, for rows that are
// not null.
func newValueEncoder(a arrow.Array) (jsonEncoder, error) {
	switch a := a.(type) {
	case *array.Null:
		return func(buf []byte, _ int) []byte { return append(buf, "null"...) }, nil
	case *array.Boolean:
		return func(buf []byte, i int) []byte { return strconv.AppendBool(buf, a.Value(i)) }, nil
	case *array.Int8:
		return intEncoder(a.Value), nil
	case *array.Int16:
		return intEncoder(a.Value), nil
	case *array.Int32:
		return intEncoder(a.Value), nil
	case *array.Int64:
		return intEncoder(a.Value), nil
	case *array.Uint8:
		return uintEncoder(a.Value), nil
	case *array.Uint16:
		return uintEncoder(a.Value), nil
	case *array.Uint32:
		return uintEncoder(a.Value), nil
	case *array.Uint64:
		return uintEncoder(a.Value), nil
	case *array.Float32:
		return func(buf []byte, i int) []byte { return appendJSONFloat(buf, float64(a.Value(i)), 32) }, nil
	case *array.Float64:
		return func(buf []byte, i int) []byte { return appendJSONFloat(buf, a.Value(i), 64) }, nil
	case *array.Decimal128:
		scale := a.DataType().(arrow.DecimalType).GetScale()
		return func(buf []byte, i int) []byte { return appendDecimal128(buf, a.Value(i), scale) }, nil
	case *array.Decimal256:
		scale := a.DataType().(arrow.DecimalType).GetScale()
		return decimalStringEncoder(a.Value, scale), nil
	case *array.Decimal64:
		scale := a.DataType().(arrow.DecimalType).GetScale()
		return func(buf []byte, i int) []byte { return appendScaled(buf, int64(a.Value(i)), scale) }, nil
	case *array.Decimal32:
		scale := a.DataType().(arrow.DecimalType).GetScale()
		return func(buf []byte, i int) []byte { return appendScaled(buf, int64(a.Value(i)), scale) }, nil
	case *array.Date32:
		return func(buf []byte, i int) []byte {
			return appendTime(buf, time.Unix(int64(a.Value(i))*86400, 0), time.DateOnly)
		}, nil
	case *array.Date64:
		return func(buf []byte, i int) []byte {
			return appendTime(buf, time.UnixMilli(int64(a.Value(i))), time.DateOnly)
		}, nil
	case *array.Time32:
		unit := a.DataType().(*arrow.Time32Type).Unit
		return timeOfDayEncoder(func(i int) int64 { return int64(a.Value(i)) }, unit), nil
	case *array.Time64:
		unit := a.DataType().(*arrow.Time64Type).Unit
		return timeOfDayEncoder(func(i int) int64 { return int64(a.Value(i)) }, unit), nil
	case *array.Timestamp:
		return timestampEncoder(a), nil
	case *array.String:
		return func(buf []byte, i int) []byte { return appendJSONString(buf, a.Value(i)) }, nil
	case *array.LargeString:
		return func(buf []byte, i int) []byte { return appendJSONString(buf, a.Value(i)) }, nil
	case *array.StringView:
		return func(buf []byte, i int) []byte { return appendJSONString(buf, a.Value(i)) }, nil
	case *array.Binary:
		return base64Encoder(a.Value), nil
	case *array.LargeBinary:
		return base64Encoder(a.Value), nil
	case *array.BinaryView:
		return base64Encoder(a.Value), nil
	case *array.FixedSizeBinary:
		return base64Encoder(a.Value), nil
	case array.ExtensionArray:
		if a.ExtensionType().ExtensionName() == "arrow.uuid" {
			if fsb, ok := a.Storage().(*array.FixedSizeBinary); ok && fsb.DataType().(*arrow.FixedSizeBinaryType).ByteWidth == 16 {
				return func(buf []byte, i int) []byte { return appendUUID(buf, fsb.Value(i)) }, nil
			}
		}
		return newValueEncoder(a.Storage())
	case *array.Struct:
		return structEncoder(a)
	case *array.Map:
		return mapEncoder(a)
	case array.ListLike:
		return listEncoder(a)
	case *array.Dictionary:
		values, err := newJSONEncoder(a.Dictionary())
		if err != nil {
			return nil, err
		}
		return func(buf []byte, i int) []byte { return values(buf, a.GetValueIndex(i)) }, nil
	}
	return nil, fmt.Errorf("cannot write a value of type %s as JSON", a.DataType())
}

func intEncoder[T int8 | int16 | int32 | int64](value func(int) T) jsonEncoder {
	return func(buf []byte, i int) []byte { return strconv.AppendInt(buf, int64(value(i)), 10) }
}

func uintEncoder[T uint8 | uint16 | uint32 | uint64](value func(int) T) jsonEncoder {
	return func(buf []byte, i int) []byte { return strconv.AppendUint(buf, uint64(value(i)), 10) }
}

func base64Encoder(value func(int) []byte) jsonEncoder {
	return func(buf []byte, i int) []byte {
		buf = append(buf, '"')
		buf = base64.StdEncoding.AppendEncode(buf, value(i))
		return append(buf, '"')
	}
}

func decimalStringEncoder[T interface{ ToString(int32) string }](value func(int) T, scale int32) jsonEncoder {
	return func(buf []byte, i int) []byte {
		buf = append(buf, '"')
		buf = append(buf, value(i).ToString(scale)...)
		return append(buf, '"')
	}
}

// appendJSONFloat appends f as encoding/json writes a float of the given
// bit size, and NaN and the infinities as strings.
func appendJSONFloat(buf []byte, f float64, bits int) []byte {
	switch {
	case math.IsNaN(f):
		return append(buf, `"NaN"`...)
	case math.IsInf(f, 1):
		return append(buf, `"Infinity"`...)
	case math.IsInf(f, -1):
		return append(buf, `"-Infinity"`...)
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 {
		if bits == 64 && (abs < 1e-6 || abs >= 1e21) || bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
			format = 'e'
		}
	}
	buf = strconv.AppendFloat(buf, f, format, -1, bits)
	if format == 'e' {
		// Clean up e-09 to e-9, as encoding/json does.
		n := len(buf)
		if n >= 4 && buf[n-4] == 'e' && buf[n-3] == '-' && buf[n-2] == '0' {
			buf[n-2] = buf[n-1]
			buf = buf[:n-1]
		}
	}
	return buf
}

// appendDecimal128 appends n with scale digits after the point, as a
// JSON string.
func appendDecimal128(buf []byte, n decimal128.Num, scale int32) []byte {
	hi, lo := n.HighBits(), n.LowBits()
	if hi == 0 && lo <= math.MaxInt64 || hi == -1 && lo > math.MaxInt64 {
		return appendScaled(buf, int64(lo), scale)
	}
	buf = append(buf, '"')
	buf = append(buf, n.ToString(scale)...)
	return append(buf, '"')
}

// appendScaled appends the decimal v×10^-scale as a JSON string, with
// scale digits after the point.
func appendScaled(buf []byte, v int64, scale int32) []byte {
	buf = append(buf, '"')
	if scale <= 0 {
		buf = strconv.AppendInt(buf, v, 10)
		if v != 0 {
			for range -scale {
				buf = append(buf, '0')
			}
		}
		return append(buf, '"')
	}
	u := uint64(v)
	if v < 0 {
		buf = append(buf, '-')
		u = -u
	}
	var tmp [20]byte
	digits := strconv.AppendUint(tmp[:0], u, 10)
	if s := int(scale); len(digits) <= s {
		buf = append(buf, '0', '.')
		for range s - len(digits) {
			buf = append(buf, '0')
		}
		buf = append(buf, digits...)
	} else {
		buf = append(buf, digits[:len(digits)-s]...)
		buf = append(buf, '.')
		buf = append(buf, digits[len(digits)-s:]...)
	}
	return append(buf, '"')
}

// appendTime appends t in UTC in the layout, as a JSON string.
func appendTime(buf []byte, t time.Time, layout string) []byte {
	buf = append(buf, '"')
	buf = t.UTC().AppendFormat(buf, layout)
	return append(buf, '"')
}

// fractionLayout returns the layout of the fraction of a second for a
// time unit: as many optional digits as the unit has.
func fractionLayout(unit arrow.TimeUnit) string {
	switch unit {
	case arrow.Millisecond:
		return ".999"
	case arrow.Microsecond:
		return ".999999"
	case arrow.Nanosecond:
		return ".999999999"
	}
	return ""
}

// unitDuration converts a count of unit to a time.Duration.
func unitDuration(v int64, unit arrow.TimeUnit) time.Duration {
	return time.Duration(v) * unit.Multiplier()
}

func timeOfDayEncoder(value func(int) int64, unit arrow.TimeUnit) jsonEncoder {
	layout := "15:04:05" + fractionLayout(unit)
	return func(buf []byte, i int) []byte {
		return appendTime(buf, time.Unix(0, 0).Add(unitDuration(value(i), unit)), layout)
	}
}

func timestampEncoder(a *array.Timestamp) jsonEncoder {
	tt := a.DataType().(*arrow.TimestampType)
	layout := "2006-01-02T15:04:05" + fractionLayout(tt.Unit)
	if tt.TimeZone != "" {
		layout += "Z07:00"
	}
	var toTime func(int64) time.Time
	switch tt.Unit {
	case arrow.Second:
		toTime = func(v int64) time.Time { return time.Unix(v, 0) }
	case arrow.Millisecond:
		toTime = time.UnixMilli
	case arrow.Microsecond:
		toTime = time.UnixMicro
	default:
		toTime = func(v int64) time.Time { return time.Unix(0, v) }
	}
	return func(buf []byte, i int) []byte { return appendTime(buf, toTime(int64(a.Value(i))), layout) }
}

// appendUUID appends 16 bytes as a UUID in its canonical form, as a JSON
// string.
func appendUUID(buf []byte, u []byte) []byte {
	const hex = "0123456789abcdef"
	buf = append(buf, '"')
	for i, b := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			buf = append(buf, '-')
		}
		buf = append(buf, hex[b>>4], hex[b&0xf])
	}
	return append(buf, '"')
}

func structEncoder(a *array.Struct) (jsonEncoder, error) {
	st := a.DataType().(*arrow.StructType)
	n := a.NumField()
	encs := make([]jsonEncoder, n)
	keys := make([][]byte, n)
	for j := range n {
		enc, err := newJSONEncoder(a.Field(j))
		if err != nil {
			return nil, fmt.Errorf("field %q: %w", st.Field(j).Name, err)
		}
		encs[j] = enc
		key := []byte{','}
		if j == 0 {
			key = key[:0]
		}
		key = appendJSONString(key, st.Field(j).Name)
		keys[j] = append(key, ':')
	}
	return func(buf []byte, i int) []byte {
		buf = append(buf, '{')
		for j, enc := range encs {
			buf = append(buf, keys[j]...)
			buf = enc(buf, i)
		}
		return append(buf, '}')
	}, nil
}

func listEncoder(a array.ListLike) (jsonEncoder, error) {
	values, err := newJSONEncoder(a.ListValues())
	if err != nil {
		return nil, fmt.Errorf("list element: %w", err)
	}
	return func(buf []byte, i int) []byte {
		start, end := a.ValueOffsets(i)
		buf = append(buf, '[')
		for j := start; j < end; j++ {
			if j > start {
				buf = append(buf, ',')
			}
			buf = values(buf, int(j))
		}
		return append(buf, ']')
	}, nil
}

func mapEncoder(a *array.Map) (jsonEncoder, error) {
	keys, err := newJSONEncoder(a.Keys())
	if err != nil {
		return nil, fmt.Errorf("map key: %w", err)
	}
	items, err := newJSONEncoder(a.Items())
	if err != nil {
		return nil, fmt.Errorf("map value: %w", err)
	}
	return func(buf []byte, i int) []byte {
		start, end := a.ValueOffsets(i)
		buf = append(buf, '[')
		for j := start; j < end; j++ {
			if j > start {
				buf = append(buf, ',')
			}
			buf = append(buf, `{"key":`...)
			buf = keys(buf, int(j))
			buf = append(buf, `,"value":`...)
			buf = items(buf, int(j))
			buf = append(buf, '}')
		}
		return append(buf, ']')
	}, nil
}

// appendJSONString appends s as a JSON string, escaped as encoding/json
// escapes it with HTML escaping off: ", \ and control characters are
// escaped (\n, \r, \t, \b, \f by name, the others as \u00XX), and so are
// U+2028 and U+2029; each byte of invalid UTF-8 becomes \ufffd.
func appendJSONString(buf []byte, s string) []byte {
	const hex = "0123456789abcdef"
	buf = append(buf, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			buf = append(buf, s[start:i]...)
			switch c {
			case '"', '\\':
				buf = append(buf, '\\', c)
			case '\n':
				buf = append(buf, '\\', 'n')
			case '\r':
				buf = append(buf, '\\', 'r')
			case '\t':
				buf = append(buf, '\\', 't')
			case '\b':
				buf = append(buf, '\\', 'b')
			case '\f':
				buf = append(buf, '\\', 'f')
			default:
				buf = append(buf, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			buf = append(buf, s[start:i]...)
			buf = append(buf, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			buf = append(buf, s[start:i]...)
			buf = append(buf, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	buf = append(buf, s[start:]...)
	return append(buf, '"')
}

// IPCBatch encodes rec as one Arrow IPC stream: the schema message, the
// batch, and the end-of-stream marker, uncompressed. It is what one
// QueryResponse of the gRPC API carries; ReadIPCBatch decodes it.
func IPCBatch(rec arrow.RecordBatch) ([]byte, error) {
	if rec == nil {
		return nil, fmt.Errorf("timetravel: no record batch to encode")
	}
	var buf bytes.Buffer
	w := ipc.NewWriter(&buf, ipc.WithSchema(rec.Schema()))
	if err := w.Write(rec); err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("timetravel: encode a record batch as Arrow IPC: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("timetravel: encode a record batch as Arrow IPC: %w", err)
	}
	return buf.Bytes(), nil
}

// ReadIPCBatch decodes an Arrow IPC stream, as IPCBatch writes it, into
// its record batches, allocated with mem (memory.DefaultAllocator when
// nil). The caller releases each batch.
func ReadIPCBatch(data []byte, mem memory.Allocator) ([]arrow.RecordBatch, error) {
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	r, err := ipc.NewReader(bytes.NewReader(data), ipc.WithAllocator(mem))
	if err != nil {
		return nil, fmt.Errorf("timetravel: read an Arrow IPC stream: %w", err)
	}
	defer r.Release()
	var out []arrow.RecordBatch
	for r.Next() {
		rec := r.RecordBatch()
		rec.Retain()
		out = append(out, rec)
	}
	if err := r.Err(); err != nil {
		for _, rec := range out {
			rec.Release()
		}
		return nil, fmt.Errorf("timetravel: read an Arrow IPC stream: %w", err)
	}
	return out, nil
}
