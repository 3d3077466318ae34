package node

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/floelake/floe/commit"
	"github.com/floelake/floe/ingest"
	"github.com/floelake/floe/internal/conf"
	"github.com/floelake/floe/internal/config"
	floev1 "github.com/floelake/floe/proto/floe/v1"
	"github.com/floelake/floe/timetravel"
	"github.com/floelake/floe/timetravel/api"
)

const (
	readToken  = "read-token-0123456789"
	adminToken = "admin-token-0123456789"
)

// apiNode runs a node with one pipeline ("ns.in" from topic "in") and
// the API's tokens, and returns its HTTP base URL, its gRPC address, a
// producer and a stop function.
func apiNode(t *testing.T) (n *Node, base string, produce func(vals ...string), stop func()) {
	n, base, produce, _, stop = apiNodeWith(t, nil)
	return n, base, produce, stop
}

func apiNodeWith(t *testing.T, tweak func(*config.Config)) (n *Node, base string, produce func(vals ...string), prodClient *kgo.Client, stop func()) {
	t.Helper()
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "in"))
	require.NoError(t, err)
	dir := t.TempDir()
	cfg := config.Default()
	cfg.Node.DataDir = dir
	cfg.Node.HTTPAddr = "127.0.0.1:0"
	cfg.Node.API.GRPCAddr = "127.0.0.1:0"
	cfg.Node.API.Tokens = []api.Token{{Name: "r", Token: readToken, Scope: api.ScopeRead}, {Name: "a", Token: adminToken, Scope: api.ScopeAdmin}}
	cfg.Catalog.URI = "sqlite://" + filepath.Join(dir, "c.db")
	cfg.Kafka.Brokers = kc.ListenAddrs()
	cfg.Pipelines = []ingest.PipelineConfig{{Name: "in", Topics: []string{"in"}, Table: "ns.in",
		CommitInterval: conf.Duration(100 * time.Millisecond),
		Schema:         []ingest.Column{{Name: "id", Type: "long", Required: true}, {Name: "name", Type: "string"}}}}
	if tweak != nil {
		tweak(&cfg)
	}
	cfg.FillDefaults()
	require.NoError(t, cfg.Validate())
	ctx, cancel := context.WithCancel(context.Background())
	n, err = New(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	require.NoError(t, n.Listen())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	base = "http://" + n.Addr()
	if cfg.Node.API.TLS.Enabled() {
		base = "https://" + n.Addr()
	}
	require.Eventually(t, func() bool { return n.Ready() == nil }, 30*time.Second, 20*time.Millisecond)
	pcl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Kafka.Brokers...), kgo.DefaultProduceTopic("in"))
	require.NoError(t, err)
	prodClient = pcl
	produce = func(vals ...string) {
		for _, v := range vals {
			require.NoError(t, pcl.ProduceSync(ctx, &kgo.Record{Value: []byte(v)}).FirstErr())
		}
	}
	return n, base, produce, prodClient, func() {
		cancel()
		require.NoError(t, <-done)
		pcl.Close()
		kc.Close()
	}
}

