package config

import (
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/floelake/floe/internal/conf"
	"github.com/floelake/floe/internal/conf/conftest"
)

const minimal = `
kafka:
  brokers: [localhost:9092]
pipelines:
  - topics: [clicks]
    table: demo.clicks
`

func TestExampleConfigIsValid(t *testing.T) {
	cfg, err := Load("../../floe.example.yaml")
	require.NoError(t, err)
	require.Len(t, cfg.Pipelines, 3)
	require.Equal(t, time.Second, cfg.Pipelines[0].CommitInterval.D())
	require.Equal(t, 10*time.Second, cfg.Pipelines[2].CommitInterval.D(), "default applies")
	require.Equal(t, "lake.clicks__dlq", cfg.Pipelines[0].DeadLetter())
	require.False(t, cfg.Pipelines[0].Keyed())
	require.Equal(t, 2, cfg.Pipelines[0].FormatVersion)
	require.Equal(t, "avro", cfg.Pipelines[1].Format)
	require.True(t, cfg.Pipelines[1].Evolves())
	require.False(t, cfg.Pipelines[0].Evolves())
	require.Equal(t, []string{"order_id"}, cfg.Pipelines[2].Key)
	require.Equal(t, 2, cfg.Pipelines[2].FormatVersion)
	sch, err := cfg.Pipelines[2].DeclaredSchema()
	require.NoError(t, err)
	f, ok := sch.FindFieldByName("order_id")
	require.True(t, ok)
	require.Equal(t, []int{f.ID}, sch.IdentifierFieldIDs)
}

func TestDefaultsFilled(t *testing.T) {
	cfg, err := Parse([]byte(minimal), nil)
	require.NoError(t, err)
	p := cfg.Pipelines[0]
	require.Equal(t, "demo.clicks", p.Name)
	require.Equal(t, "json", p.Format)
	require.Equal(t, "earliest", p.Start)
	require.Equal(t, conf.ByteSize(128<<20), p.TargetFileSize)
	require.Equal(t, 10*time.Second, p.CommitInterval.D())
	require.Equal(t, "fail", p.OnDataLoss)
	require.Equal(t, 2, p.FormatVersion)
	require.False(t, p.Keyed())
	require.Equal(t, "sql", cfg.Catalog.Type)
}

func TestFormatVersionAndKey(t *testing.T) {
	cfg, err := Parse([]byte(`
kafka: {brokers: [a:1]}
defaults: {format_version: 3}
pipelines:
  - {topics: [t], table: a.b}
  - {topics: [u], table: a.c, format_version: 2}
  - topics: [v]
    table: a.d
    key: [region, id]
    schema:
      - {name: id, type: long, required: true}
      - {name: region, type: string, required: true}
`), nil)
	require.NoError(t, err)
	require.Equal(t, 3, cfg.Pipelines[0].FormatVersion, "from defaults")
	require.Equal(t, 2, cfg.Pipelines[1].FormatVersion)
	require.Equal(t, 3, cfg.Pipelines[2].FormatVersion)
	require.Equal(t, []string{"region", "id"}, cfg.Pipelines[2].Key)
	require.True(t, cfg.Pipelines[2].Keyed())

	cfg, err = Parse([]byte(minimal+"    schema: [{name: id, type: long, required: true}]\n"), []string{
		"FLOE_PIPELINES_0_KEY=id", "FLOE_DEFAULTS_FORMAT_VERSION=3"})
	require.NoError(t, err)
	require.Equal(t, []string{"id"}, cfg.Pipelines[0].Key)
	require.Equal(t, 3, cfg.Pipelines[0].FormatVersion)

	cfg, err = Parse([]byte(minimal+"    schema: [{name: id, type: long, required: true}]\n    key: [id]\n"), []string{
		"FLOE_PIPELINES_0_DELETE_MODE=equality"})
	require.NoError(t, err)
	require.Equal(t, "equality", cfg.Pipelines[0].DeleteMode)
	require.True(t, cfg.Pipelines[0].EqualityDeletes())

	_, err = Parse([]byte(minimal), []string{"FLOE_PIPELINES_0_FORMAT_VERSION=4"})
	fe := conftest.RequireField(t, err, "pipelines[0].format_version", "must be 2 or 3, got 4")
	require.Equal(t, "FLOE_PIPELINES_0_FORMAT_VERSION", fe.Env)
}

