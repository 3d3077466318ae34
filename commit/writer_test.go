package commit_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	"github.com/stretchr/testify/require"

	"github.com/floelake/floe/catalog"
	"github.com/floelake/floe/commit"
	"github.com/floelake/floe/internal/failpoint"
	"github.com/floelake/floe/internal/fileio"
)

// directEnv applies ledger commands straight to a ledger, as raft would on a
// leader that never loses its leadership; failApply makes chosen calls fail
// as a lost leadership would (the command is not applied).
type directEnv struct {
	mu        sync.Mutex
	l         *commit.Ledger
	idx       uint64
	calls     int
	failApply map[int]bool
	flushing  atomic.Bool
}

func (e *directEnv) Apply(_ context.Context, cmd []byte) (commit.ApplyResult, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.calls++
	if e.failApply[e.calls] {
		return commit.ApplyResult{}, errors.New("injected: not the leader any more")
	}
	e.idx++
	return e.l.Apply(e.idx, cmd).(commit.ApplyResult), nil
}

func (e *directEnv) Flushing() bool { return e.flushing.Load() }

func (e *directEnv) ok(t *testing.T) func(cmd []byte, err error) commit.ApplyResult {
	return func(cmd []byte, err error) commit.ApplyResult { return e.okCmd(t, cmd, err) }
}

func (e *directEnv) okCmd(t *testing.T, cmd []byte, err error) commit.ApplyResult {
	t.Helper()
	require.NoError(t, err)
	res, err := e.Apply(context.Background(), cmd)
	require.NoError(t, err)
	require.NoError(t, res.Err)
	return res
}

// writerRig is one table (the committer tests' fixture, "db.t", pipeline
// "p", topic "tp" partition 0) with a ledger whose member "a" owns the
// partition.
type writerRig struct {
	*fixture
	env   *directEnv
	epoch uint64
}

const rigTable = "db.t"

var rigPartition = commit.PartitionKey{Pipeline: "p", Topic: "tp", Partition: 0}

func newWriterRig(t *testing.T) *writerRig {
	r := &writerRig{fixture: newFixture(t), env: &directEnv{l: commit.NewLedger()}}
	r.env.ok(t)(commit.EncodeAddMember(commit.AddMember{ID: "a", RaftAddr: "a:1", APIAddr: "a:2", At: time.Now()}))
	r.epoch = r.env.ok(t)(commit.EncodeAssign(commit.Assign{Owners: map[commit.PartitionKey]string{rigPartition: "a"}})).Epochs[rigPartition]
	return r
}

// propose writes n rows at [from, from+n) and proposes them as a segment.
func (r *writerRig) propose(from, n int64) commit.ApplyResult {
	r.t.Helper()
	seg := r.segment(from, n)
	blob, err := fileio.EncodeDataFiles(seg.Files)
	require.NoError(r.t, err)
	cmd, err := commit.EncodeProposeSegment(commit.ProposeSegment{
		Pipeline: "p", Owner: "a", Epochs: commit.Epochs{"tp": {0: r.epoch}},
		Tables: []commit.SegmentEntry{{Table: rigTable, From: seg.From, To: seg.To, Records: n, Files: blob}},
	})
	require.NoError(r.t, err)
	res, err := r.env.Apply(context.Background(), cmd)
	require.NoError(r.t, err)
	return res
}

func (r *writerRig) writer(cat table.CatalogIO, epoch int64, onCommit func(commit.WriterCommit)) *commit.TableWriter {
	r.t.Helper()
	return r.writerOf(r.writerConfig(cat, epoch, onCommit))
}

// writerConfig is the rig's writer configuration: quick commits and
// retries.
func (r *writerRig) writerConfig(cat table.CatalogIO, epoch int64, onCommit func(commit.WriterCommit)) commit.WriterConfig {
	p := commit.DefaultWriterPolicy(20 * time.Millisecond)
	p.MinBackoff, p.MaxBackoff = time.Millisecond, 10*time.Millisecond
	return commit.WriterConfig{
		Table: rigTable, Pipeline: "p", Epoch: epoch, Policy: p, Catalog: cat, Ledger: r.env.l, Env: r.env, OnCommit: onCommit,
	}
}

func (r *writerRig) writerOf(cfg commit.WriterConfig) *commit.TableWriter {
	r.t.Helper()
	w, err := commit.NewWriter(cfg)
	require.NoError(r.t, err)
	return w
}

// start runs w until the returned stop is called.
func (r *writerRig) start(w *commit.TableWriter) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	return func() { cancel(); <-done }
}

