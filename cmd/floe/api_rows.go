package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/timestamppb"

	floev1 "github.com/floelake/floe/proto/floe/v1"
	"github.com/floelake/floe/timetravel"
	"github.com/floelake/floe/timetravel/client"
)

// query and changes: the rows of a Query or Changes stream, printed as
// aligned columns, CSV or JSON lines.

const rowsOutputHelp = `
Output (-o): table (the default) prints aligned columns, NULL for a null; it
sizes the columns on the first ` + "1000" + ` rows and prints the rest as they come
with those widths. csv prints a header line, then one line per row, a null
as an empty field. json prints one JSON object per row (JSON lines), as the
HTTP API does. In table and csv output timestamps are RFC 3339 (timestamptz
in UTC, with Z), decimals exact, binary base64, uuids canonical, and structs,
lists and maps JSON. A line on stderr ends the rows: the snapshot read, the
rows, and whether a limit truncated them.`

const asOfHelp = `--as-of picks the snapshot to read:
  123456789                  a snapshot id (an integer)
  2026-01-02T15:04:05Z       the snapshot current at that time (RFC 3339)
  2026-01-02                 the snapshot current at midnight UTC of that day
  tag:NAME, branch:NAME      the snapshot a tag names, the head of a branch
  NAME                       any other bare word is a tag (tag:NAME for a tag
                             whose name is a number or a time)
Without it, the current snapshot.`

func queryCmd() *cobra.Command {
	var f apiFlags
	var asOf, where string
	var columns []string
	var limit int64
	cmd := &cobra.Command{
		Use:   "query TABLE [--as-of POINT] [--where EXPR] [--columns a,b] [--limit N]",
		Short: "Read a table's rows, as of now or of an earlier snapshot, time, tag or branch",
		Long: `Read the rows of TABLE (namespace.table) from the node.

` + asOfHelp + `

--where filters rows: =, !=, <, <=, >, >=, IN (...), NOT IN (...), IS NULL,
IS NOT NULL, AND, OR, NOT and parentheses; strings in single quotes,
timestamps as RFC 3339 strings. Example: --where "country = 'FR' AND amount > 10".
--columns projects (in the order given; default every column). --limit bounds
the rows (0: the node's api.max_rows).
` + rowsOutputHelp + "\n" + apiConnHelp,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := &floev1.QueryRequest{Table: args[0], Where: where, Columns: cleanColumns(columns), Limit: limit}
			if limit < 0 {
				return fmt.Errorf("--limit must not be negative")
			}
			if asOf != "" {
				a, err := parseAsOf(asOf)
				if err != nil {
					return err
				}
				req.AsOf = a
			}
			return f.run(cmd, "query "+args[0], func(ctx context.Context, cl *client.Client) error {
				stream, err := cl.Tables.Query(ctx, req)
				if err != nil {
					return err
				}
				st, err := printRows(cmd.OutOrStdout(), f.output, stream)
				if err != nil {
					return err
				}
				fmt.Fprintln(cmd.ErrOrStderr(), queryStatsLine(st, limit))
				return nil
			})
		},
	}
	f.register(cmd, outTable, outJSON, outCSV)
	fl := cmd.Flags()
	fl.StringVar(&asOf, "as-of", "", "read as of a snapshot id, an RFC 3339 time or date, tag:NAME or branch:NAME (a bare word is a tag)")
	fl.StringVar(&where, "where", "", "row filter, e.g. \"id > 10 AND name IS NOT NULL\"")
	fl.StringSliceVar(&columns, "columns", nil, "columns to return, in this order (default: all)")
	fl.Int64Var(&limit, "limit", 0, "return at most this many rows (0: the node's api.max_rows)")
	return cmd
}