func TestOnDataLoss(t *testing.T) {
	cfg, err := Parse([]byte(`
kafka: {brokers: [a:1]}
defaults: {on_data_loss: skip}
pipelines:
  - {topics: [t], table: a.b}
  - {topics: [u], table: a.c, on_data_loss: fail}
`), nil)
	require.NoError(t, err)
	require.Equal(t, "skip", cfg.Pipelines[0].OnDataLoss, "from defaults")
	require.Equal(t, "fail", cfg.Pipelines[1].OnDataLoss)

	cfg, err = Parse([]byte(minimal), []string{"FLOE_PIPELINES_0_ON_DATA_LOSS=skip"})
	require.NoError(t, err)
	require.Equal(t, "skip", cfg.Pipelines[0].OnDataLoss)

	_, err = Parse([]byte("defaults: {on_data_loss: drop}\n"), nil)
	conftest.RequireField(t, err, "defaults.on_data_loss", `must be fail or skip, got "drop"`)
}

func TestEnvOverrides(t *testing.T) {
	cfg, err := Parse([]byte(minimal), []string{
		"FLOE_KAFKA_BROKERS=a:1, b:2",
		"FLOE_CATALOG_URI=postgres://u@h/db",
		"FLOE_KAFKA_SASL_MECHANISM=SCRAM-SHA-512",
		"FLOE_KAFKA_SASL_USERNAME=floe",
		"FLOE_KAFKA_TLS_ENABLED=true",
		"FLOE_PIPELINES_0_COMMIT_INTERVAL=2s",
		"FLOE_NODE_SHUTDOWN_TIMEOUT=5s",
		"FLOE_DEFAULTS_TARGET_FILE_SIZE=64MiB",
		"FLOE_CLUSTER_HEARTBEAT_INTERVAL=2s",
		"FLOE_CLUSTER_TLS_CA_FILE=/etc/floe/ca.pem",
		"FLOE_CLUSTER_JOIN=h1:7947,h2:7947",
		"FLOE_STORAGE_S3_PATH_STYLE=true",
		"FLOE_STORAGE_S3_ENDPOINT=http://127.0.0.1:7070",
		"FLOE_KAFKA_FETCH_MAX_BYTES=8MiB",
		"FLOE_PIPELINES_0_WORKERS=3",
		"FLOE_UNRELATED_THING=1",
		"PATH=/bin",
	})
	require.NoError(t, err)
	require.Equal(t, []string{"a:1", "b:2"}, cfg.Kafka.Brokers)
	require.Equal(t, "postgres://u@h/db", cfg.Catalog.URI)
	require.Equal(t, "SCRAM-SHA-512", cfg.Kafka.SASL.Mechanism)
	require.True(t, cfg.Kafka.TLS.Enabled)
	require.Equal(t, 2*time.Second, cfg.Pipelines[0].CommitInterval.D())
	require.Equal(t, 5*time.Second, cfg.Node.ShutdownTimeout.D())
	require.Equal(t, conf.ByteSize(64<<20), cfg.Pipelines[0].TargetFileSize)
	require.Equal(t, 2*time.Second, cfg.Cluster.HeartbeatInterval.D())
	require.Equal(t, "/etc/floe/ca.pem", cfg.Cluster.TLS.CAFile)
	require.Equal(t, []string{"h1:7947", "h2:7947"}, cfg.Cluster.Join)
	require.True(t, cfg.Storage.S3.PathStyle)
	require.Equal(t, "http://127.0.0.1:7070", cfg.Storage.S3.Endpoint)
	require.Equal(t, conf.ByteSize(8<<20), cfg.Kafka.FetchMaxBytes)
	require.Equal(t, 3, cfg.Pipelines[0].Workers)
}

