package node

import (
	"context"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	icerest "github.com/apache/iceberg-go/catalog/rest"
	"github.com/apache/iceberg-go/table"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floelake/floe/ingest"
	"github.com/floelake/floe/internal/conf"
	"github.com/floelake/floe/internal/config"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

func TestNodeServesOperationsEndpoints(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "in"))
	require.NoError(t, err)
	defer cluster.Close()
	dir := t.TempDir()
	const name = "in"
	cfg := config.Default()
	cfg.Node.DataDir = dir
	cfg.Node.HTTPAddr = "127.0.0.1:0"
	cfg.Catalog.URI = "sqlite://" + filepath.Join(dir, "c.db")
	cfg.Kafka.Brokers = cluster.ListenAddrs()
	cfg.Pipelines = []ingest.PipelineConfig{{Name: name, Topics: []string{"in"}, Table: "ns." + name,
		CommitInterval: conf.Duration(100 * time.Millisecond),
		Schema:         []ingest.Column{{Name: "id", Type: "long", Required: true}}}}
	cfg.FillDefaults()
	require.NoError(t, cfg.Validate())

	ctx, cancel := context.WithCancel(context.Background())
	n, err := New(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	require.NoError(t, n.Listen())
	base := "http://" + n.Addr()
	code, body := get(t, base+"/readyz")
	require.Equal(t, http.StatusServiceUnavailable, code, "not ready before Run")
	require.Contains(t, body, "starting")

	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	require.Eventually(t, func() bool { c, _ := get(t, base+"/readyz"); return c == http.StatusOK }, 30*time.Second, 20*time.Millisecond)
	code, _ = get(t, base+"/healthz")
	require.Equal(t, http.StatusOK, code)

	pcl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Kafka.Brokers...))
	require.NoError(t, err)
	defer pcl.Close()
	for _, v := range []string{`{"id":1}`, `{"id":2}`, `oops`} {
		require.NoError(t, pcl.ProduceSync(ctx, &kgo.Record{Topic: "in", Value: []byte(v)}).FirstErr())
	}
	want := []string{
		`floe_commit_records_total{table="ns.` + name + `"} 2`,
		`floe_ingest_dead_letters_total{pipeline="` + name + `"} 1`,
		`floe_ingest_records_total{pipeline="` + name + `"} 3`,
		"floe_commit_duration_seconds_bucket", "floe_ingest_lag_records{", "floe_commit_freshness_seconds{", "floe_commit_last_snapshot_id{",
	}
	missing := func() []string {
		_, m := get(t, base+"/metrics")
		var out []string
		for _, w := range want {
			if !strings.Contains(m, w) {
				out = append(out, w)
			}
		}
		return out
	}
	require.Eventually(t, func() bool { return len(missing()) == 0 }, 30*time.Second, 50*time.Millisecond, "missing: %v", missing())

	// The REST catalog at /iceberg: an Iceberg REST client finds the
	// table, loads it at the catalog's metadata file and reads its rows.
	rc, err := icerest.NewCatalog(ctx, "floe", base+"/iceberg", icerest.WithWarehouseLocation("floe"))
	require.NoError(t, err)
	ids, err := collect(rc.ListTables(ctx, table.Identifier{"ns"}))
	require.NoError(t, err)
	require.Contains(t, ids, table.Identifier{"ns", name})
	tbl, err := rc.LoadTable(ctx, table.Identifier{"ns", name})
	require.NoError(t, err)
	own, err := n.cat.LoadTable(ctx, table.Identifier{"ns", name})
	require.NoError(t, err)
	require.Equal(t, own.MetadataLocation(), tbl.MetadataLocation())
	at, err := tbl.Scan().ToArrowTable(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 2, at.NumRows())
	at.Release()
	code, body = get(t, base+"/iceberg/v1/namespaces/ns/tables/nosuch")
	require.Equal(t, http.StatusNotFound, code, body)
	require.Contains(t, body, "NoSuchTableException")
	cancel()
	require.NoError(t, <-done)
}

// collect gathers an iterator's identifiers.
func collect(seq iter.Seq2[table.Identifier, error]) ([]table.Identifier, error) {
	var out []table.Identifier
	for id, err := range seq {
		if err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, nil
}

func TestNodeStopsOnConfigError(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "in"))
	require.NoError(t, err)
	defer cluster.Close()
	dir := t.TempDir()
	cfg := config.Default()
	cfg.Node.DataDir, cfg.Node.HTTPAddr = dir, ""
	cfg.Kafka.Brokers = cluster.ListenAddrs()
	// A partition source that is not in the (inferred) schema can only be
	// found once records arrive: the node must stop with a clear error.
	cfg.Pipelines = []ingest.PipelineConfig{{Name: "in", Topics: []string{"in"}, Table: "ns.in", PartitionBy: []string{"day(nope)"}}}
	cfg.FillDefaults()
	require.NoError(t, cfg.Validate())
	pcl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Kafka.Brokers...))
	require.NoError(t, err)
	defer pcl.Close()
	require.NoError(t, pcl.ProduceSync(context.Background(), &kgo.Record{Topic: "in", Value: []byte(`{"id":1}`)}).FirstErr())

	n, err := New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err = n.Run(ctx)
	require.ErrorContains(t, err, `no column "nope"`)
	require.NoError(t, ctx.Err(), "stopped by the error, not the timeout")
}

