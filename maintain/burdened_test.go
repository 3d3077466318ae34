package maintain_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	"github.com/stretchr/testify/require"

	"github.com/floelake/floe/catalog"
	"github.com/floelake/floe/commit"
	"github.com/floelake/floe/internal/conf"
	"github.com/floelake/floe/internal/fileio"
	"github.com/floelake/floe/internal/testutil"
	"github.com/floelake/floe/maintain"
	"github.com/floelake/floe/upsert"
)

// keyedFixture is a keyed table (id long, v string) written the way the
// table writer does: files resolved by an upsert.Resolver and committed
// with their deletes.
type keyedFixture struct {
	t     *testing.T
	ctx   context.Context
	cat   *catalog.Catalog
	ident table.Identifier
	info  fileio.TableInfo
	c     *commit.Committer
	res   *upsert.Resolver
	next  int64
	want  map[int64]string // each key's newest v
}

// newKeyedFixture creates the table; with rowDeltas the committer tells
// the resolver of rewrites, as a keyed table's writer does.
func newKeyedFixture(t *testing.T, name string, rowDeltas bool) *keyedFixture {
	ctx := context.Background()
	cat := testutil.SQLiteCatalog(t)
	ident := table.Identifier{"db", name}
	sch := iceberg.NewSchemaWithIdentifiers(0, []int{1},
		iceberg.NestedField{ID: 1, Name: "id", Type: iceberg.PrimitiveTypes.Int64, Required: true},
		iceberg.NestedField{ID: 2, Name: "v", Type: iceberg.PrimitiveTypes.String},
	)
	tbl, _, err := catalog.EnsureTable(ctx, cat, ident, sch, *iceberg.UnpartitionedSpec, nil)
	require.NoError(t, err)
	info, err := fileio.InfoFromTable(ctx, tbl)
	require.NoError(t, err)
	c, err := commit.New(ctx, cat, commit.Config{Pipeline: "p", Table: ident})
	require.NoError(t, err)
	res, err := upsert.NewResolver([]string{"id"}, nil)
	require.NoError(t, err)
	t.Cleanup(res.Close)
	if rowDeltas {
		c.UseRowDeltas(res)
	}
	return &keyedFixture{t: t, ctx: ctx, cat: cat, ident: ident, info: info, c: c, res: res, want: map[int64]string{}}
}

// write commits one file of the ids' new rows.
func (k *keyedFixture) write(ids []int64, round int) {
	t := k.t
	t.Helper()
	w := fileio.NewWriter(k.info, nil, fileio.Options{})
	b := array.NewRecordBuilder(memory.NewGoAllocator(), k.info.ArrowSchema)
	for _, id := range ids {
		v := fmt.Sprintf("round %d of %d: %x", round, id, uint64(id)*0x9e3779b97f4a7c15)
		b.Field(0).(*array.Int64Builder).Append(id)
		b.Field(1).(*array.StringBuilder).Append(v)
		k.want[id] = v
	}
	rec := b.NewRecordBatch()
	b.Release()
	require.NoError(t, w.Write(rec))
	rec.Release()
	fs, err := w.Close(k.ctx)
	require.NoError(t, err)
	d, err := k.res.Resolve(k.ctx, k.c.Table(), fs)
	require.NoError(t, err)
	n := int64(len(ids))
	r, err := k.c.CommitDelta(k.ctx, commit.Segment{Files: fs, From: commit.Offsets{"tp": {0: k.next}}, To: commit.Offsets{"tp": {0: k.next + n}}, Records: n}, d)
	require.NoError(t, err)
	k.res.Committed(r.SnapshotID)
	k.next += n
}

