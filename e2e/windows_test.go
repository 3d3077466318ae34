package e2e

// Windowed pipelines (transform.window) end to end: the real binary
// aggregates a stream of clicks into event-time windows, one row per group
// and window corrected at every commit however late an event is, while
// the test SIGKILLs it (and, in the cluster version, the leader that runs
// the table writer and its window state).
//
// The events (windowGen) are what a click stream looks like to a window:
// event times out of order by seconds, 5% of them hours late (into
// windows the stream wrote earlier and the state evicted long ago), 1%
// days late (into a few windows days before the stream, far beyond the
// state retention: every such event reads its window back from the
// table; the tumbling pipeline's max_lateness of 36 hours makes those two
// or three days late dead letters, decided per partition), the same record
// produced twice with the same record key (on
// the same partition, seconds apart: the pipeline's dedup drops the copy
// of a kept record, in the stream and in the batch), clicks of the
// country "XX",
// which the pipeline's filter drops, and a few records that are dead
// letters: malformed JSON, a missing or bad event time, an amount of the
// wrong type, and amounts the computed column amount2 = amount * 2 fails
// on (null, and one that overflows). Every record but a copy goes to a
// random partition (a random record key).
//
// The oracle (checkWindows) is `floe verify`, the binary the test built,
// which recomputes every window in batch from the topic with the
// pipeline's own decoder and transform and compares the table row by row;
// it must say OK. Besides it, the test counts what it produced and
// requires verify to have read exactly that (records, events, filtered,
// dead letters), the table's events and count aggregate to add up to the
// events produced, the dead-letter table to hold exactly the dead letters
// (by partition and offset), late data to have corrected windows
// (revision > 1), windows days before the stream among them (read back
// from the table), and ClickHouse (chdb), which applies the table's
// deletes with its own code, to read the same rows as iceberg-go.

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
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
	"github.com/floelake/floe/internal/procrig"
)

const (
	windowTopic    = "clicks"
	windowPipeline = "clicks_windows"
	windowTable    = "e2e.clicks_windows"
)

// windowShape is a windowed pipeline of the clicks: its window and the
// columns the oracle reads.
type windowShape struct {
	// window is the transform.window section, indented as it goes under
	// transform.
	window string
	// group is the window's one group column, count its count aggregate.
	group, count string
	// maxLateness is the window's max_lateness (0: none); lastEnd the end
	// of the last window an event at ts (µs) belongs to.
	maxLateness time.Duration
	lastEnd     func(ts int64) int64
}

var (
	// tumblingClicks: per country and minute, watermark without delay,
	// windows out of memory 10 minutes (of event time) after it, events
	// whose window ended 36 hours before their partition's watermark
	// dead-lettered (of the days-late events, those two or three days
	// late).
	tumblingClicks = windowShape{group: "country", count: "clicks", maxLateness: 36 * time.Hour,
		lastEnd: func(ts int64) int64 { m := time.Minute.Microseconds(); return ts - ((ts%m)+m)%m + m }, window: `
      window:
        time: ts
        type: tumbling
        size: 1m
        group_by: [country]
        aggregates:
          - {name: clicks, fn: count}
          - {name: total, fn: sum, of: amount}
          - {name: avg_amount, fn: avg, of: amount}
          - {name: max_amount2, fn: max, of: amount2}
          - {name: users, fn: approx_count_distinct, of: user}
        watermark_delay: 0s
        max_lateness: 36h
`}
	// sessionClicks: per user, sessions closed by a minute without a
	// click (with 100 users a user clicks about every 50 seconds of event
	// time: sessions of a few clicks, and late clicks that bridge two).
	sessionClicks = windowShape{group: "user", count: "clicks", window: `
      window:
        time: ts
        type: session
        gap: 1m
        group_by: [user]
        aggregates:
          - {name: clicks, fn: count}
          - {name: total, fn: sum, of: amount}
          - {name: min_amount2, fn: min, of: amount2}
          - {name: countries, fn: approx_count_distinct, of: country}
        watermark_delay: 5s
`}
)

// windowRetention is the state retention of the window pipelines: far
// shorter than the hours and days late events are late by.
const windowRetention = 10 * time.Minute

// windowPipelineYAML is the windowed pipeline's entry beyond what procrig
// writes.
func windowPipelineYAML(w windowShape) string {
	return `
    schema:
      - {name: user, type: string, required: true}
      - {name: country, type: string, required: true}
      - {name: ts, type: timestamptz, required: true}
      - {name: amount, type: long}
    transform:
      filter: 'country != "XX"'
      columns: [{name: amount2, expr: 'amount * 2'}]
      dedup:
        key: [user, country, ts, amount]
        horizon: 10m` + w.window + `      state:
        retention: ` + windowRetention.String() + "\n"
}

// windowMember turns a member's pipeline into the windowed clicks pipeline.
func windowMember(mc *procrig.MemberConfig, w windowShape) {
	mc.Pipeline.Name, mc.Pipeline.Table, mc.Pipeline.Topic = windowPipeline, windowTable, windowTopic
	mc.Pipeline.Extra = windowPipelineYAML(w)
}

// writeWindowConfig writes s's configuration with the windowed pipeline
// and returns its path and the configuration as floe parses it.
func writeWindowConfig(t *testing.T, s setup, w windowShape) (string, config.Config) {
	t.Helper()
	return writeMemberConfig(t, s, func(mc *procrig.MemberConfig) { windowMember(mc, w) })
}

// ---------------------------------------------------------------------------
// The events and the model

// clickKind is what the pipeline does with a record.
type clickKind uint8

