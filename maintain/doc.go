// Package maintain keeps the tables floe writes healthy while it writes
// them: it compacts small files, thins the snapshot history in tiers, and
// removes files nothing references. One Maintainer runs beside each table
// writer (commit.TableWriter) on the raft leader, for as long as the
// leader leads; a single node is a cluster of one, so it runs there too.
//
// # Why inside the writer
//
// With 1-second commits a table gains 86,400 snapshots a day, as many
// metadata files, and several small data files per partition per second.
// Every commit rewrites the whole metadata file, whose size grows with the
// snapshots retained, so commit latency grows without bound; readers open
// more and more files. Maintenance run as a separate job (the usual Spark
// procedures) commits concurrently with the streaming writer: its rewrite
// fails whenever a delete landed meanwhile, or succeeds and resurrects rows a
// delete removed, and its expiry can remove the snapshot that records where
// ingestion stopped. Here every maintenance commit goes through the table's
// writer (TableWriter.Do), between two of its commits, so none of that can
// happen; the slow part (reading and writing files, listing the warehouse)
// runs on the maintainer's own goroutine, so an ingest commit waits for at
// most one maintenance commit, never for a plan.
//
// # The flow of a compaction
//
// A check runs on the schedule (compaction.every) and, at most once a
// second, as soon as the writer has committed fan_in data files since the
// last one (Committed): a partition's small files never pile up between
// two scheduled checks.
//
//  1. Take the table as the writer last committed it (TableWriter.Current)
//     and plan its live data files (Plan): per partition, size-tiered.
//  2. Read each group with its deletes applied and write the new files
//     (iceberg-go's ExecuteCompactionGroup), off the writer's goroutine. A
//     file larger than the table's read.split.target-size is planned as
//     several tasks, one per range of row groups: a group takes every task
//     of each of its files. Before anything is committed, the new files
//     must hold as many rows as the old ones (no more, where deletes
//     applied): a rewrite that would lose or invent rows is dropped.
//  3. Hand the rewrite to the writer: Committer.Rewrite checks that the
//     table still holds the plan's files as they were (every snapshot since
//     the plan is an append without deletes), then commits one replace
//     snapshot that carries floe.offsets, a commit id and the pipeline's
//     tag, with the new files at the data sequence number of the plan's
//     snapshot. A plan the table moved under (a rollback, another engine's
//     deletes) is dropped, its files removed, and made again at the next
//     run: never forced, never retried blindly.
//
// # Size tiers
//
// A file of size s is in tier floor(log_FanIn(target/s)). Once a partition
// holds FanIn files of one tier they are compacted into one file of the next
// tier up. Under a steady stream each byte is rewritten about once per tier
// it climbs (4 to 5 times from 256KiB files to 512MiB with the default
// fan-in of 4), and a partition holds at most FanIn-1 files per tier: the
// planner's test drives 2,000 commits through it and sees at most 15 live
// files in the partition. A backlog or uneven sizes are bounded by
// MaxSmallFiles: above it, a partition's smallest files are compacted
// together. Files of at least three quarters of the target are final. On
// demand (`floe compact`), every small file is packed, ignoring tiers.
//
// # Expiry
//
// SelectExpired keeps every snapshot younger than the first tier's age, then
// the newest snapshot of each aligned bucket of the next tiers (one per 10
// minutes for a day, one per hour for 7 days, one per day for 90 days by
// default: about a thousand snapshots at most), never the current snapshot
// or one a branch or tag references (so the pipeline's tag, which pins its
// offsets, stays). Buckets are aligned to the Unix epoch, so a snapshot
// kept once as the newest of its 10 minutes is the newest of its hour later
// on: thinning is stable. A query as of an expired moment is answered by the
// nearest kept snapshot before it. The files only expired snapshots
// referenced (manifest lists, manifests, data files compacted away) are
// deleted after the commit, off the writer's goroutine.
//
// # Orphans
//
// RemoveOrphans lists the table's location and removes files no snapshot
// and no metadata file references, older than the grace period (a day by
// default: a worker's file is unreferenced between its write and its
// commit), except files named by segments the ledger accepted and the
// writer has not committed yet (the catalog may have been down for longer
// than the grace period: those files are committed next).
//
// # Metadata and manifests
//
// Maintained tables get commit.manifest-merge.enabled (appends merge small
// manifests once 50 accumulate, so planning a scan reads a bounded number of
// them) and write.metadata.delete-after-commit.enabled (old metadata files
// are deleted as commits go, write.metadata.previous-versions-max kept),
// unless the table sets its own values. Expiry's own commit bypasses
// iceberg-go's commit path, so it deletes the metadata files it drops
// itself (commit.DeleteDroppedMetadata).
package maintain
