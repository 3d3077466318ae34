package decode

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// clickAvroSchema is the writer schema of the clickstream record of BenchmarkJSONDecoder, as a
// producer would register it; its Iceberg form is clickSchema().
const clickAvroSchema = `{"type":"record","name":"Click","namespace":"bench","fields":[
	{"name":"event_id","type":"string"},
	{"name":"user_id","type":["null","long"]},
	{"name":"session_id","type":["null","string"]},
	{"name":"ts","type":{"type":"long","logicalType":"timestamp-millis"}},
	{"name":"url","type":["null","string"]},
	{"name":"referrer","type":["null","string"]},
	{"name":"device","type":["null","string"]},
	{"name":"country","type":["null","string"]},
	{"name":"duration_ms","type":["null","int"]},
	{"name":"revenue","type":["null","double"]}]}`

type clickAvro struct {
	EventID    string    `avro:"event_id"`
	UserID     *int64    `avro:"user_id"`
	SessionID  *string   `avro:"session_id"`
	TS         time.Time `avro:"ts"`
	URL        *string   `avro:"url"`
	Referrer   *string   `avro:"referrer"`
	Device     *string   `avro:"device"`
	Country    *string   `avro:"country"`
	DurationMS *int32    `avro:"duration_ms"`
	Revenue    *float64  `avro:"revenue"`
}

// clickAvroRecords are the records of clickRecords(n), written in Avro by the reference encoder.
func clickAvroRecords(t testing.TB, n int) [][]byte {
	devices := []string{"mobile", "desktop", "tablet"}
	countries := []string{"DE", "US", "FR", "JP", "BR"}
	referrers := []string{"google.com", "t.co", "", "news.ycombinator.com"}
	base := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	out := make([][]byte, n)
	for i := range out {
		revenue, err := strconv.ParseFloat(fmt.Sprintf("%d.%02d", i%200, i%100), 64)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = avroEncode(t, clickAvroSchema, clickAvro{
			EventID:    fmt.Sprintf("%08x-5b7d-4e21-a3f0-6c8d9e0b%04x", i*7919, i%65536),
			UserID:     ptr(int64(1000000 + i*31)),
			SessionID:  ptr(fmt.Sprintf("%012x", i*104729)),
			TS:         base.Add(time.Duration(i) * 137 * time.Millisecond),
			URL:        ptr(fmt.Sprintf("/p/%d", i%50000)),
			Referrer:   ptr(referrers[i%len(referrers)]),
			Device:     ptr(devices[i%len(devices)]),
			Country:    ptr(countries[i%len(countries)]),
			DurationMS: ptr(int32(100 + i%5000)),
			Revenue:    &revenue,
		})
	}
	return out
}

func benchAvroDecoder(b *testing.B, recs [][]byte, appendRows bool) {
	ws, err := ParseAvroSchema(clickAvroSchema)
	if err != nil {
		b.Fatal(err)
	}
	d, err := NewAvroDecoder(clickSchema(), ws)
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
			_ = d.Cell(0)
			d.Append(rb)
			if rows++; rows == 16384 {
				rb.NewRecordBatch().Release()
				rows = 0
			}
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkAvroDecode measures the clickstream record of BenchmarkJSONDecoder (the same
// logical records) in Avro, written by the reference encoder.
func BenchmarkAvroDecode(b *testing.B) {
	recs := clickAvroRecords(b, 4096)
	b.Run("parse", func(b *testing.B) { benchAvroDecoder(b, recs, false) })
	b.Run("parse+append", func(b *testing.B) { benchAvroDecoder(b, recs, true) })
}
