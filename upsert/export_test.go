package upsert

import "time"

// HoldRebuilds makes the resolver's background rebuilds wait until gate is
// closed.
func HoldRebuilds(gate <-chan struct{}) Option {
	return func(r *Resolver) { r.rebuildGate = gate }
}

// SetRebuildWait changes how long a commit waits for a rebuild.
func (r *Resolver) SetRebuildWait(d time.Duration) { r.rebuildWait = d }
