// Package metrics holds floe's Prometheus collectors. Names follow
// floe_<subsystem>_<name>_<unit>; counters end in _total. Every collector is
// labelled by table (namespace.table) or by topic and partition, so one
// process can run many pipelines.
//
// # Hooks
//
// The packages that do the work do not know Prometheus. Each declares a
// small interface named for what it observes, with plain parameters
// (strings, numbers, durations and times), and calls it where the thing
// happens:
//
//   - commit.Metrics: snapshots committed, failed commit attempts, a
//     table's current snapshot, its pending segments, offsets adopted from
//     the table;
//   - ingest.Metrics: records consumed, consumer errors, offsets skipped,
//     data files that could not be written (and commit.Metrics, for the
//     committers a pipeline runs);
//   - maintain.Metrics: a table's shape (files, partitions, snapshots,
//     metadata bytes), compactions, expiries, orphan files removed;
//   - cluster.Metrics: leadership, members, partitions owned and moved,
//     segment proposals, pipeline restarts, lag (and ingest.Metrics,
//     commit.Metrics and maintain.Metrics, for the pipelines, table writers
//     and maintainers a member runs).
//
// Each package falls back to a no-op implementation when given none, so
// code and tests that do not care about metrics pass nothing.
//
// A Set implements every one of those interfaces (structurally: this package
// imports none of them) over collectors of its own, registered on a registry
// of its own with the Go runtime and process collectors. internal/node makes
// one Set per node, hands it down through the cluster, ingest and commit
// options, and serves it on /metrics; several nodes in one process (the
// quickstart's cluster, in-process tests) therefore never share a value.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Set is one node's collectors and the registry they are registered on.
// Its methods are safe for concurrent use.
type Set struct {
	reg *prometheus.Registry

	// floe_ingest_*
	recordsIn, bytesIn, deadLetters, filtered, duplicates *prometheus.CounterVec
	fileWriteErrors                                       *prometheus.CounterVec
	lag                                                   *prometheus.GaugeVec
	consumerErrors                                        *prometheus.CounterVec
	skippedRecords                                        *prometheus.CounterVec
	pipelineRestarts                                      *prometheus.CounterVec

	// floe_commit_*
	recordsCommitted, filesCommitted, commits *prometheus.CounterVec
	commitFailures                            *prometheus.CounterVec
	commitDuration                            *prometheus.HistogramVec
	freshness, lastSnapshot                   *prometheus.GaugeVec
	tableAdoptions                            *prometheus.CounterVec

	// floe_cluster_*
	leader          prometheus.Gauge
	leaderChanges   prometheus.Counter
	members         *prometheus.GaugeVec
	partitionsOwned *prometheus.GaugeVec
	pendingSegments *prometheus.GaugeVec
	segments        *prometheus.CounterVec
	partitionMoves  *prometheus.CounterVec

	// floe_table_*, floe_maintenance_*
	tableFiles, tableBytes, tablePartitions, tableMaxFiles   *prometheus.GaugeVec
	tableSnapshots, tableMetadataBytes                       *prometheus.GaugeVec
	maintRuns, maintFailures, rewrittenBytes, rewrittenFiles *prometheus.CounterVec
	expiredSnapshots, orphanFiles, orphanBytes               *prometheus.CounterVec
	maintDuration                                            *prometheus.HistogramVec

	// floe_upsert_*
	upsertRows, upsertReplaced, upsertDeleted, indexRebuilds *prometheus.CounterVec
	equalityCommits, equalityKeys                            *prometheus.CounterVec
	indexKeys, indexBytes                                    *prometheus.GaugeVec
	indexFileKeys, indexFileBytes                            *prometheus.GaugeVec
	indexRebuildSeconds                                      *prometheus.HistogramVec

	// floe_window_*
	windowRows, windowReopened, windowReadBack, windowDropped *prometheus.CounterVec
	registryErrors, schemaChanges                             *prometheus.CounterVec
	registryFetches                                           *prometheus.HistogramVec
	windowsInMemory                                           *prometheus.GaugeVec
	dedupFiles, dedupKeys                                     *prometheus.GaugeVec
	dedupMerges                                               *prometheus.CounterVec
}

