package decode

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
)

func TestProtoIcebergMapping(t *testing.T) {
	schema, err := ProtoIceberg(allMsg())
	require.NoError(t, err)
	typ := func(name string) string {
		f, ok := schema.FindFieldByName(name)
		require.True(t, ok, name)
		assert.False(t, f.Required, name)
		return f.Type.String()
	}
	for name, want := range map[string]string{
		"b": "boolean", "i32": "int", "s32": "int", "sf32": "int", "u32": "long", "f32": "long",
		"i64": "long", "s64": "long", "sf64": "long", "u64": "decimal(20, 0)", "f64": "decimal(20, 0)",
		"fl": "float", "db": "double", "s": "string", "by": "binary", "color": "string", "opt": "int",
		"ri": "list<int>", "rs": "list<string>", "ms": "map<string, long>", "mb": "map<boolean, string>",
		"mu": "map<decimal(20, 0), double>", "c_str": "string", "c_int": "long",
		"ts": "timestamptz", "dur": "long", "w_i32": "int", "w_str": "string", "w_u64": "decimal(20, 0)",
		"w_b": "boolean", "w_d": "double", "w_by": "binary", "w_f": "float", "w_i64": "long", "w_u32": "long",
		"st": "string", "val": "string", "lv": "string", "rcolor": "list<string>", "rts": "list<timestamptz>",
		"ru64": "list<decimal(20, 0)>", "rw": "list<string>", "mw": "map<string, int>", "big": "int",
	} {
		assert.Equal(t, want, typ(name), name)
	}
	assert.Contains(t, typ("inner"), "struct<")
	assert.Contains(t, typ("any"), "type_url")
	_, hasEmpty := schema.FindFieldByName("empty")
	assert.False(t, hasEmpty, "a message without fields has no column")

	// Ids: top-level ids are field numbers; nested ones count up after the largest, level by level.
	for name, id := range map[string]int{"b": 1, "opt": 17, "nested": 48, "big": 1000} {
		f, _ := schema.FindFieldByName(name)
		assert.Equal(t, id, f.ID, name)
	}
	inner, _ := schema.FindFieldByName("inner")
	st := inner.Type.(*iceberg.StructType)
	assert.Equal(t, "name", st.FieldList[0].Name)
	assert.Equal(t, 1001, st.FieldList[0].ID)
	assert.Equal(t, 1002, st.FieldList[1].ID)
	ri, _ := schema.FindFieldByName("ri")
	assert.Equal(t, 1003, ri.Type.(*iceberg.ListType).ElementID)
	assert.True(t, ri.Type.(*iceberg.ListType).ElementRequired)
	ms, _ := schema.FindFieldByName("ms")
	assert.True(t, ms.Type.(*iceberg.MapType).ValueRequired)
	nested, _ := schema.FindFieldByName("nested")
	ns := nested.Type.(*iceberg.StructType)
	require.Len(t, ns.FieldList, 2)
	deep := ns.FieldList[0]
	assert.Equal(t, ns.FieldList[0].ID+1, ns.FieldList[1].ID, "a struct's fields first")
	assert.Greater(t, deep.Type.(*iceberg.StructType).FieldList[0].ID, ns.FieldList[1].ID, "then what is inside them")

	// Every id is unique (NewSchema panics otherwise) and the Arrow schema converts.
	_, err = NewProtoDecoder(schema, allMsg())
	require.NoError(t, err)
}

func TestProtoIcebergRefusesRecursion(t *testing.T) {
	node := newPMsg("Node").f("v", 1, tInt32).f("next", 2, tMessage, typeName(".floetest.Node"))
	tree := newPMsg("Tree").f("root", 1, tMessage, typeName(".floetest.Node"))
	fd := buildProtoFile(t, protoFile("floetest/rec.proto", "proto3", nil, nil, node, tree))
	_, err := ProtoIceberg(fd.Messages().ByName("Tree"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), `"root.next"`)
	assert.Contains(t, err.Error(), "floetest.Node contains itself")

	// A table that stops the recursion at some depth is fine: the decoder follows the table.
	table := iceberg.NewSchema(0, iceberg.NestedField{ID: 1, Name: "root", Type: &iceberg.StructType{FieldList: []iceberg.NestedField{
		{ID: 2, Name: "v", Type: iceberg.PrimitiveTypes.Int32},
		{ID: 3, Name: "next", Type: &iceberg.StructType{FieldList: []iceberg.NestedField{
			{ID: 4, Name: "v", Type: iceberg.PrimitiveTypes.Int32},
		}}},
	}}})
	d, err := NewProtoDecoder(table, fd.Messages().ByName("Tree"))
	require.NoError(t, err)
	wire := wireFromJSON(t, fd.Messages().ByName("Tree"), `{"root":{"v":1,"next":{"v":2,"next":{"v":3}}}}`)
	rows := decodeProtoRows(t, d, wire)
	assert.Equal(t, map[string]any{"root": map[string]any{"v": int64(1), "next": map[string]any{"v": int64(2)}}}, rows[0])
}

