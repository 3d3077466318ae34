package quickstart

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/floelake/floe/catalog"
	"github.com/floelake/floe/commit"
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
	require.Equal(t, 1, strings.Count(first, ", final]"), "one final status line:\n%s", first)

	out.Reset()
	require.NoError(t, Run(context.Background(), o, &out))
	checkTables(t, dir)
}

// TestQuickstartCluster runs the quickstart as a three-member cluster whose
// leader is stopped and restarted twice: the others take over, and the
// tables hold every record below their offsets exactly once after a clean
// stop.
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
	checkTables(t, dir)
}

// testOptions is a quick quickstart on free ports in dir.
func testOptions(dir string) Options {
	o := DefaultOptions()
	o.DataDir = dir
	o.KafkaPort = 0
	o.HTTPAddr = "127.0.0.1:0"
	o.Rate = 500
	o.StatusEvery = time.Second
	o.CommitInterval = 300 * time.Millisecond
	return o
}

// checkTables checks that a cleanly stopped quickstart committed both tables
// of each pipeline to the same offsets, and that the rows of the two add up
// to the records below them.
func checkTables(t *testing.T, dir string) {
	t.Helper()
	cat, err := catalog.Open(context.Background(), catalog.Config{Type: "sql", Name: "floe"}, catalog.StorageConfig{}, dir)
	require.NoError(t, err)
	defer cat.Close()
	for _, k := range []string{"clicks", "orders"} {
		var offsets [2]commit.Offsets
		var rows [2]int64
		for i, name := range []string{"demo." + k, "demo." + k + "__dlq"} {
			tbl, err := cat.LoadTable(context.Background(), catalog.Ident(name))
			require.NoError(t, err)
			off, _, found, err := commit.TableOffsets(tbl, k)
			require.NoError(t, err)
			require.True(t, found, name)
			offsets[i] = off
			at, err := tbl.Scan().ToArrowTable(context.Background())
			require.NoError(t, err)
			rows[i] = at.NumRows()
			at.Release()
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
		require.Equal(t, total, rows[0]+rows[1], "%s: rows in table + dead letters = records below the committed offsets", k)
	}
}
