package commit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	"github.com/stretchr/testify/require"

	"github.com/floelake/floe/catalog"
	"github.com/floelake/floe/commit"
	"github.com/floelake/floe/internal/fileio"
	"github.com/floelake/floe/internal/schema"
)

// newFixtureOf is newFixture with a table of schema sch.
func newFixtureOf(t *testing.T, sch *iceberg.Schema) *fixture {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	cat, err := catalog.Open(ctx, catalog.Config{Type: "sql", Name: "test", URI: "sqlite://" + filepath.Join(dir, "c.db")},
		catalog.StorageConfig{}, dir)
	require.NoError(t, err)
	t.Cleanup(func() { _ = cat.Close() })
	ident := table.Identifier{"db", "t"}
	tbl, _, err := catalog.EnsureTable(ctx, cat, ident, sch, *iceberg.UnpartitionedSpec, nil)
	require.NoError(t, err)
	info, err := fileio.InfoFromTable(ctx, tbl)
	require.NoError(t, err)
	return &fixture{t: t, cat: cat, ident: ident, info: info}
}

// buildSchema builds a schema from "name:type" columns ("name!:type" is
// required), keyed by key.
func buildSchema(t *testing.T, key []string, cols ...string) *iceberg.Schema {
	t.Helper()
	var cs []schema.Column
	for _, c := range cols {
		name, typ, ok := strings.Cut(c, ":")
		require.True(t, ok, c)
		cs = append(cs, schema.Column{Name: strings.TrimSuffix(name, "!"), Type: typ, Required: strings.HasSuffix(name, "!")})
	}
	s, err := schema.Build(cs, nil, key)
	require.NoError(t, err)
	return s
}

// writeRows writes rows (a JSON array of objects) as one data file of
// tbl's current schema, the way a worker writes a segment's files.
func writeRows(t *testing.T, tbl *table.Table, rows string) []iceberg.DataFile {
	t.Helper()
	ctx := context.Background()
	info, err := fileio.InfoFromTable(ctx, tbl)
	require.NoError(t, err)
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	rec, _, err := array.RecordFromJSON(mem, info.ArrowSchema, strings.NewReader(rows))
	require.NoError(t, err)
	defer rec.Release()
	w := fileio.NewWriter(info, nil, fileio.Options{})
	require.NoError(t, w.Write(rec))
	files, err := w.Close(ctx)
	require.NoError(t, err)
	return files
}

// seg is a segment of files covering offsets [from, to) of tp/0.
func seg(files []iceberg.DataFile, from, to int64) commit.Segment {
	return commit.Segment{Files: files, From: commit.Offsets{"tp": {0: from}}, To: commit.Offsets{"tp": {0: to}}, Records: to - from}
}

// scanRows reads tbl with iceberg-go's scan and returns its Arrow schema
// and its rows as JSON objects (numbers kept as written), by id.
func scanRows(t *testing.T, tbl *table.Table, opts ...table.ScanOption) (*arrow.Schema, []map[string]any, error) {
	t.Helper()
	at, err := tbl.Scan(opts...).ToArrowTable(context.Background())
	if err != nil {
		return nil, nil, err
	}
	defer at.Release()
	var buf bytes.Buffer
	tr := array.NewTableReader(at, -1)
	defer tr.Release()
	for tr.Next() {
		require.NoError(t, array.RecordToJSON(tr.RecordBatch(), &buf))
	}
	require.NoError(t, tr.Err())
	dec := json.NewDecoder(&buf)
	dec.UseNumber()
	var rows []map[string]any
	for dec.More() {
		var row map[string]any
		require.NoError(t, dec.Decode(&row))
		rows = append(rows, row)
	}
	slices.SortFunc(rows, func(a, b map[string]any) int {
		return strings.Compare(string(a["id"].(json.Number)), string(b["id"].(json.Number)))
	})
	return at.Schema(), rows, nil
}

// untouched captures what a schema-only commit must leave as it is.
type untouched struct {
	head      int64
	snapshots []int64
	refs      map[string]int64
	props     iceberg.Properties
	offsets   commit.Offsets
}

