package upsert_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	icecat "github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"

	"github.com/floelake/floe/catalog"
	"github.com/floelake/floe/commit"
	"github.com/floelake/floe/internal/fileio"
	"github.com/floelake/floe/internal/schema"
	"github.com/floelake/floe/internal/testutil"
	"github.com/floelake/floe/upsert"
)

// event is one keyed record: its key, its value, the partition value it
// lands in (region) and its Kafka offset (partition 0).
type event struct {
	key    string
	value  int64
	region string
	offset int64
	// del deletes the key (a tombstone) instead.
	del bool
}

// keyedTable is a table keyed by id, partitioned by region, so that a key
// can move between partitions.
type keyedTable struct {
	t     *testing.T
	ctx   context.Context
	cat   *catalog.Catalog
	ident table.Identifier
	next  int64 // next Kafka offset
	// delVersions writes deleted keys with their version (the v column,
	// from the event's value), as ingest does for a table with a version
	// column.
	delVersions bool
}

func newKeyedTable(t *testing.T, version int) *keyedTable {
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
	if err := cat.CreateNamespace(ctx, table.Identifier{"db"}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := cat.CreateTable(ctx, ident, sch, icecat.WithPartitionSpec(&spec),
		icecat.WithProperties(iceberg.Properties{"format-version": fmt.Sprint(version)})); err != nil {
		t.Fatal(err)
	}
	kt := &keyedTable{t: t, ctx: ctx, cat: cat, ident: ident}
	tbl := kt.load()
	if got := tbl.Metadata().Version(); got != version {
		t.Fatalf("created a v%d table, want v%d", got, version)
	}
	// Equality deletes go under an unpartitioned spec, as a keyed
	// pipeline's table has besides its default one.
	unpartitioned := *iceberg.UnpartitionedSpec
	if _, _, err := cat.CommitTable(ctx, ident, []table.Requirement{table.AssertTableUUID(tbl.Metadata().TableUUID())},
		[]table.Update{table.NewAddPartitionSpecUpdate(&unpartitioned, false)}); err != nil {
		t.Fatal(err)
	}
	if _, ok := schema.UnpartitionedSpec(kt.load().Metadata()); !ok || kt.load().Spec().IsUnpartitioned() {
		t.Fatal("the table should have an unpartitioned spec besides its default partitioned one")
	}
	return kt
}

func (k *keyedTable) load() *table.Table {
	k.t.Helper()
	tbl, err := k.cat.LoadTable(k.ctx, k.ident)
	if err != nil {
		k.t.Fatal(err)
	}
	return tbl
}

// files writes evs as ingest does: one file per region, rows in Kafka order.
func (k *keyedTable) files(tbl *table.Table, evs []event) []iceberg.DataFile {
	k.t.Helper()
	info, err := fileio.InfoFromTable(k.ctx, tbl)
	if err != nil {
		k.t.Fatal(err)
	}
	byRegion := map[string][]event{}
	var regions []string
	var dels []event
	for _, e := range evs {
		if e.del {
			dels = append(dels, e)
			continue
		}
		if byRegion[e.region] == nil {
			regions = append(regions, e.region)
		}
		byRegion[e.region] = append(byRegion[e.region], e)
	}
	var out []iceberg.DataFile
	for _, r := range regions {
		b := array.NewRecordBuilder(memory.DefaultAllocator, info.ArrowSchema)
		for _, e := range byRegion[r] {
			b.Field(0).(*array.StringBuilder).Append(e.key)
			b.Field(1).(*array.Int64Builder).Append(e.value)
			b.Field(2).(*array.StringBuilder).Append(e.region)
			b.Field(3).(*array.Int32Builder).Append(0)
			b.Field(4).(*array.Int64Builder).Append(e.offset)
		}
		rec := b.NewRecordBatch()
		b.Release()
		w := fileio.NewWriter(info, map[int]any{1000: r}, fileio.Options{})
		if err := w.Write(rec); err != nil {
			k.t.Fatal(err)
		}
		rec.Release()
		fs, err := w.Close(k.ctx)
		if err != nil {
			k.t.Fatal(err)
		}
		out = append(out, fs...)
	}
	if len(dels) > 0 {
		out = append(out, k.deletedKeys(info, dels))
	}
	return out
}

// deletedKeys writes the deleted keys of evs as ingest does: a file of
// equality-delete content with the key and the Kafka order columns.
func (k *keyedTable) deletedKeys(info fileio.TableInfo, evs []event) iceberg.DataFile {
	k.t.Helper()
	cols := []string{"id", upsert.MetaPartition, upsert.MetaOffset}
	if k.delVersions {
		cols = append(cols, "v")
	}
	ksch, err := info.Schema.Select(true, cols...)
	if err != nil {
		k.t.Fatal(err)
	}
	asc, err := table.SchemaToArrowSchema(ksch, nil, true, false)
	if err != nil {
		k.t.Fatal(err)
	}
	b := array.NewRecordBuilder(memory.DefaultAllocator, asc)
	defer b.Release()
	field := func(name string) array.Builder { return b.Field(asc.FieldIndices(name)[0]) }
	for _, e := range evs {
		field("id").(*array.StringBuilder).Append(e.key)
		field(upsert.MetaPartition).(*array.Int32Builder).Append(0)
		field(upsert.MetaOffset).(*array.Int64Builder).Append(e.offset)
		if k.delVersions {
			if e.value == upsert.NoVersion {
				field("v").AppendNull()
			} else {
				field("v").(*array.Int64Builder).Append(e.value)
			}
		}
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	info.Schema, info.ArrowSchema = ksch, asc
	values := map[int]any{}
	for _, f := range info.Spec.Fields() {
		values[f.FieldID] = nil
	}
	w := fileio.NewWriter(info, values, fileio.Options{Content: iceberg.EntryContentEqDeletes, EqualityFieldIDs: []int{1}, Dir: "data/deleted-keys"})
	if err := w.Write(rec); err != nil {
		k.t.Fatal(err)
	}
	fs, err := w.Close(k.ctx)
	if err != nil || len(fs) != 1 {
		k.t.Fatal(fs, err)
	}
	return fs[0]
}

// commit commits evs through res, as the table writer does.
func (k *keyedTable) commit(res *upsert.Resolver, evs []event) {
	k.t.Helper()
	c, err := commit.New(k.ctx, k.cat, commit.Config{Pipeline: "p", Table: k.ident})
	if err != nil {
		k.t.Fatal(err)
	}
	files := k.files(c.Table(), evs)
	d, err := res.Resolve(k.ctx, c.Table(), files)
	if err != nil {
		k.t.Fatal(err)
	}
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
}

// rows reads the table: value by key, failing on a key seen twice.
func (k *keyedTable) rows() map[string]int64 {
	k.t.Helper()
	at, err := k.load().Scan().ToArrowTable(k.ctx)
	if err != nil {
		k.t.Fatal(err)
	}
	defer at.Release()
	out := map[string]int64{}
	tr := array.NewTableReader(at, 0)
	defer tr.Release()
	for tr.Next() {
		rec := tr.RecordBatch()
		ids := rec.Column(0).(*array.String)
		vs := rec.Column(1).(*array.Int64)
		for i := 0; i < int(rec.NumRows()); i++ {
			if _, dup := out[ids.Value(i)]; dup {
				k.t.Fatalf("key %q has more than one row", ids.Value(i))
			}
			out[ids.Value(i)] = vs.Value(i)
		}
	}
	return out
}

// compaction plans and executes, without committing it, a compaction of
// the live files of region, as maintenance does.
func (k *keyedTable) compaction(region string) commit.Rewrite {
	k.t.Helper()
	tbl := k.load()
	tasks, err := tbl.Scan().PlanFiles(k.ctx)
	if err != nil {
		k.t.Fatal(err)
	}
	var in []table.FileScanTask
	for _, task := range tasks {
		if task.File.Partition()[1000] == region {
			in = append(in, task)
		}
	}
	cr, err := table.ExecuteCompactionGroup(k.ctx, tbl, table.CompactionTaskGroup{PartitionKey: region, Tasks: in})
	if err != nil {
		k.t.Fatal(err)
	}
	return commit.Rewrite{
		Old: cr.OldDataFiles, New: cr.NewDataFiles,
		RemoveDeletes: append(append([]iceberg.DataFile(nil), cr.SafePosDeletes...), cr.SafeDeletionVectors...),
		BaseSnapshot:  tbl.CurrentSnapshot().SnapshotID, DataSeq: tbl.CurrentSnapshot().SequenceNumber,
	}
}

// commitRewrite commits rw as the table writer of a table keyed by res
// does; the test fails if it is refused.
func (k *keyedTable) commitRewrite(res *upsert.Resolver, rw commit.Rewrite) {
	k.t.Helper()
	c, err := commit.New(k.ctx, k.cat, commit.Config{Pipeline: "p", Table: k.ident})
	if err != nil {
		k.t.Fatal(err)
	}
	c.UseRowDeltas(res)
	if _, err := c.Rewrite(k.ctx, rw); err != nil {
		k.t.Fatalf("the compaction was refused: %v", err)
	}
}

func (k *keyedTable) requireRows(want map[string]int64) {
	k.t.Helper()
	got := k.rows()
	if len(got) != len(want) {
		k.t.Fatalf("table holds %d keys, want %d", len(got), len(want))
	}
	for key, v := range want {
		if got[key] != v {
			k.t.Fatalf("key %q = %d, want %d", key, got[key], v)
		}
	}
}

// indexKinds are the indexes the resolver tests run with: all in memory,
// and spilled with a budget so small that nearly every key lives in the
// file.
var indexKinds = []struct {
	name string
	opts func(t *testing.T) []upsert.Option
}{
	{"memory", func(*testing.T) []upsert.Option { return nil }},
	{"spilled", func(t *testing.T) []upsert.Option { return []upsert.Option{upsert.Spill(t.TempDir(), 1)} }},
}

// requireSpilled checks that a test run with the spilled index kind kept
// keys in the index's file and read them back.
func requireSpilled(t *testing.T, kind string, st upsert.Stats) {
	t.Helper()
	if kind == "spilled" && (st.Spills == 0 || st.FileKeys == 0 || st.FileReads == 0) {
		t.Fatalf("stats %+v: the spilled index never used its file", st)
	}
}

// TestResolverKeepsOneRowPerKey commits random upserts (keys repeated
// within and across commits, moving between partitions) and checks after
// every commit that the table holds exactly the newest row of each key. A
// new resolver (a restart or failover) takes over halfway and rebuilds its
// index from the table; a delta that was resolved but not committed is
// abandoned on the way.
func TestResolverKeepsOneRowPerKey(t *testing.T) {
	for _, version := range []int{2, 3} {
		for _, kind := range indexKinds {
			t.Run(fmt.Sprintf("v%d/%s", version, kind.name), func(t *testing.T) {
				kt := newKeyedTable(t, version)
				rng := rand.New(rand.NewPCG(uint64(version), 7))
				// Commits wait for rebuilds: this test is about the index.
				opts := append(kind.opts(t), upsert.RebuildWait(time.Hour))
				res, err := upsert.NewResolver([]string{"id"}, nil, opts...)
				if err != nil {
					t.Fatal(err)
				}
				want := map[string]int64{}
				regions := []string{"eu", "us", "ap"}
				for round := 0; round < 16; round++ {
					evs := make([]event, 60)
					for i := range evs {
						e := event{key: fmt.Sprintf("k%03d", rng.IntN(80)), value: int64(round*1000 + i),
							region: regions[rng.IntN(len(regions))], offset: kt.next + int64(i)}
						evs[i] = e
						want[e.key] = e.value
					}
					switch round {
					case 6:
						// A delta resolved and then lost.
						c, err := commit.New(kt.ctx, kt.cat, commit.Config{Pipeline: "p", Table: kt.ident})
						if err != nil {
							t.Fatal(err)
						}
						if _, err := res.Resolve(kt.ctx, c.Table(), kt.files(c.Table(), evs)); err != nil {
							t.Fatal(err)
						}
						res.Abandon()
					case 10:
						res.Close()
						if res, err = upsert.NewResolver([]string{"id"}, nil, opts...); err != nil {
							t.Fatal(err)
						}
					}
					kt.commit(res, evs)
					kt.requireRows(want)
				}
				st := res.Stats()
				if st.Rebuilds == 0 || st.Replaced == 0 {
					t.Fatalf("stats %+v: want rebuilds and replaced rows", st)
				}
				requireSpilled(t, kind.name, st)
				// The deletes are what the table format asks for.
				tbl := kt.load()
				tasks, err := tbl.Scan().PlanFiles(kt.ctx)
				if err != nil {
					t.Fatal(err)
				}
				var pos, dvs int
				for _, task := range tasks {
					pos += len(task.DeleteFiles)
					dvs += len(task.DeletionVectorFiles)
					if len(task.EqualityDeleteFiles) > 0 {
						t.Fatalf("%s has equality deletes", task.File.FilePath())
					}
					if len(task.DeletionVectorFiles) > 1 {
						t.Fatalf("%s has %d deletion vectors", task.File.FilePath(), len(task.DeletionVectorFiles))
					}
				}
				if version == 2 && (pos == 0 || dvs != 0) || version == 3 && (dvs == 0 || pos != 0) {
					t.Fatalf("v%d table: %d position-delete files and %d deletion vectors apply", version, pos, dvs)
				}
				res.Close()
			})
		}
	}
}

// TestResolverVersionColumn: with a version column, the row with the
// highest version of a key wins whatever its offset: late rows (lower
// versions, arriving after newer ones, within a commit and across
// commits) are deleted in the commit that adds them, and a rebuild keeps
// the versions.
func TestResolverVersionColumn(t *testing.T) {
	for _, version := range []int{2, 3} {
		for _, kind := range indexKinds {
			t.Run(fmt.Sprintf("v%d/%s", version, kind.name), func(t *testing.T) {
				kt := newKeyedTable(t, version)
				rng := rand.New(rand.NewPCG(uint64(version), 11))
				newResolver := func() *upsert.Resolver {
					res, err := upsert.NewResolver([]string{"id"}, nil, append(kind.opts(t), upsert.Version("v"))...)
					if err != nil {
						t.Fatal(err)
					}
					return res
				}
				res := newResolver()
				want := map[string]int64{}
				for round := 0; round < 10; round++ {
					if round == 5 {
						res = newResolver()
					}
					evs := make([]event, 50)
					for i := range evs {
						key := fmt.Sprintf("k%02d", rng.IntN(30))
						v := int64(round*1000 + i)
						if rng.IntN(3) == 0 {
							v -= int64(1 + rng.IntN(3000)) // late: often older than the key's row
						}
						evs[i] = event{key: key, value: v, region: []string{"eu", "us"}[rng.IntN(2)], offset: kt.next + int64(i)}
						if cur, ok := want[key]; !ok || v >= cur {
							want[key] = v
						}
					}
					kt.commit(res, evs)
					kt.requireRows(want)
				}
				if st := res.Stats(); st.Stale == 0 {
					t.Fatalf("no row was older than its key's: %+v", st)
				}
				requireSpilled(t, kind.name, res.Stats())
			})
		}
	}
}

// TestCompactionCarriesDeletesMadeWhileItRan: a compaction is planned and
// executed, then commits replace and delete rows of the files it read;
// its commit carries those deletes over to its output (Rebase) instead of
// being stale, the table keeps one row per key, the index follows it, and
// the next commits build on it.
func TestCompactionCarriesDeletesMadeWhileItRan(t *testing.T) {
	for _, version := range []int{2, 3} {
		for _, kind := range indexKinds {
			t.Run(fmt.Sprintf("v%d/%s", version, kind.name), func(t *testing.T) {
				kt := newKeyedTable(t, version)
				res, err := upsert.NewResolver([]string{"id"}, nil, append(kind.opts(t), upsert.RebuildWait(time.Hour))...)
				if err != nil {
					t.Fatal(err)
				}
				want := map[string]int64{}
				round := func(r int, keys ...string) {
					evs := make([]event, len(keys))
					for i, k := range keys {
						evs[i] = event{key: k, value: int64(r*1000 + i), region: "eu", offset: kt.next + int64(i)}
						want[k] = evs[i].value
					}
					kt.commit(res, evs)
					kt.requireRows(want)
				}
				for r := range 4 {
					round(r, "a", "b", "c", "d", "e", fmt.Sprintf("n%d", r))
				}
				// Plan and execute a compaction of every live file.
				rw := kt.compaction("eu")
				// Meanwhile: b and c are replaced, a row of the compacted
				// files gets a newer version twice over.
				round(10, "b", "c", "n10")
				round(11, "c")
				// The compaction commits, carrying those deletes.
				kt.commitRewrite(res, rw)
				kt.requireRows(want)
				requireSpilled(t, kind.name, res.Stats())
				if st := res.Stats(); st.Rebased != 1 || st.Remaps != 1 {
					t.Fatalf("stats %+v: want one compaction carried over and followed", st)
				}
				// The index followed: the next commits replace the rows now in
				// the compacted file, without a rebuild.
				rebuilds := res.Stats().Rebuilds
				round(20, "a", "d", "e", "n0")
				round(21, "a")
				if st := res.Stats(); st.Rebuilds != rebuilds {
					t.Fatalf("stats %+v: the index was rebuilt after the compaction", st)
				}
			})
		}
	}
}

// TestResolverVersionedDeletes: with a version column, a deletion that
// carries a version (mode: cdc with version_from, or the before image's
// version) deletes the key's row only if the row is not newer, and a late
// row older than the deletion does not bring the key back; a newer one
// does.
func TestResolverVersionedDeletes(t *testing.T) {
	for _, version := range []int{2, 3} {
		for _, kind := range indexKinds {
			t.Run(fmt.Sprintf("v%d/%s", version, kind.name), func(t *testing.T) {
				kt := newKeyedTable(t, version)
				kt.delVersions = true
				res, err := upsert.NewResolver([]string{"id"}, nil, append(kind.opts(t), upsert.Version("v"))...)
				if err != nil {
					t.Fatal(err)
				}
				defer res.Close()
				ev := func(key string, v int64, del bool) event {
					return event{key: key, value: v, region: "eu", del: del}
				}
				round := func(want map[string]int64, evs ...event) {
					t.Helper()
					for i := range evs {
						evs[i].offset = kt.next + int64(i)
					}
					kt.commit(res, evs)
					kt.requireRows(want)
				}
				round(map[string]int64{"a": 10, "b": 10, "c": 10}, ev("a", 10, false), ev("b", 10, false), ev("c", 10, false))
				// a is deleted at version 20; b's deletion (5) is older
				// than its row and is late; c is updated.
				round(map[string]int64{"b": 10, "c": 30}, ev("a", 20, true), ev("b", 5, true), ev("c", 30, false))
				// A late row of a, older than its deletion, stays out; b's
				// newer row replaces its row.
				round(map[string]int64{"b": 11, "c": 30}, ev("a", 15, false), ev("b", 11, false))
				// Within one commit: c is deleted, then a late row older
				// than the deletion arrives.
				round(map[string]int64{"b": 11}, ev("c", 40, true), ev("c", 35, false))
				// A row newer than a's deletion brings a back.
				round(map[string]int64{"a": 25, "b": 11}, ev("a", 25, false))
				// A deletion without a version deletes whatever the row.
				round(map[string]int64{"b": 11}, event{key: "a", value: upsert.NoVersion, region: "eu", del: true})
				st := res.Stats()
				if st.Stale < 3 || st.Deleted < 3 {
					t.Fatalf("stats %+v: want the late rows and the late deletion counted stale, three keys deleted", st)
				}
				requireSpilled(t, kind.name, st)
			})
		}
	}
}
