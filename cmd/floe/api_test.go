package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"
	"github.com/apache/arrow-go/v18/arrow/extensions"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/floelake/floe/ingest"
	"github.com/floelake/floe/internal/conf"
	"github.com/floelake/floe/internal/config"
	"github.com/floelake/floe/internal/node"
	floev1 "github.com/floelake/floe/proto/floe/v1"
	"github.com/floelake/floe/timetravel/api"
	"github.com/floelake/floe/timetravel/client"
)

const (
	cliReadToken  = "read-token-0123456789"
	cliAdminToken = "admin-token-0123456789"
)

// cliNode runs a node with one pipeline (table "ns.in" from topic "in",
// one partition) and the API on a free port with a read and an admin
// token. It returns the API's address, a producer and an admin client.
func cliNode(t *testing.T) (addr string, produce func(vals ...string), cl *client.Client) {
	t.Helper()
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "in"))
	require.NoError(t, err)
	t.Cleanup(kc.Close)
	dir := t.TempDir()
	cfg := config.Default()
	cfg.Node.DataDir = dir
	cfg.Node.HTTPAddr = "127.0.0.1:0"
	cfg.Node.API.GRPCAddr = "127.0.0.1:0"
	cfg.Node.API.Tokens = []api.Token{{Name: "r", Token: cliReadToken, Scope: api.ScopeRead}, {Name: "a", Token: cliAdminToken, Scope: api.ScopeAdmin}}
	cfg.Catalog.URI = "sqlite://" + filepath.Join(dir, "c.db")
	cfg.Kafka.Brokers = kc.ListenAddrs()
	cfg.Pipelines = []ingest.PipelineConfig{{Name: "in", Topics: []string{"in"}, Table: "ns.in",
		CommitInterval: conf.Duration(100 * time.Millisecond),
		Schema: []ingest.Column{{Name: "id", Type: "long", Required: true}, {Name: "name", Type: "string"},
			{Name: "ts", Type: "timestamptz"}, {Name: "amount", Type: "decimal(10,2)"}, {Name: "tags", Type: "list<string>"}}}}
	cfg.FillDefaults()
	require.NoError(t, cfg.Validate())
	ctx, cancel := context.WithCancel(context.Background())
	n, err := node.New(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	require.NoError(t, n.Listen())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	require.Eventually(t, func() bool { return n.APIAddr() != "" }, 30*time.Second, 10*time.Millisecond)
	addr = n.APIAddr()
	cl, err = client.Dial(addr, client.Options{Token: cliAdminToken})
	require.NoError(t, err)
	t.Cleanup(func() { _ = cl.Close() })
	pcl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Kafka.Brokers...), kgo.DefaultProduceTopic("in"))
	require.NoError(t, err)
	t.Cleanup(pcl.Close)
	produce = func(vals ...string) {
		for _, v := range vals {
			require.NoError(t, pcl.ProduceSync(ctx, &kgo.Record{Value: []byte(v)}).FirstErr())
		}
	}
	return addr, produce, cl
}

// floeCLI runs the floe command line in this process and returns its
// standard output, its standard error and its error.
func floeCLI(args ...string) (stdout, stderr string, err error) {
	var out, errb bytes.Buffer
	root := rootCmd()
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetIn(strings.NewReader(""))
	err = root.Execute()
	return out.String(), errb.String(), err
}

// waitRecords waits until ns.in's current snapshot holds n records, and
// returns that snapshot's id.
func waitRecords(t *testing.T, cl *client.Client, n int64) int64 {
	t.Helper()
	var id int64
	require.Eventually(t, func() bool {
		resp, err := cl.Tables.ListTables(context.Background(), &floev1.ListTablesRequest{})
		if err != nil {
			return false
		}
		for _, s := range resp.GetTables() {
			if s.GetName() == "ns.in" && s.GetTotalRecords() == n {
				id = s.GetCurrentSnapshotId()
				return true
			}
		}
		return false
	}, 20*time.Second, 20*time.Millisecond, "ns.in never held %d records", n)
	return id
}

// jsonIDs reads the id of each JSON line, sorted.
func jsonIDs(t *testing.T, out string) []int64 {
	t.Helper()
	ids := []int64{}
	for line := range strings.Lines(out) {
		var row struct{ ID int64 }
		require.NoError(t, json.Unmarshal([]byte(line), &row), line)
		ids = append(ids, row.ID)
	}
	slices.Sort(ids)
	return ids
}

