// Package ingest consumes Kafka partitions into Iceberg tables.
//
// Data flow of one pipeline (consume.go, poll.go, worker.go):
//
//	poller ──records of partition p──▶ worker[hash(p)] ──decode──▶ row ──▶ main output: partition buffer ──▶ Parquet writer
//	   │                                   │ bad record                                                      (fileio)
//	   │                                   ▼
//	   │                             dead-letter output: rows (raw bytes + reason)
//	   ▼
//	ticker ──flush──▶ every worker hands over, per output, its writers and the
//	                  offset range the output covers ──▶ delivery: close files
//	                  (in parallel), then a segment per output
//
// A pipeline writes to a list of outputs (Pipeline.Outputs: the main table
// first, then the dead-letter table), each a table with offsets of its own.
// Everything per output is a slice in that order: a worker's outputs (what
// each takes, its partition buffers, the rows and watermark of its open
// segment), each partition's progress per output (tpState: the output's
// floor, the range its open segment covers, the ranges it skipped), a
// flush's writers and segments, a batch's segments, the floors and the
// committers. An output's role sets its route: a record that decodes goes
// to the outputs of the decoded route (the main table), one that does not
// to those of the rejected route (the dead-letter table); every output that
// does not have a record's offset yet covers it, whether it takes a row of it
// or not. Adding an output kind is adding its role to Outputs, its route
// (routeOf, and how worker.write writes its rows) and how ensureTables makes
// its table; the loops over outputs stay as they are.
//
// Workers own disjoint sets of Kafka partitions, so a partition's records are
// decoded in order and a flush request, queued behind them, marks an exact
// offset boundary. A flush never waits for the catalog: the writers it hands
// over are closed and committed while the worker goes on with new files.
//
// Exactly-once (docs/exactly-once.md): each output's table keeps its own
// offsets. On start the pipeline seeks every partition to the lowest offset
// over its tables, or to the configured start if any table has none, and
// routes a record to an output only at or past that output's offset (its
// floor). A segment that only moves offsets (a dead-letter table on clean
// input) is carried forward and committed as an empty snapshot at most every
// OffsetsOnlyEvery, which bounds what a restart re-reads.
//
// Layout: pipeline.go holds the Pipeline type, its options, health and
// stats; prepare.go loads or creates the tables and records the start
// offsets; consume.go runs the consumer, the workers and the delivery of
// their seals; poll.go the poll loop, the dispatch to workers and consumer
// errors; worker.go decodes and writes a worker's partitions, routing rows
// with partitioner.go and bad records to deadletter.go's rows; source.go
// sets up the Kafka client and plans where each partition starts;
// assigned.go runs a pipeline on the partitions assigned to this node;
// format.go decodes the schema registry's formats (avro, protobuf), one
// decoder per writer schema, and ends a run whose writer schema needs the
// table's schema to change first (schema_evolution: add; the node applies
// the change through the leader's table writer, then consumes again).
//
// Decoding (package decode) is two-phase: Parse validates and converts a
// record into a scratch row, so a bad record appends nothing and goes to the
// dead-letter table with the decoder's message; Append then copies the row
// into the Arrow builder of the partition the row's values select.
//
// Any failure inside a pipeline (a file that cannot be written, an offset
// gap, a consumer error such as a refused authorization) restarts it from the
// tables' committed offsets: uncommitted work is consumed again, never
// half-kept; a schema registry that does not answer pauses it the same way,
// without a dead letter. Failures a restart cannot fix (a configuration error, a data
// file that cannot be produced from its rows) stop it. Records Kafka lost
// before they were committed follow the pipeline's on_data_loss policy.
package ingest
