package timetravel

import (
	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// recordBytes returns the size of the first k rows of rec in Arrow
// buffers, as Limits.MaxBytes counts it.
func recordBytes(rec arrow.RecordBatch, k int64) int64 {
	var size int64
	for _, col := range rec.Columns() {
		if k == int64(col.Len()) {
			size += arrayBytes(col)
			continue
		}
		part := array.NewSlice(col, 0, k)
		size += arrayBytes(part)
		part.Release()
	}
	return size
}

// fitBytes returns the most rows, up to k, of the start of rec whose size
// is at most budget.
func fitBytes(rec arrow.RecordBatch, k, budget int64) int64 {
	lo, hi := int64(0), k // recordBytes(lo) <= budget < recordBytes(hi+1)
	for lo < hi {
		mid := lo + (hi-lo+1)/2
		if recordBytes(rec, mid) <= budget {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return lo
}

// bitmapBytes is the size of a bitmap of n bits.
func bitmapBytes(n int64) int64 { return (n + 7) / 8 }

// arrayBytes returns the size of the values of a (a slice counts only the
// values in it): its validity bitmap when it has nulls, its fixed-width
// values, or its offsets and the bytes or child values they span.
func arrayBytes(a arrow.Array) int64 {
	n := int64(a.Len())
	var size int64
	if a.NullN() > 0 && a.DataType().ID() != arrow.NULL {
		size += bitmapBytes(n)
	}
	switch a := a.(type) {
	case *array.Null:
		return 0
	case array.ExtensionArray:
		return arrayBytes(a.Storage())
	case *array.Boolean:
		return size + bitmapBytes(n)
	case *array.String:
		return size + offsetsBytes(a.ValueOffsets(), 4)
	case *array.Binary:
		return size + offsetsBytes(a.ValueOffsets(), 4)
	case *array.LargeString:
		return size + offsetsBytes(a.ValueOffsets(), 8)
	case *array.LargeBinary:
		return size + offsetsBytes(a.ValueOffsets(), 8)
	case *array.Struct:
		for i := range a.NumField() {
			size += arrayBytes(a.Field(i))
		}
		return size
	case *array.List:
		return size + (n+1)*4 + childBytes(a, n)
	case *array.Map:
		return size + (n+1)*4 + childBytes(a, n)
	case *array.LargeList:
		return size + (n+1)*8 + childBytes(a, n)
	case *array.FixedSizeList:
		return size + childBytes(a, n)
	case *array.Dictionary:
		return size + arrayBytes(a.Indices()) + arrayBytes(a.Dictionary())
	}
	if fw, ok := a.DataType().(arrow.FixedWidthDataType); ok {
		return size + n*int64(fw.BitWidth())/8
	}
	// Anything else (views, unions, run-end encoded): its buffers whole.
	size = 0
	var walk func(d arrow.ArrayData)
	walk = func(d arrow.ArrayData) {
		for _, b := range d.Buffers() {
			if b != nil {
				size += int64(b.Len())
			}
		}
		for _, c := range d.Children() {
			walk(c)
		}
	}
	walk(a.Data())
	return size
}

// offsetsBytes is the size of n+1 offsets of the given width and of the
// bytes they span.
func offsetsBytes[T int32 | int64](offs []T, width int64) int64 {
	if len(offs) == 0 {
		return 0
	}
	return int64(len(offs))*width + int64(offs[len(offs)-1]-offs[0])
}

// childBytes is the size of the child values that the n lists of a span.
func childBytes(a array.ListLike, n int64) int64 {
	if n == 0 {
		return 0
	}
	start, _ := a.ValueOffsets(0)
	_, end := a.ValueOffsets(int(n - 1))
	if end <= start {
		return 0
	}
	child := array.NewSlice(a.ListValues(), start, end)
	defer child.Release()
	return arrayBytes(child)
}
