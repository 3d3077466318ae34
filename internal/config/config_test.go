package config

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
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
	require.Len(t, cfg.Pipelines, 2)
	require.Equal(t, time.Second, cfg.Pipelines[0].CommitInterval.D())
	require.Equal(t, 10*time.Second, cfg.Pipelines[1].CommitInterval.D(), "default applies")
	require.Equal(t, "lake.clicks__dlq", cfg.Pipelines[0].DeadLetter())
}

func TestDefaultsFilled(t *testing.T) {
	cfg, err := Parse([]byte(minimal), nil)
	require.NoError(t, err)
	p := cfg.Pipelines[0]
	require.Equal(t, "demo.clicks", p.Name)
	require.Equal(t, "json", p.Format)
	require.Equal(t, "earliest", p.Start)
	require.Equal(t, ByteSize(128<<20), p.TargetFileSize)
	require.Equal(t, 10*time.Second, p.CommitInterval.D())
	require.Equal(t, "fail", p.OnDataLoss)
	require.Equal(t, "sql", cfg.Catalog.Type)
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
	requireField(t, err, "defaults.on_data_loss", `must be fail or skip, got "drop"`)
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
	require.Equal(t, ByteSize(64<<20), cfg.Pipelines[0].TargetFileSize)
}

func TestEnvOverrideBadValueNamesVariable(t *testing.T) {
	_, err := Parse([]byte(minimal), []string{"FLOE_PIPELINES_0_COMMIT_INTERVAL=soon"})
	var fe *FieldError
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

func TestValidateNamesEveryBadField(t *testing.T) {
	cases := []struct {
		name, yaml, field, reason string
	}{
		{"catalog type", "catalog: {type: hive}", "catalog.type", "must be sql or rest"},
		{"rest uri", "catalog: {type: rest, uri: 'ftp://x'}", "catalog.uri", "http(s) URL"},
		{"sql uri", "catalog: {uri: 'mysql://x'}", "catalog.uri", "sqlite: or postgres://"},
		{"warehouse", "catalog: {warehouse: 'gs://b/x'}", "catalog.warehouse", "file:// or s3://"},
		{"sasl", "kafka: {brokers: [a:1], sasl: {mechanism: GSSAPI}}", "kafka.sasl.mechanism", "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"},
		{"sasl user", "kafka: {brokers: [a:1], sasl: {mechanism: PLAIN}}", "kafka.sasl.username", "required"},
		{"broker", "kafka: {brokers: [nohostport]}", "kafka.brokers[0]", "host:port"},
		{"log level", "node: {log_level: loud}", "node.log_level", "debug, info, warn, error"},
		{"tls pair", "kafka: {brokers: [a:1], tls: {cert_file: x}}", "kafka.tls", "together"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.yaml), nil)
			requireField(t, err, c.field, c.reason)
		})
	}
	pipelineCases := []struct {
		name, pipeline, field, reason string
	}{
		{"no topics", "{table: a.b}", "pipelines[0].topics", "at least one topic"},
		{"table name", "{topics: [t], table: nodot}", "pipelines[0].table", "namespace.table"},
		{"format", "{topics: [t], table: a.b, format: avro}", "pipelines[0].format", "must be json"},
		{"start", "{topics: [t], table: a.b, start: yesterday}", "pipelines[0].start", "earliest, latest or an RFC 3339"},
		{"interval", "{topics: [t], table: a.b, commit_interval: 1ms}", "pipelines[0].commit_interval", "at least 100ms"},
		{"file size", "{topics: [t], table: a.b, target_file_size: 10KiB}", "pipelines[0].target_file_size", "at least 1MiB"},
		{"type", "{topics: [t], table: a.b, schema: [{name: x, type: varchar}]}", "pipelines[0].schema", "unknown type \"varchar\""},
		{"partition col", "{topics: [t], table: a.b, schema: [{name: x, type: long}], partition_by: ['day(y)']}", "pipelines[0].partition_by", "no column \"y\""},
		{"partition transform", "{topics: [t], table: a.b, schema: [{name: x, type: string}], partition_by: ['day(x)']}", "pipelines[0].partition_by", "cannot apply"},
		{"metadata", "{topics: [t], table: a.b, kafka_metadata: [headers]}", "pipelines[0].kafka_metadata[0]", "allowed are topic, partition, offset, timestamp, key"},
		{"dlq same", "{topics: [t], table: a.b, dead_letter_table: a.b}", "pipelines[0].dead_letter_table", "must differ"},
		{"on data loss", "{topics: [t], table: a.b, on_data_loss: ignore}", "pipelines[0].on_data_loss", `must be fail or skip, got "ignore"`},
	}
	for _, c := range pipelineCases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte("kafka: {brokers: [a:1]}\npipelines:\n  - "+c.pipeline+"\n"), nil)
			requireField(t, err, c.field, c.reason)
		})
	}
}

func TestValidateReportsAllProblemsAtOnce(t *testing.T) {
	_, err := Parse([]byte("catalog: {type: hive}\nnode: {log_level: loud}\n"), nil)
	requireField(t, err, "catalog.type", "")
	requireField(t, err, "node.log_level", "")
}

func TestDuplicateTablesRejected(t *testing.T) {
	_, err := Parse([]byte(`
kafka: {brokers: [a:1]}
pipelines:
  - {name: one, topics: [t], table: a.b}
  - {name: two, topics: [u], table: a.b}
`), nil)
	requireField(t, err, "pipelines[1].table", "one writer")
}

func requireField(t *testing.T, err error, field, reason string) {
	t.Helper()
	require.Error(t, err)
	var found []string
	for _, e := range flatten(err) {
		var fe *FieldError
		if errors.As(e, &fe) {
			found = append(found, fe.Field+": "+fe.Reason)
			if fe.Field == field && strings.Contains(fe.Reason, reason) {
				require.Contains(t, err.Error(), "config: "+field+": ")
				return
			}
		}
	}
	t.Fatalf("no error for field %q containing %q; got %q", field, reason, found)
}

func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

func TestByteSize(t *testing.T) {
	for in, want := range map[string]int64{"128MiB": 128 << 20, "64MB": 64e6, "1g": 1 << 30, "1048576": 1 << 20, "512k": 512 << 10} {
		got, err := ParseByteSize(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	_, err := ParseByteSize("lots")
	require.ErrorContains(t, err, "want a size")
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(os.DevNull + "/nope.yaml")
	require.ErrorContains(t, err, "config:")
}
