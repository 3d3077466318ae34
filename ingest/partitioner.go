package ingest

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/google/uuid"

	"github.com/floelake/floe/ingest/decode"
)

// partitioner computes, per decoded row, a compact key naming the row's
// partition, and on demand the partition values (spec field id → transform
// result) that key stands for. The key is computed on every row, so the
// common transforms (identity and the time transforms) are arithmetic on
// the decoder's cells with no allocation; bucket and truncate go through
// iceberg-go's transforms. The values always come from iceberg-go, which is
// the reference; partitioner_test checks that the fast keys agree with it.
type partitioner struct {
	fields []partField
	key    []byte
}

type partField struct {
	specFieldID int
	col         int
	src         iceberg.Type
	tr          iceberg.Transform
	kind        partKind
	apply       func(any) any
}

type partKind int

const (
	kindGeneric partKind = iota
	kindIdentity
	kindYear
	kindMonth
	kindDay
	kindHour
)

func newPartitioner(spec iceberg.PartitionSpec, sch *iceberg.Schema) (*partitioner, error) {
	top := map[int]int{}
	for i, f := range sch.Fields() {
		top[f.ID] = i
	}
	p := &partitioner{}
	for _, pf := range spec.Fields() {
		col, ok := top[pf.SourceID()]
		if !ok {
			return nil, fmt.Errorf("partition field %q: source column %d is not a top-level column", pf.Name, pf.SourceID())
		}
		src := sch.Field(col).Type
		f := partField{specFieldID: pf.FieldID, col: col, src: src, tr: pf.Transform}
		switch tr := pf.Transform.(type) {
		case iceberg.IdentityTransform:
			f.kind, f.apply = kindIdentity, func(v any) any { return v }
		case iceberg.YearTransform, iceberg.MonthTransform, iceberg.DayTransform, iceberg.HourTransform:
			tt := tr.(iceberg.TimeTransform)
			fn, err := tt.Transformer(src)
			if err != nil {
				return nil, fmt.Errorf("partition field %q: %w", pf.Name, err)
			}
			_, isDay := tr.(iceberg.DayTransform)
			f.apply = func(v any) any {
				o := fn(v)
				if !o.Valid {
					return nil
				}
				if isDay {
					return iceberg.Date(o.Val)
				}
				return o.Val
			}
			switch tr.(type) {
			case iceberg.YearTransform:
				f.kind = kindYear
			case iceberg.MonthTransform:
				f.kind = kindMonth
			case iceberg.DayTransform:
				f.kind = kindDay
			default:
				f.kind = kindHour
			}
		case iceberg.BucketTransform:
			fn := tr.Transformer(src)
			f.apply = func(v any) any {
				o := fn(v)
				if !o.Valid {
					return nil
				}
				return o.Val
			}
		case iceberg.TruncateTransform:
			fn, err := tr.Transformer(src)
			if err != nil {
				return nil, fmt.Errorf("partition field %q: %w", pf.Name, err)
			}
			f.apply = fn
		case iceberg.VoidTransform:
			f.apply = func(any) any { return nil }
		default:
			return nil, fmt.Errorf("partition field %q: transform %s is not supported", pf.Name, pf.Transform)
		}
		p.fields = append(p.fields, f)
	}
	return p, nil
}

// cells is what the partitioner reads from a decoded row.
type cells interface{ Cell(i int) decode.Cell }

// keyOf returns the partition key of the last parsed row. The slice is
// reused by the next call.
func (p *partitioner) keyOf(row cells) []byte {
	k := p.key[:0]
	for i := range p.fields {
		f := &p.fields[i]
		c := row.Cell(f.col)
		if c.Null {
			k = append(k, 0)
			continue
		}
		k = append(k, 1)
		switch f.kind {
		case kindIdentity:
			k = appendIdentity(k, f.src, c)
		case kindYear, kindMonth, kindDay, kindHour:
			k = binary.LittleEndian.AppendUint64(k, uint64(timeKey(f.kind, f.src, c.Int)))
		default:
			k = appendAny(k, f.apply(cellValue(c, f.src)))
		}
	}
	p.key = k
	return k
}

