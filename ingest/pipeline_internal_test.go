package ingest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floelake/floe/catalog"
	"github.com/floelake/floe/commit"
	"github.com/floelake/floe/internal/conf"
	"github.com/floelake/floe/internal/fileio"
	"github.com/floelake/floe/internal/testutil"
)

// fakeWriter counts what a seal's owner does with it.
type fakeWriter struct {
	closeErr        error
	closed, aborted atomic.Int32
}

func (w *fakeWriter) Close(context.Context) ([]iceberg.DataFile, error) {
	if w.closeErr != nil {
		return nil, w.closeErr
	}
	w.closed.Add(1)
	return nil, nil
}

func (w *fakeWriter) Abort() { w.aborted.Add(1) }

func fakes(n int) []*fakeWriter {
	out := make([]*fakeWriter, n)
	for i := range out {
		out[i] = &fakeWriter{}
	}
	return out
}

func writers(ws ...*fakeWriter) []segmentWriter {
	out := make([]segmentWriter, len(ws))
	for i, w := range ws {
		out[i] = w
	}
	return out
}

// held is a worker's share of a seal holding the given writers per output.
func held(perOutput ...[]segmentWriter) []outputFlush {
	out := make([]outputFlush, len(perOutput))
	for i, ws := range perOutput {
		out[i].writers = ws
	}
	return out
}

// TestCloseWritersAbortsEveryWriterOnError: when one worker's share of a
// seal carries an error, no file of the seal is committed, and every writer
// of every share is aborted (their uploads would otherwise stay open).
func TestCloseWritersAbortsEveryWriterOnError(t *testing.T) {
	w := fakes(6)
	boom := errors.New("boom")
	s := seal{results: []flushResult{
		{outs: held(writers(w[0], w[1]), writers(w[2]))},
		{outs: held(writers(w[3]), nil), err: boom},
		{outs: held(writers(w[4]), writers(w[5]))},
	}}
	_, err := closeWriters(context.Background(), s)
	require.ErrorIs(t, err, boom)
	for i, fw := range w {
		require.EqualValues(t, 1, fw.aborted.Load(), "writer %d aborted", i)
		require.EqualValues(t, 0, fw.closed.Load(), "writer %d closed", i)
	}
}

// TestCloseWritersAbortsWhatItDoesNotClose: when closing one writer fails,
// every writer ends closed or aborted, the failed one aborted.
func TestCloseWritersAbortsWhatItDoesNotClose(t *testing.T) {
	w := fakes(20)
	w[7].closeErr = errors.New("upload failed")
	s := seal{results: []flushResult{
		{outs: held(writers(w[:10]...), nil)},
		{outs: held(writers(w[10:15]...), writers(w[15:]...))},
	}}
	_, err := closeWriters(context.Background(), s)
	require.ErrorContains(t, err, "upload failed")
	var cfgErr *configError
	require.False(t, errors.As(err, &cfgErr), "a storage error is retried")
	require.EqualValues(t, 1, w[7].aborted.Load())
	for i, fw := range w {
		require.True(t, fw.closed.Load()+fw.aborted.Load() >= 1, "writer %d neither closed nor aborted", i)
	}
}

// TestCloseWritersInvalidFileIsFatal: a file that cannot be produced from its
// rows fails the same way on every attempt, so the pipeline stops instead of
// restarting forever.
func TestCloseWritersInvalidFileIsFatal(t *testing.T) {
	for name, s := range map[string]func(*fakeWriter) seal{
		"close": func(w *fakeWriter) seal {
			w.closeErr = fmt.Errorf("fileio: close x.parquet: %w: bad stats", fileio.ErrInvalidFile)
			return seal{results: []flushResult{{outs: held(writers(w), nil)}}}
		},
		"worker": func(w *fakeWriter) seal {
			return seal{results: []flushResult{{outs: held(writers(w), nil),
				err: fmt.Errorf("ingest: fileio: write x.parquet: %w: schema mismatch", fileio.ErrInvalidFile)}}}
		},
	} {
		t.Run(name, func(t *testing.T) {
			w := &fakeWriter{}
			_, err := closeWriters(context.Background(), s(w))
			var cfgErr *configError
			require.ErrorAs(t, err, &cfgErr)
			require.ErrorIs(t, err, fileio.ErrInvalidFile)
			require.EqualValues(t, 1, w.aborted.Load())
		})
	}
}

