package bench

// `floe bench soak` runs one `floe serve` process for a long time (an hour
// by default, a day for the real thing) at a steady produce rate with
// 1-second commits and table maintenance on at its defaults, and watches
// whether anything degrades as the table ages:
//
//	(1) commit latency p50/p99 over each sample interval, from the deltas
//	    of the child's floe_commit_duration_seconds histogram between two
//	    samples (interpolated within its buckets, as histogram_quantile
//	    does: the figures are no finer than the buckets);
//	(2) freshness p99 over each interval, of floe_commit_freshness_seconds
//	    scraped every second: the age of the newest record of the last
//	    committed snapshot, as of its commit, which is how stale the
//	    freshest data a reader sees is (the oldest record of a snapshot
//	    waited up to a commit interval more: `floe bench` measures that
//	    end to end); when no snapshot was committed for more than 5 s, a
//	    scrape counts the time since the last one on top, so a stalled
//	    writer shows as staleness, not as its last good figure;
//	(3) the table's shape, from the floe_table_* gauges the maintainer sets
//	    at every compaction check (every 10 s): the most live data files a
//	    partition holds, the live data files and bytes, the metadata file's
//	    bytes and the snapshots retained; and, from this process's own plan
//	    of the table, the most small files (below three quarters of
//	    compaction.target_file_size, the files compaction may still
//	    rewrite) a partition holds, which must stay bounded however much
//	    data the table holds (it counts the files committed since the last
//	    compaction too: up to 10 s of commits, a file per topic partition
//	    each);
//	(4) the time to plan the whole table (tbl.Scan().PlanFiles on a table
//	    loaded from the catalog in this process) and, separately, to read
//	    every planned file, counting rows by record batches; by default
//	    only the ts column is read (--scan-columns): what fragmentation
//	    costs a reader is per file (opens, footers, row groups), and a scan
//	    of every column of a day's data every minute would take the CPUs
//	    the measured process needs. The scan's time per million rows is
//	    the figure that must stay flat: the scan itself grows with the data;
//	(5) the floe process's RSS (process_resident_memory_bytes) and, at the
//	    end, its peak RSS (VmHWM).
//
// At the end it prints, for every figure, the ratio of its mean over the
// last 10 minutes to its mean over minutes 15–25 (after the first expiry
// tier, every snapshot of the last 10 minutes, has filled and the first
// snapshots older than it have been expired), beside the target 1.2. A run
// too short for both windows (under 35 minutes: the CI run) compares the
// last third with the middle third instead, and says so. Some figures grow
// with the data the table holds, whatever maintenance does (live data files,
// the full scan); the summary prints the growth of the data beside them.
// Nothing is asserted: figures are printed next to their limits. A PNG
// (--png) plots every figure over the run, one panel each.
//
// The table is partitioned by hour(ts). Every partition then receives one
// file per writer and commit for a whole hour, 3,600 commits, which is long
// enough for compaction to climb every size tier up to the target size
// (about 512 MiB) and for the first expiry tier to fill many times over;
// a day's run rotates through 24 partitions, so it also shows that a
// partition the hour has moved past ends up compacted, and that planning
// cost does not grow with partitions nobody writes any more. day(ts), the
// other benchmarks' partitioning, would make a one-hour run a table of one
// partition; an unpartitioned table never rotates at all. Late and
// malformed events are off: a late event lands in an older partition (the
// generator makes them up to 30 hours late), which spreads every commit over
// some thirty partitions, a different workload from the steady one measured
// here; and the dead-letter table would stay all but empty anyway.
//
// Every setting is floe's default except commit_interval (1 s): the
// benchmark measures the maintenance defaults and shortens nothing. The
// broker (kfake) and the producer run in the benchmark process, floe in a
// `floe serve` child process with the embedded SQLite catalog and warehouse
// in its data directory, which this process opens to plan and scan the
// table. Every 10 s the benchmark deletes the records the node has
// committed from the in-memory broker, which would otherwise hold every
// record of the run: below the node's consumer group offsets, which floe
// commits for monitoring (the lowest over the table and its dead-letter
// table, so they advance with the latter's idle commits, every half minute
// or so). The benchmark's own scans share the machine's CPUs with
// the floe process, which the figures of a small machine show.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/apache/iceberg-go/table"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floelake/floe/catalog"
	"github.com/floelake/floe/commit"
	"github.com/floelake/floe/internal/clock"
	"github.com/floelake/floe/internal/gen"
	"github.com/floelake/floe/internal/procrig"
	"github.com/floelake/floe/internal/schema"
	"github.com/floelake/floe/maintain"
)

// SoakOptions tune `floe bench soak`.
type SoakOptions struct {
	// Duration is how long records are produced and the node measured.
	Duration time.Duration
	// Sample is the interval of a sample row.
	Sample time.Duration
	// Rate is the steady produce rate, records per second.
	Rate       int
	Partitions int
	// ScanColumns are the columns the timed full scan reads; none: every
	// column.
	ScanColumns []string
	// PNG is the plot written at the end ("" writes none).
	PNG string
	// DataDir is the scratch directory; default a temporary one, removed after.
	DataDir string
	// Exe is the floe binary the node runs; default this executable.
	Exe string
}

