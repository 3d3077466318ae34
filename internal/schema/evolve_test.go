package schema

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	"github.com/stretchr/testify/require"
)

// sch builds a schema from "name:type" columns; "name!:type" is required.
// Types are ParseType's.
func sch(t testing.TB, cols ...string) *iceberg.Schema {
	t.Helper()
	var cs []Column
	for _, c := range cols {
		name, typ, ok := strings.Cut(c, ":")
		require.True(t, ok, c)
		req := strings.HasSuffix(name, "!")
		cs = append(cs, Column{Name: strings.TrimSuffix(name, "!"), Type: typ, Required: req})
	}
	s, err := Build(cs, nil, nil)
	require.NoError(t, err)
	return s
}

// schOf builds a schema of fields as given.
func schOf(fields ...iceberg.NestedField) *iceberg.Schema { return iceberg.NewSchema(0, fields...) }

// typ parses a type.
func typ(t testing.TB, s string) iceberg.Type {
	t.Helper()
	ty, err := ParseType(s)
	require.NoError(t, err)
	return ty
}

// tableOf is an unpartitioned table of schema s, metadata only.
func tableOf(t testing.TB, s *iceberg.Schema) *table.Table {
	t.Helper()
	meta, err := table.NewMetadata(s, iceberg.UnpartitionedSpec, table.UnsortedSortOrder, "file:///warehouse/db/t", nil)
	require.NoError(t, err)
	return table.New(table.Identifier{"db", "t"}, meta, "file:///warehouse/db/t/metadata/v1.metadata.json", nil, nil)
}

// applyChanges applies changes to a table of schema s the way a commit
// does (Stage on iceberg-go's UpdateSchema) and returns the new schema.
func applyChanges(t testing.TB, s *iceberg.Schema, changes []Change) (*iceberg.Schema, error) {
	t.Helper()
	return Stage(table.NewUpdateSchema(tableOf(t, s).NewTransaction(), true, false), changes).Apply()
}

// incompatibilities returns the IncompatibleErrors err carries, failing
// the test if it carries anything else.
func incompatibilities(t testing.TB, err error) []*IncompatibleError {
	t.Helper()
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	var out []*IncompatibleError
	for _, e := range errs {
		var ie *IncompatibleError
		require.ErrorAs(t, e, &ie, "%v", e)
		out = append(out, ie)
	}
	return out
}

func strs(cs []Change) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.String())
	}
	return out
}