func captureUntouched(t *testing.T, tbl *table.Table) untouched {
	t.Helper()
	u := untouched{head: commit.HeadID(tbl), refs: map[string]int64{}}
	for _, s := range tbl.Metadata().Snapshots() {
		u.snapshots = append(u.snapshots, s.SnapshotID)
	}
	for name, ref := range tbl.Metadata().Refs() {
		u.refs[name] = ref.SnapshotID
	}
	if s := tbl.CurrentSnapshot(); s != nil && s.Summary != nil {
		u.props = s.Summary.Properties
	}
	off, _, _, err := commit.TableOffsets(tbl, "p")
	require.NoError(t, err)
	u.offsets = off
	return u
}

var (
	// evolveTable is the table before the change.
	evolveTable = []string{"id!:long", "i:int", "f:float", "d9:decimal(9,2)", "d18:decimal(18,2)",
		"s:struct<a:int>", "items:list<struct<sku:string>>", "req!:string"}
	// evolveWriter is a newer writer: every promotion, a column added at
	// the top, in a struct and in a list's struct element, and a column it
	// may leave out. Its field order and ids are its own.
	evolveWriter = []string{"n:string", "id!:long", "req:string", "i:long", "f:double", "d9:decimal(12,2)", "d18:decimal(20,2)",
		"s:struct<b:string,a:int>", "items:list<struct<sku:string,qty:int>>", "_kafka_offset:long"}
	evolveWant = []string{
		`promote "i" int to long`, `promote "f" float to double`, `promote "d9" decimal(9, 2) to decimal(12, 2)`,
		`promote "d18" decimal(18, 2) to decimal(20, 2)`, `add column "s.b" string`, `add column "items.element.qty" int`,
		`make "req" optional`, `add column "n" string`,
	}
)

func changeStrings(cs []schema.Change) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.String())
	}
	return out
}

