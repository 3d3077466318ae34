package cluster

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/floelake/floe/commit"
	clusterv1 "github.com/floelake/floe/proto/floe/cluster/v1"
)

// The wire forms of the cluster API's types (proto/floe/cluster/v1). Every
// conversion round-trips: decoding what was encoded gives back the same
// value, errors included, with two normalizations: empty slices and maps
// decode as nil, and times decode in UTC.

// ledgerSentinels are the commit sentinels a LedgerError names, in the
// order they are tried when encoding an error that wraps several.
var ledgerSentinels = []struct {
	wire clusterv1.LedgerSentinel
	err  error
}{
	{clusterv1.LedgerSentinel_LEDGER_SENTINEL_BAD_COMMAND, commit.ErrBadCommand},
	{clusterv1.LedgerSentinel_LEDGER_SENTINEL_STALE_INDEX, commit.ErrStaleIndex},
	{clusterv1.LedgerSentinel_LEDGER_SENTINEL_UNKNOWN_MEMBER, commit.ErrUnknownMember},
	{clusterv1.LedgerSentinel_LEDGER_SENTINEL_UNKNOWN_SEGMENT, commit.ErrUnknownSegment},
	{clusterv1.LedgerSentinel_LEDGER_SENTINEL_NOT_COVERED, commit.ErrNotCovered},
	{clusterv1.LedgerSentinel_LEDGER_SENTINEL_PARTIAL_COMMIT, commit.ErrPartialCommit},
	{clusterv1.LedgerSentinel_LEDGER_SENTINEL_PIPELINE_MISMATCH, commit.ErrPipelineMismatch},
	{clusterv1.LedgerSentinel_LEDGER_SENTINEL_BAD_SNAPSHOT, commit.ErrBadSnapshot},
	{clusterv1.LedgerSentinel_LEDGER_SENTINEL_BAD_OFFSETS, commit.ErrBadOffsets},
	{clusterv1.LedgerSentinel_LEDGER_SENTINEL_CLOSED, commit.ErrClosed},
}

// wireError is an error rebuilt from its wire form whose text is not the
// one its wrapped error would produce: Error is the original text, Unwrap
// the sentinel or typed error it wrapped.
type wireError struct {
	msg string
	err error
}

func (e *wireError) Error() string { return e.msg }
func (e *wireError) Unwrap() error { return e.err }

// ledgerErrorToWire encodes an error the ledger returned; nil for nil.
// A typed ledger error (StaleEpochError, NotOwnerError, OffsetGapError,
// OffsetRegressionError) keeps all its fields, an error wrapping a commit
// sentinel keeps which one, and anything else keeps its text only.
func ledgerErrorToWire(err error) *clusterv1.LedgerError {
	if err == nil {
		return nil
	}
	le, _ := ledgerKind(err)
	return le
}

// ledgerKind encodes err and reports whether it is (or wraps) an error the
// commit package defines.
func ledgerKind(err error) (*clusterv1.LedgerError, bool) {
	le := &clusterv1.LedgerError{Message: err.Error()}
	var (
		stale *commit.StaleEpochError
		owner *commit.NotOwnerError
		gap   *commit.OffsetGapError
		regr  *commit.OffsetRegressionError
	)
	switch {
	case errors.As(err, &stale):
		le.Kind = &clusterv1.LedgerError_StaleEpoch{StaleEpoch: &clusterv1.StaleEpoch{
			Pipeline: stale.Pipeline, Topic: stale.Topic, Partition: stale.Partition, Have: stale.Have, Want: stale.Want,
		}}
	case errors.As(err, &owner):
		le.Kind = &clusterv1.LedgerError_NotOwner{NotOwner: &clusterv1.NotOwner{
			Pipeline: owner.Pipeline, Topic: owner.Topic, Partition: owner.Partition, Owner: owner.Owner, Proposer: owner.Proposer,
		}}
	case errors.As(err, &gap):
		le.Kind = &clusterv1.LedgerError_OffsetGap{OffsetGap: &clusterv1.OffsetGap{
			Table: gap.Table, Topic: gap.Topic, Partition: gap.Partition, Want: gap.Want, Got: gap.Got,
		}}
	case errors.As(err, &regr):
		le.Kind = &clusterv1.LedgerError_OffsetRegression{OffsetRegression: offsetRegressionToWire(*regr)}
	default:
		for _, s := range ledgerSentinels {
			if errors.Is(err, s.err) {
				le.Kind = &clusterv1.LedgerError_Sentinel{Sentinel: s.wire}
				return le, true
			}
		}
		return le, false
	}
	return le, true
}

