package commit

import (
	"encoding/json"
	"fmt"
	"time"
)

// CommandType names a ledger command in its envelope.
type CommandType string

// The ledger's commands.
const (
	CmdAddMember      CommandType = "add_member"
	CmdRemoveMember   CommandType = "remove_member"
	CmdHeartbeat      CommandType = "heartbeat"
	CmdAssign         CommandType = "assign"
	CmdProposeSegment CommandType = "propose_segment"
	CmdCommitSegments CommandType = "commit_segments"
	CmdReconcile      CommandType = "reconcile"
	CmdAdoptTable     CommandType = "adopt_table"
)

type envelope struct {
	Type    CommandType     `json:"type"`
	Payload json.RawMessage `json:"payload"`
}

// AddMember adds a node, or updates the addresses of a node that rejoins
// (its JoinedAt is kept). At is the proposer's clock.
type AddMember struct {
	ID       string    `json:"id"`
	RaftAddr string    `json:"raft_addr"`
	APIAddr  string    `json:"api_addr"`
	At       time.Time `json:"at"`
}

// RemoveMember removes a node and releases its partitions (owner none,
// epoch + 1), so it can never propose again. Its accepted segments stay
// pending: their files are durable and the committer commits them.
type RemoveMember struct {
	ID string `json:"id"`
}

// Heartbeat records that a node was alive at At (the proposer's clock). The
// recorded heartbeat never goes backwards.
type Heartbeat struct {
	ID string    `json:"id"`
	At time.Time `json:"at"`
}

// Assign is the leader's new owner for some partitions; an empty owner
// unassigns. Partitions not named keep their owner.
type Assign struct {
	Owners map[PartitionKey]string
}

// PartitionOwner is one line of an Assign on the wire.
type PartitionOwner struct {
	PartitionKey
	Owner string `json:"owner"`
}

type assignWire struct {
	Owners []PartitionOwner `json:"owners"`
}

// ProposeSegment asks the ledger to accept a segment (see Ledger for the
// rules). Epochs holds the proposer's epoch for every partition the
// segment covers, and only those.
type ProposeSegment struct {
	Pipeline string         `json:"pipeline"`
	Owner    string         `json:"owner"`
	Epochs   Epochs         `json:"epochs"`
	Tables   []SegmentEntry `json:"tables"`
}

// CommitSegments reports that the committer committed the named segments'
// entries for Table as snapshot SnapshotID, whose floe.offsets are Offsets.
type CommitSegments struct {
	Table      string   `json:"table"`
	SnapshotID int64    `json:"snapshot_id"`
	Offsets    Offsets  `json:"offsets"`
	Segments   []uint64 `json:"segments"`
}

// Reconcile reports tables' committed offsets as read from their Iceberg
// summaries, after a leader change or a whole-cluster recovery.
type Reconcile struct {
	Tables []ReconciledTable `json:"tables"`
}

// ReconciledTable is one table's current snapshot and its floe.offsets for
// Pipeline.
type ReconciledTable struct {
	Table      string  `json:"table"`
	Pipeline   string  `json:"pipeline"`
	SnapshotID int64   `json:"snapshot_id"`
	Offsets    Offsets `json:"offsets"`
}

func encode(t CommandType, payload any) ([]byte, error) {
	p, err := json.Marshal(payload)
	if err != nil {
		return nil, fmt.Errorf("commit: encode %s: %w", t, err)
	}
	return json.Marshal(envelope{Type: t, Payload: p})
}

// EncodeAddMember encodes an AddMember command.
func EncodeAddMember(c AddMember) ([]byte, error) { return encode(CmdAddMember, c) }

// EncodeRemoveMember encodes a RemoveMember command.
func EncodeRemoveMember(c RemoveMember) ([]byte, error) { return encode(CmdRemoveMember, c) }

// EncodeHeartbeat encodes a Heartbeat command.
func EncodeHeartbeat(c Heartbeat) ([]byte, error) { return encode(CmdHeartbeat, c) }

// EncodeAssign encodes an Assign command, partitions in sorted order.
func EncodeAssign(c Assign) ([]byte, error) {
	w := assignWire{Owners: make([]PartitionOwner, 0, len(c.Owners))}
	for _, k := range sortedKeys(c.Owners) {
		w.Owners = append(w.Owners, PartitionOwner{PartitionKey: k, Owner: c.Owners[k]})
	}
	return encode(CmdAssign, w)
}

// EncodeProposeSegment encodes a ProposeSegment command.
func EncodeProposeSegment(c ProposeSegment) ([]byte, error) { return encode(CmdProposeSegment, c) }

// EncodeCommitSegments encodes a CommitSegments command.
func EncodeCommitSegments(c CommitSegments) ([]byte, error) { return encode(CmdCommitSegments, c) }

// EncodeAdoptTable encodes an AdoptTable command.
func EncodeAdoptTable(c AdoptTable) ([]byte, error) { return encode(CmdAdoptTable, c) }

// EncodeReconcile encodes a Reconcile command.
func EncodeReconcile(c Reconcile) ([]byte, error) { return encode(CmdReconcile, c) }