const (
	clickKept      clickKind = iota // an event of the windows
	clickFiltered                   // the filter drops it
	clickDead                       // a dead letter
	clickDuplicate                  // a copy of a kept record: dedup drops it
)

// windowRecord is one produced record.
type windowRecord struct {
	key, value []byte
	kind       clickKind
	amount     int64 // of a kept record
	ts         int64 // of a kept record, Unix µs
	part       int32 // set when Kafka acknowledges it
	off        int64
}

// windowGen generates the clicks; it is deterministic for a seed.
type windowGen struct {
	rng    *rand.Rand
	t0     time.Time // the stream's first event time
	clock  time.Time // event time, moving forward about half a second per record
	users  int
	recent []windowRecord // the last records, for duplicates
	stats  windowGenStats
}

// windowGenStats counts what the generator produced.
type windowGenStats struct {
	records, duplicates, lateHours, lateDays, filtered, dead int
}

func (s windowGenStats) String() string {
	return fmt.Sprintf("%d records: %d duplicates, %d hours late, %d days late, %d for the filter, %d dead letters",
		s.records, s.duplicates, s.lateHours, s.lateDays, s.filtered, s.dead)
}

var (
	windowCountries = []string{"US", "US", "US", "DE", "DE", "FR", "JP", "BR", "IN"}
	windowZones     = []*time.Location{time.UTC, time.FixedZone("", 2*3600), time.FixedZone("", -5*3600), time.FixedZone("", 5*3600+1800)}
)

func newWindowGen(seed int64, users int) *windowGen {
	t0 := time.Date(2025, 3, 9, 22, 30, 0, 0, time.UTC) // the stream crosses a day
	return &windowGen{rng: rand.New(rand.NewPCG(uint64(seed), 0x77696e64)), t0: t0, clock: t0, users: users}
}

// daysLateBefore is the event time before which every event is days late:
// an hour before the stream, where hours-late events never reach.
func (g *windowGen) daysLateBefore() time.Time { return g.t0.Add(-time.Hour) }

// next returns the next record.
func (g *windowGen) next() windowRecord {
	g.stats.records++
	g.clock = g.clock.Add(time.Duration(100+g.rng.IntN(800)) * time.Millisecond)
	// A random record key: the client's partitioner hashes it, so every
	// record goes to a random partition (a copy to its original's).
	key := []byte(fmt.Sprintf("%016x", g.rng.Uint64()))
	x := g.rng.Float64()
	switch {
	case len(g.recent) > 0 && x < 0.03:
		// The same key: the same partition, and a few seconds of
		// Kafka time later, well within the dedup horizon. A copy of a
		// filtered record or a dead letter is one too.
		g.stats.duplicates++
		r := g.recent[g.rng.IntN(len(g.recent))]
		if r.kind == clickKept {
			r.kind = clickDuplicate
		}
		g.count(r.kind)
		return r
	case x < 0.036:
		g.stats.dead++
		ts := jsonString(g.clock.Format(time.RFC3339Nano))
		values := []string{
			`{"user": "u-001", "country": "DE", "ts": ` + ts + `, "amount": 1`, // truncated
			`{"user": "u-001", "country": "DE", "amount": 1}`,                  // no event time
			`{"user": "u-001", "country": "DE", "ts": "yesterday", "amount": 1}`,
			`{"user": "u-001", "country": "DE", "ts": ` + ts + `, "amount": "lots"}`,
			`{"user": "u-001", "country": null, "ts": ` + ts + `, "amount": 1}`,
			// amount2 = amount * 2 fails: null arithmetic, overflow.
			`{"user": "u-001", "country": "DE", "ts": ` + ts + `, "amount": null}`,
			`{"user": "u-001", "country": "FR", "ts": ` + ts + `}`,
			`{"user": "u-001", "country": "FR", "ts": ` + ts + `, "amount": 5000000000000000000}`,
		}
		return g.remember(windowRecord{key: key, value: []byte(values[g.rng.IntN(len(values))]), kind: clickDead})
	}
	country := windowCountries[g.rng.IntN(len(windowCountries))]
	kind := clickKept
	if g.rng.IntN(100) < 3 {
		country, kind = "XX", clickFiltered
		g.stats.filtered++
	}
	// Out of order by up to ten seconds either way; 5% hours late, into
	// the windows the stream wrote at least an hour ago (before t0 in its
	// first hour), 1% days late, into the first two minutes of one of
	// the three days before t0.
	ts := g.clock.Add(time.Duration(g.rng.IntN(20_000_000)-10_000_000) * time.Microsecond)
	user := g.rng.IntN(g.users)
	switch y := g.rng.Float64(); {
	case y < 0.01:
		// Clicks of ten users: a user's days-late clicks meet in sessions
		// too.
		g.stats.lateDays++
		ts = g.t0.Add(-time.Duration(1+g.rng.IntN(3))*24*time.Hour + time.Duration(g.rng.IntN(120_000_000))*time.Microsecond)
		user = g.rng.IntN(min(10, g.users))
	case y < 0.06:
		g.stats.lateHours++
		late := time.Hour
		if span := g.clock.Sub(g.t0) - time.Hour; span > 0 {
			late += time.Duration(g.rng.Int64N(int64(span)))
		}
		ts = g.clock.Add(-late)
	}
	amount := g.rng.Int64N(10_000) - 100 // now and then a refund
	fields := []string{
		`"user":` + jsonString(fmt.Sprintf("u-%03d", user)),
		`"country":` + jsonString(country),
		`"ts":` + jsonString(ts.In(windowZones[g.rng.IntN(len(windowZones))]).Format("2006-01-02T15:04:05.000000Z07:00")),
		`"amount":` + strconv.FormatInt(amount, 10),
	}
	g.rng.Shuffle(len(fields), func(i, j int) { fields[i], fields[j] = fields[j], fields[i] })
	return g.remember(windowRecord{key: key, value: []byte("{" + strings.Join(fields, ", ") + "}"), kind: kind, amount: amount, ts: ts.UnixMicro()})
}