// ledgerErrorFromWire decodes ledgerErrorToWire's output; nil for nil. A
// typed error comes back as the same pointer type with the same fields, an
// error wrapping a sentinel as one that Is it, and both with the original
// text; anything else as an error with the original text.
func ledgerErrorFromWire(le *clusterv1.LedgerError) error {
	if le == nil {
		return nil
	}
	var typed error
	switch k := le.GetKind().(type) {
	case *clusterv1.LedgerError_StaleEpoch:
		s := k.StaleEpoch
		typed = &commit.StaleEpochError{Pipeline: s.GetPipeline(), Topic: s.GetTopic(), Partition: s.GetPartition(), Have: s.GetHave(), Want: s.GetWant()}
	case *clusterv1.LedgerError_NotOwner:
		o := k.NotOwner
		typed = &commit.NotOwnerError{Pipeline: o.GetPipeline(), Topic: o.GetTopic(), Partition: o.GetPartition(), Owner: o.GetOwner(), Proposer: o.GetProposer()}
	case *clusterv1.LedgerError_OffsetGap:
		g := k.OffsetGap
		typed = &commit.OffsetGapError{Table: g.GetTable(), Topic: g.GetTopic(), Partition: g.GetPartition(), Want: g.GetWant(), Got: g.GetGot()}
	case *clusterv1.LedgerError_OffsetRegression:
		r := offsetRegressionFromWire(k.OffsetRegression)
		typed = &r
	case *clusterv1.LedgerError_Sentinel:
		for _, s := range ledgerSentinels {
			if s.wire == k.Sentinel {
				return sentinelError(le.GetMessage(), s.err)
			}
		}
		// A sentinel this build does not know (a newer peer): the text
		// is all there is.
	}
	switch {
	case typed == nil:
		return errors.New(le.GetMessage())
	case typed.Error() == le.GetMessage():
		return typed
	default:
		return &wireError{msg: le.GetMessage(), err: typed}
	}
}

// sentinelError rebuilds an error with text msg that wraps sentinel. When msg
// is the sentinel's text followed by details, as the ledger's
// fmt.Errorf("%w: ...") produces, the result is built the same way, so it
// equals the original.
func sentinelError(msg string, sentinel error) error {
	if rest, ok := strings.CutPrefix(msg, sentinel.Error()); ok {
		if rest == "" {
			return sentinel
		}
		return fmt.Errorf("%w%s", sentinel, rest)
	}
	return &wireError{msg: msg, err: sentinel}
}

func offsetRegressionToWire(e commit.OffsetRegressionError) *clusterv1.OffsetRegression {
	return &clusterv1.OffsetRegression{Table: e.Table, Topic: e.Topic, Partition: e.Partition, Have: e.Have, Got: e.Got}
}

func offsetRegressionFromWire(r *clusterv1.OffsetRegression) commit.OffsetRegressionError {
	return commit.OffsetRegressionError{Table: r.GetTable(), Topic: r.GetTopic(), Partition: r.GetPartition(), Have: r.GetHave(), Got: r.GetGot()}
}

