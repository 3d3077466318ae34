package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/apache/iceberg-go/table"

	"github.com/floelake/floe/catalog"
	"github.com/floelake/floe/internal/config"
	"github.com/floelake/floe/internal/gen"
	"github.com/floelake/floe/internal/metrics"
)

// Another engine rolls the main table back three snapshots while floe
// ingests (Spark's rollback_to_snapshot, or anything that moves the main
// ref). Iceberg is the truth: floe adopts the table's offsets, consumes
// again what the rollback removed, and the table ends with every record
// exactly once. Before the table writer adopted offsets, a cluster wedged
// on the offset gap for good.
func TestRollbackByAnotherEngineSingleNode(t *testing.T) {
	const topic = "clicks"
	broker, cfg, cat := nodeConfig(t, topic, 4)
	n := startNode(t, cfg, testLogger(t, "node"))
	rollbackWhileIngesting(t, cfg, cat, broker, topic, []*metrics.Set{n.n.Metrics()}, func() { n.stop(t) })
}

func TestRollbackByAnotherEngineCluster(t *testing.T) {
	const topic = "clicks"
	broker, cfg, cat := memClusterConfig(t, topic)
	mc := startMemCluster(t, cfg, cat, "n1", "n2", "n3")
	mc.waitSpread(t, cfg.Pipelines[0].Name)
	rollbackWhileIngesting(t, cfg, cat, broker, topic, mc.metrics(), mc.stop)
}

// rollbackWhileIngesting produces, rolls the main table back three
// snapshots once it has enough history, keeps producing, waits for both
// tables to reach the end offsets, stops floe and runs the oracle. sets are
// the metrics of every node floe runs on, where the adoption is counted.
func rollbackWhileIngesting(t *testing.T, cfg config.Config, cat *catalog.Catalog, broker, topic string, sets []*metrics.Set, stop func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	prod := newProducer(t, broker)
	var stats gen.ProducerStats
	prodErr := make(chan error, 1)
	go func() { prodErr <- produce(ctx, prod, topic, 60_000, 6_000, 11, &stats) }()

	ident := catalog.Ident(cfg.Pipelines[0].Table)
	adoptions := func() float64 {
		total := 0.0
		for _, m := range sets {
			total += m.Sum("floe_commit_table_adoptions_total", "table", cfg.Pipelines[0].Table)
		}
		return total
	}
	adoptedBefore := adoptions()
	var tbl *table.Table
	waitFor(t, 60*time.Second, "six snapshots with rows in the main table", func() (bool, string) {
		var err error
		if tbl, err = cat.LoadTable(ctx, ident); err != nil {
			return false, err.Error()
		}
		return len(ancestryWithRows(tbl)) >= 6, fmt.Sprintf("%d", len(ancestryWithRows(tbl)))
	})
	// Three snapshots back along main's ancestry; a floe commit landing
	// meanwhile makes the catalog refuse it, and it is tried again on the
	// table as it is then.
	var chain []int64
	waitFor(t, 30*time.Second, "the rollback to be committed", func() (bool, string) {
		chain = ancestryWithRows(tbl)
		_, _, err := cat.CommitTable(ctx, ident, nil, []table.Update{
			table.NewSetSnapshotRefUpdate(table.MainBranch, chain[3], table.BranchRef, -1, -1, -1),
		})
		if err == nil {
			return true, ""
		}
		state := fmt.Sprintf("roll main back to %d: %v", chain[3], err)
		if again, err := cat.LoadTable(ctx, ident); err == nil {
			tbl = again
		} else {
			state += "; reload: " + err.Error()
		}
		return false, state
	})
	t.Logf("rolled main back from %d to %d", chain[0], chain[3])

	if err := <-prodErr; err != nil {
		t.Fatalf("produce: %v", err)
	}
	waitTablesReach(t, cfg, mustEndOffsets(t, broker, topic), 2*time.Minute)
	stop()
	if adoptions() <= adoptedBefore {
		t.Fatalf("the rollback was never adopted (floe_commit_table_adoptions_total did not move): the test did not test it")
	}
	checkExactlyOnce(t, cfg, producedOf(&stats))
}

// ancestryWithRows lists the snapshots of main's ancestry that added rows,
// newest first.
func ancestryWithRows(tbl *table.Table) []int64 {
	var out []int64
	for s := tbl.CurrentSnapshot(); s != nil; {
		if s.Summary != nil && s.Summary.Properties["added-records"] != "" && s.Summary.Properties["added-records"] != "0" {
			out = append(out, s.SnapshotID)
		}
		if s.ParentSnapshotID == nil {
			break
		}
		s = tbl.Metadata().SnapshotByID(*s.ParentSnapshotID)
	}
	return out
}
