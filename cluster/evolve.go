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
//
// The leader may refuse: its plan against the table's current schema may
// find the writer schema incompatible where the member's plan, against the
// schema its run started with, did not (the table changed meanwhile). The
// refusal is the table's answer and stays so, so the member makes the
// records of that writer schema dead letters, as it does those of a writer
// schema it finds incompatible itself, instead of asking again forever.

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
		return nil, fmt.Errorf("%w: node %s runs no pipeline %q", ErrInvalidArgument, n.id, req.Pipeline)
	case !p.Config().Evolves():
		return nil, fmt.Errorf("%w: on node %s, pipeline %q does not evolve its table's schema (schema_evolution: %s)", ErrInvalidArgument, n.id, req.Pipeline, p.Config().SchemaEvolution)
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
	evolve := func(ctx context.Context, c *commit.Committer) error {
		meta := c.Table().Metadata()
		spec := meta.PartitionSpec()
		fixed := ingest.FixedColumns(p.Config(), meta.CurrentSchema(), &spec)
		var err error
		changes, err = c.EvolveSchema(ctx, req.Writer, fixed)
		return err
	}
	err = w.Do(ctx, evolve)
	var inc *schema.IncompatibleError
	if errors.As(err, &inc) {
		// A refusal makes records dead letters for good, so it must come
		// from the table as it is, not from the table writer's copy of
		// it: a schema change made outside floe reaches the copy only
		// when the writer next reloads the table, and a plan against an
		// older schema may be refused where the current one takes the
		// writer schema. The table writer reloads the table after every
		// task: plan once more, against the table as it is now.
		err = w.Do(ctx, evolve)
	}
	if errors.As(err, &inc) {
		return nil, fmt.Errorf("%w: %v", ErrSchemaRefused, err)
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
// while no leader answers, until ctx ends. It returns the leader's answer
// when it is one: nil, ErrSchemaRefused (the table cannot take the writer
// schema) or ErrInvalidArgument (the leader's configuration of the
// pipeline differs from this node's).
func (n *Node) evolveSchema(ctx context.Context, sc *ingest.SchemaChangeError) error {
	wait := 200 * time.Millisecond
	for {
		_, err := n.EvolveSchema(ctx, EvolveRequest{Pipeline: sc.Pipeline, SchemaID: sc.SchemaID, Writer: sc.Writer})
		if err == nil || errors.Is(err, ErrSchemaRefused) || errors.Is(err, ErrInvalidArgument) || ctx.Err() != nil {
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
