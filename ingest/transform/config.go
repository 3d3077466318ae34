package transform

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
		c.State == StateConfig{})
}
