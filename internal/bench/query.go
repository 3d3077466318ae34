package bench

// `floe bench query` measures timetravel.Query, the core of every query a
// node serves (the Query call, `floe query`, the console), on the machine
// it runs on, in one process:
//
//	(1) a table of click events (the columns of `floe bench`, partitioned by
//	    day(ts) as floe's click tables are) is built in a local warehouse (a
//	    SQLite catalog and a file warehouse in the scratch directory) as a
//	    pipeline with 1-second commits builds it: Files commits of one data
//	    file each, every file holding one second of event time (Rows/Files
//	    events, so 40k events/s at the defaults), the events made by the
//	    click generator (no malformed or late events; event times jittered
//	    by up to 5 s, as the generator does), decoded by the pipeline's JSON
//	    decoder and written by its Parquet writer (fileio), committed in
//	    order through a commit.Committer. All events fall on one day, so the
//	    table has one partition: statistics, not partitions, decide what a
//	    filter skips.
//	(2) the table compacted by floe's own compaction (maintain.Compact, as
//	    an on-demand compaction runs on a table's writer, at the default
//	    target_file_size), once (3) has measured the table as built.
//	(3) queries through timetravel.Query with no limits (emit only counts
//	    the rows): a full scan of every column, a projection of two columns
//	    (ts, country), a filter on ts selecting 0.1% of the table's time
//	    range (every file holds about a second of event time, so file
//	    statistics prune all files but a few) and a filter user_id = 5
//	    (about 0.12% of the rows, in every file: nothing can be pruned),
//	    both returning every column. Beside them, in the same run, the raw
//	    Parquet read of the same data files: pqarrow reading every row group
//	    of every file, the same columns, on GOMAXPROCS goroutines, with the
//	    reader properties iceberg-go uses (column-parallel decoding, batches
//	    of 128Ki rows), without Iceberg (no manifests, no planning, no
//	    schema projection, no filter, no ordering of the batches).
//	    All of it on the table as built, then again after (2).
//
// Every figure is the fastest of Repeat runs, the runs of the phases
// interleaved; rows/s is the table's rows over the wall time, whatever the
// query returns, so that a filter that reads less is faster than the raw
// read. Peak heap is how far the heap's objects (live and not yet
// collected, runtime/metrics) grew above their size before the phase
// (after two GCs), sampled every 10 ms, the most over all the phase's runs;
// the report gives the size before (mostly the table's metadata). The
// files are read from the page cache: they were just written.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/metadata"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/apache/iceberg-go"
	iceio "github.com/apache/iceberg-go/io"
	"github.com/apache/iceberg-go/table"

	"github.com/floelake/floe/catalog"
	"github.com/floelake/floe/commit"
	"github.com/floelake/floe/ingest/decode"
	"github.com/floelake/floe/internal/fileio"
	"github.com/floelake/floe/internal/gen"
	"github.com/floelake/floe/internal/schema"
	"github.com/floelake/floe/maintain"
	"github.com/floelake/floe/timetravel"
)

// QueryOptions tune `floe bench query`.
type QueryOptions struct {
	// Rows is the table's rows, Files its data files before compaction:
	// one per commit, each a second of event time.
	Rows, Files int
	// Repeat is how many times each phase runs; the fastest counts.
	Repeat int
	// DataDir is the scratch directory; default a temporary one, removed after.
	DataDir string
}

// DefaultQueryOptions are the figures the README quotes.
func DefaultQueryOptions() QueryOptions {
	return QueryOptions{Rows: 10_000_000, Files: 250, Repeat: 3}
}

// QuickQueryOptions are a run of a few seconds, for CI: it checks that the
// benchmark works, not how fast.
func QuickQueryOptions() QueryOptions {
	o := DefaultQueryOptions()
	o.Rows, o.Files, o.Repeat = 50_000, 10, 1
	return o
}

