package ingest

import (
	"strconv"

	"github.com/floelake/floe/commit"
)

// NoteCommit updates the running totals after the table writer committed
// one of the pipeline's tables (records is what the commit made visible).
func (p *Pipeline) NoteCommit(table string, c *commit.Committer, res commit.Result, records int64) {
	if res.AlreadyCommitted {
		records = 0 // another writer made these rows visible
	}
	p.stats.commits.Add(1)
	if table != p.opts.Pipeline.Table {
		p.stats.dlCommitted.Add(records)
		return
	}
	p.stats.committed.Add(records)
	if c == nil {
		return
	}
	loc := c.Table().MetadataLocation()
	p.stats.metadata.Store(&loc)
	if snap := c.Table().CurrentSnapshot(); snap != nil {
		p.stats.lastSnapshot.Store(snap.SnapshotID)
		if v, err := strconv.ParseInt(snap.Summary.Properties["total-data-files"], 10, 64); err == nil {
			p.stats.dataFiles.Store(v)
		}
	}
}

// NoteLag records the pipeline's total lag (records behind the high
// watermarks, over its partitions).
func (p *Pipeline) NoteLag(lag int64) { p.stats.lag.Store(lag) }