// run runs w until the ledger has committed the table to want.
func (r *writerRig) run(w *commit.TableWriter, want int64) {
	r.t.Helper()
	defer r.start(w)()
	r.waitCommitted(want)
}

func (r *writerRig) waitCommitted(want int64) {
	r.t.Helper()
	require.Eventually(r.t, func() bool {
		c, ok := r.env.l.Committed(rigTable)
		got, _ := c.Offsets.Get("tp", 0)
		return ok && got == want && len(r.env.l.Pending(rigTable)) == 0
	}, 60*time.Second, 5*time.Millisecond, "ledger never committed %s to %d", rigTable, want)
}

func TestWriterCommitsPendingSegmentsAsOneSnapshot(t *testing.T) {
	r := newWriterRig(t)
	for i := int64(0); i < 3; i++ {
		require.NoError(t, r.propose(i*10, 10).Err)
	}
	var commits []commit.WriterCommit
	w := r.writer(r.cat, 42, func(wc commit.WriterCommit) { commits = append(commits, wc) })
	r.run(w, 30)
	r.requireExactly(30)
	require.Len(t, commits, 1, "every pending segment in one snapshot")
	require.Len(t, commits[0].Segments, 3)
	require.EqualValues(t, 30, commits[0].Records)

	tbl, err := r.cat.LoadTable(context.Background(), r.ident)
	require.NoError(t, err)
	require.Equal(t, "42", tbl.CurrentSnapshot().Summary.Properties[commit.PropEpoch], "floe.epoch is the writer's epoch")
	c, _ := r.env.l.Committed(rigTable)
	require.Equal(t, tbl.CurrentSnapshot().SnapshotID, c.SnapshotID)
}

// A catalog that fails, conflicts or times out at the k-th call, and raft
// that loses the commit report: the table holds every row exactly once and
// the ledger ends up agreeing with it.
func TestWriterFaultAtKthCall(t *testing.T) {
	for _, ft := range []fault{conflictBefore, errorBefore, errorAfter} {
		for k := 1; k <= 3; k++ {
			t.Run(ft.String()+"@"+string(rune('0'+k)), func(t *testing.T) {
				r := newWriterRig(t)
				fc := &faultyCatalog{inner: r.cat, faults: map[int]fault{k: ft}}
				w := r.writer(fc, 1, nil)
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan struct{})
				go func() { defer close(done); w.Run(ctx) }()
				for i := int64(0); i < 3; i++ {
					require.NoError(t, r.propose(i*10, 10).Err)
					r.waitCommitted((i + 1) * 10)
				}
				cancel()
				<-done
				require.GreaterOrEqual(t, fc.calls, k, "the fault at call %d fired", k)
				r.requireExactly(30)
			})
		}
	}
}

// The commit lands but the report to the ledger is lost (leadership lost,
// or a crash between the two): the next round finds the segments covered
// by the table and reports them, without committing them twice.
func TestWriterReportLost(t *testing.T) {
	r := newWriterRig(t)
	require.NoError(t, r.propose(0, 10).Err)
	require.NoError(t, failpoint.Set("writer/before-report=error@1"))
	t.Cleanup(func() { _ = failpoint.Set("") })
	r.run(r.writer(r.cat, 1, nil), 10)
	require.GreaterOrEqual(t, failpoint.Hits("writer/before-report"), int64(2), "fired at the first report, passed at the retry")
	r.requireExactly(10)

	// And when raft itself fails the report.
	r.env.failApply = map[int]bool{r.env.calls + 2: true} // sync's reconcile passes, the report fails
	require.NoError(t, r.propose(10, 10).Err)
	r.run(r.writer(r.cat, 1, nil), 20)
	r.requireExactly(20)
}

