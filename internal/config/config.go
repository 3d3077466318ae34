package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is the whole of a floe node's configuration: one file, overridable
// by FLOE_* environment variables and then by command-line flags.
type Config struct {
	Node      Node       `yaml:"node"`
	Cluster   Cluster    `yaml:"cluster"`
	Kafka     Kafka      `yaml:"kafka"`
	Catalog   Catalog    `yaml:"catalog"`
	Storage   Storage    `yaml:"storage"`
	Defaults  Defaults   `yaml:"defaults"`
	Pipelines []Pipeline `yaml:"pipelines"`
}

// Node holds process-level settings.
type Node struct {
	// DataDir holds node-local state (the embedded catalog by default).
	DataDir string `yaml:"data_dir"`
	// HTTPAddr serves /metrics, /healthz and /readyz. Empty disables it.
	HTTPAddr string `yaml:"http_addr"`
	// ShutdownTimeout bounds the final commit on SIGTERM.
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `yaml:"log_level"`
}

// Cluster makes the node a member of a raft-replicated floe cluster: the
// members share the pipelines' partitions, and the raft leader commits every
// table. When disabled, the node runs its pipelines alone.
type Cluster struct {
	Enabled bool `yaml:"enabled"`
	// NodeID names the node in the cluster; it must never change for a data
	// directory. Default: the host name.
	NodeID string `yaml:"node_id"`
	// RaftAddr is host:port the raft transport listens on;
	// RaftAdvertiseAddr is what other members dial (default RaftAddr).
	RaftAddr          string `yaml:"raft_addr"`
	RaftAdvertiseAddr string `yaml:"raft_advertise_addr"`
	// APIAddr is host:port the cluster gRPC service listens on (proposals
	// forwarded to the leader, join, leave, status); APIAdvertiseAddr is
	// what other members and the CLI dial (default APIAddr).
	APIAddr          string `yaml:"api_addr"`
	APIAdvertiseAddr string `yaml:"api_advertise_addr"`
	// Join lists API addresses of existing members. A node with no raft
	// state and no join addresses forms a new cluster; with them, it asks to
	// be added and never forms one of its own.
	Join []string `yaml:"join"`
	// HeartbeatInterval is how often a node reports it is alive; a node
	// not heard from for DeadAfter loses its partitions.
	HeartbeatInterval Duration `yaml:"heartbeat_interval"`
	DeadAfter         Duration `yaml:"dead_after"`
	// TLS secures the raft transport and the cluster API with the same
	// certificate (mutual TLS when ca_file is set).
	TLS ServerTLS `yaml:"tls"`
}

// ServerTLS is a certificate a server presents and, optionally, the CA its
// peers' certificates must chain to.
type ServerTLS struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	CAFile   string `yaml:"ca_file"`
}

// Kafka is the source cluster.
type Kafka struct {
	Brokers  []string `yaml:"brokers"`
	ClientID string   `yaml:"client_id"`
	// Group is the consumer group floe commits offsets to after each Iceberg
	// commit. It is for lag monitoring only: progress lives in Iceberg.
	Group string `yaml:"group"`
	TLS   TLS    `yaml:"tls"`
	SASL  SASL   `yaml:"sasl"`
	// FetchMaxBytes caps one fetch response.
	FetchMaxBytes ByteSize `yaml:"fetch_max_bytes"`
}

