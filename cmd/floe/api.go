package main

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	floev1 "github.com/floelake/floe/proto/floe/v1"
	"github.com/floelake/floe/timetravel/client"
)

// The commands of the floe API (proto/floe/v1): tables, table, snapshots,
// query, changes, rollback and tag. Each calls a node's gRPC API
// (node.api.grpc_addr) with the connection flags of apiFlags.

// apiCmds are the API's commands, for the root command.
func apiCmds() []*cobra.Command {
	return []*cobra.Command{tablesCmd(), tableCmd(), snapshotsCmd(), queryCmd(), changesCmd(), rollbackCmd(), tagCmd()}
}

// defaultAPIAddr is where the CLI looks for the API without --addr or
// FLOE_ADDR.
const defaultAPIAddr = "127.0.0.1:7070"

// The output formats.
const (
	outTable = "table"
	outJSON  = "json"
	outCSV   = "csv"
)

// apiFlags are the connection and output flags every API command takes.
type apiFlags struct {
	addr, token, tokenFile, caFile, serverName string
	tls, insecure                              bool
	timeout                                    time.Duration
	output                                     string
	outputs                                    []string
}

const apiConnHelp = `
Connection: --addr (else FLOE_ADDR, else ` + defaultAPIAddr + `) is the node's gRPC API
(node.api.grpc_addr). The token is --token, else the first line of
--token-file, else FLOE_TOKEN; calls that change a table need a token with
the admin scope, the others the read scope. --tls connects over TLS (the
node's node.api.tls), verifying its certificate against the system's roots
or --ca-file's.`

// register adds the flags to cmd; outputs are the formats -o accepts, the
// first the default (none: no -o).
func (f *apiFlags) register(cmd *cobra.Command, outputs ...string) {
	fl := cmd.Flags()
	fl.StringVar(&f.addr, "addr", defaultAPIAddr, "gRPC API address (host:port) of the node (env FLOE_ADDR)")
	fl.StringVar(&f.token, "token", "", "bearer token (env FLOE_TOKEN)")
	fl.StringVar(&f.tokenFile, "token-file", "", "read the bearer token from this file")
	fl.BoolVar(&f.tls, "tls", false, "connect over TLS (implied by --ca-file and --server-name)")
	fl.StringVar(&f.caFile, "ca-file", "", "PEM file of the CA that signed the node's certificate (default: the system's roots)")
	fl.StringVar(&f.serverName, "server-name", "", "name to verify in the node's certificate (default: the host of --addr)")
	fl.BoolVar(&f.insecure, "insecure-skip-verify", false, "TLS without verifying the node's certificate (tests only)")
	fl.DurationVar(&f.timeout, "timeout", 2*time.Minute, "give up after this long (0: never)")
	f.outputs = outputs
	if len(outputs) > 0 {
		fl.StringVarP(&f.output, "output", "o", outputs[0], "output format: "+strings.Join(outputs, ", "))
	}
}

// dial resolves the flags against the environment and connects; the
// context bounds the whole command (--timeout).
func (f *apiFlags) dial(cmd *cobra.Command) (*client.Client, context.Context, context.CancelFunc, error) {
	fl := cmd.Flags()
	if len(f.outputs) > 0 && !slices.Contains(f.outputs, f.output) {
		return nil, nil, nil, fmt.Errorf("--output %q: want one of %s", f.output, strings.Join(f.outputs, ", "))
	}
	if !fl.Changed("addr") {
		if v := os.Getenv("FLOE_ADDR"); v != "" {
			f.addr = v
		}
	}
	tok := f.token
	switch {
	case fl.Changed("token") && f.tokenFile != "":
		return nil, nil, nil, errors.New("give --token or --token-file, not both")
	case f.tokenFile != "":
		b, err := os.ReadFile(f.tokenFile)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("--token-file: %w", err)
		}
		tok, _, _ = strings.Cut(string(b), "\n")
		if tok = strings.TrimSpace(tok); tok == "" {
			return nil, nil, nil, fmt.Errorf("--token-file %s holds no token", f.tokenFile)
		}
	case !fl.Changed("token"):
		tok = os.Getenv("FLOE_TOKEN")
	}
	useTLS := f.tls || f.caFile != "" || f.serverName != "" || f.insecure
	if tok != "" && !useTLS && !loopback(f.addr) {
		fmt.Fprintf(cmd.ErrOrStderr(), "floe: warning: sending the token to %s without TLS (--tls when the node serves it)\n", f.addr)
	}
	cl, err := client.Dial(f.addr, client.Options{
		Token: tok, TLS: useTLS, CAFile: f.caFile, ServerName: f.serverName, Insecure: f.insecure,
		UserAgent: "floe-cli/" + version,
	})
	if err != nil {
		return nil, nil, nil, err
	}
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	cancel := context.CancelFunc(func() {})
	if f.timeout > 0 {
		ctx, cancel = context.WithTimeout(ctx, f.timeout)
	}
	return cl, ctx, cancel, nil
}

