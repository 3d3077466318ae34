package decode

import (
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// clickMsg is the protobuf form of the 10-column clickstream record of the JSON benchmark
// (clickSchema), with ts a google.protobuf.Timestamp.
var clickMsg = sync.OnceValue(func() protoreflect.MessageDescriptor {
	m := newPMsg("Click").
		f("event_id", 1, tString).f("user_id", 2, tInt64).f("session_id", 3, tString).
		f("ts", 4, tMessage, typeName(".google.protobuf.Timestamp")).
		f("url", 5, tString).f("referrer", 6, tString).f("device", 7, tString).f("country", 8, tString).
		f("duration_ms", 9, tInt32).f("revenue", 10, tDouble)
	fd := buildProtoFile(panicTB{}, protoFile("floetest/click.proto", "proto3", []string{"google/protobuf/timestamp.proto"}, nil, m))
	return fd.Messages().Get(0)
})

// clickProtoRecords are clickRecords(n) (the same logical records) in protobuf.
func clickProtoRecords(t testing.TB, n int) [][]byte {
	out := make([][]byte, n)
	for i, js := range clickRecords(n) {
		out[i] = wireFromJSON(t, clickMsg(), string(js))
	}
	return out
}

func clickProtoDecoder(t testing.TB, n int) (*ProtoDecoder, [][]byte) {
	d, err := NewProtoDecoder(clickSchema(), clickMsg())
	require.NoError(t, err)
	return d, clickProtoRecords(t, n)
}

func benchProtoDecoder(b *testing.B, appendRows bool) {
	d, recs := clickProtoDecoder(b, 4096)
	rb := array.NewRecordBuilder(memory.NewGoAllocator(), d.ArrowSchema())
	defer rb.Release()
	size := 0
	for _, r := range recs {
		size += len(r)
	}
	meta := RecordMeta{Topic: "clicks", Partition: 3, Timestamp: time.Unix(1_800_000_000, 0)}
	for _, r := range recs {
		if err := d.Parse(r, meta); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(size / len(recs)))
	b.ReportAllocs()
	b.ResetTimer()
	rows := 0
	for i := 0; i < b.N; i++ {
		meta.Offset = int64(i)
		if err := d.Parse(recs[i%len(recs)], meta); err != nil {
			b.Fatal(err)
		}
		if appendRows {
			_ = d.Cell(0)
			d.Append(rb)
			if rows++; rows == 16384 {
				rb.NewRecordBatch().Release()
				rows = 0
			}
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkProtoDecoder measures the clickstream record of BenchmarkJSONDecoder in protobuf
// (about 130 bytes against JSON's 280); compare the two with
// go test -run '^$' -bench 'BenchmarkJSONDecoder$|BenchmarkProtoDecoder$'.
func BenchmarkProtoDecoder(b *testing.B) {
	b.Run("parse", func(b *testing.B) { benchProtoDecoder(b, false) })
	b.Run("parse+append", func(b *testing.B) { benchProtoDecoder(b, true) })
}

// BenchmarkProtoDecoderNested measures a record with lists, maps, nested messages and well-known types.
func BenchmarkProtoDecoderNested(b *testing.B) {
	d := newAllDecoder(b)
	rec := wireFromJSON(b, allMsg(), `{"s":"x","inner":{"name":"a"},"rm":[{"name":"x"},{"n":1}],"ms":{"a":"1","b":"2"},
		"mi":{"1":{"n":2}},"ts":"2026-01-01T00:00:00Z","w_str":"w","ri":[1,2,3],"rcolor":["RED"],"nested":{"deep":{"tags":["t"]}}}`)
	rb := array.NewRecordBuilder(memory.NewGoAllocator(), d.ArrowSchema())
	defer rb.Release()
	b.SetBytes(int64(len(rec)))
	b.ReportAllocs()
	rows := 0
	for b.Loop() {
		if err := d.Parse(rec, RecordMeta{}); err != nil {
			b.Fatal(err)
		}
		d.Append(rb)
		if rows++; rows == 16384 {
			rb.NewRecordBatch().Release()
			rows = 0
		}
	}
}
