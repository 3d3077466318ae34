package decode

import (
	"testing"

	"github.com/apache/iceberg-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func inferStrings(t *testing.T, meta []string, samples ...string) (*iceberg.Schema, error) {
	t.Helper()
	bs := make([][]byte, len(samples))
	for i, s := range samples {
		bs[i] = []byte(s)
	}
	return InferSchema(bs, meta, InferOptions{})
}

func TestInferSchema(t *testing.T) {
	s, err := inferStrings(t, []string{"_kafka_timestamp", "_kafka_key"},
		`{"id":1,"price":2,"ts":"2026-11-22T10:00:00.123Z","day":"2026-11-22","name":"a","ok":true,
		  "user":{"id":7,"tags":["x"]},"nothing":null,"_kafka_offset":5}`,
		`{"price":2.5,"id":3,"extra":"new","user":{"email":"e@x","id":8},"scores":[1,2.5],"nothing":null,
		  "ts":"2026-11-22T10:00:00+02:00","local":"2026-11-22T10:00:00","empty":[]}`,
	)
	require.NoError(t, err)
	want := iceberg.NewSchema(0,
		iceberg.NestedField{ID: 1, Name: "id", Type: iceberg.PrimitiveTypes.Int64},
		iceberg.NestedField{ID: 2, Name: "price", Type: iceberg.PrimitiveTypes.Float64},
		iceberg.NestedField{ID: 3, Name: "ts", Type: iceberg.PrimitiveTypes.TimestampTz},
		iceberg.NestedField{ID: 4, Name: "day", Type: iceberg.PrimitiveTypes.Date},
		iceberg.NestedField{ID: 5, Name: "name", Type: iceberg.PrimitiveTypes.String},
		iceberg.NestedField{ID: 6, Name: "ok", Type: iceberg.PrimitiveTypes.Bool},
		iceberg.NestedField{ID: 7, Name: "user", Type: &iceberg.StructType{FieldList: []iceberg.NestedField{
			{ID: 15, Name: "id", Type: iceberg.PrimitiveTypes.Int64},
			{ID: 16, Name: "tags", Type: &iceberg.ListType{ElementID: 18, Element: iceberg.PrimitiveTypes.String}},
			{ID: 17, Name: "email", Type: iceberg.PrimitiveTypes.String},
		}}},
		iceberg.NestedField{ID: 8, Name: "nothing", Type: iceberg.PrimitiveTypes.String},
		iceberg.NestedField{ID: 9, Name: "extra", Type: iceberg.PrimitiveTypes.String},
		iceberg.NestedField{ID: 10, Name: "scores", Type: &iceberg.ListType{ElementID: 19, Element: iceberg.PrimitiveTypes.Float64}},
		iceberg.NestedField{ID: 11, Name: "local", Type: iceberg.PrimitiveTypes.Timestamp},
		iceberg.NestedField{ID: 12, Name: "empty", Type: &iceberg.ListType{ElementID: 20, Element: iceberg.PrimitiveTypes.String}},
		iceberg.NestedField{ID: 13, Name: "_kafka_timestamp", Type: iceberg.PrimitiveTypes.TimestampTz},
		iceberg.NestedField{ID: 14, Name: "_kafka_key", Type: iceberg.PrimitiveTypes.Binary},
	)
	// Ids are assigned like Iceberg's fresh ids: a struct's fields first, then their insides.
	assert.True(t, want.Equals(s), "got\n%s\nwant\n%s", s, want)
	assert.Equal(t, 20, s.HighestFieldID())
	for _, f := range s.Fields() {
		assert.False(t, f.Required, f.Name)
	}

	// The inferred schema decodes its own samples.
	d, err := NewJSONDecoder(s)
	require.NoError(t, err)
	require.NoError(t, d.Parse([]byte(`{"id":1,"price":2,"ts":"2026-11-22T10:00:00.123Z","day":"2026-11-22","user":{"id":7,"tags":["x"]}}`), RecordMeta{}))
}

