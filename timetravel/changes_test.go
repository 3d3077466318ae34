package timetravel_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	icecat "github.com/apache/iceberg-go/catalog"
	iceio "github.com/apache/iceberg-go/io"
	"github.com/apache/iceberg-go/table"

	"github.com/floelake/floe/catalog"
	"github.com/floelake/floe/commit"
	"github.com/floelake/floe/internal/fileio"
	"github.com/floelake/floe/internal/testutil"
	"github.com/floelake/floe/timetravel"
	"github.com/floelake/floe/upsert"
)

// The keyed tables of these tests are written as floe writes them: data
// files through fileio, deletes resolved by upsert's Resolver (position
// deletes in v2, deletion vectors in v3, equality deletes in equality
// mode), committed by commit's Committer.

// chgEvent is one keyed record: key, value, the region (partition) it
// lands in; del deletes the key (a tombstone).
type chgEvent struct {
	key    string
	value  int64
	region string
	del    bool
}

// chgTable is a table keyed by id, partitioned by region.
type chgTable struct {
	t     *testing.T
	ctx   context.Context
	cat   *catalog.Catalog
	ident table.Identifier
	next  int64 // next Kafka offset
}

func newChgTable(t *testing.T, version int) *chgTable {
	t.Helper()
	ctx := context.Background()
	cat := testutil.SQLiteCatalog(t)
	sch := iceberg.NewSchemaWithIdentifiers(0, []int{1},
		iceberg.NestedField{ID: 1, Name: "id", Type: iceberg.PrimitiveTypes.String, Required: true},
		iceberg.NestedField{ID: 2, Name: "v", Type: iceberg.PrimitiveTypes.Int64},
		iceberg.NestedField{ID: 3, Name: "region", Type: iceberg.PrimitiveTypes.String},
		iceberg.NestedField{ID: 4, Name: upsert.MetaPartition, Type: iceberg.PrimitiveTypes.Int32},
		iceberg.NestedField{ID: 5, Name: upsert.MetaOffset, Type: iceberg.PrimitiveTypes.Int64},
	)
	spec := iceberg.NewPartitionSpec(iceberg.PartitionField{SourceIDs: []int{3}, FieldID: 1000, Name: "region", Transform: iceberg.IdentityTransform{}})
	ident := table.Identifier{"db", fmt.Sprintf("keyed_v%d", version)}
	chgMust(t, cat.CreateNamespace(ctx, table.Identifier{"db"}, nil))
	_, err := cat.CreateTable(ctx, ident, sch, icecat.WithPartitionSpec(&spec),
		// Small read batches, so that files are read in several and
		// positions run across batches.
		icecat.WithProperties(iceberg.Properties{"format-version": fmt.Sprint(version), table.ParquetBatchSizeKey: "2"}))
	chgMust(t, err)
	kt := &chgTable{t: t, ctx: ctx, cat: cat, ident: ident}
	// Equality deletes go under an unpartitioned spec, as a keyed
	// pipeline's table has besides its default one.
	unpartitioned := *iceberg.UnpartitionedSpec
	_, _, err = cat.CommitTable(ctx, ident, []table.Requirement{table.AssertTableUUID(kt.load().Metadata().TableUUID())},
		[]table.Update{table.NewAddPartitionSpecUpdate(&unpartitioned, false)})
	chgMust(t, err)
	return kt
}

