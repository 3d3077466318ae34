package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go"
	"github.com/hamba/avro/v2"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/floelake/floe/catalog"
	"github.com/floelake/floe/ingest"
	"github.com/floelake/floe/ingest/decode"
	"github.com/floelake/floe/ingest/registry"
	"github.com/floelake/floe/internal/conf"
	"github.com/floelake/floe/internal/testutil"
	testregistry "github.com/floelake/floe/internal/testutil/registry"
)

// Schema evolution on a cluster of one: an Avro topic whose writer schema
// changes three times (a field added; two types widened; a nested record,
// a list and a wider decimal added) while floe consumes it. The table
// takes the first record's schema, then each change before the first row
// that needs it; every record is in the table exactly once with its values,
// and the rows written before a change read null in its new columns.

// evolveVersions are the writer schemas, in the order the topic uses them.
var evolveVersions = testutil.EvolvingAvro

func TestSchemaEvolutionAvro(t *testing.T) {
	// Avro calls a wider decimal incompatible; Iceberg takes it.
	reg := testregistry.Start(t, testregistry.WithCompatibility("NONE"))
	ids := make([]int, len(evolveVersions))
	schemas := make([]avro.Schema, len(evolveVersions))
	for i, text := range evolveVersions {
		ids[i] = reg.MustRegister(t, topic+"-value", testregistry.Schema{Schema: text})
		var err error
		schemas[i], err = avro.Parse(text)
		require.NoError(t, err)
	}

	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, topic))
	require.NoError(t, err)
	t.Cleanup(kc.Close)
	pc := rigPipeline()
	pc.Format = ingest.FormatAvro
	pc.Registry = registry.Config{URLs: []string{reg.URL()}}
	cat := testutil.SQLiteCatalog(t)
	r := startLeaderRigWith(t, kc, cat, func(c *catalog.Catalog) *catalog.Catalog { return c }, nil, pc)

	opts, err := ingest.ClientOpts(r.kafka)
	require.NoError(t, err)
	cl, err := kgo.NewClient(append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
	require.NoError(t, err)
	defer cl.Close()

	want := map[[2]int64]testutil.EvolvingRow{}
	ends := map[int32]int64{}
	var sent int64
	send := func(value []byte, row *testutil.EvolvingRow) {
		p := int32(sent % 3)
		sent++
		require.NoError(t, cl.ProduceSync(context.Background(), &kgo.Record{Topic: topic, Partition: p, Value: value}).FirstErr())
		if row != nil {
			want[[2]int64{int64(p), ends[p]}] = *row
		}
		ends[p]++
	}
	for v := range evolveVersions {
		for i := range 40 {
			row, payload, err := testutil.EvolvingRecord(schemas[v], v, i)
			require.NoError(t, err)
			send(append(registry.AppendHeader(nil, uint32(ids[v])), payload...), &row)
			if i == 20 {
				// Dead letters, whatever the table's schema: a value not
				// in the wire format and an unknown schema id.
				send([]byte(`{"id":1}`), nil)
				send(append(registry.AppendHeader(nil, 999), payload...), nil)
			}
		}
		// Each version's records are committed before the next version's
		// are produced, so that every change meets a table with rows.
		waitEnds(t, r, ends)
	}
	require.NoError(t, r.stop())

	tbl, err := cat.LoadTable(context.Background(), catalog.Ident(mainTable))
	require.NoError(t, err)
	// The schema history: the first record's schema, then one schema per
	// change of writer schema.
	require.Len(t, tbl.Metadata().Schemas(), len(evolveVersions), "schemas: %v", tbl.Metadata().Schemas())
	sch := tbl.Schema()
	for name, typ := range map[string]iceberg.Type{
		"n": iceberg.PrimitiveTypes.Int64, "price": iceberg.PrimitiveTypes.Float64, "amount": iceberg.DecimalTypeOf(12, 2),
		"note": iceberg.PrimitiveTypes.String,
	} {
		f, ok := sch.FindFieldByName(name)
		require.True(t, ok, name)
		require.True(t, f.Type.Equals(typ), "%s is %s, want %s", name, f.Type, typ)
	}
	for _, name := range []string{"note", "geo", "tags"} {
		f, _ := sch.FindFieldByName(name)
		require.False(t, f.Required, "added column %s must be optional", name)
	}

	got := testutil.ReadEvolving(t, tbl)
	require.Len(t, got, len(want))
	for k, w := range want {
		g, ok := got[k]
		require.True(t, ok, "partition %d offset %d (version %d) is missing", k[0], k[1], w.Version)
		g.Version = w.Version
		require.Equal(t, w, g, "partition %d offset %d", k[0], k[1])
	}
	dl, err := cat.LoadTable(context.Background(), catalog.Ident(mainTable+"__dlq"))
	require.NoError(t, err)
	at, err := dl.Scan().ToArrowTable(context.Background())
	require.NoError(t, err)
	defer at.Release()
	require.EqualValues(t, 2*len(evolveVersions), at.NumRows(), "dead letters")
}

