package timetravel

import (
	"encoding/binary"
	"testing"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table/dv"
)

// TestChangesDisjoint: an equality delete is left out for a data file
// only when the bounds of a key column it has no null in show that the
// two files' values cannot meet.
func TestChangesDisjoint(t *testing.T) {
	sch := iceberg.NewSchema(0,
		iceberg.NestedField{ID: 1, Name: "id", Type: iceberg.PrimitiveTypes.Int64, Required: true},
		iceberg.NestedField{ID: 2, Name: "s", Type: iceberg.PrimitiveTypes.String},
		iceberg.NestedField{ID: 3, Name: "f", Type: iceberg.PrimitiveTypes.Float64},
	)
	long := func(v int64) []byte { return binary.LittleEndian.AppendUint64(nil, uint64(v)) }
	file := func(content iceberg.ManifestEntryContent, lo, hi map[int][]byte, nulls map[int]int64, eq ...int) iceberg.DataFile {
		b, err := iceberg.NewDataFileBuilder(*iceberg.UnpartitionedSpec, content, "f.parquet", iceberg.ParquetFile, nil, nil, nil, 1, 1)
		if err != nil {
			t.Fatal(err)
		}
		b.LowerBoundValues(lo).UpperBoundValues(hi).NullValueCounts(nulls)
		if len(eq) > 0 {
			b.EqualityFieldIDs(eq)
		}
		return b.Build()
	}
	data := file(iceberg.EntryContentData,
		map[int][]byte{1: long(10), 2: []byte("m"), 3: long(0)},
		map[int][]byte{1: long(20), 2: []byte("p"), 3: long(5)}, map[int]int64{1: 0, 2: 3})
	for _, c := range []struct {
		name     string
		lo, hi   map[int][]byte
		nulls    map[int]int64
		eq       []int
		disjoint bool
	}{
		{"ids below", map[int][]byte{1: long(1)}, map[int][]byte{1: long(9)}, map[int]int64{1: 0}, []int{1}, true},
		{"ids above", map[int][]byte{1: long(21)}, map[int][]byte{1: long(30)}, map[int]int64{1: 0}, []int{1}, true},
		{"ids meet at the edge", map[int][]byte{1: long(20)}, map[int][]byte{1: long(30)}, map[int]int64{1: 0}, []int{1}, false},
		{"ids overlap", map[int][]byte{1: long(5)}, map[int][]byte{1: long(15)}, map[int]int64{1: 0}, []int{1}, false},
		{"null counts unknown", map[int][]byte{1: long(1)}, map[int][]byte{1: long(9)}, nil, []int{1}, false},
		{"nulls in the delete", map[int][]byte{1: long(1)}, map[int][]byte{1: long(9)}, map[int]int64{1: 1}, []int{1}, false},
		{"no bounds", nil, nil, map[int]int64{1: 0}, []int{1}, false},
		{"strings below", map[int][]byte{2: []byte("a")}, map[int][]byte{2: []byte("l")}, map[int]int64{2: 0}, []int{2}, true},
		{"strings meet", map[int][]byte{2: []byte("a")}, map[int][]byte{2: []byte("n")}, map[int]int64{2: 0}, []int{2}, false},
		{"one of two columns apart", map[int][]byte{1: long(12), 2: []byte("x")}, map[int][]byte{1: long(12), 2: []byte("z")},
			map[int]int64{1: 0, 2: 0}, []int{1, 2}, true},
		{"doubles are not compared", map[int][]byte{3: long(100)}, map[int][]byte{3: long(200)}, map[int]int64{3: 0}, []int{3}, false},
	} {
		d := file(iceberg.EntryContentEqDeletes, c.lo, c.hi, c.nulls, c.eq...)
		if got := changesDisjoint(sch, d.EqualityFieldIDs(), newChangesFileMeta(d), newChangesFileMeta(data)); got != c.disjoint {
			t.Errorf("%s: disjoint = %v, want %v", c.name, got, c.disjoint)
		}
	}
}

// TestChangesSelection: the set operations on positions.
func TestChangesSelection(t *testing.T) {
	var s changesSelection
	for _, p := range []int64{0, 63, 64, 200, 63} {
		s.add(p)
	}
	if s.n != 4 || !s.has(63) || !s.has(200) || s.has(1) || s.has(1000) {
		t.Fatalf("selection %+v", s)
	}
	all := changesComplement(nil, 5)
	if !all.all || all.n != 5 {
		t.Fatalf("complement of nothing: %+v", all)
	}
	var a, b changesPositions
	a.bm, b.bm = newChangesBitmap(1, 2, 3), newChangesBitmap(2)
	if c := changesComplement(&a, 5); c.all || c.n != 2 || !c.has(0) || !c.has(4) || c.has(1) {
		t.Fatalf("complement: %+v", c)
	}
	if m := changesMinus(&a, &b); m.n != 2 || !m.has(1) || !m.has(3) || m.has(2) {
		t.Fatalf("minus: %+v", m)
	}
	if m := changesMinus(&b, nil); m.n != 1 || !m.has(2) {
		t.Fatalf("minus nothing: %+v", m)
	}
	if m := changesMinus(nil, &a); m.n != 0 {
		t.Fatalf("nothing minus: %+v", m)
	}
}

func newChangesBitmap(ps ...uint64) *dv.RoaringPositionBitmap {
	bm := dv.NewRoaringPositionBitmap()
	for _, p := range ps {
		bm.Set(p)
	}
	return bm
}
