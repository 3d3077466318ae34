package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/floelake/floe/cluster"
	"github.com/floelake/floe/internal/config"
	"github.com/floelake/floe/internal/node"
	"github.com/floelake/floe/maintain"
)

func compactCmd() *cobra.Command {
	var addr, cfgPath, token, caFile string
	var useTLS bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "compact TABLE",
		Short: "Compact a table now: every small data file, whatever the thresholds",
		Long: `Ask the running floe node that writes TABLE (namespace.table; in a cluster,
the leader) to compact it now: every data file below three quarters of
maintenance.compaction.target_file_size is packed into files of up to that
size, per partition, between two of the table's commits. Ingestion goes on
meanwhile. Prints progress, then the table's live data files and bytes before
and after.

The node is reached on its operations port: --addr, else node.http_addr of
--config, else 127.0.0.1:8080; over TLS with --tls (or when --config sets
node.api.tls). A node with node.api.tokens needs an admin token: --token or
FLOE_TOKEN.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if addr == "" {
				addr = config.Default().Node.HTTPAddr
				if cfgPath != "" {
					cfg, err := config.Load(cfgPath)
					if err != nil {
						return err
					}
					addr = cfg.Node.HTTPAddr
					useTLS = useTLS || cfg.Node.API.TLS.Enabled()
				}
			}
			hc := http.DefaultClient
			base := addr
			if useTLS {
				tc := &tls.Config{MinVersion: tls.VersionTLS12}
				if caFile != "" {
					pool, err := cluster.LoadCA(caFile)
					if err != nil {
						return err
					}
					tc.RootCAs = pool
				}
				hc = &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}
				base = "https://" + addr
			}
			ctx, cancel := signalContext()
			defer cancel()
			if timeout > 0 {
				var c context.CancelFunc
				ctx, c = context.WithTimeout(ctx, timeout)
				defer c()
			}
			bar := progressBar{w: cmd.ErrOrStderr()}
			sum, err := node.Compact(ctx, hc, base, token, args[0], bar.show)
			bar.done()
			if err != nil {
				return fmt.Errorf("compact %s on %s: %w", args[0], addr, err)
			}
			printCompaction(cmd.OutOrStdout(), args[0], sum)
			return nil
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "", "operations address (host:port) of the node that writes the table")
	cmd.Flags().StringVarP(&cfgPath, "config", "c", "", "read node.http_addr from this configuration file")
	cmd.Flags().DurationVar(&timeout, "timeout", 0, "give up after this long (0: never)")
	cmd.Flags().StringVar(&token, "token", os.Getenv("FLOE_TOKEN"), "admin bearer token, when the node has node.api.tokens (default $FLOE_TOKEN)")
	cmd.Flags().BoolVar(&useTLS, "tls", false, "reach the node over TLS (node.api.tls)")
	cmd.Flags().StringVar(&caFile, "ca-file", "", "with --tls: the CA of the node's certificate (default: the system's)")
	return cmd
}

// progressBar draws a compaction's progress on one terminal line.
type progressBar struct {
	w     io.Writer
	drawn bool
}

func (b *progressBar) show(p maintain.Progress) {
	const width = 30
	filled := 0
	if p.Bytes > 0 {
		filled = int(int64(width) * p.BytesDone / p.Bytes)
	}
	fmt.Fprintf(b.w, "\r[%s%s] %d/%d groups, %s/%s", strings.Repeat("#", filled), strings.Repeat("-", width-filled),
		p.Done, p.Groups, bytesText(p.BytesDone), bytesText(p.Bytes))
	b.drawn = true
}

func (b *progressBar) done() {
	if b.drawn {
		fmt.Fprintln(b.w)
	}
}

func printCompaction(w io.Writer, table string, s maintain.Summary) {
	if s.Snapshot == 0 {
		if s.Stale {
			fmt.Fprintf(w, "%s: the table changed while the compaction ran; nothing was committed (try again)\n", table)
			return
		}
		fmt.Fprintf(w, "%s: nothing to compact: %d data files, %s, at most %d in a partition\n",
			table, s.FilesBefore, bytesText(s.BytesBefore), s.MaxFilesPerPartition)
		return
	}
	fmt.Fprintf(w, "%s: compacted in %s (snapshot %d)\n", table, s.Took.Round(time.Millisecond), s.Snapshot)
	fmt.Fprintf(w, "  data files  %6d → %d\n", s.FilesBefore, s.FilesAfter)
	fmt.Fprintf(w, "  bytes       %6s → %s\n", bytesText(s.BytesBefore), bytesText(s.BytesAfter))
	fmt.Fprintf(w, "  rewrote %d files (%s) into %d (%s)\n", s.Rewritten, bytesText(s.BytesRead), s.Written, bytesText(s.BytesOut))
}

func bytesText(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f%ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
