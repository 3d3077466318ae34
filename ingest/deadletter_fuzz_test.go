package ingest

import (
	"bytes"
	"context"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"

	"github.com/floelake/floe/ingest/decode"
)

// FuzzDeadLetterRows feeds arbitrary record values (and keys) to the JSON
// decoder of a table with required, typed and timestamp columns; every
// record it rejects becomes a dead-letter row. Each row must be valid
// where Iceberg says strings are UTF-8 and must read back from Parquet
// as written: the reason quoting the record's bytes must never make the
// dead-letter table unreadable, and the raw bytes must survive in the
// binary columns.
func FuzzDeadLetterRows(f *testing.F) {
	for _, seed := range []string{
		"\xff\xfe", `{"ts":"\xff\xfe"}`, `{"id":"\xff"}`, `{"id":1,"ts":"2026-11-30T00:00:00Z"}`,
		`{"id":null}`, `not json`, `{"id":1e999}`, `{"id":1,"tags":["\xe4\xb8"]}`, `{"\xff":1}`, "",
	} {
		f.Add([]byte(seed), []byte("k\xff"))
	}
	sch := iceberg.NewSchema(0,
		iceberg.NestedField{ID: 1, Name: "id", Type: iceberg.PrimitiveTypes.Int64, Required: true},
		iceberg.NestedField{ID: 2, Name: "ts", Type: iceberg.PrimitiveTypes.TimestampTz},
		iceberg.NestedField{ID: 3, Name: "tags", Type: &iceberg.ListType{ElementID: 4, Element: iceberg.PrimitiveTypes.String, ElementRequired: true}},
	)
	dec, err := decode.NewJSONDecoder(sch)
	if err != nil {
		f.Fatal(err)
	}
	dlSchema, err := table.SchemaToArrowSchema(DeadLetterSchema(), nil, true, false)
	if err != nil {
		f.Fatal(err)
	}
	row, err := newDeadLetterRow(dlSchema)
	if err != nil {
		f.Fatal(err)
	}
	now := time.Unix(1_790_000_000, 0)
	f.Fuzz(func(t *testing.T, value, key []byte) {
		meta := decode.RecordMeta{Topic: "clicks", Partition: 3, Offset: 42, Key: key, Timestamp: now}
		perr := dec.Parse(value, meta)
		if perr == nil {
			return
		}
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		defer mem.AssertSize(t, 0)
		b := array.NewRecordBuilder(mem, dlSchema)
		defer b.Release()
		row.append(b, meta, value, perr.Error(), now)
		rec := b.NewRecordBatch()
		defer rec.Release()

		var buf bytes.Buffer
		w, err := pqarrow.NewFileWriter(dlSchema, &buf, nil, pqarrow.DefaultWriterProps())
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Write(rec); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		pf, err := file.NewParquetReader(bytes.NewReader(buf.Bytes()))
		if err != nil {
			t.Fatal(err)
		}
		r, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{}, mem)
		if err != nil {
			t.Fatal(err)
		}
		got, err := r.ReadTable(context.Background())
		if err != nil {
			t.Fatalf("the dead-letter row does not read back: %v", err)
		}
		defer got.Release()
		if got.NumRows() != 1 {
			t.Fatalf("read %d rows, want 1", got.NumRows())
		}
		for i, fld := range got.Schema().Fields() {
			col := got.Column(i).Data().Chunk(0)
			switch fld.Type.ID() {
			case arrow.STRING:
				s := col.(*array.String).Value(0)
				if !utf8.ValidString(s) {
					t.Fatalf("column %s is not valid UTF-8: %q", fld.Name, s)
				}
			}
		}
		reason := got.Column(got.Schema().FieldIndices("error")[0]).Data().Chunk(0).(*array.String).Value(0)
		if want := validUTF8(perr.Error()); reason != want {
			t.Fatalf("reason read back %q, wrote %q", reason, want)
		}
		raw := got.Column(got.Schema().FieldIndices("value")[0]).Data().Chunk(0).(*array.Binary).Value(0)
		if !bytes.Equal(raw, value) {
			t.Fatalf("value read back %q, wrote %q", raw, value)
		}
		k := got.Column(got.Schema().FieldIndices("key")[0]).Data().Chunk(0).(*array.Binary).Value(0)
		if !bytes.Equal(k, key) {
			t.Fatalf("key read back %q, wrote %q", k, key)
		}
	})
}
