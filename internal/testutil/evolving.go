package testutil

import (
	"context"
	"fmt"
	"math/big"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go/table"
	"github.com/hamba/avro/v2"
)

// The schema evolution tests (in process and under crashes) produce one
// topic whose writer schema changes three times, and read the table back
// row by row: the schemas, the records and the reader are here, once.

// EvolvingAvro are the writer schemas of a topic whose schema changes three
// times, in order, as the schema evolution tests produce them: a field
// added (note); two types widened (n int to long, price float to double);
// a nested record (geo), a list (tags) and a wider decimal (amount 9 to
// 12 digits) added. Register them with compatibility NONE: Avro calls the
// wider decimal incompatible, Iceberg takes it.
var EvolvingAvro = []string{
	`{"type":"record","name":"Click","namespace":"floe.test","fields":[
		{"name":"id","type":"long"},
		{"name":"n","type":"int"},
		{"name":"price","type":"float"},
		{"name":"amount","type":{"type":"bytes","logicalType":"decimal","precision":9,"scale":2}}]}`,
	`{"type":"record","name":"Click","namespace":"floe.test","fields":[
		{"name":"id","type":"long"},
		{"name":"n","type":"int"},
		{"name":"price","type":"float"},
		{"name":"amount","type":{"type":"bytes","logicalType":"decimal","precision":9,"scale":2}},
		{"name":"note","type":["null","string"],"default":null}]}`,
	`{"type":"record","name":"Click","namespace":"floe.test","fields":[
		{"name":"id","type":"long"},
		{"name":"n","type":"long"},
		{"name":"price","type":"double"},
		{"name":"amount","type":{"type":"bytes","logicalType":"decimal","precision":9,"scale":2}},
		{"name":"note","type":["null","string"],"default":null}]}`,
	`{"type":"record","name":"Click","namespace":"floe.test","fields":[
		{"name":"id","type":"long"},
		{"name":"n","type":"long"},
		{"name":"price","type":"double"},
		{"name":"amount","type":{"type":"bytes","logicalType":"decimal","precision":12,"scale":2}},
		{"name":"note","type":["null","string"],"default":null},
		{"name":"geo","type":["null",{"type":"record","name":"Geo","fields":[{"name":"lat","type":"double","default":0}]}],"default":null},
		{"name":"tags","type":{"type":"array","items":"string"},"default":[]}]}`,
}

// EvolvingRow is a record of EvolvingAvro as the table must hold it.
type EvolvingRow struct {
	Version int // the writer schema's index (not in the table)
	ID, N   int64
	Price   float64
	Amount  int64 // cents
	Note    *string
	Lat     *float64
	Tags    string // the list as "[a b]", "" for null
}

// EvolvingRecord returns record i of version v: its row as the table must hold
// it and its Avro payload (without the wire format's header). Each version
// writes values only its own types hold.
func EvolvingRecord(sch avro.Schema, v, i int) (EvolvingRow, []byte, error) {
	id := int64(v*100_000 + i)
	row := EvolvingRow{Version: v, ID: id, N: id * 3, Price: float64(i) + 0.5, Amount: id*100 + 7}
	rec := map[string]any{"id": id, "n": int32(row.N), "price": float32(row.Price), "amount": big.NewRat(row.Amount, 100)}
	if v >= 1 {
		rec["note"] = nil
		if i%2 == 0 {
			s := fmt.Sprintf("note-%d", id)
			row.Note = &s
			rec["note"] = s
		}
	}
	if v >= 2 {
		row.N = 1<<40 + id
		row.Price = float64(id) + 1.0/3
		rec["n"], rec["price"] = row.N, row.Price
	}
	if v >= 3 {
		row.Amount = 9_000_000_000 + id // 11 digits: decimal(12,2) only
		rec["amount"] = big.NewRat(row.Amount, 100)
		rec["geo"] = nil
		if i%3 == 0 {
			lat := float64(id) / 10
			row.Lat = &lat
			rec["geo"] = map[string]any{"floe.test.Geo": map[string]any{"lat": lat}}
		}
		row.Tags = fmt.Sprintf("[t%d u%d]", i, i)
		rec["tags"] = []string{fmt.Sprintf("t%d", i), fmt.Sprintf("u%d", i)}
	}
	payload, err := avro.Marshal(sch, rec)
	if err != nil {
		return EvolvingRow{}, nil, fmt.Errorf("version %d record %d: %w", v, i, err)
	}
	return row, payload, nil
}

// ReadEvolving reads the table with iceberg-go's scan, by (partition,
// offset), failing on a duplicate.
func ReadEvolving(t testing.TB, tbl *table.Table) map[[2]int64]EvolvingRow {
	t.Helper()
	at, err := tbl.Scan().ToArrowTable(context.Background())
	if err != nil {
		t.Fatalf("scan: %v", err)
	}
	defer at.Release()
	rr := array.NewTableReader(at, 1024)
	defer rr.Release()
	out := map[[2]int64]EvolvingRow{}
	for rr.Next() {
		rec := rr.RecordBatch()
		col := func(name string) arrow.Array {
			idx := rec.Schema().FieldIndices(name)
			if len(idx) != 1 {
				t.Fatalf("scan: %d columns %s in %s", len(idx), name, rec.Schema())
			}
			return rec.Column(idx[0])
		}
		parts, offs := col("_kafka_partition").(*array.Int32), col("_kafka_offset").(*array.Int64)
		ids, ns, prices := col("id").(*array.Int64), col("n").(*array.Int64), col("price").(*array.Float64)
		amounts, notes := col("amount").(*array.Decimal128), col("note").(*array.String)
		geo, tags := col("geo").(*array.Struct), col("tags").(*array.List)
		for j := range int(rec.NumRows()) {
			row := EvolvingRow{ID: ids.Value(j), N: ns.Value(j), Price: prices.Value(j), Amount: int64(amounts.Value(j).LowBits())}
			if row.Amount < 0 || amounts.Value(j).HighBits() != 0 {
				t.Fatalf("amount %v out of the test's range", amounts.Value(j))
			}
			if notes.IsValid(j) {
				s := notes.Value(j)
				row.Note = &s
			}
			if geo.IsValid(j) {
				lat := geo.Field(0).(*array.Float64).Value(j)
				row.Lat = &lat
			}
			if tags.IsValid(j) {
				a, b := tags.ValueOffsets(j)
				vals := tags.ListValues().(*array.String)
				var ts []string
				for k := a; k < b; k++ {
					ts = append(ts, vals.Value(int(k)))
				}
				row.Tags = "[" + strings.Join(ts, " ") + "]"
			}
			k := [2]int64{int64(parts.Value(j)), offs.Value(j)}
			if _, dup := out[k]; dup {
				t.Fatalf("partition %d offset %d is in the table twice", k[0], k[1])
			}
			out[k] = row
		}
	}
	if err := rr.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
