package e2e

// The web console (timetravel/console) in a real browser: headless
// Chromium driven by Playwright (the npm package playwright-core, never
// part of the repository: scripts/test.sh installs it once under
// $(go env GOPATH)/floe-test-tools/playwright-core-<version>; Chromium is
// Debian's package). Without them the test is skipped with the install
// commands, unless CI is set: then it fails.
//
// An in-process node ingests 50 records in five commits (and one dead
// letter); testdata/console_check.mjs then opens the console as a person
// would, from a browser with a fresh profile: enters the token the 401
// asked for, selects the table, waits for the snapshot timeline to list
// exactly the table's snapshots (paging through them two at a time), clicks one (which sets the query's as-of)
// and runs a filtered query, opens a deep link (#table=...&asof=tag:...),
// and runs a filter with a syntax error. It prints what it saw as JSON;
// this test compares it with what the API and the records say. The
// screenshot it takes goes to $FLOE_CONSOLE_SCREENSHOT, else to the test's
// temporary directory (its path is logged).

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floelake/floe/ingest"
	"github.com/floelake/floe/internal/conf"
	"github.com/floelake/floe/internal/config"
	"github.com/floelake/floe/internal/node"
	"github.com/floelake/floe/timetravel/api"
)

// playwrightVersion is the playwright-core release scripts/test.sh
// installs.
const playwrightVersion = "1.65.1"

const playwrightInstall = `npm install --prefix "$(go env GOPATH)/floe-test-tools/playwright-core-` + playwrightVersion +
	`" --save-exact --no-audit --no-fund playwright-core@` + playwrightVersion + ` (or run scripts/test.sh; FLOE_PLAYWRIGHT_DIR names another --prefix)`

const chromiumInstall = "apt-get install -y chromium (FLOE_CHROMIUM names another binary)"

// findPlaywright returns the --prefix playwright-core was installed into:
// $FLOE_PLAYWRIGHT_DIR, else scripts/test.sh's cache.
func findPlaywright() (string, error) {
	if _, err := exec.LookPath("node"); err != nil {
		return "", fmt.Errorf("node is not on PATH")
	}
	dir := os.Getenv("FLOE_PLAYWRIGHT_DIR")
	if dir == "" {
		out, err := exec.Command("go", "env", "GOPATH").Output()
		if err != nil {
			return "", fmt.Errorf("go env GOPATH: %v", err)
		}
		gp := filepath.SplitList(strings.TrimSpace(string(out)))
		if len(gp) == 0 {
			return "", fmt.Errorf("go env GOPATH is empty")
		}
		dir = filepath.Join(gp[0], "floe-test-tools", "playwright-core-"+playwrightVersion)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "playwright-core", "package.json")); err != nil {
		return "", fmt.Errorf("no playwright-core in %s/node_modules", dir)
	}
	return filepath.Abs(dir)
}

// findChromium returns $FLOE_CHROMIUM, else Debian's chromium.
func findChromium() (string, error) {
	if p := os.Getenv("FLOE_CHROMIUM"); p != "" {
		return exec.LookPath(p)
	}
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("chromium is not installed")
}

// requireBrowser returns playwright-core's directory and Chromium's path,
// or skips the test (fails it with CI set) saying how to install them.
func requireBrowser(t *testing.T) (pwDir, chromium string) {
	t.Helper()
	var missing []string
	pwDir, err := findPlaywright()
	if err != nil {
		missing = append(missing, fmt.Sprintf("playwright-core@%s: %v; install with: %s", playwrightVersion, err, playwrightInstall))
	}
	chromium, err = findChromium()
	if err != nil {
		missing = append(missing, fmt.Sprintf("Chromium: %v; install with: %s", err, chromiumInstall))
	}
	if len(missing) == 0 {
		return pwDir, chromium
	}
	msg := "the console's browser test needs " + strings.Join(missing, "; and ")
	if os.Getenv("CI") != "" {
		t.Fatal(msg + " (CI is set, so it must not be skipped)")
	}
	t.Skip("skipping: " + msg)
	return "", ""
}