// The table is rolled back behind the ledger by someone else: the writer
// adopts the table's offsets, the owner's in-flight proposal is refused as
// stale, and what the rollback removed is consumed and committed again,
// exactly once.
func TestWriterAdoptsRolledBackTable(t *testing.T) {
	r := newWriterRig(t)
	ctx := context.Background()
	defer r.start(r.writer(r.cat, 1, nil))()
	for i := int64(0); i < 4; i++ {
		require.NoError(t, r.propose(i*10, 10).Err)
		r.waitCommitted((i + 1) * 10)
	}

	// Roll main back three snapshots, to the one whose offsets are 10.
	tbl, err := r.cat.LoadTable(ctx, r.ident)
	require.NoError(t, err)
	var target int64
	for _, s := range tbl.Metadata().Snapshots() {
		var off commit.Offsets
		if json.Unmarshal([]byte(s.Summary.Properties[commit.PropOffsets]), &off) == nil {
			if v, _ := off.Get("tp", 0); v == 10 {
				target = s.SnapshotID
			}
		}
	}
	require.NotZero(t, target)
	_, _, err = r.cat.CommitTable(ctx, r.ident, nil, []table.Update{
		table.NewSetSnapshotRefUpdate(table.MainBranch, target, table.BranchRef, -1, -1, -1),
	})
	require.NoError(t, err)

	// The owner, unaware, proposes the next range; the writer commits it,
	// finds the gap, and adopts.
	require.NoError(t, r.propose(40, 10).Err)
	require.Eventually(t, func() bool {
		next, _ := r.env.l.NextExpected("p", "tp", 0)
		return next == 10
	}, 60*time.Second, 5*time.Millisecond, "the ledger adopted the rolled-back offsets")
	stale := r.propose(50, 10)
	var se *commit.StaleEpochError
	require.ErrorAs(t, stale.Err, &se, "the owner's old epoch is fenced")

	// The owner restarts at the new epoch from the table's offsets.
	r.epoch = r.env.l.Owned("p", "a")[rigPartition]
	require.NoError(t, r.propose(10, 50).Err)
	r.waitCommitted(60)
	r.requireExactly(60)
}