const (
	queryTable = "bench.query"
	queryTopic = "clicks"
	// queryCommitSpan is the event time each commit (each file) covers.
	queryCommitSpan = time.Second
	// queryMaxFiles keeps the event times (from queryStart, a second per
	// file) within queryStart's day: the table has one partition.
	queryMaxFiles = 40_000
	// queryBatchRows is the rows per Arrow batch of the raw reader: the
	// batch size iceberg-go reads with by default (read.parquet.batch-size).
	// The raw reader decodes a row group's columns in parallel, as
	// iceberg-go's does.
	queryBatchRows = 1 << 17
	// queryWriteBatch is the rows per batch the build hands the writer.
	queryWriteBatch = 64 << 10
	// querySelectivity is the share of the table's time range the ts
	// filter selects.
	querySelectivity = 0.001
	heapSampleEvery  = 10 * time.Millisecond
)

// queryStart is the event time of the first file's first event.
var queryStart = time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)

// queryColumns are the columns of the projected scan.
var queryColumns = []string{"ts", "country"}

// queryCase is one query of phase (3).
type queryCase struct {
	label string
	req   timetravel.QueryRequest
	// projected: compared with the raw read of queryColumns, not of every
	// column.
	projected bool
}

// queryCases are phase (3)'s queries on a table whose event times run
// from queryStart for span.
func queryCases(span time.Duration) []queryCase {
	from := queryStart.Add(span / 2)
	to := from.Add(time.Duration(float64(span) * querySelectivity))
	ts := func(t time.Time) string { return t.Format(time.RFC3339Nano) }
	return []queryCase{
		{label: "full scan, 10 columns"},
		{label: "projection, 2 columns (" + strings.Join(queryColumns, ", ") + ")",
			req: timetravel.QueryRequest{Columns: queryColumns}, projected: true},
		{label: fmt.Sprintf("filter on ts, %.1f%% of the time range (prunable), 10 columns", 100*querySelectivity),
			req: timetravel.QueryRequest{Where: fmt.Sprintf("ts >= '%s' AND ts < '%s'", ts(from), ts(to))}},
		{label: "filter user_id = 5, ~0.12% of the rows (not prunable), 10 columns",
			req: timetravel.QueryRequest{Where: "user_id = 5"}},
	}
}

// queryFigure is one figure of (3) on one state of the table.
type queryFigure struct {
	label string
	// Wall is the fastest run's time; Rows what the phase returned (the
	// raw reads: read), Files the data files it planned (read).
	Wall  time.Duration
	Rows  int64
	Files int64
	// Peak is the peak heap over all runs.
	Peak uint64
	// raw is the index of the raw figure this one compares with (-1: it
	// is a raw figure).
	raw int
}

func (f queryFigure) rate(tableRows int64) float64 { return float64(tableRows) / f.Wall.Seconds() }

// queryState is the table before or after the compaction.
type queryState struct {
	name  string
	files int
	bytes int64
	figs  []queryFigure
}