// allRecords are protojson spellings of All records covering every type, its limits and absences.
var allRecords = []string{
	`{}`,
	`{"b":true,"i32":-5,"s32":-6,"sf32":-7,"u32":4294967295,"f32":4294967294,"i64":"-9223372036854775808",
	  "s64":"9223372036854775807","sf64":"-1","u64":"18446744073709551615","f64":"18446744073709551614",
	  "fl":1.5,"db":-2.25,"s":"héllo ✓","by":"AAEC/w==","color":"GREEN","opt":0,
	  "inner":{"name":"in","n":3},"ri":[1,-2,2147483647],"rs":["a","","ç"],"rm":[{"name":"x"},{},{"n":-1}],
	  "ms":{"a":"1","b":"-2"},"mi":{"7":{"name":"seven"},"-1":{}},"c_str":"chosen",
	  "ts":"2026-11-22T10:11:12.123456789Z","dur":"-3.000000500s",
	  "w_i32":0,"w_str":"","w_u64":"18446744073709551615","w_b":false,"w_d":"NaN","w_by":"","w_f":-0,
	  "w_i64":"42","w_u32":4294967295,
	  "st":{"z":1,"a":[true,null,"s",{"k":{}}]},"val":"text","lv":[1,"two",{"three":3}],
	  "any":{"@type":"type.googleapis.com/floetest.Second","id":"x"},"empty":{},
	  "rcolor":["RED","COLOR_UNSPECIFIED",7],"rts":["1970-01-01T00:00:00Z","0001-01-01T00:00:00Z","9999-12-31T23:59:59.999999999Z"],
	  "mb":{"true":"t","false":"f"},"mu":{"18446744073709551615":"Infinity","0":-0},"rd":[1e308,-5e-324,"-Infinity"],
	  "nested":{"deep":{"x":9,"tags":["p","q"]},"k":"-4"},"mw":{"a":5,"b":0},"ru64":["0","18446744073709551615"],
	  "rw":["x",""],"big":77,"opt_s":""}`,
	`{"c_msg":{"name":"m"},"color":"RED","ts":"1969-12-31T23:59:59.999999999Z","dur":"9000000000.999999999s","val":null,
	  "st":{},"lv":[],"nested":{},"inner":{}}`,
	`{"c_int":"0","val":{"a":{"b":[1.5e300,-0.0]}},"dur":"-0.000000001s","fl":"-Infinity","db":"NaN","s":"\u0000\u001f\"\\"}`,
	`{"color":5,"rcolor":[-3,1]}`,
}

func TestProtoRoundTrip(t *testing.T) {
	d := newAllDecoder(t)
	md := allMsg()
	var wires [][]byte
	var want []map[string]any
	for _, js := range allRecords {
		w := wireFromJSON(t, md, js)
		row, err := protoGoRow(md, w)
		require.NoError(t, err)
		wires = append(wires, w)
		want = append(want, row)
	}
	got := decodeProtoRows(t, d, wires...)
	for i := range want {
		assert.Equal(t, want[i], got[i], "record %d: %s", i, allRecords[i])
	}

	// The oracle's reading, spelled out for the interesting values.
	full := got[1]
	assert.Equal(t, decVal("18446744073709551615"), full["u64"])
	assert.Equal(t, int64(4294967295), full["u32"])
	assert.Equal(t, "GREEN", full["color"])
	assert.Equal(t, int64(0), full["opt"], "proto3 optional set to its zero value is not null")
	assert.Equal(t, "", full["opt_s"])
	assert.Equal(t, "chosen", full["c_str"])
	assert.Nil(t, full["c_msg"])
	assert.Nil(t, full["c_int"])
	assert.Equal(t, time.Date(2026, 11, 22, 10, 11, 12, 123456000, time.UTC).UnixMicro(), full["ts"], "nanos truncated to micros")
	assert.Equal(t, int64(-3_000_000_500), full["dur"], "durations in nanoseconds")
	assert.Equal(t, int64(0), full["w_i32"], "a wrapper holding its zero value is not null")
	assert.Equal(t, `{"a":[true,null,"s",{"k":{}}],"z":1}`, full["st"], "compact JSON, keys sorted")
	assert.Equal(t, `"text"`, full["val"])
	assert.Equal(t, `[1,"two",{"three":3}]`, full["lv"])
	assert.Equal(t, map[string]any{"type_url": "type.googleapis.com/floetest.Second", "value": binVal("\x0a\x01x")}, full["any"])
	assert.Equal(t, []any{"RED", "COLOR_UNSPECIFIED", "7"}, full["rcolor"], "an unknown enum number as its text")
	assert.Equal(t, map[string]any{"true": "t", "false": "f"}, full["mb"])
	assert.Equal(t, map[string]any{"7": map[string]any{"name": "seven", "n": int64(0)}, "-1": map[string]any{"name": "", "n": int64(0)}}, full["mi"])

	empty := got[0]
	for _, name := range []string{"b", "i32", "u64", "s", "by", "color", "ri", "ms"} {
		assert.NotNil(t, empty[name], "%s: proto3 implicit presence: absent is the zero value", name)
	}
	assert.Equal(t, "COLOR_UNSPECIFIED", empty["color"])
	assert.Equal(t, decVal("0"), empty["u64"])
	for _, name := range []string{"opt", "inner", "c_str", "ts", "dur", "w_i32", "st", "val", "any"} {
		assert.Nil(t, empty[name], "%s: explicit presence: absent is null", name)
	}
	assert.Equal(t, `null`, got[2]["val"], "a Value holding null is JSON null, not a null column")
	assert.Equal(t, map[string]any{"name": "", "n": int64(0)}, got[2]["inner"], "an empty message given is not null")
	assert.Equal(t, "5", got[4]["color"])
	assert.Equal(t, []any{"-3", "RED"}, got[4]["rcolor"])
}

