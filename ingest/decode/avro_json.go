package decode

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"time"
	"unicode/utf8"
)

// AvroJSON rewrites Avro binary records of one writer schema as JSON text,
// in the forms the JSON decoder reads: what lets a keyed pipeline read
// Debezium change events written in Avro with the change reader built for
// Debezium's JSON envelope. It costs a second pass over each record, which
// change data capture topics (their rate bounded by a database's commits)
// can afford; plain Avro records are decoded directly by AvroDecoder.
//
// Values: null, booleans, numbers (an int or long as its decimal text, a
// float or double as the shortest text that reads back exactly; NaN and
// infinities, which JSON cannot hold, are refused), strings (checked
// UTF-8), bytes and fixed as base64, enums as their symbol, records as
// objects, arrays as arrays, maps as objects, a union as its branch's
// value. Logical types: decimal as the exact decimal number, date as
// "YYYY-MM-DD", time as "HH:MM:SS.ffffff", timestamps as RFC 3339 in UTC
// with their fraction, uuid (on fixed) as its canonical text. Like the
// decoders, it refuses a malformed or truncated record with a
// *DecodeError naming the field. It is not safe for concurrent use.
type AvroJSON struct {
	root *avroNode
	d    AvroDecoder // for its block bounds
	big  big.Int
}

// NewAvroJSON makes the rewriter of records written with s.
func NewAvroJSON(s *AvroSchema) *AvroJSON { return &AvroJSON{root: s.root} }

// AppendJSON appends the JSON text of payload (one Avro binary record,
// without the schema registry's header) to dst.
func (a *AvroJSON) AppendJSON(dst, payload []byte) ([]byte, error) {
	r := avroReader{b: payload}
	a.d.budget = maxEmptyItems
	dst, err := a.value(dst, &r, a.root, 0)
	if err != nil {
		return dst, err
	}
	if rest := len(r.b) - r.p; rest > 0 {
		return dst, &DecodeError{Reason: strconv.Itoa(rest) + " bytes left over after the record: the payload does not match its writer schema"}
	}
	return dst, nil
}