// run dials, calls fn and closes; an error of fn is described (see fail)
// and prefixed with what.
func (f *apiFlags) run(cmd *cobra.Command, what string, fn func(ctx context.Context, cl *client.Client) error) error {
	cl, ctx, cancel, err := f.dial(cmd)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer cl.Close()
	defer cancel()
	if err := fn(ctx, cl); err != nil {
		return f.fail(ctx, what, err)
	}
	return nil
}

// fail describes an error of a call: the server's message and its code
// in words, or what went wrong on the way to the node.
func (f *apiFlags) fail(ctx context.Context, what string, err error) error {
	err = client.Plain(err)
	var ce *client.Error
	if errors.As(err, &ce) {
		switch {
		case ce.Code == codes.DeadlineExceeded && errors.Is(ctx.Err(), context.DeadlineExceeded):
			return fmt.Errorf("%s: no answer from %s within --timeout %s", what, f.addr, f.timeout)
		case ce.Code == codes.Canceled && ctx.Err() != nil:
			return fmt.Errorf("%s: canceled", what)
		case ce.Code == codes.Unavailable && transportFailure(ce.Message):
			hint := "add --tls if the node serves TLS"
			switch {
			case strings.Contains(ce.Message, "HTTP/1.1"):
				hint = "it answers HTTP/1.1: is that node.http_addr rather than node.api.grpc_addr?"
			case f.tls || f.caFile != "" || f.serverName != "" || f.insecure:
				hint = "drop --tls if the node serves plaintext"
			}
			return fmt.Errorf("%s: cannot reach a floe API at %s (--addr or FLOE_ADDR: the node's node.api.grpc_addr; %s): %w", what, f.addr, hint, err)
		}
	}
	return fmt.Errorf("%s: %w", what, err)
}

// transportFailure reports whether an Unavailable status is gRPC's own,
// about the connection, rather than the node's.
func transportFailure(msg string) bool {
	return strings.Contains(msg, "connection error") || strings.Contains(msg, "transport:") ||
		strings.Contains(msg, "name resolver") || strings.Contains(msg, "produced zero addresses")
}

func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// writeProto writes m as indented JSON with the .proto's field names,
// every field present (as the HTTP API does: 64-bit integers are
// strings).
func writeProto(w io.Writer, m proto.Message) error {
	b, err := protojson.MarshalOptions{Multiline: true, Indent: "  ", UseProtoNames: true, EmitUnpopulated: true}.Marshal(m)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// tableWriter is the aligned columns of the table output.
func tableWriter(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0) }

// Formatting of values for humans.

// lagText is a lag, "-" when unknown (-1).
func lagText(v int64) string {
	if v < 0 {
		return "-"
	}
	return strconv.FormatInt(v, 10)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// timeText is an instant in RFC 3339, UTC, to the millisecond (always
// three digits, so that times line up).
func timeText(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000Z07:00")
}

// ago is how long before now t was: "12s ago", "5m ago", "3h ago",
// "2d ago".
func ago(t, now time.Time) string {
	d := max(now.Sub(t), 0)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d/time.Hour))
	}
	return fmt.Sprintf("%dd ago", int(d/(24*time.Hour)))
}

// secondsText is a count of seconds as a duration, to the millisecond.
func secondsText(s float64) string {
	return time.Duration(s * float64(time.Second)).Round(time.Millisecond).String()
}