// wire helpers for hand-made records.
func tagV(b []byte, num protowire.Number, v uint64) []byte {
	return protowire.AppendVarint(protowire.AppendTag(b, num, protowire.VarintType), v)
}
func tagB(b []byte, num protowire.Number, v []byte) []byte {
	return protowire.AppendBytes(protowire.AppendTag(b, num, protowire.BytesType), v)
}
func tagF64(b []byte, num protowire.Number, v uint64) []byte {
	return protowire.AppendFixed64(protowire.AppendTag(b, num, protowire.Fixed64Type), v)
}
func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// TestProtoWireSemantics decodes hand-made records that exercise protobuf's
// rules, and checks them against protobuf-go's reading of the same bytes.
func TestProtoWireSemantics(t *testing.T) {
	md := allMsg()
	packed := func(vs ...uint64) []byte {
		var b []byte
		for _, v := range vs {
			b = protowire.AppendVarint(b, v)
		}
		return b
	}
	inner := func(name string, n uint64) []byte { return tagV(tagB(nil, 1, []byte(name)), 2, n) }
	entry := func(k string, v uint64) []byte { return tagV(tagB(nil, 1, []byte(k)), 2, v) }
	group := cat(protowire.AppendTag(nil, 900, protowire.StartGroupType), tagV(nil, 1, 5),
		protowire.AppendTag(nil, 900, protowire.EndGroupType))
	cases := []struct {
		name  string
		wire  []byte
		check map[string]any
	}{
		{"last value wins", cat(tagV(nil, 2, 1), tagV(nil, 2, 2), tagB(nil, 14, []byte("a")), tagB(nil, 14, []byte("b"))),
			map[string]any{"i32": int64(2), "s": "b"}},
		{"packed and unpacked mixed", cat(tagV(nil, 19, 1), tagB(nil, 19, packed(2, 3)), tagV(nil, 19, 4), tagB(nil, 19, nil)),
			map[string]any{"ri": []any{int64(1), int64(2), int64(3), int64(4)}}},
		{"unpacked field given packed", tagB(nil, 47, cat(protowire.AppendFixed64(nil, math.Float64bits(1)), protowire.AppendFixed64(nil, math.Float64bits(2)))),
			map[string]any{"rd": []any{fbitsOf(1), fbitsOf(2)}}},
		{"message occurrences merge", cat(tagB(nil, 18, inner("a", 1)), tagB(nil, 18, tagV(nil, 2, 7))),
			map[string]any{"inner": map[string]any{"name": "a", "n": int64(7)}}},
		{"nested merge", cat(tagB(nil, 48, tagB(nil, 1, tagB(nil, 2, []byte("t1")))), tagB(nil, 48, tagB(nil, 1, cat(tagV(nil, 1, 3), tagB(nil, 2, []byte("t2")))))),
			map[string]any{"nested": map[string]any{"deep": map[string]any{"x": int64(3), "tags": []any{"t1", "t2"}}, "k": int64(0)}}},
		{"timestamp merge", cat(tagB(nil, 27, tagV(nil, 1, 10)), tagB(nil, 27, tagV(nil, 2, 5000))),
			map[string]any{"ts": int64(10_000_005)}},
		{"oneof: last member wins", cat(tagB(nil, 24, []byte("s")), tagB(nil, 25, inner("m", 0)), tagV(nil, 26, 9)),
			map[string]any{"c_str": nil, "c_msg": nil, "c_int": int64(9)}},
		{"oneof: message member replaced, then given again", cat(tagB(nil, 25, inner("a", 1)), tagV(nil, 26, 9), tagB(nil, 25, tagV(nil, 2, 2))),
			map[string]any{"c_msg": map[string]any{"name": "", "n": int64(2)}, "c_int": nil}},
		{"map: last entry of a key wins", cat(tagB(nil, 22, entry("a", 1)), tagB(nil, 22, entry("b", 2)), tagB(nil, 22, entry("a", 3))),
			map[string]any{"ms": map[string]any{"a": int64(3), "b": int64(2)}}},
		{"map: entry without key or value", cat(tagB(nil, 22, nil), tagB(nil, 23, nil)),
			map[string]any{"ms": map[string]any{"": int64(0)}, "mi": map[string]any{"0": map[string]any{"name": "", "n": int64(0)}}}},
		{"map: wrapper value absent is the wrapped zero", tagB(nil, 49, tagB(nil, 1, []byte("k"))),
			map[string]any{"mw": map[string]any{"k": int64(0)}}},
		{"unknown fields skipped", cat(tagV(nil, 999, 1), tagB(nil, 998, []byte("zz")), group, tagF64(nil, 997, 1), tagV(nil, 2, 5)),
			map[string]any{"i32": int64(5)}},
		{"unknown fields inside nested messages", tagB(nil, 18, cat(tagV(nil, 99, 1), group, tagV(nil, 2, 4))),
			map[string]any{"inner": map[string]any{"name": "", "n": int64(4)}}},
		{"int32 as a 10-byte negative varint", tagV(nil, 2, uint64(math.MaxUint64)),
			map[string]any{"i32": int64(-1)}},
		{"field beyond the dense table", tagV(nil, 1000, 3), map[string]any{"big": int64(3)}},
		{"bool varint other than 1", tagV(nil, 1, 2), map[string]any{"b": true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want, err := protoGoRow(md, tc.wire)
			require.NoError(t, err)
			got := decodeProtoRows(t, newAllDecoder(t), tc.wire)[0]
			assert.Equal(t, want, got)
			for k, v := range tc.check {
				assert.Equal(t, v, got[k], k)
			}
		})
	}

	// Many map entries (the sorted duplicate check) and repeated duplicates.
	var b []byte
	want := map[string]any{}
	for i := range 100 {
		k := string(rune('a' + i%37))
		b = tagB(b, 22, entry(k, uint64(i)))
		want[k] = int64(i)
	}
	got := decodeProtoRows(t, newAllDecoder(t), b)[0]
	assert.Equal(t, want, got["ms"])
}