func (g *windowGen) count(k clickKind) {
	switch k {
	case clickFiltered:
		g.stats.filtered++
	case clickDead:
		g.stats.dead++
	}
}

// remember keeps r among 500 recent records, which duplicates repeat.
func (g *windowGen) remember(r windowRecord) windowRecord {
	if len(g.recent) < 500 {
		g.recent = append(g.recent, r)
	} else {
		g.recent[g.rng.IntN(len(g.recent))] = r
	}
	return r
}

// windowModel is what was acknowledged, and the generator that makes it.
type windowModel struct {
	gen  *windowGen
	rate int // records per second

	mu                      sync.Mutex
	records, kept, filtered int64
	duplicates              int64   // copies of kept records
	amount                  int64   // the sum of the kept records' amounts
	dead                    []int64 // partition<<40|offset of every dead letter
	perPartition            map[int32]int64
	// acked holds every record acknowledged, for applyLateness.
	acked []windowRecord
	// late counts the events applyLateness found later than max_lateness.
	late        int64
	lateApplied bool
}

// applyLateness moves the events later than w's max_lateness from the
// events (and the copies) to the dead letters, the way the pipeline
// decides: per partition, in offset order, an event is late when its last
// window ended max_lateness before the partition's newest event time so
// far (watermark_delay is 0); a late copy is a dead letter, not a
// duplicate; only events that are kept move the clock. m.mu is held.
func (m *windowModel) applyLateness(w windowShape) {
	if m.lateApplied || w.maxLateness <= 0 {
		return
	}
	m.lateApplied = true
	recs := slices.Clone(m.acked)
	slices.SortFunc(recs, func(a, b windowRecord) int {
		return cmp.Or(cmp.Compare(a.part, b.part), cmp.Compare(a.off, b.off))
	})
	clock := map[int32]int64{}
	for _, r := range recs {
		if r.kind != clickKept && r.kind != clickDuplicate {
			continue
		}
		c, ok := clock[r.part]
		if ok && w.lastEnd(r.ts) <= c-w.maxLateness.Microseconds() {
			m.late++
			m.dead = append(m.dead, int64(r.part)<<40|r.off)
			if r.kind == clickKept {
				m.kept--
				m.amount -= r.amount
			} else {
				m.duplicates--
			}
			continue
		}
		if r.kind == clickKept && (!ok || r.ts > c) {
			clock[r.part] = r.ts
		}
	}
}

func newWindowModel(seed int64, users, rate int) *windowModel {
	return &windowModel{gen: newWindowGen(seed, users), rate: rate, perPartition: map[int32]int64{}}
}

