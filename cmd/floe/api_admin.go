package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/timestamppb"

	floev1 "github.com/floelake/floe/proto/floe/v1"
	"github.com/floelake/floe/timetravel/client"
)

// rollback and tag: the calls that change a table (admin scope).

func rollbackCmd() *cobra.Command {
	var f apiFlags
	var toSnapshot int64
	var toTime, mode string
	var apply bool
	cmd := &cobra.Command{
		Use:   "rollback TABLE (--to-snapshot ID | --to-time TIME) --mode replay|skip [--apply]",
		Short: "Return a table to an earlier snapshot (a dry run unless --apply)",
		Long: `Return TABLE to an earlier snapshot of its current history: --to-snapshot ID,
or --to-time TIME (RFC 3339, or a date for midnight UTC), which picks the
snapshot current at that time. The table's writer does it between two of its
commits. --mode is required, because the two modes do very different things:

  replay  The table goes back to the snapshot, offsets included: its pipeline
          then reads its Kafka topics again from the snapshot's offsets, so
          the records since are ingested again, with the transform as it is
          configured now. Use it to reprocess after fixing a transform or a
          schema. Records that Kafka's retention has deleted since cannot be
          read again.
  skip    The table gets a new snapshot with the rows of the target snapshot
          and keeps its current offsets: the records since are dropped and
          not read again. Use it to drop bad data.

Without --apply this is a dry run: it prints what would happen (the
snapshots undone, records and offsets before and after) and changes
nothing. -o json prints the API's RollbackResponse.
` + apiConnHelp,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := &floev1.RollbackRequest{Table: args[0], DryRun: !apply}
			switch mode {
			case "replay":
				req.Mode = floev1.RollbackMode_ROLLBACK_MODE_REPLAY
			case "skip":
				req.Mode = floev1.RollbackMode_ROLLBACK_MODE_SKIP
			case "":
				return fmt.Errorf("--mode is required: replay (the table and its offsets go back, and the records since are read again) " +
					"or skip (a new snapshot with the old rows; the records since are dropped and not read again); see floe rollback --help")
			default:
				return fmt.Errorf("--mode %q: want replay or skip", mode)
			}
			switch {
			case cmd.Flags().Changed("to-snapshot") && toTime != "":
				return fmt.Errorf("give --to-snapshot or --to-time, not both")
			case cmd.Flags().Changed("to-snapshot"):
				if toSnapshot == 0 {
					return fmt.Errorf("--to-snapshot 0: there is no snapshot 0")
				}
				req.Target = &floev1.RollbackRequest_SnapshotId{SnapshotId: toSnapshot}
			case toTime != "":
				t, ok := parseTime(toTime)
				if !ok {
					return fmt.Errorf("--to-time %q: want an RFC 3339 time (2026-01-02T15:04:05Z) or a date (2026-01-02)", toTime)
				}
				req.Target = &floev1.RollbackRequest_Timestamp{Timestamp: timestamppb.New(t)}
			default:
				return fmt.Errorf("give the snapshot to return to: --to-snapshot ID or --to-time TIME (floe snapshots %s lists them)", args[0])
			}
			return f.run(cmd, "rollback "+args[0], func(ctx context.Context, cl *client.Client) error {
				resp, err := cl.Tables.Rollback(ctx, req)
				if err != nil {
					return err
				}
				if f.output == outJSON {
					return writeProto(cmd.OutOrStdout(), resp)
				}
				return printRollback(cmd.OutOrStdout(), resp)
			})
		},
	}
	f.register(cmd, outTable, outJSON)
	fl := cmd.Flags()
	fl.Int64Var(&toSnapshot, "to-snapshot", 0, "the snapshot to return to (an ancestor of the current one)")
	fl.StringVar(&toTime, "to-time", "", "return to the snapshot current at this time (RFC 3339, or a date)")
	fl.StringVar(&mode, "mode", "", "replay (read the records since again) or skip (drop them); required")
	fl.BoolVar(&apply, "apply", false, "do it (without: a dry run that changes nothing)")
	return cmd
}

