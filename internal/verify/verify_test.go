package verify_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/floelake/floe/catalog"
	"github.com/floelake/floe/commit"
	"github.com/floelake/floe/ingest"
	"github.com/floelake/floe/ingest/decode"
	"github.com/floelake/floe/ingest/registry"
	"github.com/floelake/floe/ingest/transform"
	"github.com/floelake/floe/internal/conf"
	"github.com/floelake/floe/internal/config"
	"github.com/floelake/floe/internal/node"
	testregistry "github.com/floelake/floe/internal/testutil/registry"
	"github.com/floelake/floe/internal/verify"
)

// TestVerify runs a windowed pipeline over out-of-order and late events
// until it has committed everything, then verifies it: the table equals
// the batch. A definition whose transform differs from the one that wrote
// the table (another filter) is caught, with the windows that differ.
func TestVerify(t *testing.T) {
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "clicks"))
	require.NoError(t, err)
	defer kc.Close()
	cfg, dir := nodeConfig(t, kc, ingest.PipelineConfig{
		Name: "per_minute", Topics: []string{"clicks"}, Table: "ns.per_minute", Start: "earliest",
		CommitInterval: conf.Duration(100 * time.Millisecond),
		Schema: []ingest.Column{
			{Name: "user", Type: "string", Required: true},
			{Name: "country", Type: "string", Required: true},
			{Name: "ts", Type: "timestamptz", Required: true},
			{Name: "ms", Type: "double"},
		},
		Transform: &transform.Config{
			Filter: `user != "bot"`,
			Window: &transform.WindowConfig{
				Time: "ts", Type: "hopping", Size: conf.Duration(2 * time.Minute), Slide: conf.Duration(time.Minute),
				GroupBy: []string{"country"},
				Aggregates: []transform.Aggregate{
					{Name: "n", Fn: "count"}, {Name: "users", Fn: "approx_count_distinct", Of: "user", Precision: 10},
					{Name: "total_ms", Fn: "sum", Of: "ms"}, {Name: "avg_ms", Fn: "avg", Of: "ms"}, {Name: "last", Fn: "max", Of: "ts"},
				},
			},
			State: transform.StateConfig{Retention: conf.Duration(time.Second)},
		},
	})

	r := rand.New(rand.NewPCG(1, 2))
	t0 := time.Date(2026, 7, 1, 8, 0, 0, 0, time.UTC)
	pcl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Kafka.Brokers...), kgo.DefaultProduceTopic("clicks"))
	require.NoError(t, err)
	defer pcl.Close()
	const n = 2000
	for i := range n {
		ts := t0.Add(time.Duration(i) * 50 * time.Millisecond)
		if r.IntN(20) == 0 {
			ts = ts.Add(-time.Duration(r.Int64N(int64(3 * time.Hour)))) // late
		}
		user := fmt.Sprintf("u%d", r.IntN(300))
		if r.IntN(10) == 0 {
			user = "bot"
		}
		v := fmt.Sprintf(`{"user":%q,"country":%q,"ts":%q,"ms":%d.5}`, user, []string{"DE", "FR", "JP"}[r.IntN(3)], ts.Format(time.RFC3339Nano), r.IntN(1000))
		if i%500 == 7 {
			v = `{"user":"x"` // malformed
		}
		pcl.Produce(context.Background(), &kgo.Record{Value: []byte(v)}, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Errorf("produce: %v", err)
			}
		})
	}
	require.NoError(t, pcl.Flush(context.Background()))

	runUntilCovered(t, cfg, dir, n)

	var out bytes.Buffer
	res, err := verify.Run(context.Background(), verify.Options{Config: cfg, Pipeline: "per_minute"}, &out)
	require.NoError(t, err, out.String())
	t.Log(out.String())
	require.True(t, res.OK(), out.String())
	require.EqualValues(t, n, res.Records)
	require.EqualValues(t, 4, res.DeadLetters)
	require.Positive(t, res.Filtered)
	require.Positive(t, res.Windows)
	require.Equal(t, res.Windows, res.TableRows)
	require.LessOrEqual(t, res.DistinctError, res.DistinctBound)
	require.Zero(t, res.DistinctBound, "no window of this test has 1000 distinct users")
	require.Contains(t, out.String(), "OK: the table equals the batch recomputation")

	// The same table checked against a definition with another filter.
	cfg.Pipelines[0].Transform.Filter = `user != "u1"`
	out.Reset()
	res, err = verify.Run(context.Background(), verify.Options{Config: cfg, Pipeline: "per_minute", MaxShown: 3}, &out)
	require.NoError(t, err)
	require.False(t, res.OK(), out.String())
	require.Positive(t, res.Different, out.String())
	require.Positive(t, res.Missing, out.String())
	require.Contains(t, out.String(), `missing: window country="`)
	require.Contains(t, out.String(), "more differences not shown")
	require.Contains(t, out.String(), "FAILED")

	_, err = verify.Run(context.Background(), verify.Options{Config: cfg, Pipeline: "nope"}, &out)
	require.ErrorContains(t, err, `no pipeline "nope" (the configuration has per_minute)`)
}