// RunQuery builds the table, measures the queries before and after the
// compaction, and prints the report.
func RunQuery(ctx context.Context, o QueryOptions, out io.Writer) error {
	switch {
	case o.Files < 1 || o.Files > queryMaxFiles:
		return fmt.Errorf("bench query: --files must be between 1 and %d", queryMaxFiles)
	case o.Rows < 10*o.Files:
		return errors.New("bench query: --rows must be at least 10 per file (--files)")
	case o.Repeat < 1:
		return errors.New("bench query: --repeat must be at least 1")
	}
	dir, cleanup, err := scratchDir(o.DataDir, "floe-bench-query-")
	if err != nil {
		return err
	}
	defer cleanup()
	workers := runtime.GOMAXPROCS(0)
	span := time.Duration(o.Files) * queryCommitSpan
	fmt.Fprintf(out, "floe bench query: %d click events (10 columns, day(ts)-partitioned: one partition), committed as %d 1-second commits of one file each (%d events/s of event time), GOMAXPROCS=%d\n",
		o.Rows, o.Files, o.Rows/o.Files, workers)
	fmt.Fprintf(out, "this machine has %d CPUs (runtime.NumCPU; load average %s)\n\n", runtime.NumCPU(), loadAvg())

	cat, err := catalog.Open(ctx, catalog.Config{
		Type: "sql", Name: "floe", URI: "sqlite://" + filepath.Join(dir, "catalog.db"),
		Warehouse: "file://" + filepath.Join(dir, "warehouse"),
	}, catalog.StorageConfig{}, dir)
	if err != nil {
		return err
	}
	defer cat.Close()

	profile := os.Getenv("FLOE_BENCH_CPUPROFILE")
	stopProfile, err := startProfile(profile, "build", "")
	if err != nil {
		return err
	}
	hs := sampleHeap()
	t0 := time.Now()
	err = buildQueryTable(ctx, cat, o, workers)
	build, buildPeak := time.Since(t0), hs.stop()
	stopProfile()
	if err != nil {
		return fmt.Errorf("bench query: build the table: %w", err)
	}
	fmt.Fprintf(out, "(1) built in %s (generate, decode and write Parquet on %d goroutines, commit one file at a time); peak heap %s\n",
		fmtSecs(build), workers, fmtMiB(buildPeak))

	cases := queryCases(span)
	var states []*queryState
	measure := func(name string) error {
		tbl, err := cat.LoadTable(ctx, catalog.Ident(queryTable))
		if err != nil {
			return err
		}
		st, err := measureQueries(ctx, tbl, name, cases, o, workers)
		if err != nil {
			return fmt.Errorf("bench query: %s: %w", name, err)
		}
		states = append(states, st)
		return nil
	}
	if err := measure("before compaction"); err != nil {
		return err
	}
	before := states[0]
	fmt.Fprintf(out, "    before compaction: %s, %s (%s each on average), %d snapshots\n",
		countOf(before.files, "data file"), fmtMiB(uint64(before.bytes)), fmtMiB(uint64(before.bytes/int64(max(before.files, 1)))), o.Files)

	cfg := maintain.DefaultConfig()
	if stopProfile, err = startProfile(profile, "compaction", ""); err != nil {
		return err
	}
	hs = sampleHeap()
	t0 = time.Now()
	// A committer of its own, as the table's writer after a restart: the
	// build's held every version of the metadata it committed.
	c, err := commit.New(ctx, cat, commit.Config{Pipeline: "query", Table: catalog.Ident(queryTable), Logger: benchLogger()})
	if err != nil {
		hs.stop()
		stopProfile()
		return err
	}
	m := maintain.New(queryTable, committerWriter{c}, cfg, benchLogger(), nil)
	runs := 0
	for runs < 10 {
		sum, err := m.Compact(ctx, nil)
		if err != nil {
			hs.stop()
			stopProfile()
			return fmt.Errorf("bench query: compact: %w", err)
		}
		if sum.Snapshot == 0 {
			break
		}
		runs++
	}
	compaction, compactionPeak := time.Since(t0), hs.stop()
	stopProfile()
	if runs == 0 {
		return errors.New("bench query: the compaction committed nothing")
	}
	if err := measure("after compaction"); err != nil {
		return err
	}
	after := states[1]
	fmt.Fprintf(out, "(2) compacted by maintain.Compact (target_file_size %s, %s) in %s; peak heap %s\n",
		fmtMiB(uint64(cfg.Compaction.TargetFileSize)), countOf(runs, "run"), fmtSecs(compaction), fmtMiB(compactionPeak))
	fmt.Fprintf(out, "    after compaction: %s, %s (%s each on average)\n\n",
		countOf(after.files, "data file"), fmtMiB(uint64(after.bytes)), fmtMiB(uint64(after.bytes/int64(max(after.files, 1)))))

	// The same rows before and after, and all of them in a full scan.
	for _, st := range states {
		for _, f := range st.figs {
			if f.raw < 0 || f.label == cases[0].label || f.label == cases[1].label {
				if f.Rows != int64(o.Rows) {
					return fmt.Errorf("bench query: %s, %s: %d rows, want %d", st.name, f.label, f.Rows, o.Rows)
				}
			}
		}
	}
	for i := range before.figs {
		if b, a := before.figs[i], after.figs[i]; b.Rows != a.Rows {
			return fmt.Errorf("bench query: %s returned %d rows before the compaction and %d after", b.label, b.Rows, a.Rows)
		}
	}

	fmt.Fprintf(out, "(3) each figure the fastest of %d runs; rows/s = the table's %d rows / wall time; raw = pqarrow reading every row group of the same files, same columns, on %d goroutines, batches of %d rows, no Iceberg; × raw = rows/s against the raw read of the same columns (every column for the filters); peak heap = the most the heap grew above its size before the phase (%s, mostly the table's metadata), sampled every %s\n",
		o.Repeat, o.Rows, workers, queryBatchRows, fmtMiB(lastBase.Load()), heapSampleEvery)
	fmt.Fprintf(out, "| phase | table | files planned | rows returned (raw: read) | wall | rows/s | × raw | peak heap |\n|---|---|---|---|---|---|---|---|\n")
	for _, st := range states {
		shape := st.name + ", " + countOf(st.files, "file")
		for _, f := range st.figs {
			ratio := "1 (raw)"
			if f.raw >= 0 {
				ratio = fmt.Sprintf("%.2f×", f.rate(int64(o.Rows))/st.figs[f.raw].rate(int64(o.Rows)))
			}
			fmt.Fprintf(out, "| %s | %s | %d | %d | %s | %s | %s | %s |\n",
				f.label, shape, f.Files, f.Rows, fmtSecs(f.Wall), human(f.rate(int64(o.Rows))), ratio, fmtMiB(f.Peak))
		}
	}
	fmt.Fprintf(out, "| (1) build: generate, decode, write, %d commits | | | %d | %s | %s | | %s |\n",
		o.Files, o.Rows, fmtSecs(build), human(float64(o.Rows)/build.Seconds()), fmtMiB(buildPeak))
	fmt.Fprintf(out, "| (2) compaction: %s, %s → %s, %s | | | | %s | %s | | %s |\n",
		countOf(before.files, "file"), fmtMiB(uint64(before.bytes)), countOf(after.files, "file"), fmtMiB(uint64(after.bytes)),
		fmtSecs(compaction), human(float64(o.Rows)/compaction.Seconds()), fmtMiB(compactionPeak))
	return nil
}