func TestInferSchemaMerges(t *testing.T) {
	cases := []struct {
		name    string
		samples []string
		want    iceberg.Type
	}{
		{"long then double", []string{`{"v":1}`, `{"v":1.5}`}, iceberg.PrimitiveTypes.Float64},
		{"double then long", []string{`{"v":1e3}`, `{"v":2}`}, iceberg.PrimitiveTypes.Float64},
		{"integer beyond long", []string{`{"v":18446744073709551616}`}, iceberg.PrimitiveTypes.Float64},
		{"null only", []string{`{"v":null}`, `{"v":null}`}, iceberg.PrimitiveTypes.String},
		{"null then long", []string{`{"v":null}`, `{"v":5}`}, iceberg.PrimitiveTypes.Int64},
		{"rfc3339", []string{`{"v":"2026-11-22T10:00:00Z"}`, `{"v":"2026-11-22 10:00:00.5+01:00"}`}, iceberg.PrimitiveTypes.TimestampTz},
		{"no offset", []string{`{"v":"2026-11-22T10:00:00"}`}, iceberg.PrimitiveTypes.Timestamp},
		{"with and without offset", []string{`{"v":"2026-11-22T10:00:00"}`, `{"v":"2026-11-22T10:00:00Z"}`}, iceberg.PrimitiveTypes.TimestampTz},
		{"date", []string{`{"v":"2026-11-22"}`}, iceberg.PrimitiveTypes.Date},
		{"not a date", []string{`{"v":"2026-02-30"}`}, iceberg.PrimitiveTypes.String},
		{"date and timestamp", []string{`{"v":"2026-11-22"}`, `{"v":"2026-11-22T10:00:00Z"}`}, iceberg.PrimitiveTypes.String},
		{"timestamp and text", []string{`{"v":"2026-11-22T10:00:00Z"}`, `{"v":"soon"}`}, iceberg.PrimitiveTypes.String},
		{"bool", []string{`{"v":true}`, `{"v":false}`}, iceberg.PrimitiveTypes.Bool},
		{"list of mixed numbers", []string{`{"v":[1,2.5,null]}`}, &iceberg.ListType{ElementID: 2, Element: iceberg.PrimitiveTypes.Float64}},
		{"list of lists", []string{`{"v":[[1],[]]}`}, &iceberg.ListType{ElementID: 2, Element: &iceberg.ListType{ElementID: 3, Element: iceberg.PrimitiveTypes.Int64}}},
		{"list of structs", []string{`{"v":[{"a":1},{"b":"x"}]}`}, &iceberg.ListType{ElementID: 2, Element: &iceberg.StructType{FieldList: []iceberg.NestedField{
			{ID: 3, Name: "a", Type: iceberg.PrimitiveTypes.Int64},
			{ID: 4, Name: "b", Type: iceberg.PrimitiveTypes.String},
		}}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := inferStrings(t, nil, tc.samples...)
			require.NoError(t, err)
			require.Equal(t, 1, s.NumFields())
			f := s.Field(0)
			assert.Equal(t, "v", f.Name)
			assert.Equal(t, 1, f.ID)
			assert.False(t, f.Required)
			assert.True(t, tc.want.Equals(f.Type), "got %s, want %s", f.Type, tc.want)
		})
	}
}

func TestInferSchemaDropsEmptyStructs(t *testing.T) {
	s, err := inferStrings(t, nil, `{"a":1,"meta":{},"wrap":{"inner":{}},"list":[{}]}`)
	require.NoError(t, err)
	require.Equal(t, 1, s.NumFields())
	assert.Equal(t, "a", s.Field(0).Name)
}