// DefaultSoakOptions are the figures the README quotes.
func DefaultSoakOptions() SoakOptions {
	return SoakOptions{
		Duration:    time.Hour,
		Sample:      time.Minute,
		Rate:        20_000,
		Partitions:  8,
		ScanColumns: []string{"ts"},
		PNG:         "soak.png",
	}
}

// The target of every figure: its mean over the late window at most this
// many times its mean over the reference window.
const targetSoakRatio = 1.2

const (
	soakTopic       = "soak"
	soakPipeline    = "soak"
	soakTable       = "bench.soak"
	soakClientID    = "floe-bench-soak"
	soakPartitionBy = "hour(ts)"
	soakCommitEvery = time.Second
	// scrapeEvery is how often the freshness gauge is read.
	scrapeEvery = time.Second
	// stallAfter: with no new snapshot for longer, a freshness scrape adds
	// the time since the last one.
	stallAfter = 5 * time.Second
	// trimEvery is how often committed records are deleted from the broker.
	trimEvery = 10 * time.Second
	// drainWait bounds the wait, after the producer stops, for everything
	// produced to be committed.
	drainWait = 2 * time.Minute
)

// The windows of the summary's ratios: the late window is the last
// lateWindow of the run, the reference window minutes refFrom to refTo.
const (
	refFrom    = 15 * time.Minute
	refTo      = 25 * time.Minute
	lateWindow = 10 * time.Minute
)

// soakSample is one sample row: figures over the interval ending at At
// (since the producer started), or as of At.
type soakSample struct {
	At, Interval time.Duration
	// Commits and Committed are the snapshots committed and the rows they
	// made visible during the interval.
	Commits   int
	Committed float64
	// CommitP50, CommitP99 and FreshP99 are seconds; NaN: no commit, or no
	// freshness reading, in the interval.
	CommitP50, CommitP99, FreshP99 float64
	// From the floe_table_* gauges.
	MaxFilesPerPartition, DataFiles, Partitions, Snapshots int
	DataBytes, MetadataBytes                               int64
	// MaxSmallPerPartition is from this process's plan.
	MaxSmallPerPartition int
	// Plan and Scan are -1 when the plan or the scan failed.
	Plan, Scan time.Duration
	Rows       int64
	RSS        int64
}

// ScanPerMRows is the scan time per million rows read, in seconds (NaN
// for an empty table).
func (s soakSample) ScanPerMRows() float64 {
	if s.Rows == 0 || s.Scan < 0 {
		return math.NaN()
	}
	return s.Scan.Seconds() / (float64(s.Rows) / 1e6)
}

// soakFigure is one figure of the summary and one panel of the plot.
type soakFigure struct {
	name   string
	get    func(soakSample) float64
	format func(float64) string
	// note is printed beside the ratio: why the figure may grow with the
	// data.
	note string
}

func soakFigures() []soakFigure {
	return []soakFigure{
		{name: "commit latency p50", get: func(s soakSample) float64 { return s.CommitP50 }, format: fmtSeconds},
		{name: "commit latency p99", get: func(s soakSample) float64 { return s.CommitP99 }, format: fmtSeconds},
		{name: "freshness p99", get: func(s soakSample) float64 { return s.FreshP99 }, format: fmtSeconds},
		{name: "files per partition (max)", get: func(s soakSample) float64 { return float64(s.MaxFilesPerPartition) }, format: fmtCount,
			note: "target-size files accumulate until the hour turns"},
		{name: "small files per partition (max)", get: func(s soakSample) float64 { return float64(s.MaxSmallPerPartition) }, format: fmtCount},
		{name: "live data files", get: func(s soakSample) float64 { return float64(s.DataFiles) }, format: fmtCount,
			note: "target-size files accumulate with the data"},
		{name: "data bytes", get: func(s soakSample) float64 { return float64(s.DataBytes) }, format: fmtBytes,
			note: "the table's data: the reference of the others"},
		{name: "metadata bytes", get: func(s soakSample) float64 { return float64(s.MetadataBytes) }, format: fmtBytes},
		{name: "snapshots retained", get: func(s soakSample) float64 { return float64(s.Snapshots) }, format: fmtCount},
		{name: "plan whole table", get: func(s soakSample) float64 { return seconds(s.Plan) }, format: fmtSeconds,
			note: "one manifest entry per live data file"},
		{name: "scan whole table", get: func(s soakSample) float64 { return seconds(s.Scan) }, format: fmtSeconds,
			note: "reads every row"},
		{name: "scan per million rows", get: soakSample.ScanPerMRows, format: fmtSeconds},
		{name: "floe RSS", get: func(s soakSample) float64 { return float64(s.RSS) }, format: fmtBytes},
	}
}

// seconds is d in seconds; NaN for a negative d (not measured).
func seconds(d time.Duration) float64 {
	if d < 0 {
		return math.NaN()
	}
	return d.Seconds()
}

