package gen

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

func newCluster(t *testing.T) []string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, "clicks"))
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

func newClient(t *testing.T, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(opts...)
	require.NoError(t, err)
	t.Cleanup(cl.Close)
	return cl
}

func TestProduceLimit(t *testing.T) {
	for _, rate := range []int{0, 20_000} {
		t.Run(map[int]string{0: "unpaced", 20_000: "paced"}[rate], func(t *testing.T) {
			addrs := newCluster(t)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()

			const limit = 5_000
			var stats ProducerStats
			cfg := ProducerConfig{Topic: "clicks", Kind: Clicks, Rate: rate, Limit: limit, Gen: Config{Seed: 1}}
			require.NoError(t, Produce(ctx, newClient(t, kgo.SeedBrokers(addrs...)), cfg, &stats))
			require.EqualValues(t, limit, stats.Produced.Load())
			require.Positive(t, stats.Malformed.Load())

			// End offsets count what the broker holds, so they catch extra
			// records that a consumer stopping at limit would miss.
			adm := kadm.NewClient(newClient(t, kgo.SeedBrokers(addrs...)))
			ends, err := adm.ListEndOffsets(ctx, "clicks")
			require.NoError(t, err)
			var held int64
			ends.Each(func(o kadm.ListedOffset) { held += o.Offset })
			require.EqualValues(t, limit, held)

			consumer := newClient(t, kgo.SeedBrokers(addrs...), kgo.ConsumeTopics("clicks"),
				kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
			var got, malformed int
			keyed := map[string]int32{}
			for got < limit {
				fs := consumer.PollFetches(ctx)
				require.NoError(t, fs.Err())
				fs.EachRecord(func(r *kgo.Record) {
					got++
					if _, err := strictDecode(Schema(Clicks), r.Value); err != nil {
						malformed++
					}
					// Keying by entity keeps one user's events in order.
					if p, ok := keyed[string(r.Key)]; ok {
						require.Equal(t, p, r.Partition, "key %s in two partitions", r.Key)
					}
					keyed[string(r.Key)] = r.Partition
				})
			}
			require.Equal(t, limit, got)
			require.EqualValues(t, stats.Malformed.Load(), malformed)
		})
	}
}

// TestProduceOrders checks how order events reach the broker: tombstones
// as records with a nil value, and every event of an order (its placing,
// updates, tombstone) in one partition, keyed by the order id.
func TestProduceOrders(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, "orders"))
	require.NoError(t, err)
	t.Cleanup(c.Close)
	addrs := c.ListenAddrs()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	const limit = 5_000
	var stats ProducerStats
	cfg := ProducerConfig{Topic: "orders", Kind: Orders, Limit: limit, Gen: Config{Seed: 2}}
	require.NoError(t, Produce(ctx, newClient(t, kgo.SeedBrokers(addrs...)), cfg, &stats))
	require.EqualValues(t, limit, stats.Produced.Load())
	require.Positive(t, stats.Tombstones.Load())
	require.Positive(t, stats.Malformed.Load())

	consumer := newClient(t, kgo.SeedBrokers(addrs...), kgo.ConsumeTopics("orders"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var got, tombstones, again int
	partition := map[string]int32{}
	for got < limit {
		fs := consumer.PollFetches(ctx)
		require.NoError(t, fs.Err())
		fs.EachRecord(func(r *kgo.Record) {
			got++
			id, err := strconv.Unquote(string(r.Key))
			require.NoError(t, err, "key %s", r.Key)
			if r.Value == nil {
				tombstones++
				_, placed := partition[id]
				require.True(t, placed, "tombstone of order %s, never placed", id)
			} else {
				require.NotEmpty(t, r.Value)
			}
			if p, ok := partition[id]; ok {
				require.Equal(t, p, r.Partition, "order %s in two partitions", id)
				again++
			}
			partition[id] = r.Partition
		})
	}
	require.Equal(t, limit, got)
	require.EqualValues(t, stats.Tombstones.Load(), tombstones)
	require.Positive(t, again, "some orders have several events")
}

func TestProduceStopsOnCancel(t *testing.T) {
	addrs := newCluster(t)
	ctx, cancel := context.WithCancel(context.Background())
	var stats ProducerStats
	done := make(chan error, 1)
	go func() {
		done <- Produce(ctx, newClient(t, kgo.SeedBrokers(addrs...)),
			ProducerConfig{Topic: "clicks", Kind: Orders, Rate: 1000}, &stats)
	}()
	// Wait for progress rather than for a duration, so the test does not
	// depend on machine speed.
	for stats.Produced.Load() < 10 {
		select {
		case err := <-done:
			t.Fatalf("Produce returned early: %v", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	cancel()
	require.NoError(t, <-done)
}

func TestProduceReportsErrors(t *testing.T) {
	addrs := newCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// The topic does not exist and kfake does not auto-create it.
	cl := newClient(t, kgo.SeedBrokers(addrs...), kgo.RecordDeliveryTimeout(time.Second))
	err := Produce(ctx, cl, ProducerConfig{Topic: "missing", Kind: Clicks, Limit: 100}, nil)
	require.Error(t, err)
	require.ErrorContains(t, err, "missing")
}

func TestProduceConfigErrors(t *testing.T) {
	ctx := context.Background()
	for _, cfg := range []ProducerConfig{
		{Kind: Clicks},
		{Topic: "t", Kind: Clicks, Rate: -1},
		{Topic: "t", Kind: Clicks, Limit: -1},
		{Topic: "t", Kind: "x"},
		{Topic: "t", Kind: Clicks, Gen: Config{LateRate: 3}},
	} {
		require.Error(t, Produce(ctx, nil, cfg, nil), "%+v", cfg)
	}
}

func BenchmarkProduce(b *testing.B) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, "clicks"))
	require.NoError(b, err)
	defer c.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ProducerLinger(5*time.Millisecond))
	require.NoError(b, err)
	defer cl.Close()
	b.ResetTimer()
	var stats ProducerStats
	require.NoError(b, Produce(context.Background(), cl,
		ProducerConfig{Topic: "clicks", Kind: Clicks, Limit: int64(b.N)}, &stats))
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
