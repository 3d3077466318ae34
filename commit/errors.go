package commit

import (
	"errors"
	"fmt"
	"strings"

	icecat "github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"
)

var (
	// ErrBadOffsets means a floe.offsets summary value does not parse.
	ErrBadOffsets = errors.New("commit: malformed floe.offsets")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("commit: committer is closed")
	// ErrMissingFrom means a segment names a partition in To but not in
	// From while the table already has an offset for it: without a start
	// offset the segment cannot be checked for contiguity, and committing it
	// would overwrite the table's offset. Start offsets are recorded with
	// Committer.RecordStart, which only fills partitions the table lacks.
	ErrMissingFrom = errors.New("commit: segment has no start offset for a partition the table already has")
	// ErrTableReplaced means the catalog's table of the committer's name is
	// not the one it loaded (another table UUID): the table was renamed or
	// dropped and another created under the name. The committer's view of
	// the offsets belongs to the old table; its owner must load the new one.
	ErrTableReplaced = errors.New("commit: the table was replaced by another of the same name")
	// ErrAncestryCut is matched (errors.Is) by every AncestryCutError.
	ErrAncestryCut = errors.New("commit: snapshot ancestry cut before the pipeline's offsets")
)

// AncestryCutError means the main branch's history was cut (the parent of
// SnapshotID was expired from the table's metadata) before any snapshot
// carrying floe.offsets for Pipeline, and the pipeline's tag could not stand
// in for it. The table no longer says where the pipeline stopped, and any
// guess (the configured start) would duplicate or lose records, so floe
// refuses to start the pipeline until an operator says where to resume.
type AncestryCutError struct {
	Table    string
	Pipeline string
	// SnapshotID is the oldest snapshot of main's history still in the
	// metadata; MissingParent is its parent, which is not.
	SnapshotID    int64
	MissingParent int64
	// Reason says why the pipeline's tag (TagName) could not be used.
	Reason string
}

func (e *AncestryCutError) Error() string {
	return fmt.Sprintf("commit: cannot find where pipeline %q stopped on %s: main's history ends at snapshot %d, "+
		"whose parent %d was expired, before any snapshot carrying %s for the pipeline, and %s. "+
		"floe will not guess (its configured start would duplicate or lose records). "+
		"To resume, commit to the table a snapshot whose summary carries %s=%s and %s=%s for the records the table holds "+
		"(%s starts every partition at the configured start), or point tag %q at the last snapshot floe committed "+
		"if it is still in the table and the current data descends from it (see docs/decisions.md)",
		e.Pipeline, e.Table, e.SnapshotID, e.MissingParent, PropOffsets, e.Reason,
		PropPipeline, e.Pipeline, PropOffsets, `{"<topic>":{"<partition>":<next offset>}}`, "{}", TagName(e.Pipeline))
}

// Is makes errors.Is(err, ErrAncestryCut) hold.
func (e *AncestryCutError) Is(target error) bool { return target == ErrAncestryCut }

// OffsetGapError means a segment does not start where the table's committed
// offsets end: either records would be skipped (Got > Want) or committed
// twice (Got < Want). It is a definite failure: the segment is never
// committed, and the pipeline must restart from the table's offsets.
type OffsetGapError struct {
	Table     string
	Topic     string
	Partition int32
	Want, Got int64
}

func (e *OffsetGapError) Error() string {
	kind := "gap"
	if e.Got < e.Want {
		kind = "overlap"
	}
	return fmt.Sprintf("commit: offset %s on %s: segment for %s/%d starts at %d, table's next offset is %d",
		kind, e.Table, e.Topic, e.Partition, e.Got, e.Want)
}

// Failure classes, as logged and counted in floe_commit_failures_total.
const (
	// ClassConflict: the catalog rejected the commit (stale base). Nothing
	// was committed; safe to retry after a reload.
	ClassConflict = "conflict"
	// ClassUnknown: the outcome is not known (timeout, 5xx, lost
	// connection). The commit may have landed; reconcile before retrying.
	ClassUnknown = "unknown"
	// ClassReload: reloading the table after a failure failed.
	ClassReload = "reload"
	// ClassFatal: a definite failure retrying cannot fix (offset gap,
	// invalid files).
	ClassFatal = "fatal"
)

// Classify puts a commit error in its class.
func Classify(err error) string {
	var (
		gap   *OffsetGapError
		stale *StaleEpochError
		owner *NotOwnerError
	)
	switch {
	case err == nil:
		return ""
	case errors.As(err, &gap), errors.As(err, &stale), errors.As(err, &owner),
		errors.Is(err, ErrMissingFrom), errors.Is(err, ErrAncestryCut), errors.Is(err, ErrTableReplaced), errors.Is(err, icecat.ErrNoSuchTable):
		// Fenced: this writer's view is out of date, or the segment or
		// the table cannot be committed to as they are (or at all: it is
		// gone from the catalog); retrying the same segment can never
		// succeed.
		return ClassFatal
	case errors.Is(err, table.ErrCommitFailed),
		// iceberg-go's SQL catalog reports a failed requirement (the
		// base snapshot moved) unwrapped, spelled with a capital R by
		// some checks; requirements are checked before anything is
		// written, so it is a definite failure.
		strings.Contains(strings.ToLower(err.Error()), "requirement failed"):
		return ClassConflict
	default:
		return ClassUnknown
	}
}

// Ledger sentinels (ledger.go). Every one is a definite failure: the
// command changed nothing.
var (
	// ErrBadCommand means a ledger entry does not decode or is invalid.
	ErrBadCommand = errors.New("commit: malformed ledger command")
	// ErrStaleIndex means Apply was given a log index not above the last.
	ErrStaleIndex = errors.New("commit: ledger log index did not increase")
	// ErrUnknownMember means a command names a node that is not a member.
	ErrUnknownMember = errors.New("commit: unknown member")
	// ErrUnknownSegment means a commit report names a segment that is not
	// pending for its table.
	ErrUnknownSegment = errors.New("commit: segment not pending")
	// ErrNotCovered means a commit report's offsets do not cover a segment
	// it says it committed.
	ErrNotCovered = errors.New("commit: reported offsets do not cover the segment")
	// ErrPartialCommit means a commit report's offsets cover part of a
	// pending segment: segments are committed whole.
	ErrPartialCommit = errors.New("commit: reported offsets split a pending segment")
	// ErrPipelineMismatch means a command names a table another pipeline
	// feeds.
	ErrPipelineMismatch = errors.New("commit: table belongs to another pipeline")
	// ErrBadSnapshot means a ledger snapshot does not decode.
	ErrBadSnapshot = errors.New("commit: malformed ledger snapshot")
)
