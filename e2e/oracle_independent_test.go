package e2e

import (
	"context"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"

	"github.com/floelake/floe/commit"
	"github.com/floelake/floe/internal/config"
)

// The oracle's checks that do not take floe's (and iceberg-go's) unfiltered
// read of the tables for granted:
//
//   - pruned scans (checkPrunedScans): iceberg-go scans the table with row
//     filters on the partition column and on columns with bounds; each
//     result must equal the unfiltered scan filtered in Go. Wrong partition
//     values or column bounds in the manifests make planning skip files
//     that hold matching rows, and this check fail.
//   - ClickHouse (checkWithClickHouse, runner in chdb_test.go): a second
//     engine with its own Parquet, Avro and Iceberg code reads both tables
//     at the metadata file the catalog points at.

// scanRow is what the pruned scans need of one row of the table's
// unfiltered scan. A row is identified by its Kafka (partition, offset),
// which oracle 1 proves unique; reading the two integers is much cheaper
// than reading event ids.
type scanRow struct {
	ts       int64 // microseconds since the epoch, UTC
	url      string
	urlNull  bool
	part     int32
	off      int64
	metaNull bool // _kafka_partition or _kafka_offset is null
}

// scanRowColumns are the columns scanRowOf reads, in its order: the clicks
// schema's Kafka metadata, its partition source column (the table is
// partitioned by day(ts)) and a string column longer than Iceberg's
// 16-character truncated bounds.
var scanRowColumns = []string{"_kafka_partition", "_kafka_offset", "ts", "url"}

func scanRowOf(cols []arrow.Array, i int) scanRow {
	r := scanRow{ts: int64(cols[2].(*array.Timestamp).Value(i))}
	if cols[0].IsNull(i) || cols[1].IsNull(i) {
		r.metaNull = true
	} else {
		r.part, r.off = cols[0].(*array.Int32).Value(i), cols[1].(*array.Int64).Value(i)
	}
	if cols[3].IsNull(i) {
		r.urlNull = true
	} else {
		r.url = strValue(cols[3], i)
	}
	return r
}

// key identifies a row by (partition, offset), for offsets below 2^40; rows
// without them share -1.
func (r *scanRow) key() int64 {
	if r.metaNull {
		return -1
	}
	return int64(r.part)<<40 | r.off
}

func fmtKey(k int64) string {
	if k < 0 {
		return "(no partition/offset)"
	}
	return fmt.Sprintf("%d/%d", k>>40, k&(1<<40-1))
}

// pruneCase is one row filter, in the three forms the checks need.
type pruneCase struct {
	desc  string
	expr  iceberg.BooleanExpression // for iceberg-go
	sql   string                    // for a ClickHouse WHERE
	match func(*scanRow) bool       // for the unfiltered rows
	want  int64                     // rows of the unfiltered scan it matches
}

const microsPerDay = 86_400_000_000