func chgMust(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func (k *chgTable) load() *table.Table {
	k.t.Helper()
	tbl, err := k.cat.LoadTable(k.ctx, k.ident)
	chgMust(k.t, err)
	return tbl
}

func (k *chgTable) head() int64 { return k.load().CurrentSnapshot().SnapshotID }

// files writes evs as ingest does: a file per region in Kafka order, and
// the deleted keys in a file of their own.
func (k *chgTable) files(tbl *table.Table, evs []chgEvent) []iceberg.DataFile {
	k.t.Helper()
	info, err := fileio.InfoFromTable(k.ctx, tbl)
	chgMust(k.t, err)
	byRegion := map[string][]int{}
	var regions []string
	var dels []int
	for i, e := range evs {
		if e.del {
			dels = append(dels, i)
			continue
		}
		if byRegion[e.region] == nil {
			regions = append(regions, e.region)
		}
		byRegion[e.region] = append(byRegion[e.region], i)
	}
	var out []iceberg.DataFile
	for _, r := range regions {
		b := array.NewRecordBuilder(memory.DefaultAllocator, info.ArrowSchema)
		for _, i := range byRegion[r] {
			e := evs[i]
			b.Field(0).(*array.StringBuilder).Append(e.key)
			b.Field(1).(*array.Int64Builder).Append(e.value)
			b.Field(2).(*array.StringBuilder).Append(e.region)
			b.Field(3).(*array.Int32Builder).Append(0)
			b.Field(4).(*array.Int64Builder).Append(k.next + int64(i))
		}
		rec := b.NewRecordBatch()
		b.Release()
		w := fileio.NewWriter(info, map[int]any{1000: r}, fileio.Options{})
		chgMust(k.t, w.Write(rec))
		rec.Release()
		fs, err := w.Close(k.ctx)
		chgMust(k.t, err)
		out = append(out, fs...)
	}
	if len(dels) == 0 {
		return out
	}
	ksch, err := info.Schema.Select(true, "id", upsert.MetaPartition, upsert.MetaOffset)
	chgMust(k.t, err)
	asc, err := table.SchemaToArrowSchema(ksch, nil, true, false)
	chgMust(k.t, err)
	b := array.NewRecordBuilder(memory.DefaultAllocator, asc)
	defer b.Release()
	for _, i := range dels {
		b.Field(0).(*array.StringBuilder).Append(evs[i].key)
		b.Field(1).(*array.Int32Builder).Append(0)
		b.Field(2).(*array.Int64Builder).Append(k.next + int64(i))
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	info.Schema, info.ArrowSchema = ksch, asc
	w := fileio.NewWriter(info, map[int]any{1000: nil}, fileio.Options{Content: iceberg.EntryContentEqDeletes, EqualityFieldIDs: []int{1}, Dir: "data/deleted-keys"})
	chgMust(k.t, w.Write(rec))
	fs, err := w.Close(k.ctx)
	chgMust(k.t, err)
	return append(out, fs...)
}

// commit commits evs through res as the table writer does, and returns the
// snapshot.
func (k *chgTable) commit(res *upsert.Resolver, evs ...chgEvent) int64 {
	k.t.Helper()
	c, err := commit.New(k.ctx, k.cat, commit.Config{Pipeline: "p", Table: k.ident})
	chgMust(k.t, err)
	files := k.files(c.Table(), evs)
	d, err := res.Resolve(k.ctx, c.Table(), files)
	chgMust(k.t, err)
	from, to := commit.Offsets{}, commit.Offsets{}
	from.Set("t", 0, k.next)
	k.next += int64(len(evs))
	to.Set("t", 0, k.next)
	r, err := c.CommitDelta(k.ctx, commit.Segment{From: from, To: to, Records: int64(len(evs)), Files: files}, d)
	if err != nil {
		res.Abandon()
		k.t.Fatal(err)
	}
	res.Committed(r.SnapshotID)
	return r.SnapshotID
}

// compact rewrites the live files of region (a replace snapshot), as
// maintenance does.
func (k *chgTable) compact(res *upsert.Resolver, region string) int64 {
	k.t.Helper()
	tbl := k.load()
	tasks, err := tbl.Scan().PlanFiles(k.ctx)
	chgMust(k.t, err)
	var in []table.FileScanTask
	for _, task := range tasks {
		if task.File.Partition()[1000] == region {
			in = append(in, task)
		}
	}
	if len(in) == 0 {
		k.t.Fatalf("no file in region %s", region)
	}
	cr, err := table.ExecuteCompactionGroup(k.ctx, tbl, table.CompactionTaskGroup{PartitionKey: region, Tasks: in})
	chgMust(k.t, err)
	c, err := commit.New(k.ctx, k.cat, commit.Config{Pipeline: "p", Table: k.ident})
	chgMust(k.t, err)
	c.UseRowDeltas(res)
	_, err = c.Rewrite(k.ctx, commit.Rewrite{
		Old: cr.OldDataFiles, New: cr.NewDataFiles,
		RemoveDeletes: append(append([]iceberg.DataFile(nil), cr.SafePosDeletes...), cr.SafeDeletionVectors...),
		BaseSnapshot:  tbl.CurrentSnapshot().SnapshotID, DataSeq: tbl.CurrentSnapshot().SequenceNumber,
	})
	chgMust(k.t, err)
	return k.head()
}

// removeObsolete removes the delete files res says are obsolete (equality
// deletes turned into position deletes), as the table writer does: a
// replace snapshot. It returns how many.
func (k *chgTable) removeObsolete(res *upsert.Resolver) int {
	k.t.Helper()
	c, err := commit.New(k.ctx, k.cat, commit.Config{Pipeline: "p", Table: k.ident})
	chgMust(k.t, err)
	files, err := res.Obsolete(k.ctx, c.Table())
	chgMust(k.t, err)
	if len(files) == 0 {
		return 0
	}
	base := c.Table().CurrentSnapshot().SnapshotID
	r, err := c.RemoveDeletes(k.ctx, base, files)
	if err != nil {
		res.Abandon()
		k.t.Fatal(err)
	}
	res.Moved(base, r.SnapshotID)
	return len(files)
}

// rollbackTo commits a snapshot on top of the head whose manifest list
// lists the manifests of snapshot target, as a rollback that keeps history
// does (an "overwrite" bringing back target's files and delete files).
func chgRollbackTo(t *testing.T, cat *catalog.Catalog, ident table.Identifier, target int64) int64 {
	t.Helper()
	ctx := context.Background()
	tbl, err := cat.LoadTable(ctx, ident)
	chgMust(t, err)
	meta := tbl.Metadata()
	old, head := meta.SnapshotByID(target), meta.CurrentSnapshot()
	fs, err := tbl.FS(ctx)
	chgMust(t, err)
	mans, err := old.Manifests(fs)
	chgMust(t, err)
	id := head.SnapshotID + 7919
	seq := meta.LastSequenceNumber() + 1
	firstRowID := meta.NextRowID()
	path := fmt.Sprintf("%s/metadata/snap-%d-rollback.avro", strings.TrimSuffix(tbl.Location(), "/"), id)
	out, err := fs.(iceio.WriteFileIO).Create(path)
	chgMust(t, err)
	chgMust(t, iceberg.WriteManifestList(meta.Version(), out, id, &head.SnapshotID, &seq, firstRowID, mans))
	chgMust(t, out.Close())
	snap := table.Snapshot{
		SnapshotID: id, ParentSnapshotID: &head.SnapshotID, SequenceNumber: seq,
		TimestampMs: head.TimestampMs + 1, ManifestList: path, SchemaID: old.SchemaID,
		Summary: &table.Summary{Operation: table.OpOverwrite, Properties: iceberg.Properties{}},
	}
	if meta.Version() >= 3 {
		zero := int64(0)
		snap.FirstRowID, snap.AddedRows = &firstRowID, &zero
	}
	_, _, err = cat.CommitTable(ctx, ident,
		[]table.Requirement{table.AssertRefSnapshotID(table.MainBranch, &head.SnapshotID)},
		[]table.Update{table.NewAddSnapshotUpdate(&snap), table.NewSetSnapshotRefUpdate(table.MainBranch, id, table.BranchRef, -1, -1, -1)})
	chgMust(t, err)
	return id
}

// chgChange is one row of the output of Changes: its kind, snapshot, and
// the values of the other columns, rendered.
type chgChange struct {
	kind string
	snap int64
	row  string
}

// changes runs Changes and returns its rows, checking the shape of every
// batch.
func chgChanges(t *testing.T, tbl *table.Table, req timetravel.ChangesRequest, lim timetravel.Limits) ([]chgChange, timetravel.ChangesStats, *arrow.Schema) {
	t.Helper()
	var out []chgChange
	var sch *arrow.Schema
	calls := 0
	st, err := timetravel.Changes(context.Background(), tbl, req, lim, func(rec arrow.RecordBatch) error {
		calls++
		if sch == nil {
			sch = rec.Schema()
		} else if !sch.Equal(rec.Schema()) {
			t.Fatalf("batch schema %v, want %v", rec.Schema(), sch)
		}
		out = append(out, chgRows(t, rec)...)
		return nil
	})
	if err != nil {
		t.Fatalf("Changes(%+v): %v", req, err)
	}
	if calls == 0 {
		t.Fatal("emit was never called")
	}
	if n := st.Inserts + st.Deletes; n != int64(len(out)) {
		t.Fatalf("stats say %d rows, emit got %d", n, len(out))
	}
	return out, st, sch
}

func chgRows(t *testing.T, rec arrow.RecordBatch) []chgChange {
	t.Helper()
	if rec.NumCols() < 2 || rec.Schema().Field(0).Name != "_change" || rec.Schema().Field(1).Name != "_snapshot_id" {
		t.Fatalf("batch schema %v: want _change and _snapshot_id first", rec.Schema())
	}
	kinds, ok1 := rec.Column(0).(*array.String)
	snaps, ok2 := rec.Column(1).(*array.Int64)
	if !ok1 || !ok2 {
		t.Fatalf("batch schema %v: _change must be a string and _snapshot_id an int64", rec.Schema())
	}
	var out []chgChange
	for i := range int(rec.NumRows()) {
		out = append(out, chgChange{kind: kinds.Value(i), snap: snaps.Value(i), row: chgRender(rec, 2, i)})
	}
	return out
}

// chgRender renders row i of rec from column from on.
func chgRender(rec arrow.RecordBatch, from, i int) string {
	var vals []string
	for c := from; c < int(rec.NumCols()); c++ {
		col := rec.Column(c)
		if col.IsNull(i) {
			vals = append(vals, "null")
		} else {
			vals = append(vals, col.ValueStr(i))
		}
	}
	return strings.Join(vals, "|")
}

// chgSnapshotRows returns the rows of snapshot id (none for 0), rendered,
// as a multiset.
func chgSnapshotRows(t *testing.T, tbl *table.Table, id int64, cols ...string) map[string]int {
	t.Helper()
	out := map[string]int{}
	if id == 0 {
		return out
	}
	opts := []table.ScanOption{table.WithSnapshotID(id)}
	if len(cols) > 0 {
		opts = append(opts, table.WithSelectedFields(cols...))
	}
	_, recs, err := tbl.Scan(opts...).ToArrowRecords(context.Background())
	chgMust(t, err)
	for rec, err := range recs {
		chgMust(t, err)
		for i := range int(rec.NumRows()) {
			out[chgRender(rec, 0, i)]++
		}
		rec.Release()
	}
	return out
}

// chgRow renders a row of the keyed tables.
func chgRow(key string, v int64, region string, offset int64) string {
	return fmt.Sprintf("%s|%d|%s|0|%d", key, v, region, offset)
}

// chgApply applies the changes to rows (a multiset), failing on a delete
// of a row that is not there, and checks their order: snapshots oldest
// first, deletes before inserts within one.
func chgApply(t *testing.T, rows map[string]int, cs []chgChange, order []int64) map[string]int {
	t.Helper()
	out := make(map[string]int, len(rows))
	for k, v := range rows {
		out[k] = v
	}
	rank := map[int64]int{}
	for i, id := range order {
		rank[id] = i
	}
	for i, c := range cs {
		if i > 0 {
			prev := cs[i-1]
			if rank[c.snap] < rank[prev.snap] || (c.snap == prev.snap && prev.kind == "insert" && c.kind == "delete") {
				t.Fatalf("change %d (%+v) comes after %+v", i, c, prev)
			}
		}
		switch c.kind {
		case "insert":
			out[c.row]++
		case "delete":
			if out[c.row] == 0 {
				t.Fatalf("change %d deletes %s, which is not there", i, c.row)
			}
			if out[c.row]--; out[c.row] == 0 {
				delete(out, c.row)
			}
		default:
			t.Fatalf("change %d has kind %q", i, c.kind)
		}
	}
	return out
}

func chgSameRows(t *testing.T, what string, got, want map[string]int) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d distinct rows, want %d\ngot  %v\nwant %v", what, len(got), len(want), got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("%s: row %s %d times, want %d\ngot  %v\nwant %v", what, k, got[k], v, got, want)
		}
	}
}