// parseTime reads an RFC 3339 time, or a date (midnight UTC).
func parseTime(s string) (time.Time, bool) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, true
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, true
	}
	return time.Time{}, false
}

// tables

func tablesCmd() *cobra.Command {
	var f apiFlags
	cmd := &cobra.Command{
		Use:   "tables",
		Short: "List the tables the node's pipelines write, with their snapshot, records and lag",
		Long: `List the tables the node's pipelines write, the dead-letter tables included:
name, pipeline, kind (data or dead_letter), whether it is keyed (upsert or
CDC), its current snapshot, the age of its last commit, its records and its
lag (records in Kafka past the table's offsets; - when unknown).

-o json prints the API's ListTablesResponse (64-bit integers as strings).
` + apiConnHelp,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return f.run(cmd, "tables", func(ctx context.Context, cl *client.Client) error {
				resp, err := cl.Tables.ListTables(ctx, &floev1.ListTablesRequest{})
				if err != nil {
					return err
				}
				return printTables(cmd.OutOrStdout(), f.output, resp, time.Now())
			})
		},
	}
	f.register(cmd, outTable, outJSON, outCSV)
	return cmd
}

func printTables(w io.Writer, format string, resp *floev1.ListTablesResponse, now time.Time) error {
	switch format {
	case outJSON:
		return writeProto(w, resp)
	case outCSV:
		cw := csv.NewWriter(w)
		_ = cw.Write([]string{"name", "pipeline", "kind", "keyed", "current_snapshot_id", "last_commit", "total_records", "snapshots", "lag"})
		for _, t := range resp.GetTables() {
			last := ""
			if t.GetLastCommit() != nil {
				last = timeText(t.GetLastCommit().AsTime())
			}
			lag := ""
			if t.GetLag() >= 0 {
				lag = strconv.FormatInt(t.GetLag(), 10)
			}
			_ = cw.Write([]string{t.GetName(), t.GetPipeline(), t.GetKind(), strconv.FormatBool(t.GetKeyed()),
				strconv.FormatInt(t.GetCurrentSnapshotId(), 10), last, strconv.FormatInt(t.GetTotalRecords(), 10),
				strconv.FormatInt(t.GetSnapshots(), 10), lag})
		}
		cw.Flush()
		return cw.Error()
	}
	tw := tableWriter(w)
	fmt.Fprintln(tw, "TABLE\tPIPELINE\tKIND\tKEYED\tSNAPSHOT\tLAST COMMIT\tRECORDS\tLAG")
	for _, t := range resp.GetTables() {
		last, snap := "-", "-"
		if t.GetLastCommit() != nil {
			last = ago(t.GetLastCommit().AsTime(), now)
		}
		if t.GetCurrentSnapshotId() != 0 {
			snap = strconv.FormatInt(t.GetCurrentSnapshotId(), 10)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", t.GetName(), t.GetPipeline(), t.GetKind(), yesNo(t.GetKeyed()),
			snap, last, t.GetTotalRecords(), lagText(t.GetLag()))
	}
	return tw.Flush()
}

// table

func tableCmd() *cobra.Command {
	var f apiFlags
	cmd := &cobra.Command{
		Use:   "table TABLE",
		Short: "Describe a table: columns, partition spec, key, snapshot, offsets and lag, freshness, files",
		Long: `Describe TABLE (namespace.table): its columns, partition spec and key, its
current snapshot, its offsets and lag on each Kafka partition, the time since
its last commit, its live files (small files are those below half the
target file size) and its branches and tags.

-o json prints the API's Table, which also lists the files of each partition
and the table's properties.
` + apiConnHelp,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return f.run(cmd, "table "+args[0], func(ctx context.Context, cl *client.Client) error {
				t, err := cl.Tables.GetTable(ctx, &floev1.GetTableRequest{Table: args[0]})
				if err != nil {
					return err
				}
				if f.output == outJSON {
					return writeProto(cmd.OutOrStdout(), t)
				}
				return printTable(cmd.OutOrStdout(), t, time.Now())
			})
		},
	}
	f.register(cmd, outTable, outJSON)
	return cmd
}

