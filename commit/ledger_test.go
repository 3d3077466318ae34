package commit_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/floelake/floe/commit"
)

// ledgerHarness feeds a Ledger a log, one index per entry.
type ledgerHarness struct {
	t   testing.TB
	l   *commit.Ledger
	idx uint64
	now time.Time
}

func newHarness(t testing.TB) *ledgerHarness {
	return &ledgerHarness{t: t, l: commit.NewLedger(), now: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}
}

// apply appends an encoded command to the log.
func (h *ledgerHarness) apply(b []byte, err error) commit.ApplyResult {
	h.t.Helper()
	require.NoError(h.t, err)
	h.idx++
	res, ok := h.l.Apply(h.idx, b).(commit.ApplyResult)
	require.True(h.t, ok, "Apply returns an ApplyResult")
	return res
}

// ok appends a command that must be applied.
func (h *ledgerHarness) ok(b []byte, err error) commit.ApplyResult {
	h.t.Helper()
	res := h.apply(b, err)
	require.NoError(h.t, res.Err)
	return res
}

func (h *ledgerHarness) member(id string) {
	h.t.Helper()
	h.ok(commit.EncodeAddMember(commit.AddMember{ID: id, RaftAddr: id + ":7000", APIAddr: id + ":8080", At: h.now}))
}

func (h *ledgerHarness) assign(owners map[commit.PartitionKey]string) map[commit.PartitionKey]uint64 {
	h.t.Helper()
	return h.ok(commit.EncodeAssign(commit.Assign{Owners: owners})).Epochs
}

// state is the persisted state without the log index, which every entry
// moves, rejected or not.
func (h *ledgerHarness) state() string { return ledgerState(h.t, h.l) }

func persist(t testing.TB, l *commit.Ledger) []byte {
	t.Helper()
	snap, err := l.Snapshot()
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, snap.Persist(&buf))
	snap.Release()
	return buf.Bytes()
}

func ledgerState(t testing.TB, l *commit.Ledger) string {
	t.Helper()
	var img map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(persist(t, l), &img))
	require.Contains(t, img, "last_index")
	delete(img, "last_index")
	b, err := json.Marshal(img)
	require.NoError(t, err)
	return string(b)
}

func pk(pipeline, topic string, p int32) commit.PartitionKey {
	return commit.PartitionKey{Pipeline: pipeline, Topic: topic, Partition: p}
}

// rng is a range [from, to) of one topic-partition.
type rng struct {
	topic    string
	p        int32
	from, to int64
}

func entry(table string, rs ...rng) commit.SegmentEntry {
	e := commit.SegmentEntry{Table: table, From: commit.Offsets{}, To: commit.Offsets{}, Files: []byte(table + "-files")}
	for _, r := range rs {
		e.From.Set(r.topic, r.p, r.from)
		e.To.Set(r.topic, r.p, r.to)
		e.Records += r.to - r.from
	}
	return e
}

// proposal proposes entries with the same epoch on every partition they
// cover.
func proposal(pipeline, owner string, epoch uint64, es ...commit.SegmentEntry) commit.ProposeSegment {
	c := commit.ProposeSegment{Pipeline: pipeline, Owner: owner, Epochs: commit.Epochs{}, Tables: es}
	for _, e := range es {
		for t, ps := range e.From {
			for p := range ps {
				c.Epochs.Set(t, p, epoch)
			}
		}
	}
	return c
}

// requireLedgerErr checks a typed error field by field and a sentinel
// with errors.Is.
func requireLedgerErr(t testing.TB, want, got error) {
	t.Helper()
	require.Error(t, got)
	switch want.(type) {
	case *commit.StaleEpochError, *commit.NotOwnerError, *commit.OffsetGapError, *commit.OffsetRegressionError:
		require.Equal(t, want, got)
	default:
		require.ErrorIs(t, got, want)
	}
}

func TestLedgerMembers(t *testing.T) {
	h := newHarness(t)
	t0 := h.now
	h.ok(commit.EncodeAddMember(commit.AddMember{ID: "a", RaftAddr: "a:1", APIAddr: "a:2", At: t0}))
	h.ok(commit.EncodeAddMember(commit.AddMember{ID: "b", RaftAddr: "b:1", At: t0.Add(time.Second)}))
	h.ok(commit.EncodeHeartbeat(commit.Heartbeat{ID: "a", At: t0.Add(5 * time.Second)}))
	// An older heartbeat (a slow proposer) does not move it back.
	h.ok(commit.EncodeHeartbeat(commit.Heartbeat{ID: "a", At: t0.Add(3 * time.Second)}))
	require.Equal(t, []commit.Member{
		{ID: "a", RaftAddr: "a:1", APIAddr: "a:2", LastHeartbeat: t0.Add(5 * time.Second), JoinedAt: t0},
		{ID: "b", RaftAddr: "b:1", LastHeartbeat: t0.Add(time.Second), JoinedAt: t0.Add(time.Second)},
	}, h.l.Members())

	// Rejoining updates the addresses, keeps JoinedAt; a time in another
	// zone is stored in UTC.
	h.ok(commit.EncodeAddMember(commit.AddMember{ID: "a", RaftAddr: "a:9", APIAddr: "a:10",
		At: t0.Add(10 * time.Second).In(time.FixedZone("x", 3600))}))
	require.Equal(t, commit.Member{ID: "a", RaftAddr: "a:9", APIAddr: "a:10", LastHeartbeat: t0.Add(10 * time.Second), JoinedAt: t0},
		h.l.Members()[0])

	// Removing a member releases its partitions: owner none, epoch + 1.
	h.assign(map[commit.PartitionKey]string{pk("p", "t", 0): "a", pk("p", "t", 1): "b", pk("p", "t", 2): "a"})
	res := h.ok(commit.EncodeRemoveMember(commit.RemoveMember{ID: "a"}))
	require.Equal(t, map[commit.PartitionKey]uint64{pk("p", "t", 0): 2, pk("p", "t", 2): 2}, res.Epochs)
	require.Equal(t, map[commit.PartitionKey]commit.Ownership{
		pk("p", "t", 0): {Owner: "", Epoch: 2},
		pk("p", "t", 1): {Owner: "b", Epoch: 1},
		pk("p", "t", 2): {Owner: "", Epoch: 2},
	}, h.l.Assignment("p"))
	require.Len(t, h.l.Members(), 1)
}

