package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go/table"

	"github.com/floelake/floe/catalog"
	"github.com/floelake/floe/commit"
	"github.com/floelake/floe/internal/config"
	"github.com/floelake/floe/internal/gen"
)

// An operator renames the dead-letter table (docs/exactly-once.md, "Tables
// changed from outside"). Floe creates a new one under the configured name
// and goes on: the cluster keeps committing, the main table holds every
// valid record exactly once, the renamed table keeps the dead letters it
// had and the new one takes those from its start on.
//
// Renamed while floe is down, the new table is a dead-letter table without
// offsets, which starts at the main table's offsets, as on a single node.
// After a clean stop (or a crash once both tables had committed
// everything) the renamed table ended there too: every dead letter is in
// exactly one of the two.
//
// Renamed while floe runs, the leader's table writer finds it gone at its
// next commit, creates it again and starts it where the renamed one ends:
// the dead letters in flight land in the new table, once. Only if the
// leader's check of the pipeline's tables (every second in the in-process
// cluster, 30 s otherwise) creates it first does it start at the main
// table's offsets, with the dead letters between the two ends in neither
// table or in both; the cluster test allows for that race.

func TestRenamedDeadLetterTableSingleNode(t *testing.T) {
	const topic = "clicks"
	broker, cfg, cat := nodeConfig(t, topic, 4)
	renameDeadLetterWhileDown(t, cfg, cat, broker, topic, func() func() {
		n := startNode(t, cfg, testLogger(t, "node"))
		return func() { n.stop(t) }
	})
}

func TestRenamedDeadLetterTableCluster(t *testing.T) {
	const topic = "clicks"
	broker, cfg, cat := memClusterConfig(t, topic)
	renameDeadLetterWhileDown(t, cfg, cat, broker, topic, func() func() {
		mc := startMemCluster(t, cfg, cat, "n1", "n2", "n3")
		mc.waitSpread(t, cfg.Pipelines[0].Name)
		return mc.stop
	})
}

// TestRenamedDeadLetterTableCrashedCluster: members are processes with
// their raft state on disk, so the ledger remembers the renamed table's
// offsets and snapshot across the restart. They are SIGKILLed, not
// stopped, once both tables committed everything.
func TestRenamedDeadLetterTableCrashedCluster(t *testing.T) {
	const topic = "clicks"
	broker, _, r := newLocalClusterRig(t, topic, 6, 3)
	cfg := r.config()
	renameDeadLetterWhileDown(t, cfg, openCatalog(t, cfg), broker, topic, func() func() {
		r.startAll()
		r.waitSpread(time.Minute, "n1", "n2", "n3")
		return func() {
			for _, m := range r.Members() {
				r.kill(m)
			}
		}
	})
}

func TestRenamedDeadLetterTableWhileRunningSingleNode(t *testing.T) {
	const topic = "clicks"
	broker, cfg, cat := nodeConfig(t, topic, 4)
	n := startNode(t, cfg, testLogger(t, "node"))
	renameDeadLetterWhileRunning(t, cfg, cat, broker, topic, func() { n.stop(t) }, true)
}

func TestRenamedDeadLetterTableWhileRunningCluster(t *testing.T) {
	const topic = "clicks"
	broker, cfg, cat := memClusterConfig(t, topic)
	mc := startMemCluster(t, cfg, cat, "n1", "n2", "n3")
	mc.waitSpread(t, cfg.Pipelines[0].Name)
	renameDeadLetterWhileRunning(t, cfg, cat, broker, topic, mc.stop, false)
}

