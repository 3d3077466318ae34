package e2e

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/big"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go"
	icecat "github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"
	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floelake/floe/catalog"
	"github.com/floelake/floe/ingest"
	"github.com/floelake/floe/ingest/registry"
	"github.com/floelake/floe/internal/config"
	"github.com/floelake/floe/internal/procrig"
	"github.com/floelake/floe/internal/testutil"
	testregistry "github.com/floelake/floe/internal/testutil/registry"
)

// Schema evolution under crashes: `floe serve` consumes an Avro topic whose
// writer schema changes three times (a field added; two types widened; a
// nested record, a list and a wider decimal added), and is killed again and
// again meanwhile: at random moments, at the two steps of a schema change
// (schema/before-catalog: staged, not sent; schema/after-catalog: the
// catalog took it, the member was not told) and at the durable steps of
// the write path. Every schema change must land exactly once (one schema
// per change in the table's history) and before any row that needs it;
// every record must be in the table exactly once with its values, read by
// iceberg-go and by ClickHouse, and every bad record in the dead-letter
// table exactly once.

// ecVersions are the writer schemas, in the order the topic uses them.
var ecVersions = testutil.EvolvingAvro

// ecSchemaFields is the table schema after each version, as "name type"
// for every column but the Kafka metadata columns, in order; a column added
// by a change is optional ("?").
var ecSchemaFields = []string{
	"id long, n int, price float, amount decimal(9, 2)",
	"id long, n int, price float, amount decimal(9, 2), note string?",
	"id long, n long, price double, amount decimal(9, 2), note string?",
	"id long, n long, price double, amount decimal(12, 2), note string?, geo struct<9: lat: required double>?, tags list<string>?",
}

// ecRow is one produced record as the table must hold it.
type ecRow = testutil.EvolvingRow

// ecStep is one incarnation of floe: killed by the test at a random moment
// (failpoint == "") or crashed by a failpoint on its hit-th hit.
type ecStep struct {
	failpoint string
	hit       int
}

// ecModel is what the producer produced, by (partition, offset).
type ecModel struct {
	mu   sync.Mutex
	rows map[[2]int64]ecRow
	bad  map[[2]int64][]byte
	ends map[int32]int64
	// first[v] is the offset of version v's first record in each
	// partition.
	first []map[int32]int64
	// lastBad is one past the last bad record's offset in each partition.
	lastBad map[int32]int64
}

// send produces records of version v (rows holds the good ones' rows) and
// adds them to the model at their acknowledged offsets.
func (m *ecModel) send(ctx context.Context, cl *kgo.Client, v int, recs []*kgo.Record, rows map[*kgo.Record]*ecRow) error {
	res := cl.ProduceSync(ctx, recs...)
	if err := res.FirstErr(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range res {
		rec := r.Record
		k := [2]int64{int64(rec.Partition), rec.Offset}
		if row := rows[rec]; row != nil {
			m.rows[k] = *row
		} else {
			m.bad[k] = rec.Value
			m.lastBad[rec.Partition] = max(m.lastBad[rec.Partition], rec.Offset+1)
		}
		if f, ok := m.first[v][rec.Partition]; !ok || rec.Offset < f {
			m.first[v][rec.Partition] = rec.Offset
		}
		m.ends[rec.Partition] = max(m.ends[rec.Partition], rec.Offset+1)
	}
	return nil
}

// snapshot returns copies of the end offsets and of the offsets past the
// last bad records.
func (m *ecModel) snapshot() (ends, lastBad map[int32]int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.ends), maps.Clone(m.lastBad)
}

func TestSchemaEvolutionCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("the schema evolution crash test takes about a minute")
	}
	seed := testSeed(t)
	rng := rand.New(rand.NewPCG(uint64(seed), 0x65766f6c))

	const (
		topic      = "evo"
		perVersion = 3000
		rate       = 600 // records per second, so kills land mid-stream
		batch      = 30  // records per produce call
		// Bad records per version, each kind: a value not in the wire
		// format and one with a schema id the registry does not know.
		badPerKind = 3
		unknownID  = 99999
	)

	reg := testregistry.Start(t, testregistry.WithCompatibility("NONE")) // a wider decimal is no Avro change
	ids := make([]int, len(ecVersions))
	schemas := make([]avro.Schema, len(ecVersions))
	for v, text := range ecVersions {
		ids[v] = reg.MustRegister(t, topic+"-value", testregistry.Schema{Schema: text})
		sch, err := avro.Parse(text)
		if err != nil {
			t.Fatalf("version %d: %v", v, err)
		}
		schemas[v] = sch
	}

	_, addr := startBroker(t, topic, 3)
	s := newSetup(t, addr, topic)
	s.Pipeline, s.Table = "evo", "e2e.evo"
	cfgPath, cfg := ecWriteConfig(t, s, reg.URL())
	bin := floeBinary(t)
	cat := openCatalog(t, cfg)
	dlqTable := s.Table + "__dlq"

	// The producer: version v's records once gates[v] is open and version
	// v-1's are all acknowledged, at a bounded rate, round-robin over the
	// partitions; the model keeps each record's acknowledged offset.
	model := &ecModel{rows: map[[2]int64]ecRow{}, bad: map[[2]int64][]byte{}, ends: map[int32]int64{}, lastBad: map[int32]int64{}}
	gates := make([]chan struct{}, len(ecVersions))
	dones := make([]chan struct{}, len(ecVersions))
	for v := range gates {
		gates[v], dones[v] = make(chan struct{}), make(chan struct{})
		model.first = append(model.first, map[int32]int64{})
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	prodCtx, stopProducing := context.WithCancel(context.Background())
	defer stopProducing()
	prodErr := make(chan error, 1)
	go func() {
		var seq int64
		for v := range ecVersions {
			select {
			case <-gates[v]:
			case <-prodCtx.Done():
				return
			}
			start := time.Now()
			for i0 := 0; i0 < perVersion; i0 += batch {
				if d := time.Until(start.Add(time.Duration(i0) * time.Second / rate)); d > 0 {
					time.Sleep(d)
				}
				var recs []*kgo.Record
				rows := map[*kgo.Record]*ecRow{}
				add := func(value []byte, row *ecRow) {
					r := &kgo.Record{Topic: topic, Partition: int32(seq % 3), Value: value}
					seq++
					recs = append(recs, r)
					rows[r] = row
				}
				for i := i0; i < min(i0+batch, perVersion); i++ {
					row, payload, err := testutil.EvolvingRecord(schemas[v], v, i)
					if err != nil {
						prodErr <- err
						return
					}
					add(append(registry.AppendHeader(nil, uint32(ids[v])), payload...), &row)
					if (i+1)%(perVersion/badPerKind) == perVersion/badPerKind/2 {
						add([]byte(fmt.Sprintf(`{"id":%d,"version":%d}`, row.ID, v)), nil)
						add(append(registry.AppendHeader(nil, unknownID), payload...), nil)
					}
				}
				if err := model.send(prodCtx, cl, v, recs, rows); err != nil {
					prodErr <- err
					return
				}
			}
			close(dones[v])
		}
	}()
	checkProducer := func() {
		t.Helper()
		select {
		case err := <-prodErr:
			t.Fatalf("produce: %v", err)
		default:
		}
	}
	produced := func(v int) bool {
		select {
		case <-dones[v]:
			return true
		default:
			return false
		}
	}

	offsets := func(name string) map[int32]int64 {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		off, err := committedOffsets(ctx, cat, name, s.Pipeline, topic)
		if err != nil && !errors.Is(err, icecat.ErrNoSuchTable) {
			t.Fatalf("offsets of %s: %v", name, err)
		}
		return off
	}
	schemaCount := func() int {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		tbl, err := cat.LoadTable(ctx, catalog.Ident(s.Table))
		if err != nil {
			return 0
		}
		return len(tbl.Metadata().Schemas())
	}
	committed := func() int64 { return sum(offsets(s.Table)) + sum(offsets(dlqTable)) }

	// incarnation runs floe once, opening gate (if any) right after its
	// start, until step ends it.
	inc := 0
	incarnation := func(step ecStep, phase int, gate chan struct{}) {
		t.Helper()
		i := inc
		inc++
		logPath := filepath.Join(s.Dir, fmt.Sprintf("floe-%02d.log", i))
		showLogOnFailure(t, logPath)
		main0, dlq0, schemas0 := sum(offsets(s.Table)), sum(offsets(dlqTable)), schemaCount()
		var env []string
		if step.failpoint != "" {
			env = append(env, fmt.Sprintf("FLOE_FAILPOINTS=%s=crash@%d", step.failpoint, step.hit))
		}
		proc := startFloe(t, bin, cfgPath, logPath, env...)
		if gate != nil {
			close(gate)
		}
		var how string
		if step.failpoint != "" {
			how = endIncarnation(t, i, proc, logPath, step.failpoint, step.hit, rng, committed, 0)
		} else {
			how = ecRandomKill(t, i, proc, rng, committed)
		}
		checkProducer()
		main1, dlq1, schemas1 := sum(offsets(s.Table)), sum(offsets(dlqTable)), schemaCount()
		t.Logf("incarnation %2d (version %d): %-52s committed offsets %d -> %d, dead-letter %d -> %d, schemas %d -> %d",
			i, phase, how, main0, main1, dlq0, dlq1, schemas0, schemas1)

		// A schema change is staged and crashed before the catalog call:
		// the table keeps its schema; after it: the table has the new
		// schema. Either way no row of the new version is committed yet,
		// in either table: the run ended before the first record that
		// needed the change.
		switch step.failpoint {
		case "schema/before-catalog", "schema/after-catalog":
			want := phase // schemas of versions 0..phase-1
			if step.failpoint == "schema/after-catalog" {
				want++
			}
			if schemas1 != want {
				t.Errorf("incarnation %d: crashed at %s during the change for version %d, yet the table has %d schemas, want %d",
					i, step.failpoint, phase, schemas1, want)
			}
			model.mu.Lock()
			first := model.first[phase]
			for _, name := range []string{s.Table, dlqTable} {
				for p, off := range offsets(name) {
					if f, ok := first[p]; ok && off > f {
						t.Errorf("incarnation %d: %s committed partition %d to offset %d, past version %d's first record (offset %d), before the schema change was made",
							i, name, p, off, phase, f)
					}
				}
			}
			model.mu.Unlock()
		}
	}

	// The schedule. Version 0 creates the table. Each later version's
	// change is crashed before the catalog call (the first incarnation
	// that meets the version's records), then after it (the next one, which
	// asks for the same change again); the one after that finds the change
	// made. Then a crash at a step of the write path, and random kills
	// until the version is produced.
	writePath := []ecStep{
		{"commit/after-catalog", 1}, {"writer/before-report", 1}, {"commit/before-catalog", 1},
		{"cluster/after-propose", 1}, {"fileio/after-close", 1},
	}
	rng.Shuffle(len(writePath), func(i, j int) { writePath[i], writePath[j] = writePath[j], writePath[i] })
	for v := range ecVersions {
		var steps []ecStep
		if v > 0 {
			steps = append(steps, ecStep{"schema/before-catalog", 1}, ecStep{"schema/after-catalog", 1})
		}
		steps = append(steps, writePath[v%len(writePath)])
		for j, step := range steps {
			var gate chan struct{}
			if j == 0 {
				gate = gates[v]
			}
			incarnation(step, v, gate)
		}
		for !produced(v) {
			incarnation(ecStep{}, v, nil)
		}
	}
	checkProducer()

	// The last incarnation runs without faults until both tables have
	// committed every record, then stops on SIGTERM. First it commits the
	// main table to the end and the dead-letter table past the last bad
	// record; then one more bad and one more good record per partition,
	// produced together, end both tables' last segments with rows: a table
	// whose segments carry no rows (the dead-letter table past its last
	// bad record) commits only every half minute.
	ends, lastBad := model.snapshot()
	if got := mustEndOffsets(t, addr, topic); fmtOffsets(got) != fmtOffsets(ends) {
		t.Fatalf("the broker's end offsets %s differ from the produced %s", fmtOffsets(got), fmtOffsets(ends))
	}
	logPath := filepath.Join(s.Dir, "floe-final.log")
	showLogOnFailure(t, logPath)
	proc := startFloe(t, bin, cfgPath, logPath)
	waitCommitted := func(what string, main, dlq map[int32]int64) {
		t.Helper()
		waitFor(t, 2*time.Minute, what, func() (bool, string) {
			if proc.Exited() {
				t.Fatalf("the last incarnation exited by itself: %v", proc.Err())
			}
			m, d := offsets(s.Table), offsets(dlqTable)
			return reached(m, main) && reached(d, dlq), fmt.Sprintf("table offsets %s, dead-letter %s; want %s and %s",
				fmtOffsets(m), fmtOffsets(d), fmtOffsets(main), fmtOffsets(dlq))
		})
	}
	waitCommitted("the last incarnation to commit every record", ends, lastBad)
	var recs []*kgo.Record
	rows := map[*kgo.Record]*ecRow{}
	last := len(ecVersions) - 1
	for p := range int32(3) {
		row, payload, err := testutil.EvolvingRecord(schemas[last], last, perVersion+int(p))
		if err != nil {
			t.Fatal(err)
		}
		bad := &kgo.Record{Topic: topic, Partition: p, Value: []byte(fmt.Sprintf(`{"id":%d}`, row.ID))}
		good := &kgo.Record{Topic: topic, Partition: p, Value: append(registry.AppendHeader(nil, uint32(ids[last])), payload...)}
		recs = append(recs, bad, good)
		rows[good] = &row
	}
	if err := model.send(context.Background(), cl, last, recs, rows); err != nil {
		t.Fatalf("produce: %v", err)
	}
	ends, _ = model.snapshot()
	waitCommitted("the last incarnation to commit the last records", ends, ends)
	stopGracefully(t, proc)
	for _, name := range []string{s.Table, dlqTable} {
		if got := offsets(name); fmtOffsets(got) != fmtOffsets(ends) {
			t.Errorf("%s committed offsets %s after the graceful stop, want the end offsets %s", name, fmtOffsets(got), fmtOffsets(ends))
		}
	}
	t.Logf("%d incarnations; %d records, %d bad; end offsets %s", inc+1, len(model.rows), len(model.bad), fmtOffsets(ends))

	ctx := context.Background()
	tbl, err := cat.LoadTable(ctx, catalog.Ident(s.Table))
	if err != nil {
		t.Fatal(err)
	}
	ecCheckSchemas(t, tbl)

	got := testutil.ReadEvolving(t, tbl)
	ecCompare(t, "iceberg-go", model.rows, got)

	dl, err := cat.LoadTable(ctx, catalog.Ident(dlqTable))
	if err != nil {
		t.Fatal(err)
	}
	ecCheckDeadLetters(t, dl, model.bad, topic)

	ecCheckClickHouse(t, tbl, dl, model.rows, len(model.bad))
}

