package ingest_test

import (
	"slices"
	"testing"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/stretchr/testify/require"

	"github.com/floelake/floe/ingest"
	"github.com/floelake/floe/ingest/transform"
	"github.com/floelake/floe/internal/conf"
	"github.com/floelake/floe/internal/conf/conftest"
)

func TestKafkaConfigValidate(t *testing.T) {
	kafka := func(f func(*ingest.KafkaConfig)) ingest.KafkaConfig {
		k := ingest.DefaultKafkaConfig()
		k.Brokers = []string{"a:9092"}
		f(&k)
		return k
	}
	conftest.RequireValid(t, ingest.DefaultKafkaConfig().Validate())
	conftest.RequireValid(t, kafka(func(k *ingest.KafkaConfig) {
		k.SASL = ingest.SASLConfig{Mechanism: "scram-sha-256", Username: "floe"}
		k.TLS = ingest.TLSConfig{Enabled: true, CertFile: "c.pem", KeyFile: "k.pem"}
	}).Validate())

	cases := []struct {
		name          string
		cfg           ingest.KafkaConfig
		field, reason string
	}{
		{"broker", kafka(func(k *ingest.KafkaConfig) { k.Brokers = []string{"a:1", "nohostport"} }), "brokers[1]", `must be host:port, got "nohostport"`},
		{"group", kafka(func(k *ingest.KafkaConfig) { k.Group = "" }), "group", "must not be empty"},
		{"sasl", kafka(func(k *ingest.KafkaConfig) { k.SASL.Mechanism = "GSSAPI" }), "sasl.mechanism", "must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"},
		{"sasl user", kafka(func(k *ingest.KafkaConfig) { k.SASL.Mechanism = "PLAIN" }), "sasl.username", "is required with mechanism PLAIN"},
		{"tls pair", kafka(func(k *ingest.KafkaConfig) { k.TLS.KeyFile = "k.pem" }), "tls", "cert_file and key_file must be given together"},
		{"fetch", kafka(func(k *ingest.KafkaConfig) { k.FetchMaxBytes = 1000 }), "fetch_max_bytes", "must be at least 1MiB, got 1000"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			conftest.RequireField(t, c.cfg.Validate(), c.field, c.reason)
		})
	}
}

