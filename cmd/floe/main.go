// Command floe turns Kafka topics into Apache Iceberg tables, exactly once.
//
// It only wires: flags → config → constructors → run.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/floelake/floe/internal/bench"
	"github.com/floelake/floe/internal/config"
	"github.com/floelake/floe/internal/node"
	"github.com/floelake/floe/internal/quickstart"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if err := rootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "floe:", err)
		os.Exit(1)
	}
}

func rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "floe",
		Short:         "floe turns Kafka topics into Apache Iceberg tables, exactly once",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(serveCmd(), quickstartCmd(), benchCmd(), clusterCmd(), compactCmd(), verifyCmd(), versionCmd())
	root.AddCommand(apiCmds()...)
	return root
}

// signalRepeatWindow is how long after the first SIGINT or SIGTERM a
// repeat counts as the same request: GNU timeout, some supervisors and a
// terminal's process group deliver one stop twice within milliseconds.
const signalRepeatWindow = time.Second

// signalContext ends on SIGINT or SIGTERM, which starts a graceful stop
// (final commits). A later signal, one that comes more than
// signalRepeatWindow after the first, is an operator's "exit now": the
// process exits without the final commit.
func signalContext() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan os.Signal, 4)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go watchSignals(ch, cancel, time.Now, func() {
		fmt.Fprintln(os.Stderr, "floe: second signal, exiting without the final commit")
		os.Exit(130)
	})
	return ctx, cancel
}

// watchSignals calls stop on the first signal and exit on the first one
// after that which arrives more than signalRepeatWindow later; repeats
// inside the window are the same stop delivered twice.
func watchSignals(ch <-chan os.Signal, stop func(), now func() time.Time, exit func()) {
	if _, ok := <-ch; !ok {
		return
	}
	first := now()
	stop()
	for range ch {
		if now().Sub(first) > signalRepeatWindow {
			exit()
			return
		}
	}
}

func newLogger(level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
}

