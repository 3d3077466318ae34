// Package quickstart runs the whole of floe in one process on embedded
// defaults: a Kafka-compatible broker (kfake, persisted under the data
// directory), a generator of click and order events (out of order, some
// late, about 1% malformed; orders are also updated, corrected late and
// deleted), a SQLite catalog and a local warehouse, the pipelines, and the
// operations endpoint. Running it again resumes from the tables' committed
// offsets.
//
// demo.clicks appends every click. demo.orders is a keyed table: it keeps
// one row per order_id, the newest event's, and drops deleted orders.
// demo.clicks_per_minute aggregates the clicks per country and minute of
// event time: a late click re-opens its minute and corrects its row.
//
// Layout under the data directory:
//
//	kafka/       the broker's log
//	catalog.db   the SQLite Iceberg catalog (JdbcCatalog layout)
//	warehouse/   table data and metadata: demo.db/<table>/{data,metadata}
package quickstart

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

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
	"github.com/floelake/floe/internal/node"
	"github.com/floelake/floe/internal/schema"
)

// Options tune the quickstart.
type Options struct {
	DataDir   string
	Rate      int
	KafkaPort int
	HTTPAddr  string
	// GRPCAddr is the gRPC API's address ("" serves none).
	GRPCAddr       string
	CommitInterval time.Duration
	StatusEvery    time.Duration
	Duration       time.Duration
	MalformedRate  float64
	Partitions     int
	// Nodes > 1 runs a cluster of that many members in this process; every
	// FailoverEvery the leader is stopped and restarted RestartAfter later.
	Nodes         int
	FailoverEvery time.Duration
	RestartAfter  time.Duration
	// Logger receives floe's logs; default: warnings and errors to stderr.
	Logger *slog.Logger
}

// DefaultOptions are the quickstart's defaults.
func DefaultOptions() Options {
	return Options{
		DataDir:        "./floe-data",
		Rate:           2000,
		KafkaPort:      9092,
		HTTPAddr:       "127.0.0.1:8080",
		GRPCAddr:       "127.0.0.1:7070",
		CommitInterval: time.Second,
		StatusEvery:    5 * time.Second,
		MalformedRate:  0.01,
		Partitions:     4,
		Nodes:          1,
		FailoverEvery:  30 * time.Second,
		RestartAfter:   10 * time.Second,
	}
}

var kinds = []gen.Kind{gen.Clicks, gen.Orders}

// Run runs the quickstart until ctx ends (or Duration passes), printing a
// status line every StatusEvery to out.
func Run(ctx context.Context, o Options, out io.Writer) error {
	if o.Rate < 0 {
		return errors.New("quickstart: --rate must be >= 0")
	}
	if o.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.Duration)
		defer cancel()
	}
	dataDir, err := filepath.Abs(o.DataDir)
	if err != nil {
		return err
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}

	broker, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.Ports(o.KafkaPort),
		kfake.DataDir(filepath.Join(dataDir, "kafka")),
		kfake.SeedTopics(int32(o.Partitions), string(gen.Clicks), string(gen.Orders)),
	)
	if err != nil {
		return fmt.Errorf("quickstart: start the embedded broker on port %d: %w (try --kafka-port 0)", o.KafkaPort, err)
	}
	defer broker.Close()

	cfg := config.Default()
	cfg.Node.DataDir = dataDir
	cfg.Node.HTTPAddr = o.HTTPAddr
	cfg.Node.API.GRPCAddr = o.GRPCAddr
	cfg.Node.ShutdownTimeout = conf.Duration(15 * time.Second)
	cfg.Kafka.Brokers = broker.ListenAddrs()
	cfg.Kafka.Group = "floe-quickstart"
	for _, k := range kinds {
		p, err := pipeline(k, o)
		if err != nil {
			return err
		}
		cfg.Pipelines = append(cfg.Pipelines, p)
	}
	wp, err := windowPipeline(o)
	if err != nil {
		return err
	}
	cfg.Pipelines = append(cfg.Pipelines, wp)
	if o.Nodes > 1 {
		// The members share one catalog and warehouse; each has its own
		// data dir for raft.
		cfg.Catalog.URI = "sqlite://" + filepath.Join(dataDir, "catalog.db")
		cfg.Catalog.Warehouse = "file://" + filepath.Join(dataDir, "warehouse")
		cfg.Cluster.Enabled = true
	}
	cfg.FillDefaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	if err := createTables(ctx, cfg, dataDir); err != nil {
		return err
	}
	if o.Nodes > 1 {
		return runCluster(ctx, o, cfg, broker.ListenAddrs()[0], log, out)
	}

	n, err := node.New(ctx, cfg, log)
	if err != nil {
		return err
	}
	if err := n.Listen(); err != nil {
		return fmt.Errorf("quickstart: %w (try --http-addr 127.0.0.1:0)", err)
	}
	printBanner(out, cfg, n, broker.ListenAddrs()[0])

	prodCtx, stopProducers := context.WithCancel(ctx)
	defer stopProducers()
	pstats, pwg, err := startProducers(prodCtx, o, cfg, log)
	if err != nil {
		return err
	}

	nodeDone := make(chan error, 1)
	go func() { nodeDone <- n.Run(ctx) }()

	tick := time.NewTicker(o.StatusEvery)
	defer tick.Stop()
	start := time.Now()
	for {
		select {
		case err := <-nodeDone:
			stopProducers()
			pwg.Wait()
			printStatus(out, n, pstats, statusLabel(time.Since(start), true))
			fmt.Fprintln(out, "floe quickstart stopped; run it again to resume from the committed offsets.")
			return err
		case <-ctx.Done():
			// The generator stops first so the final commit covers
			// everything produced.
			stopProducers()
		case <-tick.C:
			printStatus(out, n, pstats, statusLabel(time.Since(start), false))
		}
	}
}

