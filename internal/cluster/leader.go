package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/apache/iceberg-go"

	"github.com/floelake/floe/catalog"
	"github.com/floelake/floe/commit"
	"github.com/floelake/floe/ingest"
	"github.com/floelake/floe/internal/fileio"
	"github.com/floelake/floe/internal/metrics"
)

// leadership runs the leader's duties whenever this node leads, until ctx
// ends. It is LeaderCh's only reader.
func (n *Node) leadership(ctx context.Context) {
	var term *leaderTerm
	stop := func() {
		if term != nil {
			term.cancel()
			<-term.done
			term = nil
			metrics.ClusterLeader.Set(0)
			metrics.ClusterLeaderChanges.Inc()
			n.log.Info("stopped leading")
		}
	}
	defer stop()
	check := time.NewTicker(time.Second)
	defer check.Stop()
	for {
		var leading bool
		select {
		case <-ctx.Done():
			return
		case leading = <-n.raft.LeaderCh():
		case <-check.C:
			// LeaderCh can coalesce transitions; re-check now and then.
			leading = n.raft.IsLeader()
		}
		switch {
		case leading && term == nil:
			lctx, cancel := context.WithCancel(ctx)
			term = &leaderTerm{cancel: cancel, done: make(chan struct{})}
			metrics.ClusterLeader.Set(1)
			metrics.ClusterLeaderChanges.Inc()
			n.log.Info("leading the cluster")
			go func(done chan struct{}) { defer close(done); n.lead(lctx) }(term.done)
		case !leading && term != nil:
			stop()
		}
	}
}

// leaderTerm is one stretch of leadership: its duties' cancel and end.
type leaderTerm struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// lead runs the leader's duties until ctx ends: reconcile the ledger with
// the tables, then assign partitions and commit every table.
func (n *Node) lead(ctx context.Context) {
	if err := retry(ctx, n, "barrier", func() error { return n.raft.Barrier(ctx) }); err != nil {
		return
	}
	if !n.ledger.IsMember(n.id) {
		cmd, err := commit.EncodeAddMember(commit.AddMember{ID: n.id, RaftAddr: n.raft.Addr(), APIAddr: n.apiAddr, At: time.Now()})
		if err != nil {
			n.log.Error("encode add member", "err", err)
			return
		}
		if err := retry(ctx, n, "add self as member", func() error {
			_, err := n.applyHere(ctx, cmd)
			return err
		}); err != nil {
			return
		}
	}
	since := time.Now()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); n.assign(ctx, since) }()
	wg.Add(1)
	go func() { defer wg.Done(); n.lagLoop(ctx) }()
	for _, p := range n.pipelines {
		wg.Add(1)
		go func() { defer wg.Done(); n.leadPipeline(ctx, p) }()
	}
	wg.Wait()
}

// retry calls f with backoff until it succeeds or ctx ends.
func retry(ctx context.Context, n *Node, what string, f func() error) error {
	backoff := 100 * time.Millisecond
	for {
		err := f()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		n.log.Warn(what+" failed; retrying", "err", err, "backoff", backoff)
		if err := sleepCtx(ctx, backoff); err != nil {
			return err
		}
		backoff = min(backoff*2, 10*time.Second)
	}
}

// leadPipeline prepares a pipeline's tables (creating them, recording
// start offsets), reconciles the ledger with their summaries, and commits
// both tables until ctx ends. It looks for new partitions now and then.
func (n *Node) leadPipeline(ctx context.Context, p *ingest.Pipeline) {
	var prep ingest.Prepared
	if err := retry(ctx, n, "prepare tables", func() (err error) {
		prep, err = p.Prepare(ctx)
		return err
	}); err != nil {
		return
	}
	main, dlq := p.TableNames()
	if err := retry(ctx, n, "reconcile", func() error {
		return n.reconcile(ctx, []*commit.Committer{prep.Main, prep.DeadLetter}, []string{main, dlq})
	}); err != nil {
		return
	}
	known := countPartitions(prep.Partitions)
	var wg sync.WaitGroup
	for _, t := range []struct {
		name string
		c    *commit.Committer
	}{{main, prep.Main}, {dlq, prep.DeadLetter}} {
		wg.Add(1)
		go func() { defer wg.Done(); n.commitTable(ctx, p, t.name, t.c) }()
	}
	defer wg.Wait()

	tick := time.NewTicker(n.opts.PartitionCheckEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		again, err := p.Prepare(ctx)
		if err != nil {
			n.log.Warn("partition check failed", "err", err)
			continue
		}
		if c := countPartitions(again.Partitions); c != known {
			n.log.Info("topic partitions changed", "pipeline", p.Name(), "was", known, "now", c)
			if err := n.reconcile(ctx, []*commit.Committer{again.Main, again.DeadLetter}, []string{main, dlq}); err != nil {
				n.log.Warn("reconcile after new partitions failed", "err", err)
				continue
			}
			known = c
		}
	}
}

func countPartitions(m map[string][]int32) int {
	c := 0
	for _, ps := range m {
		c += len(ps)
	}
	return c
}

