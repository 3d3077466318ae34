package bench

// `floe bench upsert` measures keyed tables (pipelines with `key:`) on the
// machine it runs on, in one run:
//
//	(1) throughput end to end, as phase (c) of `floe bench`: the records a
//	    `floe bench child` node (a cluster of one, maintenance at its
//	    defaults) commits per second from a preloaded topic, for a keyed
//	    pipeline where 1%, 10% and 100% of the records update an existing
//	    key and the rest add new keys, in format v2 (position-delete files)
//	    and v3 (deletion vectors), each beside an unkeyed pipeline
//	    (append) on the same records, and a v2 run with delete_mode:
//	    equality (no key index: an equality-delete file per commit). Every
//	    table first holds a quarter as many keys as the measured records,
//	    committed by a child run of its own before the measured records
//	    are produced: the keys the updates hit (100% updates need keys that
//	    exist). The measured child restarts on that table, so a keyed run's
//	    time includes the rebuild of its key index from the table at its
//	    first commit, as every restart of a keyed pipeline does (with the
//	    node's default wait for it; equality resolves meanwhile).
//	(2) read cost: a keyed table committed to directly in a local warehouse
//	    (the fileio writer, the upsert resolver and the committer, as the
//	    table writer drives them, without Kafka): a first commit of
//	    ReadSeed new keys, then upsert commits of CommitRows rows each, 10%
//	    of them updates, one data file per commit (the table has one
//	    partition), no maintenance. After 1, 10 and Commits upsert commits
//	    the time to scan the whole table with iceberg-go (plan and read
//	    every row of every column into Arrow batches, applying the
//	    deletes; the fastest of three scans), then the same table compacted
//	    on demand through the maintain package and scanned again: the same
//	    rows without the deletes and the small files. At the last
//	    checkpoint the same data files are also committed, without their
//	    deletes, to a table of their own and scanned: what the files cost
//	    a reader apart from the deletes. Each checkpoint is a table of its
//	    own, built by the same deterministic stream. All of it is measured
//	    for delete_mode: position (the default; the resolver waits for its
//	    index however long it takes) and again for delete_mode: equality
//	    (the resolver keeps no index: each commit adds one equality-delete
//	    file of the keys it touches, under the table's unpartitioned
//	    spec), without the scan of the data files alone.
//	(3) the key index: bytes per key (Index.MemoryBytes / Len, and the
//	    growth of the live heap) after inserting Keys keys encoded as the
//	    resolver encodes the event_id string column, and the time a fresh
//	    Resolver takes to rebuild the index of a table of Keys keys written
//	    in a few large files (Resolve with no new files, which rebuilds
//	    first, as after a restart or a failover, and waits for it).
//
// The broker (kfake) and the producer run in the benchmark process, every
// measured phase in a `floe bench child` process of its own, so no phase
// pays for another's heap and each peak RSS is its own.
//
// The records are the click events of `floe bench` (about 220 bytes, 10
// columns, no malformed or late events), keyed by event_id: a new key gets
// the next key number, an update a key number drawn uniformly from those
// that exist, and the key number decides the 16 hex digits of event_id,
// which is also the Kafka record key (a key stays in one Kafka partition,
// as keyed tables expect). Event times advance a millisecond per record
// from midnight of a fixed day, so the day-partitioned tables have one
// partition.

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floelake/floe/catalog"
	"github.com/floelake/floe/commit"
	"github.com/floelake/floe/ingest"
	"github.com/floelake/floe/ingest/decode"
	"github.com/floelake/floe/internal/fileio"
	"github.com/floelake/floe/internal/gen"
	"github.com/floelake/floe/internal/schema"
	"github.com/floelake/floe/maintain"
	"github.com/floelake/floe/upsert"
)

// UpsertOptions tune `floe bench upsert`.
type UpsertOptions struct {
	// Records are the measured records of each throughput run; every run's
	// table first holds Records/4 keys.
	Records    int
	Partitions int
	// CommitInterval is the throughput runs' commit_interval.
	CommitInterval time.Duration
	// V3 adds the format v3 (deletion vector) runs of phases 1 and 2.
	V3 bool
	// ReadSeed is the number of keys the read-cost tables start with,
	// CommitRows the rows of each upsert commit, Commits the most upsert
	// commits (checkpoints at 1, 10 and Commits).
	ReadSeed, CommitRows, Commits int
	// Keys is the key count of the index phase.
	Keys int
	// DataDir is the scratch directory; default a temporary one, removed after.
	DataDir string
	// ClickHouse, if set, is the directory chdb is installed in: the read
	// phase's v2 tables are then scanned by ClickHouse too (clickhouse.go).
	ClickHouse string
	// Exe is the floe binary the children run; default this executable.
	Exe string
}

// DefaultUpsertOptions are the figures the README quotes.
func DefaultUpsertOptions() UpsertOptions {
	return UpsertOptions{
		Records: 2_000_000, Partitions: 8, CommitInterval: time.Second, V3: true,
		ReadSeed: 1_000_000, CommitRows: 20_000, Commits: 100,
		Keys: 10_000_000,
	}
}

// QuickUpsertOptions are a run of well under a minute, for CI: every phase
// on small data, so it checks that the benchmark works, not how fast.
func QuickUpsertOptions() UpsertOptions {
	o := DefaultUpsertOptions()
	o.Records, o.ReadSeed, o.CommitRows, o.Commits, o.Keys = 40_000, 20_000, 1_000, 10, 100_000
	o.CommitInterval = 250 * time.Millisecond
	return o
}

// Targets printed beside the figures.
const (
	// targetKeyedRatio: a keyed pipeline with 10% updates commits at least
	// half as many records per second as an unkeyed one.
	targetKeyedRatio = 0.5
	// targetReadRatio: the scan after Commits upsert commits takes at
	// most this many times the scan of the same rows compacted.
	targetReadRatio = 1.3
	// readUpdate is the fraction of updates in the read phase's commits.
	readUpdate = 0.10
	// scanRepeat scans are timed; the fastest counts.
	scanRepeat = 3
	// indexFiles is the number of files of the index phase's table.
	indexFiles = 4
)

const (
	upsertTable   = "bench.upsert"
	upsertKey     = "event_id"
	upsertSources = 8 // Kafka partitions of the rows the in-process phases write
)

// upsertFractions are the throughput runs' fractions of updates, in percent.
var upsertFractions = []int{1, 10, 100}

// targetFraction is the fraction of updates targetKeyedRatio is about.
const targetFraction = 10