// startProducer produces chunks of n records at the model's rate until
// finished with at least minRecords produced.
func (m *windowModel) startProducer(t *testing.T, broker string, minRecords int64, n int) *producer {
	return runProducer(t, broker, minRecords, func(ctx context.Context, cl *kgo.Client, _ int64, stats *gen.ProducerStats) error {
		start := time.Now()
		recs := make([]windowRecord, n)
		for i := range recs {
			recs[i] = m.gen.next()
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		var perr error
		for i := range recs {
			r := &recs[i]
			wg.Add(1)
			cl.Produce(ctx, &kgo.Record{Topic: windowTopic, Key: r.key, Value: r.value}, func(kr *kgo.Record, err error) {
				defer wg.Done()
				if err != nil {
					mu.Lock()
					perr = cmp.Or(perr, err)
					mu.Unlock()
					return
				}
				r.part, r.off = kr.Partition, kr.Offset
			})
		}
		wg.Wait()
		if perr != nil {
			return perr
		}
		var dead int64
		m.mu.Lock()
		for _, r := range recs {
			m.records++
			m.perPartition[r.part]++
			m.acked = append(m.acked, r)
			switch r.kind {
			case clickKept:
				m.kept++
				m.amount += r.amount
			case clickFiltered:
				m.filtered++
			case clickDuplicate:
				m.duplicates++
			case clickDead:
				m.dead = append(m.dead, int64(r.part)<<40|r.off)
				dead++
			}
		}
		m.mu.Unlock()
		stats.Produced.Add(int64(n))
		stats.Malformed.Add(dead)
		if d := time.Until(start.Add(time.Duration(n) * time.Second / time.Duration(m.rate))); d > 0 {
			select { // pacing, not waiting for a condition
			case <-time.After(d):
			case <-ctx.Done():
			}
		}
		return nil
	})
}

// ---------------------------------------------------------------------------
// Waiting

// windowCommitted is the sum of the window table's committed offsets (0
// before it exists).
func windowCommitted(cat *catalog.Catalog) int64 {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	off, err := committedOffsets(ctx, cat, windowTable, windowPipeline, windowTopic)
	if err != nil {
		return 0
	}
	return sum(off)
}

// windowReached reports whether the window table's offsets reach ends.
func windowReached(cat *catalog.Catalog, ends map[int32]int64) (bool, string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	off, err := committedOffsets(ctx, cat, windowTable, windowPipeline, windowTopic)
	return err == nil && reached(off, ends), fmt.Sprintf("table offsets %s (err %v), end offsets %s", fmtOffsets(off), err, fmtOffsets(ends))
}

// ---------------------------------------------------------------------------
// The oracle

// windowRow is a row of the window table, as the oracle reads it.
type windowRow struct {
	group                          string
	start, end                     int64 // microseconds
	events, count, revision, total int64
}

func (r windowRow) String() string {
	return fmt.Sprintf("%s [%s, %s) events %d count %d total %d revision %d", r.group,
		time.UnixMicro(r.start).UTC().Format(time.RFC3339Nano), time.UnixMicro(r.end).UTC().Format(time.RFC3339Nano),
		r.events, r.count, r.total, r.revision)
}

// scanWindows reads every row of the window table's current snapshot with
// iceberg-go, ordered by group and start.
func scanWindows(ctx context.Context, tbl *table.Table, w windowShape) ([]windowRow, error) {
	cols := []string{w.group, "window_start", "window_end", "events", w.count, "revision", "total"}
	at, err := tbl.Scan(table.WithSelectedFields(cols...)).ToArrowTable(ctx)
	if err != nil {
		return nil, err
	}
	defer at.Release()
	var rows []windowRow
	err = eachRow(at, cols, func(c []arrow.Array, i int) {
		r := windowRow{
			group: strValue(c[0], i),
			start: int64(c[1].(*array.Timestamp).Value(i)), end: int64(c[2].(*array.Timestamp).Value(i)),
			events: c[3].(*array.Int64).Value(i), count: c[4].(*array.Int64).Value(i), revision: c[5].(*array.Int64).Value(i),
		}
		if !c[6].IsNull(i) {
			r.total = c[6].(*array.Int64).Value(i)
		}
		rows = append(rows, r)
	})
	slices.SortFunc(rows, func(a, b windowRow) int { return cmp.Or(cmp.Compare(a.group, b.group), cmp.Compare(a.start, b.start)) })
	return rows, err
}

// verifyReport is what `floe verify` printed.
type verifyReport struct {
	records, events, filtered, duplicates, dead, windows int64
	rows, missing, extra, different                      int64
}

var (
	verifyRead  = regexp.MustCompile(`(?m)^read (\d+) records: (\d+) events, (\d+) filtered out, (\d+) duplicates, (\d+) dead letters; the batch computation has (\d+) windows$`)
	verifyTable = regexp.MustCompile(`(?m)^table: (\d+) rows; (\d+) windows missing, (\d+) extra, (\d+) different$`)
)

// runVerify runs `floe verify` (the built binary) on the configuration
// file and requires it to exit 0 with its OK line.
func runVerify(t *testing.T, bin, cfgPath string) verifyReport {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	cmd := exec.CommandContext(ctx, bin, "verify", "--config", cfgPath, "--pipeline", windowPipeline, "--show", "10")
	b, err := cmd.CombinedOutput()
	out := string(b)
	if err != nil {
		t.Fatalf("floe verify: %v\n%s", err, out)
	}
	if !strings.Contains(out, "OK: the table equals the batch recomputation") {
		t.Fatalf("floe verify exited 0 without its OK line:\n%s", out)
	}
	var rep verifyReport
	m, n := verifyRead.FindStringSubmatch(out), verifyTable.FindStringSubmatch(out)
	if m == nil || n == nil {
		t.Fatalf("floe verify: no record and table counts in its report:\n%s", out)
	}
	for i, p := range []*int64{&rep.records, &rep.events, &rep.filtered, &rep.duplicates, &rep.dead, &rep.windows} {
		*p, _ = strconv.ParseInt(m[i+1], 10, 64)
	}
	for i, p := range []*int64{&rep.rows, &rep.missing, &rep.extra, &rep.different} {
		*p, _ = strconv.ParseInt(n[i+1], 10, 64)
	}
	t.Logf("floe verify took %s:\n%s", time.Since(start).Round(time.Millisecond), strings.TrimSpace(out))
	return rep
}

// checkWindows is the windowed pipelines' oracle (see the top of the
// file); the table's offsets must have reached the topic's end offsets
// and floe must be stopped or idle.
func checkWindows(t *testing.T, bin, cfgPath string, cfg config.Config, w windowShape, model *windowModel, want produced) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	pc := cfg.Pipelines[0]
	ends, err := endOffsets(ctx, cfg.Kafka.Brokers[0], windowTopic)
	if err != nil {
		t.Fatalf("oracle: %v", err)
	}
	model.mu.Lock()
	defer model.mu.Unlock()
	model.applyLateness(w)
	if w.maxLateness > 0 && model.late == 0 {
		t.Errorf("harness: max_lateness is %s but no event was that late", w.maxLateness)
	}
	if sum(ends) != want.Records || model.records != want.Records {
		t.Fatalf("harness: the topic holds %d records, the producer acknowledged %d, the model counted %d", sum(ends), want.Records, model.records)
	}
	for p, e := range ends {
		if model.perPartition[p] != e {
			t.Fatalf("harness: partition %d ends at %d but %d records were acknowledged there", p, e, model.perPartition[p])
		}
	}
	t.Logf("oracle: end offsets %s: %d records (%d events, %d filtered, %d duplicates, %d dead letters, %d of them later than max_lateness); generated %s",
		fmtOffsets(ends), model.records, model.kept, model.filtered, model.duplicates, len(model.dead), model.late, model.gen.stats)

	cat, err := catalog.Open(ctx, cfg.Catalog, cfg.Storage, cfg.Node.DataDir)
	if err != nil {
		t.Fatalf("oracle: open catalog: %v", err)
	}
	defer cat.Close()
	tbl, err := cat.LoadTable(ctx, catalog.Ident(pc.Table))
	if err != nil {
		t.Fatalf("oracle: load %s: %v", pc.Table, err)
	}
	off, _, found, err := commit.TableOffsets(tbl, pc.Name)
	if err != nil || !found || !sameOffsets(off[windowTopic], ends) {
		t.Fatalf("oracle: %s's floe.offsets are %s (found %v, err %v), want the end offsets %s", pc.Table, off.Encode(), found, err, fmtOffsets(ends))
	}
	if commit.TableState(tbl, pc.Name) == "" {
		t.Errorf("oracle: %s's current snapshot references no state checkpoint (floe.state)", pc.Table)
	}
	if commit.TableDedup(tbl, pc.Name) == "" {
		t.Errorf("oracle: %s's current snapshot references no dedup state manifest (floe.dedup)", pc.Table)
	}

	// floe verify, and what it read against what was produced.
	rep := runVerify(t, bin, cfgPath)
	if rep.records != model.records || rep.events != model.kept || rep.filtered != model.filtered || rep.duplicates != model.duplicates ||
		rep.dead != int64(len(model.dead)) {
		t.Errorf("oracle: floe verify read %d records (%d events, %d filtered out, %d duplicates, %d dead letters), the producer made %d (%d, %d, %d, %d)",
			rep.records, rep.events, rep.filtered, rep.duplicates, rep.dead, model.records, model.kept, model.filtered, model.duplicates, len(model.dead))
	}
	if rep.windows == 0 || rep.rows != rep.windows {
		t.Errorf("oracle: floe verify: %d windows in the batch, %d rows in the table", rep.windows, rep.rows)
	}

	// iceberg-go: the rows add up to the events produced, and late data
	// corrected windows, days-late data windows long out of memory.
	rows, err := scanWindows(ctx, tbl, w)
	if err != nil {
		t.Fatalf("oracle: scan %s: %v", pc.Table, err)
	}
	var events, count, total int64
	var corrected, readBack int
	var maxRevision int64
	daysLate := model.gen.daysLateBefore().UnixMicro()
	for _, r := range rows {
		events += r.events
		count += r.count
		total += r.total
		maxRevision = max(maxRevision, r.revision)
		if r.revision > 1 {
			corrected++
			if r.end <= daysLate {
				readBack++
			}
		}
		if r.revision < 1 || r.events < 1 || r.count != r.events {
			t.Errorf("oracle: %s: row %v: want a revision and events of at least 1 and %s equal to events", pc.Table, r, w.count)
		}
	}
	t.Logf("oracle: %s holds %d rows; %d corrected (revision > 1, at most %d), %d of them windows days before the stream",
		pc.Table, len(rows), corrected, maxRevision, readBack)
	if int64(len(rows)) != rep.rows {
		t.Errorf("oracle: iceberg-go reads %d rows of %s, floe verify %d", len(rows), pc.Table, rep.rows)
	}
	if events != model.kept || count != model.kept || total != model.amount {
		t.Errorf("oracle: %s's rows add up to %d events, %s %d, total %d; the producer made %d events of total amount %d",
			pc.Table, events, w.count, count, total, model.kept, model.amount)
	}
	if corrected == 0 {
		t.Errorf("oracle: no row of %s has a revision above 1: late data corrected no window", pc.Table)
	}
	if readBack == 0 {
		t.Errorf("oracle: no window days before the stream was corrected: days-late events never read their window back from the table")
	}

	// The dead-letter table holds the dead letters.
	dlq, err := cat.LoadTable(ctx, catalog.Ident(pc.DeadLetter()))
	if err != nil {
		t.Fatalf("oracle: load %s: %v", pc.DeadLetter(), err)
	}
	gotDLQ, err := offsetRowsOf(ctx, dlq, "partition", "offset")
	if err != nil {
		t.Fatalf("oracle: scan %s: %v", pc.DeadLetter(), err)
	}
	if missing, extra := sortedDiff(slices.Clone(model.dead), gotDLQ); len(missing)+len(extra) > 0 {
		t.Errorf("oracle (dead letters): %s: %d dead letters missing (partition/offset %s), %d rows not of a dead letter or twice (%s)",
			pc.DeadLetter(), len(missing), fmtKeys(missing), len(extra), fmtKeys(extra))
	}

	if dir := requireChdb(t); dir != "" {
		checkWindowsWithClickHouse(ctx, t, dir, cfg, tbl, w, rows)
	}
}

