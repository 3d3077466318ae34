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
// Invariants the rest of floe (and its tests) rely on:
//
//   - Determinism: for a given Kind, Config.Seed and sequence of clock
//     readings, a Generator emits byte-identical records.
//   - Uniqueness: the id field (event_id / order_id) is 16 lowercase hex
//     digits and never repeats within one Generator: it is a bijective mix
//     of a per-generator offset plus a counter. Generators with different
//     seeds draw from effectively disjoint ranges; give each goroutine its
//     own seed.
//   - Every valid record decodes into Schema(kind): all schema fields are
//     present with the declared type, timestamps are RFC 3339 in UTC with
//     milliseconds, decimals carry exactly their scale, and an order's total
//     is the exact sum of qty*price of its items.
//   - Every record reported as malformed is rejected by a strict decoder
//     (unparsable JSON, a missing required field, or a type mismatch). Where
//     the record still contains its id, the id is the same unique id a valid
//     record would have carried, so dead-lettered records can be traced.
//
// The hot path (Generator.Next) formats JSON with append-style code and
// does not allocate, because bench needs several million records per second
// per core from it.
package gen
