// Package decode turns Kafka record values into rows of an Iceberg table's
// Arrow schema. It holds the JSON decoder (JSONDecoder), schema inference
// from sample JSON records (InferSchema), and the decoders of the schema
// registry's formats: AvroDecoder (avro.go; writer schemas parsed and
// mapped to Iceberg by avro_schema.go) and ProtoDecoder (protobuf.go;
// messages mapped by protobuf_schema.go, .proto sources compiled by
// protobuf_source.go). Each is compiled once per writer schema and table
// schema, matching columns by name, with the same two-phase shape and the
// same rules; all three are Decoders (decoder.go). The registry's framing
// (magic byte, schema id) is package ingest/registry's; the pipeline keeps
// one decoder per writer schema id (ingest/format.go). AvroJSON rewrites
// Avro records as JSON, for Debezium's envelope in Avro.
//
// # Two phases
//
// Parse validates and converts one record into the decoder's scratch row and
// appends nothing anywhere; Cell then exposes the row's top-level columns (for
// choosing the row's partition); Append copies the row into the Arrow
// RecordBuilder the caller picked. A record that fails Parse leaves no trace
// in any builder, and the last good row stays intact.
//
// The JSONDecoder's row is also what a transform reads (a Projector copies
// its columns elsewhere). The Avro and protobuf decoders made with
// NewAvroDecoderInto and NewProtoDecoderInto leave each row they accept in
// a JSONDecoder of the same table too, which the decoders of every writer
// schema of a pipeline share: the transform reads one row, whatever the
// record's format and writer schema.
//
// # Strict, never silently lossy
//
// A record either converts exactly into the schema or is refused with a
// *DecodeError naming the field and the reason, written for whoever produced
// the record: the caller stores it with the raw bytes in the dead-letter
// table. Nothing is coerced or guessed: the input must be JSON as RFC 8259
// defines it (checked before fastjson, which accepts more), with no duplicate
// keys; a required field must be present and not null; an integer must be
// integral and fit its column; a decimal must fit its precision and scale
// without rounding; strings must be valid UTF-8; base64 must be canonical; a
// fixed must have its exact length; dates, times and timestamps must be in one
// of the accepted spellings and in range. Fields the schema does not have are
// ignored. The only precision a value can lose is what its column's type
// defines: a number given for a float column is rounded to the nearest float,
// and fractional seconds beyond a time or timestamp column's unit are
// truncated.
//
// The Kafka metadata columns (_kafka_topic, _kafka_partition, _kafka_offset,
// _kafka_timestamp, _kafka_key) are filled from the record's RecordMeta, never
// from its JSON, and must have their fixed types.
//
// # Allocations
//
// A JSONDecoder is used by one goroutine and reuses its scratch space: in the
// steady state, Parse of a valid record makes no allocations (except for the
// rarer ISO 8601 timestamp spellings, which fall back to time.Parse), and
// neither does Append apart from the growth of the Arrow builders' own
// buffers (see the benchmarks). Refusing a record allocates its DecodeError.
//
// # Schema inference
//
// InferSchema derives a schema from sample records when the configuration
// declares none. It does not guess either: samples that disagree on a field's
// type are an error asking for a declared schema.
package decode