// TestEvolveSchema: a schema change commits no snapshot, is idempotent,
// refuses an incompatible writer without committing, and the table reads
// back whole: rows written before it (committed before it, or after it
// with the old schema's files) with nulls in the new columns and their
// values in the promoted types, rows written after it with the new values.
func TestEvolveSchema(t *testing.T) {
	ctx := context.Background()
	f := newFixtureOf(t, buildSchema(t, []string{"id"}, evolveTable...))
	fc := &faultyCatalog{inner: f.cat, faults: map[int]fault{}}
	c := f.committer(fc)

	before := writeRows(t, c.Table(), `[
		{"id":0,"i":7,"f":1.5,"d9":"1234567.89","d18":"1234567890123456.78","s":{"a":1},"items":[{"sku":"x"}],"req":"r0"},
		{"id":1,"i":-8,"f":-2.25,"d9":"-0.01","d18":"-1.00","s":null,"items":[],"req":"r1"}]`)
	_, err := c.Commit(ctx, seg(before, 0, 2))
	require.NoError(t, err)
	// Written under the old schema, committed after the change: a segment
	// in flight while the schema changes.
	inFlight := writeRows(t, c.Table(), `[
		{"id":2,"i":2147483647,"f":3.4e38,"d9":"9999999.99","d18":"9999999999999999.99","s":{"a":2},"items":[{"sku":"z"},{"sku":"w"}],"req":"r2"}]`)

	old := captureUntouched(t, f.load())
	schemas := len(f.load().Metadata().Schemas())
	calls := fc.callCount()

	writer := buildSchema(t, nil, evolveWriter...)
	changes, err := c.EvolveSchema(ctx, writer, []string{"id"})
	require.NoError(t, err)
	require.Equal(t, evolveWant, changeStrings(changes))
	require.Equal(t, calls+1, fc.callCount(), "one catalog commit")
	tbl := f.load()
	require.Len(t, tbl.Metadata().Schemas(), schemas+1, "one new schema")
	require.Equal(t, old, captureUntouched(t, tbl), "no snapshot, ref or floe property moved")
	require.True(t, c.Table().Schema().Equals(tbl.Schema()), "the committer holds the new schema")
	require.Equal(t, []int{1}, tbl.Schema().IdentifierFieldIDs)
	for name, want := range map[string]string{"i": "long", "f": "double", "d9": "decimal(12, 2)", "d18": "decimal(20, 2)",
		"s.b": "string", "items.element.qty": "int", "n": "string"} {
		fld, ok := tbl.Schema().FindFieldByName(name)
		require.True(t, ok, name)
		require.Equal(t, want, fld.Type.String(), name)
		require.False(t, fld.Required, name)
	}
	req, _ := tbl.Schema().FindFieldByName("req")
	require.False(t, req.Required)
	_, ok := tbl.Schema().FindFieldByName("_kafka_offset")
	require.False(t, ok, "Kafka metadata fields of the writer are not added")

	// Idempotent: the same request again changes and commits nothing.
	loc := tbl.MetadataLocation()
	again, err := c.EvolveSchema(ctx, writer, []string{"id"})
	require.NoError(t, err)
	require.Empty(t, again)
	require.Equal(t, calls+1, fc.callCount(), "nothing committed")
	require.Equal(t, loc, f.load().MetadataLocation())
	// So does a committer that loads the table afresh.
	again, err = f.committer(f.cat).EvolveSchema(ctx, writer, []string{"id"})
	require.NoError(t, err)
	require.Empty(t, again)

	// Incompatible: refused, nothing committed.
	_, err = c.EvolveSchema(ctx, buildSchema(t, nil, "id!:long", "i:string"), []string{"id"})
	var ie *schema.IncompatibleError
	require.ErrorAs(t, err, &ie)
	require.Equal(t, "i", ie.Path)
	require.Contains(t, err.Error(), "the table has long, the writer has string")
	_, err = c.EvolveSchema(ctx, buildSchema(t, nil, "i:long", "m:string"), []string{"id"})
	require.ErrorAs(t, err, &ie)
	require.Equal(t, "id", ie.Path)
	require.Contains(t, err.Error(), "the writer lacks this required column")
	require.Equal(t, calls+1, fc.callCount(), "nothing committed")
	require.Len(t, f.load().Metadata().Schemas(), schemas+1)

	// The old schema's files committed after the change, then a file of
	// the new schema, through the committer's usual path.
	_, err = c.Commit(ctx, seg(inFlight, 2, 3))
	require.NoError(t, err)
	after := writeRows(t, c.Table(), `[
		{"id":3,"i":1099511627776,"f":1e300,"d9":"1234567890.12","d18":"123456789012345678.90","s":{"a":3,"b":"bee"},
		 "items":[{"sku":"q","qty":5}],"req":null,"n":"new"}]`)
	_, err = c.Commit(ctx, seg(after, 3, 4))
	require.NoError(t, err)
	require.Len(t, f.load().Metadata().Schemas(), schemas+1)
	require.Equal(t, commit.Offsets{"tp": {0: 4}}, f.offsets())

	sc, rows, err := scanRows(t, f.load())
	require.NoError(t, err, "scan the whole table")
	types := map[string]string{}
	for _, fld := range sc.Fields() {
		types[fld.Name] = fld.Type.String()
	}
	require.Equal(t, "int64", types["i"])
	require.Equal(t, "float64", types["f"])
	require.Equal(t, "decimal(12, 2)", types["d9"])
	require.Equal(t, "decimal(20, 2)", types["d18"])
	require.Contains(t, types["s"], "b: utf8")
	require.Contains(t, types["items"], "qty: int32")
	require.Len(t, rows, 4)
	want := []string{
		`{"d18":"1234567890123456.78","d9":"1234567.89","f":1.5,"i":7,"id":0,"items":[{"qty":null,"sku":"x"}],"n":null,"req":"r0","s":{"a":1,"b":null}}`,
		`{"d18":"-1","d9":"-0.01","f":-2.25,"i":-8,"id":1,"items":[],"n":null,"req":"r1","s":null}`,
		`{"d18":"9999999999999999.99","d9":"9999999.99","f":3.3999999521443642e+38,"i":2147483647,"id":2,"items":[{"qty":null,"sku":"z"},{"qty":null,"sku":"w"}],"n":null,"req":"r2","s":{"a":2,"b":null}}`,
		`{"d18":"123456789012345678.9","d9":"1234567890.12","f":1e+300,"i":1099511627776,"id":3,"items":[{"qty":5,"sku":"q"}],"n":"new","req":null,"s":{"a":3,"b":"bee"}}`,
	}
	for i, row := range rows {
		got, err := json.Marshal(row)
		require.NoError(t, err)
		require.JSONEq(t, want[i], string(got), "row %d", i)
	}
}

// rowIDs returns the ids of rows, in order.
func rowIDs(rows []map[string]any) []string {
	out := []string{}
	for _, r := range rows {
		out = append(out, string(r["id"].(json.Number)))
	}
	return out
}

