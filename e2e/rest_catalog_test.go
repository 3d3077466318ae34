package e2e

// ClickHouse reading floe's tables through the node's Iceberg REST catalog
// (/iceberg), with DataLakeCatalog, as a user would: it lists the tables and
// reads the same rows floe's own query API returns.
//
// What ClickHouse 26.7 (chdb 3.4.0) needs, and why:
//
//   - S3-compatible store: DataLakeCatalog('http://<http_addr>/iceberg/v1',
//     '<access key>', '<secret>') SETTINGS catalog_type='rest',
//     warehouse='floe'. The endpoint, region and path style come from the
//     table config the catalog serves; the key and secret from the second
//     and third arguments (or, with the node's vend_credentials on, from the
//     catalog: then no arguments). The catalog serves s3.endpoint with a
//     trailing "/": without it ClickHouse reads the metadata file at
//     <table>/<bucket>/<table path>/metadata/... (ClickHouse issue #93283;
//     see restCatalog in internal/node/node.go), an S3 404.
//   - Local (file://) warehouse: DataLakeCatalog(url) with
//     vended_credentials=0, or DataLakeCatalog(url, 'Parquet', 'auto'):
//     without either, 26.7 refuses a table for which the catalog vended no
//     credentials ("Either vended credentials need to be enabled or storage
//     credentials need to be specified ..."). Files are read from the
//     node's paths, so ClickHouse must run on the same machine.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/floelake/floe/internal/gen"
	"github.com/floelake/floe/internal/testutil"
)

// restColumns are the clicks table's columns as ClickHouse selects them; ts
// is compared in microseconds since the epoch.
var restColumns = []string{
	"event_id", "user_id", "session_id", "ts", "url", "referrer", "device", "country",
	"duration_ms", "revenue", "_kafka_partition", "_kafka_offset",
}

// TestRESTCatalogClickHouseS3 reads an S3 (versitygw) warehouse through the
// REST catalog with the storage credentials as DataLakeCatalog's arguments.
func TestRESTCatalogClickHouseS3(t *testing.T) {
	chdb := requireChdb(t)
	if chdb == "" {
		t.SkipNow()
	}
	srv := testutil.StartS3(t)
	x := startRESTNode(t, s3Warehouse(srv), false)

	// The table config: the endpoint with its trailing slash, path style,
	// and no credentials (vend_credentials is off).
	var load struct {
		MetadataLocation string            `json:"metadata-location"`
		Config           map[string]string `json:"config"`
	}
	x.getJSON(t, "/iceberg/v1/namespaces/e2e/tables/clicks", &load)
	if got, want := load.Config["s3.endpoint"], srv.Endpoint+"/"; got != want {
		t.Errorf("table config s3.endpoint = %q, want %q", got, want)
	}
	if load.Config["s3.path-style-access"] != "true" || load.Config["s3.region"] != srv.Region {
		t.Errorf("table config %v: want s3.path-style-access true and s3.region %s", load.Config, srv.Region)
	}
	if _, ok := load.Config["s3.secret-access-key"]; ok {
		t.Errorf("table config vends the secret with vend_credentials off: %v", load.Config)
	}
	if !strings.HasPrefix(load.MetadataLocation, "s3://"+srv.Bucket+"/") {
		t.Errorf("metadata-location %q is not in s3://%s/", load.MetadataLocation, srv.Bucket)
	}

	x.checkClickHouse(t, chdb, fmt.Sprintf("DataLakeCatalog('http://%s/iceberg/v1', %s, %s) SETTINGS catalog_type='rest', warehouse='floe'",
		x.httpAddr, sqlQuote(srv.AccessKey), sqlQuote(srv.SecretKey)))
}

// TestRESTCatalogClickHouseS3Vended reads an S3 warehouse through the REST
// catalog of a node with vend_credentials on: DataLakeCatalog takes no
// credentials, it uses those in the table config.
func TestRESTCatalogClickHouseS3Vended(t *testing.T) {
	chdb := requireChdb(t)
	if chdb == "" {
		t.SkipNow()
	}
	srv := testutil.StartS3(t)
	x := startRESTNode(t, s3Warehouse(srv), true)
	var load struct {
		Config map[string]string `json:"config"`
	}
	x.getJSON(t, "/iceberg/v1/namespaces/e2e/tables/clicks", &load)
	if load.Config["s3.access-key-id"] != srv.AccessKey || load.Config["s3.secret-access-key"] != srv.SecretKey {
		t.Errorf("table config %v: want the storage section's credentials (vend_credentials is on)", load.Config)
	}
	x.checkClickHouse(t, chdb, fmt.Sprintf("DataLakeCatalog('http://%s/iceberg/v1') SETTINGS catalog_type='rest', warehouse='floe'", x.httpAddr))
}

// s3Warehouse puts the warehouse in srv's bucket.
func s3Warehouse(srv *testutil.S3Server) func(*setup) {
	return func(s *setup) {
		s.Warehouse = srv.Warehouse("wh")
		s.S3 = &s3Settings{Endpoint: srv.Endpoint, Region: srv.Region, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey}
	}
}

