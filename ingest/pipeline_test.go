package ingest_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floelake/floe/catalog"
	"github.com/floelake/floe/cluster"
	"github.com/floelake/floe/commit"
	"github.com/floelake/floe/ingest"
	"github.com/floelake/floe/internal/conf"
	"github.com/floelake/floe/internal/failpoint"
	"github.com/floelake/floe/internal/metrics"
	"github.com/floelake/floe/internal/testutil"
)

type harness struct {
	t       *testing.T
	cluster *kfake.Cluster
	kafka   ingest.KafkaConfig
	cat     *catalog.Catalog
	// metrics are what the harness's nodes report to.
	metrics *metrics.Set
	// node is the node start started last.
	node *cluster.Node
}

func newHarness(t *testing.T, kopts []kfake.Opt, kafka ingest.KafkaConfig) *harness {
	t.Helper()
	cl, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(3, "events")}, kopts...)...)
	require.NoError(t, err)
	t.Cleanup(cl.Close)
	cat := testutil.SQLiteCatalog(t)
	kafka.Brokers = cl.ListenAddrs()
	if kafka.ClientID == "" {
		kafka.ClientID = "floe-test"
	}
	if kafka.Group == "" {
		kafka.Group = "floe-test"
	}
	kafka.FetchMaxBytes = 16 << 20
	return &harness{t: t, cluster: cl, kafka: kafka, cat: cat, metrics: metrics.New()}
}

func (h *harness) produce(values ...string) {
	h.t.Helper()
	opts, err := ingest.ClientOpts(h.kafka)
	require.NoError(h.t, err)
	cl, err := kgo.NewClient(opts...)
	require.NoError(h.t, err)
	defer cl.Close()
	for i, v := range values {
		r := &kgo.Record{Topic: "events", Value: []byte(v), Partition: int32(i % 3)}
		require.NoError(h.t, cl.ProduceSync(context.Background(), r).FirstErr())
	}
}

// defaults fills what a test pipeline leaves empty.
func defaults(p ingest.PipelineConfig) ingest.PipelineConfig {
	if p.Name == "" {
		p.Name = "events"
	}
	if p.Table == "" {
		p.Table = "ns.events"
	}
	p.Topics = []string{"events"}
	if p.CommitInterval == 0 {
		p.CommitInterval = conf.Duration(200 * time.Millisecond)
	}
	if p.Start == "" {
		p.Start = "earliest"
	}
	if p.Format == "" {
		p.Format = "json"
	}
	p.TargetFileSize = 128 << 20
	return p
}

// start runs a pipeline the way a single node does (a cluster of one
// member) until the returned stop is called; stop returns Run's error.
func (h *harness) start(p ingest.PipelineConfig, partitionCheck time.Duration) (*ingest.Pipeline, func() error) {
	h.t.Helper()
	cc := cluster.DefaultConfig()
	cc.NodeID = "test"
	n, err := cluster.Start(cluster.Options{Cluster: cc, Kafka: h.kafka, Pipelines: []ingest.PipelineConfig{defaults(p)},
		DataDir: h.t.TempDir(), ShutdownTimeout: 30 * time.Second, Catalog: h.cat, Local: true, PartitionCheckEvery: partitionCheck,
		Metrics: h.metrics})
	require.NoError(h.t, err)
	h.node = n
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	return n.Pipelines()[0], func() error { cancel(); return <-done }
}

// run runs a pipeline until it has committed want rows plus dead letters,
// then stops it gracefully.
func (h *harness) run(p ingest.PipelineConfig, want int64) *ingest.Pipeline {
	h.t.Helper()
	pl, stop := h.start(p, 0)
	deadline := time.Now().Add(60 * time.Second)
	for {
		s := pl.Stats()
		if s.Committed+s.DeadLettersCommitted >= want {
			break
		}
		if time.Now().After(deadline) {
			_ = stop()
			h.t.Fatalf("timed out: stats %+v, health %v", s, pl.Healthy())
		}
		time.Sleep(20 * time.Millisecond)
	}
	require.NoError(h.t, stop())
	return pl
}

func (h *harness) rows(table string) int64 {
	h.t.Helper()
	tbl, err := h.cat.LoadTable(context.Background(), catalog.Ident(table))
	require.NoError(h.t, err)
	if tbl.CurrentSnapshot() == nil {
		return 0
	}
	at, err := tbl.Scan().ToArrowTable(context.Background())
	require.NoError(h.t, err)
	defer at.Release()
	return at.NumRows()
}