// dec is the decimal unscaled/10^scale.
func dec(unscaled int64, scale int) iceberg.Decimal {
	return iceberg.Decimal{Val: decimal128.FromI64(unscaled), Scale: scale}
}

// TestEvolveSchemaFilterOnPromotedColumns scans with row filters on
// promoted columns, over files written before the promotion and after.
//
// Filters on a widened decimal work. Filters on a column promoted from int
// to long, or from float to double, fail in iceberg-go v0.7.0 while it plans
// the scan: its inclusive metrics evaluator (table/evaluators.go:1020,
// inclusiveMetricsEval.boundFor) decodes an old file's lower and upper
// bounds, which hold 4 bytes, with the column's current type, and
// Int64Literal.UnmarshalBinary (literals.go:614) and
// Float64Literal.UnmarshalBinary (literals.go:715) accept exactly 8; the
// panic is recovered into an error that fails the whole scan
// (ErrInvalidBinSerialization, which Eval does not treat as "might match").
// The test accepts that error, and only that one, so that it holds both
// now and once iceberg-go reads such bounds as the spec asks; when a filter
// works it must return the right rows.
func TestEvolveSchemaFilterOnPromotedColumns(t *testing.T) {
	ctx := context.Background()
	f := newFixtureOf(t, buildSchema(t, []string{"id"}, evolveTable...))
	c := f.committer(f.cat)
	before := writeRows(t, c.Table(), `[
		{"id":0,"i":7,"f":1.5,"d9":"1234567.89","d18":"1234567890123456.78","req":"r0"},
		{"id":1,"i":-8,"f":-2.25,"d9":"-0.01","d18":"-1.00","req":"r1"}]`)
	_, err := c.Commit(ctx, seg(before, 0, 2))
	require.NoError(t, err)
	_, err = c.EvolveSchema(ctx, buildSchema(t, nil, evolveWriter...), []string{"id"})
	require.NoError(t, err)
	after := writeRows(t, c.Table(), `[
		{"id":2,"i":1099511627776,"f":1e300,"d9":"1234567890.12","d18":"123456789012345678.90","n":"new"}]`)
	_, err = c.Commit(ctx, seg(after, 2, 3))
	require.NoError(t, err)
	tbl := f.load()

	works := []struct {
		name   string
		filter iceberg.BooleanExpression
		want   []string
	}{
		{"d9 > 0", iceberg.GreaterThan(iceberg.Reference("d9"), dec(0, 2)), []string{"0", "2"}},
		{"d9 > 10^8", iceberg.GreaterThan(iceberg.Reference("d9"), dec(100_000_000_00, 2)), []string{"2"}},
		{"d9 = 1234567.89", iceberg.EqualTo(iceberg.Reference("d9"), dec(123456789, 2)), []string{"0"}},
		{"d18 < 0", iceberg.LessThan(iceberg.Reference("d18"), dec(0, 2)), []string{"1"}},
		{"n is null", iceberg.IsNull(iceberg.Reference("n")), []string{"0", "1"}},
		{"s.b is null", iceberg.IsNull(iceberg.Reference("s.b")), []string{"0", "1", "2"}},
	}
	for _, w := range works {
		_, rows, err := scanRows(t, tbl, table.WithRowFilter(w.filter))
		require.NoError(t, err, w.name)
		require.Equal(t, w.want, rowIDs(rows), w.name)
	}

	knownBroken := []struct {
		name   string
		filter iceberg.BooleanExpression
		want   []string
	}{
		{"i = 7", iceberg.EqualTo(iceberg.Reference("i"), int64(7)), []string{"0"}},
		{"i > 2^33", iceberg.GreaterThan(iceberg.Reference("i"), int64(1<<33)), []string{"2"}},
		{"i < 0", iceberg.LessThan(iceberg.Reference("i"), int64(0)), []string{"1"}},
		{"f > 1", iceberg.GreaterThan(iceberg.Reference("f"), float64(1)), []string{"0", "2"}},
		{"f < 0", iceberg.LessThan(iceberg.Reference("f"), float64(0)), []string{"1"}},
	}
	for _, b := range knownBroken {
		_, rows, err := scanRows(t, tbl, table.WithRowFilter(b.filter))
		if err != nil {
			require.ErrorIs(t, err, iceberg.ErrInvalidBinSerialization, b.name)
			require.Contains(t, err.Error(), "expected 8 bytes", b.name)
			t.Logf("%s: iceberg-go cannot plan the scan: %v", b.name, err)
			continue
		}
		require.Equal(t, b.want, rowIDs(rows), b.name)
	}
}