// call makes an HTTP request with a token ("" for none) and returns the
// status and body.
func call(t *testing.T, method, url, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

func TestAPISmoke(t *testing.T) {
	_, base, produce, stop := apiNode(t)
	defer stop()
	// GetTable's file statistics follow the current snapshot (they are
	// cached per snapshot).
	records := func() int64 {
		code, body := call(t, "GET", base+"/api/v1/tables/ns.in", readToken, "")
		require.Equal(t, http.StatusOK, code, body)
		var tb floev1.Table
		require.NoError(t, protojson.Unmarshal([]byte(body), &tb))
		if tb.Files == nil {
			return 0
		}
		require.Equal(t, tb.Summary.TotalRecords, tb.Files.Records, "files and summary agree")
		return tb.Files.Records
	}
	produce(`{"id":1,"name":"a"}`, `{"id":2,"name":"b"}`)
	require.Eventually(t, func() bool { return records() == 2 }, 30*time.Second, 50*time.Millisecond)
	produce(`{"id":3,"name":"c"}`)
	require.Eventually(t, func() bool { return records() == 3 }, 30*time.Second, 50*time.Millisecond)
	code, body := call(t, "GET", base+"/api/v1/tables", "", "")
	require.Equal(t, http.StatusUnauthorized, code, body)
	code, body = call(t, "GET", base+"/api/v1/tables", readToken, "")
	require.Equal(t, http.StatusOK, code, body)
	var lt struct{ Tables []map[string]any }
	require.NoError(t, json.Unmarshal([]byte(body), &lt))
	require.Len(t, lt.Tables, 2)
	code, body = call(t, "GET", base+"/api/v1/tables/ns.in/query?where=id%3D2", readToken, "")
	require.Equal(t, http.StatusOK, code, body)
	code, body = call(t, "POST", base+"/api/v1/tables/ns.in/tags", readToken, `{"name":"x"}`)
	require.Equal(t, http.StatusForbidden, code, body)
	code, body = call(t, "GET", base+"/api/v1/tables/ns.in/query?where=nope%3D2", readToken, "")
	require.Equal(t, http.StatusBadRequest, code, body)
}

// record is one produced record: its id and where Kafka put it.
type record struct {
	id        int64
	partition int32
	offset    int64
}

// producer produces {"id": n, "name": "r<n>"} records and remembers where
// each went.
type producer struct {
	t    *testing.T
	cl   *kgo.Client
	next int64
	recs []record
}

func (p *producer) batch(n int) {
	p.t.Helper()
	for i := 0; i < n; i++ {
		id := p.next
		p.next++
		r := &kgo.Record{Value: []byte(fmt.Sprintf(`{"id":%d,"name":"r%d"}`, id, id))}
		require.NoError(p.t, p.cl.ProduceSync(context.Background(), r).FirstErr())
		p.recs = append(p.recs, record{id: id, partition: r.Partition, offset: r.Offset})
	}
}

// below returns the ids of the records below the given offsets.
func (p *producer) below(off map[int32]int64) []int64 {
	var out []int64
	for _, r := range p.recs {
		if r.offset < off[r.partition] {
			out = append(out, r.id)
		}
	}
	slices.Sort(out)
	return out
}

// grpcClient dials the node's gRPC API with a token.
func grpcClient(t *testing.T, n *Node, token string) floev1.TableServiceClient {
	t.Helper()
	conn, err := grpc.NewClient(n.APIAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(bearer(token)))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return floev1.NewTableServiceClient(conn)
}

type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	if b == "" {
		return nil, nil
	}
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}
func (bearer) RequireTransportSecurity() bool { return false }

// queryIDs runs a query over gRPC and returns the ids it read (sorted)
// and its stats.
func queryIDs(t *testing.T, c floev1.TableServiceClient, req *floev1.QueryRequest) ([]int64, *floev1.QueryStats) {
	t.Helper()
	stream, err := c.Query(context.Background(), req)
	require.NoError(t, err)
	var ids []int64
	var stats *floev1.QueryStats
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		if msg.Stats != nil {
			stats = msg.Stats
			continue
		}
		recs, err := timetravel.ReadIPCBatch(msg.ArrowIpc, memory.DefaultAllocator)
		require.NoError(t, err)
		for _, rec := range recs {
			col := rec.Column(int(rec.Schema().FieldIndices("id")[0])).(*array.Int64)
			ids = append(ids, col.Int64Values()...)
			rec.Release()
		}
	}
	require.NotNil(t, stats, "the stream ends with its stats")
	slices.Sort(ids)
	return ids, stats
}

// snapshots lists every snapshot of the table over HTTP, newest first,
// page by page.
func snapshots(t *testing.T, base, table string) []*floev1.Snapshot {
	t.Helper()
	var out []*floev1.Snapshot
	tok := ""
	for {
		code, body := call(t, "GET", base+"/api/v1/tables/"+table+"/snapshots?page_size=3&page_token="+tok, readToken, "")
		require.Equal(t, http.StatusOK, code, body)
		var page floev1.ListSnapshotsResponse
		require.NoError(t, protojson.Unmarshal([]byte(body), &page))
		out = append(out, page.Snapshots...)
		if page.NextPageToken == "" {
			return out
		}
		tok = page.NextPageToken
	}
}