// reconcile reports tables' current snapshots and offsets to the ledger.
func (n *Node) reconcile(ctx context.Context, cs []*commit.Committer, names []string) error {
	rc := commit.Reconcile{}
	for i, c := range cs {
		rc.Tables = append(rc.Tables, commit.ReconciledTable{
			Table: names[i], Pipeline: c.Pipeline(), SnapshotID: c.LastSnapshot(), Offsets: c.Offsets(),
		})
	}
	cmd, err := commit.EncodeReconcile(rc)
	if err != nil {
		return err
	}
	res, err := n.applyHere(ctx, cmd)
	if err != nil {
		return err
	}
	n.log.Info("reconciled the ledger with the tables", "tables", names,
		"dropped_segments", len(res.Dropped), "conflicts", res.Conflicts, "behind", len(res.Behind))
	for _, b := range res.Behind {
		n.log.Warn("a table's offsets are behind the ledger's (rolled back?); not applied", "detail", b.Error())
	}
	if len(res.Conflicts) > 0 {
		n.log.Error("pending segments overlap the tables' offsets; they cannot be committed", "segments", res.Conflicts)
	}
	return nil
}

// commitTable commits the table's accepted segments, oldest first, all
// pending ones in one snapshot, until ctx ends. A table whose pending
// entries carry no rows (a dead-letter table on clean input) commits only
// every offsetsOnlyEvery, to bound what a restart re-reads without a
// snapshot per interval.
func (n *Node) commitTable(ctx context.Context, p *ingest.Pipeline, name string, c *commit.Committer) {
	interval := p.Config().CommitInterval.D()
	minGap := interval / 2
	offsetsOnlyEvery := max(30*time.Second, 10*interval)
	last := time.Now()
	backoff := 100 * time.Millisecond
	defer metrics.ClusterPendingSegments.DeleteLabelValues(name)
	for {
		changed := n.ledger.Changed()
		pend := n.ledger.Pending(name)
		metrics.ClusterPendingSegments.WithLabelValues(name).Set(float64(len(pend)))
		if len(pend) > 0 && (n.flushing.Load() || hasRows(pend) || time.Since(last) >= offsetsOnlyEvery || len(pend) >= 512) {
			if wait := minGap - time.Since(last); wait > 0 && !n.flushing.Load() {
				if sleepCtx(ctx, wait) != nil {
					return
				}
				continue
			}
			next, err := n.commitPending(ctx, p, name, c, pend)
			if next != nil {
				c = next
			}
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				n.log.Error("commit failed", "table", name, "err", err, "backoff", backoff)
				if sleepCtx(ctx, backoff) != nil {
					return
				}
				backoff = min(backoff*2, 10*time.Second)
				continue
			}
			backoff = 100 * time.Millisecond
			last = time.Now()
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-time.After(time.Second):
		}
	}
}

func hasRows(pend []commit.PendingSegment) bool {
	for _, s := range pend {
		if s.Records > 0 || len(s.Files) > 0 {
			return true
		}
	}
	return false
}

// commitPending commits pend as one snapshot and reports it to the ledger.
// When the table has moved under the ledger (a previous leader's commit
// landed after this one reconciled), it reloads the table, reconciles, and
// returns the reloaded committer; the caller reads the pending list again.
func (n *Node) commitPending(ctx context.Context, p *ingest.Pipeline, name string, c *commit.Committer, pend []commit.PendingSegment) (*commit.Committer, error) {
	spec, sch := c.Table().Spec(), c.Table().Schema()
	seg := commit.Segment{From: commit.Offsets{}, To: commit.Offsets{}}
	ids := make([]uint64, 0, len(pend))
	var watermark int64
	for _, ps := range pend {
		var files []iceberg.DataFile
		if len(ps.Files) > 0 {
			var err error
			if files, err = fileio.DecodeDataFiles(ps.Files, spec, sch); err != nil {
				return nil, fmt.Errorf("cluster: segment %d of %s: %w", ps.ID, name, err)
			}
		}
		if err := seg.Append(commit.Segment{From: ps.From, To: ps.To, Records: ps.Records, Files: files, Skipped: ps.Skipped}); err != nil {
			return nil, fmt.Errorf("cluster: segment %d of %s: %w", ps.ID, name, err)
		}
		watermark = max(watermark, ps.WatermarkMs)
		ids = append(ids, ps.ID)
	}
	if watermark > 0 {
		seg.Watermark = time.UnixMilli(watermark)
	}
	res, err := c.Commit(ctx, seg)
	var gap *commit.OffsetGapError
	if errors.As(err, &gap) {
		n.log.Warn("the table moved under the ledger; reloading and reconciling", "table", name, "err", err)
		fresh, lerr := commit.New(ctx, n.opts.Catalog, commit.Config{Pipeline: p.Config().Name, Table: catalog.Ident(name), Logger: n.log})
		if lerr != nil {
			return nil, lerr
		}
		return fresh, n.reconcile(ctx, []*commit.Committer{fresh}, []string{name})
	}
	if err != nil {
		return nil, err
	}
	cmd, err := commit.EncodeCommitSegments(commit.CommitSegments{Table: name, SnapshotID: res.SnapshotID, Offsets: c.Offsets(), Segments: ids})
	if err != nil {
		return nil, err
	}
	ar, err := n.Apply(ctx, cmd)
	if err != nil {
		// Not the leader any more, or unknown: the next leader reconciles
		// from the table, which holds the commit.
		return nil, err
	}
	if ar.Err != nil {
		n.log.Error("the ledger refused a commit report; reconciling", "table", name, "err", ar.Err)
		return nil, n.reconcile(ctx, []*commit.Committer{c}, []string{name})
	}
	n.log.Debug("committed", "table", name, "snapshot_id", res.SnapshotID, "segments", len(ids),
		"records", seg.Records, "files", len(seg.Files), "attempts", res.Attempts, "commit_ms", res.Duration.Milliseconds())
	if n.opts.OnCommit != nil {
		n.opts.OnCommit(ingest.CommitEvent{
			Table: name, SnapshotID: res.SnapshotID, Records: seg.Records, Files: len(seg.Files), CommitTime: time.Now(),
		})
	}
	return nil, nil
}