// RunUpsert runs every phase and prints the report.
func RunUpsert(ctx context.Context, o UpsertOptions, out io.Writer) error {
	switch {
	case o.Records < 10_000:
		return errors.New("bench upsert: --records must be at least 10000")
	case o.Partitions < 1:
		return errors.New("bench upsert: --partitions must be at least 1")
	case o.CommitInterval < ingest.MinCommitInterval:
		return fmt.Errorf("bench upsert: --commit-interval must be at least %s", ingest.MinCommitInterval)
	case o.ReadSeed < 1 || o.CommitRows < 1 || o.Commits < 1:
		return errors.New("bench upsert: --read-seed, --commit-rows and --commits must be at least 1")
	case o.Keys < 1000:
		return errors.New("bench upsert: --keys must be at least 1000")
	}
	dir, exe, cleanup, err := workspace(o.DataDir, "floe-bench-upsert-", o.Exe)
	if err != nil {
		return err
	}
	defer cleanup()
	var topics []string
	for _, pct := range upsertFractions {
		topics = append(topics, upsertTopic(pct))
	}
	broker, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(int32(o.Partitions), topics...))
	if err != nil {
		return err
	}
	defer broker.Close()
	addr := broker.ListenAddrs()[0]

	versions := []int{2}
	if o.V3 {
		versions = append(versions, 3)
	}
	fmt.Fprintf(out, "floe bench upsert: click records of ~220 bytes (10 columns, day-partitioned) keyed by event_id, %d partitions, commit interval %s, format %s\n",
		o.Partitions, o.CommitInterval, versionList(versions))
	fmt.Fprintf(out, "this machine has %d CPUs (runtime.NumCPU; load average %s), shared by the broker, the producer and the measured process\n\n",
		runtime.NumCPU(), loadAvg())

	var res upsertResult
	fmt.Fprintf(out, "(1) throughput, end to end: records committed per second by a node started on a table of %d keys, until %d more records are committed (maintenance at its defaults)\n",
		o.Records/4, o.Records)
	for _, pct := range upsertFractions {
		runs, err := upsertThroughput(ctx, exe, addr, dir, o, pct, versions, out)
		if err != nil {
			return fmt.Errorf("bench upsert: throughput, %d%% updates: %w", pct, err)
		}
		res.tput = append(res.tput, runs...)
	}

	fmt.Fprintf(out, "\n(2) read cost: a table of %d keys, then upsert commits of %d rows (%.0f%% updates, one data file each), no maintenance; full scans (plan + read every column, the fastest of %d, taken in rounds of one scan of each state) before and after an on-demand compaction; delete_mode position (the default), then equality\n",
		o.ReadSeed, o.CommitRows, readUpdate*100, scanRepeat)
	for _, v := range versions {
		for _, mode := range []string{"", ingest.DeleteModeEquality} {
			r, _, err := runChild(ctx, exe, childArgs{Mode: "upsert-read", DataDir: filepath.Join(dir, "read"), Upsert: &upsertArgs{
				FormatVersion: v, DeleteMode: mode, SeedRows: o.ReadSeed, CommitRows: o.CommitRows, Checkpoints: readCheckpoints(o.Commits), Update: readUpdate,
			}})
			if err != nil {
				return fmt.Errorf("bench upsert: read cost, v%d %s: %w", v, cmp.Or(mode, ingest.DeleteModePosition), err)
			}
			for i, p := range r.Read {
				if o.ClickHouse != "" && p.Version == 2 && !p.equality() && len(p.States) > 0 {
					if r.Read[i].ClickHouse, err = clickhouseScans(ctx, o.ClickHouse, filepath.Join(dir, "clickhouse"), p.States, scanRepeat); err != nil {
						return fmt.Errorf("bench upsert: read cost, v%d after %d commits: %w", v, p.Commits, err)
					}
				}
				r.Read[i].print(out)
			}
			res.read = append(res.read, r.Read...)
		}
	}

	fmt.Fprintf(out, "\n(3) key index: %d keys\n", o.Keys)
	r, rss, err := runChild(ctx, exe, childArgs{Mode: "upsert-index", DataDir: filepath.Join(dir, "index"), Upsert: &upsertArgs{
		FormatVersion: 2, Keys: o.Keys, Files: indexFiles,
	}})
	if err != nil {
		return fmt.Errorf("bench upsert: index: %w", err)
	}
	res.index, res.indexRSS = *r.Index, rss
	res.index.print(out)

	res.summary(out, o)
	return nil
}

func upsertTopic(pct int) string { return fmt.Sprintf("upsert_%d", pct) }

func versionList(vs []int) string {
	var s []string
	for _, v := range vs {
		s = append(s, fmt.Sprintf("v%d", v))
	}
	return strings.Join(s, " and ")
}

// readCheckpoints are the upsert commit counts the read phase scans at.
func readCheckpoints(most int) []int {
	var cs []int
	for _, c := range []int{1, 10, most} {
		if c <= most && !slices.Contains(cs, c) {
			cs = append(cs, c)
		}
	}
	return cs
}

// ---------------------------------------------------------------------------
// Records

// benchDay is the day every event time falls on: midnight UTC.
var benchDay = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// eventIDAt is where a click event's event_id value starts: every event
// begins {"event_id":"<16 hex digits>".
const eventIDAt = len(`{"event_id":"`)

// keyStream makes click events keyed by event_id: each one updates an
// existing key with probability update, else adds the next new key. Not
// safe for concurrent use.
type keyStream struct {
	g      *gen.Generator
	rng    *rand.Rand
	update float64
	// keys is the number of keys that exist: key numbers 0..keys-1, plus
	// first (the first key number of a stream that starts elsewhere).
	first, keys int64
	clock       time.Time
	// updates counts the events that updated a key.
	updates int64
	// Kafka positions of the events written to files (not produced):
	// partition part0 + key number mod len(offsets), consecutive offsets.
	part0   int32
	offsets []int64
}

func newKeyStream(seed uint64, first int64, part0 int32, partitions int) *keyStream {
	s := &keyStream{rng: rand.New(rand.NewPCG(seed, 0x75707365)), first: first, clock: benchDay,
		part0: part0, offsets: make([]int64, partitions)}
	g, err := gen.New(gen.Clicks, gen.Config{Seed: int64(seed), MalformedRate: -1, LateRate: -1, Jitter: -1, Now: s.now})
	if err != nil {
		panic(err) // a fixed, valid configuration
	}
	s.g = g
	return s
}

// next appends the next event to dst and returns it, its key number and
// whether it updates an existing key.
func (s *keyStream) next(dst []byte) ([]byte, int64, bool) {
	var k int64
	updated := s.keys > 0 && s.update > 0 && s.rng.Float64() < s.update
	if updated {
		k = s.first + s.rng.Int64N(s.keys)
		s.updates++
	} else {
		k = s.first + s.keys
		s.keys++
	}
	// The generator reads the clock once per event: one millisecond each.
	s.clock = s.clock.Add(time.Millisecond)
	start := len(dst)
	dst, _, _ = s.g.Next(dst)
	ev := dst[start:]
	if len(ev) < eventIDAt+16 || !bytes.HasPrefix(ev, []byte(`{"event_id":"`)) {
		panic("bench: a click event does not start with its event_id")
	}
	putKeyHex(ev[eventIDAt:eventIDAt+16], k)
	return dst, k, updated
}

// now is the generator's clock.
func (s *keyStream) now() time.Time { return s.clock }

// position returns the Kafka position of key number k's next event.
func (s *keyStream) position(k int64) (int32, int64) {
	i := int(k % int64(len(s.offsets)))
	o := s.offsets[i]
	s.offsets[i]++
	return s.part0 + int32(i), o
}

// putKeyHex writes key number k as the 16 hex digits of its event_id
// (multiplying by an odd constant is a bijection on uint64: distinct keys,
// random-looking ids).
func putKeyHex(dst []byte, k int64) {
	const digits = "0123456789abcdef"
	v := uint64(k) * 0x9e3779b97f4a7c15
	for i := 15; i >= 0; i-- {
		dst[i] = digits[v&15]
		v >>= 4
	}
}

// clickColumns declares the click schema as pipeline columns.
func clickColumns() []ingest.Column {
	var cols []ingest.Column
	for _, f := range gen.Schema(gen.Clicks).Fields() {
		cols = append(cols, ingest.Column{Name: f.Name, Type: f.Type.String(), Required: f.Required})
	}
	return cols
}

// upsertPipeline makes p the benchmark's pipeline: the declared click
// schema, keyed by event_id in format version with deleteMode (key nil:
// unkeyed, with the Kafka partition and offset columns a keyed table has,
// so both tables have the same columns).
func upsertPipeline(p *ingest.PipelineConfig, key []string, version int, deleteMode string) {
	p.Schema = clickColumns()
	p.PartitionBy = []string{gen.PartitionSpecSQL(gen.Clicks)}
	p.FormatVersion = version
	if len(key) > 0 {
		p.Key = key
		p.DeleteMode = deleteMode
	} else {
		p.KafkaMetadata = []string{"partition", "offset"}
	}
}

// produceKeyed produces n events of s to topic, each with its event_id as
// the Kafka key.
func produceKeyed(ctx context.Context, broker, topic string, s *keyStream, n int) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.ProducerLinger(5*time.Millisecond),
		kgo.ProducerBatchMaxBytes(1<<20), kgo.MaxBufferedRecords(100_000))
	if err != nil {
		return err
	}
	defer cl.Close()
	var firstErr atomic.Pointer[error]
	done := func(_ *kgo.Record, err error) {
		if err != nil {
			firstErr.CompareAndSwap(nil, &err)
		}
	}
	var slab []byte
	for i := 0; i < n && firstErr.Load() == nil; i++ {
		if cap(slab)-len(slab) < 2048 {
			slab = make([]byte, 0, 256<<10)
		}
		start := len(slab)
		slab, _, _ = s.next(slab)
		v := slab[start:len(slab):len(slab)]
		cl.Produce(ctx, &kgo.Record{Topic: topic, Key: v[eventIDAt : eventIDAt+16], Value: v}, done)
	}
	if err := cl.Flush(ctx); err != nil {
		return err
	}
	if e := firstErr.Load(); e != nil {
		return *e
	}
	return nil
}

// ---------------------------------------------------------------------------
// (1) Throughput

type tputRun struct {
	label   string
	pct     int
	keyed   bool
	version int
	// deleteMode is a keyed run's delete_mode ("" is position).
	deleteMode string
	// updated is the measured records' fraction of updates.
	updated float64
	res     childResult
}

func (r tputRun) rate() float64 { return float64(r.res.Records) / r.res.Elapsed.Seconds() }