func TestPipelineInfersSchemaWhenNoneDeclared(t *testing.T) {
	h := newHarness(t, nil, ingest.KafkaConfig{})
	var vals []string
	for i := 0; i < 60; i++ {
		vals = append(vals, fmt.Sprintf(`{"id": %d, "name": "n%d", "score": %d.5, "at": "2026-11-22T10:00:%02dZ", "tags": ["a"]}`, i, i, i, i%60))
	}
	vals = append(vals, `not json at all`)
	h.produce(vals...)
	h.run(ingest.PipelineConfig{KafkaMetadata: []string{"offset"}}, 61)

	tbl, err := h.cat.LoadTable(context.Background(), catalog.Ident("ns.events"))
	require.NoError(t, err)
	sch := tbl.Schema()
	for name, typ := range map[string]iceberg.Type{
		"id": iceberg.PrimitiveTypes.Int64, "name": iceberg.PrimitiveTypes.String, "score": iceberg.PrimitiveTypes.Float64,
		"at": iceberg.PrimitiveTypes.TimestampTz, "_kafka_offset": iceberg.PrimitiveTypes.Int64,
	} {
		f, ok := sch.FindFieldByName(name)
		require.True(t, ok, "column %s in %s", name, sch)
		require.True(t, f.Type.Equals(typ), "column %s is %s, want %s", name, f.Type, typ)
	}
	require.EqualValues(t, 60, h.rows("ns.events"))
	require.EqualValues(t, 1, h.rows("ns.events__dlq"))
}

func TestPipelineStartLatestSkipsOlderRecords(t *testing.T) {
	h := newHarness(t, nil, ingest.KafkaConfig{})
	h.produce(`{"id": 1}`, `{"id": 2}`, `{"id": 3}`)
	p := ingest.PipelineConfig{Start: "latest", Schema: []ingest.Column{{Name: "id", Type: "long", Required: true}},
		CommitInterval: conf.Duration(100 * time.Millisecond)}
	// Produce the later records once the pipeline is positioned: run it in
	// the background and produce after it consumes.
	pl, stop := h.start(p, 0)
	// Consuming means positioned: "latest" was resolved to offsets and
	// recorded in the tables before the first fetch.
	require.Eventually(t, func() bool { return pl.Healthy() == nil }, 30*time.Second, 10*time.Millisecond)
	h.produce(`{"id": 4}`, `{"id": 5}`)
	require.Eventually(t, func() bool { return pl.Stats().Committed >= 2 }, 30*time.Second, 10*time.Millisecond)
	require.NoError(t, stop())
	require.EqualValues(t, 2, h.rows("ns.events"))
}

func TestPipelineSASLAndGroupOffsets(t *testing.T) {
	for _, mech := range []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"} {
		t.Run(mech, func(t *testing.T) {
			h := newHarness(t, []kfake.Opt{kfake.EnableSASL(), kfake.Superuser(mech, "floe", "s3cret")},
				ingest.KafkaConfig{SASL: ingest.SASLConfig{Mechanism: mech, Username: "floe", Password: "s3cret"}, Group: "lag-" + mech})
			h.produce(`{"id": 1}`, `{"id": 2}`, `{"id": "three"}`, `{"id": 4}`)
			h.run(ingest.PipelineConfig{Schema: []ingest.Column{{Name: "id", Type: "long", Required: true}}}, 4)
			require.EqualValues(t, 3, h.rows("ns.events"))
			require.EqualValues(t, 1, h.rows("ns.events__dlq"))

			// Group offsets mirror the committed offsets (monitoring only).
			opts, err := ingest.ClientOpts(h.kafka)
			require.NoError(t, err)
			cl, err := kgo.NewClient(opts...)
			require.NoError(t, err)
			defer cl.Close()
			tbl, err := h.cat.LoadTable(context.Background(), catalog.Ident("ns.events"))
			require.NoError(t, err)
			off, _, found, err := commit.TableOffsets(tbl, "events")
			require.NoError(t, err)
			require.True(t, found)
			fetched, err := kadm.NewClient(cl).FetchOffsets(context.Background(), h.kafka.Group)
			require.NoError(t, err)
			var total int64
			fetched.Each(func(o kadm.OffsetResponse) {
				want, ok := off.Get(o.Topic, o.Partition)
				require.True(t, ok)
				require.Equal(t, want, o.At)
				total += o.At
			})
			require.EqualValues(t, 4, total)
		})
	}

	t.Run("wrong password fails clearly", func(t *testing.T) {
		h := newHarness(t, []kfake.Opt{kfake.EnableSASL(), kfake.Superuser("PLAIN", "floe", "right")},
			ingest.KafkaConfig{SASL: ingest.SASLConfig{Mechanism: "PLAIN", Username: "floe", Password: "wrong"}})
		pl, stop := h.start(ingest.PipelineConfig{Name: "e", Table: "ns.e", CommitInterval: conf.Duration(time.Second),
			Schema: []ingest.Column{{Name: "id", Type: "long"}}}, 0)
		defer func() { _ = stop() }()
		require.Eventually(t, func() bool {
			err := pl.Healthy()
			return err != nil && !errors.Is(err, ingest.ErrNotConsuming)
		}, 10*time.Second, 20*time.Millisecond)
		// kfake drops the connection on a failed SASL handshake (a real
		// broker answers SASL_AUTHENTICATION_FAILED): either way the
		// failing step is reported, not a silent hang.
		require.ErrorContains(t, pl.Healthy(), "list partitions")
	})
}