// ecWriteConfig writes s's configuration with an Avro pipeline reading the
// registry at url, and returns its path and the configuration as floe
// parses it.
func ecWriteConfig(t *testing.T, s setup, url string) (string, config.Config) {
	t.Helper()
	mc := s.memberConfig()
	mc.Pipeline.Format = ingest.FormatAvro
	// The unknown schema id of the bad records is a dead letter at once:
	// the processes are killed more often than it would wait.
	mc.Pipeline.Extra = fmt.Sprintf("    registry: {urls: [%q], unknown_schema_wait: 0s}\n    kafka_metadata: [partition, offset]\n", url)
	yaml := mc.YAML()
	cfg, err := config.Parse([]byte(yaml), nil)
	if err != nil {
		t.Fatalf("config: %v\n%s", err, yaml)
	}
	if p := cfg.Pipelines[0]; p.Format != ingest.FormatAvro || !p.Evolves() || len(p.Schema) != 0 {
		t.Fatalf("pipeline: format %q, evolves %v, %d declared columns; want an Avro pipeline that evolves a table it creates\n%s",
			p.Format, p.Evolves(), len(p.Schema), yaml)
	}
	path := filepath.Join(s.Dir, "floe.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, cfg
}

// ecRandomKill SIGKILLs the process after a random delay or once
// committed() has grown (waiting at most 5 s for it), plus a random delay,
// and returns how.
func ecRandomKill(t *testing.T, i int, proc *procrig.Proc, rng *rand.Rand, committed func() int64) string {
	t.Helper()
	var how string
	if rng.IntN(2) == 0 {
		d := time.Duration(500+rng.IntN(2500)) * time.Millisecond
		how = "SIGKILL after " + d.String()
		time.Sleep(d)
	} else {
		before := committed()
		deadline := time.Now().Add(5 * time.Second)
		for committed() <= before && time.Now().Before(deadline) {
			if proc.Exited() {
				t.Fatalf("incarnation %d exited by itself: %v", i, proc.Err())
			}
			time.Sleep(50 * time.Millisecond)
		}
		d := time.Duration(rng.IntN(1000)) * time.Millisecond
		how = "SIGKILL once it committed, plus " + d.String()
		if committed() <= before {
			how = "SIGKILL after 5s without a commit, plus " + d.String()
		}
		time.Sleep(d)
	}
	if err := proc.Kill(); err != nil {
		t.Fatalf("incarnation %d: %v", i, err)
	}
	return how
}

// ecCheckSchemas checks the table's schema history: the first record's
// schema, then exactly one schema per change, each with the columns of its
// version (and the Kafka metadata columns).
func ecCheckSchemas(t *testing.T, tbl *table.Table) {
	t.Helper()
	hist := tbl.Metadata().Schemas()
	if len(hist) != len(ecVersions) {
		var all []string
		for _, sc := range hist {
			all = append(all, fmt.Sprintf("schema %d: %s", sc.ID, ecFields(sc)))
		}
		t.Fatalf("the table has %d schemas, want %d (one per writer schema):\n%s", len(hist), len(ecVersions), strings.Join(all, "\n"))
	}
	for v, sc := range hist {
		if got := ecFields(sc); got != ecSchemaFields[v] {
			t.Errorf("schema %d (id %d):\n got  %s\n want %s", v, sc.ID, got, ecSchemaFields[v])
		}
		for _, name := range []string{"_kafka_partition", "_kafka_offset"} {
			if _, ok := sc.FindFieldByName(name); !ok {
				t.Errorf("schema %d (id %d) lacks %s", v, sc.ID, name)
			}
		}
	}
	if cur := tbl.Schema(); cur.ID != hist[len(hist)-1].ID {
		t.Errorf("the current schema is %d, want the last one, %d", cur.ID, hist[len(hist)-1].ID)
	}
	sch := tbl.Schema()
	for name, typ := range map[string]iceberg.Type{
		"n": iceberg.PrimitiveTypes.Int64, "price": iceberg.PrimitiveTypes.Float64,
		"amount": iceberg.DecimalTypeOf(12, 2), "note": iceberg.PrimitiveTypes.String,
	} {
		f, ok := sch.FindFieldByName(name)
		if !ok || !f.Type.Equals(typ) {
			t.Errorf("column %s: %v, want %s", name, f, typ)
		}
	}
	if f, ok := sch.FindFieldByName("geo"); !ok || f.Required {
		t.Errorf("column geo: %v, want an optional struct", f)
	} else if st, ok := f.Type.(*iceberg.StructType); !ok || len(st.FieldList) != 1 || st.FieldList[0].Name != "lat" ||
		!st.FieldList[0].Type.Equals(iceberg.PrimitiveTypes.Float64) {
		t.Errorf("column geo: %s, want struct<lat: double>", f.Type)
	}
	if f, ok := sch.FindFieldByName("tags"); !ok || f.Required {
		t.Errorf("column tags: %v, want an optional list", f)
	} else if lt, ok := f.Type.(*iceberg.ListType); !ok || !lt.Element.Equals(iceberg.PrimitiveTypes.String) {
		t.Errorf("column tags: %s, want list<string>", f.Type)
	}
}

// ecFields renders a schema's columns but the Kafka metadata ones as
// "name type", "?" marking an optional column.
func ecFields(sc *iceberg.Schema) string {
	var fs []string
	for _, f := range sc.Fields() {
		if strings.HasPrefix(f.Name, "_kafka_") {
			continue
		}
		s := f.Name + " " + f.Type.String()
		if !f.Required {
			s += "?"
		}
		fs = append(fs, s)
	}
	return strings.Join(fs, ", ")
}

// ecCompare compares the rows a reader read with the produced ones: each
// exactly once, with its values (the version is not in the table).
func ecCompare(t *testing.T, reader string, want, got map[[2]int64]ecRow) {
	t.Helper()
	bad := 0
	for k, w := range want {
		g, ok := got[k]
		switch {
		case !ok:
			t.Errorf("%s: partition %d offset %d (version %d, id %d) is missing", reader, k[0], k[1], w.Version, w.ID)
		default:
			g.Version = w.Version
			if ecRowString(g) == ecRowString(w) {
				continue
			}
			t.Errorf("%s: partition %d offset %d:\n got  %s\n want %s", reader, k[0], k[1], ecRowString(g), ecRowString(w))
		}
		if bad++; bad >= 10 {
			t.Fatalf("%s: too many differences", reader)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: partition %d offset %d (id %d) was never produced as a good record", reader, k[0], k[1], g.ID)
			if bad++; bad >= 10 {
				t.Fatalf("%s: too many differences", reader)
			}
		}
	}
	if len(got) != len(want) {
		t.Errorf("%s: %d rows, want %d", reader, len(got), len(want))
	}
}

func ecRowString(r ecRow) string {
	opt := func(p any) string {
		switch p := p.(type) {
		case *string:
			if p != nil {
				return strconv.Quote(*p)
			}
		case *float64:
			if p != nil {
				return strconv.FormatFloat(*p, 'g', -1, 64)
			}
		}
		return "null"
	}
	return fmt.Sprintf("v%d id=%d n=%d price=%s amount=%s note=%s lat=%s tags=%q", r.Version, r.ID, r.N,
		strconv.FormatFloat(r.Price, 'g', -1, 64), big.NewRat(r.Amount, 100).FloatString(2), opt(r.Note), opt(r.Lat), r.Tags)
}

// ecCheckDeadLetters checks that the dead-letter table holds every bad
// record exactly once, with its value.
func ecCheckDeadLetters(t *testing.T, dl *table.Table, want map[[2]int64][]byte, topic string) {
	t.Helper()
	at, err := dl.Scan().ToArrowTable(context.Background())
	if err != nil {
		t.Fatalf("scan the dead-letter table: %v", err)
	}
	defer at.Release()
	if at.NumRows() != int64(len(want)) {
		t.Errorf("the dead-letter table has %d rows, want %d", at.NumRows(), len(want))
	}
	rr := array.NewTableReader(at, 1024)
	defer rr.Release()
	seen := map[[2]int64]bool{}
	for rr.Next() {
		rec := rr.RecordBatch()
		col := func(name string) arrow.Array { return rec.Column(rec.Schema().FieldIndices(name)[0]) }
		topics, parts, offs := col("topic").(*array.String), col("partition").(*array.Int32), col("offset").(*array.Int64)
		values := col("value").(*array.Binary)
		for j := range int(rec.NumRows()) {
			k := [2]int64{int64(parts.Value(j)), offs.Value(j)}
			w, ok := want[k]
			switch {
			case seen[k]:
				t.Errorf("dead letter at partition %d offset %d is there twice", k[0], k[1])
			case !ok:
				t.Errorf("dead letter at partition %d offset %d: not a bad record (value %q)", k[0], k[1], values.Value(j))
			case topics.Value(j) != topic || string(values.Value(j)) != string(w):
				t.Errorf("dead letter at partition %d offset %d: topic %q value %q, want %q %q", k[0], k[1], topics.Value(j), values.Value(j), topic, w)
			}
			seen[k] = true
		}
	}
	if err := rr.Err(); err != nil {
		t.Fatal(err)
	}
	for k := range want {
		if !seen[k] {
			t.Errorf("bad record at partition %d offset %d is not in the dead-letter table", k[0], k[1])
		}
	}
}

// ecCheckClickHouse reads both tables with ClickHouse, pinned to their
// current metadata files, and compares every row of the main table with
// the produced ones. Struct fields are read with tupleElement (a subcolumn
// fails on files written under an older schema).
func ecCheckClickHouse(t *testing.T, tbl, dl *table.Table, want map[[2]int64]ecRow, bad int) {
	t.Helper()
	chdb := requireChdb(t)
	if chdb == "" {
		return
	}
	engine, err := icebergEngine(tbl, catalog.StorageConfig{})
	if err != nil {
		t.Fatal(err)
	}
	dlEngine, err := icebergEngine(dl, catalog.StorageConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := clickHouse(ctx, chdb, []string{
		"CREATE TABLE t " + engine,
		"CREATE TABLE d " + dlEngine,
		"SELECT _kafka_partition, _kafka_offset, id, n, price, toString(amount), note, tupleElement(geo, 'lat'), " +
			"arrayStringConcat(tags, ' ') FROM t ORDER BY _kafka_partition, _kafka_offset",
		"SELECT count(), sum(1) FROM t",
		"SELECT count(), sum(1) FROM d",
	})
	if err != nil {
		t.Fatal(err)
	}
	got := map[[2]int64]ecRow{}
	for _, r := range res[2].Rows {
		if len(r) != 9 {
			t.Fatalf("ClickHouse row %q: want 9 fields", r)
		}
		num := func(s string) int64 {
			v, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				t.Fatalf("ClickHouse row %q: %v", r, err)
			}
			return v
		}
		flt := func(s string) float64 {
			v, err := strconv.ParseFloat(s, 64)
			if err != nil {
				t.Fatalf("ClickHouse row %q: %v", r, err)
			}
			return v
		}
		amount, ok := new(big.Rat).SetString(r[5])
		if !ok || !new(big.Rat).Mul(amount, big.NewRat(100, 1)).IsInt() {
			t.Fatalf("ClickHouse row %q: amount %q is not a decimal with 2 digits", r, r[5])
		}
		cents := new(big.Rat).Mul(amount, big.NewRat(100, 1)).Num()
		row := ecRow{ID: num(r[2]), N: num(r[3]), Price: flt(r[4]), Amount: cents.Int64()}
		if r[6] != `\N` {
			s := r[6]
			row.Note = &s
		}
		// ClickHouse has no null tuple: a null geo reads as a tuple of
		// its fields' defaults, and lat, required inside the struct, is a
		// Float64, not a Nullable(Float64). So 0 is a null geo (no
		// produced lat is 0).
		if r[7] != `\N` && r[7] != "0" {
			lat := flt(r[7])
			row.Lat = &lat
		}
		// Nor a null array: a null tags reads as [] (no produced list is
		// empty).
		if r[8] != "" {
			row.Tags = "[" + r[8] + "]"
		}
		k := [2]int64{num(r[0]), num(r[1])}
		if _, dup := got[k]; dup {
			t.Fatalf("ClickHouse: partition %d offset %d is in the table twice", k[0], k[1])
		}
		got[k] = row
	}
	ecCompare(t, "ClickHouse", want, got)
	for i, c := range []struct {
		name string
		rows int
	}{{"main", len(want)}, {"dead-letter", bad}} {
		r := res[3+i].Rows
		if w := strconv.Itoa(c.rows); len(r) != 1 || len(r[0]) != 2 || r[0][0] != w || r[0][1] != w {
			t.Errorf("ClickHouse: count(), sum(1) of the %s table: %q, want %s rows", c.name, r, w)
		}
	}
}
