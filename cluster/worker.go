package cluster

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/floelake/floe/commit"
	"github.com/floelake/floe/ingest"
	"github.com/floelake/floe/internal/clock"
	"github.com/floelake/floe/internal/failpoint"
	"github.com/floelake/floe/internal/fileio"
)

// run is one incarnation of a node's work on a pipeline: the partitions it
// owned, at which epochs, when the run started. A run ends as soon as any
// of them changes (a partition taken away, or a new one given).
type run struct {
	pipeline string
	epochs   map[commit.PartitionKey]uint64
	start    commit.Offsets
	floors   []commit.Offsets // per output, in the pipeline's Outputs order
	// accepted holds the main table's entries of the pending segments,
	// read before start (see ingest.Assignment.Accepted).
	accepted []commit.SegmentEntry
}

// errReassigned ends a run whose assignment changed.
var errReassigned = errors.New("cluster: assignment changed")

// errDetached ends a run on a node that is no longer in touch with a leader
// or no longer a member: its proposals could not be accepted anyway.
var errDetached = errors.New("cluster: not in touch with the cluster")

// work consumes the node's partitions of p until ctx ends, restarting the
// consumption whenever the assignment changes.
func (n *Node) work(ctx context.Context, p *ingest.Pipeline) {
	name := p.Config().Name
	defer n.metrics().PipelineStopped(name)
	for ctx.Err() == nil {
		n.catchUp(ctx)
		r, ok := n.nextRun(p)
		n.metrics().PartitionsOwned(name, len(r.epochs))
		if !ok {
			select {
			case <-ctx.Done():
				return
			case <-n.ledger.Changed():
			case <-time.After(500 * time.Millisecond):
			}
			continue
		}
		n.log.Info("consuming", "pipeline", name, "partitions", len(r.epochs), "start", r.start.Encode())
		runCtx, cancel := context.WithCancelCause(ctx)
		watchDone := make(chan struct{})
		go func() { defer close(watchDone); n.watchRun(runCtx, cancel, p, r) }()
		outs := p.Outputs()
		err := p.RunAssigned(runCtx, ingest.Assignment{
			Start: r.start, Floors: r.floors, Accepted: r.accepted,
			Deliver: func(dctx context.Context, b ingest.Batch) error {
				return n.deliver(dctx, r, outs, b)
			},
		})
		cause := context.Cause(runCtx)
		cancel(nil)
		<-watchDone
		switch {
		case ctx.Err() != nil:
			return
		case cause != nil:
			// Ended on purpose: whatever failed on the way out failed
			// because of the cancellation.
			n.log.Info("assignment changed; restarting consumption", "pipeline", name, "reason", cause, "last_err", err)
		case err != nil:
			var rej *rejectedError
			var change *ingest.SchemaChangeError
			if ingest.IsConfigError(err) {
				n.pipelineFailed(name, err)
				return
			}
			if errors.As(err, &change) {
				// Not a failure: the table takes the new writer schema
				// first, then the records are read again.
				n.log.Info("a writer schema needs the table's schema to change; changing it", "pipeline", name, "schema_id", change.SchemaID, "changes", len(change.Changes))
				err := n.evolveSchema(ctx, change)
				switch {
				case err == nil || ctx.Err() != nil:
				case errors.Is(err, ErrSchemaRefused):
					// The table's answer, the same however often it is
					// asked: the records of this writer schema are dead
					// letters, like those of a writer schema the run
					// finds incompatible itself, and the pipeline goes on
					// at once.
					p.RefuseSchema(change, err.Error())
					attrs := []any{"pipeline", name, "schema_id", change.SchemaID}
					if len(change.Indexes) > 0 {
						attrs = append(attrs, "message_indexes", change.Indexes)
					}
					why := strings.TrimPrefix(err.Error(), ErrSchemaRefused.Error()+": ")
					n.log.Warn(fmt.Sprintf("the table refuses writer schema %d: %s; its records go to the dead-letter table", change.SchemaID, why), attrs...)
				default:
					// ErrInvalidArgument: the leader runs no such
					// pipeline, or runs it without schema evolution (or
					// could not read the request). Only the operator can
					// fix that; the records wait, nothing is lost, and
					// the change is asked for again now and then.
					n.log.Error("the leader refused the schema change request: its configuration of this pipeline differs from this node's; "+
						"give every node the same pipelines section (the pipeline, with schema_evolution: add) and the same floe version; "+
						"the records of this writer schema wait", "pipeline", name, "schema_id", change.SchemaID, "err", err)
					select {
					case <-ctx.Done():
					case <-time.After(10 * time.Second):
					}
				}
				continue
			}
			if ingest.IsPause(err) {
				n.log.Warn("consumption paused; retrying from the ledger's offsets", "pipeline", name, "err", err)
				select {
				case <-ctx.Done():
				case <-time.After(pauseFor):
				}
				continue
			}
			if errors.As(err, &rej) {
				n.log.Warn("segment rejected; reloading the assignment", "pipeline", name, "err", err)
			} else {
				n.metrics().PipelineRestarted(name)
				n.log.Error("consumption failed; restarting from the ledger's offsets", "pipeline", name, "err", err)
			}
			// Let the local ledger catch up (or the failure pass).
			select {
			case <-ctx.Done():
			case <-n.ledger.Changed():
			case <-time.After(time.Second):
			}
		}
	}
}

