package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/apache/iceberg-go/table"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"

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
	_, broker := startBroker(t, topic, 4)
	s := newSetup(t, broker, topic)
	s.CommitInterval = 300 * time.Millisecond
	cfg := s.config(t)
	cat := openCatalog(t, cfg)
	n := startNode(t, cfg, testLogger(t, "node"))
	rollbackWhileIngesting(t, cfg, cat, broker, topic, func() { n.stop(t) })
}

func TestRollbackByAnotherEngineCluster(t *testing.T) {
	const topic = "clicks"
	broker, cfg, cat := memClusterConfig(t, topic)
	mc := startMemCluster(t, cfg, cat, "n1", "n2", "n3")
	mc.waitSpread(t, cfg.Pipelines[0].Name)
	rollbackWhileIngesting(t, cfg, cat, broker, topic, func() {
		for _, m := range mc.members {
			m.cancel()
			<-m.done
		}
	})
}

// rollbackWhileIngesting produces, rolls the main table back three
// snapshots once it has enough history, keeps producing, waits for both
// tables to reach the end offsets, stops floe and runs the oracle.
func rollbackWhileIngesting(t *testing.T, cfg config.Config, cat *catalog.Catalog, broker, topic string, stop func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	prod := newProducer(t, broker)
	var stats gen.ProducerStats
	prodErr := make(chan error, 1)
	go func() { prodErr <- produce(ctx, prod, topic, 60_000, 6_000, 11, &stats) }()

	ident := catalog.Ident(cfg.Pipelines[0].Table)
	adoptions := func() float64 {
		return promtest.ToFloat64(metrics.TableAdoptions.WithLabelValues(cfg.Pipelines[0].Table))
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
	// Three snapshots back along main's ancestry.
	chain := ancestryWithRows(tbl)
	target := chain[3]
	if _, _, err := cat.CommitTable(ctx, ident, nil, []table.Update{
		table.NewSetSnapshotRefUpdate(table.MainBranch, target, table.BranchRef, -1, -1, -1),
	}); err != nil {
		t.Fatalf("roll main back to %d: %v", target, err)
	}
	t.Logf("rolled main back from %d to %d", chain[0], target)

	if err := <-prodErr; err != nil {
		t.Fatalf("produce: %v", err)
	}
	ends := mustEndOffsets(t, broker, topic)
	waitFor(t, 2*time.Minute, "the tables to reach the end offsets after the rollback", func() (bool, string) {
		main, err := committedOffsets(ctx, cat, cfg.Pipelines[0].Table, cfg.Pipelines[0].Name, topic)
		if err != nil {
			return false, err.Error()
		}
		dlq, err := committedOffsets(ctx, cat, cfg.Pipelines[0].DeadLetter(), cfg.Pipelines[0].Name, topic)
		if err != nil {
			return false, err.Error()
		}
		return reached(main, ends) && reached(dlq, ends), "main " + fmtOffsets(main) + " dlq " + fmtOffsets(dlq) + " ends " + fmtOffsets(ends)
	})
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