// buildQueryTable creates the table and commits Files files to it, one a
// commit, in event-time order.
func buildQueryTable(ctx context.Context, cat *catalog.Catalog, o QueryOptions, workers int) error {
	sch := gen.Schema(gen.Clicks)
	spec, err := schema.Partition([]string{gen.PartitionSpecSQL(gen.Clicks)}, sch)
	if err != nil {
		return err
	}
	ident := catalog.Ident(queryTable)
	if _, created, err := catalog.EnsureTable(ctx, cat, ident, sch, spec, maintain.Properties()); err != nil {
		return err
	} else if !created {
		return fmt.Errorf("table %s exists already: give an empty --data-dir", queryTable)
	}
	c, err := commit.New(ctx, cat, commit.Config{Pipeline: "query", Table: ident, Logger: benchLogger()})
	if err != nil {
		return err
	}
	info, err := fileio.InfoFromTable(ctx, c.Table())
	if err != nil {
		return err
	}
	if info.Spec.NumFields() != 1 {
		return fmt.Errorf("the table has %d partition fields, want 1", info.Spec.NumFields())
	}
	part := map[int]any{info.Spec.Field(0).FieldID: iceberg.Date(queryStart.Unix() / 86400)}

	// File i holds rows offsets[i] to offsets[i+1] of the stream.
	offsets := make([]int64, o.Files+1)
	for i := range o.Files {
		n := o.Rows / o.Files
		if i < o.Rows%o.Files {
			n++
		}
		offsets[i+1] = offsets[i] + int64(n)
	}
	type written struct {
		f   iceberg.DataFile
		err error
	}
	results := make([]chan written, o.Files)
	for i := range results {
		results[i] = make(chan written, 1)
	}
	wctx, cancel := context.WithCancel(ctx)
	jobs := make(chan int)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fw, err := newClickFileWriter(info, part)
			if err != nil {
				for i := range jobs {
					results[i] <- written{err: err}
				}
				return
			}
			defer fw.release()
			for i := range jobs {
				f, err := fw.write(wctx, i, offsets[i], offsets[i+1])
				results[i] <- written{f, err}
			}
		}()
	}
	go func() {
		defer close(jobs)
		for i := range o.Files {
			select {
			case jobs <- i:
			case <-wctx.Done():
				return
			}
		}
	}()
	for i := range o.Files {
		var w written
		select {
		case w = <-results[i]:
		case <-ctx.Done():
			return ctx.Err()
		}
		if w.err != nil {
			return fmt.Errorf("file %d: %w", i, w.err)
		}
		seg := commit.Segment{Files: []iceberg.DataFile{w.f}, From: commit.Offsets{}, To: commit.Offsets{},
			Records: offsets[i+1] - offsets[i], Watermark: queryStart.Add(time.Duration(i+1) * queryCommitSpan)}
		seg.From.Set(queryTopic, 0, offsets[i])
		seg.To.Set(queryTopic, 0, offsets[i+1])
		if _, err := c.Commit(ctx, seg); err != nil {
			return fmt.Errorf("commit %d: %w", i, err)
		}
	}
	return nil
}

