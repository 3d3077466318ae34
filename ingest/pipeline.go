package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/iceberg-go"
	icecat "github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"

	"github.com/floelake/floe/catalog"
	"github.com/floelake/floe/commit"
	"github.com/floelake/floe/ingest/decode"
	"github.com/floelake/floe/internal/config"
	"github.com/floelake/floe/internal/fileio"
	"github.com/floelake/floe/internal/metrics"
	"github.com/floelake/floe/internal/schema"
)

// CommitEvent describes one settled commit, for observers (the quickstart
// status line, the benchmark's freshness percentiles).
type CommitEvent struct {
	Table      string
	SnapshotID int64
	Records    int64
	Files      int
	CommitTime time.Time
	// Samples are the Kafka timestamps of a deterministic sample of the
	// committed records (every 64th consumed record).
	Samples []time.Time
}

// Options configure a Pipeline.
type Options struct {
	Pipeline config.Pipeline
	Kafka    config.Kafka
	Catalog  *catalog.Catalog
	Logger   *slog.Logger
	// ShutdownTimeout bounds the final commit when the context ends.
	ShutdownTimeout time.Duration
}

// Stats are running totals for status lines.
type Stats struct {
	RecordsIn, BytesIn, DeadLetters int64
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
	p.mu.hwm = map[topicPartition]int64{}
	p.mu.health = ErrNotConsuming
	return p, nil
}

