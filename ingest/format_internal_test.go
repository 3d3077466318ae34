package ingest

import (
	"encoding/binary"
	"sync"
	"testing"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/hamba/avro/v2"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/floelake/floe/ingest/decode"
	"github.com/floelake/floe/ingest/registry"
	testregistry "github.com/floelake/floe/internal/testutil/registry"
)

// registryKinds counts RegistryError calls by kind.
type registryKinds struct {
	NopMetrics
	mu    sync.Mutex
	kinds map[string]int
}

func (m *registryKinds) RegistryError(_, kind string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.kinds == nil {
		m.kinds = map[string]int{}
	}
	m.kinds[kind]++
}

func (m *registryKinds) count(kind string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.kinds[kind]
}

// registryPipeline is a pipeline of format reading from the registry at url,
// as far as a worker's registry decoder sees it.
func registryPipeline(t *testing.T, format, url string, wait registry.Wait, m Metrics) *Pipeline {
	t.Helper()
	cfg := PipelineConfig{Name: "orders", Table: "ns.orders", Format: format,
		Registry: registry.Config{URLs: []string{url}, UnknownSchemaWait: wait}}
	require.True(t, cfg.Evolves())
	cl, err := registry.New(cfg.Registry)
	require.NoError(t, err)
	return &Pipeline{opts: Options{Pipeline: cfg, Metrics: m}, schemas: newWriterSchemas(format, cl)}
}

// tableWithID is a table schema of one column, id.
var tableWithID = iceberg.NewSchema(0, iceberg.NestedField{ID: 1, Name: "id", Type: iceberg.PrimitiveTypes.Int64})

// newRun returns a decoder for p's records into tableWithID, as a new run's
// worker has.
func newRun(t *testing.T, p *Pipeline) *registryDecoder {
	t.Helper()
	d, err := newRegistryDecoder(p, p.opts.Pipeline.Table, tableWithID, nil, 2, false)
	require.NoError(t, err)
	return d
}

// avroValue is a record of the Avro schema text in the wire format with
// schema id.
func avroValue(t *testing.T, text string, id int, v map[string]any) []byte {
	t.Helper()
	sch, err := avro.Parse(text)
	require.NoError(t, err)
	payload, err := avro.Marshal(sch, v)
	require.NoError(t, err)
	return append(registry.AppendHeader(nil, uint32(id)), payload...)
}

const (
	ordersV1 = `{"type":"record","name":"Order","fields":[{"name":"id","type":"long"}]}`
	ordersV2 = `{"type":"record","name":"Order","fields":[{"name":"id","type":"long"},{"name":"note","type":["null","string"],"default":null}]}`
)

// A writer schema the table refuses (the node calls RefuseSchema when the
// leader's table writer finds it incompatible) makes its records dead
// letters from the next run on, with the table's reason, instead of ending
// every run to ask for the same change again.
func TestRefusedWriterSchemaIsADeadLetter(t *testing.T) {
	reg := testregistry.Start(t)
	id := reg.MustRegister(t, "orders-value", testregistry.Schema{Schema: ordersV2})
	m := &registryKinds{}
	p := registryPipeline(t, FormatAvro, reg.URL(), registry.Wait{}, m)
	value := avroValue(t, ordersV2, id, map[string]any{"id": int64(1), "note": "n"})

	// The run plans a change: it ends, asking for it.
	err := newRun(t, p).Parse(value, decode.RecordMeta{})
	var sc *SchemaChangeError
	require.ErrorAs(t, err, &sc)
	require.EqualValues(t, id, sc.SchemaID)
	require.Nil(t, sc.Indexes, "an Avro writer schema has no message indexes")

	// The table refuses it: the next run makes its records dead letters.
	p.RefuseSchema(sc, `the table refuses it: column "note" is a long`)
	d := newRun(t, p)
	for range 2 {
		err = d.Parse(value, decode.RecordMeta{})
		var de *decode.DecodeError
		require.ErrorAs(t, err, &de)
		require.Equal(t, `schema id 1 cannot be added to the table: the table refuses it: column "note" is a long`, de.Reason)
	}
	require.Equal(t, 2, m.count("incompatible"))

	// Another pipeline in the process asks for itself.
	require.ErrorAs(t, newRun(t, registryPipeline(t, FormatAvro, reg.URL(), registry.Wait{}, nil)).Parse(value, decode.RecordMeta{}), &sc)
}

