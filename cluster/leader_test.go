package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/iceberg-go/table"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floelake/floe/catalog"
	"github.com/floelake/floe/cluster"
	"github.com/floelake/floe/commit"
	"github.com/floelake/floe/ingest"
	"github.com/floelake/floe/internal/conf"
	"github.com/floelake/floe/internal/failpoint"
	"github.com/floelake/floe/internal/testutil"
	"github.com/floelake/floe/maintain"
)

// The leader's commit path, below the e2e suite: a member running as a
// cluster of one (raft in memory, the same table writers, ledger and
// workers as any cluster), Kafka from kfake, and a catalog that misbehaves
// on the k-th commit of the main table. Whatever the fault, every record
// ends in the table exactly once.

const (
	topic     = "events"
	mainTable = "ns.events"
	rounds    = 3
	perRound  = 60
)

// fault is what the catalog does on the chosen commit.
type fault int

const (
	// conflict: the catalog refuses the commit (stale base), definitely
	// not applied.
	conflict fault = iota
	// lostBefore: the request never reaches the catalog and the caller
	// hears an error it cannot classify: outcome unknown, not applied.
	lostBefore
	// lostAfter: the commit lands and the answer is lost: outcome unknown,
	// applied.
	lostAfter
)

func (f fault) String() string { return [...]string{"conflict", "lost-before", "lost-after"}[f] }

// faultyCatalog fails the k-th CommitTable of one table (1-based) and
// counts whether it fired.
type faultyCatalog struct {
	*catalog.Catalog
	table string
	at    int
	fault fault

	mu    sync.Mutex
	calls int
	fired bool
}

func (f *faultyCatalog) CommitTable(ctx context.Context, ident table.Identifier, reqs []table.Requirement, upd []table.Update) (table.Metadata, string, error) {
	if catalogName(ident) != f.table {
		return f.Catalog.CommitTable(ctx, ident, reqs, upd)
	}
	f.mu.Lock()
	f.calls++
	hit := f.calls == f.at
	if hit {
		f.fired = true
	}
	f.mu.Unlock()
	if !hit {
		return f.Catalog.CommitTable(ctx, ident, reqs, upd)
	}
	switch f.fault {
	case conflict:
		return nil, "", fmt.Errorf("%w: injected stale base", table.ErrCommitFailed)
	case lostBefore:
		return nil, "", errors.New("injected: connection reset by peer")
	default:
		if _, _, err := f.Catalog.CommitTable(ctx, ident, reqs, upd); err != nil {
			return nil, "", err
		}
		return nil, "", errors.New("injected: context deadline exceeded after the write")
	}
}

func (f *faultyCatalog) didFire() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fired
}

func catalogName(ident table.Identifier) string { return strings.Join(ident, ".") }

// quietLogger sends the node's log to the test's, errors only.
func quietLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

type leaderRig struct {
	t     *testing.T
	kafka ingest.KafkaConfig
	cat   *catalog.Catalog
	node  *cluster.Node
	stop  func() error
	sent  int
}

func newLeaderRig(t *testing.T, wrap func(*catalog.Catalog) *catalog.Catalog) *leaderRig {
	t.Helper()
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, topic))
	require.NoError(t, err)
	t.Cleanup(kc.Close)
	return startLeaderRig(t, kc, testutil.SQLiteCatalog(t), wrap, nil)
}

// startLeaderRig starts a cluster of one on kc and cat; maint nil takes the
// default maintenance.
func startLeaderRig(t *testing.T, kc *kfake.Cluster, cat *catalog.Catalog, wrap func(*catalog.Catalog) *catalog.Catalog, maint *maintain.Config) *leaderRig {
	t.Helper()
	return startLeaderRigWith(t, kc, cat, wrap, maint, rigPipeline())
}

// rigPipeline is the rig's pipeline: topic into mainTable, schema inferred.
func rigPipeline() ingest.PipelineConfig {
	return ingest.PipelineConfig{
		Name: topic, Topics: []string{topic}, Table: mainTable, Format: "json", Start: "earliest",
		CommitInterval: conf.Duration(100 * time.Millisecond), TargetFileSize: 128 << 20,
		KafkaMetadata: []string{"partition", "offset"}, OnDataLoss: ingest.OnDataLossFail,
		FormatVersion: ingest.DefaultFormatVersion,
	}
}

