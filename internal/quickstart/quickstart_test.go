package quickstart

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floelake/floe/catalog"
	"github.com/floelake/floe/commit"
	"github.com/floelake/floe/ingest"
	"github.com/floelake/floe/internal/config"
	"github.com/floelake/floe/internal/gen"
	"github.com/floelake/floe/internal/schema"
)

// TestQuickstartRunsAndResumes runs the quickstart twice on one data
// directory and checks that the second run resumed: every record below the
// committed offsets is in exactly one of the table and its dead-letter
// table, across both runs.
func TestQuickstartRunsAndResumes(t *testing.T) {
	dir := t.TempDir()
	o := testOptions(dir)
	o.Duration = 3 * time.Second

	var out bytes.Buffer
	require.NoError(t, Run(context.Background(), o, &out))
	first := out.String()
	require.Contains(t, first, "demo.clicks")
	require.Contains(t, first, "SqlCatalog(\"floe\"")
	require.Contains(t, first, "floe quickstart stopped")
	require.Contains(t, first, "produced  consumed  committed", "the header names the columns as the README does")
	require.Contains(t, first, "lag  keys  replaced  deleted  windows written  re-opened  read back  files",
		"the key index's and the windows' figures follow the lag")
	require.Contains(t, first, "demo.orders is keyed by order_id")
	require.Equal(t, 1, strings.Count(first, ", final]"), "one final status line:\n%s", first)
	clicks := finalRow(t, first, "demo.clicks")
	require.Equal(t, []string{"-", "-", "-"}, clicks[6:9], "clicks is not keyed: %v", clicks)
	require.Equal(t, []string{"-", "-", "-"}, clicks[9:12], "clicks has no windows: %v", clicks)
	perMinute := finalRow(t, first, "demo.clicks_per_minute")
	written, err := strconv.ParseInt(perMinute[9], 10, 64)
	require.NoError(t, err, "demo.clicks_per_minute row %v", perMinute)
	require.Positive(t, written, "no window rows written: %v", perMinute)
	keys, replaced, deleted := keyIndexFigures(t, first)
	require.Positive(t, keys)
	require.Positive(t, replaced, "updates replace rows")
	require.Positive(t, deleted, "tombstones delete keys")

	out.Reset()
	require.NoError(t, Run(context.Background(), o, &out))
	rows := checkTables(t, dir)
	// The second run rebuilt the index from the table, and kept it with
	// the table to the end.
	keys, replaced, deleted = keyIndexFigures(t, out.String())
	require.EqualValues(t, rows["orders"], keys, "keys in the index = rows in demo.orders:\n%s", out.String())
	require.Positive(t, replaced)
	require.Positive(t, deleted)
}

// finalRow returns the fields of the final status line's row of table.
func finalRow(t *testing.T, out, table string) []string {
	t.Helper()
	i := strings.Index(out, ", final]")
	require.GreaterOrEqual(t, i, 0, "no final status line:\n%s", out)
	for _, line := range strings.Split(out[i:], "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == table {
			return f
		}
	}
	t.Fatalf("the final status has no row of %s:\n%s", table, out)
	return nil
}

// keyIndexFigures returns the keys, replaced and deleted figures of
// demo.orders on the final status line: the columns after lag.
func keyIndexFigures(t *testing.T, out string) (keys, replaced, deleted int64) {
	t.Helper()
	f := finalRow(t, out, "demo.orders")
	var n [3]int64
	for i := range n {
		var err error
		n[i], err = strconv.ParseInt(f[6+i], 10, 64)
		require.NoError(t, err, "demo.orders row %v", f)
	}
	return n[0], n[1], n[2]
}

// TestQuickstartCluster runs the quickstart as a three-member cluster whose
// leader is stopped and restarted twice: the others take over. After its
// clean stop, which may come right after a failover, both tables of each
// pipeline are committed to the same offsets and hold every record below
// them exactly once. Then the cluster runs again on the same data dir for
// a few seconds without failovers: its members find each other again,
// resume from the tables, and leave them as exact after the second stop.
func TestQuickstartCluster(t *testing.T) {
	dir := t.TempDir()
	o := testOptions(dir)
	o.Duration = 12 * time.Second
	o.Nodes = 3
	o.FailoverEvery = 4 * time.Second
	o.RestartAfter = time.Second

	var out bytes.Buffer
	require.NoError(t, Run(context.Background(), o, &out))
	got := out.String()
	require.Contains(t, got, "a cluster of 3 nodes")
	require.Contains(t, got, "stopping the leader")
	require.Contains(t, got, "leads after")
	require.Contains(t, got, "rejoins")
	require.Contains(t, got, "floe quickstart stopped")
	require.Equal(t, 1, strings.Count(got, ", final]"), "one final status line:\n%s", got)
	require.Contains(t, got, "lag  keys  replaced  deleted  windows written  re-opened  read back  pending segments")
	first := checkTables(t, dir)

	o.Duration, o.FailoverEvery = 4*time.Second, 0
	out.Reset()
	require.NoError(t, Run(context.Background(), o, &out))
	require.Contains(t, out.String(), "floe quickstart stopped")
	second := checkTables(t, dir)
	require.Greater(t, second["clicks"], first["clicks"], "the second run committed more clicks:\n%s", out.String())
}