// renameDeadLetterWhileDown runs floe (start returns its stop) through
// records with dead letters, stops it, renames the dead-letter table,
// starts it again, produces more and runs the oracle over both dead-letter
// tables.
func renameDeadLetterWhileDown(t *testing.T, cfg config.Config, cat *catalog.Catalog, broker, topic string, start func() (stop func())) {
	t.Helper()
	pc := cfg.Pipelines[0]
	renamed := pc.DeadLetter() + "_renamed"
	prod := newProducer(t, broker)
	var stats gen.ProducerStats

	stop := start()
	if err := produce(context.Background(), prod, topic, 20_000, 0, 21, &stats); err != nil {
		t.Fatalf("produce: %v", err)
	}
	before := producedOf(&stats)
	split := mustEndOffsets(t, broker, topic)
	waitTablesReach(t, cfg, split, 2*time.Minute)
	stop()
	if before.Malformed == 0 {
		t.Fatal("no malformed record produced: the dead-letter table is empty and the test tests nothing")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if _, err := cat.RenameTable(ctx, catalog.Ident(pc.DeadLetter()), catalog.Ident(renamed)); err != nil {
		t.Fatalf("rename %s to %s: %v", pc.DeadLetter(), renamed, err)
	}
	t.Logf("renamed %s to %s at offsets %s (%d dead letters)", pc.DeadLetter(), renamed, fmtOffsets(split), before.Malformed)

	stop = start()
	if err := produce(ctx, prod, topic, 20_000, 0, 22, &stats); err != nil {
		t.Fatalf("produce: %v", err)
	}
	ends := mustEndOffsets(t, broker, topic)
	waitTablesReach(t, cfg, ends, 2*time.Minute)
	stop()

	all := producedOf(&stats)
	checkExactlyOnceWith(t, cfg, all, oracleOptions{formerDeadLetters: []string{renamed}})

	// The renamed table is as floe left it; the new one holds the dead
	// letters from the rename on, and started at the main table's offsets.
	checkDeadLetterRange(t, cat, renamed, pc.Name, topic, nil, split, before.Malformed)
	checkDeadLetterRange(t, cat, pc.DeadLetter(), pc.Name, topic, split, ends, all.Malformed-before.Malformed)
}

// checkDeadLetterRange checks that a dead-letter table holds rows only at
// offsets in [from, to) (from nil: 0), rows rows (unless rows < 0) and
// floe.offsets equal to to; and, when from is set, that floe started it at
// from.
func checkDeadLetterRange(t *testing.T, cat *catalog.Catalog, name, pipeline, topic string, from, to map[int32]int64, rows int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tbl := mustLoad(t, cat, name)
	t.Logf("%s is at %s", name, tbl.Location())
	at, err := tbl.Scan(table.WithSelectedFields("partition", "offset")).ToArrowTable(ctx)
	if err != nil {
		t.Fatalf("scan %s: %v", name, err)
	}
	defer at.Release()
	var n int64
	var outside []string
	err = eachRow(at, []string{"partition", "offset"}, func(cols []arrow.Array, i int) {
		n++
		p, o := cols[0].(*array.Int32).Value(i), cols[1].(*array.Int64).Value(i)
		if (from != nil && o < from[p]) || o >= to[p] {
			if len(outside) < maxReported {
				outside = append(outside, fmt.Sprintf("%d/%d", p, o))
			}
		}
	})
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	if len(outside) > 0 {
		t.Errorf("%s holds rows outside [%s, %s): %v", name, fmtOffsets(from), fmtOffsets(to), outside)
	}
	if rows >= 0 && n != rows {
		t.Errorf("%s has %d rows, want %d", name, n, rows)
	}
	offs := firstAndLastOffsets(t, tbl, pipeline, topic)
	if !sameOffsets(offs[1], to) {
		t.Errorf("%s: floe.offsets %s, want %s", name, fmtOffsets(offs[1]), fmtOffsets(to))
	}
	if from != nil && !sameOffsets(offs[0], from) {
		t.Errorf("%s's first floe snapshot has offsets %s, want %s: the main table's offsets when floe created it",
			name, fmtOffsets(offs[0]), fmtOffsets(from))
	}
}

// renameDeadLetterWhileRunning renames the dead-letter table while floe
// ingests a steady stream, waits for both tables to reach the end offsets,
// stops floe and runs the oracle over both dead-letter tables. exact
// requires the new table to start where the renamed one ends; otherwise
// the dead letters between the two ends may be in neither or both.
func renameDeadLetterWhileRunning(t *testing.T, cfg config.Config, cat *catalog.Catalog, broker, topic string, stop func(), exact bool) {
	t.Helper()
	pc := cfg.Pipelines[0]
	renamed := pc.DeadLetter() + "_renamed"
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var stats gen.ProducerStats
	prodErr := make(chan error, 1)
	go func() { prodErr <- produce(ctx, newProducer(t, broker), topic, 60_000, 6_000, 23, &stats) }()
	waitFor(t, time.Minute, "dead letters committed", func() (bool, string) {
		off, err := committedOffsets(ctx, cat, pc.DeadLetter(), pc.Name, topic)
		return err == nil && sum(off) >= 15_000, fmtOffsets(off)
	})
	if _, err := cat.RenameTable(ctx, catalog.Ident(pc.DeadLetter()), catalog.Ident(renamed)); err != nil {
		t.Fatalf("rename %s to %s: %v", pc.DeadLetter(), renamed, err)
	}
	t.Logf("renamed %s to %s with %d records produced", pc.DeadLetter(), renamed, stats.Produced.Load())
	if err := <-prodErr; err != nil {
		t.Fatalf("produce: %v", err)
	}
	ends := mustEndOffsets(t, broker, topic)
	waitTablesReach(t, cfg, ends, 2*time.Minute)
	stop()

	// Where the renamed table ends and where the new one starts.
	old := firstAndLastOffsets(t, mustLoad(t, cat, renamed), pc.Name, topic)[1]
	start := firstAndLastOffsets(t, mustLoad(t, cat, pc.DeadLetter()), pc.Name, topic)[0]
	gaps, overlaps := map[int32][2]int64{}, map[int32][2]int64{}
	for p, e := range ends {
		switch r, s := old[p], start[p]; {
		case r < s:
			gaps[p] = [2]int64{r, s}
		case s < r:
			overlaps[p] = [2]int64{s, r}
		}
		if _, ok := start[p]; !ok && e > 0 {
			t.Errorf("%s has no start offset for partition %d", pc.DeadLetter(), p)
		}
	}
	t.Logf("the renamed table ends at %s, the new one starts at %s", fmtOffsets(old), fmtOffsets(start))
	if exact && (len(gaps) > 0 || len(overlaps) > 0) {
		t.Errorf("the new dead-letter table starts at %s, not where the renamed one ends (%s)", fmtOffsets(start), fmtOffsets(old))
	}
	checkExactlyOnceWith(t, cfg, producedOf(&stats), oracleOptions{
		formerDeadLetters: []string{renamed}, deadLetterGaps: gaps, deadLetterOverlaps: overlaps,
	})
	checkDeadLetterRange(t, cat, renamed, pc.Name, topic, nil, old, -1)
	checkDeadLetterRange(t, cat, pc.DeadLetter(), pc.Name, topic, start, ends, -1)
}

func mustLoad(t *testing.T, cat *catalog.Catalog, name string) *table.Table {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tbl, err := cat.LoadTable(ctx, catalog.Ident(name))
	if err != nil {
		t.Fatalf("load %s: %v", name, err)
	}
	return tbl
}

// firstAndLastOffsets returns the floe.offsets of a table's first snapshot
// that has them (where floe started it) and of its current state.
func firstAndLastOffsets(t *testing.T, tbl *table.Table, pipeline, topic string) [2]map[int32]int64 {
	t.Helper()
	name := strings.Join(tbl.Identifier(), ".")
	last, _, found, err := commit.TableOffsets(tbl, pipeline)
	if err != nil || !found {
		t.Fatalf("%s: no floe.offsets (found %v, err %v)", name, found, err)
	}
	var first *table.Snapshot
	for _, s := range tbl.Metadata().Snapshots() {
		if s.Summary != nil && s.Summary.Properties[commit.PropOffsets] != "" && (first == nil || s.SequenceNumber < first.SequenceNumber) {
			first = &s
		}
	}
	if first == nil {
		t.Fatalf("%s has no snapshot with floe.offsets", name)
	}
	off, err := commit.ParseOffsets(first.Summary.Properties[commit.PropOffsets])
	if err != nil {
		t.Fatalf("%s: first floe snapshot %d: %v", name, first.SnapshotID, err)
	}
	return [2]map[int32]int64{off[topic], last[topic]}
}