// startProducers runs the event generators until ctx ends.
func startProducers(ctx context.Context, o Options, cfg config.Config, log *slog.Logger) ([]*gen.ProducerStats, *sync.WaitGroup, error) {
	producer, err := kgo.NewClient(kgo.SeedBrokers(cfg.Kafka.Brokers...), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		return nil, nil, err
	}
	pstats := make([]*gen.ProducerStats, len(kinds))
	pwg := &sync.WaitGroup{}
	seed := time.Now().UnixNano()
	for i, k := range kinds {
		pstats[i] = new(gen.ProducerStats)
		pwg.Add(1)
		go func() {
			defer pwg.Done()
			err := gen.Produce(ctx, producer, gen.ProducerConfig{
				Topic: string(k), Kind: k, Rate: o.Rate,
				Gen: gen.Config{Seed: seed + int64(i), MalformedRate: malformed(o.MalformedRate)},
			}, pstats[i])
			if err != nil && ctx.Err() == nil {
				log.Error("event generator stopped", "topic", k, "err", err)
			}
		}()
	}
	go func() { pwg.Wait(); producer.Close() }()
	return pstats, pwg, nil
}

// runCluster is Run with Options.Nodes members.
func runCluster(ctx context.Context, o Options, cfg config.Config, broker string, log *slog.Logger, out io.Writer) error {
	log = slog.New(quietRaft{log.Handler()})
	lc := newLocalCluster(cfg, o.Nodes, o.HTTPAddr, log, out)
	prodCtx, stopProducers := context.WithCancel(ctx)
	defer stopProducers()
	runCtx, stopCluster := context.WithCancel(context.WithoutCancel(ctx))
	defer stopCluster()
	done := make(chan error, 1)
	go func() { done <- lc.run(runCtx, o.FailoverEvery, o.RestartAfter) }()

	dbPath := filepath.Join(cfg.Node.DataDir, "catalog.db")
	fmt.Fprintf(out, `floe quickstart: a cluster of %d nodes in this process
  broker     %s  (topics: clicks, orders; Kafka-compatible, embedded)
  catalog    sqlite %s
  warehouse  %s
  tables     demo.clicks, demo.orders, demo.clicks_per_minute  (+ a __dlq table each)
%s  metrics    http://%s/metrics   cluster status: http://%s/cluster/status
             (or: floe cluster status --addr <a member's API address>)
`, o.Nodes, broker, dbPath, cfg.Catalog.Warehouse, ordersNote, o.HTTPAddr, o.HTTPAddr)
	if o.FailoverEvery > 0 {
		fmt.Fprintf(out, "Every %s the leader is stopped and restarted %s later: watch the others take over.\n", o.FailoverEvery, o.RestartAfter)
	}
	fmt.Fprintln(out, "Ctrl-C stops cleanly after a final commit.")

	pstats, pwg, err := startProducers(prodCtx, o, cfg, log)
	if err != nil {
		return err
	}
	produced := func() map[string]int64 {
		m := map[string]int64{}
		for i, k := range kinds {
			m[string(k)] = pstats[i].Produced.Load()
		}
		return m
	}
	tick := time.NewTicker(o.StatusEvery)
	defer tick.Stop()
	start := time.Now()
	for {
		select {
		case err := <-done:
			stopProducers()
			pwg.Wait()
			return err
		case <-ctx.Done():
			// Producers first, so the final commits cover what they wrote.
			stopProducers()
			pwg.Wait()
			lc.printStatus(out, statusLabel(time.Since(start), true), produced())
			stopCluster()
			err := <-done
			fmt.Fprintln(out, "floe quickstart stopped; run it again to resume from the committed offsets.")
			return err
		case <-tick.C:
			lc.printStatus(out, statusLabel(time.Since(start), false), produced())
		}
	}
}

