package cluster_test

import (
	"context"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/hamba/avro/v2"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floelake/floe/catalog"
	"github.com/floelake/floe/ingest"
	"github.com/floelake/floe/ingest/registry"
	"github.com/floelake/floe/internal/testutil"
	testregistry "github.com/floelake/floe/internal/testutil/registry"
)

// Keyed tables on a cluster of one: upserts stream in over three Kafka
// partitions (a key always on the same one, as producers partition by
// key), keys move between table partitions, compaction runs beside the
// commits, and the node restarts halfway (its key index rebuilt from the
// table). After every round the table holds exactly the newest row of
// every key.

// keyedRig drives a keyed pipeline and keeps the model: newest value per
// key.
type keyedRig struct {
	*leaderRig
	kc   *kfake.Cluster
	rng  *rand.Rand
	want map[string]int64
	ends map[int32]int64
	seq  int64
	cdc  bool
	// lsn sends each change event to a random partition, its version in
	// source.lsn (version_from): the version, not Kafka order, decides.
	// deleted are the keys whose newest event is a deletion produced
	// since the node last started: the index keeps their deletion's
	// version.
	lsn     bool
	deleted map[string]bool
	// avro writes the change events in Avro (Debezium's Avro converter)
	// in the schema registry's wire format; nil: JSON.
	avro *avroEvents
}

// avroEvents encodes Debezium change events of the rig's rows in Avro.
type avroEvents struct {
	id     uint32
	schema avro.Schema
	// keyID and keySchema encode the Kafka keys: a record of the key
	// column, as Debezium writes them, or the key's string.
	keyID     uint32
	keySchema avro.Schema
}

// key encodes a Kafka key.
func (a *avroEvents) key(t *testing.T, key string) []byte {
	t.Helper()
	var v any = key
	if a.keySchema.Type() == avro.Record {
		v = map[string]any{"id": key}
	}
	b, err := avro.Marshal(a.keySchema, v)
	require.NoError(t, err)
	return append(registry.AppendHeader(nil, a.keyID), b...)
}

// debeziumAvro is the envelope Debezium's Avro converter writes for a
// table (id, v, region).
const debeziumAvro = `{"type":"record","name":"Envelope","namespace":"db.public.events","fields":[
	{"name":"before","type":["null",{"type":"record","name":"Value","fields":[
		{"name":"id","type":"string"},{"name":"v","type":["null","long"],"default":null},
		{"name":"region","type":["null","string"],"default":null}]}],"default":null},
	{"name":"after","type":["null","Value"],"default":null},
	{"name":"source","type":{"type":"record","name":"Source","namespace":"io.debezium.connector.postgresql","fields":[
		{"name":"lsn","type":["null","long"],"default":null}]}},
	{"name":"op","type":"string"},
	{"name":"ts_ms","type":["null","long"],"default":null}]}`

// event encodes a change of key: its deletion (with or without the
// before image) or its new row with v and region; version is source.lsn.
func (a *avroEvents) event(t *testing.T, key string, del, withBefore bool, v int64, region string, version int64) []byte {
	t.Helper()
	row := func(v any) map[string]any {
		return map[string]any{"db.public.events.Value": map[string]any{"id": key, "v": v, "region": region}}
	}
	ev := map[string]any{"before": nil, "after": nil, "op": "u",
		"source": map[string]any{"lsn": map[string]any{"long": version}}, "ts_ms": map[string]any{"long": int64(1)}}
	switch {
	case del && withBefore:
		ev["op"], ev["before"] = "d", row(nil)
	case del:
		ev["op"] = "d"
	default:
		ev["after"] = row(map[string]any{"long": v})
	}
	b, err := avro.Marshal(a.schema, ev)
	require.NoError(t, err)
	return append(registry.AppendHeader(nil, a.id), b...)
}

func keyedPipeline(version int) ingest.PipelineConfig {
	pc := rigPipeline()
	pc.Schema = []ingest.Column{
		{Name: "id", Type: "string", Required: true},
		{Name: "v", Type: "long"},
		{Name: "region", Type: "string"},
	}
	pc.Key = []string{"id"}
	pc.PartitionBy = []string{"region"}
	pc.FormatVersion = version
	return pc
}