// RunSoak runs the soak and prints its report.
func RunSoak(ctx context.Context, o SoakOptions, out io.Writer) error {
	switch {
	case o.Rate < 1:
		return errors.New("bench soak: --rate must be at least 1")
	case o.Partitions < 1:
		return errors.New("bench soak: --partitions must be at least 1")
	case o.Sample < 5*time.Second:
		return errors.New("bench soak: --sample must be at least 5s")
	case o.Duration < 3*o.Sample:
		return errors.New("bench soak: --duration must be at least three --sample intervals")
	}
	dir, exe, cleanup, err := workspace(o.DataDir, "floe-bench-soak-", o.Exe)
	if err != nil {
		return err
	}
	defer cleanup()
	broker, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(int32(o.Partitions), soakTopic))
	if err != nil {
		return err
	}
	defer broker.Close()
	addr := broker.ListenAddrs()[0]

	s, err := newSoak(ctx, o, dir, exe, addr)
	if err != nil {
		return fmt.Errorf("bench soak: %w", err)
	}
	defer s.close()
	s.header(out)
	if err := s.run(ctx, out); err != nil {
		s.rig.LogTails(os.Stderr, 40)
		return fmt.Errorf("bench soak: %w", err)
	}
	return nil
}

// soak is one run: the node, its catalog as this process reads it, and
// the samples so far.
type soak struct {
	o       SoakOptions
	broker  string
	rig     *procrig.Rig
	member  *procrig.Member
	cat     *catalog.Catalog
	maint   maintain.Config
	figures []soakFigure

	samples []soakSample
	// fresh collects the freshness readings of the current interval.
	mu    sync.Mutex
	fresh []float64
}

func newSoak(ctx context.Context, o SoakOptions, dir, exe, broker string) (*soak, error) {
	level := os.Getenv("FLOE_BENCH_LOG_LEVEL")
	if level == "" {
		level = "info"
	}
	r, err := procrig.New(procrig.Options{
		Bin: exe, Dir: dir, Members: 1,
		Member: procrig.MemberConfig{
			LogLevel: level, Brokers: []string{broker}, ClientID: soakClientID, Catalog: catalog.DefaultConfig(),
			Pipeline: procrig.Pipeline{
				Name: soakPipeline, Topic: soakTopic, Table: soakTable, Start: "earliest",
				CommitInterval: soakCommitEvery, PartitionBy: []string{soakPartitionBy},
			},
		},
	})
	if err != nil {
		return nil, err
	}
	m := r.Members()[0]
	cfg, err := m.Config().Parse()
	if err != nil {
		return nil, err
	}
	// The node's own configuration: the embedded catalog in its data dir.
	cat, err := catalog.Open(ctx, cfg.Catalog, cfg.Storage, cfg.Node.DataDir)
	if err != nil {
		return nil, err
	}
	sch := gen.Schema(gen.Clicks)
	spec, err := schema.Partition([]string{soakPartitionBy}, sch)
	if err == nil {
		_, _, err = catalog.EnsureTable(ctx, cat, catalog.Ident(soakTable), sch, spec, nil)
	}
	if err != nil {
		_ = cat.Close()
		return nil, err
	}
	return &soak{o: o, broker: broker, rig: r, member: m, cat: cat, maint: cfg.Maintenance, figures: soakFigures()}, nil
}

func (s *soak) close() {
	s.rig.Close(90 * time.Second)
	_ = s.cat.Close()
}

func (s *soak) header(out io.Writer) {
	o, mc := s.o, s.maint
	fmt.Fprintf(out, "floe bench soak: %d click records/s (~220 bytes, 10 columns; no late or malformed events), %d partitions, commit interval %s, partition_by [%s], for %s, a sample every %s\n",
		o.Rate, o.Partitions, soakCommitEvery, soakPartitionBy, fmtDuration(o.Duration), fmtDuration(o.Sample))
	fmt.Fprintf(out, "maintenance at its defaults: compaction%s every %s and after every %d committed files (target %s, fan-in %d, at most %d small files per partition); expiry%s every %s (keeping %s); orphans%s every %s (grace %s)\n",
		off(mc.Compaction.Enabled), fmtDuration(mc.Compaction.Every.D()), mc.Compaction.FanIn, fmtBytes(float64(mc.Compaction.TargetFileSize)), mc.Compaction.FanIn, mc.Compaction.MaxSmallFiles,
		off(mc.Expiry.Enabled), fmtDuration(mc.Expiry.Every.D()), tiersString(mc.Expiry.Keep),
		off(mc.Orphans.Enabled), fmtDuration(mc.Orphans.Every.D()), fmtDuration(mc.Orphans.Grace.D()))
	cols := "every column"
	if len(o.ScanColumns) > 0 {
		cols = "column " + strings.Join(o.ScanColumns, ", ")
	}
	fmt.Fprintf(out, "this machine has %d CPUs (load average %s), shared by the floe process, the broker, the producer and this process's plans and scans (%s)\n",
		runtime.NumCPU(), loadAvg(), cols)
}

// off marks a task that is disabled.
func off(enabled bool) string {
	if enabled {
		return ""
	}
	return " (OFF)"
}

func tiersString(tiers []maintain.Tier) string {
	var parts []string
	for _, t := range tiers {
		if t.Every.D() == 0 {
			parts = append(parts, "all for "+fmtDuration(t.For.D()))
		} else {
			parts = append(parts, fmt.Sprintf("one per %s for %s", fmtDuration(t.Every.D()), fmtDuration(t.For.D())))
		}
	}
	return strings.Join(parts, ", ")
}