// New returns a Set with every collector at zero, on a fresh registry.
func New() *Set {
	s := &Set{
		reg: prometheus.NewRegistry(),

		recordsIn:        counter("floe_ingest_records_total", "Records consumed from Kafka.", "pipeline"),
		bytesIn:          counter("floe_ingest_bytes_total", "Record key and value bytes consumed from Kafka.", "pipeline"),
		deadLetters:      counter("floe_ingest_dead_letters_total", "Records written to the dead-letter table.", "pipeline"),
		filtered:         counter("floe_ingest_filtered_records_total", "Records the pipeline's transform filter left out of the table.", "pipeline"),
		duplicates:       counter("floe_ingest_duplicate_records_total", "Records the pipeline's transform dedup left out of the table: their key was seen on their Kafka partition within the horizon.", "pipeline"),
		recordsCommitted: counter("floe_commit_records_total", "Rows made visible by committed snapshots.", "table"),
		filesCommitted:   counter("floe_commit_files_total", "Data files committed.", "table"),
		commits:          counter("floe_commit_snapshots_total", "Snapshots committed.", "table"),
		commitFailures:   counter("floe_commit_failures_total", "Failed commit attempts by class.", "table", "class"),
		commitDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "floe_commit_duration_seconds",
			Help:    "Time to commit one snapshot, retries included.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"table"}),
		fileWriteErrors:  counter("floe_ingest_file_write_errors_total", "Failures writing data files.", "pipeline"),
		lag:              gauge("floe_ingest_lag_records", "Records between the partition's high watermark and the committed offset.", "topic", "partition"),
		freshness:        gauge("floe_commit_freshness_seconds", "Age of the newest record in the last committed snapshot.", "table"),
		lastSnapshot:     gauge("floe_commit_last_snapshot_id", "Id of the last snapshot committed.", "table"),
		consumerErrors:   counter("floe_ingest_consumer_errors_total", "Errors consuming from Kafka, by kind (authorization, authentication, unknown_topic, offset_out_of_range, data_loss, transient, other).", "pipeline", "kind"),
		skippedRecords:   counter("floe_ingest_skipped_records_total", "Offsets moved past without their records because Kafka no longer had them (on_data_loss: skip).", "topic", "partition"),
		pipelineRestarts: counter("floe_ingest_pipeline_restarts_total", "Pipeline restarts after a fatal error.", "pipeline"),

		leader:          prometheus.NewGauge(prometheus.GaugeOpts{Name: "floe_cluster_leader", Help: "1 if this node is the raft leader."}),
		leaderChanges:   prometheus.NewCounter(prometheus.CounterOpts{Name: "floe_cluster_leader_changes_total", Help: "Times this node became or stopped being the leader."}),
		members:         gauge("floe_cluster_members", "Cluster members known to the ledger, by liveness (leader only).", "state"),
		partitionsOwned: gauge("floe_cluster_partitions_owned", "Source partitions assigned to this node.", "pipeline"),
		pendingSegments: gauge("floe_cluster_pending_segments", "Segments accepted by the ledger and not yet committed.", "table"),
		segments:        counter("floe_cluster_segments_total", "Segments this node proposed, by outcome (accepted, rejected_stale_epoch, rejected_not_owner, rejected_offset_gap, rejected_other, dropped).", "pipeline", "outcome"),
		partitionMoves:  counter("floe_cluster_partition_moves_total", "Partitions moved to a new owner by the leader.", "pipeline"),
		tableAdoptions:  counter("floe_commit_table_adoptions_total", "Times the table writer made the ledger adopt a table's offsets (rolled back, recreated, or written by another writer).", "table"),

		tableFiles:         gauge("floe_table_data_files", "Live data files of the table, as of its last compaction check.", "table"),
		tableBytes:         gauge("floe_table_data_bytes", "Bytes of the table's live data files.", "table"),
		tablePartitions:    gauge("floe_table_partitions", "Partitions holding live data files.", "table"),
		tableMaxFiles:      gauge("floe_table_max_files_per_partition", "Live data files of the partition holding the most.", "table"),
		tableSnapshots:     gauge("floe_table_snapshots", "Snapshots retained in the table's metadata.", "table"),
		tableMetadataBytes: gauge("floe_table_metadata_bytes", "Size of the table's current metadata file.", "table"),
		maintRuns:          counter("floe_maintenance_runs_total", "Maintenance runs that changed the table, by task (compaction, expiry).", "table", "task"),
		maintFailures:      counter("floe_maintenance_failures_total", "Failed maintenance runs, by task (compaction, expiry, orphans).", "table", "task"),
		rewrittenBytes:     counter("floe_maintenance_rewritten_bytes_total", "Bytes of data files rewritten by compaction.", "table"),
		rewrittenFiles:     counter("floe_maintenance_rewritten_files_total", "Data files replaced by compaction.", "table"),
		expiredSnapshots:   counter("floe_maintenance_expired_snapshots_total", "Snapshots removed by expiry.", "table"),
		orphanFiles:        counter("floe_maintenance_orphan_files_total", "Orphan files removed.", "table"),
		orphanBytes:        counter("floe_maintenance_orphan_bytes_total", "Bytes of orphan files removed.", "table"),
		maintDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "floe_maintenance_duration_seconds",
			Help:    "Time of a maintenance run that changed the table, by task (compaction, expiry).",
			Buckets: []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300},
		}, []string{"table", "task"}),

		upsertRows:     counter("floe_upsert_rows_total", "Rows of keyed tables' commits that went through the key index.", "table"),
		upsertReplaced: counter("floe_upsert_replaced_rows_total", "Rows of keyed tables replaced by a newer row of their key (each deleted by position).", "table"),
		upsertDeleted:  counter("floe_upsert_deleted_keys_total", "Keys deleted by tombstones or delete events that had a row.", "table"),
		indexRebuilds:  counter("floe_upsert_index_rebuilds_total", "Key index rebuilds from the table (start, failover, a table changed by another writer).", "table"),
		equalityCommits: counter("floe_upsert_equality_commits_total",
			"Commits of keyed tables that deleted older rows by equality (delete_mode: equality, or while the key index was rebuilt).", "table"),
		equalityKeys: counter("floe_upsert_equality_keys_total", "Keys listed in the equality deletes of keyed tables' commits.", "table"),
		indexKeys:    gauge("floe_upsert_index_keys", "Keys in the key index.", "table"),
		indexBytes:   gauge("floe_upsert_index_bytes", "Memory of the key index.", "table"),
		indexFileKeys: gauge("floe_upsert_index_file_keys",
			"Keys of the key index kept in its file because the index outgrew key_index_memory.", "table"),
		indexFileBytes: gauge("floe_upsert_index_file_bytes", "Size of the key index's file.", "table"),
		indexRebuildSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "floe_upsert_index_rebuild_seconds",
			Help:    "Time to rebuild a key index from its table.",
			Buckets: []float64{.01, .05, .1, .5, 1, 5, 10, 30, 60, 300},
		}, []string{"table"}),

		windowRows:     counter("floe_window_rows_total", "Window rows written (first versions and corrections).", "table"),
		windowReopened: counter("floe_window_reopened_total", "Window rows corrected after the watermark had passed their end: windows late data re-opened.", "table"),
		windowReadBack: counter("floe_window_read_back_total", "Windows read back from the table to be corrected (no longer in memory).", "table"),
		windowDropped:  counter("floe_window_dropped_events_total", "Events later than max_lateness, routed to the dead-letter table.", "table"),
		registryErrors: counter("floe_registry_errors_total", "Records whose writer schema could not be used, by kind: not_framed, unknown_schema, bad_schema "+
			"and incompatible (dead letters), unreachable and unknown_schema_wait (the pipeline pauses and retries), auth (the pipeline stops).", "pipeline", "kind"),
		schemaChanges: counter("floe_schema_changes_total", "Changes (columns added, types widened, columns made optional) applied to a table's schema to fit its records' writer schemas.", "table"),
		registryFetches: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "floe_registry_fetch_seconds",
			Help: "Schema registry requests (one per schema id or referenced subject version; cached for good), by outcome.", Buckets: prometheus.DefBuckets}, []string{"outcome"}),
		windowsInMemory: gauge("floe_window_state_windows", "Windows the window state holds in memory.", "table"),
		dedupFiles:      gauge("floe_dedup_state_files", "Files of kept keys the table's dedup state manifest lists.", "table"),
		dedupKeys:       gauge("floe_dedup_state_keys", "Keys the files of the table's dedup state manifest hold (within the horizon, or not merged away yet).", "table"),
		dedupMerges:     counter("floe_dedup_state_merges_total", "Merges of dedup state files into one of the next level.", "table"),
	}
	s.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		s.recordsIn, s.bytesIn, s.deadLetters, s.filtered, s.duplicates, s.recordsCommitted, s.filesCommitted, s.commits,
		s.commitFailures, s.commitDuration, s.fileWriteErrors, s.lag, s.freshness, s.lastSnapshot, s.pipelineRestarts,
		s.consumerErrors, s.skippedRecords,
		s.leader, s.leaderChanges, s.members, s.partitionsOwned, s.pendingSegments,
		s.segments, s.partitionMoves, s.tableAdoptions,
		s.tableFiles, s.tableBytes, s.tablePartitions, s.tableMaxFiles, s.tableSnapshots, s.tableMetadataBytes,
		s.maintRuns, s.maintFailures, s.rewrittenBytes, s.rewrittenFiles, s.expiredSnapshots, s.orphanFiles,
		s.orphanBytes, s.maintDuration,
		s.upsertRows, s.upsertReplaced, s.upsertDeleted, s.indexRebuilds, s.indexKeys, s.indexBytes, s.indexRebuildSeconds,
		s.indexFileKeys, s.indexFileBytes,
		s.windowRows, s.windowReopened, s.windowReadBack, s.windowDropped, s.windowsInMemory,
		s.registryErrors, s.schemaChanges, s.registryFetches,
		s.dedupFiles, s.dedupKeys, s.dedupMerges,
	)
	return s
}

