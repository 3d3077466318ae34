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
	"github.com/apache/iceberg-go/table"
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

	pc := rigPipeline()
	pc.Format = ingest.FormatAvro
	// The unknown schema id below is a dead letter at once (the wait for
	// an unknown id has tests of its own).
	pc.Registry = registry.Config{URLs: []string{reg.URL()}, UnknownSchemaWait: registry.WaitFor(0)}
	r, cat := startRegistryRig(t, pc)

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
	pc := rigPipeline()
	pc.Format = ingest.FormatProtobuf
	pc.Registry = registry.Config{URLs: []string{reg.URL()}, Timeout: conf.Duration(time.Second)}
	r, cat := startRegistryRig(t, pc)

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
	got := map[[2]int64]order{}
	forEachBatch(t, tbl, func(col func(string) arrow.Array, n int) {
		parts, offs := col("_kafka_partition").(*array.Int32), col("_kafka_offset").(*array.Int64)
		qty, note := col("qty").(*array.Int64), col("note").(*array.String)
		for j := range n {
			o := order{qty: qty.Value(j)}
			if note.IsValid(j) {
				o.note = note.Value(j)
			}
			got[[2]int64{int64(parts.Value(j)), offs.Value(j)}] = o
		}
	})
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
	pc := rigPipeline()
	pc.Format = ingest.FormatAvro
	pc.Registry = registry.Config{URLs: []string{reg.URL()}, Username: "floe", Password: "wrong"}
	// A declared schema: the table is created without the registry, and
	// the refusal comes from the first record a worker decodes.
	pc.Schema = []ingest.Column{{Name: "id", Type: "long"}, {Name: "n", Type: "int"}}
	r, cat := startRegistryRig(t, pc)

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

// Two writer schemas of an order: the second adds an optional note.
const (
	orderV1 = `{"type":"record","name":"Order","fields":[{"name":"id","type":"long"}]}`
	orderV2 = `{"type":"record","name":"Order","fields":[{"name":"id","type":"long"},{"name":"note","type":["null","string"],"default":null}]}`
)

// orderValue is an order of the Avro schema text in the wire format with
// schema id.
func orderValue(t *testing.T, text string, id int, rec map[string]any) []byte {
	t.Helper()
	sch, err := avro.Parse(text)
	require.NoError(t, err)
	payload, err := avro.Marshal(sch, rec)
	require.NoError(t, err)
	return append(registry.AppendHeader(nil, uint32(id)), payload...)
}

// startRegistryRig starts a leader rig running pipeline pc on a fresh
// SQLite catalog and a Kafka of one broker with the topic's three
// partitions.
func startRegistryRig(t *testing.T, pc ingest.PipelineConfig) (*leaderRig, *catalog.Catalog) {
	t.Helper()
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, topic))
	require.NoError(t, err)
	t.Cleanup(kc.Close)
	cat := testutil.SQLiteCatalog(t)
	return startLeaderRigWith(t, kc, cat, func(c *catalog.Catalog) *catalog.Catalog { return c }, nil, pc), cat
}