// fmtDuration prints whole days and hours as such (24h as 1d).
func fmtDuration(d time.Duration) string {
	switch {
	case d >= 24*time.Hour && d%(24*time.Hour) == 0:
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	case d >= time.Hour && d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d >= time.Minute && d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return d.String()
}

func (s *soak) run(ctx context.Context, out io.Writer) error {
	o := s.o
	if err := s.rig.Start(s.member); err != nil {
		return err
	}
	if err := s.rig.WaitFor(ctx, 100*time.Millisecond, time.Minute, "the floe process to be ready", func() (bool, string) {
		return procrig.Ready(ctx, s.member)
	}); err != nil {
		return err
	}

	// The producer, the broker trimmer and the freshness scraper run until
	// the sampling ends.
	bg, stopBG := context.WithCancel(ctx)
	defer stopBG()
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.broker), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		return err
	}
	defer cl.Close()
	stats := new(gen.ProducerStats)
	prodDone := make(chan error, 1)
	start := time.Now()
	go func() {
		prodDone <- gen.Produce(bg, cl, gen.ProducerConfig{Topic: soakTopic, Kind: gen.Clicks, Rate: o.Rate,
			Gen: gen.Config{Seed: 5, MalformedRate: -1, LateRate: -1}}, stats)
	}()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); trimBroker(bg, s.broker) }()
	go func() { defer wg.Done(); s.scrapeFreshness(bg) }()
	defer wg.Wait()

	fmt.Fprintf(out, "\n%s\n", sampleHeader())
	prev, err := scrapeMetrics(ctx, s.member.HTTPAddr())
	if err != nil {
		return err
	}
	interrupted := false
	scanErrs := 0
	var last time.Duration
	for next := o.Sample; next <= o.Duration; next += o.Sample {
		if err := s.rig.CheckAlive(); err != nil {
			return err
		}
		if err := clock.Sleep(ctx, time.Until(start.Add(next))); err != nil {
			interrupted = true
			break
		}
		select {
		case err := <-prodDone:
			return fmt.Errorf("the producer stopped: %v", err)
		default:
		}
		cur, err := s.scrapeRetrying(ctx)
		if err != nil {
			if ctx.Err() != nil {
				interrupted = true
				break
			}
			return err
		}
		// Whole seconds: a sample taken a few milliseconds after 15:00
		// belongs to the interval ending at 15:00, not to the window after.
		at := time.Since(start).Round(time.Second)
		smp := sampleFrom(prev, cur, s.takeFresh())
		prev = cur
		if err := s.planAndScan(ctx, &smp); err != nil {
			if ctx.Err() != nil {
				interrupted = true
				break
			}
			// A day-long run goes on; the failures are reported at the end.
			smp.Plan, smp.Scan, smp.Rows = -1, -1, 0
			scanErrs++
			fmt.Fprintf(out, "%s: planning or scanning the table failed: %v\n", fmtElapsed(time.Since(start)), err)
		}
		smp.At = at
		smp.Interval = smp.At - last
		last = smp.At
		s.samples = append(s.samples, smp)
		fmt.Fprintln(out, smp.row())
		// A plan and scan longer than the interval skips the samples it
		// ran over.
		for start.Add(next + o.Sample).Before(time.Now()) {
			next += o.Sample
		}
	}
	stopBG()
	prodErr := <-prodDone
	acked := stats.Produced.Load()
	elapsed := time.Since(start)
	wg.Wait()
	if prodErr != nil {
		return fmt.Errorf("the producer failed: %w", prodErr)
	}

	// The final steps run even after an interrupt, within their own limits.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), drainWait+2*time.Minute)
	defer cancel()
	if interrupted {
		fmt.Fprintf(out, "\ninterrupted after %s\n", elapsed.Round(time.Second))
	}
	drained, rows, inTopic, err := s.drain(fctx)
	if err != nil {
		return err
	}
	final, _ := scrapeMetrics(fctx, s.member.HTTPAddr())
	stopErr := s.rig.Stop(s.member, 90*time.Second)
	peak := s.rig.PeakRSS()

	// The topic's end offsets count every record produced, also those
	// whose acknowledgement the producer's stop cut short.
	produced := max(inTopic, acked)
	fmt.Fprintf(out, "\nproduced %d records in %s (%.0f/s); ", produced, elapsed.Round(time.Second), float64(produced)/elapsed.Seconds())
	var failed []string
	switch {
	case drained < 0:
		fmt.Fprintf(out, "NOT all committed within %s of the producer stopping: the table holds %d rows, the topic %d records\n", drainWait, rows, inTopic)
		failed = append(failed, fmt.Sprintf("not everything produced was committed within %s", drainWait))
	case rows != inTopic:
		fmt.Fprintf(out, "committed up to the end offsets, but the table holds %d rows and the topic %d records\n", rows, inTopic)
		failed = append(failed, fmt.Sprintf("the table holds %d rows, the topic %d records", rows, inTopic))
	default:
		fmt.Fprintf(out, "all committed %s after the producer stopped: the table holds %d rows, as many as the topic holds records\n", drained.Round(10*time.Millisecond), rows)
	}
	if final != nil {
		fmt.Fprintln(out, maintenanceLine(final))
	}
	fmt.Fprintf(out, "peak RSS of the floe process (VmHWM): %.0f MiB\n", float64(peak)/(1<<20))
	if stopErr != nil {
		fmt.Fprintf(out, "the floe process did not stop cleanly: %v\n", stopErr)
		failed = append(failed, "the floe process did not stop cleanly")
	}
	if scanErrs > 0 {
		failed = append(failed, fmt.Sprintf("%d of the samples could not plan or scan the table", scanErrs))
	}
	printSoakSummary(out, s.figures, s.samples)
	if o.PNG != "" && len(s.samples) > 0 {
		if err := writeSoakPNG(o.PNG, s.figures, s.samples, o); err != nil {
			return err
		}
		fmt.Fprintf(out, "plot: %s\n", o.PNG)
	}
	if len(failed) > 0 {
		return errors.New(strings.Join(failed, "; "))
	}
	return nil
}