func TestLedgerMemberRejections(t *testing.T) {
	cases := []struct {
		name string
		cmd  func() ([]byte, error)
		want error
	}{
		{"add without id", func() ([]byte, error) {
			return commit.EncodeAddMember(commit.AddMember{RaftAddr: "x:1", At: time.Unix(1, 0)})
		}, commit.ErrBadCommand},
		{"add without raft address", func() ([]byte, error) {
			return commit.EncodeAddMember(commit.AddMember{ID: "x", At: time.Unix(1, 0)})
		}, commit.ErrBadCommand},
		{"add without time", func() ([]byte, error) {
			return commit.EncodeAddMember(commit.AddMember{ID: "x", RaftAddr: "x:1"})
		}, commit.ErrBadCommand},
		{"remove unknown", func() ([]byte, error) { return commit.EncodeRemoveMember(commit.RemoveMember{ID: "zz"}) }, commit.ErrUnknownMember},
		{"heartbeat unknown", func() ([]byte, error) {
			return commit.EncodeHeartbeat(commit.Heartbeat{ID: "zz", At: time.Unix(1, 0)})
		}, commit.ErrUnknownMember},
		{"heartbeat without time", func() ([]byte, error) { return commit.EncodeHeartbeat(commit.Heartbeat{ID: "a"}) }, commit.ErrBadCommand},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.member("a")
			before := h.state()
			res := h.apply(tc.cmd())
			requireLedgerErr(t, tc.want, res.Err)
			require.Equal(t, before, h.state(), "a rejected command changes nothing")
		})
	}
}

func TestLedgerAssign(t *testing.T) {
	h := newHarness(t)
	h.member("a")
	h.member("b")
	epochs := h.assign(map[commit.PartitionKey]string{pk("p", "t", 0): "a", pk("p", "t", 1): "a"})
	require.Equal(t, map[commit.PartitionKey]uint64{pk("p", "t", 0): 1, pk("p", "t", 1): 1}, epochs)

	// t/0 moves, t/1 stays (no bump), t/2 is new, t/3 is unassigned while
	// unknown (no change: it had no owner).
	epochs = h.assign(map[commit.PartitionKey]string{pk("p", "t", 0): "b", pk("p", "t", 1): "a", pk("p", "t", 2): "b", pk("p", "t", 3): ""})
	require.Equal(t, map[commit.PartitionKey]uint64{pk("p", "t", 0): 2, pk("p", "t", 1): 1, pk("p", "t", 2): 1, pk("p", "t", 3): 0}, epochs)

	// To unassigned and back: one bump each way.
	require.Equal(t, uint64(3), h.assign(map[commit.PartitionKey]string{pk("p", "t", 0): ""})[pk("p", "t", 0)])
	require.Equal(t, uint64(4), h.assign(map[commit.PartitionKey]string{pk("p", "t", 0): "a"})[pk("p", "t", 0)])

	require.Equal(t, map[commit.PartitionKey]commit.Ownership{
		pk("p", "t", 0): {Owner: "a", Epoch: 4},
		pk("p", "t", 1): {Owner: "a", Epoch: 1},
		pk("p", "t", 2): {Owner: "b", Epoch: 1},
	}, h.l.Assignment("p"), "a no-op leaves no trace")
	require.Empty(t, h.l.Assignment("other"))
}

func TestLedgerAssignRejections(t *testing.T) {
	wire := func(owners string) func() ([]byte, error) {
		return func() ([]byte, error) { return []byte(`{"type":"assign","payload":{"owners":` + owners + `}}`), nil }
	}
	cases := []struct {
		name string
		cmd  func() ([]byte, error)
		want error
	}{
		{"no partitions", func() ([]byte, error) { return commit.EncodeAssign(commit.Assign{}) }, commit.ErrBadCommand},
		{"empty pipeline", func() ([]byte, error) {
			return commit.EncodeAssign(commit.Assign{Owners: map[commit.PartitionKey]string{pk("", "t", 0): "a"}})
		}, commit.ErrBadCommand},
		{"empty topic", func() ([]byte, error) {
			return commit.EncodeAssign(commit.Assign{Owners: map[commit.PartitionKey]string{pk("p", "", 0): "a"}})
		}, commit.ErrBadCommand},
		{"negative partition", func() ([]byte, error) {
			return commit.EncodeAssign(commit.Assign{Owners: map[commit.PartitionKey]string{pk("p", "t", -1): "a"}})
		}, commit.ErrBadCommand},
		{"partition twice", wire(`[{"pipeline":"p","topic":"t","partition":0,"owner":"a"},{"pipeline":"p","topic":"t","partition":0,"owner":"b"}]`), commit.ErrBadCommand},
		// The valid first line must not be applied either.
		{"unknown owner", func() ([]byte, error) {
			return commit.EncodeAssign(commit.Assign{Owners: map[commit.PartitionKey]string{pk("p", "t", 0): "b", pk("p", "t", 1): "ghost"}})
		}, commit.ErrUnknownMember},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.member("a")
			h.member("b")
			h.assign(map[commit.PartitionKey]string{pk("p", "t", 0): "a"})
			before := h.state()
			res := h.apply(tc.cmd())
			requireLedgerErr(t, tc.want, res.Err)
			require.Equal(t, before, h.state())
		})
	}
}

// proposeFixture: members a and b; p/t/0 and p/t/1 owned by a at epoch 1,
// p/t/2 by b at epoch 1, p/t/3 never assigned; p/t/0 fans out to tables A
// and B, and one segment [0, 10) is accepted at log index 6 (the first
// segment, but its id is the index, not a counter).
func proposeFixture(t *testing.T) *ledgerHarness {
	h := newHarness(t)
	h.member("a")
	h.member("b")
	h.assign(map[commit.PartitionKey]string{pk("p", "t", 0): "a", pk("p", "t", 1): "a", pk("p", "t", 2): "b"})
	h.member("c")
	h.ok(commit.EncodeRemoveMember(commit.RemoveMember{ID: "c"}))
	res := h.ok(commit.EncodeProposeSegment(proposal("p", "a", 1, entry("A", rng{"t", 0, 0, 10}), entry("B", rng{"t", 0, 0, 10}))))
	require.Equal(t, uint64(6), res.SegmentID, "the id is the log index")
	return h
}

func TestLedgerProposeAccepts(t *testing.T) {
	h := proposeFixture(t)
	next, ok := h.l.NextExpected("p", "t", 0)
	require.True(t, ok)
	require.Equal(t, int64(10), next)
	_, ok = h.l.NextExpected("p", "t", 1)
	require.False(t, ok, "no segment yet: no next offset")

	// The next segment starts at 10; a first segment on t/1 may start
	// anywhere (the pipeline's configured start).
	res := h.ok(commit.EncodeProposeSegment(proposal("p", "a", 1,
		entry("A", rng{"t", 0, 10, 25}, rng{"t", 1, 500, 510}), entry("B", rng{"t", 0, 10, 25}))))
	require.Equal(t, uint64(7), res.SegmentID)
	next, _ = h.l.NextExpected("p", "t", 1)
	require.Equal(t, int64(510), next)

	pending := h.l.Pending("A")
	require.Len(t, pending, 2)
	require.Equal(t, commit.PendingSegment{ID: 7, Pipeline: "p", Owner: "a",
		Epochs:       commit.Epochs{"t": {0: 1, 1: 1}},
		SegmentEntry: entry("A", rng{"t", 0, 10, 25}, rng{"t", 1, 500, 510})}, pending[1])
	require.Equal(t, []uint64{6, 7}, []uint64{h.l.Pending("B")[0].ID, h.l.Pending("B")[1].ID})
	require.Empty(t, h.l.Pending("nope"))

	// Pending returns a copy.
	pending[0].From.Set("t", 0, 999)
	pending[0].Files[0] = 'X'
	require.Equal(t, entry("A", rng{"t", 0, 0, 10}), h.l.Pending("A")[0].SegmentEntry)

	c, ok := h.l.Committed("A")
	require.True(t, ok)
	require.Equal(t, commit.TableCommit{Pipeline: "p", Offsets: commit.Offsets{}}, c)
}