func malformed(r float64) float64 {
	if r == 0 {
		return -1 // gen reads 0 as "default"; the flag's 0 means none
	}
	return r
}

// pipeline is the quickstart's pipeline of kind k. Orders is keyed by
// order_id: the newest event of an order replaces its row, a tombstone
// deletes it. A key needs a declared schema (its columns must be
// required), so the orders pipeline declares gen's.
func pipeline(k gen.Kind, o Options) (ingest.PipelineConfig, error) {
	p := ingest.PipelineConfig{
		Name:           string(k),
		Topics:         []string{string(k)},
		Table:          "demo." + string(k),
		Start:          "earliest",
		CommitInterval: conf.Duration(o.CommitInterval),
		PartitionBy:    []string{gen.PartitionSpecSQL(k)},
	}
	if k == gen.Orders {
		cols, err := columns(gen.Schema(k))
		if err != nil {
			return p, err
		}
		p.Schema = cols
		p.Key = []string{"order_id"}
	}
	return p, nil
}

// windowPipeline is the quickstart's windowed aggregate: the clicks per
// country and 1-minute window of event time, with distinct users, revenue
// and the average visit. The clicks generator's late events (minutes to 30
// hours late) re-open their windows.
func windowPipeline(o Options) (ingest.PipelineConfig, error) {
	cols, err := columns(gen.Schema(gen.Clicks))
	if err != nil {
		return ingest.PipelineConfig{}, err
	}
	return ingest.PipelineConfig{
		Name:           windowTable,
		Topics:         []string{string(gen.Clicks)},
		Table:          "demo." + windowTable,
		Start:          "earliest",
		CommitInterval: conf.Duration(o.CommitInterval),
		Schema:         cols,
		Transform: &transform.Config{
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
		},
	}, nil
}

// windowTable names the windowed aggregate's pipeline and table.
const windowTable = "clicks_per_minute"

// topicIndex is the index in kinds of the generator feeding topic.
func topicIndex(topic string) int {
	for i, k := range kinds {
		if string(k) == topic {
			return i
		}
	}
	return -1
}

// columns declares the top-level fields of sch as pipeline columns.
func columns(sch *iceberg.Schema) ([]ingest.Column, error) {
	var cols []ingest.Column
	for _, f := range sch.Fields() {
		t, err := typeText(f.Type)
		if err != nil {
			return nil, fmt.Errorf("quickstart: column %s: %w", f.Name, err)
		}
		cols = append(cols, ingest.Column{Name: f.Name, Type: t, Required: f.Required})
	}
	return cols, nil
}

// typeText writes t the way a pipeline's schema declares it.
func typeText(t iceberg.Type) (string, error) {
	switch t := t.(type) {
	case iceberg.DecimalType:
		return fmt.Sprintf("decimal(%d,%d)", t.Precision(), t.Scale()), nil
	case *iceberg.ListType:
		if t.ElementRequired {
			return "", errors.New("a list of required elements cannot be declared")
		}
		e, err := typeText(t.Element)
		return "list<" + e + ">", err
	case *iceberg.StructType:
		var b strings.Builder
		b.WriteString("struct<")
		for i, f := range t.FieldList {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(f.Name)
			if f.Required {
				b.WriteByte('!')
			}
			b.WriteByte(':')
			ft, err := typeText(f.Type)
			if err != nil {
				return "", err
			}
			b.WriteString(ft)
		}
		b.WriteByte('>')
		return b.String(), nil
	case iceberg.BooleanType, iceberg.Int32Type, iceberg.Int64Type, iceberg.Float64Type, iceberg.DateType,
		iceberg.TimestampTzType, iceberg.StringType:
		return t.String(), nil
	}
	return "", fmt.Errorf("type %s is not declared by the quickstart", t)
}

