package decode

import (
	"encoding/json"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
)

// TestProjectorAppendsColumnsElsewhere: chosen columns, nested ones among
// them, land in other fields of another schema, in another order, whatever
// the nested values of the columns left out; the other fields are the
// caller's.
func TestProjectorAppendsColumnsElsewhere(t *testing.T) {
	list := &iceberg.ListType{ElementID: 10, Element: iceberg.PrimitiveTypes.Int64, ElementRequired: false}
	st := &iceberg.StructType{FieldList: []iceberg.NestedField{
		{ID: 11, Name: "a", Type: iceberg.PrimitiveTypes.String},
		{ID: 12, Name: "b", Type: &iceberg.ListType{ElementID: 15, Element: iceberg.PrimitiveTypes.Int64}},
	}}
	in := iceberg.NewSchema(0,
		iceberg.NestedField{ID: 1, Name: "xs", Type: list},
		iceberg.NestedField{ID: 2, Name: "id", Type: iceberg.PrimitiveTypes.Int64},
		iceberg.NestedField{ID: 3, Name: "s", Type: st},
		iceberg.NestedField{ID: 4, Name: "m", Type: &iceberg.MapType{KeyID: 13, KeyType: iceberg.PrimitiveTypes.String, ValueID: 14, ValueType: iceberg.PrimitiveTypes.Int32}},
	)
	d, err := NewJSONDecoder(in)
	if err != nil {
		t.Fatal(err)
	}
	as := d.ArrowSchema()
	// Output: extra, s (renamed), id (renamed); xs and m are dropped.
	out := arrow.NewSchema([]arrow.Field{
		{Name: "extra", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "renamed_s", Type: as.Field(2).Type, Nullable: true},
		{Name: "ident", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	}, nil)
	p, err := d.Projector(out, []int{2, 1}, []int{1, 2})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Projector(out, []int{0}, []int{2}); err == nil {
		t.Fatal("a list column projected onto a long field")
	}
	rb := array.NewRecordBuilder(memory.DefaultAllocator, out)
	defer rb.Release()
	for _, rec := range []string{
		`{"xs":[1,2,3],"id":1,"s":{"a":"x","b":[4,5]},"m":{"k":1,"l":2}}`,
		`{"xs":null,"id":2,"s":null,"m":{}}`,
		`{"xs":[9],"s":{"a":null,"b":[]},"m":{"z":3}}`,
	} {
		if err := d.Parse([]byte(rec), RecordMeta{}); err != nil {
			t.Fatal(err)
		}
		rb.Field(0).(*array.Int64Builder).Append(7)
		p.Append(rb)
	}
	rec := rb.NewRecordBatch()
	defer rec.Release()
	b, err := rec.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var got, want any
	_ = json.Unmarshal(b, &got)
	_ = json.Unmarshal([]byte(`[
		{"extra":7,"renamed_s":{"a":"x","b":[4,5]},"ident":1},
		{"extra":7,"renamed_s":null,"ident":2},
		{"extra":7,"renamed_s":{"a":null,"b":[]},"ident":null}]`), &want)
	gb, _ := json.Marshal(got)
	wb, _ := json.Marshal(want)
	if string(gb) != string(wb) {
		t.Fatalf("got  %s\nwant %s", gb, wb)
	}
}
