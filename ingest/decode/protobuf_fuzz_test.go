package decode

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
)

// fuzzMsg is All without its google.protobuf.Empty field: the decoder skips a field its table
// lacks without looking inside, while protobuf-go parses it, so with it the two would disagree
// on a malformed Empty, as they do (on purpose) on any unknown field.
var fuzzMsg = sync.OnceValue(func() protoreflect.MessageDescriptor {
	fdp := proto.Clone(allProto()).(*descriptorpb.FileDescriptorProto)
	fdp.Name = proto.String("floetest/fuzz.proto")
	for _, m := range fdp.MessageType {
		if m.GetName() != "All" {
			continue
		}
		for i, f := range m.Field {
			if f.GetName() == "empty" {
				m.Field = append(m.Field[:i], m.Field[i+1:]...)
				break
			}
		}
	}
	return buildProtoFile(panicTB{}, fdp).Messages().ByName("All")
})

// FuzzProtoDecode feeds arbitrary bytes to a decoder for All (a field of every kind). For every
// input:
//
//  1. Parse never panics, and every error is a *DecodeError with a reason.
//  2. What protobuf-go refuses, the decoder refuses. (The decoder refuses more: wire types that
//     do not fit a field, Timestamps and Durations out of range, a Value without a kind.)
//  3. When both accept, the row appended to Arrow is protobuf-go's reading of the record mapped
//     as documented, and the Arrow arrays are valid.
//  4. A failed Parse leaves the last good row as it was.
//  5. A decoder made with NewProtoDecoderInto (of the table without the maps
//     whose keys are not strings) leaves in its JSONDecoder the row it
//     appends itself, and a failed Parse leaves that row as it was.
func FuzzProtoDecode(f *testing.F) {
	md := fuzzMsg()
	for _, js := range allRecords {
		f.Add(wireFromJSON(f, allMsg(), js)) // field 42 (Empty) is unknown to md
	}
	entry := tagV(tagB(nil, 1, []byte("k")), 2, 1)
	f.Add(cat(tagV(nil, 2, 1), tagV(nil, 2, 2), tagB(nil, 19, []byte{1, 2, 3}), tagV(nil, 19, 4)))
	f.Add(cat(tagB(nil, 18, tagB(nil, 1, []byte("a"))), tagB(nil, 18, tagV(nil, 2, 7)), tagB(nil, 22, entry), tagB(nil, 22, entry)))
	f.Add(cat(tagB(nil, 24, []byte("s")), tagV(nil, 26, 9), tagB(nil, 27, tagV(nil, 1, 10)), tagB(nil, 28, tagV(nil, 2, 5))))
	f.Add(cat(protowire.AppendTag(nil, 900, protowire.StartGroupType), tagV(nil, 1, 5), protowire.AppendTag(nil, 900, protowire.EndGroupType)))
	f.Add([]byte{0xb2, 0x01, 0x05, 0x0a, 0x01, '0', 0x08, '0'}) // map key with a varint wire type: protobuf-go panics
	f.Add([]byte{0xff, 0xff})
	f.Add([]byte{})

	schema, err := ProtoIceberg(md)
	require.NoError(f, err)
	d, err := NewProtoDecoder(schema, md)
	require.NoError(f, err)
	var lastGood map[string]any
	intoTable := intoSchema(f, md)
	rows, err := NewJSONDecoder(intoTable)
	require.NoError(f, err)
	into, err := NewProtoDecoderInto(intoTable, rows, md)
	require.NoError(f, err)
	var lastInto map[string]any

	f.Fuzz(func(t *testing.T, data []byte) {
		if err := into.Parse(data, RecordMeta{}); err == nil {
			want := appendedRow(t, into)
			whole, projected := rowsAppended(t, rows)
			require.Equal(t, want, whole, "%x", data)
			require.Equal(t, want, projected, "%x", data)
			lastInto = want
		} else if lastInto != nil {
			whole, _ := rowsAppended(t, rows)
			require.Equal(t, lastInto, whole, "a failed Parse changed the shared row")
		}

		want, werr := protoGoRowSafe(md, data)
		err := d.Parse(data, RecordMeta{})
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) || de.Reason == "" {
				t.Fatalf("error %T %v is not a *DecodeError with a reason", err, err)
			}
			if lastGood != nil {
				require.Equal(t, lastGood, appendedRow(t, d), "a failed Parse changed the last good row")
			}
			return
		}
		if werr != nil {
			t.Fatalf("decoder accepted what protobuf-go refuses (%v): %x", werr, data)
		}
		got := appendedRow(t, d)
		require.Equal(t, want, got, "%x", data)
		lastGood = got
	})
}

func appendedRow(t *testing.T, d *ProtoDecoder) map[string]any {
	rb := array.NewRecordBuilder(memory.NewGoAllocator(), d.ArrowSchema())
	defer rb.Release()
	d.Append(rb)
	rec := rb.NewRecordBatch()
	defer rec.Release()
	for i := range int(rec.NumCols()) {
		if err := array.ValidateFull(rec.Column(i)); err != nil {
			t.Fatalf("column %d: %v", i, err)
		}
	}
	return arrowRows(rec)[0]
}

// protoGoRowSafe is protoGoRow, turning a panic of protobuf-go into an error: its reflective
// decoder (dynamicpb, v1.36.12) panics on a map entry whose key has the wrong wire type
// ("type mismatch: cannot convert nil to map key"), which the decoder refuses.
func protoGoRowSafe(md protoreflect.MessageDescriptor, wire []byte) (row map[string]any, err error) {
	defer func() {
		if r := recover(); r != nil {
			row, err = nil, fmt.Errorf("protobuf-go panicked: %v", r)
		}
	}()
	return protoGoRow(md, wire)
}