// A protobuf schema id holds several messages, each a writer schema: the
// table refusing one of them leaves the others to their own fate.
func TestRefusedProtobufMessage(t *testing.T) {
	const text = `syntax = "proto3"; package floe.test;
message A { int64 id = 1; string a = 2; }
message B { int64 id = 1; string b = 2; }`
	reg := testregistry.Start(t)
	id := reg.MustRegister(t, "orders-value", testregistry.Schema{Schema: text, SchemaType: "PROTOBUF"})
	fd, err := decode.ProtoFileFromSource("orders.proto", text, nil)
	require.NoError(t, err)
	value := func(index int) []byte {
		md := fd.Messages().Get(index)
		msg := dynamicpb.NewMessage(md)
		msg.Set(md.Fields().ByName("id"), protoreflect.ValueOfInt64(7))
		b, err := proto.Marshal(msg)
		require.NoError(t, err)
		// The message indexes: a count, then the indexes (zigzag
		// varints).
		v := binary.AppendVarint(registry.AppendHeader(nil, uint32(id)), 1)
		return append(binary.AppendVarint(v, int64(index)), b...)
	}
	p := registryPipeline(t, FormatProtobuf, reg.URL(), registry.Wait{}, nil)

	var sc *SchemaChangeError
	require.ErrorAs(t, newRun(t, p).Parse(value(1), decode.RecordMeta{}), &sc)
	require.Equal(t, []int{1}, sc.Indexes)
	p.RefuseSchema(sc, "no b")

	d := newRun(t, p)
	var de *decode.DecodeError
	require.ErrorAs(t, d.Parse(value(1), decode.RecordMeta{}), &de)
	require.Contains(t, de.Reason, "no b")
	// Message A of the same schema id still asks for its change.
	require.ErrorAs(t, d.Parse(value(0), decode.RecordMeta{}), &sc)
	require.Equal(t, []int{0}, sc.Indexes)
}

// The records of a schema id the registry does not know wait for it (the
// run pauses) for up to unknown_schema_wait: a schema registered meanwhile
// is decoded, not a dead letter; past the wait, an id still unknown is a
// dead letter saying how long it waited. Only an id larger than every id
// the pipeline has resolved waits.
func TestUnknownSchemaWaits(t *testing.T) {
	reg := testregistry.Start(t)
	first := reg.MustRegister(t, "orders-value", testregistry.Schema{Schema: ordersV1})
	v1 := avroValue(t, ordersV1, first, map[string]any{"id": int64(1)})
	// The ids the registry gives next.
	next, after := first+1, first+2
	requirePause := func(t *testing.T, err error) {
		t.Helper()
		require.True(t, IsPause(err), "want a pause, got %v", err)
		require.ErrorIs(t, err, registry.ErrUnknownSchema)
	}
	requireDeadLetter := func(t *testing.T, err error, contains ...string) {
		t.Helper()
		var de *decode.DecodeError
		require.ErrorAs(t, err, &de)
		for _, c := range contains {
			require.Contains(t, de.Reason, c)
		}
	}

	t.Run("registered during the wait", func(t *testing.T) {
		p := registryPipeline(t, FormatAvro, reg.URL(), registry.WaitFor(time.Minute), nil)
		require.NoError(t, newRun(t, p).Parse(v1, decode.RecordMeta{}))

		// A record of a schema the registry does not know yet.
		v2 := avroValue(t, ordersV2, next, map[string]any{"id": int64(2), "note": "n"})
		err := newRun(t, p).Parse(v2, decode.RecordMeta{})
		requirePause(t, err)
		require.ErrorContains(t, err, "unknown_schema_wait")
		// The registry knows it now: the next run decodes it, although
		// the registry client remembers for a few seconds that it did
		// not.
		require.Equal(t, next, reg.MustRegister(t, "orders-value", testregistry.Schema{Schema: ordersV2}))
		var sc *SchemaChangeError
		require.ErrorAs(t, newRun(t, p).Parse(v2, decode.RecordMeta{}), &sc, "decoded (a change to the table planned), not a dead letter")
		require.EqualValues(t, next, sc.SchemaID)

		// An unknown id smaller than one the pipeline resolved is no
		// schema being registered: a dead letter at once.
		requireDeadLetter(t, newRun(t, p).Parse(avroValue(t, ordersV1, 0, map[string]any{"id": int64(3)}), decode.RecordMeta{}), registry.ErrUnknownSchema.Error())
	})

	t.Run("past the wait", func(t *testing.T) {
		const wait = 300 * time.Millisecond
		m := &registryKinds{}
		p := registryPipeline(t, FormatAvro, reg.URL(), registry.WaitFor(wait), m)
		unknown := avroValue(t, ordersV1, after+10, map[string]any{"id": int64(4)})
		start := time.Now()
		requirePause(t, newRun(t, p).Parse(unknown, decode.RecordMeta{}))
		// Every run meanwhile pauses, until the wait has passed since the
		// first miss.
		var err error
		for {
			err = newRun(t, p).Parse(unknown, decode.RecordMeta{})
			if !IsPause(err) {
				break
			}
			require.Less(t, time.Since(start), wait+10*time.Second, "still waiting")
			time.Sleep(50 * time.Millisecond)
		}
		require.GreaterOrEqual(t, time.Since(start), wait)
		requireDeadLetter(t, err, registry.ErrUnknownSchema.Error(), "waited", "unknown_schema_wait")
		require.Equal(t, 1, m.count("unknown_schema"))
	})

	t.Run("no wait", func(t *testing.T) {
		p := registryPipeline(t, FormatAvro, reg.URL(), registry.WaitFor(0), nil)
		err := newRun(t, p).Parse(avroValue(t, ordersV1, after+20, map[string]any{"id": int64(5)}), decode.RecordMeta{})
		requireDeadLetter(t, err, registry.ErrUnknownSchema.Error())
		require.NotContains(t, err.Error(), "waited")
	})
}
