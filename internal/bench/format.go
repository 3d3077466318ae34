package bench

// `floe bench --format avro,protobuf` measures, in the same run as the JSON
// figures and on the same click records (seed 1), the record formats read
// through the schema registry: each JSON click record is re-encoded in the
// registry wire format (byte 0, the writer schema's id, then the Avro datum,
// or the message indexes and the Protobuf message), carrying the same
// values. For each format it measures
//
//	(b) raw decode + Parquet write: the format's decoder, as a pipeline's
//	    workers use it, from memory, no Kafka, no commit;
//	(c) floe end to end, to committed snapshots, from a preloaded topic,
//	    and the peak RSS of that floe process;
//
// both into the declared click schema (schema_evolution: strict: records
// decode into it by column name, and the table stays as declared). The
// schema registry (internal/testutil/registry) runs in the benchmark
// process, like the broker; the children fetch the writer schemas from it
// as any floe node would.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/twmb/avro"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/valyala/fastjson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/floelake/floe/ingest"
	"github.com/floelake/floe/ingest/decode"
	"github.com/floelake/floe/ingest/registry"
	"github.com/floelake/floe/internal/gen"
	testregistry "github.com/floelake/floe/internal/testutil/registry"
)

// clickAvroSchema is the writer schema of the click records in Avro: the
// columns of gen.Schema(gen.Clicks), the optional ones as unions with null.
const clickAvroSchema = `{"type":"record","name":"Click","namespace":"floe.bench","fields":[
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

// clickProtoSchema is the writer schema of the click records in Protobuf,
// as a producer would register it (proto3: an empty string and a zero are
// not on the wire, and decode as "" and 0).
const clickProtoSchema = `syntax = "proto3";
package floe.bench;

import "google/protobuf/timestamp.proto";

