package decode

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	// The well-known types' files, for the test descriptors' imports.
	_ "google.golang.org/protobuf/types/known/anypb"
	_ "google.golang.org/protobuf/types/known/durationpb"
	_ "google.golang.org/protobuf/types/known/emptypb"
	_ "google.golang.org/protobuf/types/known/structpb"
	_ "google.golang.org/protobuf/types/known/timestamppb"
	_ "google.golang.org/protobuf/types/known/wrapperspb"
)

// Test descriptors are built from descriptorpb (the .proto parser is an
// optional dependency, see protobuf_source.go); pmsg is a small builder.

type pt = descriptorpb.FieldDescriptorProto_Type

const (
	tBool     = descriptorpb.FieldDescriptorProto_TYPE_BOOL
	tInt32    = descriptorpb.FieldDescriptorProto_TYPE_INT32
	tSint32   = descriptorpb.FieldDescriptorProto_TYPE_SINT32
	tSfixed32 = descriptorpb.FieldDescriptorProto_TYPE_SFIXED32
	tUint32   = descriptorpb.FieldDescriptorProto_TYPE_UINT32
	tFixed32  = descriptorpb.FieldDescriptorProto_TYPE_FIXED32
	tInt64    = descriptorpb.FieldDescriptorProto_TYPE_INT64
	tSint64   = descriptorpb.FieldDescriptorProto_TYPE_SINT64
	tSfixed64 = descriptorpb.FieldDescriptorProto_TYPE_SFIXED64
	tUint64   = descriptorpb.FieldDescriptorProto_TYPE_UINT64
	tFixed64  = descriptorpb.FieldDescriptorProto_TYPE_FIXED64
	tFloat    = descriptorpb.FieldDescriptorProto_TYPE_FLOAT
	tDouble   = descriptorpb.FieldDescriptorProto_TYPE_DOUBLE
	tString   = descriptorpb.FieldDescriptorProto_TYPE_STRING
	tBytes    = descriptorpb.FieldDescriptorProto_TYPE_BYTES
	tEnum     = descriptorpb.FieldDescriptorProto_TYPE_ENUM
	tMessage  = descriptorpb.FieldDescriptorProto_TYPE_MESSAGE
	tGroup    = descriptorpb.FieldDescriptorProto_TYPE_GROUP
)

type pmsg struct{ d *descriptorpb.DescriptorProto }

func newPMsg(name string) *pmsg {
	return &pmsg{&descriptorpb.DescriptorProto{Name: proto.String(name)}}
}

type fmod func(*descriptorpb.FieldDescriptorProto)

func repeated(f *descriptorpb.FieldDescriptorProto) {
	f.Label = descriptorpb.FieldDescriptorProto_LABEL_REPEATED.Enum()
}
func required(f *descriptorpb.FieldDescriptorProto) {
	f.Label = descriptorpb.FieldDescriptorProto_LABEL_REQUIRED.Enum()
}
func optional3(f *descriptorpb.FieldDescriptorProto) { f.Proto3Optional = proto.Bool(true) }
func unpacked(f *descriptorpb.FieldDescriptorProto) {
	f.Options = &descriptorpb.FieldOptions{Packed: proto.Bool(false)}
}
func typeName(n string) fmod {
	return func(f *descriptorpb.FieldDescriptorProto) { f.TypeName = proto.String(n) }
}
func inOneof(i int32) fmod {
	return func(f *descriptorpb.FieldDescriptorProto) { f.OneofIndex = proto.Int32(i) }
}

func (m *pmsg) f(name string, num int32, typ pt, mods ...fmod) *pmsg {
	f := &descriptorpb.FieldDescriptorProto{
		Name: proto.String(name), Number: proto.Int32(num), Type: typ.Enum(),
		Label: descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(),
	}
	for _, mod := range mods {
		mod(f)
	}
	m.d.Field = append(m.d.Field, f)
	return m
}