// clickFileWriter turns click events into data files as a pipeline's
// worker does: the generator's JSON, the pipeline's decoder, the fileio
// writer.
type clickFileWriter struct {
	info fileio.TableInfo
	part map[int]any
	dec  *decode.JSONDecoder
	b    *array.RecordBuilder
	buf  []byte
}

func newClickFileWriter(info fileio.TableInfo, part map[int]any) (*clickFileWriter, error) {
	dec, err := decode.NewJSONDecoder(info.Schema)
	if err != nil {
		return nil, err
	}
	return &clickFileWriter{info: info, part: part, dec: dec, b: array.NewRecordBuilder(memory.DefaultAllocator, dec.ArrowSchema())}, nil
}

func (w *clickFileWriter) release() { w.b.Release() }

// write writes the events of stream offsets from to to (file i, the
// (i+1)th second of event time) as one data file.
func (w *clickFileWriter) write(ctx context.Context, i int, from, to int64) (iceberg.DataFile, error) {
	start := queryStart.Add(time.Duration(i) * queryCommitSpan)
	n := to - from
	step := queryCommitSpan / time.Duration(n)
	var k int64
	now := func() time.Time { return start.Add(time.Duration(k) * step) }
	g, err := gen.New(gen.Clicks, gen.Config{Seed: int64(i) + 1, MalformedRate: -1, LateRate: -1, Now: now})
	if err != nil {
		return nil, err
	}
	fw := fileio.NewWriter(w.info, w.part, fileio.Options{TargetFileSize: 1 << 40})
	flush := func() error {
		rec := w.b.NewRecordBatch()
		defer rec.Release()
		return fw.Write(rec)
	}
	for ; k < n; k++ {
		if k%queryWriteBatch == 0 && ctx.Err() != nil {
			fw.Abort()
			return nil, ctx.Err()
		}
		var class gen.Class
		w.buf, _, class = g.Next(w.buf[:0])
		if class != gen.Valid {
			fw.Abort()
			return nil, fmt.Errorf("the generator made a %s event", class)
		}
		if err := w.dec.Parse(w.buf, decode.RecordMeta{Topic: queryTopic, Offset: from + k, Timestamp: now()}); err != nil {
			fw.Abort()
			return nil, err
		}
		w.dec.Append(w.b)
		if (k+1)%queryWriteBatch == 0 {
			if err := flush(); err != nil {
				fw.Abort()
				return nil, err
			}
		}
	}
	if err := flush(); err != nil {
		fw.Abort()
		return nil, err
	}
	files, err := fw.Close(ctx)
	if err != nil {
		return nil, err
	}
	if len(files) != 1 {
		return nil, fmt.Errorf("wrote %d files, want 1", len(files))
	}
	return files[0], nil
}

