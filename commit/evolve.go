package commit

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"

	"github.com/floelake/floe/internal/clock"
	"github.com/floelake/floe/internal/failpoint"
	"github.com/floelake/floe/internal/schema"
)

// Schema changes are metadata-only commits: a new schema becomes the
// table's current one, and nothing else moves. No snapshot is added, so
// main, the pipeline's tag and the floe.* summary properties (offsets,
// state, watermark) stay where the last segment left them, and the next
// segment's commit builds on the same snapshot as it would have without
// the change. Files written under the old schema stay valid: Iceberg reads
// each file by field id, an added column reads as null from files that
// lack it, and a promoted column's old values read as the wider type.
//
// The commit asserts the schema it was planned against
// (AssertCurrentSchemaID): a schema change made meanwhile by anyone else
// makes it fail instead of being overwritten, and it is planned again on
// the reloaded table. The plan is idempotent, so a change that already
// landed (a retried request, another node's identical change, an attempt
// whose outcome was unknown) plans to nothing.

// evolveAttempts bounds the schema-change commits EvolveSchema tries
// before giving up; each failed one reloads and plans again.
const evolveAttempts = 5

// EvolveSchema changes the committer's table so that it takes records of
// writer: it commits schema.Evolve's plan against the table's current
// schema (fixed as there) and returns the changes it committed; none when
// the table takes the records already, so a retried or duplicated request
// is harmless. An incompatible writer returns the *schema.IncompatibleError
// (errors.As) and commits nothing.
//
// Like every change of the table, it runs on the table writer's goroutine
// (TableWriter.Do), between two commits; the committer reloads the table
// afterwards, so its Table reports the new schema. Callers that keep a
// schema of the table, or anything derived from it (fileio.TableInfo, Arrow
// schemas, decoders), must take them from the reloaded table.
//
// If the change landed but the reload after it failed, the changes are
// returned with the error: the committer still holds the old table, and a
// repeated call plans nothing.
func (c *Committer) EvolveSchema(ctx context.Context, writer *iceberg.Schema, fixed []string) ([]schema.Change, error) {
	backoff := c.cfg.MinBackoff
	var (
		lastErr error
		// tried is the schema the last failed attempt would have made
		// current, with the changes it planned.
		tried        *iceberg.Schema
		triedChanges []schema.Change
	)
	for attempt := 1; attempt <= evolveAttempts; attempt++ {
		if attempt > 1 {
			if err := clock.Sleep(ctx, backoff); err != nil {
				return nil, fmt.Errorf("commit: evolve the schema of %s: gave up after %d attempts: %w (last: %v)", c.ident, attempt-1, err, lastErr)
			}
			backoff = min(backoff*2, c.cfg.MaxBackoff)
			if err := c.reload(ctx); err != nil {
				if Classify(err) == ClassFatal {
					// The table is gone or replaced, or its offsets
					// cannot be read: retrying cannot help.
					return nil, err
				}
				lastErr = err
				continue
			}
		}
		base := c.tbl
		changes, err := schema.Evolve(base.Schema(), writer, fixed)
		if err != nil {
			return nil, fmt.Errorf("commit: evolve the schema of %s: %w", c.ident, err)
		}
		if len(changes) == 0 {
			if tried != nil && sameSchema(base.Schema(), tried) {
				// An attempt reported as failed (an unknown outcome)
				// had landed, or someone made the same change meanwhile:
				// the table is as that attempt would have made it.
				return triedChanges, nil
			}
			return nil, nil
		}
		upd, reqs, want, err := stageSchema(base, changes)
		if err != nil {
			// iceberg-go refused the plan: retrying cannot help.
			return nil, fmt.Errorf("commit: evolve the schema of %s (%v): %w", c.ident, changes, err)
		}
		if err := failpoint.Hit("schema/before-catalog"); err != nil {
			return nil, err
		}
		if _, _, err := c.cat.CommitTable(ctx, base.Identifier(), reqs, upd); err != nil {
			lastErr = fmt.Errorf("commit: evolve the schema of %s: %w", c.ident, err)
			tried, triedChanges = want, changes
			class := Classify(err)
			c.cfg.Logger.Warn("schema change failed", "table", c.ident, "class", class, "attempt", attempt, "err", err)
			if class == ClassFatal {
				return nil, lastErr
			}
			continue
		}
		if err := failpoint.Hit("schema/after-catalog"); err != nil {
			return nil, err
		}
		c.cfg.Logger.Info("evolved the table's schema", "table", c.ident, "changes", fmt.Sprint(changes))
		if err := c.reload(ctx); err != nil {
			return changes, fmt.Errorf("commit: evolved the schema of %s, then: %w", c.ident, err)
		}
		return changes, nil
	}
	return nil, fmt.Errorf("commit: evolve the schema of %s: gave up after %d attempts: %w", c.ident, evolveAttempts, lastErr)
}

// stageSchema returns the catalog updates and requirements that apply
// changes to base's current schema, and the schema they make current. The
// requirements assert base's table and current schema, so the commit fails
// if either changed meanwhile. A table with a default name mapping gets it
// extended by the new columns, so readers of files without field ids keep
// finding them.
func stageSchema(base *table.Table, changes []schema.Change) ([]table.Update, []table.Requirement, *iceberg.Schema, error) {
	meta := base.Metadata()
	var opts []table.UpdateSchemaOption
	if nm := meta.NameMapping(); nm != nil {
		opts = append(opts, table.WithNameMapping(nm))
	}
	// Case-sensitive, as Evolve matches names; incompatible changes not
	// allowed, so iceberg-go checks every promotion again.
	upd, reqs, err := schema.Stage(table.NewUpdateSchema(base.NewTransaction(), true, false, opts...), changes).BuildUpdates()
	if err != nil {
		return nil, nil, nil, err
	}
	if len(upd) == 0 {
		return nil, nil, nil, errors.New("iceberg-go staged no schema update for the planned changes")
	}
	// An UpdateSchema runs its operations once; the schema the updates
	// carry comes from a second one, given the same changes on the same
	// base.
	want, err := schema.Stage(table.NewUpdateSchema(base.NewTransaction(), true, false), changes).Apply()
	if err != nil {
		return nil, nil, nil, err
	}
	// iceberg-go sorts the new schema's identifier field ids. The key
	// columns do not change (Evolve keeps them fixed), so their ids are the
	// same, and the table keeps them in its own order: the order they were
	// declared in, which readers of the table's key compare against.
	if ids := meta.CurrentSchema().IdentifierFieldIDs; !slices.Equal(want.IdentifierFieldIDs, ids) &&
		slices.Equal(slices.Sorted(slices.Values(ids)), want.IdentifierFieldIDs) {
		want = iceberg.NewSchemaWithIdentifiers(want.ID, slices.Clone(ids), want.Fields()...)
		for i, u := range upd {
			if u.Action() == table.UpdateAddSchema {
				upd[i] = table.NewAddSchemaUpdate(want)
			}
		}
	}
	reqs = append(reqs, table.AssertTableUUID(meta.TableUUID()), table.AssertCurrentSchemaID(meta.CurrentSchema().ID))
	return upd, reqs, want, nil
}

// sameSchema reports whether a and b have the same fields (ids, names,
// types, requiredness) and identifier fields, whatever their schema ids.
func sameSchema(a, b *iceberg.Schema) bool {
	as, bs := a.AsStruct(), b.AsStruct()
	return as.Equals(&bs) && slices.Equal(a.IdentifierFieldIDs, b.IdentifierFieldIDs)
}
