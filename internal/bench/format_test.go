package bench

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/floelake/floe/ingest"
	"github.com/floelake/floe/ingest/decode"
	"github.com/floelake/floe/ingest/registry"
	"github.com/floelake/floe/internal/gen"
)

// TestClickCodecSameValues: the Avro and Protobuf click records, decoded
// into the click schema, are the rows their JSON records decode into.
func TestClickCodecSameValues(t *testing.T) {
	const n = 5000
	sch := gen.Schema(gen.Clicks)
	g, err := gen.New(gen.Clicks, gen.Config{Seed: 1, MalformedRate: -1})
	if err != nil {
		t.Fatal(err)
	}
	recs := make([][]byte, n)
	for i := range recs {
		v, _, _ := g.Next(nil)
		recs[i] = v
	}
	rows := func(d decode.Decoder, values [][]byte, payload func([]byte) []byte) arrow.RecordBatch {
		t.Helper()
		b := array.NewRecordBuilder(memory.NewGoAllocator(), d.ArrowSchema())
		defer b.Release()
		for i, v := range values {
			if err := d.Parse(payload(v), decode.RecordMeta{Topic: "clicks", Offset: int64(i)}); err != nil {
				t.Fatalf("record %d: %v", i, err)
			}
			d.Append(b)
		}
		return b.NewRecordBatch()
	}
	jd, err := decode.NewJSONDecoder(sch)
	if err != nil {
		t.Fatal(err)
	}
	want := rows(jd, recs, func(v []byte) []byte { return v })
	defer want.Release()

	avroSchema, err := decode.ParseAvroSchema(clickAvroSchema)
	if err != nil {
		t.Fatal(err)
	}
	ad, err := decode.NewAvroDecoder(sch, avroSchema)
	if err != nil {
		t.Fatal(err)
	}
	fd, err := decode.ProtoFileFromSource("click.proto", clickProtoSchema, nil)
	if err != nil {
		t.Fatal(err)
	}
	md, err := decode.ProtoMessage(fd, []int{0})
	if err != nil {
		t.Fatal(err)
	}
	pd, err := decode.NewProtoDecoder(sch, md)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		format string
		dec    decode.Decoder
	}{{ingest.FormatAvro, ad}, {ingest.FormatProtobuf, pd}} {
		c, err := newClickCodec(tc.format, 42)
		if err != nil {
			t.Fatal(err)
		}
		encoded := make([][]byte, n)
		size := 0
		for i, js := range recs {
			if encoded[i], err = c.append(nil, js); err != nil {
				t.Fatalf("%s: record %d: %v", tc.format, i, err)
			}
			size += len(encoded[i])
		}
		got := rows(tc.dec, encoded, func(v []byte) []byte {
			id, rest, err := registry.Header(v)
			if err != nil || id != 42 {
				t.Fatalf("%s: header: id %d, %v", tc.format, id, err)
			}
			if tc.format == ingest.FormatProtobuf {
				idx, msg, err := decode.ReadMessageIndexes(rest)
				if err != nil || len(idx) != 1 || idx[0] != 0 {
					t.Fatalf("protobuf: message indexes %v, %v", idx, err)
				}
				rest = msg
			}
			return rest
		})
		if !array.RecordEqual(want, got) {
			t.Errorf("%s: the rows differ from the JSON records'", tc.format)
		}
		got.Release()
		t.Logf("%s: %d bytes a record", tc.format, size/n)
	}
}

// TestRunFormatsQuick runs `floe bench --format json,avro,protobuf` on 20k
// records with this test binary as the child: every format's children
// commit every record, and its figures are printed and non-zero.
func TestRunFormatsQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	o := DefaultOptions()
	o.Records, o.Partitions = 20_000, 4
	o.FreshnessRate, o.FreshnessDuration, o.CommitInterval = 2_000, 2*time.Second, 250*time.Millisecond
	o.DataDir, o.Exe = t.TempDir(), exe
	o.Formats = []string{"json", "avro", "protobuf"}
	var out bytes.Buffer
	if err := Run(context.Background(), o, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	got := out.String()
	t.Log("\n" + got)
	for _, format := range []string{"avro", "protobuf"} {
		m := regexp.MustCompile(`\(c\) ` + format + ` +floe end to end, committed +(\d+) records/s  \((\d+) records, `).FindStringSubmatch(got)
		if m == nil {
			t.Errorf("the report lacks the (c) line of %s", format)
			continue
		}
		if n, _ := strconv.Atoi(m[2]); n != o.Records {
			t.Errorf("%s: %d records committed, want %d", format, n, o.Records)
		}
		if !regexp.MustCompile(`\(b\) ` + format + ` +raw decode \+ Parquet write +[1-9]\d* records/s`).MatchString(got) {
			t.Errorf("the report lacks a non-zero (b) line of %s", format)
		}
	}
	for _, format := range []string{"json", "avro", "protobuf"} {
		m := regexp.MustCompile(`(?m)^\| ` + format + ` \| ([0-9]+) \| ([0-9.]+)k records/s[^|]* \| ([0-9.]+)k records/s[^|]* \| (?:[0-9.]+k records/s[^|]*|n/a) \| ([0-9]+) MiB \|$`).FindStringSubmatch(got)
		if m == nil {
			t.Errorf("the summary lacks the row of %s", format)
			continue
		}
		for i, name := range []string{"bytes/record", "(b)", "(c)", "peak RSS"} {
			if v, _ := strconv.ParseFloat(m[i+1], 64); v <= 0 {
				t.Errorf("%s: %s is %s", format, name, m[i+1])
			}
		}
	}
}