// checkWindowsWithClickHouse reads the window table's current snapshot
// with ClickHouse, which applies its deletes with its own code: the same
// rows as iceberg-go (group, window, events, count, revision), and the
// same row count and sums of events and of the count aggregate. count()
// alone is answered from the snapshot summary, which leaves out what
// equality deletes delete (chdbTrivialCount): it is compared only when
// none apply, and with optimize_trivial_count_query=0 always.
func checkWindowsWithClickHouse(ctx context.Context, t *testing.T, dir string, cfg config.Config, tbl *table.Table, w windowShape, rows []windowRow) {
	t.Helper()
	engine, err := icebergEngine(tbl, cfg.Storage)
	if err != nil {
		t.Fatalf("oracle (ClickHouse): %v", err)
	}
	cur := tbl.CurrentSnapshot()
	dvs, eq, err := deleteCounts(ctx, tbl, cur.SnapshotID)
	if err != nil {
		t.Fatalf("oracle (ClickHouse): plan %s: %v", windowTable, err)
	}
	if dvs > 0 {
		t.Fatalf("oracle (ClickHouse): the v%d window table has %d deletion vectors, which chdb cannot read", tbl.Metadata().Version(), dvs)
	}
	start := time.Now()
	res, err := clickHouse(ctx, dir, []string{
		"CREATE TABLE windows " + engine,
		"SELECT count() FROM windows",
		"SELECT count() FROM windows SETTINGS optimize_trivial_count_query=0",
		fmt.Sprintf("SELECT sum(1), sum(events), sum(%s), sum(total) FROM windows", w.count),
		fmt.Sprintf("SELECT %s, toUnixTimestamp64Micro(window_start), toUnixTimestamp64Micro(window_end), events, %s, revision, total FROM windows ORDER BY 1, 2",
			w.group, w.count),
	})
	if err != nil {
		t.Fatalf("oracle (ClickHouse): %v", err)
	}
	var wantEvents, wantCount, wantTotal int64
	for _, r := range rows {
		wantEvents += r.events
		wantCount += r.count
		wantTotal += r.total
	}
	n := int64(len(rows))
	one := func(i int) []string {
		if len(res[i].Rows) != 1 {
			t.Fatalf("oracle (ClickHouse): statement %d: %d rows, want 1", i+1, len(res[i].Rows))
		}
		return res[i].Rows[0]
	}
	trivial, counted, sums := one(1)[0], one(2)[0], one(3)
	if eq == 0 && trivial != fmt.Sprint(n) {
		t.Errorf("oracle (ClickHouse): count() of %s is %s (from the snapshot summary), iceberg-go reads %d rows", windowTable, trivial, n)
	}
	if want := []string{fmt.Sprint(n), fmt.Sprint(n), fmt.Sprint(wantEvents), fmt.Sprint(wantCount), fmt.Sprint(wantTotal)}; !slices.Equal(append([]string{counted}, sums...), want) {
		t.Errorf("oracle (ClickHouse): count() with optimize_trivial_count_query=0, sum(1), sum(events), sum(%s), sum(total) of %s are %v, iceberg-go reads %v",
			w.count, windowTable, append([]string{counted}, sums...), want)
	}
	var got []windowRow
	for _, f := range res[4].Rows {
		if len(f) != 7 {
			t.Fatalf("oracle (ClickHouse): row %q: want 7 fields", f)
		}
		r := windowRow{group: f[0]}
		var perr error
		for i, p := range []*int64{&r.start, &r.end, &r.events, &r.count, &r.revision, &r.total} {
			v := f[i+1]
			if v == `\N` {
				continue
			}
			var err error
			*p, err = strconv.ParseInt(v, 10, 64)
			perr = cmp.Or(perr, err)
		}
		if perr != nil {
			t.Fatalf("oracle (ClickHouse): row %q: %v", f, perr)
		}
		got = append(got, r)
	}
	// ClickHouse and Go order strings alike (bytewise).
	if !slices.Equal(got, rows) {
		var diffs []string
		for i := 0; i < max(len(got), len(rows)) && len(diffs) < maxReported; i++ {
			switch {
			case i >= len(got):
				diffs = append(diffs, fmt.Sprintf("row %d: iceberg-go %v, ClickHouse none", i, rows[i]))
			case i >= len(rows):
				diffs = append(diffs, fmt.Sprintf("row %d: iceberg-go none, ClickHouse %v", i, got[i]))
			case got[i] != rows[i]:
				diffs = append(diffs, fmt.Sprintf("row %d: iceberg-go %v, ClickHouse %v", i, rows[i], got[i]))
			}
		}
		t.Errorf("oracle (ClickHouse): %s: ClickHouse reads %d rows, iceberg-go %d, and they differ:\n  %s", windowTable, len(got), len(rows), strings.Join(diffs, "\n  "))
	}
	t.Logf("oracle: ClickHouse read %s's current snapshot (%d equality-delete files apply) in %s: %s rows, the same as iceberg-go",
		windowTable, eq, time.Since(start).Round(time.Millisecond), counted)
}

