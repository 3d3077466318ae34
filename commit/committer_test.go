package commit_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	"github.com/stretchr/testify/require"

	"github.com/floelake/floe/catalog"
	"github.com/floelake/floe/commit"
	"github.com/floelake/floe/internal/fileio"
)

// fault is what the faulty catalog does on one CommitTable call.
type fault int

const (
	pass fault = iota
	// conflictBefore rejects the commit as a stale base; nothing lands.
	conflictBefore
	// errorBefore fails with an unclassified error; nothing lands (an
	// unknown outcome that in fact failed).
	errorBefore
	// errorAfter lets the commit land, then reports an error (an unknown
	// outcome that in fact succeeded: a timeout after the write).
	errorAfter
	// concurrentWriter lets another writer commit first, so this one's
	// base is stale and the real catalog rejects it.
	concurrentWriter
	// rolledBackAfter lets the commit land, rolls main back to the
	// snapshot before it (another engine's rollback), then reports an
	// error: an unknown outcome whose snapshot is no longer in the table.
	rolledBackAfter
)

func (f fault) String() string {
	return [...]string{"pass", "conflict-before", "error-before", "error-after", "concurrent-writer", "rolled-back-after"}[f]
}

// faultyCatalog wraps a real catalog and misbehaves on chosen CommitTable
// calls (1-based): fail, conflict or time out at the k-th write. It counts
// the faults that took effect, so a test can tell a fault that fired from
// one scheduled at a call that never came.
type faultyCatalog struct {
	inner  *catalog.Catalog
	mu     sync.Mutex
	calls  int
	faults map[int]fault
	// fired counts, by fault, the calls on which the fault did what it
	// names.
	fired map[fault]int
	// onConcurrent commits as another writer would.
	onConcurrent func(ctx context.Context) error
	// onCall, if set, runs at the start of every CommitTable call with its
	// number.
	onCall func(n int)
}

func (f *faultyCatalog) fire(ft fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fired == nil {
		f.fired = map[fault]int{}
	}
	f.fired[ft]++
}

// firedCount returns how many times ft took effect.
func (f *faultyCatalog) firedCount(ft fault) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fired[ft]
}

// callCount returns the number of CommitTable calls so far.
func (f *faultyCatalog) callCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

func (f *faultyCatalog) LoadTable(ctx context.Context, ident table.Identifier) (*table.Table, error) {
	return f.inner.LoadTable(ctx, ident)
}

func (f *faultyCatalog) CommitTable(ctx context.Context, ident table.Identifier, reqs []table.Requirement, upd []table.Update) (table.Metadata, string, error) {
	f.mu.Lock()
	f.calls++
	n, ft := f.calls, f.faults[f.calls]
	f.mu.Unlock()
	if f.onCall != nil {
		f.onCall(n)
	}
	switch ft {
	case conflictBefore:
		f.fire(ft)
		return nil, "", fmt.Errorf("%w: injected stale base", table.ErrCommitFailed)
	case errorBefore:
		f.fire(ft)
		return nil, "", errors.New("injected: connection reset by peer")
	case errorAfter:
		if _, _, err := f.inner.CommitTable(ctx, ident, reqs, upd); err != nil {
			return nil, "", err
		}
		f.fire(ft)
		return nil, "", errors.New("injected: context deadline exceeded after the write")
	case concurrentWriter:
		if err := f.onConcurrent(ctx); err != nil {
			return nil, "", err
		}
		meta, loc, err := f.inner.CommitTable(ctx, ident, reqs, upd)
		if err != nil {
			// The other writer's commit made this one's base stale, and
			// the catalog said so.
			f.fire(ft)
		}
		return meta, loc, err
	case rolledBackAfter:
		meta, _, err := f.inner.CommitTable(ctx, ident, reqs, upd)
		if err != nil {
			return nil, "", err
		}
		head := meta.CurrentSnapshot()
		if err := setMain(ctx, f.inner, ident, head.SnapshotID, *head.ParentSnapshotID); err != nil {
			return nil, "", err
		}
		f.fire(ft)
		return nil, "", errors.New("injected: context deadline exceeded after the write")
	}
	return f.inner.CommitTable(ctx, ident, reqs, upd)
}