func TestPipelineResumesExactlyAfterRestart(t *testing.T) {
	h := newHarness(t, nil, ingest.KafkaConfig{})
	p := ingest.PipelineConfig{Schema: []ingest.Column{{Name: "id", Type: "long", Required: true}}, KafkaMetadata: []string{"partition", "offset"}}
	var first []string
	for i := 0; i < 30; i++ {
		first = append(first, fmt.Sprintf(`{"id": %d}`, i))
	}
	h.produce(first...)
	h.run(p, 30)
	var second []string
	for i := 30; i < 50; i++ {
		second = append(second, fmt.Sprintf(`{"id": %d}`, i))
	}
	second = append(second, `{"id": null}`)
	h.produce(second...)
	h.run(p, 21)

	tbl, err := h.cat.LoadTable(context.Background(), catalog.Ident("ns.events"))
	require.NoError(t, err)
	at, err := tbl.Scan().ToArrowTable(context.Background())
	require.NoError(t, err)
	defer at.Release()
	seen := map[int64]bool{}
	idCol := at.Schema().FieldIndices("id")[0]
	for _, ch := range at.Column(idCol).Data().Chunks() {
		for _, v := range ch.(*array.Int64).Int64Values() {
			require.False(t, seen[v], "id %d twice", v)
			seen[v] = true
		}
	}
	require.Len(t, seen, 50)
	require.EqualValues(t, 1, h.rows("ns.events__dlq"))
}

// TestPipelineWritesFormatV3Table: with format_version: 3 the table is
// created as a version 3 table, and appends to it resume exactly after a
// restart as to a version 2 one.
func TestPipelineWritesFormatV3Table(t *testing.T) {
	h := newHarness(t, nil, ingest.KafkaConfig{})
	p := ingest.PipelineConfig{Schema: []ingest.Column{{Name: "id", Type: "long", Required: true}},
		KafkaMetadata: []string{"partition", "offset"}, FormatVersion: 3}
	var vals []string
	for i := range 30 {
		vals = append(vals, fmt.Sprintf(`{"id": %d}`, i))
	}
	h.produce(vals[:20]...)
	h.run(p, 20)
	h.produce(vals[20:]...)
	h.run(p, 10)

	tbl, err := h.cat.LoadTable(context.Background(), catalog.Ident("ns.events"))
	require.NoError(t, err)
	require.Equal(t, 3, tbl.Metadata().Version())
	require.Len(t, testutil.PartitionOffsets(t, tbl), 30)
	dlq, err := h.cat.LoadTable(context.Background(), catalog.Ident("ns.events__dlq"))
	require.NoError(t, err)
	require.Equal(t, 2, dlq.Metadata().Version(), "the dead-letter table stays version 2")
}