const (
	consoleReadToken  = "console-read-token-0123456789"
	consoleAdminToken = "console-admin-token-0123456789"
	consoleTable      = "shop.orders"
	consoleTopic      = "orders"
)

// consoleOrder is the test's record i (ids from 1).
type consoleOrder struct {
	ID       int64   `json:"id"`
	Customer string  `json:"customer"`
	Amount   float64 `json:"amount"`
	Country  string  `json:"country"`
	TS       string  `json:"ts"`
}

func newConsoleOrder(i int64) consoleOrder {
	countries := []string{"DE", "FR", "US"}
	return consoleOrder{
		ID: i, Customer: fmt.Sprintf("c-%03d", i*7%23), Amount: float64(i) * 1.25, Country: countries[i%3],
		TS: time.Date(2026, 1, 2, 10, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Minute).Format(time.RFC3339),
	}
}

// consoleCheck is what testdata/console_check.mjs is given (env
// FLOE_CONSOLE_CHECK).
type consoleCheck struct {
	PlaywrightDir string   `json:"playwright_dir"`
	Chromium      string   `json:"chromium"`
	URL           string   `json:"url"`
	Token         string   `json:"token"`
	Table         string   `json:"table"`
	SnapshotIDs   []string `json:"snapshot_ids"`
	QuerySnapshot string   `json:"query_snapshot"`
	Where         string   `json:"where"`
	DeepLink      string   `json:"deep_link"`
	BadWhere      string   `json:"bad_where"`
	PageSize      int      `json:"page_size"`
	Screenshot    string   `json:"screenshot"`
}

// consoleSeen is what the script reports.
type consoleSeen struct {
	TokenDialog    bool     `json:"token_dialog"`
	Tables         []string `json:"tables"`
	SnapshotIDs    []string `json:"snapshot_ids"`
	SnapshotsTotal string   `json:"snapshots_total"`
	SnapshotPages  []string `json:"snapshot_pages"`
	Partitions     []string `json:"partitions"`
	OffsetRows     int      `json:"offset_rows"`
	SchemaColumns  []string `json:"schema_columns"`
	AsOfKind       string   `json:"asof_kind"`
	AsOfValue      string   `json:"asof_value"`
	Query          struct {
		State      string   `json:"state"`
		IDs        []string `json:"ids"`
		SnapshotID string   `json:"snapshot_id"`
		Status     string   `json:"status"`
		Hash       string   `json:"hash"`
	} `json:"query"`
	DeepLink struct {
		State      string   `json:"state"`
		IDs        []string `json:"ids"`
		Columns    []string `json:"columns"`
		SnapshotID string   `json:"snapshot_id"`
		AsOfKind   string   `json:"asof_kind"`
		AsOfValue  string   `json:"asof_value"`
	} `json:"deep_link"`
	Error struct {
		State      string `json:"state"`
		Status     string `json:"status"`
		Message    string `json:"message"`
		FontFamily string `json:"font_family"`
		WhiteSpace string `json:"white_space"`
	} `json:"error"`
	Screenshot    string   `json:"screenshot"`
	ConsoleErrors []string `json:"console_errors"`
	BadResponses  []string `json:"bad_responses"`
}

