// Package gen generates realistic JSON events (web clicks and shop orders)
// for `floe quickstart`, which trickles them into an in-process Kafka broker,
// and `floe bench`, which preloads millions of them as fast as it can.
//
// The events are shaped to exercise what makes ingestion hard in practice
// rather than to look pretty: skewed keys (a few hot users), out-of-order
// event times (jitter), late events that land in an older day partition, and
// a small fraction of malformed records that a strict JSON-to-Iceberg decoder
// must reject and route to a dead-letter path.
//
// Orders also change after they are placed, for a table keyed by order_id:
// about 30% of the events update a recent order (the last 4096 placed) with
// the same order_id, customer and items, its status moving forward (placed,
// paid, shipped, delivered, or cancelled), a fifth of them late corrections
// that change the items and total and carry the order's original event time;
// about 3% delete a recent order as a tombstone (Class Tombstone: a record
// with a nil value). Every event of an order has the order_id as its Kafka
// key, so one order stays in one partition, in order.
//
// Invariants the rest of floe (and its tests) rely on:
//
//   - Determinism: for a given Kind, Config.Seed and sequence of clock
//     readings, a Generator emits byte-identical records.
//   - Uniqueness: the id field (event_id / order_id) is 16 lowercase hex
//     digits and a new one never repeats within one Generator: it is a
//     bijective mix of a per-generator offset plus a counter. Generators
//     with different seeds draw from effectively disjoint ranges; give each
//     goroutine its own seed. Every click is new; an order's updates and its
//     tombstone repeat its order_id, and a deleted order is never updated
//     again (its id is never drawn anew).
//   - Every valid record decodes into Schema(kind): all schema fields are
//     present with the declared type, timestamps are RFC 3339 in UTC with
//     milliseconds, decimals carry exactly their scale, an order's total is
//     the exact sum of qty*price of its items, and its order_date is the
//     UTC date of the ts of the event that placed it.
//   - Every record reported as malformed is rejected by a strict decoder
//     (unparsable JSON, a missing required field, or a type mismatch). Where
//     the record still contains its id, the id is the same id a valid
//     record would have carried, so dead-lettered records can be traced.
//     A malformed order event never reaches the table, so the generator
//     forgets it: a malformed new order is never updated, and a malformed
//     update leaves the order as it was. MalformedRate is the share of the
//     records that have a value: a tombstone is never malformed.
//
// The hot path (Generator.Next) formats JSON with append-style code and
// does not allocate, because bench needs several million records per second
// per core from it.
package gen
