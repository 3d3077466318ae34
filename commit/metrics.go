package commit

import "time"

// Metrics observes commits: what a Committer and a TableWriter report as
// they work. Tables are named "namespace.table". Implementations must be
// safe for concurrent use and return quickly: they are called on the
// commit path. A nil Metrics in a Config or WriterConfig reports nothing.
// internal/metrics.Set implements it (floe_commit_*, and
// floe_cluster_pending_segments).
type Metrics interface {
	// SnapshotCommitted is called once per snapshot a committer lands (or
	// finds landed after an unknown outcome): records rows in files data
	// files, took from the first attempt to the settled commit, retries
	// included. newest is the Kafka timestamp of the newest record it
	// covers, zero when it covers none.
	SnapshotCommitted(table string, records int64, files int, took time.Duration, newest time.Time)
	// CommitFailed is called for every failed attempt, reload or check,
	// with its class (ClassConflict, ClassUnknown, ClassReload, ClassFatal).
	CommitFailed(table, class string)
	// LastSnapshot is called with the table's current snapshot whenever a
	// committer loads the table or commits to it.
	LastSnapshot(table string, id int64)
	// PendingSegments is called by a running table writer with the number
	// of accepted segments of its table that wait for their commit.
	PendingSegments(table string, n int)
	// WriterStopped is called when a table writer stops (its node no
	// longer leads): the table's pending segments are no longer its to
	// report.
	WriterStopped(table string)
	// TableAdopted is called when a table writer made the ledger adopt the
	// table's offsets (it was rolled back, recreated, or written by
	// another writer).
	TableAdopted(table string)
}

// NopMetrics reports nothing. It stands in for a nil Metrics; packages
// whose own Metrics embed this one can embed NopMetrics in theirs.
type NopMetrics struct{}

var _ Metrics = NopMetrics{}

func (NopMetrics) SnapshotCommitted(string, int64, int, time.Duration, time.Time) {}
func (NopMetrics) CommitFailed(string, string)                                    {}
func (NopMetrics) LastSnapshot(string, int64)                                     {}
func (NopMetrics) PendingSegments(string, int)                                    {}
func (NopMetrics) WriterStopped(string)                                           {}
func (NopMetrics) TableAdopted(string)                                            {}