// env is a broker, a catalog and a pipeline for tests that drive consume
// directly.
type env struct {
	t       *testing.T
	cluster *kfake.Cluster
	cat     *catalog.Catalog
	kafka   KafkaConfig
}

func newEnv(t *testing.T) *env {
	t.Helper()
	cl, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "events"))
	require.NoError(t, err)
	t.Cleanup(cl.Close)
	cat := testutil.SQLiteCatalog(t)
	return &env{t: t, cluster: cl, cat: cat,
		kafka: KafkaConfig{Brokers: cl.ListenAddrs(), ClientID: "floe-test", Group: "floe-test", FetchMaxBytes: 16 << 20}}
}

func (e *env) produce(n int) {
	e.t.Helper()
	opts, err := ClientOpts(e.kafka)
	require.NoError(e.t, err)
	cl, err := kgo.NewClient(append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
	require.NoError(e.t, err)
	defer cl.Close()
	for i := range n {
		r := &kgo.Record{Topic: "events", Partition: int32(i % 3), Value: []byte(fmt.Sprintf(`{"id": %d}`, i))}
		require.NoError(e.t, cl.ProduceSync(context.Background(), r).FirstErr())
	}
}

func (e *env) pipeline(interval time.Duration) *Pipeline {
	e.t.Helper()
	return e.pipelineWith(interval, nil)
}

// pipelineWith is pipeline with its configuration changed by mod.
func (e *env) pipelineWith(interval time.Duration, mod func(*PipelineConfig)) *Pipeline {
	e.t.Helper()
	cfg := PipelineConfig{Name: "events", Table: "ns.events", Topics: []string{"events"},
		Format: "json", Start: "earliest", CommitInterval: conf.Duration(interval), TargetFileSize: 128 << 20, Workers: 2,
		Schema: []Column{{Name: "id", Type: "long", Required: true}}}
	if mod != nil {
		mod(&cfg)
	}
	p, err := New(Options{Pipeline: cfg, Kafka: e.kafka, Catalog: e.cat, ShutdownTimeout: time.Minute})
	require.NoError(e.t, err)
	return p
}

// TestSealMadeAtCancellationIsDelivered: the context ends right after a
// commit interval's seal was made, while the delivery is busy (its channel
// full). That seal holds consumed records and writers: it must be delivered
// before the final one, never dropped, or the final seal would not be
// contiguous with what was committed and its writers would leak.
func TestSealMadeAtCancellationIsDelivered(t *testing.T) {
	e := newEnv(t)
	e.produce(30)
	p := e.pipeline(20 * time.Millisecond)
	pr, err := p.prepare(context.Background(), context.Background())
	require.NoError(t, err)
	defer pr.adm.Close()
	plan, floors, pos := seekPlan(pr.parts, pr.committed, pr.starts)
	outs := outputSpecs(pr.outs, pr.infos, floors)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var made []seal
	var mu sync.Mutex
	p.sealed = func(s seal) {
		mu.Lock()
		defer mu.Unlock()
		made = append(made, s)
		// The first two fill the channel (the delivery holds off); the
		// context ends as the third is made.
		if len(made) == 3 {
			cancel()
		}
	}
	var got []seal
	err = p.consume(ctx, pr.baseOpts, consumeSpec{outs: outs, plan: plan, pos: pos,
		deliver: func(dctx context.Context, seals <-chan seal) error {
			<-ctx.Done()
			for s := range seals {
				got = append(got, s)
				if _, err := closeWriters(dctx, s); err != nil {
					return err
				}
			}
			return nil
		}})
	require.NoError(t, err)

	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, 4, len(made), "three interval seals and the final one")
	require.Equal(t, len(made), len(got), "every seal made was delivered")
	require.True(t, got[3].final)
	segs := make([]commit.Segment, len(outs))
	var records int64
	for i, s := range got {
		require.Same(t, &made[i].results[0], &s.results[0], "seal %d delivered in order", i)
		for _, r := range s.results {
			require.NoError(t, r.err)
			require.Len(t, r.outs, len(outs))
			for tb, o := range r.outs {
				if segs[tb].From == nil {
					segs[tb] = commit.Segment{From: commit.Offsets{}, To: commit.Offsets{}}
				}
				require.NoError(t, segs[tb].Append(o.seg), "contiguous")
				records += o.seg.Records
			}
		}
	}
	require.Equal(t, p.stats.recordsIn.Load(), records, "every record consumed is in a delivered seal")
}