// checkPrunedScans derives row filters from the rows of the table's
// unfiltered scan (each day partition; ts, Kafka offset and url ranges that
// cut through files, so that column bounds decide) and requires each
// filtered scan to return exactly the rows that match. It returns the
// cases, for ClickHouse to run too, and the violations.
func checkPrunedScans(ctx context.Context, tbl *table.Table, rows []scanRow) ([]pruneCase, []string, error) {
	if err := expectDayPartitionedTS(tbl); err != nil {
		return nil, nil, err
	}
	if len(rows) == 0 {
		return nil, nil, nil
	}
	allFiles, err := tbl.Scan().PlanFiles(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("plan the unfiltered scan: %w", err)
	}
	cases := pruneCases(rows)
	var problems []string
	for i := range cases {
		c := &cases[i]
		var want []int64
		for j := range rows {
			if c.match(&rows[j]) {
				want = append(want, rows[j].key())
			}
		}
		c.want = int64(len(want))
		scan := tbl.Scan(table.WithRowFilter(c.expr), table.WithSelectedFields(scanRowColumns[:2]...))
		files, err := scan.PlanFiles(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("plan the scan %s: %w", c.desc, err)
		}
		ft, err := scan.ToArrowTable(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("scan %s: %w", c.desc, err)
		}
		got := make([]int64, 0, len(want))
		err = eachRow(ft, scanRowColumns[:2], func(cols []arrow.Array, i int) {
			r := scanRow{metaNull: cols[0].IsNull(i) || cols[1].IsNull(i)}
			if !r.metaNull {
				r.part, r.off = cols[0].(*array.Int32).Value(i), cols[1].(*array.Int64).Value(i)
			}
			got = append(got, r.key())
		})
		ft.Release()
		if err != nil {
			return nil, nil, err
		}
		if missing, extra := sortedDiff(want, got); len(missing) > 0 || len(extra) > 0 {
			problems = append(problems, fmt.Sprintf("the scan %s returned %d rows from %d of %d data files; the unfiltered scan has %d such rows: %d missing (partition/offset %s), %d unexpected (%s)",
				c.desc, len(got), len(files), len(allFiles), c.want, len(missing), fmtKeys(missing), len(extra), fmtKeys(extra)))
		}
		c.desc = fmt.Sprintf("%s (%d rows, %d of %d files planned)", c.desc, c.want, len(files), len(allFiles))
	}
	return cases, problems, nil
}

// expectDayPartitionedTS makes sure the table is partitioned the way the
// cases are written for.
func expectDayPartitionedTS(tbl *table.Table) error {
	spec := tbl.Spec()
	if spec.NumFields() == 1 {
		f := spec.Field(0)
		src, ok := tbl.Schema().FindColumnName(f.SourceID())
		if _, day := f.Transform.(iceberg.DayTransform); ok && day && src == "ts" {
			return nil
		}
	}
	return fmt.Errorf("the pruned scans expect a table partitioned by day(ts); %s has spec %s", strings.Join(tbl.Identifier(), "."), spec)
}

