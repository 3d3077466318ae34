package schema

import (
	"testing"

	"github.com/apache/iceberg-go"
	"github.com/stretchr/testify/require"
)

func TestParseTypes(t *testing.T) {
	cases := map[string]string{
		"boolean":           "boolean",
		"int":               "int",
		"long":              "long",
		"float":             "float",
		"double":            "double",
		"decimal(12, 2)":    "decimal(12, 2)",
		"date":              "date",
		"time":              "time",
		"timestamp":         "timestamp",
		"timestamptz":       "timestamptz",
		"string":            "string",
		"uuid":              "uuid",
		"binary":            "binary",
		"fixed[16]":         "fixed[16]",
		"list<long>":        "list<long>",
		"map<string, long>": "map<string, long>",
	}
	for in, want := range cases {
		got, err := ParseType(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got.String(), in)
	}
	st, err := ParseType("struct<sku!:string, qty:int, price:decimal(10,2)>")
	require.NoError(t, err)
	fields := st.(*iceberg.StructType).FieldList
	require.Len(t, fields, 3)
	require.True(t, fields[0].Required)
	require.False(t, fields[1].Required)
}

func TestParseTypeErrors(t *testing.T) {
	cases := map[string]string{
		"varchar":              "unknown type \"varchar\"",
		"":                     "missing type",
		"decimal(40,2)":        "precision must be 1..38",
		"decimal(10)":          "expected ','",
		"list<long":            "expected '>'",
		"map<long,string>":     "map keys must be string",
		"struct<a:int,a:long>": "duplicate struct field",
		"fixed[0]":             "length must be positive",
		"long extra":           "unexpected",
	}
	for in, want := range cases {
		_, err := ParseType(in)
		require.ErrorContains(t, err, want, in)
	}
}

func TestBuildAssignsDepthFirstIDs(t *testing.T) {
	sch, err := Build([]Column{
		{Name: "id", Type: "string", Required: true},
		{Name: "items", Type: "list<struct<sku:string,qty:int>>"},
		{Name: "ts", Type: "timestamptz"},
	}, []string{"partition", "offset"}, nil)
	require.NoError(t, err)
	// Depth-first like iceberg.AssignFreshSchemaIDs, so a created table
	// keeps these ids.
	fresh, err := iceberg.AssignFreshSchemaIDs(sch, nil)
	require.NoError(t, err)
	require.True(t, sch.Equals(fresh), "declared %s\nfresh %s", sch, fresh)
	f, ok := sch.FindFieldByName("_kafka_offset")
	require.True(t, ok)
	require.Equal(t, iceberg.PrimitiveTypes.Int64, f.Type)
	require.False(t, f.Required)
}

func TestBuildErrors(t *testing.T) {
	_, err := Build([]Column{{Name: "a", Type: "long"}, {Name: "a", Type: "long"}}, nil, nil)
	require.ErrorContains(t, err, "duplicate column \"a\"")
	_, err = Build([]Column{{Name: "", Type: "long"}}, nil, nil)
	require.ErrorContains(t, err, "schema[0].name")
	_, err = Build(nil, []string{"offset", "_kafka_offset"}, nil)
	require.ErrorContains(t, err, "declared twice")
}

func TestBuildKey(t *testing.T) {
	cols := []Column{
		{Name: "items", Type: "list<struct<sku:string,qty:int>>"},
		{Name: "region", Type: "string", Required: true},
		{Name: "id", Type: "long", Required: true},
		{Name: "ratio", Type: "double", Required: true},
		{Name: "note", Type: "string"},
	}
	sch, err := Build(cols, []string{"offset"}, []string{"id", "region"})
	require.NoError(t, err)
	// items takes ids 1 to 4 (list, element, sku, qty).
	require.Equal(t, []int{6, 5}, sch.IdentifierFieldIDs)
	for i, want := range []string{"id", "region"} {
		name, ok := sch.FindColumnName(sch.IdentifierFieldIDs[i])
		require.True(t, ok)
		require.Equal(t, want, name)
	}
	// A created table keeps them.
	fresh, err := iceberg.AssignFreshSchemaIDs(sch, nil)
	require.NoError(t, err)
	require.True(t, sch.Equals(fresh), "declared %s\nfresh %s", sch, fresh)

	for key, want := range map[string]string{
		"nope":          `key[0]: no top-level column "nope"`,
		"items.element": `key[0]: no top-level column "items.element"`,
		"ratio":         `key[0]: column "ratio" is double; a key column must be boolean, int, long`,
		"items":         `key[0]: column "items" is list<`,
		"note":          `key[0]: column "note" must be declared required: true`,
	} {
		_, err := Build(cols, nil, []string{key})
		require.ErrorContains(t, err, want, key)
	}
	_, err = Build(cols, nil, []string{"id", "id"})
	require.ErrorContains(t, err, `key[1]: column "id" is listed twice`)
}

func TestCheckIdentifier(t *testing.T) {
	for typ, ok := range map[string]bool{
		"boolean": true, "int": true, "long": true, "decimal(10,2)": true, "date": true, "time": true,
		"timestamp": true, "timestamptz": true, "string": true, "uuid": true, "binary": true, "fixed[16]": true,
		"float": false, "double": false, "struct<a!:int>": false, "list<int>": false, "map<string,int>": false,
	} {
		ty, err := ParseType(typ)
		require.NoError(t, err)
		err = CheckIdentifier(iceberg.NestedField{Name: "k", Type: ty, Required: true})
		require.Equal(t, ok, err == nil, "%s: %v", typ, err)
		if ok {
			require.ErrorContains(t, CheckIdentifier(iceberg.NestedField{Name: "k", Type: ty}), "required")
		}
	}
	require.True(t, IsMetaColumn("_kafka_offset"))
	require.False(t, IsMetaColumn("offset"))
}

func TestPartition(t *testing.T) {
	sch, err := Build([]Column{
		{Name: "id", Type: "long"}, {Name: "ts", Type: "timestamptz"}, {Name: "country", Type: "string"},
		{Name: "s", Type: "struct<a:int>"},
	}, nil, nil)
	require.NoError(t, err)
	spec, err := Partition([]string{"day(ts)", "country", "bucket(16, id)", "truncate(2, country)"}, sch)
	require.NoError(t, err)
	var names []string
	for _, f := range spec.Fields() {
		names = append(names, f.Name+"="+f.Transform.String())
	}
	require.Equal(t, []string{"ts_day=day", "country=identity", "id_bucket=bucket[16]", "country_trunc=truncate[2]"}, names)

	for in, want := range map[string]string{
		"day(nope)":    "no column \"nope\"",
		"day(country)": "cannot apply",
		"bucket(x,id)": "width must be a positive integer",
		"week(ts)":     "unknown transform",
		"day(ts":       "missing closing parenthesis",
		"s":            "primitive type",
		"day(ts, id)":  "takes one column",
	} {
		_, err := Partition([]string{in}, sch)
		require.ErrorContains(t, err, want, in)
	}
	un, err := Partition(nil, sch)
	require.NoError(t, err)
	require.True(t, un.IsUnpartitioned())
}
