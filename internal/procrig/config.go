package procrig

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/floelake/floe/catalog"
	"github.com/floelake/floe/cluster"
	"github.com/floelake/floe/internal/config"
	"github.com/floelake/floe/timetravel/api"
)

// MemberConfig is one `floe serve` process's configuration file: a node
// with one pipeline of JSON records.
type MemberConfig struct {
	// ID names the member; in cluster mode it is cluster.node_id.
	ID       string
	DataDir  string
	HTTPAddr string // "" disables the operations endpoint
	LogLevel string // "": floe's default
	// ShutdownTimeout bounds the final commit on SIGTERM; 0: floe's default.
	ShutdownTimeout time.Duration
	// APITokens are node.api.tokens, the floe API's bearer tokens; none
	// leaves the API open.
	APITokens []api.Token

	// Cluster enables cluster mode; the other cluster fields are written
	// only then (zero durations: floe's defaults).
	Cluster                      bool
	RaftAddr, APIAddr            string
	Join                         []string // API addresses of members to join through
	HeartbeatInterval, DeadAfter time.Duration
	// TLS, when set, secures the raft transport and the cluster API.
	TLS *cluster.TLSConfig

	Brokers []string
	// ClientID is the Kafka client id and consumer group.
	ClientID string
	// Catalog: its type, name, URI and warehouse ("" left out) are written.
	Catalog catalog.Config
	// S3, when set, is the storage of an S3 warehouse (path-style).
	S3 *catalog.S3Config

	Pipeline Pipeline
}

// Pipeline is the member's one pipeline.
type Pipeline struct {
	Name, Topic, Table string
	// Start is earliest, latest or an RFC 3339 time; "": floe's default.
	Start          string
	CommitInterval time.Duration
	PartitionBy    []string
	// Format is the records' format; "": json.
	Format string
	// Extra is YAML added to the pipeline's entry as it is, every line
	// indented by four spaces: a schema, kafka_metadata.
	Extra string
}

// YAML renders the configuration file.
func (c MemberConfig) YAML() string {
	var b strings.Builder
	fmt.Fprintf(&b, "node:\n  data_dir: %s\n  http_addr: %s\n", yq(c.DataDir), yq(c.HTTPAddr))
	if c.ShutdownTimeout > 0 {
		fmt.Fprintf(&b, "  shutdown_timeout: %s\n", c.ShutdownTimeout)
	}
	if c.LogLevel != "" {
		fmt.Fprintf(&b, "  log_level: %s\n", yq(c.LogLevel))
	}
	if len(c.APITokens) > 0 {
		b.WriteString("  api:\n    tokens:\n")
		for _, tok := range c.APITokens {
			fmt.Fprintf(&b, "      - name: %s\n        scope: %s\n", yq(tok.Name), yq(tok.Scope))
			if tok.File != "" {
				fmt.Fprintf(&b, "        token_file: %s\n", yq(tok.File))
			} else {
				fmt.Fprintf(&b, "        token: %s\n", yq(tok.Token))
			}
		}
	}
	if c.Cluster {
		fmt.Fprintf(&b, "cluster:\n  enabled: true\n  node_id: %s\n  raft_addr: %s\n  api_addr: %s\n",
			yq(c.ID), yq(c.RaftAddr), yq(c.APIAddr))
		if c.HeartbeatInterval > 0 {
			fmt.Fprintf(&b, "  heartbeat_interval: %s\n", c.HeartbeatInterval)
		}
		if c.DeadAfter > 0 {
			fmt.Fprintf(&b, "  dead_after: %s\n", c.DeadAfter)
		}
		if c.TLS != nil {
			fmt.Fprintf(&b, "  tls:\n    cert_file: %s\n    key_file: %s\n    ca_file: %s\n", yq(c.TLS.CertFile), yq(c.TLS.KeyFile), yq(c.TLS.CAFile))
		}
		if len(c.Join) > 0 {
			fmt.Fprintf(&b, "  join: %s\n", yqList(c.Join))
		}
	}
	fmt.Fprintf(&b, "kafka:\n  brokers: %s\n  client_id: %s\n  group: %s\n", yqList(c.Brokers), yq(c.ClientID), yq(c.ClientID))
	fmt.Fprintf(&b, "catalog:\n  type: %s\n  name: %s\n  uri: %s\n", yq(c.Catalog.Type), yq(c.Catalog.Name), yq(c.Catalog.URI))
	if c.Catalog.Warehouse != "" {
		fmt.Fprintf(&b, "  warehouse: %s\n", yq(c.Catalog.Warehouse))
	}
	if s := c.S3; s != nil {
		fmt.Fprintf(&b, "storage:\n  s3:\n    endpoint: %s\n    region: %s\n    path_style: true\n    access_key_id: %s\n    secret_access_key: %s\n",
			yq(s.Endpoint), yq(s.Region), yq(s.AccessKeyID), yq(s.SecretAccessKey))
	}
	p := c.Pipeline
	format := p.Format
	if format == "" {
		format = "json"
	}
	fmt.Fprintf(&b, "pipelines:\n  - name: %s\n    topics: [%s]\n    table: %s\n    format: %s\n", yq(p.Name), yq(p.Topic), yq(p.Table), yq(format))
	if p.Start != "" {
		fmt.Fprintf(&b, "    start: %s\n", yq(p.Start))
	}
	if p.CommitInterval > 0 {
		fmt.Fprintf(&b, "    commit_interval: %s\n", p.CommitInterval)
	}
	if len(p.PartitionBy) > 0 {
		fmt.Fprintf(&b, "    partition_by: %s\n", yqList(p.PartitionBy))
	}
	if x := strings.Trim(p.Extra, "\n"); x != "" {
		b.WriteString(x + "\n")
	}
	return b.String()
}

// Parse parses the rendered file as `floe serve` does (without the
// process environment).
func (c MemberConfig) Parse() (config.Config, error) {
	cfg, err := config.Parse([]byte(c.YAML()), nil)
	if err != nil {
		return config.Config{}, fmt.Errorf("member %s's configuration: %w\n%s", c.ID, err, c.YAML())
	}
	return cfg, nil
}

// yq quotes a string for YAML (a JSON string is a YAML double-quoted one).
func yq(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func yqList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = yq(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// FreeAddrs returns n distinct free 127.0.0.1 addresses. A member keeps its
// addresses across restarts (its raft address is in the cluster's
// configuration), so they are taken below the kernel's ephemeral port
// range: no outgoing connection can be given a dead member's port before
// it restarts.
func FreeAddrs(n int) ([]string, error) {
	lo, hi := 15000, 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if v, err := strconv.Atoi(f[0]); err == nil && v > lo+1000 {
				hi = v
			}
		}
	}
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			_ = ln.Close()
		}
	}()
	var out []string
	for tries := 0; len(out) < n; tries++ {
		addr := "127.0.0.1:" + strconv.Itoa(lo+rand.IntN(hi-lo))
		if tries > 1000 {
			addr = "127.0.0.1:0" // the range is crowded: any free port
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			if tries > 2000 {
				return nil, fmt.Errorf("procrig: no free address: %w", err)
			}
			continue
		}
		lns = append(lns, ln)
		out = append(out, ln.Addr().String())
	}
	return out, nil
}