// drain waits until the table's offsets reach the topic's end offsets and
// returns how long that took (<0: not within drainWait), the rows the
// table holds and the records the topic holds.
func (s *soak) drain(ctx context.Context) (time.Duration, int64, int64, error) {
	ends, err := topicEnds(ctx, s.broker, soakTopic)
	if err != nil {
		return 0, 0, 0, err
	}
	inTopic := sumOffsets(ends)
	start := time.Now()
	var rows int64
	err = s.rig.WaitFor(ctx, 200*time.Millisecond, drainWait, "everything produced to be committed", func() (bool, string) {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		tbl, err := s.cat.LoadTable(cctx, catalog.Ident(soakTable))
		if err != nil {
			return false, err.Error()
		}
		if snap := tbl.CurrentSnapshot(); snap != nil && snap.Summary != nil {
			rows, _ = strconv.ParseInt(snap.Summary.Properties["total-records"], 10, 64)
		}
		off, _, found, err := commit.TableOffsets(tbl, soakPipeline)
		if err != nil {
			return false, err.Error()
		}
		if found && procrig.Reached(off[soakTopic], ends) {
			return true, ""
		}
		return false, fmt.Sprintf("table %v, end %v", off[soakTopic], ends)
	})
	if err != nil {
		if s.rig.CheckAlive() != nil || ctx.Err() != nil {
			return 0, rows, inTopic, err
		}
		return -1, rows, inTopic, nil
	}
	return time.Since(start), rows, inTopic, nil
}

// scrapeRetrying reads the process's /metrics, trying three times a second
// apart: a busy moment of the process must not end a day-long run.
func (s *soak) scrapeRetrying(ctx context.Context) (metricSet, error) {
	var err error
	for range 3 {
		var m metricSet
		if m, err = scrapeMetrics(ctx, s.member.HTTPAddr()); err == nil {
			return m, nil
		}
		if clock.Sleep(ctx, time.Second) != nil {
			break
		}
	}
	return nil, fmt.Errorf("reading the floe process's metrics: %w", err)
}

// scrapeFreshness reads the freshness gauge every second into s.fresh.
func (s *soak) scrapeFreshness(ctx context.Context) {
	t := time.NewTicker(scrapeEvery)
	defer t.Stop()
	var lastCount float64
	var lastChange time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		m, err := scrapeMetrics(ctx, s.member.HTTPAddr())
		if err != nil {
			continue
		}
		v, ok := m.value("floe_commit_freshness_seconds", "table", soakTable)
		if !ok {
			continue
		}
		now := time.Now()
		if n, _ := m.value("floe_commit_snapshots_total", "table", soakTable); n != lastCount || lastChange.IsZero() {
			lastCount, lastChange = n, now
		}
		if since := now.Sub(lastChange); since > stallAfter {
			v += since.Seconds()
		}
		s.mu.Lock()
		s.fresh = append(s.fresh, v)
		s.mu.Unlock()
	}
}

func (s *soak) takeFresh() []float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.fresh
	s.fresh = nil
	return f
}

// trimBroker deletes, every trimEvery, the records below the node's
// consumer group offsets from the broker.
func trimBroker(ctx context.Context, broker string) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker))
	if err != nil {
		return
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	t := time.NewTicker(trimEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		resp, err := adm.FetchOffsets(cctx, soakClientID)
		if err == nil {
			offs := kadm.Offsets{}
			resp.Offsets().Each(func(o kadm.Offset) {
				if o.Topic == soakTopic && o.At > 0 {
					offs.Add(kadm.Offset{Topic: o.Topic, Partition: o.Partition, At: o.At, LeaderEpoch: -1})
				}
			})
			if len(offs) > 0 {
				_, _ = adm.DeleteRecords(cctx, offs)
			}
		}
		cancel()
	}
}

// planAndScan loads the table, times planning it and reading every planned
// file, and fills in the plan's figures.
func (s *soak) planAndScan(ctx context.Context, smp *soakSample) error {
	tbl, err := s.cat.LoadTable(ctx, catalog.Ident(soakTable))
	if err != nil {
		return err
	}
	var opts []table.ScanOption
	if len(s.o.ScanColumns) > 0 {
		opts = append(opts, table.WithSelectedFields(s.o.ScanColumns...))
	}
	scan := tbl.Scan(opts...)
	defer scan.Close()
	t0 := time.Now()
	tasks, err := scan.PlanFiles(ctx)
	if err != nil {
		return fmt.Errorf("plan: %w", err)
	}
	smp.Plan = time.Since(t0)
	smp.MaxSmallPerPartition = maxSmallPerPartition(tasks, maintain.PlanOptions{Target: int64(s.maint.Compaction.TargetFileSize)})
	t1 := time.Now()
	_, batches, err := scan.ReadTasks(ctx, tasks)
	if err != nil {
		return fmt.Errorf("scan: %w", err)
	}
	for rec, err := range batches {
		if err != nil {
			return fmt.Errorf("scan: %w", err)
		}
		smp.Rows += rec.NumRows()
		rec.Release()
	}
	smp.Scan = time.Since(t1)
	return nil
}

