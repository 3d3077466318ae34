package node

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floelake/floe/catalog"
	"github.com/floelake/floe/commit"
	"github.com/floelake/floe/ingest"
	"github.com/floelake/floe/internal/conf"
	"github.com/floelake/floe/internal/config"
	"github.com/floelake/floe/maintain"
)

// POST /tables/{table}/compact (what `floe compact` calls) compacts a table
// on demand while records stream in, with progress and a summary.
func TestCompactOnDemand(t *testing.T) {
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "in"))
	require.NoError(t, err)
	defer kc.Close()
	dir := t.TempDir()
	cfg := config.Default()
	cfg.Node.DataDir = dir
	cfg.Node.HTTPAddr = "127.0.0.1:0"
	cfg.Catalog.URI = "sqlite://" + filepath.Join(dir, "c.db")
	cfg.Kafka.Brokers = kc.ListenAddrs()
	cfg.Maintenance.Compaction.Enabled = false // only on demand
	cfg.Pipelines = []ingest.PipelineConfig{{Name: "in", Topics: []string{"in"}, Table: "ns.in",
		CommitInterval: conf.Duration(100 * time.Millisecond),
		Schema:         []ingest.Column{{Name: "id", Type: "long", Required: true}}}}
	cfg.FillDefaults()
	require.NoError(t, cfg.Validate())

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n, err := New(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	require.NoError(t, n.Listen())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()

	pcl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Kafka.Brokers...))
	require.NoError(t, err)
	defer pcl.Close()
	tbl := func() *commit.Offsets {
		t, err := n.cat.LoadTable(ctx, catalog.Ident("ns.in"))
		if err != nil {
			return nil
		}
		off, _, _, err := commit.TableOffsets(t, "in")
		if err != nil {
			return nil
		}
		return &off
	}
	// Ten commits, ten files.
	for i := range 10 {
		require.NoError(t, pcl.ProduceSync(ctx, &kgo.Record{Topic: "in", Value: fmt.Appendf(nil, `{"id":%d}`, i)}).FirstErr())
		require.Eventually(t, func() bool { o := tbl(); return o != nil && (*o)["in"][0] == int64(i+1) }, 30*time.Second, 10*time.Millisecond)
	}

	_, err = Compact(ctx, http.DefaultClient, n.Addr(), "", "ns.nope", nil)
	require.ErrorContains(t, err, "404 Not Found")
	require.ErrorContains(t, err, `no pipeline writes the table: "ns.nope"`)

	var seen []maintain.Progress
	sum, err := Compact(ctx, http.DefaultClient, n.Addr(), "", "ns.in", func(p maintain.Progress) { seen = append(seen, p) })
	require.NoError(t, err)
	require.NotZero(t, sum.Snapshot)
	require.Equal(t, 10, sum.FilesBefore)
	require.Equal(t, 1, sum.FilesAfter)
	require.Equal(t, 10, sum.Rewritten)
	require.NotEmpty(t, seen)
	last := seen[len(seen)-1]
	require.Equal(t, last.Groups, last.Done)
	require.Equal(t, last.Bytes, last.BytesDone)

	again, err := Compact(ctx, http.DefaultClient, n.Addr(), "", "ns.in", nil)
	require.NoError(t, err)
	require.Zero(t, again.Snapshot, "nothing left to compact")
	require.Equal(t, 1, again.FilesBefore)
	cancel()
	require.NoError(t, <-done)
}
