package bench

// `floe bench transform` measures pipelines with a transform section on the
// machine it runs on: the Kafka offsets a `floe bench child` node (a cluster
// of one, maintenance at its defaults) commits per second from a preloaded
// topic of click events, for
//
//	append:          the declared click schema, no transform;
//	filter + derive: the same schema with a filter that keeps the events
//	                 of two devices of three (about 93% of them), three
//	                 computed columns (a string, a long and a boolean), a
//	                 rename and a drop.
//
// The rate counts offsets, not rows: a filtered record costs its decode and
// its filter and is committed as covered, without a row. Each run is a
// child process of its own on its own table, one after the other on the
// same records, so the runs compare the transform's cost alone.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"slices"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floelake/floe/catalog"
	"github.com/floelake/floe/ingest"
	"github.com/floelake/floe/ingest/transform"
	"github.com/floelake/floe/internal/conf"
	"github.com/floelake/floe/internal/config"
	"github.com/floelake/floe/internal/gen"
)

// TransformOptions tune `floe bench transform`.
type TransformOptions struct {
	Records        int
	Partitions     int
	CommitInterval time.Duration
	// Probes is the number of late-event latency probes of each kind,
	// ProbeRate the steady produce rate they run beside.
	Probes, ProbeRate int
	// DataDir is the scratch directory; default a temporary one, removed after.
	DataDir string
	// Exe is the floe binary the children run; default this executable.
	Exe string
}

// DefaultTransformOptions are the figures the README quotes.
func DefaultTransformOptions() TransformOptions {
	return TransformOptions{Records: 2_000_000, Partitions: 8, CommitInterval: time.Second, Probes: 10, ProbeRate: 5_000}
}

// QuickTransformOptions are a run of well under a minute, for CI.
func QuickTransformOptions() TransformOptions {
	o := DefaultTransformOptions()
	o.Records, o.CommitInterval, o.Probes, o.ProbeRate = 40_000, 250*time.Millisecond, 2, 1_000
	return o
}

// transformTopic holds the measured records of phase 1, probeTopic the
// stream of phase 2.
const (
	transformTopic = "transform"
	probeTopic     = "probes"
)

// benchTransform is the filter and derive transform of the measured run.
func benchTransform() *transform.Config {
	return &transform.Config{
		Filter: `device != "tablet"`,
		Columns: []transform.Column{
			{Name: "region", Expr: `country in ["DE", "FR", "GB", "PL", "IT", "ES", "NL"] ? "eu" : "other"`},
			{Name: "revenue_cents", Expr: `revenue != null ? int(revenue * 100.0) : dyn(null)`, Type: "long"},
			{Name: "long_visit", Expr: `duration_ms != null && duration_ms > 30000`},
		},
		Rename: map[string]string{"referrer": "referrer_url"},
		Drop:   []string{"session_id"},
	}
}

type transformRun struct {
	label string
	tr    *transform.Config
	res   childResult
}

func (r transformRun) rate() float64 { return float64(r.res.Records) / r.res.Elapsed.Seconds() }

