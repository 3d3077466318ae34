// Package bench measures floe on the machine it runs on and prints each
// figure next to the limits measured in the same run:
//
//	(a) raw consume rate: franz-go fetching from the broker, no decoding;
//	(b) raw decode + Parquet write rate of the same records, no Kafka, no commit;
//	(c) floe end to end, to committed snapshots, in a separate process;
//	(d) freshness at a steady produce rate: p50/p99 of commit time − produce time;
//	(e) peak RSS of the floe process of (c) and (d).
//
// The broker (kfake) runs in the benchmark process and every measured phase
// in a child process of its own (the hidden `floe bench child` command), so
// no phase pays for the broker's heap and (e) is floe's own memory.
package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/iceberg-go"
	iceio "github.com/apache/iceberg-go/io"
	"github.com/apache/iceberg-go/table"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floelake/floe/catalog"
	"github.com/floelake/floe/ingest"
	"github.com/floelake/floe/ingest/transform"
	"github.com/floelake/floe/internal/conf"
	"github.com/floelake/floe/internal/config"
	"github.com/floelake/floe/internal/fileio"
	"github.com/floelake/floe/internal/gen"
	"github.com/floelake/floe/internal/node"
	"github.com/floelake/floe/internal/schema"
)

// Options tune the benchmark.
type Options struct {
	Records           int
	Partitions        int
	FreshnessRate     int
	FreshnessDuration time.Duration
	CommitInterval    time.Duration
	DataDir           string
	// Exe is the floe binary to run as the child; default: this executable.
	Exe string
	// Formats are the record formats to measure: json always, avro and
	// protobuf (see format.go) beside it when listed.
	Formats []string
}

// DefaultOptions are the figures the README quotes.
func DefaultOptions() Options {
	return Options{
		Records:           4_000_000,
		Partitions:        8,
		FreshnessRate:     50_000,
		FreshnessDuration: 20 * time.Second,
		CommitInterval:    time.Second,
	}
}

// Result holds the measured figures.
type Result struct {
	ConsumeRate, WriteRate, EndToEndRate float64
	// SteadyRate is (c) between its first and last commit.
	SteadyRate         float64
	FreshP50, FreshP99 time.Duration
	FreshSamples       int
	PeakRSS            int64
	Files              int
}

// Targets of the first release; printed beside the figures.
const (
	targetEndToEnd = 100_000
	targetRatio    = 0.6
	targetP99      = 3 * time.Second
	targetRSS      = 1 << 30
)