func TestProtoMessageIndexes(t *testing.T) {
	cases := []struct {
		in      []byte
		want    []int
		rest    []byte
		wantErr string
	}{
		{in: []byte{0, 0xAA}, want: []int{0}, rest: []byte{0xAA}},
		{in: []byte{2, 2}, want: []int{1}, rest: []byte{}},
		{in: []byte{4, 2, 0, 9}, want: []int{1, 0}, rest: []byte{9}},
		{in: []byte{6, 0x80, 0x01, 4, 0}, want: []int{64, 2, 0}, rest: []byte{}},
		{in: nil, wantErr: "truncated"},
		{in: []byte{0x80}, wantErr: "truncated"},
		{in: []byte{1, 0}, wantErr: "list of -1 entries"},
		{in: []byte{4, 2}, wantErr: "list of 2 entries"},
		{in: []byte{2, 1}, wantErr: "message index -1 is out of range"},
		{in: []byte{4, 2, 0x80}, wantErr: "truncated"},
		{in: []byte{0x82, 0x01, 0}, wantErr: "list of 65 entries"},
	}
	for _, tc := range cases {
		got, rest, err := ReadMessageIndexes(tc.in)
		if tc.wantErr != "" {
			require.Error(t, err, "%x", tc.in)
			var de *DecodeError
			require.True(t, errors.As(err, &de))
			assert.Contains(t, err.Error(), tc.wantErr, "%x", tc.in)
			continue
		}
		require.NoError(t, err, "%x", tc.in)
		assert.Equal(t, tc.want, got, "%x", tc.in)
		assert.Equal(t, tc.rest, rest, "%x", tc.in)
	}
	// Appending to a reused slice allocates nothing.
	buf := make([]int, 0, 4)
	allocs := testing.AllocsPerRun(100, func() { buf, _, _ = AppendMessageIndexes(buf[:0], []byte{4, 2, 0}) })
	assert.Zero(t, allocs)
}

func TestProtoMessage(t *testing.T) {
	a := newPMsg("A").f("x", 1, tInt32)
	// B's map field comes first: its synthetic entry message is B's first nested type in the
	// descriptor, and is not counted.
	b := newPMsg("B").mapF("m", 2, tString, tString, "").f("y", 1, tInt32).
		nest(newPMsg("C").f("z", 1, tInt32), newPMsg("D").f("w", 1, tInt32).nest(newPMsg("E").f("v", 1, tInt32)))
	fd := buildProtoFile(t, protoFile("floetest/idx.proto", "proto3", nil, nil, a, b))
	for _, tc := range []struct {
		idx  []int
		want string
	}{
		{[]int{0}, "floetest.A"}, {nil, "floetest.A"}, {[]int{1}, "floetest.B"},
		{[]int{1, 0}, "floetest.B.C"}, {[]int{1, 1}, "floetest.B.D"}, {[]int{1, 1, 0}, "floetest.B.D.E"},
	} {
		md, err := ProtoMessage(fd, tc.idx)
		require.NoError(t, err, "%v", tc.idx)
		assert.Equal(t, tc.want, string(md.FullName()))
	}
	for _, idx := range [][]int{{2}, {-1}, {0, 0}, {1, 2}, {1, 1, 1}} {
		_, err := ProtoMessage(fd, idx)
		assert.Error(t, err, "%v", idx)
	}
	require.Equal(t, "MEntry", string(fd.Messages().Get(1).Messages().Get(0).Name()))
	_, err := ProtoMessage(fd, []int{1, 5})
	assert.EqualError(t, err, "ingest: protobuf message index [1 5]: message floetest.B has 2 messages, no message #5")

	// Framing and resolution together, as a consumer does.
	idx, rest, err := ReadMessageIndexes(append([]byte{4, 2, 2}, tagV(nil, 1, 150)...))
	require.NoError(t, err)
	md, err := ProtoMessage(fd, idx)
	require.NoError(t, err)
	schema, err := ProtoIceberg(md)
	require.NoError(t, err)
	d, err := NewProtoDecoder(schema, md)
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"w": int64(150)}, decodeProtoRows(t, d, rest)[0])
}

