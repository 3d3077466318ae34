package decode

import (
	"fmt"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
)

// clickSchema is the 10-column clickstream record the throughput target is stated for.
func clickSchema() *iceberg.Schema {
	return iceberg.NewSchema(0,
		iceberg.NestedField{ID: 1, Name: "event_id", Type: iceberg.PrimitiveTypes.String, Required: true},
		iceberg.NestedField{ID: 2, Name: "user_id", Type: iceberg.PrimitiveTypes.Int64},
		iceberg.NestedField{ID: 3, Name: "session_id", Type: iceberg.PrimitiveTypes.String},
		iceberg.NestedField{ID: 4, Name: "ts", Type: iceberg.PrimitiveTypes.TimestampTz, Required: true},
		iceberg.NestedField{ID: 5, Name: "url", Type: iceberg.PrimitiveTypes.String},
		iceberg.NestedField{ID: 6, Name: "referrer", Type: iceberg.PrimitiveTypes.String},
		iceberg.NestedField{ID: 7, Name: "device", Type: iceberg.PrimitiveTypes.String},
		iceberg.NestedField{ID: 8, Name: "country", Type: iceberg.PrimitiveTypes.String},
		iceberg.NestedField{ID: 9, Name: "duration_ms", Type: iceberg.PrimitiveTypes.Int32},
		iceberg.NestedField{ID: 10, Name: "revenue", Type: iceberg.PrimitiveTypes.Float64},
	)
}

func clickRecords(n int) [][]byte {
	devices := []string{"mobile", "desktop", "tablet"}
	countries := []string{"DE", "US", "FR", "JP", "BR"}
	referrers := []string{"google.com", "t.co", "", "news.ycombinator.com"}
	base := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	out := make([][]byte, n)
	for i := range out {
		ts := base.Add(time.Duration(i) * 137 * time.Millisecond)
		out[i] = fmt.Appendf(nil,
			`{"event_id":"%08x-5b7d-4e21-a3f0-6c8d9e0b%04x","user_id":%d,"session_id":"%012x","ts":"%s","url":"/p/%d","referrer":"%s","device":"%s","country":"%s","duration_ms":%d,"revenue":%d.%02d}`,
			i*7919, i%65536, 1000000+i*31, i*104729, ts.Format("2006-01-02T15:04:05.000Z"), i%50000,
			referrers[i%len(referrers)], devices[i%len(devices)], countries[i%len(countries)], 100+i%5000, i%200, i%100)
	}
	return out
}

// orderSchema is a nested record: a list of structs with a decimal, a struct, a date and a boolean.
func orderSchema() *iceberg.Schema {
	return iceberg.NewSchema(0,
		iceberg.NestedField{ID: 1, Name: "order_id", Type: iceberg.PrimitiveTypes.String, Required: true},
		iceberg.NestedField{ID: 2, Name: "customer_id", Type: iceberg.PrimitiveTypes.Int64},
		iceberg.NestedField{ID: 3, Name: "items", Type: &iceberg.ListType{
			ElementID: 10, ElementRequired: true,
			Element: &iceberg.StructType{FieldList: []iceberg.NestedField{
				{ID: 11, Name: "sku", Type: iceberg.PrimitiveTypes.String, Required: true},
				{ID: 12, Name: "qty", Type: iceberg.PrimitiveTypes.Int32, Required: true},
				{ID: 13, Name: "price", Type: iceberg.DecimalTypeOf(10, 2), Required: true},
			}},
		}},
		iceberg.NestedField{ID: 4, Name: "shipping", Type: &iceberg.StructType{FieldList: []iceberg.NestedField{
			{ID: 14, Name: "country", Type: iceberg.PrimitiveTypes.String},
			{ID: 15, Name: "city", Type: iceberg.PrimitiveTypes.String},
		}}},
		iceberg.NestedField{ID: 5, Name: "total", Type: iceberg.DecimalTypeOf(12, 2)},
		iceberg.NestedField{ID: 6, Name: "order_date", Type: iceberg.PrimitiveTypes.Date},
		iceberg.NestedField{ID: 7, Name: "paid", Type: iceberg.PrimitiveTypes.Bool},
	)
}

func orderRecords(n int) [][]byte {
	cities := []string{"Berlin", "Paris", "Lyon", "Osaka", "Recife"}
	out := make([][]byte, n)
	for i := range out {
		items := ""
		nItems := 1 + i%4
		for k := 0; k < nItems; k++ {
			if k > 0 {
				items += ","
			}
			items += fmt.Sprintf(`{"sku":"SKU-%05d","qty":%d,"price":%d.%02d}`, (i*13+k)%100000, 1+k, 5+k*3, (i+k)%100)
		}
		out[i] = fmt.Appendf(nil,
			`{"order_id":"o-%010d","customer_id":%d,"items":[%s],"shipping":{"country":"DE","city":"%s"},"total":"%d.%02d","order_date":"2026-11-%02d","paid":%t}`,
			i, 5000+i%777, items, cities[i%len(cities)], 10+i%900, i%100, 1+i%28, i%3 != 0)
	}
	return out
}

func benchDecoder(b *testing.B, schema *iceberg.Schema, recs [][]byte, appendRows bool) {
	d, err := NewJSONDecoder(schema)
	if err != nil {
		b.Fatal(err)
	}
	rb := array.NewRecordBuilder(memory.NewGoAllocator(), d.ArrowSchema())
	defer rb.Release()
	size := 0
	for _, r := range recs {
		size += len(r)
	}
	meta := RecordMeta{Topic: "clicks", Partition: 3, Timestamp: time.Unix(1_800_000_000, 0)}
	// Fill the scratch buffers once so that the measurement shows the steady state.
	for _, r := range recs {
		if err := d.Parse(r, meta); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(size / len(recs)))
	b.ReportAllocs()
	b.ResetTimer()
	rows := 0
	for i := 0; i < b.N; i++ {
		meta.Offset = int64(i)
		if err := d.Parse(recs[i%len(recs)], meta); err != nil {
			b.Fatal(err)
		}
		if appendRows {
			// What the caller does between the two phases: route on a cell.
			_ = d.Cell(0)
			d.Append(rb)
			// Flush like a writer would, so builders stay at a realistic size; the builders'
			// own buffer growth is amortized over the batch.
			if rows++; rows == 16384 {
				rb.NewRecordBatch().Release()
				rows = 0
			}
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkJSONDecoder measures the ~200-byte, 10-column clickstream record the node is sized for.
func BenchmarkJSONDecoder(b *testing.B) {
	recs := clickRecords(4096)
	b.Run("parse", func(b *testing.B) { benchDecoder(b, clickSchema(), recs, false) })
	b.Run("parse+append", func(b *testing.B) { benchDecoder(b, clickSchema(), recs, true) })
}

// BenchmarkJSONDecoderOrders measures an orders-like nested record.
func BenchmarkJSONDecoderOrders(b *testing.B) {
	recs := orderRecords(4096)
	b.Run("parse", func(b *testing.B) { benchDecoder(b, orderSchema(), recs, false) })
	b.Run("parse+append", func(b *testing.B) { benchDecoder(b, orderSchema(), recs, true) })
}