// TestLedgerCarriesSkipped: the offsets a segment skipped (Kafka no longer
// had them) reach the leader's committer through the ledger, its snapshots
// included.
func TestLedgerCarriesSkipped(t *testing.T) {
	h := proposeFixture(t)
	e := entry("A", rng{"t", 0, 10, 25})
	e.Records = 5
	e.Skipped = commit.Skipped{"t": {0: {{10, 20}}}}
	h.ok(commit.EncodeProposeSegment(proposal("p", "a", 1, e, entry("B", rng{"t", 0, 10, 25}))))
	pending := h.l.Pending("A")
	require.Equal(t, e, pending[1].SegmentEntry)
	require.Empty(t, h.l.Pending("B")[1].Skipped)

	pending[1].Skipped["t"][0][0][0] = 999 // Pending returns a copy
	require.Equal(t, e.Skipped, h.l.Pending("A")[1].Skipped)

	restored := commit.NewLedger()
	require.NoError(t, restored.Restore(bytes.NewReader(persist(t, h.l))))
	require.Equal(t, e, restored.Pending("A")[1].SegmentEntry)
}

func TestLedgerProposeRejections(t *testing.T) {
	enc := commit.EncodeProposeSegment
	cases := []struct {
		name string
		cmd  commit.ProposeSegment
		want error
	}{
		{"stale epoch", proposal("p", "a", 0, entry("A", rng{"t", 0, 10, 20}), entry("B", rng{"t", 0, 10, 20})),
			&commit.StaleEpochError{Pipeline: "p", Topic: "t", Partition: 0, Have: 0, Want: 1}},
		{"future epoch", proposal("p", "a", 2, entry("A", rng{"t", 0, 10, 20}), entry("B", rng{"t", 0, 10, 20})),
			&commit.StaleEpochError{Pipeline: "p", Topic: "t", Partition: 0, Have: 2, Want: 1}},
		{"not the owner", proposal("p", "b", 1, entry("A", rng{"t", 0, 10, 20}), entry("B", rng{"t", 0, 10, 20})),
			&commit.NotOwnerError{Pipeline: "p", Topic: "t", Partition: 0, Owner: "a", Proposer: "b"}},
		{"never assigned", proposal("p", "a", 0, entry("A", rng{"t", 3, 0, 20})),
			&commit.NotOwnerError{Pipeline: "p", Topic: "t", Partition: 3, Owner: "", Proposer: "a"}},
		{"gap", proposal("p", "a", 1, entry("A", rng{"t", 0, 12, 20}), entry("B", rng{"t", 0, 12, 20})),
			&commit.OffsetGapError{Table: "A", Topic: "t", Partition: 0, Want: 10, Got: 12}},
		{"overlap", proposal("p", "a", 1, entry("A", rng{"t", 0, 5, 20}), entry("B", rng{"t", 0, 5, 20})),
			&commit.OffsetGapError{Table: "A", Topic: "t", Partition: 0, Want: 10, Got: 5}},
		{"duplicate of the accepted segment", proposal("p", "a", 1, entry("A", rng{"t", 0, 0, 10}), entry("B", rng{"t", 0, 0, 10})),
			&commit.OffsetGapError{Table: "A", Topic: "t", Partition: 0, Want: 10, Got: 0}},
		{"gap reported on the table starting lowest", proposal("p", "a", 1, entry("A", rng{"t", 0, 14, 20}), entry("B", rng{"t", 0, 12, 20})),
			&commit.OffsetGapError{Table: "B", Topic: "t", Partition: 0, Want: 10, Got: 12}},
		// The segment starts at 10 (A), but B skips records 10-11.
		{"gap on one table", proposal("p", "a", 1, entry("A", rng{"t", 0, 10, 20}), entry("B", rng{"t", 0, 12, 20})),
			&commit.OffsetGapError{Table: "B", Topic: "t", Partition: 0, Want: 10, Got: 12}},
		// t/1 is fine, t/2 belongs to b: nothing is accepted.
		{"one partition of several", proposal("p", "a", 1, entry("A", rng{"t", 1, 0, 5}, rng{"t", 2, 0, 5})),
			&commit.NotOwnerError{Pipeline: "p", Topic: "t", Partition: 2, Owner: "b", Proposer: "a"}},
		{"no pipeline", proposal("", "a", 1, entry("A", rng{"t", 1, 0, 5})), commit.ErrBadCommand},
		{"no owner", proposal("p", "", 1, entry("A", rng{"t", 1, 0, 5})), commit.ErrBadCommand},
		{"no tables", proposal("p", "a", 1), commit.ErrBadCommand},
		{"table twice", proposal("p", "a", 1, entry("A", rng{"t", 1, 0, 5}), entry("A", rng{"t", 1, 0, 5})), commit.ErrBadCommand},
		{"unnamed table", proposal("p", "a", 1, entry("", rng{"t", 1, 0, 5})), commit.ErrBadCommand},
		{"empty range", proposal("p", "a", 1, entry("A", rng{"t", 1, 5, 5})), commit.ErrBadCommand},
		{"backwards range", proposal("p", "a", 1, entry("A", rng{"t", 1, 5, 4})), commit.ErrBadCommand},
		{"negative offset", proposal("p", "a", 1, entry("A", rng{"t", 1, -1, 4})), commit.ErrBadCommand},
		{"negative partition", proposal("p", "a", 1, entry("A", rng{"t", -1, 0, 4})), commit.ErrBadCommand},
		{"no offsets", proposal("p", "a", 1, entry("A")), commit.ErrBadCommand},
		{"tables end apart", proposal("p", "a", 1, entry("A", rng{"t", 0, 10, 20}), entry("B", rng{"t", 0, 10, 21})), commit.ErrBadCommand},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := proposeFixture(t)
			before := h.state()
			res := h.apply(enc(tc.cmd))
			requireLedgerErr(t, tc.want, res.Err)
			require.Zero(t, res.SegmentID)
			require.Equal(t, before, h.state(), "a rejected proposal changes nothing")
		})
	}

	// Shapes the helpers cannot build.
	shapes := map[string]func(c *commit.ProposeSegment){
		"from and to name different partitions": func(c *commit.ProposeSegment) { c.Tables[0].To = commit.Offsets{"t": {9: 20}} },
		"missing epoch":                         func(c *commit.ProposeSegment) { c.Epochs = commit.Epochs{"t": {}} },
		"epoch for an uncovered partition":      func(c *commit.ProposeSegment) { c.Epochs.Set("t", 7, 1) },
		"negative records":                      func(c *commit.ProposeSegment) { c.Tables[0].Records = -1 },
	}
	for name, mutate := range shapes {
		t.Run(name, func(t *testing.T) {
			h := proposeFixture(t)
			before := h.state()
			c := proposal("p", "a", 1, entry("A", rng{"t", 1, 0, 20}))
			mutate(&c)
			requireLedgerErr(t, commit.ErrBadCommand, h.apply(enc(c)).Err)
			require.Equal(t, before, h.state())
		})
	}

	// A table left out of a segment does not advance (it may have been
	// dropped from the pipeline); its next entry must start where it
	// stopped.
	t.Run("table left out", func(t *testing.T) {
		h := proposeFixture(t)
		h.ok(enc(proposal("p", "a", 1, entry("A", rng{"t", 0, 10, 20}))))
		before := h.state()
		res := h.apply(enc(proposal("p", "a", 1, entry("A", rng{"t", 0, 20, 30}), entry("B", rng{"t", 0, 20, 30}))))
		requireLedgerErr(t, &commit.OffsetGapError{Table: "B", Topic: "t", Partition: 0, Want: 10, Got: 20}, res.Err)
		require.Equal(t, before, h.state())
	})

	t.Run("table of another pipeline", func(t *testing.T) {
		h := proposeFixture(t)
		h.assign(map[commit.PartitionKey]string{pk("q", "t", 0): "a"})
		before := h.state()
		requireLedgerErr(t, commit.ErrPipelineMismatch, h.apply(enc(proposal("q", "a", 1, entry("A", rng{"t", 0, 0, 5})))).Err)
		require.Equal(t, before, h.state())
	})
}