// measureQueries measures the raw reads and the queries of cases on tbl,
// interleaved, Repeat times.
func measureQueries(ctx context.Context, tbl *table.Table, name string, cases []queryCase, o QueryOptions, workers int) (*queryState, error) {
	files, err := liveDataFiles(ctx, tbl)
	if err != nil {
		return nil, err
	}
	st := &queryState{name: name, files: len(files)}
	for _, f := range files {
		st.bytes += f.FileSizeBytes()
	}
	fs, err := tbl.FS(ctx)
	if err != nil {
		return nil, err
	}
	var allColumns []string
	for _, f := range tbl.Schema().Fields() {
		allColumns = append(allColumns, f.Name)
	}
	type phase struct {
		run func() (rows, files int64, err error)
	}
	var phases []phase
	st.figs = append(st.figs,
		queryFigure{label: fmt.Sprintf("raw Parquet read, %d columns", len(allColumns)), raw: -1},
		queryFigure{label: fmt.Sprintf("raw Parquet read, %d columns (%s)", len(queryColumns), strings.Join(queryColumns, ", ")), raw: -1})
	for _, cols := range [][]string{allColumns, queryColumns} {
		phases = append(phases, phase{func() (int64, int64, error) {
			rows, err := rawRead(ctx, fs, files, cols, workers)
			return rows, int64(len(files)), err
		}})
	}
	for _, qc := range cases {
		raw := 0
		if qc.projected {
			raw = 1
		}
		st.figs = append(st.figs, queryFigure{label: qc.label, raw: raw})
		phases = append(phases, phase{func() (int64, int64, error) {
			var rows int64
			qs, err := timetravel.Query(ctx, tbl, qc.req, timetravel.Limits{}, func(rec arrow.RecordBatch) error {
				rows += rec.NumRows()
				return nil
			})
			if err == nil && (qs.Rows != rows || qs.Truncated) {
				err = fmt.Errorf("the query's stats say %d rows (truncated %v), emit saw %d", qs.Rows, qs.Truncated, rows)
			}
			return rows, qs.DataFiles, err
		}})
	}
	profile := os.Getenv("FLOE_BENCH_CPUPROFILE")
	for rep := range o.Repeat {
		for i, p := range phases {
			fig := &st.figs[i]
			stopProfile := func() {}
			if rep == 0 {
				if stopProfile, err = startProfile(profile, name, fig.label); err != nil {
					return nil, err
				}
			}
			hs := sampleHeap()
			t0 := time.Now()
			rows, nfiles, err := p.run()
			wall := time.Since(t0)
			peak := hs.stop()
			stopProfile()
			if err != nil {
				return nil, fmt.Errorf("%s: %w", fig.label, err)
			}
			if rep > 0 && (rows != fig.Rows || nfiles != fig.Files) {
				return nil, fmt.Errorf("%s: %d rows from %d files, then %d rows from %d files", fig.label, fig.Rows, fig.Files, rows, nfiles)
			}
			if rep == 0 || wall < fig.Wall {
				fig.Wall = wall
			}
			fig.Rows, fig.Files, fig.Peak = rows, nfiles, max(fig.Peak, peak)
		}
	}
	return st, nil
}

// startProfile profiles the CPU to a file named after prefix, the table's
// state (or the phase) and the figure, until the returned function is
// called; with no prefix it does nothing.
func startProfile(prefix, state, label string) (func(), error) {
	if prefix == "" {
		return func() {}, nil
	}
	slug := func(s string) string {
		s = strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
				return r
			}
			return '-'
		}, strings.ToLower(s))
		for strings.Contains(s, "--") {
			s = strings.ReplaceAll(s, "--", "-")
		}
		return strings.Trim(s, "-")
	}
	name := prefix + "." + slug(state)
	if label != "" {
		name += "." + slug(label)
	}
	f, err := os.Create(name + ".pprof")
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}, nil
}

// liveDataFiles returns the data files of tbl's current snapshot.
func liveDataFiles(ctx context.Context, tbl *table.Table) ([]iceberg.DataFile, error) {
	scan := tbl.Scan()
	defer scan.Close()
	tasks, err := scan.PlanFiles(ctx)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var files []iceberg.DataFile
	for _, t := range tasks {
		if len(t.DeleteFiles)+len(t.EqualityDeleteFiles)+len(t.DeletionVectorFiles) > 0 {
			return nil, fmt.Errorf("data file %s has deletes", t.File.FilePath())
		}
		if !seen[t.File.FilePath()] {
			seen[t.File.FilePath()] = true
			files = append(files, t.File)
		}
	}
	return files, nil
}

