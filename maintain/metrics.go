package maintain

import "time"

// Health is a table's shape, as measured when its files are planned.
type Health struct {
	// DataFiles and DataBytes are the live data files and their size.
	DataFiles int
	DataBytes int64
	// Partitions holding live data files, and the most files one holds.
	Partitions           int
	MaxFilesPerPartition int
	// Snapshots retained in the metadata, and the current metadata file's
	// size in bytes.
	Snapshots     int
	MetadataBytes int64
}

// Metrics observes maintenance. Implementations must be safe for
// concurrent use; internal/metrics.Set implements it (floe_table_*,
// floe_maintenance_*).
type Metrics interface {
	// TableHealth is called whenever the table's files are planned: the
	// live data files and their bytes, the partitions holding them and
	// the most one holds, the snapshots retained and the current metadata
	// file's bytes (Health's fields, as plain values).
	TableHealth(table string, dataFiles int, dataBytes int64, partitions, maxFilesPerPartition, snapshots int, metadataBytes int64)
	// Compacted is called for every committed compaction.
	Compacted(table string, rewritten, written int, bytesRewritten int64, took time.Duration)
	// Expired is called for every expiry that removed snapshots.
	Expired(table string, snapshots int, took time.Duration)
	OrphansRemoved(table string, files int, bytes int64)
	// MaintenanceFailed counts a failed run of task (compaction, expiry,
	// orphans).
	MaintenanceFailed(table, task string)
}

// NopMetrics reports nothing.
type NopMetrics struct{}

var _ Metrics = NopMetrics{}

func (NopMetrics) TableHealth(string, int, int64, int, int, int, int64) {}
func (NopMetrics) Compacted(string, int, int, int64, time.Duration)     {}
func (NopMetrics) Expired(string, int, time.Duration)                   {}
func (NopMetrics) OrphansRemoved(string, int, int64)                    {}
func (NopMetrics) MaintenanceFailed(string, string)                     {}