// startOrders starts a leader rig whose pipeline reads Avro orders
// through the registry of reg from a topic of three partitions. send
// produces a value to the next partition in turn and returns its partition
// and offset; ends are the partitions' end offsets so far.
func startOrders(t *testing.T, reg registry.Config) (r *leaderRig, cat *catalog.Catalog, send func([]byte) [2]int64, ends map[int32]int64) {
	t.Helper()
	pc := rigPipeline()
	pc.Format = ingest.FormatAvro
	pc.Registry = reg
	r, cat = startRegistryRig(t, pc)
	opts, err := ingest.ClientOpts(r.kafka)
	require.NoError(t, err)
	cl, err := kgo.NewClient(append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
	require.NoError(t, err)
	t.Cleanup(cl.Close)
	ends = map[int32]int64{}
	var sent int64
	send = func(value []byte) [2]int64 {
		p := int32(sent % 3)
		sent++
		require.NoError(t, cl.ProduceSync(context.Background(), &kgo.Record{Topic: topic, Partition: p, Value: value}).FirstErr())
		ends[p]++
		return [2]int64{int64(p), ends[p] - 1}
	}
	return r, cat, send, ends
}

// deadLetters returns the error of every row of the dead-letter table, by
// partition and offset.
func deadLetters(t *testing.T, cat *catalog.Catalog) map[[2]int64]string {
	t.Helper()
	dl, err := cat.LoadTable(context.Background(), catalog.Ident(mainTable+"__dlq"))
	require.NoError(t, err)
	out := map[[2]int64]string{}
	forEachBatch(t, dl, func(col func(string) arrow.Array, n int) {
		parts, offs, errs := col("partition").(*array.Int32), col("offset").(*array.Int64), col("error").(*array.String)
		for j := range n {
			out[[2]int64{int64(parts.Value(j)), offs.Value(j)}] = errs.Value(j)
		}
	})
	return out
}

// forEachBatch calls f for every batch of n rows of tbl's current
// snapshot; col returns the batch's column by name.
func forEachBatch(t *testing.T, tbl *table.Table, f func(col func(string) arrow.Array, n int)) {
	t.Helper()
	at, err := tbl.Scan().ToArrowTable(context.Background())
	require.NoError(t, err)
	defer at.Release()
	rr := array.NewTableReader(at, 1024)
	defer rr.Release()
	for rr.Next() {
		rec := rr.RecordBatch()
		f(func(name string) arrow.Array { return rec.Column(rec.Schema().FieldIndices(name)[0]) }, int(rec.NumRows()))
	}
}

// waitDeadLetters waits until the dead-letter table has n rows.
func waitDeadLetters(t *testing.T, r *leaderRig, cat *catalog.Catalog, n int) map[[2]int64]string {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		got := deadLetters(t, cat)
		if len(got) >= n {
			require.Len(t, got, n, "dead letters: %v", got)
			return got
		}
		require.True(t, time.Now().Before(deadline), "%d dead letters, want %d (pipeline healthy: %v)", len(got), n, r.node.Pipelines()[0].Healthy())
		time.Sleep(50 * time.Millisecond)
	}
}

// A writer schema the run takes but the table refuses: the table changed
// after the run started (here by a schema change committed outside floe,
// which made note a long column), so the run plans to add note as a
// string, and the leader's table writer, planning against the table as it
// is, finds the writer schema incompatible. Its records are dead letters
// naming the table's refusal, at once, and the pipeline goes on: the
// records after them are committed.
func TestSchemaRefusedByTheTable(t *testing.T) {
	reg := testregistry.Start(t, testregistry.WithCompatibility("NONE"))
	id1 := reg.MustRegister(t, topic+"-value", testregistry.Schema{Schema: orderV1})
	id2 := reg.MustRegister(t, topic+"-value", testregistry.Schema{Schema: orderV2})
	r, cat, send, ends := startOrders(t, registry.Config{URLs: []string{reg.URL()}})
	for i := range 6 {
		send(orderValue(t, orderV1, id1, map[string]any{"id": int64(i)}))
	}
	waitTable(t, r, mainTable, ends)

	// The run consumes with the table's schema of when it started; the
	// table changes meanwhile.
	tbl, err := cat.LoadTable(context.Background(), catalog.Ident(mainTable))
	require.NoError(t, err)
	tx := tbl.NewTransaction()
	require.NoError(t, tx.UpdateSchema(true, false).AddColumn([]string{"note"}, iceberg.PrimitiveTypes.Int64, "", false, nil).Commit())
	_, err = tx.Commit(context.Background())
	require.NoError(t, err)

	refused := map[[2]int64]bool{}
	for i := range 3 {
		refused[send(orderValue(t, orderV2, id2, map[string]any{"id": int64(100 + i), "note": "n"}))] = true
	}
	for i := range 6 {
		send(orderValue(t, orderV1, id1, map[string]any{"id": int64(200 + i)}))
	}
	started := time.Now()
	waitTable(t, r, mainTable, ends)
	got := waitDeadLetters(t, r, cat, len(refused))
	t.Logf("the pipeline went past the refused writer schema in %s", time.Since(started).Round(time.Millisecond))
	require.NoError(t, r.stop())

	for at, reason := range got {
		require.True(t, refused[at], "dead letter at %v: %s", at, reason)
		// The table's refusal, not the run's own planning.
		require.Contains(t, reason, fmt.Sprintf("schema id %d cannot be added to the table: cluster: the table refuses the writer schema", id2))
		require.Contains(t, reason, `column "note"`)
	}
	tbl, err = cat.LoadTable(context.Background(), catalog.Ident(mainTable))
	require.NoError(t, err)
	f, ok := tbl.Schema().FindFieldByName("note")
	require.True(t, ok)
	require.True(t, f.Type.Equals(iceberg.PrimitiveTypes.Int64), "note is %s", f.Type)
	require.Len(t, testutil.PartitionOffsets(t, tbl), 12, "every record of the writer schemas the table takes")
}

