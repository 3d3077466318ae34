package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go/table"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floelake/floe/catalog"
	"github.com/floelake/floe/commit"
	"github.com/floelake/floe/internal/config"
	"github.com/floelake/floe/internal/gen"
)

// produced is what the producers acknowledged: the oracle's expectation.
type produced struct {
	Records, Malformed int64
}

func producedOf(s *gen.ProducerStats) produced {
	return produced{Records: s.Produced.Load(), Malformed: s.Malformed.Load()}
}

// maxReported bounds how many individual violations one check lists.
const maxReported = 20

// checkExactlyOnce is the oracle every test ends with. It reads the
// pipeline's table and dead-letter table back with iceberg-go, through a
// fresh catalog handle, and checks against the broker's end offsets and
// what the producers acknowledged:
//
//  1. every (partition, offset) in [0, end) is in exactly one of the two
//     tables, exactly once, and nothing else is in them; and each row is
//     the record at its offset (a table row has that record's event_id, a
//     dead-letter row its exact value bytes), as read back from Kafka;
//  2. the table's event ids are unique and there are exactly
//     want.Records - want.Malformed of them;
//  3. the dead-letter table holds exactly want.Malformed rows, each with a
//     non-empty error;
//  4. the floe.offsets of each table's current snapshot lineage equal the
//     end offsets;
//  5. each table's current snapshot carries floe.pipeline and floe.commit-id;
//  6. scans of the table with row filters on the partition column and on
//     columns with bounds return exactly the matching rows of the
//     unfiltered scan (checkPrunedScans);
//  7. ClickHouse, a second engine that shares no code with floe or
//     iceberg-go, reads both tables at the metadata files the catalog
//     points at and finds 1 to 3 again, row counts that agree with the
//     above and with the snapshot summaries, valid UTF-8 in every string
//     column, a snapshot in the middle of each table's history that holds
//     exactly the rows below its floe.offsets, and the same pruned row
//     counts (checkWithClickHouse; skipped without chdb unless CI is set).
//
// It also returns the table, for test-specific checks.
func checkExactlyOnce(t *testing.T, cfg config.Config, want produced) *table.Table {
	t.Helper()
	return checkExactlyOnceWith(t, cfg, want, oracleOptions{})
}

// oracleOptions adapt the oracle to tables changed from outside floe.
type oracleOptions struct {
	// formerDeadLetters are dead-letter tables renamed away from the
	// configured name. Their rows count as dead letters beside those of
	// the table under the configured name (1 to 3: an offset in two of
	// them is a duplicate); their offsets are not checked against the end
	// offsets (4, 5), and ClickHouse (7), which reads one dead-letter
	// table, is skipped.
	formerDeadLetters []string
	// deadLetterGaps and deadLetterOverlaps are per partition a range
	// [from, to) of offsets where a dead-letter table was replaced while
	// floe ran: a dead letter in a gap may be in no dead-letter table, one
	// in an overlap in two (docs/exactly-once.md). Valid records there
	// are checked as everywhere else.
	deadLetterGaps, deadLetterOverlaps map[int32][2]int64
}

// within reports whether o lies in the range of partition p.
func within(ranges map[int32][2]int64, p int32, o int64) bool {
	r, ok := ranges[p]
	return ok && o >= r[0] && o < r[1]
}