// writeIntDecimals writes rows as one Parquet file of tbl's current schema
// whose decimals are stored as INT32 or INT64 (as other writers may store
// them, where the precision allows), and returns it as a data file.
func writeIntDecimals(t *testing.T, tbl *table.Table, name, rows string) []iceberg.DataFile {
	t.Helper()
	ctx := context.Background()
	info, err := fileio.InfoFromTable(ctx, tbl)
	require.NoError(t, err)
	rec, _, err := array.RecordFromJSON(memory.DefaultAllocator, info.ArrowSchema, strings.NewReader(rows))
	require.NoError(t, err)
	defer rec.Release()
	path := tbl.Location() + "/data/" + name + ".parquet"
	out, err := info.FS.Create(path)
	require.NoError(t, err)
	fw, err := pqarrow.NewFileWriter(info.ArrowSchema, out,
		parquet.NewWriterProperties(parquet.WithStoreDecimalAsInteger(true), parquet.WithStats(true)),
		pqarrow.NewArrowWriterProperties())
	require.NoError(t, err)
	require.NoError(t, fw.Write(rec))
	require.NoError(t, fw.Close())

	in, err := info.FS.Open(path)
	require.NoError(t, err)
	defer in.Close()
	pr, err := file.NewParquetReader(in)
	require.NoError(t, err)
	physical := map[string]parquet.Type{}
	for i := range pr.MetaData().Schema.NumColumns() {
		col := pr.MetaData().Schema.Column(i)
		physical[col.Name()] = col.PhysicalType()
	}
	require.Equal(t, parquet.Types.Int32, physical["d9"])
	require.Equal(t, parquet.Types.Int64, physical["d18"])

	df, err := table.FileToDataFile(ctx, info.FS, path, tbl.Schema(), tbl.Spec(), 0, tbl.Properties())
	require.NoError(t, err)
	return []iceberg.DataFile{df}
}

// TestEvolveSchemaIntegerDecimals: decimals a writer stored as INT32
// (precision up to 9) and INT64 (up to 18) read back whole, and filter
// right, once widened past what those types hold.
func TestEvolveSchemaIntegerDecimals(t *testing.T) {
	ctx := context.Background()
	f := newFixtureOf(t, buildSchema(t, []string{"id"}, "id!:long", "d9:decimal(9,2)", "d18:decimal(18,2)"))
	c := f.committer(f.cat)
	before := writeIntDecimals(t, c.Table(), "int-decimals",
		`[{"id":0,"d9":"1234567.89","d18":"1234567890123456.78"},{"id":1,"d9":"-9999999.99","d18":"-9999999999999999.99"}]`)
	_, err := c.Commit(ctx, seg(before, 0, 2))
	require.NoError(t, err)
	changes, err := c.EvolveSchema(ctx, buildSchema(t, nil, "id!:long", "d9:decimal(12,2)", "d18:decimal(20,2)"), []string{"id"})
	require.NoError(t, err)
	require.Len(t, changes, 2)
	after := writeRows(t, c.Table(), `[{"id":2,"d9":"9999999999.99","d18":"999999999999999999.99"}]`)
	_, err = c.Commit(ctx, seg(after, 2, 3))
	require.NoError(t, err)

	sc, rows, err := scanRows(t, f.load())
	require.NoError(t, err)
	require.Equal(t, "decimal(12, 2)", sc.Field(1).Type.String())
	require.Equal(t, "decimal(20, 2)", sc.Field(2).Type.String())
	got, err := json.Marshal(rows)
	require.NoError(t, err)
	require.JSONEq(t, `[{"id":0,"d9":"1234567.89","d18":"1234567890123456.78"},
		{"id":1,"d9":"-9999999.99","d18":"-9999999999999999.99"},
		{"id":2,"d9":"9999999999.99","d18":"999999999999999999.99"}]`, string(got))

	for _, w := range []struct {
		name   string
		filter iceberg.BooleanExpression
		want   []string
	}{
		{"d9 > 0", iceberg.GreaterThan(iceberg.Reference("d9"), dec(0, 2)), []string{"0", "2"}},
		{"d9 < -10^6", iceberg.LessThan(iceberg.Reference("d9"), dec(-100_000_000, 2)), []string{"1"}},
		{"d18 > 10^16", iceberg.GreaterThan(iceberg.Reference("d18"), dec(1_000_000_000_000_000_000, 2)), []string{"2"}},
		{"d18 = 1234567890123456.78", iceberg.EqualTo(iceberg.Reference("d18"), dec(123456789012345678, 2)), []string{"0"}},
	} {
		_, rows, err := scanRows(t, f.load(), table.WithRowFilter(w.filter))
		require.NoError(t, err, w.name)
		require.Equal(t, w.want, rowIDs(rows), w.name)
	}
}

