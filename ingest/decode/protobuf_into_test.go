package decode

import (
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// intoSchema is md's table schema without the maps whose keys are not
// strings, which a JSONDecoder cannot hold (the protobuf decoder skips the
// fields the table lacks).
func intoSchema(t testing.TB, md protoreflect.MessageDescriptor) *iceberg.Schema {
	s, err := ProtoIceberg(md)
	require.NoError(t, err)
	var keep []iceberg.NestedField
	for _, f := range s.Fields() {
		if m, ok := f.Type.(*iceberg.MapType); ok {
			if _, str := m.KeyType.(iceberg.StringType); !str {
				continue
			}
		}
		keep = append(keep, f)
	}
	return iceberg.NewSchema(0, keep...)
}

// rowsAppended is the last good row of rows, appended by the JSONDecoder,
// and the same row appended column by column through a Projector, last
// column first (each column from where its nested values start).
func rowsAppended(t testing.TB, rows *JSONDecoder) (whole, projected map[string]any) {
	read := func(appendTo func(*array.RecordBuilder)) map[string]any {
		rb := array.NewRecordBuilder(memory.NewGoAllocator(), rows.ArrowSchema())
		defer rb.Release()
		appendTo(rb)
		rec := rb.NewRecordBatch()
		defer rec.Release()
		for i := range int(rec.NumCols()) {
			require.NoError(t, array.ValidateFull(rec.Column(i)), "column %d", i)
		}
		return arrowRows(rec)[0]
	}
	n := rows.ArrowSchema().NumFields()
	cols := make([]int, n)
	for i := range cols {
		cols[i] = n - 1 - i
	}
	p, err := rows.Projector(rows.ArrowSchema(), cols, cols)
	require.NoError(t, err)
	return read(rows.Append), read(p.Append)
}

// TestProtoDecoderIntoRows: a protobuf decoder made with
// NewProtoDecoderInto leaves every row it accepts in the shared
// JSONDecoder as well, nested values included, so that what reads that
// row (a transform, a Projector) sees what the decoder appends; two
// decoders of different messages may share it, and a refused record
// leaves it as it was.
func TestProtoDecoderIntoRows(t *testing.T) {
	schema := intoSchema(t, allMsg())
	rows, err := NewJSONDecoder(schema)
	require.NoError(t, err)
	all, err := NewProtoDecoderInto(schema, rows, allMsg())
	require.NoError(t, err)
	require.Same(t, rows, all.Rows())
	// fuzzMsg is All without one field: another writer schema of the table.
	other, err := NewProtoDecoderInto(schema, rows, fuzzMsg())
	require.NoError(t, err)
	decoders := []*ProtoDecoder{all, other}

	var last map[string]any
	accepted := 0
	for i, js := range allRecords {
		d := decoders[i%2]
		wire := wireFromJSON(t, allMsg(), js)
		if err := d.Parse(wire, RecordMeta{}); err != nil {
			// allRecords holds a few values the decoder refuses.
			require.NotNil(t, last)
			whole, projected := rowsAppended(t, rows)
			require.Equal(t, last, whole, "record %d: a refused record changed the shared row", i)
			require.Equal(t, last, projected, "record %d", i)
			continue
		}
		accepted++
		want := appendedRow(t, d)
		whole, projected := rowsAppended(t, rows)
		require.Equal(t, want, whole, "record %d: %s", i, js)
		require.Equal(t, want, projected, "record %d: %s", i, js)
		last = want

		// The other decoder refuses a record: the row stays this one.
		require.Error(t, decoders[(i+1)%2].Parse([]byte{0xff, 0xff}, RecordMeta{}))
		whole, _ = rowsAppended(t, rows)
		require.Equal(t, want, whole, "record %d: a refused record changed the shared row", i)
	}
	require.Greater(t, accepted, len(allRecords)/2)

	_, err = NewProtoDecoderInto(schema, nil, allMsg())
	require.NoError(t, err, "rows is optional")
	fewer, err := NewJSONDecoder(iceberg.NewSchema(0, schema.Field(0)))
	require.NoError(t, err)
	_, err = NewProtoDecoderInto(schema, fewer, allMsg())
	require.ErrorContains(t, err, "the shared row has 1 columns")
}