func counter(name, help string, labels ...string) *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
}

func gauge(name, help string, labels ...string) *prometheus.GaugeVec {
	return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
}

// Registry returns the registry the Set's collectors are registered on.
func (s *Set) Registry() *prometheus.Registry { return s.reg }

// Handler serves the Set in the Prometheus exposition formats (/metrics).
func (s *Set) Handler() http.Handler {
	return promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{})
}

// Sum returns the sum of the named counter's or gauge's series whose labels
// include labels, given as name, value pairs (0 when there is none): one
// series' value when the pairs name it, the total over the others.
func (s *Set) Sum(name string, labels ...string) float64 {
	if len(labels)%2 != 0 {
		panic("metrics: Sum takes labels as name, value pairs")
	}
	// Gather returns what it could gather along with any error; a
	// family that failed is absent, which is what Sum says of it.
	mfs, _ := s.reg.Gather()
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			for i := 0; i < len(labels); i += 2 {
				found := false
				for _, l := range m.GetLabel() {
					if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
						found = true
						break
					}
				}
				if !found {
					continue series
				}
			}
			switch {
			case m.Counter != nil:
				total += m.GetCounter().GetValue()
			case m.Gauge != nil:
				total += m.GetGauge().GetValue()
			}
		}
	}
	return total
}

