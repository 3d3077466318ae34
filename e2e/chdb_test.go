package e2e

// ClickHouse as a second, independent reader of the tables floe writes.
//
// floe writes and commits with iceberg-go, and the rest of the oracle reads
// back with iceberg-go too: a bug in the data files, manifests, column
// bounds or partition values that iceberg-go tolerates (or shares) would go
// unnoticed. ClickHouse has its own Parquet, Avro and Iceberg readers. It
// runs embedded in Node through the npm package chdb (about 550 MB, never
// part of the repository): scripts/test.sh installs it once under
// $(go env GOPATH)/floe-test-tools/chdb-<version> and exports FLOE_CHDB_DIR.
// Without it the ClickHouse checks are skipped with a log line, unless CI is
// set: then the oracle fails.
//
// How the tables are read, and why:
//
//   - Each oracle run starts one Node process (testdata/chdb.js) that runs
//     all its statements in one chdb session; the process starts in about a
//     second, so never start one per record or per check.
//   - The process runs from "/": chdb reads local files only below its
//     working directory.
//   - A table is pinned to the exact metadata file the catalog points at
//     (CREATE TABLE ... ENGINE=IcebergLocal(dir) SETTINGS
//     iceberg_metadata_file_path=...): the table function alone reads the
//     highest-numbered metadata file in the folder, which may be one a
//     failed commit left behind. On S3 the engine is IcebergS3 with a
//     path-style http://host:port/bucket/... URL (an s3:// URL goes to AWS)
//     and the metadata path relative to the table location; pinning works
//     only through the engine, not as a setting of the table function.
//   - count() is answered from the snapshot summary, sum(1) reads the data
//     files: rows are counted with sum(1), and count() = sum(1) checks the
//     summaries.
//   - Snapshot ids are 64-bit and go into SQL as exact decimal strings (a
//     JavaScript number would round them and ClickHouse then finds no such
//     snapshot); time travel is SETTINGS iceberg_snapshot_id=<id>.
//   - ClickHouse does not validate UTF-8 in string columns: isValidUTF8(col)
//     does. Results come back as the bytes ClickHouse wrote: testdata/chdb.js
//     never turns them into JavaScript strings, which would replace invalid
//     UTF-8 with U+FFFD. Binary values (Iceberg binary reads as String) are
//     selected as hex(...) all the same.
//   - Dates and timestamps in WHERE clauses: ts >= fromUnixTimestamp64Micro(
//     toInt64(<micros>), 'UTC'), exact to the microsecond.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/iceberg-go/table"

	"github.com/floelake/floe/catalog"
)

// chdbVersion is the chdb release scripts/test.sh installs (ClickHouse
// 26.7).
const chdbVersion = "3.4.0"

// chdbInstall is how to install it by hand.
const chdbInstall = "npm install --prefix $(go env GOPATH)/floe-test-tools/chdb-" + chdbVersion + " chdb@" + chdbVersion +
	" (or run scripts/test.sh), then export FLOE_CHDB_DIR=$(go env GOPATH)/floe-test-tools/chdb-" + chdbVersion

// findChdb returns the directory chdb is installed in (the --prefix of its
// npm install): $FLOE_CHDB_DIR, else scripts/test.sh's cache if present.
func findChdb() (string, error) {
	if _, err := exec.LookPath("node"); err != nil {
		return "", fmt.Errorf("node is not on PATH")
	}
	dir := os.Getenv("FLOE_CHDB_DIR")
	if dir == "" {
		out, err := exec.Command("go", "env", "GOPATH").Output()
		if err != nil {
			return "", fmt.Errorf("FLOE_CHDB_DIR is not set")
		}
		gp := filepath.SplitList(strings.TrimSpace(string(out)))
		if len(gp) == 0 {
			return "", fmt.Errorf("FLOE_CHDB_DIR is not set")
		}
		dir = filepath.Join(gp[0], "floe-test-tools", "chdb-"+chdbVersion)
		if _, err := os.Stat(dir); err != nil {
			return "", fmt.Errorf("FLOE_CHDB_DIR is not set and %s does not exist", dir)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "chdb", "package.json")); err != nil {
		return "", fmt.Errorf("no chdb package in %s/node_modules (FLOE_CHDB_DIR=%q)", dir, os.Getenv("FLOE_CHDB_DIR"))
	}
	return filepath.Abs(dir)
}

// requireChdb returns chdb's directory, or "" after logging why the
// ClickHouse checks are skipped; with CI set a missing chdb fails the test.
func requireChdb(t testing.TB) string {
	t.Helper()
	dir, err := findChdb()
	if err == nil {
		return dir
	}
	msg := fmt.Sprintf("the ClickHouse (chdb) checks need node and chdb@%s: %v; install with: %s", chdbVersion, err, chdbInstall)
	if os.Getenv("CI") != "" {
		t.Fatal(msg + " (CI is set, so they must not be skipped)")
	}
	t.Log("skipping: " + msg)
	return ""
}

// chdbScript is the absolute path of testdata/chdb.js (go test runs in the
// package directory).
func chdbScript() (string, error) {
	return filepath.Abs(filepath.Join("testdata", "chdb.js"))
}

// chResult is one statement's result.
type chResult struct {
	Rows [][]string // fields of its TabSeparated output, unescaped; NULL is `\N`
	Took time.Duration
}