// TestFileWriteFailuresAreCounted: data files that cannot be completed
// (the object store fails the upload) end the run; the failure is counted,
// the pipeline restarts from the committed offsets and commits everything
// once.
func TestFileWriteFailuresAreCounted(t *testing.T) {
	h := newHarness(t, nil, ingest.KafkaConfig{})
	var vals []string
	for i := range 9 {
		vals = append(vals, fmt.Sprintf(`{"id": %d}`, i))
	}
	h.produce(vals...)
	require.NoError(t, failpoint.Set("fileio/after-close=error@1"))
	t.Cleanup(func() { _ = failpoint.Set("") })
	h.run(ingest.PipelineConfig{Schema: []ingest.Column{{Name: "id", Type: "long", Required: true}}}, 9)
	require.GreaterOrEqual(t, failpoint.Hits("fileio/after-close"), int64(2), "fired at the first file, passed after the restart")
	require.EqualValues(t, 1, h.metrics.Sum("floe_ingest_file_write_errors_total", "pipeline", "events"))
	require.EqualValues(t, 1, h.metrics.Sum("floe_ingest_pipeline_restarts_total", "pipeline", "events"))
	require.EqualValues(t, 9, h.rows("ns.events"))
}

// TestPipelinePicksUpNewPartitions: partitions added to a topic while the
// pipeline runs are consumed from their first offset, even with start:
// latest, and nothing already consumed is duplicated by the restart.
func TestPipelinePicksUpNewPartitions(t *testing.T) {
	h := newHarness(t, nil, ingest.KafkaConfig{})
	p := ingest.PipelineConfig{Start: "latest", CommitInterval: conf.Duration(100 * time.Millisecond),
		Schema: []ingest.Column{{Name: "id", Type: "long", Required: true}}}
	pl, stop := h.start(p, 100*time.Millisecond)
	require.Eventually(t, func() bool { return pl.Healthy() == nil }, 30*time.Second, 10*time.Millisecond)
	h.produce(`{"id": 1}`, `{"id": 2}`, `{"id": 3}`)
	require.Eventually(t, func() bool { return h.rows("ns.events") == 3 }, 30*time.Second, 20*time.Millisecond)

	opts, err := ingest.ClientOpts(h.kafka)
	require.NoError(t, err)
	cl, err := kgo.NewClient(append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
	require.NoError(t, err)
	defer cl.Close()
	_, err = kadm.NewClient(cl).CreatePartitions(context.Background(), 2, "events")
	require.NoError(t, err)
	// Produced to the new partitions before floe can have noticed them.
	for i, part := range []int32{3, 4, 3} {
		r := &kgo.Record{Topic: "events", Partition: part, Value: []byte(fmt.Sprintf(`{"id": %d}`, 10+i))}
		require.NoError(t, cl.ProduceSync(context.Background(), r).FirstErr())
	}
	require.Eventually(t, func() bool { return h.rows("ns.events") == 6 }, 30*time.Second, 20*time.Millisecond)
	require.NoError(t, stop())
	require.EqualValues(t, 6, h.rows("ns.events"))
	tbl, err := h.cat.LoadTable(context.Background(), catalog.Ident("ns.events"))
	require.NoError(t, err)
	off, _, _, err := commit.TableOffsets(tbl, "events")
	require.NoError(t, err)
	n, _ := off.Get("events", 3)
	require.EqualValues(t, 2, n)
}

// A field whose first records disagree (a number and a string, as user ids
// often do) becomes a string column under infer_conflicts: string, and
// every value lands in it as its JSON text; nothing is a dead letter.
func TestPipelineInferConflictsAsString(t *testing.T) {
	h := newHarness(t, nil, ingest.KafkaConfig{})
	var vals []string
	for i := 0; i < 30; i++ {
		vals = append(vals, fmt.Sprintf(`{"id": %d, "user_id": %d.5}`, i, i), fmt.Sprintf(`{"id": %d, "user_id": "u-%d"}`, 100+i, i))
	}
	h.produce(vals...)
	h.run(ingest.PipelineConfig{InferConflicts: ingest.InferConflictsString}, 60)

	tbl, err := h.cat.LoadTable(context.Background(), catalog.Ident("ns.events"))
	require.NoError(t, err)
	f, ok := tbl.Schema().FindFieldByName("user_id")
	require.True(t, ok)
	require.True(t, f.Type.Equals(iceberg.PrimitiveTypes.String), "user_id is %s", f.Type)
	require.EqualValues(t, 60, h.rows("ns.events"))
	require.EqualValues(t, 0, h.rows("ns.events__dlq"))
}