// pauseFor is how long a paused run (an unreachable schema registry, or one
// that does not know a schema id yet) waits before consuming again.
const pauseFor = 2 * time.Second

// noteSeen records that the leader applied index for this node.
func (n *Node) noteSeen(index uint64) {
	for {
		cur := n.seen.Load()
		if index <= cur || n.seen.CompareAndSwap(cur, index) {
			return
		}
	}
}

// catchUp waits (a while at most) until the local replica has applied every
// entry the leader applied for this node, so a run planned from it starts
// after this node's own accepted segments, not inside them.
//
// It also waits for the entries the leader has committed (as this replica
// last heard), so a member restarted with an old log does not plan runs
// from the state it is replaying.
func (n *Node) catchUp(ctx context.Context) {
	want := max(n.seen.Load(), n.raft.CommitIndex())
	deadline := time.Now().Add(5 * time.Second)
	for n.ledger.LastIndex() < want && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return
		case <-n.ledger.Changed():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// attached reports whether the node may consume: it is a member and in
// touch with a leader.
func (n *Node) attached() bool {
	if !n.ledger.IsMember(n.id) {
		return false
	}
	if n.raft.IsLeader() {
		return true
	}
	id, _ := n.raft.Leader()
	return id != "" && time.Since(n.raft.LastContact()) < n.cfg.DeadAfter.D()
}

// Ready returns nil when the node is a member in touch with a leader, its
// pipelines consume without trouble, and (on the leader) every table
// writer commits.
func (n *Node) Ready() error {
	failed := n.failedErr()
	switch {
	case n.localRaft && !n.attached():
		return errors.Join(errors.New("starting"), failed, n.waiting())
	case !n.ledger.IsMember(n.id):
		return errors.New("not a member of the cluster yet")
	case !n.attached():
		return errors.New("not in touch with a leader")
	}
	errs := []error{failed}
	for _, p := range n.pipelines {
		// A member may own no partition of a pipeline; a single node owns
		// them all, so it is not ready until each pipeline consumes.
		if n.isFailed(p.Name()) {
			continue
		}
		if err := p.Healthy(); err != nil && (n.localRaft || !errors.Is(err, ingest.ErrNotConsuming)) {
			errs = append(errs, fmt.Errorf("pipeline %s: %w", p.Name(), err))
		}
	}
	n.writers.Range(func(k, v any) bool {
		if err := v.(*commit.TableWriter).Healthy(); err != nil {
			errs = append(errs, fmt.Errorf("commits to %s are failing: %w", k, err))
		}
		return true
	})
	return errors.Join(errs...)
}

// waiting says what pipelines that have not started wait for (a topic to
// exist, records to infer a schema from).
func (n *Node) waiting() error {
	var errs []error
	for _, p := range n.pipelines {
		if err := p.Healthy(); err != nil && !n.isFailed(p.Name()) && !errors.Is(err, ingest.ErrNotConsuming) {
			errs = append(errs, fmt.Errorf("pipeline %s: %w", p.Name(), err))
		}
	}
	return errors.Join(errs...)
}

func (n *Node) isFailed(name string) bool {
	n.failed.Lock()
	defer n.failed.Unlock()
	_, ok := n.failed.m[name]
	return ok
}

// nextRun reads the node's assignment for p from the local ledger. ok is
// false when there is nothing to consume.
func (n *Node) nextRun(p *ingest.Pipeline) (run, bool) {
	name := p.Config().Name
	r := run{pipeline: name, epochs: n.ledger.Owned(name, n.id), start: commit.Offsets{}}
	if len(r.epochs) == 0 || !n.attached() {
		return r, false
	}
	// A stateful transform starts from the state at the start offsets: the
	// table's plus that of the segments pending then, read at the same
	// point of the log (what is committed by the time the run loads the
	// table is in both; the run checks that they meet).
	var next map[commit.PartitionKey]int64
	if _, ok := p.Transform().Dedups(); ok || p.Config().Windowed() {
		var pend []commit.PendingSegment
		next, pend = n.ledger.NextAndPending(name, p.Config().Table)
		for _, ps := range pend {
			if ps.Pipeline == name {
				r.accepted = append(r.accepted, ps.SegmentEntry)
			}
		}
	}
	var ends []commit.Offsets
	for _, o := range p.Outputs() {
		ends = append(ends, n.ledger.TableEnd(o.Table))
		r.floors = append(r.floors, commit.Offsets{})
	}
	for k := range r.epochs {
		nx, ok := n.ledger.NextExpected(name, k.Topic, k.Partition)
		if next != nil {
			nx, ok = next[k]
		}
		if !ok {
			// The leader has not recorded where this partition starts.
			delete(r.epochs, k)
			continue
		}
		r.start.Set(k.Topic, k.Partition, nx)
		for t := range ends {
			f, ok := ends[t].Get(k.Topic, k.Partition)
			if !ok {
				// The table's writer has not told the ledger where the
				// table is yet (a new leader's writers reconcile one by
				// one): a floor guessed now could lie below the table's
				// end, and the run's first segment would be refused.
				// Wait for it.
				return r, false
			}
			r.floors[t].Set(k.Topic, k.Partition, f)
		}
	}
	return r, len(r.epochs) > 0
}

// watchRun cancels the run when the node's assignment for its pipeline
// changes or the node loses touch with the cluster.
func (n *Node) watchRun(ctx context.Context, cancel context.CancelCauseFunc, p *ingest.Pipeline, r run) {
	detachedSince := time.Time{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.ledger.Changed():
		case <-time.After(200 * time.Millisecond):
		}
		if !maps.Equal(n.ledger.Owned(r.pipeline, n.id), r.epochs) {
			cancel(errReassigned)
			return
		}
		if n.attached() {
			detachedSince = time.Time{}
			continue
		}
		if detachedSince.IsZero() {
			detachedSince = time.Now()
		}
		if time.Since(detachedSince) > n.cfg.HeartbeatInterval.D() {
			cancel(errDetached)
			return
		}
	}
}