func (a *AvroJSON) value(dst []byte, r *avroReader, n *avroNode, depth int) ([]byte, error) {
	if depth > maxSkipDepth {
		return dst, fieldErr("values nested more than " + strconv.Itoa(maxSkipDepth) + " deep")
	}
	switch n.kind {
	case akNull:
		return append(dst, "null"...), nil
	case akBoolean:
		b, err := r.next(1)
		if err != nil {
			return dst, err
		}
		switch b[0] {
		case 0:
			return append(dst, "false"...), nil
		case 1:
			return append(dst, "true"...), nil
		}
		return dst, fieldErr(fmt.Sprintf("boolean byte is 0x%02x, not 0 or 1", b[0]))
	case akInt:
		v, err := r.int()
		if err != nil {
			return dst, err
		}
		switch n.logical {
		case alDate:
			return strconv.AppendQuote(dst, time.Unix(v*secondsPerDay, 0).UTC().Format("2006-01-02")), nil
		case alTimeMillis:
			return appendTimeOfDay(dst, v*1000)
		}
		return strconv.AppendInt(dst, v, 10), nil
	case akLong:
		v, err := r.long()
		if err != nil {
			return dst, err
		}
		switch n.logical {
		case alTimeMicros:
			return appendTimeOfDay(dst, v)
		case alTimestampMillis:
			return appendTimestamp(dst, time.UnixMilli(v)), nil
		case alTimestampMicros:
			return appendTimestamp(dst, time.UnixMicro(v)), nil
		case alTimestampNanos:
			return appendTimestamp(dst, time.Unix(0, v)), nil
		}
		return strconv.AppendInt(dst, v, 10), nil
	case akFloat, akDouble:
		var f float64
		bits := 64
		if n.kind == akFloat {
			b, err := r.next(4)
			if err != nil {
				return dst, err
			}
			f, bits = float64(math.Float32frombits(binary.LittleEndian.Uint32(b))), 32
		} else {
			b, err := r.next(8)
			if err != nil {
				return dst, err
			}
			f = math.Float64frombits(binary.LittleEndian.Uint64(b))
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return dst, fieldErr(fmt.Sprintf("%v cannot be written as JSON", f))
		}
		return strconv.AppendFloat(dst, f, 'g', -1, bits), nil
	case akString:
		b, err := r.bytes()
		if err != nil {
			return dst, err
		}
		if !utf8.Valid(b) {
			return dst, fieldErr("string is not valid UTF-8")
		}
		return appendJSONString(dst, b), nil
	case akBytes, akFixed:
		var b []byte
		var err error
		if n.kind == akFixed {
			b, err = r.next(n.size)
		} else {
			b, err = r.bytes()
		}
		if err != nil {
			return dst, err
		}
		switch {
		case n.logical == alDecimal:
			return a.appendDecimal(dst, b, n.scale), nil
		case n.logical == alUUID && len(b) == 16:
			dst = append(dst, '"')
			for i, part := range [][2]int{{0, 4}, {4, 6}, {6, 8}, {8, 10}, {10, 16}} {
				if i > 0 {
					dst = append(dst, '-')
				}
				dst = hex.AppendEncode(dst, b[part[0]:part[1]])
			}
			return append(dst, '"'), nil
		}
		dst = append(dst, '"')
		dst = base64.StdEncoding.AppendEncode(dst, b)
		return append(dst, '"'), nil
	case akEnum:
		i, err := r.int()
		if err != nil {
			return dst, err
		}
		if i < 0 || i >= int64(len(n.symbols)) {
			return dst, fieldErr(fmt.Sprintf("enum index %d does not exist: the writer's enum has %d symbols", i, len(n.symbols)))
		}
		return strconv.AppendQuote(dst, n.symbols[i]), nil
	case akUnion:
		i, err := r.long()
		if err != nil {
			return dst, err
		}
		if uint64(i) >= uint64(len(n.branches)) {
			return dst, fieldErr(fmt.Sprintf("union branch %d does not exist: the writer's union has %d", i, len(n.branches)))
		}
		return a.value(dst, r, n.branches[i], depth+1)
	case akRecord:
		dst = append(dst, '{')
		for i, f := range n.fields {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = strconv.AppendQuote(dst, f.name)
			dst = append(dst, ':')
			var err error
			if dst, err = a.value(dst, r, f.typ, depth+1); err != nil {
				return dst, withParent(err, f.name)
			}
		}
		return append(dst, '}'), nil
	case akArray, akMap:
		open, closing, elem := byte('['), byte(']'), n.items
		if n.kind == akMap {
			open, closing, elem = '{', '}', n.values
		}
		// The fewest bytes an item takes: a map entry's key takes one.
		elemMin := elem.minSize
		if n.kind == akMap {
			elemMin++
		}
		dst = append(dst, open)
		total := 0
		for {
			count, size, err := a.d.blockCount(r, elemMin)
			if err != nil {
				return dst, err
			}
			if count == 0 {
				break
			}
			start := r.p
			for k := int64(0); k < count; k++ {
				if total > 0 {
					dst = append(dst, ',')
				}
				if n.kind == akMap {
					key, err := r.bytes()
					if err != nil {
						return dst, err
					}
					if !utf8.Valid(key) {
						return dst, withIndex(fieldErr("map key is not valid UTF-8"), total)
					}
					dst = appendJSONString(dst, key)
					dst = append(dst, ':')
				}
				if dst, err = a.value(dst, r, elem, depth+1); err != nil {
					return dst, withIndex(err, total)
				}
				total++
			}
			if err := checkBlockSize(r, start, size); err != nil {
				return dst, err
			}
		}
		return append(dst, closing), nil
	}
	return dst, fieldErr("unsupported Avro type " + n.describe())
}

// appendDecimal appends the two's-complement big-endian unscaled value b
// with scale as an exact decimal number.
func (a *AvroJSON) appendDecimal(dst, b []byte, scale int) []byte {
	v := &a.big
	v.SetBytes(b)
	if len(b) > 0 && b[0]&0x80 != 0 {
		// Negative: subtract 2^(8*len).
		v.Sub(v, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
	}
	text := v.Append(nil, 10)
	neg := len(text) > 0 && text[0] == '-'
	if neg {
		dst = append(dst, '-')
		text = text[1:]
	}
	if scale <= 0 {
		return append(dst, text...)
	}
	for len(text) <= scale {
		text = append([]byte{'0'}, text...)
	}
	dst = append(dst, text[:len(text)-scale]...)
	dst = append(dst, '.')
	return append(dst, text[len(text)-scale:]...)
}

// appendTimeOfDay appends microseconds of the day as "HH:MM:SS.ffffff".
func appendTimeOfDay(dst []byte, us int64) ([]byte, error) {
	if us < 0 || us >= secondsPerDay*1e6 {
		return dst, fieldErr(fmt.Sprintf("time of day %d µs is out of range", us))
	}
	t := time.UnixMicro(us).UTC()
	return strconv.AppendQuote(dst, t.Format("15:04:05.000000")), nil
}

// appendTimestamp appends t as an RFC 3339 string in UTC, with its fraction.
func appendTimestamp(dst []byte, t time.Time) []byte {
	dst = append(dst, '"')
	dst = t.UTC().AppendFormat(dst, time.RFC3339Nano)
	return append(dst, '"')
}

// appendJSONString appends b (valid UTF-8) as a JSON string.
func appendJSONString(dst, b []byte) []byte {
	dst = append(dst, '"')
	for _, c := range b {
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c < 0x20:
			dst = append(dst, `\u00`...)
			dst = append(dst, "0123456789abcdef"[c>>4], "0123456789abcdef"[c&0xf])
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}
