package commit_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
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
	"github.com/floelake/floe/internal/config"
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
)

func (f fault) String() string {
	return [...]string{"pass", "conflict-before", "error-before", "error-after", "concurrent-writer"}[f]
}

// faultyCatalog wraps a real catalog and misbehaves on chosen CommitTable
// calls (1-based), the way DESIGN §11 asks: fail, conflict or time out at
// the k-th write.
type faultyCatalog struct {
	inner  *catalog.Catalog
	mu     sync.Mutex
	calls  int
	faults map[int]fault
	// onConcurrent commits as another writer would.
	onConcurrent func(ctx context.Context) error
}

func (f *faultyCatalog) LoadTable(ctx context.Context, ident table.Identifier) (*table.Table, error) {
	return f.inner.LoadTable(ctx, ident)
}

func (f *faultyCatalog) CommitTable(ctx context.Context, ident table.Identifier, reqs []table.Requirement, upd []table.Update) (table.Metadata, string, error) {
	f.mu.Lock()
	f.calls++
	ft := f.faults[f.calls]
	f.mu.Unlock()
	switch ft {
	case conflictBefore:
		return nil, "", fmt.Errorf("%w: injected stale base", table.ErrCommitFailed)
	case errorBefore:
		return nil, "", errors.New("injected: connection reset by peer")
	case errorAfter:
		if _, _, err := f.inner.CommitTable(ctx, ident, reqs, upd); err != nil {
			return nil, "", err
		}
		return nil, "", errors.New("injected: context deadline exceeded after the write")
	case concurrentWriter:
		if err := f.onConcurrent(ctx); err != nil {
			return nil, "", err
		}
	}
	return f.inner.CommitTable(ctx, ident, reqs, upd)
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
	ctx := context.Background()
	dir := t.TempDir()
	cat, err := catalog.Open(ctx, config.Catalog{Type: "sql", Name: "test", URI: "sqlite://" + filepath.Join(dir, "c.db")},
		config.Storage{}, dir)
	require.NoError(t, err)
	t.Cleanup(func() { _ = cat.Close() })
	ident := table.Identifier{"db", "t"}
	tbl, _, err := catalog.EnsureTable(ctx, cat, ident, testSchema, *iceberg.UnpartitionedSpec, nil)
	require.NoError(t, err)
	info, err := fileio.InfoFromTable(ctx, tbl)
	require.NoError(t, err)
	return &fixture{t: t, cat: cat, ident: ident, info: info}
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

// rows reads the table back and returns every id, failing on duplicates.
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
// a run of three segments, for k = 1..4, and checks after each run that the
// table holds every row exactly once with the right offsets.
func TestCommitFaultAtKthCall(t *testing.T) {
	for _, ft := range []fault{conflictBefore, errorBefore, errorAfter, concurrentWriter} {
		for k := 1; k <= 4; k++ {
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
				for i := int64(0); i < 3; i++ {
					_, err := c.Commit(context.Background(), f.segment(i*10, 10))
					require.NoError(t, err)
				}
				ids := f.ids()
				require.Len(t, ids, 30+otherFiles)
				for id, n := range ids {
					require.Equal(t, 1, n, "id %d committed %d times", id, n)
				}
				tbl, err := f.cat.LoadTable(context.Background(), f.ident)
				require.NoError(t, err)
				off, _, _, err := commit.TableOffsets(tbl, "p")
				require.NoError(t, err)
				require.Equal(t, commit.Offsets{"tp": {0: 30}}, off)
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
	require.Equal(t, 1, fc.calls)
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
	go func() {
		for {
			fc.mu.Lock()
			n := fc.calls
			fc.mu.Unlock()
			if n >= 5 {
				cancel()
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	_, err := c.Commit(ctx, f.segment(0, 10))
	require.ErrorIs(t, err, context.Canceled)
	require.Contains(t, err.Error(), "connection reset", "the last failure is reported")
	ok, lastErr := c.Healthy()
	require.False(t, ok)
	require.True(t, strings.HasPrefix(lastErr.Error(), commit.ClassUnknown))
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