func TestProtoEvolution(t *testing.T) {
	md := allMsg()
	wire := wireFromJSON(t, md, `{"i32":-7,"fl":0.1,"u32":3,"s":"x","inner":{"name":"n","n":5},"ri":[1,2],"mi":{"1":{"n":2}},"w_i32":4,"u64":"7"}`)
	table := iceberg.NewSchema(0,
		iceberg.NestedField{ID: 1, Name: "i32", Type: iceberg.PrimitiveTypes.Int64, Required: true}, // int -> long
		iceberg.NestedField{ID: 2, Name: "fl", Type: iceberg.PrimitiveTypes.Float64},                // float -> double
		iceberg.NestedField{ID: 3, Name: "missing", Type: iceberg.PrimitiveTypes.String},            // the message lacks it
		iceberg.NestedField{ID: 4, Name: "inner", Type: &iceberg.StructType{FieldList: []iceberg.NestedField{
			{ID: 5, Name: "n", Type: iceberg.PrimitiveTypes.Int64}, // reordered, promoted, "name" dropped
			{ID: 6, Name: "gone", Type: &iceberg.ListType{ElementID: 7, Element: iceberg.PrimitiveTypes.Int32}},
		}}},
		iceberg.NestedField{ID: 8, Name: "ri", Type: &iceberg.ListType{ElementID: 9, Element: iceberg.PrimitiveTypes.Int64}},
		iceberg.NestedField{ID: 10, Name: "mi", Type: &iceberg.MapType{KeyID: 11, KeyType: iceberg.PrimitiveTypes.Int64,
			ValueID: 12, ValueType: &iceberg.StructType{FieldList: []iceberg.NestedField{{ID: 13, Name: "n", Type: iceberg.PrimitiveTypes.Int32}}}}},
		iceberg.NestedField{ID: 14, Name: "w_i32", Type: iceberg.PrimitiveTypes.Int64},
		iceberg.NestedField{ID: 15, Name: "u64", Type: iceberg.DecimalTypeOf(38, 0)},
		iceberg.NestedField{ID: 16, Name: "_kafka_offset", Type: iceberg.PrimitiveTypes.Int64},
	)
	d, err := NewProtoDecoder(table, md)
	require.NoError(t, err)
	got := decodeProtoRows(t, d, wire)[0]
	assert.Equal(t, map[string]any{
		"i32": int64(-7), "fl": fbitsOf(float64(float32(0.1))), "missing": nil,
		"inner": map[string]any{"n": int64(5), "gone": nil}, "ri": []any{int64(1), int64(2)},
		"mi": map[string]any{"1": map[string]any{"n": int64(2)}}, "w_i32": int64(4), "u64": decVal("7"),
		"_kafka_offset": int64(0),
	}, got)

	refused := []struct {
		name, field string
		typ         iceberg.Type
		required    bool
		want        string
	}{
		{"required column the message lacks", "nope", iceberg.PrimitiveTypes.Int32, true,
			`column "nope" is required, but protobuf message floetest.All has no field "nope"`},
		{"narrowing", "i64", iceberg.PrimitiveTypes.Int32, false, `field "i64" is protobuf int64, which cannot be stored in a column of type int`},
		{"uint32 into int", "u32", iceberg.PrimitiveTypes.Int32, false, `field "u32" is protobuf uint32`},
		{"uint64 into long", "u64", iceberg.PrimitiveTypes.Int64, false, `field "u64" is protobuf uint64, which cannot be stored in a column of type long`},
		{"uint64 into a small decimal", "u64", iceberg.DecimalTypeOf(19, 0), false, `decimal(19, 0)`},
		{"double into float", "db", iceberg.PrimitiveTypes.Float32, false, `field "db" is protobuf double`},
		{"int into double", "i32", iceberg.PrimitiveTypes.Float64, false, `field "i32" is protobuf int32`},
		{"string into binary", "s", iceberg.PrimitiveTypes.Binary, false, `field "s" is protobuf string`},
		{"bytes into string", "by", iceberg.PrimitiveTypes.String, false, `field "by" is protobuf bytes`},
		{"enum into int", "color", iceberg.PrimitiveTypes.Int32, false, `field "color" is protobuf enum floetest.Color`},
		{"message into string", "inner", iceberg.PrimitiveTypes.String, false, `field "inner" is protobuf message floetest.Inner, which needs a struct column`},
		{"repeated into scalar", "ri", iceberg.PrimitiveTypes.Int32, false, `field "ri" is a repeated protobuf field, which needs a list column`},
		{"map into list", "ms", &iceberg.ListType{ElementID: 2, Element: iceberg.PrimitiveTypes.String}, false, `field "ms" is a protobuf map`},
		{"timestamp into long", "ts", iceberg.PrimitiveTypes.Int64, false, `field "ts" is protobuf google.protobuf.Timestamp`},
		{"timestamp without zone", "ts", iceberg.PrimitiveTypes.Timestamp, false, `type timestamp`},
		{"duration into timestamp", "dur", iceberg.PrimitiveTypes.TimestampTz, false, `google.protobuf.Duration`},
		{"struct into binary", "st", iceberg.PrimitiveTypes.Binary, false, `google.protobuf.Struct`},
		{"wrapper narrowing", "w_i64", iceberg.PrimitiveTypes.Int32, false, `field "w_i64" is protobuf int64`},
		{"nested", "inner", &iceberg.StructType{FieldList: []iceberg.NestedField{{ID: 3, Name: "n", Type: iceberg.PrimitiveTypes.String}}}, false,
			`field "inner.n" is protobuf int32`},
		{"list element", "rs", &iceberg.ListType{ElementID: 2, Element: iceberg.PrimitiveTypes.Int32}, false, `field "rs[]" is protobuf string`},
		{"map value", "ms", &iceberg.MapType{KeyID: 2, KeyType: iceberg.PrimitiveTypes.String, ValueID: 3, ValueType: iceberg.PrimitiveTypes.Int32}, false,
			`field "ms.value" is protobuf int64`},
		{"map key", "mi", &iceberg.MapType{KeyID: 2, KeyType: iceberg.PrimitiveTypes.String, ValueID: 3, ValueType: &iceberg.StructType{FieldList: []iceberg.NestedField{{ID: 4, Name: "n", Type: iceberg.PrimitiveTypes.Int32}}}}, false,
			`field "mi.key" is protobuf int32`},
		{"metadata column type", "_kafka_offset", iceberg.PrimitiveTypes.String, false, `must have type long`},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewProtoDecoder(iceberg.NewSchema(0, iceberg.NestedField{ID: 1, Name: tc.field, Type: tc.typ, Required: tc.required}), md)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}

	// A oneof member the table lacks still replaces the member that came before it.
	d, err = NewProtoDecoder(iceberg.NewSchema(0, iceberg.NestedField{ID: 1, Name: "c_str", Type: iceberg.PrimitiveTypes.String}), md)
	require.NoError(t, err)
	rows := decodeProtoRows(t, d, cat(tagB(nil, 24, []byte("s")), tagV(nil, 26, 1)), cat(tagV(nil, 26, 1), tagB(nil, 24, []byte("s"))))
	assert.Equal(t, []map[string]any{{"c_str": nil}, {"c_str": "s"}}, rows)

	// Timestamps may go into timestamptz_ns, keeping their nanoseconds.
	d, err = NewProtoDecoder(iceberg.NewSchema(0, iceberg.NestedField{ID: 1, Name: "ts", Type: iceberg.PrimitiveTypes.TimestampTzNs}), md)
	require.NoError(t, err)
	got = decodeProtoRows(t, d, wireFromJSON(t, md, `{"ts":"2026-11-22T10:11:12.123456789Z"}`))[0]
	assert.Equal(t, time.Date(2026, 11, 22, 10, 11, 12, 123456789, time.UTC).UnixNano(), got["ts"])

	// A required column refuses records where the field is absent (it has presence), not at compile time.
	d, err = NewProtoDecoder(iceberg.NewSchema(0,
		iceberg.NestedField{ID: 1, Name: "inner", Type: &iceberg.StructType{FieldList: []iceberg.NestedField{
			{ID: 2, Name: "name", Type: iceberg.PrimitiveTypes.String, Required: true}}}, Required: true},
		iceberg.NestedField{ID: 3, Name: "opt", Type: iceberg.PrimitiveTypes.Int32, Required: true},
	), md)
	require.NoError(t, err)
	assert.EqualError(t, d.Parse(wireFromJSON(t, md, `{"opt":1}`), RecordMeta{}), `field "inner": required field is missing`)
	assert.EqualError(t, d.Parse(wireFromJSON(t, md, `{"inner":{}}`), RecordMeta{}), `field "opt": required field is missing`)
	require.NoError(t, d.Parse(wireFromJSON(t, md, `{"inner":{},"opt":0}`), RecordMeta{}), "implicit presence: never missing")
}

