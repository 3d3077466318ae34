package cluster

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/floelake/floe/commit"
	"github.com/floelake/floe/ingest"
	"github.com/floelake/floe/ingest/transform"
	"github.com/floelake/floe/internal/clock"
	"github.com/floelake/floe/maintain"
	"github.com/floelake/floe/upsert"
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
			n.metrics().LeadershipChanged(false)
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
			n.metrics().LeadershipChanged(true)
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
	epoch := n.term()
	for _, p := range n.pipelines {
		wg.Add(1)
		go func() { defer wg.Done(); n.leadPipeline(ctx, p, epoch) }()
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
		if err := clock.Sleep(ctx, backoff); err != nil {
			return err
		}
		backoff = min(backoff*2, 10*time.Second)
	}
}

// leadPipeline prepares a pipeline's tables (creating them, recording
// start offsets), then runs one table writer per table until ctx ends. It
// looks for new partitions now and then; when there are, the writers sync
// the ledger with their tables, which records where the new partitions
// start.
func (n *Node) leadPipeline(ctx context.Context, p *ingest.Pipeline, epoch int64) {
	var prep ingest.Prepared
	if err := retry(ctx, n, "prepare tables", func() (err error) {
		prep, err = p.Prepare(ctx)
		if ingest.IsConfigError(err) {
			n.pipelineFailed(p.Name(), err)
			return nil
		}
		return err
	}); err != nil || ctx.Err() != nil || prep.Partitions == nil {
		return
	}
	policy := commit.DefaultWriterPolicy(p.Config().CommitInterval.D())
	var writers []*commit.TableWriter
	var names []string
	var maintainers []*maintain.Maintainer
	for _, o := range p.Outputs() {
		name := o.Table
		names = append(names, name)
		var m *maintain.Maintainer
		var deltas commit.RowDeltas
		var stages commit.Stages
		var windows *transform.Stage
		if _, ok := p.Transform().Dedups(); ok && o.Role == ingest.RoleMain {
			// First: it takes the dedup files out of the segment.
			st, err := p.Transform().NewDedupStage(p.Name(), n.log.With("table", name))
			if err != nil {
				n.log.Error("dedup state", "table", name, "err", err)
				return
			}
			st.Observe(name, n.metrics())
			stages = append(stages, st)
		}
		if cfg := p.Config(); o.Role == ingest.RoleMain && cfg.Windowed() {
			st, err := p.Transform().NewStage(p.Name(), n.log.With("table", name))
			if err != nil {
				n.log.Error("window state", "table", name, "err", err)
				return
			}
			st.Observe(name, n.metrics())
			n.stages.Store(name, st)
			defer n.stages.Delete(name)
			stages, windows = append(stages, st), st
		}
		var stage commit.Stage
		switch len(stages) {
		case 0:
		case 1:
			stage = stages[0]
		default:
			stage = stages
		}
		if cfg := p.Config(); o.Role == ingest.RoleMain && (cfg.Keyed() || cfg.Windowed()) {
			var opts []upsert.Option
			if cfg.VersionColumn != "" {
				opts = append(opts, upsert.Version(cfg.VersionColumn))
			}
			if cfg.EqualityDeletes() {
				opts = append(opts, upsert.EqualityDeletes())
			} else {
				opts = append(opts, upsert.Spill(n.keyIndexDir(name), cfg.KeyIndexBudget()))
			}
			r, err := upsert.NewResolver(cfg.TableKey(), n.log.With("table", name), opts...)
			if err != nil {
				n.log.Error("key index", "table", name, "err", err)
				return
			}
			r.Observe(name, n.metrics())
			n.resolvers.Store(name, r)
			defer n.resolvers.Delete(name)
			// After the writers have stopped (wg.Wait below runs first).
			defer r.Close()
			deltas = r
			if windows != nil {
				windows.UseIndex(r)
			}
		}
		w, err := commit.NewWriter(commit.WriterConfig{
			Deltas: deltas, Stage: stage,
			Table: name, Pipeline: p.Name(), Epoch: epoch, Policy: policy,
			Catalog: n.opts.Catalog, Ledger: n.ledger, Env: n, Logger: n.log, Metrics: n.metrics(),
			OnCommit: func(wc commit.WriterCommit) {
				n.committed(p, wc)
				m.Committed(wc.Files)
			},
		})
		if err != nil {
			n.log.Error("table writer", "table", name, "err", err)
			return
		}
		// Set before the writer runs, so its commits see it.
		m = maintain.New(name, w, *n.opts.Maintenance, n.log, n.metrics())
		writers = append(writers, w)
		maintainers = append(maintainers, m)
	}
	var wg sync.WaitGroup
	for i, w := range writers {
		name, m := names[i], maintainers[i]
		n.writers.Store(name, w)
		wg.Add(1)
		go func() { defer wg.Done(); defer n.writers.Delete(name); w.Run(ctx) }()
		n.maintainers.Store(name, m)
		wg.Add(1)
		go func() { defer wg.Done(); defer n.maintainers.Delete(name); m.Run(ctx) }()
	}
	defer wg.Wait()

	known := countPartitions(prep.Partitions)
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
			synced := true
			for _, w := range writers {
				// A no-op task: the writer syncs the ledger with the
				// table after every task.
				if err := w.Do(ctx, func(context.Context, *commit.Committer) error { return nil }); err != nil {
					n.log.Warn("sync after new partitions failed", "err", err)
					synced = false
				}
			}
			if synced {
				known = c
			}
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

// Flushing implements commit.WriterEnv: while the node shuts down, every
// pending segment is due at once.
func (n *Node) Flushing() bool { return n.flushing.Load() }

// committed observes one commit of a table writer.
func (n *Node) committed(p *ingest.Pipeline, wc commit.WriterCommit) {
	ev := ingest.CommitEvent{
		Table: wc.Table, SnapshotID: wc.Result.SnapshotID, Records: wc.Records, Offsets: wc.Offsets, Files: wc.Files, CommitTime: time.Now(),
	}
	if wc.Table == p.Outputs()[0].Table { // the main table
		ev.Samples = n.samples.take(wc.Segments)
	}
	p.NoteCommit(wc.Table, wc.Committer, wc.Result, wc.Records)
	n.kickLag()
	if n.opts.OnCommit != nil {
		n.opts.OnCommit(ev)
	}
}

// assign keeps the partitions balanced over the live members: every
// heartbeat interval it moves the partitions of members not heard from
// within dead_after, and hands out unassigned ones.
func (n *Node) assign(ctx context.Context, since time.Time) {
	t := time.NewTicker(n.cfg.HeartbeatInterval.D() / 2)
	defer t.Stop()
	lv := newLiveness(n.id, since, n.cfg.DeadAfter.D())
	for {
		// Take the change channel first, so no change is missed between
		// the read and the wait: partitions whose start a table writer
		// just recorded are handed out at once, not a tick later.
		changed := n.ledger.Changed()
		n.assignOnce(ctx, lv)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-changed:
		}
	}
}