// setMain moves main from snapshot from to snapshot to, as another engine's
// rollback does.
func setMain(ctx context.Context, cat table.CatalogIO, ident table.Identifier, from, to int64) error {
	_, _, err := cat.CommitTable(ctx, ident,
		[]table.Requirement{table.AssertRefSnapshotID(table.MainBranch, &from)},
		[]table.Update{table.NewSetSnapshotRefUpdate(table.MainBranch, to, table.BranchRef, 0, 0, 0)})
	return err
}

type fixture struct {
	t     *testing.T
	cat   *catalog.Catalog
	ident table.Identifier
	info  fileio.TableInfo
	next  int64
}

var testSchema = iceberg.NewSchema(0,
	iceberg.NestedField{ID: 1, Name: "id", Type: iceberg.PrimitiveTypes.Int64, Required: true},
	iceberg.NestedField{ID: 2, Name: "v", Type: iceberg.PrimitiveTypes.String},
)

func newFixture(t *testing.T) *fixture {
	t.Helper()
	return newFixtureOf(t, testSchema)
}

// segment writes one data file of n rows and returns a segment covering
// offsets [from, from+n) of topic "tp" partition 0.
func (f *fixture) segment(from, n int64) commit.Segment {
	f.t.Helper()
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(f.t, 0)
	b := array.NewRecordBuilder(mem, f.info.ArrowSchema)
	defer b.Release()
	for i := int64(0); i < n; i++ {
		b.Field(0).(*array.Int64Builder).Append(from + i)
		b.Field(1).(*array.StringBuilder).Append(fmt.Sprintf("row-%d", from+i))
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	w := fileio.NewWriter(f.info, nil, fileio.Options{})
	require.NoError(f.t, w.Write(rec))
	files, err := w.Close(context.Background())
	require.NoError(f.t, err)
	return commit.Segment{
		Files:   files,
		From:    commit.Offsets{"tp": {0: from}},
		To:      commit.Offsets{"tp": {0: from + n}},
		Records: n,
	}
}

func (f *fixture) committer(cat table.CatalogIO) *commit.Committer {
	f.t.Helper()
	c, err := commit.New(context.Background(), cat, commit.Config{
		Pipeline: "p", Table: f.ident, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond,
	})
	require.NoError(f.t, err)
	return c
}

// ids reads the table back and returns how many times each id appears.
func (f *fixture) ids() map[int64]int {
	f.t.Helper()
	tbl, err := f.cat.LoadTable(context.Background(), f.ident)
	require.NoError(f.t, err)
	out := map[int64]int{}
	if tbl.CurrentSnapshot() == nil {
		return out
	}
	at, err := tbl.Scan().ToArrowTable(context.Background())
	require.NoError(f.t, err)
	defer at.Release()
	for _, ch := range at.Column(0).Data().Chunks() {
		for _, v := range ch.(*array.Int64).Int64Values() {
			out[v]++
		}
	}
	return out
}

func (f *fixture) load() *table.Table {
	f.t.Helper()
	tbl, err := f.cat.LoadTable(context.Background(), f.ident)
	require.NoError(f.t, err)
	return tbl
}

// offsets returns the table's offsets for pipeline "p", requiring some.
func (f *fixture) offsets() commit.Offsets {
	f.t.Helper()
	off, _, found, err := commit.TableOffsets(f.load(), "p")
	require.NoError(f.t, err)
	require.True(f.t, found)
	return off
}

// foreign commits a snapshot the way another engine does: one row, no
// floe properties. It returns the new snapshot's id.
func (f *fixture) foreign(id int64) int64 {
	f.t.Helper()
	ctx := context.Background()
	tx := f.load().NewTransaction()
	require.NoError(f.t, tx.AddDataFiles(ctx, f.segment(id, 1).Files, nil))
	tbl, err := tx.Commit(ctx)
	require.NoError(f.t, err)
	return tbl.CurrentSnapshot().SnapshotID
}

// tagged returns the snapshot the pipeline's tag references (0 if none).
func (f *fixture) tagged(tbl *table.Table) int64 {
	f.t.Helper()
	for name, ref := range tbl.Metadata().Refs() {
		if name == commit.TagName("p") {
			require.Equal(f.t, table.TagRef, ref.SnapshotRefType)
			return ref.SnapshotID
		}
	}
	return 0
}

func (f *fixture) requireExactly(n int64) {
	f.t.Helper()
	ids := f.ids()
	require.Len(f.t, ids, int(n), "distinct ids")
	for id, c := range ids {
		require.Equal(f.t, 1, c, "id %d appears %d times", id, c)
		require.True(f.t, id >= 0 && id < n, "unexpected id %d", id)
	}
	tbl, err := f.cat.LoadTable(context.Background(), f.ident)
	require.NoError(f.t, err)
	off, _, found, err := commit.TableOffsets(tbl, "p")
	require.NoError(f.t, err)
	require.True(f.t, found)
	require.Equal(f.t, commit.Offsets{"tp": {0: n}}, off)
}

func TestCommitHappyPath(t *testing.T) {
	f := newFixture(t)
	c := f.committer(f.cat)
	require.Equal(t, 0, c.Offsets().Len())
	for i := int64(0); i < 3; i++ {
		res, err := c.Commit(context.Background(), f.segment(i*100, 100))
		require.NoError(t, err)
		require.Equal(t, 1, res.Attempts)
		require.NotZero(t, res.SnapshotID)
	}
	f.requireExactly(300)
	snap := c.Table().CurrentSnapshot()
	require.Equal(t, "p", snap.Summary.Properties[commit.PropPipeline])
	require.NotEmpty(t, snap.Summary.Properties[commit.PropCommitID])
	require.Equal(t, `{"tp":{"0":300}}`, snap.Summary.Properties[commit.PropOffsets])
	require.Equal(t, "0", snap.Summary.Properties[commit.PropEpoch])

	// A new committer (a restarted process) resumes from the summary.
	c2 := f.committer(f.cat)
	require.Equal(t, commit.Offsets{"tp": {0: 300}}, c2.Offsets())
}

// TestCommitFaultAtKthCall injects every fault at the k-th catalog call of
// a run of four segments, for k = 1..4, and checks after each run that the
// fault fired and that the table holds every row exactly once with the
// right offsets. Without faults the run makes exactly one call per segment,
// so every k up to the number of segments is reached.
func TestCommitFaultAtKthCall(t *testing.T) {
	const segments = 4
	for _, ft := range []fault{conflictBefore, errorBefore, errorAfter, concurrentWriter} {
		for k := 1; k <= segments; k++ {
			t.Run(fmt.Sprintf("%s@%d", ft, k), func(t *testing.T) {
				f := newFixture(t)
				fc := &faultyCatalog{inner: f.cat, faults: map[int]fault{k: ft}}
				var otherFiles int
				fc.onConcurrent = func(ctx context.Context) error {
					// Another writer (say, a maintenance job) appends a file
					// without floe offsets: it must survive our retry.
					tbl, err := f.cat.LoadTable(ctx, f.ident)
					if err != nil {
						return err
					}
					seg := f.segment(1_000_000, 1)
					tx := tbl.NewTransaction()
					if err := tx.AddDataFiles(ctx, seg.Files, nil); err != nil {
						return err
					}
					otherFiles++
					_, err = tx.Commit(ctx)
					return err
				}
				c := f.committer(fc)
				for i := int64(0); i < segments; i++ {
					_, err := c.Commit(context.Background(), f.segment(i*10, 10))
					require.NoError(t, err)
				}
				require.Equal(t, 1, fc.firedCount(ft), "the %s fault at call %d took effect (of %d calls)", ft, k, fc.callCount())
				ids := f.ids()
				require.Len(t, ids, segments*10+otherFiles)
				for id, n := range ids {
					require.Equal(t, 1, n, "id %d committed %d times", id, n)
				}
				tbl, err := f.cat.LoadTable(context.Background(), f.ident)
				require.NoError(t, err)
				off, _, _, err := commit.TableOffsets(tbl, "p")
				require.NoError(t, err)
				require.Equal(t, commit.Offsets{"tp": {0: segments * 10}}, off)
				ok, lastErr := c.Healthy()
				require.True(t, ok, "healthy after recovery: %v", lastErr)
			})
		}
	}
}

// TestCommitUnknownOutcomeLanded: the attempt landed but the caller saw an
// error; the committer must find its commit id instead of committing the
// files a second time.
func TestCommitUnknownOutcomeLanded(t *testing.T) {
	f := newFixture(t)
	fc := &faultyCatalog{inner: f.cat, faults: map[int]fault{1: errorAfter}}
	c := f.committer(fc)
	res, err := c.Commit(context.Background(), f.segment(0, 10))
	require.NoError(t, err)
	require.Equal(t, 1, res.Attempts, "resolved by finding the commit id, not by a second attempt")
	require.NotZero(t, res.SnapshotID)
	require.Equal(t, 1, fc.callCount())
	require.Equal(t, 1, fc.firedCount(errorAfter), "the commit landed and the caller saw an error")
	f.requireExactly(10)
}

// TestCommitAlreadyCommittedByEarlierIncarnation: a process committed a
// segment and died before telling anyone; its successor, holding the same
// segment from a stale view, must drop it.
func TestCommitAlreadyCommittedByEarlierIncarnation(t *testing.T) {
	f := newFixture(t)
	stale := f.committer(f.cat)
	seg := f.segment(0, 10)
	_, err := f.committer(f.cat).Commit(context.Background(), seg)
	require.NoError(t, err)

	res, err := stale.Commit(context.Background(), seg)
	require.NoError(t, err)
	require.True(t, res.AlreadyCommitted)
	f.requireExactly(10)

	// And a restarted committer sees it as covered at once.
	res, err = f.committer(f.cat).Commit(context.Background(), seg)
	require.NoError(t, err)
	require.True(t, res.AlreadyCommitted)
	require.Equal(t, 0, res.Attempts)
}

func TestCommitOffsetGapIsFatal(t *testing.T) {
	f := newFixture(t)
	c := f.committer(f.cat)
	_, err := c.Commit(context.Background(), f.segment(0, 10))
	require.NoError(t, err)

	var gap *commit.OffsetGapError
	_, err = c.Commit(context.Background(), f.segment(15, 10))
	require.ErrorAs(t, err, &gap)
	require.Equal(t, commit.OffsetGapError{Table: "db.t", Topic: "tp", Partition: 0, Want: 10, Got: 15}, *gap)
	require.Equal(t, commit.ClassFatal, commit.Classify(err))
	require.Contains(t, err.Error(), "offset gap")

	_, err = c.Commit(context.Background(), f.segment(5, 10))
	require.ErrorAs(t, err, &gap)
	require.Contains(t, err.Error(), "offset overlap")
	f.requireExactly(10)
}

func TestCommitOffsetsOnlySegment(t *testing.T) {
	f := newFixture(t)
	c := f.committer(f.cat)
	_, err := c.Commit(context.Background(), f.segment(0, 10))
	require.NoError(t, err)
	// Offsets 10..20 held only rows that went to another table.
	res, err := c.Commit(context.Background(), commit.Segment{
		From: commit.Offsets{"tp": {0: 10}}, To: commit.Offsets{"tp": {0: 20}},
	})
	require.NoError(t, err)
	require.NotZero(t, res.SnapshotID)
	require.Equal(t, commit.Offsets{"tp": {0: 20}}, f.committer(f.cat).Offsets())
	require.Len(t, f.ids(), 10)
}

func TestCommitGivesUpOnlyWhenContextEnds(t *testing.T) {
	f := newFixture(t)
	faults := map[int]fault{}
	for i := 1; i <= 1000; i++ {
		faults[i] = errorBefore
	}
	fc := &faultyCatalog{inner: f.cat, faults: faults}
	c := f.committer(fc)
	ctx, cancel := context.WithCancel(context.Background())
	// The context ends during the fifth attempt, which then fails as
	// injected: cancelling from elsewhere could land during a reload and
	// make that failure the last one.
	fc.onCall = func(n int) {
		if n == 5 {
			cancel()
		}
	}
	_, err := c.Commit(ctx, f.segment(0, 10))
	require.ErrorIs(t, err, context.Canceled)
	require.Contains(t, err.Error(), "connection reset", "the last failure is reported")
	ok, lastErr := c.Healthy()
	require.False(t, ok)
	require.True(t, strings.HasPrefix(lastErr.Error(), commit.ClassUnknown))
	require.GreaterOrEqual(t, fc.firedCount(errorBefore), 5, "every attempt met the injected error")
	require.Equal(t, fc.callCount(), fc.firedCount(errorBefore), "every attempt met the injected error")
	require.Empty(t, f.ids())
}

func TestSegmentAppend(t *testing.T) {
	a := commit.Segment{From: commit.Offsets{"t": {0: 0}}, To: commit.Offsets{"t": {0: 10}}, Records: 10}
	require.NoError(t, a.Append(commit.Segment{From: commit.Offsets{"t": {0: 10, 1: 5}}, To: commit.Offsets{"t": {0: 20, 1: 7}}, Records: 12}))
	require.Equal(t, commit.Offsets{"t": {0: 0, 1: 5}}, a.From)
	require.Equal(t, commit.Offsets{"t": {0: 20, 1: 7}}, a.To)
	require.EqualValues(t, 22, a.Records)
	require.Error(t, a.Append(commit.Segment{From: commit.Offsets{"t": {0: 21}}, To: commit.Offsets{"t": {0: 30}}}))
}

// TestCommitUnknownOutcomeRolledBack: an attempt lands, the caller sees an
// error, and another engine rolls main back past it before the committer
// reloads. Its commit id is still in the metadata, in a snapshot main no
// longer descends from: that is not "landed", and the segment must be
// committed again.
func TestCommitUnknownOutcomeRolledBack(t *testing.T) {
	f := newFixture(t)
	fc := &faultyCatalog{inner: f.cat, faults: map[int]fault{2: rolledBackAfter}}
	c := f.committer(fc)
	_, err := c.Commit(context.Background(), f.segment(0, 10))
	require.NoError(t, err)
	res, err := c.Commit(context.Background(), f.segment(10, 10))
	require.NoError(t, err)
	require.Equal(t, 2, res.Attempts, "the rolled-back attempt is not taken for landed")
	require.Equal(t, res.SnapshotID, f.load().CurrentSnapshot().SnapshotID)
	f.requireExactly(20)
}

// TestCommitMovesTag: every commit, start records included, moves the
// pipeline's tag to the snapshot it creates, in the same catalog commit, and
// the tag never expires by age.
func TestCommitMovesTag(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	fc := &faultyCatalog{inner: f.cat, faults: map[int]fault{}}
	c := f.committer(fc)
	_, err := c.RecordStart(ctx, commit.Offsets{"tp": {0: 0}})
	require.NoError(t, err)
	require.Equal(t, 1, fc.calls, "one catalog commit carries the snapshot and the tag")
	tbl := f.load()
	require.Equal(t, tbl.CurrentSnapshot().SnapshotID, f.tagged(tbl))
	for i := int64(0); i < 3; i++ {
		before := fc.calls
		res, err := c.Commit(ctx, f.segment(i*10, 10))
		require.NoError(t, err)
		require.Equal(t, before+1, fc.calls)
		tbl := f.load()
		require.Equal(t, res.SnapshotID, tbl.CurrentSnapshot().SnapshotID)
		require.Equal(t, res.SnapshotID, f.tagged(tbl), "commit %d", i)
	}
	for name, ref := range f.load().Metadata().Refs() {
		if name == commit.TagName("p") {
			require.NotNil(t, ref.MaxRefAgeMs)
			require.Equal(t, int64(math.MaxInt64), *ref.MaxRefAgeMs)
		}
	}
	// Another engine's commit leaves the tag where floe left it.
	f.foreign(1_000_000)
	tbl = f.load()
	require.NotEqual(t, tbl.CurrentSnapshot().SnapshotID, f.tagged(tbl))
	require.Equal(t, *tbl.CurrentSnapshot().ParentSnapshotID, f.tagged(tbl))
}

// TestRecordStartKeepsFirstWriter: two processes record start offsets for
// one pipeline on one table. Whoever lands first keeps its offsets for every
// partition; the other only adds the partitions the first did not know.
func TestRecordStartKeepsFirstWriter(t *testing.T) {
	first := commit.Offsets{"tp": {0: 10, 1: 20}}
	second := commit.Offsets{"tp": {0: 50, 1: 5, 2: 70}}
	want := commit.Offsets{"tp": {0: 10, 1: 20, 2: 70}}
	ctx := context.Background()

	t.Run("after the first landed", func(t *testing.T) {
		f := newFixture(t)
		_, err := f.committer(f.cat).RecordStart(ctx, first)
		require.NoError(t, err)
		b := f.committer(f.cat)
		res, err := b.RecordStart(ctx, second)
		require.NoError(t, err)
		require.Equal(t, 1, res.Attempts)
		require.False(t, res.AlreadyCommitted)
		require.Equal(t, want, f.offsets())
		require.Equal(t, want, b.Offsets(), "the committer reports where the pipeline must start")
	})

	t.Run("nothing left to record", func(t *testing.T) {
		f := newFixture(t)
		_, err := f.committer(f.cat).RecordStart(ctx, first)
		require.NoError(t, err)
		head := f.load().CurrentSnapshot().SnapshotID
		b := f.committer(f.cat)
		res, err := b.RecordStart(ctx, commit.Offsets{"tp": {0: 99, 1: 0}})
		require.NoError(t, err)
		require.True(t, res.AlreadyCommitted)
		require.Equal(t, 0, res.Attempts)
		require.Equal(t, head, f.load().CurrentSnapshot().SnapshotID, "no snapshot committed")
		require.Equal(t, first, b.Offsets())
	})

	t.Run("stale base, reload, retry", func(t *testing.T) {
		f := newFixture(t)
		b := f.committer(f.cat) // loaded before the first start landed
		_, err := f.committer(f.cat).RecordStart(ctx, first)
		require.NoError(t, err)
		res, err := b.RecordStart(ctx, second)
		require.NoError(t, err)
		require.Equal(t, 2, res.Attempts, "the stale attempt failed, the retry filled partition 2 only")
		require.Equal(t, want, f.offsets())
		require.Equal(t, want, b.Offsets())
	})

	t.Run("first lands during the second's commit", func(t *testing.T) {
		f := newFixture(t)
		fc := &faultyCatalog{inner: f.cat, faults: map[int]fault{1: concurrentWriter}}
		a := f.committer(f.cat)
		fc.onConcurrent = func(ctx context.Context) error {
			_, err := a.RecordStart(ctx, first)
			return err
		}
		b := f.committer(fc)
		res, err := b.RecordStart(ctx, second)
		require.NoError(t, err)
		require.Equal(t, 2, res.Attempts)
		require.Equal(t, want, f.offsets())
	})

	t.Run("unknown outcome that landed", func(t *testing.T) {
		f := newFixture(t)
		fc := &faultyCatalog{inner: f.cat, faults: map[int]fault{1: errorAfter}}
		b := f.committer(fc)
		res, err := b.RecordStart(ctx, second)
		require.NoError(t, err)
		require.Equal(t, 1, res.Attempts, "resolved by finding the commit id")
		require.Equal(t, 1, fc.calls)
		require.Equal(t, second, f.offsets())
	})

	t.Run("concurrently", func(t *testing.T) {
		f := newFixture(t)
		a, b := f.committer(f.cat), f.committer(f.cat)
		offs := []commit.Offsets{{"tp": {0: 10, 1: 20, 2: 30}}, {"tp": {0: 50, 1: 5, 3: 40}}}
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, c := range []*commit.Committer{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = c.RecordStart(ctx, offs[i])
			}()
		}
		wg.Wait()
		require.NoError(t, errs[0])
		require.NoError(t, errs[1])

		// The oldest snapshot carrying offsets is the one that landed
		// first: its offsets must have survived the other's.
		tbl := f.load()
		var oldest commit.Offsets
		meta := tbl.Metadata()
		for s := meta.CurrentSnapshot(); s != nil; {
			if v, ok := s.Summary.Properties[commit.PropOffsets]; ok {
				oldest, _ = commit.ParseOffsets(v)
			}
			if s.ParentSnapshotID == nil {
				break
			}
			s = meta.SnapshotByID(*s.ParentSnapshotID)
		}
		require.NotNil(t, oldest)
		got := f.offsets()
		for p := range oldest["tp"] {
			require.Equal(t, oldest["tp"][p], got["tp"][p], "partition %d keeps the first value", p)
		}
		require.EqualValues(t, 30, got["tp"][2])
		require.EqualValues(t, 40, got["tp"][3])
		require.Equal(t, 4, got.Len())
		// The winner knows its own offsets; the other reloaded and knows
		// the table's.
		require.ElementsMatch(t, []commit.Offsets{oldest, got}, []commit.Offsets{a.Offsets(), b.Offsets()})
	})
}

