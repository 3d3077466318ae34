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
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/floelake/floe/ingest"
	"github.com/floelake/floe/ingest/transform"
)

// TransformOptions tune `floe bench transform`.
type TransformOptions struct {
	Records        int
	Partitions     int
	CommitInterval time.Duration
	// DataDir is the scratch directory; default a temporary one, removed after.
	DataDir string
	// Exe is the floe binary the children run; default this executable.
	Exe string
}

// DefaultTransformOptions are the figures the README quotes.
func DefaultTransformOptions() TransformOptions {
	return TransformOptions{Records: 2_000_000, Partitions: 8, CommitInterval: time.Second}
}

// QuickTransformOptions are a run of well under a minute, for CI.
func QuickTransformOptions() TransformOptions {
	o := DefaultTransformOptions()
	o.Records, o.CommitInterval = 40_000, 250*time.Millisecond
	return o
}

// transformTopic holds the measured records.
const transformTopic = "transform"

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
	}
	dir, exe, cleanup, err := workspace(o.DataDir, "floe-bench-transform-", o.Exe)
	if err != nil {
		return err
	}
	defer cleanup()
	broker, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(int32(o.Partitions), transformTopic))
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
		fmt.Fprintf(out, "  %-52s %9.0f records/s  (%d offsets, %d rows, in %s; %d snapshots; peak RSS %.0f MiB)\n",
			r.label, r.rate(), res.Records, res.Rows, res.Elapsed.Round(10*time.Millisecond), res.Commits, float64(res.PeakRSS)/(1<<20))
	}
	fmt.Fprintf(out, "\nsummary\n")
	fmt.Fprintf(out, "| figure | measured |\n|---|---|\n")
	base := runs[0].rate()
	for _, r := range runs {
		ratio := ""
		if r.tr != nil && !r.tr.Empty() && base > 0 {
			ratio = fmt.Sprintf(" (%.2f× append; %.1f%% of the records kept)", r.rate()/base, 100*float64(r.res.Rows)/float64(max(r.res.Records, 1)))
		}
		fmt.Fprintf(out, "| (1) %s | %.0fk records/s%s |\n", r.label, r.rate()/1000, ratio)
	}
	return nil
}