func serveCmd() *cobra.Command {
	var cfgPath, httpAddr, dataDir, nodeID, raftAddr, apiAddr string
	var brokers, join []string
	cmd := &cobra.Command{
		Use:   "serve --config FILE",
		Short: "Run the pipelines of a configuration file",
		Long: `Run the pipelines of a configuration file until SIGTERM or SIGINT, then commit
what is buffered (within node.shutdown_timeout) and exit.

Settings come from the file, then FLOE_* environment variables
(e.g. FLOE_KAFKA_BROKERS, FLOE_CATALOG_URI, FLOE_PIPELINES_0_COMMIT_INTERVAL),
then these flags.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfgPath == "" {
				return fmt.Errorf("--config is required (see floe.example.yaml)")
			}
			cfg, err := config.Load(cfgPath)
			if err != nil {
				return err
			}
			if httpAddr != "" {
				cfg.Node.HTTPAddr = httpAddr
			}
			if dataDir != "" {
				cfg.Node.DataDir = dataDir
			}
			if len(brokers) > 0 {
				cfg.Kafka.Brokers = brokers
			}
			if len(join) > 0 {
				cfg.Cluster.Enabled, cfg.Cluster.Join = true, join
			}
			for flag, v := range map[*string]string{&cfg.Cluster.NodeID: nodeID, &cfg.Cluster.RaftAddr: raftAddr, &cfg.Cluster.APIAddr: apiAddr} {
				if v != "" {
					*flag = v
				}
			}
			if err := cfg.Validate(); err != nil {
				return err
			}
			log := newLogger(cfg.Node.LogLevel)
			slog.SetDefault(log)
			ctx, cancel := signalContext()
			defer cancel()
			n, err := node.New(ctx, cfg, log)
			if err != nil {
				if ctx.Err() != nil {
					// Stopped while waiting for a dependency: an
					// operator's stop, nothing started, nothing lost.
					log.Info("stopped before starting", "reason", err)
					return nil
				}
				return err
			}
			if err := n.Listen(); err != nil {
				return err
			}
			if c := n.Cluster(); c != nil {
				log.Info("floe serving as a cluster member", "version", buildVersion(), "node", c.ID(),
					"raft", c.RaftAddr(), "api", c.APIAddr(), "pipelines", len(cfg.Pipelines), "http", n.Addr())
			} else {
				log.Info("floe serving", "version", buildVersion(), "pipelines", len(cfg.Pipelines), "http", n.Addr())
			}
			return n.Run(ctx)
		},
	}
	cmd.Flags().StringVarP(&cfgPath, "config", "c", "", "configuration file (YAML)")
	cmd.Flags().StringVar(&httpAddr, "http-addr", "", "override node.http_addr")
	cmd.Flags().StringVar(&dataDir, "data-dir", "", "override node.data_dir")
	cmd.Flags().StringSliceVar(&brokers, "kafka-brokers", nil, "override kafka.brokers")
	cmd.Flags().StringSliceVar(&join, "join", nil, "join the cluster of the member whose API is at ADDR (repeatable; implies cluster.enabled)")
	cmd.Flags().StringVar(&nodeID, "node-id", "", "override cluster.node_id")
	cmd.Flags().StringVar(&raftAddr, "raft-addr", "", "override cluster.raft_addr")
	cmd.Flags().StringVar(&apiAddr, "api-addr", "", "override cluster.api_addr")
	return cmd
}

func quickstartCmd() *cobra.Command {
	o := quickstart.DefaultOptions()
	cmd := &cobra.Command{
		Use:   "quickstart",
		Short: "Run floe end to end on embedded defaults: broker, event generator, warehouse",
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := signalContext()
			defer cancel()
			return quickstart.Run(ctx, o, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.DataDir, "data-dir", o.DataDir, "where the broker log, catalog and warehouse live")
	f.IntVar(&o.Rate, "rate", o.Rate, "events per second per topic (clicks and orders)")
	f.IntVar(&o.KafkaPort, "kafka-port", o.KafkaPort, "port of the embedded Kafka-compatible broker (0: any free port)")
	f.StringVar(&o.HTTPAddr, "http-addr", o.HTTPAddr, "address of /metrics, /healthz, /readyz, the console and the HTTP API")
	f.StringVar(&o.GRPCAddr, "grpc-addr", o.GRPCAddr, "address of the gRPC API, which the CLI's floe tables/query/rollback call (\"\": none)")
	f.DurationVar(&o.CommitInterval, "commit-interval", o.CommitInterval, "how often each table commits a snapshot")
	f.DurationVar(&o.StatusEvery, "status-every", o.StatusEvery, "how often to print the status line")
	f.DurationVar(&o.Duration, "duration", o.Duration, "stop after this long (0: until Ctrl-C)")
	f.Float64Var(&o.MalformedRate, "malformed-rate", o.MalformedRate, "fraction of malformed events")
	f.IntVar(&o.Nodes, "nodes", o.Nodes, "run a cluster of this many nodes in this process (watch a failover)")
	f.DurationVar(&o.FailoverEvery, "failover-every", o.FailoverEvery, "with --nodes > 1: stop the leader this often (0: never)")
	f.DurationVar(&o.RestartAfter, "restart-after", o.RestartAfter, "with --nodes > 1: restart a stopped leader after this long")
	return cmd
}

func benchCmd() *cobra.Command {
	o := bench.DefaultOptions()
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure consume, decode+write, end-to-end throughput, freshness and memory on this machine",
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := signalContext()
			defer cancel()
			return bench.Run(ctx, o, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Records, "records", o.Records, "records to preload (each about 200 bytes, 10 columns)")
	f.IntVar(&o.Partitions, "partitions", o.Partitions, "topic partitions")
	f.IntVar(&o.FreshnessRate, "freshness-rate", o.FreshnessRate, "steady produce rate for the freshness phase (records/s)")
	f.DurationVar(&o.FreshnessDuration, "freshness-duration", o.FreshnessDuration, "length of the freshness phase")
	f.DurationVar(&o.CommitInterval, "commit-interval", o.CommitInterval, "commit interval for the end-to-end and freshness phases")
	f.StringVar(&o.DataDir, "data-dir", o.DataDir, "scratch directory (default: a temporary directory, removed after)")
	f.StringSliceVar(&o.Formats, "format", []string{"json"}, "record formats to measure, repeated or comma-separated: json (always measured), avro, protobuf (the same records in the schema registry wire format, with (b), (c) and the peak RSS of (c) beside json's)")
	cmd.AddCommand(benchClusterCmd(), benchSoakCmd(), benchUpsertCmd(), benchTransformCmd(), benchQueryCmd(), benchChildCmd())
	return cmd
}

func benchClusterCmd() *cobra.Command {
	o := bench.DefaultClusterOptions()
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Measure cluster mode: throughput of 1 node vs N nodes, and leader failover times",
		Long: `Measure cluster mode on this machine, every member a floe serve process of
its own: throughput of one node without cluster mode, of a cluster of one and
of a cluster of --nodes, each until everything preloaded is committed; then,
with records streaming in, how long a cluster takes to elect a new leader,
resume commits and consume the dead leader's partitions again after the
leader is SIGKILLed (--leader-kills times, heartbeat_interval 1s and
dead_after 5s: the defaults).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := signalContext()
			defer cancel()
			return bench.RunCluster(ctx, o, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Records, "records", o.Records, "records to preload for the throughput runs (each about 200 bytes, 10 columns)")
	f.IntVar(&o.Partitions, "partitions", o.Partitions, "topic partitions")
	f.DurationVar(&o.CommitInterval, "commit-interval", o.CommitInterval, "every pipeline's commit interval")
	f.IntVar(&o.LeaderKills, "leader-kills", o.LeaderKills, "how many times the failover phase SIGKILLs the leader (0 skips the phase)")
	f.IntVar(&o.Nodes, "nodes", o.Nodes, "members of the larger throughput cluster (the failover cluster has at least 3)")
	f.IntVar(&o.FailoverRate, "failover-rate", o.FailoverRate, "steady produce rate of the failover phase (records/s)")
	f.StringVar(&o.DataDir, "data-dir", o.DataDir, "scratch directory, kept (default: a temporary directory, removed after)")
	return cmd
}

func benchSoakCmd() *cobra.Command {
	o := bench.DefaultSoakOptions()
	cmd := &cobra.Command{
		Use:   "soak",
		Short: "Run one node for hours at a steady rate with 1-second commits and maintenance on; watch for degradation",
		Long: `Run one floe serve process for --duration at a steady --rate with 1-second
commits and table maintenance at its defaults, into a table partitioned by
hour(ts). Every --sample it prints commit latency p50/p99, freshness p99, the
table's files per partition, live data files, metadata bytes and snapshots,
the time to plan and to scan the whole table, and the process's RSS; at the
end, each figure's mean over the last 10 minutes against its mean over
minutes 15-25 (target: at most 1.2 times; a run shorter than 35 minutes
compares its last third with its middle third), the peak RSS, and a PNG plot
of every figure over time (--png).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := signalContext()
			defer cancel()
			return bench.RunSoak(ctx, o, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.DurationVar(&o.Duration, "duration", o.Duration, "how long to produce and measure (e.g. 24h)")
	f.DurationVar(&o.Sample, "sample", o.Sample, "interval of a sample row")
	f.IntVar(&o.Rate, "rate", o.Rate, "steady produce rate (records/s)")
	f.IntVar(&o.Partitions, "partitions", o.Partitions, "topic partitions")
	f.StringSliceVar(&o.ScanColumns, "scan-columns", o.ScanColumns, "columns the timed full scan reads (empty: every column)")
	f.StringVar(&o.PNG, "png", o.PNG, "plot of every figure over time (empty: none)")
	f.StringVar(&o.DataDir, "data-dir", o.DataDir, "scratch directory, kept (default: a temporary directory, removed after)")
	return cmd
}

func benchUpsertCmd() *cobra.Command {
	o := bench.DefaultUpsertOptions()
	var quick bool
	cmd := &cobra.Command{
		Use:   "upsert",
		Short: "Measure keyed tables: upsert throughput against append, read cost of the deletes, key index memory and rebuild",
		Long: `Measure keyed tables (pipelines with key:) on this machine, in one run:
(1) records committed per second end to end by a node consuming a preloaded
topic where 1%, 10% and 100% of the records update an existing key, in
format v2 (position deletes) and v3 (deletion vectors), and in v2 with
delete_mode: equality, beside an unkeyed pipeline on the same records
(target: at 10% updates, v2, at least half the append rate); (2) the time
to scan the table after 1, 10 and --commits upsert commits without
compaction against the same rows compacted, in both delete modes (target,
default mode: at most 1.3 times after --commits); (3) the key index's bytes per key and
the time to rebuild it from a table of --keys keys. --quick is a run of
well under a minute on small data (CI's): it checks that everything works,
not how fast.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if quick {
				q, f := bench.QuickUpsertOptions(), cmd.Flags()
				for name, v := range map[string][2]*int{
					"records": {&o.Records, &q.Records}, "read-seed": {&o.ReadSeed, &q.ReadSeed},
					"commit-rows": {&o.CommitRows, &q.CommitRows}, "commits": {&o.Commits, &q.Commits}, "keys": {&o.Keys, &q.Keys},
				} {
					if !f.Changed(name) {
						*v[0] = *v[1]
					}
				}
				if !f.Changed("commit-interval") {
					o.CommitInterval = q.CommitInterval
				}
			}
			ctx, cancel := signalContext()
			defer cancel()
			return bench.RunUpsert(ctx, o, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Records, "records", o.Records, "measured records of each throughput run (each table first holds a quarter as many keys)")
	f.IntVar(&o.Partitions, "partitions", o.Partitions, "topic partitions")
	f.DurationVar(&o.CommitInterval, "commit-interval", o.CommitInterval, "commit interval of the throughput runs")
	f.BoolVar(&o.V3, "v3", o.V3, "also measure format v3 tables (deletion vectors)")
	f.IntVar(&o.ReadSeed, "read-seed", o.ReadSeed, "keys of the read-cost tables before their upsert commits")
	f.IntVar(&o.CommitRows, "commit-rows", o.CommitRows, "rows of each upsert commit of the read-cost tables (10% updates)")
	f.IntVar(&o.Commits, "commits", o.Commits, "upsert commits of the read-cost phase (it scans after 1, 10 and this many)")
	f.IntVar(&o.Keys, "keys", o.Keys, "keys of the index phase (bytes per key, rebuild time)")
	f.BoolVar(&quick, "quick", false, "a run of well under a minute on small data (flags given explicitly still apply)")
	f.StringVar(&o.DataDir, "data-dir", o.DataDir, "scratch directory, kept (default: a temporary directory, removed after)")
	f.StringVar(&o.ClickHouse, "clickhouse", o.ClickHouse, "directory the npm package chdb is installed in (npm install --prefix DIR chdb@3.4.0): the read-cost phase's v2 tables are then also scanned by ClickHouse")
	return cmd
}

func benchTransformCmd() *cobra.Command {
	o := bench.DefaultTransformOptions()
	var quick bool
	cmd := &cobra.Command{
		Use:   "transform",
		Short: "Measure pipelines with a transform: filter + derive and windowed aggregate throughput against append, late-event latency",
		Long: `Measure pipelines with a transform section on this machine: (1) the Kafka
offsets a node commits per second from a preloaded topic of click events,
for the declared schema without a transform (append), with a filter, three
computed columns, a rename and a drop, and with a windowed aggregate (per
country and minute), one after the other on the same records; (2) beside a
steady stream, the time from producing an event to its window's row
visible in the table, on time, late for a window still in memory, and late
for a window read back from the table. --quick is a run of well under a
minute on small data (CI's).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if quick {
				q, f := bench.QuickTransformOptions(), cmd.Flags()
				if !f.Changed("records") {
					o.Records = q.Records
				}
				if !f.Changed("commit-interval") {
					o.CommitInterval = q.CommitInterval
				}
				if !f.Changed("probes") {
					o.Probes = q.Probes
				}
				if !f.Changed("probe-rate") {
					o.ProbeRate = q.ProbeRate
				}
			}
			ctx, cancel := signalContext()
			defer cancel()
			return bench.RunTransform(ctx, o, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Records, "records", o.Records, "records to preload (each about 220 bytes, 10 columns)")
	f.IntVar(&o.Partitions, "partitions", o.Partitions, "topic partitions")
	f.DurationVar(&o.CommitInterval, "commit-interval", o.CommitInterval, "commit interval of the measured runs")
	f.IntVar(&o.Probes, "probes", o.Probes, "late-event latency probes of each kind (on time, late in memory, late read back)")
	f.IntVar(&o.ProbeRate, "probe-rate", o.ProbeRate, "steady produce rate beside the latency probes (records/s)")
	f.BoolVar(&quick, "quick", false, "a run of well under a minute on small data (flags given explicitly still apply)")
	f.StringVar(&o.DataDir, "data-dir", o.DataDir, "scratch directory, kept (default: a temporary directory, removed after)")
	return cmd
}

func benchQueryCmd() *cobra.Command {
	o := bench.DefaultQueryOptions()
	var quick bool
	cmd := &cobra.Command{
		Use:   "query",
		Short: "Measure queries (timetravel.Query): full scan, projection and filters before and after compaction, beside the raw Parquet read",
		Long: `Measure the query path of a node (timetravel.Query, which the Query call and
floe query run) on this machine, in one process: build a table of --rows
click events in a local warehouse as --files 1-second commits of one file
each (generated, decoded and written as a pipeline does, partitioned by
day(ts): one partition), then time a full scan, a projection of two columns,
a filter on ts selecting 0.1% of the time range (file statistics prune) and a
filter user_id = 5 (nothing prunes), each beside pqarrow reading the same
files' same columns directly; then compact the table with floe's compaction
and time them again. Each figure is the fastest of --repeat runs, with its
files planned, rows/s, ratio to the raw read and peak heap.
FLOE_BENCH_CPUPROFILE=prefix writes a CPU profile of each phase's first run.
--quick is a run of a few seconds on small data (CI's).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if quick {
				q, f := bench.QuickQueryOptions(), cmd.Flags()
				for name, v := range map[string][2]*int{
					"rows": {&o.Rows, &q.Rows}, "files": {&o.Files, &q.Files}, "repeat": {&o.Repeat, &q.Repeat},
				} {
					if !f.Changed(name) {
						*v[0] = *v[1]
					}
				}
			}
			ctx, cancel := signalContext()
			defer cancel()
			return bench.RunQuery(ctx, o, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Rows, "rows", o.Rows, "rows of the table (click events, 10 columns)")
	f.IntVar(&o.Files, "files", o.Files, "commits, of one data file each (a second of event time each), before compaction")
	f.IntVar(&o.Repeat, "repeat", o.Repeat, "runs of each measured phase; the fastest counts")
	f.BoolVar(&quick, "quick", false, "a run of a few seconds on small data (flags given explicitly still apply)")
	f.StringVar(&o.DataDir, "data-dir", o.DataDir, "scratch directory, kept (default: a temporary directory, removed after)")
	return cmd
}

func versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(cmd.OutOrStdout(), "floe", buildVersion())
		},
	}
}

// buildVersion describes this binary's build (see versionString).
func buildVersion() string {
	bi, _ := debug.ReadBuildInfo()
	return versionString(version, bi)
}

// versionString describes the build: the version set at link time, else
// the module version; then the VCS revision (marked when the tree had
// local changes), the commit time and the Go version, as far as the build
// recorded them.
func versionString(linked string, bi *debug.BuildInfo) string {
	v := linked
	if bi == nil {
		return v
	}
	if v == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		v = bi.Main.Version
	}
	var rev, at, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+modified"
			}
		}
	}
	if rev != "" {
		v += " (revision " + rev + dirty
		if at != "" {
			v += ", " + at
		}
		v += ")"
	} else {
		v += " (revision unknown: built without VCS stamping)"
	}
	if bi.GoVersion != "" {
		v += " " + bi.GoVersion
	}
	return v
}

func benchChildCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "child SPEC",
		Short:  "Run one benchmark phase's floe node (used by floe bench)",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := signalContext()
			defer cancel()
			return bench.Child(ctx, args[0], cmd.OutOrStdout())
		},
	}
}
