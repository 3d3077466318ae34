package e2e

// Keyed tables (pipelines with key:) end to end: the real binary upserts a
// stream of order events into a table that must keep the newest row of
// every order, while the test SIGKILLs it (and, in the cluster version,
// the leader that runs the table writer and its key index).
//
// The events (keyedGen) are what upserts look like in practice: new orders
// and updates of them, a hot set of orders updated again and again (often
// twice or more in one commit), the same value sent twice, event times out
// of order by minutes, 5% of them hours late and 1% days late, and a few
// malformed records. The Kafka record key is the order id, so the producer
// hashes every order to one partition, as floe requires. The table is
// partitioned by day(ts): a late update moves its order to another
// partition of the table, and the row it replaces must be deleted there.
// Event time never decides anything: of two records of an order, the one
// at the later Kafka offset is the order's row.
//
// In the kill test every incarnation but the last fails its first rebuild
// of the key index (the upsert/rebuild failpoint), so its first commits
// delete by equality while the index is rebuilt, and the next ones turn
// those equality deletes into position deletes and remove them. The v3
// variant gives the key index 32 KiB (key_index_memory), so most keys
// live in its file. A third variant runs delete_mode: equality (no index)
// on an unpartitioned table.
//
// The model is the log of everything produced, by partition and offset.
// The oracle (checkKeyed) computes from it the newest record of every
// order below any offsets and requires:
//
//   - iceberg-go, reading the current snapshot, finds exactly one row per
//     order, equal in every column to the order's newest record, and no
//     other order;
//   - the same at every snapshot of the table's history (at most 400,
//     spread evenly, in a long run), against the records below each
//     snapshot's floe.offsets: every snapshot holds one row per key;
//   - the dead-letter table holds exactly the malformed records;
//   - the deletes of the current snapshot are position-delete files in a
//     v2 table and deletion vectors in a v3 one, equality deletes only in
//     delete_mode: equality; each position delete applies to a live data
//     file (a compaction removes those of the files it rewrites); and
//     without equality deletes the current snapshot's summary counts the
//     rows: total-records less total-position-deletes is the number of
//     orders;
//   - ClickHouse (chdb), which applies deletes with its own code, reads the
//     current snapshot and one from the middle of the history and finds
//     the same rows, and count() agrees with them. chdb does not read
//     deletion vectors: in a v3 table it must refuse the rows of snapshots
//     that have some, with the error chdbDVError names. It does not apply
//     equality deletes under another partition spec than the data's
//     (chdbGlobalEqualityDeletes): such snapshots of a partitioned table
//     are not read with it.
//
// FLOE_E2E_CHAOS_LONG=1 kills floe many more times and produces more.

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floelake/floe/catalog"
	"github.com/floelake/floe/commit"
	"github.com/floelake/floe/internal/config"
	"github.com/floelake/floe/internal/gen"
	"github.com/floelake/floe/internal/procrig"
)

const (
	keyedTopic    = "orders"
	keyedPipeline = "orders"
	keyedTable    = "e2e.orders"
)

// keyedShape is how a test's keyed table is laid out and written.
type keyedShape struct {
	version int
	// equality sets delete_mode: equality.
	equality bool
	// unpartitioned leaves out partition_by (day(ts) otherwise).
	unpartitioned bool
	// spilled gives the key index so little memory (key_index_memory)
	// that most keys live in its file.
	spilled bool
}

func (k keyedShape) String() string {
	s := fmt.Sprintf("v%d", k.version)
	if k.equality {
		s += "-equality"
	}
	if k.unpartitioned {
		s += "-unpartitioned"
	}
	if k.spilled {
		s += "-spilled"
	}
	return s
}

// keyedPipelineYAML is the keyed pipeline's entry beyond what procrig
// writes. It leaves out kafka_metadata: a keyed table gets
// _kafka_partition and _kafka_offset all the same.
func keyedPipelineYAML(k keyedShape) string {
	y := fmt.Sprintf(`
    key: [order_id]
    format_version: %d
    schema:
      - {name: order_id, type: string, required: true}
      - {name: status, type: string}
      - {name: amount, type: long}
      - {name: ts, type: timestamptz, required: true}
      - {name: coupon, type: string}
`, k.version)
	if !k.unpartitioned {
		y += "    partition_by: [\"day(ts)\"]\n"
	}
	if k.equality {
		y += "    delete_mode: equality\n"
	}
	if k.spilled {
		// About 700 of the 3,000 orders fit in memory.
		y += "    key_index_memory: 32KiB\n"
	}
	return y
}

// keyedSetup is a setup for the keyed orders pipeline.
func keyedSetup(t *testing.T, broker string) setup {
	s := newSetup(t, broker, keyedTopic)
	s.Pipeline, s.Table = keyedPipeline, keyedTable
	s.CommitInterval = 300 * time.Millisecond
	return s
}

// keyedMember turns a member's pipeline into the keyed orders pipeline.
func keyedMember(mc *procrig.MemberConfig, k keyedShape) {
	mc.Pipeline.Name, mc.Pipeline.Table = keyedPipeline, keyedTable
	mc.Pipeline.Extra = keyedPipelineYAML(k)
}

// writeKeyedConfig writes s's configuration with the keyed pipeline and
// returns its path and the configuration as floe parses it.
func writeKeyedConfig(t *testing.T, s setup, k keyedShape) (string, config.Config) {
	t.Helper()
	return writeMemberConfig(t, s, func(mc *procrig.MemberConfig) { keyedMember(mc, k) })
}

// ---------------------------------------------------------------------------
// The events and the model

// keyedRow is a row of the table, or the row a record should become.
type keyedRow struct {
	key        string
	status     string
	amount     int64
	ts         int64 // microseconds since the epoch
	coupon     string
	couponNull bool
	part       int32
	off        int64
}

func (r keyedRow) String() string {
	c := strconv.Quote(r.coupon)
	if r.couponNull {
		c = "null"
	}
	return fmt.Sprintf("%d/%d {status %q, amount %d, ts %s, coupon %s}", r.part, r.off, r.status, r.amount,
		time.UnixMicro(r.ts).UTC().Format("2006-01-02T15:04:05.000000Z"), c)
}

// sameRow compares every column, the Kafka partition and offset included.
func sameRow(a, b keyedRow) bool { return a == b }

// keyedEvent is one produced record.
type keyedEvent struct {
	row       keyedRow // part and off are set when Kafka acknowledges it
	value     []byte
	malformed bool
}

// keyedGen generates the order events; it is deterministic for a seed.
type keyedGen struct {
	rng     *rand.Rand
	clock   time.Time // event time, moving forward about half a second per event
	maxKeys int
	keys    []string
	last    map[string]keyedEvent // each order's last valid record
	stats   keyedGenStats
}

// keyedGenStats counts what the generator produced.
type keyedGenStats struct {
	newKeys, updates, duplicates, lateHours, lateDays, malformed, movedDay int
}

func (s keyedGenStats) String() string {
	return fmt.Sprintf("%d new orders, %d updates (%d of them to another day: another table partition), %d duplicates, %d hours late, %d days late, %d malformed",
		s.newKeys, s.updates, s.movedDay, s.duplicates, s.lateHours, s.lateDays, s.malformed)
}

var (
	keyedStatuses = []string{"created", "paid", "packed", "shipped", "delivered", "cancelled", "refunded"}
	keyedZones    = []*time.Location{time.UTC, time.FixedZone("", 2*3600), time.FixedZone("", -5*3600), time.FixedZone("", 5*3600+1800)}
)