func waitRows(t *testing.T, c floev1.TableServiceClient, table string, want []int64) {
	t.Helper()
	var got []int64
	require.Eventually(t, func() bool {
		got, _ = queryIDs(t, c, &floev1.QueryRequest{Table: table})
		return slices.Equal(got, want)
	}, 60*time.Second, 50*time.Millisecond, "rows of %s: got %v, want %v", table, got, want)
}

func offsetsOf(s *floev1.Snapshot) map[int32]int64 {
	out := map[int32]int64{}
	for _, o := range s.Offsets {
		out[o.Partition] = o.Offset
	}
	return out
}

func idsTo(n int64) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = int64(i)
	}
	return out
}

// Time travel at every snapshot returns exactly the rows committed by
// then: the records below the snapshot's offsets. Over gRPC (Arrow), as
// of each snapshot id, as of its time, and as of a tag.
func TestAPITimeTravelAtEverySnapshot(t *testing.T) {
	n, base, _, pcl, stop := apiNodeWith(t, nil)
	defer stop()
	p := &producer{t: t, cl: pcl}
	c := grpcClient(t, n, readToken)
	for i := 0; i < 6; i++ {
		p.batch(7)
		waitRows(t, c, "ns.in", idsTo(p.next))
	}
	snaps := snapshots(t, base, "ns.in")
	require.GreaterOrEqual(t, len(snaps), 6)
	checked := 0
	for _, s := range snaps {
		if len(s.Offsets) == 0 {
			continue
		}
		want := p.below(offsetsOf(s))
		got, st := queryIDs(t, c, &floev1.QueryRequest{Table: "ns.in", AsOf: &floev1.AsOf{Point: &floev1.AsOf_SnapshotId{SnapshotId: s.SnapshotId}}})
		require.Equal(t, want, got, "as of snapshot %d", s.SnapshotId)
		require.Equal(t, s.SnapshotId, st.SnapshotId)
		got, _ = queryIDs(t, c, &floev1.QueryRequest{Table: "ns.in", AsOf: &floev1.AsOf{Point: &floev1.AsOf_Timestamp{Timestamp: s.Timestamp}}})
		require.Equal(t, want, got, "as of the time of snapshot %d", s.SnapshotId)
		checked++
	}
	require.GreaterOrEqual(t, checked, 6)

	// A tag (admin), then the query as of it; a filter and a projection.
	mid := snaps[len(snaps)/2]
	admin := grpcClient(t, n, adminToken)
	_, err := admin.CreateTag(context.Background(), &floev1.CreateTagRequest{Table: "ns.in", Name: "mid", SnapshotId: mid.SnapshotId})
	require.NoError(t, err)
	got, _ := queryIDs(t, c, &floev1.QueryRequest{Table: "ns.in", AsOf: &floev1.AsOf{Point: &floev1.AsOf_Tag{Tag: "mid"}}})
	require.Equal(t, p.below(offsetsOf(mid)), got)
	got, st := queryIDs(t, c, &floev1.QueryRequest{Table: "ns.in", Where: "id >= 10 AND id < 13 OR name = 'r40'", Columns: []string{"id"}})
	require.Equal(t, []int64{10, 11, 12, 40}, got)
	require.EqualValues(t, 4, st.Rows)
	_, st = queryIDs(t, c, &floev1.QueryRequest{Table: "ns.in", Limit: 5})
	require.True(t, st.Truncated)
	require.EqualValues(t, 5, st.Rows)
	_, err = admin.DeleteTag(context.Background(), &floev1.DeleteTagRequest{Table: "ns.in", Name: "mid"})
	require.NoError(t, err)
	// The tag is gone: a query as of it is refused (a stream's status
	// comes with its first Recv).
	stream, err := c.Query(context.Background(), &floev1.QueryRequest{Table: "ns.in", AsOf: &floev1.AsOf{Point: &floev1.AsOf_Tag{Tag: "mid"}}})
	require.NoError(t, err)
	_, err = stream.Recv()
	require.Equal(t, codes.NotFound, status.Code(err), "%v", err)
}