// testOptions is a quick quickstart on free ports in dir.
func testOptions(dir string) Options {
	o := DefaultOptions()
	o.DataDir = dir
	o.KafkaPort = 0
	o.HTTPAddr = "127.0.0.1:0"
	o.GRPCAddr = "127.0.0.1:0"
	o.Rate = 500
	o.StatusEvery = time.Second
	o.CommitInterval = 300 * time.Millisecond
	return o
}

// checkTables checks that a cleanly stopped quickstart committed both tables
// of each pipeline to the same offsets, and that they hold what the records
// below them make: for clicks, the rows of the two add up to the records;
// demo.orders, keyed by order_id, holds exactly one row per order, the
// newest of its records that did not go to the dead letters, and none of
// the orders a tombstone deleted. It returns the rows of each main table.
func checkTables(t *testing.T, dir string) map[string]int64 {
	t.Helper()
	ctx := context.Background()
	cat, err := catalog.Open(ctx, catalog.Config{Type: "sql", Name: "floe"}, catalog.StorageConfig{}, dir)
	require.NoError(t, err)
	defer cat.Close()
	mainRows := map[string]int64{}
	for _, k := range []string{"clicks", "orders"} {
		var offsets [2]commit.Offsets
		var rows [2]int64
		var tables [2]arrow.Table
		for i, name := range []string{"demo." + k, "demo." + k + "__dlq"} {
			tbl, err := cat.LoadTable(ctx, catalog.Ident(name))
			require.NoError(t, err)
			off, _, found, err := commit.TableOffsets(tbl, k)
			require.NoError(t, err)
			require.True(t, found, name)
			offsets[i] = off
			at, err := tbl.Scan().ToArrowTable(ctx)
			require.NoError(t, err)
			defer at.Release()
			tables[i], rows[i] = at, at.NumRows()
			require.True(t, strings.HasPrefix(tbl.Location(), "file://"+filepath.Join(dir, "warehouse")))
		}
		// A clean stop commits both tables up to the same offsets.
		require.Equal(t, offsets[0], offsets[1], k)
		var total int64
		for _, ps := range offsets[0] {
			for _, o := range ps {
				total += o
			}
		}
		require.Positive(t, rows[0], k)
		mainRows[k] = rows[0]
		if k == "clicks" {
			require.Equal(t, total, rows[0]+rows[1], "%s: rows in table + dead letters = records below the committed offsets", k)
			continue
		}
		got := map[string]string{}
		eachRow(t, tables[0], func(col func(string) string) {
			id := col("order_id")
			_, dup := got[id]
			require.False(t, dup, "order %s has more than one row", id)
			got[id] = col("status") + " " + col("total")
		})
		dead := map[int64]bool{}
		eachRow(t, tables[1], func(col func(string) string) {
			require.Equal(t, k, col("topic"))
			p, _ := strconv.ParseInt(col("partition"), 10, 32)
			o, _ := strconv.ParseInt(col("offset"), 10, 64)
			dead[p<<40|o] = true
		})
		want := replayOrders(t, dir, offsets[0][k], dead)
		require.Equal(t, len(want), len(got), "orders in the table")
		require.Equal(t, want, got, "demo.orders holds the newest row of every order not deleted")
	}
	return mainRows
}

// eachRow calls fn for every row of at with a reader of the row's columns
// by name, as text.
func eachRow(t *testing.T, at arrow.Table, fn func(col func(name string) string)) {
	t.Helper()
	tr := array.NewTableReader(at, 0)
	defer tr.Release()
	for tr.Next() {
		rec := tr.RecordBatch()
		for i := range int(rec.NumRows()) {
			fn(func(name string) string {
				idx := rec.Schema().FieldIndices(name)
				require.Len(t, idx, 1, name)
				if d, ok := rec.Column(idx[0]).(*array.Decimal128); ok {
					// With every digit of the scale, as JSON has it.
					return d.Value(i).ToString(d.DataType().(*arrow.Decimal128Type).Scale)
				}
				return rec.Column(idx[0]).ValueStr(i)
			})
		}
	}
}

