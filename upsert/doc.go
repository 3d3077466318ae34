// Package upsert holds what keyed tables need to turn an update into a
// delete of the row it replaces: a canonical encoding of key values
// (KeyEncoder) and an in-memory key index (Index) from encoded key to the
// data file and row position of the key's current row.
//
// # What the index is for
//
// A keyed table declares key columns (Iceberg identifier fields) and keeps
// the newest row per key. floe writes its own Parquet files, so a row's
// position in its file is its write order, known the moment it is written.
// For each row the table writer encodes the key and calls Put with the
// row's (file, position); if Put returns a previous location, the writer
// emits a position delete for it, in the same commit that adds the new row.
// A deleted key is Delete plus a position delete. Readers apply position
// deletes by file and position alone, without the join on key values that
// equality deletes cost them.
//
// A commit resolved while the index is being rebuilt (after a start or a
// failover), or with delete_mode: equality (no index at all), has no
// positions to delete: it deletes the older rows of its keys with an
// equality delete on the key columns instead (equality.go).
//
// Files change under the index in two ways. DropFile forgets a file that
// is gone, with every key whose row lived there. Remap carries keys through
// a compaction in one pass: each old (file, position) becomes the row's
// new (file, position), or disappears if the row did not survive. FileKeys
// tells how many of a file's rows are still current, which is what a
// compaction policy wants to know.
//
// # Layout
//
// The index is extendible hashing over small open-addressing tables. A
// 64-bit hash of the key (hash/maphash, seeded per Index) selects a segment
// by its top bits through a directory of 2^depth pointers. A segment is a
// power-of-two array of 16-byte slots, probed linearly from the hash's low
// bits, and an arena holding its keys back to back:
//
//	ref  8 bytes  tag (8 bits of the hash: 0 empty, 1 tombstone, 2..255 live)
//	              | key length (16 bits) | key offset in the arena (40 bits)
//	loc  8 bytes  file id (uint32, interned path) | row position (uint32)
//
// A probe compares tags first, so it reads the arena only for the key it
// finds (or, 1 time in 254, for a tag that matches by chance): an insert
// of a new key costs one cache miss, a lookup of an existing key two.
//
// At most 7/8 of a segment's slots are occupied (live or tombstone), so
// every probe ends at an empty slot. A full segment is rebuilt at twice the
// size until it reaches 2^14 slots (256 KiB); then it splits in two by the
// next hash bit, and the directory doubles if the segment was as deep as
// the directory. Growth touches one segment at a time: a split moves at
// most 14336 keys (about a millisecond), where a single table would rehash
// every key at once. Growth is geometric, so Put is amortized O(1).
//
// Delete leaves a tombstone, or an empty slot when no probe can run through
// it. A segment is rebuilt at the size its live keys need (dropping its
// tombstones and compacting its arena) when tombstones fill it or more than
// half of its arena is garbage. Segments never merge and the directory
// never shrinks.
//
// # Memory
//
// A key costs 16 bytes of slot divided by its segment's load, plus its
// bytes in the arena, plus arena slack. A segment's load runs from 7/16
// just after a split to 7/8 just before the next; with a sound hash all
// segments go through that cycle nearly together, so slots cost from 18.3
// to 36.6 bytes per key depending on where the key count falls. Arenas
// are allocated with 1/8 to spare when a segment is rebuilt and grow by
// append (about 1.25 times), so an 8-byte key costs 8 to 10 arena bytes.
// The directory, the segment headers and the file table come to well under
// a byte per key at a million keys. For 8-byte keys that is 26 to 47 bytes
// per key, against a budget of 48; a map[string]Loc costs about 64.
// MemoryBytes adds up the slot tables, arenas (by capacity), directory and
// file table; it matches the live heap within a percent.
//
// Measured (BenchmarkIndexScale: 8-byte keys inserted into an empty index,
// live heap growth after GC, then a Get of every key; a 2-core machine
// shared with other work, so times are pessimistic):
//
//	keys  heap B/key  MemoryBytes B/key  Put ns/key  Get ns/key  slowest Put
//	1e6   42.0        41.8               205         184         2.3 ms
//	1e7   35.3        35.3               306         345         12 ms
//
// map[string]Loc, for comparison: 63.7 heap bytes per key at 1e6. The
// slowest single Put includes whatever else stalled the goroutine (the
// scheduler, page faults on fresh memory); the index's own work in it is
// one segment split.
//
// # Why collisions cannot merge keys
//
// The hash only decides where to look: the segment, the first slot, and
// the tag that lets a probe skip slots without reading their keys. Whether
// a slot holds the key is decided by comparing the stored key's length and
// bytes with the key looked up, always. Two distinct keys with the same
// hash land in the same segment and the same probe run, in two slots, and
// stay two keys. No split can separate them; a segment whose split would
// leave more than 3/4 of its keys on one side does not split but grows
// past 2^14 slots instead, so even a hash that sends every key to one value
// is correct, only slow. The tests run the index under such hashes (one
// value for all keys, one value for half of them, 16 values, only the
// directory bits varying, one tag for all keys) against a map model.
//
// # Key encoding
//
// KeyEncoder turns a row's key columns into bytes such that two rows get
// equal bytes exactly when their key values are equal: per column a type
// tag, then a fixed-width value or a length-prefixed one, concatenated in
// key column order. Null key values are errors: Iceberg identifier fields
// are required. See KeyEncoder for the value encodings.
//
// # The resolver
//
// Resolver (resolver.go) is what the table writer of a keyed table uses:
// it owns an Index (or a Spilled), brings it to the table's current snapshot (a rebuild
// from the table in the background, or following a compaction by reading
// the compacted files' keys), and turns each commit's files into the
// deletes that keep one row per key. Its essay is at the top of
// resolver.go; what it does without the index, at the top of equality.go.
//
// # Beyond memory
//
// Spilled (spill.go) keeps an Index within a memory budget and moves the
// keys of the oldest files to a bbolt file, with a Bloom filter in front;
// its essay is at the top of spill.go. A store that kept every key in
// bbolt, one write transaction per commit, was measured first: 17 µs per
// random Put at 750k keys, in commits of 20,000, against 0.2-0.3 µs in
// memory. That is why the file is written only in sorted batches, behind
// the memory tier.
//
// # Not done yet
//
//   - Persistence. The index is rebuilt from the table when a writer
//     starts (a restart, a failover); commits meanwhile delete by
//     equality. A copy persisted beside the snapshot would shorten that.
//   - Concurrency. An Index belongs to one goroutine.
package upsert