// Rollback over HTTP: a dry run changes nothing; replay returns the table
// to a snapshot and ingestion reads the records since again, ending where
// it was; skip drops the records since the snapshot and never reads them
// again, while new records keep coming.
func TestAPIRollback(t *testing.T) {
	n, base, _, pcl, stop := apiNodeWith(t, nil)
	defer stop()
	p := &producer{t: t, cl: pcl}
	c := grpcClient(t, n, readToken)
	p.batch(10)
	waitRows(t, c, "ns.in", idsTo(10))
	first := snapshots(t, base, "ns.in")[0]
	p.batch(10)
	waitRows(t, c, "ns.in", idsTo(20))
	// A dead letter after the first snapshot: replay must leave it in
	// the dead-letter table exactly once.
	bad := &kgo.Record{Value: []byte("not json")}
	require.NoError(t, pcl.ProduceSync(context.Background(), bad).FirstErr())
	dlq := func() []string {
		_, body := call(t, "GET", base+"/api/v1/tables/ns.in__dlq/query?columns=partition,offset", readToken, "")
		var out []string
		for _, l := range strings.Split(strings.TrimSpace(body), "\n") {
			if !strings.HasPrefix(l, `{"@`) {
				out = append(out, l)
			}
		}
		return out
	}
	wantDLQ := []string{fmt.Sprintf(`{"partition":%d,"offset":%d}`, bad.Partition, bad.Offset)}
	require.Eventually(t, func() bool { return slices.Equal(dlq(), wantDLQ) }, 30*time.Second, 50*time.Millisecond, "%v", dlq())

	body := fmt.Sprintf(`{"snapshot_id":"%d","mode":"ROLLBACK_MODE_REPLAY","dry_run":true}`, first.SnapshotId)
	code, out := call(t, "POST", base+"/api/v1/tables/ns.in/rollback", adminToken, body)
	require.Equal(t, http.StatusOK, code, out)
	var plan floev1.RollbackResponse
	require.NoError(t, protojson.Unmarshal([]byte(out), &plan))
	require.False(t, plan.Applied)
	require.Contains(t, plan.Description, "dry run")
	require.EqualValues(t, 20, plan.RecordsBefore)
	require.EqualValues(t, 10, plan.RecordsAfter)
	require.Equal(t, idsTo(20), mustIDs(t, c))

	// Denied: no token, then a read token.
	code, out = call(t, "POST", base+"/api/v1/tables/ns.in/rollback", "", body)
	require.Equal(t, http.StatusUnauthorized, code, out)
	code, out = call(t, "POST", base+"/api/v1/tables/ns.in/rollback", readToken, body)
	require.Equal(t, http.StatusForbidden, code, out)
	require.Contains(t, out, "admin")

	// Replay: back to 10 rows, then ingestion brings the other 10 back.
	body = fmt.Sprintf(`{"snapshot_id":"%d","mode":"ROLLBACK_MODE_REPLAY"}`, first.SnapshotId)
	code, out = call(t, "POST", base+"/api/v1/tables/ns.in/rollback", adminToken, body)
	require.Equal(t, http.StatusOK, code, out)
	require.NoError(t, protojson.Unmarshal([]byte(out), &plan))
	require.True(t, plan.Applied)
	require.Equal(t, first.SnapshotId, plan.NewSnapshotId)
	waitRows(t, c, "ns.in", idsTo(20))
	require.Eventually(t, func() bool { return slices.Equal(dlq(), wantDLQ) }, 30*time.Second, 50*time.Millisecond, "%v", dlq())
	// The dead letter is there once because the replay trimmed the
	// dead-letter table back to the snapshot's offsets and read the record
	// again: the trim is in the dead-letter table's history.
	trimmed := false
	for _, sn := range snapshots(t, base, "ns.in__dlq") {
		trimmed = trimmed || strings.HasPrefix(sn.Summary[commit.PropRollback], "trim:")
	}
	require.True(t, trimmed, "the dead-letter table was trimmed")
	code, out = call(t, "POST", base+"/api/v1/tables/ns.in__dlq/rollback", adminToken, body)
	require.Equal(t, http.StatusBadRequest, code, out)
	require.Contains(t, out, "dead-letter table")

	// Skip, by time: back to the rows of the first snapshot with the
	// offsets kept; [10, 20) never comes back, new records do.
	body = fmt.Sprintf(`{"timestamp":%q,"mode":"ROLLBACK_MODE_SKIP"}`, first.Timestamp.AsTime().Format(time.RFC3339Nano))
	code, out = call(t, "POST", base+"/api/v1/tables/ns.in/rollback", adminToken, body)
	require.Equal(t, http.StatusOK, code, out)
	require.NoError(t, protojson.Unmarshal([]byte(out), &plan))
	require.True(t, plan.Applied, out)
	require.Equal(t, idsTo(10), mustIDs(t, c))
	p.batch(5)
	want := append(idsTo(10), 20, 21, 22, 23, 24)
	waitRows(t, c, "ns.in", want)
	time.Sleep(500 * time.Millisecond) // several commit intervals: nothing else arrives
	require.Equal(t, want, mustIDs(t, c))
}