// maxSmallPerPartition is the most small files (see maintain.PlanOptions)
// one partition holds.
func maxSmallPerPartition(tasks []table.FileScanTask, o maintain.PlanOptions) int {
	seen := map[string]bool{}
	per := map[string]int{}
	most := 0
	for _, t := range tasks {
		p := t.File.FilePath()
		if seen[p] {
			continue
		}
		seen[p] = true
		if !o.Small(maintain.File{Size: t.File.FileSizeBytes()}) {
			continue
		}
		key := fmt.Sprint(t.File.SpecID(), t.File.Partition())
		per[key]++
		most = max(most, per[key])
	}
	return most
}

// sampleFrom computes a sample's metric figures from the scrapes at the
// start and the end of its interval and the freshness readings in between.
func sampleFrom(prev, cur metricSet, fresh []float64) soakSample {
	var smp soakSample
	b := bucketDeltas(prev.buckets("floe_commit_duration_seconds", "table", soakTable), cur.buckets("floe_commit_duration_seconds", "table", soakTable))
	smp.CommitP50, smp.CommitP99 = histQuantile(0.5, b), histQuantile(0.99, b)
	if len(b) > 0 {
		smp.Commits = int(b[len(b)-1].count)
	}
	c0, _ := prev.value("floe_commit_records_total", "table", soakTable)
	c1, _ := cur.value("floe_commit_records_total", "table", soakTable)
	smp.Committed = c1 - c0
	smp.FreshP99 = percentile(fresh, 0.99)
	gauge := func(name string) float64 {
		v, _ := cur.value(name, "table", soakTable)
		return v
	}
	smp.MaxFilesPerPartition = int(gauge("floe_table_max_files_per_partition"))
	smp.DataFiles = int(gauge("floe_table_data_files"))
	smp.Partitions = int(gauge("floe_table_partitions"))
	smp.Snapshots = int(gauge("floe_table_snapshots"))
	smp.DataBytes = int64(gauge("floe_table_data_bytes"))
	smp.MetadataBytes = int64(gauge("floe_table_metadata_bytes"))
	rss, _ := cur.value("process_resident_memory_bytes")
	smp.RSS = int64(rss)
	return smp
}

func maintenanceLine(m metricSet) string {
	v := func(name string, labels ...string) float64 {
		x, _ := m.value(name, append([]string{"table", soakTable}, labels...)...)
		return x
	}
	failed := v("floe_maintenance_failures_total", "task", "compaction") + v("floe_maintenance_failures_total", "task", "expiry") +
		v("floe_maintenance_failures_total", "task", "orphans")
	return fmt.Sprintf("maintenance over the run: %.0f compactions (%.0f files, %s rewritten), %.0f expiries (%.0f snapshots), %.0f orphan files removed, %.0f failed runs",
		v("floe_maintenance_runs_total", "task", "compaction"), v("floe_maintenance_rewritten_files_total"), fmtBytes(v("floe_maintenance_rewritten_bytes_total")),
		v("floe_maintenance_runs_total", "task", "expiry"), v("floe_maintenance_expired_snapshots_total"), v("floe_maintenance_orphan_files_total"), failed)
}

const sampleFormat = "%6s %7s %9s %10s %10s %7s %9s %10s %7s %6s %10s %10s %6s %9s %9s %9s %9s"

func sampleHeader() string {
	return fmt.Sprintf(sampleFormat, "time", "commits", "rows/s", "commit p50", "commit p99", "fresh", "files/prt", "small/prt",
		"files", "parts", "data", "metadata", "snaps", "plan", "scan", "rows", "rss") + "\n" +
		fmt.Sprintf(sampleFormat, "", "", "", "", "", "p99", "max", "max", "", "", "", "", "", "", "", "", "")
}

func (s soakSample) row() string {
	rows := "-"
	if s.Scan >= 0 {
		rows = human(float64(s.Rows))
	}
	rate := "-"
	if s.Interval > 0 {
		rate = human(s.Committed / s.Interval.Seconds())
	}
	return fmt.Sprintf(sampleFormat,
		fmtElapsed(s.At), strconv.Itoa(s.Commits), rate, fmtSeconds(s.CommitP50), fmtSeconds(s.CommitP99),
		fmtSeconds(s.FreshP99), strconv.Itoa(s.MaxFilesPerPartition), strconv.Itoa(s.MaxSmallPerPartition), strconv.Itoa(s.DataFiles),
		strconv.Itoa(s.Partitions), fmtBytes(float64(s.DataBytes)), fmtBytes(float64(s.MetadataBytes)), strconv.Itoa(s.Snapshots),
		fmtSeconds(seconds(s.Plan)), fmtSeconds(seconds(s.Scan)), rows, fmtBytes(float64(s.RSS)))
}

// ---------------------------------------------------------------------------
// Windows and ratios