// TestProtoTruncated cuts valid records at every byte: the decoder must refuse exactly what
// protobuf-go refuses (a cut between fields leaves a valid, shorter record) and never panic.
func TestProtoTruncated(t *testing.T) {
	md := allMsg()
	d := newAllDecoder(t)
	for i, js := range allRecords {
		wire := wireFromJSON(t, md, js)
		for k := range len(wire) {
			cut := wire[:k]
			want, werr := protoGoRow(md, cut)
			err := d.Parse(cut, RecordMeta{})
			if werr != nil {
				require.Error(t, err, "record %d cut at %d: protobuf-go says %v", i, k, werr)
				var de *DecodeError
				require.True(t, errors.As(err, &de), "%T", err)
				continue
			}
			require.NoError(t, err, "record %d cut at %d", i, k)
			rb := array.NewRecordBuilder(memory.NewGoAllocator(), d.ArrowSchema())
			d.Append(rb)
			rec := rb.NewRecordBatch()
			assert.Equal(t, want, arrowRows(rec)[0], "record %d cut at %d", i, k)
			rec.Release()
			rb.Release()
		}
	}
}

func TestProtoMalformed(t *testing.T) {
	md := allMsg()
	badUTF8 := []byte{'a', 0xff}
	cases := []struct {
		name string
		wire []byte
		want string
	}{
		{"wrong wire type", protowire.AppendFixed32(protowire.AppendTag(nil, 2, protowire.Fixed32Type), 1),
			`field "i32": wrong protobuf wire type: 32-bit, expected varint`},
		{"string as varint", tagV(nil, 14, 1), `field "s": wrong protobuf wire type: varint, expected length-delimited`},
		{"message as varint", tagV(nil, 18, 1), `field "inner": wrong protobuf wire type: varint, expected length-delimited`},
		{"map entry as varint", tagV(nil, 22, 1), `field "ms": wrong protobuf wire type`},
		{"list element wire type", cat(tagV(nil, 20, 1)), `field "rs[0]": wrong protobuf wire type`},
		{"nested wire type", tagB(nil, 18, tagV(nil, 1, 1)), `field "inner.name": wrong protobuf wire type`},
		{"timestamp wire type", tagB(nil, 27, tagB(nil, 1, nil)), `field "ts.seconds": wrong protobuf wire type`},
		{"wrapper wire type", tagB(nil, 29, tagB(nil, 1, nil)), `field "w_i32.value": wrong protobuf wire type`},
		{"map key wire type", tagB(nil, 22, tagV(nil, 1, 1)), `field "ms.key": wrong protobuf wire type`},
		{"bad UTF-8", tagB(nil, 14, badUTF8), `field "s": string is not valid UTF-8`},
		{"bad UTF-8 in a list", cat(tagB(nil, 20, []byte("ok")), tagB(nil, 20, badUTF8)), `field "rs[1]": string is not valid UTF-8`},
		{"bad UTF-8 nested", tagB(nil, 21, tagB(nil, 1, badUTF8)), `field "rm[0].name": string is not valid UTF-8`},
		{"bad UTF-8 map key", tagB(nil, 22, tagB(nil, 1, badUTF8)), `field "ms.key": string is not valid UTF-8`},
		{"bad UTF-8 in a wrapper", tagB(nil, 30, tagB(nil, 1, badUTF8)), `field "w_str.value": string is not valid UTF-8`},
		{"bad UTF-8 in a map value path", tagB(nil, 23, cat(tagV(nil, 1, 4), tagB(nil, 2, tagB(nil, 1, badUTF8)))), `field "mi.4.name": string is not valid UTF-8`},
		{"field number 0", tagV(nil, 0, 1), `malformed protobuf: invalid field number`},
		{"field number too large", protowire.AppendVarint(protowire.AppendVarint(nil, uint64(protowire.MaxValidNumber+1)<<3), 1), `malformed protobuf: invalid field number`},
		{"end group alone", protowire.AppendTag(nil, 5, protowire.EndGroupType), `field "u32": wrong protobuf wire type: end-group`},
		{"unknown end group", protowire.AppendTag(nil, 555, protowire.EndGroupType), `malformed protobuf`},
		{"reserved wire type", protowire.AppendVarint(nil, 555<<3|6), `malformed protobuf`},
		{"truncated packed", tagB(nil, 19, []byte{0x80}), `field "ri[0]": malformed protobuf: unexpected end of data`},
		{"truncated length", []byte{0x72, 0x05, 'a'}, `field "s": malformed protobuf: unexpected end of data`},
		{"varint overflow", append([]byte{0x10}, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02), `field "i32": malformed protobuf: variable length integer overflow`},
		{"timestamp out of range", tagB(nil, 27, tagV(nil, 1, uint64(maxTimestampSeconds+1))), `field "ts": timestamp seconds 253402300800 are out of range`},
		{"timestamp negative nanos", tagB(nil, 27, tagV(nil, 2, uint64(math.MaxUint64))), `field "ts": timestamp nanos -1 are out of range`},
		{"duration signs differ", tagB(nil, 28, cat(tagV(nil, 1, 1), tagV(nil, 2, uint64(math.MaxUint64)))), `field "dur": invalid duration: 1s -1ns`},
		{"duration beyond a long", tagB(nil, 28, tagV(nil, 1, 9_300_000_000)), `field "dur": duration of 9300000000s does not fit a long of nanoseconds`},
		{"value without kind", tagB(nil, 39, nil), `field "val": cannot be written as JSON`},
		{"value NaN", tagB(nil, 39, tagF64(nil, 2, math.Float64bits(math.NaN()))), `field "val": cannot be written as JSON`},
		{"struct with bad UTF-8", tagB(nil, 38, tagB(nil, 1, tagB(nil, 1, badUTF8))), `field "st": invalid google.protobuf.Struct`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := newAllDecoder(t)
			good := wireFromJSON(t, md, `{"i32":1}`)
			require.NoError(t, d.Parse(good, RecordMeta{}))
			err := d.Parse(tc.wire, RecordMeta{})
			require.Error(t, err)
			var de *DecodeError
			require.True(t, errors.As(err, &de), "%T", err)
			assert.True(t, strings.HasPrefix(err.Error(), tc.want), "got %q, want prefix %q", err, tc.want)
			// The last good row stays.
			assert.Equal(t, int64(1), d.Cell(1).Int)
			assert.Equal(t, map[string]any{"i32": int64(1)}["i32"], decodeAppendOnly(t, d)["i32"])
		})
	}
}