// replayOrders reads the orders topic from the quickstart's broker log up
// to the committed offsets and applies it as a table keyed by order_id
// does: by partition (an order's records are all in one) in offset order,
// a record's row replaces its order's, a tombstone deletes the order, and a
// dead-lettered record (dead holds partition<<40|offset) does nothing. It
// returns every order's status and total.
func replayOrders(t *testing.T, dir string, committed map[int32]int64, dead map[int64]bool) map[string]string {
	t.Helper()
	broker, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.DataDir(filepath.Join(dir, "kafka")))
	require.NoError(t, err)
	defer broker.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker.ListenAddrs()...), kgo.ConsumeTopics("orders"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	require.NoError(t, err)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	want := map[string]string{}
	next := map[int32]int64{}
	done := func() bool {
		for p, end := range committed {
			if next[p] < end {
				return false
			}
		}
		return true
	}
	var tombstones int
	for !done() {
		fs := cl.PollFetches(ctx)
		require.NoError(t, fs.Err())
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset >= committed[r.Partition] {
				return
			}
			require.Equal(t, next[r.Partition], r.Offset, "records of partition %d in order", r.Partition)
			next[r.Partition] = r.Offset + 1
			if dead[int64(r.Partition)<<40|r.Offset] {
				return
			}
			if r.Value == nil {
				id, err := strconv.Unquote(string(r.Key))
				require.NoError(t, err)
				_, ok := want[id]
				require.True(t, ok, "tombstone of order %s, which has no row", id)
				delete(want, id)
				tombstones++
				return
			}
			var row struct {
				OrderID string      `json:"order_id"`
				Status  string      `json:"status"`
				Total   json.Number `json:"total"`
			}
			require.NoError(t, json.Unmarshal(r.Value, &row), "%s", r.Value)
			require.Equal(t, strconv.Quote(row.OrderID), string(r.Key))
			want[row.OrderID] = row.Status + " " + row.Total.String()
		})
	}
	require.Positive(t, tombstones)
	return want
}

// TestOrdersPipelineDeclaresGenSchema checks that the orders pipeline
// declares gen's schema (same fields, ids and types) with order_id as its
// key, and that createTables creates the table with it.
func TestOrdersPipelineDeclaresGenSchema(t *testing.T) {
	p, err := pipeline(gen.Orders, testOptions(t.TempDir()))
	require.NoError(t, err)
	require.Equal(t, []string{"order_id"}, p.Key)
	sch, err := p.DeclaredSchema()
	require.NoError(t, err)
	want := gen.Schema(gen.Orders).Fields()
	require.Equal(t, want, sch.Fields()[:len(want)])
	require.Equal(t, []int{1}, sch.IdentifierFieldIDs)
	for _, c := range ingest.KeyOrderColumns {
		_, ok := sch.FindFieldByName(c)
		require.True(t, ok, c)
	}

	clicks, err := pipeline(gen.Clicks, testOptions(t.TempDir()))
	require.NoError(t, err)
	require.False(t, clicks.Keyed())
	require.Empty(t, clicks.Schema, "clicks takes the table's schema")
}

func TestCreateTables(t *testing.T) {
	ctx := context.Background()
	newConfig := func(dir string) config.Config {
		cfg := config.Default()
		cfg.Node.DataDir = dir
		cfg.Kafka.Brokers = []string{"127.0.0.1:9"}
		for _, k := range kinds {
			p, err := pipeline(k, testOptions(dir))
			require.NoError(t, err)
			cfg.Pipelines = append(cfg.Pipelines, p)
		}
		cfg.FillDefaults()
		require.NoError(t, cfg.Validate())
		return cfg
	}
	open := func(cfg config.Config) *catalog.Catalog {
		cat, err := catalog.Open(ctx, cfg.Catalog, cfg.Storage, cfg.Node.DataDir)
		require.NoError(t, err)
		t.Cleanup(func() { cat.Close() })
		return cat
	}

	t.Run("keyed", func(t *testing.T) {
		cfg := newConfig(t.TempDir())
		require.NoError(t, createTables(ctx, cfg, cfg.Node.DataDir))
		require.NoError(t, createTables(ctx, cfg, cfg.Node.DataDir), "the tables exist: nothing to do")
		cat := open(cfg)
		orders, err := cat.LoadTable(ctx, catalog.Ident("demo.orders"))
		require.NoError(t, err)
		require.Equal(t, []int{1}, orders.Schema().IdentifierFieldIDs, "demo.orders is keyed by order_id")
		spec := orders.Spec()
		require.Equal(t, 1, spec.NumFields(), "partitioned by the day of ts")
		require.Equal(t, 3, spec.Field(0).SourceID())
		require.Equal(t, iceberg.DayTransform{}, spec.Field(0).Transform)
		clicks, err := cat.LoadTable(ctx, catalog.Ident("demo.clicks"))
		require.NoError(t, err)
		require.Empty(t, clicks.Schema().IdentifierFieldIDs)
	})

	t.Run("older data dir", func(t *testing.T) {
		// An orders table of a quickstart from before orders were keyed.
		cfg := newConfig(t.TempDir())
		sch := gen.Schema(gen.Orders)
		spec, err := schema.Partition([]string{gen.PartitionSpecSQL(gen.Orders)}, sch)
		require.NoError(t, err)
		_, _, err = catalog.EnsureTable(ctx, open(cfg), catalog.Ident("demo.orders"), sch, spec, nil)
		require.NoError(t, err)
		err = createTables(ctx, cfg, cfg.Node.DataDir)
		require.ErrorContains(t, err, "older floe quickstart")
		require.ErrorContains(t, err, "--data-dir")
	})
}