func TestPipelineConfigValidate(t *testing.T) {
	pipeline := func(f func(*ingest.PipelineConfig)) ingest.PipelineConfig {
		p := ingest.PipelineConfig{Name: "p", Topics: []string{"t"}, Table: "a.b", Format: "json", Start: "earliest",
			CommitInterval: conf.Duration(time.Second), TargetFileSize: 128 << 20, OnDataLoss: ingest.OnDataLossFail,
			FormatVersion: ingest.DefaultFormatVersion}
		f(&p)
		return p
	}
	// keyed declares a schema with a column of each type a key may have,
	// and one of each it may not.
	keyed := func(key ...string) func(*ingest.PipelineConfig) {
		return func(p *ingest.PipelineConfig) {
			p.Key = key
			p.Schema = []ingest.Column{
				{Name: "id", Type: "long", Required: true}, {Name: "region", Type: "string", Required: true},
				{Name: "n", Type: "int", Required: true}, {Name: "amount", Type: "decimal(10,2)", Required: true},
				{Name: "day", Type: "date", Required: true}, {Name: "at", Type: "timestamptz", Required: true},
				{Name: "u", Type: "uuid", Required: true}, {Name: "h", Type: "fixed[16]", Required: true},
				{Name: "b", Type: "binary", Required: true}, {Name: "flag", Type: "boolean", Required: true},
				{Name: "t", Type: "time", Required: true}, {Name: "local", Type: "timestamp", Required: true},
				{Name: "ratio", Type: "double", Required: true}, {Name: "f", Type: "float", Required: true},
				{Name: "addr", Type: "struct<city!:string>", Required: true}, {Name: "tags", Type: "list<string>", Required: true},
				{Name: "attrs", Type: "map<string,string>", Required: true},
				{Name: "note", Type: "string"},
			}
		}
	}
	for name, p := range map[string]ingest.PipelineConfig{
		"plain": pipeline(func(*ingest.PipelineConfig) {}),
		"full": pipeline(func(p *ingest.PipelineConfig) {
			p.Table, p.DeadLetterTable = "a.b.c", "a.dead"
			p.Start, p.OnDataLoss, p.Workers = "2024-01-02T03:04:05Z", ingest.OnDataLossSkip, 256
			p.CommitInterval = conf.Duration(ingest.MinCommitInterval)
			p.Schema = []ingest.Column{{Name: "id", Type: "long", Required: true}, {Name: "ts", Type: "timestamptz"}}
			p.PartitionBy = []string{"day(ts)", "bucket(4, id)"}
			p.KafkaMetadata = []string{"topic", "partition", "offset", "timestamp", "key"}
		}),
		"inferred schema":                pipeline(func(p *ingest.PipelineConfig) { p.PartitionBy = []string{"day(ts)"} }),
		"inferred, conflicts as strings": pipeline(func(p *ingest.PipelineConfig) { p.InferConflicts = ingest.InferConflictsString }),
		"format v3":                      pipeline(func(p *ingest.PipelineConfig) { p.FormatVersion = 3 }),
		"format agrees with property": pipeline(func(p *ingest.PipelineConfig) {
			p.FormatVersion, p.TableProperties = 3, map[string]string{"format-version": "3", "owner": "x"}
		}),
		"keyed":    pipeline(keyed("id")),
		"keyed v3": pipeline(func(p *ingest.PipelineConfig) { keyed("region", "id")(p); p.FormatVersion = 3 }),
		"keyed, position deletes": pipeline(func(p *ingest.PipelineConfig) {
			keyed("id")(p)
			p.DeleteMode, p.VersionColumn = ingest.DeleteModePosition, "n"
		}),
		"keyed, equality deletes": pipeline(func(p *ingest.PipelineConfig) { keyed("id")(p); p.DeleteMode = ingest.DeleteModeEquality }),
		"cdc, equality deletes v3": pipeline(func(p *ingest.PipelineConfig) {
			keyed("region", "id")(p)
			p.Mode, p.DeleteMode, p.FormatVersion = ingest.ModeCDC, ingest.DeleteModeEquality, 3
		}),
		"cdc in avro, schema evolution": pipeline(func(p *ingest.PipelineConfig) {
			keyed("id")(p)
			p.Mode, p.Format, p.Registry.URLs, p.SchemaEvolution = ingest.ModeCDC, ingest.FormatAvro, []string{"http://r:8081"}, ingest.EvolutionAdd
		}),
		"every key type": pipeline(keyed("id", "region", "n", "amount", "day", "at", "u", "h", "b", "flag", "t", "local")),
		"keyed, metadata listed": pipeline(func(p *ingest.PipelineConfig) {
			keyed("id")(p)
			p.KafkaMetadata = []string{"offset", "_kafka_partition", "timestamp"}
			p.PartitionBy = []string{"bucket(8, id)", "_kafka_partition"}
		}),
	} {
		t.Run("valid "+name, func(t *testing.T) { conftest.RequireValid(t, p.Validate()) })
	}

	cases := []struct {
		name          string
		mod           func(*ingest.PipelineConfig)
		field, reason string
	}{
		{"no topics", func(p *ingest.PipelineConfig) { p.Topics = nil }, "topics", "at least one topic"},
		{"table name", func(p *ingest.PipelineConfig) { p.Table = "nodot" }, "table", `must be namespace.table, got "nodot"`},
		{"table part", func(p *ingest.PipelineConfig) { p.Table = "a..b" }, "table", "no empty part"},
		{"dlq name", func(p *ingest.PipelineConfig) { p.DeadLetterTable = "dlq" }, "dead_letter_table", "namespace.table"},
		{"dlq same", func(p *ingest.PipelineConfig) { p.DeadLetterTable = "a.b" }, "dead_letter_table", "must differ"},
		{"format", func(p *ingest.PipelineConfig) { p.Format = "xml" }, "format", `must be json, avro or protobuf, got "xml"`},
		{"avro without registry", func(p *ingest.PipelineConfig) { p.Format = ingest.FormatAvro }, "registry.urls", "format avro needs the schema registry"},
		{"registry with json", func(p *ingest.PipelineConfig) { p.Registry.URLs = []string{"http://r:8081"} }, "registry", "applies to format avro or protobuf only"},
		{"registry url", func(p *ingest.PipelineConfig) {
			p.Format, p.Registry.URLs = ingest.FormatProtobuf, []string{"ftp://r"}
		}, "registry.urls[0]", "must be an http:// or https:// URL"},
		{"evolution", func(p *ingest.PipelineConfig) {
			p.Format, p.Registry.URLs, p.SchemaEvolution = ingest.FormatAvro, []string{"http://r:8081"}, "loose"
		}, "schema_evolution", `must be strict or add, got "loose"`},
		{"evolution json", func(p *ingest.PipelineConfig) { p.SchemaEvolution = ingest.EvolutionAdd }, "schema_evolution", "add needs format avro or protobuf"},
		{"protobuf cdc", func(p *ingest.PipelineConfig) {
			p.Format, p.Registry.URLs, p.Mode = ingest.FormatProtobuf, []string{"http://r:8081"}, ingest.ModeCDC
		}, "mode", "cdc reads Debezium's envelope in JSON or Avro, not protobuf"},
		{"avro infer conflicts", func(p *ingest.PipelineConfig) {
			p.Format, p.Registry.URLs, p.InferConflicts = ingest.FormatAvro, []string{"http://r:8081"}, ingest.InferConflictsString
		}, "infer_conflicts", "applies to json only"},
		{"start", func(p *ingest.PipelineConfig) { p.Start = "yesterday" }, "start", "earliest, latest or an RFC 3339"},
		{"interval", func(p *ingest.PipelineConfig) { p.CommitInterval = conf.Duration(time.Millisecond) }, "commit_interval", "must be at least 100ms, got 1ms"},
		{"file size", func(p *ingest.PipelineConfig) { p.TargetFileSize = 10 << 10 }, "target_file_size", "at least 1MiB"},
		{"on data loss", func(p *ingest.PipelineConfig) { p.OnDataLoss = "ignore" }, "on_data_loss", `must be fail or skip, got "ignore"`},
		{"infer conflicts", func(p *ingest.PipelineConfig) { p.InferConflicts = "widen" }, "infer_conflicts", `must be fail or string, got "widen"`},
		{"infer conflicts declared", func(p *ingest.PipelineConfig) {
			p.InferConflicts, p.Schema = ingest.InferConflictsString, []ingest.Column{{Name: "x", Type: "long"}}
		}, "infer_conflicts", "inferred schemas only"},
		{"workers", func(p *ingest.PipelineConfig) { p.Workers = 257 }, "workers", "must be 0 (one per CPU) to 256, got 257"},
		{"negative workers", func(p *ingest.PipelineConfig) { p.Workers = -1 }, "workers", "to 256"},
		{"type", func(p *ingest.PipelineConfig) { p.Schema = []ingest.Column{{Name: "x", Type: "varchar"}} }, "schema", `unknown type "varchar"`},
		{"partition col", func(p *ingest.PipelineConfig) {
			p.Schema, p.PartitionBy = []ingest.Column{{Name: "x", Type: "long"}}, []string{"day(y)"}
		}, "partition_by", `no column "y"`},
		{"partition transform", func(p *ingest.PipelineConfig) {
			p.Schema, p.PartitionBy = []ingest.Column{{Name: "x", Type: "string"}}, []string{"day(x)"}
		}, "partition_by", "cannot apply"},
		{"metadata", func(p *ingest.PipelineConfig) { p.KafkaMetadata = []string{"offset", "headers"} }, "kafka_metadata[1]", "allowed are topic, partition, offset, timestamp, key"},
		{"format version", func(p *ingest.PipelineConfig) { p.FormatVersion = 1 }, "format_version", "must be 2 or 3, got 1"},
		{"format version unset", func(p *ingest.PipelineConfig) { p.FormatVersion = 0 }, "format_version", "must be 2 or 3, got 0"},
		{"format version 4", func(p *ingest.PipelineConfig) { p.FormatVersion = 4 }, "format_version", "must be 2 or 3, got 4"},
		{"format property", func(p *ingest.PipelineConfig) { p.TableProperties = map[string]string{"format-version": "3"} },
			"table_properties.format-version", `"3" conflicts with format_version 2; set the version with format_version alone`},
		{"key inferred", func(p *ingest.PipelineConfig) { p.Key = []string{"id"} },
			"key", "needs a declared schema (schema:): key columns must be declared required: true"},
		{"key missing", keyed("id", "nope"), "key[1]",
			`no column "nope" in the schema; key columns must be top-level columns declared under schema:`},
		{"key nested", keyed("addr.city"), "key[0]", `no column "addr.city" in the schema`},
		{"key empty", keyed(""), "key[0]", "must name a column"},
		{"key twice", keyed("id", "region", "id"), "key[2]", `column "id" is listed twice`},
		{"key optional", keyed("note"), "key[0]", `column "note" must be declared required: true (a key column cannot be null)`},
		{"key double", keyed("ratio"), "key[0]",
			`column "ratio" is double; a key column must be boolean, int, long, decimal(P,S), date, time, timestamp, timestamptz, string, uuid, binary or fixed[L] (not float, double, struct, list or map)`},
		{"key float", keyed("f"), "key[0]", `column "f" is float; a key column must be`},
		{"key struct", keyed("addr"), "key[0]", `column "addr" is struct<`},
		{"key list", keyed("tags"), "key[0]", `column "tags" is list<string>; a key column must be`},
		{"key map", keyed("attrs"), "key[0]", `column "attrs" is map<string, string>; a key column must be`},
		{"key metadata", func(p *ingest.PipelineConfig) { keyed("_kafka_offset")(p); p.KafkaMetadata = []string{"offset"} }, "key[0]",
			`"_kafka_offset" is a Kafka metadata column; key columns must come from the record's value (declared under schema:)`},
		{"key metadata unlisted", keyed("_kafka_key"), "key[0]", "is a Kafka metadata column"},
		{"key and a bad partition", func(p *ingest.PipelineConfig) { keyed("note")(p); p.PartitionBy = []string{"day(nope)"} },
			"partition_by", `no column "nope"`},
		{"mode", func(p *ingest.PipelineConfig) { keyed("id")(p); p.Mode = "merge" }, "mode", `must be upsert or cdc, got "merge"`},
		{"cdc without key", func(p *ingest.PipelineConfig) { p.Mode = ingest.ModeCDC }, "mode", "cdc needs key columns"},
		{"upsert without key", func(p *ingest.PipelineConfig) { p.Mode = ingest.ModeUpsert }, "mode", "upsert needs key columns"},
		{"version without key", func(p *ingest.PipelineConfig) { p.VersionColumn = "n" }, "version_column", "needs key columns"},
		{"version missing", func(p *ingest.PipelineConfig) { keyed("id")(p); p.VersionColumn = "nope" }, "version_column", `no column "nope"`},
		{"version is the key", func(p *ingest.PipelineConfig) { keyed("id")(p); p.VersionColumn = "id" }, "version_column", "is a key column"},
		{"version type", func(p *ingest.PipelineConfig) { keyed("id")(p); p.VersionColumn = "region" }, "version_column",
			`column "region" is string; a version column must be int, long, date or timestamp(tz)`},
		{"delete mode", func(p *ingest.PipelineConfig) { keyed("id")(p); p.DeleteMode = "merge-on-read" }, "delete_mode",
			`must be position or equality, got "merge-on-read"`},
		{"delete mode case", func(p *ingest.PipelineConfig) { keyed("id")(p); p.DeleteMode = "Equality" }, "delete_mode",
			`must be position or equality, got "Equality"`},
		{"bad delete mode without key", func(p *ingest.PipelineConfig) { p.DeleteMode = "eq" }, "delete_mode", `must be position or equality, got "eq"`},
		{"equality without key", func(p *ingest.PipelineConfig) { p.DeleteMode = ingest.DeleteModeEquality }, "delete_mode",
			"needs key columns (key:)"},
		{"position without key", func(p *ingest.PipelineConfig) { p.DeleteMode = ingest.DeleteModePosition }, "delete_mode",
			"needs key columns (key:)"},
		{"equality with a version", func(p *ingest.PipelineConfig) {
			keyed("id")(p)
			p.DeleteMode, p.VersionColumn = ingest.DeleteModeEquality, "n"
		}, "delete_mode", "equality cannot be combined with version_column: which row of a key is the newest depends on the version of the key's current row, which only the key index of delete_mode position knows"},
		{"version_from in upsert mode", func(p *ingest.PipelineConfig) { keyed("id")(p); p.VersionColumn, p.VersionFrom = "n", "ts_ms" }, "version_from",
			"needs mode: cdc: it reads the version from the change event's envelope"},
		{"version_from without a version column", func(p *ingest.PipelineConfig) { keyed("id")(p); p.Mode, p.VersionFrom = ingest.ModeCDC, "ts_ms" },
			"version_from", "needs version_column: the column the envelope's value is written to"},
		{"version_from not a path", func(p *ingest.PipelineConfig) {
			keyed("id")(p)
			p.Mode, p.VersionColumn, p.VersionFrom = ingest.ModeCDC, "n", "source..lsn"
		}, "version_from", `must be a dotted path of field names such as ts_ms or source.lsn, got "source..lsn"`},
		{"version_from without key", func(p *ingest.PipelineConfig) { p.VersionFrom = "ts_ms" }, "version_from",
			"needs mode: cdc and key columns (key:)"},
		{"key index memory without key", func(p *ingest.PipelineConfig) { p.KeyIndexMemory = 1 << 20 }, "key_index_memory",
			"needs key columns (key:): it bounds the memory of the key index"},
		{"negative key index memory", func(p *ingest.PipelineConfig) { keyed("id")(p); p.KeyIndexMemory = -1 }, "key_index_memory",
			"must be a positive size such as 512MiB, got -1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			conftest.RequireField(t, pipeline(c.mod).Validate(), c.field, c.reason)
		})
	}
}