// TestCommitRefusesSegmentWithoutFrom: a segment that names a partition
// without a start offset cannot overwrite the table's offset for it, whether
// it would lower it, raise it, or is covered by it.
func TestCommitRefusesSegmentWithoutFrom(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	c := f.committer(f.cat)
	_, err := c.RecordStart(ctx, commit.Offsets{"tp": {0: 10}})
	require.NoError(t, err)
	for _, to := range []int64{5, 10, 50} {
		_, err := c.Commit(ctx, commit.Segment{From: commit.Offsets{}, To: commit.Offsets{"tp": {0: to}}})
		require.ErrorIs(t, err, commit.ErrMissingFrom, "to %d", to)
		require.Equal(t, commit.ClassFatal, commit.Classify(err))
	}
	require.Equal(t, commit.Offsets{"tp": {0: 10}}, f.offsets())

	// A partition the table has no offset for may still start unrecorded,
	// next to one that continues.
	_, err = c.Commit(ctx, commit.Segment{From: commit.Offsets{"tp": {0: 10}}, To: commit.Offsets{"tp": {0: 12, 1: 3}}})
	require.NoError(t, err)
	require.Equal(t, commit.Offsets{"tp": {0: 12, 1: 3}}, f.offsets())
}

// TestCommitWritesSkipped: a segment that moved past offsets Kafka no longer
// had says so in its snapshot's summary, and only in that snapshot.
func TestCommitWritesSkipped(t *testing.T) {
	f := newFixture(t)
	c := f.committer(f.cat)
	_, err := c.Commit(context.Background(), f.segment(0, 10))
	require.NoError(t, err)
	require.NotContains(t, c.Table().CurrentSnapshot().Summary.Properties, commit.PropSkipped)

	// Offsets 10..15 were deleted by retention; 15..25 hold rows.
	seg := f.segment(15, 10)
	seg.From = commit.Offsets{"tp": {0: 10}}
	seg.Skipped = commit.Skipped{}
	seg.Skipped.Add("tp", 0, 10, 15)
	_, err = c.Commit(context.Background(), seg)
	require.NoError(t, err)
	props := c.Table().CurrentSnapshot().Summary.Properties
	require.Equal(t, `{"tp":{"0":[[10,15]]}}`, props[commit.PropSkipped])
	require.Equal(t, `{"tp":{"0":25}}`, props[commit.PropOffsets])

	_, err = c.Commit(context.Background(), commit.Segment{From: commit.Offsets{"tp": {0: 25}}, To: commit.Offsets{"tp": {0: 30}}})
	require.NoError(t, err)
	require.NotContains(t, c.Table().CurrentSnapshot().Summary.Properties, commit.PropSkipped, "not copied forward")
}

