package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/floelake/floe/commit"
	"github.com/floelake/floe/ingest"
	"github.com/floelake/floe/internal/schema"
)

// Schema evolution (schema_evolution: add). A member whose run meets a
// writer schema the table cannot take ends the run (ingest's
// SchemaChangeError) and asks the leader to change the table's schema; the
// leader's table writer commits the change between two commits of data, so
// the change lands before any data that needs it; the member then consumes
// again from the committed offsets, with the table's new schema. Nothing
// goes through the ledger: the schema is the table's, and a change that was
// applied twice (two members, a retry after a lost answer) changes nothing
// the second time.

// EvolveSchema implements Service.
func (n *Node) EvolveSchema(ctx context.Context, req EvolveRequest) ([]string, error) {
	var p *ingest.Pipeline
	for _, q := range n.pipelines {
		if q.Name() == req.Pipeline {
			p = q
		}
	}
	switch {
	case p == nil:
		return nil, fmt.Errorf("%w: no pipeline %q", ErrInvalidArgument, req.Pipeline)
	case !p.Config().Evolves():
		return nil, fmt.Errorf("%w: pipeline %q does not evolve its table's schema (schema_evolution: %s)", ErrInvalidArgument, req.Pipeline, p.Config().SchemaEvolution)
	case req.Writer == nil:
		return nil, fmt.Errorf("%w: evolve schema needs a writer schema", ErrInvalidArgument)
	}
	if !n.raft.IsLeader() {
		svc, err := n.leaderService()
		if err != nil {
			return nil, err
		}
		return svc.EvolveSchema(ctx, req)
	}
	name := p.Config().Table
	w, err := n.Writer(name)
	if err != nil {
		return nil, err
	}
	var changes []schema.Change
	err = w.Do(ctx, func(ctx context.Context, c *commit.Committer) error {
		meta := c.Table().Metadata()
		spec := meta.PartitionSpec()
		fixed := ingest.FixedColumns(p.Config(), meta.CurrentSchema(), &spec)
		var err error
		changes, err = c.EvolveSchema(ctx, req.Writer, fixed)
		return err
	})
	var inc *schema.IncompatibleError
	if errors.As(err, &inc) {
		return nil, fmt.Errorf("%w: %v", ErrInvalidArgument, err)
	}
	if err != nil {
		return nil, err
	}
	out := make([]string, len(changes))
	for i, c := range changes {
		out[i] = c.String()
	}
	if len(changes) > 0 {
		n.metrics().SchemaChanged(name, len(changes))
		n.log.Info("table schema changed to take a writer schema", "table", name, "pipeline", req.Pipeline,
			"schema_id", req.SchemaID, "changes", out)
	}
	return out, nil
}

// evolveSchema applies a run's schema change through the leader, retrying
// while no leader answers, until ctx ends.
func (n *Node) evolveSchema(ctx context.Context, sc *ingest.SchemaChangeError) error {
	wait := 200 * time.Millisecond
	for {
		_, err := n.EvolveSchema(ctx, EvolveRequest{Pipeline: sc.Pipeline, SchemaID: sc.SchemaID, Writer: sc.Writer})
		if err == nil || errors.Is(err, ErrInvalidArgument) || ctx.Err() != nil {
			return err
		}
		n.log.Warn("schema change not applied yet; retrying", "pipeline", sc.Pipeline, "schema_id", sc.SchemaID, "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}
