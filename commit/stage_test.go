package commit_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	"github.com/stretchr/testify/require"

	"github.com/floelake/floe/commit"
)

// countingStage counts Applies, and those made while the state still held
// an Apply neither committed nor abandoned (a segment applied twice).
type countingStage struct {
	mu               sync.Mutex
	applies, doubled int
	open             bool
}

func (s *countingStage) Apply(_ context.Context, _ *table.Table, seg commit.Segment) (commit.Segment, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.applies++
	if s.open {
		s.doubled++
	}
	s.open = true
	return seg, nil
}

func (s *countingStage) Committed(int64) { s.mu.Lock(); s.open = false; s.mu.Unlock() }
func (s *countingStage) Abandon()        { s.mu.Lock(); s.open = false; s.mu.Unlock() }

// failingDeltas fails its first Resolves, then resolves to nothing.
type failingDeltas struct {
	mu    sync.Mutex
	fails int
}

func (d *failingDeltas) Resolve(_ context.Context, base *table.Table, _ []iceberg.DataFile) (commit.RowDelta, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fails > 0 {
		d.fails--
		return commit.RowDelta{}, errors.New("injected: cannot read the keys")
	}
	return commit.RowDelta{Base: commit.HeadID(base)}, nil
}
func (d *failingDeltas) Committed(int64)    {}
func (d *failingDeltas) Abandon()           {}
func (d *failingDeltas) Moved(int64, int64) {}
func (d *failingDeltas) Rewritten(context.Context, *table.Table, int64, []iceberg.DataFile, []iceberg.DataFile) {
}
func (d *failingDeltas) Rebase(context.Context, *table.Table, []iceberg.DataFile, []iceberg.DataFile) ([]iceberg.DataFile, error) {
	return nil, nil
}
func (d *failingDeltas) Obsolete(context.Context, *table.Table) ([]iceberg.DataFile, error) {
	return nil, nil
}

// TestWriterAbandonsTheStageWhenResolvingFails: when a keyed commit's
// deletes cannot be resolved after its stage applied the segment, the
// writer abandons the stage, so the retry applies the segment to the
// table's state, not on top of the failed attempt (a window counted twice).
func TestWriterAbandonsTheStageWhenResolvingFails(t *testing.T) {
	r := newWriterRig(t)
	require.NoError(t, r.propose(0, 10).Err)
	st, d := &countingStage{}, &failingDeltas{fails: 2}
	cfg := r.writerConfig(r.cat, 1, nil)
	cfg.Stage, cfg.Deltas = st, d
	r.run(r.writerOf(cfg), 10)
	require.Zero(t, d.fails, "the injected failures did not happen")
	require.Equal(t, 3, st.applies, "two failed rounds and the one that landed each apply the segment")
	require.Zero(t, st.doubled, "the segment was applied on top of an attempt that did not land")
}