// pruneCases derives the row filters from the rows: every day partition
// (the first two and last two if there are more than four), ts from its
// median on, one Kafka partition from its median offset on, and the
// greatest url (longer than the 16 characters Iceberg truncates string
// bounds to, so a wrongly truncated upper bound prunes its files).
func pruneCases(rows []scanRow) []pruneCase {
	var cases []pruneCase
	ts := func(v int64) string { return fmt.Sprintf("fromUnixTimestamp64Micro(toInt64(%d), 'UTC')", v) }

	days := map[int64]bool{}
	tss := make([]int64, len(rows))
	for i, r := range rows {
		tss[i] = r.ts
		days[floorDiv(r.ts, microsPerDay)] = true
	}
	dayList := make([]int64, 0, len(days))
	for d := range days {
		dayList = append(dayList, d)
	}
	slices.Sort(dayList)
	if len(dayList) > 4 {
		dayList = append(dayList[:2], dayList[len(dayList)-2:]...)
	}
	for _, d := range dayList {
		// The last microsecond of the day, inclusive: ClickHouse projects
		// ts < midnight to day(ts) <= the next day, and would not prune
		// a file whose partition value is that next day.
		lo, hi := d*microsPerDay, (d+1)*microsPerDay-1
		cases = append(cases, pruneCase{
			desc: "ts in day " + time.UnixMicro(lo).UTC().Format(time.DateOnly),
			expr: iceberg.NewAnd(iceberg.GreaterThanEqual(iceberg.Reference("ts"), iceberg.Timestamp(lo)),
				iceberg.LessThanEqual(iceberg.Reference("ts"), iceberg.Timestamp(hi))),
			sql:   fmt.Sprintf("ts >= %s AND ts <= %s", ts(lo), ts(hi)),
			match: func(r *scanRow) bool { return r.ts >= lo && r.ts <= hi },
		})
	}

	slices.Sort(tss)
	med := tss[len(tss)/2]
	cases = append(cases, pruneCase{
		desc:  fmt.Sprintf("ts >= %s (the median)", time.UnixMicro(med).UTC().Format(time.RFC3339Nano)),
		expr:  iceberg.GreaterThanEqual(iceberg.Reference("ts"), iceberg.Timestamp(med)),
		sql:   "ts >= " + ts(med),
		match: func(r *scanRow) bool { return r.ts >= med },
	})

	offs := map[int32][]int64{}
	for _, r := range rows {
		if !r.metaNull {
			offs[r.part] = append(offs[r.part], r.off)
		}
	}
	best, found := int32(0), false
	for p, os := range offs {
		if !found || len(os) > len(offs[best]) || len(os) == len(offs[best]) && p < best {
			best, found = p, true
		}
	}
	if found {
		os := offs[best]
		slices.Sort(os)
		p, o := best, os[len(os)/2]
		cases = append(cases, pruneCase{
			desc: fmt.Sprintf("_kafka_partition = %d and _kafka_offset >= %d", p, o),
			expr: iceberg.NewAnd(iceberg.EqualTo(iceberg.Reference("_kafka_partition"), p),
				iceberg.GreaterThanEqual(iceberg.Reference("_kafka_offset"), o)),
			sql:   fmt.Sprintf("_kafka_partition = %d AND _kafka_offset >= %d", p, o),
			match: func(r *scanRow) bool { return !r.metaNull && r.part == p && r.off >= o },
		})
	}

	maxURL, found := "", false
	for _, r := range rows {
		if !r.urlNull && (!found || r.url > maxURL) {
			maxURL, found = r.url, true
		}
	}
	if found {
		u := maxURL
		cases = append(cases, pruneCase{
			desc:  fmt.Sprintf("url = %q (the greatest)", u),
			expr:  iceberg.EqualTo(iceberg.Reference("url"), u),
			sql:   "url = " + sqlQuote(u),
			match: func(r *scanRow) bool { return !r.urlNull && r.url == u },
		})
	}
	return cases
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// sortedDiff sorts both and returns what want has more often than got and
// what got has more often than want.
func sortedDiff(want, got []int64) (missing, extra []int64) {
	slices.Sort(want)
	slices.Sort(got)
	i, j := 0, 0
	for i < len(want) || j < len(got) {
		switch {
		case j == len(got) || i < len(want) && want[i] < got[j]:
			missing = append(missing, want[i])
			i++
		case i == len(want) || got[j] < want[i]:
			extra = append(extra, got[j])
			j++
		default:
			i++
			j++
		}
	}
	return missing, extra
}

func fmtKeys(ks []int64) string {
	var parts []string
	for i, k := range ks {
		if i == 5 {
			parts = append(parts, "...")
			break
		}
		parts = append(parts, fmtKey(k))
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// independentRead is what the ClickHouse check needs from the oracle.
type independentRead struct {
	pipeline, topic   string
	main, dlq         *table.Table
	storage           config.Storage
	ends              map[int32]int64
	src               map[int32][]srcRecord
	mainRows, dlqRows int64 // what iceberg-go read
	cases             []pruneCase
}

// chTable is one table in the ClickHouse session.
type chTable struct {
	name            string
	tbl             *table.Table
	partCol, offCol string // its Kafka partition and offset columns
	floeRows        int64  // what iceberg-go read

	// Statement indexes.
	count, sumUTF8 int
	utf8Cols       []string
	snap           int64
	snapOff        map[int32]int64
	snapCount      int // -1: no snapshot with the pipeline's offsets
	snapRows       int
	// (partition, offset) keys of its current rows, as ClickHouse read them.
	final []int64
}

// checkWithClickHouse reads both tables with ClickHouse in one session and
// returns a summary of what it read and the violations of:
//
//   - every (partition, offset) in [0, end) is in exactly one of the two
//     tables, exactly once, and nothing else is; a table row has the event
//     id of the record at its offset, a dead-letter row its topic and exact
//     value bytes;
//   - each table's sum(1) equals iceberg-go's row count and its count(),
//     which ClickHouse answers from the current snapshot's summary;
//   - every string column is valid UTF-8;
//   - at a snapshot in the middle of each table's history, count() equals
//     the rows read and those are exactly the current rows below that
//     snapshot's floe.offsets (offsets and data committed together);
//   - each pruning case matches as many rows as in Go, through ClickHouse's
//     own partition and min/max pruning.
func checkWithClickHouse(ctx context.Context, chdbDir string, in independentRead) (summary string, problems []string, err error) {
	main := &chTable{name: "floe_main", tbl: in.main, partCol: "_kafka_partition", offCol: "_kafka_offset", floeRows: in.mainRows}
	dlq := &chTable{name: "floe_dlq", tbl: in.dlq, partCol: "partition", offCol: "offset", floeRows: in.dlqRows}
	var stmts []string
	add := func(s string) int { stmts = append(stmts, s); return len(stmts) - 1 }
	for _, t := range []*chTable{main, dlq} {
		engine, err := icebergEngine(t.tbl, in.storage)
		if err != nil {
			return "", nil, err
		}
		add(fmt.Sprintf("CREATE TABLE %s %s", t.name, engine))
		// Alone in its query, count() comes from the snapshot summary.
		t.count = add("SELECT count() FROM " + t.name)
		sel := []string{"sum(1)"}
		for _, f := range t.tbl.Schema().Fields() {
			if f.Type.Equals(iceberg.PrimitiveTypes.String) {
				t.utf8Cols = append(t.utf8Cols, f.Name)
				sel = append(sel, fmt.Sprintf("countIf(NOT isValidUTF8(`%s`))", f.Name))
			}
		}
		t.sumUTF8 = add(fmt.Sprintf("SELECT %s FROM %s", strings.Join(sel, ", "), t.name))
		id, off, ok, err := midSnapshot(t.tbl, in.pipeline)
		if err != nil {
			return "", nil, err
		}
		t.snapCount = -1
		if ok {
			// The id goes into the SQL as its exact decimal string.
			at := " SETTINGS iceberg_snapshot_id=" + strconv.FormatInt(id, 10)
			t.snap, t.snapOff = id, off[in.topic]
			t.snapCount = add("SELECT count() FROM " + t.name + at)
			t.snapRows = add(fmt.Sprintf("SELECT `%s`, `%s` FROM %s%s", t.partCol, t.offCol, t.name, at))
		}
	}
	mainRows := add("SELECT _kafka_partition, _kafka_offset, event_id FROM floe_main")
	dlqRows := add("SELECT topic, partition, offset, hex(value), value IS NULL FROM floe_dlq")
	pruned := make([]int, len(in.cases))
	for i, c := range in.cases {
		pruned[i] = add(fmt.Sprintf("SELECT sum(1) FROM floe_main WHERE %s SETTINGS use_iceberg_partition_pruning=1", c.sql))
	}
	events := add("SELECT event, value FROM system.events WHERE event LIKE 'Iceberg%Pruned%' ORDER BY event")

	start := time.Now()
	res, err := clickHouse(ctx, chdbDir, stmts)
	if err != nil {
		return "", nil, err
	}
	took := time.Since(start)

	fail := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	// ints reads the integers of a statement's single row.
	ints := func(i, n int) []int64 {
		r := res[i].Rows
		if len(r) != 1 || len(r[0]) != n {
			fail("%q returned %q, want one row of %d values", stmts[i], r, n)
			return make([]int64, n)
		}
		vs := make([]int64, n)
		for j, f := range r[0] {
			v, err := strconv.ParseInt(f, 10, 64)
			if err != nil {
				fail("%q returned %q: %v", stmts[i], f, err)
			}
			vs[j] = v
		}
		return vs
	}

	// Exactly once, row by row.
	type count struct{ main, dlq int }
	seen := map[int32][]count{}
	for p, e := range in.ends {
		seen[p] = make([]count, e)
	}
	var stray, mismatched []string
	var nstray, mismatches int
	note := func(which string, ps, os string) (int32, int64, *count) {
		p, perr := strconv.ParseInt(ps, 10, 32)
		o, oerr := strconv.ParseInt(os, 10, 64)
		cs, ok := seen[int32(p)]
		if perr != nil || oerr != nil || !ok || o < 0 || o >= int64(len(cs)) {
			nstray++
			if len(stray) < maxReported {
				stray = append(stray, fmt.Sprintf("%s row for partition %s offset %s, outside [0, end)", which, ps, os))
			}
			return 0, 0, nil
		}
		return int32(p), o, &cs[o]
	}
	mismatch := func(format string, args ...any) {
		mismatches++
		if len(mismatched) < maxReported {
			mismatched = append(mismatched, fmt.Sprintf(format, args...))
		}
	}
	for _, r := range res[mainRows].Rows {
		if len(r) != 3 {
			fail("table row %q: want 3 fields", r)
			continue
		}
		p, o, c := note("table", r[0], r[1])
		if c == nil {
			continue
		}
		c.main++
		main.final = append(main.final, int64(p)<<40|o)
		if want := in.src[p][o].eventID; r[2] != want {
			mismatch("table row at partition %d offset %d has event_id %q, the record there has %q", p, o, r[2], want)
		}
	}
	for _, r := range res[dlqRows].Rows {
		if len(r) != 5 {
			fail("dead-letter row %q: want 5 fields", r)
			continue
		}
		p, o, c := note("dead-letter", r[1], r[2])
		if c == nil {
			continue
		}
		c.dlq++
		dlq.final = append(dlq.final, int64(p)<<40|o)
		if r[0] != in.topic {
			mismatch("dead-letter row at partition %d offset %d names topic %q, want %q", p, o, r[0], in.topic)
		}
		value, err := hex.DecodeString(r[3])
		switch {
		case r[4] == "1":
			mismatch("dead-letter row at partition %d offset %d has a null value", p, o)
		case err != nil:
			mismatch("dead-letter row at partition %d offset %d: value %q is not hex: %v", p, o, r[3], err)
		case hashOf(value) != in.src[p][o].valueHash:
			mismatch("dead-letter row at partition %d offset %d holds a value other than the record's: %q", p, o, value)
		}
	}
	var bad []string
	var nbad int
	for _, p := range sortedParts(seen) {
		for o, c := range seen[p] {
			if c.main+c.dlq == 1 {
				continue
			}
			nbad++
			if len(bad) < maxReported {
				bad = append(bad, fmt.Sprintf("partition %d offset %d: %d table rows, %d dead-letter rows", p, o, c.main, c.dlq))
			}
		}
	}
	if nbad > 0 || nstray > 0 {
		fail("%d offsets are not exactly once in exactly one table, and %d rows are outside [0, end):\n    %s", nbad, nstray,
			strings.Join(append(bad, stray...), "\n    "))
	}
	if mismatches > 0 {
		fail("%d rows do not hold the record at their partition and offset:\n    %s", mismatches, strings.Join(mismatched, "\n    "))
	}

	// Counts, summaries, UTF-8 and a snapshot in the middle of each table.
	for _, t := range []*chTable{main, dlq} {
		name := strings.Join(t.tbl.Identifier(), ".")
		cnt := ints(t.count, 1)[0]
		su := ints(t.sumUTF8, 1+len(t.utf8Cols))
		if su[0] != t.floeRows {
			fail("%s: ClickHouse reads %d rows (sum(1)), iceberg-go %d", name, su[0], t.floeRows)
		}
		if cnt != su[0] {
			fail("%s: count() = %d (the current snapshot's summary) but the data files hold %d rows (sum(1))", name, cnt, su[0])
		}
		for i, col := range t.utf8Cols {
			if su[1+i] != 0 {
				fail("%s: %d rows have invalid UTF-8 in the string column %s", name, su[1+i], col)
			}
		}
		if t.snapCount < 0 {
			continue
		}
		var want, got []int64
		for _, k := range t.final {
			if k&(1<<40-1) < t.snapOff[int32(k>>40)] {
				want = append(want, k)
			}
		}
		for _, r := range res[t.snapRows].Rows {
			var p, o int64
			err := fmt.Errorf("%d fields", len(r))
			if len(r) == 2 {
				if p, err = strconv.ParseInt(r[0], 10, 32); err == nil {
					o, err = strconv.ParseInt(r[1], 10, 64)
				}
			}
			if err != nil {
				fail("%s: row %q at snapshot %d: want a partition and an offset: %v", name, r, t.snap, err)
				continue
			}
			got = append(got, p<<40|o)
		}
		if scnt := ints(t.snapCount, 1)[0]; scnt != int64(len(got)) {
			fail("%s: at snapshot %d count() = %d (its summary) but %d rows were read", name, t.snap, scnt, len(got))
		}
		if missing, extra := sortedDiff(want, got); len(missing) > 0 || len(extra) > 0 {
			fail("%s: at snapshot %d (floe.offsets %s) ClickHouse reads %d rows: of the current rows below those offsets %d are missing (partition/offset %s), and %d rows are not among them or duplicated (%s)",
				name, t.snap, fmtOffsets(t.snapOff), len(got), len(missing), fmtKeys(missing), len(extra), fmtKeys(extra))
		}
	}

	// The pruning cases, through ClickHouse's own pruning.
	for i, c := range in.cases {
		if got := ints(pruned[i], 1)[0]; got != c.want {
			fail("WHERE %s: %d rows, the unfiltered scan filtered in Go has %d", c.sql, got, c.want)
		}
	}

	slowest := 0
	for i := range res {
		if res[i].Took > res[slowest].Took {
			slowest = i
		}
	}
	var ev, snaps []string
	for _, r := range res[events].Rows {
		ev = append(ev, strings.Join(r, "="))
	}
	for _, t := range []*chTable{main, dlq} {
		if t.snapCount >= 0 {
			snaps = append(snaps, fmt.Sprintf("%d rows at %s snapshot %d", len(res[t.snapRows].Rows), t.name, t.snap))
		}
	}
	summary = fmt.Sprintf("ClickHouse read %d table and %d dead-letter rows, %s, and ran %d pruned queries in %s; slowest: %.60s (%s); pruning events: %s",
		len(res[mainRows].Rows), len(res[dlqRows].Rows), strings.Join(snaps, ", "), len(in.cases),
		took.Round(time.Millisecond), stmts[slowest], res[slowest].Took, strings.Join(ev, ", "))
	return summary, problems, nil
}

// midSnapshot returns the snapshot in the middle of the table's current
// lineage among those carrying the pipeline's floe.offsets, and its
// offsets.
func midSnapshot(tbl *table.Table, pipeline string) (int64, commit.Offsets, bool, error) {
	meta := tbl.Metadata()
	var lineage []table.Snapshot
	for s := meta.CurrentSnapshot(); s != nil; {
		if s.Summary != nil && s.Summary.Properties[commit.PropPipeline] == pipeline && s.Summary.Properties[commit.PropOffsets] != "" {
			lineage = append(lineage, *s)
		}
		if s.ParentSnapshotID == nil {
			break
		}
		s = meta.SnapshotByID(*s.ParentSnapshotID)
	}
	if len(lineage) == 0 {
		return 0, nil, false, nil
	}
	// Newest first; of two, the current one: the other is often the empty
	// start.
	s := lineage[(len(lineage)-1)/2]
	off, err := commit.ParseOffsets(s.Summary.Properties[commit.PropOffsets])
	if err != nil {
		return 0, nil, false, fmt.Errorf("snapshot %d: %w", s.SnapshotID, err)
	}
	return s.SnapshotID, off, true, nil
}

func sortedParts[V any](m map[int32]V) []int32 {
	ps := make([]int32, 0, len(m))
	for p := range m {
		ps = append(ps, p)
	}
	slices.Sort(ps)
	return ps
}