func TestEvolveRules(t *testing.T) {
	reqList := func(elem iceberg.Type, req bool) iceberg.Type {
		return &iceberg.ListType{ElementID: 100, Element: elem, ElementRequired: req}
	}
	reqMap := func(val iceberg.Type, req bool) iceberg.Type {
		return &iceberg.MapType{KeyID: 101, KeyType: iceberg.PrimitiveTypes.String, ValueID: 102, ValueType: val, ValueRequired: req}
	}
	cases := []struct {
		name          string
		table, writer *iceberg.Schema
		fixed         []string
		want          []string
	}{
		{name: "same schema", table: sch(t, "id!:long", "v:string"), writer: sch(t, "id!:long", "v:string")},
		{name: "ids are ignored", table: sch(t, "id!:long", "s:struct<a:int,b:string>"),
			writer: schOf(iceberg.NestedField{ID: 77, Name: "s", Type: &iceberg.StructType{FieldList: []iceberg.NestedField{
				{ID: 3, Name: "b", Type: iceberg.PrimitiveTypes.String}, {ID: 9, Name: "a", Type: iceberg.PrimitiveTypes.Int32},
			}}}, iceberg.NestedField{ID: 5, Name: "id", Type: iceberg.PrimitiveTypes.Int64, Required: true})},
		{name: "add top-level", table: sch(t, "id!:long"), writer: sch(t, "id!:long", "a:string", "b!:int"),
			want: []string{`add column "a" string`, `add column "b" int`}},
		{name: "add nested struct keeps its fields", table: sch(t, "id!:long"), writer: sch(t, "id!:long", "n:struct<x!:int,y:list<long>>"),
			want: []string{`add column "n" struct<x: required int, y: optional list<long>>`}},
		{name: "add into a struct", table: sch(t, "s:struct<a:int>"), writer: sch(t, "s:struct<a:int,b:string>"),
			want: []string{`add column "s.b" string`}},
		{name: "add into a list's struct element", table: sch(t, "l:list<struct<a:int>>"), writer: sch(t, "l:list<struct<a:int,b:string>>"),
			want: []string{`add column "l.element.b" string`}},
		{name: "add into a map's struct value", table: sch(t, "m:map<string,struct<a:int>>"), writer: sch(t, "m:map<string,struct<a:int,b:string>>"),
			want: []string{`add column "m.value.b" string`}},
		{name: "add deep", table: sch(t, "m:map<string,list<struct<s:struct<a:int>>>>"), writer: sch(t, "m:map<string,list<struct<s:struct<a:int,z:double>>>>"),
			want: []string{`add column "m.value.element.s.z" double`}},
		{name: "kafka fields are ignored", table: sch(t, "id!:long", "_kafka_offset!:long", "_kafka_topic:string"),
			writer: sch(t, "id!:long", "_kafka_offset:string", "_kafka_new:int")},
		{name: "nested _kafka_ names are ordinary", table: sch(t, "s:struct<a:int>"), writer: sch(t, "s:struct<a:int,_kafka_x:int>"),
			want: []string{`add column "s._kafka_x" int`}},
		{name: "optional column the writer lacks", table: sch(t, "id!:long", "old:string", "s:struct<a:int,b:int>"), writer: sch(t, "id!:long", "s:struct<b:int>")},
		{name: "required column the writer lacks", table: sch(t, "id!:long", "old!:string", "s:struct<a!:int,b:int>"), writer: sch(t, "id!:long", "s:struct<b:int>"),
			want: []string{`make "old" optional`, `make "s.a" optional`}},
		{name: "writer optional", table: sch(t, "id!:long", "s!:struct<a!:int>"), writer: sch(t, "id!:long", "s:struct<a:int>"),
			want: []string{`make "s" optional`, `make "s.a" optional`}},
		{name: "writer required where the table is optional", table: sch(t, "v:string"), writer: sch(t, "v!:string")},
		{name: "narrower writer", table: sch(t, "i:long", "f:double", "d:decimal(12,2)", "l:list<long>", "m:map<string,double>"),
			writer: sch(t, "i:int", "f:float", "d:decimal(9,2)", "l:list<int>", "m:map<string,float>")},
		{name: "wider writer", table: sch(t, "i:int", "f:float", "d:decimal(9,2)", "e:decimal(18,2)", "x:decimal(37,0)"),
			writer: sch(t, "i:long", "f:double", "d:decimal(12,2)", "e:decimal(20,2)", "x:decimal(38,0)"),
			want: []string{`promote "i" int to long`, `promote "f" float to double`, `promote "d" decimal(9, 2) to decimal(12, 2)`,
				`promote "e" decimal(18, 2) to decimal(20, 2)`, `promote "x" decimal(37, 0) to decimal(38, 0)`}},
		{name: "promote and make optional", table: sch(t, "i!:int"), writer: sch(t, "i:long"),
			want: []string{`promote "i" int to long`, `make "i" optional`}},
		{name: "element and value promotion", table: sch(t, "l:list<int>", "m:map<string,float>", "s:struct<x:list<struct<q:int>>>"),
			writer: sch(t, "l:list<long>", "m:map<string,double>", "s:struct<x:list<struct<q:long>>>"),
			want:   []string{`promote "l.element" int to long`, `promote "m.value" float to double`, `promote "s.x.element.q" int to long`}},
		{name: "element and value requiredness",
			table:  schOf(iceberg.NestedField{ID: 1, Name: "l", Type: reqList(iceberg.PrimitiveTypes.Int32, true)}, iceberg.NestedField{ID: 2, Name: "m", Type: reqMap(iceberg.PrimitiveTypes.Int32, true)}),
			writer: schOf(iceberg.NestedField{ID: 1, Name: "l", Type: reqList(iceberg.PrimitiveTypes.Int64, false)}, iceberg.NestedField{ID: 2, Name: "m", Type: reqMap(iceberg.PrimitiveTypes.Int32, false)}),
			want:   []string{`promote "l.element" int to long`, `make "l.element" optional`, `make "m.value" optional`}},
		{name: "writer requires where the table does not", table: sch(t, "l:list<int>"),
			writer: schOf(iceberg.NestedField{ID: 1, Name: "l", Type: reqList(iceberg.PrimitiveTypes.Int32, true), Required: true})},
		{name: "fixed: optional in the writer", table: sch(t, "id!:long", "v:string"), writer: sch(t, "id:long", "v:string"), fixed: []string{"id"}},
		{name: "fixed: narrower writer", table: sch(t, "id!:long"), writer: sch(t, "id!:int"), fixed: []string{"id"}},
		{name: "fixed: optional column the writer lacks", table: sch(t, "id!:long", "p:string"), writer: sch(t, "id!:long"), fixed: []string{"p"}},
		{name: "fixed names only top-level columns", table: sch(t, "s:struct<id!:int>"), writer: sch(t, "s:struct<id:long>"), fixed: []string{"id"},
			want: []string{`promote "s.id" int to long`, `make "s.id" optional`}},
		{name: "case-sensitive", table: sch(t, "a:int"), writer: sch(t, "a:int", "A:string"),
			want: []string{`add column "A" string`}},
		{name: "order: table order, then writer order, depth first",
			table:  sch(t, "z!:int", "s:struct<b!:int,a:int>", "a:float"),
			writer: sch(t, "new2:int", "a:double", "s:struct<c:int,a:long>", "new1:int"),
			want: []string{`make "z" optional`, `make "s.b" optional`, `promote "s.a" int to long`, `add column "s.c" int`,
				`promote "a" float to double`, `add column "new2" int`, `add column "new1" int`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Evolve(tc.table, tc.writer, tc.fixed)
			require.NoError(t, err)
			require.Equal(t, tc.want, strs(got))
			again, err := Evolve(tc.table, tc.writer, tc.fixed)
			require.NoError(t, err)
			require.Equal(t, got, again, "deterministic")

			applied, err := applyChanges(t, tc.table, got)
			require.NoError(t, err, "iceberg-go applies %v", strs(got))
			after, err := Evolve(applied, tc.writer, tc.fixed)
			require.NoError(t, err)
			require.Empty(t, strs(after), "planning again on %s", applied)
		})
	}
}

