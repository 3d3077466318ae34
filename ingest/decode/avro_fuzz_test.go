package decode

import (
	"errors"
	"fmt"
	"math/big"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	"github.com/hamba/avro/v2"
)

// avroFuzzFields are the writer schema's fields the table has; avroFuzzWriter adds two
// the table lacks (a general union and a map of records), which the decoder skips.
const avroFuzzFields = `
	{"name":"b","type":["null","boolean"]},
	{"name":"i","type":"int"},
	{"name":"l","type":["long","null"]},
	{"name":"f","type":"float"},
	{"name":"d","type":["null","double"]},
	{"name":"s","type":"string"},
	{"name":"by","type":["null","bytes"]},
	{"name":"e","type":{"type":"enum","name":"E","symbols":["A","B","C"]}},
	{"name":"fx","type":["null",{"type":"fixed","name":"F3","size":3}]},
	{"name":"dec","type":{"type":"bytes","logicalType":"decimal","precision":9,"scale":2}},
	{"name":"decf","type":["null",{"type":"fixed","name":"D5","size":5,"logicalType":"decimal","precision":11,"scale":3}]},
	{"name":"dt","type":{"type":"int","logicalType":"date"}},
	{"name":"tm","type":{"type":"int","logicalType":"time-millis"}},
	{"name":"tu","type":{"type":"long","logicalType":"time-micros"}},
	{"name":"ts","type":{"type":"long","logicalType":"timestamp-millis"}},
	{"name":"tl","type":{"type":"long","logicalType":"local-timestamp-micros"}},
	{"name":"uu","type":["null",{"type":"string","logicalType":"uuid"}]},
	{"name":"rec","type":["null",{"type":"record","name":"In","fields":[{"name":"x","type":"int"},{"name":"ys","type":{"type":"array","items":["null","string"]}}]}]},
	{"name":"m","type":{"type":"map","values":["null","In"]}}`

const avroFuzzWriter = `{"type":"record","name":"Z","fields":[
	{"name":"u","type":["string","int","null"]},` + avroFuzzFields + `,
	{"name":"junk","type":{"type":"map","values":{"type":"record","name":"J","fields":[{"name":"a","type":{"type":"array","items":"long"}},{"name":"e","type":"E"}]}}}]}`

// avroFuzzEvolved reads the writer with promotions, other orders, a missing column and
// missing nested fields.
func avroFuzzEvolved() *iceberg.Schema {
	p := iceberg.PrimitiveTypes
	return iceberg.NewSchema(0,
		iceberg.NestedField{ID: 1, Name: "rec", Type: &iceberg.StructType{FieldList: []iceberg.NestedField{
			{ID: 2, Name: "ys", Type: &iceberg.ListType{ElementID: 3, Element: p.String}},
			{ID: 4, Name: "z", Type: p.Int32},
		}}},
		iceberg.NestedField{ID: 5, Name: "i", Type: p.Int64, Required: true},
		iceberg.NestedField{ID: 6, Name: "added", Type: p.String},
		iceberg.NestedField{ID: 7, Name: "f", Type: p.Float64},
		iceberg.NestedField{ID: 8, Name: "dec", Type: iceberg.DecimalTypeOf(12, 2)},
		iceberg.NestedField{ID: 9, Name: "fx", Type: p.Binary},
		iceberg.NestedField{ID: 10, Name: "s", Type: p.String},
		iceberg.NestedField{ID: 11, Name: "m", Type: &iceberg.MapType{KeyID: 12, KeyType: p.String, ValueID: 13, ValueRequired: false,
			ValueType: &iceberg.StructType{FieldList: []iceberg.NestedField{{ID: 14, Name: "x", Type: p.Int64}}}}},
	)
}

func avroFuzzSeeds(t testing.TB) [][]byte {
	// Union values of named types are keyed by the type's name.
	in := func(x int, ys ...any) map[string]any { return map[string]any{"In": map[string]any{"x": x, "ys": ys}} }
	full := map[string]any{
		"u": map[string]any{"string": "skip me"}, "b": true, "i": -7, "l": int64(1 << 62), "f": float32(1.5), "d": -0.25,
		"s": "héllo", "by": []byte{0, 1}, "e": "C", "fx": map[string]any{"F3": [3]byte{1, 2, 3}}, "dec": big.NewRat(-1234567, 100),
		"decf": map[string]any{"D5": big.NewRat(12345678, 1000)}, "dt": time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC), "tm": 3 * time.Second,
		"tu": time.Hour, "ts": time.UnixMilli(1795340400123).UTC(), "tl": time.UnixMicro(-5).UTC(),
		"uu": "123e4567-e89b-12d3-a456-426614174000", "rec": in(4, "a", nil),
		"m":    map[string]any{"k": in(1), "n": nil},
		"junk": map[string]any{"j": map[string]any{"a": []any{int64(1), int64(2)}, "e": "A"}},
	}
	empty := map[string]any{
		"u": nil, "b": nil, "i": 0, "l": nil, "f": float32(0), "d": nil, "s": "", "by": nil, "e": "A", "fx": nil,
		"dec": new(big.Rat), "decf": nil, "dt": time.Unix(0, 0).UTC(), "tm": time.Duration(0), "tu": time.Duration(0),
		"ts": time.Unix(0, 0).UTC(), "tl": time.Unix(0, 0).UTC(), "uu": nil, "rec": nil, "m": map[string]any{},
		"junk": map[string]any{},
	}
	other := map[string]any{}
	for k, v := range full {
		other[k] = v
	}
	other["u"] = map[string]any{"int": 3}
	other["rec"] = in(-1)
	other["m"] = map[string]any{"a": in(2, "x"), "b": in(3, nil, "y"), "c": nil}
	var seeds [][]byte
	for _, v := range []map[string]any{full, empty, other} {
		seeds = append(seeds, avroEncode(t, avroFuzzWriter, v))
	}
	return seeds
}