// Do runs between commits with the writer's committer; its error comes
// back, and the ledger is synced with whatever the task did.
func TestWriterDo(t *testing.T) {
	r := newWriterRig(t)
	w := r.writer(r.cat, 1, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	defer func() { cancel(); <-done }()
	require.NoError(t, r.propose(0, 10).Err)
	r.waitCommitted(10)

	var seen commit.Offsets
	require.NoError(t, w.Do(ctx, func(_ context.Context, c *commit.Committer) error {
		seen = c.Offsets()
		return nil
	}))
	require.Equal(t, commit.Offsets{"tp": {0: 10}}, seen)
	boom := errors.New("boom")
	require.ErrorIs(t, w.Do(ctx, func(context.Context, *commit.Committer) error { return boom }), boom)

	// A task that commits (an offsets-only commit past the ledger): the
	// ledger follows the table after the task.
	require.NoError(t, w.Do(ctx, func(ctx context.Context, c *commit.Committer) error {
		_, err := c.Commit(ctx, commit.Segment{From: commit.Offsets{"tp": {0: 10}}, To: commit.Offsets{"tp": {0: 15}}})
		return err
	}))
	c, _ := r.env.l.Committed(rigTable)
	got, _ := c.Offsets.Get("tp", 0)
	require.EqualValues(t, 15, got)
}

func TestWriterPolicy(t *testing.T) {
	p := commit.DefaultWriterPolicy(time.Second)
	require.Equal(t, 500*time.Millisecond, p.MinGap)
	require.Equal(t, 30*time.Second, p.OffsetsOnlyEvery)
	require.Equal(t, 100*time.Second, commit.DefaultWriterPolicy(10*time.Second).OffsetsOnlyEvery)
	require.Less(t, p.DueAt, commit.MaxPendingSegments, "commits fall due before members hold back")

	rows := commit.PendingSegment{SegmentEntry: commit.SegmentEntry{Records: 3}}
	offsetsOnly := commit.PendingSegment{SegmentEntry: commit.SegmentEntry{}}
	many := make([]commit.PendingSegment, p.DueAt)
	for _, c := range []struct {
		name      string
		pend      []commit.PendingSegment
		sinceLast time.Duration
		flushing  bool
		want      bool
	}{
		{"nothing pending", nil, time.Hour, true, false},
		{"rows", []commit.PendingSegment{rows}, 0, false, true},
		{"offsets only, recent", []commit.PendingSegment{offsetsOnly}, time.Second, false, false},
		{"offsets only, due", []commit.PendingSegment{offsetsOnly}, p.OffsetsOnlyEvery, false, true},
		{"offsets only, flushing", []commit.PendingSegment{offsetsOnly}, 0, true, true},
		{"offsets only, many", many, 0, false, true},
	} {
		require.Equal(t, c.want, p.Due(c.pend, c.sinceLast, c.flushing), c.name)
	}
}

// After a crash between the two tables' commits the main table is ahead of
// the dead-letter table. On a fresh ledger the main table's writer syncs
// first and partitions are read from its end; the dead-letter table's
// writer must bring that back to its own end, or no segment could ever
// start where the dead-letter table ends.
func TestWriterSyncLowersReadPositionForALaggingSibling(t *testing.T) {
	r := newWriterRig(t)
	ctx := context.Background()
	dlqIdent := table.Identifier{"db", "t__dlq"}
	_, _, err := catalog.EnsureTable(ctx, r.cat, dlqIdent, testSchema, *iceberg.UnpartitionedSpec, nil)
	require.NoError(t, err)
	main := r.committer(r.cat)
	_, err = main.Commit(ctx, r.segment(0, 20))
	require.NoError(t, err)
	dlq, err := commit.New(ctx, r.cat, commit.Config{Pipeline: "p", Table: dlqIdent})
	require.NoError(t, err)
	_, err = dlq.Commit(ctx, commit.Segment{From: commit.Offsets{"tp": {0: 0}}, To: commit.Offsets{"tp": {0: 10}}})
	require.NoError(t, err)

	mw := r.writer(r.cat, 1, nil)
	dw, err := commit.NewWriter(commit.WriterConfig{
		Table: "db.t__dlq", Pipeline: "p", Epoch: 1, Policy: commit.DefaultWriterPolicy(time.Second),
		Catalog: r.cat, Ledger: r.env.l, Env: r.env,
	})
	require.NoError(t, err)
	wctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	wg.Add(1)
	go func() { defer wg.Done(); mw.Run(wctx) }()
	require.Eventually(t, func() bool { n, _ := r.env.l.NextExpected("p", "tp", 0); return n == 20 }, 30*time.Second, 5*time.Millisecond)
	wg.Add(1)
	go func() { defer wg.Done(); dw.Run(wctx) }()
	require.Eventually(t, func() bool { n, _ := r.env.l.NextExpected("p", "tp", 0); return n == 10 }, 30*time.Second, 5*time.Millisecond,
		"the read position falls back to the dead-letter table's end")
}

// Segments accepted while the writer syncs (after every Do task, and at
// its start) move the read position and the table's end together: the
// writer must never see the table end below the read position and adopt
// the table, which would drop every pending segment and restart the
// owners. Each sync runs while segments over many partitions are accepted
// as fast as the ledger takes them. (A writer that reads the table's end
// and the read positions one after the other, not at one point of the log,
// fails here in most runs: the timing decides.)
func TestWriterSyncWhileSegmentsArrive(t *testing.T) {
	const parts = 256
	r := newWriterRig(t)
	owners := map[commit.PartitionKey]string{}
	for p := int32(0); p < parts; p++ {
		owners[commit.PartitionKey{Pipeline: "p", Topic: "tp", Partition: p}] = "a"
	}
	epochs := commit.Epochs{}
	for k, e := range r.env.ok(t)(commit.EncodeAssign(commit.Assign{Owners: owners})).Epochs {
		epochs.Set(k.Topic, k.Partition, e)
	}
	// The table holds offset 0 of every partition: an adoption would move
	// the read positions back there.
	start := commit.Segment{From: commit.Offsets{}, To: commit.Offsets{}}
	for p := int32(0); p < parts; p++ {
		start.From.Set("tp", p, 0)
		start.To.Set("tp", p, 1)
	}
	_, err := r.committer(r.cat).Commit(context.Background(), start)
	require.NoError(t, err)
	w := r.writer(r.cat, 1, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	defer func() { cancel(); <-done }()
	require.Eventually(t, func() bool { n, _ := r.env.l.NextExpected("p", "tp", parts-1); return n == 1 }, 30*time.Second, 5*time.Millisecond)

	// Offsets-only segments of one offset on every partition, back to
	// back, until the writer has synced enough times.
	stop := make(chan struct{})
	proposed := make(chan error, 1)
	go func() {
		for from := int64(1); ; from++ {
			select {
			case <-stop:
				proposed <- nil
				return
			case <-ctx.Done():
				proposed <- ctx.Err()
				return
			default:
			}
			e := commit.SegmentEntry{Table: rigTable, From: commit.Offsets{}, To: commit.Offsets{}}
			for p := int32(0); p < parts; p++ {
				e.From.Set("tp", p, from)
				e.To.Set("tp", p, from+1)
			}
			cmd, err := commit.EncodeProposeSegment(commit.ProposeSegment{Pipeline: "p", Owner: "a", Epochs: epochs, Tables: []commit.SegmentEntry{e}})
			if err == nil {
				var res commit.ApplyResult
				if res, err = r.env.Apply(ctx, cmd); err == nil {
					err = res.Err
				}
			}
			if err != nil {
				proposed <- fmt.Errorf("segment at %d: %w", from, err)
				return
			}
		}
	}()
	for range 300 {
		require.NoError(t, w.Do(ctx, func(context.Context, *commit.Committer) error { return nil }))
	}
	close(stop)
	require.NoError(t, <-proposed, "the writer adopted the table while segments arrived: the owner's epochs moved")
	for k, o := range r.env.l.Assignment("p") {
		e, _ := epochs.Get(k.Topic, k.Partition)
		require.Equal(t, e, o.Epoch, "%v", k)
	}
}

// idsOf reads a table's ids and the floe.offsets of its first floe
// snapshot (where floe started it) and of its current state.
func (r *writerRig) idsOf(ident table.Identifier) (ids map[int64]int, first, last commit.Offsets) {
	r.t.Helper()
	ctx := context.Background()
	tbl, err := r.cat.LoadTable(ctx, ident)
	require.NoError(r.t, err)
	ids = map[int64]int{}
	at, err := tbl.Scan().ToArrowTable(ctx)
	require.NoError(r.t, err)
	defer at.Release()
	for _, ch := range at.Column(0).Data().Chunks() {
		for _, v := range ch.(*array.Int64).Int64Values() {
			ids[v]++
		}
	}
	seq := int64(-1)
	for _, s := range tbl.Metadata().Snapshots() {
		if v := s.Summary.Properties[commit.PropOffsets]; v != "" && (seq < 0 || s.SequenceNumber < seq) {
			seq = s.SequenceNumber
			first, err = commit.ParseOffsets(v)
			require.NoError(r.t, err)
		}
	}
	last, _, _, err = commit.TableOffsets(tbl, "p")
	require.NoError(r.t, err)
	return ids, first, last
}

func rangeIDs(from, to int64) map[int64]int {
	out := map[int64]int{}
	for i := from; i < to; i++ {
		out[i] = 1
	}
	return out
}

// A table renamed in the catalog while its writer runs: the writer creates
// it again and starts it where the ledger has the old one end, so the
// segments accepted meanwhile land in the new table and every row is in
// exactly one of the two. Before, the writer's commit retried reloading a
// table that was not there until the pipeline's next check of its tables
// created it at the other table's offsets, and the segments in between
// were lost.
func TestWriterRecreatesARenamedTable(t *testing.T) {
	r := newWriterRig(t)
	ctx := context.Background()
	defer r.start(r.writer(r.cat, 1, nil))()
	for i := int64(0); i < 2; i++ {
		require.NoError(t, r.propose(i*10, 10).Err)
		r.waitCommitted((i + 1) * 10)
	}

	renamed := table.Identifier{"db", "t_renamed"}
	_, err := r.cat.RenameTable(ctx, r.ident, renamed)
	require.NoError(t, err)
	require.NoError(t, r.propose(20, 10).Err)
	require.NoError(t, r.propose(30, 10).Err)
	r.waitCommitted(40)

	ids, _, last := r.idsOf(renamed)
	require.Equal(t, rangeIDs(0, 20), ids, "the renamed table is as the writer left it")
	require.Equal(t, commit.Offsets{"tp": {0: 20}}, last)
	ids, first, last := r.idsOf(r.ident)
	require.Equal(t, rangeIDs(20, 40), ids, "the new table holds what came after, once")
	require.Equal(t, commit.Offsets{"tp": {0: 20}}, first, "the new table starts where the old one ends")
	require.Equal(t, commit.Offsets{"tp": {0: 40}}, last)
	require.Equal(t, testSchema.Fields(), r.load().Schema().Fields())
}

// A table replaced by an empty one of the same name while its writer runs
// (dropped and created again, the pipeline's check of its tables getting
// there first): the writer records the ledger's offsets as its start before
// it commits the pending segments to it.
func TestWriterStartsAReplacedTableWhereTheLedgerEnds(t *testing.T) {
	r := newWriterRig(t)
	ctx := context.Background()
	defer r.start(r.writer(r.cat, 1, nil))()
	require.NoError(t, r.propose(0, 10).Err)
	r.waitCommitted(10)

	require.NoError(t, r.cat.DropTable(ctx, r.ident))
	_, _, err := catalog.EnsureTable(ctx, r.cat, r.ident, testSchema, *iceberg.UnpartitionedSpec, nil)
	require.NoError(t, err)
	require.NoError(t, r.propose(10, 10).Err)
	r.waitCommitted(20)

	ids, first, last := r.idsOf(r.ident)
	require.Equal(t, rangeIDs(10, 20), ids)
	require.Equal(t, commit.Offsets{"tp": {0: 10}}, first, "the replaced table starts where the ledger has the old one end")
	require.Equal(t, commit.Offsets{"tp": {0: 20}}, last)
}