// RunTransform runs every phase and prints the report.
func RunTransform(ctx context.Context, o TransformOptions, out io.Writer) error {
	switch {
	case o.Records < 10_000:
		return errors.New("bench transform: --records must be at least 10000")
	case o.Partitions < 1:
		return errors.New("bench transform: --partitions must be at least 1")
	case o.CommitInterval < ingest.MinCommitInterval:
		return fmt.Errorf("bench transform: --commit-interval must be at least %s", ingest.MinCommitInterval)
	case o.Probes < 1 || o.ProbeRate < 1:
		return errors.New("bench transform: --probes and --probe-rate must be at least 1")
	}
	dir, exe, cleanup, err := workspace(o.DataDir, "floe-bench-transform-", o.Exe)
	if err != nil {
		return err
	}
	defer cleanup()
	broker, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(int32(o.Partitions), transformTopic, probeTopic))
	if err != nil {
		return err
	}
	defer broker.Close()
	addr := broker.ListenAddrs()[0]
	fmt.Fprintf(out, "floe bench transform: %d click records of ~220 bytes (10 columns, day-partitioned), %d partitions, commit interval %s\n",
		o.Records, o.Partitions, o.CommitInterval)
	fmt.Fprintf(out, "this machine has %d CPUs (runtime.NumCPU; load average %s), shared by the broker, the producer and the measured process\n\n",
		runtime.NumCPU(), loadAvg())
	if err := preloadTopic(ctx, []string{addr}, transformTopic, o.Records); err != nil {
		return fmt.Errorf("bench transform: produce: %w", err)
	}
	runs := []transformRun{
		{label: "append (declared schema, no transform)", tr: &transform.Config{}},
		{label: "filter + derive (3 computed columns, rename, drop)", tr: benchTransform()},
		{label: "windowed aggregate (1-minute tumbling, by country, 4 aggregates)", tr: benchWindow(transform.DefaultRetention)},
	}
	fmt.Fprintf(out, "(1) throughput, end to end: Kafka offsets committed per second (a filtered record is committed as covered, without a row)\n")
	for i := range runs {
		r := &runs[i]
		res, _, err := runChild(ctx, exe, childArgs{Mode: "e2e", Brokers: []string{addr}, Topic: transformTopic, Records: int64(o.Records),
			DataDir: filepath.Join(dir, fmt.Sprintf("run%d", i)), CommitInterval: o.CommitInterval, Transform: r.tr})
		if err != nil {
			return fmt.Errorf("bench transform: %s: %w", r.label, err)
		}
		r.res = res
		rows := fmt.Sprintf("%d rows", res.Rows)
		if r.tr.Window != nil {
			rows = "their records folded into windows"
		}
		fmt.Fprintf(out, "  %-66s %9.0f records/s  (%d offsets, %s, in %s; %d snapshots; peak RSS %.0f MiB)\n",
			r.label, r.rate(), res.Records, rows, res.Elapsed.Round(10*time.Millisecond), res.Commits, float64(res.PeakRSS)/(1<<20))
	}
	fmt.Fprintf(out, "\n(2) late-event latency: %d probes of each kind beside %d on-time records/s; produce → the row visible in the table (scanned every 20ms), a late event's the row corrected; state retention %s\n",
		o.Probes, o.ProbeRate, probeRetention)
	lat, _, err := runChild(ctx, exe, childArgs{Mode: "window-latency", Brokers: []string{addr}, Topic: probeTopic,
		DataDir: filepath.Join(dir, "latency"), CommitInterval: o.CommitInterval, Transform: benchWindow(probeRetention),
		Rate: o.ProbeRate, Probes: o.Probes})
	if err != nil {
		return fmt.Errorf("bench transform: late-event latency: %w", err)
	}
	p50 := map[string]time.Duration{}
	for _, kind := range probeKinds {
		ms := slices.Clone(lat.WindowLatencyMs[kind])
		if len(ms) == 0 {
			return fmt.Errorf("bench transform: no %q probes", kind)
		}
		slices.Sort(ms)
		d := func(v float64) time.Duration {
			return time.Duration(v * float64(time.Millisecond)).Round(time.Millisecond)
		}
		p50[kind] = d(ms[len(ms)/2])
		fmt.Fprintf(out, "  %-26s p50 %8s  max %8s  (%d probes)\n", kind, p50[kind], d(ms[len(ms)-1]), len(ms))
	}
	fmt.Fprintf(out, "  window state: %d windows re-opened, %d read back from the table\n", lat.Reopened, lat.ReadBack)

	fmt.Fprintf(out, "\nsummary\n")
	fmt.Fprintf(out, "| figure | measured |\n|---|---|\n")
	base := runs[0].rate()
	for _, r := range runs {
		ratio := ""
		switch {
		case r.tr.Window != nil && base > 0:
			ratio = fmt.Sprintf(" (%.2f× append)", r.rate()/base)
		case !r.tr.Empty() && base > 0:
			ratio = fmt.Sprintf(" (%.2f× append; %.1f%% of the records kept)", r.rate()/base, 100*float64(r.res.Rows)/float64(max(r.res.Records, 1)))
		}
		fmt.Fprintf(out, "| (1) %s | %.0fk records/s%s |\n", r.label, r.rate()/1000, ratio)
	}
	for _, kind := range probeKinds {
		extra := ""
		if kind != probeOnTime {
			extra = fmt.Sprintf(" (%+d ms against on time)", (p50[kind] - p50[probeOnTime]).Milliseconds())
		}
		fmt.Fprintf(out, "| (2) latency to the row visible, %s, p50 | %s%s |\n", kind, p50[kind], extra)
	}
	return nil
}