func newKeyedGen(seed int64, maxKeys int) *keyedGen {
	return &keyedGen{
		rng: rand.New(rand.NewPCG(uint64(seed), 0x6f7264657273)),
		// An hour and a half before midnight: the stream crosses a day.
		clock:   time.Date(2025, 3, 9, 22, 30, 0, 0, time.UTC),
		maxKeys: maxKeys,
		last:    map[string]keyedEvent{},
	}
}

func microDay(us int64) int64 { return floorDiv(us, microsPerDay) }

// next returns the next event.
func (g *keyedGen) next() keyedEvent {
	g.clock = g.clock.Add(time.Duration(100+g.rng.IntN(800)) * time.Millisecond)
	x := g.rng.Float64()
	switch {
	case len(g.keys) > 0 && x < 0.004:
		// Malformed: the dead-letter table's. The record key puts it in the
		// partition of a real order.
		g.stats.malformed++
		key := g.keys[g.rng.IntN(len(g.keys))]
		values := []string{
			`{"order_id": ` + strconv.Quote(key) + `, "status": "paid", "amount": 1`, // truncated
			`{"order_id": null, "status": "paid", "amount": 1, "ts": "2025-03-09T22:00:00Z"}`,
			`{"order_id": ` + strconv.Quote(key) + `, "status": "paid", "amount": "lots", "ts": "2025-03-09T22:00:00Z"}`,
		}
		return keyedEvent{row: keyedRow{key: key}, value: []byte(values[g.rng.IntN(len(values))]), malformed: true}
	case len(g.keys) > 0 && x < 0.054:
		// The order's last value, sent again: the later offset is the row.
		g.stats.duplicates++
		key := g.keys[g.rng.IntN(len(g.keys))]
		return g.last[key]
	}
	var key string
	if len(g.keys) < 50 || len(g.keys) < g.maxKeys && g.rng.IntN(4) == 0 {
		key = fmt.Sprintf("o-%06d", len(g.keys))
		g.keys = append(g.keys, key)
		g.stats.newKeys++
	} else if g.rng.IntN(3) == 0 {
		key = g.keys[g.rng.IntN(40)] // hot: updated many times, often twice in a commit
		g.stats.updates++
	} else {
		key = g.keys[g.rng.IntN(len(g.keys))]
		g.stats.updates++
	}
	// Out of order by up to two minutes either way; 5% hours late, 1% days.
	ts := g.clock.Add(time.Duration(g.rng.IntN(240_000_000)-120_000_000) * time.Microsecond)
	switch y := g.rng.Float64(); {
	case y < 0.01:
		g.stats.lateDays++
		ts = ts.Add(-time.Duration(24+g.rng.IntN(9*24)) * time.Hour)
	case y < 0.06:
		g.stats.lateHours++
		ts = ts.Add(-time.Duration(60+g.rng.IntN(23*60)) * time.Minute)
	}
	row := keyedRow{
		key:    key,
		status: keyedStatuses[g.rng.IntN(len(keyedStatuses))],
		amount: g.rng.Int64N(1_000_000) - 1000, // now and then a negative amount: a refund
		ts:     ts.UnixMicro(),
	}
	fields := []string{
		`"order_id":` + jsonString(key),
		`"status":` + jsonString(row.status),
		`"amount":` + strconv.FormatInt(row.amount, 10),
		`"ts":` + jsonString(time.UnixMicro(row.ts).In(keyedZones[g.rng.IntN(len(keyedZones))]).Format("2006-01-02T15:04:05.000000Z07:00")),
	}
	switch c := g.rng.IntN(10); {
	case c < 3:
		row.coupon = fmt.Sprintf("SAVE-%d", g.rng.IntN(50))
		fields = append(fields, `"coupon":`+jsonString(row.coupon))
	case c < 5:
		row.couponNull = true
		fields = append(fields, `"coupon":null`)
	default:
		row.couponNull = true // absent
	}
	g.rng.Shuffle(len(fields), func(i, j int) { fields[i], fields[j] = fields[j], fields[i] })
	ev := keyedEvent{row: row, value: []byte("{" + strings.Join(fields, ", ") + "}")}
	if prev, ok := g.last[key]; ok && microDay(prev.row.ts) != microDay(row.ts) {
		g.stats.movedDay++
	}
	g.last[key] = ev
	return ev
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// keyedModel is the log of every acknowledged record, by partition and
// offset, and the generator that makes them.
type keyedModel struct {
	gen  *keyedGen
	rate int // records per second

	mu    sync.Mutex
	parts map[int32][]keyedEvent // by offset; a zero event is a hole
}

func newKeyedModel(seed int64, maxKeys, rate int) *keyedModel {
	return &keyedModel{gen: newKeyedGen(seed, maxKeys), rate: rate, parts: map[int32][]keyedEvent{}}
}

// startProducer produces chunks of n events at the model's rate until
// finished with at least minRecords produced.
func (m *keyedModel) startProducer(t *testing.T, broker string, minRecords int64, n int) *producer {
	return runProducer(t, broker, minRecords, func(ctx context.Context, cl *kgo.Client, _ int64, stats *gen.ProducerStats) error {
		start := time.Now()
		evs := make([]keyedEvent, n)
		for i := range evs {
			evs[i] = m.gen.next()
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		var perr error
		for i := range evs {
			ev := &evs[i]
			wg.Add(1)
			// The record key is the order id: the client's default
			// partitioner hashes it (murmur2, as Kafka's Java client does).
			cl.Produce(ctx, &kgo.Record{Topic: keyedTopic, Key: []byte(ev.row.key), Value: ev.value}, func(r *kgo.Record, err error) {
				defer wg.Done()
				if err != nil {
					mu.Lock()
					perr = cmp.Or(perr, err)
					mu.Unlock()
					return
				}
				ev.row.part, ev.row.off = r.Partition, r.Offset
			})
		}
		wg.Wait()
		if perr != nil {
			return perr
		}
		var malformed int64
		m.mu.Lock()
		for _, ev := range evs {
			log := m.parts[ev.row.part]
			for int64(len(log)) <= ev.row.off {
				log = append(log, keyedEvent{})
			}
			log[ev.row.off] = ev
			m.parts[ev.row.part] = log
			if ev.malformed {
				malformed++
			}
		}
		m.mu.Unlock()
		stats.Produced.Add(int64(n))
		stats.Malformed.Add(malformed)
		if d := time.Until(start.Add(time.Duration(n) * time.Second / time.Duration(m.rate))); d > 0 {
			select { // pacing, not waiting for a condition
			case <-time.After(d):
			case <-ctx.Done():
			}
		}
		return nil
	})
}

// log returns the produced records, checking that they are exactly the
// topic's [0, end) of every partition and that no order is in two
// partitions (neither would be floe's fault).
func (m *keyedModel) log(t *testing.T, ends map[int32]int64) map[int32][]keyedEvent {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	partOf := map[string]int32{}
	for p, e := range ends {
		log := m.parts[p]
		if int64(len(log)) != e {
			t.Fatalf("harness: partition %d ends at %d but %d records were acknowledged there", p, e, len(log))
		}
		for o, ev := range log {
			if ev.value == nil {
				t.Fatalf("harness: no acknowledged record at partition %d offset %d", p, o)
			}
			if q, ok := partOf[ev.row.key]; ok && q != p {
				t.Fatalf("harness: order %s is in partitions %d and %d", ev.row.key, q, p)
			}
			partOf[ev.row.key] = p
		}
	}
	for p := range m.parts {
		if _, ok := ends[p]; !ok {
			t.Fatalf("harness: records acknowledged in partition %d, which the topic does not have", p)
		}
	}
	return m.parts
}

// newestRows returns the newest valid record of every order below the
// offsets (all of log with nil).
func newestRows(log map[int32][]keyedEvent, below map[int32]int64) map[string]keyedRow {
	out := map[string]keyedRow{}
	for p, evs := range log {
		end := int64(len(evs))
		if below != nil {
			end = min(end, below[p])
		}
		for _, ev := range evs[:end] {
			if !ev.malformed {
				out[ev.row.key] = ev.row // ascending offsets: the last one wins
			}
		}
	}
	return out
}

// ---------------------------------------------------------------------------
// Reading the table back

var keyedColumns = []string{"order_id", "status", "amount", "ts", "coupon", "_kafka_partition", "_kafka_offset"}

// scanKeyed reads every row of the table at snapshot id with iceberg-go.
func scanKeyed(ctx context.Context, tbl *table.Table, id int64) ([]keyedRow, error) {
	at, err := tbl.Scan(table.WithSnapshotID(id), table.WithSelectedFields(keyedColumns...)).ToArrowTable(ctx)
	if err != nil {
		return nil, err
	}
	defer at.Release()
	var rows []keyedRow
	err = eachRow(at, keyedColumns, func(c []arrow.Array, i int) {
		r := keyedRow{key: strValue(c[0], i), status: strValue(c[1], i), couponNull: c[4].IsNull(i)}
		if !c[2].IsNull(i) {
			r.amount = c[2].(*array.Int64).Value(i)
		}
		r.ts = int64(c[3].(*array.Timestamp).Value(i))
		if !r.couponNull {
			r.coupon = strValue(c[4], i)
		}
		r.part, r.off = c[5].(*array.Int32).Value(i), c[6].(*array.Int64).Value(i)
		if c[1].IsNull(i) || c[2].IsNull(i) || c[5].IsNull(i) || c[6].IsNull(i) {
			r.status = "<null status, amount, partition or offset: " + r.status + ">"
		}
		rows = append(rows, r)
	})
	return rows, err
}

// keyedProblems compares the rows read with the newest record of every
// order: each order once, as its newest record, and no other order.
func keyedProblems(got []keyedRow, want map[string]keyedRow) []string {
	byKey := map[string][]keyedRow{}
	for _, r := range got {
		byKey[r.key] = append(byKey[r.key], r)
	}
	var dups, extra, missing, wrong []string
	var ndups, nextra, nmissing, nwrong int
	note := func(list *[]string, n *int, format string, args ...any) {
		*n++
		if len(*list) < maxReported/2 {
			*list = append(*list, fmt.Sprintf(format, args...))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(byKey)) {
		rs := byKey[k]
		w, ok := want[k]
		switch {
		case !ok:
			note(&extra, &nextra, "order %s has a row but no record below the offsets: %v", k, rs)
		case len(rs) > 1:
			note(&dups, &ndups, "order %s has %d rows: %v; its newest record is %v", k, len(rs), rs, w)
		case !sameRow(rs[0], w):
			note(&wrong, &nwrong, "order %s: the row is %v, its newest record %v", k, rs[0], w)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if _, ok := byKey[k]; !ok {
			note(&missing, &nmissing, "order %s has no row; its newest record is %v", k, want[k])
		}
	}
	var out []string
	for _, c := range []struct {
		n    int
		what string
		list []string
	}{
		{ndups, "orders with more than one row", dups},
		{nwrong, "orders whose row is not their newest record", wrong},
		{nmissing, "orders without a row", missing},
		{nextra, "orders with a row and no record below the offsets", extra},
	} {
		if c.n > 0 {
			out = append(out, fmt.Sprintf("%s: %d\n      %s", c.what, c.n, strings.Join(c.list, "\n      ")))
		}
	}
	return out
}

// keyedSnap is a snapshot to check, with its offsets.
type keyedSnap struct {
	id   int64
	why  string
	op   table.Operation
	offs map[int32]int64
	at   time.Time
}

// pickKeyedSnapshots picks snapshots of the current lineage that carry the
// pipeline's offsets: the current one; the first at or after each of the
// times in restarts (the first commits of an incarnation, whose key index
// was rebuilt from the table), with the one after it; the first two
// compactions and the last; and six spread evenly over the rest.
func pickKeyedSnapshots(tbl *table.Table, restarts []time.Time) ([]keyedSnap, error) {
	meta := tbl.Metadata()
	var lineage []keyedSnap // oldest first
	for s := meta.CurrentSnapshot(); s != nil; {
		off, ok, err := summaryOffsets(s, keyedPipeline, keyedTopic)
		if err != nil {
			return nil, err
		}
		if ok {
			lineage = append(lineage, keyedSnap{id: s.SnapshotID, op: s.Summary.Operation, offs: off, at: time.UnixMilli(s.TimestampMs)})
		}
		if s.ParentSnapshotID == nil {
			break
		}
		s = meta.SnapshotByID(*s.ParentSnapshotID)
	}
	slices.Reverse(lineage)
	if len(lineage) == 0 {
		return nil, fmt.Errorf("no snapshot of %s carries floe.offsets of %s", keyedTable, keyedPipeline)
	}
	why := map[int]string{len(lineage) - 1: "current"}
	pick := func(i int, w string) {
		if _, ok := why[i]; !ok && i >= 0 && i < len(lineage) {
			why[i] = w
		}
	}
	for n, at := range restarts {
		// Snapshot times are in milliseconds.
		i, _ := slices.BinarySearchFunc(lineage, at.Truncate(time.Millisecond), func(s keyedSnap, at time.Time) int { return s.at.Compare(at) })
		pick(i, fmt.Sprintf("the first after restart %d", n+1))
		pick(i+1, fmt.Sprintf("the second after restart %d", n+1))
	}
	var compactions []int
	for i, s := range lineage {
		if s.op == table.OpReplace {
			compactions = append(compactions, i)
		}
	}
	if n := len(compactions); n > 0 {
		pick(compactions[n-1], "the last compaction")
		for _, i := range compactions[:min(n, 2)] {
			pick(i, "a compaction")
		}
	}
	// Every snapshot, unless the history is long (FLOE_E2E_CHAOS_LONG).
	spread := max(1, len(lineage)/400)
	for i := 0; i < len(lineage); i += spread {
		pick(i, "a commit")
	}
	var out []keyedSnap
	for _, i := range slices.Sorted(maps.Keys(why)) {
		s := lineage[i]
		s.why = fmt.Sprintf("%s, %d of %d", why[i], i+1, len(lineage))
		out = append(out, s)
	}
	return out, nil
}

// checkKeyed is the keyed tables' oracle (see the top of the file); the
// table's offsets must have reached ends. restarts are the moments floe
// processes started after a kill.
func checkKeyed(t *testing.T, cfg config.Config, model *keyedModel, want produced, restarts []time.Time) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	pc := cfg.Pipelines[0]
	ends, err := endOffsets(ctx, cfg.Kafka.Brokers[0], keyedTopic)
	if err != nil {
		t.Fatalf("oracle: %v", err)
	}
	if sum(ends) != want.Records {
		t.Fatalf("harness: the topic holds %d records but the producer acknowledged %d", sum(ends), want.Records)
	}
	log := model.log(t, ends)
	newest := newestRows(log, nil)
	t.Logf("oracle: end offsets %s: %d records, %d malformed, %d orders; generated %s", fmtOffsets(ends), want.Records, want.Malformed, len(newest), model.gen.stats)

	cat, err := catalog.Open(ctx, cfg.Catalog, cfg.Storage, cfg.Node.DataDir)
	if err != nil {
		t.Fatalf("oracle: open catalog: %v", err)
	}
	defer cat.Close()
	tbl, err := cat.LoadTable(ctx, catalog.Ident(pc.Table))
	if err != nil {
		t.Fatalf("oracle: load %s: %v", pc.Table, err)
	}
	cur := tbl.CurrentSnapshot()
	off, _, found, err := commit.TableOffsets(tbl, pc.Name)
	if err != nil || !found || !sameOffsets(off[keyedTopic], ends) {
		t.Fatalf("oracle: %s's floe.offsets are %s (found %v, err %v), want the end offsets %s", pc.Table, off.Encode(), found, err, fmtOffsets(ends))
	}
	if got, want := tbl.Metadata().Version(), pc.FormatVersion; want != 0 && got != want {
		t.Errorf("oracle: %s is a v%d table, the pipeline asks for v%d", pc.Table, got, want)
	}
	var ids []string
	for _, id := range tbl.Schema().IdentifierFieldIDs {
		name, _ := tbl.Schema().FindColumnName(id)
		ids = append(ids, name)
	}
	if !slices.Equal(ids, pc.Key) {
		t.Errorf("oracle: %s's identifier fields are %v, want the key %v", pc.Table, ids, pc.Key)
	}

	// iceberg-go: the current snapshot, then snapshots from the history.
	start := time.Now()
	snaps, err := pickKeyedSnapshots(tbl, restarts)
	if err != nil {
		t.Fatalf("oracle: %v", err)
	}
	var rowsNow []keyedRow
	for _, s := range snaps {
		rows, err := scanKeyed(ctx, tbl, s.id)
		if err != nil {
			t.Fatalf("oracle: scan %s at snapshot %d (%s): %v", pc.Table, s.id, s.why, err)
		}
		if s.id == cur.SnapshotID {
			rowsNow = rows
		}
		wantAt := newestRows(log, s.offs)
		for _, p := range keyedProblems(rows, wantAt) {
			t.Errorf("oracle (iceberg-go): %s at snapshot %d (%s, %s, floe.offsets %s, %d rows read, %d orders below the offsets): %s",
				pc.Table, s.id, s.why, s.op, fmtOffsets(s.offs), len(rows), len(wantAt), p)
		}
	}
	t.Logf("oracle: iceberg-go read %d snapshots of %s against the model in %s; the current one holds %d rows",
		len(snaps), pc.Table, time.Since(start).Round(time.Millisecond), len(rowsNow))

	// The deletes are the kind the format version asks for, every one of
	// them applies to a live data file, and the summary counts them.
	checkKeyedDeleteKinds(ctx, t, tbl, pc.EqualityDeletes())
	checkKeyedDeletesLive(ctx, t, tbl, int64(len(rowsNow)))

	// The dead-letter table holds the malformed records.
	dlq, err := cat.LoadTable(ctx, catalog.Ident(pc.DeadLetter()))
	if err != nil {
		t.Fatalf("oracle: load %s: %v", pc.DeadLetter(), err)
	}
	var wantDLQ []int64
	for p, evs := range log {
		for o, ev := range evs {
			if ev.malformed {
				wantDLQ = append(wantDLQ, int64(p)<<40|int64(o))
			}
		}
	}
	gotDLQ, err := offsetRowsOf(ctx, dlq, "partition", "offset")
	if err != nil {
		t.Fatalf("oracle: scan %s: %v", pc.DeadLetter(), err)
	}
	if missing, extra := sortedDiff(wantDLQ, gotDLQ); len(missing)+len(extra) > 0 {
		t.Errorf("oracle (dead letters): %s: %d malformed records missing (partition/offset %s), %d rows not of a malformed record or twice (%s)",
			pc.DeadLetter(), len(missing), fmtKeys(missing), len(extra), fmtKeys(extra))
	}

	// ClickHouse.
	if dir := requireChdb(t); dir != "" {
		checkKeyedWithClickHouse(ctx, t, dir, cfg, tbl, log)
	}
}

// offsetRowsOf reads two columns of a table's current snapshot as
// partition<<40|offset keys.
func offsetRowsOf(ctx context.Context, tbl *table.Table, partCol, offCol string) ([]int64, error) {
	cols := []string{partCol, offCol}
	at, err := tbl.Scan(table.WithSelectedFields(cols...)).ToArrowTable(ctx)
	if err != nil {
		return nil, err
	}
	defer at.Release()
	var out []int64
	err = eachRow(at, cols, func(c []arrow.Array, i int) {
		out = append(out, int64(c[0].(*array.Int32).Value(i))<<40|c[1].(*array.Int64).Value(i))
	})
	return out, err
}

// checkKeyedDeleteKinds requires position-delete files in a v2 table and
// deletion vectors in a v3 one (at most one per data file), and equality
// deletes exactly when equality is set (delete_mode: equality).
func checkKeyedDeleteKinds(ctx context.Context, t *testing.T, tbl *table.Table, equality bool) {
	t.Helper()
	tasks, err := tbl.Scan().PlanFiles(ctx)
	if err != nil {
		t.Fatalf("oracle: plan %s: %v", keyedTable, err)
	}
	var pos, dvs, eq, withDeletes int
	for _, task := range tasks {
		pos += len(task.DeleteFiles)
		dvs += len(task.DeletionVectorFiles)
		eq += len(task.EqualityDeleteFiles)
		if len(task.DeleteFiles)+len(task.DeletionVectorFiles)+len(task.EqualityDeleteFiles) > 0 {
			withDeletes++
		}
		if len(task.DeletionVectorFiles) > 1 {
			t.Errorf("oracle: %s has %d deletion vectors", task.File.FilePath(), len(task.DeletionVectorFiles))
		}
	}
	v := tbl.Metadata().Version()
	t.Logf("oracle: the current snapshot of the v%d table has %d data files, %d of them with deletes: %d position-delete files, %d deletion vectors, %d equality-delete files apply",
		v, len(tasks), withDeletes, pos, dvs, eq)
	if eq > 0 && !equality || equality && eq == 0 || v == 2 && dvs > 0 || v == 3 && pos > 0 {
		t.Errorf("oracle: a v%d table with %d position-delete files, %d deletion vectors and %d equality-delete files", v, pos, dvs, eq)
	}
}

// snapFiles is what the manifests of a snapshot hold: the live data files
// with their rows and the live delete entries.
type snapFiles struct {
	data    map[string]int64 // path → rows
	deletes []deleteEntry
}

// deleteEntry is a live position-delete file or deletion vector.
type deleteEntry struct {
	path   string
	offset int64 // of a deletion vector in its Puffin file; -1 for a file
	ref    string
	rows   int64
	eq     bool // an equality-delete file: it names no data file
}

func (d deleteEntry) id() string { return fmt.Sprintf("%s@%d", d.path, d.offset) }

func (d deleteEntry) String() string {
	if d.offset < 0 {
		return fmt.Sprintf("%s (%d positions of %s)", filepath.Base(d.path), d.rows, filepath.Base(d.ref))
	}
	return fmt.Sprintf("%s at offset %d (%d positions of %s)", filepath.Base(d.path), d.offset, d.rows, filepath.Base(d.ref))
}

// filesOf reads the manifests of snapshot snap of tbl.
func filesOf(ctx context.Context, tbl *table.Table, snap *table.Snapshot) (snapFiles, error) {
	out := snapFiles{data: map[string]int64{}}
	fs, err := tbl.FS(ctx)
	if err != nil {
		return out, err
	}
	manifests, err := snap.Manifests(fs)
	if err != nil {
		return out, err
	}
	for _, m := range manifests {
		entries, err := m.FetchEntries(fs, true)
		if err != nil {
			return out, err
		}
		for _, e := range entries {
			f := e.DataFile()
			if f.ContentType() == iceberg.EntryContentData {
				out.data[f.FilePath()] = f.Count()
				continue
			}
			d := deleteEntry{path: f.FilePath(), offset: -1, rows: f.Count(), ref: "?", eq: f.ContentType() == iceberg.EntryContentEqDeletes}
			if o := f.ContentOffset(); o != nil {
				d.offset = *o
			}
			if ref, ok := commit.DeletedFile(f); ok {
				d.ref = ref
			}
			out.deletes = append(out.deletes, d)
		}
	}
	return out, nil
}

// checkKeyedDeletesLive requires every delete entry of the current
// snapshot to apply to a live data file, every compaction in its lineage
// to have removed the deletes of the data files it rewrote, and the
// snapshot summary's total-records less total-position-deletes to be the
// rows a scan reads (rows): what engines that answer count() from the
// summary return.
func checkKeyedDeletesLive(ctx context.Context, t *testing.T, tbl *table.Table, rows int64) {
	t.Helper()
	cur := tbl.CurrentSnapshot()
	files, err := filesOf(ctx, tbl, cur)
	if err != nil {
		t.Fatalf("oracle: read the manifests of %s: %v", keyedTable, err)
	}
	var dataRows, deleted int64
	for _, n := range files.data {
		dataRows += n
	}
	var dangling []deleteEntry
	var danglingRows int64
	eqFiles := 0
	for _, d := range files.deletes {
		if d.eq {
			eqFiles++
			continue
		}
		deleted += d.rows
		if _, ok := files.data[d.ref]; !ok {
			dangling = append(dangling, d)
			danglingRows += d.rows
		}
	}
	props := cur.Summary.Properties
	records, _ := strconv.ParseInt(props["total-records"], 10, 64)
	posDeletes, _ := strconv.ParseInt(props["total-position-deletes"], 10, 64)
	t.Logf("oracle: the manifests of the current snapshot hold %d data files with %d rows and %d delete entries deleting %d positions; its summary: total-records %d, total-position-deletes %d",
		len(files.data), dataRows, len(files.deletes), deleted, records, posDeletes)
	if n := len(dangling); n > 0 {
		t.Errorf("oracle: %d of the %d delete entries of %s's current snapshot %d apply to no live data file, deleting %d positions of files the table no longer holds: %v",
			n, len(files.deletes), keyedTable, cur.SnapshotID, danglingRows, dangling[:min(n, 4)])
	}
	if live := records - posDeletes; live != rows && eqFiles == 0 {
		t.Errorf("oracle: %s's current snapshot %d: its summary's total-records %d less total-position-deletes %d is %d rows, a scan reads %d (ClickHouse answers count() so)",
			keyedTable, cur.SnapshotID, records, posDeletes, live, rows)
	}
	n, problems, err := compactionLeftovers(ctx, tbl)
	if err != nil {
		t.Fatalf("oracle: %v", err)
	}
	for _, p := range problems {
		t.Errorf("oracle: %s: %s", keyedTable, p)
	}
	t.Logf("oracle: %d compactions in the current lineage checked for the deletes of the files they rewrote", n)
}

// compactionLeftovers checks every compaction (replace snapshot) in the
// current lineage whose parent is retained: the delete entries of the
// data files it rewrote must be gone from it. It returns how many it
// checked and a line per compaction that left some.
func compactionLeftovers(ctx context.Context, tbl *table.Table) (int, []string, error) {
	meta := tbl.Metadata()
	var problems []string
	checked := 0
	for s := meta.CurrentSnapshot(); s != nil && s.ParentSnapshotID != nil; {
		parent := meta.SnapshotByID(*s.ParentSnapshotID)
		if parent == nil {
			break
		}
		if s.Summary != nil && s.Summary.Operation == table.OpReplace {
			checked++
			before, err := filesOf(ctx, tbl, parent)
			if err != nil {
				return checked, nil, fmt.Errorf("read the manifests of snapshot %d: %w", parent.SnapshotID, err)
			}
			after, err := filesOf(ctx, tbl, s)
			if err != nil {
				return checked, nil, fmt.Errorf("read the manifests of snapshot %d: %w", s.SnapshotID, err)
			}
			rewritten := 0
			for path := range before.data {
				if _, ok := after.data[path]; !ok {
					rewritten++
				}
			}
			kept := map[string]bool{}
			for _, d := range after.deletes {
				kept[d.id()] = true
			}
			var had, left []deleteEntry
			removedIn := map[string]bool{} // Puffin and delete files some of whose entries it removed
			for _, d := range before.deletes {
				if _, live := after.data[d.ref]; live {
					continue
				}
				if _, was := before.data[d.ref]; !was {
					continue // dangling before the compaction already
				}
				had = append(had, d)
				if kept[d.id()] {
					left = append(left, d)
				} else {
					removedIn[d.path] = true
				}
			}
			if len(left) > 0 {
				shared := 0
				for _, d := range left {
					if removedIn[d.path] {
						shared++
					}
				}
				problems = append(problems, fmt.Sprintf("the compaction %d (parent %d) rewrote %d data files, which had %d delete entries; it removed %d and left %d in the table, deleting positions of files it removed (%d of them in a Puffin file from which it did remove another deletion vector): %v",
					s.SnapshotID, parent.SnapshotID, rewritten, len(had), len(had)-len(left), len(left), shared, left[:min(len(left), 3)]))
			}
		}
		s = parent
	}
	return checked, problems, nil
}

// ---------------------------------------------------------------------------
// ClickHouse

// keyedCHSelect selects the columns of a keyedRow, in scanKeyed's order.
const keyedCHSelect = "SELECT order_id, status, amount, toUnixTimestamp64Micro(ts), coupon, _kafka_partition, _kafka_offset FROM "

// parseKeyedCH parses the rows of keyedCHSelect.
func parseKeyedCH(rows [][]string) ([]keyedRow, error) {
	out := make([]keyedRow, 0, len(rows))
	for _, f := range rows {
		if len(f) != 7 {
			return nil, fmt.Errorf("row %q: want 7 fields", f)
		}
		r := keyedRow{key: f[0], status: f[1], coupon: f[4], couponNull: f[4] == `\N`}
		if r.couponNull {
			r.coupon = ""
		}
		var err error
		var p int64
		if r.amount, err = strconv.ParseInt(f[2], 10, 64); err == nil {
			if r.ts, err = strconv.ParseInt(f[3], 10, 64); err == nil {
				if p, err = strconv.ParseInt(f[5], 10, 32); err == nil {
					r.off, err = strconv.ParseInt(f[6], 10, 64)
				}
			}
		}
		if err != nil {
			return nil, fmt.Errorf("row %q: %v", f, err)
		}
		r.part = int32(p)
		out = append(out, r)
	}
	return out, nil
}

// chdbDVError is what chdb 3.4.0 (ClickHouse 26.7) answers to a read of
// the rows of an Iceberg v3 snapshot in which a data file has a deletion
// vector: it takes the vector (a position delete in a Puffin file) for a
// position-delete file and refuses its format. count() alone, which it
// answers from the snapshot summary (total-records less
// total-position-deletes), and snapshots without deletion vectors read
// fine. docs/keyed-tables.md ("Readers") says so; when a chdb release
// reads deletion vectors, the check fails and asks for both to be
// updated.
const chdbDVError = "Position deletes are supported only for parquet format"

// chdbTrivialCount: chdb 3.4.0 answers count() from the snapshot summary,
// as total-records less total-position-deletes, which leaves out the rows
// equality deletes delete; with optimize_trivial_count_query=0 it reads
// the files and applies them. docs/keyed-tables.md ("Readers") says so.
const chdbTrivialCount = "chdb 3.4.0 leaves equality deletes out of count() answered from the summary"

// deletionVectors counts the deletion vectors that apply to snapshot id.
func deletionVectors(ctx context.Context, tbl *table.Table, id int64) (int, error) {
	dvs, _, err := deleteCounts(ctx, tbl, id)
	return dvs, err
}

// deleteCounts counts the deletion vectors and equality-delete files that
// apply to snapshot id (per data file they apply to).
func deleteCounts(ctx context.Context, tbl *table.Table, id int64) (dvs, eq int, err error) {
	tasks, err := tbl.Scan(table.WithSnapshotID(id)).PlanFiles(ctx)
	if err != nil {
		return 0, 0, err
	}
	for _, task := range tasks {
		dvs += len(task.DeletionVectorFiles)
		eq += len(task.EqualityDeleteFiles)
	}
	return dvs, eq, nil
}

// chdbGlobalEqualityDeletes: chdb 3.4.0 (ClickHouse 26.7) applies an
// equality delete only to the data files of its own partition spec and
// partition. floe writes equality deletes under the table's unpartitioned
// spec so that they apply to every partition (which the Iceberg spec
// asks readers to do), so on a partitioned table chdb reads the rows they
// delete. docs/keyed-tables.md ("Readers") says so; a snapshot of a
// partitioned table with equality deletes is not read with chdb.
const chdbGlobalEqualityDeletes = "chdb 3.4.0 ignores equality deletes written under another partition spec than the data files'"

// checkKeyedWithClickHouse reads the table with ClickHouse at the metadata
// file the catalog points at: the current snapshot, one in the middle of
// the history and, in a v3 table, the newest one without deletion vectors.
// count() must be the number of orders at each. The rows must be the
// newest record of every order, except in a v3 snapshot with deletion
// vectors, whose rows chdb cannot read (chdbDVError): there the read must
// fail with that error.
func checkKeyedWithClickHouse(ctx context.Context, t *testing.T, dir string, cfg config.Config, tbl *table.Table, log map[int32][]keyedEvent) {
	t.Helper()
	engine, err := icebergEngine(tbl, cfg.Storage)
	if err != nil {
		t.Fatalf("oracle (ClickHouse): %v", err)
	}
	type chSnap struct {
		what        string
		id          int64
		offs        map[int32]int64
		dvs, eq     int
		count, rows int // statements; rows -1: read in a session of its own
		// trivial is the statement of count() answered from the summary,
		// when equality deletes apply (count then reads the files).
		trivial int
	}
	cur := tbl.CurrentSnapshot()
	curOff, _, _, _ := commit.TableOffsets(tbl, keyedPipeline)
	snaps := []*chSnap{{what: "the current snapshot", id: cur.SnapshotID, offs: curOff[keyedTopic]}}
	midID, midOff, ok, err := midSnapshot(tbl, keyedPipeline)
	if err != nil || !ok {
		t.Fatalf("oracle (ClickHouse): no snapshot in the middle of %s's history (%v)", keyedTable, err)
	}
	if midID != cur.SnapshotID {
		snaps = append(snaps, &chSnap{what: "a snapshot in the middle", id: midID, offs: midOff[keyedTopic]})
	}
	v3 := tbl.Metadata().Version() >= 3
	if v3 {
		// The newest snapshot with rows and no deletion vector (the first
		// commit has none: it leaves out the rows its own later rows
		// replace).
		meta := tbl.Metadata()
		for s := cur; s != nil; {
			off, ok, err := summaryOffsets(s, keyedPipeline, keyedTopic)
			if err != nil {
				t.Fatalf("oracle (ClickHouse): %v", err)
			}
			if ok && sum(off) > 0 {
				n, err := deletionVectors(ctx, tbl, s.SnapshotID)
				if err != nil {
					t.Fatalf("oracle (ClickHouse): plan %s at snapshot %d: %v", keyedTable, s.SnapshotID, err)
				}
				if n == 0 {
					if s.SnapshotID != cur.SnapshotID && s.SnapshotID != midID {
						snaps = append(snaps, &chSnap{what: "the newest snapshot without deletion vectors", id: s.SnapshotID, offs: off})
					}
					break
				}
			}
			if s.ParentSnapshotID == nil {
				break
			}
			s = meta.SnapshotByID(*s.ParentSnapshotID)
		}
	}
	stmts := []string{"SELECT version()", "CREATE TABLE orders " + engine}
	partitioned := !tbl.Spec().IsUnpartitioned()
	var read []*chSnap
	for _, s := range snaps {
		if s.dvs, s.eq, err = deleteCounts(ctx, tbl, s.id); err != nil {
			t.Fatalf("oracle (ClickHouse): plan %s at snapshot %d: %v", keyedTable, s.id, err)
		}
		if partitioned && s.eq > 0 {
			t.Logf("oracle: ClickHouse does not read %s at %s %d: %d equality deletes apply, and %s", keyedTable, s.what, s.id, s.eq, chdbGlobalEqualityDeletes)
			continue
		}
		read = append(read, s)
		// The id goes into the SQL as its exact decimal string.
		at := " SETTINGS iceberg_snapshot_id=" + strconv.FormatInt(s.id, 10)
		stmts = append(stmts, "SELECT count() FROM orders"+at)
		s.count, s.rows, s.trivial = len(stmts)-1, -1, -1
		if s.eq > 0 {
			// See chdbTrivialCount.
			s.trivial = s.count
			stmts = append(stmts, "SELECT count() FROM orders"+at+", optimize_trivial_count_query=0")
			s.count = len(stmts) - 1
		}
		if s.dvs == 0 {
			stmts = append(stmts, keyedCHSelect+"orders"+at)
			s.rows = len(stmts) - 1
		}
	}
	start := time.Now()
	res, err := clickHouse(ctx, dir, stmts)
	if err != nil {
		t.Fatalf("oracle (ClickHouse): %v", err)
	}
	for _, s := range read {
		want := newestRows(log, s.offs)
		desc := fmt.Sprintf("%s at %s %d (floe.offsets %s, %d orders, %d deletion vectors, %d equality deletes)", keyedTable, s.what, s.id, fmtOffsets(s.offs), len(want), s.dvs, s.eq)
		if got := res[s.count].Rows; len(got) != 1 || len(got[0]) != 1 || got[0][0] != strconv.Itoa(len(want)) {
			t.Errorf("oracle (ClickHouse): %s: count() = %q, want %d", desc, got, len(want))
		}
		if s.trivial >= 0 {
			t.Logf("oracle: ClickHouse answered count() = %v of %s from the snapshot summary (%s), %v reading the files",
				res[s.trivial].Rows, desc, chdbTrivialCount, res[s.count].Rows)
		}
		var rows []keyedRow
		if s.rows >= 0 {
			if rows, err = parseKeyedCH(res[s.rows].Rows); err != nil {
				t.Fatalf("oracle (ClickHouse): %s: %v", stmts[s.rows], err)
			}
		} else {
			// chdb cannot read the rows of a snapshot with deletion
			// vectors: the read fails, in a session of its own.
			q := keyedCHSelect + "orders SETTINGS iceberg_snapshot_id=" + strconv.FormatInt(s.id, 10)
			r, err := clickHouse(ctx, dir, []string{stmts[1], q})
			if err == nil || !strings.Contains(err.Error(), chdbDVError) {
				if err == nil {
					rows, _ = parseKeyedCH(r[1].Rows)
				}
				t.Errorf("oracle (ClickHouse): %s: chdb %s was expected to refuse the deletion vectors with %q; it returned %d rows (%d problems against the model) and error %v. If this chdb reads deletion vectors, update chdbDVError's check and the Readers section of docs/keyed-tables.md",
					desc, chdbVersion, chdbDVError, len(rows), len(keyedProblems(rows, want)), err)
				continue
			}
			t.Logf("oracle: ClickHouse read count() = %s of %s and, as expected, refused its rows: %s", res[s.count].Rows[0][0], desc, chdbDVError)
			continue
		}
		for _, p := range keyedProblems(rows, want) {
			t.Errorf("oracle (ClickHouse): %s: %d rows read: %s", desc, len(rows), p)
		}
		t.Logf("oracle: ClickHouse read %d rows of %s", len(rows), desc)
	}
	t.Logf("oracle: ClickHouse %v took %s", res[0].Rows, time.Since(start).Round(time.Millisecond))
}

// ---------------------------------------------------------------------------
// The tests

// keyedReached reports whether the table's offsets reached ends.
func keyedReached(cat *catalog.Catalog, ends map[int32]int64) (bool, string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	off, err := committedOffsets(ctx, cat, keyedTable, keyedPipeline, keyedTopic)
	return err == nil && reached(off, ends), fmt.Sprintf("table offsets %s (err %v), end offsets %s", fmtOffsets(off), err, fmtOffsets(ends))
}

// compactedAfter reports whether a compaction landed after the commit that
// reached ends (it carries those offsets); with withDeletes, one whose
// rewritten files had deletes applied (it wrote fewer rows than it read).
func compactedAfter(cat *catalog.Catalog, ends map[int32]int64, withDeletes bool) (bool, string) {
	tbl, err := cat.LoadTable(context.Background(), catalog.Ident(keyedTable))
	if err != nil {
		return false, err.Error()
	}
	for _, sn := range tbl.Metadata().Snapshots() {
		off, ok, err := summaryOffsets(&sn, keyedPipeline, keyedTopic)
		if err != nil || !ok || sn.Summary.Operation != table.OpReplace || !reached(off, ends) {
			continue
		}
		added, _ := strconv.ParseInt(sn.Summary.Properties["added-records"], 10, 64)
		deleted, _ := strconv.ParseInt(sn.Summary.Properties["deleted-records"], 10, 64)
		if !withDeletes || deleted > added {
			return true, ""
		}
	}
	off, _, _, _ := commit.TableOffsets(tbl, keyedPipeline)
	return false, fmt.Sprintf("table offsets %s, end offsets %s, %d snapshots", fmtOffsets(off[keyedTopic]), fmtOffsets(ends), len(tbl.Metadata().Snapshots()))
}

// keyedFinish ends the run of a keyed test: it stops the producer, waits
// until the table holds every record, then until a compaction lands on the
// quiet table (under a stream of updates most plans go stale), and then
// produces a tail of updates and waits for it: the key index follows the
// rows into the compaction's files, and the tail's deletes must find them
// there. wait is the test's way of waiting for a condition.
func keyedFinish(t *testing.T, cat *catalog.Catalog, model *keyedModel, broker string, prod *producer,
	wait func(timeout time.Duration, what string, cond func() (bool, string))) produced {
	t.Helper()
	want := prod.finish(t, 3*time.Minute)
	ends := mustEndOffsets(t, broker, keyedTopic)
	wait(3*time.Minute, "the table to reach the end offsets", func() (bool, string) { return keyedReached(cat, ends) })
	start := time.Now()
	wait(time.Minute, "a compaction after the last commit", func() (bool, string) { return compactedAfter(cat, ends, false) })
	withDeletes, _ := compactedAfter(cat, ends, true)
	t.Logf("a compaction landed %s after the last commit (deletes applied: %v); producing a tail", time.Since(start).Round(time.Millisecond), withDeletes)
	tail := model.startProducer(t, broker, 1_000, 250).finish(t, time.Minute)
	ends = mustEndOffsets(t, broker, keyedTopic)
	wait(3*time.Minute, "the table to reach the end offsets after the tail", func() (bool, string) { return keyedReached(cat, ends) })
	return produced{Records: want.Records + tail.Records, Malformed: want.Malformed + tail.Malformed}
}

// keyedCommitted is the sum of the table's committed offsets (0 before it
// exists).
func keyedCommitted(cat *catalog.Catalog) int64 {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	off, err := committedOffsets(ctx, cat, keyedTable, keyedPipeline, keyedTopic)
	if err != nil {
		return 0
	}
	return sum(off)
}

// TestKeyedUpsertUnderKills runs `floe serve` with the keyed orders
// pipeline, for format versions 2 (position-delete files) and 3 (deletion
// vectors), compaction on, while orders stream in, and kills it again and
// again: with SIGKILL at random moments and through failpoints after a
// file is closed and after the catalog accepted a commit. Every restart
// rebuilds the key index from the table. The last incarnation commits
// everything, compacts, and commits a tail of updates (keyedFinish); then
// checkKeyed.
func TestKeyedUpsertUnderKills(t *testing.T) {
	if testing.Short() {
		t.Skip("the keyed kill test takes about 40 seconds")
	}
	for _, k := range []keyedShape{{version: 2}, {version: 3, spilled: true}, {version: 2, equality: true, unpartitioned: true}} {
		t.Run(k.String(), func(t *testing.T) { keyedUnderKills(t, k) })
	}
}

func keyedUnderKills(t *testing.T, k keyedShape) {
	long := os.Getenv("FLOE_E2E_CHAOS_LONG") != ""
	seed := testSeed(t)
	rng := rand.New(rand.NewPCG(uint64(seed), 0x6b657965))
	randomKills, minRecords, maxKeys := 4, int64(20_000), 3_000
	if long {
		randomKills, minRecords, maxKeys = 30, 300_000, 50_000
	}
	const rate = 2_500

	_, addr := startBroker(t, keyedTopic, 4)
	s := keyedSetup(t, addr)
	// Position-delete files are merged as soon as two apply to a data
	// file, so that merges land between kills too.
	s.Extra = maintenanceYAML(strings.TrimSuffix(fastCompaction, "}")+", merge_deletes: 2}", disabled, disabled)
	cfgPath, cfg := writeKeyedConfig(t, s, k)
	bin := floeBinary(t)
	cat := openCatalog(t, cfg)
	model := newKeyedModel(seed, maxKeys, rate)
	prod := model.startProducer(t, addr, minRecords, 250)

	committed := func() int64 { return keyedCommitted(cat) }

	var steps []crashStep
	for i := range randomKills {
		steps = append(steps, crashStep{})
		switch i {
		case randomKills / 3:
			steps = append(steps, crashStep{failpoint: "fileio/after-close", hit: 2 + rng.IntN(12)})
		case 2 * randomKills / 3:
			steps = append(steps, crashStep{failpoint: "commit/after-catalog", hit: 1 + rng.IntN(6)})
		}
	}
	var restarts []time.Time
	began := time.Now()
	for i, step := range steps {
		logPath := filepath.Join(s.Dir, fmt.Sprintf("floe-%02d.log", i))
		showLogOnFailure(t, logPath)
		before := committed()
		// The first rebuild of the key index fails: the incarnation's
		// commits delete by equality until the next one succeeds.
		fps := []string{"upsert/rebuild=error@1"}
		if step.failpoint != "" {
			fps = append(fps, fmt.Sprintf("%s=crash@%d", step.failpoint, step.hit))
		}
		env := []string{"FLOE_FAILPOINTS=" + strings.Join(fps, ",")}
		if i > 0 {
			restarts = append(restarts, time.Now())
		}
		proc := startFloe(t, bin, cfgPath, logPath, env...)
		how := endIncarnation(t, i, proc, logPath, step.failpoint, step.hit, rng, committed, before)
		t.Logf("incarnation %2d: %-50s committed offsets %d -> %d; %d produced so far", i, how, before, committed(), prod.stats.Produced.Load())
	}

	// The last incarnation commits every record and stops on SIGTERM.
	logPath := filepath.Join(s.Dir, "floe-final.log")
	showLogOnFailure(t, logPath)
	restarts = append(restarts, time.Now())
	proc := startFloe(t, bin, cfgPath, logPath)
	want := keyedFinish(t, cat, model, addr, prod, func(timeout time.Duration, what string, cond func() (bool, string)) {
		t.Helper()
		waitFor(t, timeout, what, func() (bool, string) {
			if proc.Exited() {
				t.Fatalf("the last incarnation exited by itself: %v", proc.Err())
			}
			return cond()
		})
	})
	stopGracefully(t, proc)
	t.Logf("%d incarnations, everything committed after %s", len(steps)+1, time.Since(began).Round(time.Millisecond))
	checkKeyed(t, cfg, model, want, restarts)
	if !k.equality {
		// The failed first rebuilds made commits delete by equality.
		tbl, err := cat.LoadTable(context.Background(), catalog.Ident(keyedTable))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, s := range tbl.Metadata().Snapshots() {
			if s.Summary != nil && s.Summary.Properties["added-equality-delete-files"] != "" {
				n++
			}
		}
		if n == 0 {
			t.Error("no snapshot added equality deletes: the commits of an incarnation whose first rebuild failed did not fall back to them")
		}
		t.Logf("%d snapshots added equality deletes while the key index was rebuilt", n)
		merges := 0
		for _, s := range tbl.Metadata().Snapshots() {
			if p := s.Summary; p != nil && p.Operation == table.OpReplace && p.Properties["deleted-data-files"] == "" && p.Properties["added-delete-files"] != "" {
				merges++
			}
		}
		t.Logf("%d snapshots merged position-delete files (maintenance, merge_deletes)", merges)
	}
	if k.spilled {
		spills := 0
		logs, _ := filepath.Glob(filepath.Join(s.Dir, "floe-*.log"))
		for _, l := range logs {
			spills += strings.Count(readFile(l), "key index: outgrew its memory")
		}
		if spills == 0 {
			t.Error("no incarnation's key index outgrew key_index_memory: the spilled variant kept every key in memory")
		}
		t.Logf("%d key indexes spilled to their file", spills)
	}
}

// TestKeyedUpsertClusterLeaderKill runs the keyed orders pipeline (format
// version 3) on a three-member cluster of floe processes with compaction
// on, and SIGKILLs the leader, which runs the table writer and its key
// index, twice while orders stream in (FLOE_E2E_CHAOS_LONG=1: ten
// times), restarting it after its partitions moved. The new leader
// rebuilds the index from the table before its first commit. Then
// keyedFinish and checkKeyed, with the snapshots after each kill among
// those read back.
func TestKeyedUpsertClusterLeaderKill(t *testing.T) {
	if testing.Short() {
		t.Skip("the keyed cluster test takes about 30 seconds")
	}
	long := os.Getenv("FLOE_E2E_CHAOS_LONG") != ""
	seed := testSeed(t)
	rng := rand.New(rand.NewPCG(uint64(seed), 0x6b65796c))
	kills, minRecords, maxKeys := 2, int64(20_000), 3_000
	if long {
		kills, minRecords, maxKeys = 10, 200_000, 50_000
	}
	const version, rate = 3, 2_500

	broker, r, cat := newChaosCluster(t, keyedTopic, func(mc *procrig.MemberConfig) { keyedMember(mc, keyedShape{version: version}) })
	model := newKeyedModel(seed, maxKeys, rate)
	began := time.Now()
	r.startAll()
	r.waitSpread(time.Minute, "n1", "n2", "n3")
	prod := model.startProducer(t, broker, minRecords, 250)
	committed := func() int64 { return keyedCommitted(cat) }
	var killedAt []time.Time
	for i := range kills {
		before := committed()
		r.waitFor(time.Minute, "a commit before the kill", func() (bool, string) {
			n := committed()
			return n > before, fmt.Sprintf("committed offsets %d, %d before", n, before)
		})
		time.Sleep(time.Duration(rng.IntN(1500)) * time.Millisecond)
		l := r.leader()
		at := time.Now()
		r.kill(l)
		killedAt = append(killedAt, at)
		// Down for longer than dead_after (2s): its partitions move.
		down := time.Duration(2500+rng.IntN(1500)) * time.Millisecond
		t.Logf("kill %d at +%s: SIGKILL the leader %s with committed offsets %d; %d produced so far; restart after %s",
			i+1, at.Sub(began).Round(time.Millisecond), l.ID, committed(), prod.stats.Produced.Load(), down)
		time.Sleep(down - time.Since(at))
		r.start(l)
		r.waitReady(l, 2*time.Minute)
	}
	// keyedFinish waits for the table, not its dead-letter table: with
	// no dead letter in its last records, that one moves its offsets only
	// every 30 seconds (and on the graceful stops below); its rows are
	// checked, not its offsets.
	want := keyedFinish(t, cat, model, broker, prod, r.waitFor)
	t.Logf("everything committed at +%s", time.Since(began).Round(time.Millisecond))
	r.stopAll()
	checkKeyed(t, r.config(), model, want, killedAt)
}

// TestKeyedCompactionRemovesDeletionVectorsOfRewrittenFiles pins down a
// bug the keyed oracle found in v3 tables: a compaction rewrites data
// files with their deletion vectors applied, and must remove those
// vectors with them. floe writes the vectors of one commit into one
// Puffin file, and a compaction removes only one vector per Puffin file:
// the others stay in the table, naming data files it no longer holds. The
// rows read back are right, but the dangling vectors pile up with every
// compaction, and the snapshot summary counts them: total-records less
// total-position-deletes falls below the rows, and below zero, and that
// is what ClickHouse answers count() with (2^64 less a few thousand).
//
// A node in the test process ingests 3,000 upserts of 300 orders into a
// v3 table with compaction every 300ms (commits that delete rows of the
// files a compaction read make it plan again, so compactions land once
// the records are in); once a compaction has applied deletes after the
// last commit, every compaction must have removed the deletes of the files
// it rewrote, the current snapshot must hold no delete entry of a file it
// does not hold, and its summary must count its rows.
func TestKeyedCompactionRemovesDeletionVectorsOfRewrittenFiles(t *testing.T) {
	if testing.Short() {
		t.Skip("takes about 5 seconds")
	}
	_, addr := startBroker(t, keyedTopic, 2)
	s := keyedSetup(t, addr)
	s.Extra = maintenanceYAML(fastCompaction, disabled, disabled)
	_, cfg := writeKeyedConfig(t, s, keyedShape{version: 3})
	cat := openCatalog(t, cfg)
	model := newKeyedModel(1, 300, 1_500)
	prod := model.startProducer(t, addr, 3_000, 150)
	n := startNode(t, cfg, testLogger(t, "node"))
	want := prod.finish(t, time.Minute)
	ends := mustEndOffsets(t, addr, keyedTopic)

	waitFor(t, time.Minute, "every record committed and then a compaction that applied deletes", func() (bool, string) {
		return compactedAfter(cat, ends, true)
	})
	n.stop(t)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tbl, err := cat.LoadTable(ctx, catalog.Ident(keyedTable))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := scanKeyed(ctx, tbl, tbl.CurrentSnapshot().SnapshotID)
	if err != nil {
		t.Fatal(err)
	}
	newest := newestRows(model.log(t, ends), nil)
	for _, p := range keyedProblems(rows, newest) {
		t.Errorf("%s: %s", keyedTable, p)
	}
	t.Logf("%d records produced, %d orders", want.Records, len(newest))
	checkKeyedDeletesLive(ctx, t, tbl, int64(len(rows)))
}