func TestEvolveChangeFields(t *testing.T) {
	got, err := Evolve(sch(t, "i:int"), schOf(
		iceberg.NestedField{ID: 8, Name: "i", Type: iceberg.PrimitiveTypes.Int64},
		iceberg.NestedField{ID: 9, Name: "n", Type: iceberg.PrimitiveTypes.String, Required: true, Doc: "a note"},
	), nil)
	require.NoError(t, err)
	require.Equal(t, []Change{
		{Kind: PromoteType, Path: []string{"i"}, Type: iceberg.PrimitiveTypes.Int64, From: iceberg.PrimitiveTypes.Int32},
		{Kind: AddColumn, Path: []string{"n"}, Type: iceberg.PrimitiveTypes.String, Doc: "a note"},
	}, got)
	applied, err := applyChanges(t, sch(t, "i:int"), got)
	require.NoError(t, err)
	n, ok := applied.FindFieldByName("n")
	require.True(t, ok)
	require.False(t, n.Required, "an added column is optional, whatever the writer says")
	require.Equal(t, "a note", n.Doc)

	// A new struct keeps its fields' requiredness, under an optional parent.
	applied, err = applyChanges(t, sch(t, "id!:long"), []Change{{Kind: AddColumn, Path: []string{"n"}, Type: typ(t, "struct<x!:int,y:long>")}})
	require.NoError(t, err)
	x, ok := applied.FindFieldByName("n.x")
	require.True(t, ok)
	require.True(t, x.Required)
	nf, _ := applied.FindFieldByName("n")
	require.False(t, nf.Required)

	require.Equal(t, "add column", AddColumn.String())
	require.Equal(t, "ChangeKind(9)", ChangeKind(9).String())
}