// createTables creates the tables the pipelines write, with gen's schema
// (the declared one, with the key as identifier fields, for orders), the
// day partitioning and the pipeline's format version.
func createTables(ctx context.Context, cfg config.Config, dataDir string) error {
	cat, err := catalog.Open(ctx, cfg.Catalog, cfg.Storage, cfg.Node.DataDir)
	if err != nil {
		return err
	}
	defer cat.Close()
	for _, p := range cfg.Pipelines {
		sch := gen.Schema(gen.Kind(p.Topics[0]))
		if len(p.Schema) > 0 {
			if sch, err = p.TableSchema(); err != nil {
				return err
			}
		}
		spec, err := schema.Partition(p.PartitionBy, sch)
		if err != nil {
			return err
		}
		props := iceberg.Properties{}
		maps.Copy(props, p.TableProperties)
		props[table.PropertyFormatVersion] = strconv.Itoa(p.FormatVersion)
		tbl, _, err := catalog.EnsureTable(ctx, cat, catalog.Ident(p.Table), sch, spec, props)
		if err != nil {
			return err
		}
		if p.Keyed() && len(tbl.Schema().IdentifierFieldIDs) == 0 {
			return fmt.Errorf("quickstart: %s in %s was created by an older floe quickstart, when it was not keyed by %s; "+
				"start afresh with another --data-dir (or remove %s)", p.Table, dataDir, strings.Join(p.Key, ", "), dataDir)
		}
	}
	return nil
}

func printBanner(out io.Writer, cfg config.Config, n *node.Node, broker string) {
	dbPath := filepath.Join(cfg.Node.DataDir, "catalog.db")
	wh := n.Catalog().Warehouse
	fmt.Fprintf(out, `floe quickstart
  broker     %s  (topics: clicks, orders; Kafka-compatible, embedded)
  catalog    sqlite %s
  warehouse  %s
  tables     demo.clicks, demo.orders, demo.clicks_per_minute  (+ a __dlq table each for malformed records)
%s  metrics    http://%s/metrics   health: /healthz /readyz
  console    http://%s/console   API: http://%s/api/v1 (docs/api.md)%s
  time travel  floe tables%s;  floe snapshots demo.orders%s
             floe query demo.orders --where "status = 'shipped'" --limit 10%s

Read the tables while this runs (current metadata file: see each status line's 'metadata'):
  PyIceberg: from pyiceberg.catalog.sql import SqlCatalog
             cat = SqlCatalog("floe", uri="sqlite:///%s", warehouse="%s")
             cat.load_table("demo.clicks").scan().to_pandas()
             cat.load_table("demo.orders").scan().to_pandas()   # one row per order_id
             cat.load_table("demo.clicks_per_minute").scan().to_pandas()   # one row per country and minute
  DuckDB:    INSTALL iceberg; LOAD iceberg;
             SELECT count(*) FROM iceberg_scan('<metadata file>');
  Spark:     --conf spark.sql.catalog.floe=org.apache.iceberg.spark.SparkCatalog
             --conf spark.sql.catalog.floe.catalog-impl=org.apache.iceberg.jdbc.JdbcCatalog
             --conf spark.sql.catalog.floe.uri=jdbc:sqlite:%s
             --conf spark.sql.catalog.floe.warehouse=%s   (needs the sqlite-jdbc jar)
             SELECT count(*) FROM floe.demo.clicks
             SELECT status, count(*) FROM floe.demo.orders GROUP BY status   -- each order once, as it is now
  Trino:     iceberg connector; register the tables from their location:
             CALL iceberg.system.register_table('demo', 'clicks', '%s/demo.db/clicks')
             CALL iceberg.system.register_table('demo', 'orders', '%s/demo.db/orders')
             (or run floe serve with a Postgres catalog and iceberg.catalog.type=jdbc)

Ctrl-C stops cleanly after a final commit.
`, broker, dbPath, wh, ordersNote, n.Addr(), n.Addr(), n.Addr(), grpcNote(n), addrFlag(n), addrFlag(n), addrFlag(n), dbPath, wh, dbPath, wh, strings.TrimSuffix(wh, "/"), strings.TrimSuffix(wh, "/"))
}