func (r tputRun) steadyRate() float64 {
	if r.res.Steady <= 0 {
		return 0
	}
	return float64(r.res.SteadyRecords) / r.res.Steady.Seconds()
}

// upsertThroughput runs the throughput runs on the records of one fraction
// of updates: a seed child per table, then the measured records, then the
// measured child per table.
func upsertThroughput(ctx context.Context, exe, broker, dir string, o UpsertOptions, pct int, versions []int, out io.Writer) ([]tputRun, error) {
	topic := upsertTopic(pct)
	var runs []tputRun
	runs = append(runs, tputRun{label: fmt.Sprintf("append (unkeyed), the %d%% records", pct), pct: pct, version: 2})
	for _, v := range versions {
		runs = append(runs, tputRun{label: fmt.Sprintf("keyed v%d, %d%% updates", v, pct), pct: pct, keyed: true, version: v})
	}
	runs = append(runs, tputRun{label: fmt.Sprintf("keyed v2 delete_mode: equality, %d%% updates", pct), pct: pct, keyed: true, version: 2,
		deleteMode: ingest.DeleteModeEquality})
	args := func(r tputRun, records int) childArgs {
		a := childArgs{Mode: "e2e", Brokers: []string{broker}, Topic: topic, Records: int64(records),
			DataDir: filepath.Join(dir, "tput", fmt.Sprintf("%s-v%d-keyed-%t%s", topic, r.version, r.keyed, r.deleteMode)), CommitInterval: o.CommitInterval,
			Upsert: &upsertArgs{FormatVersion: r.version}}
		if r.keyed {
			a.Upsert.Key, a.Upsert.DeleteMode = []string{upsertKey}, r.deleteMode
		}
		return a
	}
	s := newKeyStream(uint64(pct), 0, 0, 1)
	seed := o.Records / 4
	if err := produceKeyed(ctx, broker, topic, s, seed); err != nil {
		return nil, fmt.Errorf("produce: %w", err)
	}
	for _, r := range runs {
		if _, _, err := runChild(ctx, exe, args(r, seed)); err != nil {
			return nil, fmt.Errorf("%s: the first %d keys: %w", r.label, seed, err)
		}
	}
	s.update = float64(pct) / 100
	if err := produceKeyed(ctx, broker, topic, s, o.Records); err != nil {
		return nil, fmt.Errorf("produce: %w", err)
	}
	updated := float64(s.updates) / float64(o.Records)
	for i := range runs {
		r := &runs[i]
		res, _, err := runChild(ctx, exe, args(*r, o.Records))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", r.label, err)
		}
		r.res, r.updated = res, updated
		steady := ""
		if sr := r.steadyRate(); sr > 0 {
			steady = fmt.Sprintf("; first to last commit %.0f records/s", sr)
		}
		fmt.Fprintf(out, "  %-50s %9.0f records/s  (%d records, %.1f%% updates, in %s%s; %d snapshots; peak RSS %.0f MiB)\n",
			r.label, r.rate(), res.Records, updated*100, res.Elapsed.Round(10*time.Millisecond), steady, res.Commits, float64(res.PeakRSS)/(1<<20))
	}
	deleteTopic(ctx, broker, topic)
	return runs, nil
}

// deleteTopic frees the broker's copy of a topic's records; a failure only
// leaves them in memory.
func deleteTopic(ctx context.Context, broker, topic string) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker))
	if err != nil {
		return
	}
	defer cl.Close()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, _ = kadm.NewClient(cl).DeleteTopics(cctx, topic)
}

// ---------------------------------------------------------------------------
// Child processes

// upsertArgs are the settings of `floe bench upsert`'s child runs.
type upsertArgs struct {
	// Key is nil for an unkeyed table.
	Key           []string `json:"key,omitempty"`
	FormatVersion int      `json:"format_version"`
	// DeleteMode is the keyed table's delete_mode ("" is position).
	DeleteMode string `json:"delete_mode,omitempty"`
	// The read phase.
	SeedRows    int     `json:"seed_rows,omitempty"`
	CommitRows  int     `json:"commit_rows,omitempty"`
	Checkpoints []int   `json:"checkpoints,omitempty"`
	Update      float64 `json:"update,omitempty"`
	// The index phase.
	Keys  int `json:"keys,omitempty"`
	Files int `json:"files,omitempty"`
}

