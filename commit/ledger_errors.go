package commit

import "fmt"

// StaleEpochError rejects a segment proposed under an epoch that is not the
// partition's current one: the proposer has lost (or never had) the
// partition, typically a zombie from before a reassignment. Have is the
// proposal's epoch, Want the ledger's. Definite: the proposer must stop
// consuming the partition and reload its assignment.
type StaleEpochError struct {
	Pipeline  string
	Topic     string
	Partition int32
	Have      uint64
	Want      uint64
}

func (e *StaleEpochError) Error() string {
	return fmt.Sprintf("commit: stale epoch for %s/%s/%d: segment has epoch %d, partition is at epoch %d",
		e.Pipeline, e.Topic, e.Partition, e.Have, e.Want)
}

// NotOwnerError rejects a segment whose proposer is not the partition's
// current owner (Owner is empty when the partition is unassigned), although
// its epoch is current: a proposer bug, never a race, since every owner
// change bumps the epoch.
type NotOwnerError struct {
	Pipeline  string
	Topic     string
	Partition int32
	Owner     string
	Proposer  string
}

func (e *NotOwnerError) Error() string {
	owner := e.Owner
	if owner == "" {
		owner = "nobody"
	}
	return fmt.Sprintf("commit: %s/%s/%d is owned by %s, not %s", e.Pipeline, e.Topic, e.Partition, owner, e.Proposer)
}

// OffsetRegressionError rejects a commit report that would move a table's
// committed offset backwards (Have is the ledger's, Got the report's). In a
// Reconcile result it lists a reported offset that was ignored for that
// reason: the table was rolled back, or the report is older than the ledger.
type OffsetRegressionError struct {
	Table     string
	Topic     string
	Partition int32
	Have, Got int64
}

func (e *OffsetRegressionError) Error() string {
	return fmt.Sprintf("commit: offsets of %s would go backwards on %s/%d: committed %d, reported %d",
		e.Table, e.Topic, e.Partition, e.Have, e.Got)
}
