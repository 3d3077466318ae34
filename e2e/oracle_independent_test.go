package e2e

import (
	"context"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/metrics"
	"github.com/apache/iceberg-go/table"

	"github.com/floelake/floe/catalog"
	"github.com/floelake/floe/commit"
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
	cases := pruneCases(rows)
	total := "?"
	if snap := tbl.CurrentSnapshot(); snap != nil && snap.Summary != nil {
		total = snap.Summary.Properties["total-data-files"]
	}
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
		// Small files on S3 make the scans wait on requests more than on
		// the CPU: more of them in flight than the default of one per core.
		var plan planReport
		scan := tbl.Scan(table.WithRowFilter(c.expr), table.WithSelectedFields(scanRowColumns[:2]...),
			table.WithMaxConcurrency(8), table.WithReporter(&plan))
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
			problems = append(problems, fmt.Sprintf("the scan %s returned %d rows from %s; the unfiltered scan has %d such rows: %d missing (partition/offset %s), %d unexpected (%s)",
				c.desc, len(got), plan.String(), c.want, len(missing), fmtKeys(missing), len(extra), fmtKeys(extra)))
		}
		c.desc = fmt.Sprintf("%s (%d rows; %s of %s)", c.desc, c.want, plan.String(), total)
	}
	return cases, problems, nil
}

// planReport takes the data file and manifest counts from a scan's
// planning report.
type planReport struct {
	mu                                sync.Mutex
	files, manifests, skippedManifest int64
	reported                          bool
}

func (r *planReport) Report(_ context.Context, m metrics.MetricsReport) {
	var sr metrics.ScanReport
	switch v := m.(type) {
	case metrics.ScanReport:
		sr = v
	case *metrics.ScanReport:
		sr = *v
	default:
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reported = true
	for _, c := range []struct {
		dst *int64
		src *metrics.CounterResult
	}{{&r.files, sr.Metrics.ResultDataFiles}, {&r.manifests, sr.Metrics.TotalDataManifests}, {&r.skippedManifest, sr.Metrics.SkippedDataManifests}} {
		if c.src != nil {
			*c.dst += c.src.Value
		}
	}
}

func (r *planReport) Close() error { return nil }

func (r *planReport) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.reported {
		return "no planning report"
	}
	return fmt.Sprintf("%d of %d manifests skipped, %d data files planned", r.skippedManifest, r.manifests, r.files)
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
	storage           catalog.StorageConfig
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
	count, rows int
	snap        int64
	snapOff     map[int32]int64
	snapCount   int // -1: no snapshot with the pipeline's offsets
	snapRows    int
	// (partition, offset) keys of its current rows, as ClickHouse read them.
	final []int64
	// Rows with invalid UTF-8, per string column, and the first of them.
	badUTF8     map[string]int
	badUTF8Rows []string
}

// utf8Flags is a ClickHouse expression naming, space-separated, the string
// columns of tbl that are not valid UTF-8 in a row ("" when all are).
func utf8Flags(tbl *table.Table) string {
	var parts []string
	for _, f := range tbl.Schema().Fields() {
		if f.Type.Equals(iceberg.PrimitiveTypes.String) {
			parts = append(parts, fmt.Sprintf("if(ifNull(isValidUTF8(`%s`), 1), '', %s)", f.Name, sqlQuote(" "+f.Name)))
		}
	}
	if len(parts) == 0 {
		return "''"
	}
	return "concat(" + strings.Join(append(parts, "''"), ", ") + ")"
}

// noteUTF8 tallies a row's utf8Flags field.
func (t *chTable) noteUTF8(flags, partition, offset string) {
	for _, col := range strings.Fields(flags) {
		if t.badUTF8 == nil {
			t.badUTF8 = map[string]int{}
		}
		t.badUTF8[col]++
		if len(t.badUTF8Rows) < 5 {
			t.badUTF8Rows = append(t.badUTF8Rows, partition+"/"+offset)
		}
	}
}

