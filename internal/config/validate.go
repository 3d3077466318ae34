package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/apache/iceberg-go"

	"github.com/floelake/floe/internal/schema"
)

// FieldError names a configuration field and says what is allowed there.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return "config: " + e.Field + ": " + e.Reason }

// Validate checks every field and returns all problems at once, each a
// *FieldError naming the field.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)})
	}

	switch c.Node.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("node.log_level", "must be one of debug, info, warn, error; got %q", c.Node.LogLevel)
	}
	if c.Node.ShutdownTimeout.D() <= 0 {
		bad("node.shutdown_timeout", "must be a positive duration, got %s", c.Node.ShutdownTimeout)
	}

	if c.Cluster.Enabled {
		c.validateCluster(bad)
	}

	if len(c.Pipelines) > 0 && len(c.Kafka.Brokers) == 0 {
		bad("kafka.brokers", "must list at least one host:port")
	}
	for i, b := range c.Kafka.Brokers {
		if !strings.Contains(b, ":") {
			bad(fmt.Sprintf("kafka.brokers[%d]", i), "must be host:port, got %q", b)
		}
	}
	if c.Kafka.Group == "" {
		bad("kafka.group", "must not be empty (offsets are committed there for lag monitoring)")
	}
	switch strings.ToUpper(c.Kafka.SASL.Mechanism) {
	case "":
	case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
		if c.Kafka.SASL.Username == "" {
			bad("kafka.sasl.username", "is required with mechanism %s", c.Kafka.SASL.Mechanism)
		}
	default:
		bad("kafka.sasl.mechanism", "must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, got %q", c.Kafka.SASL.Mechanism)
	}
	if (c.Kafka.TLS.CertFile == "") != (c.Kafka.TLS.KeyFile == "") {
		bad("kafka.tls", "cert_file and key_file must be given together")
	}
	if c.Kafka.FetchMaxBytes < 1<<20 {
		bad("kafka.fetch_max_bytes", "must be at least 1MiB, got %d", c.Kafka.FetchMaxBytes)
	}

	switch c.Catalog.Type {
	case "sql":
		if c.Catalog.URI != "" && !strings.HasPrefix(c.Catalog.URI, "sqlite:") &&
			!strings.HasPrefix(c.Catalog.URI, "postgres://") && !strings.HasPrefix(c.Catalog.URI, "postgresql://") {
			bad("catalog.uri", "for type sql must start with sqlite: or postgres://, got %q", c.Catalog.URI)
		}
	case "rest":
		if u, err := url.Parse(c.Catalog.URI); err != nil || (u.Scheme != "http" && u.Scheme != "https") {
			bad("catalog.uri", "for type rest must be an http(s) URL, got %q", c.Catalog.URI)
		}
	default:
		bad("catalog.type", "must be sql or rest, got %q", c.Catalog.Type)
	}
	if c.Catalog.Name == "" {
		bad("catalog.name", "must not be empty")
	}
	if w := c.Catalog.Warehouse; w != "" {
		if i := strings.Index(w, "://"); i >= 0 {
			switch w[:i] {
			case "file", "s3", "s3a":
			default:
				bad("catalog.warehouse", "scheme must be file:// or s3://, got %q", w)
			}
		}
	}

	if c.Defaults.CommitInterval.D() < 100*time.Millisecond {
		bad("defaults.commit_interval", "must be at least 100ms, got %s", c.Defaults.CommitInterval)
	}
	if err := checkOnDataLoss(c.Defaults.OnDataLoss); err != nil {
		bad("defaults.on_data_loss", "%v", err)
	}

	names := map[string]bool{}
	tables := map[string]string{}
	for i, p := range c.Pipelines {
		f := func(name string) string { return fmt.Sprintf("pipelines[%d].%s", i, name) }
		if names[p.Name] {
			bad(f("name"), "duplicate pipeline name %q", p.Name)
		}
		names[p.Name] = true
		if len(p.Topics) == 0 {
			bad(f("topics"), "must list at least one topic")
		}
		if err := checkTableName(p.Table); err != nil {
			bad(f("table"), "%v", err)
		}
		if err := checkTableName(p.DeadLetter()); err != nil {
			bad(f("dead_letter_table"), "%v", err)
		}
		if p.DeadLetter() == p.Table {
			bad(f("dead_letter_table"), "must differ from the table")
		}
		for _, t := range []string{p.Table, p.DeadLetter()} {
			if other, ok := tables[t]; ok {
				bad(f("table"), "table %q is already written by pipeline %q; one table has one writer", t, other)
			}
			tables[t] = p.Name
		}
		if p.Format != "json" {
			bad(f("format"), "must be json, got %q", p.Format)
		}
		if err := checkStart(p.Start); err != nil {
			bad(f("start"), "%v", err)
		}
		if p.CommitInterval.D() < 100*time.Millisecond {
			bad(f("commit_interval"), "must be at least 100ms, got %s", p.CommitInterval)
		}
		if p.TargetFileSize < 1<<20 {
			bad(f("target_file_size"), "must be at least 1MiB, got %d", p.TargetFileSize)
		}
		if err := checkOnDataLoss(p.OnDataLoss); err != nil {
			bad(f("on_data_loss"), "%v", err)
		}
		if p.Workers < 0 || p.Workers > 256 {
			bad(f("workers"), "must be 0 (one per CPU) to 256, got %d", p.Workers)
		}
		metaOK := true
		for j, m := range p.KafkaMetadata {
			if _, err := schema.MetaColumnName(m); err != nil {
				bad(fmt.Sprintf("pipelines[%d].kafka_metadata[%d]", i, j), "%v", err)
				metaOK = false
			}
		}
		if !metaOK {
			continue
		}
		sch, err := p.DeclaredSchema()
		if err != nil {
			bad(f("schema"), "%v", err)
			continue
		}
		if len(p.Schema) > 0 {
			if _, err := schema.Partition(p.PartitionBy, sch); err != nil {
				bad(f("partition_by"), "%v", err)
			}
		}
	}
	return errors.Join(errs...)
}