func record(id int, name string) string {
	return fmt.Sprintf(`{"id":%d,"name":%q,"ts":"2026-03-0%dT10:00:00.5Z","amount":"%d.50","tags":["a","b%d"]}`, id, name, id%9+1, id, id)
}

func TestAPICLI(t *testing.T) {
	t.Setenv("FLOE_TOKEN", "")
	t.Setenv("FLOE_ADDR", "")
	addr, produce, cl := cliNode(t)
	read := []string{"--addr", addr, "--token", cliReadToken}
	admin := []string{"--addr", addr, "--token", cliAdminToken}
	cli := func(t *testing.T, auth []string, args ...string) (string, string) {
		t.Helper()
		out, errOut, err := floeCLI(append(args, auth...)...)
		require.NoError(t, err, "floe %s\nstderr: %s", strings.Join(args, " "), errOut)
		return out, errOut
	}

	produce(record(1, "a"), record(2, "b"), record(3, "c"))
	s1 := waitRecords(t, cl, 3)
	produce(record(4, "d"), `{"id":5,"name":null}`)
	s2 := waitRecords(t, cl, 5)
	require.NotEqual(t, s1, s2)

	t.Run("tables", func(t *testing.T) {
		out, _ := cli(t, read, "tables")
		lines := strings.Split(strings.TrimSpace(out), "\n")
		require.Regexp(t, `^TABLE\s+PIPELINE\s+KIND\s+KEYED\s+SNAPSHOT\s+LAST COMMIT\s+RECORDS\s+LAG$`, lines[0])
		require.Regexp(t, fmt.Sprintf(`(?m)^ns\.in\s+in\s+data\s+no\s+%d\s+\d+s ago\s+5\s+0$`, s2), out)
		require.Contains(t, out, "ns.in__dlq")
		out, _ = cli(t, read, "tables", "-o", "json")
		var resp struct{ Tables []map[string]any }
		require.NoError(t, json.Unmarshal([]byte(out), &resp), out)
		require.Equal(t, "ns.in", resp.Tables[0]["name"])
		require.Equal(t, "5", resp.Tables[0]["total_records"])
		out, _ = cli(t, read, "tables", "-o", "csv")
		recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
		require.NoError(t, err)
		require.Equal(t, []string{"ns.in", "in", "data", "false", fmt.Sprint(s2)}, recs[1][:5])
	})

	t.Run("table", func(t *testing.T) {
		out, _ := cli(t, read, "table", "ns.in")
		for _, want := range []string{"ns.in", "unpartitioned", "none (append only)", fmt.Sprint(s2), "amount", "decimal(10, 2)", "list<string>", "TOPIC", "freshness"} {
			require.Contains(t, out, want)
		}
		require.Regexp(t, `(?m)^in\s+0\s+5\s+\S+\s+\S+$`, out)
		out, _ = cli(t, read, "table", "ns.in", "-o", "json")
		var tbl map[string]any
		require.NoError(t, json.Unmarshal([]byte(out), &tbl), out)
		require.Contains(t, tbl, "files")
		require.NotEmpty(t, tbl["files"].(map[string]any)["partitions"])
	})

	t.Run("snapshots", func(t *testing.T) {
		out, _ := cli(t, read, "snapshots", "ns.in", "--page-size", "1")
		require.Regexp(t, fmt.Sprintf(`(?m)^\*\s+%d\s+%d\s+\S+\s+append\s+2\s+0\s+5\b`, s2, s1), out)
		require.Regexp(t, fmt.Sprintf(`(?m)^\s+%d\s+\d+\s+\S+\s+append\s+3\s+0\s+3\b`, s1), out)
		require.Less(t, strings.Index(out, fmt.Sprint(s2)), strings.Index(out, fmt.Sprintf(" %d ", s1)), "newest first")
		out, errOut := cli(t, read, "snapshots", "ns.in", "--limit", "1", "--page-size", "1", "-o", "csv")
		recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
		require.NoError(t, err)
		require.Len(t, recs, 2)
		require.Equal(t, fmt.Sprint(s2), recs[1][0])
		require.Equal(t, "true", recs[1][8])
		require.Contains(t, errOut, "showing the newest 1 of 3 snapshots")
	})

	t.Run("query", func(t *testing.T) {
		q := []string{"query", "ns.in", "--where", "id >= 2 AND id != 4", "--columns", "name,id,ts,amount,tags"}
		out, errOut := cli(t, read, append(q, "-o", "json")...)
		require.Equal(t, []int64{2, 3, 5}, jsonIDs(t, out))
		require.Contains(t, out, `{"name":"b","id":2,"ts":"2026-03-03T10:00:00.5Z","amount":"2.50","tags":["a","b2"]}`)
		require.Regexp(t, fmt.Sprintf(`^snapshot %d: 3 rows, `, s2), errOut)
		require.NotContains(t, errOut, "truncated")

		out, _ = cli(t, read, append(q, "-o", "csv")...)
		recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
		require.NoError(t, err)
		require.Equal(t, []string{"name", "id", "ts", "amount", "tags"}, recs[0])
		rows := recs[1:]
		slices.SortFunc(rows, func(a, b []string) int { return strings.Compare(a[1], b[1]) })
		require.Equal(t, [][]string{
			{"b", "2", "2026-03-03T10:00:00.5Z", "2.50", `["a","b2"]`},
			{"c", "3", "2026-03-04T10:00:00.5Z", "3.50", `["a","b3"]`},
			{"", "5", "", "", ""},
		}, rows)

		out, _ = cli(t, read, append(q, "-o", "table")...)
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		require.Len(t, lines, 5)
		require.Regexp(t, `^name\s+id\s+ts\s+amount\s+tags$`, lines[0])
		require.Regexp(t, `^-+\s+-+\s+-+\s+-+\s+-+$`, lines[1])
		body := strings.Join(lines[2:], "\n")
		require.Regexp(t, `(?m)^b\s+2\s+2026-03-03T10:00:00\.5Z\s+2\.50\s+\["a","b2"\]$`, body)
		require.Regexp(t, `(?m)^NULL\s+5\s+NULL\s+NULL\s+NULL$`, body)
		// Aligned: every column starts at the same place on every line.
		at := strings.Index(lines[0], "ts")
		for _, l := range lines[2:] {
			require.True(t, l[at-2:at] == "  " && l[at] != ' ', "misaligned %q", l)
		}

		// --limit truncates, and says so.
		out, errOut = cli(t, read, "query", "ns.in", "--where", "id > 1", "--limit", "2", "-o", "json")
		require.Len(t, jsonIDs(t, out), 2)
		require.Contains(t, errOut, "2 rows")
		require.Contains(t, errOut, "truncated at --limit 2")
	})

	t.Run("as-of", func(t *testing.T) {
		out, errOut := cli(t, read, "query", "ns.in", "--as-of", fmt.Sprint(s1), "-o", "json")
		require.Equal(t, []int64{1, 2, 3}, jsonIDs(t, out))
		require.Contains(t, errOut, fmt.Sprintf("snapshot %d: 3 rows", s1))
		// A time before the first snapshot has nothing to read.
		_, _, err := floeCLI(append([]string{"query", "ns.in", "--as-of", "2001-01-01"}, read...)...)
		require.ErrorContains(t, err, "query ns.in: not found: ")
	})

	t.Run("changes", func(t *testing.T) {
		out, errOut := cli(t, read, "changes", "ns.in", "--from", fmt.Sprint(s1), "--columns", "id,name", "-o", "csv")
		recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
		require.NoError(t, err)
		require.Equal(t, []string{"_change", "_snapshot_id", "id", "name"}, recs[0])
		rows := recs[1:]
		slices.SortFunc(rows, func(a, b []string) int { return strings.Compare(a[2], b[2]) })
		require.Equal(t, [][]string{{"insert", fmt.Sprint(s2), "4", "d"}, {"insert", fmt.Sprint(s2), "5", ""}}, rows)
		require.Contains(t, errOut, "2 changes")
		out, _ = cli(t, read, "changes", "ns.in", "--to", fmt.Sprint(s1), "-o", "table")
		require.Regexp(t, `^_change\s+_snapshot_id\s+id\s+name`, out)
		require.Equal(t, 3, strings.Count(out, "insert"))
	})

	t.Run("tags", func(t *testing.T) {
		out, _ := cli(t, admin, "tag", "ns.in", "v1", "--snapshot", fmt.Sprint(s1), "--max-age", "30d")
		require.Equal(t, fmt.Sprintf("tagged snapshot %d of ns.in as v1 (max age 720h0m0s)\n", s1), out)
		for _, asOf := range []string{"tag:v1", "v1"} {
			out, _ = cli(t, read, "query", "ns.in", "--as-of", asOf, "-o", "json")
			require.Equal(t, []int64{1, 2, 3}, jsonIDs(t, out), asOf)
		}
		out, _ = cli(t, read, "tag", "ns.in")
		require.Regexp(t, fmt.Sprintf(`(?m)^v1\s+tag\s+%d\s+720h0m0s$`, s1), out)
		out, _ = cli(t, read, "snapshots", "ns.in")
		require.Regexp(t, fmt.Sprintf(`(?m)^\s+%d\s.*\bv1\b`, s1), out)
		_, _, err := floeCLI(append([]string{"tag", "ns.in", "v1"}, admin...)...)
		require.ErrorContains(t, err, "tag ns.in v1: failed precondition: table ns.in already has a tag named \"v1\"")
		out, _ = cli(t, read, "tag", "ns.in", "-o", "json")
		var refs []map[string]any
		require.NoError(t, json.Unmarshal([]byte(out), &refs), out)
		require.Contains(t, refs, map[string]any{"name": "v1", "type": "tag", "snapshot_id": fmt.Sprint(s1), "max_ref_age_ms": "2592000000"})
		_, _, err = floeCLI(append([]string{"tag", "ns.in", "v1", "--delete"}, read...)...)
		require.EqualError(t, err, `tag ns.in v1 --delete: permission denied: DeleteTag needs a token with the admin scope; token "r" has the read scope`)
		_, _, err = floeCLI(append([]string{"tag", "ns.in", "--delete"}, admin...)...)
		require.ErrorContains(t, err, "--delete needs the name of the tag")
		out, _ = cli(t, admin, "tag", "ns.in", "v1", "--delete")
		require.Equal(t, "deleted tag v1 of ns.in\n", out)
		_, _, err = floeCLI(append([]string{"query", "ns.in", "--as-of", "tag:v1"}, read...)...)
		require.ErrorContains(t, err, "query ns.in: not found: ")
		require.ErrorContains(t, err, `"v1"`)
	})

	t.Run("errors", func(t *testing.T) {
		_, _, err := floeCLI("tables", "--addr", addr)
		require.EqualError(t, err, `tables: unauthenticated: this node requires a bearer token: send "authorization: Bearer <token>" (the CLI's --token or FLOE_TOKEN)`)
		_, _, err = floeCLI(append([]string{"rollback", "ns.in", "--to-snapshot", fmt.Sprint(s1), "--mode", "skip", "--apply"}, read...)...)
		require.EqualError(t, err, `rollback ns.in: permission denied: Rollback needs a token with the admin scope; token "r" has the read scope`)
		_, _, err = floeCLI(append([]string{"query", "ns.in", "--where", "id = )"}, read...)...)
		require.Error(t, err)
		require.Regexp(t, `^query ns\.in: invalid argument: --where: .*\nid = \)\n     \^$`, err.Error())
		_, _, err = floeCLI(append([]string{"query", "ns.in", "--where", "nope = 1"}, read...)...)
		require.ErrorContains(t, err, "query ns.in: invalid argument: --where: ")
		require.ErrorContains(t, err, "nope")
		_, _, err = floeCLI(append([]string{"table", "ns.nope"}, read...)...)
		require.ErrorContains(t, err, `table ns.nope: not found: no pipeline of this node writes table "ns.nope"`)
		_, _, err = floeCLI(append([]string{"rollback", "ns.in", "--to-snapshot", fmt.Sprint(s1)}, admin...)...)
		require.ErrorContains(t, err, "--mode is required")
		// The token from the environment, and from a file.
		t.Setenv("FLOE_TOKEN", cliReadToken)
		_, _, err = floeCLI("tables", "--addr", addr)
		require.NoError(t, err)
		t.Setenv("FLOE_TOKEN", "")
		file := filepath.Join(t.TempDir(), "token")
		require.NoError(t, os.WriteFile(file, []byte(cliReadToken+"\n"), 0o600))
		t.Setenv("FLOE_ADDR", addr)
		_, _, err = floeCLI("tables", "--token-file", file)
		require.NoError(t, err)
		// Nothing listens there.
		_, _, err = floeCLI("tables", "--addr", "127.0.0.1:1", "--token", cliReadToken)
		require.ErrorContains(t, err, "tables: cannot reach a floe API at 127.0.0.1:1")
	})

	t.Run("rollback", func(t *testing.T) {
		out, _ := cli(t, admin, "rollback", "ns.in", "--to-snapshot", fmt.Sprint(s1), "--mode", "skip")
		require.True(t, strings.HasPrefix(out, "dry run: ns.in gets a new snapshot with the rows of snapshot "), out)
		require.Regexp(t, `(?m)^records\s+5 -> 3$`, out)
		require.Regexp(t, `(?m)^in\s+0\s+5\s+5$`, out)
		require.True(t, strings.HasSuffix(out, "\ndry run: nothing changed; add --apply to do it\n"), out)
		out, _ = cli(t, admin, "rollback", "ns.in", "--to-snapshot", fmt.Sprint(s1), "--mode", "replay")
		require.Regexp(t, `(?m)^in\s+0\s+5\s+3$`, out, "replay reads offsets 3 and 4 again")
		out, _ = cli(t, read, "query", "ns.in", "-o", "json")
		require.Equal(t, []int64{1, 2, 3, 4, 5}, jsonIDs(t, out), "a dry run changes nothing")

		out, _ = cli(t, admin, "rollback", "ns.in", "--to-snapshot", fmt.Sprint(s1), "--mode", "skip", "--apply")
		require.True(t, strings.HasPrefix(out, "done: ns.in got a new snapshot"), out)
		require.Regexp(t, `(?m)^now current\s+\d+$`, out)
		require.NotContains(t, out, "dry run")
		out, _ = cli(t, read, "query", "ns.in", "-o", "json")
		require.Equal(t, []int64{1, 2, 3}, jsonIDs(t, out))

		// The skipped records stay skipped; new ones arrive.
		produce(record(6, "f"), record(7, "g"))
		waitRecords(t, cl, 5)
		out, _ = cli(t, read, "query", "ns.in", "-o", "json")
		require.Equal(t, []int64{1, 2, 3, 6, 7}, jsonIDs(t, out))

		// Replay: back to s1's rows and offsets, and the records since
		// are read again (4 and 5 were skipped, but replay reads from
		// s1's offsets).
		_, _, err := floeCLI(append([]string{"rollback", "ns.in", "--to-time", time.Now().Add(time.Hour).Format(time.RFC3339), "--mode", "replay"}, admin...)...)
		require.ErrorContains(t, err, "rollback ns.in: invalid argument: snapshot ")
		require.ErrorContains(t, err, "is already the current snapshot of ns.in: nothing to roll back")
		cli(t, admin, "rollback", "ns.in", "--to-snapshot", fmt.Sprint(s1), "--mode", "replay", "--apply")
		waitRecords(t, cl, 7)
		out, _ = cli(t, read, "query", "ns.in", "-o", "json")
		require.Equal(t, []int64{1, 2, 3, 4, 5, 6, 7}, jsonIDs(t, out))
		out, _ = cli(t, read, "snapshots", "ns.in")
		require.Regexp(t, fmt.Sprintf(`(?m)^~\s+%d\s`, s2), out, "the snapshot rolled back past is outside the history")
	})
}

