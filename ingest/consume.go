package ingest

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"

	"github.com/floelake/floe/commit"
	"github.com/floelake/floe/ingest/transform/dedup"
	"github.com/floelake/floe/internal/fileio"
)

// seal is one commit interval's output of every worker.
type seal struct {
	results []flushResult
	final   bool
}

// consumeSpec is what one run consumes, from where, and what takes its
// seals.
type consumeSpec struct {
	// outs holds the outputs the workers write to, in Outputs order.
	outs []outputSpec
	plan map[string]map[int32]kgo.Offset
	pos  map[topicPartition]int64
	// dedup is the dedup state the run starts with (a pipeline that drops
	// duplicates), by partition id.
	dedup map[string]*dedup.Partition
	// clocks are a windowed pipeline's newest event times per partition
	// where the run starts (max_lateness is measured from them).
	clocks commit.Offsets
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
//
// Goroutines: the poller (poll) and the sealer (the ticker loop) run in an
// errgroup; each worker runs w.run; the delivery runs spec.deliver; a
// watchdog bounds the commits after shutdown.
//
// Contexts, and what each one bounds:
//
//   - ctx is the caller's. Its end is a shutdown: consumption stops, and
//     what was consumed is sealed and delivered as the final seal.
//   - ingestCtx (from ctx) bounds consumption. The errgroup's gctx derives
//     from it, so it also ends when the poller or the sealer fails, and
//     consume cancels it itself when the delivery returns first.
//   - workCtx is detached from ctx: workers must still answer the final
//     flush after ctx has ended. It ends only when consume returns, after
//     which consume waits for every worker.
//   - commitCtx is detached from ctx too: the commits in flight at shutdown
//     (a catalog being retried, a leader awaited) get ShutdownTimeout more,
//     then the watchdog cancels it. consume also cancels it when ingestion
//     failed with ctx still live, since nothing more will be committed.
//
// Channels, and who closes them:
//
//   - seals (buffered, 2) carries seals from the sealer to the delivery. The
//     sealer closes it when it returns; on every return path consume drains
//     it and aborts the seals the delivery did not take.
//   - pollDone is closed by the poller when it returns. The sealer waits for
//     it before the final seal, so nothing is dispatched after the final
//     flush.
//   - deliverDone is closed by the delivery goroutine when spec.deliver
//     returns: from then on no seal is taken, and the sealer must not block
//     on seals.
//   - commitErr (buffered, 1) receives the delivery's result, once.
//
// The race the seal sender must survive: the ticker fires, the workers hand
// over their writers, and ctx ends before the delivery takes the seal (seals
// is full while a commit runs). A select on seals and gctx.Done would then
// drop a seal that holds consumed records: its writers would leak, and the
// final seal would start past its offsets, so the final commit would fail
// with a gap. send therefore delivers such a seal like the final one, and
// aborts a seal only when the run failed (gctx ended with ctx still live) or
// the delivery stopped; after an abort the sealer sends nothing more, so
// what is delivered stays contiguous.
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
		if workers[i], err = newWorker(p, spec.outs, runStart{pos: spec.pos, dedup: spec.dedup, clocks: spec.clocks}); err != nil {
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
		finish := func() {
			// Wait for the poller so nothing is dispatched after the
			// final flush, then seal what the workers hold.
			<-pollDone
			if ctx.Err() != nil {
				s := sealAll(workers)
				s.final = true
				p.afterSeal(s)
				send(s)
			}
		}
		for {
			select {
			case <-gctx.Done():
				finish()
				return nil
			case <-t.C:
				if gctx.Err() != nil {
					// A tick that came while a send blocked loses to the
					// stop: after it, only the final seal is made.
					finish()
					return nil
				}
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

func (p *Pipeline) afterSeal(s seal) {
	if p.sealed != nil {
		p.sealed(s)
	}
}

// abortSeal discards a seal's unfinished files: every writer it holds is
// aborted (aborting a writer that was closed already is harmless).
func abortSeal(s seal) {
	for _, r := range s.results {
		for _, o := range r.outs {
			for _, w := range o.writers {
				w.Abort()
			}
		}
	}
}

// outputs is the number of outputs a seal's shares are split into.
func (s seal) outputs() int {
	n := 0
	for _, r := range s.results {
		n = max(n, len(r.outs))
	}
	return n
}

// closeWriters finishes every file of a seal, in parallel (on an object
// store, closing is mostly waiting for uploads), and returns them per
// output, in Outputs order. Every writer ends closed or aborted: when a
// worker's share carries an error, nothing is closed and all are aborted;
// when a close fails, the writers not closed yet are aborted (and the failed
// one too, which drops what it had written).
//
// A file floe cannot produce from its rows (fileio.ErrInvalidFile) fails the
// same way on every attempt, so that error is returned as fatal: the
// pipeline stops and says so rather than restarting forever.
func closeWriters(ctx context.Context, s seal) ([][]iceberg.DataFile, error) {
	for _, r := range s.results {
		if r.err != nil {
			abortSeal(s)
			return nil, fatalIfInvalid(r.err)
		}
	}
	out := make([][]iceberg.DataFile, s.outputs())
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for _, r := range s.results {
		for t, o := range r.outs {
			for _, w := range o.writers {
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
		return nil, fatalIfInvalid(err)
	}
	return out, nil
}

// fatalIfInvalid turns an invalid-file error into one that is not retried:
// it stops the node (a configuration error).
func fatalIfInvalid(err error) error {
	if errors.Is(err, fileio.ErrInvalidFile) {
		return &configError{err}
	}
	return err
}
