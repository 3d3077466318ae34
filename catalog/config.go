package catalog

import (
	"net/url"
	"strings"

	"github.com/floelake/floe/internal/conf"
)

// Config selects the Iceberg catalog (the catalog section).
type Config struct {
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

// DefaultConfig is the embedded SQL catalog (SQLite in the data directory).
func DefaultConfig() Config {
	return Config{Type: "sql", Name: "floe"}
}

// InMemory reports whether the catalog lives only in this process
// (sqlite::memory:), so no other process can share it.
func (c Config) InMemory() bool { return strings.HasPrefix(c.URI, "sqlite::memory:") }

// Validate reports every bad field, named relative to the catalog section.
func (c Config) Validate() error {
	var p conf.Problems
	switch c.Type {
	case "sql":
		if c.URI != "" && !strings.HasPrefix(c.URI, "sqlite:") &&
			!strings.HasPrefix(c.URI, "postgres://") && !strings.HasPrefix(c.URI, "postgresql://") {
			p.Addf("uri", "for type sql must start with sqlite: or postgres://, got %q", c.URI)
		}
	case "rest":
		if u, err := url.Parse(c.URI); err != nil || (u.Scheme != "http" && u.Scheme != "https") {
			p.Addf("uri", "for type rest must be an http(s) URL, got %q", c.URI)
		}
	default:
		p.Addf("type", "must be sql or rest, got %q", c.Type)
	}
	if c.Name == "" {
		p.Addf("name", "must not be empty")
	}
	if w := c.Warehouse; w != "" {
		if i := strings.Index(w, "://"); i >= 0 {
			switch w[:i] {
			case "file", "s3", "s3a":
			default:
				p.Addf("warehouse", "scheme must be file:// or s3://, got %q", w)
			}
		}
	}
	return p.Err()
}

// StorageConfig configures the object store data files are written to (the
// storage section).
type StorageConfig struct {
	S3 S3Config `yaml:"s3"`
}

// S3Config configures an S3 or S3-compatible object store. Credentials left
// empty come from the AWS default chain (environment, shared config,
// instance role).
type S3Config struct {
	Endpoint        string `yaml:"endpoint"`
	Region          string `yaml:"region"`
	PathStyle       bool   `yaml:"path_style"`
	AccessKeyID     string `yaml:"access_key_id"`
	SecretAccessKey string `yaml:"secret_access_key"`
	SessionToken    string `yaml:"session_token"`
}

// Validate reports every bad field, named relative to the storage section.
// Every setting is passed to the object store as it is; none is rejected
// here.
func (s StorageConfig) Validate() error { return nil }
