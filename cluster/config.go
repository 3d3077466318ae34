package cluster

import (
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/floelake/floe/internal/conf"
)

// Config makes the node a member of a raft-replicated floe cluster (the
// cluster section): the members share the pipelines' partitions, and the
// raft leader commits every table. When disabled, the node runs its
// pipelines alone.
type Config struct {
	Enabled bool `yaml:"enabled"`
	// NodeID names the node in the cluster; it must never change for a data
	// directory. Default: the host name.
	NodeID string `yaml:"node_id"`
	// RaftAddr is host:port the raft transport listens on;
	// RaftAdvertiseAddr is what other members dial (default RaftAddr).
	RaftAddr          string `yaml:"raft_addr"`
	RaftAdvertiseAddr string `yaml:"raft_advertise_addr"`
	// APIAddr is host:port the cluster gRPC service listens on (proposals
	// forwarded to the leader, join, leave, status); APIAdvertiseAddr is
	// what other members and the CLI dial (default APIAddr).
	APIAddr          string `yaml:"api_addr"`
	APIAdvertiseAddr string `yaml:"api_advertise_addr"`
	// Join lists API addresses of existing members. A node with no raft
	// state and no join addresses forms a new cluster; with them, it asks to
	// be added and never forms one of its own.
	Join []string `yaml:"join"`
	// HeartbeatInterval is how often a node reports it is alive; a node
	// not heard from for DeadAfter loses its partitions.
	HeartbeatInterval conf.Duration `yaml:"heartbeat_interval"`
	DeadAfter         conf.Duration `yaml:"dead_after"`
	// TLS secures the raft transport and the cluster API with the same
	// certificate (mutual TLS when ca_file is set).
	TLS TLSConfig `yaml:"tls"`
}

// TLSConfig is a certificate a server presents and, optionally, the CA its
// peers' certificates must chain to.
type TLSConfig struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	CAFile   string `yaml:"ca_file"`
}

// DefaultConfig is a disabled cluster listening on localhost, with a
// heartbeat a second and members dead after five silent seconds.
func DefaultConfig() Config {
	return Config{
		RaftAddr:          "127.0.0.1:7946",
		APIAddr:           "127.0.0.1:7947",
		HeartbeatInterval: conf.Duration(time.Second),
		DeadAfter:         conf.Duration(5 * time.Second),
	}
}

// Validate reports every bad field, named relative to the cluster section.
// A disabled cluster is not checked: its settings are unused.
func (c Config) Validate() error {
	if !c.Enabled {
		return nil
	}
	var p conf.Problems
	if strings.ContainsAny(c.NodeID, " \t\n/") {
		p.Addf("node_id", "must not contain whitespace or '/', got %q", c.NodeID)
	}
	for _, a := range []struct{ field, addr string }{
		{"raft_addr", c.RaftAddr}, {"api_addr", c.APIAddr},
	} {
		if _, _, err := net.SplitHostPort(a.addr); err != nil {
			p.Addf(a.field, "must be host:port, got %q", a.addr)
		}
	}
	for _, a := range []struct{ field, addr string }{
		{"raft_advertise_addr", c.RaftAdvertiseAddr}, {"api_advertise_addr", c.APIAdvertiseAddr},
	} {
		if a.addr == "" {
			continue
		}
		if h, port, err := net.SplitHostPort(a.addr); err != nil || h == "" || port == "0" {
			p.Addf(a.field, "must be a reachable host:port (no empty host, no port 0), got %q", a.addr)
		}
	}
	for i, j := range c.Join {
		if _, _, err := net.SplitHostPort(j); err != nil {
			p.Addf(fmt.Sprintf("join[%d]", i), "must be the host:port of a member's api_addr, got %q", j)
		}
	}
	if c.HeartbeatInterval.D() <= 0 {
		p.Addf("heartbeat_interval", "must be a positive duration, got %s", c.HeartbeatInterval)
	}
	if c.DeadAfter.D() < 2*c.HeartbeatInterval.D() {
		p.Addf("dead_after", "must be at least twice heartbeat_interval (%s), got %s", c.HeartbeatInterval, c.DeadAfter)
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		p.Addf("tls", "cert_file and key_file must be given together")
	}
	if c.TLS.CAFile != "" && c.TLS.CertFile == "" {
		p.Addf("tls.ca_file", "needs cert_file and key_file")
	}
	return p.Err()
}
