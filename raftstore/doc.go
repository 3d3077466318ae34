// Package raftstore runs one member of floe's raft cluster: a hashicorp/raft
// node with durable stores (raft-boltdb/v2 and a file snapshot store), a TCP
// or TLS transport, and an in-memory variant for tests. It replicates the
// ledger (package commit) but knows nothing about it: it takes any FSM with
// Apply(index, data) any, Snapshot() and Restore(io.Reader) (see FSM), and
// offers the primitives the rest of floe builds on — Apply on the leader,
// Barrier, leadership queries and notifications, and membership changes
// (AddVoter, RemoveServer). Forwarding proposals from followers to the
// leader, and asking a member to AddVoter a joining node (`floe serve
// --join`), happen over floe's API, not here.
//
// # FSM contract
//
// Apply is deterministic and called once per committed command, in order,
// from one goroutine; Snapshot only captures (copies or pins) the state and
// never does I/O, because Apply waits while it runs; Persist writes the
// captured state and runs concurrently with Apply; Restore replaces the whole
// state. The FSM's state is volatile: at every start it is rebuilt from the
// newest snapshot (Restore) and the log entries after it (Apply). The full
// contract is on the FSM type.
//
// # On-disk layout of Config.DataDir
//
//	DataDir/
//	  node-id                 NodeID this DataDir belongs to. Written once on first
//	                          Open (via node-id.tmp + rename); Open refuses another
//	                          NodeID. Immutable.
//	  raft.db                 bbolt database, the LogStore and the StableStore:
//	                          bucket "logs" = log entries by index (appended, and
//	                          truncated from the front after each snapshot, keeping
//	                          TrailingLogs); bucket "conf" = CurrentTerm, LastVoteTerm,
//	                          LastVoteCand. Mutable, fsync'd on every write, locked
//	                          (flock) while a Node has it open. bbolt reuses freed
//	                          pages but never shrinks the file.
//	  snapshots/
//	    <term>-<index>-<unix ms>/    one completed snapshot, immutable once named:
//	      meta.json           index, term, cluster configuration, size, CRC-64 of state.bin
//	      state.bin           the bytes FSMSnapshot.Persist wrote
//	    <term>-<index>-<unix ms>.tmp/ a snapshot being written (or abandoned by a crash)
//	    permTest              transient file of raft's permission check at start
//
// Raft keeps the newest SnapshotsRetained (2) snapshots and deletes older ones
// itself. What an operator may delete, with the node stopped:
//   - snapshots/*.tmp directories, permTest and node-id.tmp: incomplete or
//     transient, never read.
//   - older snapshot directories, keeping the newest one.
//   - the whole DataDir: the node becomes a new, empty member. Remove it from
//     the cluster (RemoveServer) and add it again (AddVoter) so the leader
//     sends it a snapshot; do not start it with Bootstrap (see below).
//
// Never delete raft.db alone, nor the newest snapshot. raft.db holds this
// node's term and vote (forgetting them lets it vote twice in one term, which
// can elect two leaders) and the entries after the newest snapshot, which may
// be committed entries no snapshot covers yet. The newest snapshot is the only
// copy of the state before the log's first entry (the log is compacted behind
// it).
//
// # Bootstrap and rejoin
//
//   - A DataDir "has state" when raft.db holds a log entry or a term, or a
//     snapshot exists (raft.HasExistingState).
//   - With state, Open resumes: Config.Bootstrap is ignored, the FSM is
//     restored from the newest snapshot, and the node rejoins the members
//     recorded in its log and snapshot, at the address it had; the leader
//     brings it up to date (by log or InstallSnapshot). Restarting never
//     bootstraps again, so leaving Bootstrap set on the first node is safe.
//   - Without state and with Bootstrap, Open forms a new single-node cluster
//     with this node as the only voter; it elects itself.
//   - Without state and without Bootstrap, the node waits, empty, until a
//     leader adds it (AddVoter, through floe's API). It never elects itself.
//   - Danger: a node that lost its DataDir and starts with Bootstrap forms a
//     second, independent cluster with the same NodeID (split brain). Set
//     Bootstrap only for the very first start of a brand-new cluster.
//   - A member that comes back at a different address is updated with
//     AddVoter(id, newAddr) from the leader.
//
// Timers default to values that elect a new leader within about 2 s of a
// leader's death on a LAN (see the Default* constants; TestFailoverTCP logs
// the times measured). Shutdown is abrupt, like a crash, for the cluster.
//
// # Replication without raft's pipeline
//
// The transport allows one AppendEntries in flight per follower
// (transportMaxInFlight), which turns off raft's pipelined replication. In
// raft v1.7 the pipeline can deadlock: when a follower answers with a newer
// term (after a leadership transfer, say) or refuses an append, the
// goroutine reading the answers returns, the replication goroutine may
// still send once more, and that send waits for a reader that is gone,
// while the pipeline would only be closed by the waiting goroutine itself.
// The follower then receives no more entries while heartbeats keep it
// quiet, and the leader's Shutdown never returns. Synchronous replication
// still batches every entry the follower lacks into one request; it costs
// a round trip per batch, which the ledger's handful of entries per commit
// interval does not feel.
package raftstore
