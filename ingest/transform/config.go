package transform

import "github.com/floelake/floe/internal/conf"

// Config is a pipeline's transform section: what happens to a record between
// decoding it (into the pipeline's declared schema, the input) and writing
// its row to the table (the output).
type Config struct {
	// Filter is a CEL expression over the input columns; a record whose
	// filter is false (or null) is left out of the table. Empty: every
	// record is kept.
	Filter string `yaml:"filter"`
	// Columns are computed columns, appended after the input columns the
	// output keeps, in this order.
	Columns []Column `yaml:"columns"`
	// Rename gives input columns other names in the output: input name to
	// output name.
	Rename map[string]string `yaml:"rename"`
	// Drop lists input columns the output leaves out.
	Drop []string `yaml:"drop"`
	// Window aggregates the output into event-time windows: the table
	// holds one row per group and window (see WindowConfig).
	Window *WindowConfig `yaml:"window"`
	// State tunes the state of the window aggregation.
	State StateConfig `yaml:"state"`
	// Dedup drops records whose key was seen on their Kafka partition
	// within a horizon (see DedupConfig).
	Dedup *DedupConfig `yaml:"dedup"`
}

// DedupConfig drops duplicates: a record that passes the filter (and whose
// computed columns compute) is left out when a record with the same key was kept, earlier on its Kafka
// partition, while the partition's clock (the newest Kafka timestamp read
// from it) was within Horizon of its clock now. The decision depends only
// on the partition's log, so it is the same on every replay: restarts and
// partition moves neither let a duplicate through nor drop a record twice.
type DedupConfig struct {
	// Key lists CEL expressions over the input columns (a column name is
	// one) whose values together are the record's key; null is a value.
	Key []string `yaml:"key"`
	// Horizon is how long a key is remembered, in the partition's Kafka
	// time.
	Horizon conf.Duration `yaml:"horizon"`
}

// Column is one computed column.
type Column struct {
	Name string `yaml:"name"`
	// Expr is a CEL expression over the input columns.
	Expr string `yaml:"expr"`
	// Type is the column's Iceberg type: boolean, int, long, float, double,
	// string, binary, date, timestamp or timestamptz. Empty: the type of
	// the expression (int: long, double: double, bool: boolean, string:
	// string, bytes: binary, timestamp: timestamptz).
	Type string `yaml:"type"`
}

// Empty reports whether the section asks for nothing: the output is the
// input.
func (c *Config) Empty() bool {
	return c == nil || (c.Filter == "" && len(c.Columns) == 0 && len(c.Rename) == 0 && len(c.Drop) == 0 && c.Window == nil &&
		c.State == StateConfig{} && c.Dedup == nil)
}
