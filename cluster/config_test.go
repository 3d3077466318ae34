package cluster

import (
	"testing"
	"time"

	"github.com/floelake/floe/internal/conf"
	"github.com/floelake/floe/internal/conf/conftest"
)

func TestConfigValidate(t *testing.T) {
	enabled := func(f func(*Config)) Config {
		c := DefaultConfig()
		c.Enabled = true
		f(&c)
		return c
	}
	conftest.RequireValid(t, DefaultConfig().Validate())
	conftest.RequireValid(t, enabled(func(c *Config) {
		c.NodeID, c.RaftAdvertiseAddr, c.APIAdvertiseAddr = "n1", "10.0.0.1:7946", "n1.example.com:7947"
		c.Join = []string{"10.0.0.2:7947"}
		c.TLS = TLSConfig{CertFile: "c.pem", KeyFile: "k.pem", CAFile: "ca.pem"}
	}).Validate())
	// A disabled cluster's settings are unused, so not checked.
	conftest.RequireValid(t, Config{RaftAddr: "nohostport"}.Validate())

	cases := []struct {
		name          string
		cfg           Config
		field, reason string
	}{
		{"node id", enabled(func(c *Config) { c.NodeID = "a b" }), "node_id", "must not contain whitespace or '/'"},
		{"raft addr", enabled(func(c *Config) { c.RaftAddr = "nohostport" }), "raft_addr", `must be host:port, got "nohostport"`},
		{"api addr", enabled(func(c *Config) { c.APIAddr = "" }), "api_addr", "must be host:port"},
		{"raft advertise", enabled(func(c *Config) { c.RaftAdvertiseAddr = ":7946" }), "raft_advertise_addr", "no empty host"},
		{"api advertise", enabled(func(c *Config) { c.APIAdvertiseAddr = "h:0" }), "api_advertise_addr", "no port 0"},
		{"join", enabled(func(c *Config) { c.Join = []string{"a:1", "b"} }), "join[1]", "host:port of a member's api_addr"},
		{"heartbeat", enabled(func(c *Config) { c.HeartbeatInterval = 0 }), "heartbeat_interval", "must be a positive duration"},
		{"dead after", enabled(func(c *Config) { c.DeadAfter = conf.Duration(time.Second) }), "dead_after", "at least twice heartbeat_interval (1s), got 1s"},
		{"tls pair", enabled(func(c *Config) { c.TLS.CertFile = "c.pem" }), "tls", "cert_file and key_file must be given together"},
		{"tls ca", enabled(func(c *Config) { c.TLS.CAFile = "ca.pem" }), "tls.ca_file", "needs cert_file and key_file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			conftest.RequireField(t, c.cfg.Validate(), c.field, c.reason)
		})
	}
}
