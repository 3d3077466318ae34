package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go/table"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/floelake/floe/catalog"
	"github.com/floelake/floe/cluster"
	"github.com/floelake/floe/commit"
	"github.com/floelake/floe/internal/procrig"
	floev1 "github.com/floelake/floe/proto/floe/v1"
	"github.com/floelake/floe/timetravel/api"
)

// TestClusterRollback rolls a table back through the HTTP API of a
// three-process cluster whose API takes tokens:
//
//  1. on a follower a rollback answers 409 naming the leader (the table's
//     writer runs on the leader only) and changes nothing;
//  2. on the leader a dry run changes nothing; a replay rollback to the
//     table's first snapshot with rows takes the table back there, the
//     partitions' owners (any member) read the records since again, and the
//     table ends with exactly the rows it had;
//  3. a skip rollback by time drops the rows since the target for good: new
//     records arrive, the skipped ones never come back;
//  4. a skip rollback by snapshot id, the leader SIGKILLed as soon as it
//     answered: under the new leader the skipped records never reappear and
//     new ones arrive exactly once.
//
// Every record is {"id": n, "batch": b}, ids unique, produced to partition
// n % 4; the table is read with iceberg-go from the shared catalog.
func TestClusterRollback(t *testing.T) {
	const (
		topic      = "events"
		partitions = 4
		batchSize  = 24
		commitIvl  = 300 * time.Millisecond
	)
	broker, s, r := newLocalClusterRig(t, topic, partitions, 3)
	err := r.Update(func(mc *procrig.MemberConfig) {
		mc.Pipeline.CommitInterval = commitIvl
		// No compaction: the table moves only when records arrive or a
		// rollback commits, so "nothing changed" is the same current
		// snapshot. procrig writes the pipeline last: a top-level section
		// can follow its entry.
		mc.Pipeline.Extra = rbSchemaYAML + "maintenance:\n  compaction: {enabled: false}\n"
		mc.APITokens = []api.Token{
			{Name: "admin", Token: rbAdminToken, Scope: api.ScopeAdmin},
			{Name: "reader", Token: rbReadToken, Scope: api.ScopeRead},
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	x := &rbTest{t: t, r: r, cat: openCatalog(t, r.config()), cl: cl, broker: broker, topic: topic,
		table: s.Table, pipeline: s.Pipeline, partitions: partitions}
	start := time.Now()

	r.startAll()
	for _, m := range r.Members() {
		r.waitReady(m, time.Minute)
	}
	// The cluster status takes a token like the API.
	if code, body := x.call(r.Members()[0], "GET", "/cluster/status", "", ""); code != http.StatusUnauthorized {
		t.Fatalf("GET /cluster/status without a token: %d, want 401: %s", code, body)
	}
	x.waitSpread("n1", "n2", "n3")

	// Four batches, each waited for: several snapshots.
	for range 4 {
		x.produceBatch(batchSize)
		x.waitRows("batch "+fmt.Sprint(x.batches), x.idsOf(1, 2, 3, 4), time.Minute)
	}
	all := x.idsOf(1, 2, 3, 4)
	tbl := x.load()
	head := tbl.CurrentSnapshot()
	anc := commit.Ancestors(tbl)
	if len(anc) < 4 {
		t.Fatalf("the table has %d snapshots in its history after 4 batches, want at least 4", len(anc))
	}
	// The first snapshot with rows (the table's very first one records the
	// start offsets and holds none).
	var first *table.Snapshot
	var firstOff map[int32]int64
	var firstRows []int64
	for _, a := range slices.Backward(anc) {
		if off, ok := x.snapshotOffsets(a); ok && len(x.below(off)) > 0 {
			first, firstOff, firstRows = a, off, x.below(off)
			break
		}
	}
	if first == nil {
		t.Fatalf("no snapshot of the history %s holds rows", x.history(tbl))
	}
	if got := x.scanIDs(tbl, first.SnapshotID); !slices.Equal(got, firstRows) {
		t.Fatalf("the first snapshot %d holds ids %v; its offsets %s say %v", first.SnapshotID, got, fmtOffsets(firstOff), firstRows)
	}
	if len(firstRows) >= len(all) {
		t.Fatalf("the first snapshot with rows holds all %d: nothing to roll back", len(all))
	}
	t.Logf("%s: %d rows in %d snapshots; the first with rows, %d, holds %d (offsets %s); history %s",
		time.Since(start).Round(time.Millisecond), len(all), len(anc), first.SnapshotID, len(firstRows), fmtOffsets(firstOff), x.history(tbl))

	leader := x.leader()
	var follower *member
	for _, m := range r.Live() {
		if m != leader {
			follower = m
			break
		}
	}
	t.Logf("leader %s, follower %s", leader.ID, follower.ID)

	// 1. A follower does not write the table: 409, naming the leader.
	replay := fmt.Sprintf(`{"snapshot_id":"%d","mode":"ROLLBACK_MODE_REPLAY"}`, first.SnapshotID)
	code, body := x.call(follower, "POST", x.rollbackPath(), rbAdminToken, replay)
	if code != http.StatusConflict {
		t.Fatalf("rollback on follower %s: %d, want 409: %s", follower.ID, code, body)
	}
	var apiErr struct{ Message string }
	if err := json.Unmarshal([]byte(body), &apiErr); err != nil {
		t.Fatalf("rollback on follower %s: the error is not JSON: %v: %s", follower.ID, err, body)
	}
	if !regexp.MustCompile(`leader\b.*\b` + regexp.QuoteMeta(leader.ID) + `\b`).MatchString(apiErr.Message) {
		t.Fatalf("rollback on follower %s: the message does not name the leader %s: %q", follower.ID, leader.ID, apiErr.Message)
	}
	t.Logf("follower %s: 409 %q", follower.ID, apiErr.Message)
	x.requireUnchanged("after the follower's 409", head.SnapshotID, all)

	// Without a token, and with a read token, the leader refuses too.
	if code, body := x.call(leader, "POST", x.rollbackPath(), "", replay); code != http.StatusUnauthorized {
		t.Fatalf("rollback without a token: %d, want 401: %s", code, body)
	}
	if code, body := x.call(leader, "POST", x.rollbackPath(), rbReadToken, replay); code != http.StatusForbidden {
		t.Fatalf("rollback with a read token: %d, want 403: %s", code, body)
	}
	x.requireUnchanged("after the refused calls", head.SnapshotID, all)

	// 2. A dry run on the leader says what a replay would do, and does
	// nothing.
	dry := fmt.Sprintf(`{"snapshot_id":"%d","mode":"ROLLBACK_MODE_REPLAY","dry_run":true}`, first.SnapshotID)
	plan := x.rollback(leader, dry)
	if plan.Applied || !strings.Contains(plan.Description, "dry run") || plan.FromSnapshotId != head.SnapshotID ||
		plan.TargetSnapshotId != first.SnapshotID || plan.SnapshotsUndone != int64(slices.Index(anc, first)) ||
		plan.RecordsBefore != int64(len(all)) || plan.RecordsAfter != int64(len(firstRows)) {
		t.Fatalf("dry run: %v", plan)
	}
	x.requireUnchanged("after the dry run", head.SnapshotID, all)

	// Replay: back to the first snapshot, then the owners read the records
	// since again, whichever members they are.
	consumedBefore := x.consumed()
	adoptedBefore := x.adoptions(leader)
	plan = x.rollback(leader, replay)
	if !plan.Applied || plan.NewSnapshotId != first.SnapshotID || plan.FromSnapshotId != head.SnapshotID || plan.TargetSnapshotId != first.SnapshotID {
		t.Fatalf("replay: %v", plan)
	}
	t.Logf("%s: replayed to %d: %s", time.Since(start).Round(time.Millisecond), first.SnapshotID, plan.Description)
	tbl = x.waitRows("the replayed records", all, time.Minute)
	ids := ancestorIDs(tbl)
	if !slices.Contains(ids, first.SnapshotID) || slices.Contains(ids, head.SnapshotID) {
		t.Fatalf("after the replay the history %v must go through %d and not through the old head %d", ids, first.SnapshotID, head.SnapshotID)
	}
	if re := int64(len(all) - len(firstRows)); x.consumed()-consumedBefore < re {
		t.Fatalf("the members consumed %d records since the replay; %d had to be read again", x.consumed()-consumedBefore, re)
	}
	if a := x.adoptions(leader); a <= adoptedBefore {
		t.Fatalf("the leader's writer never adopted the replayed table (floe_commit_table_adoptions_total %v, %v before)", a, adoptedBefore)
	}

	// 3. Skip, by time, to the snapshot before batch 5: batch 5 is
	// dropped, batch 6 arrives, batch 5 never comes back.
	skipTarget := tbl.CurrentSnapshot()
	x.produceBatch(batchSize) // 5
	x.waitRows("batch 5", x.idsOf(1, 2, 3, 4, 5), time.Minute)
	at := time.UnixMilli(skipTarget.TimestampMs).UTC().Format(time.RFC3339Nano)
	plan = x.rollback(leader, fmt.Sprintf(`{"timestamp":%q,"mode":"ROLLBACK_MODE_SKIP"}`, at))
	if !plan.Applied || plan.TargetSnapshotId != skipTarget.SnapshotID || plan.NewSnapshotId == skipTarget.SnapshotID ||
		plan.RecordsAfter != int64(len(all)) {
		t.Fatalf("skip to %d (at %s): %v", skipTarget.SnapshotID, at, plan)
	}
	t.Logf("%s: skipped to %d at %s: snapshot %d", time.Since(start).Round(time.Millisecond), skipTarget.SnapshotID, at, plan.NewSnapshotId)
	if got := x.scanIDs(x.load(), 0); !slices.Equal(got, all) {
		x.failRows("right after the skip", got, all)
	}
	x.produceBatch(batchSize) // 6
	want := x.idsOf(1, 2, 3, 4, 6)
	tbl = x.waitRows("batch 6 after the skip", want, time.Minute)
	if !slices.Contains(ancestorIDs(tbl), plan.NewSnapshotId) {
		t.Fatalf("the skip's snapshot %d is not in the history %v", plan.NewSnapshotId, ancestorIDs(tbl))
	}
	x.requireStill("after the skip", want, 5*commitIvl)

	// 4. Skip by snapshot id to the snapshot before batch 7, and SIGKILL
	// the leader as soon as it answered.
	skipTarget = tbl.CurrentSnapshot()
	x.produceBatch(batchSize) // 7
	x.waitRows("batch 7", x.idsOf(1, 2, 3, 4, 6, 7), time.Minute)
	plan = x.rollback(leader, fmt.Sprintf(`{"snapshot_id":"%d","mode":"ROLLBACK_MODE_SKIP"}`, skipTarget.SnapshotID))
	r.kill(leader)
	if !plan.Applied || plan.TargetSnapshotId != skipTarget.SnapshotID || plan.RecordsAfter != int64(len(want)) {
		t.Fatalf("skip to %d: %v", skipTarget.SnapshotID, plan)
	}
	t.Logf("%s: skipped to %d (snapshot %d) and killed the leader %s", time.Since(start).Round(time.Millisecond),
		skipTarget.SnapshotID, plan.NewSnapshotId, leader.ID)
	newLeader := x.leader()
	if newLeader == leader {
		t.Fatalf("%s was killed but is still the leader", leader.ID)
	}
	t.Logf("%s: new leader %s", time.Since(start).Round(time.Millisecond), newLeader.ID)
	x.waitSpread(r.Live()[0].ID, r.Live()[1].ID)
	if got := x.scanIDs(x.load(), 0); !slices.Equal(got, want) {
		x.failRows("after the leader's death", got, want)
	}
	x.produceBatch(batchSize) // 8
	want = x.idsOf(1, 2, 3, 4, 6, 8)
	tbl = x.waitRows("batch 8 under the new leader", want, time.Minute)
	if !slices.Contains(ancestorIDs(tbl), plan.NewSnapshotId) {
		t.Fatalf("the skip's snapshot %d is not in the history %v", plan.NewSnapshotId, ancestorIDs(tbl))
	}
	x.requireStill("under the new leader", want, 5*commitIvl)
	// The API of a surviving member reads the same rows.
	for _, m := range r.Live() {
		if got := x.queryIDs(m); !slices.Equal(got, want) {
			x.failRows("GET /api/v1/tables/"+x.table+"/query on "+m.ID, got, want)
		}
	}
	t.Logf("%s: done", time.Since(start).Round(time.Millisecond))
}

const (
	rbAdminToken = "rollback-admin-token-0123456789"
	rbReadToken  = "rollback-read-token-0123456789"
)

const rbSchemaYAML = `
    schema:
      - {name: id, type: long, required: true}
      - {name: batch, type: int, required: true}
    kafka_metadata: [partition, offset]
`

// rbRecord is one produced record and where Kafka put it.
type rbRecord struct {
	id        int64
	batch     int
	partition int32
	offset    int64
}

// rbTest is TestClusterRollback's rig: the members, the catalog, the
// producer and every record produced.
type rbTest struct {
	t                              *testing.T
	r                              *clusterRig
	cat                            *catalog.Catalog
	cl                             *kgo.Client
	broker, topic, table, pipeline string
	partitions                     int32
	recs                           []rbRecord
	batches                        int
}

var rbHTTP = &http.Client{Timeout: 30 * time.Second}

// produceBatch produces n records of the next batch, round the
// partitions, and returns once all are acknowledged.
func (x *rbTest) produceBatch(n int) {
	x.t.Helper()
	x.batches++
	next := int64(len(x.recs))
	recs := make([]*kgo.Record, n)
	for i := range recs {
		id := next + int64(i)
		recs[i] = &kgo.Record{Topic: x.topic, Partition: int32(id % int64(x.partitions)),
			Value: fmt.Appendf(nil, `{"id":%d,"batch":%d}`, id, x.batches)}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := x.cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		x.t.Fatalf("produce batch %d: %v", x.batches, err)
	}
	for i, r := range recs {
		x.recs = append(x.recs, rbRecord{id: next + int64(i), batch: x.batches, partition: r.Partition, offset: r.Offset})
	}
}

// idsOf returns the ids of the given batches, sorted.
func (x *rbTest) idsOf(batches ...int) []int64 {
	var out []int64
	for _, r := range x.recs {
		if slices.Contains(batches, r.batch) {
			out = append(out, r.id)
		}
	}
	slices.Sort(out)
	return out
}

// below returns the ids of the records below the offsets, sorted.
func (x *rbTest) below(off map[int32]int64) []int64 {
	var out []int64
	for _, r := range x.recs {
		if r.offset < off[r.partition] {
			out = append(out, r.id)
		}
	}
	slices.Sort(out)
	return out
}

// call makes an HTTP request to m's node.http_addr with a token ("" for
// none) and returns the status and body.
func (x *rbTest) call(m *member, method, path, token, body string) (int, string) {
	x.t.Helper()
	code, out, err := rbCall(m, method, path, token, body)
	if err != nil {
		x.t.Fatalf("%s %s on %s: %v", method, path, m.ID, err)
	}
	return code, out
}

func rbCall(m *member, method, path, token, body string) (int, string, error) {
	req, err := http.NewRequest(method, "http://"+m.HTTPAddr()+path, strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := rbHTTP.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func (x *rbTest) rollbackPath() string { return "/api/v1/tables/" + x.table + "/rollback" }

// rollback posts a rollback to m with the admin token and requires 200.
func (x *rbTest) rollback(m *member, body string) *floev1.RollbackResponse {
	x.t.Helper()
	code, out := x.call(m, "POST", x.rollbackPath(), rbAdminToken, body)
	if code != http.StatusOK {
		x.t.Fatalf("rollback %s on %s: %d: %s", body, m.ID, code, out)
	}
	var resp floev1.RollbackResponse
	if err := protojson.Unmarshal([]byte(out), &resp); err != nil {
		x.t.Fatalf("rollback %s on %s: %v: %s", body, m.ID, err, out)
	}
	return &resp
}

// status is GET /cluster/status of m, with the read token.
func (x *rbTest) status(m *member) (cluster.Status, error) {
	var st cluster.Status
	code, body, err := rbCall(m, "GET", "/cluster/status", rbReadToken, "")
	if err != nil {
		return st, fmt.Errorf("%s: %w", m.ID, err)
	}
	if code != http.StatusOK {
		return st, fmt.Errorf("%s: /cluster/status: %d: %s", m.ID, code, strings.TrimSpace(body))
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		return st, fmt.Errorf("%s: /cluster/status: %w", m.ID, err)
	}
	return st, nil
}

// leader waits until every live member names the same live leader, which
// says so itself, and returns it.
func (x *rbTest) leader() *member {
	x.t.Helper()
	var l *member
	x.r.waitFor(time.Minute, "a leader every live member knows", func() (bool, string) {
		id := ""
		for _, m := range x.r.Live() {
			st, err := x.status(m)
			if err != nil {
				return false, err.Error()
			}
			if st.LeaderID == "" || id != "" && st.LeaderID != id {
				return false, fmt.Sprintf("%s names leader %q, another member %q", m.ID, st.LeaderID, id)
			}
			id = st.LeaderID
		}
		l = x.r.Member(id)
		if l == nil || !l.Live() {
			return false, fmt.Sprintf("the leader %q is not a live member", id)
		}
		return true, ""
	})
	return l
}

// waitSpread waits until every partition has a live owner and each of
// the given members owns one.
func (x *rbTest) waitSpread(ids ...string) {
	x.t.Helper()
	x.r.waitFor(time.Minute, fmt.Sprintf("the partitions spread over %v", ids), func() (bool, string) {
		var st cluster.Status
		var err error
		for _, m := range x.r.Live() {
			if st, err = x.status(m); err == nil && st.LeaderID == m.ID {
				break
			}
		}
		if err != nil || st.LeaderID == "" {
			return false, fmt.Sprintf("no leader's status (%v)", err)
		}
		o := ownersOf(st)
		ok := len(st.Partitions) == int(x.partitions) && o[""] == 0
		for owner := range o {
			ok = ok && slices.Contains(ids, owner)
		}
		for _, id := range ids {
			ok = ok && o[id] > 0
		}
		return ok, fmt.Sprintf("owners %v (leader %s)", o, st.LeaderID)
	})
}

func (x *rbTest) load() *table.Table {
	x.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tbl, err := x.cat.LoadTable(ctx, catalog.Ident(x.table))
	if err != nil {
		x.t.Fatalf("load %s: %v", x.table, err)
	}
	return tbl
}

// scanIDs reads the ids of the table's current snapshot (snapshot 0) or
// of the given one, sorted.
func (x *rbTest) scanIDs(tbl *table.Table, snapshot int64) []int64 {
	x.t.Helper()
	ids, err := rbScanIDs(tbl, snapshot)
	if err != nil {
		x.t.Fatalf("scan %s: %v", x.table, err)
	}
	return ids
}

func rbScanIDs(tbl *table.Table, snapshot int64) ([]int64, error) {
	if tbl.CurrentSnapshot() == nil {
		return nil, nil
	}
	opts := []table.ScanOption{table.WithSelectedFields("id")}
	if snapshot != 0 {
		opts = append(opts, table.WithSnapshotID(snapshot))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	at, err := tbl.Scan(opts...).ToArrowTable(ctx)
	if err != nil {
		return nil, err
	}
	defer at.Release()
	var ids []int64
	err = eachRow(at, []string{"id"}, func(cols []arrow.Array, i int) { ids = append(ids, cols[0].(*array.Int64).Value(i)) })
	slices.Sort(ids)
	return ids, err
}

// offsets are the table's offsets of the pipeline's topic (nil: none yet).
func (x *rbTest) offsets(tbl *table.Table) map[int32]int64 {
	x.t.Helper()
	off, _, found, err := commit.TableOffsets(tbl, x.pipeline)
	if err != nil {
		x.t.Fatalf("offsets of %s: %v", x.table, err)
	}
	if !found {
		return nil
	}
	return off[x.topic]
}

// snapshotOffsets are the offsets a snapshot's summary carries, if it
// carries the pipeline's.
func (x *rbTest) snapshotOffsets(s *table.Snapshot) (map[int32]int64, bool) {
	x.t.Helper()
	if s.Summary == nil || s.Summary.Properties[commit.PropPipeline] != x.pipeline || s.Summary.Properties[commit.PropOffsets] == "" {
		return nil, false
	}
	off, err := commit.ParseOffsets(s.Summary.Properties[commit.PropOffsets])
	if err != nil {
		x.t.Fatalf("offsets of snapshot %d: %v", s.SnapshotID, err)
	}
	return off[x.topic], true
}

// history describes the table's current history, oldest first: each
// snapshot's id, operation, added records and offsets.
func (x *rbTest) history(tbl *table.Table) string {
	var b strings.Builder
	for _, s := range slices.Backward(commit.Ancestors(tbl)) {
		var op table.Operation
		var added string
		if s.Summary != nil {
			op, added = s.Summary.Operation, s.Summary.Properties["added-records"]
		}
		off, _ := x.snapshotOffsets(s)
		fmt.Fprintf(&b, "\n  %d %s +%s %s", s.SnapshotID, op, added, fmtOffsets(off))
	}
	return b.String()
}

// waitRows waits until the table's offsets reach the topic's end offsets
// and it holds exactly the ids want, and returns it.
func (x *rbTest) waitRows(what string, want []int64, timeout time.Duration) *table.Table {
	x.t.Helper()
	ends := mustEndOffsets(x.t, x.broker, x.topic)
	var tbl *table.Table
	x.r.waitFor(timeout, what+" in the table", func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var err error
		if tbl, err = x.cat.LoadTable(ctx, catalog.Ident(x.table)); err != nil {
			return false, err.Error()
		}
		off := x.offsets(tbl)
		if !reached(off, ends) {
			return false, fmt.Sprintf("offsets %s, ends %s", fmtOffsets(off), fmtOffsets(ends))
		}
		got, err := rbScanIDs(tbl, 0)
		if err != nil {
			return false, err.Error()
		}
		missing, extra := rbDiff(want, got)
		return len(missing) == 0 && len(extra) == 0,
			fmt.Sprintf("offsets %s at the ends; %d rows, %d wanted; missing %v, extra or repeated %v", fmtOffsets(off), len(got), len(want), missing, extra)
	})
	return tbl
}

// requireUnchanged requires the table's current snapshot and rows to be
// as they were.
func (x *rbTest) requireUnchanged(when string, head int64, rows []int64) {
	x.t.Helper()
	tbl := x.load()
	if id := commit.HeadID(tbl); id != head {
		x.t.Fatalf("%s: the current snapshot is %d, was %d", when, id, head)
	}
	if got := x.scanIDs(tbl, 0); !slices.Equal(got, rows) {
		x.failRows(when, got, rows)
	}
}

// requireStill waits for several commit intervals (nothing is produced
// meanwhile: nothing else may arrive) and requires the rows to be want,
// with the offsets still at the ends.
func (x *rbTest) requireStill(when string, want []int64, d time.Duration) {
	x.t.Helper()
	ends := mustEndOffsets(x.t, x.broker, x.topic)
	time.Sleep(d)
	x.r.checkAlive()
	tbl := x.load()
	if off := x.offsets(tbl); !reached(off, ends) {
		x.t.Fatalf("%s: the offsets %s went back from the ends %s", when, fmtOffsets(off), fmtOffsets(ends))
	}
	if got := x.scanIDs(tbl, 0); !slices.Equal(got, want) {
		x.failRows(when+", "+d.String()+" later", got, want)
	}
}

func (x *rbTest) failRows(when string, got, want []int64) {
	x.t.Helper()
	missing, extra := rbDiff(want, got)
	batches := map[int]int{}
	for _, r := range x.recs {
		if slices.Contains(extra, r.id) {
			batches[r.batch]++
		}
	}
	x.t.Fatalf("%s: %d rows, want %d; missing %v; extra or repeated %v (from batches %v)", when, len(got), len(want), missing, extra, batches)
}

// rbDiff returns the ids of want missing from got and those of got beyond
// want (repeats included); both sorted.
func rbDiff(want, got []int64) (missing, extra []int64) {
	n := map[int64]int{}
	for _, id := range want {
		n[id]++
	}
	for _, id := range got {
		if n[id] > 0 {
			n[id]--
		} else {
			extra = append(extra, id)
		}
	}
	for id, c := range n {
		for range c {
			missing = append(missing, id)
		}
	}
	slices.Sort(missing)
	return missing, extra
}

// consumed sums floe_ingest_records_total of the live members.
func (x *rbTest) consumed() int64 {
	x.t.Helper()
	var n float64
	for _, m := range x.r.Live() {
		v, err := metricValue(m, fmt.Sprintf(`floe_ingest_records_total{pipeline=%q}`, x.pipeline))
		if err != nil {
			x.t.Fatalf("%s's metrics: %v", m.ID, err)
		}
		n += v
	}
	return int64(n)
}

// adoptions is m's floe_commit_table_adoptions_total of the table.
func (x *rbTest) adoptions(m *member) float64 {
	x.t.Helper()
	v, err := metricValue(m, fmt.Sprintf(`floe_commit_table_adoptions_total{table=%q}`, x.table))
	if err != nil {
		x.t.Fatalf("%s's metrics: %v", m.ID, err)
	}
	return v
}

// queryIDs reads the ids through GET /api/v1/tables/{t}/query on m: JSON
// lines, then a {"@stats": ...} line.
func (x *rbTest) queryIDs(m *member) []int64 {
	x.t.Helper()
	code, body := x.call(m, "GET", "/api/v1/tables/"+x.table+"/query?columns=id", rbReadToken, "")
	if code != http.StatusOK {
		x.t.Fatalf("query on %s: %d: %s", m.ID, code, body)
	}
	var ids []int64
	var stats map[string]any
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		var row struct {
			ID    *int64         `json:"id"`
			Stats map[string]any `json:"@stats"`
			Err   any            `json:"@error"`
		}
		if err := json.Unmarshal(sc.Bytes(), &row); err != nil {
			x.t.Fatalf("query on %s: line %q: %v", m.ID, sc.Text(), err)
		}
		switch {
		case row.Err != nil:
			x.t.Fatalf("query on %s: %s", m.ID, sc.Text())
		case row.Stats != nil:
			stats = row.Stats
		case row.ID != nil && stats == nil:
			ids = append(ids, *row.ID)
		default:
			x.t.Fatalf("query on %s: unexpected line %q", m.ID, sc.Text())
		}
	}
	if stats == nil {
		x.t.Fatalf("query on %s: no @stats line:\n%s", m.ID, body)
	}
	if tr, _ := stats["truncated"].(bool); tr {
		x.t.Fatalf("query on %s: truncated: %v", m.ID, stats)
	}
	slices.Sort(ids)
	return ids
}

func ancestorIDs(tbl *table.Table) []int64 {
	var out []int64
	for _, s := range commit.Ancestors(tbl) {
		out = append(out, s.SnapshotID)
	}
	return out
}