// clickHouse runs the statements in order in one embedded ClickHouse
// session (one Node process) and returns their results.
func clickHouse(ctx context.Context, chdbDir string, stmts []string) ([]chResult, error) {
	script, err := chdbScript()
	if err != nil {
		return nil, err
	}
	session, err := os.MkdirTemp("", "floe-e2e-chdb-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(session)
	in, err := json.Marshal(stmts)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, "node", script, chdbDir, session)
	cmd.Dir = "/"
	cmd.Stdin = bytes.NewReader(in)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("clickhouse (node %s): %w\n%s", script, err, strings.TrimSpace(stderr.String()))
	}
	// Each result is a line "<length> <milliseconds>" and <length> bytes.
	out := stdout.String()
	var res []chResult
	for len(out) > 0 {
		header, rest, ok := strings.Cut(out, "\n")
		var n, ms int
		if _, err := fmt.Sscanf(header, "%d %d", &n, &ms); !ok || err != nil || n < 0 || n > len(rest) {
			return nil, fmt.Errorf("clickhouse: bad result header %.80q after %d results", header, len(res))
		}
		res = append(res, chResult{Rows: parseTSV(rest[:n]), Took: time.Duration(ms) * time.Millisecond})
		out = rest[n:]
	}
	if len(res) != len(stmts) {
		return nil, fmt.Errorf("clickhouse: %d results for %d statements (stderr: %s)", len(res), len(stmts), strings.TrimSpace(stderr.String()))
	}
	return res, nil
}

// parseTSV splits ClickHouse TabSeparated output into unescaped fields.
func parseTSV(s string) [][]string {
	if s == "" {
		return nil
	}
	var rows [][]string
	for _, line := range strings.Split(strings.TrimSuffix(s, "\n"), "\n") {
		fields := strings.Split(line, "\t")
		for i, f := range fields {
			fields[i] = unescapeTSV(f)
		}
		rows = append(rows, fields)
	}
	return rows
}

func unescapeTSV(f string) string {
	if f == `\N` || !strings.Contains(f, `\`) {
		return f
	}
	var b strings.Builder
	for i := 0; i < len(f); i++ {
		c := f[i]
		if c != '\\' || i+1 == len(f) {
			b.WriteByte(c)
			continue
		}
		i++
		switch f[i] {
		case 't':
			b.WriteByte('\t')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case '0':
			b.WriteByte(0)
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		default: // \\ \' and anything else: the character itself
			b.WriteByte(f[i])
		}
	}
	return b.String()
}

// sqlQuote quotes s as a ClickHouse string literal.
func sqlQuote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// icebergEngine returns the ENGINE clause (with its SETTINGS) of a
// ClickHouse table over tbl at exactly the metadata file the catalog points
// at. A local table is read from its directory; an S3 table through the
// storage section's endpoint (path style) and credentials.
func icebergEngine(tbl *table.Table, st catalog.StorageConfig) (string, error) {
	loc := strings.TrimSuffix(tbl.Location(), "/")
	meta := tbl.MetadataLocation()
	if dir, ok := catalog.LocalPath(loc); ok {
		mpath, ok := catalog.LocalPath(meta)
		if !ok {
			return "", fmt.Errorf("local table %s has remote metadata %s", loc, meta)
		}
		return fmt.Sprintf("ENGINE=IcebergLocal(%s) SETTINGS iceberg_metadata_file_path=%s", sqlQuote(dir), sqlQuote(mpath)), nil
	}
	rest, ok := strings.CutPrefix(loc, "s3://")
	if !ok {
		return "", fmt.Errorf("table location %s: neither local nor s3://", loc)
	}
	rel, ok := strings.CutPrefix(meta, loc+"/")
	if !ok {
		return "", fmt.Errorf("metadata %s is not under the table location %s", meta, loc)
	}
	s3 := st.S3
	if s3.Endpoint == "" || s3.AccessKeyID == "" {
		return "", fmt.Errorf("table %s is on S3 but the storage section has no endpoint and static credentials", loc)
	}
	url := strings.TrimSuffix(s3.Endpoint, "/") + "/" + rest + "/"
	return fmt.Sprintf("ENGINE=IcebergS3(%s, %s, %s) SETTINGS iceberg_metadata_file_path=%s",
		sqlQuote(url), sqlQuote(s3.AccessKeyID), sqlQuote(s3.SecretAccessKey), sqlQuote(rel)), nil
}

// TestClickHouseReader checks the ClickHouse runner itself: 64-bit values
// survive exactly, TabSeparated escapes round-trip, bytes that are not
// UTF-8 arrive as they are, several statements share a session, and a
// failing statement is an error naming it.
func TestClickHouseReader(t *testing.T) {
	dir := requireChdb(t)
	if dir == "" {
		t.SkipNow()
	}
	ctx := context.Background()
	res, err := clickHouse(ctx, dir, []string{
		"CREATE TABLE x (s String) ENGINE=Memory",
		"INSERT INTO x VALUES ('a\tb\\\\c\nd'), (unhex('ff00'))",
		"SELECT toUInt64(18446744073709551615), toInt64(-9223372036854775808), 8000805202126731032",
		"SELECT s, hex(s), isValidUTF8(s) FROM x ORDER BY s",
		"SELECT NULL, 'it''s'",
		"SELECT 1 WHERE 0",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := [][][]string{
		nil, nil, // CREATE and INSERT print nothing
		{{"18446744073709551615", "-9223372036854775808", "8000805202126731032"}},
		{{"a\tb\\c\nd", "6109625C630A64", "1"}, {"\xff\x00", "FF00", "0"}},
		{{`\N`, "it's"}},
		nil,
	}
	got := make([][][]string, len(res))
	for i, r := range res {
		got[i] = r.Rows
	}
	if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	_, err = clickHouse(ctx, dir, []string{"SELECT 1", "SELECT no_such_column"})
	if err == nil || !strings.Contains(err.Error(), "statement 2 of 2") {
		t.Errorf("a failing statement: got error %v, want one naming statement 2 of 2", err)
	}
}