func changesCmd() *cobra.Command {
	var f apiFlags
	var from, to, limit int64
	var columns []string
	cmd := &cobra.Command{
		Use:   "changes TABLE [--from ID] [--to ID] [--columns a,b] [--limit N]",
		Short: "Print the rows inserted and deleted between two snapshots of a table",
		Long: `Print the rows that the snapshots after --from up to --to inserted and
deleted: --from is exclusive (default: from the table's first snapshot), --to
inclusive (default: the current snapshot), and --from must be an ancestor of
--to. The first two columns are _change (insert or delete) and _snapshot_id
(the snapshot that made the change); within a snapshot the deletes come
first, so an update of a keyed table reads as a delete and an insert.
--columns projects the other columns; --limit bounds the rows (0: the node's
api.max_rows).
` + rowsOutputHelp + "\n" + apiConnHelp,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if limit < 0 {
				return fmt.Errorf("--limit must not be negative")
			}
			req := &floev1.ChangesRequest{Table: args[0], FromSnapshotId: from, ToSnapshotId: to, Columns: cleanColumns(columns), Limit: limit}
			return f.run(cmd, "changes "+args[0], func(ctx context.Context, cl *client.Client) error {
				stream, err := cl.Tables.Changes(ctx, req)
				if err != nil {
					return err
				}
				st, err := printRows(cmd.OutOrStdout(), f.output, stream)
				if err != nil {
					return err
				}
				fmt.Fprintln(cmd.ErrOrStderr(), changesStatsLine(st, limit))
				return nil
			})
		},
	}
	f.register(cmd, outTable, outJSON, outCSV)
	fl := cmd.Flags()
	fl.Int64Var(&from, "from", 0, "changes after this snapshot (exclusive; 0: from the first)")
	fl.Int64Var(&to, "to", 0, "changes up to this snapshot (inclusive; 0: the current one)")
	fl.StringSliceVar(&columns, "columns", nil, "columns to return after _change and _snapshot_id (default: all)")
	fl.Int64Var(&limit, "limit", 0, "return at most this many rows (0: the node's api.max_rows)")
	return cmd
}

func cleanColumns(cols []string) []string {
	var out []string
	for _, c := range cols {
		if c = strings.TrimSpace(c); c != "" {
			out = append(out, c)
		}
	}
	return out
}

// parseAsOf reads --as-of (see asOfHelp).
func parseAsOf(s string) (*floev1.AsOf, error) {
	s = strings.TrimSpace(s)
	if kind, name, ok := strings.Cut(s, ":"); ok && (kind == "tag" || kind == "branch") {
		if name == "" {
			return nil, fmt.Errorf("--as-of %q: a %s name is missing", s, kind)
		}
		if kind == "tag" {
			return &floev1.AsOf{Point: &floev1.AsOf_Tag{Tag: name}}, nil
		}
		return &floev1.AsOf{Point: &floev1.AsOf_Branch{Branch: name}}, nil
	}
	if id, err := strconv.ParseInt(s, 10, 64); err == nil {
		if id == 0 {
			return nil, fmt.Errorf("--as-of 0: there is no snapshot 0 (leave --as-of out to read the current snapshot)")
		}
		return &floev1.AsOf{Point: &floev1.AsOf_SnapshotId{SnapshotId: id}}, nil
	}
	if t, ok := parseTime(s); ok {
		return &floev1.AsOf{Point: &floev1.AsOf_Timestamp{Timestamp: timestamppb.New(t)}}, nil
	}
	if s == "" || s[0] >= '0' && s[0] <= '9' || s[0] == '-' || s[0] == '+' {
		return nil, fmt.Errorf("--as-of %q is not a snapshot id, an RFC 3339 time (2026-01-02T15:04:05Z) or a date (2026-01-02); "+
			"write tag:%s for a tag of that name", s, s)
	}
	return &floev1.AsOf{Point: &floev1.AsOf_Tag{Tag: s}}, nil
}

func truncatedText(truncated bool, by string, limit int64) string {
	if !truncated {
		return ""
	}
	switch by {
	case timetravel.TruncatedByLimit:
		return fmt.Sprintf("; truncated at --limit %d: more rows may match", limit)
	case timetravel.TruncatedByMaxRows:
		return "; truncated by the node's api.max_rows: more rows may match (use --where or --columns to ask for less)"
	case timetravel.TruncatedByMaxBytes:
		return "; truncated by the node's api.max_bytes: more rows may match (use --where or --columns to ask for less)"
	case "":
		return "; truncated"
	}
	return "; truncated by " + by
}