// ---------------------------------------------------------------------------
// The tests

// TestWindowsUnderKills runs `floe serve` with a tumbling-window pipeline
// (clicks per country and minute, 300ms commits, compaction on) while
// clicks stream in, and kills it again and again: with SIGKILL at random
// moments and once it committed, and through failpoints after a file is
// closed and before and after the catalog accepts a commit. Every
// incarnation but the last fails its first rebuild of the key index
// (which deletes the rows of the windows it corrects), so its first
// commits delete by equality. Every restart loads the window state from
// the checkpoint the table's current snapshot references (at its first
// commit: the last incarnation must have). The last incarnation commits
// every record and stops on SIGTERM; then checkWindows.
func TestWindowsUnderKills(t *testing.T) {
	if testing.Short() {
		t.Skip("the window kill test takes about 30 seconds")
	}
	seed := testSeed(t)
	rng := rand.New(rand.NewPCG(uint64(seed), 0x77696b6c))
	// Each window a late click re-opens after it left memory is read back
	// from the table, one read per window: an incarnation that starts far
	// behind takes a while over its first commit, and one killed before it
	// leaves a longer backlog to the next. The rate keeps that backlog
	// small.
	const (
		randomKills = 4
		minRecords  = 15_000
		rate        = 1_500
		users       = 300
	)
	_, addr := startBroker(t, windowTopic, 4)
	s := newSetup(t, addr, windowTopic)
	s.CommitInterval = 300 * time.Millisecond
	s.Extra = maintenanceYAML(fastCompaction, disabled, disabled)
	w := tumblingClicks
	cfgPath, cfg := writeWindowConfig(t, s, w)
	bin := floeBinary(t)
	cat := openCatalog(t, cfg)
	model := newWindowModel(seed, users, rate)
	prod := model.startProducer(t, addr, minRecords, 250)
	committed := func() int64 { return windowCommitted(cat) }

	var steps []crashStep
	for i := range randomKills {
		steps = append(steps, crashStep{})
		switch i {
		case 0:
			steps = append(steps, crashStep{failpoint: "commit/before-catalog", hit: 2 + rng.IntN(6)})
		case randomKills / 2:
			steps = append(steps, crashStep{failpoint: "fileio/after-close", hit: 2 + rng.IntN(12)})
		case randomKills - 1:
			steps = append(steps, crashStep{failpoint: "commit/after-catalog", hit: 1 + rng.IntN(6)})
		}
	}
	began := time.Now()
	withCheckpoint := 0 // incarnations that started on a table with a state checkpoint
	hasCheckpoint := func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		tbl, err := cat.LoadTable(ctx, catalog.Ident(windowTable))
		return err == nil && commit.TableState(tbl, windowPipeline) != ""
	}
	for i, step := range steps {
		logPath := filepath.Join(s.Dir, fmt.Sprintf("floe-%02d.log", i))
		showLogOnFailure(t, logPath)
		before := committed()
		if hasCheckpoint() {
			withCheckpoint++
		}
		fps := []string{"upsert/rebuild=error@1"}
		if step.failpoint != "" {
			fps = append(fps, fmt.Sprintf("%s=crash@%d", step.failpoint, step.hit))
		}
		proc := startFloe(t, bin, cfgPath, logPath, "FLOE_FAILPOINTS="+strings.Join(fps, ","))
		how := endIncarnation(t, i, proc, logPath, step.failpoint, step.hit, rng, committed, before)
		t.Logf("incarnation %2d: %-50s committed offsets %d -> %d; %d produced so far", i, how, before, committed(), prod.stats.Produced.Load())
	}

	// The last incarnation commits every record and stops on SIGTERM.
	logPath := filepath.Join(s.Dir, "floe-final.log")
	showLogOnFailure(t, logPath)
	if !hasCheckpoint() {
		t.Fatal("the incarnations before the last committed no state checkpoint (floe.state)")
	}
	withCheckpoint++
	proc := startFloe(t, bin, cfgPath, logPath)
	want := prod.finish(t, 3*time.Minute)
	ends := mustEndOffsets(t, addr, windowTopic)
	waitFor(t, 3*time.Minute, "the window table to reach the end offsets", func() (bool, string) {
		if proc.Exited() {
			t.Fatalf("the last incarnation exited by itself: %v", proc.Err())
		}
		return windowReached(cat, ends)
	})
	stopGracefully(t, proc)
	t.Logf("%d incarnations, everything committed after %s", len(steps)+1, time.Since(began).Round(time.Millisecond))

	// The state is loaded at an incarnation's first commit, so one killed
	// before it loads nothing; the last one commits, on a table with a
	// checkpoint, and must have loaded it.
	logs, _ := filepath.Glob(filepath.Join(s.Dir, "floe-*.log"))
	loaded := 0
	for _, l := range logs {
		loaded += strings.Count(readFile(l), "loaded the window state")
	}
	t.Logf("%d of %d incarnations started on a table with a state checkpoint, %d loaded it", withCheckpoint, len(steps)+1, loaded)
	if !strings.Contains(readFile(logPath), "loaded the window state") {
		t.Errorf("the last incarnation did not load the window state from the table's checkpoint (floe.state)")
	}
	checkWindows(t, bin, cfgPath, cfg, w, model, want)
}

