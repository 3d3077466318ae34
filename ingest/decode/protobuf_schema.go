package decode

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/apache/iceberg-go"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Protobuf records in the Confluent wire format
//
// A record's value is: magic byte 0, the 4-byte big-endian schema id (both
// handled by package ingest/registry), then the message-index list
// (ReadMessageIndexes), then the protobuf binary of one message of the
// schema's .proto file (ProtoMessage picks which; ProtoDecoder decodes it).
//
// # How a message maps to an Iceberg schema (ProtoIceberg)
//
// Every field becomes an optional column named as in the .proto file (not its
// JSON name), in declaration order: proto3 has no required fields, and a
// column that is optional today can still be dropped by the producer
// tomorrow. Proto2 `required` fields are optional columns too (the decoder
// still refuses a record that lacks one, as protobuf itself does).
//
//	bool                         boolean
//	int32, sint32, sfixed32      int
//	uint32, fixed32              long
//	int64, sint64, sfixed64      long
//	uint64, fixed64              decimal(20, 0): exact for every value (a long would
//	                             refuse half the range, a double would round)
//	float, double                float, double
//	string                       string (must be valid UTF-8, in proto2 files too)
//	bytes                        binary
//	enum                         string: the value's name; a number the enum does not
//	                             declare (proto3 enums are open) is written as its
//	                             decimal text, e.g. "7", which no name can be mistaken
//	                             for (names never start with a digit or a sign)
//	message                      struct of its fields (a recursive message is refused;
//	                             a message with no fields, e.g. google.protobuf.Empty,
//	                             is left out, as Iceberg has no empty struct)
//	repeated T                   list<T>, elements required (protobuf has no null elements)
//	map<K, V>                    map<K, V>, values required (an entry without a value
//	                             holds V's default, as in protobuf)
//	oneof                        each member its own optional column; at most one is set
//	group (proto2)               as a message
//
// Well-known types:
//
//	google.protobuf.Timestamp    timestamptz (microseconds; nanoseconds beyond the
//	                             microsecond are truncated, as the column's unit
//	                             defines). A table may also declare timestamptz_ns,
//	                             which keeps them.
//	google.protobuf.Duration     long: the duration in NANOseconds, exact; a duration
//	                             beyond ±292 years is refused. (Microseconds would
//	                             have to truncate or refuse the nanosecond durations
//	                             Go and Java producers commonly write.)
//	google.protobuf.*Value       wrappers (DoubleValue, FloatValue, Int64Value,
//	                             UInt64Value, Int32Value, UInt32Value, BoolValue,
//	                             StringValue, BytesValue): an optional column of the
//	                             wrapped type, null when the wrapper is absent
//	google.protobuf.Struct,      string holding the canonical JSON text (protojson's
//	  Value, ListValue           mapping, compact, object keys sorted); a Value with
//	                             no kind set or a non-finite number is refused, as
//	                             protojson refuses it
//	google.protobuf.Any          struct<type_url: string, value: binary>: its plain
//	                             message form; the packed message's type is not in the
//	                             schema, so it cannot be expanded
//
// # Field ids
//
// A top-level column's id is its field number (unique within a message).
// Field numbers repeat at every nesting level and Iceberg ids must be unique
// across the schema, so nested ids (struct fields, list elements, map keys
// and values) count up from the largest top-level field number + 1, the way
// Iceberg assigns fresh ids: level by level, a struct's fields (a map's key
// and value) first, then what is inside each of them in order. Catalogs
// reassign ids when a table is created anyway; schema evolution matches
// columns by name, never by id.

// maxMessageIndexes bounds the message-index list: it is the nesting depth of
// the message in its .proto file.
const maxMessageIndexes = 64

// ReadMessageIndexes parses Confluent's message-index list at the start of b,
// returning the indexes and the rest. The list is a zigzag varint count, then
// as many zigzag varint indexes; the count 0 alone (a single 0 byte) means
// [0], the file's first message. Errors are *DecodeError: the record is
// malformed. It allocates the returned slice; AppendMessageIndexes does not.
func ReadMessageIndexes(b []byte) (indexes []int, rest []byte, err error) {
	return AppendMessageIndexes(nil, b)
}