func mustIDs(t *testing.T, c floev1.TableServiceClient) []int64 {
	ids, _ := queryIDs(t, c, &floev1.QueryRequest{Table: "ns.in"})
	return ids
}

// Malformed requests get a 4xx with a message that says what to change.
func TestAPIBadRequests(t *testing.T) {
	_, base, produce, stop := apiNode(t)
	defer stop()
	produce(`{"id":1,"name":"a"}`)
	require.Eventually(t, func() bool {
		_, body := call(t, "GET", base+"/api/v1/tables/ns.in/query", readToken, "")
		return strings.Contains(body, `"id":1`)
	}, 30*time.Second, 50*time.Millisecond)
	for _, tc := range []struct {
		method, path, body string
		code               int
		says               string
	}{
		{"GET", "/api/v1/tables/ns.in/query?where=id%20%3D%3D%201", "", 400, "^"},
		{"GET", "/api/v1/tables/ns.in/query?where=nope%3D1", "", 400, "no column \\\"nope\\\""},
		{"GET", "/api/v1/tables/ns.in/query?columns=id,zzz", "", 400, "zzz"},
		{"GET", "/api/v1/tables/ns.in/query?snapshot_id=42", "", 404, "42"},
		{"GET", "/api/v1/tables/ns.in/query?limit=999999999999", "", 400, "max_rows"},
		{"GET", "/api/v1/tables/ns.in/query?limit=-1", "", 400, "negative"},
		{"GET", "/api/v1/tables/ns.in/query?tag=a&branch=b", "", 400, "at most one"},
		{"GET", "/api/v1/tables/ns.in/query?timestamp=yesterday", "", 400, "RFC 3339"},
		{"GET", "/api/v1/tables/ns.nope/query", "", 404, "ns.in"},
		{"GET", "/api/v1/tables/ns.nope", "", 404, "no pipeline"},
		{"GET", "/api/v1/tables/ns.in/snapshots/42", "", 404, "no snapshot 42"},
		{"GET", "/api/v1/tables/ns.in/snapshots?page_size=1000000", "", 400, "max_page_size"},
		{"GET", "/api/v1/tables/ns.in/snapshots?page_token=xyz", "", 400, "page_token"},
		{"POST", "/api/v1/tables/ns.in/rollback", `{"snapshot_id":"42","mode":"ROLLBACK_MODE_SKIP"}`, 404, "no snapshot 42"},
		{"POST", "/api/v1/tables/ns.in/rollback", `{"snapshot_id":"42"}`, 400, "replay"},
		{"POST", "/api/v1/tables/ns.in/rollback", `{not json`, 400, "JSON"},
		{"POST", "/api/v1/tables/ns.in/tags", `{"name":"floe-in"}`, 400, "floe's own"},
		{"DELETE", "/api/v1/tables/ns.in/tags/nosuch", "", 404, "no tag"},
		{"GET", "/api/v1/compactions/nosuch", "", 404, "no compaction job"},
	} {
		code, body := call(t, tc.method, base+tc.path, adminToken, tc.body)
		require.Equal(t, tc.code, code, "%s %s: %s", tc.method, tc.path, body)
		require.Contains(t, body, tc.says, "%s %s", tc.method, tc.path)
		require.Contains(t, body, `"message"`, "%s %s", tc.method, tc.path)
	}
}