func TestAPICLIParseAsOf(t *testing.T) {
	for in, want := range map[string]string{
		"123":                       `snapshot_id:123`,
		"-5":                        `snapshot_id:-5`,
		"2026-01-02T15:04:05Z":      `timestamp:{seconds:1767366245}`,
		"2026-01-02T16:04:05+01:00": `timestamp:{seconds:1767366245}`,
		"2026-01-02":                `timestamp:{seconds:1767312000}`,
		"tag:v1":                    `tag:"v1"`,
		"tag:123":                   `tag:"123"`,
		"branch:main":               `branch:"main"`,
		"v1":                        `tag:"v1"`,
		"release-2026":              `tag:"release-2026"`,
	} {
		a, err := parseAsOf(in)
		require.NoError(t, err, in)
		require.Equal(t, want, strings.ReplaceAll(a.String(), "  ", " "), in)
	}
	for _, in := range []string{"0", "2026-13-01", "2026-01-02T15:04:05", "tag:", ""} {
		_, err := parseAsOf(in)
		require.Error(t, err, in)
	}
}

// Values print as the JSON output writes them, without a string's
// quotes; nulls as NULL (table) or empty (csv).
func TestAPICLIValues(t *testing.T) {
	mem := memory.NewGoAllocator()
	bin := array.NewBinaryBuilder(mem, arrow.BinaryTypes.Binary)
	bin.Append([]byte{0, 1, 2})
	bin.AppendNull()
	str := array.NewStringBuilder(mem)
	str.Append("a\tb\nc")
	str.Append("plain")
	ts := array.NewTimestampBuilder(mem, &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"})
	ts.Append(arrow.Timestamp(time.Date(2026, 1, 2, 3, 4, 5, 123000, time.UTC).UnixMicro()))
	ts.Append(0)
	dec := array.NewDecimal128Builder(mem, &arrow.Decimal128Type{Precision: 38, Scale: 3})
	dec.Append(decimal128.FromI64(-12345))
	dec.Append(decimal128.New(1<<36, 0))
	st := array.NewStructBuilder(mem, arrow.StructOf(arrow.Field{Name: "x", Type: arrow.PrimitiveTypes.Int64, Nullable: true}))
	st.Append(true)
	st.FieldBuilder(0).(*array.Int64Builder).Append(7)
	st.AppendNull()
	st.FieldBuilder(0).(*array.Int64Builder).AppendNull()
	uuids := extensions.NewUUIDBuilder(mem)
	uuids.AppendBytes([16]byte{0xf8, 0x1d, 0x4f, 0xae, 0x7d, 0xec, 0x11, 0xd0, 0xa7, 0x65, 0x00, 0xa0, 0xc9, 0x1e, 0x6b, 0xf6})
	uuids.AppendNull()
	f64 := array.NewFloat64Builder(mem)
	f64.Append(1.5)
	f64.Append(0.1)
	var cols []arrow.Array
	for _, b := range []array.Builder{bin, str, ts, dec, st, uuids, f64} {
		cols = append(cols, b.NewArray())
	}
	fields := []string{"bin", "str", "ts", "dec", "st", "uuid", "f"}
	var fs []arrow.Field
	for i, c := range cols {
		fs = append(fs, arrow.Field{Name: fields[i], Type: c.DataType(), Nullable: true})
	}
	rec := array.NewRecordBatch(arrow.NewSchema(fs, nil), cols, 2)
	defer rec.Release()

	got, err := textColumns(rec)
	require.NoError(t, err)
	row := func(i int) []cell {
		var out []cell
		for _, c := range got {
			out = append(out, c[i])
		}
		return out
	}
	require.Equal(t, []cell{{s: "AAEC"}, {s: "a\tb\nc"}, {s: "2026-01-02T03:04:05.000123Z"}, {s: "-12.345"},
		{s: `{"x":7}`}, {s: "f81d4fae-7dec-11d0-a765-00a0c91e6bf6"}, {s: "1.5"}}, row(0))
	require.Equal(t, []cell{{null: true}, {s: "plain"}, {s: "1970-01-01T00:00:00Z"}, {s: "1267650600228229401496703205.376"},
		{null: true}, {null: true}, {s: "0.1"}}, row(1))

	var b bytes.Buffer
	p := &tableRows{w: &b, preview: 1}
	require.NoError(t, p.batch(rec))
	require.NoError(t, p.end())
	lines := strings.Split(b.String(), "\n")
	require.Equal(t, []string{
		`bin   str      ts                               dec  st       uuid                                    f`,
		`----  -------  ---------------------------  -------  -------  ------------------------------------  ---`,
		`AAEC  a\tb\nc  2026-01-02T03:04:05.000123Z  -12.345  {"x":7}  f81d4fae-7dec-11d0-a765-00a0c91e6bf6  1.5`,
		// Rows after the preview keep the widths of the first ones.
		`NULL  plain    1970-01-01T00:00:00Z         1267650600228229401496703205.376  NULL     NULL                                  0.1`,
		``,
	}, lines)

	b.Reset()
	c := &csvRows{w: csv.NewWriter(&b)}
	require.NoError(t, c.batch(rec))
	require.NoError(t, c.end())
	require.Equal(t, "bin,str,ts,dec,st,uuid,f\nAAEC,\"a\tb\nc\",2026-01-02T03:04:05.000123Z,-12.345,\"{\"\"x\"\":7}\",f81d4fae-7dec-11d0-a765-00a0c91e6bf6,1.5\n"+
		",plain,1970-01-01T00:00:00Z,1267650600228229401496703205.376,,,0.1\n", b.String())
}