// TestLedgerFencesZombie: a owns the partition at epoch 1 and is replaced
// by b (epoch 2) before its last proposal arrives. The late proposal starts
// at exactly the right offset, and is rejected on its epoch alone; so is a
// previous incarnation of a once the partition comes back to a.
func TestLedgerFencesZombie(t *testing.T) {
	h := newHarness(t)
	h.member("a")
	h.member("b")
	k := pk("p", "t", 0)
	require.Equal(t, uint64(1), h.assign(map[commit.PartitionKey]string{k: "a"})[k])
	h.ok(commit.EncodeProposeSegment(proposal("p", "a", 1, entry("A", rng{"t", 0, 0, 100}))))
	require.Equal(t, uint64(2), h.assign(map[commit.PartitionKey]string{k: "b"})[k])

	late := proposal("p", "a", 1, entry("A", rng{"t", 0, 100, 150}))
	before := h.state()
	res := h.apply(commit.EncodeProposeSegment(late))
	requireLedgerErr(t, &commit.StaleEpochError{Pipeline: "p", Topic: "t", Partition: 0, Have: 1, Want: 2}, res.Err)
	require.Equal(t, before, h.state())

	// The new owner resumes at the next expected offset.
	next, _ := h.l.NextExpected("p", "t", 0)
	require.Equal(t, int64(100), next)
	h.ok(commit.EncodeProposeSegment(proposal("p", "b", 2, entry("A", rng{"t", 0, 100, 120}))))

	// Back to a (epoch 3): a's old incarnation still has the wrong epoch,
	// even with the right owner name and the right offset.
	require.Equal(t, uint64(3), h.assign(map[commit.PartitionKey]string{k: "a"})[k])
	res = h.apply(commit.EncodeProposeSegment(proposal("p", "a", 1, entry("A", rng{"t", 0, 120, 150}))))
	requireLedgerErr(t, &commit.StaleEpochError{Pipeline: "p", Topic: "t", Partition: 0, Have: 1, Want: 3}, res.Err)
	h.ok(commit.EncodeProposeSegment(proposal("p", "a", 3, entry("A", rng{"t", 0, 120, 150}))))
	require.Len(t, h.l.Pending("A"), 3)
}

// commitFixture: a owns p/t/0 and p/t/1; three segments are pending in A:
// 4 = t/0 [0,10), 5 = t/0 [10,20) + t/1 [0,5), 6 = t/0 [20,30); segment 4
// also has an entry in B.
func commitFixture(t *testing.T) *ledgerHarness {
	h := newHarness(t)
	h.member("a")
	h.assign(map[commit.PartitionKey]string{pk("p", "t", 0): "a", pk("p", "t", 1): "a"})
	h.idx = 3
	h.ok(commit.EncodeProposeSegment(proposal("p", "a", 1, entry("A", rng{"t", 0, 0, 10}), entry("B", rng{"t", 0, 0, 10}))))
	h.ok(commit.EncodeProposeSegment(proposal("p", "a", 1, entry("A", rng{"t", 0, 10, 20}, rng{"t", 1, 0, 5}))))
	h.ok(commit.EncodeProposeSegment(proposal("p", "a", 1, entry("A", rng{"t", 0, 20, 30}))))
	return h
}

func pendingIDs(l *commit.Ledger, table string) []uint64 {
	var ids []uint64
	for _, p := range l.Pending(table) {
		ids = append(ids, p.ID)
	}
	return ids
}

func TestLedgerCommitSegments(t *testing.T) {
	h := commitFixture(t)
	res := h.ok(commit.EncodeCommitSegments(commit.CommitSegments{Table: "A", SnapshotID: 77, Offsets: commit.Offsets{"t": {0: 10}}, Segments: []uint64{4}}))
	require.Equal(t, []uint64{4}, res.Dropped)
	require.Equal(t, []uint64{5, 6}, pendingIDs(h.l, "A"))
	require.Equal(t, []uint64{4}, pendingIDs(h.l, "B"), "B has not committed segment 4 yet")
	c, _ := h.l.Committed("A")
	require.Equal(t, commit.TableCommit{Pipeline: "p", Offsets: commit.Offsets{"t": {0: 10}}, SnapshotID: 77}, c)

	// Two at once; the report carries the full offsets map.
	res = h.ok(commit.EncodeCommitSegments(commit.CommitSegments{Table: "A", SnapshotID: -5, Offsets: commit.Offsets{"t": {0: 30, 1: 5}}, Segments: []uint64{6, 5}}))
	require.Equal(t, []uint64{5, 6}, res.Dropped)
	require.Empty(t, h.l.Pending("A"))
	c, _ = h.l.Committed("A")
	require.Equal(t, commit.TableCommit{Pipeline: "p", Offsets: commit.Offsets{"t": {0: 30, 1: 5}}, SnapshotID: -5}, c)

	h.ok(commit.EncodeCommitSegments(commit.CommitSegments{Table: "B", SnapshotID: 1, Offsets: commit.Offsets{"t": {0: 10}}, Segments: []uint64{4}}))
	require.Empty(t, h.l.Pending("B"))
	// Committing does not move the next expected offset.
	next, _ := h.l.NextExpected("p", "t", 0)
	require.Equal(t, int64(30), next)

	// Segment 4 is gone from the ledger: a second report is rejected.
	before := h.state()
	requireLedgerErr(t, commit.ErrUnknownSegment, h.apply(commit.EncodeCommitSegments(commit.CommitSegments{
		Table: "B", SnapshotID: 2, Offsets: commit.Offsets{"t": {0: 10}}, Segments: []uint64{4}})).Err)
	require.Equal(t, before, h.state())
}

