package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/floelake/floe/ingest"
	"github.com/floelake/floe/internal/conf"
	"github.com/floelake/floe/internal/conf/conftest"
)

// onePipeline is a valid configuration whose pipeline's fields start on
// line 5, column 5.
const onePipeline = `kafka: {brokers: [a:1]}
pipelines:
  - name: clicks
    topics: [clicks]
    table: lake.clicks
`

// TestTypeErrorsNamePathAndPosition: a value of the wrong type is a
// problem of its field, named by its path and placed at its key (or, in a
// list, at the element).
func TestTypeErrorsNamePathAndPosition(t *testing.T) {
	for _, c := range []struct {
		name, yaml, field string
		line, col         int
		reason            string
	}{
		{"duration word", "    commit_interval: \"fast\"", "pipelines[0].commit_interval", 6, 5,
			`want a duration such as 500ms, 10s or 1m, got "fast"`},
		{"duration without unit", "    commit_interval: 5", "pipelines[0].commit_interval", 6, 5,
			`want a duration such as 500ms, 10s or 1m, got "5"`},
		{"duration in words", "    commit_interval: 1 second", "pipelines[0].commit_interval", 6, 5,
			`want a duration such as 500ms, 10s or 1m, got "1 second"`},
		{"size", "    target_file_size: huge", "pipelines[0].target_file_size", 6, 5,
			`want a size such as 128MiB, 64MB or 1048576, got "huge"`},
		{"string for a list", "    partition_by: day(ts)", "pipelines[0].partition_by", 6, 5,
			`want a list such as [day(ts)], got "day(ts)"`},
		{"map for a scalar", "    format: {type: json}", "pipelines[0].format", 6, 5,
			"want a string, got a map"},
		{"list for a duration", "    commit_interval: [1s]", "pipelines[0].commit_interval", 6, 5,
			"want a duration such as 500ms, 10s or 1m, got a list"},
		{"integer", "    workers: many", "pipelines[0].workers", 6, 5,
			`want an integer, got "many"`},
		{"fraction", "    workers: 1.5", "pipelines[0].workers", 6, 5,
			`want an integer, got "1.5"`},
		{"map for a list element", "    kafka_metadata: [offset, {a: b}]", "pipelines[0].kafka_metadata[1]", 6, 30,
			"want a string, got a map"},
		{"map for a list of sections", "    schema: {name: id}", "pipelines[0].schema", 6, 5,
			"want a list, got a map"},
		{"string for a section", "    schema: [id]", "pipelines[0].schema[0]", 6, 14,
			`want a map, got "id"`},
		{"string for a map", "    table_properties: none", "pipelines[0].table_properties", 6, 5,
			`want a map, got "none"`},
		{"section in a map", "    table_properties: {a: {b: c}}", "pipelines[0].table_properties.a", 6, 24,
			"want a string, got a map"},
		{"string for a key", "    key: order_id", "pipelines[0].key", 6, 5,
			`want a list such as [order_id], got "order_id"`},
		{"format version word", "    format_version: v3", "pipelines[0].format_version", 6, 5,
			`want an integer, got "v3"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(onePipeline+c.yaml+"\n"), nil)
			fe := conftest.RequireFieldAt(t, err, c.field, c.line, c.reason)
			require.Equal(t, c.col, fe.Column, "%v", fe)
			require.Equal(t, c.reason, fe.Reason)
			require.Len(t, conf.Fields(err), 1, "the bad value is reported once, and nothing else: %v", err)
		})
	}
	t.Run("section", func(t *testing.T) {
		_, err := Parse([]byte("kafka: [a:1]\n"), nil)
		conftest.RequireFieldAt(t, err, "kafka", 1, "want a map, got a list")
		_, err = Parse([]byte("kafka:\n  tls: true\n"), nil)
		conftest.RequireFieldAt(t, err, "kafka.tls", 2, `want a map, got "true"`)
		_, err = Parse([]byte("pipelines: clicks\n"), nil)
		conftest.RequireFieldAt(t, err, "pipelines", 1, `want a list such as [clicks], got "clicks"`)
	})
	t.Run("bool", func(t *testing.T) {
		_, err := Parse([]byte(onePipeline+"cluster: {enabled: maybe}\n"), nil)
		conftest.RequireFieldAt(t, err, "cluster.enabled", 6, `want true or false, got "maybe"`)
	})
}

// TestUnknownFieldSuggests: an unknown key is named by its path, with the
// closest known key of its section, or else the keys it allows.
func TestUnknownFieldSuggests(t *testing.T) {
	for _, c := range []struct {
		name, yaml, field string
		line              int
		reason            string
	}{
		{"missing letter", onePipeline + "    comit_interval: 1s\n", "pipelines[0].comit_interval", 6,
			"unknown field; did you mean commit_interval?"},
		{"swapped letters", onePipeline + "    tabel: a.b\n", "pipelines[0].tabel", 6,
			"unknown field; did you mean table?"},
		{"dash", onePipeline + "    commit-interval: 1s\n", "pipelines[0].commit-interval", 6,
			"unknown field; did you mean commit_interval?"},
		{"delete mode", onePipeline + "    delete-mode: equality\n", "pipelines[0].delete-mode", 6,
			"unknown field; did you mean delete_mode?"},
		{"case", onePipeline + "    Topics: [a]\n", "pipelines[0].Topics", 6,
			"unknown field; did you mean topics?"},
		{"nested", onePipeline + "kafka_:\n", "kafka_", 6, "unknown field; did you mean kafka?"},
		{"deep", onePipeline + "cluster:\n  tls:\n    ca: x\n", "cluster.tls.ca", 8,
			"unknown field; allowed: cert_file, key_file, ca_file"},
		{"far", onePipeline + "    interval: 1s\n", "pipelines[0].interval", 6,
			"unknown field; allowed: name, topics, table, dead_letter_table, format, registry, schema_evolution, start, commit_interval, " +
				"target_file_size, schema, partition_by, kafka_metadata, table_properties, key, mode, version_column, version_from, delete_mode, key_index_memory, format_version, workers, on_data_loss, infer_conflicts, transform"},
		{"top level", "brokers: [a:1]\n" + onePipeline, "brokers", 1,
			"unknown field; allowed: node, cluster, kafka, catalog, storage, defaults, pipelines, maintenance"},
		{"quoted", onePipeline + "    \"commit interval\": 1s\n", `pipelines[0]."commit interval"`, 6,
			"unknown field; did you mean commit_interval?"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.yaml), nil)
			fe := conftest.RequireFieldAt(t, err, c.field, c.line, c.reason)
			require.Equal(t, c.reason, fe.Reason)
			require.NotContains(t, err.Error(), "not found in type")
		})
	}
}

// TestAllProblemsAtOnceInFileOrder: decode problems (type errors, unknown
// fields) and validation problems are reported together, in the order of
// the file, fields not in the file last.
func TestAllProblemsAtOnceInFileOrder(t *testing.T) {
	_, err := Parse([]byte(`node:
  log_level: loud
kafka:
  brokers: [a:1]
  fetch_max_byte: 1MiB
pipelines:
  - name: clicks
    topics: [clicks]
    table: lake.clicks
    commit_interval: fast
    comit_interval: 1s
  - name: orders
    table: lake.orders
    workers: many
    kafka_metadata: [headers]
`), nil)
	var got []string
	for _, fe := range conf.Fields(err) {
		got = append(got, fe.Pos.String()+" "+fe.Field)
	}
	require.Equal(t, []string{
		"2:3 node.log_level",
		"5:3 kafka.fetch_max_byte",
		"10:5 pipelines[0].commit_interval",
		"11:5 pipelines[0].comit_interval",
		"14:5 pipelines[1].workers",
		"15:22 pipelines[1].kafka_metadata[0]",
		" pipelines[1].topics", // not in the file: no position
	}, got)
	require.True(t, strings.HasPrefix(err.Error(), `config: 2:3: node.log_level: must be one of debug, info, warn, error; got "loud"`+"\n"), err.Error())
	require.Contains(t, err.Error(), "\nconfig: pipelines[1].topics: must list at least one topic")
}

// TestValueThatDidNotDecodeIsNotValidated: a field whose value did not
// decode keeps its default, and is not also reported by validation.
func TestValueThatDidNotDecodeIsNotValidated(t *testing.T) {
	_, err := Parse([]byte("kafka: {brokers: a:1}\npipelines:\n  - {topics: t, table: a.b}\n"), nil)
	conftest.RequireFieldAt(t, err, "kafka.brokers", 1, "want a list such as [a:1]")
	conftest.RequireFieldAt(t, err, "pipelines[0].topics", 3, "want a list such as [t]")
	require.Len(t, conf.Fields(err), 2, "%v", err)
	_, err = Parse([]byte("pipelines: [clicks]\nkafka: {brokers: [a:1]}\n"), nil)
	conftest.RequireFieldAt(t, err, "pipelines[0]", 1, `want a map, got "clicks"`)
	require.Len(t, conf.Fields(err), 1, "%v", err)
}

// TestEmptyListElement: YAML would silently drop an empty element of a
// list (and move the next ones up); it is a problem of the element.
func TestEmptyListElement(t *testing.T) {
	_, err := Parse([]byte("kafka: {brokers: [a:1]}\npipelines:\n  -\n"), nil)
	conftest.RequireFieldAt(t, err, "pipelines[0]", 3, "want a map, got null")
	require.Len(t, conf.Fields(err), 1, "%v", err)
	_, err = Parse([]byte("kafka: {brokers: [a:1]}\npipelines:\n  - {topics: [a, ~, b], table: a.b}\n"), nil)
	fe := conftest.RequireFieldAt(t, err, "pipelines[0].topics[1]", 3, "want a string, got null")
	require.Equal(t, 18, fe.Column)
	_, err = Parse([]byte("kafka: {brokers: [a:1, ~]}\npipelines: [{topics: [t], table: a.b}]\n"), nil)
	conftest.RequireFieldAt(t, err, "kafka.brokers[1]", 1, "want a string, got null")
}

// TestBadDefaultReportedOnce: defaults are copied into the pipelines that
// leave a field unset; a bad default is reported once, under defaults,
// and a pipeline's own bad value under the pipeline.
func TestBadDefaultReportedOnce(t *testing.T) {
	for _, c := range []struct{ field, value, reason string }{
		{"start", "yesterday", `must be earliest, latest or an RFC 3339 timestamp, got "yesterday"`},
		{"commit_interval", "10ms", "must be at least 100ms, got 10ms"},
		{"target_file_size", "1KiB", "must be at least 1MiB, got 1024"},
		{"on_data_loss", "ignore", `must be fail or skip, got "ignore"`},
		{"format_version", "1", "must be 2 or 3, got 1"},
	} {
		t.Run(c.field, func(t *testing.T) {
			_, err := Parse([]byte(`kafka: {brokers: [a:1]}
defaults:
  `+c.field+`: `+c.value+`
pipelines:
  - {topics: [a], table: a.a}
  - {topics: [b], table: a.b}
  - {topics: [c], table: a.c, `+c.field+`: `+c.value+`}
`), nil)
			conftest.RequireFieldAt(t, err, "defaults."+c.field, 3, c.reason)
			conftest.RequireFieldAt(t, err, "pipelines[2]."+c.field, 7, c.reason)
			require.Len(t, conf.Fields(err), 2, "%v", err)
		})
	}

	// Validate alone (a configuration built in code) cannot tell a copied
	// default from a value of the pipeline's own: a pipeline that holds the
	// bad default's value is left to the defaults' report.
	cfg := Default()
	cfg.Kafka.Brokers = []string{"a:1"}
	cfg.Defaults.Start = "yesterday"
	cfg.Pipelines = append(cfg.Pipelines, pipelineConfig("a.a", ""), pipelineConfig("a.b", "tomorrow"))
	cfg.FillDefaults()
	err := cfg.Validate()
	conftest.RequireField(t, err, "defaults.start", `got "yesterday"`)
	conftest.RequireField(t, err, "pipelines[1].start", `got "tomorrow"`)
	require.Len(t, conf.Fields(err), 2, "%v", err)
}

// TestNoPipelines: a node without pipelines is a configuration error, not
// a node that runs and does nothing.
func TestNoPipelines(t *testing.T) {
	_, err := Parse([]byte("kafka: {brokers: [a:1]}\n"), nil)
	fe := conftest.RequireFieldAt(t, err, "pipelines", 0, "at least one pipeline is required")
	require.Equal(t, "config: pipelines: at least one pipeline is required", fe.Error())
	_, err = Parse([]byte("kafka: {brokers: [a:1]}\npipelines: []\n"), nil)
	conftest.RequireFieldAt(t, err, "pipelines", 2, "at least one pipeline is required")
	_, err = Parse(nil, nil)
	conftest.RequireField(t, err, "pipelines", "at least one pipeline is required")

	cfg := Default()
	conftest.RequireField(t, cfg.Validate(), "pipelines", "at least one pipeline is required")
}

// TestFieldNotInFileHasNoPosition: a field left to its default, or missing,
// is named without a position.
func TestFieldNotInFileHasNoPosition(t *testing.T) {
	_, err := Parse([]byte("pipelines:\n  - {topics: [t], table: a.b}\n"), nil)
	fe := conftest.RequireFieldAt(t, err, "kafka.brokers", 0, "must list at least one host:port")
	require.Equal(t, "config: kafka.brokers: must list at least one host:port", fe.Error())
}

// TestEnvProblemsNameTheVariable: a bad value from the environment names
// its variable, not a line of the file it overrides; every bad variable
// is reported.
func TestEnvProblemsNameTheVariable(t *testing.T) {
	_, err := Parse([]byte(onePipeline+"    start: earliest\n"), []string{
		"FLOE_PIPELINES_0_START=yesterday",
		"FLOE_PIPELINES_0_COMMIT_INTERVAL=soon",
		"FLOE_KAFKA_BROKERS=a:1,nohostport",
		"FLOE_NODE_SHUTDOWN_TIMEOUT=later",
	})
	fe := conftest.RequireFieldAt(t, err, "pipelines[0].start", 0, `got "yesterday"`)
	require.Equal(t, "FLOE_PIPELINES_0_START", fe.Env)
	require.Equal(t, `config: FLOE_PIPELINES_0_START: pipelines[0].start: must be earliest, latest or an RFC 3339 timestamp, got "yesterday"`, fe.Error())
	fe = conftest.RequireFieldAt(t, err, "kafka.brokers[1]", 0, "host:port")
	require.Equal(t, "FLOE_KAFKA_BROKERS", fe.Env)
	conftest.RequireField(t, err, "FLOE_PIPELINES_0_COMMIT_INTERVAL", "want a duration")
	conftest.RequireField(t, err, "FLOE_NODE_SHUTDOWN_TIMEOUT", "want a duration")
	require.Len(t, conf.Fields(err), 4, "%v", err)

	_, err = Parse([]byte("kafka: {brokers: [a:1]}\n"), []string{"FLOE_PIPELINES_0_TABLE=a.b"})
	conftest.RequireField(t, err, "FLOE_PIPELINES_0_TABLE", "not an existing element (there are none)")
}

// TestSyntaxErrorLine: YAML's own errors are placed on their line.
func TestSyntaxErrorLine(t *testing.T) {
	for _, c := range []struct{ yaml, want string }{
		{"a: b: c\n", "config: 1: mapping values are not allowed in this context"},
		{"node:\n  data_dir: x\n  log_level: a: b\n", "config: 3: mapping values are not allowed in this context"},
		{"node:\n  data_dir: x\n bad: y\n", "config: 3: did not find expected key"},
		{"x: 1\ny: [a, b\nz: 3\n", "config: 2: did not find expected ',' or ']'"},
		{"x: 1\n\ty: 2\n", "config: 2: found a tab character that violates indentation"},
		{"x: 1\ny: *nope\n", "config: unknown anchor 'nope' referenced"},
		// At the end of the file: on the last line.
		{"kafka: [\n", "config: 1: did not find expected node content"},
		{"x: 1\r\ny: {", "config: 2: did not find expected node content"},
	} {
		_, err := Parse([]byte(c.yaml), nil)
		require.EqualError(t, err, c.want, "%q", c.yaml)
	}
	_, err := Parse([]byte("hello\n"), nil)
	require.EqualError(t, err, `config: 1:1: want a map of sections (node, cluster, kafka, catalog, storage, defaults, pipelines, maintenance), got "hello"`)
}

// TestLoadNamesTheFile: Load's positions carry the file's name.
func TestLoadNamesTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "floe.yaml")
	require.NoError(t, os.WriteFile(path, []byte(onePipeline+"    commit_interval: fast\n    comit_interval: 1s\n"), 0o644))
	_, err := Load(path)
	require.EqualError(t, err, "config: "+path+`:6:5: pipelines[0].commit_interval: want a duration such as 500ms, 10s or 1m, got "fast"`+"\n"+
		"config: "+path+":7:5: pipelines[0].comit_interval: unknown field; did you mean commit_interval?")

	require.NoError(t, os.WriteFile(path, []byte("a: b: c\n"), 0o644))
	_, err = Load(path)
	require.EqualError(t, err, "config: "+path+":1: mapping values are not allowed in this context")
}

// TestAnchorsAndMerges: YAML anchors, aliases and merge keys work as in
// YAML; a key of the map itself wins over a merged one.
func TestAnchorsAndMerges(t *testing.T) {
	cfg, err := Parse([]byte(`kafka: {brokers: [a:1]}
pipelines:
  - &base
    name: clicks
    topics: &topics [clicks]
    table: lake.clicks
    commit_interval: 2s
  - <<: *base
    name: orders
    table: lake.orders
    kafka_metadata: *topics
`), nil)
	require.Error(t, err, "clicks is no metadata column")
	// Where the value is written: in the anchored list.
	fe := conftest.RequireFieldAt(t, err, "pipelines[1].kafka_metadata[0]", 5, "clicks")
	require.Equal(t, 22, fe.Column)

	cfg, err = Parse([]byte(`kafka: {brokers: [a:1]}
pipelines:
  - &base {name: clicks, topics: [clicks], table: lake.clicks, commit_interval: 2s}
  - <<: [{workers: 3}, *base]
    name: orders
    table: lake.orders
    workers: 2
`), nil)
	require.NoError(t, err)
	require.Equal(t, "orders", cfg.Pipelines[1].Name)
	require.Equal(t, []string{"clicks"}, cfg.Pipelines[1].Topics)
	require.Equal(t, 2, cfg.Pipelines[1].Workers)
	require.Equal(t, "2s", cfg.Pipelines[1].CommitInterval.String())

	_, err = Parse([]byte(onePipeline+"    <<: {topic: [x]}\n"), nil)
	conftest.RequireFieldAt(t, err, "pipelines[0].topic", 6, "did you mean topics?")
	_, err = Parse([]byte(onePipeline+"    <<: [a]\n"), nil)
	conftest.RequireFieldAt(t, err, "pipelines[0].<<", 6, `want a map or a list of maps to merge, got "a"`)
	_, err = Parse([]byte("kafka: {brokers: [a:1]}\npipelines:\n  - &p {topics: [t], table: a.b, <<: *p}\n"), nil)
	conftest.RequireFieldAt(t, err, "pipelines[0].<<", 3, "contains itself")
}

// TestDuplicateKey: a key set twice is reported at the second.
func TestDuplicateKey(t *testing.T) {
	_, err := Parse([]byte(onePipeline+"    table: lake.other\n"), nil)
	conftest.RequireFieldAt(t, err, "pipelines[0].table", 6, "duplicate key; first at line 5")
}

func TestClosest(t *testing.T) {
	names := []string{"name", "topics", "table", "commit_interval", "start"}
	for k, want := range map[string]string{
		"comit_interval": "commit_interval", "commit_intreval": "commit_interval", "COMMIT_INTERVAL": "commit_interval",
		"topic": "topics", "nmae": "name", "tabel": "table", "stat": "start",
		"interval": "", "x": "", "partitions": "", "": "",
	} {
		require.Equal(t, want, closest(k, names), k)
	}
	require.Equal(t, 1, editDistance("ab", "ba"))
	require.Equal(t, 3, editDistance("", "abc"))
	require.Equal(t, 2, editDistance("kitten", "sittin"))
}

func pipelineConfig(table, start string) ingest.PipelineConfig {
	return ingest.PipelineConfig{Topics: []string{"t"}, Table: table, Start: start}
}
