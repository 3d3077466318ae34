package ingest

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/floelake/floe/catalog"
	"github.com/floelake/floe/ingest/registry"
	"github.com/floelake/floe/ingest/transform"
	"github.com/floelake/floe/internal/fileio"
)

// CommitEvent describes one settled commit, for observers (the quickstart
// status line, the benchmark's freshness percentiles).
type CommitEvent struct {
	Table      string
	SnapshotID int64
	Records    int64
	// Offsets is the number of Kafka offsets the commit covers (records
	// filtered out and dead letters included).
	Offsets    int64
	Files      int
	CommitTime time.Time
	// Samples are the Kafka timestamps of a deterministic sample of the
	// committed records (every 64th consumed record).
	Samples []time.Time
}

// Options configure a Pipeline.
type Options struct {
	Pipeline PipelineConfig
	Kafka    KafkaConfig
	Catalog  *catalog.Catalog
	Logger   *slog.Logger
	// ShutdownTimeout bounds the final commit when the context ends.
	ShutdownTimeout time.Duration
	// Metrics observes the pipeline and its committers; nil reports
	// nothing.
	Metrics Metrics
}

// Stats are running totals for status lines.
type Stats struct {
	RecordsIn, BytesIn, DeadLetters int64
	// Filtered counts the records the transform's filter left out,
	// Duplicates those its dedup left out.
	Filtered, Duplicates            int64
	Committed, DeadLettersCommitted int64
	Lag                             int64
	LastSnapshot                    int64
	DataFiles                       int64
	Commits                         int64
	// Metadata is the main table's current metadata file.
	Metadata string
}

type stats struct {
	recordsIn, bytesIn, deadLetters atomic.Int64
	filtered, duplicates            atomic.Int64
	committed, dlCommitted          atomic.Int64
	lag, lastSnapshot, dataFiles    atomic.Int64
	commits                         atomic.Int64
	metadata                        atomic.Pointer[string]
}

// Pipeline consumes a pipeline's topics into its table and dead-letter
// table, exactly once. See doc.go for the data flow.
type Pipeline struct {
	opts     Options
	log      *slog.Logger
	fileOpts fileio.Options
	stats    stats
	// prog is the pipeline's transform, nil without one.
	prog *transform.Program
	// schemas are the writer schemas of a registry format (avro,
	// protobuf), nil for json.
	schemas *writerSchemas
	// sealed, if set (tests only), sees every seal as soon as it is made,
	// before it is handed to the delivery.
	sealed func(seal)

	mu struct {
		sync.Mutex
		hwm    map[topicPartition]int64
		health error
	}
}

// New validates options; RunAssigned does the work.
func New(opts Options) (*Pipeline, error) {
	if opts.Catalog == nil {
		return nil, errors.New("ingest: no catalog")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = 30 * time.Second
	}
	p := &Pipeline{
		opts:     opts,
		log:      opts.Logger.With("pipeline", opts.Pipeline.Name),
		fileOpts: fileio.Options{TargetFileSize: int64(opts.Pipeline.TargetFileSize)},
	}
	prog, err := opts.Pipeline.CompileTransform()
	if err != nil {
		return nil, fmt.Errorf("ingest: pipelines[%s].transform: %w", opts.Pipeline.Name, err)
	}
	p.prog = prog
	if opts.Pipeline.RegistryFormat() {
		var ropts []registry.Option
		if m, ok := opts.Metrics.(registry.Metrics); ok {
			ropts = append(ropts, registry.WithMetrics(m))
		}
		cl, err := registry.New(opts.Pipeline.Registry, ropts...)
		if err != nil {
			return nil, &configError{fmt.Errorf("ingest: pipelines[%s].registry: %w", opts.Pipeline.Name, err)}
		}
		p.schemas = newWriterSchemas(opts.Pipeline.Format, cl)
	}
	p.mu.hwm = map[topicPartition]int64{}
	p.mu.health = ErrNotConsuming
	return p, nil
}

// Transform returns the pipeline's compiled transform, nil without one.
func (p *Pipeline) Transform() *transform.Program { return p.prog }

// Stats returns the running totals.
func (p *Pipeline) Stats() Stats {
	return Stats{
		RecordsIn: p.stats.recordsIn.Load(), BytesIn: p.stats.bytesIn.Load(), DeadLetters: p.stats.deadLetters.Load(),
		Filtered: p.stats.filtered.Load(), Duplicates: p.stats.duplicates.Load(),
		Committed: p.stats.committed.Load(), DeadLettersCommitted: p.stats.dlCommitted.Load(),
		Lag: p.stats.lag.Load(), LastSnapshot: p.stats.lastSnapshot.Load(), DataFiles: p.stats.dataFiles.Load(),
		Commits: p.stats.commits.Load(), Metadata: deref(p.stats.metadata.Load()),
	}
}

// metrics returns what observes the pipeline (NopMetrics if nothing does).
func (p *Pipeline) metrics() Metrics {
	if p.opts.Metrics == nil {
		return NopMetrics{}
	}
	return p.opts.Metrics
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func (p *Pipeline) noteHWM(tp topicPartition, hwm int64) {
	p.mu.Lock()
	if hwm > p.mu.hwm[tp] {
		p.mu.hwm[tp] = hwm
	}
	p.mu.Unlock()
}

func (p *Pipeline) setHWM(h map[topicPartition]int64) {
	p.mu.Lock()
	for tp, v := range h {
		p.mu.hwm[tp] = v
	}
	p.mu.Unlock()
}

// ErrNotConsuming is Healthy's answer before the pipeline first consumes.
var ErrNotConsuming = errors.New("not consuming yet")

// Healthy returns nil while the pipeline consumes without trouble, and
// ErrNotConsuming before it first does. Commit health is the table
// writers'.
func (p *Pipeline) Healthy() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mu.health
}

// IsConfigError reports whether err is a failure that restarting cannot
// fix (a bad configuration, a schema that cannot be inferred).
func IsConfigError(err error) bool {
	var c *configError
	return errors.As(err, &c)
}

func (p *Pipeline) setHealth(err error) {
	p.mu.Lock()
	p.mu.health = err
	p.mu.Unlock()
}

// configError is a failure restarting cannot fix.
type configError struct{ err error }

func (e *configError) Error() string { return e.err.Error() }
func (e *configError) Unwrap() error { return e.err }
