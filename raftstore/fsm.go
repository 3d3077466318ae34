package raftstore

import (
	"errors"
	"io"

	"github.com/hashicorp/raft"
)

// FSMSnapshot is a point-in-time copy of an FSM's state, taken by
// FSM.Snapshot and written out later by Persist.
//
// Persist runs on its own goroutine, concurrently with FSM.Apply, so the
// snapshot must not share mutable state with the live FSM (copy it, or use
// immutable structures). Persist writes the whole state to w and returns; a
// non-nil error discards the snapshot. If the snapshot also has a Release()
// method, it is called once raft is done with it (persisted or not).
type FSMSnapshot interface {
	Persist(w io.Writer) error
}

// FSM is the replicated state machine, as raftstore needs it. The type
// parameter lets an implementation return its own concrete snapshot type
// (Go has no covariant return types), so the implementing package need not
// import raftstore; Open infers S from the FSM's Snapshot method.
//
// Contract (the same as hashicorp/raft's, which this wraps):
//
//   - Apply(index, data) is called once per committed command, in log order,
//     with strictly increasing indexes, from a single goroutine. It must be
//     deterministic: the same data on the same state gives the same state and
//     result on every node. No clocks, randomness, map-iteration order or I/O
//     may influence the state. Its result is returned by Node.Apply on the
//     leader that proposed the command (and discarded elsewhere). An error
//     value returned here is a result, not a raft failure: the entry is
//     committed on every node.
//   - Snapshot is called on the Apply goroutine, never concurrently with
//     Apply; it must be fast (capture or copy the state, no I/O): Apply is
//     blocked while it runs. The expensive part belongs in Persist.
//   - Restore(r) replaces the entire state with the snapshot read from r
//     (discarding everything before it). It is called when the node starts
//     with a snapshot on disk, and when the leader sends a snapshot
//     (InstallSnapshot) to a follower that is too far behind; never
//     concurrently with Apply. After Restore, Apply resumes at the index after
//     the snapshot's.
//   - The state is volatile: on every start the FSM is rebuilt from the
//     latest snapshot plus the log after it. An FSM must start empty.
type FSM[S FSMSnapshot] interface {
	Apply(index uint64, data []byte) any
	Snapshot() (S, error)
	Restore(r io.Reader) error
}

// fsmAdapter turns an FSM into a raft.FSM.
type fsmAdapter[S FSMSnapshot] struct {
	fsm FSM[S]
}

func (a *fsmAdapter[S]) Apply(l *raft.Log) any {
	// Only LogCommand entries reach a non-batching raft.FSM.
	return a.fsm.Apply(l.Index, l.Data)
}

func (a *fsmAdapter[S]) Snapshot() (raft.FSMSnapshot, error) {
	s, err := a.fsm.Snapshot()
	if err != nil {
		return nil, err
	}
	return &snapshotAdapter{snap: s}, nil
}

func (a *fsmAdapter[S]) Restore(rc io.ReadCloser) error {
	err := a.fsm.Restore(rc)
	return errors.Join(err, rc.Close())
}

type snapshotAdapter struct {
	snap FSMSnapshot
}

func (s *snapshotAdapter) Persist(sink raft.SnapshotSink) error {
	if err := s.snap.Persist(sink); err != nil {
		return errors.Join(err, sink.Cancel())
	}
	return sink.Close()
}

func (s *snapshotAdapter) Release() {
	if r, ok := s.snap.(interface{ Release() }); ok {
		r.Release()
	}
}