// benchLogger logs to stderr at FLOE_BENCH_LOG_LEVEL (default warn).
func benchLogger() *slog.Logger {
	level := slog.LevelWarn
	_ = level.UnmarshalText([]byte(os.Getenv("FLOE_BENCH_LOG_LEVEL")))
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// keyedTable is a keyed click table in a local warehouse that this process
// writes and commits to as the table writer does: data files through the
// fileio writer, their deletes through an upsert.Resolver, one snapshot
// per commit through a commit.Committer.
type keyedTable struct {
	cat  *catalog.Catalog
	c    *commit.Committer
	res  *upsert.Resolver
	info fileio.TableInfo
	// part is the partition of every row: benchDay.
	part map[int]any
}

func openKeyedTable(ctx context.Context, dir string, version int, deleteMode string) (*keyedTable, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	cat, err := catalog.Open(ctx, catalog.Config{
		Type: "sql", Name: "floe", URI: "sqlite://" + filepath.Join(dir, "catalog.db"),
		Warehouse: "file://" + filepath.Join(dir, "warehouse"),
	}, catalog.StorageConfig{}, dir)
	if err != nil {
		return nil, err
	}
	t, err := newKeyedTable(ctx, cat, version, deleteMode)
	if err != nil {
		_ = cat.Close()
		return nil, err
	}
	return t, nil
}

func newKeyedTable(ctx context.Context, cat *catalog.Catalog, version int, deleteMode string) (*keyedTable, error) {
	var pc ingest.PipelineConfig
	upsertPipeline(&pc, []string{upsertKey}, version, deleteMode)
	sch, err := pc.DeclaredSchema()
	if err != nil {
		return nil, err
	}
	spec, err := schema.Partition(pc.PartitionBy, sch)
	if err != nil {
		return nil, err
	}
	props := maintain.Properties()
	props[table.PropertyFormatVersion] = strconv.Itoa(version)
	ident := catalog.Ident(upsertTable)
	tbl, _, err := catalog.EnsureTable(ctx, cat, ident, sch, spec, props)
	if err != nil {
		return nil, err
	}
	if err := addUnpartitionedSpec(ctx, cat, tbl); err != nil {
		return nil, err
	}
	c, err := commit.New(ctx, cat, commit.Config{Pipeline: "upsert", Table: ident, Logger: benchLogger()})
	if err != nil {
		return nil, err
	}
	res, err := upsert.NewResolver(pc.Key, benchLogger(), resolverOptions(pc)...)
	if err != nil {
		return nil, err
	}
	info, err := fileio.InfoFromTable(ctx, c.Table())
	if err != nil {
		return nil, err
	}
	if info.Spec.NumFields() != 1 {
		return nil, fmt.Errorf("bench: the table has %d partition fields, want 1", info.Spec.NumFields())
	}
	day := iceberg.Date(benchDay.Unix() / 86400)
	return &keyedTable{cat: cat, c: c, res: res, info: info, part: map[int]any{info.Spec.Field(0).FieldID: day}}, nil
}

func (t *keyedTable) close() {
	t.res.Close()
	_ = t.cat.Close()
}

// resolverOptions are the options of the resolvers the benchmark creates
// for pipeline p's table. With delete_mode: position a commit waits for the
// index however long its rebuild takes (upsert.RebuildWait), rather than
// resolving by equality after the default wait: the figures are the
// index's.
func resolverOptions(p ingest.PipelineConfig) []upsert.Option {
	if p.EqualityDeletes() {
		return []upsert.Option{upsert.EqualityDeletes()}
	}
	return []upsert.Option{upsert.RebuildWait(time.Hour)}
}

// addUnpartitionedSpec gives a partitioned keyed table an unpartitioned
// partition spec besides its default one, as a keyed pipeline's table gets
// when the pipeline starts: the spec its equality-delete files are written
// under. The table is new and this process its only writer.
func addUnpartitionedSpec(ctx context.Context, cat *catalog.Catalog, tbl *table.Table) error {
	meta := tbl.Metadata()
	if _, ok := schema.UnpartitionedSpec(meta); ok {
		return nil
	}
	id := 0
	for _, s := range meta.PartitionSpecs() {
		id = max(id, s.ID()+1)
	}
	spec := iceberg.NewPartitionSpecID(id)
	if _, _, err := cat.CommitTable(ctx, tbl.Identifier(),
		[]table.Requirement{table.AssertTableUUID(meta.TableUUID()), table.AssertDefaultSpecID(meta.DefaultPartitionSpec())},
		[]table.Update{table.NewAddPartitionSpecUpdate(&spec, false)}); err != nil {
		return fmt.Errorf("bench: add an unpartitioned partition spec: %w", err)
	}
	return nil
}

// writeFile writes the next n events of s as one data file, decoded as the
// pipeline decodes them.
func (t *keyedTable) writeFile(ctx context.Context, s *keyStream, n int) (iceberg.DataFile, error) {
	dec, err := decode.NewJSONDecoder(t.info.Schema)
	if err != nil {
		return nil, err
	}
	b := array.NewRecordBuilder(memory.DefaultAllocator, dec.ArrowSchema())
	defer b.Release()
	w := fileio.NewWriter(t.info, t.part, fileio.Options{TargetFileSize: 1 << 40})
	flush := func() error {
		rec := b.NewRecordBatch()
		defer rec.Release()
		return w.Write(rec)
	}
	var buf []byte
	for i := range n {
		var k int64
		buf, k, _ = s.next(buf[:0])
		p, off := s.position(k)
		if err := dec.Parse(buf, decode.RecordMeta{Topic: "upsert", Partition: p, Offset: off, Timestamp: s.now()}); err != nil {
			w.Abort()
			return nil, err
		}
		dec.Append(b)
		if (i+1)%(64<<10) == 0 {
			if err := flush(); err != nil {
				w.Abort()
				return nil, err
			}
		}
	}
	if err := flush(); err != nil {
		w.Abort()
		return nil, err
	}
	files, err := w.Close(ctx)
	if err != nil {
		return nil, err
	}
	if len(files) != 1 {
		return nil, fmt.Errorf("bench: wrote %d files, want 1", len(files))
	}
	return files[0], nil
}

// segment returns the segment of files whose rows took the Kafka positions
// from before to after (one stream's offsets).
func segment(files []iceberg.DataFile, part0 int32, before, after []int64) commit.Segment {
	seg := commit.Segment{Files: files, From: commit.Offsets{}, To: commit.Offsets{}}
	for i := range after {
		if after[i] > before[i] {
			seg.From.Set("upsert", part0+int32(i), before[i])
			seg.To.Set("upsert", part0+int32(i), after[i])
			seg.Records += after[i] - before[i]
		}
	}
	return seg
}

// commitTimes add up where the upsert commits spent their time.
type commitTimes struct {
	Commits int `json:"commits"`
	// Write is writing the data files, Resolve the resolver's reading of
	// their keys and writing of the deletes, Commit the snapshot commit.
	Write, Resolve, Commit time.Duration
	// Deletes are the delete files (or deletion vector files) written.
	Deletes int `json:"deletes"`
}

// upsertCommit writes the next n events of s as one data file and commits
// it with the deletes of the rows it replaces.
func (t *keyedTable) upsertCommit(ctx context.Context, s *keyStream, n int, ct *commitTimes) error {
	before := slices.Clone(s.offsets)
	t0 := time.Now()
	f, err := t.writeFile(ctx, s, n)
	if err != nil {
		return err
	}
	t1 := time.Now()
	d, err := t.res.Resolve(ctx, t.c.Table(), []iceberg.DataFile{f})
	if err != nil {
		return err
	}
	t2 := time.Now()
	r, err := t.c.CommitDelta(ctx, segment([]iceberg.DataFile{f}, s.part0, before, s.offsets), d)
	if err != nil {
		t.res.Abandon()
		return err
	}
	t.res.Committed(r.SnapshotID)
	ct.Commits++
	ct.Write += t1.Sub(t0)
	ct.Resolve += t2.Sub(t1)
	ct.Commit += time.Since(t2)
	ct.Deletes += len(d.Deletes)
	return nil
}

// tableShape counts the live data files and what deletes their rows: the
// position-delete files, the deletion vectors (one per data file at most;
// one Puffin file holds a commit's) and the equality-delete files that
// apply to some data file.
func tableShape(ctx context.Context, tbl *table.Table) (data, posDeletes, dvs, eqDeletes int, err error) {
	scan := tbl.Scan()
	defer scan.Close()
	tasks, err := scan.PlanFiles(ctx)
	if err != nil {
		return 0, 0, 0, 0, err
	}
	ds, pos, withDV, eq := map[string]bool{}, map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, t := range tasks {
		ds[t.File.FilePath()] = true
		for _, d := range t.DeleteFiles {
			pos[d.FilePath()] = true
		}
		if len(t.DeletionVectorFiles) > 0 {
			withDV[t.File.FilePath()] = true
		}
		for _, d := range t.EqualityDeleteFiles {
			eq[d.FilePath()] = true
		}
	}
	return len(ds), len(pos), len(withDV), len(eq), nil
}

// scanTimes are the fastest of scanRepeat scans of one table, and the
// fastest of their plans. Alloc is the heap the last scan allocated: what
// the reader's garbage collector pays for, which, unlike the times, does
// not depend on what else the machine runs.
type scanTimes struct {
	Rows        int64
	Total, Plan time.Duration
	Alloc       uint64
}

// scanState is one state of a table whose scans are timed: want is the
// rows it must hold (-1: any number), times the fastest of its scans.
type scanState struct {
	name  string
	tbl   *table.Table
	want  int64
	times scanTimes
}

// scanInRounds plans and reads every row of every column of each state's
// table into Arrow batches, in scanRepeat rounds of one scan per state, and
// keeps each state's fastest. A machine that slows down or speeds up
// during the phase then changes every state's figure alike, rather than
// those of the states scanned at that time.
func scanInRounds(ctx context.Context, states []*scanState) error {
	for round := range scanRepeat {
		for _, st := range states {
			s, err := scanOnce(ctx, st.tbl)
			if err != nil {
				return fmt.Errorf("%s: %w", st.name, err)
			}
			switch {
			case st.want >= 0 && s.Rows != st.want:
				return fmt.Errorf("the table holds %d rows %s, want %d", s.Rows, st.name, st.want)
			case round == 0:
				st.times = s
			case s.Rows != st.times.Rows:
				return fmt.Errorf("bench: two scans of one snapshot (%s) read %d and %d rows", st.name, st.times.Rows, s.Rows)
			}
			st.times.Total, st.times.Plan, st.times.Alloc = min(st.times.Total, s.Total), min(st.times.Plan, s.Plan), s.Alloc
		}
	}
	return nil
}

func scanOnce(ctx context.Context, tbl *table.Table) (scanTimes, error) {
	var s scanTimes
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	start := time.Now()
	scan := tbl.Scan()
	defer scan.Close()
	tasks, err := scan.PlanFiles(ctx)
	if err != nil {
		return s, fmt.Errorf("plan: %w", err)
	}
	s.Plan = time.Since(start)
	_, batches, err := scan.ReadTasks(ctx, tasks)
	if err != nil {
		return s, fmt.Errorf("scan: %w", err)
	}
	for rec, err := range batches {
		if err != nil {
			return s, fmt.Errorf("scan: %w", err)
		}
		s.Rows += rec.NumRows()
		rec.Release()
	}
	s.Total = time.Since(start)
	runtime.ReadMemStats(&m1)
	s.Alloc = m1.TotalAlloc - m0.TotalAlloc
	return s, nil
}

// filesAlone commits the live data files of tbl, without their deletes,
// to a table of its own, and returns it: what the files cost a reader, the
// deletes aside.
func filesAlone(ctx context.Context, cat *catalog.Catalog, tbl *table.Table) (*table.Table, error) {
	scan := tbl.Scan()
	defer scan.Close()
	tasks, err := scan.PlanFiles(ctx)
	if err != nil {
		return nil, err
	}
	var files []iceberg.DataFile
	seen := map[string]bool{}
	for _, t := range tasks {
		if !seen[t.File.FilePath()] {
			seen[t.File.FilePath()] = true
			files = append(files, t.File)
		}
	}
	ident := catalog.Ident(upsertTable + "_files")
	props := iceberg.Properties{table.PropertyFormatVersion: strconv.Itoa(tbl.Metadata().Version())}
	if _, _, err := catalog.EnsureTable(ctx, cat, ident, tbl.Schema(), tbl.Spec(), props); err != nil {
		return nil, err
	}
	c, err := commit.New(ctx, cat, commit.Config{Pipeline: "files", Table: ident, Logger: benchLogger()})
	if err != nil {
		return nil, err
	}
	seg := commit.Segment{Files: files, From: commit.Offsets{}, To: commit.Offsets{}, Records: 1}
	seg.From.Set("files", 0, 0)
	seg.To.Set("files", 0, 1)
	if _, err := c.Commit(ctx, seg); err != nil {
		return nil, err
	}
	return c.Table(), nil
}

// committerWriter gives a maintainer a committer of its own to commit
// through: the table writer of a table nothing else writes.
type committerWriter struct{ c *commit.Committer }

func (w committerWriter) Do(ctx context.Context, f func(context.Context, *commit.Committer) error) error {
	return f(ctx, w.c)
}
func (w committerWriter) Current() *table.Table           { return w.c.Table() }
func (w committerWriter) PendingFiles() ([]string, error) { return nil, nil }

// ---------------------------------------------------------------------------
// (2) Read cost

// readPoint is the read phase at one checkpoint.
type readPoint struct {
	Version int `json:"version"`
	// DeleteMode is the table's delete_mode ("" is position).
	DeleteMode string `json:"delete_mode,omitempty"`
	// Commits are the upsert commits after the first.
	Commits int   `json:"commits"`
	Rows    int64 `json:"rows"`
	// DataFiles and DeleteFiles are the table's before the compaction,
	// CompactedFiles its data files after.
	DataFiles   int           `json:"data_files"`
	DeleteFiles int           `json:"delete_files"`
	DVs         int           `json:"dvs"`
	EqDeletes   int           `json:"eq_deletes,omitempty"`
	Scan        time.Duration `json:"scan"`
	Plan        time.Duration `json:"plan"`
	// ScanAlloc, FilesAlloc and CompactedAlloc are the heap bytes the
	// scans allocated.
	ScanAlloc uint64 `json:"scan_alloc"`
	// FilesScan is a scan of the same data files without their deletes
	// (FilesRows rows), at the last checkpoint only.
	FilesScan  time.Duration `json:"files_scan,omitempty"`
	FilesRows  int64         `json:"files_rows,omitempty"`
	FilesAlloc uint64        `json:"files_alloc,omitempty"`
	// MergedDeleteFiles and MergedScan are the table's position-delete
	// files and scan after maintenance merged them (v2, delete_mode
	// position): no data file rewritten.
	MergedDeleteFiles int           `json:"merged_delete_files,omitempty"`
	MergedScan        time.Duration `json:"merged_scan,omitempty"`
	// Maintained is the same commits, at the last checkpoint of the
	// default delete mode, to a table of their own with scheduled
	// maintenance.
	Maintained     *maintainedPoint `json:"maintained,omitempty"`
	CompactedFiles int              `json:"compacted_files"`
	CompactedScan  time.Duration    `json:"compacted_scan"`
	CompactedAlloc uint64           `json:"compacted_alloc"`
	Compaction     time.Duration    `json:"compaction"`
	// Upserts are the upsert commits' times.
	Upserts commitTimes `json:"upserts"`
	// States are the tables scanned, for another engine to scan
	// (--clickhouse); ClickHouse its scans of them.
	States     []stateRef   `json:"states,omitempty"`
	ClickHouse []engineScan `json:"clickhouse,omitempty"`
}

// compactedState names the state of a checkpoint's table after the
// compaction.
const compactedState = "compacted"

func (p readPoint) ratio() float64 { return p.Scan.Seconds() / p.CompactedScan.Seconds() }

// maintainedPoint is a table after the upsert commits of a checkpoint with
// the compaction checks a node runs as it commits.
type maintainedPoint struct {
	// Checks are the compaction checks run, Compactions those that
	// rewrote files, Merged the data files whose position-delete files
	// were merged; Took the time they took together.
	Checks      int           `json:"checks"`
	Compactions int           `json:"compactions"`
	Merged      int           `json:"merged"`
	Took        time.Duration `json:"took"`
	DataFiles   int           `json:"data_files"`
	DeleteFiles int           `json:"delete_files"`
	Scan        time.Duration `json:"scan"`
	Alloc       uint64        `json:"alloc"`
}

// equality reports whether the table has delete_mode: equality.
func (p readPoint) equality() bool { return p.DeleteMode == ingest.DeleteModeEquality }

// label names the table's format version, and its delete mode unless it
// is the default.
func (p readPoint) label() string {
	if p.equality() {
		return fmt.Sprintf("v%d delete_mode: equality,", p.Version)
	}
	return fmt.Sprintf("v%d", p.Version)
}

func (p readPoint) print(out io.Writer) {
	u := p.Upserts
	per := func(d time.Duration) string {
		return (d / time.Duration(max(u.Commits, 1))).Round(100 * time.Microsecond).String()
	}
	fmt.Fprintf(out, "  %s after %3d upsert commits: %d rows in %s: scan %s (plan %s, %s allocated); compacted (in %s, to %d data files): scan %s (%s allocated); %.2f×; per upsert commit: write %s, resolve %s, commit %s\n",
		p.label(), p.Commits, p.Rows, p.shape(), fmtScan(p.Scan), fmtScan(p.Plan), mib(p.ScanAlloc), p.Compaction.Round(time.Millisecond),
		p.CompactedFiles, fmtScan(p.CompactedScan), mib(p.CompactedAlloc), p.ratio(), per(u.Write), per(u.Resolve), per(u.Commit))
	if p.MergedScan > 0 {
		fmt.Fprintf(out, "      position deletes merged by maintenance, no data rewritten (%d position-delete files): scan %s, %.2f× compacted\n",
			p.MergedDeleteFiles, fmtScan(p.MergedScan), p.MergedScan.Seconds()/p.CompactedScan.Seconds())
	}
	if m := p.Maintained; m != nil {
		fmt.Fprintf(out, "      the same commits with scheduled maintenance (%d compaction checks, one per %d commits: %d compactions, %d merges, in %s): %d data files + %d delete files: scan %s (%s allocated), %.2f× compacted\n",
			m.Checks, maintain.DefaultConfig().Compaction.FanIn, m.Compactions, m.Merged, m.Took.Round(time.Millisecond), m.DataFiles, m.DeleteFiles,
			fmtScan(m.Scan), mib(m.Alloc), m.Scan.Seconds()/p.CompactedScan.Seconds())
	}
	if p.FilesScan > 0 {
		fmt.Fprintf(out, "      the same %d data files without their deletes (%d rows): scan %s (%s allocated), %.2f× compacted\n",
			p.DataFiles, p.FilesRows, fmtScan(p.FilesScan), mib(p.FilesAlloc), p.FilesScan.Seconds()/p.CompactedScan.Seconds())
	}
	if c, ok := compactedOf(p.ClickHouse); ok {
		var parts []string
		for _, s := range p.ClickHouse {
			parts = append(parts, fmt.Sprintf("%s %s (%.2f×)", s.Name, fmtScan(s.Scan), s.Scan.Seconds()/c.Scan.Seconds()))
		}
		fmt.Fprintf(out, "      ClickHouse (chdb), the same states: %s\n", strings.Join(parts, "; "))
	}
}

// clickhouseRatio is ClickHouse's scan of the table before the compaction
// (the first state) against its scan of the compacted table; ok is false
// without them.
func (p readPoint) clickhouseRatio() (before, compacted engineScan, ratio float64, ok bool) {
	c, ok := compactedOf(p.ClickHouse)
	if !ok {
		return engineScan{}, engineScan{}, 0, false
	}
	before = p.ClickHouse[0]
	return before, c, before.Scan.Seconds() / c.Scan.Seconds(), true
}

// shape names the files of the table before the compaction.
func (p readPoint) shape() string {
	s := fmt.Sprintf("%d data files", p.DataFiles)
	if p.DeleteFiles > 0 || (p.DVs == 0 && p.EqDeletes == 0) {
		s += fmt.Sprintf(" + %d position-delete files", p.DeleteFiles)
	}
	if p.DVs > 0 {
		s += fmt.Sprintf(" + %d deletion vectors", p.DVs)
	}
	if p.EqDeletes > 0 {
		s += fmt.Sprintf(" + %d equality-delete files", p.EqDeletes)
	}
	return s
}

func fmtScan(d time.Duration) string { return d.Round(time.Millisecond).String() }

// mib formats a byte count in MiB.
func mib(b uint64) string { return fmt.Sprintf("%d MiB", b>>20) }

// upsertRead builds one table per checkpoint and measures its scans.
func upsertRead(ctx context.Context, dir string, a upsertArgs) ([]readPoint, error) {
	var out []readPoint
	for _, n := range a.Checkpoints {
		p, err := readCheckpoint(ctx, filepath.Join(dir, fmt.Sprintf("v%d-%s-%d", a.FormatVersion, cmp.Or(a.DeleteMode, ingest.DeleteModePosition), n)), a, n)
		if err != nil {
			return nil, fmt.Errorf("after %d commits: %w", n, err)
		}
		out = append(out, p)
	}
	return out, nil
}

func readCheckpoint(ctx context.Context, dir string, a upsertArgs, commits int) (readPoint, error) {
	p := readPoint{Version: a.FormatVersion, DeleteMode: a.DeleteMode, Commits: commits}
	t, err := openKeyedTable(ctx, dir, a.FormatVersion, a.DeleteMode)
	if err != nil {
		return p, err
	}
	defer t.close()
	s := newKeyStream(2, 0, 0, upsertSources)
	var seed commitTimes
	if err := t.upsertCommit(ctx, s, a.SeedRows, &seed); err != nil {
		return p, fmt.Errorf("the first %d keys: %w", a.SeedRows, err)
	}
	s.update = a.Update
	for range commits {
		if err := t.upsertCommit(ctx, s, a.CommitRows, &p.Upserts); err != nil {
			return p, err
		}
	}
	tbl := t.c.Table()
	if p.DataFiles, p.DeleteFiles, p.DVs, p.EqDeletes, err = tableShape(ctx, tbl); err != nil {
		return p, err
	}
	p.Rows = s.keys
	// Every state is kept (nothing expires snapshots or deletes files
	// here) and scanned at the end, in rounds (scanInRounds).
	before := &scanState{name: "before the compaction", tbl: tbl, want: p.Rows}
	states := []*scanState{before}
	m := maintain.New(upsertTable, committerWriter{t.c}, maintain.DefaultConfig(), benchLogger(), nil)
	var merged *scanState
	if p.Version == 2 && !p.equality() && p.DeleteFiles > p.DataFiles {
		// What scheduled maintenance does before any data file is
		// rewritten: merge each data file's position-delete files.
		if _, err := m.MergeDeletes(ctx); err != nil {
			return p, fmt.Errorf("merge deletes: %w", err)
		}
		merged = &scanState{name: "after merging its deletes", tbl: t.c.Table(), want: p.Rows}
		states = append(states, merged)
		if _, p.MergedDeleteFiles, _, _, err = tableShape(ctx, merged.tbl); err != nil {
			return p, err
		}
	}
	sum, err := m.Compact(ctx, nil)
	if err != nil {
		return p, fmt.Errorf("compact: %w", err)
	}
	if sum.Snapshot == 0 {
		return p, fmt.Errorf("the compaction committed nothing: %+v", sum)
	}
	p.Compaction = sum.Took
	ctbl, err := t.cat.LoadTable(ctx, catalog.Ident(upsertTable))
	if err != nil {
		return p, err
	}
	var pos, dvs, eq int
	if p.CompactedFiles, pos, dvs, eq, err = tableShape(ctx, ctbl); err != nil {
		return p, err
	}
	if pos+dvs+eq > 0 {
		return p, fmt.Errorf("%d position-delete files, %d deletion vectors and %d equality-delete files apply after the compaction", pos, dvs, eq)
	}
	compacted := &scanState{name: compactedState, tbl: ctbl, want: p.Rows}
	states = append(states, compacted)
	var files, maintained *scanState
	if commits == slices.Max(a.Checkpoints) && !p.equality() {
		ftbl, err := filesAlone(ctx, t.cat, tbl)
		if err != nil {
			return p, fmt.Errorf("the data files alone: %w", err)
		}
		files = &scanState{name: "of the data files alone", tbl: ftbl, want: -1}
		mt, mtbl, closeM, err := maintainedCheckpoint(ctx, dir+"-maintained", a, commits)
		if err != nil {
			return p, fmt.Errorf("with scheduled maintenance: %w", err)
		}
		defer closeM()
		p.Maintained = mt
		maintained = &scanState{name: "with scheduled maintenance", tbl: mtbl, want: p.Rows}
		states = append(states, files, maintained)
	}
	if err := scanInRounds(ctx, states); err != nil {
		return p, err
	}
	p.States = stateRefs(states)
	p.Scan, p.Plan, p.ScanAlloc = before.times.Total, before.times.Plan, before.times.Alloc
	p.CompactedScan, p.CompactedAlloc = compacted.times.Total, compacted.times.Alloc
	if merged != nil {
		p.MergedScan = merged.times.Total
	}
	if files != nil {
		p.FilesScan, p.FilesRows, p.FilesAlloc = files.times.Total, files.times.Rows, files.times.Alloc
	}
	if maintained != nil {
		p.Maintained.Scan, p.Maintained.Alloc = maintained.times.Total, maintained.times.Alloc
	}
	return p, nil
}

// maintainedCheckpoint makes the commits of readCheckpoint (the same keys,
// the same rows) to a table of its own, with a compaction check
// (maintain.Maintainer.Check) after every fan_in commits, as a node runs
// one once fan_in data files were committed since the last; the resolver
// follows the compactions as the table writer's does. Its scan is what a
// reader of a table that a node maintains at the defaults pays: the size
// tiers bound the small files, merges bound each data file's
// position-delete files, files that lost many rows are rewritten.
//
// It returns the table, for the caller to scan, and what closes it.
func maintainedCheckpoint(ctx context.Context, dir string, a upsertArgs, commits int) (_ *maintainedPoint, _ *table.Table, closeIt func(), err error) {
	t, err := openKeyedTable(ctx, dir, a.FormatVersion, a.DeleteMode)
	if err != nil {
		return nil, nil, nil, err
	}
	defer func() {
		if err != nil {
			t.close()
		}
	}()
	t.c.UseRowDeltas(t.res)
	cfg := maintain.DefaultConfig()
	m := maintain.New(upsertTable, committerWriter{t.c}, cfg, benchLogger(), nil)
	s := newKeyStream(2, 0, 0, upsertSources)
	var ct commitTimes
	if err := t.upsertCommit(ctx, s, a.SeedRows, &ct); err != nil {
		return nil, nil, nil, fmt.Errorf("the first %d keys: %w", a.SeedRows, err)
	}
	s.update = a.Update
	var mp maintainedPoint
	for i := range commits {
		if err := t.upsertCommit(ctx, s, a.CommitRows, &ct); err != nil {
			return nil, nil, nil, err
		}
		if (i+1)%cfg.Compaction.FanIn != 0 {
			continue
		}
		start := time.Now()
		sum, merged, err := m.Check(ctx)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("compaction check after %d commits: %w", i+1, err)
		}
		mp.Took += time.Since(start)
		mp.Checks++
		mp.Merged += merged
		if sum.Snapshot != 0 {
			mp.Compactions++
		}
	}
	tbl := t.c.Table()
	var pos, dvs, eq int
	if mp.DataFiles, pos, dvs, eq, err = tableShape(ctx, tbl); err != nil {
		return nil, nil, nil, err
	}
	mp.DeleteFiles = pos + dvs + eq
	return &mp, tbl, t.close, nil
}