func TestLedgerCommitSegmentsRejections(t *testing.T) {
	cases := []struct {
		name    string
		fixture func(*testing.T) *ledgerHarness
		cmd     commit.CommitSegments
		want    error
	}{
		{"unknown segment", commitFixture, commit.CommitSegments{Table: "A", Offsets: commit.Offsets{"t": {0: 10}}, Segments: []uint64{4, 99}}, commit.ErrUnknownSegment},
		{"segment without an entry for the table", commitFixture, commit.CommitSegments{Table: "B", Offsets: commit.Offsets{"t": {0: 20}}, Segments: []uint64{5}}, commit.ErrUnknownSegment},
		{"offsets backwards", regressionFixture, commit.CommitSegments{Table: "A", Offsets: commit.Offsets{"t": {0: 3}}, Segments: []uint64{4}},
			&commit.OffsetRegressionError{Table: "A", Topic: "t", Partition: 0, Have: 5, Got: 3}},
		{"offsets do not cover", commitFixture, commit.CommitSegments{Table: "A", Offsets: commit.Offsets{"t": {0: 20}}, Segments: []uint64{4, 5}}, commit.ErrNotCovered},
		{"offsets split a segment", commitFixture, commit.CommitSegments{Table: "A", Offsets: commit.Offsets{"t": {0: 15}}, Segments: []uint64{4}}, commit.ErrPartialCommit},
		{"no table", commitFixture, commit.CommitSegments{Offsets: commit.Offsets{"t": {0: 10}}, Segments: []uint64{4}}, commit.ErrBadCommand},
		{"no segments", commitFixture, commit.CommitSegments{Table: "A", Offsets: commit.Offsets{"t": {0: 10}}}, commit.ErrBadCommand},
		{"segment twice", commitFixture, commit.CommitSegments{Table: "A", Offsets: commit.Offsets{"t": {0: 10}}, Segments: []uint64{4, 4}}, commit.ErrBadCommand},
		{"negative offset", commitFixture, commit.CommitSegments{Table: "A", Offsets: commit.Offsets{"t": {0: -10}}, Segments: []uint64{4}}, commit.ErrBadCommand},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := tc.fixture(t)
			before := h.state()
			requireLedgerErr(t, tc.want, h.apply(commit.EncodeCommitSegments(tc.cmd)).Err)
			require.Equal(t, before, h.state())
		})
	}
}

// regressionFixture: A has committed t/0 up to 5 and has [5, 10) pending
// as segment 4.
func regressionFixture(t *testing.T) *ledgerHarness {
	h := newHarness(t)
	h.member("a")
	h.assign(map[commit.PartitionKey]string{pk("p", "t", 0): "a"})
	h.ok(commit.EncodeReconcile(commit.Reconcile{Tables: []commit.ReconciledTable{{Table: "A", Pipeline: "p", SnapshotID: 1, Offsets: commit.Offsets{"t": {0: 5}}}}}))
	h.ok(commit.EncodeProposeSegment(proposal("p", "a", 1, entry("A", rng{"t", 0, 5, 10}))))
	require.Equal(t, []uint64{4}, pendingIDs(h.l, "A"))
	return h
}

