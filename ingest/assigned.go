package ingest

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floelake/floe/catalog"
	"github.com/floelake/floe/commit"
	"github.com/floelake/floe/ingest/transform/dedup"
	"github.com/floelake/floe/internal/fileio"
)

// This file is the pipeline as a cluster member runs it (cluster):
// the raft leader prepares the tables and commits, every member consumes
// the partitions the ledger assigns it and hands each interval's files to
// the ledger instead of committing them itself.

// Output is one table a pipeline writes to, with offsets of its own: the
// main table and the dead-letter table today; delete files and window
// tables next. Everything that handles a pipeline's tables (the ledger's
// segments, the table writers, the floors) goes over the list, in order.
type Output struct {
	// Role says what the output holds: RoleMain or RoleDeadLetter.
	Role string
	// Table is the table's name as the catalog and the ledger know it
	// ("namespace.table").
	Table string
}

// Output roles.
const (
	RoleMain       = "main"
	RoleDeadLetter = "dead_letter"
)

// Outputs returns the pipeline's outputs, the main table first.
func (p *Pipeline) Outputs() []Output {
	return []Output{
		{Role: RoleMain, Table: p.opts.Pipeline.Table},
		{Role: RoleDeadLetter, Table: p.opts.Pipeline.DeadLetter()},
	}
}

// Prepared is a pipeline's tables, loaded at their current snapshots, with
// a start offset recorded in each for every partition of its topics.
type Prepared struct {
	// Committers holds a committer per output, in Outputs order.
	Committers []*commit.Committer
	// Partitions lists every partition of the pipeline's topics.
	Partitions map[string][]int32
}

// Prepare loads or creates the pipeline's tables (inferring the schema if
// none is declared) and records a start offset in both tables for every
// partition that has none, exactly as a single node does before consuming.
// It is idempotent: calling it again records only partitions added since.
func (p *Pipeline) Prepare(ctx context.Context) (Prepared, error) {
	pr, err := p.prepare(ctx, ctx)
	if err != nil {
		if ctx.Err() == nil {
			p.setHealth(err)
		}
		return Prepared{}, err
	}
	pr.adm.Close()
	return Prepared{Committers: pr.committers, Partitions: pr.parts}, nil
}

// Name returns the pipeline's name.
func (p *Pipeline) Name() string { return p.opts.Pipeline.Name }

// Config returns the pipeline's configuration.
func (p *Pipeline) Config() PipelineConfig { return p.opts.Pipeline }

// Batch is one commit interval's output of RunAssigned: a segment per
// output with its files written and closed.
type Batch struct {
	// Segments holds a segment per output, in Outputs order.
	Segments []commit.Segment
	// Samples are Kafka timestamps of a sample of the batch's records.
	Samples []time.Time
	// Final is set on the batch sealed when the run's context ended.
	Final bool
}

// Assignment is what RunAssigned consumes and where its batches go.
type Assignment struct {
	// Start holds every partition to consume and the offset to start at.
	Start commit.Offsets
	// Floors holds, per output in Outputs order and per partition, the
	// offset from which the output's table takes records (where its
	// accepted offsets end): records below a table's floor are not routed
	// to it.
	Floors []commit.Offsets
	// Accepted holds the main table's entries of the segments the ledger
	// accepted and the table has not committed yet, read before the start
	// offsets were: a stateful transform rebuilds the state it decides by
	// at Start from the table's and theirs (dedup: their key files;
	// max_lateness: their event times).
	Accepted []commit.SegmentEntry
	// Deliver receives every batch in order, on one goroutine. An error
	// ends the run.
	Deliver func(ctx context.Context, b Batch) error
}

// RunAssigned consumes exactly the partitions of a from their start
// offsets, decodes records and writes files, and hands each commit
// interval's files to a.Deliver instead of committing them. When ctx ends it
// seals what it holds and delivers it as the final batch (within
// ShutdownTimeout), then returns nil; otherwise it returns the first error.
func (p *Pipeline) RunAssigned(ctx context.Context, a Assignment) error {
	if a.Start.Len() == 0 {
		return fmt.Errorf("ingest: %s: no partition assigned", p.opts.Pipeline.Name)
	}
	baseOpts, err := ClientOpts(p.opts.Kafka)
	if err != nil {
		return &configError{err}
	}
	// Files are uploaded until the final batch is delivered, after ctx
	// ends; consume bounds that by ShutdownTimeout.
	fsCtx, cancelFS := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelFS()
	outs := p.Outputs()
	if len(a.Floors) != len(outs) {
		return fmt.Errorf("ingest: %s: %d floors for %d outputs", p.opts.Pipeline.Name, len(a.Floors), len(outs))
	}
	specs := make([]outputSpec, len(outs))
	var dd map[string]*dedup.Partition
	var clocks commit.Offsets
	for t, o := range outs {
		tbl, err := p.opts.Catalog.LoadTable(ctx, catalog.Ident(o.Table))
		if err != nil {
			return fmt.Errorf("ingest: load %s: %w", o.Table, err)
		}
		if o.Role == RoleMain {
			if dd, clocks, err = p.runState(fsCtx, tbl, a.Accepted, a.Start); err != nil {
				return fmt.Errorf("ingest: %s: %w", p.opts.Pipeline.Name, err)
			}
		}
		specs[t] = outputSpec{Output: o, floors: a.Floors[t].Clone()}
		if specs[t].info, err = fileio.InfoFromTable(fsCtx, tbl); err != nil {
			return err
		}
	}
	plan := map[string]map[int32]kgo.Offset{}
	pos := map[topicPartition]int64{}
	for topic, ps := range a.Start {
		plan[topic] = map[int32]kgo.Offset{}
		for part, o := range ps {
			plan[topic][part] = kgo.NewOffset().At(o)
			pos[topicPartition{topic, part}] = o
		}
	}
	return p.consume(ctx, baseOpts, consumeSpec{
		outs: specs, plan: plan, pos: pos, dedup: dd, clocks: clocks,
		deliver: func(ctx context.Context, seals <-chan seal) error {
			for s := range seals {
				files, err := closeWriters(ctx, s)
				if err != nil {
					if ctx.Err() == nil {
						p.metrics().FileWriteFailed(p.opts.Pipeline.Name)
					}
					return err
				}
				b := Batch{Final: s.final, Segments: make([]commit.Segment, len(outs))}
				for t := range outs {
					seg := &b.Segments[t]
					*seg = commit.Segment{From: commit.Offsets{}, To: commit.Offsets{}, Files: files[t]}
					for _, r := range s.results {
						r.outs[t].seg.Files = nil
						if err := seg.Append(r.outs[t].seg); err != nil {
							return err
						}
					}
				}
				for _, r := range s.results {
					b.Samples = append(b.Samples, r.samples...)
				}
				if err := a.Deliver(ctx, b); err != nil {
					return err
				}
			}
			return nil
		},
	})
}