func TestEnvOverrideBadValueNamesVariable(t *testing.T) {
	_, err := Parse([]byte(minimal), []string{"FLOE_PIPELINES_0_COMMIT_INTERVAL=soon"})
	var fe *conf.FieldError
	require.ErrorAs(t, err, &fe)
	require.Equal(t, "FLOE_PIPELINES_0_COMMIT_INTERVAL", fe.Field)
	require.Contains(t, fe.Reason, "duration")

	_, err = Parse([]byte(minimal), []string{"FLOE_PIPELINES_3_TABLE=x.y"})
	require.ErrorAs(t, err, &fe)
	require.Contains(t, fe.Reason, "not an existing element")
}

func TestUnknownFieldRejected(t *testing.T) {
	_, err := Parse([]byte(minimal+"    commit_intervall: 1s\n"), nil)
	require.ErrorContains(t, err, "commit_intervall")
}

// TestValidateNamesEveryBadField checks that each section's problems are
// reported under the section's path; the components' own tests cover their
// rules field by field.
func TestValidateNamesEveryBadField(t *testing.T) {
	cases := []struct {
		name, yaml, field, reason string
	}{
		{"catalog type", "catalog: {type: hive}", "catalog.type", "must be sql or rest"},
		{"rest uri", "catalog: {type: rest, uri: 'ftp://x'}", "catalog.uri", "http(s) URL"},
		{"warehouse", "catalog: {warehouse: 'gs://b/x'}", "catalog.warehouse", "file:// or s3://"},
		{"sasl", "kafka: {brokers: [a:1], sasl: {mechanism: GSSAPI}}", "kafka.sasl.mechanism", "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"},
		{"sasl user", "kafka: {brokers: [a:1], sasl: {mechanism: PLAIN}}", "kafka.sasl.username", "required"},
		{"broker", "kafka: {brokers: [nohostport]}", "kafka.brokers[0]", "host:port"},
		{"tls pair", "kafka: {brokers: [a:1], tls: {cert_file: x}}", "kafka.tls", "together"},
		{"fetch", "kafka: {fetch_max_bytes: 1KiB}", "kafka.fetch_max_bytes", "at least 1MiB"},
		{"log level", "node: {log_level: loud}", "node.log_level", "debug, info, warn, error"},
		{"shutdown", "node: {shutdown_timeout: 0s}", "node.shutdown_timeout", "positive duration"},
		{"defaults interval", "defaults: {commit_interval: 10ms}", "defaults.commit_interval", "at least 100ms, got 10ms"},
		{"cluster join", "cluster: {enabled: true, join: [nope]}", "cluster.join[0]", "api_addr"},
		{"cluster ca", "cluster: {enabled: true, tls: {ca_file: ca.pem}}", "cluster.tls.ca_file", "needs cert_file"},
		{"cluster memory catalog", "cluster: {enabled: true}\ncatalog: {uri: 'sqlite::memory:'}", "catalog.uri", "cannot be shared by cluster members"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.yaml), nil)
			conftest.RequireField(t, err, c.field, c.reason)
		})
	}
	pipelineCases := []struct {
		name, pipeline, field, reason string
	}{
		{"no topics", "{table: a.b}", "pipelines[0].topics", "at least one topic"},
		{"interval", "{topics: [t], table: a.b, commit_interval: 1ms}", "pipelines[0].commit_interval", "at least 100ms"},
		{"partition col", "{topics: [t], table: a.b, schema: [{name: x, type: long}], partition_by: ['day(y)']}", "pipelines[0].partition_by", "no column \"y\""},
		{"metadata", "{topics: [t], table: a.b, kafka_metadata: [headers]}", "pipelines[0].kafka_metadata[0]", "allowed are topic, partition, offset, timestamp, key"},
		{"on data loss", "{topics: [t], table: a.b, on_data_loss: ignore}", "pipelines[0].on_data_loss", `must be fail or skip, got "ignore"`},
		{"format version", "{topics: [t], table: a.b, format_version: 1}", "pipelines[0].format_version", "must be 2 or 3, got 1"},
		{"format property", "{topics: [t], table: a.b, table_properties: {format-version: '3'}}", "pipelines[0].table_properties.format-version",
			`"3" conflicts with format_version 2`},
		{"key inferred", "{topics: [t], table: a.b, key: [id]}", "pipelines[0].key", "needs a declared schema"},
		{"key missing", "{topics: [t], table: a.b, schema: [{name: id, type: long, required: true}], key: [id, nope]}", "pipelines[0].key[1]",
			`no column "nope" in the schema`},
		{"key optional", "{topics: [t], table: a.b, schema: [{name: id, type: long}], key: [id]}", "pipelines[0].key[0]",
			"must be declared required: true"},
		{"key double", "{topics: [t], table: a.b, schema: [{name: x, type: double, required: true}], key: [x]}", "pipelines[0].key[0]",
			"not float, double, struct, list or map"},
		{"key metadata", "{topics: [t], table: a.b, schema: [{name: id, type: long, required: true}], key: [_kafka_offset]}", "pipelines[0].key[0]",
			"is a Kafka metadata column"},
		{"delete mode", "{topics: [t], table: a.b, schema: [{name: id, type: long, required: true}], key: [id], delete_mode: equal}",
			"pipelines[0].delete_mode", `must be position or equality, got "equal"`},
		{"delete mode without key", "{topics: [t], table: a.b, delete_mode: equality}", "pipelines[0].delete_mode", "needs key columns (key:)"},
		{"equality deletes with a version", "{topics: [t], table: a.b, schema: [{name: id, type: long, required: true}, {name: v, type: long}], " +
			"key: [id], version_column: v, delete_mode: equality}", "pipelines[0].delete_mode", "equality cannot be combined with version_column"},
	}
	for _, c := range pipelineCases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte("kafka: {brokers: [a:1]}\npipelines:\n  - "+c.pipeline+"\n"), nil)
			conftest.RequireField(t, err, c.field, c.reason)
		})
	}
}