// Compact starts a job that GetCompaction polls to its end.
func TestAPICompactJob(t *testing.T) {
	_, base, produce, stop := apiNode(t)
	defer stop()
	for i := 0; i < 4; i++ {
		produce(fmt.Sprintf(`{"id":%d}`, i))
		time.Sleep(150 * time.Millisecond)
	}
	code, body := call(t, "POST", base+"/api/v1/tables/ns.in/compactions", adminToken, `{}`)
	require.Equal(t, http.StatusOK, code, body)
	var job floev1.CompactionJob
	require.NoError(t, protojson.Unmarshal([]byte(body), &job))
	require.NotEmpty(t, job.JobId)
	require.Eventually(t, func() bool {
		_, body = call(t, "GET", base+"/api/v1/compactions/"+job.JobId, readToken, "")
		require.NoError(t, protojson.Unmarshal([]byte(body), &job))
		return job.State != "running"
	}, 60*time.Second, 50*time.Millisecond)
	require.Equal(t, "succeeded", job.State, body)
	code, body = call(t, "GET", base+"/api/v1/cluster/status", readToken, "")
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, `"node_id"`)
}

// With node.api.tls, gRPC and HTTP are served over TLS only.
func TestAPITLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := selfSignedFiles(t, dir)
	n, base, produce, _, stop := apiNodeWith(t, func(c *config.Config) {
		c.Node.API.TLS = api.TLSConfig{CertFile: certFile, KeyFile: keyFile}
	})
	defer stop()
	produce(`{"id":7}`)
	require.True(t, strings.HasPrefix(base, "https://"))

	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	req, _ := http.NewRequest("GET", base+"/api/v1/tables", nil)
	req.Header.Set("Authorization", "Bearer "+readToken)
	resp, err := hc.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	// A plaintext request to the TLS port gets Go's 400 for it, never the
	// API.
	r, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + n.Addr() + "/api/v1/tables")
	require.NoError(t, err)
	body, _ := io.ReadAll(r.Body)
	r.Body.Close()
	require.Equal(t, http.StatusBadRequest, r.StatusCode)
	require.Contains(t, string(body), "HTTPS")

	conn, err := grpc.NewClient(n.APIAddr(), grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pool})),
		grpc.WithPerRPCCredentials(bearer(readToken)))
	require.NoError(t, err)
	defer conn.Close()
	var ids []int64
	require.Eventually(t, func() bool {
		ids, _ = queryIDs(t, floev1.NewTableServiceClient(conn), &floev1.QueryRequest{Table: "ns.in"})
		return len(ids) == 1
	}, 30*time.Second, 50*time.Millisecond)
	require.Equal(t, []int64{7}, ids)
	plain := grpcClient(t, n, readToken)
	_, err = plain.ListTables(context.Background(), &floev1.ListTablesRequest{})
	require.Error(t, err, "a plaintext gRPC client is refused")
}

// selfSignedFiles writes a self-signed certificate for 127.0.0.1 and its
// key, and returns their paths and a pool trusting it.
func selfSignedFiles(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "floe.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	kder, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600))
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

func TestLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"": true, "127.0.0.1:8080": true, "localhost:7070": true, "[::1]:7070": true,
		"0.0.0.0:8080": false, ":8080": false, "10.0.0.5:8080": false, "nonsense": false,
	} {
		require.Equal(t, want, loopback(addr), addr)
	}
}