// Stats returns the running totals.
func (p *Pipeline) Stats() Stats {
	return Stats{
		RecordsIn: p.stats.recordsIn.Load(), BytesIn: p.stats.bytesIn.Load(), DeadLetters: p.stats.deadLetters.Load(),
		Committed: p.stats.committed.Load(), DeadLettersCommitted: p.stats.dlCommitted.Load(),
		Lag: p.stats.lag.Load(), LastSnapshot: p.stats.lastSnapshot.Load(), DataFiles: p.stats.dataFiles.Load(),
		Commits: p.stats.commits.Load(), Metadata: deref(p.stats.metadata.Load()),
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
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

// seal is one commit interval's output of every worker.
type seal struct {
	results []flushResult
	final   bool
}

// prepared is a pipeline's tables, loaded at their current snapshots, with
// a start offset recorded in both for every partition of its topics.
type prepared struct {
	baseOpts   []kgo.Opt
	committers [2]*commit.Committer
	infos      [2]fileio.TableInfo
	committed  [2]commit.Offsets
	parts      map[string][]int32
	starts     map[topicPartition]int64
	adm        *kgo.Client
}

// prepare loads or creates the tables and makes the start position durable.
// The caller closes the returned admin client.
//
// The tables' file IO is opened with fsCtx: on an object store, uploads in
// flight die with it, so it must outlive the final commit.
func (p *Pipeline) prepare(ctx, fsCtx context.Context) (*prepared, error) {
	cfg := p.opts.Pipeline
	if err := dialCheck(ctx, p.opts.Kafka.Brokers); err != nil {
		return nil, err
	}
	baseOpts, err := ClientOpts(p.opts.Kafka)
	if err != nil {
		return nil, &configError{err}
	}

	tables, err := p.ensureTables(ctx, baseOpts)
	if err != nil {
		return nil, err
	}
	pr := &prepared{baseOpts: baseOpts}
	for t, tbl := range tables {
		c, err := commit.New(ctx, p.opts.Catalog, commit.Config{
			Pipeline: cfg.Name, Table: tbl.Identifier(), Logger: p.log,
		})
		if err != nil {
			return nil, err
		}
		pr.committers[t] = c
		pr.committed[t] = c.Offsets()
		if pr.infos[t], err = fileio.InfoFromTable(fsCtx, c.Table()); err != nil {
			return nil, err
		}
	}

	adm, err := kgo.NewClient(baseOpts...)
	if err != nil {
		return nil, &configError{fmt.Errorf("ingest: kafka client: %w", err)}
	}
	ok := false
	defer func() {
		if !ok {
			adm.Close()
		}
	}()
	kadmCl := kadm.NewClient(adm)
	parts, hwm, err := listPartitions(ctx, kadmCl, cfg.Topics, func(err error) {
		p.setHealth(err)
		p.log.Warn("waiting for topics", "err", err)
	})
	if err != nil {
		return nil, err
	}
	p.setHWM(hwm)
	waitOffsets := func(err error) {
		p.setHealth(err)
		p.log.Warn("waiting for start offsets", "err", err)
	}
	starts, err := resolveStart(ctx, kadmCl, cfg.Topics, cfg.Start, hwm, waitOffsets)
	if err != nil {
		return nil, err
	}
	if err := startNewPartitionsAtEarliest(ctx, kadmCl, pr.committed, starts, waitOffsets); err != nil {
		return nil, err
	}
	// Make the start position durable before consuming anything: a table
	// with no offsets for a partition gets an empty snapshot recording the
	// resolved start. Otherwise a crash between the first commits of the two
	// tables would leave one without offsets, and "latest" resolved again
	// on restart would skip what the other table's rows were read with.
	//
	// Where the other table already has an offset, that is the start: the
	// pipeline got there with the other table (a crash between the two
	// start commits, or a dead-letter table recreated by an operator), and
	// a start resolved now could lie past records neither table holds.
	for t, c := range pr.committers {
		missing := commit.Offsets{}
		for tp, o := range starts {
			if _, ok := pr.committed[t].Get(tp.topic, tp.partition); ok {
				continue
			}
			if sib, ok := pr.committed[1-t].Get(tp.topic, tp.partition); ok {
				o = sib
			}
			missing.Set(tp.topic, tp.partition, o)
		}
		if missing.Len() == 0 {
			continue
		}
		if _, err := c.RecordStart(ctx, missing); err != nil {
			return nil, fmt.Errorf("ingest: record start offsets of %s: %w", strings.Join(c.Table().Identifier(), "."), err)
		}
		pr.committed[t] = c.Offsets()
		p.log.Info("recorded start offsets", "table", strings.Join(c.Table().Identifier(), "."), "offsets", missing.Encode())
	}
	pr.parts, pr.starts, pr.adm = parts, starts, adm
	ok = true
	return pr, nil
}

// consumeSpec is what one run consumes, from where, and what takes its
// seals.
type consumeSpec struct {
	infos  [2]fileio.TableInfo
	plan   map[string]map[int32]kgo.Offset
	floors [2]commit.Offsets
	pos    map[topicPartition]int64
	// parts, if set, are watched for new partitions through adm.
	parts map[string][]int32
	adm   *kgo.Client
	// deliver takes every seal in order until the channel closes; at the
	// end of ctx the last seal is final.
	deliver func(ctx context.Context, seals <-chan seal) error
}

// consume runs the consumer, the workers and the delivery of their seals
// until ctx ends (then the final seal is delivered within ShutdownTimeout)
// or something fails.
func (p *Pipeline) consume(ctx context.Context, baseOpts []kgo.Opt, spec consumeSpec) error {
	cfg := p.opts.Pipeline
	fs := newFetchState(spec.pos)
	cl, err := kgo.NewClient(append(baseOpts,
		kgo.ConsumePartitions(spec.plan),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxBytes(int32(p.opts.Kafka.FetchMaxBytes)),
		kgo.FetchMaxPartitionBytes(int32(min(p.opts.Kafka.FetchMaxBytes, 4<<20))),
		// An offset Kafka no longer has (retention) must not be skipped
		// silently: the fetch fails and the pipeline reports it.
		kgo.ConsumeResetOffset(kgo.NoResetOffset()),
		// Every fetch error reaches poll, which counts it (the client
		// still retries the transient ones) and notices a deleted topic.
		kgo.KeepRetryableFetchErrors(),
		kgo.WithHooks(fs.watch),
	)...)
	if err != nil {
		return &configError{fmt.Errorf("ingest: kafka consumer: %w", err)}
	}
	defer cl.Close()

	n := cfg.Workers
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	workers := make([]*worker, n)
	for i := range workers {
		if workers[i], err = newWorker(p, spec.infos, spec.floors, spec.pos); err != nil {
			return &configError{err}
		}
	}

	// ingestCtx stops consumption; commits run on until the final seal is
	// committed or the shutdown deadline passes.
	ingestCtx, stopIngest := context.WithCancel(ctx)
	defer stopIngest()
	workCtx, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWork()
	commitCtx, stopCommit := context.WithCancel(context.WithoutCancel(ctx))
	defer stopCommit()
	// Whatever the commits are doing when ctx ends (retrying a catalog
	// that is down, waiting for a leader), they get ShutdownTimeout more.
	go func() {
		select {
		case <-ctx.Done():
		case <-commitCtx.Done():
			return
		}
		t := time.NewTimer(p.opts.ShutdownTimeout)
		defer t.Stop()
		select {
		case <-t.C:
			stopCommit()
		case <-commitCtx.Done():
		}
	}()

	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Add(1)
		go func() { defer wg.Done(); w.run(workCtx) }()
	}
	defer wg.Wait()
	defer stopWork()

	seals := make(chan seal, 2)
	deliverDone := make(chan struct{})
	g, gctx := errgroup.WithContext(ingestCtx)
	pollDone := make(chan struct{})
	g.Go(func() error {
		defer close(pollDone)
		return p.poll(gctx, cl, workers, fs)
	})
	// The sealer hands every seal over or aborts its files; it never drops
	// one. A dropped seal would leak its writers, and the next seal would
	// start past its offsets: the final commit would fail with a gap.
	//
	// The race it must survive: the ticker fires, the seal is made, and ctx
	// ends before the commit loop takes it (the channel is full while a
	// commit runs). Cancellation must not win that select: the seal holds
	// consumed records and is delivered like the final one. Only when the
	// run failed (ingestion stopped with ctx still live: nothing more will
	// be committed) or delivery stopped is a made seal aborted, and then no
	// later seal is sent, so what is delivered stays contiguous.
	send := func(s seal) bool {
		select {
		case seals <- s:
			return true
		case <-deliverDone:
		case <-gctx.Done():
			if ctx.Err() != nil { // shutdown: this seal goes too
				select {
				case seals <- s:
					return true
				case <-deliverDone:
				}
			}
		}
		abortSeal(s)
		p.log.Warn("a seal was not delivered (the run failed or its delivery stopped); its files are aborted and its records will be consumed again",
			"final", s.final)
		return false
	}
	g.Go(func() error {
		defer close(seals)
		t := time.NewTicker(cfg.CommitInterval.D())
		defer t.Stop()
		for {
			select {
			case <-gctx.Done():
				// Wait for the poller so nothing is dispatched after the
				// final flush, then seal what the workers hold.
				<-pollDone
				if ctx.Err() != nil {
					s := sealAll(workers)
					s.final = true
					p.afterSeal(s)
					send(s)
				}
				return nil
			case <-t.C:
				s := sealAll(workers)
				p.afterSeal(s)
				if !send(s) {
					return nil
				}
			}
		}
	})
	p.setHealth(nil)
	commitErr := make(chan error, 1)
	go func() {
		err := spec.deliver(commitCtx, seals)
		close(deliverDone)
		commitErr <- err
	}()
	// Seals the delivery did not take (it failed, or was stopped at the
	// shutdown deadline) are aborted once the sealer is done, on every
	// return path below.
	defer func() {
		for s := range seals {
			abortSeal(s)
		}
	}()

	// Shutdown: when ctx ends, the poller stops, the final seal goes to the
	// committer, and we wait for it within the deadline.
	var ingestErr error
	select {
	case ingestErr = <-waitErr(g):
		if ctx.Err() == nil && ingestErr == nil {
			ingestErr = errors.New("ingest stopped unexpectedly")
		}
	case err := <-commitErr:
		stopIngest()
		gerr := g.Wait()
		if err == nil && ctx.Err() == nil {
			// The commit loop ends cleanly only when the seals stop:
			// ingestion ended first, and its error is the reason. Never
			// return nil here, or Run would take it for a clean stop.
			err = gerr
			if err == nil {
				err = errors.New("ingest stopped unexpectedly")
			}
		}
		return err
	}
	if ctx.Err() == nil {
		stopCommit()
		<-commitErr
		return ingestErr
	}
	timer := time.NewTimer(p.opts.ShutdownTimeout)
	defer timer.Stop()
	select {
	case err := <-commitErr:
		if err != nil {
			p.log.Error("final commit failed; uncommitted records will be consumed again on restart", "err", err)
		} else {
			p.log.Info("pipeline stopped cleanly", "table", cfg.Table)
		}
	case <-timer.C:
		p.log.Error("final commit did not finish within the shutdown timeout; uncommitted records will be consumed again on restart",
			"timeout", p.opts.ShutdownTimeout)
		stopCommit()
		<-commitErr
	}
	return nil
}

func waitErr(g *errgroup.Group) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- g.Wait() }()
	return ch
}