func TestPipelineConfigReportsAllProblemsAtOnce(t *testing.T) {
	err := ingest.PipelineConfig{Table: "nodot", Format: "xml", Start: "earliest", OnDataLoss: "drop", Key: []string{"id"}}.Validate()
	for _, field := range []string{"topics", "table", "format", "commit_interval", "target_file_size", "on_data_loss", "format_version", "key"} {
		conftest.RequireField(t, err, field, "")
	}
}

func TestDeadLetter(t *testing.T) {
	if got := (ingest.PipelineConfig{Table: "a.b"}).DeadLetter(); got != "a.b__dlq" {
		t.Fatalf("default dead-letter table %q", got)
	}
	if got := (ingest.PipelineConfig{Table: "a.b", DeadLetterTable: "a.dead"}).DeadLetter(); got != "a.dead" {
		t.Fatalf("dead-letter table %q", got)
	}
}

func TestCheckOnDataLoss(t *testing.T) {
	for _, ok := range []string{ingest.OnDataLossFail, ingest.OnDataLossSkip} {
		if err := ingest.CheckOnDataLoss(ok); err != nil {
			t.Fatal(err)
		}
	}
	if err := ingest.CheckOnDataLoss(""); err == nil {
		t.Fatal("empty policy accepted")
	}
}