// Two nodes on one data directory would share raft state, the embedded
// catalog and staged files: the second is refused with the holder named,
// and the directory is free again once the first stops.
func TestDataDirIsLocked(t *testing.T) {
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "in"))
	require.NoError(t, err)
	defer kc.Close()
	cfg := config.Default()
	cfg.Node.DataDir, cfg.Node.HTTPAddr = t.TempDir(), ""
	cfg.Kafka.Brokers = kc.ListenAddrs()
	cfg.Pipelines = []ingest.PipelineConfig{{Name: "in", Topics: []string{"in"}, Table: "ns.in"}}
	cfg.FillDefaults()
	require.NoError(t, cfg.Validate())
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))

	first, err := New(context.Background(), cfg, quiet)
	require.NoError(t, err)
	_, err = New(context.Background(), cfg, quiet)
	require.ErrorContains(t, err, "node.data_dir "+cfg.Node.DataDir+" is in use by another floe node (pid "+fmt.Sprint(os.Getpid()))

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.NoError(t, first.Run(ctx))
	second, err := New(context.Background(), cfg, quiet)
	require.NoError(t, err, "the lock is released when Run returns")
	require.NoError(t, second.Run(ctx))
}

// A pipeline that cannot run (here: a partition spec naming a column the
// inferred schema lacks) stops alone: the node's other pipeline commits,
// and /readyz names the one that stopped. A pipeline whose topic does not
// exist says what it waits for.
func TestPipelineFailureIsolated(t *testing.T) {
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "good", "bad"))
	require.NoError(t, err)
	defer kc.Close()
	cfg := config.Default()
	cfg.Node.DataDir, cfg.Node.HTTPAddr = t.TempDir(), ""
	cfg.Kafka.Brokers = kc.ListenAddrs()
	cfg.Pipelines = []ingest.PipelineConfig{
		{Name: "good", Topics: []string{"good"}, Table: "ns.good", CommitInterval: conf.Duration(100 * time.Millisecond)},
		{Name: "bad", Topics: []string{"bad"}, Table: "ns.bad", PartitionBy: []string{"day(nope)"}},
		{Name: "later", Topics: []string{"later"}, Table: "ns.later"},
	}
	cfg.FillDefaults()
	require.NoError(t, cfg.Validate())
	pcl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Kafka.Brokers...))
	require.NoError(t, err)
	defer pcl.Close()
	for _, topic := range []string{"good", "bad"} {
		require.NoError(t, pcl.ProduceSync(context.Background(), &kgo.Record{Topic: topic, Value: []byte(`{"id":1}`)}).FirstErr())
	}

	n, err := New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	require.Eventually(t, func() bool {
		err := n.Ready()
		return n.Pipelines()[0].Stats().Committed == 1 && err != nil &&
			strings.Contains(err.Error(), `pipeline bad cannot run: pipelines[bad].partition_by`) &&
			strings.Contains(err.Error(), `pipeline later: topic "later" does not exist yet; schema inference waits for it`)
	}, 60*time.Second, 50*time.Millisecond, "the good pipeline commits; readyz names the stopped and the waiting one (last: %v)", n.Ready())
	select {
	case err := <-done:
		t.Fatalf("the node stopped: %v", err)
	default:
	}
	cancel()
	require.NoError(t, <-done)
}

// A catalog that is down when the node starts is waited for, as an
// unreachable Kafka is: /readyz says so meanwhile, and the node starts
// once the catalog answers. (A Postgres catalog behind a proxy that
// starts listening only after the node has tried.)
func TestNodeWaitsForAnUnreachableCatalog(t *testing.T) {
	const pg = "127.0.0.1:5432"
	if c, err := net.DialTimeout("tcp", pg, time.Second); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("PostgreSQL is not running on %s: %v", pg, err)
		}
		t.Skipf("PostgreSQL is not running on %s", pg)
	} else {
		_ = c.Close()
	}
	free := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		defer ln.Close()
		return ln.Addr().String()
	}
	proxyAddr, httpAddr := free(), free()
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "in"))
	require.NoError(t, err)
	defer kc.Close()
	cfg := config.Default()
	cfg.Node.DataDir, cfg.Node.HTTPAddr = t.TempDir(), httpAddr
	cfg.Catalog.Name = fmt.Sprintf("floe_node_test_%d", time.Now().UnixNano())
	cfg.Catalog.URI = "postgres://postgres@" + proxyAddr + "/test?sslmode=disable"
	cfg.Catalog.Warehouse = "file://" + t.TempDir()
	cfg.Kafka.Brokers = kc.ListenAddrs()
	cfg.Pipelines = []ingest.PipelineConfig{{Name: "in", Topics: []string{"in"}, Table: "ns.in"}}
	cfg.FillDefaults()
	require.NoError(t, cfg.Validate())

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		n   *Node
		err error
	}
	started := make(chan result, 1)
	go func() {
		n, err := New(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
		started <- result{n, err}
	}()
	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + httpAddr + "/readyz")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode == http.StatusServiceUnavailable &&
			strings.Contains(string(body), "waiting for the catalog: catalog: postgres://***@"+proxyAddr+"/test?sslmode=disable is unreachable")
	}, 30*time.Second, 50*time.Millisecond, "/readyz says the node waits for the catalog")
	select {
	case r := <-started:
		t.Fatalf("New returned while the catalog was unreachable: %v", r.err)
	default:
	}

	// The catalog comes back.
	ln, err := net.Listen("tcp", proxyAddr)
	require.NoError(t, err)
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				up, err := net.Dial("tcp", pg)
				if err != nil {
					return
				}
				defer up.Close()
				go func() { _, _ = io.Copy(up, c) }()
				_, _ = io.Copy(c, up)
			}()
		}
	}()
	var r result
	select {
	case r = <-started:
	case <-time.After(2 * time.Minute):
		t.Fatal("the node never started after the catalog came back")
	}
	require.NoError(t, r.err)
	runCtx, stop := context.WithCancel(context.Background())
	stop()
	require.NoError(t, r.n.Run(runCtx))
}
