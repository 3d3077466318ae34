package decode

import (
	"encoding/json"
	"errors"
	"math"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/hamba/avro/v2"
	"github.com/stretchr/testify/require"
)

// TestAvroJSONMatchesDecoder rewrites records of every type as JSON and
// decodes them with the JSON decoder into the writer schema's Iceberg
// form: the rows must be those the Avro decoder reads from the same
// records.
func TestAvroJSONMatchesDecoder(t *testing.T) {
	ws := mustAvroSchema(t, avroAllSchema)
	sch, err := ws.Iceberg()
	require.NoError(t, err)
	jd, err := NewJSONDecoder(sch)
	require.NoError(t, err)
	aj := NewAvroJSON(ws)
	ad := avroDecoderFor(t, avroAllSchema, nil)
	for i, r := range avroAllRows() {
		payload := avroEncode(t, avroAllSchema, r)
		js, err := aj.AppendJSON(nil, payload)
		if math.IsInf(float64(r.F), 0) {
			// JSON has no infinities: the record is refused, naming the field.
			require.ErrorContains(t, err, `field "f": -Inf cannot be written as JSON`, "row %d", i)
			continue
		}
		require.NoError(t, err, "row %d", i)
		want := avroRows(t, ad, payload)

		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		rb := array.NewRecordBuilder(mem, jd.ArrowSchema())
		require.NoError(t, jd.Parse(js, RecordMeta{}), "row %d: %s", i, js)
		jd.Append(rb)
		rec := rb.NewRecordBatch()
		got := recordGo(t, rec)
		rec.Release()
		rb.Release()
		mem.AssertSize(t, 0)
		require.Equal(t, want, got, "row %d: %s", i, js)
	}
}

// TestAvroJSONRefusesMalformed checks that a truncated record is refused at
// every length, never written as partial JSON without an error.
func TestAvroJSONRefusesMalformed(t *testing.T) {
	ws := mustAvroSchema(t, avroAllSchema)
	aj := NewAvroJSON(ws)
	payload := avroEncode(t, avroAllSchema, avroAllRows()[0])
	for n := range len(payload) {
		_, err := aj.AppendJSON(nil, payload[:n])
		require.Error(t, err, "truncated to %d bytes", n)
		decodeErr(t, err)
	}
	_, err := aj.AppendJSON(nil, append(payload, 0))
	require.ErrorContains(t, err, "1 bytes left over")
}

// FuzzAvroJSON feeds arbitrary payloads to the rewriter of avroFuzzWriter.
// Invariants: it never panics; every error is a *DecodeError; what it
// accepts is valid JSON, and the reference implementation reads the
// payload too.
func FuzzAvroJSON(f *testing.F) {
	for _, s := range avroFuzzSeeds(f) {
		f.Add(s)
		f.Add(s[:len(s)/2])
	}
	ws := mustAvroSchema(f, avroFuzzWriter)
	ref, err := avro.Parse(avroFuzzWriter)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		aj := NewAvroJSON(ws)
		out, err := aj.AppendJSON(nil, data)
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) || de.Reason == "" {
				t.Fatalf("error %v (%T) is not a *DecodeError with a reason", err, err)
			}
			return
		}
		if !json.Valid(out) {
			t.Fatalf("invalid JSON %q", out)
		}
		var v any
		if err := avro.Unmarshal(ref, data, &v); err != nil {
			t.Fatalf("accepted a payload the reference implementation refuses (%v): %q", err, out)
		}
	})
}