// ---------------------------------------------------------------------------
// (3) The key index

type indexResult struct {
	Keys int `json:"keys"`
	// KeyBytes is the length of an encoded key.
	KeyBytes int `json:"key_bytes"`
	// MemoryBytes and HeapBytes are the index's accounted memory and the
	// live heap's growth after inserting Keys keys; Insert the time the
	// inserts took (encoding included).
	MemoryBytes int64         `json:"memory_bytes"`
	HeapBytes   int64         `json:"heap_bytes"`
	Insert      time.Duration `json:"insert"`
	// The table the rebuild reads: Files data files of TableBytes,
	// written in Write.
	Files      int           `json:"files"`
	TableBytes int64         `json:"table_bytes"`
	Write      time.Duration `json:"write"`
	// Rebuild is the resolver's rebuild; RebuildMemory and RebuildHeap
	// the rebuilt index's accounted memory and the live heap's growth.
	Rebuild       time.Duration `json:"rebuild"`
	RebuildMemory int64         `json:"rebuild_memory"`
	RebuildHeap   int64         `json:"rebuild_heap"`
	// UpdateRows random keys of the table updated by one commit:
	// UpdateResolve is its Resolve with the index in memory.
	UpdateRows    int           `json:"update_rows"`
	UpdateResolve time.Duration `json:"update_resolve"`
	// Spilled is the same rebuild and update with a quarter of the
	// index's memory as its budget (key_index_memory).
	Spilled spillResult `json:"spilled"`
}

