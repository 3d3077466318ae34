package cluster

import (
	"context"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/floelake/floe/commit"
)

// Service is what a node offers the other members and the CLI through the
// cluster API (gRPC, see rpc.go). Node implements it.
type Service interface {
	// Apply applies one encoded ledger command (commit.Encode*) if this
	// node is the raft leader. On a follower it returns an error that
	// Is(raftstore.ErrNotLeader); an error that Is(raftstore.ErrOutcomeUnknown)
	// means the command may or may not have been applied. A command the
	// ledger rejected is not an error here: it is ApplyResult.Err.
	Apply(ctx context.Context, cmd []byte) (commit.ApplyResult, error)
	// Join adds a node to the raft configuration and the ledger's members.
	// It is idempotent; on a follower it is forwarded to the leader.
	Join(ctx context.Context, req JoinRequest) error
	// Leave releases a node's partitions and removes it from the cluster;
	// on a follower it is forwarded to the leader.
	Leave(ctx context.Context, nodeID string) error
	// Status is this node's view of the cluster.
	Status(ctx context.Context) (Status, error)
	// EvolveSchema changes the schema of a pipeline's table so that it
	// takes the records of a writer schema (schema_evolution: add) and
	// returns the changes it applied (none when the table takes them
	// already: it is idempotent). On a follower it is forwarded to the
	// leader, which writes the table.
	EvolveSchema(ctx context.Context, req EvolveRequest) ([]string, error)
}

// EvolveRequest names a pipeline and the writer schema its table must
// take.
type EvolveRequest struct {
	Pipeline string
	// SchemaID is the writer schema's registry id, for the log.
	SchemaID uint32
	// Writer is the writer schema in its Iceberg form.
	Writer *iceberg.Schema
}

// JoinRequest names a node and the addresses the others reach it at.
type JoinRequest struct {
	NodeID   string
	RaftAddr string
	APIAddr  string
}

// Status is a node's view of the cluster: raft, the ledger's members and
// assignment, each table's commits and pending segments, and lag.
type Status struct {
	NodeID        string
	LeaderID      string
	LeaderAPIAddr string
	// Term and AppliedIndex are this node's raft term and the last ledger
	// entry it applied.
	Term         uint64
	AppliedIndex uint64
	Members      []MemberStatus
	Partitions   []PartitionStatus
	Tables       []TableStatus
}

// MemberStatus is one member.
type MemberStatus struct {
	ID       string
	RaftAddr string
	APIAddr  string
	// Suffrage is voter, nonvoter or staging in the raft configuration, or
	// empty when the ledger knows the member but raft does not (yet).
	Suffrage      string
	LastHeartbeat time.Time
	Alive         bool
	Partitions    int
}

// PartitionStatus is one source partition of one pipeline.
type PartitionStatus struct {
	Pipeline  string
	Topic     string
	Partition int32
	Owner     string
	Epoch     uint64
	// NextExpected is where the next segment must start (-1: unknown);
	// Committed the lowest committed offset over the pipeline's tables
	// (-1: none); End the partition's high watermark when known (-1: not
	// known); Lag is End - Committed when both are known, else -1.
	NextExpected int64
	Committed    int64
	End          int64
	Lag          int64
}

// TableStatus is one table the ledger knows.
type TableStatus struct {
	Table           string
	Pipeline        string
	SnapshotID      int64
	PendingSegments int
	PendingRecords  int64
}