func TestKeyed(t *testing.T) {
	if (ingest.PipelineConfig{}).Keyed() {
		t.Fatal("a pipeline without key is keyed")
	}
	if !(ingest.PipelineConfig{Key: []string{"id"}}).Keyed() {
		t.Fatal("a pipeline with a key is not keyed")
	}
}

func TestKeyedEqualityDeletes(t *testing.T) {
	for _, c := range []struct {
		key  []string
		mode string
		want bool
	}{
		{[]string{"id"}, "", false},
		{[]string{"id"}, ingest.DeleteModePosition, false},
		{[]string{"id"}, ingest.DeleteModeEquality, true},
		{nil, ingest.DeleteModeEquality, false},
	} {
		require.Equal(t, c.want, ingest.PipelineConfig{Key: c.key, DeleteMode: c.mode}.EqualityDeletes(), "key %v, delete_mode %q", c.key, c.mode)
	}
}

// TestDeclaredSchemaKeyed: a keyed pipeline's schema has its key columns as
// identifier fields and always has _kafka_partition and _kafka_offset, once,
// after the declared columns; an append-only pipeline's has only what it
// lists.
func TestDeclaredSchemaKeyed(t *testing.T) {
	cols := []ingest.Column{{Name: "region", Type: "string", Required: true}, {Name: "id", Type: "long", Required: true},
		{Name: "items", Type: "list<string>"}}
	cases := []struct {
		name      string
		key, meta []string
		schema    []ingest.Column
		// want is the top-level column names, in order; ids the identifier field ids.
		want []string
		ids  []int
	}{
		{"append-only", nil, []string{"timestamp"}, cols, []string{"region", "id", "items", "_kafka_timestamp"}, []int{}},
		{"append-only, no metadata", nil, nil, cols, []string{"region", "id", "items"}, []int{}},
		{"keyed", []string{"id"}, nil, cols, []string{"region", "id", "items", "_kafka_partition", "_kafka_offset"}, []int{2}},
		{"two key columns", []string{"id", "region"}, []string{"timestamp"}, cols,
			[]string{"region", "id", "items", "_kafka_timestamp", "_kafka_partition", "_kafka_offset"}, []int{2, 1}},
		{"offset listed", []string{"id"}, []string{"offset", "key"}, cols,
			[]string{"region", "id", "items", "_kafka_offset", "_kafka_key", "_kafka_partition"}, []int{2}},
		{"both listed", []string{"region"}, []string{"_kafka_partition", "offset"}, cols,
			[]string{"region", "id", "items", "_kafka_partition", "_kafka_offset"}, []int{1}},
		{"offset declared", []string{"id"}, nil, append(slices.Clone(cols), ingest.Column{Name: "_kafka_offset", Type: "long"}),
			[]string{"region", "id", "items", "_kafka_offset", "_kafka_partition"}, []int{2}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := ingest.PipelineConfig{Schema: c.schema, Key: c.key, KafkaMetadata: c.meta}
			sch, err := p.DeclaredSchema()
			require.NoError(t, err)
			var names []string
			for _, f := range sch.Fields() {
				names = append(names, f.Name)
			}
			require.Equal(t, c.want, names)
			require.Equal(t, c.ids, sch.IdentifierFieldIDs)
			// The list's element takes id 4: the metadata columns come after it.
			if f, ok := sch.FindFieldByName("_kafka_offset"); ok {
				require.Greater(t, f.ID, 4)
				require.Equal(t, iceberg.PrimitiveTypes.Int64, f.Type)
			}
			if f, ok := sch.FindFieldByName("_kafka_partition"); ok {
				require.Equal(t, iceberg.PrimitiveTypes.Int32, f.Type)
				require.False(t, f.Required)
			}
		})
	}
}