func plural(n int64, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

func queryStatsLine(st *floev1.QueryStats, limit int64) string {
	snap := fmt.Sprintf("snapshot %d", st.GetSnapshotId())
	if st.GetSnapshotId() == 0 {
		snap = "no snapshot (the table has none yet)"
	}
	return fmt.Sprintf("%s: %s, %s, %s read in %s%s", snap, plural(st.GetRows(), "row", "rows"),
		plural(st.GetDataFiles(), "data file", "data files"), plural(st.GetDeleteFiles(), "delete file", "delete files"),
		secondsText(st.GetElapsedSeconds()), truncatedText(st.GetTruncated(), st.GetTruncatedBy(), limit))
}

func changesStatsLine(st *floev1.QueryStats, limit int64) string {
	return fmt.Sprintf("%s in %s%s", plural(st.GetRows(), "change", "changes"), secondsText(st.GetElapsedSeconds()),
		truncatedText(st.GetTruncated(), st.GetTruncatedBy(), limit))
}

// rowPrinter prints the batches of a stream.
type rowPrinter interface {
	batch(rec arrow.RecordBatch) error
	end() error
}

// printRows prints a Query or Changes stream in the format and returns
// its statistics.
func printRows(w io.Writer, format string, stream client.RowStream) (*floev1.QueryStats, error) {
	bw := bufio.NewWriterSize(w, 64<<10)
	var p rowPrinter
	switch format {
	case outJSON:
		p = &jsonRows{w: bw}
	case outCSV:
		p = &csvRows{w: csv.NewWriter(bw)}
	default:
		p = &tableRows{w: bw, preview: tablePreviewRows}
	}
	st, err := client.ReadRows(stream, p.batch)
	// What was read is printed, also when the stream failed after it.
	if endErr := p.end(); err == nil {
		err = endErr
	}
	if flushErr := bw.Flush(); err == nil {
		err = flushErr
	}
	return st, err
}

type jsonRows struct{ w io.Writer }

func (p *jsonRows) batch(rec arrow.RecordBatch) error { return timetravel.WriteJSONRows(p.w, rec) }
func (p *jsonRows) end() error                        { return nil }

type csvRows struct {
	w      *csv.Writer
	header bool
}

func (p *csvRows) batch(rec arrow.RecordBatch) error {
	if !p.header {
		p.header = true
		if err := p.w.Write(columnNames(rec.Schema())); err != nil {
			return err
		}
	}
	cols, err := textColumns(rec)
	if err != nil {
		return err
	}
	row := make([]string, len(cols))
	for i := range int(rec.NumRows()) {
		for j, c := range cols {
			row[j] = c[i].s // a null is ""
		}
		if err := p.w.Write(row); err != nil {
			return err
		}
	}
	p.w.Flush()
	return p.w.Error()
}

func (p *csvRows) end() error { p.w.Flush(); return p.w.Error() }

func columnNames(sch *arrow.Schema) []string {
	names := make([]string, sch.NumFields())
	for i := range names {
		names[i] = sch.Field(i).Name
	}
	return names
}

// tablePreviewRows is how many rows the table output reads before it
// fixes the widths of its columns.
const tablePreviewRows = 1000

// tableRows prints aligned columns: the first preview rows are held to
// size the columns, later rows are printed as they come with those
// widths (a longer value widens its line only).
type tableRows struct {
	w       io.Writer
	preview int
	names   []string
	right   []bool // numbers are aligned right
	held    [][]string
	widths  []int
	started bool // the header is out: rows print as they come
}

func (p *tableRows) batch(rec arrow.RecordBatch) error {
	if p.names == nil {
		sch := rec.Schema()
		p.names = columnNames(sch)
		p.right = make([]bool, len(p.names))
		for i := range p.names {
			p.right[i] = numeric(sch.Field(i).Type)
		}
	}
	cols, err := textColumns(rec)
	if err != nil {
		return err
	}
	for i := range int(rec.NumRows()) {
		row := make([]string, len(cols))
		for j, c := range cols {
			if c[i].null {
				row[j] = "NULL"
			} else {
				row[j] = escapeControl(c[i].s)
			}
		}
		if p.started {
			p.line(row)
			continue
		}
		p.held = append(p.held, row)
		if len(p.held) >= p.preview {
			p.start()
		}
	}
	return nil
}

func (p *tableRows) start() {
	p.started = true
	p.widths = make([]int, len(p.names))
	for j, n := range p.names {
		p.widths[j] = utf8.RuneCountInString(n)
	}
	for _, row := range p.held {
		for j, v := range row {
			p.widths[j] = max(p.widths[j], utf8.RuneCountInString(v))
		}
	}
	p.line(p.names)
	sep := make([]string, len(p.names))
	for j, w := range p.widths {
		sep[j] = strings.Repeat("-", w)
	}
	p.line(sep)
	for _, row := range p.held {
		p.line(row)
	}
	p.held = nil
}

func (p *tableRows) line(row []string) {
	var b strings.Builder
	for j, v := range row {
		if j > 0 {
			b.WriteString("  ")
		}
		pad := max(p.widths[j]-utf8.RuneCountInString(v), 0)
		last := j == len(row)-1
		switch {
		case p.right[j]:
			b.WriteString(strings.Repeat(" ", pad))
			b.WriteString(v)
		case last:
			b.WriteString(v)
		default:
			b.WriteString(v)
			b.WriteString(strings.Repeat(" ", pad))
		}
	}
	b.WriteByte('\n')
	_, _ = io.WriteString(p.w, b.String())
}

func (p *tableRows) end() error {
	if !p.started && p.names != nil {
		p.start()
	}
	return nil
}

func numeric(t arrow.DataType) bool {
	switch t.ID() {
	case arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64, arrow.UINT8, arrow.UINT16, arrow.UINT32, arrow.UINT64,
		arrow.FLOAT16, arrow.FLOAT32, arrow.FLOAT64, arrow.DECIMAL32, arrow.DECIMAL64, arrow.DECIMAL128, arrow.DECIMAL256:
		return true
	}
	return false
}

// escapeControl writes control characters (a newline, a tab) as escapes,
// so that a value stays on its line and in its column.
func escapeControl(s string) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// cell is one value as text.
type cell struct {
	s    string
	null bool
}

// textColumns renders every value of rec as text, column by column, as
// timetravel.WriteJSONRows writes it (the HTTP API's and -o json's form),
// without the quotes of a JSON string: timestamps RFC 3339, decimals
// exact, binary base64, nested values JSON.
func textColumns(rec arrow.RecordBatch) ([][]cell, error) {
	n := int(rec.NumRows())
	out := make([][]cell, rec.NumCols())
	var buf bytes.Buffer
	for j, col := range rec.Columns() {
		cells := make([]cell, n)
		out[j] = cells
		one := array.NewRecordBatch(arrow.NewSchema([]arrow.Field{{Name: "v", Type: col.DataType(), Nullable: true}}, nil), []arrow.Array{col}, int64(n))
		buf.Reset()
		err := timetravel.WriteJSONRows(&buf, one)
		one.Release()
		if err != nil {
			return nil, fmt.Errorf("column %q: %w", rec.ColumnName(j), err)
		}
		lines := bytes.Split(bytes.TrimSuffix(buf.Bytes(), []byte("\n")), []byte("\n"))
		if n == 0 {
			lines = nil
		}
		if len(lines) != n {
			return nil, fmt.Errorf("column %q: %d values rendered for %d rows", rec.ColumnName(j), len(lines), n)
		}
		for i, line := range lines {
			if col.IsNull(i) {
				cells[i] = cell{null: true}
				continue
			}
			v := line[len(`{"v":`) : len(line)-1]
			if len(v) > 0 && v[0] == '"' {
				var s string
				if err := json.Unmarshal(v, &s); err != nil {
					return nil, fmt.Errorf("column %q: %w", rec.ColumnName(j), err)
				}
				cells[i] = cell{s: s}
				continue
			}
			cells[i] = cell{s: string(v)}
		}
	}
	return out, nil
}