func (m *pmsg) oneof(name string) int32 {
	m.d.OneofDecl = append(m.d.OneofDecl, &descriptorpb.OneofDescriptorProto{Name: proto.String(name)})
	return int32(len(m.d.OneofDecl) - 1)
}

func (m *pmsg) nest(sub ...*pmsg) *pmsg {
	for _, s := range sub {
		m.d.NestedType = append(m.d.NestedType, s.build())
	}
	return m
}

// mapF adds map<k, v> name = num; vName is v's type name for message and enum values.
func (m *pmsg) mapF(name string, num int32, k, v pt, vName string) *pmsg {
	entry := string(bytes.ToUpper([]byte(name[:1]))) + name[1:] + "Entry"
	e := newPMsg(entry).f("key", 1, k)
	if vName != "" {
		e.f("value", 2, v, typeName(vName))
	} else {
		e.f("value", 2, v)
	}
	e.d.Options = &descriptorpb.MessageOptions{MapEntry: proto.Bool(true)}
	m.d.NestedType = append(m.d.NestedType, e.d)
	return m.f(name, num, tMessage, repeated, typeName(entry))
}

// build adds the synthetic oneofs of proto3 optional fields.
func (m *pmsg) build() *descriptorpb.DescriptorProto {
	for _, f := range m.d.Field {
		if f.GetProto3Optional() && f.OneofIndex == nil {
			f.OneofIndex = proto.Int32(m.oneof("_" + f.GetName()))
		}
	}
	return m.d
}

// buildProtoFile makes a file descriptor; deps are resolved from the global registry (the
// well-known types) and from files.
func buildProtoFile(t testing.TB, fdp *descriptorpb.FileDescriptorProto, files ...protoreflect.FileDescriptor) protoreflect.FileDescriptor {
	t.Helper()
	reg := new(protoregistry.Files)
	for _, name := range fdp.Dependency {
		fd, err := protoregistry.GlobalFiles.FindFileByPath(name)
		if err == nil {
			require.NoError(t, reg.RegisterFile(fd))
		}
	}
	for _, f := range files {
		require.NoError(t, reg.RegisterFile(f))
	}
	fd, err := protodesc.NewFile(fdp, reg)
	require.NoError(t, err)
	return fd
}

func protoFile(name, syntax string, deps []string, enums []*descriptorpb.EnumDescriptorProto, msgs ...*pmsg) *descriptorpb.FileDescriptorProto {
	fdp := &descriptorpb.FileDescriptorProto{
		Name: proto.String(name), Package: proto.String("floetest"), Syntax: proto.String(syntax),
		Dependency: deps, EnumType: enums,
	}
	for _, m := range msgs {
		fdp.MessageType = append(fdp.MessageType, m.build())
	}
	return fdp
}

func enumP(name string, values ...string) *descriptorpb.EnumDescriptorProto {
	e := &descriptorpb.EnumDescriptorProto{Name: proto.String(name)}
	for i, v := range values {
		e.Value = append(e.Value, &descriptorpb.EnumValueDescriptorProto{Name: proto.String(v), Number: proto.Int32(int32(i))})
	}
	return e
}

var wktDeps = []string{
	"google/protobuf/timestamp.proto", "google/protobuf/duration.proto", "google/protobuf/wrappers.proto",
	"google/protobuf/struct.proto", "google/protobuf/any.proto", "google/protobuf/empty.proto",
}