// abortSeal discards a seal's unfinished files: every writer it holds is
// aborted (aborting a writer that was closed already is harmless).
func abortSeal(s seal) {
	for _, r := range s.results {
		for t := range 2 {
			for _, w := range r.writers[t] {
				w.Abort()
			}
		}
	}
}

func (p *Pipeline) afterSeal(s seal) {
	if p.sealed != nil {
		p.sealed(s)
	}
}

func sealAll(workers []*worker) seal {
	replies := make([]chan flushResult, len(workers))
	for i, w := range workers {
		replies[i] = make(chan flushResult, 1)
		w.in <- workItem{flush: replies[i]}
	}
	s := seal{results: make([]flushResult, len(workers))}
	for i := range workers {
		s.results[i] = <-replies[i]
	}
	return s
}

func workerFor(tp topicPartition, n int) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(tp.topic))
	return int((h.Sum32() + uint32(tp.partition)) % uint32(n))
}

// dispatchChunk bounds one work item; with workerQueue it bounds the
// records waiting in front of a worker (and so a flush's delay and the
// memory they hold) to about dispatchChunk*workerQueue.
const (
	dispatchChunk = 4096
	workerQueue   = 8
)

// poll reads records and hands each partition's to its worker, in order.
// It deals with every error the consumer reports (see classifyFetchErr):
// each is counted in floe_ingest_consumer_errors_total; transient ones are
// retried by the client (poll backs off while they are all it gets); the
// others end the run with a ConsumerError that is the pipeline's health
// until it restarts. Lost records (a retention gap, a truncated log) follow
// the pipeline's on_data_loss policy (onLogGap).
func (p *Pipeline) poll(ctx context.Context, cl *kgo.Client, workers []*worker, fs *fetchState) error {
	adm := kadm.NewClient(cl)
	name := p.opts.Pipeline.Name
	backoff := time.Duration(0)
	for {
		pctx, done := fs.watch.pollContext(ctx)
		fetches := cl.PollRecords(pctx, 20000)
		done()
		if ctx.Err() != nil {
			return nil
		}
		if err := fs.watch.failure(); err != nil {
			metrics.ConsumerErrors.WithLabelValues(name, kindAuthentication).Inc()
			return p.consumerFailed(consumerError(kindAuthentication, "", -1, err, p.opts.Kafka.Group))
		}
		var fatal error
		transient := false
		fetches.EachError(func(topic string, partition int32, err error) {
			if fatal != nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				return
			}
			if errors.Is(err, kgo.ErrClientClosed) {
				fatal = err
				return
			}
			tp := topicPartition{topic, partition}
			kind := classifyFetchErr(err)
			metrics.ConsumerErrors.WithLabelValues(name, kind).Inc()
			switch kind {
			case kindTransient:
				transient = true
				p.log.Warn("fetch error; retrying", "topic", topic, "partition", partition, "kind", kind, "err", err)
			case kindUnknownTopic:
				since, ok := fs.unknownSince[tp]
				if !ok {
					fs.unknownSince[tp] = time.Now()
				}
				if !ok || time.Since(since) < unknownTopicGrace {
					transient = true
					p.log.Warn("fetch error; retrying", "topic", topic, "partition", partition, "kind", kind, "err", err)
					return
				}
				fatal = consumerError(kind, topic, partition, err, p.opts.Kafka.Group)
			case kindOutOfRange, kindDataLoss:
				fatal = p.onLogGap(ctx, adm, cl, tp, err, fs, workers)
				transient = true // skipped, or retried: a fetch from the new position follows
			default:
				fatal = consumerError(kind, topic, partition, err, p.opts.Kafka.Group)
			}
		})
		if fatal != nil {
			var ce *ConsumerError
			if errors.As(fatal, &ce) {
				return p.consumerFailed(ce)
			}
			return fatal
		}
		n := 0
		fetches.EachPartition(func(fp kgo.FetchTopicPartition) {
			tp := topicPartition{fp.Topic, fp.Partition}
			p.noteHWM(tp, fp.HighWatermark)
			if fp.Err == nil {
				delete(fs.unknownSince, tp)
			}
			if len(fp.Records) == 0 {
				return
			}
			n += len(fp.Records)
			w := workers[workerFor(tp, len(workers))]
			// Small work items keep a flush request, queued behind them,
			// close to the head of the queue: seal latency is the queue's
			// depth in work.
			for recs := fp.Records; len(recs) > 0; {
				k := min(len(recs), dispatchChunk)
				select {
				case w.in <- workItem{tp: tp, records: recs[:k:k]}:
				case <-ctx.Done():
					return
				}
				recs = recs[k:]
			}
			fs.pos[tp] = fp.Records[len(fp.Records)-1].Offset + 1
		})
		// A broker answering every fetch with an error at once must not
		// make this a busy loop.
		if transient && n == 0 {
			backoff = min(max(2*backoff, 50*time.Millisecond), 2*time.Second)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(backoff):
			}
		} else {
			backoff = 0
		}
	}
}

