package upsert

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
)

// ErrKeyTooLong is returned by AppendKey for a key longer than MaxKeyLen.
var ErrKeyTooLong = errors.New("upsert: encoded key exceeds MaxKeyLen")

// Value tags: the first byte of every encoded column value. Timestamps and
// times carry their unit in the tag (tag + unit, unit 0 s .. 3 ns).
const (
	tagBool      = 0x01 // 1 byte: 0 or 1
	tagInt       = 0x02 // 8 bytes: int64 big endian, sign bit flipped
	tagUint      = 0x03 // 8 bytes: a uint64 above MaxInt64, big endian
	tagDecimal   = 0x04 // 16 bytes: unscaled int128 big endian, sign bit flipped
	tagDate      = 0x05 // 4 bytes: days, int32 big endian, sign bit flipped
	tagString    = 0x06 // uvarint length, bytes
	tagBinary    = 0x07 // uvarint length, bytes
	tagFixed     = 0x08 // the type's width in bytes
	tagTimestamp = 0x10 // 8 bytes: int64 as for tagInt
	tagTime      = 0x14 // 8 bytes: int64 as for tagInt
)

type keyKind uint8

const (
	kInt8 keyKind = iota
	kInt16
	kInt32
	kInt64
	kUint8
	kUint16
	kUint32
	kUint64
	kBool
	kDecimal
	kDate32
	kTime32
	kTime64
	kTimestamp
	kString
	kLargeString
	kBinary
	kLargeBinary
	kFixed
)

// keyCol is one key column: its kind and tag, fixed at construction, and
// typed views of the bound batch's column.
type keyCol struct {
	name    string
	idx     int
	typ     arrow.DataType // the column's type in the schema
	storage arrow.DataType // typ, or its storage type for extension types
	kind    keyKind
	tag     byte

	nulls []byte // validity bitmap, nil if the bound column has no nulls
	off   int    // the bound column's offset into nulls

	i8   []int8
	i16  []int16
	i32  []int32
	i64  []int64
	u8   []uint8
	u16  []uint16
	u32  []uint32
	u64  []uint64
	bl   *array.Boolean
	dec  []decimal128.Num
	d32  []arrow.Date32
	t32  []arrow.Time32
	t64  []arrow.Time64
	ts   []arrow.Timestamp
	str  *array.String
	lstr *array.LargeString
	bin  *array.Binary
	lbin *array.LargeBinary
	fsb  *array.FixedSizeBinary
}

// KeyEncoder encodes the key columns of a row into a canonical byte string:
// two rows encode equal exactly when their key values are equal. It is not
// safe for concurrent use.
//
// Each column value is a tag byte followed by a fixed-width value, or for
// strings and binaries by a uvarint length and the bytes; a key is the
// concatenation of its columns' values in the declared column order. Each
// value's encoding is prefix-free given its column, so the concatenation is
// injective; ("ab","c") and ("a","bc") differ in their length bytes.
//
// Values are canonical by logical value where Iceberg type promotion could
// change the Arrow type: all integer widths share one 8-byte encoding
// (uint64 values above MaxInt64 get their own tag), string and large string
// share one, binary and large binary share one. Fixed-width numbers are
// big endian with the sign bit flipped, so a single-column key of a number
// orders bytewise like the number. Decimals encode the unscaled value (the
// scale is the column's), timestamps and times the raw value in their unit,
// which the tag carries; the time zone is ignored (the value is an instant).
// Floating point keys are not supported: Iceberg forbids float and double
// identifier fields.
type KeyEncoder struct {
	cols []keyCol
	rec  arrow.RecordBatch // the bound batch
	rows int
}

// NewKeyEncoder returns an encoder for the named top-level columns of
// schema, in that order. Key columns may be nullable in the schema, but a
// null key value is an error at encoding time.
func NewKeyEncoder(schema *arrow.Schema, columns []string) (*KeyEncoder, error) {
	if len(columns) == 0 {
		return nil, errors.New("upsert: no key columns")
	}
	e := &KeyEncoder{}
	seen := make(map[string]bool, len(columns))
	for _, name := range columns {
		if seen[name] {
			return nil, fmt.Errorf("upsert: key column %q listed twice", name)
		}
		seen[name] = true
		idx := schema.FieldIndices(name)
		if len(idx) != 1 {
			if len(idx) == 0 {
				return nil, fmt.Errorf("upsert: key column %q is not in the schema", name)
			}
			return nil, fmt.Errorf("upsert: key column %q is ambiguous: %d fields have that name", name, len(idx))
		}
		c := keyCol{name: name, idx: idx[0], typ: schema.Field(idx[0]).Type}
		c.storage = c.typ
		if ext, ok := c.typ.(arrow.ExtensionType); ok {
			c.storage = ext.StorageType()
		}
		if err := c.setKind(); err != nil {
			return nil, err
		}
		e.cols = append(e.cols, c)
	}
	return e, nil
}