// TestCompactionRewritesALargeFileBurdenedByDeletes: a data file too large
// for any size tier, whose rows a keyed table's updates have mostly
// deleted, is rewritten without its deletes; readers stop applying them.
func TestCompactionRewritesALargeFileBurdenedByDeletes(t *testing.T) {
	k := newKeyedFixture(t, "keyed", false)
	ctx, cat, ident, c, write := k.ctx, k.cat, k.ident, k.c, k.write
	const rows = 80_000
	all := make([]int64, rows)
	for i := range all {
		all[i] = int64(i)
	}
	write(all, 0)
	big := c.Table().CurrentSnapshot()
	// 40% of the keys updated: their rows in the large file are deleted.
	write(all[:rows*4/10], 1)

	cfg := maintain.DefaultConfig()
	cfg.Compaction.TargetFileSize = conf.ByteSize(1 << 20)
	cfg.Compaction.MaxBytesPerRun = conf.ByteSize(1 << 30)
	tasks, err := c.Table().Scan().PlanFiles(ctx)
	require.NoError(t, err)
	var largest int64
	for _, task := range tasks {
		largest = max(largest, task.File.FileSizeBytes())
	}
	require.GreaterOrEqual(t, largest, int64(cfg.Compaction.TargetFileSize)*3/4, "the first file is past every size tier")
	require.NotNil(t, big)

	m := maintain.New("db.keyed", testutil.Direct{C: c}, cfg, nil, nil)
	sum, err := m.Compact(ctx, nil)
	require.NoError(t, err)
	require.NotZero(t, sum.Snapshot, "nothing was compacted: %+v", sum)

	got, err := cat.LoadTable(ctx, ident)
	require.NoError(t, err)
	tasks, err = got.Scan().PlanFiles(ctx)
	require.NoError(t, err)
	for _, task := range tasks {
		require.Empty(t, task.DeleteFiles, "%s still has deletes", task.File.FilePath())
	}
	at, err := got.Scan().ToArrowTable(ctx)
	require.NoError(t, err)
	defer at.Release()
	require.EqualValues(t, rows, at.NumRows(), "one row per key")

	// Every key updated again: the compacted file's rows are all deleted.
	// Its rewrite writes nothing and removes it with its deletes.
	write(all, 2)
	sum, err = m.Compact(ctx, nil)
	require.NoError(t, err)
	require.NotZero(t, sum.Snapshot, "nothing was compacted: %+v", sum)
	got, err = cat.LoadTable(ctx, ident)
	require.NoError(t, err)
	tasks, err = got.Scan().PlanFiles(ctx)
	require.NoError(t, err)
	require.Len(t, tasks, 1, "the file of the last round alone")
	require.Empty(t, tasks[0].DeleteFiles)
	at2, err := got.Scan().ToArrowTable(ctx)
	require.NoError(t, err)
	defer at2.Release()
	require.EqualValues(t, rows, at2.NumRows(), "one row per key")
}

// TestMergeDeletes: the position-delete files that a keyed v2 table's
// commits add to one data file are merged into one, in a snapshot that
// changes no row, and the key index follows it without a rebuild.
func TestMergeDeletes(t *testing.T) {
	k := newKeyedFixture(t, "merged", true)
	ctx, cat, ident, c, res, write, want := k.ctx, k.cat, k.ident, k.c, k.res, k.write, k.want
	requireRows := func() {
		t.Helper()
		got, err := cat.LoadTable(ctx, ident)
		require.NoError(t, err)
		at, err := got.Scan().ToArrowTable(ctx)
		require.NoError(t, err)
		defer at.Release()
		seen := map[int64]string{}
		tr := array.NewTableReader(at, 0)
		defer tr.Release()
		for tr.Next() {
			rec := tr.RecordBatch()
			ids, vs := rec.Column(0).(*array.Int64), rec.Column(1).(*array.String)
			for i := range int(rec.NumRows()) {
				_, dup := seen[ids.Value(i)]
				require.False(t, dup, "id %d twice", ids.Value(i))
				seen[ids.Value(i)] = vs.Value(i)
			}
		}
		require.Equal(t, want, seen)
	}
	deletesOf := func() map[string]int {
		t.Helper()
		got, err := cat.LoadTable(ctx, ident)
		require.NoError(t, err)
		tasks, err := got.Scan().PlanFiles(ctx)
		require.NoError(t, err)
		out := map[string]int{}
		for _, task := range tasks {
			out[task.File.FilePath()] = len(task.DeleteFiles)
		}
		return out
	}

	ids := make([]int64, 1000)
	for i := range ids {
		ids[i] = int64(i)
	}
	write(ids, 0)
	for round := 1; round <= 6; round++ {
		write(ids[round*100:round*100+50], round)
	}
	before := deletesOf()
	deletedBefore := c.Table().CurrentSnapshot().Summary.Properties["total-position-deletes"]
	most := 0
	for _, n := range before {
		most = max(most, n)
	}
	require.Equal(t, 6, most, "each update commit added a delete file to the first data file")
	requireRows()

	m := maintain.New("db.merged", testutil.Direct{C: c}, maintain.DefaultConfig(), nil, nil)
	n, err := m.MergeDeletes(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, n, "one data file had merge_deletes (4) or more delete files")
	after := deletesOf()
	for path, k := range after {
		if before[path] >= 4 {
			require.Equal(t, 1, k, "%s still has %d delete files", path, k)
		} else {
			require.Equal(t, before[path], k)
		}
	}
	require.Equal(t, "replace", string(c.Table().CurrentSnapshot().Summary.Operation))
	require.Equal(t, deletedBefore, c.Table().CurrentSnapshot().Summary.Properties["total-position-deletes"],
		"the merged file deletes the same positions, once each")
	requireRows()

	// The index followed the merge: the next commits need no rebuild.
	rebuilds := res.Stats().Rebuilds
	write(ids[:10], 7)
	write(ids[5:15], 8)
	require.Equal(t, rebuilds, res.Stats().Rebuilds, "the merge made the index rebuild")
	requireRows()
	n, err = m.MergeDeletes(ctx)
	require.NoError(t, err)
	require.Zero(t, n, "nothing left to merge")
}