// allProto is a proto3 file whose message All has a field of every kind the decoder handles.
var allProto = sync.OnceValue(func() *descriptorpb.FileDescriptorProto {
	inner := newPMsg("Inner").f("name", 1, tString).f("n", 2, tInt32)
	deep := newPMsg("Deep").f("x", 1, tInt32).f("tags", 2, tString, repeated)
	nested := newPMsg("Nested").f("deep", 1, tMessage, typeName(".floetest.All.Nested.Deep")).f("k", 2, tSint64).nest(deep)
	all := newPMsg("All").
		f("b", 1, tBool).f("i32", 2, tInt32).f("s32", 3, tSint32).f("sf32", 4, tSfixed32).
		f("u32", 5, tUint32).f("f32", 6, tFixed32).f("i64", 7, tInt64).f("s64", 8, tSint64).
		f("sf64", 9, tSfixed64).f("u64", 10, tUint64).f("f64", 11, tFixed64).f("fl", 12, tFloat).
		f("db", 13, tDouble).f("s", 14, tString).f("by", 15, tBytes).
		f("color", 16, tEnum, typeName(".floetest.Color")).
		f("opt", 17, tInt32, optional3).
		f("inner", 18, tMessage, typeName(".floetest.Inner")).
		f("ri", 19, tInt32, repeated).
		f("rs", 20, tString, repeated).
		f("rm", 21, tMessage, repeated, typeName(".floetest.Inner")).
		mapF("ms", 22, tString, tInt64, "").
		mapF("mi", 23, tInt32, tMessage, ".floetest.Inner")
	choice := all.oneof("choice")
	all.f("c_str", 24, tString, inOneof(choice)).
		f("c_msg", 25, tMessage, typeName(".floetest.Inner"), inOneof(choice)).
		f("c_int", 26, tInt64, inOneof(choice)).
		f("ts", 27, tMessage, typeName(".google.protobuf.Timestamp")).
		f("dur", 28, tMessage, typeName(".google.protobuf.Duration")).
		f("w_i32", 29, tMessage, typeName(".google.protobuf.Int32Value")).
		f("w_str", 30, tMessage, typeName(".google.protobuf.StringValue")).
		f("w_u64", 31, tMessage, typeName(".google.protobuf.UInt64Value")).
		f("w_b", 32, tMessage, typeName(".google.protobuf.BoolValue")).
		f("w_d", 33, tMessage, typeName(".google.protobuf.DoubleValue")).
		f("w_by", 34, tMessage, typeName(".google.protobuf.BytesValue")).
		f("w_f", 35, tMessage, typeName(".google.protobuf.FloatValue")).
		f("w_i64", 36, tMessage, typeName(".google.protobuf.Int64Value")).
		f("w_u32", 37, tMessage, typeName(".google.protobuf.UInt32Value")).
		f("st", 38, tMessage, typeName(".google.protobuf.Struct")).
		f("val", 39, tMessage, typeName(".google.protobuf.Value")).
		f("lv", 40, tMessage, typeName(".google.protobuf.ListValue")).
		f("any", 41, tMessage, typeName(".google.protobuf.Any")).
		f("empty", 42, tMessage, typeName(".google.protobuf.Empty")).
		f("rcolor", 43, tEnum, repeated, typeName(".floetest.Color")).
		f("rts", 44, tMessage, repeated, typeName(".google.protobuf.Timestamp")).
		mapF("mb", 45, tBool, tString, "").
		mapF("mu", 46, tUint64, tDouble, "").
		f("rd", 47, tDouble, repeated, unpacked).
		f("nested", 48, tMessage, typeName(".floetest.All.Nested")).
		mapF("mw", 49, tString, tMessage, ".google.protobuf.Int32Value").
		f("ru64", 50, tFixed64, repeated).
		f("rw", 51, tMessage, repeated, typeName(".google.protobuf.StringValue")).
		f("big", 1000, tInt32). // beyond the dense field table
		f("opt_s", 52, tString, optional3).
		nest(nested)
	second := newPMsg("Second").f("id", 1, tString)
	return protoFile("floetest/all.proto", "proto3", wktDeps,
		[]*descriptorpb.EnumDescriptorProto{enumP("Color", "COLOR_UNSPECIFIED", "RED", "GREEN")},
		inner, all, second)
})

var allFile = sync.OnceValue(func() protoreflect.FileDescriptor {
	return buildProtoFile(panicTB{}, allProto())
})

