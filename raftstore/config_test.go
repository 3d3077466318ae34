package raftstore

import (
	"crypto/tls"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	valid := Config{NodeID: "n1", BindAddr: "127.0.0.1:7001", DataDir: "/tmp/x"}
	if err := valid.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	tests := []struct {
		name  string
		edit  func(*Config)
		field string
	}{
		{"empty NodeID", func(c *Config) { c.NodeID = "" }, "NodeID"},
		{"NodeID with space", func(c *Config) { c.NodeID = "a b" }, "NodeID"},
		{"no BindAddr", func(c *Config) { c.BindAddr = "" }, "BindAddr"},
		{"BindAddr without port", func(c *Config) { c.BindAddr = "127.0.0.1" }, "BindAddr"},
		{"BindAddr bad port", func(c *Config) { c.BindAddr = "127.0.0.1:70000" }, "BindAddr"},
		{"wildcard bind without advertise", func(c *Config) { c.BindAddr = "0.0.0.0:7001" }, "AdvertiseAddr"},
		{"advertise unspecified", func(c *Config) { c.AdvertiseAddr = "[::]:7001" }, "AdvertiseAddr"},
		{"advertise port 0", func(c *Config) { c.AdvertiseAddr = "10.0.0.1:0" }, "AdvertiseAddr"},
		{"no DataDir", func(c *Config) { c.DataDir = "" }, "DataDir"},
		{"TLS without certs", func(c *Config) { c.TLS = &tls.Config{} }, "TLS"},
		{"heartbeat too low", func(c *Config) { c.HeartbeatTimeout = time.Millisecond }, "HeartbeatTimeout"},
		{"negative heartbeat", func(c *Config) { c.HeartbeatTimeout = -time.Second }, "HeartbeatTimeout"},
		{"election below heartbeat", func(c *Config) { c.HeartbeatTimeout = time.Second; c.ElectionTimeout = 600 * time.Millisecond }, "ElectionTimeout"},
		{"lease above heartbeat", func(c *Config) { c.LeaderLeaseTimeout = time.Second }, "LeaderLeaseTimeout"},
		{"commit timeout too low", func(c *Config) { c.CommitTimeout = time.Microsecond }, "CommitTimeout"},
		{"snapshot interval too low", func(c *Config) { c.SnapshotInterval = time.Millisecond }, "SnapshotInterval"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid
			tt.edit(&c)
			err := c.Validate()
			var ce *ConfigError
			if !errors.As(err, &ce) || !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("Validate: %v, want a ConfigError", err)
			}
			if ce.Field != tt.field || !strings.Contains(err.Error(), "Config."+tt.field) {
				t.Fatalf("error %q names field %q, want %q", err, ce.Field, tt.field)
			}
			if ce.Allowed == "" {
				t.Fatalf("error %q does not say what is allowed", err)
			}
		})
	}

	// Wildcard bind with an advertise address, port 0 and hostnames are fine.
	for _, c := range []Config{
		{NodeID: "n1", BindAddr: "0.0.0.0:7001", AdvertiseAddr: "floe-0.floe:7001", DataDir: "d"},
		{NodeID: "n1", BindAddr: "127.0.0.1:0", DataDir: "d"},
		{NodeID: "n1", BindAddr: "localhost:7001", DataDir: "d"},
	} {
		if err := c.Validate(); err != nil {
			t.Errorf("%+v: %v", c, err)
		}
	}
}

func TestConfigDefaults(t *testing.T) {
	c := Config{NodeID: "n1"}.withDefaults(false)
	if c.HeartbeatTimeout != DefaultHeartbeatTimeout || c.ElectionTimeout != DefaultElectionTimeout ||
		c.LeaderLeaseTimeout != DefaultLeaderLeaseTimeout || c.CommitTimeout != DefaultCommitTimeout ||
		c.SnapshotThreshold != DefaultSnapshotThreshold || c.SnapshotInterval != DefaultSnapshotInterval ||
		c.TrailingLogs != DefaultTrailingLogs || c.Logger == nil {
		t.Fatalf("defaults not applied: %+v", c)
	}
	// Set fields are kept.
	c = Config{HeartbeatTimeout: 2 * time.Second}.withDefaults(false)
	if c.HeartbeatTimeout != 2*time.Second {
		t.Fatal("HeartbeatTimeout overwritten")
	}
}