// runUntilCovered runs a node of cfg until the table of its first pipeline
// has committed n records, then stops it.
func runUntilCovered(t *testing.T, cfg config.Config, dir string, n int64) {
	t.Helper()
	pc := cfg.Pipelines[0]
	ctx, cancel := context.WithCancel(context.Background())
	nd, err := node.New(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- nd.Run(ctx) }()
	cat, err := catalog.Open(context.Background(), cfg.Catalog, cfg.Storage, dir)
	require.NoError(t, err)
	defer cat.Close()
	deadline := time.Now().Add(60 * time.Second)
	for {
		covered := int64(0)
		if tbl, err := cat.LoadTable(context.Background(), catalog.Ident(pc.Table)); err == nil {
			if off, _, ok, _ := commit.TableOffsets(tbl, pc.Name); ok {
				for _, ps := range off {
					for _, o := range ps {
						covered += o
					}
				}
			}
		}
		if covered == n {
			break
		}
		require.False(t, time.Now().After(deadline), "the pipeline did not commit every record in time (%d of %d)", covered, n)
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	require.NoError(t, <-done)
}

// TestVerifyProtobuf: the records of a windowed pipeline in protobuf, in
// the schema registry's wire format, are recomputed through the registry
// as the pipeline decoded them (malformed ones are dead letters in both);
// a registry that does not answer makes verify fail with the error rather
// than count dead letters.
func TestVerifyProtobuf(t *testing.T) {
	const text = `syntax = "proto3"; package floe.test;
import "google/protobuf/timestamp.proto";
message Click { string user = 1; string country = 2; google.protobuf.Timestamp ts = 3; double ms = 4; }`
	reg := testregistry.Start(t)
	id := reg.MustRegister(t, "clicks-value", testregistry.Schema{Schema: text, SchemaType: "PROTOBUF"})
	fd, err := decode.ProtoFileFromSource("click.proto", text, nil)
	require.NoError(t, err)
	md := fd.Messages().ByName("Click")

	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "clicks"))
	require.NoError(t, err)
	defer kc.Close()
	cfg, dir := nodeConfig(t, kc, ingest.PipelineConfig{
		Name: "per_minute", Topics: []string{"clicks"}, Table: "ns.per_minute", Start: "earliest",
		CommitInterval: conf.Duration(100 * time.Millisecond),
		Format:         ingest.FormatProtobuf,
		Registry:       registry.Config{URLs: []string{reg.URL()}, Timeout: conf.Duration(time.Second)},
		Schema: []ingest.Column{
			{Name: "user", Type: "string", Required: true},
			{Name: "country", Type: "string", Required: true},
			{Name: "ts", Type: "timestamptz", Required: true},
			{Name: "ms", Type: "double"},
		},
		Transform: &transform.Config{
			Filter: `user != "bot"`,
			Window: &transform.WindowConfig{
				Time: "ts", Type: "tumbling", Size: conf.Duration(time.Minute),
				GroupBy: []string{"country"},
				Aggregates: []transform.Aggregate{
					{Name: "n", Fn: "count"}, {Name: "total_ms", Fn: "sum", Of: "ms"}, {Name: "last", Fn: "max", Of: "ts"},
				},
			},
			State: transform.StateConfig{Retention: conf.Duration(time.Second)},
		},
	})

	r := rand.New(rand.NewPCG(3, 4))
	t0 := time.Date(2026, 7, 1, 8, 0, 0, 0, time.UTC)
	pcl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Kafka.Brokers...), kgo.DefaultProduceTopic("clicks"))
	require.NoError(t, err)
	defer pcl.Close()
	const n = 600
	malformed := 0
	for i := range n {
		ts := t0.Add(time.Duration(i) * 200 * time.Millisecond)
		if r.IntN(20) == 0 {
			ts = ts.Add(-time.Duration(r.Int64N(int64(time.Hour)))) // late
		}
		user := fmt.Sprintf("u%d", r.IntN(50))
		if r.IntN(10) == 0 {
			user = "bot"
		}
		m := dynamicpb.NewMessage(md)
		f := md.Fields()
		m.Set(f.ByName("user"), protoreflect.ValueOfString(user))
		m.Set(f.ByName("country"), protoreflect.ValueOfString([]string{"DE", "FR", "JP"}[r.IntN(3)]))
		m.Set(f.ByName("ts"), protoreflect.ValueOfMessage(timestamppb.New(ts).ProtoReflect()))
		m.Set(f.ByName("ms"), protoreflect.ValueOfFloat64(float64(r.IntN(1000))+0.5))
		b, err := proto.Marshal(m)
		require.NoError(t, err)
		if i%100 == 7 {
			b, malformed = []byte{0xff}, malformed+1
		}
		// The header, then the message indexes: [0] is one zero byte.
		v := append(append(registry.AppendHeader(nil, uint32(id)), 0), b...)
		require.NoError(t, pcl.ProduceSync(context.Background(), &kgo.Record{Value: v}).FirstErr())
	}
	runUntilCovered(t, cfg, dir, n)

	var out bytes.Buffer
	res, err := verify.Run(context.Background(), verify.Options{Config: cfg, Pipeline: "per_minute"}, &out)
	require.NoError(t, err, out.String())
	require.True(t, res.OK(), out.String())
	require.EqualValues(t, n, res.Records)
	require.EqualValues(t, malformed, res.DeadLetters)
	require.Positive(t, res.Filtered)
	require.Positive(t, res.Windows)
	require.Equal(t, res.Windows, res.TableRows)

	reg.DropConnections()
	out.Reset()
	_, err = verify.Run(context.Background(), verify.Options{Config: cfg, Pipeline: "per_minute"}, &out)
	require.ErrorContains(t, err, "verify: clicks/")
}

// nodeConfig is the configuration of a node with a local catalog and
// warehouse under a new directory, reading from kc, running pipeline pc.
func nodeConfig(t *testing.T, kc *kfake.Cluster, pc ingest.PipelineConfig) (config.Config, string) {
	t.Helper()
	dir := t.TempDir()
	cfg := config.Default()
	cfg.Node.DataDir, cfg.Node.HTTPAddr = dir, ""
	cfg.Catalog.URI = "sqlite://" + filepath.Join(dir, "c.db")
	cfg.Catalog.Warehouse = "file://" + filepath.Join(dir, "wh")
	cfg.Kafka.Brokers = kc.ListenAddrs()
	cfg.Pipelines = []ingest.PipelineConfig{pc}
	cfg.FillDefaults()
	require.NoError(t, cfg.Validate())
	return cfg, dir
}