func TestDisabledClusterNotValidated(t *testing.T) {
	_, err := Parse([]byte(minimal+"cluster: {join: [nope], raft_addr: nohostport}\n"), nil)
	require.NoError(t, err)
}

func TestBrokersRequiredWithPipelines(t *testing.T) {
	_, err := Parse([]byte("pipelines:\n  - {topics: [t], table: a.b}\n"), nil)
	conftest.RequireField(t, err, "kafka.brokers", "must list at least one host:port")
	_, err = Parse([]byte("node: {log_level: debug}\n"), nil)
	require.Len(t, conf.Fields(err), 1, "no pipelines, no brokers needed: %v", err)
	conftest.RequireField(t, err, "pipelines", "at least one pipeline is required")
}

func TestValidateReportsAllProblemsAtOnce(t *testing.T) {
	_, err := Parse([]byte(`
catalog: {type: hive}
node: {log_level: loud}
cluster: {enabled: true, dead_after: 1s}
kafka: {brokers: [a:1], group: ""}
pipelines:
  - {name: p, topics: [t], table: a.b, commit_interval: 1ms}
  - {name: p, topics: [u], table: a.b, format: xml}
`), nil)
	for _, f := range []string{"catalog.type", "node.log_level", "cluster.dead_after", "kafka.group",
		"pipelines[0].commit_interval", "pipelines[1].name", "pipelines[1].format", "pipelines[1].table"} {
		conftest.RequireField(t, err, f, "")
	}
}

func TestDuplicateTablesRejected(t *testing.T) {
	_, err := Parse([]byte(`
kafka: {brokers: [a:1]}
pipelines:
  - {name: one, topics: [t], table: a.b}
  - {name: two, topics: [u], table: a.b}
`), nil)
	conftest.RequireField(t, err, "pipelines[1].table", "one writer")
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(os.DevNull + "/nope.yaml")
	require.ErrorContains(t, err, "config:")
}