// values returns the partition values of the last parsed row.
func (p *partitioner) values(row cells) map[int]any {
	out := make(map[int]any, len(p.fields))
	for _, f := range p.fields {
		c := row.Cell(f.col)
		if c.Null {
			out[f.specFieldID] = nil
			continue
		}
		out[f.specFieldID] = f.apply(cellValue(c, f.src))
	}
	return out
}

const (
	microsPerHour = int64(time.Hour / time.Microsecond)
	microsPerDay  = 24 * microsPerHour
)

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// timeKey computes year/month/day/hour ordinals from the epoch, as the
// Iceberg spec defines them, from a date (days) or timestamp (micros) cell.
func timeKey(kind partKind, src iceberg.Type, v int64) int64 {
	isDate := false
	if _, ok := src.(iceberg.DateType); ok {
		isDate = true
	}
	switch kind {
	case kindDay:
		if isDate {
			return v
		}
		return floorDiv(v, microsPerDay)
	case kindHour:
		return floorDiv(v, microsPerHour)
	}
	var t time.Time
	if isDate {
		t = time.Unix(v*86400, 0).UTC()
	} else {
		t = time.UnixMicro(v).UTC()
	}
	years := int64(t.Year() - 1970)
	if kind == kindYear {
		return years
	}
	return years*12 + int64(t.Month()) - 1
}

func appendIdentity(k []byte, t iceberg.Type, c decode.Cell) []byte {
	switch t.(type) {
	case iceberg.Float32Type, iceberg.Float64Type:
		return binary.LittleEndian.AppendUint64(k, math.Float64bits(c.Float))
	case iceberg.StringType, iceberg.BinaryType, iceberg.FixedType, iceberg.UUIDType:
		k = binary.LittleEndian.AppendUint32(k, uint32(len(c.Bytes)))
		return append(k, c.Bytes...)
	case iceberg.DecimalType:
		k = binary.LittleEndian.AppendUint64(k, uint64(c.Dec.HighBits()))
		return binary.LittleEndian.AppendUint64(k, c.Dec.LowBits())
	default:
		return binary.LittleEndian.AppendUint64(k, uint64(c.Int))
	}
}

func appendAny(k []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		return append(k, 0)
	case int32:
		return binary.LittleEndian.AppendUint64(k, uint64(x))
	case int64:
		return binary.LittleEndian.AppendUint64(k, uint64(x))
	case string:
		k = binary.LittleEndian.AppendUint32(k, uint32(len(x)))
		return append(k, x...)
	case []byte:
		k = binary.LittleEndian.AppendUint32(k, uint32(len(x)))
		return append(k, x...)
	default:
		s := fmt.Sprint(x)
		k = binary.LittleEndian.AppendUint32(k, uint32(len(s)))
		return append(k, s...)
	}
}

// cellValue converts a cell to the Go value iceberg-go's transforms and
// partition records use for the type.
func cellValue(c decode.Cell, t iceberg.Type) any {
	if c.Null {
		return nil
	}
	switch tt := t.(type) {
	case iceberg.BooleanType:
		return c.Int != 0
	case iceberg.Int32Type:
		return int32(c.Int)
	case iceberg.Int64Type:
		return c.Int
	case iceberg.Float32Type:
		return float32(c.Float)
	case iceberg.Float64Type:
		return c.Float
	case iceberg.DateType:
		return iceberg.Date(c.Int)
	case iceberg.TimeType:
		return iceberg.Time(c.Int)
	case iceberg.TimestampType, iceberg.TimestampTzType:
		return iceberg.Timestamp(c.Int)
	case iceberg.StringType:
		return string(c.Bytes)
	case iceberg.UUIDType:
		u, _ := uuid.FromBytes(c.Bytes)
		return u
	case iceberg.BinaryType, iceberg.FixedType:
		return append([]byte(nil), c.Bytes...)
	case iceberg.DecimalType:
		return iceberg.Decimal{Val: c.Dec, Scale: tt.Scale()}
	default:
		return nil
	}
}