// Run runs all phases and prints the report.
func Run(ctx context.Context, o Options, out io.Writer) error {
	if o.Records < 10_000 {
		return errors.New("bench: --records must be at least 10000")
	}
	formats, err := registryFormats(o.Formats)
	if err != nil {
		return err
	}
	dir := o.DataDir
	if dir == "" {
		d, err := os.MkdirTemp("", "floe-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	exe := o.Exe
	if exe == "" {
		e, err := os.Executable()
		if err != nil {
			return err
		}
		exe = e
	}
	broker, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(int32(o.Partitions), "bench", "fresh"))
	if err != nil {
		return err
	}
	defer broker.Close()
	brokers := broker.ListenAddrs()

	fmt.Fprintf(out, "floe bench: %d records of ~200 bytes (10 columns, day-partitioned), %d partitions, GOMAXPROCS=%d\n",
		o.Records, o.Partitions, runtime.GOMAXPROCS(0))

	t0 := time.Now()
	if err := preload(ctx, brokers, o.Records); err != nil {
		return fmt.Errorf("bench: preload: %w", err)
	}
	fmt.Fprintf(out, "preloaded in %s\n", time.Since(t0).Round(time.Millisecond))

	var res Result
	cons, _, err := runChild(ctx, exe, childArgs{Mode: "consume", Brokers: brokers, Topic: "bench", Records: int64(o.Records)})
	if err != nil {
		return fmt.Errorf("bench: (a): %w", err)
	}
	res.ConsumeRate = float64(cons.Records) / cons.Elapsed.Seconds()
	fmt.Fprintf(out, "(a) raw consume               %10.0f records/s\n", res.ConsumeRate)

	off, _, err := runChild(ctx, exe, childArgs{Mode: "offline", Records: int64(o.Records), DataDir: filepath.Join(dir, "offline")})
	if err != nil {
		return fmt.Errorf("bench: (b): %w", err)
	}
	res.WriteRate, res.Files = float64(off.Records)/off.Elapsed.Seconds(), off.Files
	fmt.Fprintf(out, "(b) raw decode + Parquet write %10.0f records/s  (%d files)\n", res.WriteRate, res.Files)

	e2e, rss1, err := runChild(ctx, exe, childArgs{Mode: "e2e", Brokers: brokers, Topic: "bench", Records: int64(o.Records),
		DataDir: filepath.Join(dir, "e2e"), CommitInterval: o.CommitInterval})
	if err != nil {
		return fmt.Errorf("bench: (c): %w", err)
	}
	res.EndToEndRate = float64(e2e.Records) / e2e.Elapsed.Seconds()
	fmt.Fprintf(out, "(c) floe end to end, committed %10.0f records/s  (%d records, %d snapshots, commit interval %s)\n",
		res.EndToEndRate, e2e.Records, e2e.Commits, o.CommitInterval)
	if e2e.Steady > 0 {
		res.SteadyRate = float64(e2e.SteadyRecords) / e2e.Steady.Seconds()
		fmt.Fprintf(out, "    steady state, first to last commit %10.0f records/s  (%d records in %s)\n",
			res.SteadyRate, e2e.SteadyRecords, e2e.Steady.Round(time.Millisecond))
	}

	fresh, rss2, err := freshness(ctx, exe, brokers, dir, o)
	if err != nil {
		return fmt.Errorf("bench: (d): %w", err)
	}
	res.FreshP50, res.FreshP99, res.FreshSamples = fresh.p50, fresh.p99, fresh.n
	fmt.Fprintf(out, "(d) freshness at %d records/s: p50 %s  p99 %s  (%d sampled records, %d produced)\n",
		o.FreshnessRate, res.FreshP50.Round(time.Millisecond), res.FreshP99.Round(time.Millisecond), fresh.n, fresh.produced)
	res.PeakRSS = max(rss1, rss2)
	fmt.Fprintf(out, "(e) peak RSS of the floe process %8.0f MiB\n", float64(res.PeakRSS)/(1<<20))

	ratio := res.EndToEndRate / min(res.ConsumeRate, res.WriteRate)
	fmt.Fprintf(out, "\nratio (c) / min(a, b) = %.2f\n\n", ratio)
	fmt.Fprintf(out, "%-28s %-14s %-10s %s\n", "figure", "measured", "target", "")
	row := func(name, measured, target string, ok bool) {
		verdict := "ok"
		if !ok {
			verdict = "BELOW TARGET"
		}
		fmt.Fprintf(out, "%-28s %-14s %-10s %s\n", name, measured, target, verdict)
	}
	row("(c) end to end", fmt.Sprintf("%.0f/s", res.EndToEndRate), ">= 100000/s", res.EndToEndRate >= targetEndToEnd)
	row("(c) / min(a, b)", fmt.Sprintf("%.2f", ratio), ">= 0.6", ratio >= targetRatio)
	row("(d) freshness p99", res.FreshP99.Round(time.Millisecond).String(), "<= 3s", res.FreshP99 <= targetP99)
	row("(e) peak RSS", fmt.Sprintf("%.0f MiB", float64(res.PeakRSS)/(1<<20)), "<= 1024 MiB", res.PeakRSS <= targetRSS)
	if len(formats) > 0 {
		return runFormats(ctx, exe, brokers, dir, o, formats, res, rss1, out)
	}
	return nil
}

func preload(ctx context.Context, brokers []string, n int) error {
	return preloadTopic(ctx, brokers, "bench", n)
}

// preloadTopic produces n click events (seed 1, none malformed) to topic.
func preloadTopic(ctx context.Context, brokers []string, topic string, n int) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ProducerLinger(5*time.Millisecond),
		kgo.ProducerBatchMaxBytes(1<<20), kgo.MaxBufferedRecords(100_000))
	if err != nil {
		return err
	}
	defer cl.Close()
	return gen.Produce(ctx, cl, gen.ProducerConfig{
		Topic: topic, Kind: gen.Clicks, Limit: int64(n),
		Gen: gen.Config{Seed: 1, MalformedRate: -1},
	}, nil)
}

// consume fetches at least n records with franz-go, decoding nothing, and
// returns how many it got and how long it took.
func consume(ctx context.Context, brokers []string, topic string, n int) (int64, time.Duration, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxBytes(16<<20))
	if err != nil {
		return 0, 0, err
	}
	defer cl.Close()
	start := time.Now()
	var got int64
	for got < int64(n) {
		f := cl.PollRecords(ctx, 50_000)
		if ctx.Err() != nil {
			return 0, 0, ctx.Err()
		}
		got += int64(f.NumRecords())
	}
	return got, time.Since(start), nil
}