// The records of a schema id the registry does not know wait for it: a
// schema registered during the wait is decoded, nothing of it a dead
// letter; an id the registry still does not know after the wait is a dead
// letter, saying how long it waited.
func TestUnknownSchemaWaitsForTheRegistry(t *testing.T) {
	const wait = 6 * time.Second
	reg := testregistry.Start(t)
	id1 := reg.MustRegister(t, topic+"-value", testregistry.Schema{Schema: orderV1})
	r, cat, send, ends := startOrders(t, registry.Config{URLs: []string{reg.URL()}, UnknownSchemaWait: registry.WaitFor(wait)})
	for i := range 3 {
		send(orderValue(t, orderV1, id1, map[string]any{"id": int64(i)}))
	}
	waitTable(t, r, mainTable, ends)

	// Records of the id the registry gives next, before it does.
	id2 := id1 + 1
	for i := range 3 {
		send(orderValue(t, orderV2, id2, map[string]any{"id": int64(100 + i), "note": "n"}))
	}
	time.Sleep(time.Second)
	require.False(t, r.tableReaches(mainTable, ends), "committed past records of an unknown schema id during the wait")
	require.Equal(t, id2, reg.MustRegister(t, topic+"-value", testregistry.Schema{Schema: orderV2}))
	waitTable(t, r, mainTable, ends)
	require.Zero(t, dlqRows(t, cat), "dead letters for a schema registered during the wait")

	// An id the registry never knows.
	started := time.Now()
	bad := send(orderValue(t, orderV1, id2+100, map[string]any{"id": int64(200)}))
	got := waitDeadLetters(t, r, cat, 1)
	require.GreaterOrEqual(t, time.Since(started), wait, "a dead letter before the wait was over")
	require.NoError(t, r.stop())
	require.Contains(t, got[bad], "schema not found")
	require.Contains(t, got[bad], "unknown_schema_wait")

	tbl, err := cat.LoadTable(context.Background(), catalog.Ident(mainTable))
	require.NoError(t, err)
	require.Len(t, testutil.PartitionOffsets(t, tbl), 6)
	f, ok := tbl.Schema().FindFieldByName("note")
	require.True(t, ok, "the registered schema's column")
	require.True(t, f.Type.Equals(iceberg.PrimitiveTypes.String))
}