func TestEvolveIncompatible(t *testing.T) {
	cases := []struct {
		name          string
		table, writer *iceberg.Schema
		fixed         []string
		// want maps each incompatible path to a part of its reason.
		want map[string]string
	}{
		{name: "other primitive", table: sch(t, "v:long"), writer: sch(t, "v:string"),
			want: map[string]string{"v": "the table has long, the writer has string; only int to long"}},
		{name: "narrowing is not widening the other way", table: sch(t, "v:long"), writer: sch(t, "v:double"),
			want: map[string]string{"v": "the table has long, the writer has double"}},
		{name: "timestamp kinds", table: sch(t, "ts:timestamptz"), writer: sch(t, "ts:timestamp"),
			want: map[string]string{"ts": "the table has timestamptz, the writer has timestamp"}},
		{name: "string and binary", table: sch(t, "b:binary"), writer: sch(t, "b:string"),
			want: map[string]string{"b": "the table has binary, the writer has string"}},
		{name: "fixed length", table: sch(t, "f:fixed[8]"), writer: sch(t, "f:fixed[16]"),
			want: map[string]string{"f": "the table has fixed[8], the writer has fixed[16]"}},
		{name: "decimal scale", table: sch(t, "d:decimal(9,2)"), writer: sch(t, "d:decimal(12,3)"),
			want: map[string]string{"d": "a decimal's scale cannot change: the table has decimal(9, 2), the writer has decimal(12, 3)"}},
		{name: "struct vs primitive", table: sch(t, "s:struct<a:int>"), writer: sch(t, "s:int"),
			want: map[string]string{"s": "the table has struct<a: optional int>, the writer has int"}},
		{name: "primitive vs struct", table: sch(t, "s:int"), writer: sch(t, "s:struct<a:int>"),
			want: map[string]string{"s": "the table has int, the writer has struct<a: optional int>"}},
		{name: "list vs map", table: sch(t, "l:list<int>"), writer: sch(t, "l:map<string,int>"),
			want: map[string]string{"l": "the table has list<int>, the writer has map<string, int>"}},
		{name: "map key", table: schOf(iceberg.NestedField{ID: 1, Name: "m", Type: &iceberg.MapType{KeyID: 2, KeyType: iceberg.PrimitiveTypes.Int32, ValueID: 3, ValueType: iceberg.PrimitiveTypes.String}}),
			writer: schOf(iceberg.NestedField{ID: 1, Name: "m", Type: &iceberg.MapType{KeyID: 2, KeyType: iceberg.PrimitiveTypes.Int64, ValueID: 3, ValueType: iceberg.PrimitiveTypes.String}}),
			want:   map[string]string{"m.key": "map keys cannot change: the table has int, the writer has long"}},
		{name: "nested element", table: sch(t, "l:list<struct<a:int>>"), writer: sch(t, "l:list<struct<a:string>>"),
			want: map[string]string{"l.element.a": "the table has int, the writer has string"}},
		{name: "map value", table: sch(t, "m:map<string,date>"), writer: sch(t, "m:map<string,timestamp>"),
			want: map[string]string{"m.value": "the table has date, the writer has timestamp"}},
		{name: "fixed: wider writer", table: sch(t, "id!:int"), writer: sch(t, "id!:long"), fixed: []string{"id"},
			want: map[string]string{"id": "cannot change type, and the writer has long where the table has int"}},
		{name: "fixed: required column the writer lacks", table: sch(t, "id!:long", "v:string"), writer: sch(t, "v:string"), fixed: []string{"id"},
			want: map[string]string{"id": "the writer lacks this required column"}},
		{name: "fixed: change inside", table: sch(t, "k!:struct<a!:int>"), writer: sch(t, "k!:struct<a!:int,b:int>"), fixed: []string{"k"},
			want: map[string]string{"k.b": `cannot change (add column "k.b" int)`}},
		{name: "identifier fields are fixed", table: func() *iceberg.Schema {
			s, err := Build([]Column{{Name: "id", Type: "int", Required: true}}, nil, []string{"id"})
			require.NoError(t, err)
			return s
		}(), writer: sch(t, "id!:long"),
			want: map[string]string{"id": "cannot change type"}},
		{name: "dotted name", table: sch(t, "a.b:int"), writer: sch(t, "a.b:long"),
			want: map[string]string{"a.b": `field name "a.b" contains a dot`}},
		{name: "duplicate writer names", table: sch(t, "a:int"), writer: schOf(
			iceberg.NestedField{ID: 1, Name: "a", Type: iceberg.PrimitiveTypes.Int32},
			iceberg.NestedField{ID: 2, Name: "a", Type: iceberg.PrimitiveTypes.Int64},
			iceberg.NestedField{ID: 3, Name: "b", Type: iceberg.PrimitiveTypes.Int64},
			iceberg.NestedField{ID: 4, Name: "b", Type: iceberg.PrimitiveTypes.Int64}),
			want: map[string]string{"a": "more than one field of this name", "b": "more than one field of this name"}},
		{name: "every incompatibility is reported", table: sch(t, "a:int", "s:struct<x:date,y:int>", "c:string"),
			writer: sch(t, "a:string", "s:struct<x:time,y:long>", "c:long", "d:int"),
			want:   map[string]string{"a": "the table has int, the writer has string", "s.x": "the table has date, the writer has time", "c": "the table has string, the writer has long"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Evolve(tc.table, tc.writer, tc.fixed)
			require.Error(t, err)
			require.Nil(t, got, "no changes with an error")
			var ie *IncompatibleError
			require.ErrorAs(t, err, &ie)
			found := map[string]string{}
			for _, e := range incompatibilities(t, err) {
				found[e.Path] = e.Reason
				require.Contains(t, e.Error(), fmt.Sprintf("column %q", e.Path))
			}
			require.Len(t, found, len(tc.want), "%v", err)
			for path, reason := range tc.want {
				require.Contains(t, found[path], reason, "at %s: %v", path, err)
			}
		})
	}
	_, err := Evolve(nil, sch(t, "a:int"), nil)
	require.Error(t, err)
}

