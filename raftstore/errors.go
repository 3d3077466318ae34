package raftstore

import (
	"errors"
	"fmt"
)

// Errors returned by Node. Every error from a mutating call (Apply, AddVoter,
// RemoveServer) is in one of two classes:
//
//   - definitely failed: ErrNotLeader, ErrShutdown on its own, a context error
//     without ErrOutcomeUnknown, ErrInvalidConfig. The entry was never
//     appended to the log; retrying (on the leader) is safe.
//   - outcome unknown: anything that Is(ErrOutcomeUnknown). The entry may or
//     may not be committed, now or by a later leader. The caller must
//     reconcile (read the state back after a Barrier on the leader) before
//     deciding to retry. Never guess.
var (
	// ErrNotLeader: the call needs the leader and this node is not it. The
	// concrete error is a NotLeaderError naming the leader, if known.
	ErrNotLeader = errors.New("raftstore: not the leader")

	// ErrShutdown: the node is shut down (or shut down while the call was
	// in flight, in which case the error also Is(ErrOutcomeUnknown)).
	ErrShutdown = errors.New("raftstore: node is shut down")

	// ErrOutcomeUnknown: the command was handed to raft but this node cannot
	// tell whether it was committed (leadership lost, deadline passed or
	// shutdown while waiting). Reconcile before retrying.
	ErrOutcomeUnknown = errors.New("raftstore: outcome unknown")

	// ErrMemberConflict: a membership change names an address that another
	// member already uses.
	ErrMemberConflict = errors.New("raftstore: member conflict")

	// ErrAlreadyBootstrapped: Bootstrap on a node that already has raft
	// state (log, stable store or snapshot).
	ErrAlreadyBootstrapped = errors.New("raftstore: node already has raft state; not bootstrapping")

	// ErrInvalidConfig is wrapped by every ConfigError.
	ErrInvalidConfig = errors.New("raftstore: invalid config")
)

// NotLeaderError is returned by leader-only calls on a follower or candidate.
// LeaderID and LeaderAddr are empty while no leader is known (during an
// election). It Is(ErrNotLeader). The call definitely did not happen.
type NotLeaderError struct {
	LeaderID   string
	LeaderAddr string
}

func (e *NotLeaderError) Error() string {
	if e.LeaderID == "" && e.LeaderAddr == "" {
		return "raftstore: not the leader (no leader known)"
	}
	return fmt.Sprintf("raftstore: not the leader (leader is %s at %s)", e.LeaderID, e.LeaderAddr)
}

// Is reports target == ErrNotLeader.
func (e *NotLeaderError) Is(target error) bool { return target == ErrNotLeader }

// ConfigError names the Config field that failed validation, its value and
// what is allowed. It wraps ErrInvalidConfig.
type ConfigError struct {
	Field   string // e.g. "HeartbeatTimeout"
	Value   string // the offending value, formatted
	Allowed string // the allowed values, for a human
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("raftstore: invalid Config.%s %s: %s", e.Field, e.Value, e.Allowed)
}

func (e *ConfigError) Unwrap() error { return ErrInvalidConfig }