func TestKeyIndexBudget(t *testing.T) {
	require.Equal(t, int64(ingest.DefaultKeyIndexMemory), ingest.PipelineConfig{Key: []string{"id"}}.KeyIndexBudget())
	require.Equal(t, int64(64<<20), ingest.PipelineConfig{Key: []string{"id"}, KeyIndexMemory: 64 << 20}.KeyIndexBudget())
}

func TestPipelineConfigValidatesTransform(t *testing.T) {
	pipeline := func(f func(*ingest.PipelineConfig)) ingest.PipelineConfig {
		p := ingest.PipelineConfig{Name: "p", Topics: []string{"t"}, Table: "a.b", Format: "json", Start: "earliest",
			CommitInterval: conf.Duration(time.Second), TargetFileSize: 128 << 20, OnDataLoss: ingest.OnDataLossFail,
			FormatVersion: ingest.DefaultFormatVersion,
			Schema:        []ingest.Column{{Name: "id", Type: "long", Required: true}, {Name: "ts", Type: "timestamptz"}, {Name: "v", Type: "long"}}}
		f(&p)
		return p
	}
	tr := func(c transform.Config) func(*ingest.PipelineConfig) {
		return func(p *ingest.PipelineConfig) { p.Transform = &c }
	}
	conftest.RequireValid(t, pipeline(func(p *ingest.PipelineConfig) {
		p.Transform = &transform.Config{Columns: []transform.Column{{Name: "day", Expr: "ts", Type: "date"}}}
		p.PartitionBy = []string{"day"}
	}).Validate())
	conftest.RequireValid(t, pipeline(func(p *ingest.PipelineConfig) {
		p.Key = []string{"id"}
		p.Transform = &transform.Config{Filter: "v != null && v > 0", Drop: []string{"ts"}}
	}).Validate())

	cases := []struct {
		name          string
		cfg           ingest.PipelineConfig
		field, reason string
	}{
		{"no schema", pipeline(func(p *ingest.PipelineConfig) {
			p.Schema = nil
			p.Transform = &transform.Config{Filter: "true"}
		}), "transform", "needs a declared schema"},
		{"filter", pipeline(tr(transform.Config{Filter: "v +"})), "transform.filter", "Syntax error"},
		{"column", pipeline(tr(transform.Config{Columns: []transform.Column{{Name: "x", Expr: "nope"}}})), "transform.columns[0].expr", "undeclared reference to 'nope'"},
		{"key renamed", pipeline(func(p *ingest.PipelineConfig) {
			p.Key = []string{"id"}
			p.Transform = &transform.Config{Rename: map[string]string{"id": "ident"}}
		}), "transform", `column "id" must pass through unchanged`},
		{"key dropped", pipeline(func(p *ingest.PipelineConfig) {
			p.Key = []string{"id"}
			p.Transform = &transform.Config{Drop: []string{"id"}}
		}), "transform", `column "id" must pass through unchanged`},
		{"state without window", pipeline(tr(transform.Config{State: transform.StateConfig{Retention: conf.Duration(time.Minute)}})),
			"transform.state", "applies to window aggregation only"},
		{"order column dropped", pipeline(func(p *ingest.PipelineConfig) {
			p.Key = []string{"id"}
			p.Transform = &transform.Config{Drop: []string{"_kafka_offset"}}
		}), "transform", `column "_kafka_offset" must pass through unchanged`},
		{"partition on a dropped column", pipeline(func(p *ingest.PipelineConfig) {
			p.PartitionBy = []string{"day(ts)"}
			p.Transform = &transform.Config{Drop: []string{"ts"}}
		}), "partition_by", `no column "ts" in the schema`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			conftest.RequireField(t, c.cfg.Validate(), c.field, c.reason)
		})
	}
}

// TestSchemaEvolutionDefault: add is the default for avro and protobuf
// records, except with a transform or mode: cdc (whose table's columns
// are the declared ones unless add is asked for); json is never evolved.
func TestSchemaEvolutionDefault(t *testing.T) {
	for _, c := range []struct {
		format, mode, evolution string
		transform               bool
		want                    bool
	}{
		{ingest.FormatAvro, "", "", false, true},
		{ingest.FormatProtobuf, "", "", false, true},
		{ingest.FormatProtobuf, "", "", true, false},
		{ingest.FormatAvro, ingest.ModeCDC, "", false, false},
		{ingest.FormatAvro, ingest.ModeCDC, ingest.EvolutionAdd, false, true},
		{ingest.FormatAvro, "", ingest.EvolutionStrict, false, false},
		{ingest.FormatJSON, "", "", false, false},
	} {
		p := ingest.PipelineConfig{Format: c.format, Mode: c.mode, SchemaEvolution: c.evolution}
		if c.transform {
			p.Transform = &transform.Config{Filter: "true"}
		}
		require.Equal(t, c.want, p.Evolves(), "%+v", c)
	}
}