// waitEnds waits until the main and dead-letter tables have committed
// every partition to its end.
func waitEnds(t *testing.T, r *leaderRig, ends map[int32]int64) {
	t.Helper()
	waitTable(t, r, mainTable, ends)
	waitTable(t, r, mainTable+"__dlq", ends)
}

// waitTable waits until table name has committed every partition to its
// end.
func waitTable(t *testing.T, r *leaderRig, name string, ends map[int32]int64) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		if r.tableReaches(name, ends) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s did not reach %v in time: at %v (pipeline healthy: %v)", name, ends, r.offsets(name), r.node.Pipelines()[0].Healthy())
}

// Protobuf: a message gains a field and widens another while floe
// consumes it; the registry is unreachable when the second schema first
// appears, which pauses the pipeline (no record becomes a dead letter)
// until it answers again.
func TestSchemaEvolutionProtobuf(t *testing.T) {
	versions := []string{
		`syntax = "proto3"; package floe.test; message Order { int64 id = 1; int32 qty = 2; }`,
		`syntax = "proto3"; package floe.test; message Order { int64 id = 1; int64 qty = 2; optional string note = 3; }`,
	}
	reg := testregistry.Start(t, testregistry.WithCompatibility("NONE"))
	ids := make([]int, len(versions))
	mds := make([]protoreflect.MessageDescriptor, len(versions))
	for i, text := range versions {
		ids[i] = reg.MustRegister(t, topic+"-value", testregistry.Schema{Schema: text, SchemaType: "PROTOBUF"})
		fd, err := decode.ProtoFileFromSource("order.proto", text, nil)
		require.NoError(t, err)
		mds[i] = fd.Messages().Get(0)
	}
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, topic))
	require.NoError(t, err)
	t.Cleanup(kc.Close)
	pc := rigPipeline()
	pc.Format = ingest.FormatProtobuf
	pc.Registry = registry.Config{URLs: []string{reg.URL()}, Timeout: conf.Duration(time.Second)}
	cat := testutil.SQLiteCatalog(t)
	r := startLeaderRigWith(t, kc, cat, func(c *catalog.Catalog) *catalog.Catalog { return c }, nil, pc)

	opts, err := ingest.ClientOpts(r.kafka)
	require.NoError(t, err)
	cl, err := kgo.NewClient(append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
	require.NoError(t, err)
	defer cl.Close()
	type order struct {
		qty  int64
		note string
	}
	want := map[[2]int64]order{}
	ends := map[int32]int64{}
	var sent int64
	for v := range versions {
		if v == 1 {
			reg.DropConnections()
		}
		for i := range 30 {
			m := dynamicpb.NewMessage(mds[v])
			fields := mds[v].Fields()
			id := int64(v*1000 + i)
			o := order{qty: id}
			m.Set(fields.ByName("id"), protoreflect.ValueOfInt64(id))
			if v == 0 {
				m.Set(fields.ByName("qty"), protoreflect.ValueOfInt32(int32(id)))
			} else {
				o.qty = 1<<33 + id
				m.Set(fields.ByName("qty"), protoreflect.ValueOfInt64(o.qty))
				o.note = fmt.Sprintf("n%d", id)
				m.Set(fields.ByName("note"), protoreflect.ValueOfString(o.note))
			}
			b, err := proto.Marshal(m)
			require.NoError(t, err)
			// The header, then the message indexes: [0] is one zero byte.
			value := append(append(registry.AppendHeader(nil, uint32(ids[v])), 0), b...)
			p := int32(sent % 3)
			sent++
			require.NoError(t, cl.ProduceSync(context.Background(), &kgo.Record{Topic: topic, Partition: p, Value: value}).FirstErr())
			want[[2]int64{int64(p), ends[p]}] = o
			ends[p]++
		}
		if v == 1 {
			// Paused: nothing of the new schema is committed, nothing is a
			// dead letter.
			time.Sleep(3 * time.Second)
			require.False(t, r.tableReaches(mainTable, ends), "committed while the registry was unreachable")
			require.Zero(t, dlqRows(t, cat), "dead letters while the registry was unreachable")
			reg.Heal()
		}
		// The main table only: a dead-letter table without dead letters
		// commits its offsets seldom.
		waitTable(t, r, mainTable, ends)
	}
	require.NoError(t, r.stop())
	require.Zero(t, dlqRows(t, cat))

	tbl, err := cat.LoadTable(context.Background(), catalog.Ident(mainTable))
	require.NoError(t, err)
	require.Len(t, tbl.Metadata().Schemas(), 2)
	at, err := tbl.Scan().ToArrowTable(context.Background())
	require.NoError(t, err)
	defer at.Release()
	rr := array.NewTableReader(at, 1024)
	defer rr.Release()
	got := map[[2]int64]order{}
	for rr.Next() {
		rec := rr.RecordBatch()
		col := func(name string) arrow.Array { return rec.Column(rec.Schema().FieldIndices(name)[0]) }
		parts, offs := col("_kafka_partition").(*array.Int32), col("_kafka_offset").(*array.Int64)
		qty, note := col("qty").(*array.Int64), col("note").(*array.String)
		for j := range int(rec.NumRows()) {
			o := order{qty: qty.Value(j)}
			if note.IsValid(j) {
				o.note = note.Value(j)
			}
			got[[2]int64{int64(parts.Value(j)), offs.Value(j)}] = o
		}
	}
	require.Equal(t, want, got)
}