// ---------------------------------------------------------------------------
// commit.Metrics

// SnapshotCommitted counts a snapshot committed to table: its records and
// files, the time its commit took, retries included, and the age of its
// newest record (newest is that record's Kafka timestamp; zero: unknown,
// and the freshness gauge is left as it is).
func (s *Set) SnapshotCommitted(table string, records int64, files int, took time.Duration, newest time.Time) {
	s.commits.WithLabelValues(table).Inc()
	s.recordsCommitted.WithLabelValues(table).Add(float64(records))
	s.filesCommitted.WithLabelValues(table).Add(float64(files))
	s.commitDuration.WithLabelValues(table).Observe(took.Seconds())
	if !newest.IsZero() {
		s.freshness.WithLabelValues(table).Set(time.Since(newest).Seconds())
	}
}

// CommitFailed counts a failed commit attempt on table, by class.
func (s *Set) CommitFailed(table, class string) {
	s.commitFailures.WithLabelValues(table, class).Inc()
}

// LastSnapshot sets the id of table's current snapshot.
func (s *Set) LastSnapshot(table string, id int64) {
	s.lastSnapshot.WithLabelValues(table).Set(float64(id))
}

// PendingSegments sets the number of table's accepted, uncommitted segments.
func (s *Set) PendingSegments(table string, n int) {
	s.pendingSegments.WithLabelValues(table).Set(float64(n))
}

// WriterStopped drops table's pending segments: the node no longer commits
// it.
func (s *Set) WriterStopped(table string) {
	s.pendingSegments.DeleteLabelValues(table)
}

// TableAdopted counts the ledger adopting table's offsets.
func (s *Set) TableAdopted(table string) {
	s.tableAdoptions.WithLabelValues(table).Inc()
}

// ---------------------------------------------------------------------------
// ingest.Metrics

// RecordsConsumed counts records consumed by pipeline (deadLetters of them
// went to its dead-letter table, filtered were left out by its transform's
// filter, duplicates dropped by its dedup) and their key and value bytes.
func (s *Set) RecordsConsumed(pipeline string, records, deadLetters, filtered, duplicates, bytes int64) {
	s.duplicates.WithLabelValues(pipeline).Add(float64(duplicates))
	s.recordsIn.WithLabelValues(pipeline).Add(float64(records))
	s.deadLetters.WithLabelValues(pipeline).Add(float64(deadLetters))
	s.filtered.WithLabelValues(pipeline).Add(float64(filtered))
	s.bytesIn.WithLabelValues(pipeline).Add(float64(bytes))
}