func printTable(w io.Writer, t *floev1.Table, now time.Time) error {
	s := t.GetSummary()
	tw := tableWriter(w)
	fmt.Fprintf(tw, "table\t%s\n", s.GetName())
	fmt.Fprintf(tw, "pipeline\t%s (%s)\n", s.GetPipeline(), s.GetKind())
	fmt.Fprintf(tw, "location\t%s\n", t.GetLocation())
	fmt.Fprintf(tw, "format\tv%d\n", t.GetFormatVersion())
	key := "none (append only)"
	if len(t.GetIdentifierFields()) > 0 {
		key = strings.Join(t.GetIdentifierFields(), ", ")
	}
	fmt.Fprintf(tw, "key\t%s\n", key)
	spec := "unpartitioned"
	if len(t.GetPartitionSpec()) > 0 {
		spec = strings.Join(t.GetPartitionSpec(), ", ")
	}
	fmt.Fprintf(tw, "partition spec\t%s\n", spec)
	if cur := t.GetCurrentSnapshot(); cur != nil {
		fmt.Fprintf(tw, "snapshot\t%d, %s (%s), %s, %d snapshots in all\n", cur.GetSnapshotId(),
			timeText(cur.GetTimestamp().AsTime()), ago(cur.GetTimestamp().AsTime(), now), cur.GetOperation(), s.GetSnapshots())
	} else {
		fmt.Fprintf(tw, "snapshot\tnone yet\n")
	}
	fmt.Fprintf(tw, "records\t%d\n", s.GetTotalRecords())
	if t.GetFreshnessSeconds() >= 0 {
		fmt.Fprintf(tw, "freshness\t%s since the last commit\n", secondsText(t.GetFreshnessSeconds()))
	} else {
		fmt.Fprintf(tw, "freshness\t- (no commit yet)\n")
	}
	fmt.Fprintf(tw, "lag\t%s\n", lagText(s.GetLag()))
	if fs := t.GetFiles(); fs != nil {
		fmt.Fprintf(tw, "data files\t%d (%s, %d records), %d small (below %s)\n", fs.GetDataFiles(), bytesText(fs.GetDataBytes()),
			fs.GetRecords(), fs.GetSmallFiles(), bytesText(fs.GetTargetFileSize()/2))
		fmt.Fprintf(tw, "delete files\t%d (%s)\n", fs.GetDeleteFiles(), bytesText(fs.GetDeleteBytes()))
		if n := len(fs.GetPartitions()); n > 0 && len(t.GetPartitionSpec()) > 0 {
			fmt.Fprintf(tw, "partitions\t%d with live files (-o json lists them)\n", n)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintln(w)
	tw = tableWriter(w)
	fmt.Fprintln(tw, "ID\tCOLUMN\tTYPE\tREQUIRED\tDOC")
	for _, c := range t.GetColumns() {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", c.GetId(), c.GetName(), c.GetType(), yesNo(c.GetRequired()), c.GetDoc())
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	if len(t.GetOffsets()) > 0 {
		fmt.Fprintln(w)
		tw = tableWriter(w)
		fmt.Fprintln(tw, "TOPIC\tPARTITION\tOFFSET\tEND\tLAG")
		for _, o := range t.GetOffsets() {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\n", o.GetTopic(), o.GetPartition(), o.GetOffset(), lagText(o.GetEnd()), lagText(o.GetLag()))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}

	if len(t.GetRefs()) > 0 {
		fmt.Fprintln(w)
		if err := printRefs(w, t.GetRefs()); err != nil {
			return err
		}
	}
	return nil
}

func printRefs(w io.Writer, refs []*floev1.Ref) error {
	tw := tableWriter(w)
	fmt.Fprintln(tw, "REF\tTYPE\tSNAPSHOT\tMAX AGE")
	for _, r := range refs {
		age := "-"
		if r.GetMaxRefAgeMs() > 0 {
			age = (time.Duration(r.GetMaxRefAgeMs()) * time.Millisecond).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", r.GetName(), r.GetType(), r.GetSnapshotId(), age)
	}
	return tw.Flush()
}

// snapshots

func snapshotsCmd() *cobra.Command {
	var f apiFlags
	var limit, pageSize int
	cmd := &cobra.Command{
		Use:   "snapshots TABLE",
		Short: "List a table's snapshots, newest first",
		Long: `List the snapshots of TABLE, newest first: id, parent, time, operation,
records added and deleted, total records after it, and the branches and tags
that point at it. In the first column * marks the current snapshot and ~ a
snapshot outside the current history (rolled back past, or on another
branch).

The list is read a page at a time (--page-size, default the node's: 100)
until --limit snapshots; a note on stderr says when there are more.
-o json prints {"snapshots": [...], "total": N} with the API's Snapshot.
` + apiConnHelp,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if limit < 0 || pageSize < 0 {
				return fmt.Errorf("--limit and --page-size must not be negative")
			}
			return f.run(cmd, "snapshots "+args[0], func(ctx context.Context, cl *client.Client) error {
				out := &floev1.ListSnapshotsResponse{}
				for tok := ""; ; {
					resp, err := cl.Tables.ListSnapshots(ctx, &floev1.ListSnapshotsRequest{Table: args[0], PageSize: int32(pageSize), PageToken: tok})
					if err != nil {
						return err
					}
					out.Snapshots = append(out.Snapshots, resp.GetSnapshots()...)
					out.Total = resp.GetTotal()
					tok = resp.GetNextPageToken()
					if tok == "" || limit > 0 && len(out.Snapshots) >= limit {
						break
					}
				}
				if limit > 0 && len(out.Snapshots) > limit {
					out.Snapshots = out.Snapshots[:limit]
				}
				if n := int64(len(out.Snapshots)); n < out.Total {
					fmt.Fprintf(cmd.ErrOrStderr(), "showing the newest %d of %d snapshots (--limit 0 lists them all)\n", n, out.Total)
				}
				return printSnapshots(cmd.OutOrStdout(), f.output, out)
			})
		},
	}
	f.register(cmd, outTable, outJSON, outCSV)
	cmd.Flags().IntVar(&limit, "limit", 100, "list at most this many snapshots (0: all)")
	cmd.Flags().IntVar(&pageSize, "page-size", 0, "snapshots per call (0: the node's default; at most api.max_page_size)")
	return cmd
}

func printSnapshots(w io.Writer, format string, resp *floev1.ListSnapshotsResponse) error {
	switch format {
	case outJSON:
		return writeProto(w, resp)
	case outCSV:
		cw := csv.NewWriter(w)
		_ = cw.Write([]string{"snapshot_id", "parent_id", "timestamp", "operation", "added_records", "deleted_records", "total_records", "refs", "current", "ancestor"})
		for _, s := range resp.GetSnapshots() {
			parent := ""
			if s.GetParentId() != 0 {
				parent = strconv.FormatInt(s.GetParentId(), 10)
			}
			_ = cw.Write([]string{strconv.FormatInt(s.GetSnapshotId(), 10), parent, timeText(s.GetTimestamp().AsTime()), s.GetOperation(),
				strconv.FormatInt(s.GetAddedRecords(), 10), strconv.FormatInt(s.GetDeletedRecords(), 10), strconv.FormatInt(s.GetTotalRecords(), 10),
				strings.Join(s.GetRefs(), " "), strconv.FormatBool(s.GetCurrent()), strconv.FormatBool(s.GetAncestor())})
		}
		cw.Flush()
		return cw.Error()
	}
	tw := tableWriter(w)
	fmt.Fprintln(tw, "\tSNAPSHOT\tPARENT\tTIME\tOPERATION\t+RECORDS\t-RECORDS\tTOTAL\tREFS")
	for _, s := range resp.GetSnapshots() {
		mark := ""
		switch {
		case s.GetCurrent():
			mark = "*"
		case !s.GetAncestor():
			mark = "~"
		}
		parent := "-"
		if s.GetParentId() != 0 {
			parent = strconv.FormatInt(s.GetParentId(), 10)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%d\t%d\t%d\t%s\n", mark, s.GetSnapshotId(), parent, timeText(s.GetTimestamp().AsTime()),
			s.GetOperation(), s.GetAddedRecords(), s.GetDeletedRecords(), s.GetTotalRecords(), strings.Join(s.GetRefs(), ", "))
	}
	return tw.Flush()
}