// checkExactlyOnceWith is checkExactlyOnce adapted by o.
func checkExactlyOnceWith(t *testing.T, cfg config.Config, want produced, opts oracleOptions) *table.Table {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	pc := cfg.Pipelines[0]
	if len(pc.Topics) != 1 {
		t.Fatalf("oracle: want one topic, pipeline has %v", pc.Topics)
	}
	topic := pc.Topics[0]
	ends, err := endOffsets(ctx, cfg.Kafka.Brokers[0], topic)
	if err != nil {
		t.Fatalf("oracle: %v", err)
	}
	total := sum(ends)
	t.Logf("oracle: end offsets %s (%d records); produced %d, malformed %d", fmtOffsets(ends), total, want.Records, want.Malformed)
	if total != want.Records {
		// Not floe's fault: the harness lost track of what it produced.
		t.Fatalf("oracle: the topic holds %d records but the producers acknowledged %d", total, want.Records)
	}

	src, err := readTopic(ctx, cfg.Kafka.Brokers[0], topic, ends)
	if err != nil {
		t.Fatalf("oracle: read the topic back: %v", err)
	}

	cat, err := catalog.Open(ctx, cfg.Catalog, cfg.Storage, cfg.Node.DataDir)
	if err != nil {
		t.Fatalf("oracle: open catalog: %v", err)
	}
	defer cat.Close()
	mainTbl, err := cat.LoadTable(ctx, catalog.Ident(pc.Table))
	if err != nil {
		t.Fatalf("oracle: load %s: %v", pc.Table, err)
	}
	dlqTbl, err := cat.LoadTable(ctx, catalog.Ident(pc.DeadLetter()))
	if err != nil {
		t.Fatalf("oracle: load %s: %v", pc.DeadLetter(), err)
	}
	dlqTbls := []*table.Table{dlqTbl}
	for _, name := range opts.formerDeadLetters {
		tbl, err := cat.LoadTable(ctx, catalog.Ident(name))
		if err != nil {
			t.Fatalf("oracle: load the former dead-letter table %s: %v", name, err)
		}
		dlqTbls = append(dlqTbls, tbl)
	}

	// seen[p][o] counts the rows of (partition, offset) in each table.
	type count struct{ main, dlq int }
	seen := map[int32][]count{}
	for p, e := range ends {
		seen[p] = make([]count, e)
	}
	var stray, mismatched []string
	var mismatches int64
	note := func(which string, p int32, o int64) *count {
		cs, ok := seen[p]
		if !ok || o < 0 || o >= int64(len(cs)) {
			if len(stray) < maxReported {
				stray = append(stray, fmt.Sprintf("%s row for partition %d offset %d, outside [0, end)", which, p, o))
			}
			return nil
		}
		return &cs[o]
	}

	// The table: event_id, _kafka_partition, _kafka_offset, and for the
	// pruned scans (6) ts and url.
	mainCols := append([]string{"event_id"}, scanRowColumns...)
	at, err := mainTbl.Scan(table.WithSelectedFields(mainCols...)).ToArrowTable(ctx)
	if err != nil {
		t.Fatalf("oracle: scan %s: %v", pc.Table, err)
	}
	defer at.Release()
	ids := make(map[string]struct{}, at.NumRows())
	var mainRows, nullMeta int64
	var dupIDs []string
	rows := make([]scanRow, 0, at.NumRows())
	err = eachRow(at, mainCols, func(cols []arrow.Array, i int) {
		mainRows++
		rows = append(rows, scanRowOf(cols[1:], i))
		id := strValue(cols[0], i)
		if _, dup := ids[id]; dup && len(dupIDs) < maxReported {
			dupIDs = append(dupIDs, id)
		}
		ids[id] = struct{}{}
		if cols[1].IsNull(i) || cols[2].IsNull(i) {
			nullMeta++
			return
		}
		p, o := cols[1].(*array.Int32).Value(i), cols[2].(*array.Int64).Value(i)
		if c := note("table", p, o); c != nil {
			c.main++
			if want := src[p][o].eventID; want != id {
				mismatches++
				if len(mismatched) < maxReported {
					mismatched = append(mismatched, fmt.Sprintf("table row at partition %d offset %d has event_id %q, the record there has %q", p, o, id, want))
				}
			}
		}
	})
	if err != nil {
		t.Fatalf("oracle: read %s: %v", pc.Table, err)
	}

	// The dead-letter tables: topic, partition, offset, error.
	var dlqRows, noError int64
	var wrongTopic []string
	for _, tbl := range dlqTbls {
		name := strings.Join(tbl.Identifier(), ".")
		dt, err := tbl.Scan(table.WithSelectedFields("topic", "partition", "offset", "error", "value")).ToArrowTable(ctx)
		if err != nil {
			t.Fatalf("oracle: scan %s: %v", name, err)
		}
		defer dt.Release()
		var rows int64
		err = eachRow(dt, []string{"topic", "partition", "offset", "error", "value"}, func(cols []arrow.Array, i int) {
			rows++
			if tp := strValue(cols[0], i); tp != topic && len(wrongTopic) < maxReported {
				wrongTopic = append(wrongTopic, tp)
			}
			if cols[3].IsNull(i) || strings.TrimSpace(strValue(cols[3], i)) == "" {
				noError++
			}
			p, o := cols[1].(*array.Int32).Value(i), cols[2].(*array.Int64).Value(i)
			if c := note("dead-letter", p, o); c != nil {
				c.dlq++
				if got := hashOf([]byte(strValue(cols[4], i))); got != src[p][o].valueHash {
					mismatches++
					if len(mismatched) < maxReported {
						mismatched = append(mismatched, fmt.Sprintf("dead-letter row of %s at partition %d offset %d holds a value other than the record's %q", name, p, o, strValue(cols[4], i)))
					}
				}
			}
		})
		if err != nil {
			t.Fatalf("oracle: read %s: %v", name, err)
		}
		if len(dlqTbls) > 1 {
			t.Logf("oracle: dead-letter table %s has %d rows", name, rows)
		}
		dlqRows += rows
	}
	t.Logf("oracle: %s has %d rows (%d distinct event ids), the dead-letter table(s) %d rows", pc.Table, mainRows, len(ids), dlqRows)

	// 1. Every offset exactly once in exactly one table. Violations are
	// listed as runs of consecutive offsets with the same problem.
	var missing, dupMain, dupDLQ, both, lostInGap, twiceInOverlap int64
	var examples []string
	parts := make([]int, 0, len(seen))
	for p := range seen {
		parts = append(parts, int(p))
	}
	sort.Ints(parts)
	for _, p := range parts {
		cs := seen[int32(p)]
		runKind, runFrom := "", 0
		flush := func(to int) {
			if runKind != "" && len(examples) < maxReported {
				examples = append(examples, fmt.Sprintf("partition %d offsets %d..%d (%d): %s", p, runFrom, to-1, to-runFrom, runKind))
			}
		}
		for o, c := range cs {
			var kind string
			switch {
			case c.main == 1 && c.dlq == 0, c.main == 0 && c.dlq == 1:
			case c.main == 0 && c.dlq == 0 && within(opts.deadLetterGaps, int32(p), int64(o)):
				lostInGap++
			case c.main == 0 && c.dlq == 2 && within(opts.deadLetterOverlaps, int32(p), int64(o)):
				twiceInOverlap++
			case c.main == 0 && c.dlq == 0:
				missing++
				kind = "missing from both tables"
			case c.main > 0 && c.dlq > 0:
				both++
				kind = "in both tables"
			case c.main > 1:
				dupMain++
				kind = "duplicated in the table"
			default:
				dupDLQ++
				kind = "duplicated in the dead-letter table"
			}
			if kind != runKind {
				flush(o)
				runKind, runFrom = kind, o
			}
		}
		flush(len(cs))
	}
	if missing+dupMain+dupDLQ+both > 0 || len(stray) > 0 || nullMeta > 0 {
		t.Errorf("oracle 1 (each offset exactly once in exactly one table) failed: %d missing, %d duplicated in the table, %d duplicated in the dead-letter table, %d in both, %d table rows without partition/offset, %d stray rows\n  %s",
			missing, dupMain, dupDLQ, both, nullMeta, len(stray), strings.Join(append(examples, stray...), "\n  "))
	}

	// 1b. Each row is the record at its (partition, offset).
	if mismatches > 0 {
		t.Errorf("oracle 1: %d rows do not hold the record at their partition and offset:\n  %s", mismatches, strings.Join(mismatched, "\n  "))
	}

	// 2. Unique event ids, as many as valid records.
	valid := want.Records - want.Malformed
	if int64(len(ids)) != mainRows {
		t.Errorf("oracle 2: %s has %d rows but %d distinct event ids; duplicated ids include %v", pc.Table, mainRows, len(ids), dupIDs)
	}
	if mainRows != valid {
		t.Errorf("oracle 2: %s has %d rows, want %d (the valid records: %d produced - %d malformed)", pc.Table, mainRows, valid, want.Records, want.Malformed)
	}

	// 3. The dead-letter table holds the malformed records, with reasons.
	if lostInGap+twiceInOverlap > 0 {
		t.Logf("oracle: %d dead letters in no dead-letter table (in a gap), %d in two (in an overlap)", lostInGap, twiceInOverlap)
	}
	if wantDLQ := want.Malformed - lostInGap + twiceInOverlap; dlqRows != wantDLQ {
		t.Errorf("oracle 3: the dead-letter table(s) have %d rows, want %d (the %d malformed records, %d of them lost in a gap, %d twice in an overlap)",
			dlqRows, wantDLQ, want.Malformed, lostInGap, twiceInOverlap)
	}
	if noError > 0 {
		t.Errorf("oracle 3: %d dead-letter rows have an empty error", noError)
	}
	if len(wrongTopic) > 0 {
		t.Errorf("oracle 3: dead-letter rows name topics %v, want %q", wrongTopic, topic)
	}

	// 4 and 5. Offsets and summary of each table's current snapshot.
	for _, tbl := range []*table.Table{mainTbl, dlqTbl} {
		name := strings.Join(tbl.Identifier(), ".")
		off, _, found, err := commit.TableOffsets(tbl, pc.Name)
		switch {
		case err != nil:
			t.Errorf("oracle 4: %s: %v", name, err)
		case !found:
			t.Errorf("oracle 4: %s has no snapshot with floe.offsets for pipeline %q", name, pc.Name)
		default:
			got := off[topic]
			if !sameOffsets(got, ends) || len(off) != 1 {
				t.Errorf("oracle 4: %s: floe.offsets = %s, want %s for topic %s only", name, off.Encode(), fmtOffsets(ends), topic)
			}
		}
		snap := tbl.CurrentSnapshot()
		if snap == nil || snap.Summary == nil {
			t.Errorf("oracle 5: %s has no current snapshot", name)
			continue
		}
		props := snap.Summary.Properties
		if props[commit.PropPipeline] != pc.Name {
			t.Errorf("oracle 5: %s: current snapshot %d has %s = %q, want %q", name, snap.SnapshotID, commit.PropPipeline, props[commit.PropPipeline], pc.Name)
		}
		if props[commit.PropCommitID] == "" {
			t.Errorf("oracle 5: %s: current snapshot %d has no %s", name, snap.SnapshotID, commit.PropCommitID)
		}
	}

	// 6. Partition-pruned scans return what the unfiltered scan holds.
	start := time.Now()
	cases, problems, err := checkPrunedScans(ctx, mainTbl, rows)
	if err != nil {
		t.Fatalf("oracle 6: %s: %v", pc.Table, err)
	}
	for _, p := range problems {
		t.Errorf("oracle 6 (pruned scans equal the unfiltered scan filtered): %s: %s", pc.Table, p)
	}
	descs := make([]string, len(cases))
	for i, c := range cases {
		descs[i] = c.desc
	}
	t.Logf("oracle: %d pruned scans of %s in %s: %s", len(cases), pc.Table, time.Since(start).Round(time.Millisecond), strings.Join(descs, "; "))

	// 7. The same properties, read by ClickHouse.
	if len(opts.formerDeadLetters) > 0 {
		t.Logf("oracle 7 skipped: the dead letters are spread over %d tables", len(dlqTbls))
	} else if dir := requireChdb(t); dir != "" {
		summaries, problems, err := checkWithClickHouse(ctx, dir, independentRead{
			pipeline: pc.Name, topic: topic, main: mainTbl, dlq: dlqTbl, storage: cfg.Storage,
			ends: ends, src: src, mainRows: mainRows, dlqRows: dlqRows, cases: cases,
		})
		if err != nil {
			t.Fatalf("oracle 7: %v", err)
		}
		t.Log("oracle: " + summaries[0])
		for _, p := range problems[0] {
			t.Errorf("oracle 7 (ClickHouse reads the same tables): %s", p)
		}
	}
	return mainTbl
}