// TestWindowsClusterPartitionMoves runs a session-window pipeline (clicks
// per user, sessions closed by a minute without a click) on a
// three-member cluster of floe processes and SIGKILLs members while
// clicks stream in: the leader, which runs the table writer and its window
// state, then another member, then the leader again. Each stays down
// longer than dead_after, so its partitions move (and with the leader,
// the table writer: the new one loads the window state from the
// checkpoint the table references), and is restarted. Late clicks bridge
// sessions, whose merged-away rows are deleted. Then checkWindows.
func TestWindowsClusterPartitionMoves(t *testing.T) {
	if testing.Short() {
		t.Skip("the window cluster test takes about 30 seconds")
	}
	seed := testSeed(t)
	rng := rand.New(rand.NewPCG(uint64(seed), 0x77696373))
	// A slower stream than the tumbling test's: most late clicks of a user
	// are a partial session of their own, and each reads its sessions back
	// with a scan of the table (tens of milliseconds each).
	const (
		minRecords = 10_000
		rate       = 500
		users      = 100
	)
	w := sessionClicks
	broker, r, cat := newChaosCluster(t, windowTopic, func(mc *procrig.MemberConfig) { windowMember(mc, w) })
	model := newWindowModel(seed, users, rate)
	began := time.Now()
	r.startAll()
	r.waitSpread(time.Minute, "n1", "n2", "n3")
	prod := model.startProducer(t, broker, minRecords, 250)
	committed := func() int64 { return windowCommitted(cat) }
	leaderKills := 0
	for i, killLeader := range []bool{true, false, true} {
		before := committed()
		r.waitFor(time.Minute, "a commit before the kill", func() (bool, string) {
			n := committed()
			return n > before, fmt.Sprintf("committed offsets %d, %d before", n, before)
		})
		time.Sleep(time.Duration(rng.IntN(1500)) * time.Millisecond)
		l := r.leader()
		victim := l
		if !killLeader {
			for _, m := range r.Live() {
				if m != l {
					victim = m
					break
				}
			}
		} else {
			leaderKills++
		}
		at := time.Now()
		r.kill(victim)
		// Down for longer than dead_after (2s): its partitions move.
		down := time.Duration(2500+rng.IntN(1500)) * time.Millisecond
		what := "a member"
		if victim == l {
			what = "the leader"
		}
		t.Logf("kill %d at +%s: SIGKILL %s %s with committed offsets %d; %d produced so far; restart after %s",
			i+1, at.Sub(began).Round(time.Millisecond), what, victim.ID, committed(), prod.stats.Produced.Load(), down)
		time.Sleep(down - time.Since(at))
		r.start(victim)
		r.waitReady(victim, 2*time.Minute)
	}
	want := prod.finish(t, 3*time.Minute)
	ends := mustEndOffsets(t, broker, windowTopic)
	r.waitFor(3*time.Minute, "the window table to reach the end offsets", func() (bool, string) { return windowReached(cat, ends) })
	t.Logf("everything committed at +%s", time.Since(began).Round(time.Millisecond))
	r.stopAll()

	// Each new leader loaded the window state its predecessor checkpointed.
	loaded := 0
	for _, m := range r.Members() {
		loaded += strings.Count(readFile(m.LogPath), "loaded the window state")
	}
	t.Logf("the window state was loaded from a checkpoint %d times (%d leader kills)", loaded, leaderKills)
	if loaded < leaderKills {
		t.Errorf("the leader was killed %d times, but a new table writer loaded the window state only %d times", leaderKills, loaded)
	}
	checkWindows(t, r.Bin(), r.Members()[0].ConfigPath, r.config(), w, model, want)
}

