// Package commit makes floe's writes visible exactly once.
//
// A record is committed exactly when an Iceberg snapshot whose summary
// covers its offset becomes the table's current snapshot. Nothing else —
// Kafka group offsets, files in the object store, in-memory state — means
// committed. The Committer (committer.go) carries the protocol and its
// failure cases; offsets.go holds the summary format.
//
// Summary properties written on every snapshot (all strings):
//
//	floe.pipeline     the pipeline name; offsets are read only from its own snapshots
//	floe.offsets      {"<topic>":{"<partition>":<next offset>}}: the full map for every
//	                  source partition of the table, copied forward on every commit
//	floe.commit-id    a fresh UUID per attempt, to resolve unknown outcomes
//	floe.epoch        the committer's assignment epoch
//	floe.watermark-ms the newest Kafka timestamp covered (epoch millis)
//
// Every commit also moves the tag floe-<pipeline> to the snapshot it creates,
// in the same catalog commit, so that snapshot expiry keeps the pipeline's
// last offsets even when other engines' snapshots bury them.
//
// Invariants:
//
//  1. Offsets only grow: a segment is committed only on top of a snapshot whose
//     offsets end exactly where it starts (OffsetGapError otherwise).
//  2. At most one attempt per segment lands: every attempt asserts its base
//     snapshot, and after any failure the committer reloads and looks for all
//     of its commit ids in main's ancestry before trying again.
//  3. A segment already covered by the table's offsets is dropped, never
//     re-committed: that is how a restarted process treats work its crashed
//     predecessor committed.
//  4. A recorded start offset is never moved: RecordStart only fills the
//     partitions the table has none for, and a segment without a start
//     offset for a partition the table has is refused (ErrMissingFrom).
//  5. Offsets are never guessed: if main's history was cut before the
//     pipeline's last snapshot and its tag cannot stand in, reading them
//     fails with AncestryCutError instead of reporting "no offsets".
//
// Errors fall in two classes, never guessed: definitely failed (a conflict,
// or an offset gap) and outcome unknown (timeouts, 5xx). Both are resolved
// by reloading; see Classify.
package commit