// srcRecord is what the oracle keeps of one Kafka record.
type srcRecord struct {
	eventID   string // "" when the value has none (or is not JSON)
	valueHash uint64
}

// readTopic consumes every partition from 0 to its end offset.
func readTopic(ctx context.Context, addr, topic string, ends map[int32]int64) (map[int32][]srcRecord, error) {
	plan := map[int32]kgo.Offset{}
	out := map[int32][]srcRecord{}
	left := int64(0)
	for p, e := range ends {
		out[p] = make([]srcRecord, e)
		if e > 0 {
			plan[p] = kgo.NewOffset().At(0)
			left += e
		}
	}
	if left == 0 {
		return out, nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: plan}),
		kgo.FetchMaxBytes(32<<20))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	seen := map[int32]int64{}
	for left > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("%w with %d records unread", err, left)
		}
		if errs := fs.Errors(); len(errs) > 0 {
			return nil, fmt.Errorf("fetch %s/%d: %w", errs[0].Topic, errs[0].Partition, errs[0].Err)
		}
		var perr error
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset >= ends[r.Partition] {
				return
			}
			if r.Offset != seen[r.Partition] && perr == nil {
				perr = fmt.Errorf("partition %d: offset %d after %d", r.Partition, r.Offset, seen[r.Partition]-1)
			}
			seen[r.Partition] = r.Offset + 1
			var v struct {
				EventID string `json:"event_id"`
			}
			_ = json.Unmarshal(r.Value, &v)
			out[r.Partition][r.Offset] = srcRecord{eventID: v.EventID, valueHash: hashOf(r.Value)}
			left--
		})
		if perr != nil {
			return nil, perr
		}
	}
	return out, nil
}