// decodeAppendOnly appends the decoder's last row and reads it back.
func decodeAppendOnly(t *testing.T, d *ProtoDecoder) map[string]any {
	t.Helper()
	rb := array.NewRecordBuilder(memory.NewGoAllocator(), d.ArrowSchema())
	defer rb.Release()
	d.Append(rb)
	rec := rb.NewRecordBatch()
	defer rec.Release()
	return arrowRows(rec)[0]
}

// TestProtoProto2 covers proto2's explicit presence, required fields, groups and closed enums.
func TestProtoProto2(t *testing.T) {
	grp := newPMsg("Grp").f("g", 1, tInt32)
	m := newPMsg("P2").
		f("req", 1, tInt32, required).
		f("opt", 2, tInt32, func(f *descriptorpb.FieldDescriptorProto) { f.DefaultValue = proto.String("5") }).
		f("s", 3, tString).
		f("grp", 4, tGroup, typeName(".floetest.P2.Grp")).
		f("e", 5, tEnum, typeName(".floetest.E2")).
		f("req_unmapped", 6, tString, required).
		nest(grp)
	enum := &descriptorpb.EnumDescriptorProto{Name: proto.String("E2"), Value: []*descriptorpb.EnumValueDescriptorProto{
		{Name: proto.String("ONE"), Number: proto.Int32(1)}, {Name: proto.String("TWO"), Number: proto.Int32(2)}}}
	fd := buildProtoFile(t, protoFile("floetest/p2.proto", "proto2", nil, []*descriptorpb.EnumDescriptorProto{enum}, m))
	md := fd.Messages().ByName("P2")
	schema, err := ProtoIceberg(md)
	require.NoError(t, err)
	for _, f := range schema.Fields() {
		assert.False(t, f.Required, "%s: proto2 required fields are optional columns", f.Name)
	}
	table := iceberg.NewSchema(0, schema.Fields()[:5]...) // without req_unmapped
	d, err := NewProtoDecoder(table, md)
	require.NoError(t, err)

	groupWire := cat(protowire.AppendTag(nil, 4, protowire.StartGroupType), tagV(nil, 1, 7), protowire.AppendTag(nil, 4, protowire.EndGroupType))
	wire := cat(tagV(nil, 1, 3), tagB(nil, 6, nil), groupWire, tagV(nil, 5, 9))
	want, err := protoGoRow(md, wire)
	require.NoError(t, err)
	got := decodeProtoRows(t, d, wire)[0]
	delete(want, "req_unmapped")
	assert.Equal(t, want, got)
	assert.Equal(t, map[string]any{"req": int64(3), "opt": nil, "s": nil, "grp": map[string]any{"g": int64(7)}, "e": "9"}, got,
		"proto2 optional fields are null when absent (not their declared default)")

	err = d.Parse(tagV(nil, 1, 3), RecordMeta{})
	assert.EqualError(t, err, `field "req_unmapped": required field is missing`, "also when the table lacks the field")
	err = d.Parse(tagB(nil, 6, nil), RecordMeta{})
	assert.EqualError(t, err, `field "req": required field is missing`)
	err = d.Parse(cat(tagV(nil, 1, 3), tagB(nil, 6, nil), tagB(nil, 3, []byte{0xff})), RecordMeta{})
	assert.EqualError(t, err, `field "s": string is not valid UTF-8`, "strings are checked in proto2 too")
	err = d.Parse(cat(tagV(nil, 1, 3), tagB(nil, 6, nil), tagB(nil, 4, nil)), RecordMeta{})
	assert.EqualError(t, err, `field "grp": wrong protobuf wire type: length-delimited, expected group`)
}