// applyResultToWire encodes an ApplyResult; its epochs are sorted by
// partition, so the encoding is deterministic.
func applyResultToWire(res commit.ApplyResult) *clusterv1.ApplyResponse {
	out := &clusterv1.ApplyResponse{
		CommandType: string(res.Type),
		Error:       ledgerErrorToWire(res.Err),
		SegmentId:   res.SegmentID,
		Dropped:     res.Dropped,
		Conflicts:   res.Conflicts,
	}
	for k, e := range res.Epochs {
		out.Epochs = append(out.Epochs, &clusterv1.PartitionEpoch{Pipeline: k.Pipeline, Topic: k.Topic, Partition: k.Partition, Epoch: e})
	}
	slices.SortFunc(out.Epochs, func(a, b *clusterv1.PartitionEpoch) int {
		return cmp.Or(strings.Compare(a.Pipeline, b.Pipeline), strings.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	for _, b := range res.Behind {
		out.Behind = append(out.Behind, offsetRegressionToWire(b))
	}
	return out
}

// applyResultFromWire decodes applyResultToWire's output.
func applyResultFromWire(r *clusterv1.ApplyResponse) commit.ApplyResult {
	res := commit.ApplyResult{
		Type:      commit.CommandType(r.GetCommandType()),
		Err:       ledgerErrorFromWire(r.GetError()),
		SegmentID: r.GetSegmentId(),
		Dropped:   nilIfEmpty(r.GetDropped()),
		Conflicts: nilIfEmpty(r.GetConflicts()),
	}
	if len(r.GetEpochs()) > 0 {
		res.Epochs = make(map[commit.PartitionKey]uint64, len(r.GetEpochs()))
		for _, e := range r.GetEpochs() {
			res.Epochs[commit.PartitionKey{Pipeline: e.GetPipeline(), Topic: e.GetTopic(), Partition: e.GetPartition()}] = e.GetEpoch()
		}
	}
	for _, b := range r.GetBehind() {
		res.Behind = append(res.Behind, offsetRegressionFromWire(b))
	}
	return res
}

func nilIfEmpty[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	return s
}

func joinRequestToWire(req JoinRequest) *clusterv1.JoinRequest {
	return &clusterv1.JoinRequest{NodeId: req.NodeID, RaftAddr: req.RaftAddr, ApiAddr: req.APIAddr}
}

func joinRequestFromWire(r *clusterv1.JoinRequest) JoinRequest {
	return JoinRequest{NodeID: r.GetNodeId(), RaftAddr: r.GetRaftAddr(), APIAddr: r.GetApiAddr()}
}

// timeToWire encodes a time; the zero time as unset.
func timeToWire(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

// timeFromWire decodes timeToWire's output, in UTC.
func timeFromWire(ts *timestamppb.Timestamp) time.Time {
	if ts == nil {
		return time.Time{}
	}
	return ts.AsTime()
}

func statusToWire(s Status) *clusterv1.StatusResponse {
	out := &clusterv1.StatusResponse{
		NodeId:        s.NodeID,
		LeaderId:      s.LeaderID,
		LeaderApiAddr: s.LeaderAPIAddr,
		Term:          s.Term,
		AppliedIndex:  s.AppliedIndex,
	}
	for _, m := range s.Members {
		out.Members = append(out.Members, &clusterv1.MemberStatus{
			Id:            m.ID,
			RaftAddr:      m.RaftAddr,
			ApiAddr:       m.APIAddr,
			Suffrage:      m.Suffrage,
			LastHeartbeat: timeToWire(m.LastHeartbeat),
			Alive:         m.Alive,
			Partitions:    int64(m.Partitions),
		})
	}
	for _, p := range s.Partitions {
		out.Partitions = append(out.Partitions, &clusterv1.PartitionStatus{
			Pipeline:     p.Pipeline,
			Topic:        p.Topic,
			Partition:    p.Partition,
			Owner:        p.Owner,
			Epoch:        p.Epoch,
			NextExpected: p.NextExpected,
			Committed:    p.Committed,
			End:          p.End,
			Lag:          p.Lag,
		})
	}
	for _, t := range s.Tables {
		out.Tables = append(out.Tables, &clusterv1.TableStatus{
			Table:           t.Table,
			Pipeline:        t.Pipeline,
			SnapshotId:      t.SnapshotID,
			PendingSegments: int64(t.PendingSegments),
			PendingRecords:  t.PendingRecords,
		})
	}
	return out
}

func statusFromWire(r *clusterv1.StatusResponse) Status {
	s := Status{
		NodeID:        r.GetNodeId(),
		LeaderID:      r.GetLeaderId(),
		LeaderAPIAddr: r.GetLeaderApiAddr(),
		Term:          r.GetTerm(),
		AppliedIndex:  r.GetAppliedIndex(),
	}
	for _, m := range r.GetMembers() {
		s.Members = append(s.Members, MemberStatus{
			ID:            m.GetId(),
			RaftAddr:      m.GetRaftAddr(),
			APIAddr:       m.GetApiAddr(),
			Suffrage:      m.GetSuffrage(),
			LastHeartbeat: timeFromWire(m.GetLastHeartbeat()),
			Alive:         m.GetAlive(),
			Partitions:    int(m.GetPartitions()),
		})
	}
	for _, p := range r.GetPartitions() {
		s.Partitions = append(s.Partitions, PartitionStatus{
			Pipeline:     p.GetPipeline(),
			Topic:        p.GetTopic(),
			Partition:    p.GetPartition(),
			Owner:        p.GetOwner(),
			Epoch:        p.GetEpoch(),
			NextExpected: p.GetNextExpected(),
			Committed:    p.GetCommitted(),
			End:          p.GetEnd(),
			Lag:          p.GetLag(),
		})
	}
	for _, t := range r.GetTables() {
		s.Tables = append(s.Tables, TableStatus{
			Table:           t.GetTable(),
			Pipeline:        t.GetPipeline(),
			SnapshotID:      t.GetSnapshotId(),
			PendingSegments: int(t.GetPendingSegments()),
			PendingRecords:  t.GetPendingRecords(),
		})
	}
	return s
}
