package config

import (
	"fmt"

	"github.com/floelake/floe/ingest"
	"github.com/floelake/floe/internal/conf"
)

// Validate checks every section with its component's Validate, each
// problem nested under the section's path, then the rules that span
// components, and returns all problems at once, each a *conf.FieldError
// naming the field's path in the file.
func (c *Config) Validate() error {
	var p conf.Problems
	p.Nest("node", c.Node.Validate())
	p.Nest("cluster", c.Cluster.Validate())
	if c.Cluster.Enabled && c.Catalog.InMemory() {
		p.Addf("catalog.uri", "an in-memory catalog cannot be shared by cluster members; use a SQLite file, Postgres or REST")
	}

	if len(c.Pipelines) > 0 && len(c.Kafka.Brokers) == 0 {
		p.Addf("kafka.brokers", "must list at least one host:port")
	}
	p.Nest("kafka", c.Kafka.Validate())
	p.Nest("catalog", c.Catalog.Validate())
	p.Nest("storage", c.Storage.Validate())
	p.Nest("defaults", c.Defaults.Validate())

	// One name per pipeline, and one writer per table.
	names := map[string]bool{}
	tables := map[string]string{}
	for i, pc := range c.Pipelines {
		at := fmt.Sprintf("pipelines[%d]", i)
		if names[pc.Name] {
			p.Addf(at+".name", "duplicate pipeline name %q", pc.Name)
		}
		names[pc.Name] = true
		p.Nest(at, pc.Validate())
		for _, t := range []string{pc.Table, pc.DeadLetter()} {
			if other, ok := tables[t]; ok {
				p.Addf(at+".table", "table %q is already written by pipeline %q; one table has one writer", t, other)
			}
			tables[t] = pc.Name
		}
	}
	return p.Err()
}

// Validate reports every bad field, named relative to the node section.
func (n Node) Validate() error {
	var p conf.Problems
	switch n.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		p.Addf("log_level", "must be one of debug, info, warn, error; got %q", n.LogLevel)
	}
	if n.ShutdownTimeout.D() <= 0 {
		p.Addf("shutdown_timeout", "must be a positive duration, got %s", n.ShutdownTimeout)
	}
	return p.Err()
}

// Validate reports every bad field, named relative to the defaults section,
// by the pipelines' rules; the defaults are checked again in each pipeline
// that takes them.
func (d Defaults) Validate() error {
	var p conf.Problems
	if d.CommitInterval.D() < ingest.MinCommitInterval {
		p.Addf("commit_interval", "must be at least %s, got %s", ingest.MinCommitInterval, d.CommitInterval)
	}
	if err := ingest.CheckOnDataLoss(d.OnDataLoss); err != nil {
		p.Addf("on_data_loss", "%v", err)
	}
	return p.Err()
}
