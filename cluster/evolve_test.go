package cluster_test

import (
	"context"
	"fmt"
	"math/big"
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
var evolveVersions = testregistry.EvolvingAvro

// evolveRow is one produced record as the table must hold it.
type evolveRow struct {
	version int
	id, n   int64
	price   float64
	amount  int64 // cents
	note    *string
	lat     *float64
	tags    string
}

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

	want := map[[2]int64]evolveRow{}
	ends := map[int32]int64{}
	var sent int64
	send := func(value []byte, row *evolveRow) {
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
			id := int64(v*1000 + i)
			row := evolveRow{version: v, id: id, n: id * 3, price: float64(i) + 0.5, amount: id*100 + 7}
			rec := map[string]any{"id": id, "n": int32(row.n), "price": float32(row.price), "amount": ratCents(row.amount)}
			if v >= 1 && i%2 == 0 {
				s := fmt.Sprintf("note-%d", id)
				row.note = &s
				rec["note"] = s
			} else if v >= 1 {
				rec["note"] = nil
			}
			if v >= 2 {
				// Values only the widened types hold.
				row.n = 1<<40 + id
				rec["n"] = row.n
				rec["price"] = row.price
			}
			if v >= 3 {
				row.amount = 9_000_000_000 + id // 11 digits: decimal(12,2) only
				rec["amount"] = ratCents(row.amount)
				if i%3 == 0 {
					lat := float64(id) / 10
					row.lat = &lat
					rec["geo"] = map[string]any{"floe.test.Geo": map[string]any{"lat": lat}}
				} else {
					rec["geo"] = nil
				}
				row.tags = fmt.Sprintf("[t%d u%d]", i, i)
				rec["tags"] = []string{fmt.Sprintf("t%d", i), fmt.Sprintf("u%d", i)}
			}
			payload, err := avro.Marshal(schemas[v], rec)
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

	got := readEvolved(t, tbl)
	require.Len(t, got, len(want))
	for k, w := range want {
		g, ok := got[k]
		require.True(t, ok, "partition %d offset %d (version %d) is missing", k[0], k[1], w.version)
		g.version = w.version
		require.Equal(t, w, g, "partition %d offset %d", k[0], k[1])
	}
	dl, err := cat.LoadTable(context.Background(), catalog.Ident(mainTable+"__dlq"))
	require.NoError(t, err)
	at, err := dl.Scan().ToArrowTable(context.Background())
	require.NoError(t, err)
	defer at.Release()
	require.EqualValues(t, 2*len(evolveVersions), at.NumRows(), "dead letters")
}

// ratCents is the Avro decimal value of cents (scale 2) as hamba/avro
// takes it.
func ratCents(cents int64) *big.Rat { return big.NewRat(cents, 100) }

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

// readEvolved reads the table with iceberg-go's scan, by (partition,
// offset), failing on a duplicate.
func readEvolved(t *testing.T, tbl *table.Table) map[[2]int64]evolveRow {
	t.Helper()
	at, err := tbl.Scan().ToArrowTable(context.Background())
	require.NoError(t, err)
	defer at.Release()
	rr := array.NewTableReader(at, 1024)
	defer rr.Release()
	out := map[[2]int64]evolveRow{}
	for rr.Next() {
		rec := rr.RecordBatch()
		col := func(name string) arrow.Array {
			idx := rec.Schema().FieldIndices(name)
			require.Len(t, idx, 1, name)
			return rec.Column(idx[0])
		}
		parts, offs := col("_kafka_partition").(*array.Int32), col("_kafka_offset").(*array.Int64)
		ids, ns, prices := col("id").(*array.Int64), col("n").(*array.Int64), col("price").(*array.Float64)
		amounts, notes := col("amount").(*array.Decimal128), col("note").(*array.String)
		geo, tags := col("geo").(*array.Struct), col("tags").(*array.List)
		for j := range int(rec.NumRows()) {
			row := evolveRow{id: ids.Value(j), n: ns.Value(j), price: prices.Value(j), amount: int64(amounts.Value(j).LowBits())}
			if row.amount < 0 || amounts.Value(j).HighBits() != 0 {
				t.Fatalf("amount %v out of the test's range", amounts.Value(j))
			}
			if notes.IsValid(j) {
				s := notes.Value(j)
				row.note = &s
			}
			if geo.IsValid(j) {
				lat := geo.Field(0).(*array.Float64).Value(j)
				row.lat = &lat
			}
			if tags.IsValid(j) {
				a, b := tags.ValueOffsets(j)
				vals := tags.ListValues().(*array.String)
				var ts []string
				for k := a; k < b; k++ {
					ts = append(ts, vals.Value(int(k)))
				}
				row.tags = fmt.Sprint(ts)
			}
			k := [2]int64{int64(parts.Value(j)), offs.Value(j)}
			_, dup := out[k]
			require.False(t, dup, "partition %d offset %d is in the table twice", k[0], k[1])
			out[k] = row
		}
	}
	require.NoError(t, rr.Err())
	return out
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
