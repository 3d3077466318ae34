package gen

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// ProducerConfig configures Produce.
type ProducerConfig struct {
	Topic string
	Kind  Kind
	// Rate is the target in records per second; 0 produces as fast as the
	// client accepts records.
	Rate int
	// Limit stops after this many records; 0 means unlimited.
	Limit int64
	Gen   Config
}

// ProducerStats counts records acknowledged by the broker. They are updated
// from produce callbacks, so read them with Load while Produce runs.
// Produced counts every record, Malformed and Tombstones (records with a
// nil value: deletions of an order) some of them.
type ProducerStats struct {
	Produced, Malformed, Tombstones atomic.Int64
}

// slabSize is the memory block records are carved from: one allocation per
// few hundred records instead of one per record. A slab stays alive until
// its last record is acknowledged, which is fine for a bounded buffer.
const (
	slabSize    = 256 << 10
	recordBatch = 512
)

// Produce produces events of cfg.Kind to cfg.Topic at a steady cfg.Rate
// until ctx is done or cfg.Limit records were produced, keyed as
// Generator.Next keys them (the user id, the order id) so that one entity's
// events stay in one partition, in order. A Tombstone is produced with a
// nil value.
//
// With a Limit it returns after every record was acknowledged, so stats
// then count exactly Limit records. A cancelled ctx is the normal way to
// stop an unlimited producer and is not an error; records still in flight
// at that point may or may not reach the broker. The first failed record
// stops production and its error is returned. stats may be nil.
func Produce(ctx context.Context, cl *kgo.Client, cfg ProducerConfig, stats *ProducerStats) error {
	if cfg.Topic == "" {
		return errors.New("gen: ProducerConfig.Topic must not be empty")
	}
	if cfg.Rate < 0 {
		return fmt.Errorf("gen: ProducerConfig.Rate = %d: must be >= 0 (0 = as fast as possible)", cfg.Rate)
	}
	if cfg.Limit < 0 {
		return fmt.Errorf("gen: ProducerConfig.Limit = %d: must be >= 0 (0 = unlimited)", cfg.Limit)
	}
	g, err := New(cfg.Kind, cfg.Gen)
	if err != nil {
		return err
	}
	if stats == nil {
		stats = new(ProducerStats)
	}

	var firstErr atomic.Pointer[error]
	fail := func(err error) {
		// Cancellation errors are how records in flight report a stop the
		// caller asked for.
		if ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
			return
		}
		firstErr.CompareAndSwap(nil, &err)
	}
	// Two fixed callbacks rather than a closure per record: at millions of
	// records per second the allocation shows.
	onValid := func(_ *kgo.Record, err error) {
		if err != nil {
			fail(err)
			return
		}
		stats.Produced.Add(1)
	}
	onMalformed := func(_ *kgo.Record, err error) {
		if err != nil {
			fail(err)
			return
		}
		stats.Produced.Add(1)
		stats.Malformed.Add(1)
	}
	onTombstone := func(_ *kgo.Record, err error) {
		if err != nil {
			fail(err)
			return
		}
		stats.Produced.Add(1)
		stats.Tombstones.Add(1)
	}

	var (
		slab  []byte
		recs  []kgo.Record
		n     int64
		start = time.Now()
		timer *time.Timer
	)
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for cfg.Limit == 0 || n < cfg.Limit {
		if n%64 == 0 && (ctx.Err() != nil || firstErr.Load() != nil) {
			break
		}
		if cfg.Rate > 0 {
			// Pace against the start time rather than sleeping 1/Rate per
			// record: sleeps overshoot, and the error would accumulate.
			due := start.Add(time.Duration(float64(n) / float64(cfg.Rate) * float64(time.Second)))
			if wait := time.Until(due); wait > 0 {
				if timer == nil {
					timer = time.NewTimer(wait)
				} else {
					timer.Reset(wait)
				}
				select {
				case <-ctx.Done():
				case <-timer.C:
				}
				if ctx.Err() != nil {
					break
				}
			}
		}

		if cap(slab)-len(slab) < 2048 {
			slab = make([]byte, 0, slabSize)
		}
		if len(recs) == 0 {
			recs = make([]kgo.Record, recordBatch)
		}
		off := len(slab)
		var (
			key   []byte
			class Class
		)
		slab, key, class = g.Next(slab)
		vEnd := len(slab)
		slab = append(slab, key...)
		// Cap both slices so nobody appending to them can scribble over the
		// neighbouring record in the slab.
		rec := &recs[0]
		recs = recs[1:]
		rec.Topic = cfg.Topic
		rec.Value = slab[off:vEnd:vEnd]
		rec.Key = slab[vEnd:len(slab):len(slab)]
		switch class {
		case Malformed:
			cl.Produce(ctx, rec, onMalformed)
		case Tombstone:
			rec.Value = nil
			cl.Produce(ctx, rec, onTombstone)
		default:
			cl.Produce(ctx, rec, onValid)
		}
		n++
	}

	if ctx.Err() == nil {
		if err := cl.Flush(ctx); err != nil && ctx.Err() == nil {
			return fmt.Errorf("gen: flush: %w", err)
		}
	}
	if p := firstErr.Load(); p != nil {
		return fmt.Errorf("gen: produce to %q: %w", cfg.Topic, *p)
	}
	return nil
}
