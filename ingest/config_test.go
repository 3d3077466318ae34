package ingest_test

import (
	"testing"
	"time"

	"github.com/floelake/floe/ingest"
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
			CommitInterval: conf.Duration(time.Second), TargetFileSize: 128 << 20, OnDataLoss: ingest.OnDataLossFail}
		f(&p)
		return p
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
		{"format", func(p *ingest.PipelineConfig) { p.Format = "avro" }, "format", `must be json, got "avro"`},
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
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			conftest.RequireField(t, pipeline(c.mod).Validate(), c.field, c.reason)
		})
	}
}

func TestPipelineConfigReportsAllProblemsAtOnce(t *testing.T) {
	err := ingest.PipelineConfig{Table: "nodot", Format: "avro", Start: "earliest", OnDataLoss: "drop"}.Validate()
	for _, field := range []string{"topics", "table", "format", "commit_interval", "target_file_size", "on_data_loss"} {
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
