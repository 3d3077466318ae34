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

	"github.com/floelake/floe/catalog"
	"github.com/floelake/floe/cluster"
	"github.com/floelake/floe/ingest"
	"github.com/floelake/floe/internal/conf"
)

// Config is the whole of a floe node's configuration: one file, overridable
// by FLOE_* environment variables and then by command-line flags. Each
// section but node and defaults is the configuration type of the component
// it configures.
type Config struct {
	Node      Node                    `yaml:"node"`
	Cluster   cluster.Config          `yaml:"cluster"`
	Kafka     ingest.KafkaConfig      `yaml:"kafka"`
	Catalog   catalog.Config          `yaml:"catalog"`
	Storage   catalog.StorageConfig   `yaml:"storage"`
	Defaults  Defaults                `yaml:"defaults"`
	Pipelines []ingest.PipelineConfig `yaml:"pipelines"`
}

// Node holds process-level settings.
type Node struct {
	// DataDir holds node-local state (the embedded catalog by default).
	DataDir string `yaml:"data_dir"`
	// HTTPAddr serves /metrics, /healthz and /readyz. Empty disables it.
	HTTPAddr string `yaml:"http_addr"`
	// ShutdownTimeout bounds the final commit on SIGTERM.
	ShutdownTimeout conf.Duration `yaml:"shutdown_timeout"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `yaml:"log_level"`
}

// Defaults apply to every pipeline that does not set its own value.
type Defaults struct {
	CommitInterval conf.Duration `yaml:"commit_interval"`
	TargetFileSize conf.ByteSize `yaml:"target_file_size"`
	Start          string        `yaml:"start"`
	OnDataLoss     string        `yaml:"on_data_loss"`
}

// Default returns a configuration with every default filled in.
func Default() Config {
	return Config{
		Node: Node{
			DataDir:         "./floe-data",
			HTTPAddr:        "127.0.0.1:8080",
			ShutdownTimeout: conf.Duration(30 * time.Second),
			LogLevel:        "info",
		},
		Cluster: cluster.DefaultConfig(),
		Kafka:   ingest.DefaultKafkaConfig(),
		Catalog: catalog.DefaultConfig(),
		Defaults: Defaults{
			CommitInterval: conf.Duration(10 * time.Second),
			TargetFileSize: 128 << 20,
			Start:          "earliest",
			OnDataLoss:     ingest.OnDataLossFail,
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
			return &conf.FieldError{Field: k, Reason: err.Error()}
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