// rejectedError is a segment the ledger refused: the run must end, and the
// segment's files are orphans.
type rejectedError struct{ err error }

func (e *rejectedError) Error() string { return "segment rejected: " + e.err.Error() }
func (e *rejectedError) Unwrap() error { return e.err }

// deliver proposes a batch as one segment. Proposals whose outcome is
// unknown are retried: a retry of an accepted proposal is rejected as an
// overlap ending exactly where the proposal ends, which means accepted.
func (n *Node) deliver(ctx context.Context, r run, outs []ingest.Output, b ingest.Batch) error {
	prop := commit.ProposeSegment{Pipeline: r.pipeline, Owner: n.id, Epochs: commit.Epochs{}}
	for i, seg := range b.Segments {
		if seg.To.Len() == 0 {
			continue
		}
		e := commit.SegmentEntry{Table: outs[i].Table, From: seg.From, To: seg.To, Records: seg.Records, Skipped: seg.Skipped, EventTimes: seg.EventTimes}
		if !seg.Watermark.IsZero() {
			e.WatermarkMs = seg.Watermark.UnixMilli()
		}
		if len(seg.Files) > 0 {
			blob, err := fileio.EncodeDataFiles(seg.Files)
			if err != nil {
				return err
			}
			e.Files = blob
		}
		prop.Tables = append(prop.Tables, e)
		for topic, ps := range seg.To {
			for part := range ps {
				epoch, ok := r.epochs[commit.PartitionKey{Pipeline: r.pipeline, Topic: topic, Partition: part}]
				if !ok {
					return fmt.Errorf("cluster: batch covers %s/%d, which this run does not own", topic, part)
				}
				prop.Epochs.Set(topic, part, epoch)
			}
		}
	}
	if len(prop.Tables) == 0 {
		return nil
	}
	if b.Final && !n.stillOwns(r.pipeline, prop.Epochs) {
		// A partition it covers moved: the ledger would refuse the segment.
		n.metrics().SegmentProposed(r.pipeline, "dropped")
		n.log.Info("assignment changed; dropping the last batch (its records are consumed again by their owner)", "pipeline", r.pipeline)
		return nil
	}
	if err := n.awaitRoom(ctx, prop); err != nil {
		return err
	}
	cmd, err := commit.EncodeProposeSegment(prop)
	if err != nil {
		return err
	}
	backoff := 50 * time.Millisecond
	for attempt := 0; ; attempt++ {
		res, err := n.applyOnLeader(ctx, cmd)
		if err == nil {
			// The proposal is applied; an injected error here is an
			// answer lost on the way back.
			err = failpoint.Hit("cluster/after-propose")
		}
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("cluster: propose segment: %w", ctx.Err())
			}
			n.log.Debug("proposal not applied; retrying", "err", err, "attempt", attempt)
			if clock.Sleep(ctx, backoff) != nil {
				return fmt.Errorf("cluster: propose segment: %w", ctx.Err())
			}
			backoff = min(backoff*2, time.Second)
			continue
		}
		if res.Err == nil {
			n.metrics().SegmentProposed(r.pipeline, "accepted")
			n.noteSeen(res.SegmentID)
			if n.raft.IsLeader() {
				// Only this node's own commits can take them.
				n.samples.put(res.SegmentID, b.Samples)
			}
			return nil
		}
		if attempt > 0 && acceptedEarlier(res.Err, prop) {
			n.metrics().SegmentProposed(r.pipeline, "accepted")
			return nil
		}
		n.metrics().SegmentProposed(r.pipeline, rejectionKind(res.Err))
		if b.Final {
			// The run is ending anyway; the records are consumed again by
			// whoever owns them now.
			n.log.Info("last batch rejected; its records are consumed again by their owner", "pipeline", r.pipeline, "reason", res.Err)
			return nil
		}
		return &rejectedError{res.Err}
	}
}