// produce sends n changes of keys drawn from keys: upserts, and one in
// ten a deletion (a tombstone, or in cdc mode a delete event).
func (r *keyedRig) produce(n, keys int) {
	r.t.Helper()
	opts, err := ingest.ClientOpts(r.kafka)
	require.NoError(r.t, err)
	cl, err := kgo.NewClient(append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
	require.NoError(r.t, err)
	defer cl.Close()
	regions := []string{"eu", "us", "ap"}
	for range n {
		key := fmt.Sprintf("k%04d", r.rng.IntN(keys))
		h := fnv.New32a()
		h.Write([]byte(key))
		p := int32(h.Sum32() % 3)
		r.seq++
		row := fmt.Sprintf(`{"id":%q,"v":%d,"region":%q}`, key, r.seq, regions[r.rng.IntN(len(regions))])
		rec := &kgo.Record{Topic: topic, Key: []byte(key), Partition: p}
		del := r.rng.IntN(10) == 0
		if r.lsn {
			// Any partition: the events of a key arrive in any order.
			rec.Partition = int32(r.rng.IntN(3))
			p = rec.Partition
			region := regions[r.rng.IntN(len(regions))]
			switch {
			case del && r.rng.IntN(2) == 0:
				rec.Value = []byte(fmt.Sprintf(`{"before":{"id":%q,"v":0,"region":%q},"after":null,"op":"d","source":{"lsn":%d}}`, key, region, r.seq))
			case del:
				rec.Value = []byte(fmt.Sprintf(`{"before":null,"after":null,"op":"d","source":{"lsn":%d}}`, r.seq))
			default:
				// The row's own v is not the version: version_from
				// writes source.lsn over it.
				rec.Value = []byte(fmt.Sprintf(`{"payload":{"schema":null,"before":null,"after":{"id":%q,"v":0,"region":%q},"op":"u","source":{"lsn":%d}},"schema":{}}`, key, region, r.seq))
			}
		}
		switch {
		case r.lsn:
		case del && r.cdc && r.rng.IntN(2) == 0:
			rec.Value = []byte(fmt.Sprintf(`{"before":{"id":%q,"v":null,"region":null},"after":null,"op":"d","ts_ms":1}`, key))
		case del:
			rec.Value = nil // a tombstone
		case r.cdc && r.rng.IntN(2) == 0:
			rec.Value = []byte(fmt.Sprintf(`{"schema":{"type":"struct"},"payload":{"before":null,"after":%s,"op":"u","ts_ms":1}}`, row))
		case r.cdc:
			rec.Value = []byte(fmt.Sprintf(`{"before":null,"after":%s,"op":"c","source":{"lsn":%d}}`, row, r.seq))
		default:
			rec.Value = []byte(row)
		}
		if r.avro != nil && (rec.Value != nil || r.lsn) {
			// The same change, in Avro. With version_from the row's own v
			// is not the version: source.lsn is.
			region := regions[r.rng.IntN(len(regions))]
			rec.Value = r.avro.event(r.t, key, del, r.rng.IntN(2) == 0, r.seq, region, r.seq)
		}
		if r.avro != nil {
			rec.Key = r.avro.key(r.t, key)
		}
		require.NoError(r.t, cl.ProduceSync(context.Background(), rec).FirstErr())
		if del {
			delete(r.want, key)
			r.deleted[key] = true
		} else {
			r.want[key] = r.seq
			delete(r.deleted, key)
		}
		r.ends[p]++
	}
}

func (r *keyedRig) waitCommitted() {
	r.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !r.tableReaches(mainTable, r.ends) {
		if time.Now().After(deadline) {
			r.t.Fatalf("the table did not reach %v in time: at %v", r.ends, r.offsets(mainTable))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// requireNewestRows reads the table and checks it holds exactly the
// newest row of every key.
func (r *keyedRig) requireNewestRows() {
	r.t.Helper()
	// Expiry runs every few hundred milliseconds here and deletes the
	// files of snapshots it drops: a scan of a snapshot that expired
	// while it read is read again from the new head.
	var at arrow.Table
	for attempt := 0; ; attempt++ {
		tbl, err := r.cat.LoadTable(context.Background(), catalog.Ident(mainTable))
		require.NoError(r.t, err)
		if at, err = tbl.Scan().ToArrowTable(context.Background()); err == nil {
			break
		}
		require.Less(r.t, attempt, 5, "scan of snapshot %d: %v", tbl.CurrentSnapshot().SnapshotID, err)
		r.t.Logf("scan of snapshot %d failed, reading again: %v", tbl.CurrentSnapshot().SnapshotID, err)
	}
	defer at.Release()
	got := map[string]int64{}
	tr := array.NewTableReader(at, 0)
	defer tr.Release()
	for tr.Next() {
		rec := tr.RecordBatch()
		ids := rec.Column(int(rec.Schema().FieldIndices("id")[0])).(*array.String)
		vs := rec.Column(int(rec.Schema().FieldIndices("v")[0])).(*array.Int64)
		for i := 0; i < int(rec.NumRows()); i++ {
			_, dup := got[ids.Value(i)]
			require.False(r.t, dup, "key %s has more than one row", ids.Value(i))
			got[ids.Value(i)] = vs.Value(i)
		}
	}
	require.Equal(r.t, r.want, got)
}

func TestKeyedTableKeepsTheNewestRowPerKey(t *testing.T) {
	for _, c := range []struct {
		version    int
		mode       string
		deleteMode string
	}{
		{2, ingest.ModeUpsert, ""}, {3, ingest.ModeUpsert, ""}, {2, ingest.ModeCDC, ""}, {3, ingest.ModeCDC, ""},
		{2, ingest.ModeUpsert, ingest.DeleteModeEquality}, {3, ingest.ModeCDC, ingest.DeleteModeEquality},
		{2, ingest.ModeCDC, "version_from"},
		{2, ingest.ModeCDC, "avro"}, {3, ingest.ModeCDC, "avro-version_from"},
	} {
		version := c.version
		name := fmt.Sprintf("v%d-%s", version, c.mode)
		inAvro := strings.HasPrefix(c.deleteMode, "avro")
		if inAvro {
			c.deleteMode = strings.TrimPrefix(strings.TrimPrefix(c.deleteMode, "avro"), "-")
			name += "-avro"
		}
		lsn := c.deleteMode == "version_from"
		if lsn {
			c.deleteMode = ""
			name += "-version-from-lsn"
		}
		if c.deleteMode != "" {
			name += "-" + c.deleteMode
		}
		t.Run(name, func(t *testing.T) {
			if raceDetector && name != "v2-upsert" && name != "v3-cdc-avro-version-from-lsn" {
				// The same goroutines as those two cases (position-delete
				// files and deletion vectors; upserts, and change events
				// through the Avro transcoder with a version), which the
				// race detector covers: the others run without it.
				t.Skip("run without the race detector")
			}
			kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, topic))
			require.NoError(t, err)
			t.Cleanup(kc.Close)
			cat := testutil.SQLiteCatalog(t)
			same := func(c *catalog.Catalog) *catalog.Catalog { return c }
			pc := keyedPipeline(version)
			pc.Mode = c.mode
			pc.DeleteMode = c.deleteMode
			if lsn {
				pc.VersionColumn, pc.VersionFrom = "v", "source.lsn"
			}
			var events *avroEvents
			if inAvro {
				reg := testregistry.Start(t)
				events = &avroEvents{id: uint32(reg.MustRegister(t, topic+"-value", testregistry.Schema{Schema: debeziumAvro}))}
				events.schema, err = avro.Parse(debeziumAvro)
				require.NoError(t, err)
				keySchema := `{"type":"record","name":"Key","namespace":"db.public.events","fields":[{"name":"id","type":"string"}]}`
				if lsn {
					keySchema = `"string"`
				}
				events.keyID = uint32(reg.MustRegister(t, topic+"-key", testregistry.Schema{Schema: keySchema}))
				events.keySchema, err = avro.Parse(keySchema)
				require.NoError(t, err)
				pc.Format, pc.Registry = ingest.FormatAvro, registry.Config{URLs: []string{reg.URL()}}
			}
			r := &keyedRig{
				leaderRig: startLeaderRigWith(t, kc, cat, same, aggressiveMaintenance(time.Hour), pc),
				kc:        kc, rng: rand.New(rand.NewPCG(uint64(version), 3)),
				want: map[string]int64{}, ends: map[int32]int64{}, cdc: c.mode == ingest.ModeCDC,
				lsn: lsn, deleted: map[string]bool{}, avro: events,
			}
			for round := range 10 {
				if round == 5 {
					clear(r.deleted)
					require.NoError(t, r.stop())
					r.leaderRig = startLeaderRigWith(t, kc, cat, same, aggressiveMaintenance(time.Hour), pc)
				}
				r.produce(150, 120)
				r.waitCommitted()
				r.requireNewestRows()
			}
			st, err := r.node.KeyIndex(mainTable)
			require.NoError(t, err)
			if c.deleteMode == ingest.DeleteModeEquality {
				// No index: every commit deletes by equality.
				require.Zero(t, st.Keys, "%+v", st)
				require.Zero(t, st.Rebuilds, "%+v", st)
				require.Positive(t, st.EqualityCommits, "%+v", st)
				require.Positive(t, st.EqualityKeys, "%+v", st)
			} else {
				keys := len(r.want)
				if lsn {
					// The index keeps the version of the deletions it saw
					// since its rebuild (the restart at round 5).
					keys += len(r.deleted)
					require.Positive(t, st.Stale, "no event arrived after a newer one: %+v", st)
				}
				require.Equal(t, keys, st.Keys, "keys in the index: %+v", st)
				require.Positive(t, st.Replaced, "%+v", st)
				require.Positive(t, st.Deleted, "%+v", st)
				require.Positive(t, st.Rebuilds, "%+v", st)
			}
			t.Logf("key index: %+v", st)
			m, err := waitMaintainer(r.leaderRig, mainTable)
			require.NoError(t, err)
			sum, err := m.Compact(context.Background(), nil)
			require.NoError(t, err)
			require.NotZero(t, sum.Snapshot, "the compaction committed nothing: %+v", sum)
			r.requireNewestRows()
			r.produce(100, 120)
			r.waitCommitted()
			r.requireNewestRows()
			require.NoError(t, r.stop())
		})
	}
}