// spillResult measures a key index that spills to its file.
type spillResult struct {
	Budget        int64         `json:"budget"`
	Rebuild       time.Duration `json:"rebuild"`
	Memory        int64         `json:"memory"`
	FileKeys      int           `json:"file_keys"`
	FileBytes     int64         `json:"file_bytes"`
	UpdateResolve time.Duration `json:"update_resolve"`
	// FileReads are the update's lookups in the file.
	FileReads int64 `json:"file_reads"`
}

func perKey(b int64, n int) float64 { return float64(b) / float64(max(n, 1)) }

func (r indexResult) print(out io.Writer) {
	fmt.Fprintf(out, "  insert %d keys (%d-byte encoded string keys) into an empty index: %.1f bytes/key (MemoryBytes/Len), live heap +%.1f bytes/key; %.0f ns/key with encoding\n",
		r.Keys, r.KeyBytes, perKey(r.MemoryBytes, r.Keys), perKey(r.HeapBytes, r.Keys), float64(r.Insert.Nanoseconds())/float64(max(r.Keys, 1)))
	fmt.Fprintf(out, "  rebuild from a table of %d keys in %d files (%.0f MiB, written in %s): %s (%.0f keys/s); %.1f bytes/key (MemoryBytes/Len), live heap +%.1f bytes/key\n",
		r.Keys, r.Files, float64(r.TableBytes)/(1<<20), r.Write.Round(100*time.Millisecond), fmtSecs(r.Rebuild),
		float64(r.Keys)/r.Rebuild.Seconds(), perKey(r.RebuildMemory, r.Keys), perKey(r.RebuildHeap, r.Keys))
	s := r.Spilled
	fmt.Fprintf(out, "  update of %d random keys: resolved in %s with the index in memory\n", r.UpdateRows, fmtSecs(r.UpdateResolve))
	fmt.Fprintf(out, "  spilled (key_index_memory %.0f MiB): rebuild %s, memory %.0f MiB, %d keys in a file of %.0f MiB (%.1f bytes/key); update resolved in %s (%d file reads)\n",
		float64(s.Budget)/(1<<20), fmtSecs(s.Rebuild), float64(s.Memory)/(1<<20), s.FileKeys, float64(s.FileBytes)/(1<<20),
		perKey(s.FileBytes, s.FileKeys), fmtSecs(s.UpdateResolve), s.FileReads)
}

