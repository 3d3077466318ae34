// Package cluster runs floe nodes: every floe process is a member of a
// raft-replicated cluster, and a single node is a cluster of one member
// (Options.Local: raft on in-memory stores, no cluster API), so the same
// code ingests and commits in both modes.
//
// # Roles
//
// Every member replicates the ledger (commit.Ledger) through raft,
// heartbeats to the leader, and consumes the partitions the ledger assigns
// it (worker.go). The raft leader also assigns partitions to live members
// (leader.go: commit.Balance, liveness judged on the leader's clock) and runs
// one table writer (commit.TableWriter) per table, which commits the
// accepted segments to Iceberg and reports them back to the ledger. The
// cluster API (rpc.go, proto/floe/cluster/v1) carries what followers send
// the leader (ledger commands: heartbeats, segment proposals; join and
// leave) and serves the status.
//
// # The flow of one segment
//
//  1. A member owns partition p at epoch e. It consumes p from the ledger's
//     next expected offset, decodes and writes Parquet files
//     (ingest.Pipeline.RunAssigned). A table whose offsets are ahead (the
//     dead-letter table after a crash between two commits, or after the
//     main table was rolled back) takes records only from its own offset
//     (its floor).
//  2. Every commit interval the member proposes one segment for all the
//     partitions it consumed: the pipeline, the owner, the epoch per
//     partition, and per table the offset range and the encoded data files
//     (fileio.EncodeDataFiles: every manifest field, so the leader never
//     reads a Parquet footer back). A follower forwards the proposal to the
//     leader, which applies it to the raft log.
//  3. The ledger accepts it only if, for every partition, the epoch is
//     current, the proposer is the owner, and the range starts at the next
//     expected offset (and each table's range where that table's accepted
//     offsets end). Otherwise the member ends its run and starts again from
//     the ledger; the segment's files are orphans.
//  4. The table writer takes every accepted, uncommitted segment of its
//     table in order and commits them as one snapshot with commit.Committer
//     (base assertion, commit ids, offsets contiguity), then applies
//     CommitSegments. Its policy (commit.WriterPolicy) commits when a pending
//     segment carries rows, at most every half commit interval, and a table
//     that only moves offsets every max(30s, 10 × commit interval).
//
// An accepted segment is durable twice: its files in the object store, its
// description in the raft log. A member that dies after acceptance loses
// nothing; the leader commits its segments anyway. A proposal whose answer
// is lost is retried: if the first attempt was accepted, the ledger answers
// the retry with an overlap whose expected offset is exactly the segment's
// end, which the member takes as accepted.
//
// # Failures
//
//	event                          what happens
//	-----                          ------------
//	a member dies                  no heartbeat seen by the leader for dead_after: its partitions move
//	                               (balanced, sticky, deterministic), epoch + 1; the new owners resume at
//	                               the next expected offset; its accepted segments are still committed
//	the leader dies                raft elects a new leader (about a second); its table writers reload every
//	                               table and reconcile the ledger with the summaries (segments the old
//	                               leader committed without reporting are dropped), then commit the rest
//	a member is cut off            it stops consuming once it has not heard from a leader for a heartbeat
//	                               interval past dead_after; what it proposes meanwhile is refused
//	a zombie proposes              refused: its epoch is stale once its partitions moved
//	the old leader's commit lands  the new leader's commit fails its offsets check; the writer reloads the
//	after the new one reconciled   table and reconciles again, then commits the rest
//	the table is rolled back, or   the writer finds the table behind the ledger (or cutting through pending
//	recreated, by someone else     segments) and proposes AdoptTable: the ledger takes the table's offsets,
//	                               drops the pipeline's pending segments, and restarts the owners there
//	                               (epoch + 1); what the rollback removed is consumed again
//	the catalog is down            the writer retries with backoff; at commit.MaxPendingSegments pending
//	                               segments members hold back their proposals (Kafka keeps the records)
//	every raft data dir is lost    start the members fresh (the first without join): the writers reconcile
//	                               from the summaries and the pipelines resume exactly there
//
// A single node has no raft data dir at all: each start is the last case.
//
// # On disk
//
// A cluster member keeps raft's log, stable store and snapshots under
// <data_dir>/raft (see package raftstore) and the API addresses of the
// other members in <data_dir>/raft/peers.json, so a restarted member can
// announce itself before its log is replayed. A single node writes nothing
// there.
package cluster