func TestInferSchemaErrors(t *testing.T) {
	cases := []struct {
		name    string
		meta    []string
		samples []string
		want    string
	}{
		{"conflict", nil, []string{`{"id":1}`, `{"id":"x"}`},
			`ingest: cannot infer a type for field "id": seen as long and as string (sample 1: "x"); declare the table schema in the config, or set infer_conflicts: string`},
		{"nested conflict", nil, []string{`{"user":{"id":1}}`, `{"user":{"id":true}}`},
			`ingest: cannot infer a type for field "user.id": seen as long and as boolean (sample 1: true); declare the table schema in the config, or set infer_conflicts: string`},
		{"list element conflict", nil, []string{`{"tags":["a",2]}`},
			`ingest: cannot infer a type for field "tags[]": seen as string and as long (sample 0: 2); declare the table schema in the config, or set infer_conflicts: string`},
		{"object vs array", nil, []string{`{"x":{"a":1}}`, `{"x":[1]}`},
			`ingest: cannot infer a type for field "x": seen as struct and as list (sample 1: [1]); declare the table schema in the config, or set infer_conflicts: string`},
		{"timestamp vs number", nil, []string{`{"ts":"2026-11-22T10:00:00Z"}`, `{"ts":1795340400123}`},
			`ingest: cannot infer a type for field "ts": seen as timestamptz and as long (sample 1: 1795340400123); declare the table schema in the config, or set infer_conflicts: string`},
		{"no samples", nil, nil, `ingest: schema inference needs at least one sample record`},
		{"no fields", nil, []string{`{}`, `{"_kafka_topic":"x"}`}, `ingest: the sample records have no fields to infer a schema from`},
		{"not json", nil, []string{`{"a":1}`, `{"a":`},
			`ingest: sample 1: record is not a JSON object: unexpected end of JSON input (offset 5)`},
		{"not an object", nil, []string{`[1]`}, `ingest: sample 0: record is not a JSON object: got [1]`},
		{"bad meta column", []string{"_kafka_headers"}, []string{`{"a":1}`},
			`ingest: "_kafka_headers" is not a Kafka metadata column (want one of _kafka_topic, _kafka_partition, _kafka_offset, _kafka_timestamp, _kafka_key)`},
		{"meta column twice", []string{"_kafka_key", "_kafka_key"}, []string{`{"a":1}`},
			`ingest: Kafka metadata column "_kafka_key" is listed twice`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := inferStrings(t, tc.meta, tc.samples...)
			assert.EqualError(t, err, tc.want)
		})
	}
}

func TestInferSchemaMetaColumns(t *testing.T) {
	s, err := inferStrings(t, []string{"_kafka_topic", "_kafka_partition", "_kafka_offset", "_kafka_timestamp", "_kafka_key"},
		`{"_kafka_topic":5,"a":"x"}`)
	require.NoError(t, err)
	want := iceberg.NewSchema(0,
		iceberg.NestedField{ID: 1, Name: "a", Type: iceberg.PrimitiveTypes.String},
		iceberg.NestedField{ID: 2, Name: "_kafka_topic", Type: iceberg.PrimitiveTypes.String},
		iceberg.NestedField{ID: 3, Name: "_kafka_partition", Type: iceberg.PrimitiveTypes.Int32},
		iceberg.NestedField{ID: 4, Name: "_kafka_offset", Type: iceberg.PrimitiveTypes.Int64},
		iceberg.NestedField{ID: 5, Name: "_kafka_timestamp", Type: iceberg.PrimitiveTypes.TimestampTz},
		iceberg.NestedField{ID: 6, Name: "_kafka_key", Type: iceberg.PrimitiveTypes.Binary},
	)
	assert.True(t, want.Equals(s), "got\n%s", s)
	_, err = NewJSONDecoder(s)
	require.NoError(t, err)
}

// Asked to, inference widens a conflict to a string, and a decoder told
// the same writes every value of such a column as its JSON text.
func TestInferConflictsAsString(t *testing.T) {
	samples := [][]byte{
		[]byte(`{"user_id":1.5,"x":{"a":1},"tags":["a",2],"n":1,"ts":"2026-11-22T10:00:00Z"}`),
		[]byte(`{"user_id":"u-7","x":[1],"tags":[true],"n":2.5,"ts":1795340400123}`),
	}
	sch, err := InferSchema(samples, nil, InferOptions{ConflictsAsString: true})
	require.NoError(t, err)
	types := map[string]string{}
	for _, f := range sch.Fields() {
		types[f.Name] = f.Type.String()
	}
	assert.Equal(t, map[string]string{
		"user_id": "string", "x": "string", "tags": "list<string>", "n": "double", "ts": "string",
	}, types, "conflicts become strings; long and double still widen to double")

	d, err := NewJSONDecoder(sch, StringsTakeAnyJSON())
	require.NoError(t, err)
	require.NoError(t, d.Parse(samples[0], RecordMeta{}))
	assert.Equal(t, "1.5", string(d.Cell(0).Bytes))
	assert.Equal(t, `{"a":1}`, string(d.Cell(1).Bytes))
	require.NoError(t, d.Parse(samples[1], RecordMeta{}))
	assert.Equal(t, "u-7", string(d.Cell(0).Bytes))
	assert.Equal(t, "[1]", string(d.Cell(1).Bytes))
	assert.Equal(t, "1795340400123", string(d.Cell(4).Bytes))

	// Without the option a string column still refuses other JSON types.
	strict, err := NewJSONDecoder(sch)
	require.NoError(t, err)
	assert.EqualError(t, strict.Parse(samples[0], RecordMeta{}), `field "user_id": expected a string, got 1.5`)
}