// dlqRows counts the dead-letter table's rows.
func dlqRows(t *testing.T, cat *catalog.Catalog) int64 {
	t.Helper()
	dl, err := cat.LoadTable(context.Background(), catalog.Ident(mainTable+"__dlq"))
	require.NoError(t, err)
	at, err := dl.Scan().ToArrowTable(context.Background())
	require.NoError(t, err)
	defer at.Release()
	return at.NumRows()
}

// A registry that refuses floe's credentials stops the pipeline with the
// registry's error (a configuration problem a restart cannot fix), and no
// record becomes a dead letter.
func TestRegistryRefusalStopsThePipeline(t *testing.T) {
	reg := testregistry.Start(t, testregistry.WithBasicAuth("floe", "right"))
	id := reg.MustRegister(t, topic+"-value", testregistry.Schema{Schema: testutil.EvolvingAvro[0]})
	sch, err := avro.Parse(testutil.EvolvingAvro[0])
	require.NoError(t, err)
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, topic))
	require.NoError(t, err)
	t.Cleanup(kc.Close)
	pc := rigPipeline()
	pc.Format = ingest.FormatAvro
	pc.Registry = registry.Config{URLs: []string{reg.URL()}, Username: "floe", Password: "wrong"}
	// A declared schema: the table is created without the registry, and
	// the refusal comes from the first record a worker decodes.
	pc.Schema = []ingest.Column{{Name: "id", Type: "long"}, {Name: "n", Type: "int"}}
	cat := testutil.SQLiteCatalog(t)
	r := startLeaderRigWith(t, kc, cat, func(c *catalog.Catalog) *catalog.Catalog { return c }, nil, pc)

	opts, err := ingest.ClientOpts(r.kafka)
	require.NoError(t, err)
	cl, err := kgo.NewClient(opts...)
	require.NoError(t, err)
	defer cl.Close()
	_, payload, err := testutil.EvolvingRecord(sch, 0, 1)
	require.NoError(t, err)
	value := append(registry.AppendHeader(nil, uint32(id)), payload...)
	require.NoError(t, cl.ProduceSync(context.Background(), &kgo.Record{Topic: topic, Value: value}).FirstErr())

	deadline := time.Now().Add(60 * time.Second)
	for {
		err := r.node.Ready()
		if err != nil && errors.Is(err, registry.ErrAuth) {
			require.ErrorContains(t, err, "pipeline "+topic+" cannot run")
			break
		}
		require.True(t, time.Now().Before(deadline), "the pipeline did not stop on the refusal: ready = %v", err)
		time.Sleep(50 * time.Millisecond)
	}
	require.ErrorIs(t, r.stop(), registry.ErrAuth)
	require.Zero(t, dlqRows(t, cat), "dead letters for a refused registry")
}