// writeOffline runs the pipeline's decode → route → write path on the same
// kind of records, from memory, on as many workers as the pipeline uses, and
// returns how long it took and how many files it wrote.
func writeOffline(ctx context.Context, dir string, n int) (time.Duration, int, error) {
	g, err := gen.New(gen.Clicks, gen.Config{Seed: 1, MalformedRate: -1})
	if err != nil {
		return 0, 0, err
	}
	values := make([][]byte, 100_000)
	for i := range values {
		v, _, _ := g.Next(nil)
		values[i] = v
	}
	mainInfo, err := localInfo(filepath.Join(dir, "clicks"), gen.Schema(gen.Clicks), []string{gen.PartitionSpecSQL(gen.Clicks)})
	if err != nil {
		return 0, 0, err
	}
	dlqInfo, err := localInfo(filepath.Join(dir, "dlq"), ingest.DeadLetterSchema(), nil)
	if err != nil {
		return 0, 0, err
	}
	start := time.Now()
	files, err := ingest.WriteOffline(ctx, mainInfo, dlqInfo, values, n, runtime.GOMAXPROCS(0))
	if err != nil {
		return 0, 0, err
	}
	return time.Since(start), files, nil
}

func localInfo(loc string, sch *iceberg.Schema, partitionBy []string) (fileio.TableInfo, error) {
	spec, err := schema.Partition(partitionBy, sch)
	if err != nil {
		return fileio.TableInfo{}, err
	}
	asc, err := tableArrowSchema(sch)
	if err != nil {
		return fileio.TableInfo{}, err
	}
	return fileio.TableInfo{
		FS: localFS(), Location: loc, Schema: sch, ArrowSchema: asc, Spec: spec,
		Properties: catalog.DefaultTableProperties(), FormatVersion: 2,
	}, nil
}

type freshResult struct {
	p50, p99 time.Duration
	n        int
	produced int64
}