// consumerFailed makes a consumer error the pipeline's health and ends the
// run with it.
func (p *Pipeline) consumerFailed(err *ConsumerError) error {
	p.setHealth(err)
	return err
}

// onLogGap deals with records Kafka no longer has at tp's position: an
// offset out of range (retention deleted records floe had not committed, or
// the log is shorter than what floe read) or data loss franz-go detected
// (an unclean leader election truncated the log below what floe read).
//
// With on_data_loss: fail (the default) it returns a ConsumerError: the run
// ends, nothing is committed past the loss, and every restart stops at the
// same place until the operator acts. With skip, it moves the consumer to
// where Kafka's log resumes and queues a logGap for the partition's worker,
// ahead of any record read from there: the worker covers the missing
// offsets without records and the segment lists them (floe.skipped).
func (p *Pipeline) onLogGap(ctx context.Context, adm *kadm.Client, cl *kgo.Client, tp topicPartition, err error, fs *fetchState, workers []*worker) error {
	skip := p.opts.Pipeline.OnDataLoss == config.OnDataLossSkip
	e := &ConsumerError{Kind: classifyFetchErr(err), Topic: tp.topic, Partition: tp.partition, Err: err,
		Hint: "on_data_loss is fail, so the pipeline stops rather than commit past lost records; restore them, " +
			"or set on_data_loss: skip to resume at the first offset Kafka has (the skipped offsets are counted in " +
			"floe_ingest_skipped_records_total and listed in the snapshot summary as floe.skipped)"}
	var gap logGap
	var loss *kgo.ErrDataLoss
	if errors.As(err, &loss) {
		e.What = fmt.Sprintf("Kafka lost records floe had read: the log was cut back from offset %d to %d (an unclean leader election)",
			loss.ConsumedTo, loss.ResetTo)
		if !skip {
			return e
		}
		// The client already moved the consumer to ResetTo.
		gap = logGap{resume: loss.ResetTo, truncated: true, reason: err}
		if loss.ResetTo >= loss.ConsumedTo {
			p.log.Error("Kafka reports lost records below where floe resumes; it cannot tell which, so nothing is listed as skipped (on_data_loss: skip)",
				"topic", tp.topic, "partition", tp.partition, "offset", loss.ConsumedTo, "err", err)
		}
	} else {
		pos, known := fs.pos[tp]
		start, end, lerr := logBounds(ctx, adm, tp)
		switch {
		case lerr != nil:
			e.What = "the offset to read next is no longer in Kafka (listing the log's bounds failed: " + lerr.Error() + ")"
			if skip {
				// The consumer reports the partition again on its
				// next fetch; try then.
				p.log.Warn("offset out of range; listing the log's bounds failed, retrying", "topic", tp.topic, "partition", tp.partition, "err", lerr)
				return nil
			}
			return e
		case !known:
			e.What = fmt.Sprintf("the offset to read next is no longer in Kafka (the log spans %d to %d)", start, end)
			gap = logGap{resume: start, reason: err}
		case pos < start:
			e.What = fmt.Sprintf("offsets %d to %d are no longer in Kafka (retention deleted them before they were committed); the log starts at %d",
				pos, start-1, start)
			gap = logGap{resume: start, reason: err}
		case pos > end:
			e.What = fmt.Sprintf("offset %d is past the end of the log (%d): Kafka lost records floe had read (an unclean leader election, or the topic was recreated)",
				pos, end)
			gap = logGap{resume: end, truncated: true, reason: err}
		default:
			e.What = fmt.Sprintf("offset %d is out of range (the log spans %d to %d)", pos, start, end)
			gap = logGap{resume: pos, reason: err}
		}
		if !skip {
			return e
		}
		cl.SetOffsets(map[string]map[int32]kgo.EpochOffset{tp.topic: {tp.partition: {Epoch: -1, Offset: gap.resume}}})
	}
	fs.pos[tp] = gap.resume
	select {
	case workers[workerFor(tp, len(workers))].in <- workItem{tp: tp, gap: &gap}:
	case <-ctx.Done():
	}
	return nil
}

