package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/floelake/floe/timetravel/api"

	"github.com/floelake/floe/catalog"
	"github.com/floelake/floe/cluster"
	"github.com/floelake/floe/ingest"
	"github.com/floelake/floe/internal/conf"
	"github.com/floelake/floe/maintain"
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
	// Maintenance applies to every table floe writes.
	Maintenance maintain.Config `yaml:"maintenance"`
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
	// RESTCatalog serves the catalog's tables read-only over the Iceberg
	// REST catalog protocol at /iceberg on HTTPAddr.
	RESTCatalog RESTCatalog `yaml:"rest_catalog"`
	// API is the floe API (gRPC on its own address, HTTP/JSON under
	// /api/v1 on HTTPAddr) and the console (/console on HTTPAddr).
	API api.Config `yaml:"api"`
}

// RESTCatalog configures the read-only Iceberg REST catalog a node serves.
type RESTCatalog struct {
	// Disabled turns it off.
	Disabled bool `yaml:"disabled"`
	// Warehouse is the name clients give as their warehouse (default
	// "floe").
	Warehouse string `yaml:"warehouse"`
	// VendCredentials hands the storage section's S3 access key and
	// secret to every client that loads a table (with the endpoint,
	// region and path style, which are always given): for clients that
	// have no credentials of their own. Off by default.
	VendCredentials bool `yaml:"vend_credentials"`
}

// Defaults apply to every pipeline that does not set its own value.
type Defaults struct {
	CommitInterval conf.Duration `yaml:"commit_interval"`
	TargetFileSize conf.ByteSize `yaml:"target_file_size"`
	Start          string        `yaml:"start"`
	OnDataLoss     string        `yaml:"on_data_loss"`
	FormatVersion  int           `yaml:"format_version"`
}

// Default returns a configuration with every default filled in.
func Default() Config {
	return Config{
		Node: Node{
			DataDir:         "./floe-data",
			HTTPAddr:        "127.0.0.1:8080",
			ShutdownTimeout: conf.Duration(30 * time.Second),
			LogLevel:        "info",
			API:             api.DefaultConfig(),
		},
		Cluster:     cluster.DefaultConfig(),
		Kafka:       ingest.DefaultKafkaConfig(),
		Catalog:     catalog.DefaultConfig(),
		Maintenance: maintain.DefaultConfig(),
		Defaults: Defaults{
			CommitInterval: conf.Duration(10 * time.Second),
			TargetFileSize: 128 << 20,
			Start:          "earliest",
			OnDataLoss:     ingest.OnDataLossFail,
			FormatVersion:  ingest.DefaultFormatVersion,
		},
	}
}

// Load reads a YAML file over the defaults, applies FLOE_* environment
// overrides, fills pipeline defaults and validates the result. Every
// problem is reported at once, in the order of the file: a *conf.FieldError
// for each bad field, with the field's path and, when the field is in the
// file, its position (config: floe.yaml:12:5: pipelines[0].commit_interval:
// want a duration such as 500ms, 10s or 1m, got "fast"), or the variable
// its value came from.
func Load(path string) (Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	return parse(path, raw, os.Environ())
}

// Parse is Load without the file system: raw YAML plus an environment.
// Positions have no file name (12:5).
func Parse(raw []byte, environ []string) (Config, error) {
	return parse("", raw, environ)
}

func parse(name string, raw []byte, environ []string) (Config, error) {
	cfg := Default()
	doc, err := decodeDocument(name, raw, &cfg)
	if err != nil {
		return Config{}, err
	}
	fromEnv, envErrs := applyEnv(&cfg, environ)
	errs := append(doc.errs, envErrs...)
	unset := cfg.unsetInherited()
	cfg.FillDefaults()
	verr := cfg.validate(func(i int, f inheritedField) bool { return unset[i][f.name] })
	for _, fe := range conf.Fields(verr) {
		if slices.ContainsFunc(doc.bad, func(bad string) bool { return related(fe.Field, bad) }) {
			// The field's value did not decode: that is its problem.
			continue
		}
		placed := *fe
		if v, ok := fromEnv.source(fe.Field); ok {
			placed.Env = v
		} else if p, ok := doc.position(fe.Field); ok {
			placed.Pos = p
		}
		errs = append(errs, &placed)
	}
	if len(errs) > 0 {
		sortByPosition(errs)
		return Config{}, errors.Join(errs...)
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
		if p.FormatVersion == 0 {
			p.FormatVersion = c.Defaults.FormatVersion
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
// addressed by index: FLOE_PIPELINES_0_COMMIT_INTERVAL=1s. Every bad
// variable is reported, each a *conf.FieldError whose field is the
// variable's name.
func ApplyEnv(cfg *Config, environ []string) error {
	_, errs := applyEnv(cfg, environ)
	return errors.Join(errs...)
}

// envSources maps the path of each field set from the environment to the
// variable that set it.
type envSources map[string]string

// source returns the variable that set the field at path, or the list or
// section that holds it.
func (s envSources) source(path string) (string, bool) {
	best, found := "", ""
	for p, v := range s {
		if within(path, p) && len(p) >= len(best) {
			best, found = p, v
		}
	}
	return found, found != ""
}

func applyEnv(cfg *Config, environ []string) (envSources, []error) {
	set := envSources{}
	var errs []error
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(k, "FLOE_") {
			continue
		}
		path := strings.ToLower(strings.TrimPrefix(k, "FLOE_"))
		field, err := setPath(reflect.ValueOf(cfg).Elem(), "", path, v)
		if err != nil {
			if errors.Is(err, errNoField) {
				// Unrelated FLOE_ variables (e.g. FLOE_TEST_*) are not config.
				continue
			}
			errs = append(errs, &conf.FieldError{Field: k, Reason: err.Error()})
			continue
		}
		set[field] = k
	}
	return set, errs
}

var errNoField = errors.New("no such field")

// setPath finds the field whose yaml path, joined with underscores, equals
// path, sets it and returns its path in the document (at is the path of
// v). Field names contain underscores themselves, so it tries every prefix.
func setPath(v reflect.Value, at, path, val string) (string, error) {
	switch v.Kind() {
	case reflect.Struct:
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			tag, ok := yamlKey(t.Field(i))
			if !ok {
				continue
			}
			if path == tag {
				return conf.Join(at, tag), setScalar(v.Field(i), val)
			}
			if rest, ok := strings.CutPrefix(path, tag+"_"); ok {
				field, err := setPath(v.Field(i), conf.Join(at, tag), rest, val)
				if !errors.Is(err, errNoField) {
					return field, err
				}
			}
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Struct {
			idxStr, rest, _ := strings.Cut(path, "_")
			idx, err := strconv.Atoi(idxStr)
			if err != nil || idx < 0 || idx >= v.Len() {
				if v.Len() == 0 {
					return "", fmt.Errorf("index %q is not an existing element (there are none)", idxStr)
				}
				return "", fmt.Errorf("index %q is not an existing element (0..%d)", idxStr, v.Len()-1)
			}
			return setPath(v.Index(idx), fmt.Sprintf("%s[%d]", at, idx), rest, val)
		}
	}
	return "", errNoField
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
