package decode

import (
	"encoding/base64"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"
)

// AppendProtoKeyJSON appends to dst a Kafka key that is a protobuf message
// of type md (the binary after Confluent's message-index list) as the JSON
// object of its fields, for a keyed pipeline's JSON key reader: a tombstone
// names the key it deletes with it. Fields are named as in the .proto
// file, as the ProtoDecoder matches columns, and hold the values the
// ProtoDecoder reads from them, in the spellings the JSONDecoder reads:
// integers as JSON numbers (64-bit ones too), bytes in base64, an enum as
// its value's name, a Timestamp in RFC 3339 and a wrapper as its value.
// A field with explicit presence that is absent is null; one without is
// its zero value, as protobuf defines it. Repeated, map and other message
// fields (no key column has their types) are left out.
//
// Refused with a *DecodeError: malformed wire data, a string that is not
// UTF-8, a float that is not finite, a Timestamp out of its range.
func AppendProtoKeyJSON(dst []byte, md protoreflect.MessageDescriptor, payload []byte) ([]byte, error) {
	m := dynamicpb.NewMessage(md)
	if err := (proto.UnmarshalOptions{}).Unmarshal(payload, m); err != nil {
		return dst, &DecodeError{Reason: "malformed protobuf key: " + err.Error()}
	}
	dst = append(dst, '{')
	first := true
	fields := md.Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if fd.IsList() || fd.IsMap() {
			continue
		}
		if k := fd.Kind(); k == protoreflect.MessageKind || k == protoreflect.GroupKind {
			if w := wktOf(fd.Message()); w != wktTimestamp && w != wktWrapper {
				continue
			}
		}
		var err error
		start := len(dst)
		if !first {
			dst = append(dst, ',')
		}
		dst = appendJSONString(dst, []byte(fd.Name()))
		dst = append(dst, ':')
		var ok bool
		if fd.HasPresence() && !m.Has(fd) {
			dst, ok = append(dst, "null"...), true
		} else {
			dst, ok, err = appendProtoKeyValue(dst, fd, m.Get(fd))
		}
		if err != nil {
			return dst, withParent(err, string(fd.Name()))
		}
		if !ok {
			dst = dst[:start]
			continue
		}
		first = false
	}
	return append(dst, '}'), nil
}

// appendProtoKeyValue appends v, the value of field fd, as JSON; ok is
// false for a field no key column can be read from.
func appendProtoKeyValue(dst []byte, fd protoreflect.FieldDescriptor, v protoreflect.Value) (_ []byte, ok bool, err error) {
	switch fd.Kind() {
	case protoreflect.BoolKind:
		return strconv.AppendBool(dst, v.Bool()), true, nil
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind,
		protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return strconv.AppendInt(dst, v.Int(), 10), true, nil
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind, protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return strconv.AppendUint(dst, v.Uint(), 10), true, nil
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		f := v.Float()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return dst, false, fieldErr("the key is " + strconv.FormatFloat(f, 'g', -1, 64) + ", which JSON cannot hold")
		}
		bits := 64
		if fd.Kind() == protoreflect.FloatKind {
			bits = 32
		}
		return strconv.AppendFloat(dst, f, 'g', -1, bits), true, nil
	case protoreflect.StringKind:
		if !utf8.ValidString(v.String()) {
			return dst, false, fieldErr("the string is not valid UTF-8")
		}
		return appendJSONString(dst, []byte(v.String())), true, nil
	case protoreflect.BytesKind:
		dst = append(dst, '"')
		dst = base64.StdEncoding.AppendEncode(dst, v.Bytes())
		return append(dst, '"'), true, nil
	case protoreflect.EnumKind:
		if ev := fd.Enum().Values().ByNumber(v.Enum()); ev != nil {
			return appendJSONString(dst, []byte(ev.Name())), true, nil
		}
		return strconv.AppendInt(dst, int64(v.Enum()), 10), true, nil
	case protoreflect.MessageKind, protoreflect.GroupKind:
		md := fd.Message()
		m := v.Message()
		switch wktOf(md) {
		case wktTimestamp:
			secs, nanos := m.Get(md.Fields().ByNumber(1)).Int(), m.Get(md.Fields().ByNumber(2)).Int()
			// google.protobuf.Timestamp's range: 0001-01-01 to 9999-12-31.
			if secs < -62135596800 || secs > 253402300799 || nanos < 0 || nanos > 999999999 {
				return dst, false, fieldErr("the Timestamp is out of its range")
			}
			return appendTimestamp(dst, time.Unix(secs, nanos)), true, nil
		case wktWrapper:
			inner := md.Fields().ByNumber(1)
			return appendProtoKeyValue(dst, inner, m.Get(inner))
		}
	}
	return dst, false, nil
}