// TestEvolveSelf: a table takes records of its own schema as it is.
func TestEvolveSelf(t *testing.T) {
	for seed := range uint64(300) {
		g := newSchemaGen(seed)
		s := g.schema()
		got, err := Evolve(s, s, g.fixed(s))
		require.NoError(t, err, "seed %d: %s", seed, s)
		require.Nil(t, got, "seed %d: %s", seed, s)
	}
}

// TestEvolveFixpoint: for random tables and writers derived from them
// (columns dropped, added, widened, narrowed, made optional or required,
// and now and then retyped beyond repair, at every nesting level), the plan
// is deterministic, iceberg-go applies it, the applied schema keeps every
// column of the table, and planning again yields nothing; or the plan
// fails, with IncompatibleErrors only.
func TestEvolveFixpoint(t *testing.T) {
	var planned, incompatible, unioned int
	kinds := map[ChangeKind]int{}
	for seed := range uint64(2000) {
		g := newSchemaGen(seed)
		tbl := g.schema()
		writer := g.writerOf(tbl)
		fixed := g.fixed(tbl)
		changes, err := Evolve(tbl, writer, fixed)
		again, err2 := Evolve(tbl, writer, fixed)
		require.Equal(t, changes, again, "seed %d: deterministic", seed)
		require.Equal(t, fmt.Sprint(err), fmt.Sprint(err2), "seed %d: deterministic", seed)
		if err != nil {
			require.Nil(t, changes)
			incompatibilities(t, err)
			incompatible++
			if len(fixed) == 0 {
				// iceberg-go's union by name refuses the writer too.
				_, _, uerr := table.NewUpdateSchema(tableOf(t, tbl).NewTransaction(), true, false).
					UnionByNameWith(withoutKafka(writer)).BuildUpdates()
				require.Error(t, uerr, "seed %d: union by name takes what Evolve refused (%v)\ntable %s\nwriter %s", seed, err, tbl, writer)
			}
			continue
		}
		planned++
		for _, c := range changes {
			kinds[c.Kind]++
		}
		applied, aerr := applyChanges(t, tbl, changes)
		require.NoError(t, aerr, "seed %d: iceberg-go applies %q\ntable %s\nwriter %s", seed, strs(changes), tbl, writer)
		after, err := Evolve(applied, writer, fixed)
		require.NoError(t, err, "seed %d: planning again\ntable %s\napplied %s\nwriter %s\nchanges %q", seed, tbl, applied, writer, strs(changes))
		require.Empty(t, strs(after), "seed %d: planning again\ntable %s\napplied %s\nwriter %s\nchanges %q", seed, tbl, applied, writer, strs(changes))
		self, err := Evolve(applied, applied, fixed)
		require.NoError(t, err)
		require.Nil(t, self)
		// Nothing of the table is dropped: the applied schema (fresh ids
		// from the same depth-first order) holds every column.
		fresh, err := iceberg.AssignFreshSchemaIDs(tbl, nil)
		require.NoError(t, err)
		for id := 1; id <= fresh.HighestFieldID(); id++ {
			name, ok := fresh.FindColumnName(id)
			require.True(t, ok)
			_, ok = applied.FindFieldByName(name)
			require.True(t, ok, "seed %d: column %s dropped", seed, name)
		}
		if len(fixed) == 0 {
			// iceberg-go's own union by name, a second opinion, finds
			// nothing left to add, widen or make optional either.
			upd, _, err := table.NewUpdateSchema(tableOf(t, applied).NewTransaction(), true, false).
				UnionByNameWith(withoutKafka(writer)).BuildUpdates()
			require.NoError(t, err, "seed %d", seed)
			require.Empty(t, upd, "seed %d: union by name of\n%s\nwith\n%s", seed, applied, writer)
			unioned++
		}
	}
	t.Logf("planned %d (%d checked by union by name), incompatible %d; adds %d, promotions %d, make-optional %d",
		planned, unioned, incompatible, kinds[AddColumn], kinds[PromoteType], kinds[MakeOptional])
	// The generator reaches every outcome.
	require.Greater(t, planned, 1000)
	require.Greater(t, unioned, 500)
	require.Greater(t, incompatible, 50)
	for _, k := range []ChangeKind{AddColumn, PromoteType, MakeOptional} {
		require.Greater(t, kinds[k], 200, "%s", k)
	}
}

