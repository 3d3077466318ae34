package cluster

import (
	"github.com/floelake/floe/ingest"
	"github.com/floelake/floe/ingest/transform"
	"github.com/floelake/floe/maintain"
	"github.com/floelake/floe/upsert"
)

// Metrics observes one member: its leadership, the work the leader hands
// out, and its proposals. It includes ingest.Metrics (and so
// commit.Metrics), which the member's pipelines and, while it leads, its
// table writers report to. Every value is the member's own: members in one
// process are given a Metrics each. Implementations must be safe for
// concurrent use and return quickly. A nil Options.Metrics reports nothing.
// internal/metrics.Set implements it (floe_cluster_*, and the lag and
// restarts of floe_ingest_*).
type Metrics interface {
	ingest.Metrics
	// maintain.Metrics observes the maintenance of the tables the member
	// writes while it leads.
	maintain.Metrics
	// upsert.Metrics observes the key indexes of the keyed tables the
	// member writes while it leads.
	upsert.Metrics
	// transform.StageMetrics observes the window state of the windowed
	// tables the member writes while it leads.
	transform.StageMetrics
	// transform.DedupMetrics observes the dedup state of the tables of
	// pipelines that drop duplicates, likewise.
	transform.DedupMetrics
	// LeadershipChanged is called when the member becomes the leader
	// (leading) and when it stops being it, once its leader's duties have
	// stopped: what it reported as the leader (Members, PartitionLag, its
	// table writers' reports) is no longer its to report.
	LeadershipChanged(leading bool)
	// Members is called by the leader, every assignment round, with the
	// number of members it judges alive and dead.
	Members(alive, dead int)
	// PartitionsOwned is called with the number of the pipeline's
	// partitions the member consumes, whenever its assignment is read.
	PartitionsOwned(pipeline string, n int)
	// PipelineStopped is called when the member stops working on the
	// pipeline: it owns none of its partitions any more.
	PipelineStopped(pipeline string)
	// PipelineRestarted is called when the member's consumption of the
	// pipeline failed and restarts from the ledger's offsets.
	PipelineRestarted(pipeline string)
	// SegmentProposed is called once per segment the member proposed, with
	// its outcome (accepted, rejected_stale_epoch, rejected_not_owner,
	// rejected_offset_gap, rejected_other, dropped).
	SegmentProposed(pipeline, outcome string)
	// PartitionsMoved is called by the leader when it moved n of the
	// pipeline's partitions to a new owner.
	PartitionsMoved(pipeline string, n int)
	// PartitionLag is called by the leader, every few seconds and after
	// commits, with the records between a partition's high watermark and
	// its lowest committed offset.
	PartitionLag(topic string, partition int32, records int64)
}

// NopMetrics reports nothing. It stands in for a nil Options.Metrics.
type NopMetrics struct {
	ingest.NopMetrics
	nopMaintain
	nopUpsert
}

// nopMaintain and nopUpsert rename maintain's and upsert's NopMetrics,
// whose name ingest's takes.
type (
	nopMaintain = maintain.NopMetrics
	nopUpsert   = upsert.NopMetrics
)

var _ Metrics = NopMetrics{}

func (NopMetrics) LeadershipChanged(bool)                          {}
func (NopMetrics) WindowCommit(string, int64, int64, int64, int64) {}
func (NopMetrics) DedupCommit(string, int64, int64, int64)         {}
func (NopMetrics) Members(int, int)                                {}
func (NopMetrics) PartitionsOwned(string, int)                     {}
func (NopMetrics) PipelineStopped(string)                          {}
func (NopMetrics) PipelineRestarted(string)                        {}
func (NopMetrics) SegmentProposed(string, string)                  {}
func (NopMetrics) PartitionsMoved(string, int)                     {}
func (NopMetrics) PartitionLag(string, int32, int64)               {}