func TestConsole(t *testing.T) {
	pwDir, chromium := requireBrowser(t)
	script, err := filepath.Abs(filepath.Join("testdata", "console_check.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// A node with one pipeline, partitioned by country, and API tokens.
	_, broker := startBroker(t, consoleTopic, 3)
	dir := t.TempDir()
	cfg := config.Default()
	cfg.Node.DataDir = filepath.Join(dir, "data")
	cfg.Node.HTTPAddr = "127.0.0.1:0"
	cfg.Node.API.Tokens = []api.Token{{Name: "read", Token: consoleReadToken, Scope: api.ScopeRead}, {Name: "admin", Token: consoleAdminToken, Scope: api.ScopeAdmin}}
	cfg.Catalog.URI = "sqlite://" + filepath.Join(dir, "catalog.db")
	cfg.Kafka.Brokers = []string{broker}
	cfg.Pipelines = []ingest.PipelineConfig{{
		Name: "orders", Topics: []string{consoleTopic}, Table: consoleTable,
		CommitInterval: conf.Duration(150 * time.Millisecond),
		Schema: []ingest.Column{
			{Name: "id", Type: "long", Required: true, Doc: "order id"},
			{Name: "customer", Type: "string"},
			{Name: "amount", Type: "double"},
			{Name: "country", Type: "string"},
			{Name: "ts", Type: "timestamptz"},
		},
		PartitionBy: []string{"country"},
	}}
	// No maintenance: a compaction or an expiry would change the
	// snapshots while the browser looks at them.
	cfg.Maintenance.Compaction.Enabled = false
	cfg.Maintenance.Expiry.Enabled = false
	cfg.Maintenance.Orphans.Enabled = false
	cfg.FillDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	nctx, stop := context.WithCancel(context.Background())
	n, err := node.New(nctx, cfg, testLogger(t, "node"))
	if err != nil {
		stop()
		t.Fatalf("node.New: %v", err)
	}
	if err := n.Listen(); err != nil {
		stop()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- n.Run(nctx) }()
	t.Cleanup(func() {
		stop()
		select {
		case <-done:
		case <-time.After(time.Minute):
		}
	})
	nodeURL := "http://" + n.Addr()

	// The console as the node serves it, at /console/.
	srv := struct{ URL string }{nodeURL}

	waitFor(t, 30*time.Second, "the API", func() (bool, string) {
		code, body := consoleCall(t, "GET", nodeURL+"/api/v1/tables", consoleReadToken, "")
		return code == http.StatusOK, fmt.Sprintf("%d %s", code, body)
	})

	// Five commits of ten records; one dead letter in the first.
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.DefaultProduceTopic(consoleTopic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var boundaries []string // the current snapshot after each batch
	for b := int64(0); b < 5; b++ {
		var recs []*kgo.Record
		for i := b*10 + 1; i <= b*10+10; i++ {
			v, _ := json.Marshal(newConsoleOrder(i))
			recs = append(recs, &kgo.Record{Value: v, Partition: int32(i % 3)})
		}
		if b == 0 {
			recs = append(recs, &kgo.Record{Value: []byte(`{"id": 0, "amount": oops}`), Partition: 0})
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		want := strconv.FormatInt((b+1)*10, 10)
		var cur string
		waitFor(t, 30*time.Second, "records "+want, func() (bool, string) {
			var tbl struct {
				Summary struct {
					TotalRecords      string `json:"total_records"`
					CurrentSnapshotID string `json:"current_snapshot_id"`
				} `json:"summary"`
			}
			code, body := consoleCall(t, "GET", nodeURL+"/api/v1/tables/"+consoleTable, consoleReadToken, "")
			if code != http.StatusOK || json.Unmarshal([]byte(body), &tbl) != nil {
				return false, fmt.Sprintf("%d %s", code, body) // 503 until the first commit creates the table
			}
			cur = tbl.Summary.CurrentSnapshotID
			return tbl.Summary.TotalRecords == want, "total_records " + tbl.Summary.TotalRecords
		})
		boundaries = append(boundaries, cur)
	}
	code, body := consoleCall(t, "POST", nodeURL+"/api/v1/tables/"+consoleTable+"/tags", consoleAdminToken,
		fmt.Sprintf(`{"name": "first-ten", "snapshot_id": %q}`, boundaries[0]))
	if code != http.StatusOK {
		t.Fatalf("CreateTag: %d %s", code, body)
	}

	// What the console must show.
	var tables struct {
		Tables []struct {
			Name string `json:"name"`
		} `json:"tables"`
	}
	consoleGetJSON(t, nodeURL+"/api/v1/tables", &tables)
	var tableNames []string
	for _, tb := range tables.Tables {
		tableNames = append(tableNames, tb.Name)
	}
	slices.Sort(tableNames)
	var snaps struct {
		Snapshots []struct {
			SnapshotID string `json:"snapshot_id"`
		} `json:"snapshots"`
		Total string `json:"total"`
	}
	consoleGetJSON(t, nodeURL+"/api/v1/tables/"+consoleTable+"/snapshots?page_size=1000", &snaps)
	var snapIDs []string
	for _, s := range snaps.Snapshots {
		snapIDs = append(snapIDs, s.SnapshotID)
	}
	if len(snapIDs) < 5 {
		t.Fatalf("the table has %d snapshots, want at least 5 (one per batch)", len(snapIDs))
	}
	const where = "id >= 15 AND country != 'US' OR id = 3"
	var wantQuery []string // as of the second batch: ids 1..20
	for i := int64(1); i <= 20; i++ {
		if o := newConsoleOrder(i); o.ID >= 15 && o.Country != "US" || o.ID == 3 {
			wantQuery = append(wantQuery, strconv.FormatInt(i, 10))
		}
	}
	var wantDeep []string // as of the tag: ids 1..10
	for i := int64(1); i <= 10; i++ {
		if newConsoleOrder(i).Amount > 10 {
			wantDeep = append(wantDeep, strconv.FormatInt(i, 10))
		}
	}

	shot := os.Getenv("FLOE_CONSOLE_SCREENSHOT")
	if shot == "" {
		shot = filepath.Join(t.TempDir(), "console.png")
	} else if shot, err = filepath.Abs(shot); err != nil {
		t.Fatal(err)
	}
	check := consoleCheck{
		PlaywrightDir: pwDir, Chromium: chromium,
		URL: srv.URL + "/console/", Token: consoleReadToken, Table: consoleTable,
		SnapshotIDs: snapIDs, QuerySnapshot: boundaries[1], Where: where,
		DeepLink:   "table=" + consoleTable + "&asof=tag:first-ten&where=" + url.QueryEscape("amount > 10") + "&columns=id,amount",
		BadWhere:   "amount >= )",
		PageSize:   2,
		Screenshot: shot,
	}
	in, _ := json.Marshal(check)
	cmd := exec.CommandContext(ctx, "node", script)
	cmd.Env = append(os.Environ(), "FLOE_CONSOLE_CHECK="+string(in))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err = cmd.Run()
	t.Logf("console_check.mjs ran for %s", time.Since(start).Round(time.Millisecond))
	if stderr.Len() > 0 {
		t.Logf("console_check.mjs stderr:\n%s", tail(stderr.String(), 60))
	}
	if err != nil {
		t.Fatalf("console_check.mjs: %v\n%s", err, stdout.String())
	}
	var seen consoleSeen
	if err := json.Unmarshal(bytes.TrimSpace(lastLine(stdout.Bytes())), &seen); err != nil {
		t.Fatalf("console_check.mjs printed no result: %v\n%s", err, stdout.String())
	}
	t.Logf("console screenshot: %s", seen.Screenshot)

	var fails []string
	expect := func(what string, got, want any) {
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		if !bytes.Equal(g, w) {
			fails = append(fails, fmt.Sprintf("%s: got %s, want %s", what, g, w))
		}
	}
	expect("token dialog shown on the 401", seen.TokenDialog, true)
	slices.Sort(seen.Tables)
	expect("tables listed", seen.Tables, tableNames)
	expect("snapshot timeline (newest first)", seen.SnapshotIDs, snapIDs)
	expect("snapshots total", seen.SnapshotsTotal, snaps.Total)
	// Paged through the server, 2 at a time: the first page, then a page
	// after the last snapshot of each full page.
	var wantPages []string
	for i := 0; i < len(snapIDs); i += check.PageSize {
		if i == 0 {
			wantPages = append(wantPages, "")
		} else {
			wantPages = append(wantPages, snapIDs[i-1])
		}
	}
	expect("snapshot pages requested (page tokens)", seen.SnapshotPages, wantPages)
	expect("file health partitions", seen.Partitions, []string{"country=DE", "country=FR", "country=US"})
	expect("offset rows (one per Kafka partition)", seen.OffsetRows, 3)
	expect("schema columns", seen.SchemaColumns, []string{"id", "customer", "amount", "country", "ts"})
	expect("as-of kind after clicking a snapshot", seen.AsOfKind, "snapshot")
	expect("as-of value after clicking a snapshot", seen.AsOfValue, boundaries[1])
	expect("query state", seen.Query.State, "done")
	expect("query ids", sortedNumeric(seen.Query.IDs), wantQuery)
	expect("query snapshot (@stats)", seen.Query.SnapshotID, boundaries[1])
	if !strings.Contains(seen.Query.Hash, "asof=snapshot%3A"+boundaries[1]) || !strings.Contains(seen.Query.Hash, "table="+consoleTable) {
		fails = append(fails, "the query's deep link is "+seen.Query.Hash)
	}
	expect("deep link state", seen.DeepLink.State, "done")
	expect("deep link ids", sortedNumeric(seen.DeepLink.IDs), wantDeep)
	expect("deep link columns", seen.DeepLink.Columns, []string{"id", "amount"})
	expect("deep link snapshot (@stats)", seen.DeepLink.SnapshotID, boundaries[0])
	expect("deep link as-of", []string{seen.DeepLink.AsOfKind, seen.DeepLink.AsOfValue}, []string{"tag", "first-ten"})
	expect("bad filter state", seen.Error.State, "error")
	expect("bad filter status", seen.Error.Status, "INVALID_ARGUMENT")
	if !strings.Contains(seen.Error.Message, "amount >= )\n") || !strings.Contains(seen.Error.Message, "^") {
		fails = append(fails, fmt.Sprintf("the filter error shows no caret under the filter: %q", seen.Error.Message))
	}
	if !strings.Contains(strings.ToLower(seen.Error.FontFamily), "mono") || !strings.HasPrefix(seen.Error.WhiteSpace, "pre") {
		fails = append(fails, fmt.Sprintf("the filter error is not in monospace with its lines kept: font %q, white-space %q", seen.Error.FontFamily, seen.Error.WhiteSpace))
	}
	expect("browser console errors", seen.ConsoleErrors, []string{})
	expect("failed requests for the console's files", seen.BadResponses, []string{})
	if st, err := os.Stat(seen.Screenshot); err != nil || st.Size() < 10_000 {
		fails = append(fails, fmt.Sprintf("screenshot %s: %v (size %d)", seen.Screenshot, err, sizeOf(st)))
	}
	if len(fails) > 0 {
		t.Fatalf("the console showed:\n  %s\nscript output: %s", strings.Join(fails, "\n  "), stdout.String())
	}
}

// consoleCall makes an HTTP request with a token and returns the status
// and body.
func consoleCall(t *testing.T, method, u, token, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func consoleGetJSON(t *testing.T, u string, v any) {
	t.Helper()
	code, body := consoleCall(t, "GET", u, consoleReadToken, "")
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", u, code, body)
	}
	if err := json.Unmarshal([]byte(body), v); err != nil {
		t.Fatalf("GET %s: %v\n%s", u, err, body)
	}
}

func lastLine(b []byte) []byte {
	b = bytes.TrimRight(b, "\n")
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		return b[i+1:]
	}
	return b
}

func sortedNumeric(ids []string) []string {
	out := slices.Clone(ids)
	slices.SortFunc(out, func(a, b string) int {
		x, _ := strconv.ParseInt(a, 10, 64)
		y, _ := strconv.ParseInt(b, 10, 64)
		return int(x - y)
	})
	if out == nil {
		out = []string{}
	}
	return out
}

func sizeOf(st os.FileInfo) int64 {
	if st == nil {
		return 0
	}
	return st.Size()
}