// liveHeap is the live heap after two collections.
func liveHeap() int64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// upsertIndex measures the index alone, then the rebuild from a table.
func upsertIndex(ctx context.Context, dir string, a upsertArgs) (indexResult, error) {
	r := indexResult{Keys: a.Keys, Files: a.Files}
	if err := indexInserts(&r); err != nil {
		return r, err
	}
	t, err := openKeyedTable(ctx, dir, a.FormatVersion, ingest.DeleteModePosition)
	if err != nil {
		return r, err
	}
	defer t.close()
	if err := writeIndexTable(ctx, t, &r); err != nil {
		return r, err
	}
	// A fresh committer and resolver: a restarted writer's first Resolve,
	// which waits for the whole rebuild.
	c, err := commit.New(ctx, t.cat, commit.Config{Pipeline: "upsert", Table: catalog.Ident(upsertTable), Logger: benchLogger()})
	if err != nil {
		return r, err
	}
	res, err := upsert.NewResolver([]string{upsertKey}, benchLogger(), upsert.RebuildWait(time.Hour))
	if err != nil {
		return r, err
	}
	defer res.Close()
	before := liveHeap()
	start := time.Now()
	d, err := res.Resolve(ctx, c.Table(), nil)
	if err != nil {
		return r, err
	}
	r.Rebuild = time.Since(start)
	if !d.Empty() {
		return r, errors.New("bench: the rebuild found keys to delete in a table of distinct keys")
	}
	st := res.Stats()
	n, mem := st.Keys, st.IndexBytes
	if n != a.Keys {
		return r, fmt.Errorf("bench: the rebuilt index holds %d keys, the table %d", n, a.Keys)
	}
	if st.Rebuilds != 1 {
		return r, fmt.Errorf("bench: %d rebuilds, want 1", st.Rebuilds)
	}
	r.RebuildMemory, r.RebuildHeap = mem, liveHeap()-before
	runtime.KeepAlive(res)

	// One commit updating random keys of the whole table, resolved (not
	// committed) by the index in memory, then by a spilled one.
	r.UpdateRows = min(100_000, a.Keys/10)
	upd := newKeyStream(7, 0, int32(a.Files), 1)
	upd.keys, upd.update = int64(a.Keys), 1
	uf, err := t.writeFile(ctx, upd, r.UpdateRows)
	if err != nil {
		return r, err
	}
	update := func(res *upsert.Resolver) (time.Duration, error) {
		start := time.Now()
		d, err := res.Resolve(ctx, c.Table(), []iceberg.DataFile{uf})
		took := time.Since(start)
		if err != nil {
			return 0, err
		}
		if res.Stats().Rebuilds != 1 || d.Empty() {
			return 0, errors.New("bench: the update commit was not resolved by the index")
		}
		res.Abandon()
		return took, nil
	}
	if r.UpdateResolve, err = update(res); err != nil {
		return r, err
	}
	res.Close()

	s := &r.Spilled
	s.Budget = mem / 4
	spilled, err := upsert.NewResolver([]string{upsertKey}, benchLogger(), upsert.RebuildWait(time.Hour), upsert.Spill(filepath.Join(dir, "keys"), s.Budget))
	if err != nil {
		return r, err
	}
	defer spilled.Close()
	start = time.Now()
	if _, err := spilled.Resolve(ctx, c.Table(), nil); err != nil {
		return r, err
	}
	s.Rebuild = time.Since(start)
	st = spilled.Stats()
	if st.Keys != a.Keys || st.FileKeys == 0 {
		return r, fmt.Errorf("bench: the spilled index holds %d keys, %d in its file; the table %d", st.Keys, st.FileKeys, a.Keys)
	}
	s.Memory, s.FileKeys, s.FileBytes = st.IndexBytes, st.FileKeys, st.FileBytes
	if s.UpdateResolve, err = update(spilled); err != nil {
		return r, err
	}
	s.FileReads = spilled.Stats().FileReads - st.FileReads
	return r, nil
}

// indexInserts puts Keys event_id keys, encoded by the resolver's key
// encoder from Arrow string batches, into an empty index.
func indexInserts(r *indexResult) error {
	sch := arrow.NewSchema([]arrow.Field{{Name: upsertKey, Type: arrow.BinaryTypes.String}}, nil)
	enc, err := upsert.NewKeyEncoder(sch, []string{upsertKey})
	if err != nil {
		return err
	}
	before := liveHeap()
	ix := upsert.New()
	file := ix.FileID("file:///warehouse/bench/upsert/data/00000-0-00000000-0000-0000-0000-000000000000.parquet")
	var key []byte
	hex := make([]byte, 16)
	const batch = 64 << 10
	for from := 0; from < r.Keys; from += batch {
		b := array.NewStringBuilder(memory.DefaultAllocator)
		for k := from; k < min(from+batch, r.Keys); k++ {
			putKeyHex(hex, int64(k))
			b.BinaryBuilder.Append(hex)
		}
		col := b.NewArray()
		b.Release()
		rec := array.NewRecordBatch(sch, []arrow.Array{col}, int64(col.Len()))
		col.Release()
		start := time.Now()
		for i := range int(rec.NumRows()) {
			if key, err = enc.AppendKey(key[:0], rec, i); err != nil {
				return err
			}
			ix.Put(key, upsert.Loc{File: file, Pos: uint32(from + i)})
		}
		r.Insert += time.Since(start)
		enc.Reset()
		rec.Release()
	}
	r.KeyBytes = len(key)
	if ix.Len() != r.Keys {
		return fmt.Errorf("bench: the index holds %d keys after %d distinct inserts", ix.Len(), r.Keys)
	}
	r.MemoryBytes, r.HeapBytes = ix.MemoryBytes(), liveHeap()-before
	runtime.KeepAlive(ix)
	return nil
}