func freshness(ctx context.Context, exe string, brokers []string, dir string, o Options) (freshResult, int64, error) {
	// The child starts consuming "fresh" from the end before we produce, so
	// every measured record waits only for floe.
	total := int64(o.FreshnessRate) * int64(o.FreshnessDuration/time.Second)
	type childOut struct {
		res childResult
		rss int64
		err error
	}
	ready := make(chan struct{})
	done := make(chan childOut, 1)
	go func() {
		r, rss, err := runChildReady(ctx, exe, childArgs{Mode: "fresh", Brokers: brokers, Topic: "fresh", Records: total,
			DataDir: filepath.Join(dir, "fresh"), CommitInterval: o.CommitInterval}, ready)
		done <- childOut{r, rss, err}
	}()
	select {
	case <-ready:
	case c := <-done:
		return freshResult{}, 0, fmt.Errorf("child exited before it was ready: %v", c.err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ProducerLinger(2*time.Millisecond))
	if err != nil {
		return freshResult{}, 0, err
	}
	defer cl.Close()
	st := new(gen.ProducerStats)
	if err := gen.Produce(ctx, cl, gen.ProducerConfig{Topic: "fresh", Kind: gen.Clicks, Rate: o.FreshnessRate, Limit: total,
		Gen: gen.Config{Seed: 2, MalformedRate: -1}}, st); err != nil {
		return freshResult{}, 0, err
	}
	c := <-done
	if c.err != nil {
		return freshResult{}, 0, c.err
	}
	lat := c.res.LatenciesMs
	if len(lat) == 0 {
		return freshResult{}, 0, errors.New("no freshness samples")
	}
	slices.Sort(lat)
	pct := func(p float64) time.Duration {
		i := min(int(p*float64(len(lat))), len(lat)-1)
		return time.Duration(lat[i] * float64(time.Millisecond))
	}
	return freshResult{p50: pct(0.50), p99: pct(0.99), n: len(lat), produced: st.Produced.Load()}, c.rss, nil
}

type childArgs struct {
	Mode           string        `json:"mode"`
	Brokers        []string      `json:"brokers"`
	Topic          string        `json:"topic"`
	Records        int64         `json:"records"`
	DataDir        string        `json:"data_dir"`
	CommitInterval time.Duration `json:"commit_interval"`
	// Upsert is set by `floe bench upsert`: for e2e, a pipeline that
	// declares the click schema (keyed or not); the upsert-* modes
	// measure keyed tables in the child.
	Upsert *upsertArgs `json:"upsert,omitempty"`
	// Transform is set by `floe bench transform`: for e2e, a pipeline that
	// declares the click schema with this transform (empty: none), run
	// until Records offsets are committed (rows or not).
	Transform *transform.Config `json:"transform,omitempty"`
	// Rate and Probes are the window-latency child's: the background
	// produce rate, and the probes of each kind.
	Rate   int `json:"rate,omitempty"`
	Probes int `json:"probes,omitempty"`
	// Format is set by --format: the records are in this registry format
	// (offline-format, and e2e into the declared click schema).
	Format *formatArgs `json:"format,omitempty"`
}

type childResult struct {
	Records int64 `json:"records"`
	// Rows are the rows committed, where Records counts offsets (a
	// transform run).
	Rows    int64         `json:"rows,omitempty"`
	Files   int           `json:"files,omitempty"`
	Commits int64         `json:"commits"`
	Elapsed time.Duration `json:"elapsed"`
	// Steady is the time between the first and the last commit that made
	// rows visible, and SteadyRecords what the commits after the first made
	// visible: the rate the pipeline sustains, without the start-up and
	// the wait for the last commit interval.
	Steady        time.Duration `json:"steady,omitempty"`
	SteadyRecords int64         `json:"steady_records,omitempty"`
	// PeakRSS is the child's VmHWM. Not the parent's wait4 rusage: on
	// Linux a child's ru_maxrss starts from the forking parent's RSS (the
	// broker's copy of the data), which would be reported as floe's.
	PeakRSS     int64     `json:"peak_rss"`
	LatenciesMs []float64 `json:"latencies_ms,omitempty"`
	// WindowLatencyMs are the window-latency child's latencies by probe
	// kind; Reopened and ReadBack its window state's totals.
	WindowLatencyMs map[string][]float64 `json:"window_latency_ms,omitempty"`
	Reopened        int64                `json:"reopened,omitempty"`
	ReadBack        int64                `json:"read_back,omitempty"`
	// Read and Index are the upsert-read and upsert-index figures.
	Read  []readPoint  `json:"read,omitempty"`
	Index *indexResult `json:"index,omitempty"`
}

func runChild(ctx context.Context, exe string, a childArgs) (childResult, int64, error) {
	return runChildReady(ctx, exe, a, nil)
}

// runChildReady runs `floe bench child` and returns its result and peak
// RSS. The child prints "ready" once it consumes, then one JSON line.
func runChildReady(ctx context.Context, exe string, a childArgs, ready chan<- struct{}) (childResult, int64, error) {
	spec, _ := json.Marshal(a)
	cmd := exec.CommandContext(ctx, exe, "bench", "child", string(spec))
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return childResult{}, 0, err
	}
	if err := cmd.Start(); err != nil {
		return childResult{}, 0, err
	}
	var res childResult
	var parseErr error
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 1<<20), 256<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "ready" {
			if ready != nil {
				close(ready)
				ready = nil
			}
			continue
		}
		if strings.HasPrefix(line, "{") {
			parseErr = json.Unmarshal([]byte(line), &res)
		}
	}
	if err := cmd.Wait(); err != nil {
		return childResult{}, 0, fmt.Errorf("floe bench child: %w", err)
	}
	if parseErr != nil {
		return childResult{}, 0, parseErr
	}
	return res, res.PeakRSS, nil
}