// ConsumerError counts an error consuming from Kafka, by kind.
func (s *Set) ConsumerError(pipeline, kind string) {
	s.consumerErrors.WithLabelValues(pipeline, kind).Inc()
}

// OffsetsSkipped counts n offsets of a partition moved past without their
// records.
func (s *Set) OffsetsSkipped(topic string, partition int32, n int64) {
	s.skippedRecords.WithLabelValues(topic, partition32(partition)).Add(float64(n))
}

// FileWriteFailed counts a failure writing pipeline's data files.
func (s *Set) FileWriteFailed(pipeline string) {
	s.fileWriteErrors.WithLabelValues(pipeline).Inc()
}

// ---------------------------------------------------------------------------
// cluster.Metrics

// LeadershipChanged records that the node became (leading) or stopped
// being the leader. A node that stops leading drops the gauges only the
// leader keeps current (members, lag, the tables' last snapshot and
// freshness): left at their last values they would read as current, and a
// sum over the members would count them twice.
func (s *Set) LeadershipChanged(leading bool) {
	v := 0.0
	if leading {
		v = 1
	}
	s.leader.Set(v)
	s.leaderChanges.Inc()
	if !leading {
		s.members.Reset()
		s.lag.Reset()
		s.lastSnapshot.Reset()
		s.freshness.Reset()
		s.indexKeys.Reset()
		s.indexBytes.Reset()
		s.indexFileKeys.Reset()
		s.indexFileBytes.Reset()
	}
}

// Members sets the number of live and dead members.
func (s *Set) Members(alive, dead int) {
	s.members.WithLabelValues("alive").Set(float64(alive))
	s.members.WithLabelValues("dead").Set(float64(dead))
}

// PartitionsOwned sets the number of pipeline's partitions the node owns.
func (s *Set) PartitionsOwned(pipeline string, n int) {
	s.partitionsOwned.WithLabelValues(pipeline).Set(float64(n))
}

// PipelineStopped drops what the node reported owning of pipeline.
func (s *Set) PipelineStopped(pipeline string) {
	s.partitionsOwned.DeleteLabelValues(pipeline)
}

// PipelineRestarted counts a restart of pipeline after a failure.
func (s *Set) PipelineRestarted(pipeline string) {
	s.pipelineRestarts.WithLabelValues(pipeline).Inc()
}

// SegmentProposed counts a segment proposal of pipeline, by outcome.
func (s *Set) SegmentProposed(pipeline, outcome string) {
	s.segments.WithLabelValues(pipeline, outcome).Inc()
}

// PartitionsMoved counts n of pipeline's partitions moved to a new owner.
func (s *Set) PartitionsMoved(pipeline string, n int) {
	s.partitionMoves.WithLabelValues(pipeline).Add(float64(n))
}

// PartitionLag sets a partition's lag in records.
func (s *Set) PartitionLag(topic string, partition int32, records int64) {
	s.lag.WithLabelValues(topic, partition32(partition)).Set(float64(records))
}

func partition32(p int32) string { return strconv.FormatInt(int64(p), 10) }

// TableHealth sets the table's shape as of its last compaction check.
func (s *Set) TableHealth(table string, dataFiles int, dataBytes int64, partitions, maxFilesPerPartition, snapshots int, metadataBytes int64) {
	s.tableFiles.WithLabelValues(table).Set(float64(dataFiles))
	s.tableBytes.WithLabelValues(table).Set(float64(dataBytes))
	s.tablePartitions.WithLabelValues(table).Set(float64(partitions))
	s.tableMaxFiles.WithLabelValues(table).Set(float64(maxFilesPerPartition))
	s.tableSnapshots.WithLabelValues(table).Set(float64(snapshots))
	s.tableMetadataBytes.WithLabelValues(table).Set(float64(metadataBytes))
}

// KeyedCommit counts what a keyed table's commit did to its keys.
func (s *Set) KeyedCommit(table string, rows, replaced, deleted int64) {
	s.upsertRows.WithLabelValues(table).Add(float64(rows))
	s.upsertReplaced.WithLabelValues(table).Add(float64(replaced))
	s.upsertDeleted.WithLabelValues(table).Add(float64(deleted))
}