// TLS configures a TLS client connection.
type TLS struct {
	Enabled            bool   `yaml:"enabled"`
	CAFile             string `yaml:"ca_file"`
	CertFile           string `yaml:"cert_file"`
	KeyFile            string `yaml:"key_file"`
	ServerName         string `yaml:"server_name"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// SASL configures Kafka authentication.
type SASL struct {
	// Mechanism is empty (no SASL), PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.
	Mechanism string `yaml:"mechanism"`
	Username  string `yaml:"username"`
	Password  string `yaml:"password"`
}

// Catalog selects the Iceberg catalog.
type Catalog struct {
	// Type is sql or rest.
	Type string `yaml:"type"`
	// Name is the catalog name recorded in the SQL catalog tables.
	Name string `yaml:"name"`
	// URI is, for sql, sqlite:///path/to/file.db (or sqlite::memory:) or a
	// postgres://... DSN; for rest, the catalog's base URL.
	URI string `yaml:"uri"`
	// Warehouse is the root location of new tables: a local path,
	// file:///path or s3://bucket/prefix.
	Warehouse string `yaml:"warehouse"`
	// Token is a bearer token for the REST catalog.
	Token string `yaml:"token"`
	// Credential is an OAuth2 client credential (id:secret) for the REST catalog.
	Credential string `yaml:"credential"`
	// Properties are passed to the catalog verbatim.
	Properties map[string]string `yaml:"properties"`
}

// Storage configures the object store data files are written to.
type Storage struct {
	S3 S3 `yaml:"s3"`
}

// S3 configures an S3 or S3-compatible object store. Credentials left empty
// come from the AWS default chain (environment, shared config, instance role).
type S3 struct {
	Endpoint        string `yaml:"endpoint"`
	Region          string `yaml:"region"`
	PathStyle       bool   `yaml:"path_style"`
	AccessKeyID     string `yaml:"access_key_id"`
	SecretAccessKey string `yaml:"secret_access_key"`
	SessionToken    string `yaml:"session_token"`
}

// Defaults apply to every pipeline that does not set its own value.
type Defaults struct {
	CommitInterval Duration `yaml:"commit_interval"`
	TargetFileSize ByteSize `yaml:"target_file_size"`
	Start          string   `yaml:"start"`
	OnDataLoss     string   `yaml:"on_data_loss"`
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

// Pipeline consumes topics into one table (and its dead-letter table).
type Pipeline struct {
	Name   string   `yaml:"name"`
	Topics []string `yaml:"topics"`
	// Table is namespace.table (namespaces may be dotted: a.b.table).
	Table string `yaml:"table"`
	// DeadLetterTable receives records that do not decode; default <table>__dlq.
	DeadLetterTable string `yaml:"dead_letter_table"`
	// Format of record values: json.
	Format string `yaml:"format"`
	// Start is where to begin when the table has no committed offsets:
	// earliest, latest, or an RFC 3339 timestamp.
	Start          string   `yaml:"start"`
	CommitInterval Duration `yaml:"commit_interval"`
	TargetFileSize ByteSize `yaml:"target_file_size"`
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
	// Workers is the number of decode/write goroutines; default GOMAXPROCS.
	Workers int `yaml:"workers"`
	// OnDataLoss is what to do when Kafka no longer has records the tables
	// have not committed (retention deleted them, or an unclean leader
	// election replaced them): fail (stop and say so) or skip (resume at
	// the first offset Kafka has and record the skipped offsets in the
	// snapshot summary as floe.skipped).
	OnDataLoss string `yaml:"on_data_loss"`
}

// Data-loss policies (Pipeline.OnDataLoss).
const (
	OnDataLossFail = "fail"
	OnDataLossSkip = "skip"
)

// DeadLetter returns the dead-letter table name.
func (p Pipeline) DeadLetter() string {
	if p.DeadLetterTable != "" {
		return p.DeadLetterTable
	}
	return p.Table + "__dlq"
}

// Default returns a configuration with every default filled in.
func Default() Config {
	return Config{
		Node: Node{
			DataDir:         "./floe-data",
			HTTPAddr:        "127.0.0.1:8080",
			ShutdownTimeout: Duration(30 * time.Second),
			LogLevel:        "info",
		},
		Cluster: Cluster{
			RaftAddr:          "127.0.0.1:7946",
			APIAddr:           "127.0.0.1:7947",
			HeartbeatInterval: Duration(time.Second),
			DeadAfter:         Duration(5 * time.Second),
		},
		Kafka: Kafka{
			ClientID:      "floe",
			Group:         "floe",
			FetchMaxBytes: 16 << 20,
		},
		Catalog: Catalog{
			Type: "sql",
			Name: "floe",
		},
		Defaults: Defaults{
			CommitInterval: Duration(10 * time.Second),
			TargetFileSize: 128 << 20,
			Start:          "earliest",
			OnDataLoss:     OnDataLossFail,
		},
	}
}

// Load reads a YAML file over the defaults, applies FLOE_* environment
// overrides, fills pipeline defaults and validates the result.
func Load(path string) (Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	return Parse(raw, os.Environ())
}

// Parse is Load without the file system: raw YAML plus an environment.
func Parse(raw []byte, environ []string) (Config, error) {
	cfg := Default()
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	if err := ApplyEnv(&cfg, environ); err != nil {
		return Config{}, err
	}
	cfg.FillDefaults()
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// FillDefaults copies the defaults into pipelines that leave them unset.
func (c *Config) FillDefaults() {
	for i := range c.Pipelines {
		p := &c.Pipelines[i]
		if p.CommitInterval == 0 {
			p.CommitInterval = c.Defaults.CommitInterval
		}
		if p.TargetFileSize == 0 {
			p.TargetFileSize = c.Defaults.TargetFileSize
		}
		if p.Start == "" {
			p.Start = c.Defaults.Start
		}
		if p.OnDataLoss == "" {
			p.OnDataLoss = c.Defaults.OnDataLoss
		}
		if p.Format == "" {
			p.Format = "json"
		}
		if p.Name == "" {
			p.Name = p.Table
		}
	}
}

// ApplyEnv overrides scalar and list fields from FLOE_<SECTION>_<FIELD>
// variables, e.g. FLOE_KAFKA_BROKERS=a:9092,b:9092 or
// FLOE_CATALOG_URI=postgres://... . Lists are comma-separated; pipelines are
// addressed by index: FLOE_PIPELINES_0_COMMIT_INTERVAL=1s.
func ApplyEnv(cfg *Config, environ []string) error {
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(k, "FLOE_") {
			continue
		}
		path := strings.ToLower(strings.TrimPrefix(k, "FLOE_"))
		if err := setPath(reflect.ValueOf(cfg).Elem(), path, v); err != nil {
			if errors.Is(err, errNoField) {
				// Unrelated FLOE_ variables (e.g. FLOE_TEST_*) are not config.
				continue
			}
			return &FieldError{Field: k, Reason: err.Error()}
		}
	}
	return nil
}

var errNoField = errors.New("no such field")

// setPath finds the field whose yaml path, joined with underscores, equals
// path. Field names contain underscores themselves, so it tries every prefix.
func setPath(v reflect.Value, path, val string) error {
	switch v.Kind() {
	case reflect.Struct:
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			tag := strings.Split(t.Field(i).Tag.Get("yaml"), ",")[0]
			if tag == "" {
				continue
			}
			if path == tag {
				return setScalar(v.Field(i), val)
			}
			if rest, ok := strings.CutPrefix(path, tag+"_"); ok {
				if err := setPath(v.Field(i), rest, val); !errors.Is(err, errNoField) {
					return err
				}
			}
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Struct {
			idxStr, rest, _ := strings.Cut(path, "_")
			idx, err := strconv.Atoi(idxStr)
			if err != nil || idx < 0 || idx >= v.Len() {
				return fmt.Errorf("index %q is not an existing element (0..%d)", idxStr, v.Len()-1)
			}
			return setPath(v.Index(idx), rest, val)
		}
	}
	return errNoField
}

func setScalar(f reflect.Value, val string) error {
	if u, ok := f.Addr().Interface().(interface{ UnmarshalText([]byte) error }); ok {
		return u.UnmarshalText([]byte(val))
	}
	switch f.Kind() {
	case reflect.String:
		f.SetString(val)
	case reflect.Bool:
		b, err := strconv.ParseBool(val)
		if err != nil {
			return fmt.Errorf("want true or false, got %q", val)
		}
		f.SetBool(b)
	case reflect.Int, reflect.Int64, reflect.Int32:
		n, err := strconv.ParseInt(val, 10, 64)
		if err != nil {
			return fmt.Errorf("want an integer, got %q", val)
		}
		f.SetInt(n)
	case reflect.Slice:
		if f.Type().Elem().Kind() != reflect.String {
			return errNoField
		}
		var parts []string
		for _, p := range strings.Split(val, ",") {
			if p = strings.TrimSpace(p); p != "" {
				parts = append(parts, p)
			}
		}
		f.Set(reflect.ValueOf(parts))
	default:
		return errNoField
	}
	return nil
}

// Duration is a time.Duration that reads "10s" or "1m30s" from YAML.
type Duration time.Duration

// D returns the duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("want a duration such as 500ms, 10s or 1m, got %q", b)
	}
	*d = Duration(v)
	return nil
}

// MarshalText formats a duration.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// ByteSize reads "128MiB", "64MB", "1GiB" or a plain number of bytes.
type ByteSize int64

// UnmarshalText parses a size with an optional unit.
func (s *ByteSize) UnmarshalText(b []byte) error {
	v, err := ParseByteSize(string(b))
	if err != nil {
		return err
	}
	*s = ByteSize(v)
	return nil
}

// MarshalText formats the size in bytes.
func (s ByteSize) MarshalText() ([]byte, error) { return []byte(strconv.FormatInt(int64(s), 10)), nil }

// ParseByteSize parses "128MiB", "64MB", "512k" or "1048576".
func ParseByteSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	units := []struct {
		suffix string
		mult   int64
	}{
		{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30},
		{"kb", 1000}, {"mb", 1000 * 1000}, {"gb", 1000 * 1000 * 1000},
		{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}, {"b", 1},
	}
	lower := strings.ToLower(t)
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(lower, u.suffix) {
			mult = u.mult
			lower = strings.TrimSpace(strings.TrimSuffix(lower, u.suffix))
			break
		}
	}
	n, err := strconv.ParseInt(lower, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("want a size such as 128MiB, 64MB or 1048576, got %q", s)
	}
	return n * mult, nil
}
