package config

import (
	"errors"
	"fmt"

	"github.com/floelake/floe/timetravel/api"

	"github.com/floelake/floe/ingest"
	"github.com/floelake/floe/internal/conf"
)

// Validate checks every section with its component's Validate, each
// problem nested under the section's path, then the rules that span
// components, and returns all problems at once, each a *conf.FieldError
// naming the field's path in the file.
func (c *Config) Validate() error {
	return c.validate(func(i int, f inheritedField) bool { return f.same(c.Pipelines[i], c.Defaults) })
}

// validate is Validate, told which pipeline fields hold the defaults'
// value: a bad default is reported once, under defaults, not again in each
// pipeline that took it.
func (c *Config) validate(inherited func(pipeline int, f inheritedField) bool) error {
	var p conf.Problems
	p.Nest("node", c.Node.Validate())
	p.Nest("cluster", c.Cluster.Validate())
	if c.Cluster.Enabled && len(c.Node.API.Tokens) > 0 && !hasAdminToken(c.Node.API.Tokens) {
		p.Addf("node.api.tokens", "a cluster member needs an admin token: the members send it to each other's cluster API")
	}
	if c.Cluster.Enabled && c.Catalog.InMemory() {
		p.Addf("catalog.uri", "an in-memory catalog cannot be shared by cluster members; use a SQLite file, Postgres or REST")
	}

	// A node without pipelines would run, do nothing and look healthy.
	if len(c.Pipelines) == 0 {
		p.Addf("pipelines", "at least one pipeline is required")
	}
	if len(c.Pipelines) > 0 && len(c.Kafka.Brokers) == 0 {
		p.Addf("kafka.brokers", "must list at least one host:port")
	}
	p.Nest("kafka", c.Kafka.Validate())
	p.Nest("catalog", c.Catalog.Validate())
	p.Nest("storage", c.Storage.Validate())
	p.Nest("maintenance", c.Maintenance.Validate())
	defaults := c.Defaults.Validate()
	p.Nest("defaults", defaults)
	badDefault := map[string]bool{}
	for _, fe := range conf.Fields(defaults) {
		badDefault[fe.Field] = true
	}

	// One name per pipeline, and one writer per table.
	names := map[string]bool{}
	tables := map[string]string{}
	for i, pc := range c.Pipelines {
		at := fmt.Sprintf("pipelines[%d]", i)
		if names[pc.Name] {
			p.Addf(at+".name", "duplicate pipeline name %q", pc.Name)
		}
		names[pc.Name] = true
		p.Nest(at, dropFields(pc.Validate(), func(fe *conf.FieldError) bool {
			f, ok := inheritedFields[fe.Field]
			return ok && badDefault[fe.Field] && inherited(i, f)
		}))
		for _, t := range []string{pc.Table, pc.DeadLetter()} {
			if other, ok := tables[t]; ok {
				p.Addf(at+".table", "table %q is already written by pipeline %q; one table has one writer", t, other)
			}
			tables[t] = pc.Name
		}
	}
	return p.Err()
}

// dropFields returns err without the field errors drop selects.
func dropFields(err error, drop func(*conf.FieldError) bool) error {
	var kept []error
	for _, e := range leaves(err) {
		var fe *conf.FieldError
		if errors.As(e, &fe) && drop(fe) {
			continue
		}
		kept = append(kept, e)
	}
	return errors.Join(kept...)
}

// leaves lists the errors in a tree of joined errors.
func leaves(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, leaves(e)...)
		}
		return out
	}
	if err == nil {
		return nil
	}
	return []error{err}
}

// inheritedField is a pipeline field that FillDefaults takes from Defaults
// when the pipeline leaves it unset.
type inheritedField struct {
	name string
	// unset reports whether the pipeline leaves the field to the defaults.
	unset func(ingest.PipelineConfig) bool
	// same reports whether the pipeline's value is the defaults' one.
	same func(ingest.PipelineConfig, Defaults) bool
}

var inheritedFields = map[string]inheritedField{
	"commit_interval": {"commit_interval",
		func(p ingest.PipelineConfig) bool { return p.CommitInterval == 0 },
		func(p ingest.PipelineConfig, d Defaults) bool { return p.CommitInterval == d.CommitInterval }},
	"target_file_size": {"target_file_size",
		func(p ingest.PipelineConfig) bool { return p.TargetFileSize == 0 },
		func(p ingest.PipelineConfig, d Defaults) bool { return p.TargetFileSize == d.TargetFileSize }},
	"start": {"start",
		func(p ingest.PipelineConfig) bool { return p.Start == "" },
		func(p ingest.PipelineConfig, d Defaults) bool { return p.Start == d.Start }},
	"on_data_loss": {"on_data_loss",
		func(p ingest.PipelineConfig) bool { return p.OnDataLoss == "" },
		func(p ingest.PipelineConfig, d Defaults) bool { return p.OnDataLoss == d.OnDataLoss }},
	"format_version": {"format_version",
		func(p ingest.PipelineConfig) bool { return p.FormatVersion == 0 },
		func(p ingest.PipelineConfig, d Defaults) bool { return p.FormatVersion == d.FormatVersion }},
}

// unsetInherited lists, for each pipeline, the fields it leaves to the
// defaults (before FillDefaults).
func (c *Config) unsetInherited() []map[string]bool {
	out := make([]map[string]bool, len(c.Pipelines))
	for i, pc := range c.Pipelines {
		out[i] = map[string]bool{}
		for name, f := range inheritedFields {
			out[i][name] = f.unset(pc)
		}
	}
	return out
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
	p.Nest("api", n.API.Validate())
	return p.Err()
}

// Validate reports every bad field, named relative to the defaults section,
// by the pipelines' own rules: it validates a pipeline made of the defaults
// alone and keeps what it says about them.
func (d Defaults) Validate() error {
	p := ingest.PipelineConfig{
		Topics: []string{"topic"}, Table: "namespace.table", Format: "json",
		CommitInterval: d.CommitInterval, TargetFileSize: d.TargetFileSize,
		Start: d.Start, OnDataLoss: d.OnDataLoss, FormatVersion: d.FormatVersion,
	}
	return dropFields(p.Validate(), func(fe *conf.FieldError) bool {
		_, ok := inheritedFields[fe.Field]
		return !ok
	})
}

func hasAdminToken(ts []api.Token) bool {
	for _, t := range ts {
		if t.Scope == api.ScopeAdmin {
			return true
		}
	}
	return false
}