// checkWithClickHouse reads pairs of tables (a table and its dead-letter
// table) with ClickHouse, all in one session, and returns for each pair a
// summary of what it read and the violations of:
//
//   - every (partition, offset) in [0, end) is in exactly one of the two
//     tables, exactly once, and nothing else is; a table row has the event
//     id of the record at its offset, a dead-letter row its topic and exact
//     value bytes;
//   - each table's rows, as many as iceberg-go read, are as many as its
//     count(), which ClickHouse answers from the current snapshot's summary;
//   - every string column is valid UTF-8;
//   - at a snapshot in the middle of each table's history, count() equals
//     the rows read and those are exactly the current rows below that
//     snapshot's floe.offsets (offsets and data committed together);
//   - each pruning case matches as many rows as in Go, through ClickHouse's
//     own partition and min/max pruning.
func checkWithClickHouse(ctx context.Context, chdbDir string, ins ...independentRead) (summaries []string, problems [][]string, err error) {
	var stmts []string
	add := func(s string) int { stmts = append(stmts, s); return len(stmts) - 1 }
	for _, in := range ins {
		if strings.HasPrefix(in.main.Location(), "s3://") {
			// Many small files on S3: more requests in flight than the
			// default of one thread per core.
			add("SET max_threads = 8")
			break
		}
	}
	checks := make([]*chCheck, len(ins))
	for i, in := range ins {
		if checks[i], err = newCHCheck(in, i, add); err != nil {
			return nil, nil, err
		}
	}
	start := time.Now()
	res, err := clickHouse(ctx, chdbDir, stmts)
	if err != nil {
		return nil, nil, err
	}
	took := time.Since(start)
	prevEvents := map[string]int64{}
	for _, c := range checks {
		summary, ps := c.evaluate(res, stmts, prevEvents)
		if len(ins) == 1 {
			summary += fmt.Sprintf(" (%s in all)", took.Round(time.Millisecond))
		}
		summaries = append(summaries, summary)
		problems = append(problems, ps)
	}
	return summaries, problems, nil
}

// chCheck is the ClickHouse check of one pair of tables: statements to run,
// then the evaluation of their results.
type chCheck struct {
	in          independentRead
	main, dlq   *chTable
	pruned      []int
	events      int
	first, last int // its statements
}

// newCHCheck adds the statements of the check to a session; n numbers the
// check's tables there.
func newCHCheck(in independentRead, n int, add func(string) int) (*chCheck, error) {
	c := &chCheck{
		in:   in,
		main: &chTable{name: fmt.Sprintf("floe_main_%d", n), tbl: in.main, partCol: "_kafka_partition", offCol: "_kafka_offset", floeRows: in.mainRows},
		dlq:  &chTable{name: fmt.Sprintf("floe_dlq_%d", n), tbl: in.dlq, partCol: "partition", offCol: "offset", floeRows: in.dlqRows},
	}
	c.first = -1
	addc := func(s string) int {
		i := add(s)
		if c.first < 0 {
			c.first = i
		}
		c.last = i
		return i
	}
	for _, t := range []*chTable{c.main, c.dlq} {
		engine, err := icebergEngine(t.tbl, in.storage)
		if err != nil {
			return nil, err
		}
		addc(fmt.Sprintf("CREATE TABLE %s %s", t.name, engine))
		// Alone in its query, count() comes from the snapshot summary; the
		// rows below come from the data files.
		t.count = addc("SELECT count() FROM " + t.name)
		id, off, ok, err := midSnapshot(t.tbl, in.pipeline)
		if err != nil {
			return nil, err
		}
		t.snapCount = -1
		if ok {
			// The id goes into the SQL as its exact decimal string.
			at := " SETTINGS iceberg_snapshot_id=" + strconv.FormatInt(id, 10)
			t.snap, t.snapOff = id, off[in.topic]
			t.snapCount = addc("SELECT count() FROM " + t.name + at)
			t.snapRows = addc(fmt.Sprintf("SELECT `%s`, `%s` FROM %s%s", t.partCol, t.offCol, t.name, at))
		}
	}
	// One pass over each table's files for the rows and the UTF-8 check.
	c.main.rows = addc(fmt.Sprintf("SELECT _kafka_partition, _kafka_offset, event_id, %s FROM %s", utf8Flags(c.main.tbl), c.main.name))
	c.dlq.rows = addc(fmt.Sprintf("SELECT topic, partition, offset, hex(value), value IS NULL, %s FROM %s", utf8Flags(c.dlq.tbl), c.dlq.name))
	for _, pc := range in.cases {
		c.pruned = append(c.pruned, addc(fmt.Sprintf("SELECT sum(1) FROM %s WHERE %s SETTINGS use_iceberg_partition_pruning=1", c.main.name, pc.sql)))
	}
	// Counters of the whole session: evaluate subtracts the previous check's.
	c.events = addc("SELECT event, value FROM system.events WHERE event LIKE 'Iceberg%Pruned%' ORDER BY event")
	return c, nil
}

