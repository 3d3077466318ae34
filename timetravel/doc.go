// Package timetravel reads a table's past: Query reads it as of a snapshot
// id, a time, a tag or a branch (Resolve picks the snapshot), with a
// projection, a filter (package filter) and limits; Changes streams the rows
// each snapshot in a range inserted and deleted; WriteJSONRows and IPCBatch
// encode the rows for the API's two forms. It knows nothing of the API's
// transports: timetravel/api serves it.
//
// # Query
//
// Time travel reads the snapshot's own schema (as of an id, a time or a
// tag), or the current one (the current snapshot, a branch), as Iceberg
// defines it. The filter is pushed into iceberg-go's scan for pruning and
// applied again to every batch: iceberg-go v0.7.0 prunes row groups whose
// null counts fool its statistics evaluator, and manifests of string
// partitions whose summary has no bounds, so Query turns pruning off where
// either can bite (planningFilter, rowGroupsPrunable) and never trusts the
// scan alone to filter. Memory: iceberg-go returns batches in task order and
// holds every task read ahead whole, so a query reads two tasks at once and
// one at a time when a task is larger than scanBigTaskBytes.
//
// # Changes
//
// A snapshot's changes are the difference between the live rows of its
// parent and its own, a row being (data file, position): position deletes,
// deletion vectors and equality deletes (by sequence number) decide which
// rows are live, and only the files a snapshot touched are read. Compactions
// (operation replace) change no row and show nothing; a rollback, whose
// manifests are an older snapshot's, shows as the inserts and deletes that
// make the difference.
//
// # Errors
//
// Every error a caller can act on Is one of ErrInvalid, ErrNotFound,
// ErrExhausted, ErrConflict or ErrUnavailable, and its text says what to
// change; the API maps each to a gRPC code and an HTTP status.
package timetravel
