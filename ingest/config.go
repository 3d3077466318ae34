package ingest

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"

	"github.com/floelake/floe/ingest/registry"
	"github.com/floelake/floe/ingest/transform"
	"github.com/floelake/floe/internal/conf"
	"github.com/floelake/floe/internal/schema"
)

// KafkaConfig is the source cluster (the kafka section).
type KafkaConfig struct {
	Brokers  []string `yaml:"brokers"`
	ClientID string   `yaml:"client_id"`
	// Group is the consumer group floe commits offsets to after each Iceberg
	// commit. It is for lag monitoring only: progress lives in Iceberg.
	Group string     `yaml:"group"`
	TLS   TLSConfig  `yaml:"tls"`
	SASL  SASLConfig `yaml:"sasl"`
	// FetchMaxBytes caps one fetch response.
	FetchMaxBytes conf.ByteSize `yaml:"fetch_max_bytes"`
}

// TLSConfig configures a TLS client connection.
type TLSConfig struct {
	Enabled            bool   `yaml:"enabled"`
	CAFile             string `yaml:"ca_file"`
	CertFile           string `yaml:"cert_file"`
	KeyFile            string `yaml:"key_file"`
	ServerName         string `yaml:"server_name"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// SASLConfig configures Kafka authentication.
type SASLConfig struct {
	// Mechanism is empty (no SASL), PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.
	Mechanism string `yaml:"mechanism"`
	Username  string `yaml:"username"`
	Password  string `yaml:"password"`
}

// DefaultKafkaConfig names the client and the lag-monitoring group floe and
// fetches up to 16MiB at a time. Brokers have no default.
func DefaultKafkaConfig() KafkaConfig {
	return KafkaConfig{ClientID: "floe", Group: "floe", FetchMaxBytes: 16 << 20}
}

// Validate reports every bad field, named relative to the kafka section.
// Brokers may be empty: a node without pipelines reads no Kafka, so whoever
// composes the configuration requires them when there are pipelines.
func (k KafkaConfig) Validate() error {
	var p conf.Problems
	for i, b := range k.Brokers {
		if !strings.Contains(b, ":") {
			p.Addf(fmt.Sprintf("brokers[%d]", i), "must be host:port, got %q", b)
		}
	}
	if k.Group == "" {
		p.Addf("group", "must not be empty (offsets are committed there for lag monitoring)")
	}
	switch strings.ToUpper(k.SASL.Mechanism) {
	case "":
	case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
		if k.SASL.Username == "" {
			p.Addf("sasl.username", "is required with mechanism %s", k.SASL.Mechanism)
		}
	default:
		p.Addf("sasl.mechanism", "must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, got %q", k.SASL.Mechanism)
	}
	if (k.TLS.CertFile == "") != (k.TLS.KeyFile == "") {
		p.Addf("tls", "cert_file and key_file must be given together")
	}
	if k.FetchMaxBytes < 1<<20 {
		p.Addf("fetch_max_bytes", "must be at least 1MiB, got %d", k.FetchMaxBytes)
	}
	return p.Err()
}

// Column declares one column of a table schema.
type Column struct {
	Name string `yaml:"name"`
	// Type is an Iceberg type: boolean, int, long, float, double,
	// decimal(P,S), date, time, timestamp, timestamptz, string, uuid,
	// binary, fixed[L], struct<name:type,...>, list<type>, map<string,type>.
	Type     string `yaml:"type"`
	Required bool   `yaml:"required"`
	Doc      string `yaml:"doc"`
}

// PipelineConfig consumes topics into one table (and its dead-letter table):
// one element of the pipelines section.
type PipelineConfig struct {
	Name   string   `yaml:"name"`
	Topics []string `yaml:"topics"`
	// Table is namespace.table (namespaces may be dotted: a.b.table).
	Table string `yaml:"table"`
	// DeadLetterTable receives records that do not decode; default <table>__dlq.
	DeadLetterTable string `yaml:"dead_letter_table"`
	// Format of record values: json, avro or protobuf. Avro and protobuf
	// records are in the schema registry's wire format (a zero byte, the
	// writer schema's id, then the payload; protobuf adds the message
	// indexes), and need the registry section.
	Format string `yaml:"format"`
	// Registry is the schema registry the avro and protobuf formats read
	// writer schemas from (URLs, TLS, basic auth, timeout).
	Registry registry.Config `yaml:"registry"`
	// SchemaEvolution is what a record whose writer schema has fields or
	// types the table lacks does: strict (the record is a dead letter, or
	// the fields are ignored) or add (new fields become new optional
	// columns, and int->long, float->double and decimal precision widening
	// are applied to the table before the first row that needs them is
	// committed). Default: add for avro and protobuf without a transform
	// or mode cdc, strict otherwise; json is always strict. With mode cdc
	// (avro), the writer schema add takes is the change event's after
	// record.
	SchemaEvolution string `yaml:"schema_evolution"`
	// Start is where to begin when the table has no committed offsets:
	// earliest, latest, or an RFC 3339 timestamp.
	Start          string        `yaml:"start"`
	CommitInterval conf.Duration `yaml:"commit_interval"`
	TargetFileSize conf.ByteSize `yaml:"target_file_size"`
	// Schema declares the columns; when empty, floe infers it from the first
	// records when it creates the table.
	Schema []Column `yaml:"schema"`
	// PartitionBy lists partition transforms: col, identity(col), year(col),
	// month(col), day(col), hour(col), bucket(N, col), truncate(W, col).
	PartitionBy []string `yaml:"partition_by"`
	// KafkaMetadata adds _kafka_<name> columns: topic, partition, offset,
	// timestamp, key.
	KafkaMetadata []string `yaml:"kafka_metadata"`
	// TableProperties are set on tables floe creates.
	TableProperties map[string]string `yaml:"table_properties"`
	// Key lists the key columns of a table that keeps the newest row per
	// key: a record whose key is already in the table replaces that row.
	// They are the table's Iceberg identifier fields: required top-level
	// columns of the declared schema. Empty: every record is appended.
	Key []string `yaml:"key"`
	// Mode is how a keyed pipeline reads its records: upsert (the
	// default: each record is the key's new row; a record with a null
	// value, a Kafka tombstone, deletes the key named by the record's
	// Kafka key) or cdc (each record is a Debezium change event, with or
	// without its schema wrapper: c, r and u make "after" the key's row,
	// d deletes the key of "before"; tombstones delete as in upsert).
	Mode string `yaml:"mode"`
	// VersionColumn, for a keyed pipeline, names a column (int, long, date
	// or timestamp) that decides which row of a key is the newest: the
	// highest version wins, Kafka order among equal versions. Empty: Kafka
	// order alone (within a partition) decides.
	VersionColumn string `yaml:"version_column"`
	// VersionFrom, in cdc mode, fills the version column from the change
	// event rather than the row: a dotted path into the Debezium event
	// (after its schema wrapper), such as ts_ms, source.ts_ms or
	// source.lsn. A delete event then carries the version of the
	// deletion, so a late change older than it cannot bring the key back.
	VersionFrom string `yaml:"version_from"`
	// DeleteMode, for a keyed pipeline, is how a commit deletes the rows
	// its records replace: position (the default: a key index on the
	// table writer places every key's row, and the commit deletes it by
	// position, with position-delete files or deletion vectors) or
	// equality (no index: the commit deletes the older rows of its keys
	// with equality deletes on the key columns, which readers apply by
	// comparing keys). Equality cannot be combined with VersionColumn.
	DeleteMode string `yaml:"delete_mode"`
	// KeyIndexMemory, for a keyed pipeline with delete_mode position, is
	// the memory its key index may hold (default 1GiB, about 25 million
	// keys of 8 bytes). Beyond it, the keys of the oldest files move to a
	// file under the node's data directory, read back when late data
	// updates them.
	KeyIndexMemory conf.ByteSize `yaml:"key_index_memory"`
	// FormatVersion is the Iceberg format version of the tables floe
	// creates: 2 or 3. A keyed table deletes the rows it replaces with
	// position-delete files in version 2 and with deletion vectors in
	// version 3. An existing table keeps the version it has.
	FormatVersion int `yaml:"format_version"`
	// Workers is the number of decode/write goroutines; default GOMAXPROCS.
	Workers int `yaml:"workers"`
	// OnDataLoss is what to do when Kafka no longer has records the tables
	// have not committed (retention deleted them, or an unclean leader
	// election replaced them): fail (stop and say so) or skip (resume at
	// the first offset Kafka has and record the skipped offsets in the
	// snapshot summary as floe.skipped).
	OnDataLoss string `yaml:"on_data_loss"`
	// InferConflicts is what schema inference (no schema declared) does
	// with a field whose first records disagree on its type in a way no
	// Iceberg type takes both (a number and a string, an object and a
	// list): fail (the default: the pipeline does not start and says
	// which field; declare the schema) or string (the column is a string
	// and takes every value as its JSON text). Numbers widen on their own:
	// a field seen as 1 and as 1.5 is a double.
	InferConflicts string `yaml:"infer_conflicts"`
	// Transform filters records and computes, renames and drops columns
	// between decoding a record (into the declared schema, which a
	// transform needs) and writing its row (see package transform).
	Transform *transform.Config `yaml:"transform"`
}

// Transforms reports whether the pipeline transforms its records: the
// table's columns are then the transform's output, not the declared
// schema.
func (p PipelineConfig) Transforms() bool { return !p.Transform.Empty() }

// CompileTransform compiles the pipeline's transform against its declared
// schema (the records' columns); nil when it has none.
func (p PipelineConfig) CompileTransform() (*transform.Program, error) {
	if !p.Transforms() {
		return nil, nil
	}
	in, err := p.DeclaredSchema()
	if err != nil {
		return nil, err
	}
	return transform.Compile(*p.Transform, in)
}

// TableSchema is the schema of the table the pipeline creates when it
// declares its schema: the declared one, or its transform's output.
func (p PipelineConfig) TableSchema() (*iceberg.Schema, error) {
	prog, err := p.CompileTransform()
	if err != nil || prog == nil {
		if err != nil {
			return nil, conf.Nest("transform", err)
		}
		return p.DeclaredSchema()
	}
	return prog.TableSchema(p.Key)
}

// Windowed reports whether the pipeline aggregates its records into
// event-time windows: its table is then keyed by the group columns and
// window_start (TableKey), and its rows are the windows.
func (p PipelineConfig) Windowed() bool { return p.Transform != nil && p.Transform.Window != nil }

// TableKey is the key of the pipeline's table: Key, or a window table's
// group columns and window_start.
func (p PipelineConfig) TableKey() []string {
	if !p.Windowed() {
		return p.Key
	}
	key := slices.Clone(p.Transform.Window.GroupBy)
	return append(key, transform.ColWindowStart)
}

// Inference conflict policies (PipelineConfig.InferConflicts; empty is
// fail).
const (
	InferConflictsFail   = "fail"
	InferConflictsString = "string"
)

// Data-loss policies (PipelineConfig.OnDataLoss).
const (
	OnDataLossFail = "fail"
	OnDataLossSkip = "skip"
)

// DefaultKeyIndexMemory is the memory a keyed table's key index holds
// unless the pipeline sets key_index_memory.
const DefaultKeyIndexMemory = 1 << 30

// KeyIndexBudget is the memory the pipeline's key index may hold.
func (p PipelineConfig) KeyIndexBudget() int64 {
	if p.KeyIndexMemory > 0 {
		return int64(p.KeyIndexMemory)
	}
	return DefaultKeyIndexMemory
}

// DefaultFormatVersion is the Iceberg format version of the tables floe
// creates unless a pipeline sets format_version: version 2, which every
// engine reads.
const DefaultFormatVersion = 2

// MinCommitInterval is the shortest commit interval a pipeline may have.
const MinCommitInterval = 100 * time.Millisecond

// minTargetFileSize is the smallest target size of a data file.
const minTargetFileSize = 1 << 20

// DeadLetter returns the dead-letter table name.
func (p PipelineConfig) DeadLetter() string {
	if p.DeadLetterTable != "" {
		return p.DeadLetterTable
	}
	return p.Table + "__dlq"
}

// Keyed reports whether the pipeline's table keeps the newest row per key
// (Key lists columns) rather than appending every record.
func (p PipelineConfig) Keyed() bool { return len(p.Key) > 0 }

// Keyed pipeline modes (PipelineConfig.Mode; empty is upsert).
const (
	ModeUpsert = "upsert"
	ModeCDC    = "cdc"
)

// Keyed pipeline delete modes (PipelineConfig.DeleteMode; empty is
// position).
const (
	DeleteModePosition = "position"
	DeleteModeEquality = "equality"
)

// EqualityDeletes reports whether the pipeline's table deletes replaced rows
// with equality deletes on the key columns rather than by position.
func (p PipelineConfig) EqualityDeletes() bool {
	return p.Keyed() && p.DeleteMode == DeleteModeEquality
}

// KeyOrderColumns are the Kafka metadata columns every keyed table has,
// whether kafka_metadata lists them or not: the rows of one key that arrive
// in one commit are ordered by them (the newest is the one with the highest
// offset of its partition), so that the newest is the one kept.
var KeyOrderColumns = []string{"_kafka_partition", "_kafka_offset"}

// tableFormatVersion is the format version of the tables the pipeline
// creates; a configuration whose defaults were not filled in (a program
// embedding a pipeline) gets the default.
func (p PipelineConfig) tableFormatVersion() int {
	if p.FormatVersion == 0 {
		return DefaultFormatVersion
	}
	return p.FormatVersion
}

// DeclaredSchema builds the Iceberg schema the pipeline declares (columns
// plus Kafka metadata columns). With no columns declared it holds only the
// metadata columns; the table's schema is then inferred.
//
// A keyed pipeline's schema has the key columns as its identifier fields and
// always has the KeyOrderColumns: those kafka_metadata does not list follow
// the ones it does, at the end.
func (p PipelineConfig) DeclaredSchema() (*iceberg.Schema, error) {
	cols, meta := p.schemaColumns()
	return schema.Build(cols, meta, p.Key)
}

// schemaColumns returns the declared columns and the Kafka metadata columns
// of the pipeline's schema.
func (p PipelineConfig) schemaColumns() ([]schema.Column, []string) {
	cols := make([]schema.Column, len(p.Schema))
	for i, c := range p.Schema {
		cols[i] = schema.Column{Name: c.Name, Type: c.Type, Required: c.Required, Doc: c.Doc}
	}
	if !p.Keyed() {
		return cols, p.KafkaMetadata
	}
	meta := slices.Clone(p.KafkaMetadata)
	for _, name := range KeyOrderColumns {
		listed := slices.ContainsFunc(meta, func(m string) bool {
			n, err := schema.MetaColumnName(m)
			return err == nil && n == name
		})
		// A column declared under that name is filled from the metadata
		// just the same (the decoder goes by name).
		declared := slices.ContainsFunc(p.Schema, func(c Column) bool { return c.Name == name })
		if !listed && !declared {
			meta = append(meta, name)
		}
	}
	return cols, meta
}

// Validate reports every bad field of a pipeline whose defaults are filled
// in, named relative to the pipeline. Rules across pipelines (unique names,
// one writer per table) are the composer's.
func (p PipelineConfig) Validate() error {
	var pr conf.Problems
	if len(p.Topics) == 0 {
		pr.Addf("topics", "must list at least one topic")
	}
	if err := checkTableName(p.Table); err != nil {
		pr.Addf("table", "%v", err)
	}
	if err := checkTableName(p.DeadLetter()); err != nil {
		pr.Addf("dead_letter_table", "%v", err)
	}
	if p.DeadLetter() == p.Table {
		pr.Addf("dead_letter_table", "must differ from the table")
	}
	p.checkFormat(&pr)
	if err := checkStart(p.Start); err != nil {
		pr.Addf("start", "%v", err)
	}
	if p.CommitInterval.D() < MinCommitInterval {
		pr.Addf("commit_interval", "must be at least %s, got %s", MinCommitInterval, p.CommitInterval)
	}
	if p.TargetFileSize < minTargetFileSize {
		pr.Addf("target_file_size", "must be at least 1MiB, got %d", p.TargetFileSize)
	}
	if err := CheckOnDataLoss(p.OnDataLoss); err != nil {
		pr.Addf("on_data_loss", "%v", err)
	}
	switch p.InferConflicts {
	case "", InferConflictsFail:
	case InferConflictsString:
		if len(p.Schema) > 0 {
			pr.Addf("infer_conflicts", "applies to inferred schemas only; this pipeline declares its schema")
		}
	default:
		pr.Addf("infer_conflicts", "must be %s or %s, got %q", InferConflictsFail, InferConflictsString, p.InferConflicts)
	}
	if p.Workers < 0 || p.Workers > 256 {
		pr.Addf("workers", "must be 0 (one per CPU) to 256, got %d", p.Workers)
	}
	switch p.FormatVersion {
	case 2, 3:
		// floe sets the version: a table property saying otherwise would
		// be one of the two silently ignored.
		if v, ok := p.TableProperties[table.PropertyFormatVersion]; ok && v != strconv.Itoa(p.FormatVersion) {
			pr.Addf("table_properties."+table.PropertyFormatVersion, "%q conflicts with format_version %d; set the version with format_version alone", v, p.FormatVersion)
		}
	default:
		pr.Addf("format_version", "must be 2 or 3, got %d", p.FormatVersion)
	}
	keyOK := p.checkKey(&pr)
	metaOK := true
	for j, m := range p.KafkaMetadata {
		if _, err := schema.MetaColumnName(m); err != nil {
			pr.Addf(fmt.Sprintf("kafka_metadata[%d]", j), "%v", err)
			metaOK = false
		}
	}
	if !metaOK {
		return pr.Err()
	}
	cols, meta := p.schemaColumns()
	var key []string
	if keyOK {
		// A bad key has been reported by field; the rest is checked
		// without it.
		key = p.Key
	}
	sch, err := schema.Build(cols, meta, key)
	if err != nil {
		pr.Addf("schema", "%v", err)
		return pr.Err()
	}
	if p.Transforms() {
		if sch = p.checkTransform(&pr, sch, keyOK); sch == nil {
			return pr.Err()
		}
	}
	if len(p.Schema) > 0 {
		if _, err := schema.Partition(p.PartitionBy, sch); err != nil {
			pr.Addf("partition_by", "%v", err)
		}
	}
	return pr.Err()
}

// checkTransform adds the problems of the transform section to pr and
// returns the schema of the table the transform writes (nil when it has
// problems). Key, version and Kafka-order columns must pass through it
// unchanged: a deletion is read by the key columns of the record, before
// any transform.
func (p PipelineConfig) checkTransform(pr *conf.Problems, in *iceberg.Schema, keyOK bool) *iceberg.Schema {
	if len(p.Schema) == 0 {
		pr.Addf("transform", "needs a declared schema (schema:): expressions are type-checked against it when the pipeline starts")
		return nil
	}
	prog, err := transform.Compile(*p.Transform, in)
	if err != nil {
		pr.Nest("transform", err)
		return nil
	}
	if prog.Windowed() {
		bad := false
		if p.Keyed() {
			pr.Addf("key", "a window table is keyed by its group columns and %s; remove key (and mode, version_column)", transform.ColWindowStart)
			bad = true
		}
		if len(p.PartitionBy) > 0 {
			pr.Addf("partition_by", "a window table is not partitioned (its rows are corrected in place, commit after commit); remove partition_by")
			bad = true
		}
		if bad {
			return nil
		}
	}
	if !p.Keyed() {
		sch, err := prog.TableSchema(nil)
		if err != nil {
			pr.Addf("transform", "%v", err)
		}
		return sch
	}
	must := slices.Clone(p.Key)
	if p.VersionColumn != "" {
		must = append(must, p.VersionColumn)
	}
	must = append(must, KeyOrderColumns...)
	bad := false
	for _, c := range must {
		if !prog.Passes(c) {
			pr.Addf("transform", "column %q must pass through unchanged (not dropped or renamed): a keyed pipeline needs its key, version and Kafka order columns as the records carry them", c)
			bad = true
		}
	}
	if bad || !keyOK {
		return nil
	}
	sch, err := prog.TableSchema(p.Key)
	if err != nil {
		pr.Addf("transform", "%v", err)
		return nil
	}
	return sch
}

// Record formats (PipelineConfig.Format; empty is json).
const (
	FormatJSON     = "json"
	FormatAvro     = "avro"
	FormatProtobuf = "protobuf"
)

// Schema evolution policies (PipelineConfig.SchemaEvolution).
const (
	EvolutionStrict = "strict"
	EvolutionAdd    = "add"
)

// RegistryFormat reports whether the pipeline's records are in the schema
// registry's wire format (avro, protobuf).
func (p PipelineConfig) RegistryFormat() bool {
	return p.Format == FormatAvro || p.Format == FormatProtobuf
}

// Evolves reports whether the pipeline adds columns and widens types of its
// table to fit its records' writer schemas (schema_evolution: add, the
// default of registry formats without a transform).
func (p PipelineConfig) Evolves() bool {
	switch p.SchemaEvolution {
	case EvolutionAdd:
		return true
	case "":
		return p.RegistryFormat() && !p.Transforms() && p.Mode != ModeCDC
	}
	return false
}

// checkFormat adds the problems of format, registry and schema_evolution
// to pr.
func (p PipelineConfig) checkFormat(pr *conf.Problems) {
	switch p.Format {
	case FormatJSON:
		if p.Registry.Enabled() {
			pr.Addf("registry", "applies to format avro or protobuf only; this pipeline reads json")
		}
	case FormatAvro, FormatProtobuf:
		if !p.Registry.Enabled() {
			pr.Addf("registry.urls", "format %s needs the schema registry that holds the writer schemas, such as urls: [http://localhost:8081]", p.Format)
		}
		if p.InferConflicts != "" {
			pr.Addf("infer_conflicts", "applies to json only: a %s table's schema is its first record's writer schema", p.Format)
		}
		if p.Mode == ModeCDC && p.Format == FormatProtobuf {
			pr.Addf("mode", "cdc reads Debezium's envelope in JSON or Avro, not protobuf")
		}
	default:
		pr.Addf("format", "must be %s, %s or %s, got %q", FormatJSON, FormatAvro, FormatProtobuf, p.Format)
	}
	if err := p.Registry.Validate(); err != nil {
		pr.Nest("registry", err)
	}
	switch p.SchemaEvolution {
	case "", EvolutionStrict:
	case EvolutionAdd:
		switch {
		case !p.RegistryFormat():
			pr.Addf("schema_evolution", "add needs format avro or protobuf (a json record has no writer schema to add columns from)")
		case p.Transforms():
			pr.Addf("schema_evolution", "add cannot be combined with a transform: the table's columns are the transform's output; use strict")
		}
	default:
		pr.Addf("schema_evolution", "must be %s or %s, got %q", EvolutionStrict, EvolutionAdd, p.SchemaEvolution)
	}
}

// checkKey adds the problems of the key columns to pr and reports whether
// there were none. A column whose type does not parse is the schema's
// problem and is reported as such.
func (p PipelineConfig) checkKey(pr *conf.Problems) bool {
	switch p.Mode {
	case "", ModeUpsert:
	case ModeCDC:
		if !p.Keyed() {
			pr.Addf("mode", "cdc needs key columns (key:): a change event replaces or deletes the row of its key")
		}
	default:
		pr.Addf("mode", "must be upsert or cdc, got %q", p.Mode)
	}
	switch p.DeleteMode {
	case "", DeleteModePosition:
	case DeleteModeEquality:
		if p.Keyed() && p.VersionColumn != "" {
			pr.Addf("delete_mode", "equality cannot be combined with version_column: which row of a key is the newest depends on "+
				"the version of the key's current row, which only the key index of delete_mode %s knows", DeleteModePosition)
		}
	default:
		pr.Addf("delete_mode", "must be %s or %s, got %q", DeleteModePosition, DeleteModeEquality, p.DeleteMode)
	}
	if !p.Keyed() {
		if p.Mode == ModeUpsert {
			pr.Addf("mode", "upsert needs key columns (key:)")
		}
		if p.VersionColumn != "" {
			pr.Addf("version_column", "needs key columns (key:): it orders the rows of a key")
		}
		if p.VersionFrom != "" && p.Mode != ModeCDC {
			pr.Addf("version_from", "needs mode: cdc and key columns (key:): it reads the version from the change event's envelope")
		}
		if p.DeleteMode == DeleteModePosition || p.DeleteMode == DeleteModeEquality {
			pr.Addf("delete_mode", "needs key columns (key:): it says how the rows of a key that a newer row replaces are deleted")
		}
		if p.KeyIndexMemory != 0 {
			pr.Addf("key_index_memory", "needs key columns (key:): it bounds the memory of the key index")
		}
		return true
	}
	if p.KeyIndexMemory < 0 {
		pr.Addf("key_index_memory", "must be a positive size such as 512MiB, got %d", p.KeyIndexMemory)
	}
	if vf := p.VersionFrom; vf != "" {
		switch {
		case p.Mode != ModeCDC:
			pr.Addf("version_from", "needs mode: cdc: it reads the version from the change event's envelope")
		case p.VersionColumn == "":
			pr.Addf("version_from", "needs version_column: the column the envelope's value is written to")
		case !validEnvelopePath(vf):
			pr.Addf("version_from", "must be a dotted path of field names such as ts_ms or source.lsn, got %q", vf)
		}
	}
	if v := p.VersionColumn; v != "" {
		j := slices.IndexFunc(p.Schema, func(c Column) bool { return c.Name == v })
		switch {
		case j < 0:
			pr.Addf("version_column", "no column %q in the schema; the version column is a top-level column declared under schema:", v)
		case slices.Contains(p.Key, v):
			pr.Addf("version_column", "%q is a key column; a version must change between the rows of a key", v)
		default:
			switch t := strings.ToLower(strings.TrimSpace(p.Schema[j].Type)); t {
			case "int", "long", "date", "timestamp", "timestamptz", "timestamp_ns", "timestamptz_ns":
			default:
				pr.Addf("version_column", "column %q is %s; a version column must be int, long, date or timestamp(tz)", v, t)
			}
		}
	}
	if len(p.Schema) == 0 {
		pr.Addf("key", "needs a declared schema (schema:): key columns must be declared required: true, and an inferred schema cannot promise that a column is never null")
		return false
	}
	ok := true
	for i, k := range p.Key {
		field := fmt.Sprintf("key[%d]", i)
		bad := func(format string, args ...any) {
			pr.Addf(field, format, args...)
			ok = false
		}
		j := slices.IndexFunc(p.Schema, func(c Column) bool { return c.Name == k })
		switch {
		case k == "":
			bad("must name a column")
		case slices.Index(p.Key, k) < i:
			bad("column %q is listed twice", k)
		case schema.IsMetaColumn(k):
			bad("%q is a Kafka metadata column; key columns must come from the record's value (declared under schema:)", k)
		case j < 0:
			bad("no column %q in the schema; key columns must be top-level columns declared under schema:", k)
		default:
			c := p.Schema[j]
			t, err := schema.ParseType(c.Type)
			if err != nil {
				ok = false
				continue
			}
			if err := schema.CheckIdentifier(iceberg.NestedField{Name: c.Name, Type: t, Required: c.Required}); err != nil {
				bad("%v", err)
			}
		}
	}
	return ok
}

// CheckOnDataLoss says what is wrong with a data-loss policy, if anything.
func CheckOnDataLoss(s string) error {
	switch s {
	case OnDataLossFail, OnDataLossSkip:
		return nil
	}
	return fmt.Errorf("must be %s or %s, got %q", OnDataLossFail, OnDataLossSkip, s)
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
	if _, ok := startTime(s); !ok {
		return fmt.Errorf("must be earliest, latest or an RFC 3339 timestamp, got %q", s)
	}
	return nil
}

// startTime returns the timestamp of a timestamp start, if it is one.
func startTime(s string) (time.Time, bool) {
	t, err := time.Parse(time.RFC3339, s)
	return t, err == nil
}

// validEnvelopePath reports whether p is a dotted path of non-empty field
// names.
func validEnvelopePath(p string) bool {
	for _, f := range strings.Split(p, ".") {
		if f == "" || strings.TrimSpace(f) != f {
			return false
		}
	}
	return true
}