func hashOf(b []byte) uint64 {
	h := fnv.New64a()
	_, _ = h.Write(b)
	return h.Sum64()
}

// sameOffsets compares committed offsets with end offsets; a partition
// that never had a record may be absent from the committed ones.
func sameOffsets(got, ends map[int32]int64) bool {
	for p, e := range ends {
		g, ok := got[p]
		if e == 0 {
			if ok && g != 0 {
				return false
			}
			continue
		}
		if !ok || g != e {
			return false
		}
	}
	for p := range got {
		if _, ok := ends[p]; !ok {
			return false
		}
	}
	return true
}

// eachRow calls fn for every row of the named columns of an Arrow table.
func eachRow(at arrow.Table, names []string, fn func(cols []arrow.Array, i int)) error {
	idx := make([]int, len(names))
	for i, n := range names {
		f := at.Schema().FieldIndices(n)
		if len(f) != 1 {
			return fmt.Errorf("no column %q in %s", n, at.Schema())
		}
		idx[i] = f[0]
	}
	tr := array.NewTableReader(at, 64*1024)
	defer tr.Release()
	cols := make([]arrow.Array, len(names))
	for tr.Next() {
		rec := tr.RecordBatch()
		for i, j := range idx {
			cols[i] = rec.Column(j)
		}
		for r := 0; r < int(rec.NumRows()); r++ {
			fn(cols, r)
		}
	}
	return tr.Err()
}

// strValue reads a string or binary cell, whatever the Arrow width.
func strValue(a arrow.Array, i int) string {
	switch c := a.(type) {
	case *array.String:
		return c.Value(i)
	case *array.LargeString:
		return c.Value(i)
	case *array.StringView:
		return c.Value(i)
	case *array.Binary:
		return string(c.Value(i))
	case *array.LargeBinary:
		return string(c.Value(i))
	default:
		return a.ValueStr(i)
	}
}