func TestProtoMetaAndCells(t *testing.T) {
	md := allMsg()
	table := iceberg.NewSchema(0,
		iceberg.NestedField{ID: 1, Name: "_kafka_topic", Type: iceberg.PrimitiveTypes.String},
		iceberg.NestedField{ID: 2, Name: "_kafka_partition", Type: iceberg.PrimitiveTypes.Int32},
		iceberg.NestedField{ID: 3, Name: "_kafka_offset", Type: iceberg.PrimitiveTypes.Int64},
		iceberg.NestedField{ID: 4, Name: "_kafka_timestamp", Type: iceberg.PrimitiveTypes.TimestampTz},
		iceberg.NestedField{ID: 5, Name: "_kafka_key", Type: iceberg.PrimitiveTypes.Binary},
		iceberg.NestedField{ID: 6, Name: "s", Type: iceberg.PrimitiveTypes.String},
		iceberg.NestedField{ID: 7, Name: "ri", Type: &iceberg.ListType{ElementID: 8, Element: iceberg.PrimitiveTypes.Int32}},
		iceberg.NestedField{ID: 9, Name: "u64", Type: iceberg.DecimalTypeOf(20, 0)},
		iceberg.NestedField{ID: 10, Name: "ts", Type: iceberg.PrimitiveTypes.TimestampTz},
	)
	d, err := NewProtoDecoder(table, md)
	require.NoError(t, err)
	assert.Panics(t, func() { d.Cell(0) })
	ts := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
	payload := wireFromJSON(t, md, `{"s":"hello","ri":[4,5,6],"u64":"12"}`)
	require.NoError(t, d.Parse(payload, RecordMeta{Topic: "t", Partition: 3, Offset: 99, Timestamp: ts, Key: []byte("k")}))
	copy(payload, make([]byte, len(payload))) // the decoder holds its own copy
	assert.Equal(t, "t", string(d.Cell(0).Bytes))
	assert.Equal(t, int64(3), d.Cell(1).Int)
	assert.Equal(t, int64(99), d.Cell(2).Int)
	assert.Equal(t, ts.UnixMicro(), d.Cell(3).Int)
	assert.Equal(t, "k", string(d.Cell(4).Bytes))
	assert.Equal(t, "hello", string(d.Cell(5).Bytes))
	assert.Equal(t, int64(3), d.Cell(6).Int, "a list's cell holds its length")
	assert.Equal(t, "12", d.Cell(7).Dec.BigInt().String())
	assert.True(t, d.Cell(8).Null)

	row := decodeAppendOnly(t, d)
	assert.Equal(t, map[string]any{"_kafka_topic": "t", "_kafka_partition": int64(3), "_kafka_offset": int64(99),
		"_kafka_timestamp": ts.UnixMicro(), "_kafka_key": binVal("k"), "s": "hello",
		"ri": []any{int64(4), int64(5), int64(6)}, "u64": decVal("12"), "ts": nil}, row)

	require.NoError(t, d.Parse(nil, RecordMeta{}))
	assert.True(t, d.Cell(3).Null, "no Kafka timestamp")
	assert.True(t, d.Cell(4).Null, "no Kafka key")
	assert.Equal(t, "", string(d.Cell(5).Bytes))

	// Appending to a builder of another schema is a programming error.
	rb := array.NewRecordBuilder(memory.NewGoAllocator(), newAllDecoder(t).ArrowSchema())
	defer rb.Release()
	assert.Panics(t, func() { d.Append(rb) })
}

func TestProtoDecoderNoAllocs(t *testing.T) {
	d, recs := clickProtoDecoder(t, 64)
	rb := array.NewRecordBuilder(memory.NewGoAllocator(), d.ArrowSchema())
	defer rb.Release()
	meta := RecordMeta{Topic: "clicks", Partition: 1, Timestamp: time.Unix(1_800_000_000, 0)}
	for _, r := range recs {
		require.NoError(t, d.Parse(r, meta))
		d.Append(rb)
	}
	i := 0
	allocs := testing.AllocsPerRun(200, func() {
		if err := d.Parse(recs[i%len(recs)], meta); err != nil {
			panic(err)
		}
		i++
	})
	assert.Zero(t, allocs, "Parse")
	allocs = testing.AllocsPerRun(200, func() {
		_ = d.Parse(recs[i%len(recs)], meta)
		d.Append(rb)
		i++
	})
	assert.Zero(t, allocs, "Parse+Append (builder growth amortized)")

	// A nested record: lists of messages, maps, wrappers, timestamps.
	d = newAllDecoder(t)
	nested := wireFromJSON(t, allMsg(), `{"s":"x","inner":{"name":"a"},"rm":[{"name":"x"},{"n":1}],"ms":{"a":"1","b":"2"},
		"mi":{"1":{"n":2}},"ts":"2026-01-01T00:00:00Z","w_str":"w","ri":[1,2,3],"rcolor":["RED"],"nested":{"deep":{"tags":["t"]}}}`)
	require.NoError(t, d.Parse(nested, RecordMeta{}))
	require.NoError(t, d.Parse(nested, RecordMeta{}))
	allocs = testing.AllocsPerRun(200, func() { _ = d.Parse(nested, RecordMeta{}) })
	assert.Zero(t, allocs, "nested Parse")
}

func TestProtoDecoderErrors(t *testing.T) {
	_, err := NewProtoDecoder(nil, allMsg())
	assert.Error(t, err)
	_, err = NewProtoDecoder(iceberg.NewSchema(0), nil)
	assert.Error(t, err)
	_, err = ProtoIceberg(nil)
	assert.Error(t, err)
	_, err = ProtoMessage(nil, nil)
	assert.Error(t, err)
	fd := buildProtoFile(t, protoFile("floetest/e.proto", "proto3", []string{"google/protobuf/empty.proto"}, nil,
		newPMsg("OnlyEmpty").f("e", 1, tMessage, typeName(".google.protobuf.Empty"))))
	_, err = ProtoIceberg(fd.Messages().Get(0))
	assert.ErrorContains(t, err, "no fields")
}

var _ protoreflect.MessageDescriptor // keep the import for helpers