// logBounds lists a partition's log start and end offsets.
func logBounds(ctx context.Context, adm *kadm.Client, tp topicPartition) (start, end int64, err error) {
	starts, err := adm.ListStartOffsets(ctx, tp.topic)
	if err != nil {
		return 0, 0, err
	}
	ends, err := adm.ListEndOffsets(ctx, tp.topic)
	if err != nil {
		return 0, 0, err
	}
	s, ok1 := starts.Lookup(tp.topic, tp.partition)
	e, ok2 := ends.Lookup(tp.topic, tp.partition)
	switch {
	case !ok1 || !ok2:
		return 0, 0, fmt.Errorf("ingest: %s/%d: no offsets listed", tp.topic, tp.partition)
	case s.Err != nil:
		return 0, 0, s.Err
	case e.Err != nil:
		return 0, 0, e.Err
	}
	return s.Offset, e.Offset, nil
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

// closeWriters finishes every file of a seal, in parallel: on an object
// store, closing is mostly waiting for uploads. Every writer ends closed or
// aborted: when a worker's share carries an error, nothing is closed and all
// are aborted; when a close fails, the writers not closed yet are aborted
// (and the failed one too, which drops what it had written).
//
// A file floe cannot produce from its rows (fileio.ErrInvalidFile) fails the
// same way on every attempt, so that error is returned as fatal: the
// pipeline stops and says so rather than restarting forever.
func closeWriters(ctx context.Context, s seal) ([2][]iceberg.DataFile, error) {
	var out [2][]iceberg.DataFile
	for _, r := range s.results {
		if r.err != nil {
			abortSeal(s)
			return out, fatalIfInvalid(r.err)
		}
	}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for _, r := range s.results {
		for t := range 2 {
			for _, w := range r.writers[t] {
				g.Go(func() error {
					if gctx.Err() != nil {
						w.Abort()
						return gctx.Err()
					}
					files, err := w.Close(gctx)
					if err != nil {
						w.Abort()
						return err
					}
					mu.Lock()
					out[t] = append(out[t], files...)
					mu.Unlock()
					return nil
				})
			}
		}
	}
	if err := g.Wait(); err != nil {
		// Files closed before the failure are complete but never
		// committed: orphans, like those of a crash.
		return [2][]iceberg.DataFile{}, fatalIfInvalid(err)
	}
	return out, nil
}

// fatalIfInvalid turns an invalid-file error into one Run does not retry.
func fatalIfInvalid(err error) error {
	if errors.Is(err, fileio.ErrInvalidFile) {
		return &configError{err}
	}
	return err
}

// ensureTables loads or creates the main and dead-letter tables.
func (p *Pipeline) ensureTables(ctx context.Context, baseOpts []kgo.Opt) ([2]*table.Table, error) {
	var out [2]*table.Table
	cfg := p.opts.Pipeline
	ident := catalog.Ident(cfg.Table)
	tbl, err := p.opts.Catalog.LoadTable(ctx, ident)
	switch {
	case err == nil:
		out[tMain] = tbl
	case errors.Is(err, icecat.ErrNoSuchTable):
		sch, err := p.declaredOrInferredSchema(ctx, baseOpts)
		if err != nil {
			return out, err
		}
		spec, err := schema.Partition(cfg.PartitionBy, sch)
		if err != nil {
			return out, &configError{fmt.Errorf("pipelines[%s].partition_by: %w", cfg.Name, err)}
		}
		out[tMain], _, err = catalog.EnsureTable(ctx, p.opts.Catalog, ident, sch, spec, cfg.TableProperties)
		if err != nil {
			return out, err
		}
		p.log.Info("created table", "table", cfg.Table, "schema", sch.String(), "partition_spec", spec.String())
	default:
		return out, fmt.Errorf("ingest: load %s: %w", cfg.Table, err)
	}
	out[tDLQ], _, err = catalog.EnsureTable(ctx, p.opts.Catalog, catalog.Ident(cfg.DeadLetter()),
		DeadLetterSchema(), *iceberg.UnpartitionedSpec, nil)
	if err != nil {
		return out, err
	}
	return out, nil
}

func (p *Pipeline) declaredOrInferredSchema(ctx context.Context, baseOpts []kgo.Opt) (*iceberg.Schema, error) {
	cfg := p.opts.Pipeline
	if len(cfg.Schema) > 0 {
		sch, err := cfg.DeclaredSchema()
		if err != nil {
			return nil, &configError{err}
		}
		return sch, nil
	}
	return p.inferSchema(ctx, baseOpts)
}

// inferSchema reads the first records of the topics (from the configured
// start) and infers a schema from those that are JSON objects.
func (p *Pipeline) inferSchema(ctx context.Context, baseOpts []kgo.Opt) (*iceberg.Schema, error) {
	cfg := p.opts.Pipeline
	cl, err := kgo.NewClient(append(baseOpts, kgo.ConsumeTopics(cfg.Topics...), kgo.ConsumeResetOffset(startOffset(cfg.Start)))...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	var meta []string
	for _, m := range cfg.KafkaMetadata {
		name, err := schema.MetaColumnName(m)
		if err != nil {
			return nil, &configError{err}
		}
		meta = append(meta, name)
	}
	var samples [][]byte
	var firstAt time.Time
	p.log.Info("no schema declared: inferring it from the first records", "topics", cfg.Topics)
	for len(samples) < 1000 {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		fetches := cl.PollRecords(pctx, 1000)
		cancel()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		fetches.EachRecord(func(r *kgo.Record) {
			if len(r.Value) > 0 && r.Value[0] == '{' {
				samples = append(samples, append([]byte(nil), r.Value...))
			}
		})
		if len(samples) > 0 && firstAt.IsZero() {
			firstAt = time.Now()
		}
		if !firstAt.IsZero() && time.Since(firstAt) > 3*time.Second {
			break
		}
	}
	// Malformed records are dead letters, not evidence about the schema.
	valid := samples[:0]
	for _, v := range samples {
		if json.Valid(v) {
			valid = append(valid, v)
		}
	}
	if len(valid) == 0 {
		return nil, fmt.Errorf("ingest: pipelines[%s]: no JSON object among the first records to infer a schema from", cfg.Name)
	}
	sch, err := decode.InferSchema(valid, meta)
	if err == nil {
		return sch, nil
	}
	return nil, &configError{fmt.Errorf("pipelines[%s]: cannot infer a schema (declare one under schema:): %w", cfg.Name, err)}
}