// EqualityCommit counts a keyed commit resolved by equality deletes.
func (s *Set) EqualityCommit(table string, keys int64) {
	s.equalityCommits.WithLabelValues(table).Inc()
	s.equalityKeys.WithLabelValues(table).Add(float64(keys))
}

// KeyIndex sets a key index's size.
func (s *Set) KeyIndex(table string, keys int, bytes int64) {
	s.indexKeys.WithLabelValues(table).Set(float64(keys))
	s.indexBytes.WithLabelValues(table).Set(float64(bytes))
}

// KeyIndexFile sets the keys and bytes of a key index's file.
func (s *Set) KeyIndexFile(table string, keys int, bytes int64) {
	s.indexFileKeys.WithLabelValues(table).Set(float64(keys))
	s.indexFileBytes.WithLabelValues(table).Set(float64(bytes))
}

// KeyIndexRebuilt counts a key index rebuild.
func (s *Set) KeyIndexRebuilt(table string, _ int, took time.Duration) {
	s.indexRebuilds.WithLabelValues(table).Inc()
	s.indexRebuildSeconds.WithLabelValues(table).Observe(took.Seconds())
}

// Compacted counts a committed compaction.
func (s *Set) Compacted(table string, rewritten, _ int, bytesRewritten int64, took time.Duration) {
	s.maintRuns.WithLabelValues(table, "compaction").Inc()
	s.rewrittenFiles.WithLabelValues(table).Add(float64(rewritten))
	s.rewrittenBytes.WithLabelValues(table).Add(float64(bytesRewritten))
	s.maintDuration.WithLabelValues(table, "compaction").Observe(took.Seconds())
}

// Expired counts an expiry that removed snapshots.
func (s *Set) Expired(table string, snapshots int, took time.Duration) {
	s.maintRuns.WithLabelValues(table, "expiry").Inc()
	s.expiredSnapshots.WithLabelValues(table).Add(float64(snapshots))
	s.maintDuration.WithLabelValues(table, "expiry").Observe(took.Seconds())
}

// OrphansRemoved counts orphan files removed.
func (s *Set) OrphansRemoved(table string, files int, bytes int64) {
	s.orphanFiles.WithLabelValues(table).Add(float64(files))
	s.orphanBytes.WithLabelValues(table).Add(float64(bytes))
}

// MaintenanceFailed counts a failed maintenance run.
func (s *Set) MaintenanceFailed(table, task string) {
	s.maintFailures.WithLabelValues(table, task).Inc()
}

// ---------------------------------------------------------------------------
// transform.StageMetrics

// LateEvents counts the events of a windowed table that were later than
// its max_lateness (routed to the dead-letter table).
func (s *Set) LateEvents(table string, n int64) {
	s.windowDropped.WithLabelValues(table).Add(float64(n))
}

// RegistryError counts a record whose writer schema could not be used, by
// kind (see floe_registry_errors_total).
func (s *Set) RegistryError(pipeline, kind string) {
	s.registryErrors.WithLabelValues(pipeline, kind).Inc()
}

// SchemaChanged counts the changes applied to a table's schema.
func (s *Set) SchemaChanged(table string, n int) {
	s.schemaChanges.WithLabelValues(table).Add(float64(n))
}

// SchemaFetched observes a schema registry request (registry.Metrics).
func (s *Set) SchemaFetched(ok bool, d time.Duration) {
	outcome := "ok"
	if !ok {
		outcome = "error"
	}
	s.registryFetches.WithLabelValues(outcome).Observe(d.Seconds())
}

// CacheHit is a schema found in the registry client's cache (registry.Metrics):
// not counted, the fetches are.
func (s *Set) CacheHit() {}

// DedupCommit reports a commit's dedup state: the files and keys its
// manifest lists, and the merges the commit made.
func (s *Set) DedupCommit(table string, files, keys, merges int64) {
	s.dedupFiles.WithLabelValues(table).Set(float64(files))
	s.dedupKeys.WithLabelValues(table).Set(float64(keys))
	s.dedupMerges.WithLabelValues(table).Add(float64(merges))
}

// WindowCommit counts a windowed table's commit: rows written, of them
// reopened ones, windows read back, and the windows in memory after it.
func (s *Set) WindowCommit(table string, rows, reopened, readBack, inMemory int64) {
	s.windowRows.WithLabelValues(table).Add(float64(rows))
	s.windowReopened.WithLabelValues(table).Add(float64(reopened))
	s.windowReadBack.WithLabelValues(table).Add(float64(readBack))
	s.windowsInMemory.WithLabelValues(table).Set(float64(inMemory))
}