func (c *keyCol) setKind() error {
	switch t := c.storage.(type) {
	case *arrow.Int8Type:
		c.kind, c.tag = kInt8, tagInt
	case *arrow.Int16Type:
		c.kind, c.tag = kInt16, tagInt
	case *arrow.Int32Type:
		c.kind, c.tag = kInt32, tagInt
	case *arrow.Int64Type:
		c.kind, c.tag = kInt64, tagInt
	case *arrow.Uint8Type:
		c.kind, c.tag = kUint8, tagInt
	case *arrow.Uint16Type:
		c.kind, c.tag = kUint16, tagInt
	case *arrow.Uint32Type:
		c.kind, c.tag = kUint32, tagInt
	case *arrow.Uint64Type:
		c.kind, c.tag = kUint64, tagInt
	case *arrow.BooleanType:
		c.kind, c.tag = kBool, tagBool
	case *arrow.Decimal128Type:
		c.kind, c.tag = kDecimal, tagDecimal
	case *arrow.Date32Type:
		c.kind, c.tag = kDate32, tagDate
	case *arrow.Time32Type:
		c.kind, c.tag = kTime32, tagTime+byte(t.Unit)
	case *arrow.Time64Type:
		c.kind, c.tag = kTime64, tagTime+byte(t.Unit)
	case *arrow.TimestampType:
		c.kind, c.tag = kTimestamp, tagTimestamp+byte(t.Unit)
	case *arrow.StringType:
		c.kind, c.tag = kString, tagString
	case *arrow.LargeStringType:
		c.kind, c.tag = kLargeString, tagString
	case *arrow.BinaryType:
		c.kind, c.tag = kBinary, tagBinary
	case *arrow.LargeBinaryType:
		c.kind, c.tag = kLargeBinary, tagBinary
	case *arrow.FixedSizeBinaryType:
		c.kind, c.tag = kFixed, tagFixed
	default:
		return fmt.Errorf("upsert: key column %q has type %s; key columns must be integers, booleans, decimal128, date32, time, timestamp, string, binary or fixed-size binary", c.name, c.typ)
	}
	return nil
}

// Columns returns the key column names in encoding order.
func (e *KeyEncoder) Columns() []string {
	names := make([]string, len(e.cols))
	for i := range e.cols {
		names[i] = e.cols[i].name
	}
	return names
}

// bind checks rec against the key columns' names and types and takes typed
// views of its columns. It runs once per batch.
func (e *KeyEncoder) bind(rec arrow.RecordBatch) error {
	e.Reset()
	sc := rec.Schema()
	for i := range e.cols {
		c := &e.cols[i]
		if c.idx >= int(rec.NumCols()) || sc.Field(c.idx).Name != c.name {
			return fmt.Errorf("upsert: batch has no key column %q at index %d", c.name, c.idx)
		}
		col := rec.Column(c.idx)
		if !arrow.TypeEqual(col.DataType(), c.typ) {
			return fmt.Errorf("upsert: key column %q is %s in the batch, %s in the key schema", c.name, col.DataType(), c.typ)
		}
		if ext, ok := col.(array.ExtensionArray); ok {
			col = ext.Storage()
		}
		c.nulls, c.off = nil, 0
		if col.NullN() > 0 {
			c.nulls, c.off = col.NullBitmapBytes(), col.Data().Offset()
		}
		var ok bool
		switch c.kind {
		case kInt8:
			var a *array.Int8
			if a, ok = col.(*array.Int8); ok {
				c.i8 = a.Int8Values()
			}
		case kInt16:
			var a *array.Int16
			if a, ok = col.(*array.Int16); ok {
				c.i16 = a.Int16Values()
			}
		case kInt32:
			var a *array.Int32
			if a, ok = col.(*array.Int32); ok {
				c.i32 = a.Int32Values()
			}
		case kInt64:
			var a *array.Int64
			if a, ok = col.(*array.Int64); ok {
				c.i64 = a.Int64Values()
			}
		case kUint8:
			var a *array.Uint8
			if a, ok = col.(*array.Uint8); ok {
				c.u8 = a.Uint8Values()
			}
		case kUint16:
			var a *array.Uint16
			if a, ok = col.(*array.Uint16); ok {
				c.u16 = a.Uint16Values()
			}
		case kUint32:
			var a *array.Uint32
			if a, ok = col.(*array.Uint32); ok {
				c.u32 = a.Uint32Values()
			}
		case kUint64:
			var a *array.Uint64
			if a, ok = col.(*array.Uint64); ok {
				c.u64 = a.Uint64Values()
			}
		case kBool:
			c.bl, ok = col.(*array.Boolean)
		case kDecimal:
			var a *array.Decimal128
			if a, ok = col.(*array.Decimal128); ok {
				c.dec = a.Values()
			}
		case kDate32:
			var a *array.Date32
			if a, ok = col.(*array.Date32); ok {
				c.d32 = a.Date32Values()
			}
		case kTime32:
			var a *array.Time32
			if a, ok = col.(*array.Time32); ok {
				c.t32 = a.Time32Values()
			}
		case kTime64:
			var a *array.Time64
			if a, ok = col.(*array.Time64); ok {
				c.t64 = a.Time64Values()
			}
		case kTimestamp:
			var a *array.Timestamp
			if a, ok = col.(*array.Timestamp); ok {
				c.ts = a.TimestampValues()
			}
		case kString:
			c.str, ok = col.(*array.String)
		case kLargeString:
			c.lstr, ok = col.(*array.LargeString)
		case kBinary:
			c.bin, ok = col.(*array.Binary)
		case kLargeBinary:
			c.lbin, ok = col.(*array.LargeBinary)
		case kFixed:
			c.fsb, ok = col.(*array.FixedSizeBinary)
		}
		if !ok {
			return fmt.Errorf("upsert: key column %q: unexpected array %T", c.name, col)
		}
	}
	e.rec, e.rows = rec, int(rec.NumRows())
	return nil
}