// startLeaderRigWith is startLeaderRig running the pipeline pc.
func startLeaderRigWith(t *testing.T, kc *kfake.Cluster, cat *catalog.Catalog, wrap func(*catalog.Catalog) *catalog.Catalog, maint *maintain.Config, pc ingest.PipelineConfig) *leaderRig {
	t.Helper()
	kafka := ingest.DefaultKafkaConfig()
	kafka.Brokers, kafka.ClientID, kafka.Group = kc.ListenAddrs(), "floe-test", "floe-test"
	require.NoError(t, pc.Validate())

	r := &leaderRig{t: t, kafka: kafka, cat: cat}
	n, err := cluster.Start(cluster.Options{
		Cluster: cluster.Config{NodeID: "n1"}, Kafka: kafka, Pipelines: []ingest.PipelineConfig{pc},
		DataDir: t.TempDir(), Catalog: wrap(cat), Local: true, Logger: quietLogger(t), Maintenance: maint,
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	var once sync.Once
	var runErr error
	r.node = n
	r.stop = func() error {
		once.Do(func() { cancel(); runErr = <-done })
		return runErr
	}
	t.Cleanup(func() { _ = r.stop() })
	return r
}

// produce sends n records, round-robin over the partitions: every third
// one does not decode, so both outputs commit.
func (r *leaderRig) produce(n int) {
	r.t.Helper()
	opts, err := ingest.ClientOpts(r.kafka)
	require.NoError(r.t, err)
	cl, err := kgo.NewClient(append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))...)
	require.NoError(r.t, err)
	defer cl.Close()
	for i := range n {
		v := fmt.Sprintf(`{"id":%d,"v":"x"}`, r.sent)
		if r.sent%3 == 2 {
			v = "not json"
		}
		r.sent++
		rec := &kgo.Record{Topic: topic, Value: []byte(v), Partition: int32(i % 3)}
		require.NoError(r.t, cl.ProduceSync(context.Background(), rec).FirstErr())
	}
}

// waitCommitted waits until the ledger's committed offsets for both
// outputs reach every partition's end.
func (r *leaderRig) waitCommitted() {
	r.t.Helper()
	ends := map[int32]int64{}
	for i := range r.sent {
		ends[int32(i%3)]++
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if r.tableReaches(mainTable, ends) && r.tableReaches(mainTable+"__dlq", ends) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.t.Fatalf("tables did not reach %v in time: main at %v, dead letters at %v (pipeline healthy: %v)",
		ends, r.offsets(mainTable), r.offsets(mainTable+"__dlq"), r.node.Pipelines()[0].Healthy())
}

func (r *leaderRig) offsets(name string) commit.Offsets {
	tbl, err := r.cat.LoadTable(context.Background(), catalog.Ident(name))
	if err != nil {
		return nil
	}
	off, _, _, err := commit.TableOffsets(tbl, topic)
	if err != nil {
		return nil
	}
	return off
}

func (r *leaderRig) tableReaches(name string, ends map[int32]int64) bool {
	off := r.offsets(name)
	for p, end := range ends {
		if off[topic][p] < end {
			return false
		}
	}
	return true
}

// rows returns the (partition, offset) of every row of the table, failing
// on a duplicate.
func (r *leaderRig) rows(name string) map[[2]int64]bool {
	r.t.Helper()
	tbl, err := r.cat.LoadTable(context.Background(), catalog.Ident(name))
	require.NoError(r.t, err)
	return testutil.PartitionOffsets(r.t, tbl)
}

// run produces rounds of records, waiting for each to be committed, and
// checks that the main table holds every record that decodes exactly once.
func (r *leaderRig) run() {
	r.t.Helper()
	for range rounds {
		r.produce(perRound)
		r.waitCommitted()
	}
	require.NoError(r.t, r.stop())
	require.Equal(r.t, r.want(), r.rows(mainTable))
}

func TestLeaderCommitSurvivesCatalogFaults(t *testing.T) {
	for _, f := range []fault{conflict, lostBefore, lostAfter} {
		for _, at := range []int{1, 2, 4} {
			t.Run(fmt.Sprintf("%s@%d", f, at), func(t *testing.T) {
				var fc *faultyCatalog
				r := newLeaderRig(t, func(c *catalog.Catalog) *catalog.Catalog {
					fc = &faultyCatalog{Catalog: c, table: mainTable, at: at, fault: f}
					wrapped := *c
					wrapped.Catalog = fc
					return &wrapped
				})
				r.run()
				require.True(t, fc.didFire(), "the fault at commit %d never fired", at)
			})
		}
	}
}

// A report the ledger never hears (the leader lost it between the Iceberg
// commit and the ledger) is recovered from the table on the next sync.
func TestLeaderReportLost(t *testing.T) {
	for _, at := range []int{1, 3} {
		t.Run(fmt.Sprint(at), func(t *testing.T) {
			require.NoError(t, failpoint.Set(fmt.Sprintf("writer/before-report=error@%d", at)))
			t.Cleanup(func() { _ = failpoint.Set("") })
			r := newLeaderRig(t, func(c *catalog.Catalog) *catalog.Catalog { return c })
			r.run()
			require.GreaterOrEqual(t, failpoint.Hits("writer/before-report"), int64(at), "the failpoint never fired")
		})
	}
}

// A proposal applied by the ledger whose answer the member never hears is
// retried; the ledger answers the retry as already accepted and nothing is
// committed twice.
func TestProposalAnswerLost(t *testing.T) {
	require.NoError(t, failpoint.Set("cluster/after-propose=error@2"))
	t.Cleanup(func() { _ = failpoint.Set("") })
	r := newLeaderRig(t, func(c *catalog.Catalog) *catalog.Catalog { return c })
	r.run()
	require.GreaterOrEqual(t, failpoint.Hits("cluster/after-propose"), int64(2), "the failpoint never fired")
}