// TestRESTCatalogClickHouseLocal reads a local (file://) warehouse through
// the REST catalog.
func TestRESTCatalogClickHouseLocal(t *testing.T) {
	chdb := requireChdb(t)
	if chdb == "" {
		t.SkipNow()
	}
	x := startRESTNode(t, nil, false)
	url := sqlQuote("http://" + x.httpAddr + "/iceberg/v1")
	x.checkClickHouse(t, chdb,
		"DataLakeCatalog("+url+") SETTINGS catalog_type='rest', warehouse='floe', vended_credentials=0",
		"DataLakeCatalog("+url+", 'Parquet', 'auto') SETTINGS catalog_type='rest', warehouse='floe'")
}

// restNode is a node that has committed every record of a clicks topic.
type restNode struct {
	httpAddr          string
	rows, deadLetters int64 // committed to e2e.clicks and e2e.clicks__dlq
}

// startRESTNode runs a node serving HTTP (and so /iceberg) with the setup
// shape makes and vend_credentials as given, produces clicks (some
// malformed) and waits until it has committed them all. The node runs until
// the test ends.
func startRESTNode(t *testing.T, shape func(*setup), vend bool) *restNode {
	t.Helper()
	const topic, records = "clicks", 3000
	_, broker := startBroker(t, topic, 3)
	s := newSetup(t, broker, topic)
	s.HTTPAddr = freeAddr(t)
	if shape != nil {
		shape(&s)
	}
	cfg := s.config(t)
	cfg.Node.RESTCatalog.VendCredentials = vend
	n := startNode(t, cfg, testLogger(t, "node"))
	var stats gen.ProducerStats
	if err := produce(context.Background(), newProducer(t, broker), topic, records, 0, 31, &stats); err != nil {
		t.Fatalf("produce: %v", err)
	}
	p := n.n.Pipelines()[0]
	waitFor(t, 2*time.Minute, "the node to commit every record", func() (bool, string) {
		st := p.Stats()
		return st.Committed+st.DeadLettersCommitted == records,
			fmt.Sprintf("stats %+v, want committed+dead-letters = %d", st, records)
	})
	st := p.Stats()
	if st.Committed == 0 || st.DeadLettersCommitted == 0 {
		t.Fatalf("want rows in both tables: %+v", st)
	}
	return &restNode{httpAddr: s.HTTPAddr, rows: st.Committed, deadLetters: st.DeadLettersCommitted}
}

// getJSON decodes the JSON answer of GET path on the node.
func (x *restNode) getJSON(t *testing.T, path string, v any) {
	t.Helper()
	body := x.get(t, path)
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v\n%s", path, err, body)
	}
}

func (x *restNode) get(t *testing.T, path string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+x.httpAddr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v\n%s", path, resp.StatusCode, err, body)
	}
	return body
}