// TestEvolveSchemaConcurrentChange: another schema change lands between
// planning and committing. The commit's schema assertion fails it, and the
// change is planned again on the reloaded table: both changes survive, one
// schema each.
func TestEvolveSchemaConcurrentChange(t *testing.T) {
	ctx := context.Background()
	f := newFixtureOf(t, buildSchema(t, []string{"id"}, "id!:long", "i:int"))
	_, err := f.committer(f.cat).Commit(ctx, seg(writeRows(t, f.load(), `[{"id":0,"i":1}]`), 0, 1))
	require.NoError(t, err)
	schemas := len(f.load().Metadata().Schemas())
	old := captureUntouched(t, f.load())

	fc := &faultyCatalog{inner: f.cat, faults: map[int]fault{1: concurrentWriter}}
	other := f.committer(f.cat)
	fc.onConcurrent = func(ctx context.Context) error {
		_, err := other.EvolveSchema(ctx, buildSchema(t, nil, "id!:long", "i:int", "o:string"), []string{"id"})
		return err
	}
	c := f.committer(fc)
	changes, err := c.EvolveSchema(ctx, buildSchema(t, nil, "id!:long", "i:long", "n:string"), []string{"id"})
	require.NoError(t, err)
	require.Equal(t, 1, fc.firedCount(concurrentWriter), "the first attempt met the other change and failed")
	require.Equal(t, 2, fc.callCount())
	require.Equal(t, []string{`promote "i" int to long`, `add column "n" string`}, changeStrings(changes))
	tbl := f.load()
	require.Len(t, tbl.Metadata().Schemas(), schemas+2)
	for name, want := range map[string]string{"i": "long", "o": "string", "n": "string"} {
		fld, ok := tbl.Schema().FindFieldByName(name)
		require.True(t, ok, name)
		require.Equal(t, want, fld.Type.String())
	}
	require.True(t, c.Table().Schema().Equals(tbl.Schema()))
	require.Equal(t, old, captureUntouched(t, tbl))
}

// TestEvolveSchemaUnknownOutcome: a schema change whose commit reports an
// error may have landed. Found landed on reload, it is reported as made,
// once; found not landed, it is made again.
func TestEvolveSchemaUnknownOutcome(t *testing.T) {
	ctx := context.Background()
	writer := []string{"id!:long", "i:int", "n:string"}
	for _, tc := range []struct {
		fault fault
		calls int
	}{{errorAfter, 1}, {errorBefore, 2}, {conflictBefore, 2}} {
		t.Run(tc.fault.String(), func(t *testing.T) {
			f := newFixtureOf(t, buildSchema(t, []string{"id"}, "id!:long", "i:int"))
			schemas := len(f.load().Metadata().Schemas())
			fc := &faultyCatalog{inner: f.cat, faults: map[int]fault{1: tc.fault}}
			c := f.committer(fc)
			changes, err := c.EvolveSchema(ctx, buildSchema(t, nil, writer...), []string{"id"})
			require.NoError(t, err)
			require.Equal(t, 1, fc.firedCount(tc.fault))
			require.Equal(t, tc.calls, fc.callCount())
			require.Equal(t, []string{`add column "n" string`}, changeStrings(changes))
			require.Len(t, f.load().Metadata().Schemas(), schemas+1)
			_, ok := c.Table().Schema().FindFieldByName("n")
			require.True(t, ok, "the committer holds the new schema")
			require.Nil(t, f.load().CurrentSnapshot(), "no snapshot")
		})
	}
}