func modeName(m floev1.RollbackMode) string {
	switch m {
	case floev1.RollbackMode_ROLLBACK_MODE_REPLAY:
		return "replay"
	case floev1.RollbackMode_ROLLBACK_MODE_SKIP:
		return "skip"
	}
	return m.String()
}

func printRollback(w io.Writer, r *floev1.RollbackResponse) error {
	if r.GetApplied() {
		fmt.Fprintf(w, "done: %s\n\n", r.GetDescription())
	} else {
		fmt.Fprintf(w, "%s\n\n", r.GetDescription())
	}
	tw := tableWriter(w)
	fmt.Fprintf(tw, "mode\t%s\n", modeName(r.GetMode()))
	fmt.Fprintf(tw, "current snapshot\t%d\n", r.GetFromSnapshotId())
	fmt.Fprintf(tw, "target snapshot\t%d\n", r.GetTargetSnapshotId())
	fmt.Fprintf(tw, "snapshots undone\t%d\n", r.GetSnapshotsUndone())
	fmt.Fprintf(tw, "records\t%d -> %d\n", r.GetRecordsBefore(), r.GetRecordsAfter())
	switch {
	case r.GetApplied():
		fmt.Fprintf(tw, "now current\t%d\n", r.GetNewSnapshotId())
	case r.GetNewSnapshotId() != 0:
		fmt.Fprintf(tw, "would be current\t%d\n", r.GetNewSnapshotId())
	default:
		fmt.Fprintf(tw, "would be current\ta new snapshot\n")
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(r.GetOffsetsBefore()) > 0 || len(r.GetOffsetsAfter()) > 0 {
		fmt.Fprintln(w)
		if err := printOffsetChange(w, r.GetOffsetsBefore(), r.GetOffsetsAfter()); err != nil {
			return err
		}
	}
	if !r.GetApplied() {
		fmt.Fprintln(w, "\ndry run: nothing changed; add --apply to do it")
	}
	return nil
}

// printOffsetChange lists each partition's offset before and after.
func printOffsetChange(w io.Writer, before, after []*floev1.PartitionOffset) error {
	type key struct {
		topic string
		p     int32
	}
	var keys []key
	b, a := map[key]int64{}, map[key]int64{}
	add := func(offs []*floev1.PartitionOffset, m map[key]int64) {
		for _, o := range offs {
			k := key{o.GetTopic(), o.GetPartition()}
			if _, seen := b[k]; !seen {
				if _, seen := a[k]; !seen {
					keys = append(keys, k)
				}
			}
			m[k] = o.GetOffset()
		}
	}
	add(before, b)
	add(after, a)
	val := func(m map[key]int64, k key) string {
		if v, ok := m[k]; ok {
			return strconv.FormatInt(v, 10)
		}
		return "-"
	}
	tw := tableWriter(w)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tOFFSET NOW\tOFFSET AFTER")
	for _, k := range keys {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", k.topic, k.p, val(b, k), val(a, k))
	}
	return tw.Flush()
}

// tag

func tagCmd() *cobra.Command {
	var f apiFlags
	var snapshot int64
	var maxAge string
	var del bool
	cmd := &cobra.Command{
		Use:   "tag TABLE [NAME [--snapshot ID] [--max-age DURATION] | NAME --delete]",
		Short: "Name a snapshot of a table; list or delete the names",
		Long: `Tags name snapshots of a table: floe query --as-of tag:NAME reads the snapshot,
and snapshot expiry keeps a snapshot a tag names.

  floe tag TABLE                         list the tags and branches of TABLE
  floe tag TABLE NAME [--snapshot ID]    tag a snapshot (default: the current one)
  floe tag TABLE NAME --delete           delete the tag (snapshot expiry may then
                                         remove its snapshot)

--max-age (a duration: 36h, 90m, or days: 30d) sets a new tag's Iceberg
max-ref-age, which lets snapshot expiry remove the tag at that age; without
it the tag has none. Tags named floe-* are floe's own (each pins its
pipeline's last commit). Creating and deleting need a token with the admin
scope. -o json prints the API's Tag, or for a list its Ref messages as a
JSON array.
` + apiConnHelp,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			table := args[0]
			switch {
			case len(args) == 1 && del:
				return fmt.Errorf("--delete needs the name of the tag: floe tag %s NAME --delete", table)
			case len(args) == 1 && (snapshot != 0 || maxAge != ""):
				return fmt.Errorf("--snapshot and --max-age need the name of the new tag: floe tag %s NAME", table)
			case len(args) == 1:
				return f.run(cmd, "tag "+table, func(ctx context.Context, cl *client.Client) error {
					t, err := cl.Tables.GetTable(ctx, &floev1.GetTableRequest{Table: table})
					if err != nil {
						return err
					}
					return printTagList(cmd.OutOrStdout(), f.output, t.GetRefs())
				})
			}
			name := args[1]
			what := "tag " + table + " " + name
			if del {
				if snapshot != 0 || maxAge != "" {
					return fmt.Errorf("--delete takes neither --snapshot nor --max-age")
				}
				return f.run(cmd, what+" --delete", func(ctx context.Context, cl *client.Client) error {
					if _, err := cl.Tables.DeleteTag(ctx, &floev1.DeleteTagRequest{Table: table, Name: name}); err != nil {
						return err
					}
					if f.output == outJSON {
						_, err := fmt.Fprintf(cmd.OutOrStdout(), "{\"table\": %q, \"name\": %q, \"deleted\": true}\n", table, name)
						return err
					}
					fmt.Fprintf(cmd.OutOrStdout(), "deleted tag %s of %s\n", name, table)
					return nil
				})
			}
			req := &floev1.CreateTagRequest{Table: table, Name: name, SnapshotId: snapshot}
			if maxAge != "" {
				d, err := parseAge(maxAge)
				if err != nil {
					return fmt.Errorf("--max-age %q: %w", maxAge, err)
				}
				req.MaxRefAgeMs = d.Milliseconds()
			}
			return f.run(cmd, what, func(ctx context.Context, cl *client.Client) error {
				tag, err := cl.Tables.CreateTag(ctx, req)
				if err != nil {
					return err
				}
				if f.output == outJSON {
					return writeProto(cmd.OutOrStdout(), tag)
				}
				age := "no max age"
				if tag.GetMaxRefAgeMs() > 0 {
					age = "max age " + (time.Duration(tag.GetMaxRefAgeMs()) * time.Millisecond).String()
				}
				fmt.Fprintf(cmd.OutOrStdout(), "tagged snapshot %d of %s as %s (%s)\n", tag.GetSnapshotId(), tag.GetTable(), tag.GetName(), age)
				return nil
			})
		},
	}
	f.register(cmd, outTable, outJSON)
	fl := cmd.Flags()
	fl.Int64Var(&snapshot, "snapshot", 0, "the snapshot to tag (default: the current one)")
	fl.StringVar(&maxAge, "max-age", "", "the new tag's max-ref-age (e.g. 720h or 30d; default: none)")
	fl.BoolVar(&del, "delete", false, "delete tag NAME")
	return cmd
}

func printTagList(w io.Writer, format string, refs []*floev1.Ref) error {
	if format != outJSON {
		return printRefs(w, refs)
	}
	var parts []string
	for _, r := range refs {
		var b strings.Builder
		if err := writeProto(&b, r); err != nil {
			return err
		}
		parts = append(parts, strings.TrimSuffix(b.String(), "\n"))
	}
	_, err := fmt.Fprintf(w, "[%s]\n", strings.Join(parts, ",\n"))
	return err
}

// parseAge reads a Go duration, or a whole number of days ("30d").
func parseAge(s string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseInt(d, 10, 64)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("want a positive duration such as 36h, 90m or 30d")
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("want a positive duration such as 36h, 90m or 30d")
	}
	if d < time.Millisecond {
		return 0, fmt.Errorf("want at least a millisecond")
	}
	return d, nil
}