// assign keeps the partitions balanced over the live members: every
// heartbeat interval it moves the partitions of members not heard from
// within dead_after, and hands out unassigned ones.
func (n *Node) assign(ctx context.Context, since time.Time) {
	t := time.NewTicker(n.cfg.HeartbeatInterval.D() / 2)
	defer t.Stop()
	for {
		n.assignOnce(ctx, since)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// liveMembers splits the members by liveness as this leader, leading since
// since, sees it. The leader itself is alive, and every member gets
// dead_after from the start of the leadership: heartbeats sent while there
// was no leader went nowhere, and judging by them would move every
// partition at each election.
func (n *Node) liveMembers(since time.Time) (live, dead []string) {
	now := time.Now()
	for _, m := range n.ledger.Members() {
		last := m.LastHeartbeat
		if last.Before(since) {
			last = since
		}
		if m.ID == n.id || now.Sub(last) <= n.cfg.DeadAfter.D() {
			live = append(live, m.ID)
		} else {
			dead = append(dead, m.ID)
		}
	}
	return live, dead
}

func (n *Node) assignOnce(ctx context.Context, since time.Time) {
	live, dead := n.liveMembers(since)
	metrics.ClusterMembers.WithLabelValues("alive").Set(float64(len(live)))
	metrics.ClusterMembers.WithLabelValues("dead").Set(float64(len(dead)))
	for _, p := range n.pipelines {
		asg := n.ledger.Assignment(p.Config().Name)
		if len(asg) == 0 {
			continue
		}
		parts := make([]commit.PartitionKey, 0, len(asg))
		current := make(map[commit.PartitionKey]string, len(asg))
		for k, o := range asg {
			parts = append(parts, k)
			current[k] = o.Owner
		}
		want := commit.Balance(live, parts, current)
		moves := commit.Assign{Owners: map[commit.PartitionKey]string{}}
		for k, owner := range want {
			if current[k] != owner {
				moves.Owners[k] = owner
			}
		}
		if len(moves.Owners) == 0 {
			continue
		}
		cmd, err := commit.EncodeAssign(moves)
		if err != nil {
			n.log.Error("encode assign", "err", err)
			return
		}
		if _, err := n.applyHere(ctx, cmd); err != nil {
			if ctx.Err() == nil {
				n.log.Warn("assign failed", "err", err)
			}
			return
		}
		metrics.ClusterAssignments.WithLabelValues(p.Config().Name).Add(float64(len(moves.Owners)))
		keys := make([]string, 0, len(moves.Owners))
		for k, o := range moves.Owners {
			keys = append(keys, fmt.Sprintf("%s/%d→%s", k.Topic, k.Partition, orNobody(o)))
		}
		slices.Sort(keys)
		n.log.Info("partitions assigned", "pipeline", p.Config().Name, "live", live, "dead", dead, "moves", keys)
	}
}

func orNobody(s string) string {
	if s == "" {
		return "nobody"
	}
	return s
}

// finalCommits waits, on a node shutting down, until no pending segment
// carries rows or the timeout passes. On the leader it makes every pending
// entry due at once; a follower stays meanwhile so the leader keeps its
// quorum when the whole cluster stops.
func (n *Node) finalCommits(timeout time.Duration) {
	n.flushing.Store(true)
	defer n.flushing.Store(false)
	deadline := time.Now().Add(timeout)
	// Members stopping at the same time propose their last batches within
	// about a heartbeat: a leader waits for them before it goes.
	settle := time.Now().Add(2 * n.cfg.HeartbeatInterval.D())
	for time.Now().Before(deadline) {
		left := 0
		if n.raft.IsLeader() && time.Now().Before(settle) {
			left++
		}
		for _, t := range n.ledger.Tables() {
			if t.PendingRecords > 0 || (n.raft.IsLeader() && t.PendingSegments > 0) {
				left++
			}
		}
		if left == 0 {
			n.log.Info("final commits done")
			return
		}
		if !n.raft.IsLeader() {
			if id, _ := n.raft.Leader(); id == "" {
				break
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	n.log.Warn("pending segments left uncommitted at shutdown; the leader commits them")
}