// ordersNote is the banner's word on the keyed orders table.
const ordersNote = `             demo.orders is keyed by order_id: it holds one row per order, the newest;
             updates and late corrections replace the row (position deletes),
             tombstones delete it. Engines that apply Iceberg delete files
             (PyIceberg, Spark, Trino) read one row per order_id.
`

// statusLabel heads a status line: the time since the start, whole seconds
// on the ticks; the last line, printed after the final commit and often
// within a second of a tick, says so and carries tenths.
func statusLabel(elapsed time.Duration, final bool) string {
	if final {
		return "[" + elapsed.Truncate(100*time.Millisecond).String() + ", final]"
	}
	return "[" + elapsed.Truncate(time.Second).String() + "]"
}

func printStatus(out io.Writer, n *node.Node, pstats []*gen.ProducerStats, label string) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "%s\ttable\tproduced\tconsumed\tcommitted\tdead-lettered\tlag\t%s\t%s\tfiles (max/partition)\tsnapshots\tsnapshot\tmetadata\n", label, keyIndexHeader, windowsHeader)
	for _, p := range n.Pipelines() {
		s := p.Stats()
		var produced int64
		if i := topicIndex(p.Config().Topics[0]); i >= 0 && i < len(pstats) {
			produced = pstats[i].Produced.Load()
		}
		// Live files and snapshots retained, as of the table's last
		// compaction check; "-" before the first.
		files, snaps := "-", "-"
		if h, ok := n.TableHealth(p.Config().Table); ok {
			files = fmt.Sprintf("%d (%d)", h.DataFiles, h.MaxFilesPerPartition)
			snaps = fmt.Sprint(h.Snapshots)
		}
		fmt.Fprintf(tw, "\t%s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t%d\t%s\n", p.Config().Table, produced, s.RecordsIn,
			s.Committed, s.DeadLettersCommitted, s.Lag, keyIndexCells(n, p.Config()), windowCells(n, p.Config()), files, snaps, s.LastSnapshot, s.Metadata)
	}
	_ = tw.Flush()
}

// keyIndexHeader names the key index's figures of a keyed table: the keys
// it holds (rows in the table), the rows replaced by a newer row of their
// key (updates), and the keys deleted (tombstones), since the index was
// built (at the node's start, or when it took over the table).
const keyIndexHeader = "keys\treplaced\tdeleted"

// windowsHeader names the window state's figures of a windowed table: the
// window rows written (corrections included), those late data re-opened
// (the watermark had passed their end), and those read back from the table
// to be corrected (no longer in memory), since the node took over the
// table.
const windowsHeader = "windows written\tre-opened\tread back"

// noWindows fills the window columns of a table without windows.
const noWindows = "-\t-\t-"

// windowCells are the window state's figures of the pipeline's table, or
// noWindows.
func windowCells(n *node.Node, p ingest.PipelineConfig) string {
	if n == nil || !p.Windowed() {
		return noWindows
	}
	st, err := n.Windows(p.Table)
	if err != nil {
		return noWindows
	}
	return fmt.Sprintf("%d\t%d\t%d", st.Windows.Load(), st.Reopened.Load(), st.Loaded.Load())
}

// noKeyIndex fills the key index's columns of a table that has none.
const noKeyIndex = "-\t-\t-"

// keyIndexCells are the key index's figures of the pipeline's table, or
// noKeyIndex when it is not keyed or n (nil: no node) does not write it.
func keyIndexCells(n *node.Node, p ingest.PipelineConfig) string {
	if n == nil || !p.Keyed() {
		return noKeyIndex
	}
	st, err := n.KeyIndex(p.Table)
	if err != nil {
		return noKeyIndex
	}
	return fmt.Sprintf("%d\t%d\t%d", st.Keys, st.Replaced, st.Deleted)
}

// grpcNote names the gRPC API's address, when it has one.
func grpcNote(n *node.Node) string {
	if a := n.APIAddr(); a != "" {
		return ", gRPC " + a
	}
	return ""
}

// addrFlag is the --addr the CLI needs for this node, "" for the default.
func addrFlag(n *node.Node) string {
	if a := n.APIAddr(); a != "" && a != "127.0.0.1:7070" {
		return " --addr " + a
	}
	return ""
}