// withoutKafka is s without its top-level _kafka_* fields.
func withoutKafka(s *iceberg.Schema) *iceberg.Schema {
	var fields []iceberg.NestedField
	for _, f := range s.Fields() {
		if !strings.HasPrefix(f.Name, "_kafka_") {
			fields = append(fields, f)
		}
	}
	return iceberg.NewSchema(0, fields...)
}

// schemaGen makes random schemas and writer schemas derived from them.
type schemaGen struct {
	r  *rand.Rand
	id int
}

func newSchemaGen(seed uint64) *schemaGen {
	return &schemaGen{r: rand.New(rand.NewPCG(seed, seed*7919+1))}
}

func (g *schemaGen) nextID() int { g.id++; return g.id }

// names are the field names a struct's fields take (both cases of a and
// b: matching is case-sensitive).
var names = []string{"a", "b", "c", "d", "e", "A", "B"}

func (g *schemaGen) chance(p float64) bool { return g.r.Float64() < p }

func (g *schemaGen) primitive() iceberg.Type {
	switch g.r.IntN(11) {
	case 0:
		return iceberg.PrimitiveTypes.Int32
	case 1:
		return iceberg.PrimitiveTypes.Int64
	case 2:
		return iceberg.PrimitiveTypes.Float32
	case 3:
		return iceberg.PrimitiveTypes.Float64
	case 4:
		p := 2 + g.r.IntN(37)
		return iceberg.DecimalTypeOf(p, g.r.IntN(3))
	case 5:
		return iceberg.PrimitiveTypes.String
	case 6:
		return iceberg.PrimitiveTypes.Bool
	case 7:
		return iceberg.PrimitiveTypes.Date
	case 8:
		return iceberg.PrimitiveTypes.TimestampTz
	case 9:
		return iceberg.PrimitiveTypes.Binary
	default:
		return iceberg.PrimitiveTypes.Int32
	}
}

func (g *schemaGen) typ(depth int) iceberg.Type {
	if depth >= 3 || g.chance(0.55) {
		return g.primitive()
	}
	switch g.r.IntN(3) {
	case 0:
		return &iceberg.StructType{FieldList: g.fields(depth+1, 1+g.r.IntN(3))}
	case 1:
		return &iceberg.ListType{ElementID: g.nextID(), Element: g.typ(depth + 1), ElementRequired: g.chance(0.3)}
	default:
		return &iceberg.MapType{KeyID: g.nextID(), KeyType: iceberg.PrimitiveTypes.String, ValueID: g.nextID(),
			ValueType: g.typ(depth + 1), ValueRequired: g.chance(0.3)}
	}
}

func (g *schemaGen) fields(depth, n int) []iceberg.NestedField {
	pool := slices.Clone(names)
	g.r.Shuffle(len(pool), func(i, j int) { pool[i], pool[j] = pool[j], pool[i] })
	out := make([]iceberg.NestedField, 0, n)
	for _, name := range pool[:n] {
		out = append(out, iceberg.NestedField{ID: g.nextID(), Name: name, Type: g.typ(depth), Required: g.chance(0.35)})
	}
	return out
}

func (g *schemaGen) schema() *iceberg.Schema {
	fields := g.fields(0, 1+g.r.IntN(5))
	if g.chance(0.2) {
		fields = append(fields, iceberg.NestedField{ID: g.nextID(), Name: "_kafka_offset", Type: iceberg.PrimitiveTypes.Int64, Required: g.chance(0.5)})
	}
	return iceberg.NewSchema(0, fields...)
}