// liveness judges members by when this leader saw their heartbeats arrive,
// on its own clock. A heartbeat carries the member's clock, which may be
// skewed against the leader's by any amount; comparing the two would call
// a member with a slow clock dead and keep a dead member with a fast clock
// alive. So the stamp is only used to notice that a new heartbeat arrived
// (it changed), and the leader's clock says when.
//
// Every member gets dead_after from the start of the leadership: heartbeats
// sent while there was no leader went nowhere, and judging by them would
// move every partition at each election. The leader itself is alive.
type liveness struct {
	self      string
	since     time.Time
	deadAfter time.Duration
	stamps    map[string]time.Time // last heartbeat stamp seen, per member
	heard     map[string]time.Time // when it changed, on the leader's clock
}

func newLiveness(self string, since time.Time, deadAfter time.Duration) *liveness {
	return &liveness{self: self, since: since, deadAfter: deadAfter, stamps: map[string]time.Time{}, heard: map[string]time.Time{}}
}

// judge splits members by liveness at now.
func (lv *liveness) judge(members []commit.Member, now time.Time) (live, dead []string) {
	for _, m := range members {
		if stamp, ok := lv.stamps[m.ID]; !ok || !stamp.Equal(m.LastHeartbeat) {
			lv.stamps[m.ID] = m.LastHeartbeat
			if ok {
				lv.heard[m.ID] = now
			}
		}
		last := lv.heard[m.ID]
		if last.Before(lv.since) {
			last = lv.since
		}
		if m.ID == lv.self || now.Sub(last) <= lv.deadAfter {
			live = append(live, m.ID)
		} else {
			dead = append(dead, m.ID)
		}
	}
	return live, dead
}

func (n *Node) assignOnce(ctx context.Context, lv *liveness) {
	live, dead := lv.judge(n.ledger.Members(), time.Now())
	n.metrics().Members(len(live), len(dead))
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
		n.metrics().PartitionsMoved(p.Config().Name, len(moves.Owners))
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
	// about a heartbeat: every member waits for them before it goes, the
	// leader to commit them, a follower so the leader keeps its quorum
	// while it does.
	// Two heartbeats: how long a member waits for the others' last
	// batches, and how long a follower outlasts having no leader.
	grace := 2 * n.cfg.HeartbeatInterval.D()
	settle := time.Now().Add(grace)
	if len(n.ledger.Members()) <= 1 {
		settle = time.Now() // nobody else to wait for
	}
	// The segments to see committed: those pending now (this member's
	// last batches among them) and those proposed while it settles.
	// Members that go on running keep proposing; their later segments are
	// the next leader's, or this one's after a restart: waiting for none
	// to be pending could last the whole timeout.
	watch := map[uint64]bool{}
	// A follower goes when no leader has been known for a while: the
	// members that could commit are gone. A moment without one (a
	// leadership transfer, an election) is no reason: a member leaving
	// then takes the quorum from the leader that comes next.
	var leaderless time.Time
	for first := true; time.Now().Before(deadline); first = false {
		leader := n.raft.IsLeader()
		settling := time.Now().Before(settle)
		left := 0
		if settling {
			left++
		}
		pending := map[uint64]bool{}
		for _, t := range n.ledger.Tables() {
			for _, ps := range n.ledger.Pending(t.Table) {
				// A follower waits for rows; a leader commits every
				// segment, offsets-only ones included.
				if ps.Records > 0 || len(ps.Files) > 0 || leader {
					pending[ps.ID] = true
					if first || settling {
						watch[ps.ID] = true
					}
				}
			}
		}
		for id := range watch {
			if pending[id] {
				left++
			}
		}
		if left == 0 {
			n.log.Info("final commits done")
			return
		}
		switch id, _ := n.raft.Leader(); {
		case leader || id != "":
			leaderless = time.Time{}
		case leaderless.IsZero():
			leaderless = time.Now()
		case time.Since(leaderless) > grace:
			n.log.Warn("no leader to commit the pending segments; the next leader commits them")
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	n.log.Warn("pending segments left uncommitted at shutdown; the leader commits them")
}

// term returns the raft term this node leads in: the epoch its table
// writers write as floe.epoch.
func (n *Node) term() int64 {
	v, _ := strconv.ParseInt(n.raft.Stats()["term"], 10, 64)
	return v
}