func checkTableName(t string) error {
	parts := strings.Split(t, ".")
	if len(parts) < 2 {
		return fmt.Errorf("must be namespace.table, got %q", t)
	}
	for _, p := range parts {
		if p == "" {
			return fmt.Errorf("must be namespace.table with no empty part, got %q", t)
		}
	}
	return nil
}

func checkStart(s string) error {
	switch s {
	case "earliest", "latest":
		return nil
	}
	if _, err := time.Parse(time.RFC3339, s); err != nil {
		return fmt.Errorf("must be earliest, latest or an RFC 3339 timestamp, got %q", s)
	}
	return nil
}

func checkOnDataLoss(s string) error {
	switch s {
	case OnDataLossFail, OnDataLossSkip:
		return nil
	}
	return fmt.Errorf("must be %s or %s, got %q", OnDataLossFail, OnDataLossSkip, s)
}

// StartTime returns the timestamp of a timestamp start, if it is one.
func StartTime(s string) (time.Time, bool) {
	t, err := time.Parse(time.RFC3339, s)
	return t, err == nil
}

// DeclaredSchema builds the Iceberg schema the pipeline declares (columns
// plus Kafka metadata columns). With no columns declared it holds only the
// metadata columns; the table's schema is then inferred.
func (p Pipeline) DeclaredSchema() (*iceberg.Schema, error) {
	cols := make([]schema.Column, len(p.Schema))
	for i, c := range p.Schema {
		cols[i] = schema.Column{Name: c.Name, Type: c.Type, Required: c.Required, Doc: c.Doc}
	}
	return schema.Build(cols, p.KafkaMetadata)
}

func (c *Config) validateCluster(bad func(field, format string, args ...any)) {
	cl := c.Cluster
	if strings.ContainsAny(cl.NodeID, " \t\n/") {
		bad("cluster.node_id", "must not contain whitespace or '/', got %q", cl.NodeID)
	}
	for field, addr := range map[string]string{
		"cluster.raft_addr": cl.RaftAddr, "cluster.api_addr": cl.APIAddr,
	} {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			bad(field, "must be host:port, got %q", addr)
		}
	}
	for field, addr := range map[string]string{
		"cluster.raft_advertise_addr": cl.RaftAdvertiseAddr, "cluster.api_advertise_addr": cl.APIAdvertiseAddr,
	} {
		if addr == "" {
			continue
		}
		if h, p, err := net.SplitHostPort(addr); err != nil || h == "" || p == "0" {
			bad(field, "must be a reachable host:port (no empty host, no port 0), got %q", addr)
		}
	}
	for i, j := range cl.Join {
		if _, _, err := net.SplitHostPort(j); err != nil {
			bad(fmt.Sprintf("cluster.join[%d]", i), "must be the host:port of a member's api_addr, got %q", j)
		}
	}
	if cl.HeartbeatInterval.D() <= 0 {
		bad("cluster.heartbeat_interval", "must be a positive duration, got %s", cl.HeartbeatInterval)
	}
	if cl.DeadAfter.D() < 2*cl.HeartbeatInterval.D() {
		bad("cluster.dead_after", "must be at least twice heartbeat_interval (%s), got %s", cl.HeartbeatInterval, cl.DeadAfter)
	}
	if (cl.TLS.CertFile == "") != (cl.TLS.KeyFile == "") {
		bad("cluster.tls", "cert_file and key_file must be given together")
	}
	if cl.TLS.CAFile != "" && cl.TLS.CertFile == "" {
		bad("cluster.tls.ca_file", "needs cert_file and key_file")
	}
	if strings.HasPrefix(c.Catalog.URI, "sqlite::memory:") {
		bad("catalog.uri", "an in-memory catalog cannot be shared by cluster members; use a SQLite file, Postgres or REST")
	}
}
