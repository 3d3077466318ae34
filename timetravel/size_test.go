package timetravel

import (
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/extensions"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

func TestArrayBytes(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	sc := arrow.NewSchema([]arrow.Field{
		{Name: "l", Type: arrow.PrimitiveTypes.Int64},
		{Name: "s", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "b", Type: arrow.FixedWidthTypes.Boolean},
		{Name: "list", Type: arrow.ListOf(arrow.PrimitiveTypes.Int32)},
		{Name: "st", Type: arrow.StructOf(arrow.Field{Name: "x", Type: arrow.PrimitiveTypes.Int16})},
		{Name: "u", Type: extensions.NewUUIDType()},
	}, nil)
	b := array.NewRecordBuilder(mem, sc)
	defer b.Release()
	// Rows: s is "", "ab", null, "cde"; list has 0, 1, 2, 3 elements.
	for i, s := range []string{"", "ab", "", "cde"} {
		b.Field(0).(*array.Int64Builder).Append(int64(i))
		if i == 2 {
			b.Field(1).AppendNull()
		} else {
			b.Field(1).(*array.StringBuilder).Append(s)
		}
		b.Field(2).(*array.BooleanBuilder).Append(true)
		lb := b.Field(3).(*array.ListBuilder)
		lb.Append(true)
		for j := range i {
			lb.ValueBuilder().(*array.Int32Builder).Append(int32(j))
		}
		sb := b.Field(4).(*array.StructBuilder)
		sb.Append(true)
		sb.FieldBuilder(0).(*array.Int16Builder).Append(int16(i))
		b.Field(5).(*extensions.UUIDBuilder).Append(uuid.New())
	}
	rec := b.NewRecordBatch()
	defer rec.Release()

	sizes := func(r arrow.RecordBatch) []int64 {
		var out []int64
		for _, c := range r.Columns() {
			out = append(out, arrayBytes(c))
		}
		return out
	}
	// long 4×8; string bitmap 1 + offsets 5×4 + bytes 5; bool 1; list
	// offsets 5×4 + 6 int32s; struct 4 int16s; uuid 4×16.
	require.Equal(t, []int64{32, 26, 1, 44, 8, 64}, sizes(rec))
	require.Equal(t, int64(32+26+1+44+8+64), recordBytes(rec, 4))

	// A slice counts only its own rows: rows 1 and 2.
	part := rec.NewSlice(1, 3)
	defer part.Release()
	// string: bitmap 1 + offsets 3×4 + "ab"; list: offsets 3×4 + 3 int32s.
	require.Equal(t, []int64{16, 15, 1, 24, 4, 32}, sizes(part))
	require.Equal(t, int64(16+15+1+24+4+32), recordBytes(part, 2))
	require.Equal(t, int64(8+(4+4+2)+1+(4+4+4)+2+16), recordBytes(part, 1))

	// recordBytes(rec, k) is the size of the first k rows; fitBytes the
	// most rows within a budget.
	// The first row has no null string, so no bitmap, and no list
	// elements.
	one := recordBytes(rec, 1)
	require.Equal(t, int64(8+8+1+8+2+16), one)
	require.Equal(t, int64(0), fitBytes(rec, 4, one-1))
	require.Equal(t, int64(1), fitBytes(rec, 4, one))
	require.Equal(t, int64(4), fitBytes(rec, 4, 1<<20))
	require.Equal(t, int64(2), fitBytes(rec, 2, 1<<20))
	for k := range int64(5) {
		require.Equal(t, k, fitBytes(rec, 4, recordBytes(rec, k)))
	}
}