// benchWindow is the windowed aggregate of the measured runs: per country
// and minute of event time, four aggregates.
func benchWindow(retention time.Duration) *transform.Config {
	return &transform.Config{
		Filter: `country != null`,
		Window: &transform.WindowConfig{
			Time: "ts", Size: conf.Duration(time.Minute), GroupBy: []string{"country"},
			Aggregates: []transform.Aggregate{
				{Name: "clicks", Fn: "count"},
				{Name: "users", Fn: "approx_count_distinct", Of: "user_id"},
				{Name: "revenue", Fn: "sum", Of: "revenue"},
				{Name: "avg_duration_ms", Fn: "avg", Of: "duration_ms"},
			},
		},
		State: transform.StateConfig{Retention: conf.Duration(retention)},
	}
}

// Late-event latency probes (phase 3): each probe is a group (country) of
// its own, so its row is its alone.
const (
	probeOnTime   = "on time"
	probeInMemory = "late, window in memory"
	probeReadBack = "late, window read back"
	// probeRetention is the window state's retention in phase 3: a
	// window 2 minutes old is in memory, one 3 hours old is not.
	probeRetention = 10 * time.Minute
)

var probeKinds = []string{probeOnTime, probeInMemory, probeReadBack}

// windowLatency is the child of phase 3: a node running the windowed
// pipeline on a steady stream of on-time clicks, and probes: an on-time
// event of a fresh group (produce → its row visible), and for a window in
// memory and one read back from the table, a first event, then (once its
// row is visible and, for the old one, the window evicted) a late event of
// the same window (produce → the corrected row visible). Rows are seen by
// scanning the table every 20ms.
func windowLatency(ctx context.Context, a childArgs, out io.Writer) (childResult, error) {
	cfg := config.Default()
	cfg.Node.DataDir, cfg.Node.HTTPAddr = a.DataDir, ""
	cfg.Kafka.Brokers, cfg.Kafka.Group = a.Brokers, "floe-bench"
	cfg.Pipelines = []ingest.PipelineConfig{{
		Name: a.Topic, Topics: []string{a.Topic}, Table: "bench." + a.Topic, Start: "earliest",
		CommitInterval: conf.Duration(a.CommitInterval), Schema: clickColumns(), Transform: a.Transform,
	}}
	cfg.FillDefaults()
	if err := cfg.Validate(); err != nil {
		return childResult{}, err
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	n, err := newNode(runCtx, cfg, func(ingest.CommitEvent) {})
	if err != nil {
		return childResult{}, err
	}
	nodeErr := make(chan error, 1)
	go func() { nodeErr <- n.Run(runCtx) }()
	cl, err := kgo.NewClient(kgo.SeedBrokers(a.Brokers...), kgo.ProducerLinger(time.Millisecond), kgo.DefaultProduceTopic(a.Topic))
	if err != nil {
		return childResult{}, err
	}
	defer cl.Close()
	// The background stream: on-time clicks, so the watermark follows the
	// clock.
	go func() {
		_ = gen.Produce(runCtx, cl, gen.ProducerConfig{Topic: a.Topic, Kind: gen.Clicks, Rate: a.Rate,
			Gen: gen.Config{Seed: 5, MalformedRate: -1, LateRate: -1, Jitter: -1}}, nil)
	}()
	cat, err := catalog.Open(ctx, cfg.Catalog, cfg.Storage, cfg.Node.DataDir)
	if err != nil {
		return childResult{}, err
	}
	defer cat.Close()
	ident := catalog.Ident(cfg.Pipelines[0].Table)
	// events returns the events of group's row of window start, 0 if none.
	events := func(group string, start time.Time) int64 {
		tbl, err := cat.LoadTable(ctx, ident)
		if err != nil || tbl.CurrentSnapshot() == nil {
			return 0
		}
		_, recs, err := tbl.Scan(table.WithRowFilter(iceberg.NewAnd(
			iceberg.EqualTo(iceberg.Reference("country"), group),
			iceberg.EqualTo(iceberg.Reference(transform.ColWindowStart), iceberg.Timestamp(start.UnixMicro())))),
			table.WithSelectedFields(transform.ColEvents)).ToArrowRecords(ctx)
		if err != nil {
			return 0
		}
		var got int64
		for rec, err := range recs {
			if err != nil {
				return 0
			}
			if c, ok := rec.Column(0).(*array.Int64); ok && c.Len() > 0 {
				got = c.Value(0)
			}
			rec.Release()
		}
		return got
	}
	produce := func(group string, ts time.Time, id string) error {
		v := fmt.Sprintf(`{"event_id":%q,"user_id":1,"ts":%q,"country":%q,"duration_ms":10,"revenue":1.5}`, id, ts.Format(time.RFC3339Nano), group)
		return cl.ProduceSync(ctx, &kgo.Record{Value: []byte(v)}).FirstErr()
	}
	// await waits until group's row of window start has want events and
	// returns when it saw it.
	await := func(group string, start time.Time, want int64) (time.Time, error) {
		deadline := time.Now().Add(2 * time.Minute)
		for time.Now().Before(deadline) {
			if events(group, start) >= want {
				return time.Now(), nil
			}
			select {
			case err := <-nodeErr:
				return time.Time{}, fmt.Errorf("node stopped: %v", err)
			case <-time.After(20 * time.Millisecond):
			}
		}
		return time.Time{}, fmt.Errorf("probe %s: the row of %s did not show %d events within 2 minutes", group, start, want)
	}
	for n.Ready() != nil {
		select {
		case err := <-nodeErr:
			return childResult{}, fmt.Errorf("node stopped: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	fmt.Fprintln(out, "ready")
	res := childResult{WindowLatencyMs: map[string][]float64{}}
	for i := range a.Probes {
		for _, kind := range probeKinds {
			group := fmt.Sprintf("P%03d/%s", i, kind)
			now := time.Now().UTC()
			ts := now
			switch kind {
			case probeInMemory:
				ts = now.Add(-2 * time.Minute)
			case probeReadBack:
				ts = now.Add(-3 * time.Hour)
			}
			if kind != probeOnTime {
				// Early in its minute, so that the correction (a second
				// later) falls in the same window.
				ts = ts.Truncate(time.Minute).Add(10 * time.Second)
			}
			start := ts.Truncate(time.Minute)
			sent := time.Now()
			if err := produce(group, ts, group+"/1"); err != nil {
				return res, err
			}
			seen, err := await(group, start, 1)
			if err != nil {
				return res, err
			}
			if kind != probeOnTime {
				// The window's row is visible; for the old one, the commit
				// that wrote it also evicted it (its end is hours before
				// the watermark). Its correction comes next.
				sent = time.Now()
				if err := produce(group, ts.Add(time.Second), group+"/2"); err != nil {
					return res, err
				}
				if seen, err = await(group, start, 2); err != nil {
					return res, err
				}
			}
			res.WindowLatencyMs[kind] = append(res.WindowLatencyMs[kind], float64(seen.Sub(sent))/float64(time.Millisecond))
		}
	}
	if st, err := n.Windows(cfg.Pipelines[0].Table); err == nil {
		res.Reopened, res.ReadBack = st.Reopened.Load(), st.Loaded.Load()
	}
	stop()
	<-nodeErr
	return res, nil
}