// AppendMessageIndexes is ReadMessageIndexes appending the indexes to dst,
// so that a caller reusing dst[:0] allocates nothing per record.
func AppendMessageIndexes(dst []int, b []byte) (indexes []int, rest []byte, err error) {
	n, m := binary.Varint(b)
	if m <= 0 {
		return dst, b, &DecodeError{Reason: "malformed Confluent protobuf framing: the message-index list is truncated or its count is not a varint"}
	}
	b = b[m:]
	if n == 0 {
		return append(dst, 0), b, nil
	}
	if n < 0 || n > maxMessageIndexes || n > int64(len(b)) {
		return dst, b, &DecodeError{Reason: "malformed Confluent protobuf framing: message-index list of " +
			strconv.FormatInt(n, 10) + " entries"}
	}
	for range n {
		v, m := binary.Varint(b)
		if m <= 0 {
			return dst, b, &DecodeError{Reason: "malformed Confluent protobuf framing: the message-index list is truncated"}
		}
		if v < 0 || v > math.MaxInt32 {
			return dst, b, &DecodeError{Reason: "malformed Confluent protobuf framing: message index " +
				strconv.FormatInt(v, 10) + " is out of range"}
		}
		dst = append(dst, int(v))
		b = b[m:]
	}
	return dst, b, nil
}

// ProtoMessage resolves the message a record's index list names in fd: the
// first index picks among the file's top-level messages, each further one
// among the nested messages of the one before, in declaration order. As in
// Confluent's reference implementation (the schema registry's Java
// ProtobufSchema.toMessageIndexes), the synthetic map-entry messages that
// descriptors hold for map fields are not counted. An empty list means [0].
func ProtoMessage(fd protoreflect.FileDescriptor, indexes []int) (protoreflect.MessageDescriptor, error) {
	if fd == nil {
		return nil, errors.New("ingest: nil protobuf file descriptor")
	}
	msgs := fd.Messages()
	if len(indexes) == 0 {
		indexes = []int{0}
	}
	var md protoreflect.MessageDescriptor
	scope := "file " + strconv.Quote(fd.Path())
	for _, i := range indexes {
		md = nil
		n := 0
		for k := range msgs.Len() {
			if m := msgs.Get(k); !m.IsMapEntry() {
				if n == i {
					md = m
				}
				n++
			}
		}
		if md == nil {
			return nil, fmt.Errorf("ingest: protobuf message index %v: %s has %d messages, no message #%d",
				indexes, scope, n, i)
		}
		msgs = md.Messages()
		scope = "message " + string(md.FullName())
	}
	return md, nil
}

// protoWKT classifies the well-known types that do not map as plain messages.
type protoWKT uint8

const (
	wktNone      protoWKT = iota
	wktTimestamp          // google.protobuf.Timestamp
	wktDuration           // google.protobuf.Duration
	wktWrapper            // google.protobuf.*Value wrappers: field 1 "value"
	wktJSON               // google.protobuf.Struct, Value, ListValue
)

func wktOf(md protoreflect.MessageDescriptor) protoWKT {
	singular := func(num protoreflect.FieldNumber, kinds ...protoreflect.Kind) bool {
		f := md.Fields().ByNumber(num)
		if f == nil || f.Cardinality() == protoreflect.Repeated {
			return false
		}
		for _, k := range kinds {
			if f.Kind() == k {
				return true
			}
		}
		return false
	}
	switch md.FullName() {
	case "google.protobuf.Timestamp", "google.protobuf.Duration":
		if !singular(1, protoreflect.Int64Kind) || !singular(2, protoreflect.Int32Kind) {
			return wktNone
		}
		if md.FullName() == "google.protobuf.Timestamp" {
			return wktTimestamp
		}
		return wktDuration
	case "google.protobuf.DoubleValue":
		return wrapperIf(singular(1, protoreflect.DoubleKind))
	case "google.protobuf.FloatValue":
		return wrapperIf(singular(1, protoreflect.FloatKind))
	case "google.protobuf.Int64Value":
		return wrapperIf(singular(1, protoreflect.Int64Kind))
	case "google.protobuf.UInt64Value":
		return wrapperIf(singular(1, protoreflect.Uint64Kind))
	case "google.protobuf.Int32Value":
		return wrapperIf(singular(1, protoreflect.Int32Kind))
	case "google.protobuf.UInt32Value":
		return wrapperIf(singular(1, protoreflect.Uint32Kind))
	case "google.protobuf.BoolValue":
		return wrapperIf(singular(1, protoreflect.BoolKind))
	case "google.protobuf.StringValue":
		return wrapperIf(singular(1, protoreflect.StringKind))
	case "google.protobuf.BytesValue":
		return wrapperIf(singular(1, protoreflect.BytesKind))
	case "google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue":
		return wktJSON
	}
	return wktNone
}

func wrapperIf(ok bool) protoWKT {
	if ok {
		return wktWrapper
	}
	return wktNone
}

// protoScalarType is the Iceberg type ProtoIceberg gives a non-message kind.
func protoScalarType(k protoreflect.Kind) iceberg.Type {
	switch k {
	case protoreflect.BoolKind:
		return iceberg.PrimitiveTypes.Bool
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return iceberg.PrimitiveTypes.Int32
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind,
		protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return iceberg.PrimitiveTypes.Int64
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return iceberg.DecimalTypeOf(20, 0)
	case protoreflect.FloatKind:
		return iceberg.PrimitiveTypes.Float32
	case protoreflect.DoubleKind:
		return iceberg.PrimitiveTypes.Float64
	case protoreflect.StringKind, protoreflect.EnumKind:
		return iceberg.PrimitiveTypes.String
	case protoreflect.BytesKind:
		return iceberg.PrimitiveTypes.Binary
	}
	return nil
}