// FuzzAvroDecode feeds arbitrary payloads to a decoder for avroFuzzWriter read as its own
// Iceberg form (minus the fields Iceberg cannot hold) and to one for an evolved table.
// Invariants checked for every input:
//
//  1. Parse never panics, and every error it returns is a *DecodeError with a reason.
//  2. A failed Parse appends nothing and leaves the last good row (its Cells) as it was.
//  3. After a successful Parse, Append adds exactly one value to every column, and the built
//     arrays are valid.
//  4. What the decoder accepts, the reference implementation reads too; written again by
//     the reference encoder (canonically), it decodes to the same row.
//  5. What the decoder accepts for the full table, it accepts for the evolved one, with the
//     same values (promoted) in the columns they share.
func FuzzAvroDecode(f *testing.F) {
	for _, s := range avroFuzzSeeds(f) {
		f.Add(s)
		f.Add(s[:len(s)/2])
	}
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})

	ws := mustAvroSchema(f, avroFuzzWriter)
	table, err := mustAvroSchema(f, `{"type":"record","name":"Z","fields":[`+avroFuzzFields+`]}`).Iceberg()
	if err != nil {
		f.Fatal(err)
	}
	full, err := NewAvroDecoder(table, ws)
	if err != nil {
		f.Fatal(err)
	}
	evolved, err := NewAvroDecoder(avroFuzzEvolved(), ws)
	if err != nil {
		f.Fatal(err)
	}
	ref := avro.MustParse(avroFuzzWriter)
	mem := memory.NewGoAllocator()

	f.Fuzz(func(t *testing.T, data []byte) {
		row, ok := avroFuzzParseAppend(t, mem, full, data)
		erow, eok := avroFuzzParseAppend(t, mem, evolved, data)
		if !ok {
			return
		}

		// 4. The reference implementation agrees.
		var v any
		if err := avro.Unmarshal(ref, data, &v); err != nil {
			t.Fatalf("accepted %x, which the reference implementation refuses: %v", data, err)
		}
		canon, err := avro.Marshal(ref, v)
		if err != nil {
			t.Fatalf("the reference implementation cannot write back %x: %v", data, err)
		}
		again, ok := avroFuzzParseAppend(t, mem, full, canon)
		if !ok {
			t.Fatalf("refused the canonical form %x of accepted %x", canon, data)
		}
		if fmt.Sprint(again) != fmt.Sprint(row) {
			t.Fatalf("%x decodes to\n%v\nits canonical form %x to\n%v", data, row, canon, again)
		}

		// 5. The evolved table takes it too.
		if !eok {
			t.Fatalf("accepted %x for the full table, not for the evolved one", data)
		}
		want := map[string]any{
			"i": int64(row["i"].(int32)), "f": float64(row["f"].(float32)), "s": row["s"], "fx": row["fx"],
			"dec": row["dec"], "added": nil, "m": nil,
		}
		if r, ok := row["rec"].(map[string]any); ok {
			want["rec"] = map[string]any{"ys": r["ys"], "z": nil}
		} else {
			want["rec"] = nil
		}
		if m, ok := row["m"].(map[string]any); ok {
			em := map[string]any{}
			for k, val := range m {
				if r, ok := val.(map[string]any); ok {
					em[k] = map[string]any{"x": int64(r["x"].(int32))}
				} else {
					em[k] = nil
				}
			}
			want["m"] = em
		}
		if fmt.Sprint(want) != fmt.Sprint(erow) {
			t.Fatalf("%x: evolved row\n%v\nwant\n%v", data, erow, want)
		}
	})
}

// avroFuzzParseAppend parses data with d and checks invariants 1 to 3. It returns the
// appended row read back from Arrow, and whether Parse succeeded.
func avroFuzzParseAppend(t *testing.T, mem memory.Allocator, d *AvroDecoder, data []byte) (map[string]any, bool) {
	t.Helper()
	rb := array.NewRecordBuilder(mem, d.ArrowSchema())
	defer rb.Release()
	var before []Cell
	if d.out.last >= 0 {
		before = snapshotCells(d.out)
	}
	if err := d.Parse(data, RecordMeta{}); err != nil {
		var de *DecodeError
		if !errors.As(err, &de) || de.Reason == "" {
			t.Fatalf("Parse(%x) returned %T %v, want a *DecodeError with a reason", data, err, err)
		}
		for i := range before {
			c := d.Cell(i)
			if !sameCell(before[i], c) {
				t.Fatalf("failed Parse(%x) changed column %d of the last good row", data, i)
			}
		}
		return nil, false
	}
	d.Append(rb)
	for i, f := range rb.Fields() {
		if f.Len() != 1 {
			t.Fatalf("column %d has %d values after one Append of %x", i, f.Len(), data)
		}
	}
	rec := rb.NewRecordBatch()
	defer rec.Release()
	rows := recordGo(t, rec)
	return rows[0], true
}
