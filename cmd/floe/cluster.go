package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/floelake/floe/cluster"
	"github.com/floelake/floe/internal/config"
)

// clusterFlags are the connection settings every cluster subcommand takes.
type clusterFlags struct {
	addr, cfgPath, cert, key, ca, token string
	timeout                             time.Duration
}

func (f *clusterFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.addr, "addr", "", "API address (host:port) of any member; default cluster.api_advertise_addr or cluster.api_addr of --config, else 127.0.0.1:7947")
	cmd.Flags().StringVarP(&f.cfgPath, "config", "c", "", "read the address and cluster.tls from this configuration file")
	cmd.Flags().StringVar(&f.cert, "tls-cert", "", "client certificate (overrides cluster.tls.cert_file)")
	cmd.Flags().StringVar(&f.key, "tls-key", "", "client key (overrides cluster.tls.key_file)")
	cmd.Flags().StringVar(&f.ca, "tls-ca", "", "CA of the members' certificates (overrides cluster.tls.ca_file)")
	cmd.Flags().DurationVar(&f.timeout, "timeout", 10*time.Second, "give up after this long")
	cmd.Flags().StringVar(&f.token, "token", os.Getenv("FLOE_TOKEN"), "bearer token when the node has node.api.tokens (default $FLOE_TOKEN): read for status, admin for join and leave")
}

func (f *clusterFlags) dial() (*cluster.Client, error) {
	tlsCfg := cluster.TLSConfig{CertFile: f.cert, KeyFile: f.key, CAFile: f.ca}
	addr := f.addr
	if f.cfgPath != "" {
		cfg, err := config.Load(f.cfgPath)
		if err != nil {
			return nil, err
		}
		if addr == "" {
			addr = cfg.Cluster.APIAdvertiseAddr
			if addr == "" {
				addr = cfg.Cluster.APIAddr
			}
		}
		if tlsCfg.CertFile == "" {
			tlsCfg = cfg.Cluster.TLS
		}
	}
	if addr == "" {
		addr = config.Default().Cluster.APIAddr
	}
	var ct *tls.Config
	if tlsCfg.CertFile != "" || tlsCfg.CAFile != "" {
		var err error
		if tlsCfg.CertFile == "" {
			// Server-authenticated TLS only: trust the CA, present nothing.
			ct = &tls.Config{MinVersion: tls.VersionTLS12}
			pool, err := cluster.LoadCA(tlsCfg.CAFile)
			if err != nil {
				return nil, err
			}
			ct.RootCAs = pool
		} else if ct, err = cluster.ClientTLS(tlsCfg); err != nil {
			return nil, err
		}
	}
	return cluster.DialToken(addr, ct, f.token)
}

// call dials the member and runs fn within the timeout.
func (f *clusterFlags) call(fn func(ctx context.Context, cl *cluster.Client) error) error {
	cl, err := f.dial()
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), f.timeout)
	defer cancel()
	return fn(ctx, cl)
}

func clusterCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Inspect and change a floe cluster (status, join, leave)",
	}
	cmd.AddCommand(clusterStatusCmd(), clusterJoinCmd(), clusterLeaveCmd())
	return cmd
}

func clusterStatusCmd() *cobra.Command {
	var f clusterFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the leader, members, partition assignment, lag and pending segments",
		RunE: func(cmd *cobra.Command, _ []string) error {
			return f.call(func(ctx context.Context, cl *cluster.Client) error {
				st, err := cl.Status(ctx)
				if err != nil {
					return err
				}
				if asJSON {
					enc := json.NewEncoder(cmd.OutOrStdout())
					enc.SetIndent("", "  ")
					return enc.Encode(st)
				}
				printStatus(cmd.OutOrStdout(), st)
				return nil
			})
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the status as JSON")
	return cmd
}

func printStatus(w io.Writer, st cluster.Status) {
	leader := st.LeaderID
	if leader == "" {
		leader = "(none known)"
	}
	fmt.Fprintf(w, "node %s  leader %s  term %d  applied index %d\n\n", st.NodeID, leader, st.Term, st.AppliedIndex)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MEMBER\tRAFT\tAPI\tSUFFRAGE\tALIVE\tLAST HEARTBEAT\tPARTITIONS")
	for _, m := range st.Members {
		hb := "-"
		if !m.LastHeartbeat.IsZero() {
			hb = time.Since(m.LastHeartbeat).Round(100*time.Millisecond).String() + " ago"
		}
		role := m.Suffrage
		if m.ID == st.LeaderID {
			role += " (leader)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%v\t%s\t%d\n", m.ID, m.RaftAddr, m.APIAddr, role, m.Alive, hb, m.Partitions)
	}
	_ = tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PIPELINE\tPARTITION\tOWNER\tEPOCH\tNEXT\tCOMMITTED\tEND\tLAG")
	for _, p := range st.Partitions {
		fmt.Fprintf(tw, "%s\t%s/%d\t%s\t%d\t%s\t%s\t%s\t%s\n", p.Pipeline, p.Topic, p.Partition, orDash(p.Owner), p.Epoch,
			num(p.NextExpected), num(p.Committed), num(p.End), num(p.Lag))
	}
	_ = tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TABLE\tPIPELINE\tSNAPSHOT\tPENDING SEGMENTS\tPENDING RECORDS")
	for _, t := range st.Tables {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\n", t.Table, t.Pipeline, t.SnapshotID, t.PendingSegments, t.PendingRecords)
	}
	_ = tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func num(v int64) string {
	if v < 0 {
		return "-"
	}
	return fmt.Sprint(v)
}

func clusterJoinCmd() *cobra.Command {
	var f clusterFlags
	var req cluster.JoinRequest
	cmd := &cobra.Command{
		Use:   "join --addr MEMBER --node-id ID --raft-addr HOST:PORT --node-api-addr HOST:PORT",
		Short: "Add a running node to the cluster (floe serve --join does this by itself)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			return f.call(func(ctx context.Context, cl *cluster.Client) error {
				if err := cl.Join(ctx, req); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s joined\n", req.NodeID)
				return nil
			})
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&req.NodeID, "node-id", "", "id of the node to add")
	cmd.Flags().StringVar(&req.RaftAddr, "raft-addr", "", "its raft address")
	cmd.Flags().StringVar(&req.APIAddr, "node-api-addr", "", "its API address")
	return cmd
}

func clusterLeaveCmd() *cobra.Command {
	var f clusterFlags
	var id string
	cmd := &cobra.Command{
		Use:   "leave --addr MEMBER --node-id ID",
		Short: "Remove a node: its partitions move to the others, and it stops consuming",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if id == "" {
				return fmt.Errorf("--node-id is required")
			}
			return f.call(func(ctx context.Context, cl *cluster.Client) error {
				if err := cl.Leave(ctx, id); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s left\n", id)
				return nil
			})
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&id, "node-id", "", "id of the node to remove")
	return cmd
}
