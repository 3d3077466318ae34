package ingest

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// dispatchChunk bounds one work item; with workerQueue it bounds the
// records waiting in front of a worker (and so a flush's delay and the
// memory they hold) to about dispatchChunk*workerQueue.
const (
	dispatchChunk = 4096
	workerQueue   = 8
)

func workerFor(tp topicPartition, n int) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(tp.topic))
	return int((h.Sum32() + uint32(tp.partition)) % uint32(n))
}

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
			p.metrics().ConsumerError(name, kindAuthentication)
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
			p.metrics().ConsumerError(name, kind)
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
	skip := p.opts.Pipeline.OnDataLoss == OnDataLossSkip
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