// TestWindowsDeadLetterTableBehind pins down double counting in a
// windowed pipeline. The dead-letter table of a pipeline on clean input
// moves its offsets only every 30 seconds, so after a SIGKILL it is
// behind the window table, and the restarted pipeline reads every
// partition from the lowest offset over its tables: the records between
// the two tables' offsets are read again, for the dead-letter table only.
// The window table must not count them a second time.
//
// A floe process commits a dead letter and 10 clicks, then 300 clean
// clicks (the window table takes them, the dead-letter table stays
// behind), and is SIGKILLed; a new process takes 10 more clicks. The
// window table must count every click once, and floe verify say OK.
func TestWindowsDeadLetterTableBehind(t *testing.T) {
	if testing.Short() {
		t.Skip("takes about 10 seconds")
	}
	_, addr := startBroker(t, windowTopic, 2)
	s := newSetup(t, addr, windowTopic)
	s.CommitInterval = 300 * time.Millisecond
	w := tumblingClicks
	cfgPath, cfg := writeWindowConfig(t, s, w)
	pc := cfg.Pipelines[0]
	bin := floeBinary(t)
	cat := openCatalog(t, cfg)
	cl := newProducer(t, addr)
	t0 := time.Date(2025, 3, 9, 22, 30, 0, 0, time.UTC)
	var clicks int64
	produceClicks := func(n int, deadLetter bool) map[int32]int64 {
		t.Helper()
		var recs []*kgo.Record
		if deadLetter {
			recs = append(recs, &kgo.Record{Topic: windowTopic, Key: []byte("dead"), Value: []byte(`{"user": "u-1"`)})
		}
		for range n {
			ts := t0.Add(time.Duration(clicks) * time.Second)
			v := fmt.Sprintf(`{"user": "u-%d", "country": "DE", "ts": %q, "amount": %d}`, clicks%7, ts.Format(time.RFC3339Nano), clicks)
			recs = append(recs, &kgo.Record{Topic: windowTopic, Key: []byte(strconv.FormatInt(clicks, 10)), Value: []byte(v)})
			clicks++
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
		return mustEndOffsets(t, addr, windowTopic)
	}
	counted := func() (events int64, windows int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		tbl, err := cat.LoadTable(ctx, catalog.Ident(windowTable))
		if err != nil {
			t.Fatal(err)
		}
		rows, err := scanWindows(ctx, tbl, w)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			events += r.events
		}
		return events, len(rows)
	}
	log0 := filepath.Join(s.Dir, "floe-0.log")
	showLogOnFailure(t, log0)
	proc := startFloe(t, bin, cfgPath, log0)
	ends := produceClicks(10, true)
	waitFor(t, time.Minute, "both tables to reach the end offsets", func() (bool, string) { return tablesReached(cat, pc, ends) })
	ends = produceClicks(300, false)
	waitFor(t, time.Minute, "the window table to reach the end offsets", func() (bool, string) { return windowReached(cat, ends) })
	if err := proc.Kill(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	dlq, _ := committedOffsets(ctx, cat, pc.DeadLetter(), pc.Name, windowTopic)
	cancel()
	if reached(dlq, ends) {
		t.Fatalf("harness: the dead-letter table's offsets %s reached the end offsets %s before the kill", fmtOffsets(dlq), fmtOffsets(ends))
	}

	log1 := filepath.Join(s.Dir, "floe-1.log")
	showLogOnFailure(t, log1)
	proc = startFloe(t, bin, cfgPath, log1)
	ends = produceClicks(10, false)
	waitFor(t, time.Minute, "the window table to reach the end offsets", func() (bool, string) {
		if proc.Exited() {
			t.Fatalf("floe exited by itself: %v", proc.Err())
		}
		return windowReached(cat, ends)
	})
	stopGracefully(t, proc)
	events, windows := counted()
	t.Logf("SIGKILLed with the window table at the end offsets, the dead-letter table at %s; after the restart the table counts %d events in %d windows, %d clicks produced",
		fmtOffsets(dlq), events, windows, clicks)
	if events != clicks {
		t.Errorf("the window table counts %d events, %d clicks were produced: the records read again for the dead-letter table were counted again", events, clicks)
	}
	runVerify(t, bin, cfgPath)
}