// chgExpect checks cs against the rows each snapshot should delete and
// insert, in order (deletes of a snapshot before its inserts, in any order
// among themselves).
func chgExpect(t *testing.T, cs []chgChange, want []chgChange) {
	t.Helper()
	norm := func(cs []chgChange) []string {
		out := make([]string, len(cs))
		for i, c := range cs {
			out[i] = fmt.Sprintf("%d %s %s", c.snap, c.kind, c.row)
		}
		// Sort within runs of the same snapshot and kind.
		for i := 0; i < len(out); {
			j := i
			for j < len(cs) && cs[j].snap == cs[i].snap && cs[j].kind == cs[i].kind {
				j++
			}
			slices.Sort(out[i:j])
			i = j
		}
		return out
	}
	got, exp := norm(cs), norm(want)
	if !slices.Equal(got, exp) {
		t.Fatalf("changes:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(exp, "\n  "))
	}
}

func chgResolver(t *testing.T, opts ...upsert.Option) *upsert.Resolver {
	t.Helper()
	res, err := upsert.NewResolver([]string{"id"}, nil, append([]upsert.Option{upsert.RebuildWait(time.Hour)}, opts...)...)
	chgMust(t, err)
	t.Cleanup(res.Close)
	return res
}

// deleteKinds counts the live delete files of the head by kind.
func (k *chgTable) deleteKinds() (pos, dvs, eq int) {
	k.t.Helper()
	tasks, err := k.load().Scan().PlanFiles(k.ctx)
	chgMust(k.t, err)
	seen := map[string]bool{}
	for _, task := range tasks {
		for _, d := range slices.Concat(task.DeleteFiles, task.DeletionVectorFiles, task.EqualityDeleteFiles) {
			id := d.FilePath()
			if ref := d.ReferencedDataFile(); ref != nil {
				id += "#" + *ref
			}
			if seen[id] {
				continue
			}
			seen[id] = true
			switch {
			case d.ContentType() == iceberg.EntryContentEqDeletes:
				eq++
			case d.FileFormat() == iceberg.PuffinFile:
				dvs++
			default:
				pos++
			}
		}
	}
	return pos, dvs, eq
}

// TestChangesKeyedUpdates: updates and deletes of a keyed table by
// position-delete files (v2) and deletion vectors (v3) are deletes of the
// old rows and inserts of the new, deletes first; a row a later row of
// the same commit replaced never shows.
func TestChangesKeyedUpdates(t *testing.T) {
	for _, version := range []int{2, 3} {
		t.Run(fmt.Sprintf("v%d", version), func(t *testing.T) {
			kt := newChgTable(t, version)
			res := chgResolver(t)
			s1 := kt.commit(res, chgEvent{key: "a", value: 1, region: "eu"}, chgEvent{key: "b", value: 2, region: "eu"},
				chgEvent{key: "c", value: 3, region: "us"})
			// b updated (and moved to us), c deleted, d new twice in one
			// commit: only its last row is live.
			s2 := kt.commit(res, chgEvent{key: "b", value: 20, region: "us"}, chgEvent{key: "c", del: true},
				chgEvent{key: "d", value: 4, region: "eu"}, chgEvent{key: "d", value: 40, region: "eu"})
			pos, dvs, eq := kt.deleteKinds()
			if version == 2 && (pos == 0 || dvs+eq != 0) || version == 3 && (dvs == 0 || pos+eq != 0) {
				t.Fatalf("v%d table has %d position-delete files, %d deletion vectors, %d equality deletes", version, pos, dvs, eq)
			}
			tbl := kt.load()
			cs, st, sch := chgChanges(t, tbl, timetravel.ChangesRequest{}, timetravel.Limits{})
			chgExpect(t, cs, []chgChange{
				{"insert", s1, chgRow("a", 1, "eu", 0)}, {"insert", s1, chgRow("b", 2, "eu", 1)}, {"insert", s1, chgRow("c", 3, "us", 2)},
				{"delete", s2, chgRow("b", 2, "eu", 1)}, {"delete", s2, chgRow("c", 3, "us", 2)},
				{"insert", s2, chgRow("b", 20, "us", 3)}, {"insert", s2, chgRow("d", 40, "eu", 6)},
			})
			if st.Snapshots != 2 || st.Inserts != 5 || st.Deletes != 2 || st.Truncated {
				t.Fatalf("stats %+v", st)
			}
			if got := sch.NumFields(); got != 7 {
				t.Fatalf("schema %v: want _change, _snapshot_id and the table's 5 columns", sch)
			}
			// From s1: s2's changes alone.
			cs, _, _ = chgChanges(t, tbl, timetravel.ChangesRequest{From: s1, To: s2}, timetravel.Limits{})
			if len(cs) != 4 || cs[0].snap != s2 {
				t.Fatalf("changes from %d: %+v", s1, cs)
			}
			chgSameRows(t, "s1 + changes", chgApply(t, chgSnapshotRows(t, tbl, s1), cs, []int64{s2}), chgSnapshotRows(t, tbl, s2))
		})
	}
}

// TestChangesEqualityDeletes: an equality delete deletes the older rows
// of its keys and only those; the rows its own commit adds with those
// keys stay (a higher sequence number is needed), and a key deleted again
// later is not deleted twice.
func TestChangesEqualityDeletes(t *testing.T) {
	for _, version := range []int{2, 3} {
		t.Run(fmt.Sprintf("v%d", version), func(t *testing.T) {
			kt := newChgTable(t, version)
			res := chgResolver(t, upsert.EqualityDeletes())
			s1 := kt.commit(res, chgEvent{key: "a", value: 1, region: "eu"}, chgEvent{key: "b", value: 2, region: "eu"},
				chgEvent{key: "c", value: 3, region: "us"})
			s2 := kt.commit(res, chgEvent{key: "b", value: 20, region: "us"}, chgEvent{key: "c", del: true})
			s3 := kt.commit(res, chgEvent{key: "b", value: 30, region: "eu"}, chgEvent{key: "e", value: 5, region: "us"})
			if _, _, eq := kt.deleteKinds(); eq == 0 {
				t.Fatal("no equality deletes apply to the table")
			}
			tbl := kt.load()
			cs, st, _ := chgChanges(t, tbl, timetravel.ChangesRequest{From: s1}, timetravel.Limits{})
			chgExpect(t, cs, []chgChange{
				{"delete", s2, chgRow("b", 2, "eu", 1)}, {"delete", s2, chgRow("c", 3, "us", 2)},
				{"insert", s2, chgRow("b", 20, "us", 3)},
				{"delete", s3, chgRow("b", 20, "us", 3)},
				{"insert", s3, chgRow("b", 30, "eu", 5)}, {"insert", s3, chgRow("e", 5, "us", 6)},
			})
			if st.Snapshots != 2 {
				t.Fatalf("stats %+v", st)
			}
			chgSameRows(t, "s1 + changes", chgApply(t, chgSnapshotRows(t, tbl, s1), cs, []int64{s2, s3}), chgSnapshotRows(t, tbl, s3))

			// The position mode takes over: it deletes by position what
			// the equality deletes delete (no change), then removes
			// them (a replace).
			pres := chgResolver(t)
			s4 := kt.commit(pres, chgEvent{key: "a", value: 10, region: "eu"})
			if n := kt.removeObsolete(pres); n == 0 {
				t.Fatal("no equality-delete file was obsolete")
			}
			s5 := kt.head()
			if op := kt.load().Metadata().SnapshotByID(s5).Summary.Operation; op != table.OpReplace {
				t.Fatalf("removing the equality deletes is an %s", op)
			}
			tbl = kt.load()
			cs, st, _ = chgChanges(t, tbl, timetravel.ChangesRequest{From: s3}, timetravel.Limits{})
			chgExpect(t, cs, []chgChange{{"delete", s4, chgRow("a", 1, "eu", 0)}, {"insert", s4, chgRow("a", 10, "eu", 7)}})
			if st.Snapshots != 1 {
				t.Fatalf("stats %+v: the replace snapshot counts", st)
			}
		})
	}
}

// TestChangesSkipsCompaction: a compaction (a replace snapshot) changes
// no row; the changes across it still lead from rows to rows.
func TestChangesSkipsCompaction(t *testing.T) {
	kt := newChgTable(t, 2)
	res := chgResolver(t)
	s1 := kt.commit(res, chgEvent{key: "a", value: 1, region: "eu"}, chgEvent{key: "b", value: 2, region: "eu"})
	s2 := kt.commit(res, chgEvent{key: "a", value: 10, region: "eu"}, chgEvent{key: "c", value: 3, region: "eu"})
	s3 := kt.compact(res, "eu")
	s4 := kt.commit(res, chgEvent{key: "b", value: 20, region: "eu"})
	tbl := kt.load()
	if op := tbl.Metadata().SnapshotByID(s3).Summary.Operation; op != table.OpReplace {
		t.Fatalf("the compaction is an %s", op)
	}
	cs, st, _ := chgChanges(t, tbl, timetravel.ChangesRequest{From: s2, To: s3}, timetravel.Limits{})
	if len(cs) != 0 || st.Snapshots != 0 {
		t.Fatalf("a compaction has changes %+v, stats %+v", cs, st)
	}
	cs, st, _ = chgChanges(t, tbl, timetravel.ChangesRequest{From: s1}, timetravel.Limits{})
	if st.Snapshots != 2 {
		t.Fatalf("stats %+v", st)
	}
	chgExpect(t, cs, []chgChange{
		{"delete", s2, chgRow("a", 1, "eu", 0)}, {"insert", s2, chgRow("a", 10, "eu", 2)}, {"insert", s2, chgRow("c", 3, "eu", 3)},
		{"delete", s4, chgRow("b", 2, "eu", 1)}, {"insert", s4, chgRow("b", 20, "eu", 4)},
	})
	chgSameRows(t, "s1 + changes", chgApply(t, chgSnapshotRows(t, tbl, s1), cs, []int64{s2, s4}), chgSnapshotRows(t, tbl, s4))
}

// TestChangesRollback: a snapshot that brings back an older snapshot's
// manifests (files and delete files) un-deletes the rows deleted since
// (inserts) and deletes the rows added since.
func TestChangesRollback(t *testing.T) {
	for _, version := range []int{2, 3} {
		t.Run(fmt.Sprintf("v%d", version), func(t *testing.T) {
			kt := newChgTable(t, version)
			res := chgResolver(t)
			s1 := kt.commit(res, chgEvent{key: "a", value: 1, region: "eu"}, chgEvent{key: "b", value: 2, region: "us"})
			s2 := kt.commit(res, chgEvent{key: "a", value: 10, region: "eu"}, chgEvent{key: "c", value: 3, region: "eu"})
			s3 := kt.commit(res, chgEvent{key: "b", del: true}, chgEvent{key: "c", value: 30, region: "us"})
			s4 := chgRollbackTo(t, kt.cat, kt.ident, s2)
			tbl := kt.load()
			cs, st, _ := chgChanges(t, tbl, timetravel.ChangesRequest{From: s3}, timetravel.Limits{})
			chgExpect(t, cs, []chgChange{
				{"delete", s4, chgRow("c", 30, "us", 5)},
				{"insert", s4, chgRow("b", 2, "us", 1)}, {"insert", s4, chgRow("c", 3, "eu", 3)},
			})
			if st.Snapshots != 1 {
				t.Fatalf("stats %+v", st)
			}
			chgSameRows(t, "rollback", chgSnapshotRows(t, tbl, s4), chgSnapshotRows(t, tbl, s2))
			for _, from := range []int64{0, s1, s2, s3} {
				cs, _, _ := chgChanges(t, tbl, timetravel.ChangesRequest{From: from}, timetravel.Limits{})
				chgSameRows(t, fmt.Sprintf("from %d", from),
					chgApply(t, chgSnapshotRows(t, tbl, from), cs, []int64{s1, s2, s3, s4}), chgSnapshotRows(t, tbl, s4))
			}
			// The table goes on: the resolver rebuilds its index from the
			// rolled-back head.
			s5 := kt.commit(res, chgEvent{key: "a", value: 100, region: "us"})
			cs, _, _ = chgChanges(t, kt.load(), timetravel.ChangesRequest{From: s4}, timetravel.Limits{})
			chgExpect(t, cs, []chgChange{{"delete", s5, chgRow("a", 10, "eu", 2)}, {"insert", s5, chgRow("a", 100, "us", 6)}})
		})
	}
}

// appendTable is an unkeyed table with three appends of two rows each.
func chgAppendTable(t *testing.T) (*catalog.Catalog, table.Identifier, *table.Table, []int64) {
	t.Helper()
	ctx := context.Background()
	cat := testutil.SQLiteCatalog(t)
	sch := iceberg.NewSchema(0,
		iceberg.NestedField{ID: 1, Name: "id", Type: iceberg.PrimitiveTypes.Int64, Required: true},
		iceberg.NestedField{ID: 2, Name: "name", Type: iceberg.PrimitiveTypes.String},
	)
	ident := catalog.Ident("db.events")
	tbl, _, err := catalog.EnsureTable(ctx, cat, ident, sch, *iceberg.UnpartitionedSpec, nil)
	chgMust(t, err)
	var ids []int64
	for i := range 3 {
		tbl = chgAppendRows(t, tbl, int64(2*i+1), int64(2*i+2))
		ids = append(ids, tbl.CurrentSnapshot().SnapshotID)
	}
	return cat, ident, tbl, ids
}

// appendRows appends a row per id, named n<id>, with the table's schema
// (and "x<id>" in a third column, if it has one).
func chgAppendRows(t *testing.T, tbl *table.Table, ids ...int64) *table.Table {
	t.Helper()
	sc, err := table.SchemaToArrowSchema(tbl.Schema(), nil, false, false)
	chgMust(t, err)
	b := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer b.Release()
	for _, id := range ids {
		b.Field(0).(*array.Int64Builder).Append(id)
		b.Field(1).(*array.StringBuilder).Append(fmt.Sprintf("n%d", id))
		if sc.NumFields() > 2 {
			b.Field(2).(*array.StringBuilder).Append(fmt.Sprintf("x%d", id))
		}
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	at := array.NewTableFromRecords(sc, []arrow.RecordBatch{rec})
	defer at.Release()
	tbl, err = tbl.AppendTable(context.Background(), at, int64(len(ids)), nil)
	chgMust(t, err)
	return tbl
}

// TestChangesAppendOnly: the changes of appends are their rows, snapshot
// by snapshot; an empty range emits an empty batch with the schema.
func TestChangesAppendOnly(t *testing.T) {
	_, _, tbl, s := chgAppendTable(t)
	cs, st, _ := chgChanges(t, tbl, timetravel.ChangesRequest{}, timetravel.Limits{})
	chgExpect(t, cs, []chgChange{
		{"insert", s[0], "1|n1"}, {"insert", s[0], "2|n2"},
		{"insert", s[1], "3|n3"}, {"insert", s[1], "4|n4"},
		{"insert", s[2], "5|n5"}, {"insert", s[2], "6|n6"},
	})
	if st.Snapshots != 3 || st.Inserts != 6 || st.Deletes != 0 || st.Truncated || st.Elapsed <= 0 {
		t.Fatalf("stats %+v", st)
	}
	cs, _, _ = chgChanges(t, tbl, timetravel.ChangesRequest{From: s[0], To: s[1]}, timetravel.Limits{})
	chgExpect(t, cs, []chgChange{{"insert", s[1], "3|n3"}, {"insert", s[1], "4|n4"}})
	cs, st, sch := chgChanges(t, tbl, timetravel.ChangesRequest{From: s[1], To: s[1]}, timetravel.Limits{})
	if len(cs) != 0 || st.Snapshots != 0 || sch.NumFields() != 4 {
		t.Fatalf("from = to: changes %+v, stats %+v, schema %v", cs, st, sch)
	}

	// A table without snapshots has no changes, but a schema.
	cat := testutil.SQLiteCatalog(t)
	empty, _, err := catalog.EnsureTable(context.Background(), cat, catalog.Ident("db.empty"), tbl.Schema(), *iceberg.UnpartitionedSpec, nil)
	chgMust(t, err)
	cs, st, sch = chgChanges(t, empty, timetravel.ChangesRequest{Columns: []string{"name"}}, timetravel.Limits{})
	if len(cs) != 0 || st.Snapshots != 0 || !slices.Equal(chgNames(sch), []string{"_change", "_snapshot_id", "name"}) {
		t.Fatalf("empty table: changes %+v, stats %+v, schema %v", cs, st, sch)
	}
}

// TestChangesErrors: unknown snapshots are ErrNotFound; a from that is not
// an ancestor of to, and unknown columns, ErrInvalid.
func TestChangesErrors(t *testing.T) {
	cat, ident, tbl, s := chgAppendTable(t)
	ctx := context.Background()
	// A fork: main back to s[0], then an append, whose parent is s[0].
	_, _, err := cat.CommitTable(ctx, ident, nil,
		[]table.Update{table.NewSetSnapshotRefUpdate(table.MainBranch, s[0], table.BranchRef, -1, -1, -1)})
	chgMust(t, err)
	tbl, err = cat.LoadTable(ctx, ident)
	chgMust(t, err)
	tbl = chgAppendRows(t, tbl, 100)
	fork := tbl.CurrentSnapshot().SnapshotID
	nop := func(arrow.RecordBatch) error { return nil }
	for _, c := range []struct {
		req   timetravel.ChangesRequest
		class error
		says  string
	}{
		{timetravel.ChangesRequest{From: 424242}, timetravel.ErrNotFound, "no snapshot 424242 (from)"},
		{timetravel.ChangesRequest{To: 424242}, timetravel.ErrNotFound, "no snapshot 424242 (to)"},
		{timetravel.ChangesRequest{From: s[2], To: s[0]}, timetravel.ErrInvalid, "not an ancestor"},
		{timetravel.ChangesRequest{From: s[1]}, timetravel.ErrInvalid, fmt.Sprintf("snapshot %d (from) is not an ancestor of snapshot %d (to)", s[1], fork)},
		{timetravel.ChangesRequest{To: s[2], Columns: []string{"id", "nope"}}, timetravel.ErrInvalid, `no column "nope" (the columns are "id", "name")`},
		{timetravel.ChangesRequest{Limit: -1}, timetravel.ErrInvalid, "limit"},
	} {
		_, err := timetravel.Changes(ctx, tbl, c.req, timetravel.Limits{}, nop)
		if !errors.Is(err, c.class) || !strings.Contains(err.Error(), c.says) {
			t.Errorf("Changes(%+v) = %v; want an error that is %v and says %q", c.req, err, c.class, c.says)
		}
	}
	// Along the fork: its own append.
	cs, _, _ := chgChanges(t, tbl, timetravel.ChangesRequest{From: s[0]}, timetravel.Limits{})
	chgExpect(t, cs, []chgChange{{"insert", fork, "100|n100"}})
	// emit's error is returned as it is.
	boom := errors.New("boom")
	if _, err := timetravel.Changes(ctx, tbl, timetravel.ChangesRequest{}, timetravel.Limits{},
		func(arrow.RecordBatch) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("emit's error came back as %v", err)
	}
}

// TestChangesProjection: the requested columns in the order asked, in the
// schema of to; rows of files written before a column was added have
// nulls in it.
func TestChangesProjection(t *testing.T) {
	cat, ident, tbl, s := chgAppendTable(t)
	ctx := context.Background()
	cs, _, sch := chgChanges(t, tbl, timetravel.ChangesRequest{To: s[0], Columns: []string{"name", "ID"}}, timetravel.Limits{})
	if names := chgNames(sch); !slices.Equal(names, []string{"_change", "_snapshot_id", "name", "id"}) {
		t.Fatalf("columns %v", names)
	}
	chgExpect(t, cs, []chgChange{{"insert", s[0], "n1|1"}, {"insert", s[0], "n2|2"}})

	tx := tbl.NewTransaction()
	chgMust(t, tx.UpdateSchema(true, false).AddColumn([]string{"extra"}, iceberg.PrimitiveTypes.String, "", false, nil).Commit())
	_, err := tx.Commit(ctx)
	chgMust(t, err)
	tbl, err = cat.LoadTable(ctx, ident)
	chgMust(t, err)
	tbl = chgAppendRows(t, tbl, 7)
	s4 := tbl.CurrentSnapshot().SnapshotID
	cs, _, sch = chgChanges(t, tbl, timetravel.ChangesRequest{From: s[1]}, timetravel.Limits{})
	if names := chgNames(sch); !slices.Equal(names, []string{"_change", "_snapshot_id", "id", "name", "extra"}) {
		t.Fatalf("columns %v", names)
	}
	chgExpect(t, cs, []chgChange{{"insert", s[2], "5|n5|null"}, {"insert", s[2], "6|n6|null"}, {"insert", s4, "7|n7|x7"}})
	// As of s[2], the column did not exist.
	_, _, sch = chgChanges(t, tbl, timetravel.ChangesRequest{From: s[1], To: s[2]}, timetravel.Limits{})
	if names := chgNames(sch); !slices.Equal(names, []string{"_change", "_snapshot_id", "id", "name"}) {
		t.Fatalf("columns as of %d: %v", s[2], names)
	}
}

func chgNames(sch *arrow.Schema) []string {
	var out []string
	for _, f := range sch.Fields() {
		out = append(out, f.Name)
	}
	return out
}

// TestChangesLimits: the request's limit and the node's bounds cut the
// output exactly and say so; the timeout is ErrExhausted.
func TestChangesLimits(t *testing.T) {
	_, _, tbl, s := chgAppendTable(t)
	for _, c := range []struct {
		req  timetravel.ChangesRequest
		lim  timetravel.Limits
		rows int
		by   string
	}{
		{timetravel.ChangesRequest{Limit: 3}, timetravel.Limits{}, 3, "limit"},
		{timetravel.ChangesRequest{Limit: 6}, timetravel.Limits{}, 6, ""},
		{timetravel.ChangesRequest{Limit: 2}, timetravel.Limits{MaxRows: 4}, 2, "limit"},
		{timetravel.ChangesRequest{Limit: 5}, timetravel.Limits{MaxRows: 4}, 4, "max_rows"},
		{timetravel.ChangesRequest{}, timetravel.Limits{MaxRows: 2}, 2, "max_rows"},
		{timetravel.ChangesRequest{}, timetravel.Limits{MaxRows: 7}, 6, ""},
		{timetravel.ChangesRequest{}, timetravel.Limits{MaxBytes: 60}, -1, "max_bytes"},
	} {
		cs, st, _ := chgChanges(t, tbl, c.req, c.lim)
		if c.rows >= 0 && len(cs) != c.rows || st.TruncatedBy != c.by || st.Truncated != (c.by != "") {
			t.Errorf("Changes(%+v, %+v): %d rows, stats %+v; want %d rows truncated by %q", c.req, c.lim, len(cs), st, c.rows, c.by)
		}
		if c.rows < 0 && (len(cs) == 0 || len(cs) >= 6) {
			t.Errorf("Changes(%+v, %+v): %d rows, want some but not all", c.req, c.lim, len(cs))
		}
		// Whatever was cut, what came is the start of the whole.
		for i, ch := range cs {
			if want := []int64{s[0], s[0], s[1], s[1], s[2], s[2]}[i]; ch.snap != want {
				t.Errorf("row %d from snapshot %d, want %d", i, ch.snap, want)
			}
		}
	}
	_, err := timetravel.Changes(context.Background(), tbl, timetravel.ChangesRequest{}, timetravel.Limits{Timeout: time.Nanosecond},
		func(arrow.RecordBatch) error { return nil })
	if !errors.Is(err, timetravel.ErrExhausted) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a timed-out call returned %v", err)
	}
}

// TestChangesModel: a keyed table through a random history (upserts and
// deletes by position, by equality, the position mode taking over from
// equality deletes, compactions, a rollback); for every pair of snapshots
// (from, to) on the history, the changes applied to the rows of from are
// the rows of to.
func TestChangesModel(t *testing.T) {
	for _, version := range []int{2, 3} {
		t.Run(fmt.Sprintf("v%d", version), func(t *testing.T) {
			kt := newChgTable(t, version)
			rng := rand.New(rand.NewPCG(uint64(version), 99))
			regions := []string{"eu", "us", "ap"}
			round := func(res *upsert.Resolver, n int) {
				evs := make([]chgEvent, n)
				for i := range evs {
					evs[i] = chgEvent{key: fmt.Sprintf("k%02d", rng.IntN(25)), value: rng.Int64N(1000), region: regions[rng.IntN(3)]}
					if rng.IntN(6) == 0 {
						evs[i].del = true
					}
				}
				kt.commit(res, evs...)
			}
			eq := chgResolver(t, upsert.EqualityDeletes())
			for range 3 {
				round(eq, 12)
			}
			pos := chgResolver(t)
			round(pos, 10)
			kt.removeObsolete(pos)
			round(pos, 10)
			kt.compact(pos, "eu")
			round(pos, 10)
			back := kt.load().CurrentSnapshot().ParentSnapshotID
			for range 2 {
				round(pos, 8)
			}
			chgRollbackTo(t, kt.cat, kt.ident, *back)
			round(pos, 8)

			tbl := kt.load()
			var history []int64 // oldest first
			for s := tbl.CurrentSnapshot(); s != nil; {
				history = append([]int64{s.SnapshotID}, history...)
				if s.ParentSnapshotID == nil {
					break
				}
				s = tbl.Metadata().SnapshotByID(*s.ParentSnapshotID)
			}
			rows := map[int64]map[string]int{0: {}}
			for _, id := range history {
				rows[id] = chgSnapshotRows(t, tbl, id)
			}
			points := append([]int64{0}, history...)
			for i, from := range points {
				for _, to := range points[i+1:] {
					cs, _, _ := chgChanges(t, tbl, timetravel.ChangesRequest{From: from, To: to}, timetravel.Limits{})
					chgSameRows(t, fmt.Sprintf("from %d to %d", from, to), chgApply(t, rows[from], cs, history), rows[to])
				}
			}
		})
	}
}
