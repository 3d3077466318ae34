package testutil

import (
	"context"

	"github.com/apache/iceberg-go/table"

	"github.com/floelake/floe/commit"
)

// Direct is a table writer with nothing in flight, for maintenance run in
// tests: Do runs f at once on the committer.
type Direct struct{ C *commit.Committer }

// Do runs f on the committer.
func (d Direct) Do(ctx context.Context, f func(context.Context, *commit.Committer) error) error {
	return f(ctx, d.C)
}

// Current is the committer's table.
func (d Direct) Current() *table.Table { return d.C.Table() }

// PendingFiles is empty: nothing is in flight.
func (d Direct) PendingFiles() ([]string, error) { return nil, nil }