func TestSegmentAppendMergesSkipped(t *testing.T) {
	a := commit.Segment{From: commit.Offsets{"t": {0: 0}}, To: commit.Offsets{"t": {0: 10}}, Skipped: commit.Skipped{"t": {0: {{2, 4}}}}}
	require.NoError(t, a.Append(commit.Segment{From: commit.Offsets{"t": {0: 10, 1: 0}}, To: commit.Offsets{"t": {0: 20, 1: 9}},
		Skipped: commit.Skipped{"t": {0: {{10, 12}}, 1: {{0, 9}}}}}))
	require.NoError(t, a.Append(commit.Segment{From: commit.Offsets{"t": {0: 20}}, To: commit.Offsets{"t": {0: 30}},
		Skipped: commit.Skipped{"t": {0: {{20, 25}}}}}))
	require.Equal(t, commit.Skipped{"t": {0: {{2, 4}, {10, 12}, {20, 25}}, 1: {{0, 9}}}}, a.Skipped)
	require.EqualValues(t, 2+2+5+9, a.Skipped.Records())
	require.Equal(t, `{"t":{"0":[[2,4],[10,12],[20,25]],"1":[[0,9]]}}`, a.Skipped.Encode())

	// Touching ranges merge.
	s := commit.Skipped{}
	s.Add("t", 0, 5, 8)
	s.Add("t", 0, 8, 11)
	s.Add("t", 0, 3, 3)
	require.Equal(t, commit.Skipped{"t": {0: {{5, 11}}}}, s)
}
