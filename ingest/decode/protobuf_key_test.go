package decode

import (
	"testing"

	"github.com/apache/iceberg-go"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"
)

const protoKeySource = `syntax = "proto3"; package floe.test;
import "google/protobuf/timestamp.proto";
import "google/protobuf/wrappers.proto";
enum Color { RED = 0; GREEN = 1; }
message Inner { int64 x = 1; }
message Key {
  string id = 1;
  int64 n = 2;
  uint64 u = 3;
  bool flag = 4;
  bytes raw = 5;
  Color color = 6;
  google.protobuf.Timestamp at = 7;
  google.protobuf.StringValue region = 8;
  optional int32 opt = 9;
  double d = 10;
  repeated string tags = 11;
  Inner inner = 12;
}`

// TestProtoKeyJSON: a protobuf Kafka key becomes the JSON object a keyed
// pipeline's key reader reads, with the values the ProtoDecoder reads from
// the same message: a JSONDecoder of the key columns decodes the object
// into the cells the ProtoDecoder makes of the message.
func TestProtoKeyJSON(t *testing.T) {
	fd, err := ProtoFileFromSource("key.proto", protoKeySource, nil)
	require.NoError(t, err)
	md := fd.Messages().ByName("Key")
	set := func(m *dynamicpb.Message, name string, v protoreflect.Value) {
		m.Set(md.Fields().ByName(protoreflect.Name(name)), v)
	}
	full := dynamicpb.NewMessage(md)
	set(full, "id", protoreflect.ValueOfString("k\"1\n"))
	set(full, "n", protoreflect.ValueOfInt64(-1<<62))
	set(full, "u", protoreflect.ValueOfUint64(1<<63+5))
	set(full, "flag", protoreflect.ValueOfBool(true))
	set(full, "raw", protoreflect.ValueOfBytes([]byte{0, 1, 0xff}))
	set(full, "color", protoreflect.ValueOfEnum(1))
	at := dynamicpb.NewMessage(md.Fields().ByName("at").Message())
	at.Set(at.Descriptor().Fields().ByNumber(1), protoreflect.ValueOfInt64(1700000000))
	at.Set(at.Descriptor().Fields().ByNumber(2), protoreflect.ValueOfInt32(123456000))
	set(full, "at", protoreflect.ValueOfMessage(at))
	region := dynamicpb.NewMessage(md.Fields().ByName("region").Message())
	region.Set(region.Descriptor().Fields().ByNumber(1), protoreflect.ValueOfString("eu"))
	set(full, "region", protoreflect.ValueOfMessage(region))
	set(full, "opt", protoreflect.ValueOfInt32(7))
	set(full, "d", protoreflect.ValueOfFloat64(2.5))

	// The key columns: every scalar field (the table's Iceberg form of
	// them, as ProtoIceberg gives it).
	all, err := ProtoIceberg(md)
	require.NoError(t, err)
	var cols []iceberg.NestedField
	for _, f := range all.Fields() {
		switch f.Name {
		case "tags", "inner":
		default:
			cols = append(cols, f)
		}
	}
	keys := iceberg.NewSchema(0, cols...)
	jd, err := NewJSONDecoder(keys)
	require.NoError(t, err)
	pd, err := NewProtoDecoder(keys, md)
	require.NoError(t, err)

	for _, m := range []*dynamicpb.Message{full, dynamicpb.NewMessage(md)} {
		wire, err := proto.Marshal(m)
		require.NoError(t, err)
		js, err := AppendProtoKeyJSON(nil, md, wire)
		require.NoError(t, err)
		require.NoError(t, jd.Parse(js, RecordMeta{}), "%s", js)
		require.NoError(t, pd.Parse(wire, RecordMeta{}))
		for i := range cols {
			want, got := pd.Cell(i), jd.Cell(i)
			require.Equal(t, string(want.Bytes), string(got.Bytes), "column %s of %s", cols[i].Name, js)
			want.Bytes, got.Bytes = nil, nil
			require.Equal(t, want, got, "column %s of %s", cols[i].Name, js)
		}
	}
	wire, err := proto.Marshal(dynamicpb.NewMessage(md))
	require.NoError(t, err)
	js, err := AppendProtoKeyJSON(nil, md, wire)
	require.NoError(t, err)
	require.JSONEq(t, `{"id":"","n":0,"u":0,"flag":false,"raw":"","color":"RED","at":null,"region":null,"opt":null,"d":0}`, string(js),
		"absent fields: zero values, null with presence")

	// Refused: malformed wire data, invalid UTF-8 (proto3 protobuf-go
	// refuses it too), a float JSON cannot hold.
	for _, bad := range [][]byte{
		{0xff},
		protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), []byte{0xff, 0xfe}),
		protowire.AppendFixed64(protowire.AppendTag(nil, 10, protowire.Fixed64Type), 0x7ff8000000000001),
	} {
		_, err := AppendProtoKeyJSON(nil, md, bad)
		var de *DecodeError
		require.ErrorAs(t, err, &de, "%x", bad)
		require.NotEmpty(t, de.Reason)
	}
}