// ProtoIceberg maps message md to an Iceberg schema (see the mapping above).
func ProtoIceberg(md protoreflect.MessageDescriptor) (*iceberg.Schema, error) {
	if md == nil {
		return nil, errors.New("ingest: nil protobuf message descriptor")
	}
	m := protoMapper{stack: []protoreflect.FullName{md.FullName()}}
	var fields []iceberg.NestedField
	maxNum := 0
	for i := range md.Fields().Len() {
		fd := md.Fields().Get(i)
		t, err := m.fieldType(fd, string(fd.Name()))
		if err != nil {
			return nil, err
		}
		if t == nil {
			continue
		}
		fields = append(fields, iceberg.NestedField{ID: int(fd.Number()), Name: string(fd.Name()), Type: t})
		maxNum = max(maxNum, int(fd.Number()))
	}
	if len(fields) == 0 {
		return nil, fmt.Errorf("ingest: protobuf message %s has no fields to make columns of", md.FullName())
	}
	next := maxNum + 1
	for i := range fields {
		fields[i].Type = assignProtoIDs(fields[i].Type, &next)
	}
	return iceberg.NewSchema(0, fields...), nil
}

type protoMapper struct {
	stack []protoreflect.FullName // messages being expanded, to refuse recursion
}

// fieldType maps fd, or returns nil when the field is left out (a message with no fields).
func (m *protoMapper) fieldType(fd protoreflect.FieldDescriptor, path string) (iceberg.Type, error) {
	switch {
	case fd.IsMap():
		k := protoScalarType(fd.MapKey().Kind())
		v, err := m.valueType(fd.MapValue(), path+".value")
		if err != nil || v == nil {
			return nil, err
		}
		return &iceberg.MapType{KeyType: k, ValueType: v, ValueRequired: true}, nil
	case fd.IsList():
		e, err := m.valueType(fd, path+"[]")
		if err != nil || e == nil {
			return nil, err
		}
		return &iceberg.ListType{Element: e, ElementRequired: true}, nil
	}
	return m.valueType(fd, path)
}

// valueType maps one value of fd, ignoring its cardinality.
func (m *protoMapper) valueType(fd protoreflect.FieldDescriptor, path string) (iceberg.Type, error) {
	if k := fd.Kind(); k != protoreflect.MessageKind && k != protoreflect.GroupKind {
		return protoScalarType(k), nil
	}
	md := fd.Message()
	switch wktOf(md) {
	case wktTimestamp:
		return iceberg.PrimitiveTypes.TimestampTz, nil
	case wktDuration:
		return iceberg.PrimitiveTypes.Int64, nil
	case wktWrapper:
		return protoScalarType(md.Fields().ByNumber(1).Kind()), nil
	case wktJSON:
		return iceberg.PrimitiveTypes.String, nil
	}
	for _, n := range m.stack {
		if n == md.FullName() {
			return nil, fmt.Errorf("ingest: protobuf field %q: message %s contains itself, which an Iceberg schema cannot represent",
				path, md.FullName())
		}
	}
	m.stack = append(m.stack, md.FullName())
	defer func() { m.stack = m.stack[:len(m.stack)-1] }()
	st := &iceberg.StructType{}
	for i := range md.Fields().Len() {
		f := md.Fields().Get(i)
		t, err := m.fieldType(f, path+"."+string(f.Name()))
		if err != nil {
			return nil, err
		}
		if t != nil {
			st.FieldList = append(st.FieldList, iceberg.NestedField{Name: string(f.Name()), Type: t})
		}
	}
	if len(st.FieldList) == 0 {
		return nil, nil
	}
	return st, nil
}

// assignProtoIDs gives the ids inside t, level by level, counting from *next.
func assignProtoIDs(t iceberg.Type, next *int) iceberg.Type {
	switch t := t.(type) {
	case *iceberg.StructType:
		for i := range t.FieldList {
			t.FieldList[i].ID = *next
			*next++
		}
		for i := range t.FieldList {
			t.FieldList[i].Type = assignProtoIDs(t.FieldList[i].Type, next)
		}
	case *iceberg.ListType:
		t.ElementID = *next
		*next++
		t.Element = assignProtoIDs(t.Element, next)
	case *iceberg.MapType:
		t.KeyID, t.ValueID = *next, *next+1
		*next += 2
		t.ValueType = assignProtoIDs(t.ValueType, next)
	}
	return t
}