// rawRead reads columns of every row group of files with pqarrow on
// workers goroutines (a row group at a time, one file handle and reader
// each, the columns decoded in parallel), and returns the rows read. The
// footers are read first, in parallel, as a reader has to.
func rawRead(ctx context.Context, fs iceio.IO, files []iceberg.DataFile, columns []string, workers int) (int64, error) {
	type unit struct {
		path string
		meta *metadata.FileMetaData
		rg   int
	}
	metas := make([]*metadata.FileMetaData, len(files))
	if err := parallel(ctx, len(files), workers, func(i int) error {
		f, err := fs.Open(files[i].FilePath())
		if err != nil {
			return err
		}
		defer f.Close()
		rdr, err := file.NewParquetReader(f)
		if err != nil {
			return fmt.Errorf("%s: %w", files[i].FilePath(), err)
		}
		metas[i] = rdr.MetaData()
		return nil
	}); err != nil {
		return 0, err
	}
	var units []unit
	for i, m := range metas {
		for rg := range m.NumRowGroups() {
			units = append(units, unit{files[i].FilePath(), m, rg})
		}
	}
	var rows atomic.Int64
	err := parallel(ctx, len(units), workers, func(i int) error {
		u := units[i]
		cols := make([]int, len(columns))
		for j, name := range columns {
			if cols[j] = u.meta.Schema.ColumnIndexByName(name); cols[j] < 0 {
				return fmt.Errorf("%s has no column %q", u.path, name)
			}
		}
		f, err := fs.Open(u.path)
		if err != nil {
			return err
		}
		defer f.Close()
		rdr, err := file.NewParquetReader(f, file.WithMetadata(u.meta))
		if err != nil {
			return err
		}
		fr, err := pqarrow.NewFileReader(rdr, pqarrow.ArrowReadProperties{BatchSize: queryBatchRows, Parallel: true}, memory.DefaultAllocator)
		if err != nil {
			return err
		}
		rr, err := fr.GetRecordReader(ctx, cols, []int{u.rg})
		if err != nil {
			return err
		}
		defer rr.Release()
		for rr.Next() {
			rows.Add(rr.RecordBatch().NumRows())
		}
		if err := rr.Err(); err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		return nil
	})
	return rows.Load(), err
}

// parallel runs f(0) to f(n-1) on workers goroutines, stopping at the
// first error.
func parallel(ctx context.Context, n, workers int, f func(int) error) error {
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		firstErr error
		once     sync.Once
		failed   atomic.Bool
	)
	for range min(workers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !failed.Load() {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				err := ctx.Err()
				if err == nil {
					err = f(i)
				}
				if err != nil {
					once.Do(func() { firstErr = err })
					failed.Store(true)
				}
			}
		}()
	}
	wg.Wait()
	return firstErr
}

// heapSampler records the peak size of the heap's objects.
type heapSampler struct {
	quit, done chan struct{}
	// base is the heap before the phase, peak its peak during it.
	base, peak uint64
}

// sampleHeap collects garbage (twice: a sync.Pool keeps its objects
// through one collection), then samples the heap every heapSampleEvery
// until stop.
func sampleHeap() *heapSampler {
	runtime.GC()
	runtime.GC()
	s := &heapSampler{quit: make(chan struct{}), done: make(chan struct{})}
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(sample)
	s.base = sample[0].Value.Uint64()
	go func() {
		defer close(s.done)
		t := time.NewTicker(heapSampleEvery)
		defer t.Stop()
		for {
			metrics.Read(sample)
			s.peak = max(s.peak, sample[0].Value.Uint64())
			select {
			case <-s.quit:
				metrics.Read(sample)
				s.peak = max(s.peak, sample[0].Value.Uint64())
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// stop ends the sampling and returns the peak above the heap before the
// phase.
func (s *heapSampler) stop() uint64 {
	close(s.quit)
	<-s.done
	lastBase.Store(s.base)
	return s.peak - min(s.base, s.peak)
}

// lastBase is the heap before the last phase sampled.
var lastBase atomic.Uint64

// countOf writes n things: "1 file", "3 files".
func countOf(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}

func fmtMiB(b uint64) string {
	switch {
	case b >= 100<<20:
		return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20))
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
	}
	return fmt.Sprintf("%.0f KiB", float64(b)/(1<<10))
}