// checkClickHouse creates one ClickHouse database per engine clause (all in
// one session) and checks that each lists exactly the node's two tables,
// counts the rows floe committed to each (sum(1) reading the files, and
// count() from the snapshot summary), and reads the table's rows exactly as
// floe's query API returns them.
func (x *restNode) checkClickHouse(t *testing.T, chdb string, engines ...string) {
	t.Helper()
	want := x.floeRows(t)
	if int64(len(want)) != x.rows {
		t.Fatalf("floe's query returned %d rows, the pipeline committed %d", len(want), x.rows)
	}
	sel := make([]string, len(restColumns))
	for i, c := range restColumns {
		sel[i] = c
		if c == "ts" {
			sel[i] = "toUnixTimestamp64Micro(ts)"
		}
	}
	stmts := []string{"SET allow_database_iceberg=1"}
	for i, engine := range engines {
		db := fmt.Sprintf("lake%d", i)
		stmts = append(stmts,
			fmt.Sprintf("CREATE DATABASE %s ENGINE=%s", db, engine),
			"SHOW TABLES FROM "+db,
			fmt.Sprintf("SELECT sum(1), count() FROM %s.`e2e.clicks`", db),
			fmt.Sprintf("SELECT sum(1), count() FROM %s.`e2e.clicks__dlq`", db),
			fmt.Sprintf("SELECT %s FROM %s.`e2e.clicks` ORDER BY _kafka_partition, _kafka_offset", strings.Join(sel, ", "), db),
		)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res, err := clickHouse(ctx, chdb, stmts)
	if err != nil {
		t.Fatalf("clickhouse: %v", err)
	}
	counts := func(what string, r chResult, n int64) {
		t.Helper()
		w := strconv.FormatInt(n, 10)
		if len(r.Rows) != 1 || len(r.Rows[0]) != 2 || r.Rows[0][0] != w || r.Rows[0][1] != w {
			t.Errorf("%s: sum(1), count() = %q, want %s rows (what floe committed)", what, r.Rows, w)
		}
	}
	for i, engine := range engines {
		r := res[1+5*i:]
		var tables []string
		for _, row := range r[1].Rows {
			tables = append(tables, row[0])
		}
		if !slices.Equal(tables, []string{"e2e.clicks", "e2e.clicks__dlq"}) {
			t.Errorf("%s: SHOW TABLES = %q, want e2e.clicks and e2e.clicks__dlq", engine, tables)
		}
		counts(engine+": e2e.clicks", r[2], x.rows)
		counts(engine+": e2e.clicks__dlq", r[3], x.deadLetters)
		got := make([]string, len(r[4].Rows))
		for j, row := range r[4].Rows {
			got[j] = canonicalTSVRow(row)
		}
		compareRows(t, engine, got, want)
		t.Logf("%s: %d rows read in %v, as floe's query returns them; %d dead letters", engine, len(got), r[4].Took, x.deadLetters)
	}
}

// floeRows reads e2e.clicks through GET /api/v1/tables/{table}/query (JSON
// lines, then {"@stats": ...}), ordered by (partition, offset) as the
// ClickHouse query orders them, each row in canonical form.
func (x *restNode) floeRows(t *testing.T) []string {
	t.Helper()
	body := x.get(t, "/api/v1/tables/e2e.clicks/query?columns="+strings.Join(restColumns, ","))
	type keyed struct {
		part, off int64
		row       string
	}
	var rows []keyed
	var stats map[string]any
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.UseNumber()
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("query: line %q: %v", sc.Text(), err)
		}
		if s, ok := m["@stats"]; ok {
			stats, _ = s.(map[string]any)
			continue
		}
		if _, ok := m["@error"]; ok || stats != nil {
			t.Fatalf("query: unexpected line %q", sc.Text())
		}
		row, part, off, err := canonicalJSONRow(m)
		if err != nil {
			t.Fatalf("query: line %q: %v", sc.Text(), err)
		}
		rows = append(rows, keyed{part, off, row})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if stats == nil {
		t.Fatalf("query: no @stats line")
	}
	if tr, _ := stats["truncated"].(bool); tr {
		t.Fatalf("query: truncated: %v", stats)
	}
	slices.SortFunc(rows, func(a, b keyed) int {
		if a.part != b.part {
			return int(a.part - b.part)
		}
		return int(a.off - b.off)
	})
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = r.row
	}
	return out
}

// nullValue is how both sides write a null.
const nullValue = "<null>"

// canonicalJSONRow writes a row of floe's query in the canonical form: the
// restColumns in order, tab-separated; ts in microseconds, revenue in Go's
// shortest float form.
func canonicalJSONRow(m map[string]any) (row string, part, off int64, err error) {
	vals := make([]string, len(restColumns))
	for i, c := range restColumns {
		v, ok := m[c]
		if !ok {
			return "", 0, 0, fmt.Errorf("no column %s", c)
		}
		switch v := v.(type) {
		case nil:
			vals[i] = nullValue
		case string:
			vals[i] = v
			if c == "ts" {
				ts, err := time.Parse(time.RFC3339Nano, v)
				if err != nil {
					return "", 0, 0, fmt.Errorf("ts: %v", err)
				}
				vals[i] = strconv.FormatInt(ts.UnixMicro(), 10)
			}
		case json.Number:
			vals[i] = v.String()
			if c == "revenue" {
				f, err := v.Float64()
				if err != nil {
					return "", 0, 0, fmt.Errorf("revenue: %v", err)
				}
				vals[i] = strconv.FormatFloat(f, 'g', -1, 64)
			}
		default:
			return "", 0, 0, fmt.Errorf("column %s: unexpected %T", c, v)
		}
	}
	part, err = strconv.ParseInt(vals[len(vals)-2], 10, 64)
	if err == nil {
		off, err = strconv.ParseInt(vals[len(vals)-1], 10, 64)
	}
	return strings.Join(vals, "\t"), part, off, err
}

// canonicalTSVRow writes a row ClickHouse returned in the canonical form.
func canonicalTSVRow(fields []string) string {
	vals := slices.Clone(fields)
	for i, v := range vals {
		switch {
		case v == `\N`:
			vals[i] = nullValue
		case i < len(restColumns) && restColumns[i] == "revenue":
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				vals[i] = strconv.FormatFloat(f, 'g', -1, 64)
			}
		}
	}
	return strings.Join(vals, "\t")
}

// compareRows reports the rows that differ, a few at most.
func compareRows(t *testing.T, what string, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: ClickHouse read %d rows, floe's query returned %d", what, len(got), len(want))
	}
	bad := 0
	for i := range min(len(got), len(want)) {
		if got[i] == want[i] {
			continue
		}
		if bad++; bad <= maxReported {
			t.Errorf("%s: row %d:\nClickHouse %q\nfloe       %q", what, i, got[i], want[i])
		}
	}
	if bad > maxReported {
		t.Errorf("%s: %d rows differ in all", what, bad)
	}
}