func TestLedgerReconcile(t *testing.T) {
	t.Run("drops what the old leader committed without reporting", func(t *testing.T) {
		h := commitFixture(t)
		res := h.ok(commit.EncodeReconcile(commit.Reconcile{Tables: []commit.ReconciledTable{
			{Table: "A", Pipeline: "p", SnapshotID: 9, Offsets: commit.Offsets{"t": {0: 20, 1: 5}}},
			{Table: "B", Pipeline: "p", SnapshotID: 8, Offsets: commit.Offsets{}},
		}}))
		require.Equal(t, []uint64{4, 5}, res.Dropped)
		require.Empty(t, res.Conflicts)
		require.Empty(t, res.Behind)
		require.Equal(t, []uint64{6}, pendingIDs(h.l, "A"))
		require.Equal(t, []uint64{4}, pendingIDs(h.l, "B"))
		c, _ := h.l.Committed("A")
		require.Equal(t, commit.TableCommit{Pipeline: "p", Offsets: commit.Offsets{"t": {0: 20, 1: 5}}, SnapshotID: 9}, c)
		next, _ := h.l.NextExpected("p", "t", 0)
		require.Equal(t, int64(30), next, "the ledger is ahead of the tables: next is unchanged")
	})

	t.Run("never lowers committed offsets", func(t *testing.T) {
		h := regressionFixture(t)
		res := h.ok(commit.EncodeReconcile(commit.Reconcile{Tables: []commit.ReconciledTable{
			{Table: "A", Pipeline: "p", SnapshotID: 2, Offsets: commit.Offsets{"t": {0: 3, 1: 4}}}}}))
		require.Equal(t, []commit.OffsetRegressionError{{Table: "A", Topic: "t", Partition: 0, Have: 5, Got: 3}}, res.Behind)
		c, _ := h.l.Committed("A")
		require.Equal(t, commit.TableCommit{Pipeline: "p", Offsets: commit.Offsets{"t": {0: 5, 1: 4}}, SnapshotID: 1}, c,
			"an older report does not replace the snapshot either")
		require.Equal(t, []uint64{4}, pendingIDs(h.l, "A"))
	})

	t.Run("keeps a segment covered in part", func(t *testing.T) {
		h := commitFixture(t)
		res := h.ok(commit.EncodeReconcile(commit.Reconcile{Tables: []commit.ReconciledTable{
			{Table: "A", Pipeline: "p", SnapshotID: 9, Offsets: commit.Offsets{"t": {0: 20}}}}}))
		require.Equal(t, []uint64{4}, res.Dropped)
		require.Equal(t, []uint64{5}, res.Conflicts, "segment 5 reaches t/1, which the table does not cover")
		require.Equal(t, []uint64{5, 6}, pendingIDs(h.l, "A"))
	})

	// Whole-cluster loss: the ledger starts empty; A committed up to 20
	// and B up to 10 before the crash. The pipeline resumes at 10 and
	// routes records to A only from 20.
	t.Run("rebuilds from the summaries", func(t *testing.T) {
		h := newHarness(t)
		h.ok(commit.EncodeReconcile(commit.Reconcile{Tables: []commit.ReconciledTable{
			{Table: "B", Pipeline: "p", SnapshotID: 2, Offsets: commit.Offsets{"t": {0: 10}}},
			{Table: "A", Pipeline: "p", SnapshotID: 1, Offsets: commit.Offsets{"t": {0: 20}, "u": {3: 7}}},
		}}))
		next, ok := h.l.NextExpected("p", "t", 0)
		require.True(t, ok)
		require.Equal(t, int64(10), next)
		next, _ = h.l.NextExpected("p", "u", 3)
		require.Equal(t, int64(7), next)
		h.member("n")
		h.assign(map[commit.PartitionKey]string{pk("p", "t", 0): "n"})

		before := h.state()
		res := h.apply(commit.EncodeProposeSegment(proposal("p", "n", 1, entry("A", rng{"t", 0, 10, 30}), entry("B", rng{"t", 0, 10, 30}))))
		requireLedgerErr(t, &commit.OffsetGapError{Table: "A", Topic: "t", Partition: 0, Want: 20, Got: 10}, res.Err)
		require.Equal(t, before, h.state())
		// A cut before A's offset carries no entry for A.
		h.ok(commit.EncodeProposeSegment(proposal("p", "n", 1, entry("B", rng{"t", 0, 10, 15}))))
		h.ok(commit.EncodeProposeSegment(proposal("p", "n", 1, entry("A", rng{"t", 0, 20, 30}), entry("B", rng{"t", 0, 15, 30}))))
		next, _ = h.l.NextExpected("p", "t", 0)
		require.Equal(t, int64(30), next)
	})

	t.Run("raises next to the lowest table", func(t *testing.T) {
		h := regressionFixture(t)
		h.ok(commit.EncodeReconcile(commit.Reconcile{Tables: []commit.ReconciledTable{
			{Table: "A", Pipeline: "p", SnapshotID: 3, Offsets: commit.Offsets{"t": {0: 40}}}}}))
		next, _ := h.l.NextExpected("p", "t", 0)
		require.Equal(t, int64(40), next)
		require.Empty(t, h.l.Pending("A"))
	})

	cases := []struct {
		name string
		cmd  commit.Reconcile
		want error
	}{
		{"no tables", commit.Reconcile{}, commit.ErrBadCommand},
		{"no table name", commit.Reconcile{Tables: []commit.ReconciledTable{{Pipeline: "p"}}}, commit.ErrBadCommand},
		{"no pipeline", commit.Reconcile{Tables: []commit.ReconciledTable{{Table: "A"}}}, commit.ErrBadCommand},
		{"table twice", commit.Reconcile{Tables: []commit.ReconciledTable{{Table: "Z", Pipeline: "p"}, {Table: "Z", Pipeline: "p"}}}, commit.ErrBadCommand},
		{"negative offset", commit.Reconcile{Tables: []commit.ReconciledTable{{Table: "A", Pipeline: "p", Offsets: commit.Offsets{"t": {0: -1}}}}}, commit.ErrBadCommand},
		{"another pipeline's table", commit.Reconcile{Tables: []commit.ReconciledTable{
			{Table: "Z", Pipeline: "q", Offsets: commit.Offsets{"t": {0: 100}}},
			{Table: "A", Pipeline: "q", Offsets: commit.Offsets{"t": {0: 100}}}}}, commit.ErrPipelineMismatch},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := commitFixture(t)
			before := h.state()
			requireLedgerErr(t, tc.want, h.apply(commit.EncodeReconcile(tc.cmd)).Err)
			require.Equal(t, before, h.state())
		})
	}
}

func TestLedgerApplyRejectsGarbage(t *testing.T) {
	for _, in := range []string{
		``, `null`, `{`, `[]`, `{"type":"nope","payload":{}}`, `{"type":"assign"}`,
		`{"type":"assign","payload":5}`, `{"type":"propose_segment","payload":{"tables":[{"from":{"t":{"x":1}}}]}}`,
		`{"type":"propose_segment","payload":{"epochs":{"t":{"0":-1}}}}`, `{"type":"add_member","payload":{"at":"yesterday"}}`,
		`{"type":"commit_segments","payload":{"segments":[-1]}}`, `{"type":"remove_member","payload":{}} trailing`,
		// Year 0 at +01:00 is year -1 in UTC, which JSON cannot encode.
		`{"type":"add_member","payload":{"id":"x","raft_addr":"x:1","at":"0000-01-01T00:30:00+01:00"}}`,
		`{"type":"heartbeat","payload":{"id":"a","at":"0000-01-01T00:30:00+01:00"}}`,
	} {
		h := proposeFixture(t)
		before := h.state()
		res := h.apply([]byte(in), nil)
		require.ErrorIs(t, res.Err, commit.ErrBadCommand, "input %q", in)
		require.Equal(t, before, h.state())
	}
	h := proposeFixture(t)
	res := h.apply([]byte(`{"type":"remove_member","payload":{}}`), nil)
	require.Equal(t, commit.CmdRemoveMember, res.Type)
	require.ErrorIs(t, res.Err, commit.ErrUnknownMember)
}

func TestLedgerRejectsStaleIndex(t *testing.T) {
	h := proposeFixture(t)
	before := persist(t, h.l)
	b, err := commit.EncodeAddMember(commit.AddMember{ID: "z", RaftAddr: "z:1", At: h.now})
	require.NoError(t, err)
	for _, idx := range []uint64{0, 1, h.idx} {
		res := h.l.Apply(idx, b).(commit.ApplyResult)
		require.ErrorIs(t, res.Err, commit.ErrStaleIndex)
	}
	require.Equal(t, before, persist(t, h.l), "not even the index moves")
}

// richLedger builds a state with every kind of thing in it.
func richLedger(t testing.TB) *ledgerHarness {
	h := newHarness(t)
	h.member("a")
	h.member("b")
	h.member("c")
	h.ok(commit.EncodeHeartbeat(commit.Heartbeat{ID: "b", At: h.now.Add(time.Minute)}))
	h.assign(map[commit.PartitionKey]string{pk("p", "t", 0): "a", pk("p", "t", 1): "b", pk("p", "u", 0): "c", pk("q", "t", 0): "a"})
	h.ok(commit.EncodeReconcile(commit.Reconcile{Tables: []commit.ReconciledTable{
		{Table: "A", Pipeline: "p", SnapshotID: 11, Offsets: commit.Offsets{"t": {0: 100, 1: 50}}},
		{Table: "B", Pipeline: "p", SnapshotID: 12, Offsets: commit.Offsets{"t": {0: 90}}},
	}}))
	h.ok(commit.EncodeProposeSegment(proposal("p", "a", 1, entry("B", rng{"t", 0, 90, 95}))))
	h.ok(commit.EncodeProposeSegment(proposal("p", "a", 1, entry("A", rng{"t", 0, 100, 110}), entry("B", rng{"t", 0, 95, 110}))))
	h.ok(commit.EncodeProposeSegment(proposal("p", "b", 1, entry("A", rng{"t", 1, 50, 60}))))
	h.ok(commit.EncodeProposeSegment(proposal("p", "c", 1, entry("C", rng{"u", 0, 0, 3}))))
	h.ok(commit.EncodeProposeSegment(proposal("q", "a", 1, entry("Q", rng{"t", 0, 7, 9}))))
	h.ok(commit.EncodeCommitSegments(commit.CommitSegments{Table: "B", SnapshotID: 13, Offsets: commit.Offsets{"t": {0: 95}}, Segments: []uint64{7}}))
	h.ok(commit.EncodeRemoveMember(commit.RemoveMember{ID: "c"}))
	return h
}