// fixed picks some top-level columns of s as fixed.
func (g *schemaGen) fixed(s *iceberg.Schema) []string {
	var out []string
	for _, f := range s.Fields() {
		if g.chance(0.15) {
			out = append(out, f.Name)
		}
	}
	return out
}

// writerOf derives a writer schema from s, with ids of its own.
func (g *schemaGen) writerOf(s *iceberg.Schema) *iceberg.Schema {
	g.id = 1000 + g.r.IntN(1000)
	fields := g.mutateFields(s.Fields(), 0)
	if g.chance(0.2) {
		fields = append(fields, iceberg.NestedField{ID: g.nextID(), Name: "_kafka_partition", Type: g.primitive()})
	}
	return iceberg.NewSchema(0, fields...)
}

func (g *schemaGen) mutateFields(fields []iceberg.NestedField, depth int) []iceberg.NestedField {
	var out []iceberg.NestedField
	used := map[string]bool{}
	for _, f := range fields {
		used[f.Name] = true
		if g.chance(0.12) {
			continue // the writer lacks it
		}
		req := f.Required
		if g.chance(0.2) {
			req = !req
		}
		out = append(out, iceberg.NestedField{ID: g.nextID(), Name: f.Name, Type: g.mutate(f.Type, depth+1), Required: req, Doc: f.Doc})
	}
	for range g.r.IntN(3) {
		name := names[g.r.IntN(len(names))]
		if used[name] {
			continue
		}
		used[name] = true
		out = append(out, iceberg.NestedField{ID: g.nextID(), Name: name, Type: g.typ(depth), Required: g.chance(0.3), Doc: "doc of " + name})
	}
	g.r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

func (g *schemaGen) mutate(t iceberg.Type, depth int) iceberg.Type {
	if g.chance(0.01) {
		return g.typ(depth) // anything at all
	}
	switch t := t.(type) {
	case *iceberg.StructType:
		return &iceberg.StructType{FieldList: g.mutateFields(t.FieldList, depth)}
	case *iceberg.ListType:
		req := t.ElementRequired
		if g.chance(0.2) {
			req = !req
		}
		return &iceberg.ListType{ElementID: g.nextID(), Element: g.mutate(t.Element, depth+1), ElementRequired: req}
	case *iceberg.MapType:
		req := t.ValueRequired
		if g.chance(0.2) {
			req = !req
		}
		key := t.KeyType
		if g.chance(0.01) {
			key = iceberg.PrimitiveTypes.Int64
		}
		return &iceberg.MapType{KeyID: g.nextID(), KeyType: key, ValueID: g.nextID(), ValueType: g.mutate(t.ValueType, depth+1), ValueRequired: req}
	}
	switch {
	case g.chance(0.25):
		return widen(t)
	case g.chance(0.1):
		return narrow(t)
	case g.chance(0.02):
		return g.primitive()
	}
	return t
}

func widen(t iceberg.Type) iceberg.Type {
	switch t := t.(type) {
	case iceberg.Int32Type:
		return iceberg.PrimitiveTypes.Int64
	case iceberg.Float32Type:
		return iceberg.PrimitiveTypes.Float64
	case iceberg.DecimalType:
		return iceberg.DecimalTypeOf(min(38, t.Precision()+3), t.Scale())
	}
	return t
}

func narrow(t iceberg.Type) iceberg.Type {
	switch t := t.(type) {
	case iceberg.Int64Type:
		return iceberg.PrimitiveTypes.Int32
	case iceberg.Float64Type:
		return iceberg.PrimitiveTypes.Float32
	case iceberg.DecimalType:
		return iceberg.DecimalTypeOf(max(t.Scale(), 1, t.Precision()-3), t.Scale())
	}
	return t
}

// TestEvolveStageErrors: what iceberg-go refuses of a stale plan (a change
// against a column that is not there) comes back from Apply.
func TestEvolveStageErrors(t *testing.T) {
	_, err := applyChanges(t, sch(t, "a:int"), []Change{{Kind: PromoteType, Path: []string{"nope"}, Type: iceberg.PrimitiveTypes.Int64}})
	require.Error(t, err)
	_, err = applyChanges(t, sch(t, "a:long"), []Change{{Kind: PromoteType, Path: []string{"a"}, Type: iceberg.PrimitiveTypes.Int32}})
	require.Error(t, err, "iceberg-go checks promotions again")
	require.True(t, errors.Is(err, iceberg.ErrResolve), "%v", err)
}