// panicTB lets sync.OnceValue builders use require outside a test.
type panicTB struct{ testing.TB }

func (panicTB) Helper() {}
func (panicTB) Errorf(format string, args ...any) {
	panic(fmt.Sprintf(format, args...))
}
func (panicTB) FailNow() {}

func allMsg() protoreflect.MessageDescriptor { return allFile().Messages().ByName("All") }

// protoTypes resolves Any type URLs for protojson in tests.
func protoTypes(fd protoreflect.FileDescriptor) *dynamicpb.Types {
	files := new(protoregistry.Files)
	_ = files.RegisterFile(fd)
	return dynamicpb.NewTypes(files)
}

// wireFromJSON builds a message of md from protojson text and marshals it.
func wireFromJSON(t testing.TB, md protoreflect.MessageDescriptor, js string) []byte {
	t.Helper()
	m := dynamicpb.NewMessage(md)
	require.NoError(t, protojson.UnmarshalOptions{Resolver: protoTypes(md.ParentFile())}.Unmarshal([]byte(js), m), js)
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	require.NoError(t, err)
	return b
}

// Value forms shared by the expectations (from protobuf-go's decoding) and
// the results (read back from Arrow), so that they compare with require.Equal.
type (
	fbits  uint64 // a float or double, by its float64 bits (NaNs made canonical)
	binVal string // binary
	decVal string // decimal, as text
)

func fbitsOf(f float64) fbits {
	if math.IsNaN(f) {
		return fbits(math.Float64bits(math.NaN()))
	}
	return fbits(math.Float64bits(f))
}

// expectRow is what the decoder must produce for m, with the table ProtoIceberg makes:
// protobuf-go's reading of the record, mapped as protobuf_schema.go documents.
func expectRow(m protoreflect.Message) map[string]any {
	out := map[string]any{}
	fields := m.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if isEmptyMessage(fd) {
			continue
		}
		out[string(fd.Name())] = expectField(m, fd)
	}
	return out
}

func isEmptyMessage(fd protoreflect.FieldDescriptor) bool {
	if fd.IsMap() {
		fd = fd.MapValue()
	}
	return fd.Message() != nil && wktOf(fd.Message()) == wktNone && fd.Message().Fields().Len() == 0
}

func expectField(m protoreflect.Message, fd protoreflect.FieldDescriptor) any {
	switch {
	case fd.IsMap():
		out := map[string]any{}
		m.Get(fd).Map().Range(func(k protoreflect.MapKey, v protoreflect.Value) bool {
			out[fmt.Sprint(expectValue(fd.MapKey(), k.Value()))] = expectValue(fd.MapValue(), v)
			return true
		})
		return out
	case fd.IsList():
		out := []any{}
		l := m.Get(fd).List()
		for i := range l.Len() {
			out = append(out, expectValue(fd, l.Get(i)))
		}
		return out
	}
	if fd.HasPresence() && !m.Has(fd) {
		return nil
	}
	return expectValue(fd, m.Get(fd))
}

func expectValue(fd protoreflect.FieldDescriptor, v protoreflect.Value) any {
	switch fd.Kind() {
	case protoreflect.BoolKind:
		return v.Bool()
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind,
		protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return v.Int()
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return int64(v.Uint())
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return decVal(strconv.FormatUint(v.Uint(), 10))
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		return fbitsOf(v.Float())
	case protoreflect.StringKind:
		return v.String()
	case protoreflect.BytesKind:
		return binVal(v.Bytes())
	case protoreflect.EnumKind:
		if ev := fd.Enum().Values().ByNumber(v.Enum()); ev != nil {
			return string(ev.Name())
		}
		return strconv.Itoa(int(v.Enum()))
	}
	msg := v.Message()
	md := msg.Descriptor()
	get := func(n protoreflect.FieldNumber) protoreflect.Value { return msg.Get(md.Fields().ByNumber(n)) }
	switch wktOf(md) {
	case wktTimestamp:
		return get(1).Int()*1e6 + get(2).Int()/1e3
	case wktDuration:
		return get(1).Int()*1e9 + get(2).Int()
	case wktWrapper:
		return expectValue(md.Fields().ByNumber(1), get(1))
	case wktJSON:
		b, err := protojson.Marshal(msg.Interface())
		if err != nil {
			return "error: " + err.Error()
		}
		var c bytes.Buffer
		if err := json.Compact(&c, b); err != nil {
			panic(err)
		}
		return c.String()
	}
	return expectRow(msg)
}