// roomRecheck is how often awaitRoom reads the ledger again when no change
// was notified: a safety net, the notification is what wakes it.
var roomRecheck = time.Second

// awaitRoom waits until every table of prop has fewer than
// commit.MaxPendingSegments pending segments, or ctx ends.
func (n *Node) awaitRoom(ctx context.Context, prop commit.ProposeSegment) error {
	warned := false
	for {
		// Taken before the state is read: a change after the read closes
		// this channel, so it cannot slip between the read and the wait.
		changed := n.ledger.Changed()
		full := ""
		for _, t := range n.ledger.Tables() {
			for _, e := range prop.Tables {
				if e.Table == t.Table && t.PendingSegments >= commit.MaxPendingSegments {
					full = t.Table
				}
			}
		}
		if full == "" {
			return nil
		}
		if !warned {
			n.log.Warn("the leader is not committing; holding back until it does", "table", full, "pending_segments", commit.MaxPendingSegments)
			warned = true
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster: propose segment: %w", ctx.Err())
		case <-changed:
		case <-time.After(roomRecheck):
		}
	}
}

// stillOwns reports whether the local ledger still gives this node every
// partition of epochs, at those epochs.
func (n *Node) stillOwns(pipeline string, epochs commit.Epochs) bool {
	owned := n.ledger.Owned(pipeline, n.id)
	for topic, ps := range epochs {
		for part, e := range ps {
			if have, ok := owned[commit.PartitionKey{Pipeline: pipeline, Topic: topic, Partition: part}]; !ok || have != e {
				return false
			}
		}
	}
	return true
}

// acceptedEarlier reports whether err is the ledger's answer to a retried
// proposal that an earlier attempt got accepted: an overlap whose expected
// offset is exactly where the proposal ends.
func acceptedEarlier(err error, prop commit.ProposeSegment) bool {
	var gap *commit.OffsetGapError
	if !errors.As(err, &gap) || gap.Got >= gap.Want {
		return false
	}
	for _, e := range prop.Tables {
		if to, ok := e.To.Get(gap.Topic, gap.Partition); ok {
			return to == gap.Want
		}
	}
	return false
}

func rejectionKind(err error) string {
	var (
		stale *commit.StaleEpochError
		owner *commit.NotOwnerError
		gap   *commit.OffsetGapError
	)
	switch {
	case errors.As(err, &stale):
		return "rejected_stale_epoch"
	case errors.As(err, &owner):
		return "rejected_not_owner"
	case errors.As(err, &gap):
		return "rejected_offset_gap"
	default:
		return "rejected_other"
	}
}