// Child is the hidden `floe bench child` command: a real floe node with one
// pipeline, run until it has committed the given number of records.
func Child(ctx context.Context, spec string, out io.Writer) error {
	var a childArgs
	if err := json.Unmarshal([]byte(spec), &a); err != nil {
		return err
	}
	// FLOE_BENCH_CPUPROFILE=file profiles the child, to see where an end
	// to end run spends its time.
	if path := os.Getenv("FLOE_BENCH_CPUPROFILE"); path != "" {
		f, err := os.Create(path + "." + a.Mode)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	switch a.Mode {
	case "consume":
		got, elapsed, err := consume(ctx, a.Brokers, a.Topic, int(a.Records))
		if err != nil {
			return err
		}
		return printResult(out, childResult{Records: got, Elapsed: elapsed})
	case "offline":
		elapsed, files, err := writeOffline(ctx, a.DataDir, int(a.Records))
		if err != nil {
			return err
		}
		return printResult(out, childResult{Records: a.Records, Files: files, Elapsed: elapsed})
	case "offline-format":
		res, err := writeOfflineFormat(ctx, a)
		if err != nil {
			return err
		}
		return printResult(out, res)
	case "window-latency":
		res, err := windowLatency(ctx, a, out)
		if err != nil {
			return err
		}
		return printResult(out, res)
	case "upsert-read", "upsert-index":
		res, err := upsertChild(ctx, a)
		if err != nil {
			return err
		}
		return printResult(out, res)
	}
	cfg := config.Default()
	cfg.Node.DataDir = a.DataDir
	cfg.Node.HTTPAddr = ""
	cfg.Kafka.Brokers = a.Brokers
	cfg.Kafka.Group = "floe-bench"
	// The freshness topic is empty when the child starts, so "earliest"
	// loses nothing whenever the producer begins.
	start := "earliest"
	cfg.Pipelines = []ingest.PipelineConfig{{
		Name: a.Topic, Topics: []string{a.Topic}, Table: "bench." + a.Topic, Start: start,
		CommitInterval: conf.Duration(a.CommitInterval), PartitionBy: []string{gen.PartitionSpecSQL(gen.Clicks)},
	}}
	if a.Upsert != nil {
		// The pipeline creates its table from the declared schema.
		upsertPipeline(&cfg.Pipelines[0], a.Upsert.Key, a.Upsert.FormatVersion, a.Upsert.DeleteMode)
	}
	if a.Transform != nil {
		cfg.Pipelines[0].Schema = clickColumns()
		if !a.Transform.Empty() {
			cfg.Pipelines[0].Transform = a.Transform
		}
		if a.Transform.Window != nil {
			cfg.Pipelines[0].PartitionBy = nil // a window table is not partitioned
		}
	}
	if a.Format != nil {
		a.Format.pipeline(&cfg.Pipelines[0])
	}
	cfg.FillDefaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	if a.Upsert == nil && a.Transform == nil && a.Format == nil {
		if err := ensureClicksTable(ctx, cfg); err != nil {
			return err
		}
	}

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var res childResult
	type commitAt struct {
		records, rows int64
		at            time.Time
	}
	committed := make(chan commitAt, 1024)
	var lat []float64
	n, err := newNode(runCtx, cfg, func(ev ingest.CommitEvent) {
		if ev.Table != cfg.Pipelines[0].Table {
			return
		}
		res.Commits++
		for _, ts := range ev.Samples {
			lat = append(lat, float64(ev.CommitTime.Sub(ts))/float64(time.Millisecond))
		}
		covered := ev.Records
		if a.Transform != nil {
			covered = ev.Offsets
		}
		committed <- commitAt{covered, ev.Records, ev.CommitTime}
	})
	if err != nil {
		return err
	}
	begin := time.Now()
	nodeErr := make(chan error, 1)
	go func() { nodeErr <- n.Run(runCtx) }()
	go func() {
		for runCtx.Err() == nil && n.Ready() != nil {
			time.Sleep(50 * time.Millisecond)
		}
		fmt.Fprintln(out, "ready")
	}()
	var first, last time.Time
	for res.Records < a.Records {
		select {
		case c := <-committed:
			res.Records += c.records
			res.Rows += c.rows
			if c.records > 0 {
				if first.IsZero() {
					first = c.at
				} else {
					res.SteadyRecords += c.records
				}
				last = c.at
			}
		case err := <-nodeErr:
			return fmt.Errorf("node stopped early: %v", err)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	res.Elapsed = time.Since(begin)
	res.Steady = last.Sub(first)
	stop()
	<-nodeErr
	res.LatenciesMs = lat
	return printResult(out, res)
}

// ensureClicksTable creates the table of cfg's pipeline with the schema
// the click generator's records decode into.
func ensureClicksTable(ctx context.Context, cfg config.Config) error {
	cat, err := catalog.Open(ctx, cfg.Catalog, cfg.Storage, cfg.Node.DataDir)
	if err != nil {
		return err
	}
	defer cat.Close()
	sch := gen.Schema(gen.Clicks)
	spec, err := schema.Partition(cfg.Pipelines[0].PartitionBy, sch)
	if err != nil {
		return err
	}
	_, _, err = catalog.EnsureTable(ctx, cat, catalog.Ident(cfg.Pipelines[0].Table), sch, spec, nil)
	return err
}

func printResult(out io.Writer, res childResult) error {
	res.PeakRSS = peakRSS()
	b, err := json.Marshal(res)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(out, string(b))
	return err
}

func newNode(ctx context.Context, cfg config.Config, onCommit func(ingest.CommitEvent)) (*node.Node, error) {
	return node.New(ctx, cfg, benchLogger(), node.WithOnCommit(onCommit))
}

func localFS() iceio.WriteFileIO { return iceio.LocalFS{} }

func tableArrowSchema(sch *iceberg.Schema) (*arrow.Schema, error) {
	return table.SchemaToArrowSchema(sch, nil, true, false)
}

// peakRSS reads this process's peak resident set size (VmHWM) from
// /proc/self/status; 0 where there is no /proc.
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err == nil {
				return kb * 1024
			}
		}
	}
	return 0
}