// soakWindow is a span of the run; a sample belongs to it when its
// interval's end lies in (From, To].
type soakWindow struct {
	From, To time.Duration
	Label    string
}

// ratioWindows returns the reference and the late window of a run whose
// last sample ends at total, and whether they are the intended ones
// (minutes 15–25, the last 10 minutes) rather than the middle and the last
// third of a run too short for those.
func ratioWindows(total time.Duration) (ref, late soakWindow, intended bool) {
	if total >= refTo+lateWindow {
		return soakWindow{refFrom, refTo, "minutes 15-25"}, soakWindow{total - lateWindow, total, "last 10 min"}, true
	}
	return soakWindow{total / 3, 2 * total / 3, "middle third"}, soakWindow{2 * total / 3, total, "last third"}, false
}

// windowMean is the mean of get over the samples in w, ignoring NaN, and
// how many samples it averaged.
func windowMean(samples []soakSample, w soakWindow, get func(soakSample) float64) (float64, int) {
	var sum float64
	n := 0
	for _, s := range samples {
		if s.At <= w.From || s.At > w.To {
			continue
		}
		v := get(s)
		if math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		sum += v
		n++
	}
	if n == 0 {
		return math.NaN(), 0
	}
	return sum / float64(n), n
}

// soakRatio is late / ref; ok is false when it is undefined (a window
// without values, or a zero reference under a non-zero late mean).
func soakRatio(ref, late float64) (float64, bool) {
	switch {
	case math.IsNaN(ref) || math.IsNaN(late):
		return math.NaN(), false
	case ref == 0 && late == 0:
		return 1, true
	case ref == 0:
		return math.Inf(1), false
	}
	return late / ref, true
}

func printSoakSummary(out io.Writer, figures []soakFigure, samples []soakSample) {
	if len(samples) == 0 {
		fmt.Fprintln(out, "no samples: nothing to compare")
		return
	}
	total := samples[len(samples)-1].At
	ref, late, intended := ratioWindows(total)
	span := func(w soakWindow) string {
		return fmt.Sprintf("%.1f-%.1f min", w.From.Minutes(), w.To.Minutes())
	}
	if intended {
		fmt.Fprintf(out, "\nratios: mean over the last 10 minutes (%s) / mean over minutes 15-25, after the first expiry tier (all snapshots of the last 10 minutes) has filled\n", span(late))
	} else {
		fmt.Fprintf(out, "\nthe run (%s) is too short for minutes 15-25 and a last 10 minutes apart from them (it takes %s): ratios are of the LAST THIRD (%s) to the MIDDLE THIRD (%s), not the soak's windows\n",
			total.Round(time.Second), refTo+lateWindow, span(late), span(ref))
	}
	dataRef, _ := windowMean(samples, ref, func(s soakSample) float64 { return float64(s.DataBytes) })
	dataLate, _ := windowMean(samples, late, func(s soakSample) float64 { return float64(s.DataBytes) })
	dataRatio, dataOK := soakRatio(dataRef, dataLate)
	const format = "%-32s %12s %12s %8s  %-12s %s\n"
	fmt.Fprintf(out, format, "figure", ref.Label, late.Label, "ratio", "target", "")
	for _, f := range figures {
		mr, nr := windowMean(samples, ref, f.get)
		ml, nl := windowMean(samples, late, f.get)
		r, ok := soakRatio(mr, ml)
		ratio, verdict := "n/a", "<= 1.2: n/a"
		if ok {
			ratio = strconv.FormatFloat(r, 'f', 2, 64)
			verdict = "<= 1.2: ok"
			if r > targetSoakRatio {
				verdict = "<= 1.2: over"
			}
		} else if nr > 0 && nl > 0 {
			verdict = "<= 1.2: over"
		}
		note := f.note
		if note != "" && f.name != "data bytes" && dataOK {
			note = fmt.Sprintf("(%s; data bytes x%.2f)", note, dataRatio)
		} else if note != "" {
			note = "(" + note + ")"
		}
		fmt.Fprintf(out, format, f.name, f.format(mr), f.format(ml), ratio, verdict, note)
	}
}

// ---------------------------------------------------------------------------
// Percentiles