// moreCommands continues richLedger's log.
func moreCommands(t testing.TB, now time.Time) [][]byte {
	var out [][]byte
	add := func(b []byte, err error) {
		require.NoError(t, err)
		out = append(out, b)
	}
	add(commit.EncodeAssign(commit.Assign{Owners: map[commit.PartitionKey]string{pk("p", "u", 0): "b", pk("p", "t", 0): "b"}}))
	add(commit.EncodeProposeSegment(proposal("p", "a", 1, entry("A", rng{"t", 0, 110, 120}), entry("B", rng{"t", 0, 110, 120})))) // zombie
	add(commit.EncodeProposeSegment(proposal("p", "b", 2, entry("A", rng{"t", 0, 110, 120}), entry("B", rng{"t", 0, 110, 120}))))
	add(commit.EncodeProposeSegment(proposal("p", "b", 3, entry("C", rng{"u", 0, 3, 9}))))
	add(commit.EncodeCommitSegments(commit.CommitSegments{Table: "A", SnapshotID: 14, Offsets: commit.Offsets{"t": {0: 110, 1: 60}}, Segments: []uint64{8, 9}}))
	add(commit.EncodeReconcile(commit.Reconcile{Tables: []commit.ReconciledTable{{Table: "C", Pipeline: "p", SnapshotID: 3, Offsets: commit.Offsets{"u": {0: 3}}}}}))
	add(commit.EncodeHeartbeat(commit.Heartbeat{ID: "a", At: now.Add(time.Hour)}))
	add([]byte(`garbage`), nil)
	return out
}

func TestLedgerSnapshotRoundTrip(t *testing.T) {
	h := richLedger(t)
	img := persist(t, h.l)

	restored := commit.NewLedger()
	require.NoError(t, restored.Restore(bytes.NewReader(img)))
	require.Equal(t, string(img), string(persist(t, restored)), "persist ∘ restore is the identity")
	for _, l := range []*commit.Ledger{h.l, restored} {
		require.Len(t, l.Members(), 2)
	}
	require.Equal(t, h.l.Members(), restored.Members())
	for _, p := range []string{"p", "q"} {
		require.Equal(t, h.l.Assignment(p), restored.Assignment(p))
	}
	for _, tbl := range []string{"A", "B", "C", "Q"} {
		require.NotEmpty(t, h.l.Pending(tbl))
		require.Equal(t, h.l.Pending(tbl), restored.Pending(tbl))
		a, aok := h.l.Committed(tbl)
		b, bok := restored.Committed(tbl)
		require.Equal(t, aok, bok)
		require.Equal(t, a, b)
	}
	for _, k := range []commit.PartitionKey{pk("p", "t", 0), pk("p", "t", 1), pk("p", "u", 0), pk("q", "t", 0)} {
		n1, ok1 := h.l.NextExpected(k.Pipeline, k.Topic, k.Partition)
		n2, ok2 := restored.NextExpected(k.Pipeline, k.Topic, k.Partition)
		require.True(t, ok1)
		require.Equal(t, []any{n1, ok1}, []any{n2, ok2})
	}

	// Same behaviour afterwards: same results, same state.
	var accepted, rejected int
	for i, cmd := range moreCommands(t, h.now) {
		idx := h.idx + uint64(i) + 1
		r1 := h.l.Apply(idx, cmd).(commit.ApplyResult)
		r2 := restored.Apply(idx, cmd).(commit.ApplyResult)
		require.Equal(t, r1, r2, "command %d", i)
		if r1.Err == nil {
			accepted++
		} else {
			rejected++
		}
	}
	require.Equal(t, 6, accepted)
	require.Equal(t, 2, rejected)
	require.Equal(t, string(persist(t, h.l)), string(persist(t, restored)))
}

func TestLedgerRestoreRejectsBadSnapshots(t *testing.T) {
	h := richLedger(t)
	good := string(persist(t, h.l))
	cases := map[string]string{
		"not json":         "{",
		"empty":            "",
		"other version":    strings.Replace(good, `"version":1`, `"version":2`, 1),
		"repeated member":  strings.Replace(good, `"id":"b"`, `"id":"a"`, 1),
		"unknown table":    strings.Replace(good, `"table":"Q","from"`, `"table":"nope","from"`, 1),
		"future segment":   strings.Replace(good, fmt.Sprintf(`"last_index":%d`, h.idx), `"last_index":2`, 1),
		"repeated table":   strings.Replace(good, `"table":"B","pipeline"`, `"table":"A","pipeline"`, 1),
		"unnamed member":   strings.Replace(good, `"id":"a"`, `"id":""`, 1),
		"bad partition":    strings.Replace(good, `"partition":1`, `"partition":-1`, 1),
		"repeated segment": strings.Replace(good, `{"id":9,`, `{"id":8,`, 1),
	}
	for name, img := range cases {
		t.Run(name, func(t *testing.T) {
			require.NotEqual(t, good, img, "the case must change the image")
			l := proposeFixture(t).l
			before := persist(t, l)
			require.ErrorIs(t, l.Restore(strings.NewReader(img)), commit.ErrBadSnapshot)
			require.Equal(t, before, persist(t, l), "a failed restore changes nothing")
		})
	}
}

// TestLedgerSnapshotIsACapture: Snapshot only captures; what Persist
// writes is the state at the time of the capture, whatever Apply has done
// since, and Persist may run while Apply does (run with -race).
func TestLedgerSnapshotIsACapture(t *testing.T) {
	h := richLedger(t)
	want := persist(t, h.l)
	snap, err := h.l.Snapshot()
	require.NoError(t, err)

	cmds := moreCommands(t, h.now)
	var wg sync.WaitGroup
	wg.Add(1)
	var got bytes.Buffer
	var perr error
	go func() {
		defer wg.Done()
		perr = snap.Persist(&got)
	}()
	for i, cmd := range cmds {
		h.l.Apply(h.idx+uint64(i)+1, cmd)
	}
	wg.Wait()
	require.NoError(t, perr)
	require.Equal(t, string(want), got.String())
	require.NotEqual(t, string(want), string(persist(t, h.l)), "the commands did change the ledger")

	// Queries while applying.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 50 {
			_ = h.l.Pending("A")
			_, _ = h.l.Committed("B")
			_ = h.l.Assignment("p")
			_ = h.l.Members()
			_, _ = h.l.NextExpected("p", "t", 0)
		}
	}()
	base := h.idx + uint64(len(cmds))
	for i := range 50 {
		h.l.Apply(base+uint64(i)+1, cmds[6])
	}
	wg.Wait()
}