// Debezium change events in Avro (mode: cdc) with schema_evolution: add:
// the source table gains a column and widens another while floe consumes
// its changes. The keyed table takes the change event's after record's
// new schema before the first row that needs it, keeps one row per key
// (updates and deletes of rows written before and after the change), and
// the rows not changed since read null in the new column. The version
// column, filled from source.lsn, is not a field of the row: the table
// keeps it.
func TestSchemaEvolutionCDCAvro(t *testing.T) {
	envelope := func(value string) string {
		return `{"type":"record","name":"Envelope","namespace":"db.public.events","fields":[
			{"name":"before","type":["null",` + value + `],"default":null},
			{"name":"after","type":["null","Value"],"default":null},
			{"name":"source","type":{"type":"record","name":"Source","fields":[{"name":"lsn","type":["null","long"],"default":null}]}},
			{"name":"op","type":"string"},
			{"name":"ts_ms","type":["null","long"],"default":null}]}`
	}
	versions := []string{
		envelope(`{"type":"record","name":"Value","fields":[{"name":"id","type":"string"},{"name":"v","type":["null","int"],"default":null}]}`),
		envelope(`{"type":"record","name":"Value","fields":[{"name":"id","type":"string"},{"name":"v","type":["null","long"],"default":null},
			{"name":"email","type":["null","string"],"default":null}]}`),
	}
	reg := testregistry.Start(t, testregistry.WithCompatibility("NONE"))
	ids := make([]int, len(versions))
	schemas := make([]avro.Schema, len(versions))
	apis := make([]avro.API, len(versions))
	for i, text := range versions {
		ids[i] = reg.MustRegister(t, topic+"-value", testregistry.Schema{Schema: text})
		var err error
		// A schema cache and encoders of their own: both versions name
		// their row record Value, which the avro package's caches take
		// for one type.
		schemas[i], err = avro.ParseWithCache(text, "", &avro.SchemaCache{})
		require.NoError(t, err)
		apis[i] = avro.Config{}.Freeze()
	}
	pc := rigPipeline()
	pc.Schema = []ingest.Column{{Name: "id", Type: "string", Required: true}, {Name: "v", Type: "int"}, {Name: "lsn", Type: "long", Required: true}}
	pc.Key, pc.Mode = []string{"id"}, ingest.ModeCDC
	pc.VersionColumn, pc.VersionFrom = "lsn", "source.lsn"
	pc.Format, pc.SchemaEvolution = ingest.FormatAvro, ingest.EvolutionAdd
	pc.Registry = registry.Config{URLs: []string{reg.URL()}}
	r, cat := startRegistryRig(t, pc)

	opts, err := ingest.ClientOpts(r.kafka)
	require.NoError(t, err)
	cl, err := kgo.NewClient(append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
	require.NoError(t, err)
	defer cl.Close()
	type row struct {
		v     int64
		email string // "": null
	}
	want := map[string]row{}
	ends := map[int32]int64{}
	var lsn int64
	for v := range versions {
		for i := range 40 {
			key := fmt.Sprintf("k%d", (i*7+v)%12)
			p := int32(len(key) + int(key[len(key)-1])%3)
			val := int64(v*1000 + i)
			if v == 1 {
				val += 1 << 40 // only the widened column holds it
			}
			value := map[string]any{"id": key, "v": map[string]any{"int": int32(val)}}
			r := row{v: val}
			if v == 1 {
				value["v"] = map[string]any{"long": val}
				if i%2 == 0 {
					r.email = fmt.Sprintf("%s@%d", key, i)
					value["email"] = map[string]any{"string": r.email}
				} else {
					value["email"] = nil
				}
			}
			ev := map[string]any{"before": nil, "after": map[string]any{"db.public.events.Value": value}, "op": "u",
				"source": map[string]any{"lsn": map[string]any{"long": lsn}}, "ts_ms": nil}
			lsn++
			if i%9 == 8 {
				ev["op"], ev["before"], ev["after"] = "d", ev["after"], nil
				delete(want, key)
			} else {
				want[key] = r
			}
			b, err := apis[v].Marshal(schemas[v], ev)
			require.NoError(t, err)
			rec := &kgo.Record{Topic: topic, Partition: p % 3, Value: append(registry.AppendHeader(nil, uint32(ids[v])), b...)}
			require.NoError(t, cl.ProduceSync(context.Background(), rec).FirstErr())
			ends[p%3]++
		}
		waitTable(t, r, mainTable, ends)
	}
	require.NoError(t, r.stop())
	require.Zero(t, dlqRows(t, cat))

	tbl, err := cat.LoadTable(context.Background(), catalog.Ident(mainTable))
	require.NoError(t, err)
	sch := tbl.Schema()
	email, ok := sch.FindFieldByName("email")
	require.True(t, ok, "no email column: %s", sch)
	require.False(t, email.Required)
	vcol, _ := sch.FindFieldByName("v")
	require.Equal(t, iceberg.PrimitiveTypes.Int64, vcol.Type)
	require.Equal(t, []string{"id"}, identifierNames(t, sch))
	got := map[string]row{}
	forEachBatch(t, tbl, func(col func(string) arrow.Array, n int) {
		id, v, em := col("id").(*array.String), col("v").(*array.Int64), col("email").(*array.String)
		for j := range n {
			_, dup := got[id.Value(j)]
			require.False(t, dup, "two rows of key %s", id.Value(j))
			r := row{v: v.Value(j)}
			if em.IsValid(j) {
				r.email = em.Value(j)
			}
			got[id.Value(j)] = r
		}
	})
	require.Equal(t, want, got)
}

func identifierNames(t *testing.T, sch *iceberg.Schema) []string {
	t.Helper()
	var names []string
	for _, id := range sch.IdentifierFieldIDs {
		n, ok := sch.FindColumnName(id)
		require.True(t, ok)
		names = append(names, n)
	}
	return names
}
