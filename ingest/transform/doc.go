// Package transform changes a pipeline's records between decoding and
// writing: a filter, computed columns, renamed and dropped ones, all
// configured as CEL expressions over the columns of the pipeline's declared
// schema, dedup by key within a horizon, and event-time windows over the
// result (docs/transforms.md is the user's guide). Packages window and
// dedup, below it, hold the machinery that knows nothing of Arrow, Iceberg
// or Kafka.
//
// # Compile once, run per worker
//
// Compile checks a Config against the input schema (the declared columns
// plus the Kafka metadata columns) and returns an immutable Program: each
// expression parsed, type-checked and planned, the output columns in order
// (kept input columns, then computed ones). Everything that can be known
// before a record arrives is a configuration problem here, reported by
// field relative to the transform section, so that a wrong expression
// stops the pipeline at start with its path rather than failing records.
// Program.OutputSchema is the table's schema with fresh field ids.
//
// Each worker binds the Program to its decoder and its table with
// NewRunner. The table must have every output column (by name and type);
// columns it has beyond the output are written null. Per record: the
// decoder parses into its scratch row, Runner.Eval runs the filter and
// computes the computed columns (into cells of their own, with an arena for
// their bytes), Runner.Cell exposes the table row column by column for the
// partitioner, and Runner.Append writes the row: pass-through columns are
// copied from the decoder's scratch row by a decode.Projector (nested
// columns included, straight to their builders), computed ones appended
// by type.
//
// # What expressions see
//
// An activation resolves a variable name to its input column and converts
// the decoder's cell to a CEL value only when an expression reads it.
// Optional primitive columns are declared with CEL's nullable types, so
// `x == null` type-checks; struct, list and map columns are not declared
// (a later version can expose them from the decoder's tape). Dates are
// timestamps at midnight UTC, decimals doubles.
//
// # Windows
//
// With a window (windows.go), the Program's rows are not the table's: each
// worker's Windower (windower.go) folds the rows Eval kept into the
// segment's window.Partials (group key: the group columns' values in a
// reversible encoding; event time in microseconds; aggregate inputs), and at
// the flush the worker writes them as one file of PartialsSchema, with the
// segment's newest event time per partition in the segment's EventTimes.
// The table writer's Stage (stage.go, a commit.Stage) turns a commit's
// partials files into the commit's rows: it merges them into one Partials,
// applies that to its window.State, observes the watermarks, writes the
// changed windows as rows (group columns decoded from the key, the
// aggregates' results, events, revision, updated_at and the accumulators in
// ColState) and the keys of sessions merged away as a file of deleted keys,
// evicts, and checkpoints the state under <table>/state/ as the commit's
// floe.state. The state reads windows it no longer holds back from the
// table through tableStore, a scan filtered on the group and window_start,
// always against the table of the commit being applied (a tumbling or hopping
// window through the key index, UseIndex, when it can tell). Committed drops the
// partials files; Abandon drops the state, which is loaded again from the
// table's checkpoint (a table with rows and no checkpoint reads every window
// back). Program.GroupKey encodes a table row's group the way the Windower
// does, for floe verify.
//
// # Dedup
//
// A Runner computes a record's dedup key (DedupKey: the key expressions'
// values, hashed by dedup.Hasher) after its filter and columns; the worker
// checks it against the dedup.Partition of the record's Kafka partition
// (ingest's dedupOut) and, at every flush, writes the keys the segment kept
// as one file under DedupDir (DedupSchema: one binary cell). DedupStage,
// the table writer's part, takes those files out of the segment, lists them
// in the table's dedup.Manifest (merging and expiring files), writes the
// manifest, and returns its location for the commit's floe.dedup; it holds
// only the manifest. A run rebuilds its state with ReadDedupManifest and
// ReadDedupFile from the head's manifest and the files of the segments the
// ledger accepted after it. When a pipeline has both, DedupStage runs
// before the window Stage (commit.Stages), which then sees only partials.
//
// # Failure
//
// A runtime failure of an expression, a filter that is not a boolean, or a
// value a computed column cannot hold is a *decode.DecodeError naming the
// column: the worker routes the record to the dead-letter table like a
// record that does not decode. Evaluations are bounded by the expression and
// the record (CEL has no unbounded loops); CEL's cost tracking is off, as it
// costs more than the evaluation.
package transform