func TestLedgerDeterministic(t *testing.T) {
	// Two ledgers, the same log: byte-identical snapshots after every
	// entry, and the same results. Map iteration order differs between
	// the two (Go randomises it per range statement).
	a, b := richLedger(t), richLedger(t)
	require.Equal(t, string(persist(t, a.l)), string(persist(t, b.l)))
	for i, cmd := range moreCommands(t, a.now) {
		idx := a.idx + uint64(i) + 1
		require.Equal(t, a.l.Apply(idx, cmd), b.l.Apply(idx, cmd))
		require.Equal(t, string(persist(t, a.l)), string(persist(t, b.l)))
	}
}

// FuzzLedgerApply: a log entry is whatever bytes raft hands over.
// Invariants: Apply never panics and always returns an ApplyResult; a
// rejected entry changes nothing but the log index; the state still
// persists and restores to the same bytes.
func FuzzLedgerApply(f *testing.F) {
	seed := richLedger(f)
	for _, c := range moreCommands(f, seed.now) {
		f.Add(c)
	}
	f.Add([]byte(`{"type":"commit_segments","payload":{"table":"A","offsets":{"t":{"0":9223372036854775807}},"segments":[8]}}`))
	f.Add([]byte(`{"type":"reconcile","payload":{"tables":[{"table":"A","pipeline":"p","offsets":{"t":{"2147483647":0}}}]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		h := richLedger(t)
		before := h.state()
		h.idx++
		out := h.l.Apply(h.idx, data)
		res, ok := out.(commit.ApplyResult)
		if !ok {
			t.Fatalf("Apply returned %T", out)
		}
		if res.Err != nil && before != h.state() {
			t.Fatalf("rejected entry (%v) changed the state", res.Err)
		}
		img := persist(t, h.l)
		l := commit.NewLedger()
		if err := l.Restore(bytes.NewReader(img)); err != nil {
			t.Fatalf("restore after %q: %v", data, err)
		}
		if !bytes.Equal(img, persist(t, l)) {
			t.Fatalf("round trip changed the state after %q", data)
		}
	})
}

func parts(n int) []commit.PartitionKey {
	out := make([]commit.PartitionKey, n)
	for i := range out {
		out[i] = pk("p", "t", int32(i))
	}
	return out
}

func counts(a map[commit.PartitionKey]string) map[string]int {
	c := map[string]int{}
	for _, o := range a {
		c[o]++
	}
	return c
}

// moved counts the partitions whose owner differs between a and b.
func moved(a, b map[commit.PartitionKey]string) int {
	n := 0
	for k, o := range b {
		if a[k] != o {
			n++
		}
	}
	return n
}

func TestBalance(t *testing.T) {
	t.Run("no members", func(t *testing.T) {
		got := commit.Balance(nil, parts(3), map[commit.PartitionKey]string{pk("p", "t", 0): "a"})
		require.Equal(t, map[commit.PartitionKey]string{pk("p", "t", 0): "", pk("p", "t", 1): "", pk("p", "t", 2): ""}, got)
	})

	t.Run("from nothing", func(t *testing.T) {
		got := commit.Balance([]string{"c", "a", "b"}, parts(10), nil)
		require.Equal(t, map[string]int{"a": 4, "b": 3, "c": 3}, counts(got))
		require.Equal(t, "a", got[pk("p", "t", 0)], "handed out in partition order, members in id order")
		require.Equal(t, got, commit.Balance([]string{"b", "c", "a", "a"}, append(parts(10), parts(10)...), nil), "order and repeats do not matter")
	})

	t.Run("a member joins", func(t *testing.T) {
		before := commit.Balance([]string{"a", "b", "c"}, parts(12), nil)
		after := commit.Balance([]string{"a", "b", "c", "d"}, parts(12), before)
		require.Equal(t, map[string]int{"a": 3, "b": 3, "c": 3, "d": 3}, counts(after))
		require.Equal(t, 3, moved(before, after), "only what the newcomer must take moves")
		for k, o := range after {
			if o != "d" {
				require.Equal(t, before[k], o)
			}
		}
	})

	t.Run("a member dies", func(t *testing.T) {
		before := commit.Balance([]string{"a", "b", "c"}, parts(12), nil)
		after := commit.Balance([]string{"a", "b"}, parts(12), before)
		require.Equal(t, map[string]int{"a": 6, "b": 6}, counts(after))
		for k, o := range before {
			if o != "c" {
				require.Equal(t, o, after[k], "%v stays on its live owner", k)
			}
		}
	})

	t.Run("the larger share goes to who has the most", func(t *testing.T) {
		// 7 partitions, 2 members: 4 + 3. b holds 5 of them, so b keeps
		// 4 and only one moves; giving the 4 to a (first by id) would
		// move two.
		cur := map[commit.PartitionKey]string{}
		for i, k := range parts(7) {
			cur[k] = "b"
			if i < 2 {
				cur[k] = "a"
			}
		}
		got := commit.Balance([]string{"a", "b"}, parts(7), cur)
		require.Equal(t, map[string]int{"a": 3, "b": 4}, counts(got))
		require.Equal(t, 1, moved(cur, got))
	})

	t.Run("fewer partitions than members", func(t *testing.T) {
		cur := map[commit.PartitionKey]string{pk("p", "t", 0): "c", pk("p", "t", 1): "c"}
		got := commit.Balance([]string{"a", "b", "c"}, parts(2), cur)
		require.Equal(t, "c", got[pk("p", "t", 0)], "c keeps one")
		require.Equal(t, map[string]int{"a": 1, "c": 1}, counts(got))
	})

	t.Run("freed partitions are handed out in partition order", func(t *testing.T) {
		// a's share is 2: it keeps t/0 and t/1 and frees t/2, which goes
		// out before the never-assigned t/3..t/5.
		cur := map[commit.PartitionKey]string{pk("p", "t", 0): "a", pk("p", "t", 1): "a", pk("p", "t", 2): "a"}
		got := commit.Balance([]string{"a", "b", "c"}, parts(6), cur)
		require.Equal(t, map[commit.PartitionKey]string{
			pk("p", "t", 0): "a", pk("p", "t", 1): "a",
			pk("p", "t", 2): "b", pk("p", "t", 3): "b",
			pk("p", "t", 4): "c", pk("p", "t", 5): "c",
		}, got)
	})

	t.Run("unknown owners and unlisted partitions", func(t *testing.T) {
		cur := map[commit.PartitionKey]string{pk("p", "t", 0): "ghost", pk("p", "t", 1): "", pk("x", "t", 9): "a"}
		got := commit.Balance([]string{"a"}, parts(2), cur)
		require.Equal(t, map[commit.PartitionKey]string{pk("p", "t", 0): "a", pk("p", "t", 1): "a"}, got)
	})
}