// TestEvolveSchemaKeepsKeyOrder: the key columns keep the order the table
// has them in (iceberg-go's UpdateSchema sorts them by id).
func TestEvolveSchemaKeepsKeyOrder(t *testing.T) {
	ctx := context.Background()
	f := newFixtureOf(t, buildSchema(t, []string{"region", "id"}, "id!:long", "region!:string", "v:int"))
	require.Equal(t, []int{2, 1}, f.load().Schema().IdentifierFieldIDs)
	c := f.committer(f.cat)
	changes, err := c.EvolveSchema(ctx, buildSchema(t, nil, "id!:long", "region!:string", "v:long", "w:string"), nil)
	require.NoError(t, err)
	require.Len(t, changes, 2)
	require.Equal(t, []int{2, 1}, f.load().Schema().IdentifierFieldIDs)

	// Key columns are fixed whether the caller names them or not.
	_, err = c.EvolveSchema(ctx, buildSchema(t, nil, "region:string", "v:long"), nil)
	var ie *schema.IncompatibleError
	require.ErrorAs(t, err, &ie)
	require.Equal(t, "id", ie.Path)
}

// TestEvolveSchemaExtendsNameMapping: a table with a default name mapping
// (for files written without field ids) has it extended by the new
// columns, in the same commit.
func TestEvolveSchemaExtendsNameMapping(t *testing.T) {
	ctx := context.Background()
	sch := buildSchema(t, []string{"id"}, "id!:long", "s:struct<a:int>")
	nm, err := json.Marshal(sch.NameMapping())
	require.NoError(t, err)
	dir := t.TempDir()
	cat, err := catalog.Open(ctx, catalog.Config{Type: "sql", Name: "test", URI: "sqlite://" + filepath.Join(dir, "c.db")},
		catalog.StorageConfig{}, dir)
	require.NoError(t, err)
	t.Cleanup(func() { _ = cat.Close() })
	ident := table.Identifier{"db", "t"}
	_, _, err = catalog.EnsureTable(ctx, cat, ident, sch, *iceberg.UnpartitionedSpec, iceberg.Properties{table.DefaultNameMappingKey: string(nm)})
	require.NoError(t, err)
	fc := &faultyCatalog{inner: cat, faults: map[int]fault{}}
	c, err := commit.New(ctx, fc, commit.Config{Pipeline: "p", Table: ident})
	require.NoError(t, err)
	_, err = c.EvolveSchema(ctx, buildSchema(t, nil, "id!:long", "s:struct<a:int,b:string>", "n:string"), nil)
	require.NoError(t, err)
	require.Equal(t, 1, fc.callCount())
	mapping := c.Table().Metadata().NameMapping()
	require.NotNil(t, mapping)
	names := map[string]bool{}
	for _, m := range mapping {
		names[strings.Join(m.Names, "|")] = true
		for _, sub := range m.Fields {
			names[strings.Join(m.Names, "|")+"."+strings.Join(sub.Names, "|")] = true
		}
	}
	require.True(t, names["n"], "%v", mapping)
	require.True(t, names["s.b"], "%v", mapping)
}

// TestEvolveSchemaThroughTheWriter: a schema change run as a table
// writer's task lands between two commits; the writer's table is the
// evolved one afterwards, and segments written under the old schema before
// it still commit after it.
func TestEvolveSchemaThroughTheWriter(t *testing.T) {
	ctx := context.Background()
	r := newWriterRig(t)
	require.NoError(t, r.propose(0, 10).Err)
	w := r.writer(r.cat, 1, nil)
	defer r.start(w)()
	r.waitCommitted(10)
	head := commit.HeadID(w.Current())

	var changes []schema.Change
	require.NoError(t, w.Do(ctx, func(ctx context.Context, c *commit.Committer) error {
		var err error
		changes, err = c.EvolveSchema(ctx, buildSchema(t, nil, "id!:long", "v:string", "n:string"), []string{"id"})
		return err
	}))
	require.Equal(t, []string{`add column "n" string`}, changeStrings(changes))
	_, ok := w.Current().Schema().FindFieldByName("n")
	require.True(t, ok, "the writer's table is the evolved one")
	require.Equal(t, head, commit.HeadID(w.Current()), "no snapshot")

	// Files of the old schema (r.segment writes with the table's first
	// schema) commit on top.
	require.NoError(t, r.propose(10, 10).Err)
	_, err := w.PendingFiles()
	require.NoError(t, err)
	r.waitCommitted(20)
	_, rows, err := scanRows(t, r.load())
	require.NoError(t, err)
	require.Len(t, rows, 20)
	for _, row := range rows {
		require.Nil(t, row["n"])
	}
}