// Reset drops the encoder's reference to the last batch it encoded from.
func (e *KeyEncoder) Reset() {
	e.rec, e.rows = nil, 0
	for i := range e.cols {
		c := &e.cols[i]
		*c = keyCol{name: c.name, idx: c.idx, typ: c.typ, storage: c.storage, kind: c.kind, tag: c.tag}
	}
}

// AppendKey appends the encoding of row's key to dst. A null key value is
// an error, as is a key longer than MaxKeyLen (ErrKeyTooLong); on error dst
// is returned unchanged. The encoder binds to rec on first use and keeps
// the binding (and a reference to rec) until it sees another batch or
// Reset is called, so encoding every row of a batch checks the batch once.
func (e *KeyEncoder) AppendKey(dst []byte, rec arrow.RecordBatch, row int) ([]byte, error) {
	if rec != e.rec {
		if err := e.bind(rec); err != nil {
			e.Reset()
			return dst, err
		}
	}
	if row < 0 || row >= e.rows {
		return dst, fmt.Errorf("upsert: row %d out of range [0,%d)", row, e.rows)
	}
	start := len(dst)
	for i := range e.cols {
		c := &e.cols[i]
		if c.nulls != nil && bitutil.BitIsNotSet(c.nulls, c.off+row) {
			return dst[:start], fmt.Errorf("upsert: key column %q is null at row %d", c.name, row)
		}
		dst = append(dst, c.tag)
		switch c.kind {
		case kInt8:
			dst = appendInt(dst, int64(c.i8[row]))
		case kInt16:
			dst = appendInt(dst, int64(c.i16[row]))
		case kInt32:
			dst = appendInt(dst, int64(c.i32[row]))
		case kInt64:
			dst = appendInt(dst, c.i64[row])
		case kUint8:
			dst = appendInt(dst, int64(c.u8[row]))
		case kUint16:
			dst = appendInt(dst, int64(c.u16[row]))
		case kUint32:
			dst = appendInt(dst, int64(c.u32[row]))
		case kUint64:
			if v := c.u64[row]; v > math.MaxInt64 {
				dst[len(dst)-1] = tagUint
				dst = binary.BigEndian.AppendUint64(dst, v)
			} else {
				dst = appendInt(dst, int64(v))
			}
		case kBool:
			var b byte
			if c.bl.Value(row) {
				b = 1
			}
			dst = append(dst, b)
		case kDecimal:
			v := c.dec[row]
			dst = appendInt(dst, v.HighBits())
			dst = binary.BigEndian.AppendUint64(dst, v.LowBits())
		case kDate32:
			dst = binary.BigEndian.AppendUint32(dst, uint32(c.d32[row])^(1<<31))
		case kTime32:
			dst = appendInt(dst, int64(c.t32[row]))
		case kTime64:
			dst = appendInt(dst, int64(c.t64[row]))
		case kTimestamp:
			dst = appendInt(dst, int64(c.ts[row]))
		case kString:
			dst = appendBytes(dst, c.str.Value(row))
		case kLargeString:
			dst = appendBytes(dst, c.lstr.Value(row))
		case kBinary:
			dst = appendBytes(dst, c.bin.Value(row))
		case kLargeBinary:
			dst = appendBytes(dst, c.lbin.Value(row))
		case kFixed:
			dst = append(dst, c.fsb.Value(row)...)
		}
	}
	if len(dst)-start > MaxKeyLen {
		return dst[:start], fmt.Errorf("%w: %d bytes", ErrKeyTooLong, len(dst)-start)
	}
	return dst, nil
}

func appendInt(dst []byte, v int64) []byte {
	return binary.BigEndian.AppendUint64(dst, uint64(v)^(1<<63))
}

func appendBytes[T string | []byte](dst []byte, v T) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(v)))
	return append(dst, v...)
}