// percentile is the nearest-rank p-quantile of vs (NaN when empty).
func percentile(vs []float64, p float64) float64 {
	if len(vs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	i := int(math.Ceil(p*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// bucket is a cumulative histogram bucket: count observations at most le.
type bucket struct {
	le    float64
	count float64
}

// bucketDeltas subtracts the earlier cumulative buckets from the later
// ones (a bucket absent before counts from zero).
func bucketDeltas(prev, cur []bucket) []bucket {
	before := map[float64]float64{}
	for _, b := range prev {
		before[b.le] = b.count
	}
	out := make([]bucket, len(cur))
	for i, b := range cur {
		out[i] = bucket{b.le, b.count - before[b.le]}
	}
	return out
}

// histQuantile estimates the q-quantile of cumulative buckets sorted by
// le (the last +Inf), interpolating linearly within the bucket it falls
// in, as Prometheus's histogram_quantile does; NaN without observations.
// A quantile in the +Inf bucket is the highest finite bound.
func histQuantile(q float64, bs []bucket) float64 {
	if len(bs) == 0 {
		return math.NaN()
	}
	total := bs[len(bs)-1].count
	if total <= 0 {
		return math.NaN()
	}
	rank := q * total
	lo, below := 0.0, 0.0
	for _, b := range bs {
		if b.count >= rank {
			if math.IsInf(b.le, 1) {
				return lo
			}
			if b.count == below {
				return b.le
			}
			return lo + (b.le-lo)*(rank-below)/(b.count-below)
		}
		lo, below = b.le, b.count
	}
	return lo
}

// ---------------------------------------------------------------------------
// Prometheus text format

// metricSample is one line of a /metrics page.
type metricSample struct {
	name   string
	labels map[string]string
	value  float64
}

type metricSet []metricSample

var metricsClient = &http.Client{Timeout: 10 * time.Second}

// scrapeMetrics reads the /metrics page of the floe process at httpAddr.
func scrapeMetrics(ctx context.Context, httpAddr string) (metricSet, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+httpAddr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	// Plain text: the protobuf format is what the client library prefers.
	req.Header.Set("Accept", "text/plain")
	resp, err := metricsClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	return parseMetrics(resp.Body)
}

// parseMetrics parses the Prometheus text exposition format, skipping
// comments and lines it cannot read.
func parseMetrics(r io.Reader) (metricSet, error) {
	var out metricSet
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		if m, ok := parseMetricLine(line); ok {
			out = append(out, m)
		}
	}
	return out, sc.Err()
}

func parseMetricLine(line string) (metricSample, bool) {
	m := metricSample{labels: map[string]string{}}
	i := strings.IndexAny(line, "{ ")
	if i <= 0 {
		return m, false
	}
	m.name, line = line[:i], line[i:]
	if line[0] == '{' {
		line = line[1:]
		for {
			line = strings.TrimLeft(line, " ,")
			if strings.HasPrefix(line, "}") {
				line = line[1:]
				break
			}
			eq := strings.Index(line, `="`)
			if eq <= 0 {
				return m, false
			}
			key := strings.TrimSpace(line[:eq])
			line = line[eq+2:]
			var val strings.Builder
			closed := false
			for j := 0; j < len(line); j++ {
				c := line[j]
				if c == '\\' && j+1 < len(line) {
					j++
					switch line[j] {
					case 'n':
						val.WriteByte('\n')
					default:
						val.WriteByte(line[j])
					}
					continue
				}
				if c == '"' {
					line, closed = line[j+1:], true
					break
				}
				val.WriteByte(c)
			}
			if !closed {
				return m, false
			}
			m.labels[key] = val.String()
		}
	}
	f := strings.Fields(line)
	if len(f) == 0 {
		return m, false
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return m, false
	}
	m.value = v
	return m, true
}

func (m metricSample) has(labels []string) bool {
	for i := 0; i+1 < len(labels); i += 2 {
		if m.labels[labels[i]] != labels[i+1] {
			return false
		}
	}
	return true
}

// value is the first sample of name whose labels include labels (name,
// value pairs).
func (ms metricSet) value(name string, labels ...string) (float64, bool) {
	for _, m := range ms {
		if m.name == name && m.has(labels) {
			return m.value, true
		}
	}
	return 0, false
}

// buckets are the cumulative buckets of histogram name (its _bucket
// series whose labels include labels), sorted by le.
func (ms metricSet) buckets(name string, labels ...string) []bucket {
	var out []bucket
	for _, m := range ms {
		if m.name != name+"_bucket" || !m.has(labels) {
			continue
		}
		le, err := strconv.ParseFloat(m.labels["le"], 64)
		if err != nil {
			continue
		}
		out = append(out, bucket{le, m.value})
	}
	slices.SortFunc(out, func(a, b bucket) int {
		switch {
		case a.le < b.le:
			return -1
		case a.le > b.le:
			return 1
		}
		return 0
	})
	return out
}

// ---------------------------------------------------------------------------
// Formatting

// fmtSeconds prints seconds as 850µs, 87ms or 1.21s; "-" for NaN.
func fmtSeconds(v float64) string {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return "-"
	case v < 0.001:
		return strconv.FormatFloat(v*1e6, 'f', 0, 64) + "us"
	case v < 1:
		return strconv.FormatFloat(v*1e3, 'f', 0, 64) + "ms"
	case v < 100:
		return strconv.FormatFloat(v, 'f', 2, 64) + "s"
	}
	return strconv.FormatFloat(v, 'f', 0, 64) + "s"
}

// fmtBytes prints a size in binary units; "-" for NaN.
func fmtBytes(v float64) string {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return "-"
	case v >= 1<<30:
		return strconv.FormatFloat(v/(1<<30), 'f', 2, 64) + "GiB"
	case v >= 1<<20:
		return strconv.FormatFloat(v/(1<<20), 'f', 1, 64) + "MiB"
	case v >= 1<<10:
		return strconv.FormatFloat(v/(1<<10), 'f', 0, 64) + "KiB"
	}
	return strconv.FormatFloat(v, 'f', 0, 64) + "B"
}

// fmtElapsed prints a time since the start as minutes:seconds.
func fmtElapsed(d time.Duration) string {
	sec := int64(d.Round(time.Second) / time.Second)
	return fmt.Sprintf("%d:%02d", sec/60, sec%60)
}

// fmtCount prints a count, or a mean of counts with one decimal.
func fmtCount(v float64) string {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return "-"
	case v == math.Trunc(v):
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}
