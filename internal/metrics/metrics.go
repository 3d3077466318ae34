// Package metrics holds floe's Prometheus collectors. Names follow
// floe_<subsystem>_<name>_<unit>; counters end in _total. Every collector is
// labelled by table (namespace.table) or by topic and partition, so one
// process can run many pipelines.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Registry is the registry /metrics serves.
var Registry = prometheus.NewRegistry()

var (
	// RecordsIn counts records consumed from Kafka, by pipeline.
	RecordsIn = counter("floe_ingest_records_total", "Records consumed from Kafka.", "pipeline")
	// BytesIn counts record value and key bytes consumed.
	BytesIn = counter("floe_ingest_bytes_total", "Record key and value bytes consumed from Kafka.", "pipeline")
	// DeadLetters counts records routed to the dead-letter table.
	DeadLetters = counter("floe_ingest_dead_letters_total", "Records written to the dead-letter table.", "pipeline")
	// RecordsCommitted counts rows made visible by Iceberg commits, by table.
	RecordsCommitted = counter("floe_commit_records_total", "Rows made visible by committed snapshots.", "table")
	// FilesCommitted counts data files committed.
	FilesCommitted = counter("floe_commit_files_total", "Data files committed.", "table")
	// Commits counts successful snapshot commits.
	Commits = counter("floe_commit_snapshots_total", "Snapshots committed.", "table")
	// CommitFailures counts failed commit attempts by class (conflict, unknown, reload, fatal).
	CommitFailures = counter("floe_commit_failures_total", "Failed commit attempts by class.", "table", "class")
	// CommitDuration is the time from the first attempt to a settled commit.
	CommitDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "floe_commit_duration_seconds",
		Help:    "Time to commit one snapshot, retries included.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	}, []string{"table"})
	// FileWriteErrors counts failures writing data files.
	FileWriteErrors = counter("floe_ingest_file_write_errors_total", "Failures writing data files.", "pipeline")
	// Lag is the number of records between a partition's end and the committed offset.
	Lag = gauge("floe_ingest_lag_records", "Records between the partition's high watermark and the committed offset.", "topic", "partition")
	// Freshness is the age of the newest committed record (now - its Kafka timestamp).
	Freshness = gauge("floe_commit_freshness_seconds", "Age of the newest record in the last committed snapshot.", "table")
	// LastSnapshot is the id of the last snapshot floe committed.
	LastSnapshot = gauge("floe_commit_last_snapshot_id", "Id of the last snapshot committed.", "table")
	// ConsumerErrors counts errors consuming from Kafka by kind:
	// authorization, authentication, unknown_topic, offset_out_of_range,
	// data_loss, transient (retried by the client) or other.
	ConsumerErrors = counter("floe_ingest_consumer_errors_total", "Errors consuming from Kafka, by kind (authorization, authentication, unknown_topic, offset_out_of_range, data_loss, transient, other).", "pipeline", "kind")
	// SkippedRecords counts offsets skipped because Kafka no longer had
	// them (on_data_loss: skip).
	SkippedRecords = counter("floe_ingest_skipped_records_total", "Offsets moved past without their records because Kafka no longer had them (on_data_loss: skip).", "topic", "partition")
	// PipelineRestarts counts pipeline restarts after a fatal error.
	PipelineRestarts = counter("floe_ingest_pipeline_restarts_total", "Pipeline restarts after a fatal error.", "pipeline")

	// ClusterLeader is 1 on the raft leader, 0 elsewhere.
	ClusterLeader = prometheus.NewGauge(prometheus.GaugeOpts{Name: "floe_cluster_leader", Help: "1 if this node is the raft leader."})
	// ClusterLeaderChanges counts the times this node gained or lost leadership.
	ClusterLeaderChanges = prometheus.NewCounter(prometheus.CounterOpts{Name: "floe_cluster_leader_changes_total", Help: "Times this node became or stopped being the leader."})
	// ClusterMembers is the number of members, by liveness, as the leader sees them.
	ClusterMembers = gauge("floe_cluster_members", "Cluster members known to the ledger, by liveness (leader only).", "state")
	// ClusterPartitionsOwned is the number of partitions assigned to this node.
	ClusterPartitionsOwned = gauge("floe_cluster_partitions_owned", "Source partitions assigned to this node.", "pipeline")
	// ClusterPendingSegments is the number of accepted, uncommitted segments per table.
	ClusterPendingSegments = gauge("floe_cluster_pending_segments", "Segments accepted by the ledger and not yet committed.", "table")
	// ClusterSegments counts this node's segment proposals by outcome.
	ClusterSegments = counter("floe_cluster_segments_total", "Segments this node proposed, by outcome (accepted, rejected_stale_epoch, rejected_not_owner, rejected_offset_gap, rejected_other, dropped).", "pipeline", "outcome")
	// ClusterAssignments counts partition moves made by the leader.
	ClusterAssignments = counter("floe_cluster_partition_moves_total", "Partitions moved to a new owner by the leader.", "pipeline")
	// TableAdoptions counts the times the ledger adopted a table's offsets
	// (the table was rolled back, recreated or written by someone else).
	TableAdoptions = counter("floe_commit_table_adoptions_total", "Times the table writer made the ledger adopt a table's offsets (rolled back, recreated, or written by another writer).", "table")
)

func counter(name, help string, labels ...string) *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
}

func gauge(name, help string, labels ...string) *prometheus.GaugeVec {
	return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
}

func init() {
	Registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		RecordsIn, BytesIn, DeadLetters, RecordsCommitted, FilesCommitted, Commits,
		CommitFailures, CommitDuration, FileWriteErrors, Lag, Freshness, LastSnapshot, PipelineRestarts,
		ConsumerErrors, SkippedRecords,
		ClusterLeader, ClusterLeaderChanges, ClusterMembers, ClusterPartitionsOwned, ClusterPendingSegments,
		ClusterSegments, ClusterAssignments, TableAdoptions,
	)
}