message Click {
  string event_id = 1;
  int64 user_id = 2;
  string session_id = 3;
  google.protobuf.Timestamp ts = 4;
  string url = 5;
  string referrer = 6;
  string device = 7;
  string country = 8;
  int32 duration_ms = 9;
  double revenue = 10;
}
`

// registryFormats checks the --format list and returns the formats other
// than json, each once, in the order given.
func registryFormats(formats []string) ([]string, error) {
	var out []string
	for _, f := range formats {
		switch f = strings.TrimSpace(f); f {
		case ingest.FormatJSON, "":
		case ingest.FormatAvro, ingest.FormatProtobuf:
			if !slices.Contains(out, f) {
				out = append(out, f)
			}
		default:
			return nil, fmt.Errorf("bench: --format %q: must be %s, %s or %s", f, ingest.FormatJSON, ingest.FormatAvro, ingest.FormatProtobuf)
		}
	}
	return out, nil
}

// formatArgs are a child's record format: values in the registry wire
// format of Format under writer schema SchemaID of the registry at
// RegistryURL.
type formatArgs struct {
	Format      string `json:"format"`
	RegistryURL string `json:"registry_url"`
	SchemaID    uint32 `json:"schema_id"`
}

// pipeline makes p read the format into the declared click schema.
func (f *formatArgs) pipeline(p *ingest.PipelineConfig) {
	p.Format = f.Format
	p.Registry = registry.Config{URLs: []string{f.RegistryURL}}
	p.Schema = clickColumns()
	p.SchemaEvolution = ingest.EvolutionStrict
}

// formatResult is what one record format measured.
type formatResult struct {
	format string
	// bytes and jsonBytes are the mean size of a record value (the
	// header included) and of the JSON record it was made of.
	bytes, jsonBytes           float64
	writeRate, e2eRate, steady float64
	peakRSS                    int64
}

// runFormats measures formats after the JSON phases of Run and prints each
// format's figures as they come, then a table beside json's (jsonRes): its (b),
// its (c) and the peak RSS of its (c) child (jsonRSS).
func runFormats(ctx context.Context, exe string, brokers []string, dir string, o Options, formats []string,
	jsonRes Result, jsonRSS int64, out io.Writer) error {
	reg, err := testregistry.New()
	if err != nil {
		return fmt.Errorf("bench: schema registry: %w", err)
	}
	defer reg.Close()
	fmt.Fprintf(out, "\nrecord formats: the same click records (seed 1) in the schema registry wire format, decoded into the declared click schema (registry at %s, in this process; load average %s)\n",
		reg.URL(), loadAvg())
	var results []formatResult
	var jsonBytes float64
	for _, format := range formats {
		r, err := runFormat(ctx, exe, brokers, dir, o, reg, format, out)
		if err != nil {
			return fmt.Errorf("bench: format %s: %w", format, err)
		}
		results = append(results, r)
		jsonBytes = r.jsonBytes
	}
	fmt.Fprintf(out, "\n| format | bytes/record | (b) decode + Parquet write | (c) end to end, committed | (c) steady state | peak RSS of (c) |\n|---|---|---|---|---|---|\n")
	// rate prints v, and its ratio to json's base (0 for json's own row).
	rate := func(v, base float64) string {
		switch {
		case v <= 0:
			return "n/a"
		case base <= 0:
			return fmt.Sprintf("%.0fk records/s", v/1000)
		}
		return fmt.Sprintf("%.0fk records/s (%.2f× json)", v/1000, v/base)
	}
	fmt.Fprintf(out, "| json | %.0f | %s | %s | %s | %.0f MiB |\n",
		jsonBytes, rate(jsonRes.WriteRate, 0), rate(jsonRes.EndToEndRate, 0), rate(jsonRes.SteadyRate, 0), float64(jsonRSS)/(1<<20))
	for _, r := range results {
		fmt.Fprintf(out, "| %s | %.0f | %s | %s | %s | %.0f MiB |\n",
			r.format, r.bytes, rate(r.writeRate, jsonRes.WriteRate), rate(r.e2eRate, jsonRes.EndToEndRate),
			rate(r.steady, jsonRes.SteadyRate), float64(r.peakRSS)/(1<<20))
	}
	return nil
}

// runFormat registers format's writer schema, preloads a topic of its own
// with the click records in it, and runs (b) and (c) on them.
func runFormat(ctx context.Context, exe string, brokers []string, dir string, o Options,
	reg *testregistry.Server, format string, out io.Writer) (formatResult, error) {
	r := formatResult{format: format}
	topic := "bench_" + format
	sch := testregistry.Schema{Schema: clickAvroSchema}
	if format == ingest.FormatProtobuf {
		sch = testregistry.Schema{Schema: clickProtoSchema, SchemaType: "PROTOBUF"}
	}
	id, err := reg.Register(topic+"-value", sch)
	if err != nil {
		return r, err
	}
	fa := &formatArgs{Format: format, RegistryURL: reg.URL(), SchemaID: uint32(id)}

	t0 := time.Now()
	defer deleteTopic(context.WithoutCancel(ctx), brokers[0], topic)
	jsonBytes, bytes, err := preloadFormat(ctx, brokers, topic, o.Partitions, o.Records, fa)
	if err != nil {
		return r, fmt.Errorf("preload: %w", err)
	}
	r.jsonBytes, r.bytes = float64(jsonBytes)/float64(o.Records), float64(bytes)/float64(o.Records)
	fmt.Fprintf(out, "%s: preloaded in %s (%.0f bytes a record, %.0f as JSON)\n", format, time.Since(t0).Round(time.Millisecond), r.bytes, r.jsonBytes)

	off, _, err := runChild(ctx, exe, childArgs{Mode: "offline-format", Records: int64(o.Records),
		DataDir: filepath.Join(dir, "offline-"+format), Format: fa})
	if err != nil {
		return r, fmt.Errorf("(b): %w", err)
	}
	r.writeRate = float64(off.Records) / off.Elapsed.Seconds()
	fmt.Fprintf(out, "(b) %-8s raw decode + Parquet write %10.0f records/s  (%d files)\n", format, r.writeRate, off.Files)

	e2e, rss, err := runChild(ctx, exe, childArgs{Mode: "e2e", Brokers: brokers, Topic: topic, Records: int64(o.Records),
		DataDir: filepath.Join(dir, "e2e-"+format), CommitInterval: o.CommitInterval, Format: fa})
	if err != nil {
		return r, fmt.Errorf("(c): %w", err)
	}
	r.peakRSS = rss
	r.e2eRate = float64(e2e.Records) / e2e.Elapsed.Seconds()
	steady := ""
	if e2e.Steady > 0 {
		r.steady = float64(e2e.SteadyRecords) / e2e.Steady.Seconds()
		steady = fmt.Sprintf("; steady state %.0f records/s", r.steady)
	}
	fmt.Fprintf(out, "(c) %-8s floe end to end, committed %10.0f records/s  (%d records, %d snapshots%s; peak RSS %.0f MiB)\n",
		format, r.e2eRate, e2e.Records, e2e.Commits, steady, float64(rss)/(1<<20))
	return r, nil
}

// preloadFormat creates topic and produces n click events (seed 1, none
// malformed, keyed as gen.Produce keys them) to it, each re-encoded in
// f's format. It returns the bytes of the JSON records and of the records
// produced.
func preloadFormat(ctx context.Context, brokers []string, topic string, partitions, n int, f *formatArgs) (jsonBytes, bytes int64, err error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ProducerLinger(5*time.Millisecond),
		kgo.ProducerBatchMaxBytes(1<<20), kgo.MaxBufferedRecords(100_000))
	if err != nil {
		return 0, 0, err
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, int32(partitions), 1, nil, topic); err != nil {
		return 0, 0, fmt.Errorf("create topic %s: %w", topic, err)
	}
	g, err := gen.New(gen.Clicks, gen.Config{Seed: 1, MalformedRate: -1})
	if err != nil {
		return 0, 0, err
	}
	c, err := newClickCodec(f.Format, f.SchemaID)
	if err != nil {
		return 0, 0, err
	}
	var firstErr atomic.Pointer[error]
	done := func(_ *kgo.Record, err error) {
		if err != nil {
			firstErr.CompareAndSwap(nil, &err)
		}
	}
	var slab, js []byte
	for i := 0; i < n; i++ {
		if i%64 == 0 && (ctx.Err() != nil || firstErr.Load() != nil) {
			break
		}
		if cap(slab)-len(slab) < 2048 {
			slab = make([]byte, 0, 256<<10)
		}
		var key []byte
		js, key, _ = g.Next(js[:0])
		jsonBytes += int64(len(js))
		off := len(slab)
		if slab, err = c.append(slab, js); err != nil {
			return 0, 0, err
		}
		vEnd := len(slab)
		slab = append(slab, key...)
		bytes += int64(vEnd - off)
		cl.Produce(ctx, &kgo.Record{Topic: topic, Value: slab[off:vEnd:vEnd], Key: slab[vEnd:len(slab):len(slab)]}, done)
	}
	if err := cl.Flush(ctx); err != nil {
		return 0, 0, err
	}
	if p := firstErr.Load(); p != nil {
		return 0, 0, *p
	}
	return jsonBytes, bytes, ctx.Err()
}

// writeOfflineFormat is writeOffline for a's format: the same click
// records, re-encoded, decoded by the format's decoder as a pipeline's
// workers use it (writer schema from the registry). Records that became
// dead letters are an error: the figure would not be a decode.
func writeOfflineFormat(ctx context.Context, a childArgs) (childResult, error) {
	f := a.Format
	g, err := gen.New(gen.Clicks, gen.Config{Seed: 1, MalformedRate: -1})
	if err != nil {
		return childResult{}, err
	}
	c, err := newClickCodec(f.Format, f.SchemaID)
	if err != nil {
		return childResult{}, err
	}
	values := make([][]byte, 100_000)
	var js []byte
	for i := range values {
		js, _, _ = g.Next(js[:0])
		if values[i], err = c.append(nil, js); err != nil {
			return childResult{}, err
		}
	}
	mainInfo, err := localInfo(filepath.Join(a.DataDir, "clicks"), gen.Schema(gen.Clicks), []string{gen.PartitionSpecSQL(gen.Clicks)})
	if err != nil {
		return childResult{}, err
	}
	dlqDir := filepath.Join(a.DataDir, "dlq")
	dlqInfo, err := localInfo(dlqDir, ingest.DeadLetterSchema(), nil)
	if err != nil {
		return childResult{}, err
	}
	var cfg ingest.PipelineConfig
	cfg.Name = "offline"
	f.pipeline(&cfg)
	start := time.Now()
	files, err := ingest.WriteOfflineFormat(ctx, cfg, mainInfo, dlqInfo, values, int(a.Records), runtime.GOMAXPROCS(0))
	if err != nil {
		return childResult{}, err
	}
	elapsed := time.Since(start)
	var dead []string
	_ = filepath.WalkDir(dlqDir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			dead = append(dead, path)
		}
		return nil
	})
	if len(dead) > 0 {
		return childResult{}, fmt.Errorf("records were written as dead letters (%s)", strings.Join(dead, ", "))
	}
	return childResult{Records: a.Records, Files: files, Elapsed: elapsed}, nil
}

// clickCodec re-encodes JSON click records (gen.Clicks, well formed) in
// the registry wire format of Avro or Protobuf, with the same values. It
// is used by one goroutine.
type clickCodec struct {
	format string
	id     uint32
	p      fastjson.Parser
	num    []byte

	avro  *avro.Schema
	click clickAvro

	msg            *dynamicpb.Message
	fields         [10]protoreflect.FieldDescriptor
	seconds, nanos protoreflect.FieldDescriptor
	marshal        proto.MarshalOptions
}

// clickAvro is a click record as the Avro encoder takes it.
type clickAvro struct {
	EventID    string    `avro:"event_id"`
	UserID     int64     `avro:"user_id"`
	SessionID  string    `avro:"session_id"`
	TS         time.Time `avro:"ts"`
	URL        string    `avro:"url"`
	Referrer   string    `avro:"referrer"`
	Device     string    `avro:"device"`
	Country    string    `avro:"country"`
	DurationMS int32     `avro:"duration_ms"`
	Revenue    float64   `avro:"revenue"`
}

// clickFields are the click record's fields in the order of the schemas.
var clickFields = [10]string{"event_id", "user_id", "session_id", "ts", "url", "referrer", "device", "country", "duration_ms", "revenue"}

func newClickCodec(format string, id uint32) (*clickCodec, error) {
	c := &clickCodec{format: format, id: id}
	switch format {
	case ingest.FormatAvro:
		s, err := avro.Parse(clickAvroSchema)
		if err != nil {
			return nil, err
		}
		c.avro = s
	case ingest.FormatProtobuf:
		fd, err := decode.ProtoFileFromSource("click.proto", clickProtoSchema, nil)
		if err != nil {
			return nil, err
		}
		md := fd.Messages().ByName("Click")
		if md == nil {
			return nil, errors.New("click.proto has no message Click")
		}
		c.msg = dynamicpb.NewMessage(md)
		for i, name := range clickFields {
			if c.fields[i] = md.Fields().ByName(protoreflect.Name(name)); c.fields[i] == nil {
				return nil, fmt.Errorf("click.proto: Click has no field %s", name)
			}
		}
		ts := c.fields[3].Message()
		c.seconds, c.nanos = ts.Fields().ByName("seconds"), ts.Fields().ByName("nanos")
	default:
		return nil, fmt.Errorf("no click codec for format %q", format)
	}
	return c, nil
}

// append appends the click record js in the codec's format to dst.
func (c *clickCodec) append(dst, js []byte) ([]byte, error) {
	v, err := c.p.ParseBytes(js)
	if err != nil {
		return dst, err
	}
	str := func(name string) (string, error) {
		f := v.Get(name)
		if f == nil || f.Type() != fastjson.TypeString {
			return "", fmt.Errorf("click record without a string %s: %s", name, js)
		}
		return string(f.GetStringBytes()), nil
	}
	// num parses a number with strconv, as the JSON decoder does.
	num := func(name string, bits int, float bool) (int64, float64, error) {
		f := v.Get(name)
		if f == nil || f.Type() != fastjson.TypeNumber {
			return 0, 0, fmt.Errorf("click record without a number %s: %s", name, js)
		}
		c.num = f.MarshalTo(c.num[:0])
		if float {
			x, err := strconv.ParseFloat(string(c.num), bits)
			return 0, x, err
		}
		x, err := strconv.ParseInt(string(c.num), 10, bits)
		return x, 0, err
	}
	var r clickAvro
	if r.EventID, err = str("event_id"); err != nil {
		return dst, err
	}
	if r.UserID, _, err = num("user_id", 64, false); err != nil {
		return dst, err
	}
	if r.SessionID, err = str("session_id"); err != nil {
		return dst, err
	}
	ts, err := str("ts")
	if err != nil {
		return dst, err
	}
	if r.TS, err = time.Parse(time.RFC3339Nano, ts); err != nil {
		return dst, err
	}
	for _, s := range []struct {
		name string
		to   *string
	}{{"url", &r.URL}, {"referrer", &r.Referrer}, {"device", &r.Device}, {"country", &r.Country}} {
		if *s.to, err = str(s.name); err != nil {
			return dst, err
		}
	}
	d, _, err := num("duration_ms", 32, false)
	if err != nil {
		return dst, err
	}
	r.DurationMS = int32(d)
	if _, r.Revenue, err = num("revenue", 64, true); err != nil {
		return dst, err
	}

	dst = registry.AppendHeader(dst, c.id)
	if c.avro != nil {
		c.click = r
		return c.avro.AppendEncode(dst, &c.click)
	}
	// The message indexes: [0] (the file's first message) is one zero byte.
	dst = append(dst, 0)
	m := c.msg
	m.Set(c.fields[0], protoreflect.ValueOfString(r.EventID))
	m.Set(c.fields[1], protoreflect.ValueOfInt64(r.UserID))
	m.Set(c.fields[2], protoreflect.ValueOfString(r.SessionID))
	t := m.Mutable(c.fields[3]).Message()
	t.Set(c.seconds, protoreflect.ValueOfInt64(r.TS.Unix()))
	t.Set(c.nanos, protoreflect.ValueOfInt32(int32(r.TS.Nanosecond())))
	m.Set(c.fields[4], protoreflect.ValueOfString(r.URL))
	m.Set(c.fields[5], protoreflect.ValueOfString(r.Referrer))
	m.Set(c.fields[6], protoreflect.ValueOfString(r.Device))
	m.Set(c.fields[7], protoreflect.ValueOfString(r.Country))
	m.Set(c.fields[8], protoreflect.ValueOfInt32(r.DurationMS))
	m.Set(c.fields[9], protoreflect.ValueOfFloat64(r.Revenue))
	return c.marshal.MarshalAppend(dst, m)
}
