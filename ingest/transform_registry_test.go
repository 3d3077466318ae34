package ingest_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/hamba/avro/v2"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/floelake/floe/ingest"
	"github.com/floelake/floe/ingest/decode"
	"github.com/floelake/floe/ingest/registry"
	"github.com/floelake/floe/ingest/transform"
	testregistry "github.com/floelake/floe/internal/testutil/registry"
)

// TestPipelineTransformsRegistryFormats: Avro and protobuf records in the
// schema registry's wire format decode into the declared schema, matched
// by name, and the transform (filter, a computed column, rename, drop;
// a nested column passed through) makes the table of them as it does of
// JSON.
// Two writer schemas in one run (the second adds a field the declared
// schema lacks and lists its fields in another order) give the same rows;
// a record an expression fails on is a dead letter.
func TestPipelineTransformsRegistryFormats(t *testing.T) {
	type order struct {
		id                    int64
		country, note, secret string
		qty                   int64
		tags                  []string
	}
	var orders []order
	for i := range 24 {
		o := order{id: int64(i), country: []string{"DE", "US", "XX"}[i%3], qty: int64(i % 4), secret: fmt.Sprintf("s%d", i),
			note: fmt.Sprintf("n%d", i)}
		for k := range (i / 2) % 3 {
			o.tags = append(o.tags, fmt.Sprintf("t%d", k))
		}
		orders = append(orders, o)
	}
	pipeline := func(format, url string) ingest.PipelineConfig {
		return ingest.PipelineConfig{
			Format:   format,
			Registry: registry.Config{URLs: []string{url}},
			Schema: []ingest.Column{
				{Name: "id", Type: "long", Required: true},
				{Name: "country", Type: "string"},
				{Name: "qty", Type: "long"},
				{Name: "tags", Type: "list<string>"},
				{Name: "secret", Type: "string"},
			},
			Transform: &transform.Config{
				Filter: `country != "XX"`,
				Columns: []transform.Column{
					{Name: "per_unit", Expr: `100 / qty`},
				},
				Rename: map[string]string{"country": "cc"},
				Drop:   []string{"secret"},
			},
		}
	}
	// The rows the transform makes of the orders: the filtered ones are
	// left out, qty 0 fails the division (a dead letter).
	wantRows, wantDL := map[int64]map[string]any{}, 0
	for _, o := range orders {
		switch {
		case o.country == "XX":
		case o.qty == 0:
			wantDL++
		default:
			var tags any // null without tags
			if o.tags != nil {
				var tl []any
				for _, tg := range o.tags {
					tl = append(tl, tg)
				}
				tags = tl
			}
			wantRows[o.id] = map[string]any{"id": float64(o.id), "cc": o.country, "qty": float64(o.qty), "tags": tags,
				"per_unit": float64(100 / o.qty)}
		}
	}
	check := func(t *testing.T, h *harness, format, url string) {
		pl := h.run(pipeline(format, url), int64(len(wantRows)+wantDL))
		st := pl.Stats()
		require.EqualValues(t, len(orders), st.RecordsIn)
		require.EqualValues(t, wantDL, st.DeadLetters)
		got := map[int64]map[string]any{}
		for _, r := range tableRows(t, h, "ns.events") {
			got[int64(r["id"].(float64))] = r
		}
		require.Equal(t, wantRows, got)
		for _, r := range tableRows(t, h, "ns.events__dlq") {
			require.Contains(t, r["error"], "division by zero", "dead letter %v", r)
		}
	}
	produce := func(t *testing.T, h *harness, values [][]byte) {
		opts, err := ingest.ClientOpts(h.kafka)
		require.NoError(t, err)
		cl, err := kgo.NewClient(opts...)
		require.NoError(t, err)
		defer cl.Close()
		for i, v := range values {
			require.NoError(t, cl.ProduceSync(context.Background(), &kgo.Record{Topic: "events", Value: v, Partition: int32(i % 3)}).FirstErr())
		}
	}

	t.Run("avro", func(t *testing.T) {
		versions := []string{
			`{"type":"record","name":"Order","fields":[{"name":"id","type":"long"},{"name":"country","type":["null","string"]},
			  {"name":"qty","type":"int"},{"name":"tags","type":["null",{"type":"array","items":"string"}]},{"name":"secret","type":"string"}]}`,
			`{"type":"record","name":"Order","fields":[{"name":"secret","type":"string"},{"name":"note","type":"string"},
			  {"name":"tags","type":["null",{"type":"array","items":"string"}]},{"name":"qty","type":"long"},{"name":"country","type":["null","string"]},{"name":"id","type":"long"}]}`,
		}
		reg := testregistry.Start(t, testregistry.WithCompatibility("NONE"))
		var values [][]byte
		for i, o := range orders {
			v := i * len(versions) / len(orders)
			sch, err := avro.Parse(versions[v])
			require.NoError(t, err)
			id := reg.MustRegister(t, "events-value", testregistry.Schema{Schema: versions[v]})
			rec := map[string]any{"id": o.id, "country": o.country, "secret": o.secret, "note": o.note}
			if v == 0 {
				rec["qty"] = int(o.qty)
			} else {
				rec["qty"] = o.qty
			}
			rec["tags"] = nil
			if o.tags != nil {
				rec["tags"] = o.tags
			}
			payload, err := avro.Marshal(sch, rec)
			require.NoError(t, err)
			values = append(values, append(registry.AppendHeader(nil, uint32(id)), payload...))
		}
		h := newHarness(t, nil, ingest.KafkaConfig{})
		produce(t, h, values)
		check(t, h, ingest.FormatAvro, reg.URL())
	})

	t.Run("protobuf", func(t *testing.T) {
		versions := []string{
			`syntax = "proto3"; package floe.test; message Order { int64 id = 1; string country = 2; int32 qty = 3; repeated string tags = 4; string secret = 5; }`,
			`syntax = "proto3"; package floe.test; message Order { string secret = 5; string note = 6; repeated string tags = 4; int64 qty = 3; string country = 2; int64 id = 1; }`,
		}
		reg := testregistry.Start(t, testregistry.WithCompatibility("NONE"))
		ids := make([]int, len(versions))
		mds := make([]protoreflect.MessageDescriptor, len(versions))
		for v, text := range versions {
			ids[v] = reg.MustRegister(t, "events-value", testregistry.Schema{Schema: text, SchemaType: "PROTOBUF"})
			fd, err := decode.ProtoFileFromSource("order.proto", text, nil)
			require.NoError(t, err)
			mds[v] = fd.Messages().Get(0)
		}
		var values [][]byte
		for i, o := range orders {
			v := i * len(versions) / len(orders)
			md := mds[v]
			m := dynamicpb.NewMessage(md)
			f := md.Fields()
			m.Set(f.ByName("id"), protoreflect.ValueOfInt64(o.id))
			m.Set(f.ByName("country"), protoreflect.ValueOfString(o.country))
			m.Set(f.ByName("secret"), protoreflect.ValueOfString(o.secret))
			if v == 0 {
				m.Set(f.ByName("qty"), protoreflect.ValueOfInt32(int32(o.qty)))
			} else {
				m.Set(f.ByName("qty"), protoreflect.ValueOfInt64(o.qty))
				m.Set(f.ByName("note"), protoreflect.ValueOfString(o.note))
			}
			tags := m.Mutable(f.ByName("tags")).List()
			for _, tg := range o.tags {
				tags.Append(protoreflect.ValueOfString(tg))
			}
			b, err := proto.Marshal(m)
			require.NoError(t, err)
			// The header, then the message indexes: [0] is one zero byte.
			values = append(values, append(append(registry.AppendHeader(nil, uint32(ids[v])), 0), b...))
		}
		// A repeated field without values is an empty list in protobuf,
		// never null.
		for _, r := range wantRows {
			if r["tags"] == nil {
				r["tags"] = []any{}
			}
		}
		h := newHarness(t, nil, ingest.KafkaConfig{})
		produce(t, h, values)
		check(t, h, ingest.FormatProtobuf, reg.URL())
	})
}