// arrowValue reads value i of a back into the forms expectValue makes.
func arrowValue(a arrow.Array, i int) any {
	if a.IsNull(i) {
		return nil
	}
	switch a := a.(type) {
	case *array.Boolean:
		return a.Value(i)
	case *array.Int32:
		return int64(a.Value(i))
	case *array.Int64:
		return a.Value(i)
	case *array.Float32:
		return fbitsOf(float64(a.Value(i)))
	case *array.Float64:
		return fbitsOf(a.Value(i))
	case *array.Decimal128:
		return decVal(a.Value(i).BigInt().String())
	case *array.Timestamp:
		return int64(a.Value(i))
	case *array.String:
		return a.Value(i)
	case *array.Binary:
		return binVal(a.Value(i))
	case *array.Struct:
		out := map[string]any{}
		st := a.DataType().(*arrow.StructType)
		for k, f := range st.Fields() {
			out[f.Name] = arrowValue(a.Field(k), i)
		}
		return out
	case *array.Map:
		out := map[string]any{}
		start, end := a.ValueOffsets(i)
		for j := int(start); j < int(end); j++ {
			k := fmt.Sprint(arrowValue(a.Keys(), j))
			if _, dup := out[k]; dup {
				out["DUPLICATE KEY "+k] = true
			}
			out[k] = arrowValue(a.Items(), j)
		}
		return out
	case *array.List:
		out := []any{}
		start, end := a.ValueOffsets(i)
		for j := int(start); j < int(end); j++ {
			out = append(out, arrowValue(a.ListValues(), j))
		}
		return out
	}
	panic(fmt.Sprintf("arrowValue: %T", a))
}

// arrowRows reads all rows of rec.
func arrowRows(rec arrow.RecordBatch) []map[string]any {
	rows := make([]map[string]any, rec.NumRows())
	for i := range rows {
		rows[i] = map[string]any{}
		for k, f := range rec.Schema().Fields() {
			rows[i][f.Name] = arrowValue(rec.Column(k), i)
		}
	}
	return rows
}

// decodeProtoRows parses and appends each record, then reads the rows back; every record must parse.
func decodeProtoRows(t testing.TB, d *ProtoDecoder, recs ...[]byte) []map[string]any {
	t.Helper()
	rb := array.NewRecordBuilder(memory.NewGoAllocator(), d.ArrowSchema())
	defer rb.Release()
	for _, r := range recs {
		require.NoError(t, d.Parse(r, RecordMeta{}))
		d.Append(rb)
	}
	rec := rb.NewRecordBatch()
	defer rec.Release()
	for i := range int(rec.NumCols()) {
		require.NoError(t, array.ValidateFull(rec.Column(i)))
	}
	return arrowRows(rec)
}

// protoGoRow decodes wire with protobuf-go and maps it like the decoder must.
func protoGoRow(md protoreflect.MessageDescriptor, wire []byte) (map[string]any, error) {
	m := dynamicpb.NewMessage(md)
	if err := proto.Unmarshal(wire, m); err != nil {
		return nil, err
	}
	return expectRow(m), nil
}

func newAllDecoder(t testing.TB) *ProtoDecoder {
	t.Helper()
	schema, err := ProtoIceberg(allMsg())
	require.NoError(t, err)
	d, err := NewProtoDecoder(schema, allMsg())
	require.NoError(t, err)
	return d
}