// evaluate checks the results of the check's statements. prevEvents holds
// the session's pruning counters before the check and is updated.
func (c *chCheck) evaluate(res []chResult, stmts []string, prevEvents map[string]int64) (summary string, problems []string) {
	in, main, dlq := c.in, c.main, c.dlq
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
	for _, r := range res[main.rows].Rows {
		if len(r) != 4 {
			fail("table row %q: want 4 fields", r)
			continue
		}
		p, o, c := note("table", r[0], r[1])
		main.noteUTF8(r[3], r[0], r[1])
		if c == nil {
			continue
		}
		c.main++
		main.final = append(main.final, int64(p)<<40|o)
		if want := in.src[p][o].eventID; r[2] != want {
			mismatch("table row at partition %d offset %d has event_id %q, the record there has %q", p, o, r[2], want)
		}
	}
	for _, r := range res[dlq.rows].Rows {
		if len(r) != 6 {
			fail("dead-letter row %q: want 6 fields", r)
			continue
		}
		p, o, c := note("dead-letter", r[1], r[2])
		dlq.noteUTF8(r[5], r[1], r[2])
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
		cnt, read := ints(t.count, 1)[0], int64(len(res[t.rows].Rows))
		if read != t.floeRows {
			fail("%s: ClickHouse reads %d rows, iceberg-go %d", name, read, t.floeRows)
		}
		if cnt != read {
			fail("%s: count() = %d (the current snapshot's summary) but the data files hold %d rows", name, cnt, read)
		}
		for _, col := range slices.Sorted(maps.Keys(t.badUTF8)) {
			fail("%s: %d rows have invalid UTF-8 in the string column %s (partition/offset of the first: %v)", name, t.badUTF8[col], col, t.badUTF8Rows)
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
	for i, pc := range in.cases {
		if got := ints(c.pruned[i], 1)[0]; got != pc.want {
			fail("WHERE %s: %d rows, the unfiltered scan filtered in Go has %d", pc.sql, got, pc.want)
		}
	}

	slowest := c.first
	var took time.Duration
	for i := c.first; i <= c.last; i++ {
		took += res[i].Took
		if res[i].Took > res[slowest].Took {
			slowest = i
		}
	}
	var ev, snaps []string
	for _, r := range res[c.events].Rows {
		if len(r) == 2 {
			v, _ := strconv.ParseInt(r[1], 10, 64)
			ev = append(ev, fmt.Sprintf("%s=%d", r[0], v-prevEvents[r[0]]))
			prevEvents[r[0]] = v
		}
	}
	for _, t := range []*chTable{main, dlq} {
		if t.snapCount >= 0 {
			snaps = append(snaps, fmt.Sprintf("%d rows at %s snapshot %d", len(res[t.snapRows].Rows), t.name, t.snap))
		}
	}
	summary = fmt.Sprintf("ClickHouse read %d table and %d dead-letter rows, %s, and ran %d pruned queries: %s of queries, the slowest %.60s (%s); pruning events: %s",
		len(res[main.rows].Rows), len(res[dlq.rows].Rows), strings.Join(snaps, ", "), len(in.cases),
		took.Round(time.Millisecond), stmts[slowest], res[slowest].Took, strings.Join(ev, ", "))
	return summary, problems
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
