package ingest

import "github.com/floelake/floe/commit"

// Metrics observes a pipeline's consumption. It includes commit.Metrics,
// which the committers a pipeline runs (to create its tables and record
// where partitions start) report to. Implementations must be safe for
// concurrent use and return quickly: they are called on the consumption
// path. A nil Options.Metrics reports nothing. internal/metrics.Set
// implements it (floe_ingest_*).
type Metrics interface {
	commit.Metrics
	// RecordsConsumed is called after every batch of records a worker
	// takes: records in all, deadLetters of them routed to the dead-letter
	// table, filtered of them left out by the transform's filter,
	// duplicates of them dropped by its dedup, bytes their keys and values
	// weigh.
	RecordsConsumed(pipeline string, records, deadLetters, filtered, duplicates, bytes int64)
	// LateEvents counts the events of a windowed table later than its
	// max_lateness (they went to the dead-letter table).
	LateEvents(table string, n int64)
	// ConsumerError is called for every error consuming from Kafka, by
	// kind (authorization, authentication, unknown_topic,
	// offset_out_of_range, data_loss, transient, other), retried or not.
	ConsumerError(pipeline, kind string)
	// OffsetsSkipped is called when a partition moves past n offsets
	// without their records, because Kafka no longer has them
	// (on_data_loss: skip).
	OffsetsSkipped(topic string, partition int32, n int64)
	// RegistryError is called for every record whose writer schema could
	// not be used, by kind: not_framed, unknown_schema, bad_schema,
	// incompatible (dead letters), unreachable and unknown_schema_wait (the
	// run pauses), auth (the pipeline stops).
	RegistryError(pipeline, kind string)
	// SchemaChanged is called when n changes were applied to a table's
	// schema to fit a writer schema.
	SchemaChanged(table string, n int)
	// FileWriteFailed is called when a seal's data files could not be
	// written out.
	FileWriteFailed(pipeline string)
}

// NopMetrics reports nothing. It stands in for a nil Options.Metrics.
type NopMetrics struct{ commit.NopMetrics }

var _ Metrics = NopMetrics{}

func (NopMetrics) RecordsConsumed(string, int64, int64, int64, int64, int64) {}

// LateEvents implements Metrics.
func (NopMetrics) LateEvents(string, int64)            {}
func (NopMetrics) RegistryError(string, string)        {}
func (NopMetrics) SchemaChanged(string, int)           {}
func (NopMetrics) ConsumerError(string, string)        {}
func (NopMetrics) OffsetsSkipped(string, int32, int64) {}
func (NopMetrics) FileWriteFailed(string)              {}