// writeIndexTable writes Keys new keys as Files data files, in parallel,
// and commits them as one snapshot.
func writeIndexTable(ctx context.Context, t *keyedTable, r *indexResult) error {
	start := time.Now()
	files := make([]iceberg.DataFile, r.Files)
	streams := make([]*keyStream, r.Files)
	errs := make([]error, r.Files)
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for i := range r.Files {
		from, to := r.Keys*i/r.Files, r.Keys*(i+1)/r.Files
		streams[i] = newKeyStream(uint64(100+i), int64(from), int32(i), 1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			files[i], errs[i] = t.writeFile(ctx, streams[i], to-from)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	seg := commit.Segment{From: commit.Offsets{}, To: commit.Offsets{}, Files: files}
	for i, s := range streams {
		seg.From.Set("upsert", int32(i), 0)
		seg.To.Set("upsert", int32(i), s.offsets[0])
		seg.Records += s.offsets[0]
		r.TableBytes += files[i].FileSizeBytes()
	}
	if _, err := t.c.Commit(ctx, seg); err != nil {
		return err
	}
	r.Write = time.Since(start)
	return nil
}

// upsertChild runs the in-process phases as `floe bench child`.
func upsertChild(ctx context.Context, a childArgs) (childResult, error) {
	if a.Upsert == nil {
		return childResult{}, errors.New("bench: no upsert settings")
	}
	start := time.Now()
	var res childResult
	switch a.Mode {
	case "upsert-read":
		ps, err := upsertRead(ctx, a.DataDir, *a.Upsert)
		if err != nil {
			return res, err
		}
		res.Read = ps
	case "upsert-index":
		r, err := upsertIndex(ctx, a.DataDir, *a.Upsert)
		if err != nil {
			return res, err
		}
		res.Index = &r
	default:
		return res, fmt.Errorf("bench: unknown child mode %q", a.Mode)
	}
	res.Elapsed = time.Since(start)
	return res, nil
}

// ---------------------------------------------------------------------------
// Summary

type upsertResult struct {
	tput     []tputRun
	read     []readPoint
	index    indexResult
	indexRSS int64
}

func (r upsertResult) summary(out io.Writer, o UpsertOptions) {
	fmt.Fprintf(out, "\nruntime.NumCPU() = %d (load average now %s)\n\n", runtime.NumCPU(), loadAvg())
	fmt.Fprintln(out, "| figure | measured | target |")
	fmt.Fprintln(out, "|---|---|---|")
	row := func(name, measured, target string) { fmt.Fprintf(out, "| %s | %s | %s |\n", name, measured, target) }
	apps := map[int]tputRun{}
	var appRSS, keyedRSS int64
	for _, t := range r.tput {
		name := "(1) " + t.label
		if !t.keyed {
			apps[t.pct] = t
			appRSS = max(appRSS, t.res.PeakRSS)
			row(name, fmt.Sprintf("%s records/s", human(t.rate())), "")
			continue
		}
		keyedRSS = max(keyedRSS, t.res.PeakRSS)
		measured := fmt.Sprintf("%s records/s", human(t.rate()))
		target := ""
		if app, ok := apps[t.pct]; ok {
			ratio := t.rate() / app.rate()
			measured += fmt.Sprintf(" (%.2f× append)", ratio)
			if t.pct == targetFraction && t.version == 2 && t.deleteMode == "" {
				target = fmt.Sprintf("≥ %.1f× append: %s", targetKeyedRatio, verdict(ratio >= targetKeyedRatio, "BELOW TARGET"))
			}
		}
		row(name, measured, target)
	}
	row("(1) peak RSS, append / keyed runs", fmt.Sprintf("%.0f MiB / %.0f MiB", float64(appRSS)/(1<<20), float64(keyedRSS)/(1<<20)), "")
	most := slices.MaxFunc(r.read, func(a, b readPoint) int { return cmp.Compare(a.Commits, b.Commits) }).Commits
	// Each checkpoint's delete_mode: equality row follows the default's.
	read := slices.Clone(r.read)
	slices.SortStableFunc(read, func(a, b readPoint) int {
		return cmp.Or(cmp.Compare(a.Version, b.Version), cmp.Compare(a.Commits, b.Commits))
	})
	for _, p := range read {
		target := ""
		switch {
		case p.Commits != most || p.equality():
		case p.Version == 2:
			target = fmt.Sprintf("≤ %.1f× compacted: %s", targetReadRatio, verdict(p.ratio() <= targetReadRatio, "OVER TARGET"))
		default:
			target = fmt.Sprintf("(≤ %.1f×: %s)", targetReadRatio, verdict(p.ratio() <= targetReadRatio, "over"))
		}
		plural := "s"
		if p.Commits == 1 {
			plural = ""
		}
		row(fmt.Sprintf("(2) %s scan after %d upsert commit%s (%s)", p.label(), p.Commits, plural, p.shape()),
			fmt.Sprintf("%s vs %s compacted (%.2f×); %s vs %s allocated", fmtScan(p.Scan), fmtScan(p.CompactedScan), p.ratio(), mib(p.ScanAlloc), mib(p.CompactedAlloc)), target)
		if p.MergedScan > 0 {
			row(fmt.Sprintf("(2) %s after %d commits, position deletes merged by maintenance (%d data files + %d position-delete files, no data rewritten)", p.label(), p.Commits, p.DataFiles, p.MergedDeleteFiles),
				fmt.Sprintf("%s (%.2f× compacted)", fmtScan(p.MergedScan), p.MergedScan.Seconds()/p.CompactedScan.Seconds()), "")
		}
		if m := p.Maintained; m != nil {
			row(fmt.Sprintf("(2) %s the same %d commits with scheduled maintenance (%d data files + %d delete files)", p.label(), p.Commits, m.DataFiles, m.DeleteFiles),
				fmt.Sprintf("%s (%.2f× compacted); %s allocated", fmtScan(m.Scan), m.Scan.Seconds()/p.CompactedScan.Seconds(), mib(m.Alloc)), "")
		}
		if p.FilesScan > 0 {
			row(fmt.Sprintf("(2) %s the same %d data files without their deletes", p.label(), p.DataFiles),
				fmt.Sprintf("%s (%.2f× compacted); %s allocated", fmtScan(p.FilesScan), p.FilesScan.Seconds()/p.CompactedScan.Seconds(), mib(p.FilesAlloc)), "")
		}
		if before, c, ratio, ok := p.clickhouseRatio(); ok {
			row(fmt.Sprintf("(2) %s ClickHouse scan after %d upsert commits", p.label(), p.Commits),
				fmt.Sprintf("%s vs %s compacted (%.2f×)", fmtScan(before.Scan), fmtScan(c.Scan), ratio), "")
		}
	}
	for _, p := range r.read {
		if p.Commits == most {
			u := p.Upserts
			n := time.Duration(max(u.Commits, 1))
			row(fmt.Sprintf("(2) %s upsert commit of %d rows, mean of %d", p.label(), o.CommitRows, u.Commits),
				fmt.Sprintf("write %s, resolve %s, commit %s", (u.Write/n).Round(100*time.Microsecond), (u.Resolve/n).Round(100*time.Microsecond), (u.Commit/n).Round(100*time.Microsecond)), "")
		}
	}
	ix := r.index
	row(fmt.Sprintf("(3) key index, %s keys of %d bytes", humanCount(ix.Keys), ix.KeyBytes),
		fmt.Sprintf("%.1f bytes/key (MemoryBytes/Len); live heap %.1f bytes/key", perKey(ix.MemoryBytes, ix.Keys), perKey(ix.HeapBytes, ix.Keys)), "")
	row(fmt.Sprintf("(3) index rebuild, %s keys from %d files (%.0f MiB)", humanCount(ix.Keys), ix.Files, float64(ix.TableBytes)/(1<<20)),
		fmt.Sprintf("%s (%s keys/s); %.1f bytes/key", fmtSecs(ix.Rebuild), human(float64(ix.Keys)/ix.Rebuild.Seconds()), perKey(ix.RebuildMemory, ix.Keys)), "")
	sp := ix.Spilled
	row(fmt.Sprintf("(3) index rebuild spilled to a file, key_index_memory %.0f MiB", float64(sp.Budget)/(1<<20)),
		fmt.Sprintf("%s; %.0f MiB in memory, %s keys in a file of %.0f MiB", fmtSecs(sp.Rebuild), float64(sp.Memory)/(1<<20), humanCount(sp.FileKeys), float64(sp.FileBytes)/(1<<20)), "")
	row(fmt.Sprintf("(3) resolve of a commit updating %s random keys", humanCount(ix.UpdateRows)),
		fmt.Sprintf("%s in memory; %s spilled (%s file reads)", fmtSecs(ix.UpdateResolve), fmtSecs(sp.UpdateResolve), humanCount(int(sp.FileReads))), "")
	row("(3) peak RSS of the index process", fmt.Sprintf("%.0f MiB", float64(r.indexRSS)/(1<<20)), "")
}

func verdict(ok bool, bad string) string {
	if ok {
		return "ok"
	}
	return bad
}

// humanCount formats a count as 10M or 200k.
func humanCount(n int) string {
	switch {
	case n >= 1e6 && n%1e6 == 0:
		return fmt.Sprintf("%dM", n/1e6)
	case n >= 1e3 && n%1e3 == 0:
		return fmt.Sprintf("%dk", n/1e3)
	}
	return strconv.Itoa(n)
}

func fmtSecs(d time.Duration) string {
	if d >= time.Second {
		return fmt.Sprintf("%.2f s", d.Seconds())
	}
	return d.Round(time.Millisecond).String()
}
