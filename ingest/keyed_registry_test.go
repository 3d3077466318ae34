package ingest_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/floelake/floe/ingest"
	"github.com/floelake/floe/ingest/decode"
	"github.com/floelake/floe/ingest/registry"
	testregistry "github.com/floelake/floe/internal/testutil/registry"
)

// TestKeyedProtobufTombstones: in a keyed protobuf pipeline, a tombstone
// whose Kafka key is a protobuf message in the schema registry's wire
// format deletes the key the message names; a key of a schema id the
// registry does not know makes the tombstone a dead letter, and the table
// keeps the key.
func TestKeyedProtobufTombstones(t *testing.T) {
	const (
		valueProto = `syntax = "proto3"; package floe.test; message Order { string id = 1; int64 n = 2; }`
		keyProto   = `syntax = "proto3"; package floe.test; message OrderKey { string id = 1; }`
	)
	reg := testregistry.Start(t)
	valueID := reg.MustRegister(t, "events-value", testregistry.Schema{Schema: valueProto, SchemaType: "PROTOBUF"})
	keyID := reg.MustRegister(t, "events-key", testregistry.Schema{Schema: keyProto, SchemaType: "PROTOBUF"})
	message := func(text string, set func(m *dynamicpb.Message)) []byte {
		fd, err := decode.ProtoFileFromSource("s.proto", text, nil)
		require.NoError(t, err)
		m := dynamicpb.NewMessage(fd.Messages().Get(0))
		set(m)
		b, err := proto.Marshal(m)
		require.NoError(t, err)
		return b
	}
	framed := func(id int, payload []byte) []byte {
		// The header, then the message indexes: [0] is one zero byte.
		return append(append(registry.AppendHeader(nil, uint32(id)), 0), payload...)
	}
	order := func(key string, n int64) []byte {
		return framed(valueID, message(valueProto, func(m *dynamicpb.Message) {
			m.Set(m.Descriptor().Fields().ByName("id"), protoreflect.ValueOfString(key))
			m.Set(m.Descriptor().Fields().ByName("n"), protoreflect.ValueOfInt64(n))
		}))
	}
	orderKey := func(id int, key string) []byte {
		return framed(id, message(keyProto, func(m *dynamicpb.Message) {
			m.Set(m.Descriptor().Fields().ByName("id"), protoreflect.ValueOfString(key))
		}))
	}
	// A key stays in one Kafka partition.
	partition := func(key string) int32 { return int32(key[len(key)-1]-'0') % 3 }
	var recs []*kgo.Record
	want := map[string]int64{}
	for i := range 10 {
		key := fmt.Sprintf("k%d", i)
		recs = append(recs, &kgo.Record{Key: orderKey(keyID, key), Value: order(key, int64(i)), Partition: partition(key)})
		want[key] = int64(i)
	}
	for _, key := range []string{"k2", "k5", "k7"} {
		recs = append(recs, &kgo.Record{Key: orderKey(keyID, key), Partition: partition(key)})
		delete(want, key)
	}
	recs = append(recs, &kgo.Record{Key: orderKey(keyID, "k5"), Value: order("k5", 100), Partition: partition("k5")})
	want["k5"] = 100
	// Schema id 999 is unknown: the tombstone is a dead letter.
	recs = append(recs, &kgo.Record{Key: orderKey(999, "k1"), Partition: partition("k1")})

	h := newHarness(t, nil, ingest.KafkaConfig{})
	opts, err := ingest.ClientOpts(h.kafka)
	require.NoError(t, err)
	cl, err := kgo.NewClient(append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
	require.NoError(t, err)
	defer cl.Close()
	for _, r := range recs {
		r.Topic = "events"
		require.NoError(t, cl.ProduceSync(context.Background(), r).FirstErr())
	}

	p := ingest.PipelineConfig{
		Format:   ingest.FormatProtobuf,
		Registry: registry.Config{URLs: []string{reg.URL()}, UnknownSchemaWait: registry.WaitFor(0)},
		Schema:   []ingest.Column{{Name: "id", Type: "string", Required: true}, {Name: "n", Type: "long"}},
		Key:      []string{"id"},
	}
	pl := h.runUntilOffsets(p, int64(len(recs)))
	require.EqualValues(t, 1, pl.Stats().DeadLetters)
	got := map[string]int64{}
	for _, r := range tableRows(t, h, "ns.events") {
		got[r["id"].(string)] = int64(r["n"].(float64))
	}
	require.Equal(t, want, got)
	dl := tableRows(t, h, "ns.events__dlq")
	require.Len(t, dl, 1)
	require.Contains(t, dl[0]["error"], "999")
}
